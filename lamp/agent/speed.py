"""Run-time speed decisions that depend on the machine or the run: how many torch threads, fp32 or bf16, compiled
or eager.

Threads and precision are measured or read from the machine the run is on, never assumed: bf16 autocast is ~2x
faster than fp32 on CPUs with AVX512-BF16/AMX and on recent GPUs, but 3-4x *slower* on AVX-512 CPUs without it (bf16
is then emulated). Compiling depends on the run: it costs minutes once and saves a share of every update, so only
long runs gain.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

PRECISION_VALUES = ("auto", "float32", "bfloat16", "fp32", "bf16")  # agent.precision (the last two are aliases)
BF16_MARGIN = 1.15  # auto picks bf16 only when it is at least this much faster: it also costs some accuracy


def available_cores(cgroup_root: str | Path = "/sys/fs/cgroup") -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU quota (containers)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = Path(cgroup_root, "cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def learner_threads(requested: int = 0) -> int:
    """torch intra-op threads for the learner: `requested` if > 0, else every available core.

    The env workers and the learner take turns (the driver steps the envs, then the agent trains on the new
    data), so the learner may use all cores while it trains; more threads than cores only make OpenMP threads
    wait on each other.
    """
    return requested if requested > 0 else available_cores()


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a run uses and the measurement behind it (GFLOP/s of the same small MLP step)."""

    name: str  # float32 | bfloat16
    reason: str
    fp32_gflops: float = float("nan")
    bf16_gflops: float = float("nan")

    @property
    def dtype(self) -> torch.dtype | None:
        """Autocast dtype (None = plain fp32)."""
        return torch.bfloat16 if self.name == "bfloat16" else None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "CPU"


