"""`lamp doctor --backend rlbench`: what CoppeliaSim 4.1 + PyRep + RLBench need, and what to fix (rlbench.md 3.3-3.5).

Each check is (name, ok, detail, fix). Imports and library probes run in subprocesses: a broken CoppeliaSim install
can segfault or hang the interpreter that loads it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from envs.probe import run_probe

CheckResult = tuple[str, bool, str, str]
DOCKER_FIX = "build and run the Dockerfile (README 'RLBench in a container')"
XVFB_FIX = (
    "start Xvfb: Xvfb :99 -screen 0 1280x1024x24 +extension GLX +render -noreset & export DISPLAY=:99 "
    "(docker/entrypoint.sh does this when DISPLAY is unset)"
)
_IMPORT_PROBE = """
import inspect, sys
name = sys.argv[1]
mod = __import__(name)
extra = ''
if name == 'rlbench':
    from rlbench.environment import Environment
    lamp = 'tex_kwargs' in inspect.signature(Environment.__init__).parameters
    extra = ' (LAMP fork)' if lamp else ' (upstream)'
print('IMPORT_OK', getattr(mod, '__version__', '?') + extra)
"""


def _probe_import(module: str, timeout: float) -> tuple[bool, str]:
    return run_probe(_IMPORT_PROBE, "IMPORT_OK", (module,), timeout=timeout, cwd="/")


def _missing_libraries(lib: Path, timeout: float) -> list[str] | None:
    """Shared libraries ldd cannot resolve for `lib` (None when ldd is unavailable)."""
    if shutil.which("ldd") is None:
        return None
    try:
        out = subprocess.run(["ldd", str(lib)], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return [ln.split("=>")[0].strip() for ln in out.stdout.splitlines() if "not found" in ln]


def _qt_plugin_check(root: Path, timeout: float) -> CheckResult:
    """Qt loads platforms/libqxcb.so only when CoppeliaSim starts: a missing xcb library fails there, not at import."""
    plugin = root / "platforms" / "libqxcb.so"
    if not plugin.exists():
        return ("Qt xcb plugin", False, f"{plugin} missing", f"unpack CoppeliaSim 4.1 into {root} again")
    missing = _missing_libraries(plugin, timeout)
    if missing:
        fix = "apt-get install the xcb libraries listed in the Dockerfile (e.g. libxcb-xinput0)"
        return ("Qt xcb plugin", False, f"unresolved: {', '.join(missing[:6])}", fix)
    return ("Qt xcb plugin", True, f"{plugin.name} resolves" if missing == [] else plugin.name, "")


def _display_check() -> CheckResult:
    display = os.environ.get("DISPLAY", "")
    xvfb = shutil.which("Xvfb")
    if not display:
        where = f"Xvfb at {xvfb}" if xvfb else "no Xvfb installed (apt-get install xvfb)"
        return ("display", False, f"DISPLAY not set; CoppeliaSim 4.1 needs GLX even headless; {where}", XVFB_FIX)
    host, _, number = display.partition(":")
    number = number.split(".")[0]
    if not host and number.isdigit() and not Path(f"/tmp/.X11-unix/X{number}").exists():
        return ("display", False, f"DISPLAY={display} but /tmp/.X11-unix/X{number} does not exist", XVFB_FIX)
    return ("display", True, f"DISPLAY={display}", "")


def rlbench_checks(timeout: float = 60.0) -> list[CheckResult]:
    """All checks for the RLBench back-end, in the order `lamp doctor --backend rlbench` prints them."""
    checks: list[CheckResult] = []
    root = os.environ.get("COPPELIASIM_ROOT", "")
    if not root or not Path(root).is_dir():
        detail = "COPPELIASIM_ROOT not set" if not root else f"COPPELIASIM_ROOT={root} is not a folder"
        checks.append(("coppeliasim root", False, detail, f"export COPPELIASIM_ROOT=/opt/coppeliasim, or {DOCKER_FIX}"))
    else:
        checks.append(("coppeliasim root", True, root, ""))
        lib = Path(root, "libcoppeliaSim.so.1")
        if not lib.exists():
            fix = f"ln -s {root}/libcoppeliaSim.so {lib} (PyRep's install makes it)"
            checks.append(("coppeliasim libs", False, f"{lib} missing", fix))
        else:
            missing = _missing_libraries(lib, timeout)
            if missing:
                fix = "apt-get install the Qt/xcb/GL libraries listed in the Dockerfile"
                checks.append(("coppeliasim libs", False, f"unresolved: {', '.join(missing[:6])}", fix))
            else:
                checks.append(("coppeliasim libs", True, f"{lib.name} resolves" if missing == [] else lib.name, ""))
        checks.append(_qt_plugin_check(Path(root), timeout))
        ld = os.environ.get("LD_LIBRARY_PATH", "").split(":")
        ok = any(p and Path(p).resolve() == Path(root).resolve() for p in ld)
        checks.append(
            (
                "LD_LIBRARY_PATH",
                ok,
                "contains COPPELIASIM_ROOT" if ok else "does not contain COPPELIASIM_ROOT",
                "export LD_LIBRARY_PATH=$COPPELIASIM_ROOT:$LD_LIBRARY_PATH",
            )
        )
        qt = os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", "")
        ok = bool(qt) and Path(qt).resolve() == Path(root).resolve()
        checks.append(
            (
                "Qt platform plugins",
                ok,
                f"QT_QPA_PLATFORM_PLUGIN_PATH={qt or '(unset)'}",
                "export QT_QPA_PLATFORM_PLUGIN_PATH=$COPPELIASIM_ROOT (the root, not /platforms)",
            )
        )
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        checks.append(
            (
                "QT_QPA_PLATFORM",
                False,
                "offscreen: CoppeliaSim crashes (no GL context)",
                "unset QT_QPA_PLATFORM; use Xvfb",
            )
        )
    checks.append(_display_check())
    for module in ("pyrep", "rlbench"):
        ok, detail = _probe_import(module, timeout)
        checks.append((module, ok, detail, f"install {module} against CoppeliaSim 4.1, or {DOCKER_FIX}"))
    return checks
