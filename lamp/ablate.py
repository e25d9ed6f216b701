"""`lamp ablate`: the paper's comparisons as a grid (arms or prompt styles × seeds, each pretrain → fine-tune on
every task) and its summary.

Arms (`arms:` in the ablation file) are the paper's comparisons: `lamp` (one per prompt style: language reward +
Plan2Explore 0.9/0.1), `p2e` (Plan2Explore only, no scorer), `lang_only` (language reward, no ensemble), `clip` (the
CLIP scorer instead of R3M) and `scratch` (no pretraining). Without `arms:` the grid compares the prompt styles.

Every run is an ordinary `lamp pretrain` / `lamp finetune` command in its own run directory, so a grid resumes for
free: finished runs (with `done.json`) are skipped and half-finished ones resume from their checkpoints. Runs go
sequentially, in N local processes, or as Ray tasks on a cluster (`--ray-address`); Ray is the distributed engine.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lamp.atomic import atomic_path, atomic_write_bytes
from lamp.errors import UsageError
from lamp.prompts import resolve_style_path
from lamp.rundir import DONE_FILE
from lamp.stats import bootstrap_ci

KEYS = {
    "styles",
    "seeds",
    "tasks",
    "configs",
    "pretrain_steps",
    "finetune_steps",
    "eval_every",
    "budgets",
    "flags",
    "freeze",
    "arms",
}
# Each arm's pretraining config blocks (lamp/configs.yaml) on top of the file's `configs`; `scratch` does not pretrain.
ARMS: dict[str, list[str] | None] = {
    "lamp": [],
    "p2e": ["p2e"],
    "lang_only": ["lang_only"],
    "clip": ["clip_reward"],
    "scratch": None,
}
# The scorer an arm pretrained with, pinned for its fine-tuning too (p2e's agent has no language input; clip's
# `lang` observation is a CLIP text embedding), since fine-tuning re-applies `configs`, not the arm's block.
PRETRAIN_SCORER = {"p2e": "none", "clip": "clip"}
STYLED_ARMS = ("lamp", "lang_only", "clip")  # arms whose pretraining samples prompts (clip/lang_only: the first style)
# LAMP fine-tuned with the critic linear probe (hidden critic layers frozen); `freeze: []` trains the whole critic.
DEFAULT_FREEZE = ["critic_hidden"]


@dataclass(frozen=True)
class Variant:
    """One row of the comparison: an arm (with its prompt style, if it has one), named `label` in LOGDIR and tables."""

    label: str
    arm: str
    style: Path | None


@dataclass(frozen=True)
class Ablation:
    """A validated ablation file: what to compare, with which seeds, budgets and downstream tasks."""

    styles: dict[str, Path]
    seeds: list[int]
    tasks: list[str]
    configs: list[str]
    pretrain_steps: int
    finetune_steps: int
    eval_every: int
    budgets: list[int]
    flags: list[str] = field(default_factory=list)
    freeze: list[str] = field(default_factory=lambda: list(DEFAULT_FREEZE))
    arms: list[str] | None = None  # None: compare the prompt styles (all `lamp` arms)

    @property
    def variants(self) -> list[Variant]:
        """The rows: one `lamp` row per style (labelled by the style without `arms:`), one row per other arm."""
        if self.arms is None:
            return [Variant(name, "lamp", path) for name, path in self.styles.items()]
        first = next(iter(self.styles.values()), None)
        rows = []
        for arm in self.arms:
            if arm == "lamp" and len(self.styles) > 1:
                rows += [Variant(f"lamp-{name}", "lamp", path) for name, path in self.styles.items()]
            else:
                rows.append(Variant(arm, arm, first if arm in STYLED_ARMS else None))
        return rows

    @classmethod
    def load(cls, path: str | Path) -> Ablation:
        from lamp.config import read_yaml_mapping

        p = Path(path).expanduser()
        data = read_yaml_mapping(
            p, "ablation file", "see prompts/ablation.yaml for the format", "a mapping; see prompts/ablation.yaml"
        )
        return cls.from_mapping(data, p)

    @classmethod
    def from_mapping(cls, data: dict[str, Any], p: Path) -> Ablation:
        """Validate an ablation file's contents; `p` is the file that errors name (also for a spec built in memory)."""
        unknown = set(data) - KEYS
        if unknown:
            from lamp.config import _suggest

            hint = _suggest(sorted(unknown)[0], KEYS)
            raise UsageError(
                f"ablation file '{p}' has unknown keys {sorted(unknown)}{hint}; allowed: {', '.join(sorted(KEYS))}"
            )
        arms = data.get("arms")
        if arms is not None:
            if not isinstance(arms, list) or not arms or len(set(map(str, arms))) != len(arms):
                raise UsageError(f"ablation file '{p}': 'arms' must be a non-empty list without repeats")
            unknown_arms = [a for a in arms if a not in ARMS]
            if unknown_arms:
                raise UsageError(f"ablation file '{p}': unknown arms {unknown_arms}; valid: {', '.join(ARMS)}")
        needs_styles = arms is None or any(a in STYLED_ARMS for a in arms)
        required = {"seeds", "tasks", "pretrain_steps", "finetune_steps"} | ({"styles"} if needs_styles else set())
        missing = required - set(data)
        if missing:
            raise UsageError(f"ablation file '{p}' is missing {sorted(missing)}; see prompts/ablation.yaml")
        for key in ("styles", "seeds", "tasks"):
            if key in required and (not isinstance(data[key], list) or not data[key]):
                raise UsageError(f"ablation file '{p}': '{key}' must be a non-empty list")
        for key in ("configs", "budgets", "flags"):
            if key in data and not isinstance(data[key], list):
                raise UsageError(f"ablation file '{p}': '{key}' must be a list")
        styles: dict[str, Path] = {}
        for style in data.get("styles") or []:
            try:
                styles[Path(str(style)).stem] = resolve_style_path(style).resolve()  # absolute, for Ray workers
            except UsageError:
                raise UsageError(
                    f"ablation file '{p}' names style '{style}', which does not exist; "
                    "use a style from prompts/ or a path to a style YAML"
                ) from None
        from envs import DOWNSTREAM_TASKS

        bad_tasks = [t for t in data["tasks"] if t not in DOWNSTREAM_TASKS]
        if bad_tasks:
            raise UsageError(f"ablation file '{p}': unknown tasks {bad_tasks}; valid: {', '.join(DOWNSTREAM_TASKS)}")
        from lamp.config import block_names

        bad_blocks = [c for c in data.get("configs", []) if c not in block_names()]
        if bad_blocks:
            raise UsageError(
                f"ablation file '{p}': unknown config blocks {bad_blocks}; valid: {', '.join(block_names())}"
            )
        freeze = data.get("freeze", DEFAULT_FREEZE)
        if not isinstance(freeze, list):
            raise UsageError(f"ablation file '{p}': 'freeze' must be a list, e.g. [critic_hidden] or []")
        from lamp.source import freeze_part

        for part in freeze:
            try:
                freeze_part(None, str(part), check_only=True)
            except UsageError as e:
                raise UsageError(f"ablation file '{p}': {e}") from None
        from lamp.config import build_config

        def number(key: str, value: Any, range_key: str) -> int:
            """An integer in the range of the config key it becomes (RANGES), or one error line naming `key`."""
            from lamp.config import RANGES, is_numeric

            if isinstance(value, float) and value.is_integer():
                value = int(value)
            allowed = RANGES[range_key]
            if not is_numeric(value) or not isinstance(value, int) or value not in allowed:
                raise UsageError(f"ablation file '{p}': '{key}' must be {allowed.describe(True)}, got {value!r}")
            return value

        seeds = [number("seeds", s, "seed") for s in data["seeds"]]
        pretrain_steps = number("pretrain_steps", data["pretrain_steps"], "run.steps")
        finetune_steps = number("finetune_steps", data["finetune_steps"], "run.steps")
        eval_every = number("eval_every", data.get("eval_every", max(1, finetune_steps // 10)), "run.eval_every")
        budgets = [number("budgets", b, "run.steps") for b in data.get("budgets", [finetune_steps])]
        if any(b > finetune_steps for b in budgets):
            raise UsageError(f"ablation file '{p}': budgets {budgets} must lie in (0, finetune_steps={finetune_steps}]")
        if eval_every > finetune_steps:
            raise UsageError(
                f"ablation file '{p}': eval_every ({eval_every}) must be at most finetune_steps ({finetune_steps})"
            )
        unevaluated = [b for b in budgets if b % eval_every and b != finetune_steps]
        if unevaluated:  # the table would show the evaluation before the budget under the budget's name
            raise UsageError(
                f"ablation file '{p}': budgets {unevaluated} are not evaluated (runs evaluate every eval_every="
                f"{eval_every} steps and at finetune_steps); use multiples of eval_every"
            )
        flags = [str(f) for f in data.get("flags", [])]
        try:  # every run's config must resolve, so a bad flag fails now, not in the middle of the grid
            build_config(["pretrain", *data.get("configs", [])], flags=flags)
        except UsageError as e:
            raise UsageError(f"ablation file '{p}': {e}") from None
        return cls(
            styles=styles,
            seeds=seeds,
            tasks=[str(t) for t in data["tasks"]],
            configs=[str(c) for c in data.get("configs", [])],
            pretrain_steps=pretrain_steps,
            finetune_steps=finetune_steps,
            eval_every=eval_every,
            budgets=sorted(budgets),
            flags=flags,
            freeze=[str(f) for f in freeze],
            arms=[str(a) for a in arms] if arms is not None else None,
        )


def shipped_grid(path: Path) -> Path:
    """An ablation file path as given, or a shipped grid named without its folder and suffix ('paper' ->
    prompts/paper.yaml inside the installed package), so it is found from any folder."""
    from lamp.prompts import GRID_FILES, prompts_dir

    if path.exists() or "/" in str(path) or str(path) not in GRID_FILES:
        return path
    return prompts_dir() / f"{path}.yaml"


def check_local_devices(ablation: Ablation, path: str | Path) -> None:
    """Refuse, before the first run, a grid whose devices or simulator this machine lacks (not for Ray: its nodes
    may have them)."""
    import importlib.util

    from lamp.config import build_config, check_device

    cfg = build_config(["pretrain", *ablation.configs], flags=ablation.flags)
    where = f"ablation file '{Path(path).expanduser()}'"
    if cfg.env.backend == "rlbench" and importlib.util.find_spec("rlbench") is None:
        from envs.rlbench import INSTALL_HINT

        raise UsageError(f"{where} runs on RLBench (block `rlbench`), which is not installed here: {INSTALL_HINT}")
    try:
        check_device("device", str(cfg.device))
        check_device("scorer.device", str(cfg.scorer.device), allow_auto=True)
    except UsageError as e:
        fix = "drop `gpu` from its configs to run on this machine, or pass --ray-address to run on a cluster"
        raise UsageError(f"{where}: {e}; {fix}") from None


@dataclass(frozen=True)
class Job:
    """One grid cell: a pretraining run and the fine-tuning runs that start from it, run in this order."""

    arm: str  # the variant's label
    seed: int
    commands: list[tuple[Path, list[str]]]  # (run directory, lamp arguments)
    first: int = 1  # the grid-wide number of its first run, and the grid's run count: "[3/9]" headers
    total: int = 0

    def header(self, i: int) -> str:
        """'[3/9] lamp seed 0 push_button' for the job's i-th run."""
        run_dir = self.commands[i][0]
        return f"[{self.first + i}/{self.total or len(self.commands)}] {self.arm} seed {self.seed} {run_dir.name}"


def plan(ablation: Ablation, logdir: Path) -> list[Job]:
    """The grid as jobs of `lamp` argument lists; run directories are LOGDIR/<label>/seed<S>/{pretrain,<task>}."""
    jobs = []
    for variant in ablation.variants:
        blocks = ARMS[variant.arm]
        for seed in ablation.seeds:
            base = logdir / variant.label / f"seed{seed}"
            common = [*ablation.flags, "--seed", str(seed)]
            pre = base / "pretrain"
            commands: list[tuple[Path, list[str]]] = []
            if blocks is not None:
                configs = [*ablation.configs, *blocks]
                args = ["pretrain", *(["--configs", *configs] if configs else []), *common]
                if variant.style is not None:
                    args += ["--prompts", str(variant.style)]
                commands.append((pre, [*args, "--logdir", str(pre), "--run.steps", str(ablation.pretrain_steps)]))
            for task in ablation.tasks:
                run = base / task
                if blocks is None:  # no pretraining, no language: the original's from-scratch baseline
                    start = ["--scratch", "--scorer.kind", "none"]
                else:
                    start = ["--from", str(pre), *(arg for part in ablation.freeze for arg in ("--freeze", part))]
                    if variant.arm in PRETRAIN_SCORER:  # `configs` must not swap in another scorer for fine-tuning
                        start += ["--scorer.kind", PRETRAIN_SCORER[variant.arm]]
                configs = ["--configs", *ablation.configs] if ablation.configs else []
                args = ["finetune", *configs, *common, "--task", task, *start, "--logdir", str(run)]
                args += ["--run.steps", str(ablation.finetune_steps), "--run.eval_every", str(ablation.eval_every)]
                commands.append((run, args))
            jobs.append(Job(variant.label, seed, commands))
    total, numbered, first = sum(len(job.commands) for job in jobs), [], 1
    for job in jobs:
        numbered.append(dataclasses.replace(job, first=first, total=total))
        first += len(job.commands)
    return numbered


def run_job(job: Job, runner: Callable[[list[str]], int] | None = None) -> dict[str, Any]:
    """Run a job's commands in order, skipping finished runs; stop the job at the first failing command."""
    runner = runner or _run_lamp
    skipped, ran = 0, 0
    for i, (run_dir, args) in enumerate(job.commands):
        if finished(run_dir, args):
            print(f"{job.header(i)}: finished, skipped", flush=True)
            skipped += 1
            continue
        print(f"{job.header(i)}: lamp {args[0]} -> {run_dir}", flush=True)
        code = runner(args)
        ran += 1
        if code != 0:
            return {
                "arm": job.arm,
                "seed": job.seed,
                "ok": False,
                "failed": str(run_dir),
                "code": code,
                "ran": ran,
                "skipped": skipped,
            }
    return {"arm": job.arm, "seed": job.seed, "ok": True, "ran": ran, "skipped": skipped}


def finished(run_dir: Path, args: list[str]) -> bool:
    """A run is done when its done.json reports at least the steps its command asks for (a raised budget in the
    ablation file re-runs it, which resumes from its checkpoint)."""
    path = run_dir / DONE_FILE
    if not path.is_file():
        return False
    try:
        done = json.loads(path.read_text(encoding="utf-8"))
        reached = int(done["env_steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return False  # unreadable: let the run decide (it resumes or finishes at once)
    wanted = int(args[args.index("--run.steps") + 1]) if "--run.steps" in args else 0
    return reached >= wanted


def _run_lamp(args: list[str]) -> int:
    """Run one `lamp` command in a child process (one simulator and one torch runtime per run); a stop of `lamp
    ablate` reaches it (`lamp.lifecycle.forward_stops`), so it saves its checkpoint."""
    from lamp.lifecycle import run_child

    return run_child([sys.executable, "-m", "lamp.cli", *args])


def _ray_job(job: Job, runner: Callable[[list[str]], int] | None = None) -> dict[str, Any]:
    """What a Ray task runs: a module-level function (Ray's @remote takes functions and classes, not partials)."""
    return run_job(job, runner)


def _check_reachable(address: str) -> None:
    """A quick TCP connect to HOST:PORT, because ray.init retries an address nobody answers on for minutes."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # 'auto' and other forms Ray resolves itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as e:
        raise UsageError(
            f"cannot connect to the Ray cluster at --ray-address {address} ({e.strerror or e}); start one with "
            "`ray start --head` and pass the address it prints (HOST:6379)"
        ) from None


def run_on_ray(
    jobs: Sequence[Job], address: str, runner: Callable[[list[str]], int] | None = None
) -> list[dict[str, Any]]:
    """One Ray task (1 CPU) per job on the cluster at `address`; this process only waits for the results."""
    try:
        import ray
    except ImportError:
        raise UsageError("--ray-address needs Ray: pip install '.[ray]' in the lamp checkout") from None
    _check_reachable(address)
    try:
        ray.init(address=address, log_to_driver=True)
    except Exception as e:  # Ray raises ConnectionError, ValueError, RuntimeError, ... for a wrong address
        detail = (str(e).strip().splitlines() or [e.__class__.__name__])[0][:200]
        raise UsageError(
            f"cannot connect to the Ray cluster at --ray-address {address} ({detail}); start one with "
            "`ray start --head` and pass the address it prints (HOST:6379)"
        ) from None
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(_ray_job)
        refs = [remote.remote(job, runner) for job in jobs]
        results = []
        for job, ref in zip(jobs, refs, strict=True):
            try:
                results.append(ray.get(ref))
            except Exception as e:  # the task itself died (worker lost, lamp not importable there, ...)
                detail = (str(e).strip().splitlines() or [e.__class__.__name__])[-1][:200]
                failed = f"{job.commands[0][0].parent} (Ray task: {detail})"
                results.append({"arm": job.arm, "seed": job.seed, "ok": False, "failed": failed, "code": -1})
        return results
    finally:
        ray.shutdown()  # disconnects this driver; the cluster keeps running


def run_grid(
    jobs: Sequence[Job],
    parallel: int = 1,
    ray_address: str | None = None,
    runner: Callable[[list[str]], int] | None = None,
) -> list[dict[str, Any]]:
    """Run jobs locally (sequentially or in `parallel` processes) or as Ray tasks on the cluster at `ray_address`."""
    if ray_address:
        return run_on_ray(jobs, ray_address, runner)
    work = functools.partial(run_job, runner=runner)
    if parallel <= 1:
        return [work(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=parallel) as pool:  # threads only wait on child processes
        return list(pool.map(work, jobs))


def read_eval_curve(run_dir: Path, key: str = "eval/success") -> list[tuple[int, float]]:
    """(env step, eval success) pairs from a fine-tuning run's metrics.jsonl, in step order (`key`: another
    evaluation metric, e.g. eval/return, which shows progress while success is still 0)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    points = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash; the rest of the file is still good
        if key in row:
            points[int(row["step"])] = float(row[key])
    return sorted(points.items())


def success_at(curve: list[tuple[int, float]], budget: int) -> float:
    """The last evaluation at or before `budget` env steps; NaN if the run has not got that far (a stopped or
    crashed run must not carry its last number into later budgets)."""
    values = [v for step, v in curve if step <= budget]
    return values[-1] if values and curve[-1][0] >= budget else float("nan")


def seed_means(values: dict[tuple[int, str], float], seeds: list[int], tasks: list[str]) -> list[float]:
    """Per seed, the mean over tasks (NaN unless every task has a number): the units the "all tasks" interval
    bootstraps over, since the tasks of one seed share its pretraining run."""
    return [float(np.mean([values[(s, t)] for t in tasks])) for s in seeds]


def summarize(ablation: Ablation, logdir: Path) -> dict[str, Path]:
    """Write summary.csv (every run × budget), summary.md (per arm and task: mean ± 95% CI over seeds; and over
    seeds × tasks) and curves.png (one panel per task and one for all tasks, one line per arm)."""
    labels = [v.label for v in ablation.variants]
    rows, curves = [], {}
    for label in labels:
        for seed in ablation.seeds:
            for task in ablation.tasks:
                curve = read_eval_curve(logdir / label / f"seed{seed}" / task)
                curves[(label, seed, task)] = curve
                rows += [
                    {"arm": label, "seed": seed, "task": task, "budget": b, "success": success_at(curve, b)}
                    for b in ablation.budgets
                ]
    csv_path = logdir / "summary.csv"
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["arm", "seed", "task", "budget", "success"])
        writer.writeheader()
        writer.writerows(rows)

    def cell(values: list[float]) -> str:
        n = int(np.isfinite(values).sum())
        mean, low, high = bootstrap_ci(values)
        if n <= 1:  # one seed has no interval: its value alone, not a zero-width one
            return "n/a" if n == 0 else f"{mean:.2f} (n=1)"
        return f"{mean:.2f} ± {(high - low) / 2:.2f} [{low:.2f}, {high:.2f}] (n={n})"

    what = "Prompt-style ablation" if ablation.arms is None else "Arms"
    lines = [
        f"# {what}: fine-tuning success",
        "",
        f"Evaluation success at fixed fine-tuning env-step budgets: mean ± half-width of the 95% bootstrap interval "
        f"over {len(ablation.seeds)} seeds, [low, high], n runs; the last column averages the tasks per seed "
        "(n seeds with every task evaluated).",
    ]
    columns = [*ablation.tasks, "all tasks"]
    for b in ablation.budgets:
        lines += ["", f"## {b} fine-tuning steps", ""]
        lines += ["| arm | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
        for label in labels:
            picked = [r for r in rows if r["arm"] == label and r["budget"] == b]
            cells = [cell([r["success"] for r in picked if r["task"] == t]) for t in ablation.tasks]
            by_run = {(r["seed"], r["task"]): r["success"] for r in picked}
            cells.append(cell(seed_means(by_run, ablation.seeds, ablation.tasks)))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    md_path = logdir / "summary.md"
    atomic_write_bytes(md_path, ("\n".join(lines) + "\n").encode("utf-8"))

    png_path = logdir / "curves.png"
    _plot_curves(ablation, labels, curves, png_path)
    return {"csv": csv_path, "md": md_path, "png": png_path}


def _plot_curves(
    ablation: Ablation, labels: list[str], curves: dict[tuple[str, int, str], list[tuple[int, float]]], path: Path
) -> None:
    """Success vs fine-tuning env steps: one panel per task (+ all tasks), one line per arm with a shaded 95% CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.arange(ablation.eval_every, ablation.finetune_steps + 1, ablation.eval_every)
    panels = [[t] for t in ablation.tasks] + ([list(ablation.tasks)] if len(ablation.tasks) > 1 else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), dpi=110, squeeze=False)
    for ax, tasks in zip(axes[0], panels, strict=True):
        for label in labels:
            stats = []
            for x in grid:
                at_x = {(s, t): success_at(curves[(label, s, t)], int(x)) for s in ablation.seeds for t in tasks}
                stats.append(bootstrap_ci(seed_means(at_x, ablation.seeds, tasks)))
            stats = np.array(stats)
            if np.isfinite(stats[:, 0]).any():
                ax.plot(grid, stats[:, 0], label=label)
                ax.fill_between(grid, stats[:, 1], stats[:, 2], alpha=0.2)
        ax.set_title(tasks[0] if len(tasks) == 1 else "all tasks", fontsize=9)
        ax.set_xlabel("fine-tuning env steps")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    axes[0][0].set_ylabel("success rate")
    fig.suptitle(f"{len(ablation.seeds)} seeds, 95% bootstrap CI", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
