"""Smoke test for the real RLBench stack (run inside the image): build each task, reset, step, check the pixels.

Prints one JSON line per task with steps/s, so the first real build records what CoppeliaSim costs here. A black
frame (all zeros) is the classic symptom of a GL context that Qt could not create (rlbench.md 3.7), so it fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

import envs


def main(tasks: list[str], steps: int = 5) -> int:
    failed = 0
    for task in tasks:
        t0 = time.perf_counter()
        env = envs.make_env(f"rlbench/{task}", size=64, wrist=True)
        try:
            build_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            obs, info = env.reset(seed=0)
            reset_s = time.perf_counter() - t0
            rng = np.random.default_rng(0)
            t0 = time.perf_counter()
            for _ in range(steps):
                obs, _, _, _, info = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
            step_s = (time.perf_counter() - t0) / steps
            ok = bool(obs["image"].max() > 0 and obs["wrist"].max() > 0)
            failed += not ok
            print(
                json.dumps(
                    {
                        "task": task,
                        "ok": ok,
                        "build_s": round(build_s, 2),
                        "reset_s": round(reset_s, 2),
                        "steps_per_s": round(1.0 / step_s, 2),
                        "failed_actions": info["failed_actions"],
                        "shaped": env.shaped,
                        "noun": info["noun"],
                        "image_max": int(obs["image"].max()),
                    }
                )
            )
        finally:
            env.close()
    return 1 if failed else 0


def each_in_its_own_process(tasks: list[str]) -> int:
    """One CoppeliaSim per process: run every task in a fresh interpreter."""
    codes = [subprocess.call([sys.executable, __file__, "--one", task]) for task in tasks]
    return max(codes, default=0)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        sys.exit(main(sys.argv[2:]))
    sys.exit(each_in_its_own_process(sys.argv[1:] or ["push_button"]))
