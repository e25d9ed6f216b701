"""The container's promises that can be checked without Docker: pins and paths in the Dockerfile, and the entrypoint's
display handling (run here with fake Xvfb/vglrun on PATH). Building and running the image is NOT tested here."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
COPPELIASIM_URL = "https://downloads.coppeliarobotics.com/V4_1_0/CoppeliaSim_Edu_V4_1_0_Ubuntu20_04.tar.xz"


def _arg(text: str, name: str) -> str:
    match = re.search(rf"^ARG {name}=(.*)$", text, re.M)
    assert match, f"ARG {name} missing"
    return match.group(1).strip().strip('"')


def test_dockerfile_pins_and_environment() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert _arg(text, "COPPELIASIM_URL") == COPPELIASIM_URL
    assert _arg(text, "PYREP_REF") == "076ca15c57f2495a4194da03565891ab1aaa317e"  # tag 4.1.0
    assert re.fullmatch(r"[0-9a-f]{40}", _arg(text, "RLBENCH_REF"))
    assert "RLBench_lamp" in _arg(text, "RLBENCH_REPO") and _arg(text, "TORCH_VERSION") == "2.13.0"
    for var in ("COPPELIASIM_ROOT", "LD_LIBRARY_PATH", "QT_QPA_PLATFORM_PLUGIN_PATH"):
        assert re.search(rf"^\s*(ENV )?{var}=/opt/coppeliasim", text, re.M), var
    assert "QT_QPA_PLATFORM=offscreen" not in text  # crashes CoppeliaSim (no GL context)
    torch_at = text.index('pip install "torch==${TORCH_VERSION}"')
    assert torch_at < text.index('pip install "/workspace[rlbench,test]"')  # torch first: the index decides CPU/CUDA
    assert text.index("COPPELIASIM_ROOT=/opt/coppeliasim") < text.index("pip install --no-build-isolation .")
    assert "s#/PATH/TO/#${SHAPENET_ROOT}/#g" in text  # the fork's ShapeNet placeholders point at the mount
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/lamp-entrypoint"]' in text


def test_image_can_run_the_contract_tests() -> None:
    """README's one command (python -m pytest -m rlbench) needs pytest in the image and the tests in the context."""
    import configparser

    extras = configparser.ConfigParser()
    extras.read(ROOT / "setup.cfg")
    assert "pytest" in extras["options.extras_require"]["test"]
    text = (ROOT / "Dockerfile").read_text()
    assert "python -m pytest -p no:cacheprovider -q -m rlbench --collect-only" in text
    assert "tests" not in (ROOT / ".dockerignore").read_text().split()
    assert "docker run --rm lamp-rlbench python -m pytest -m rlbench" in (ROOT / "README.md").read_text()


def test_image_build_checks_the_qt_xcb_plugin_libraries() -> None:
    text = (ROOT / "Dockerfile").read_text()
    check = text.index('ldd "$COPPELIASIM_ROOT/platforms/libqxcb.so"')
    assert text.index("tar -xJf") < check and '| grep "not found"' in text[check:] and "exit 1" in text[check:]
    apt = text[text.index("apt-get install") : text.index("rm -rf /var/lib/apt/lists/*")]
    assert {"libxcb-xinput0", "libxcb-xinerama0", "libxkbcommon-x11-0", "fonts-dejavu-core"} <= set(apt.split())


def test_image_keeps_no_x_lock_from_the_build_smoke_test() -> None:
    text = (ROOT / "Dockerfile").read_text()
    smoke = text.index("docker/smoke.py push_button")
    cleanup = text.index("rm -f /tmp/.X*-lock /tmp/.X11-unix/X*")
    assert smoke < cleanup and text.rfind("RUN ", 0, smoke) == text.rfind("RUN ", 0, cleanup)  # same layer


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "runs"} <= set(ignored)


