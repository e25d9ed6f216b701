"""Seconds per gradient step of the DreamerV3 agent (world model + actor-critic [+ Plan2Explore]), as JSON.

Each variant runs in its own subprocess so peak RSS is per variant. MFU = counted FLOPs per second
(torch.utils.flop_counter) ÷ peak matmul FLOP/s measured in the same run for the same dtype.
Peers on this 2-core CPU at `small` (issue 5): SheepRL 3.1–3.4 s/step, dreamerv3-torch 3.6–4.2 s/step,
with Plan2Explore ~7 s and 8–9 s.
On a CPU shared with other jobs, 2 OpenMP threads can be 3–4× slower than 1 (threads spin on barriers while the
other core is busy): compare `--threads 1` CPU seconds there, and take wall-clock numbers only on an idle machine.

    python benchmarks/agent_throughput.py                  # small (fp32 baseline, bf16+fast, ± explorer), size12m
    python benchmarks/agent_throughput.py --sizes small --variants bfloat16:1 --threads 1 --steps 2
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

PEERS = {"small": {"sheeprl": 3.1, "dreamerv3_torch": 3.6}, "small+explorer": {"sheeprl": 7.0, "dreamerv3_torch": 8.0}}


def peak_matmul_flops(dtype_name: str, n: int = 2048, repeat: int = 10) -> float:
    """Best-of-`repeat` FLOP/s of an n×n matmul; on a shared CPU the best run is the least disturbed one."""
    import torch

    dtype = torch.bfloat16 if dtype_name == "bfloat16" else torch.float32
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def synthetic_batch(batch: int, length: int, lang: bool = True):
    import numpy as np

    g = np.random.default_rng(0)
    data = {
        "image": g.integers(0, 256, (batch, length, 64, 64, 3), dtype=np.uint8),
        "state": g.normal(size=(batch, length, 7)).astype(np.float32),
        "action": g.uniform(-1, 1, (batch, length, 4)).astype(np.float32),
        "reward": g.normal(size=(batch, length)).astype(np.float32),
        "is_first": np.zeros((batch, length), bool),
        "is_terminal": np.zeros((batch, length), bool),
    }
    if lang:
        data["lang"] = g.normal(size=(batch, length, 768)).astype(np.float32)
    return data


def run_one(args) -> dict:
    """Time one variant in this process."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from lamp.agent.agent import Agent
    from lamp.agent.config import make_config

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    intr = 0.9 if args.explorer else 0.0
    expl = {"intr_scale": intr, "extr_scale": 0.1 if args.explorer else 1.0}
    if args.size == "small":
        expl["members"] = 8
    fast = bool(args.fast)
    cfg = make_config(
        args.size, expl=expl, precision=args.precision, channels_last=fast, compile=fast, actor_grad=args.actor_grad
    )
    space = {"image": (64, 64, 3), "state": (7,), "lang": (768,)}
    agent = Agent(cfg, space, device=args.device)
    data = synthetic_batch(cfg.batch_size, cfg.batch_length)
    wm_params = sum(p.numel() for p in agent.world_model.parameters())
    all_params = sum(p.numel() for p in agent.parameters())
    peak_before = peak_matmul_flops(args.precision) if args.device == "cpu" else float("nan")
    t = time.perf_counter()
    agent.train_step(data)  # warm-up (allocations, oneDNN kernel selection)
    warmup_s = time.perf_counter() - t
    times, cpu_times = [], []
    for _ in range(args.steps):
        t, c = time.perf_counter(), time.process_time()
        agent.train_step(data)
        if args.device != "cpu":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
        cpu_times.append(time.process_time() - c)
    counter = FlopCounterMode(display=False)
    with counter:
        agent.train_step(data)
    flops = counter.get_total_flops()
    sec = statistics.median(times)
    peak = max(peak_before, peak_matmul_flops(args.precision)) if args.device == "cpu" else float("nan")
    cpu_sec = statistics.median(cpu_times)
    replayed = cfg.batch_size * cfg.batch_length
    return {
        "size": args.size,
        "explorer": bool(args.explorer),
        "precision": args.precision,
        "channels_last_and_compile": fast,
        "actor_grad": args.actor_grad,
        "world_model_params": wm_params,
        "params": all_params,
        "warmup_s": round(warmup_s, 3),
        "sec_per_step": round(sec, 3),
        "sec_per_step_all": [round(x, 3) for x in times],
        "cpu_sec_per_step": round(cpu_sec, 3),
        "env_steps_per_s": {str(r): round(replayed / r / sec, 3) for r in (32, 512)},
        "gflop_per_step": round(flops / 1e9, 2),
        "achieved_gflops": round(flops / sec / 1e9, 2),
        "peak_matmul_gflops": round(peak / 1e9, 2),
        "mfu": round(flops / sec / peak, 4),
        "mfu_by_cpu_time": round(flops * torch.get_num_threads() / cpu_sec / peak, 4),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["small", "size12m"])
    parser.add_argument("--explorer", type=int, default=None, help="only this explorer setting (0/1)")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["float32:0", "bfloat16:1"],
        help="precision:fast pairs; fast=1 means channels-last + torch.compile of the conv stacks",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument(
        "--actor-grad",
        default="dynamics",
        choices=["dynamics", "reinforce"],
        help="dynamics = backprop through the model (what the peers run for continuous actions)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    parser.add_argument("--fast", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args)))
        return
    results = []
    load_before = os.getloadavg()
    for size in args.sizes:
        explorers = [args.explorer] if args.explorer is not None else ([0, 1] if size == "small" else [0])
        for variant in args.variants:
            precision, fast = variant.split(":")
            if size != "small" and fast == "0" and len(args.variants) > 1:
                continue  # the slow fp32 baseline is only measured at the peers' size
            for explorer in explorers:
                cmd = [sys.executable, __file__, "--one", "--size", size, "--precision", precision, "--fast", fast]
                cmd += ["--explorer", str(explorer), "--steps", str(args.steps), "--device", args.device]
                cmd += ["--threads", str(args.threads), "--actor-grad", args.actor_grad]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    results.append(
                        {
                            "size": size,
                            "precision": precision,
                            "explorer": bool(explorer),
                            "error": proc.stderr.strip().splitlines()[-1:],
                        }
                    )
                    continue
                row = json.loads(proc.stdout.strip().splitlines()[-1])
                key = size + ("+explorer" if explorer else "")
                if key in PEERS:
                    fastest = min(PEERS[key].values())
                    row["fastest_peer_sec_per_step"] = fastest
                    row["speedup_vs_fastest_peer"] = round(fastest / row["sec_per_step"], 2)
                results.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    base = {
        r["explorer"]: r["sec_per_step"]
        for r in results
        if r.get("size") == "small" and r.get("precision") == "float32" and not r.get("channels_last_and_compile")
    }
    for r in results:
        if r.get("size") == "small" and r.get("explorer") in base:
            r["speedup_vs_our_fp32_baseline"] = round(base[r["explorer"]] / r["sec_per_step"], 2)
    report = {
        "benchmark": "agent_throughput",
        "cpu_count": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "note": "peers measured by the issue author on this 2-core CPU; loadavg > cores means shared-CPU contention",
        "results": results,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
