"""Transfer check (benchmark, not CI): does pretraining make a task learn sooner than training from scratch?

Runs `lamp ablate` on a grid (default `prompts/transfer_check.yaml`: Plan2Explore pretraining, then a task from the
cameras, against scratch; resumable: re-run the same command to continue), measures a uniform-random policy and the
scripted expert on the task in the same run, and reports per arm, over seeds: evaluation success and return at every
evaluation (mean and 95% bootstrap interval), the first evaluation at >= --target success, and the area under the
success curve; then the head start of each pretrained arm over scratch with its interval. Writes
LOGDIR/transfer_check.png (each arm's mean and interval, every seed's curve, the references) and
LOGDIR/transfer_check.json.

    python benchmarks/transfer_check.py --task close_microwave --seeds 0 1 2 --logdir runs/transfer
    python benchmarks/transfer_check.py --logdir runs/transfer --report   # what the runs hold so far, no training
    python benchmarks/transfer_check.py --smoke                            # plumbing only: tiny agent, a few steps

With --round-steps R the fine-tuning budget grows R steps at a time (every run resumes) up to --finetune-steps, and
stops as soon as the scratch arm passes --target in every seed: the same budget for every arm, no longer than needed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BASELINE = "scratch"


def main() -> None:
    from lamp.errors import UsageError

    try:
        run()
    except (UsageError, OSError) as e:  # a bad --file or LOGDIR: one line and exit 2, as the lamp CLI does
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default=str(ROOT / "prompts" / "transfer_check.yaml"), help="the grid")
    parser.add_argument("--logdir", default="runs/transfer_check")
    parser.add_argument("--task", default=None, help="downstream task (default: the grid's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default: the grid's)")
    parser.add_argument("--pretrain-steps", type=int, default=None, help="pretraining budget (default: the grid's)")
    parser.add_argument("--finetune-steps", type=int, default=None, help="fine-tuning cap (default: the grid's)")
    parser.add_argument("--eval-every", type=int, default=None, help="env steps between evaluations")
    parser.add_argument("--round-steps", type=int, default=0, help="grow the fine-tuning budget this much at a time")
    parser.add_argument("--target", type=float, default=0.5, help="success rate the head start is measured at")
    parser.add_argument("--random-episodes", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=2, help="runs side by side (the grid's flags set threads)")
    parser.add_argument("--smoke", action="store_true", help="tiny agent and budgets: checks the script only")
    parser.add_argument(
        "--report", action="store_true", help="no training: curves, plot and summary of what LOGDIR holds so far"
    )
    return parser.parse_args()


def grid_spec(args: argparse.Namespace, logdir: Path) -> tuple[dict[str, Any], Path]:
    """The grid to run: the file with the command line's task, seeds and budgets on top (a report reads the grid
    that ran, LOGDIR/transfer_check.yaml, and keeps it)."""
    from lamp.config import read_yaml_mapping
    from lamp.errors import UsageError

    grid_file = logdir / "transfer_check.yaml"
    if args.report:
        if not grid_file.is_file():
            raise UsageError(f"{grid_file} not found: --report reads a transfer check's LOGDIR (run it first)")
        return read_yaml_mapping(grid_file, "transfer check file", "run the check first"), grid_file
    source = Path(args.file).expanduser()
    spec = read_yaml_mapping(source, "transfer check file", "see prompts/transfer_check.yaml for the format")
    if args.smoke:
        spec.update(
            configs=["smoke"], seeds=[0], pretrain_steps=60, finetune_steps=60, eval_every=30, budgets=[60],
            flags=["--env.episode_length", "30", "--run.prefill", "30", "--run.eval_episodes", "1",
                   "--agent.vector_keys", "[]"],
        )  # fmt: skip
    for key, value in (
        ("tasks", [args.task] if args.task else None),
        ("seeds", args.seeds),
        ("pretrain_steps", args.pretrain_steps),
        ("finetune_steps", args.finetune_steps),
        ("eval_every", args.eval_every),
    ):
        if value is not None:
            spec[key] = value
    if args.task or args.finetune_steps or args.eval_every:
        spec["budgets"] = [int(spec["finetune_steps"])]
    return spec, source


def run() -> None:
    """Validate the grid, measure the reference policies, run the grid (in rounds), print and plot the summary."""
    from lamp.ablate import Ablation, read_eval_curve
    from lamp.atomic import atomic_write_bytes
    from lamp.config import build_config
    from lamp.errors import UsageError
    from lamp.lifecycle import forward_stops, run_child

    args = parse_args()
    logdir = Path(args.logdir).expanduser()
    spec, source = grid_spec(args, logdir)
    ablation = Ablation.from_mapping(spec, source)  # validated before anything lands in LOGDIR
    if len(ablation.tasks) != 1:
        raise UsageError(f"transfer check file '{source}': 'tasks' must name exactly one task (or pass --task)")
    if BASELINE not in [v.label for v in ablation.variants]:
        raise UsageError(f"transfer check file '{source}': the arms must include '{BASELINE}', the baseline")
    if args.round_steps and (args.round_steps < 1 or args.round_steps % ablation.eval_every):
        raise UsageError(f"--round-steps {args.round_steps} must be a multiple of eval_every={ablation.eval_every}")
    if not args.report:
        logdir.mkdir(parents=True, exist_ok=True)
    task = ablation.tasks[0]
    cfg = build_config(["finetune", *ablation.configs], flags=ablation.flags)
    references = measure_references(args, logdir, task, cfg)
    print(json.dumps(references), flush=True)
    start, code = time.time(), 0
    cap = int(spec["finetune_steps"])
    budget = cap if not args.round_steps else min(cap, max(args.round_steps, read_budget(logdir, cap)))
    while not args.report:
        spec.update(finetune_steps=budget, budgets=budgets_to(budget, args.round_steps or budget, ablation.eval_every))
        atomic_write_bytes(logdir / "transfer_check.yaml", yaml.safe_dump(spec, sort_keys=False).encode())
        cmd = [sys.executable, "-m", "lamp.cli", "ablate", str(logdir / "transfer_check.yaml"), "--logdir", str(logdir)]
        with forward_stops() as stopped:  # a stop of this script reaches `lamp ablate`, which stops its runs
            code = run_child([*cmd, "--parallel", str(args.parallel)], cwd=ROOT)
        if stopped:
            sys.exit(code)
        curves = read_curves(ablation, logdir, task, read_eval_curve)
        passed = all(first_at(c, args.target) is not None for c in curves["success"][BASELINE].values())
        if code or budget >= cap or passed:
            break
        budget = min(cap, budget + args.round_steps)
    if args.report:
        from lamp.ablate import summarize

        summarize(ablation, logdir)  # summary.md/csv and curves.png, as the grid writes them at its end
    curves = read_curves(ablation, logdir, task, read_eval_curve)
    summary = summarize_arms(curves, args.target, ablation.eval_every)
    plot(curves, references, logdir / "transfer_check.png", task, args.target)
    for arm, row in summary["arms"].items():
        print(json.dumps({"arm": arm, **row}), flush=True)
    out = {
        "benchmark": "transfer_check",
        "task": task,
        "arms": [v.label for v in ablation.variants],
        "seeds": ablation.seeds,
        "pretrain_steps": ablation.pretrain_steps,
        "finetune_steps": int(spec["finetune_steps"]),
        "eval_every": ablation.eval_every,
        "configs": ablation.configs,
        "flags": ablation.flags,
        **references,
        "final_success": {
            f"{arm}/seed{seed}": (c[-1][1] if c else None)
            for arm, by_seed in curves["success"].items()
            for seed, c in by_seed.items()
        },
        "head_start": summary["head_start"],
        "ablate_exit_code": code,
        "minutes": round((time.time() - start) / 60, 1),
        "plot": str(logdir / "transfer_check.png"),
    }
    atomic_write_bytes(logdir / "transfer_check.json", json.dumps({**out, **summary}, indent=2).encode())
    print(json.dumps(out))
    sys.exit(code)


def measure_references(args: argparse.Namespace, logdir: Path, task: str, cfg: Any) -> dict[str, Any]:
    """The random policy and the scripted expert on the episodes the arms are evaluated on (saved with the runs;
    measured again when the task or episode length changed)."""
    from lamp.atomic import atomic_write_bytes
    from lamp.evaluate import reference_policy

    length, repeat = int(cfg.env.episode_length), int(cfg.env.action_repeat)
    key = {"task": task, "length": length, "repeat": repeat}
    saved = logdir / "reference_policies.json"
    if saved.is_file():
        references = json.loads(saved.read_text())
        if references.get("key") == key or args.report:
            return references
    episodes = args.random_episodes if not args.smoke else 2
    references = {
        "key": key,
        "random_policy": reference_policy(task, episodes, 0, length, action_repeat=repeat),
        "scripted_expert": reference_policy(task, min(3, episodes), 0, length, scripted=True, action_repeat=repeat),
    }
    if not args.report:
        atomic_write_bytes(saved, json.dumps(references).encode())
    return references


def read_budget(logdir: Path, cap: int) -> int:
    """The fine-tuning budget the last round ran to (a re-run continues from there)."""
    grid = logdir / "transfer_check.yaml"
    if not grid.is_file():
        return 0
    value = (yaml.safe_load(grid.read_text()) or {}).get("finetune_steps", 0)
    return min(cap, int(value)) if isinstance(value, int) else 0


def budgets_to(budget: int, every: int, eval_every: int) -> list[int]:
    """Summary budgets: every `every` steps (a multiple of eval_every) up to `budget`, and `budget` itself."""
    step = max(every - every % eval_every, eval_every)
    return sorted({*range(step, budget + 1, step), budget})


def read_curves(ablation: Any, logdir: Path, task: str, read_eval_curve: Any) -> dict[str, Any]:
    """{"success"|"return": {arm: {seed: [(step, value), ...]}}} from the fine-tuning runs' metrics."""
    return {
        kind: {
            v.label: {seed: read_eval_curve(logdir / v.label / f"seed{seed}" / task, key) for seed in ablation.seeds}
            for v in ablation.variants
        }
        for kind, key in (("success", "eval/success"), ("return", "eval/return"))
    }


