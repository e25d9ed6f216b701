"""The `lamp` command: pretrain, finetune, eval, ablate, score, doctor.

Config flags follow danijar/dreamerv3: `--configs a b` picks named blocks of lamp/configs.yaml in order, and any
`--section.key value` flag overrides one key. Bad input prints one `error:` line and exits 2.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from lamp import __version__
from lamp.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])
CONFIG_CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}
CONFIG_EPILOG = (
    "Any other flag overrides one config key with a dotted path, e.g. --agent.model_lr 3e-4 --run.steps 1e5 "
    "(see lamp/configs.yaml for every key). Re-running the same command with the same --logdir resumes, with the "
    "run's saved config: flags then change only runtime keys (run.*, threads, device, ...)."
)

app = typer.Typer(
    help="lamp: language-reward-modulated pretraining (LAMP) of robot-manipulation agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

ConfigsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--configs", metavar="BLOCK...", help="Named config blocks applied in order, e.g. --configs metaworld small."
    ),
]
ConfigFileOpt = Annotated[
    Path | None, typer.Option("--config-file", metavar="FILE", help="YAML file of overrides, applied after --configs.")
]
LogdirOpt = Annotated[
    str | None, typer.Option("--logdir", metavar="DIR", help="Run directory (config, metrics, checkpoints).")
]


def user_errors(func: F) -> F:
    """Turn a UsageError into one `error:` line on stderr and exit code 2, with no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UsageError as e:
            err.print(f"error: {e}", markup=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def config_summary(cfg: Any, blocks: Sequence[str], notes: Sequence[str] = ()) -> list[str]:
    """What the console shows of a run's config, once its input is checked: the blocks and the keys that differ
    from the defaults (the whole config is LOGDIR/config.yaml), then the resume notes."""
    from lamp.config import changed_from_defaults

    changed = changed_from_defaults(cfg)
    said = ", ".join(f"{k} {v}" for k, v in changed.items()) or "none"
    lines = [f"config: blocks {', '.join(blocks)}; {len(changed)} keys differ from the defaults: {said}"]
    lines.append(f"config: all keys in {Path(cfg.logdir).expanduser() / 'config.yaml'}")
    return lines + list(notes)


def job_summary(cfg: Any, mode: str, seconds: float) -> list[str]:
    """The end of a training job: how far it got, in how long, its last evaluation, and the next command."""
    import json

    logdir = Path(cfg.logdir).expanduser()
    try:
        done = json.loads((logdir / "done.json").read_text())
    except (OSError, ValueError):
        return []
    what = "pretraining" if mode == "pretrain" else f"fine-tuning on {cfg.env.task}"
    lines = [
        f"finished {what}: {done.get('env_steps', 0):,} env steps, {done.get('updates', 0):,} updates "
        f"({seconds / 60:.1f} min in this session)"
    ]
    last_eval = None
    metrics = logdir / "metrics.jsonl"
    for line in metrics.read_text().splitlines() if metrics.is_file() else []:
        if '"eval/success"' in line:
            last_eval = line
    if last_eval is not None:
        row = json.loads(last_eval)
        ret = row.get("eval/return")
        said = f", return {ret:.4g}" if isinstance(ret, float) else ""
        lines.append(
            f"last evaluation (env step {row['step']:,}, {cfg.run.eval_episodes} episodes): success "
            f"{row['eval/success']:.0%}{said}"
        )
    if mode == "pretrain":
        nxt = f"lamp finetune --task push_button --from {logdir} --logdir {logdir}_push_button --freeze critic_hidden"
    else:
        nxt = f"lamp eval --checkpoint {logdir} --episodes 20"
    return [*lines, f"next: {nxt}"]


def run_training(cfg: Any, mode: str, intro: Sequence[str] = ()) -> None:
    """Run a training job; Ctrl-C or SIGTERM has already saved a checkpoint when it reaches here (exit 128 + signal,
    as a shell reports a process killed by that signal)."""
    import signal

    from lamp.agent.agent import TrainingStopped
    from lamp.lifecycle import DiskFull
    from lamp.train import run_job

    start = time.time()
    try:
        result = run_job(cfg, mode, intro=intro)
    except KeyboardInterrupt as e:
        raise typer.Exit(128 + int(getattr(e, "signum", signal.SIGINT))) from None
    except TrainingStopped as e:  # NaN/inf losses several updates in a row; the message names the loss
        err.print(
            f"error: {e}; the last good state is in {cfg.logdir}/checkpoints (try a lower learning rate)", markup=False
        )
        raise typer.Exit(1) from None
    except DiskFull as e:
        err.print(f"error: {e}", markup=False)
        raise typer.Exit(1) from None
    for line in job_summary(cfg, mode, time.time() - start):
        out.print(line, markup=False)
    out.print(f"logs: {result['metrics']} (tensorboard --logdir {result['logdir']})", markup=False)
    out.print(f"checkpoint: {result['checkpoint']}", markup=False)
    if result["videos"]:
        out.print(f"videos: {result['videos'][-1].parent} (latest: {result['videos'][-1].name})", markup=False)


PromptsOpt = Annotated[
    str | None,
    typer.Option("--prompts", metavar="STYLE", help="Prompt style: a YAML in prompts/ (by name) or a path."),
]


@app.command(context_settings=CONFIG_CONTEXT, epilog=CONFIG_EPILOG)
@user_errors
def pretrain(
    ctx: typer.Context,
    configs: ConfigsOpt = None,
    config_file: ConfigFileOpt = None,
    logdir: LogdirOpt = None,
    prompts: PromptsOpt = None,
) -> None:
    """Pretrain in randomised scenes on language rewards blended with a novelty bonus (the `pretrain` block first)."""
    overrides = {k: v for k, v in {"logdir": logdir, "prompts.style": prompts}.items() if v is not None}
    from lamp.config import run_config

    cfg, notes = run_config(["pretrain", *(configs or [])], config_file, ctx.args, overrides, mode="pretrain")
    if cfg.env.task != "pretrain":
        raise UsageError(f"lamp pretrain runs env.task 'pretrain', not '{cfg.env.task}'; use lamp finetune for tasks")
    run_training(cfg, "pretrain", config_summary(cfg, ["pretrain", *(configs or [])], notes))


@app.command(context_settings=CONFIG_CONTEXT, epilog=CONFIG_EPILOG)
@user_errors
def finetune(
    ctx: typer.Context,
    task: Annotated[str, typer.Option("--task", help="Downstream task, e.g. push_button.")],
    source: Annotated[
        str | None, typer.Option("--from", metavar="DIR", help="The pretraining run to start from.")
    ] = None,
    scratch: Annotated[
        bool, typer.Option("--scratch", help="No pretraining: start from a fresh agent (the baseline).")
    ] = False,
    logdir: LogdirOpt = None,
    freeze: Annotated[
        list[str] | None,
        typer.Option("--freeze", help="critic_hidden: LAMP's linear probe, pretrained output layer kept."),
    ] = None,
    reset: Annotated[
        list[str] | None, typer.Option("--reset", help="reward_head | critic_out: re-initialise it (repeatable).")
    ] = None,
    sparse: Annotated[bool, typer.Option("--sparse", help="Sparse success reward instead of shaped.")] = False,
    configs: ConfigsOpt = None,
    config_file: ConfigFileOpt = None,
) -> None:
    """Fine-tune a pretrained agent (--from DIR), or a fresh one (--scratch), on a named task with the task's own
    reward (the `finetune` block first)."""
    from envs import DOWNSTREAM_TASKS
    from lamp.config import load_saved_config, run_config
    from lamp.source import check_source, freeze_part, reset_part

    if task not in DOWNSTREAM_TASKS:
        raise UsageError(f"unknown task '{task}'; valid tasks: {', '.join(DOWNSTREAM_TASKS)}")
    if (source is None) == (not scratch):
        raise UsageError("pass --from DIR (a lamp pretrain run) or --scratch (no pretraining), exactly one of them")
    src = check_source(source) if source is not None else None
    overrides: dict[str, Any] = {"env.task": task, "finetune.source": str(src) if src else ""}
    if freeze:  # given on the command line: wins over `--finetune.freeze` in flags or a config file, else keep those
        overrides["finetune.freeze"] = list(freeze)
    if reset:
        overrides["finetune.reset"] = list(reset)
    if logdir is not None:
        overrides["logdir"] = logdir
    if sparse:
        overrides["env.reward"] = "sparse"
    base = load_saved_config(src) if src else None
    # the source's saved config is the base (keys added since take today's default); a resumed fine-tune's own
    # saved config replaces it (run_config)
    cfg, notes = run_config(
        ["finetune", *(configs or [])], config_file, ctx.args, overrides, base=base, mode="finetune"
    )
    if scratch and (cfg.finetune.freeze or cfg.finetune.reset):
        raise UsageError("--freeze/--reset act on pretrained weights; leave them out with --scratch")
    for part in cfg.finetune.freeze:
        freeze_part(None, part, check_only=True)
    for part in cfg.finetune.reset:
        reset_part(None, part, check_only=True)
    if src is not None and Path(cfg.logdir).expanduser().resolve() == src.resolve():
        raise UsageError("--logdir must differ from --from (fine-tuning writes a new run)")
    run_training(cfg, "finetune", config_summary(cfg, ["finetune", *(configs or [])], notes))


@app.command(name="eval")
@user_errors
def evaluate(
    checkpoint: Annotated[
        str, typer.Option("--checkpoint", metavar="DIR", help="A lamp run directory (or a .pt file inside one).")
    ],
    task: Annotated[
        str | None, typer.Option("--task", help="Downstream task (default: the fine-tuning run's own).")
    ] = None,
    episodes: Annotated[int, typer.Option("--episodes", help="Number of episodes.")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the first episode (then +1 each).")] = 0,
    out_dir: Annotated[
        str | None, typer.Option("--out", metavar="DIR", help="Output folder (default DIR/eval/TASK-seedS).")
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="Where the agent runs (default: the run's device), e.g. cpu.")
    ] = None,
) -> None:
    """Evaluate a checkpoint on a task: per-episode JSONL, a summary with a 95% bootstrap CI, and MP4s."""
    from lamp.evaluate import evaluate_checkpoint

    start = time.time()
    log = lambda m: out.print(m, markup=False)  # noqa: E731
    result = evaluate_checkpoint(checkpoint, task, episodes, seed, out_dir, log=log, device=device)
    low, high = result["success_ci95"]
    out.print(
        f"{result['task']}: success {result['success_mean']:.2f} (95% CI {low:.2f}-{high:.2f}) over {episodes} "
        f"episodes; return {result['return_mean']:.3g}; {time.time() - start:.0f} s",
        markup=False,
    )
    out.print(f"wrote {result['out']}/episodes.jsonl, summary.json and videos/", markup=False)


@app.command()
@user_errors
def ablate(
    ablation_file: Annotated[
        Path, typer.Argument(metavar="ABLATION_YAML", help="A grid file, or a shipped grid by name: paper, ablation.")
    ],
    logdir: Annotated[str, typer.Option("--logdir", metavar="DIR", help="Grid directory (one run per cell).")],
    parallel: Annotated[int, typer.Option("--parallel", help="Local runs at the same time.")] = 1,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", metavar="ADDR", help="Run on this Ray cluster instead.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate the file and list every run with its command; run nothing.")
    ] = False,
) -> None:
    """The paper's arms or prompt styles x seeds, each pretrain -> finetune per task; resumable; writes a summary."""
    import shlex

    from lamp.ablate import Ablation, check_local_devices, finished, plan, run_grid, shipped_grid, summarize

    ablation_file = shipped_grid(ablation_file)
    ablation = Ablation.load(ablation_file)
    if dry_run:
        jobs = plan(ablation, Path(logdir).expanduser().resolve())
        for job in jobs:
            for i, (run_dir, args) in enumerate(job.commands):
                state = " (finished: skipped)" if finished(run_dir, args) else ""
                out.print(f"{job.header(i)}{state}: lamp {shlex.join(args)}", markup=False)
        out.print(f"{ablation_file}: valid; {sum(len(j.commands) for j in jobs)} runs, nothing started", markup=False)
        return
    if not ray_address:
        check_local_devices(ablation, ablation_file)
    if parallel < 1:
        raise UsageError(f"--parallel must be at least 1, got {parallel}")
    root = Path(logdir).expanduser().resolve()  # absolute: Ray workers do not start in this folder
    from lamp.rundir import check_writable_dir

    check_writable_dir(root)
    jobs = plan(ablation, root)
    out.print(
        f"{len(jobs)} jobs ({len(ablation.variants)} arms x {len(ablation.seeds)} seeds), "
        f"{sum(len(j.commands) for j in jobs)} runs; finished runs are skipped",
        markup=False,
    )
    import contextlib
    import signal

    from lamp.lifecycle import forward_stops

    # local runs: Ctrl-C / SIGTERM reach the running runs, which save and exit (Ray handles its own tasks)
    with forward_stops() if not ray_address else contextlib.nullcontext([]) as stopped:
        results = run_grid(jobs, parallel=parallel, ray_address=ray_address)
    if stopped:
        err.print(f"stopped by {signal.Signals(stopped[0]).name}: the runs saved their checkpoints; re-run the same "
                  "command to resume", markup=False)  # fmt: skip
        raise typer.Exit(128 + stopped[0])
    failed = [r for r in results if not r["ok"]]
    paths = summarize(ablation, root)
    out.print(f"wrote {paths['csv']}, {paths['md']} and {paths['png']}", markup=False)
    if failed:
        for r in failed:
            err.print(f"error: run {r['failed']} failed with exit code {r['code']}", markup=False)
        raise typer.Exit(1)


