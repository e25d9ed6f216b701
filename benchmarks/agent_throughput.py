"""Seconds per gradient step of the DreamerV3 agent (world model + actor-critic [+ Plan2Explore]), as JSON.

Each variant runs in its own subprocess so peak RSS is per variant. MFU = counted FLOPs per second
(torch.utils.flop_counter) ÷ peak matmul FLOP/s measured in the same run for the same dtype on the same device.
A variant is `precision:fast`: precision float32 | bfloat16 | auto (the ~1 s test that picks one, lamp/agent/speed.py);
fast=1 turns on channels-last convolutions and torch.compile of the conv stacks, RSSM and imagination steps, heads
and ensemble (`agent.compile`, same losses as the eager path: tests/test_agent_fast.py).
`--profile` adds the per-phase shares of one profiled step (torch.profiler, CPU time of each `agent/...` region) and
the top operators by self time. On a CPU shared with other jobs, 2 OpenMP threads can be 3–10× slower than 1 (threads
spin on barriers while the other core is busy): compare `cpu_sec_per_step` at `--threads 1` there, alternate the
variants (`--rounds`), and take wall-clock numbers only on an idle machine; the JSON records the load average.
The same-run comparison with SheepRL is ../shared/peers/compare.sh (README, "Speed").

    python benchmarks/agent_throughput.py                          # small: fp32 eager vs auto+fast, ± explorer
    python benchmarks/agent_throughput.py --sizes small --explorer 0 --variants float32:0 --threads 1 --profile
    python benchmarks/agent_throughput.py --device cuda --sizes small size12m --variants auto:1 float32:1
    python benchmarks/agent_throughput.py --sizes size2m --explorer 0 --variants auto:1 --batches 16x32 16x64 32x64

`--batches BxT ...` times each batch shape; `us_per_replayed_step` (µs per replayed step, B·T per update) is what a
fixed train ratio pays, so the shape with the lowest one learns from the most data per second.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PHASES = {  # profiler region -> row of the per-phase table
    "agent/world_model": "world-model forward (encoder, decoder, heads, losses)",
    "agent/observe": "observe loop (64 posterior steps)",
    "agent/explorer": "explorer loss (ensemble on the posterior)",
    "agent/imagine": "imagination (15 steps from 1024 starts)",
    "agent/behavior": "behaviour (imagined reward, critic, λ-returns, losses)",
    "agent/backward": "backward (all losses, one pass)",
    "agent/optimizer": "optimisers (clip, Adam, slow critic)",
}


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def peak_matmul_flops(dtype_name: str, device: str = "cpu", repeat: int = 10) -> float:
    """Best-of-`repeat` FLOP/s of a square matmul; on a shared CPU the best run is the least disturbed one."""
    import torch

    n = 8192 if device.startswith("cuda") else 2048
    dtype = torch.bfloat16 if dtype_name == "bfloat16" else torch.float32
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    for _ in range(2):
        a @ b
    sync(device)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def synthetic_batch(batch: int, length: int, lang: bool = True):
    """A replay-shaped batch: 64x64 images and a 4-d action, plus a 7-d state and the 768-d prompt if `lang`."""
    import numpy as np

    g = np.random.default_rng(0)
    data = {
        "image": g.integers(0, 256, (batch, length, 64, 64, 3), dtype=np.uint8),
        "action": g.uniform(-1, 1, (batch, length, 4)).astype(np.float32),
        "reward": g.normal(size=(batch, length)).astype(np.float32),
        "is_first": np.zeros((batch, length), bool),
        "is_terminal": np.zeros((batch, length), bool),
    }
    data["is_first"][:, 0] = True
    if lang:
        data["state"] = g.normal(size=(batch, length, 7)).astype(np.float32)
        data["lang"] = g.normal(size=(batch, length, 768)).astype(np.float32)
    return data


def profile_step(agent, data) -> dict:
    """Per-phase CPU-time shares of one profiled step and the operators with the most self time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        agent.train_step(data)
        total = time.perf_counter() - t
    events = prof.key_averages()
    spent = {e.key: e.cpu_time_total / 1e6 for e in events if e.key in PHASES}
    if "agent/world_model" in spent:  # the observe loop runs inside the world-model forward: report it apart
        spent["agent/world_model"] -= spent.get("agent/observe", 0.0)
    phases = {PHASES[k]: round(v / total, 3) for k, v in spent.items()}
    phases["other (batch transfer, glue)"] = round(max(0.0, 1 - sum(phases.values())), 3)
    self_total = sum(e.self_cpu_time_total for e in events) or 1
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:10]
    ops = {e.key[:60]: round(e.self_cpu_time_total / self_total, 3) for e in top}
    return {"profiled_step_s": round(total, 3), "phase_share": phases, "top_ops_self_share": ops}


