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
    for init in [*ROOT.glob("lamp/**/__init__.py"), *ROOT.glob("envs/**/__init__.py")]:  # every subpackage ships
        assert str(init.relative_to(ROOT)) in names, f"{init.parent.name} is missing from setup.cfg packages"
    shipped_prompts = {n for n in names if n.startswith("lamp/prompt_files/")}
    expected = {f"lamp/prompt_files/{p.name}" for p in (ROOT / "prompts").iterdir() if p.suffix in (".yaml", ".md")}
    assert expected and expected <= shipped_prompts
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "lamp = lamp.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

    # Installed (not editable) and imported from elsewhere, lamp finds its configs and prompt styles.
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target, wheel],
        check=True,
        capture_output=True,
    )
    probe = (
        "import lamp, lamp.config as c, lamp.prompts as p; "
        f"assert lamp.__file__.startswith({str(target)!r}), lamp.__file__; "
        "print(c.build_config(['smoke']).run.steps, p.PromptStyle.load('similar').name, p.prompts_dir())"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(target)}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["1000", "similar"]
    assert result.stdout.split()[2].startswith(str(target))