@app.command(context_settings=CONFIG_CONTEXT, epilog=CONFIG_EPILOG)
@user_errors
def score(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="Video file, folder of frames, or .npz episode (frame 0 = initial).")],
    prompt: Annotated[list[str], typer.Option("--prompt", "-p", help="Prompt to score against (repeatable).")],
    out_dir: Annotated[Path, typer.Option("--out", metavar="DIR", help="Folder for rewards.csv and rewards.png.")],
    key: Annotated[
        str | None, typer.Option("--key", help="Array name inside an .npz episode (default: image).")
    ] = None,
    configs: ConfigsOpt = None,
    config_file: ConfigFileOpt = None,
) -> None:
    """Score a video or frame folder against prompts with the frozen video-language scorer (CSV + PNG)."""
    from lamp.build import PLUMBING_WARNING
    from lamp.config import build_config, check_device
    from lamp.scorers import check_prompts, make_scorer
    from lamp.scorers.score_tool import check_view, load_frames, score_frames, write_outputs

    cfg = build_config(configs or [], config_file, ctx.args)
    check_device("scorer.device", cfg.scorer.device, allow_auto=True)
    prompts = check_prompts(prompt)
    frames = load_frames(source, key)  # bad input fails here, before weights load or anything is written
    check_view(frames, source, int(cfg.scorer.image_size), int(cfg.scorer.resize))
    if cfg.scorer.kind == "tiny":
        err.print(f"WARNING: {PLUMBING_WARNING}", markup=False)
    scorer = make_scorer(dict(cfg.scorer))
    rewards = score_frames(scorer, frames, prompts)
    title = f"{source.name}: {scorer.kind} rewards, {len(frames)} frames"
    csv_path, png_path = write_outputs(rewards, prompts, out_dir, title)
    for i, p in enumerate(prompts):
        r = rewards[:, i]
        out.print(f"{p!r}: first {r[0]:.4g}  last {r[-1]:.4g}  min {r.min():.4g}  max {r.max():.4g}", markup=False)
    out.print(f"wrote {csv_path} and {png_path}", markup=False)


