"""The installed package must carry its config and prompt files (non-editable installs included)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_contains_configs_and_prompts(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    wheel = next(tmp_path.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "lamp/configs.yaml" in names
    assert "lamp/cli.py" in names and "envs/__init__.py" in names
    shipped_prompts = {n for n in names if n.startswith("lamp/prompts/")}
    expected = {f"lamp/prompts/{p.name}" for p in (ROOT / "prompts").iterdir() if p.suffix in (".yaml", ".md")}
    assert expected and expected <= shipped_prompts
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "lamp = lamp.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
