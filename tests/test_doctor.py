"""`lamp doctor`: each probe's OK and FAIL branch, and the exit code rule."""

from __future__ import annotations

import builtins
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lamp import doctor as D
from lamp.cli import app


def test_python_and_torch_ok_here() -> None:
    assert D.check_python().status == "OK"
    torch_check = D.check_torch()
    assert torch_check.status == "OK" and "2." in torch_check.detail


def test_python_too_old(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(D, "MIN_PYTHON", (99, 0))
    check = D.check_python()
    assert check.status == "FAIL" and "Python >= 99.0" in check.fix


def test_torch_out_of_range_and_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(D, "TORCH_RANGE", ("1.0", "1.1"))
    check = D.check_torch()
    assert check.status == "FAIL" and check.fix == "pip install torch==2.13.0"
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch":
            raise ImportError("no torch")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(D.importlib, "import_module", lambda name: no_torch(name))
    assert D.check_torch().detail == "not installed"
    assert D.check_threads().status == "FAIL"


def test_version_tuple() -> None:
    assert D._version_tuple("2.13.0+cpu") == (2, 13, 0)
    assert D._version_tuple("2.4") < D._version_tuple("2.13.0")


def test_render_failure_names_apt_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(D, "probe_render", lambda backend: (False, f"{backend} broken"))
    check = D.check_mujoco_render()
    assert check.status == "FAIL"
    assert "egl: egl broken" in check.detail and "osmesa: osmesa broken" in check.detail
    assert "libegl1" in check.fix and "libosmesa6" in check.fix


def test_render_respects_mujoco_gl(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    monkeypatch.setattr(D, "probe_render", lambda backend: (seen.append(backend) or True, "3.3.0 llvmpipe"))
    check = D.check_mujoco_render()
    assert seen == ["osmesa"] and check.status == "OK" and "via OSMESA" in check.detail


def test_render_probe_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    def hang(*args, **kwargs):
        raise subprocess.TimeoutExpired(cmd="python", timeout=1)

    monkeypatch.setattr(subprocess, "run", hang)  # the probe runs in envs/probe.py
    assert D.probe_render("egl", timeout=1) == (False, "timed out after 1s")


@pytest.mark.slow
def test_real_render_probe() -> None:
    ok, detail = D.probe_render("egl")
    ok2, _ = D.probe_render("osmesa")
    assert ok or ok2, detail


def test_missing_imports_fail_with_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(name: str):
        raise ImportError(f"No module named '{name}'")

    monkeypatch.setattr(D.importlib, "import_module", broken)
    check = D.check_metaworld()
    assert check.status == "FAIL" and "pip install metaworld==3.1.1" in check.fix
    assert D.check_transformers().status == "FAIL"


def test_weights_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMP_CACHE", str(tmp_path / "cache"))
    check = D.check_weights()
    assert check.status == "NOTE" and "no R3M weights yet" in check.detail
    (tmp_path / "cache" / "r3m_18").mkdir()
    (tmp_path / "cache" / "r3m_18" / "model.pt").write_bytes(b"x")
    check = D.check_weights()
    assert check.status == "OK" and "resnet18" in check.detail
    monkeypatch.setattr(D.os, "access", lambda path, mode: False)
    assert D.check_weights().status == "FAIL"


def test_rlbench_optional_vs_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COPPELIASIM_ROOT", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    optional = D.check_rlbench(required=False)
    assert [c.status for c in optional] == ["NOTE", "NOTE", "NOTE"]
    required = D.check_rlbench(required=True)
    assert all(c.status == "FAIL" for c in required)


def test_disk_and_ram_thresholds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert D.check_disk(tmp_path).status in ("OK", "FAIL")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(D.shutil, "disk_usage", lambda path: usage(10, 10, 2**30))
    check = D.check_disk(tmp_path)
    assert check.status == "FAIL" and "1.0 GiB free" in check.detail
    import psutil

    monkeypatch.setattr(psutil, "virtual_memory", lambda: namedtuple("vm", "available")(2**30))
    assert D.check_ram().status == "FAIL"


def test_exit_code_counts_only_failures() -> None:
    ok, note, fail = D.Check("a", "OK", ""), D.Check("b", "NOTE", ""), D.Check("c", "FAIL", "", "do x")
    assert D.exit_code([ok, note]) == 0
    assert D.exit_code([ok, note, fail]) == 1
    assert fail.line().startswith("FAIL") and "-> fix: do x" in fail.line()
    assert "fix" not in ok.line()


def test_cli_doctor_prints_one_line_per_check(monkeypatch: pytest.MonkeyPatch) -> None:
    checks = [D.Check("python", "OK", "3.11"), D.Check("mujoco render", "FAIL", "no GL", "apt-get install libosmesa6")]
    monkeypatch.setattr(D, "run_checks", lambda backend: checks)
    result = CliRunner().invoke(app, ["doctor"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "OK    python" in result.output
    assert "FAIL  mujoco render          no GL -> fix: apt-get install libosmesa6" in result.output
    monkeypatch.setattr(D, "run_checks", lambda backend: checks[:1])
    assert CliRunner().invoke(app, ["doctor"]).exit_code == 0
    assert CliRunner().invoke(app, ["doctor", "--backend", "nope"]).exit_code == 2


@pytest.mark.slow
def test_doctor_end_to_end_here() -> None:
    """On a machine set up by the README, the doctor passes for the embedded default."""
    result = subprocess.run([sys.executable, "-m", "lamp.cli", "doctor"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ready for the metaworld back-end" in result.stdout