@app.command()
def doctor(
    backend: Annotated[str, typer.Option(help="Back-end to check for: metaworld (embedded) or rlbench.")] = "metaworld",
) -> None:
    """Check this machine: Python, torch, headless rendering, simulators, weights cache, disk and RAM."""
    from lamp import doctor as checks_module

    if backend not in ("metaworld", "rlbench"):
        err.print(f"error: unknown backend '{backend}'; use metaworld or rlbench", markup=False)
        raise typer.Exit(2)
    checks = checks_module.run_checks(backend)
    colors = {"OK": "green", "FAIL": "red", "NOTE": "yellow"}
    for check in checks:
        line = check.line()
        out.print(f"[{colors[check.status]}]{line[:5]}[/]{escape(line[5:])}")
    code = checks_module.exit_code(checks)
    verdict = "ready" if code == 0 else "not ready: fix the FAIL lines above"
    out.print(f"lamp {__version__}: {verdict} for the {backend} back-end")
    raise typer.Exit(code)


textures_app = typer.Typer(help="Build texture banks for domain randomisation.", no_args_is_help=True)
app.add_typer(textures_app, name="textures")


@textures_app.command("from-videos")
@user_errors
def textures_from_videos(
    video_dir: Annotated[Path, typer.Argument(help="Folder of videos (e.g. Ego4D clips).")],
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the PNG frames to (textures.dir).")],
    every: Annotated[int, typer.Option(help="Keep every N-th frame.")] = 30,
    size: Annotated[int, typer.Option(help="Side of the square PNGs in pixels.")] = 256,
) -> None:
    """Extract square frames from videos into a texture folder for `textures.dir`."""
    from envs.textures import frames_from_videos

    files = frames_from_videos(video_dir, out_dir, every=every, size=size)
    out.print(f"wrote {len(files)} frames to {out_dir}", markup=False)


def _split_configs(argv: Sequence[str]) -> list[str]:
    """Let `--configs a b` (DreamerV3 style) mean `--configs a --configs b`, which is what click understands."""
    result: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--configs" or token.startswith("--configs="):
            names = [token.split("=", 1)[1]] if "=" in token else []
            i += 1
            while i < len(argv) and not argv[i].startswith("-"):
                names.append(argv[i])
                i += 1
            for name in (n for chunk in names for n in chunk.split(",") if n):
                result += ["--configs", name]
            continue
        result.append(token)
        i += 1
    return result


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print lamp's version and exit.")] = False,
) -> None:
    if version:
        out.print(f"lamp {__version__}")
        raise typer.Exit(0)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    app(args=_split_configs(args), prog_name="lamp")


if __name__ == "__main__":
    main()
