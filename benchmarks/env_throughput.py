"""Env throughput of the Meta-World back-end; prints one JSON object.

Measures (median of --repeats runs, ours and baseline alternating; random actions; push_button scene):
  * physics only: our env (render=False) vs the bare Meta-World env it wraps;
  * step + render at 64/128 px with 1 camera (front) and 2 (front + wrist): our env vs a bare loop over the same
    compiled model with a plain `mujoco.Renderer` (the baseline; `overhead` = how much slower the wrapper is);
  * full vs decimated robot meshes (`decimate=0.15`, the default), alternating in one process;
  * 1 vs 2 worker processes (`envs.vector.VectorEnv`) at 64 px front camera;
  * texture randomisation cost per episode.
The machine's load average is recorded: other processes on a 2-core box distort every number here.

Usage: python benchmarks/env_throughput.py [--steps 200] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's envs/, not an installed copy


def _rate(fn, steps: int, repeats: int) -> float:
    """Median steps/s of `fn(steps)` over `repeats` runs."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(steps)
        rates.append(steps / (time.perf_counter() - start))
    return statistics.median(rates)


def _rate_pair(ours, bare, steps: int, repeats: int) -> tuple[float, float, float, float]:
    """Median wall and CPU steps/s of two loops, run alternately so that load from other processes hits both alike.

    Returns (ours_wall, bare_wall, ours_cpu, bare_cpu)."""
    walls: tuple[list, list] = ([], [])
    cpus: tuple[list, list] = ([], [])
    for _ in range(repeats):
        for i, fn in enumerate((ours, bare)):
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            fn(steps)
            walls[i].append(steps / (time.perf_counter() - wall_start))
            cpus[i].append(steps / max(time.process_time() - cpu_start, 1e-9))
    med = statistics.median
    return med(walls[0]), med(walls[1]), med(cpus[0]), med(cpus[1])


def _pair_result(ours_name: str, bare_name: str, rates: tuple[float, float, float, float]) -> dict:
    ours_wall, bare_wall, ours_cpu, bare_cpu = rates
    return {ours_name: round(ours_wall, 1), bare_name: round(bare_wall, 1),
            f"{ours_name.removesuffix('_per_s')}_per_cpu_s": round(ours_cpu, 1),
            f"{bare_name.removesuffix('_per_s')}_per_cpu_s": round(bare_cpu, 1),
            "overhead_cpu": round(bare_cpu / ours_cpu - 1.0, 3)}  # fmt: skip


def _actions(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 4)).astype(np.float32)


def bench_single(size: int, wrist: bool, steps: int, repeats: int, decimate: float | None = None) -> dict:
    """Our env vs a bare MuJoCo loop on the same compiled scene with the same cameras and render settings."""
    import mujoco

    from envs import make_env
    from envs.metaworld import WRIST_CAMERA

    env = make_env("push_button", size=size, wrist=wrist, decimate=decimate, episode_length=10**9)
    env.reset(seed=0)
    actions = _actions(steps)

    def ours(n: int) -> None:
        for a in actions[:n]:
            env.step(a)

    scene = env.scene
    renderer = mujoco.Renderer(scene.model, size, size)
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
    cameras = [scene.free_camera] + ([WRIST_CAMERA] if wrist else [])

    def bare(n: int) -> None:
        for a in actions[:n]:
            scene.mw.step(a)
            for cam in cameras:
                renderer.update_scene(scene.data, camera=cam, scene_option=scene.option)
                renderer.render()

    ours(5)
    bare(5)  # warm-up: first frames compile shaders
    rates = _rate_pair(ours, bare, steps, repeats)
    renderer.close()
    env.close()
    return _pair_result("steps_per_s", "bare_mujoco_steps_per_s", rates)


def bench_decimation(size: int, wrist: bool, steps: int, repeats: int, keep: float = 0.15) -> dict:
    """Full vs decimated robot meshes, run alternately in one process (same load for both)."""
    from envs import make_env

    full = make_env("push_button", size=size, wrist=wrist, decimate=None, episode_length=10**9)
    low = make_env("push_button", size=size, wrist=wrist, decimate=keep, episode_length=10**9)
    full.reset(seed=0)
    low.reset(seed=0)
    actions = _actions(steps)

    def loop(env):
        def run(n: int) -> None:
            for a in actions[:n]:
                env.step(a)

        return run

    loop(full)(5)
    loop(low)(5)
    low_wall, full_wall, low_cpu, full_cpu = _rate_pair(loop(low), loop(full), steps, repeats)
    full.close()
    low.close()
    return {"full_meshes_steps_per_s": round(full_wall, 1), "decimated_steps_per_s": round(low_wall, 1),
            "speedup_wall": round(low_wall / full_wall, 3), "speedup_cpu": round(low_cpu / full_cpu, 3)}  # fmt: skip


