"""`lamp doctor --backend rlbench` checks (envs/rlbench_doctor.py): each failing branch names its fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envs import rlbench_doctor
from envs.rlbench_doctor import rlbench_checks
from lamp import doctor

FAKE = Path(__file__).resolve().parent / "fake_rlbench"


def _by_name(checks: list) -> dict[str, tuple]:
    return {name: (ok, detail, fix) for name, ok, detail, fix in checks}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in ("COPPELIASIM_ROOT", "DISPLAY", "QT_QPA_PLATFORM", "QT_QPA_PLATFORM_PLUGIN_PATH", "LD_LIBRARY_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PYTHONPATH", "")
    return monkeypatch


def test_nothing_installed(clean_env: pytest.MonkeyPatch) -> None:
    checks = _by_name(rlbench_checks())
    ok, detail, fix = checks["coppeliasim root"]
    assert not ok and "COPPELIASIM_ROOT not set" in detail and "Dockerfile" in fix
    ok, detail, fix = checks["display"]
    assert not ok and "DISPLAY not set" in detail and "Xvfb :99" in fix
    for module in ("pyrep", "rlbench"):
        ok, detail, fix = checks[module]
        assert not ok and "No module named" in detail and "Dockerfile" in fix


def test_root_without_the_so1_link(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("COPPELIASIM_ROOT", str(tmp_path))
    checks = _by_name(rlbench_checks())
    assert checks["coppeliasim root"][0]
    ok, detail, fix = checks["coppeliasim libs"]
    assert not ok and "libcoppeliaSim.so.1 missing" in detail and "ln -s" in fix
    assert not checks["LD_LIBRARY_PATH"][0] and not checks["Qt platform plugins"][0]


def test_qt_xcb_plugin_missing_or_with_unresolved_libraries(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("COPPELIASIM_ROOT", str(tmp_path))
    ok, detail, fix = _by_name(rlbench_checks())["Qt xcb plugin"]
    assert not ok and "platforms/libqxcb.so missing" in detail and "unpack CoppeliaSim" in fix
    (tmp_path / "platforms").mkdir()
    (tmp_path / "platforms" / "libqxcb.so").write_bytes(b"")
    clean_env.setattr(rlbench_doctor, "_missing_libraries", lambda lib, timeout: ["libxcb-xinput.so.0"])
    ok, detail, fix = _by_name(rlbench_checks())["Qt xcb plugin"]
    assert not ok and "libxcb-xinput.so.0" in detail and "libxcb-xinput0" in fix


def test_a_complete_set_up_with_the_stand_in(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "libcoppeliaSim.so").write_bytes(b"")
    (tmp_path / "platforms").mkdir()
    (tmp_path / "platforms" / "libqxcb.so").write_bytes(b"")
    (tmp_path / "libcoppeliaSim.so.1").symlink_to(tmp_path / "libcoppeliaSim.so")
    sockets = Path("/tmp/.X11-unix")
    clean_env.setenv("COPPELIASIM_ROOT", str(tmp_path))
    clean_env.setenv("LD_LIBRARY_PATH", f"/usr/lib:{tmp_path}")
    clean_env.setenv("QT_QPA_PLATFORM_PLUGIN_PATH", str(tmp_path))
    clean_env.setenv("DISPLAY", "remotehost:0")  # a remote display is not checked for a local socket
    clean_env.setenv("PYTHONPATH", str(FAKE))
    checks = rlbench_checks()
    assert all(ok for _, ok, _, _ in checks), checks
    details = _by_name(checks)
    assert details["rlbench"][1] == "1.2.0 (LAMP fork)" and details["pyrep"][1] == "4.1.0.3"
    clean_env.setenv("RLBENCH_STUB_FLAVOR", "master")
    assert _by_name(rlbench_checks())["rlbench"][1] == "1.2.0 (upstream)"
    if not sockets.joinpath("X77").exists():
        clean_env.setenv("DISPLAY", ":77")
        ok, detail, _ = _by_name(rlbench_checks())["display"]
        assert not ok and "/tmp/.X11-unix/X77 does not exist" in detail


def test_offscreen_qt_is_flagged(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("QT_QPA_PLATFORM", "offscreen")
    ok, detail, fix = _by_name(rlbench_checks())["QT_QPA_PLATFORM"]
    assert not ok and "crashes" in detail and "Xvfb" in fix


def test_lamp_doctor_uses_these_checks_for_the_rlbench_backend(clean_env: pytest.MonkeyPatch) -> None:
    checks = doctor.check_rlbench(required=True)
    assert [c.name for c in checks] == [name for name, *_ in rlbench_checks()]
    assert all(c.status == "FAIL" and c.fix for c in checks)
    assert os.environ.get("COPPELIASIM_ROOT") is None


def test_imports_are_one_way_envs_never_import_lamp_doctor() -> None:
    """lamp/doctor.py (the CLI side) calls into envs/; nothing under envs/ may import it back (an import cycle)."""
    import ast

    root = Path(__file__).resolve().parents[1]
    offenders = []
    for path in sorted((root / "envs").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            if any(n == "lamp.doctor" or n.startswith("lamp.doctor.") for n in names):
                offenders.append(path.name)
    assert offenders == []
    assert doctor.run_probe is rlbench_doctor.run_probe  # one helper, defined in envs/probe.py
