"""`lamp doctor`: one line per thing a run needs, OK/FAIL/NOTE, and the fix for each failure.

Each check is a small function returning a `Check`, so tests can monkeypatch the probe it relies on and exercise the
failing branch. Exit code: 0 when everything the chosen back-end needs is present, 1 otherwise.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from envs.probe import run_probe

MIN_PYTHON = (3, 10)
TORCH_RANGE = ("2.4", "2.13.0")
MIN_FREE_DISK_GB = 5.0
MIN_FREE_RAM_GB = 4.0
GL_APT = {
    "egl": "apt-get install libegl1 libopengl0 libgl1-mesa-dri",
    "osmesa": "apt-get install libosmesa6",
}


@dataclass
class Check:
    """The outcome of one probe. NOTE lines are informational and never fail the doctor."""

    name: str
    status: str  # "OK" | "FAIL" | "NOTE"
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f" -> fix: {self.fix}" if self.fix and self.status != "OK" else ""
        return f"{self.status:<5} {self.name:<22} {self.detail}{fix}"


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def check_python() -> Check:
    ok = sys.version_info[:2] >= MIN_PYTHON
    version = platform.python_version()
    return Check("python", "OK" if ok else "FAIL", version, f"use Python >= {'.'.join(map(str, MIN_PYTHON))}")


def check_torch() -> Check:
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return Check("torch", "FAIL", "not installed", "pip install torch==2.13.0")
    low, high = TORCH_RANGE
    ok = _version_tuple(low) <= _version_tuple(torch.__version__) <= _version_tuple(high)
    cuda = "CUDA available" if torch.cuda.is_available() else "CPU only"
    return Check("torch", "OK" if ok else "FAIL", f"{torch.__version__} ({cuda})", "pip install torch==2.13.0")


def check_threads() -> Check:
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return Check("torch threads", "FAIL", "torch missing", "pip install torch==2.13.0")
    threads, cores = torch.get_num_threads(), os.cpu_count() or 1
    if threads > cores:
        return Check("torch threads", "NOTE", f"{threads} threads on {cores} cores (oversubscribed)", "set --threads")
    return Check("torch threads", "OK", f"{threads} intra-op threads on {cores} cores")


def check_precision() -> Check:
    """The same ~1 s fp32-vs-bf16 measurement that `agent.precision: auto` makes at the start of a run, on the CPU
    and, where there is one, the GPU: which is faster depends on the chip (AVX512-BF16/AMX, tensor cores)."""
    try:
        torch = importlib.import_module("torch")
        from lamp.agent.speed import choose_precision
    except ImportError:
        return Check("agent precision", "FAIL", "torch missing", "pip install torch==2.13.0")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    parts = []
    for device in devices:
        choice = choose_precision("auto", device)
        parts.append(f"{device + ': ' if len(devices) > 1 else ''}auto picks {choice.name}: {choice.reason}")
    return Check("agent precision", "OK", "; ".join(parts))


def check_compile() -> Check:
    """What `agent.compile: auto` will do and where the compiled code is kept between runs (a cold compile takes
    minutes, a warm one seconds). NOTE when the cache folder cannot be written: runs then compile from scratch."""
    from lamp.config import build_config
    from lamp.weights import cache_dir

    minimum = build_config([]).run.compile_min_updates
    rule = f"auto: compiled when a run has >= {minimum:,} updates to go (run.compile_min_updates), else eager"
    folder = Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR") or cache_dir() / "inductor").expanduser()
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent  # the folder is made at the first compile: its nearest existing parent must be writable
    if not (probe.is_dir() and os.access(probe, os.W_OK)):
        return Check("agent compile", "NOTE", f"{rule}; cache {folder} is not writable", "set TORCHINDUCTOR_CACHE_DIR")
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20 if folder.is_dir() else 0.0
    return Check("agent compile", "OK", f"{rule}; cache {folder} ({size:.0f} MiB)")


_RENDER_PROBE = """
import mujoco, numpy as np
model = mujoco.MjModel.from_xml_string(
    '<mujoco><worldbody><light pos="0 0 2"/><geom type="sphere" size=".2" rgba="1 0 0 1"/></worldbody></mujoco>')
data = mujoco.MjData(model)
mujoco.mj_forward(model, data)
renderer = mujoco.Renderer(model, 32, 32)
renderer.update_scene(data)
image = renderer.render()
assert image.shape == (32, 32, 3) and image.max() > 0, 'blank frame'
renderer_name = '?'
try:
    from OpenGL import GL
    renderer_name = GL.glGetString(GL.GL_RENDERER).decode()
except Exception:
    pass