def cpu_bf16_support() -> str | None:
    """Which x86 bf16 matmul extensions the CPU has, from /proc/cpuinfo ('' if none, None if not known)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), None)
    if flags is None:  # not x86 (e.g. ARM lists "Features")
        return None
    return "+".join(f for f in ("avx512_bf16", "amx_bf16") if f in flags)


def _mlp_rate(device: torch.device, dtype: torch.dtype | None, batch: int, width: int) -> tuple:
    """A Linear -> SiLU -> Linear forward + backward (as the agent's MLPs run it) and its FLOP count."""
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(batch, width, generator=g).to(device)
    w1 = torch.randn(width, width, generator=g).div_(width**0.5).to(device).requires_grad_()
    w2 = torch.randn(width, width, generator=g).div_(width**0.5).to(device).requires_grad_()

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            y = torch.nn.functional.silu(x @ w1) @ w2
        torch.autograd.grad(y.float().square().mean(), [w1, w2])
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step, 3 * 2 * 2 * batch * width * width  # 2 matmuls, forward + 2x backward


def measure_precisions(device: torch.device, seconds: float = 0.8) -> tuple[float, float]:
    """Best-of GFLOP/s of fp32 and bf16 autocast on the same MLP step, trials alternated over ~`seconds`.

    Alternating and keeping each one's best makes the comparison fair on a machine other jobs also use.
    """
    big = device.type == "cuda"
    steps = {
        name: _mlp_rate(device, dtype, 8192 if big else 1024, 2048 if big else 1024)
        for name, dtype in (("fp32", None), ("bf16", torch.bfloat16))
    }
    best = {name: float("inf") for name in steps}
    for step, _ in steps.values():
        step()  # warm-up: kernel selection, allocations
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or any(v == float("inf") for v in best.values()):
        for name, (step, _) in steps.items():
            start = time.perf_counter()
            step()
            best[name] = min(best[name], time.perf_counter() - start)
    return tuple(steps[name][1] / best[name] / 1e9 for name in ("fp32", "bf16"))


@functools.lru_cache(maxsize=8)
def _auto(device: torch.device) -> PrecisionChoice:
    fp32, bf16 = measure_precisions(device)
    where = device_name(device)
    support = cpu_bf16_support() if device.type == "cpu" else None
    if support is not None:
        where += f" ({support})" if support else " (no avx512_bf16/amx: bf16 is emulated)"
    name = "bfloat16" if bf16 >= BF16_MARGIN * fp32 else "float32"
    rule = f"bf16 is chosen when >= {BF16_MARGIN}x fp32"
    reason = f"fp32 {fp32:.0f} vs bf16 {bf16:.0f} GFLOP/s on {where}; {rule}"
    return PrecisionChoice(name, reason, fp32, bf16)


def choose_precision(precision: str, device: str | torch.device = "cpu") -> PrecisionChoice:
    """Resolve agent.precision: 'auto' measures (~1 s, once per device and process), the others are taken as set."""
    device = torch.device(device)
    if precision == "auto":
        return _auto(device)
    if precision in ("bf16", "bfloat16"):
        return PrecisionChoice("bfloat16", "agent.precision: bfloat16 (set)")
    if precision in ("fp32", "float32"):
        return PrecisionChoice("float32", "agent.precision: float32 (set)")
    raise ValueError(f"agent.precision must be one of {PRECISION_VALUES}, got {precision!r}")


# ---------------------------------------------------------------------------------------------------- compile
COMPILE_VALUES = ("auto", True, False)  # agent.compile


@dataclass(frozen=True)
class CompileChoice:
    """Whether the agent's step is compiled, and why (the run log and `lamp doctor` print `reason`)."""

    on: bool
    reason: str


def updates_to_go(steps: int, start: int, prefill: int, train_ratio: float, batch: int, length: int) -> int:
    """Gradient updates a run will still make: one per batch x length / train_ratio env steps after the prefill."""
    collect = max(0, steps - max(start, prefill))
    return int(collect * train_ratio / max(1, batch * length))


def choose_compile(setting: bool | str, updates: int, min_updates: int) -> CompileChoice:
    """Resolve agent.compile for a run with `updates` gradient updates to go.

    'auto' compiles when the run is long enough to repay the compile: it costs minutes at the first start (seconds
    from the cache) and then saves a part of every update (docs/speed.md has the measurements behind the default
    run.compile_min_updates); a smoke run or a short resume stays eager."""
    if setting is True or setting is False:
        return CompileChoice(setting, f"agent.compile: {str(setting).lower()} (set)")
    if setting != "auto":
        raise ValueError(f"agent.compile must be one of auto, true, false; got {setting!r}")
    on = updates >= min_updates
    relation = ">=" if on else "<"
    pays = "so the compile pays back" if on else "too few to repay a compile"
    return CompileChoice(
        on, f"auto: {updates:,} updates to go {relation} run.compile_min_updates {min_updates:,}, {pays}"
    )


class _OneLineCacheWarning(logging.Filter):
    """torch logs an unreadable inductor cache entry with a full traceback and then recompiles it: keep the warning,
    drop the traceback (a broken cache costs a recompile, never the run)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING and record.exc_info and "cache" in str(record.msg).lower():
            error = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({type(error).__name__}: {str(error)[:120]}); recompiling it"
            record.args, record.exc_info, record.exc_text = (), None, None
        return True


def use_compile_cache(log: Callable[[str], None] = print) -> Path:
    """Point torch's inductor cache at a folder that outlives the machine's /tmp (`$LAMP_CACHE/inductor`), so a
    resumed or repeated run compiles in seconds. A TORCHINDUCTOR_CACHE_DIR the user set wins; a folder that cannot
    be written is a warning and a fresh temporary folder (the run then compiles from scratch)."""
    from lamp.weights import cache_dir

    chosen = os.environ.get("TORCHINDUCTOR_CACHE_DIR") or str(cache_dir() / "inductor")
    folder = Path(chosen).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe"):
            pass
    except OSError as err:
        fallback = Path(tempfile.mkdtemp(prefix="lamp_inductor_"))
        log(f"warning: compile cache {folder} is not writable ({err.strerror or err}); compiling into {fallback}")
        folder = fallback
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    for name in ("torch._inductor.codecache", "torch._functorch._aot_autograd.autograd_cache"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _OneLineCacheWarning) for f in logger.filters):
            logger.addFilter(_OneLineCacheWarning())
    return folder