FAKE_XVFB = """#!{python}
# Like Xvfb: refuses a display that has a lock file, else writes the lock and binds the display's socket.
import os, socket, sys
num = sys.argv[1].lstrip(":")
lock = os.path.join(os.environ.get("X_LOCK_DIR", "/tmp"), ".X%s-lock" % num)
if os.path.exists(lock):
    sys.exit("Fatal server error: Server is already active for display " + num)
with open(lock, "w") as fh:
    fh.write("%10d\\n" % os.getpid())
socket.socket(socket.AF_UNIX).bind(os.path.join(os.environ["X11_SOCKET_DIR"], "X" + num))
"""


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    """A PATH with a fake Xvfb (see FAKE_XVFB), a fake xdpyinfo that answers with $XDPYINFO_RC (default 1: no server
    there), and a fake vglrun that logs its args."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = shutil.which("python3") or sys.executable
    (bin_dir / "Xvfb").write_text(FAKE_XVFB.replace("{python}", python))
    (bin_dir / "xdpyinfo").write_text('#!/bin/sh\nexit "${XDPYINFO_RC:-1}"\n')
    (bin_dir / "vglrun").write_text('#!/bin/sh\necho "vglrun $*"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return bin_dir


def _run(env: dict[str, str], *cmd: str, path: str = "/usr/bin:/bin") -> subprocess.CompletedProcess:
    # X locks go to the test's folder: the entrypoint removes stale ones and must never touch this machine's /tmp.
    base = {"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), "X_LOCK_DIR": env["X11_SOCKET_DIR"]}
    bash = shutil.which("bash") or "/bin/bash"
    return subprocess.run(
        [bash, str(ENTRYPOINT), *cmd], env={**base, **env}, capture_output=True, text=True, timeout=30
    )


def _dead_socket(path: Path) -> None:
    """A socket file with no server behind it, as a killed Xvfb leaves."""
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()


def test_entrypoint_starts_xvfb_when_no_display(tmp_path: Path, fake_bin: Path) -> None:
    sockets = tmp_path / "x11"
    sockets.mkdir()
    out = _run(
        {"X11_SOCKET_DIR": str(sockets), "XVFB_DISPLAY": "42"},
        "sh",
        "-c",
        'echo "D=$DISPLAY"',
        path=f"{fake_bin}:/usr/bin:/bin",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "D=:42" and (sockets / "X42").is_socket()


def test_entrypoint_removes_stale_x_locks_before_starting_xvfb(tmp_path: Path, fake_bin: Path) -> None:
    """Locks left in the image name PIDs that are alive in the container (here: this test's own PID)."""
    sockets = tmp_path / "x11"
    sockets.mkdir()
    for num in (42, 7):
        (sockets / f".X{num}-lock").write_text(f"{os.getpid():>10}\n")
    _dead_socket(sockets / "X42")
    env = {"X11_SOCKET_DIR": str(sockets), "XVFB_DISPLAY": "42"}
    out = _run(env, "sh", "-c", 'echo "D=$DISPLAY"', path=f"{fake_bin}:/usr/bin:/bin")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "D=:42" and (sockets / "X42").is_socket()
    assert not (sockets / ".X7-lock").exists()  # every stale lock goes, not only the display's own
    assert int((sockets / ".X42-lock").read_text()) != os.getpid()  # the new Xvfb's lock


def test_entrypoint_keeps_a_live_display_and_its_lock(tmp_path: Path, fake_bin: Path) -> None:
    sockets = tmp_path / "x11"
    sockets.mkdir()
    (sockets / ".X42-lock").write_text("         1\n")
    _dead_socket(sockets / "X42")  # xdpyinfo says a server answers there (XDPYINFO_RC=0)
    env = {"X11_SOCKET_DIR": str(sockets), "XVFB_DISPLAY": "42", "XDPYINFO_RC": "0"}
    out = _run(env, "sh", "-c", 'echo "D=$DISPLAY"', path=f"{fake_bin}:/usr/bin:/bin")
    assert out.returncode == 0 and out.stdout.strip() == "D=:42", out.stderr
    assert (sockets / ".X42-lock").read_text().strip() == "1"  # not removed, and no second Xvfb started


def test_entrypoint_keeps_a_given_display(tmp_path: Path) -> None:
    out = _run({"DISPLAY": ":7", "X11_SOCKET_DIR": str(tmp_path)}, "sh", "-c", 'echo "D=$DISPLAY"')
    assert out.returncode == 0 and out.stdout.strip() == "D=:7"


def test_entrypoint_vgl_egl_wraps_the_command(tmp_path: Path, fake_bin: Path) -> None:
    out = _run(
        {"RENDER": "vgl-egl", "X11_SOCKET_DIR": str(tmp_path), "VGL_DEVICE": "egl1"},
        "lamp",
        "x",
        path=f"{fake_bin}:/usr/bin:/bin",
    )
    assert out.returncode == 0 and out.stdout.strip() == "vglrun -d egl1 lamp x"


@pytest.mark.parametrize(
    ("env", "code", "message"),
    [
        ({"RENDER": "nope"}, 2, "unknown RENDER='nope'"),
        ({"RENDER": "host"}, 2, "RENDER=host needs -e DISPLAY"),
        ({}, 1, "no DISPLAY and no Xvfb"),
    ],
)
def test_entrypoint_errors_say_what_to_do(tmp_path: Path, env: dict, code: int, message: str) -> None:
    # PATH without /usr/bin: a real Xvfb on the test machine must not be started by this test
    out = _run({**env, "X11_SOCKET_DIR": str(tmp_path)}, "true", path=str(tmp_path / "empty"))
    assert out.returncode == code and message in out.stderr