renderer.close()
print('RENDER_OK', mujoco.__version__, renderer_name)
"""


def probe_render(backend: str, timeout: float = 60.0) -> tuple[bool, str]:
    """Render one frame with MUJOCO_GL=backend in a fresh process."""
    env = {**os.environ, "MUJOCO_GL": backend, "PYOPENGL_PLATFORM": backend}
    return run_probe(_RENDER_PROBE, "RENDER_OK", env=env, timeout=timeout)


def check_mujoco_render() -> Check:
    if importlib.util.find_spec("mujoco") is None:
        return Check("mujoco render", "FAIL", "mujoco not installed", "pip install mujoco==3.3.0")
    requested = os.environ.get("MUJOCO_GL")
    backends = [requested] if requested else ["egl", "osmesa"]
    errors = []
    for backend in backends:
        ok, detail = probe_render(backend)
        if ok:
            version, _, gl_name = detail.partition(" ")
            return Check("mujoco render", "OK", f"MuJoCo {version}, offscreen via {backend.upper()} ({gl_name})")
        errors.append(f"{backend}: {detail}")
    fix = " or ".join(GL_APT.get(b, f"a working {b} stack") for b in backends)
    return Check("mujoco render", "FAIL", "; ".join(errors), fix)


def _check_import(name: str, module: str, fix: str, required: bool = True) -> Check:
    try:
        mod = importlib.import_module(module)
    except Exception as e:  # any import-time failure is worth reporting, not only ImportError
        return Check(name, "FAIL" if required else "NOTE", f"not importable ({e.__class__.__name__}: {e})", fix)
    try:
        version = importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        version = getattr(mod, "__version__", "installed")
    return Check(name, "OK", version)


def check_metaworld() -> Check:
    return _check_import("metaworld", "metaworld", "pip install metaworld==3.1.1 'gymnasium[mujoco]' packaging")


def check_transformers() -> Check:
    return _check_import("transformers", "transformers", "pip install 'transformers>=4.40'")


def check_weights() -> Check:
    """The cache folder must be writable; weights that are absent are a NOTE (they download on first use)."""
    from lamp.weights import available_weights, cache_dir, r3m_checkpoint_path

    root = cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
        writable = os.access(root, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        return Check("weights cache", "FAIL", f"{root} is not writable", "set LAMP_CACHE to a writable folder")
    present = [name for name, path in available_weights().items() if path is not None]
    if present:
        return Check("weights cache", "OK", f"{root}; R3M weights present: {', '.join(present)}")
    return Check(
        "weights cache",
        "NOTE",
        f"{root}; no R3M weights yet (downloaded on first real run)",
        f"offline: place the official model.pt at {r3m_checkpoint_path('resnet50')}",
    )


def check_rlbench(required: bool = False) -> list[Check]:
    """CoppeliaSim + PyRep + RLBench: optional for the embedded default, required for --backend rlbench."""
    if required:  # the full list (libraries, display, imports in subprocesses) lives with the back-end
        from envs.rlbench_doctor import rlbench_checks

        return [Check(name, "OK" if ok else "FAIL", detail, fix) for name, ok, detail, fix in rlbench_checks()]
    bad = "NOTE"
    root = os.environ.get("COPPELIASIM_ROOT", "")
    checks = []
    if root and Path(root, "libcoppeliaSim.so.1").exists():
        checks.append(Check("coppeliasim", "OK", root))
    else:
        checks.append(
            Check(
                "coppeliasim",
                bad,
                "COPPELIASIM_ROOT not set or has no libcoppeliaSim.so.1",
                "use the Dockerfile (see README, RLBench in a container)",
            )
        )
    for module in ("pyrep", "rlbench"):
        found = importlib.util.find_spec(module) is not None
        checks.append(
            Check(
                module,
                "OK" if found else bad,
                "installed" if found else "not installed",
                "use the Dockerfile (see README, RLBench in a container)",
            )
        )
    return checks


def check_disk(path: Path | None = None) -> Check:
    path = path or Path.cwd()
    free_gb = shutil.disk_usage(path).free / 2**30
    ok = free_gb >= MIN_FREE_DISK_GB
    return Check(
        "free disk",
        "OK" if ok else "FAIL",
        f"{free_gb:.1f} GiB free at {path}",
        f"free space or run from a disk with >= {MIN_FREE_DISK_GB:.0f} GiB",
    )


def check_ram() -> Check:
    import psutil

    avail_gb = psutil.virtual_memory().available / 2**30
    ok = avail_gb >= MIN_FREE_RAM_GB
    return Check(
        "free RAM",
        "OK" if ok else "FAIL",
        f"{avail_gb:.1f} GiB available",
        f"close other programs; lamp needs >= {MIN_FREE_RAM_GB:.0f} GiB (smaller replay.capacity helps)",
    )


def run_checks(backend: str = "metaworld") -> list[Check]:
    """All checks for a back-end, in the order they are printed."""
    probes: list[Callable[[], Check]] = [check_python, check_torch, check_threads, check_precision, check_compile]
    probes += [check_transformers, check_weights]
    if backend == "metaworld":
        probes[5:5] = [check_mujoco_render, check_metaworld]
    checks = [probe() for probe in probes]
    checks += check_rlbench(required=backend == "rlbench")
    checks += [check_disk(), check_ram()]
    return checks


def exit_code(checks: list[Check]) -> int:
    return 1 if any(c.status == "FAIL" for c in checks) else 0