def first_at(curve: list[tuple[int, float]], target: float) -> int | None:
    from lamp.stats import first_reaching

    return first_reaching(curve, target)


def summarize_arms(curves: dict[str, Any], target: float, eval_every: int) -> dict[str, Any]:
    """Per arm: mean and interval at every evaluation, the first evaluation at >= target per seed, the area under
    the success curve up to the budget every run reached; per pretrained arm: its head start over scratch."""
    from lamp.stats import bootstrap_ci, curve_area, difference_ci

    reached = [c[-1][0] for by_seed in curves["success"].values() for c in by_seed.values() if c]
    common = min(reached) if reached else 0
    arms: dict[str, Any] = {}
    for arm, by_seed in curves["success"].items():
        steps = sorted({s for c in by_seed.values() for s, _ in c})
        row: dict[str, Any] = {"evaluations": []}
        for step in steps:
            point: dict[str, Any] = {"step": step}
            for kind in ("success", "return"):
                values = [dict(c).get(step, math.nan) for c in curves[kind][arm].values()]
                mean, low, high = bootstrap_ci(values)
                point[kind] = [round(mean, 4), round(low, 4), round(high, 4)]
                point[f"{kind}_seeds"] = sum(math.isfinite(v) for v in values)
            row["evaluations"].append(point)
        firsts = {seed: first_at(c, target) for seed, c in by_seed.items()}
        row["first_at_target"] = firsts
        row["seeds_at_target"] = sum(v is not None for v in firsts.values())
        areas = [curve_area(c, common) for c in by_seed.values()]
        row["success_area"] = {"until": common, "per_seed": [round(a, 4) for a in areas]}
        row["success_area"]["mean_ci"] = [round(x, 4) for x in bootstrap_ci(areas)]
        arms[arm] = row
    head: dict[str, Any] = {}
    base = arms.get(BASELINE)
    for arm, row in arms.items():
        if arm == BASELINE or base is None:
            continue
        ours = [math.nan if v is None else v for v in row["first_at_target"].values()]
        theirs = [math.nan if v is None else v for v in base["first_at_target"].values()]
        steps = difference_ci(theirs, ours)  # > 0: the pretrained arm got there that many steps sooner
        area = difference_ci(row["success_area"]["per_seed"], base["success_area"]["per_seed"])
        head[arm] = {
            "steps_sooner_to_target": [round(x, 1) for x in steps],
            "success_area_gain": [round(x, 4) for x in area],
            "resolution_steps": eval_every,
            "note": "95% bootstrap intervals over seeds; first_at_target counts only seeds that got there",
        }
    return {"arms": arms, "head_start": head, "target": target}


def plot(curves: dict[str, Any], references: dict[str, Any], path: Path, task: str, target: float) -> None:
    from lamp.visualize import plot_arm_curves

    plot_arm_curves(curves, references, path, task, target=target)


if __name__ == "__main__":
    main()
