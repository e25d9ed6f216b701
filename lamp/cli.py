"""The `lamp` command: pretrain, finetune, eval, ablate, score, doctor.

Config flags follow danijar/dreamerv3: `--configs a b` picks named blocks of lamp/configs.yaml in order, and any
`--section.key value` flag overrides one key. Bad input prints one `error:` line and exits 2.
"""

from __future__ import annotations

import functools
import sys
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
    "Any other flag overrides one config key with a dotted path, e.g. --agent.lr 3e-4 --run.steps 1e5 "
    "(see lamp/configs.yaml for every key). Re-running the same command with the same --logdir resumes."
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


def not_implemented(command: str, issue: str) -> None:
    """Commands whose feature has not landed say so plainly instead of pretending to run."""
    raise UsageError(f"'lamp {command}' is not implemented yet ({issue}); see the README for what works today")


def resolve_config(
    configs: Sequence[str] | None, config_file: Path | None, logdir: str | None, extra: Sequence[str]
) -> Any:
    """Build, validate and print the run's config; nothing is written before this returns."""
    from lamp.config import build_config, to_yaml

    overrides = {"logdir": logdir} if logdir is not None else None
    cfg = build_config(configs or [], config_file, extra, overrides)
    out.rule("resolved config")
    out.print(to_yaml(cfg).rstrip(), markup=False)
    out.rule()
    return cfg


@app.command(context_settings=CONFIG_CONTEXT, epilog=CONFIG_EPILOG)
@user_errors
def pretrain(
    ctx: typer.Context, configs: ConfigsOpt = None, config_file: ConfigFileOpt = None, logdir: LogdirOpt = None
) -> None:
    """Pretrain an agent in randomised scenes with language-model rewards blended with a novelty bonus."""
    cfg = resolve_config(configs, config_file, logdir, ctx.args)
    if not cfg.logdir:
        raise UsageError("no run directory given; pass --logdir DIR")
    not_implemented("pretrain", "issue #6, workflows")


@app.command(context_settings=CONFIG_CONTEXT, epilog=CONFIG_EPILOG)
@user_errors
def finetune(ctx: typer.Context) -> None:
    """Fine-tune a pretrained agent on a named downstream task."""
    not_implemented("finetune", "issue #6, workflows")


@app.command(name="eval", context_settings=CONFIG_CONTEXT)
@user_errors
def evaluate(ctx: typer.Context) -> None:
    """Evaluate a checkpoint on a task: per-episode JSONL, a summary with a 95% CI, and videos."""
    not_implemented("eval", "issue #6, workflows")


@app.command(context_settings=CONFIG_CONTEXT)
@user_errors
def ablate(ctx: typer.Context) -> None:
    """Run a prompt-style ablation grid (styles x seeds x tasks) from a YAML file."""
    not_implemented("ablate", "issue #6, workflows")


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
    from lamp.config import build_config
    from lamp.scorers import check_prompts, make_scorer
    from lamp.scorers.score_tool import load_frames, score_frames, write_outputs

    cfg = build_config(configs or [], config_file, ctx.args)
    prompts = check_prompts(prompt)
    frames = load_frames(source, key)  # bad input fails here, before weights load or anything is written
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
