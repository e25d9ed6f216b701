"""Transfer check (benchmark, not CI): does Plan2Explore pretraining make fine-tuning on push_button faster?

Runs `lamp ablate prompts/transfer_check.yaml` (p2e pretraining, then push_button from pixels, against scratch;
resumable: re-run the same command to continue), measures a uniform-random policy on the same task in the same run,
then prints one JSON line per arm with its evaluation-success curve and a final JSON summary, and writes
LOGDIR/transfer_check.png (the arms' curves and the random policy's level).

    python benchmarks/transfer_check.py --logdir runs/transfer_check
    python benchmarks/transfer_check.py --smoke   # plumbing only: tiny agent, a few dozen steps
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from lamp.errors import UsageError

    try:
        run()
    except (UsageError, OSError) as e:  # a bad --file or LOGDIR: one line and exit 2, as the lamp CLI does
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def run() -> None:
    """Validate the grid, measure the reference policies, run (or report) the grid, print and plot the curves."""
    from lamp.ablate import Ablation, read_eval_curve
    from lamp.atomic import atomic_write_bytes
    from lamp.config import build_config, read_yaml_mapping
    from lamp.errors import UsageError
    from lamp.evaluate import reference_policy
    from lamp.visualize import plot_eval_curves

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default=str(ROOT / "prompts" / "transfer_check.yaml"))
    parser.add_argument("--logdir", default="runs/transfer_check")
    parser.add_argument("--random-episodes", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=2, help="arms run side by side (the grid's flags set threads)")
    parser.add_argument("--smoke", action="store_true", help="tiny agent and budgets: checks the script only")
    parser.add_argument(
        "--report", action="store_true", help="no training: curves, plot and summary of what LOGDIR holds so far"
    )
    args = parser.parse_args()

    logdir = Path(args.logdir).expanduser()
    grid_file = logdir / "transfer_check.yaml"  # the exact grid that ran, next to its results
    if args.report and not grid_file.is_file():
        raise UsageError(f"{grid_file} not found: --report reads a transfer check's LOGDIR (run it first)")
    source = grid_file if args.report else Path(args.file).expanduser()
    spec = read_yaml_mapping(source, "transfer check file", "see prompts/transfer_check.yaml for the format")
    if args.smoke and not args.report:
        spec.update(
            configs=["smoke"], pretrain_steps=60, finetune_steps=60, eval_every=30, budgets=[60],
            flags=["--env.episode_length", "30", "--run.prefill", "30", "--run.eval_episodes", "1"],
        )  # fmt: skip
    ablation = Ablation.from_mapping(spec, source)  # validated before anything lands in LOGDIR
    if not args.report:
        logdir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(grid_file, yaml.safe_dump(spec, sort_keys=False).encode())
    cfg = build_config(["finetune", *ablation.configs], flags=ablation.flags)
    length = int(cfg.env.episode_length)  # the references play the episodes the arms are evaluated on
    start = time.time()
    saved = logdir / "reference_policies.json"  # measured with the grid; --report shows the same numbers
    if args.report and saved.is_file():
        references = json.loads(saved.read_text())
    else:
        episodes = args.random_episodes if not args.smoke else 2
        references = {
            "random_policy": reference_policy(ablation.tasks[0], episodes, 0, length),
            "scripted_expert": reference_policy(ablation.tasks[0], min(3, episodes), 0, length, scripted=True),
        }
        if not args.report:
            atomic_write_bytes(saved, json.dumps(references).encode())
    print(json.dumps(references), flush=True)
    cmd = [sys.executable, "-m", "lamp.cli", "ablate", str(grid_file), "--logdir", str(logdir)]
    cmd += ["--parallel", str(args.parallel)]
    code = 0 if args.report else subprocess.run(cmd, cwd=ROOT, check=False).returncode
    if args.report:
        from lamp.ablate import summarize

        summarize(ablation, logdir)  # summary.md/csv and curves.png, as the grid writes them at its end
    curves = {}
    for variant in ablation.variants:
        for seed in ablation.seeds:
            curve = read_eval_curve(logdir / variant.label / f"seed{seed}" / ablation.tasks[0])
            curves[f"{variant.label}/seed{seed}"] = curve
            print(json.dumps({"arm": variant.label, "seed": seed, "curve": curve}), flush=True)
    returns = {
        f"{v.label}/seed{seed}": read_eval_curve(logdir / v.label / f"seed{seed}" / ablation.tasks[0], "eval/return")
        for v in ablation.variants
        for seed in ablation.seeds
    }
    plot_eval_curves(curves, returns, references, logdir / "transfer_check.png", ablation.tasks[0])
    summary = {
        "benchmark": "transfer_check",
        "task": ablation.tasks[0],
        "arms": [v.label for v in ablation.variants],
        "seeds": ablation.seeds,
        "pretrain_steps": ablation.pretrain_steps,
        "finetune_steps": ablation.finetune_steps,
        "configs": ablation.configs,
        "flags": ablation.flags,
        **references,
        "final_success": {k: (c[-1][1] if c else None) for k, c in curves.items()},
        "ablate_exit_code": code,
        "minutes": round((time.time() - start) / 60, 1),
        "plot": str(logdir / "transfer_check.png"),
    }
    print(json.dumps(summary))
    sys.exit(code)


if __name__ == "__main__":
    main()
