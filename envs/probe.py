"""Run a probe script in a fresh interpreter: a broken GL or simulator stack can crash or hang whoever loads it.

Shared by the back-ends' checks (envs/rlbench_doctor.py) and `lamp doctor` (lamp/doctor.py); it lives in envs/ so
imports stay one-way (lamp -> envs, never back).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any


def run_probe(
    code: str, marker: str, args: tuple[str, ...] = (), env: dict | None = None, timeout: float = 60.0, **kwargs: Any
) -> tuple[bool, str]:
    """Run `code` with `python -c`; (True, what it printed after `marker`) or (False, the last line of its errors)."""
    try:
        out = subprocess.run(
            [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=timeout, **kwargs
        )
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f}s"
    if out.returncode == 0 and marker in out.stdout:
        return True, out.stdout.split(marker, 1)[1].strip()
    lines = [ln for ln in (out.stderr or out.stdout).strip().splitlines() if ln.strip()]
    return False, lines[-1][:200] if lines else f"exit code {out.returncode}"