def bench_physics(steps: int, repeats: int) -> dict:
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    from envs import make_env

    env = make_env("push_button", render=False, episode_length=10**9)
    env.reset(seed=0)
    actions = _actions(steps)
    raw = ALL_V3_ENVIRONMENTS["button-press-topdown-v3"]()
    raw._partially_observable = False
    raw._set_task_called = True
    raw._freeze_rand_vec = False
    raw.seeded_rand_vec = True
    raw.max_path_length = 10**9
    raw.reset()

    def ours(n: int) -> None:
        for a in actions[:n]:
            env.step(a)

    def bare(n: int) -> None:
        for a in actions[:n]:
            raw.step(a)

    rates = _rate_pair(ours, bare, steps, repeats)
    env.close()
    return _pair_result("steps_per_s", "bare_metaworld_steps_per_s", rates)


def bench_workers(steps: int, repeats: int) -> dict:
    from envs.vector import VectorEnv

    result = {}
    for workers in (1, 2):
        options = {"size": 64, "episode_length": 10**9, "decimate": 0.15}  # the default config
        vec = VectorEnv("push_button", workers, options, timeout=120, seed=0)
        vec.reset(seed=0)
        actions = _actions(steps * workers).reshape(steps, workers, 4)

        def run(n: int, vec: VectorEnv = vec, actions: np.ndarray = actions) -> None:
            for a in actions[:n]:
                vec.step(a)

        run(5)
        per_vector_step = _rate(run, steps, repeats)
        vec.close()
        result[f"{workers}_workers_env_steps_per_s"] = round(per_vector_step * workers, 1)
    result["scaling_1_to_2"] = round(result["2_workers_env_steps_per_s"] / result["1_workers_env_steps_per_s"], 3)
    return result


def bench_textures(episodes: int) -> dict:
    from envs import make_env

    env = make_env("push_button", size=64, textures={"randomize": "always", "p_default": 0.0})
    env.reset(seed=0)
    bank = env.bank
    for i in range(len(bank)):  # decode the whole default bank once, so we time the per-episode swap
        bank.image(i)
    apply_ms, reset_ms = [], []
    for seed in range(1, episodes + 1):
        start = time.perf_counter()
        env.reset(seed=seed)
        reset_ms.append(1000 * (time.perf_counter() - start))
        apply_ms.append(1000 * env.texture_seconds)
    plain = make_env("push_button", size=64)
    plain_ms = []
    for seed in range(1, episodes + 1):
        start = time.perf_counter()
        plain.reset(seed=seed)
        plain_ms.append(1000 * (time.perf_counter() - start))
    env.close()
    plain.close()
    return {"texture_swap_ms_per_episode_median": round(statistics.median(apply_ms), 2),
            "reset_ms_textured_median": round(statistics.median(reset_ms), 2),
            "reset_ms_default_look_median": round(statistics.median(plain_ms), 2),
            "bank_size": len(bank), "texture_px": bank.size}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny run to check the script works")
    args = parser.parse_args()
    steps, repeats = (20, 1) if args.quick else (args.steps, args.repeats)
    warnings.filterwarnings("ignore")
    load_before = os.getloadavg()
    result: dict = {"benchmark": "env_throughput", "scene": "push_button (button-press-topdown-v3)",
                    "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                "loadavg_1m_before": round(load_before[0], 2)}}  # fmt: skip
    result["physics_only"] = bench_physics(steps * 5, repeats)
    result["render_full_meshes"] = {}
    for size in (64, 128):
        for wrist in (False, True):
            key = f"{size}px_{'front+wrist' if wrist else 'front'}"
            result["render_full_meshes"][key] = bench_single(size, wrist, steps, repeats)
    result["decimation_0.15_vs_full"] = {}
    for size, wrist in ((64, False), (128, True)):
        key = f"{size}px_{'front+wrist' if wrist else 'front'}"
        result["decimation_0.15_vs_full"][key] = bench_decimation(size, wrist, steps, repeats)
    result["workers_64px_front_decimated"] = bench_workers(steps, repeats)
    result["textures"] = bench_textures(5 if args.quick else 30)
    result["machine"]["gl"] = os.environ.get("MUJOCO_GL")
    result["machine"]["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
