"""Headless OpenGL for MuJoCo: pick EGL or OSMesa before `mujoco` is imported (it reads MUJOCO_GL once, at import).

The choice is probed in a short subprocess, because a failed GL back-end cannot be swapped out inside a process that
has already imported PyOpenGL. The result is written to os.environ, so spawned workers inherit it and skip the probe.
"""

from __future__ import annotations

import os
import subprocess
import sys

from lamp.errors import UsageError

APT_HINT = (
    "install the Mesa packages for headless rendering: "
    "'apt-get install -y libegl1 libopengl0 libgl1-mesa-dri' (EGL) or 'apt-get install -y libosmesa6' (OSMesa), "
    "or set MUJOCO_GL to a back-end that works here"
)
_PROBE = "import mujoco; ctx = mujoco.GLContext(8, 8); ctx.make_current(); ctx.free()"  # smallest real context


def probe(backend: str, timeout: float = 60.0) -> bool:
    """True if a MuJoCo GL context can be created with MUJOCO_GL=backend (checked in a fresh interpreter)."""
    env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend)
    try:
        result = subprocess.run(
            [sys.executable, "-c", _PROBE], check=False, env=env, capture_output=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def select_backend(candidates: tuple[str, ...] = ("egl", "osmesa")) -> str:
    """Return the GL back-end to use: MUJOCO_GL if the user set it, else the first candidate that works."""
    chosen = os.environ.get("MUJOCO_GL", "").strip().lower()
    if chosen:
        if chosen in ("egl", "osmesa"):
            os.environ.setdefault("PYOPENGL_PLATFORM", chosen)
        return chosen
    late = "mujoco" in sys.modules  # mujoco already chose its (windowed) GLFW context class at import
    if late and "OpenGL" in sys.modules:
        raise UsageError("mujoco and PyOpenGL were imported before envs; set MUJOCO_GL=egl (or osmesa) before starting")
    for backend in candidates:
        if probe(backend):
            os.environ["MUJOCO_GL"] = backend
            os.environ["PYOPENGL_PLATFORM"] = backend
            if late:
                _swap_context_class(backend)
            return backend
    raise UsageError(f"no headless OpenGL back-end works (tried {', '.join(candidates)}); {APT_HINT}")


def render_error(backend: str, error: BaseException) -> UsageError:
    """The one-line error for a renderer that failed to start under an explicit MUJOCO_GL."""
    return UsageError(f"could not start MuJoCo rendering with MUJOCO_GL={backend} ({type(error).__name__}); {APT_HINT}")


def _swap_context_class(backend: str) -> None:
    """Point an already-imported mujoco at the headless context class (safe while PyOpenGL is not yet loaded)."""
    import importlib

    import mujoco

    headless = importlib.import_module(f"mujoco.{backend}").GLContext
    mujoco.gl_context.GLContext = headless
    mujoco.GLContext = headless