def run_one(args) -> dict:
    """Time one variant in this process."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from lamp.agent.agent import Agent
    from lamp.agent.config import make_config
    from lamp.agent.speed import available_cores, device_name

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    intr = 0.9 if args.explorer else 0.0
    expl = {"intr_scale": intr, "extr_scale": 0.1 if args.explorer else 1.0}
    if args.size == "small":
        expl["members"] = 8
    if args.expl_original:  # the original's ensemble, as the expl_original block sets it
        from lamp.config import _blocks

        expl.update(_blocks()["expl_original"]["agent"]["expl"])
    fast = bool(args.fast)
    shape = {}
    if args.batch:
        batch_size, batch_length = (int(x) for x in args.batch.split("x"))
        shape = {"batch_size": batch_size, "batch_length": batch_length}
    cfg = make_config(
        args.size,
        expl=expl,
        precision=args.precision,
        channels_last=fast,
        compile=False,
        actor_grad=args.actor_grad,
        **shape,
    )
    space = {"image": (64, 64, 3), **({} if args.image_only else {"state": (7,), "lang": (768,)})}
    agent = Agent(cfg, space, device=args.device)
    if fast:
        agent.compile_steps(args.compile_mode or None)
    data = synthetic_batch(cfg.batch_size, cfg.batch_length, lang=not args.image_only)
    wm_params = sum(p.numel() for p in agent.world_model.parameters())
    all_params = sum(p.numel() for p in agent.parameters())
    dtype = agent.precision.name
    peak_before = peak_matmul_flops(dtype, args.device)
    cuda = args.device.startswith("cuda")
    t = time.perf_counter()
    agent.train_step(data)  # warm-up (allocations, kernel selection, compilation)
    agent.train_step(data)
    sync(args.device)
    warmup_s = time.perf_counter() - t
    if cuda:
        torch.cuda.reset_peak_memory_stats(args.device)
    times, cpu_times = [], []
    batch = agent.prefetch(data)
    for _ in range(args.steps):
        t, c = time.perf_counter(), time.process_time()
        current, batch = batch, agent.prefetch(data)  # the next batch's copy overlaps this step on a GPU
        agent.train_step(current)
        sync(args.device)
        times.append(time.perf_counter() - t)
        cpu_times.append(time.process_time() - c)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the counting step below
    profiled = profile_step(agent, data) if args.profile else {}
    counter = FlopCounterMode(display=False)  # last: under its dispatch mode compiled functions may run eagerly
    with counter:
        agent.train_step(data)
    flops = counter.get_total_flops()
    sec = statistics.median(times)
    peak = max(peak_before, peak_matmul_flops(dtype, args.device))
    cpu_sec = statistics.median(cpu_times)
    replayed = cfg.batch_size * cfg.batch_length
    row = {
        "size": args.size,
        "explorer": bool(args.explorer),
        "ensemble": "expl_original" if args.expl_original else "default",
        "precision": args.precision,
        "precision_used": dtype,
        "precision_reason": agent.precision.reason,
        "channels_last_and_compile": fast,
        "compile_mode": agent.compile_mode,
        "actor_grad": args.actor_grad,
        "observation": "image" if args.image_only else "image+state+lang",
        "device": args.device,
        "device_name": device_name(torch.device(args.device)),
        "world_model_params": wm_params,
        "params": all_params,
        "warmup_s": round(warmup_s, 3),
        "sec_per_step": round(sec, 3),
        "sec_per_step_min": round(min(times), 3),
        "sec_per_step_all": [round(x, 3) for x in times],
        "cpu_sec_per_step": round(cpu_sec, 3),
        "batch": f"{cfg.batch_size}x{cfg.batch_length}",
        "us_per_replayed_step": round(sec / replayed * 1e6, 1),
        "env_steps_per_s": {str(r): round(replayed / r / sec, 3) for r in (32, 64, 512)},
        "gflop_per_step": round(flops / 1e9, 2),
        "achieved_gflops": round(flops / sec / 1e9, 2),
        "peak_matmul_gflops": round(peak / 1e9, 2),
        "mfu": round(flops / sec / peak, 4),
        "peak_rss_mib": round(peak_rss, 1),
        "threads": torch.get_num_threads(),
        "cores_available": available_cores(),
    }
    if not cuda:
        row["mfu_by_cpu_time"] = round(flops * torch.get_num_threads() / cpu_sec / peak, 4)
    else:
        row["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated(args.device) / 2**20, 1)
    row.update(profiled)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["small"])
    parser.add_argument("--explorer", type=int, default=None, help="only this explorer setting (0/1)")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["float32:0", "auto:1"],
        help="precision:fast pairs; precision float32|bfloat16|auto, fast=1 = channels-last + torch.compile",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole set, variants alternated")
    parser.add_argument(
        "--actor-grad",
        default="dynamics",
        choices=["dynamics", "reinforce"],
        help="dynamics = backprop through the model (what the peers run for continuous actions)",
    )
    parser.add_argument("--image-only", type=int, default=1, help="1 = the peers' 64x64 image-only observation")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument(
        "--compile-mode", default="", help="torch.compile mode of the loop steps (default: reduce-overhead on CUDA)"
    )
    parser.add_argument("--profile", action="store_true", help="add per-phase and per-operator shares")
    parser.add_argument(
        "--expl-original", action="store_true", help="the original's ensemble (block expl_original: 10 x 4x512, ELU)"
    )
    parser.add_argument(
        "--batches", nargs="+", default=[""], metavar="BxT", help="batch shapes to time, e.g. 16x32 (default: size's)"
    )
    parser.add_argument("--batch", default="", help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    parser.add_argument("--fast", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args)))
        return
    import re

    bad = [b for b in args.batches if b and not re.fullmatch(r"[1-9]\d*x([2-9]|[1-9]\d+)", b)]
    if bad:
        print(f"error: --batches {bad[0]!r} is not BxT (batch size x length >= 2), e.g. 16x32", file=sys.stderr)
        sys.exit(2)
    results = []
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        for size in args.sizes:
            explorers = [args.explorer] if args.explorer is not None else ([0, 1] if size == "small" else [0])
            for explorer in explorers:
                for variant, batch in ((v, b) for b in args.batches for v in args.variants):
                    precision, fast = variant.split(":")
                    cmd = [sys.executable, __file__, "--one", "--size", size, "--precision", precision, "--fast", fast]
                    cmd += ["--explorer", str(explorer), "--steps", str(args.steps), "--device", args.device]
                    cmd += ["--threads", str(args.threads), "--actor-grad", args.actor_grad]
                    cmd += ["--image-only", str(args.image_only), "--compile-mode", args.compile_mode]
                    cmd += ["--profile"] if args.profile else []
                    cmd += ["--expl-original"] if args.expl_original else []
                    cmd += ["--batch", batch] if batch else []
                    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                    if proc.returncode != 0:
                        error = proc.stderr.strip().splitlines()[-1:]
                        row = {"size": size, "precision": precision, "explorer": bool(explorer), "error": error}
                        results.append(row)
                        continue
                    row = json.loads(proc.stdout.strip().splitlines()[-1])
                    row["loadavg_1min"] = round(os.getloadavg()[0], 2)
                    results.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    base = {}
    for r in results:  # the eager fp32 reference of each (size, explorer), first round
        if r.get("precision") == "float32" and not r.get("channels_last_and_compile") and "error" not in r:
            base.setdefault((r["size"], r["explorer"]), r["sec_per_step"])
    for r in results:
        key = (r.get("size"), r.get("explorer"))
        if key in base and "sec_per_step" in r:
            r["ratio_to_fp32_eager"] = round(r["sec_per_step"] / base[key], 3)
    report = {
        "benchmark": "agent_throughput",
        "cpu_count": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "note": "loadavg above the core count means other jobs shared the CPU: wall-clock times are then inflated",
        "results": results,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
