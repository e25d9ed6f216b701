"""The container's promises that can be checked without Docker: pins and paths in the Dockerfile, and the entrypoint's
display handling (run here with fake Xvfb/vglrun on PATH). Building and running the image is NOT tested here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
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
    assert torch_at < text.index('pip install "/workspace[rlbench]"')  # torch first: the index decides CPU/CUDA
    assert text.index("COPPELIASIM_ROOT=/opt/coppeliasim") < text.index("pip install --no-build-isolation .")
    assert "s#/PATH/TO/#${SHAPENET_ROOT}/#g" in text  # the fork's ShapeNet placeholders point at the mount
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/lamp-entrypoint"]' in text


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "runs"} <= set(ignored)


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    """A PATH with a fake Xvfb that binds the display socket and exits, and a fake vglrun that logs its args."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = shutil.which("python3") or "python3"
    (bin_dir / "Xvfb").write_text(
        "#!/bin/sh\n"
        f'exec {python} -c "import socket,sys; s=socket.socket(socket.AF_UNIX); '
        's.bind(sys.argv[1] + \'/X\' + sys.argv[2].lstrip(\':\'))" "$X11_SOCKET_DIR" "$1"\n'
    )
    (bin_dir / "vglrun").write_text('#!/bin/sh\necho "vglrun $*"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return bin_dir


def _run(env: dict[str, str], *cmd: str, path: str = "/usr/bin:/bin") -> subprocess.CompletedProcess:
    base = {"PATH": path, "HOME": os.environ.get("HOME", "/tmp")}
    bash = shutil.which("bash") or "/bin/bash"
    return subprocess.run(
        [bash, str(ENTRYPOINT), *cmd], env={**base, **env}, capture_output=True, text=True, timeout=30
    )


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
