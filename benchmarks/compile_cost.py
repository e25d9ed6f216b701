"""What compiling the agent's step costs and saves (benchmark, not CI): the rule behind `agent.compile: auto`.

For each size, in fresh processes: the eager step, the compiled step from an empty inductor cache (cold), and the
compiled step again from the cache that run filled (warm, as a resumed or repeated run starts). Prints JSON with the
compile seconds (first two steps minus two steady steps), seconds per update, and the break-even: the number of
updates after which the compiled run has caught up with the eager one (cold and warm).

    python benchmarks/compile_cost.py --sizes size2m small --explorer 0 1 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one(size: str, explorer: int, fast: int, args: argparse.Namespace, cache: str) -> dict:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "agent_throughput.py"), "--one", "--size", size]
    cmd += ["--precision", args.precision, "--fast", str(fast), "--explorer", str(explorer)]
    cmd += ["--steps", str(args.steps), "--threads", str(args.threads)]
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["compile_s"] = round(max(0.0, row["warmup_s"] - 2 * row["sec_per_step"]), 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["size2m", "small"])
    parser.add_argument("--explorer", type=int, nargs="+", default=[0])
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for size in args.sizes:
        for explorer in args.explorer:
            with tempfile.TemporaryDirectory(prefix="compile_cost_") as cache:
                eager = one(size, explorer, 0, args, cache)
                cold = one(size, explorer, 1, args, cache)
                warm = one(size, explorer, 1, args, cache)
            if any("error" in r for r in (eager, cold, warm)):
                rows.append({"size": size, "explorer": bool(explorer), "errors": [eager, cold, warm]})
                continue
            saved = eager["sec_per_step"] - cold["sec_per_step"]
            row = {
                "size": size,
                "explorer": bool(explorer),
                "batch": eager["batch"],
                "precision_used": cold["precision_used"],
                "eager_s_per_update": eager["sec_per_step"],
                "compiled_s_per_update": cold["sec_per_step"],
                "compiled_to_eager": round(cold["sec_per_step"] / eager["sec_per_step"], 3),
                "compile_cold_s": cold["compile_s"],
                "compile_warm_s": warm["compile_s"],
                "break_even_updates_cold": round(cold["compile_s"] / saved) if saved > 0 else None,
                "break_even_updates_warm": round(warm["compile_s"] / saved) if saved > 0 else None,
                "device_name": eager["device_name"],
            }
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    report = {"benchmark": "compile_cost", "threads": args.threads, "cpu_count": os.cpu_count()}
    print(json.dumps({**report, "loadavg_after": [round(x, 2) for x in os.getloadavg()], "results": rows}, indent=1))


if __name__ == "__main__":
    main()
