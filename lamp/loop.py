"""The training loop: collect -> (relabel) -> replay -> train -> log -> evaluate -> save, until `run.steps`.

It receives everything it uses, built by `lamp.train`: the driver (whose episode callbacks relabel episodes into the
replay), the replay, the agent, the logger, the checkpointer and the evaluation. All step counts are env steps
(decisions); updates follow `agent.train_ratio`, replayed steps per collected step.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from lamp.atomic import atomic_write_bytes
from lamp.checkpoint import Progress
from lamp.rundir import DONE_FILE


def train_loop(
    cfg: DictConfig,
    mode: str,
    driver: Any,
    replay: Any,
    agent: Any,
    logger: Any,
    checkpointer: Any,
    relabeler: Any,
    evaluation: Any,
    stops: Any,
    console: Any,
) -> None:
    """Per step at most one metrics line (so metrics.jsonl steps strictly increase), then videos and checkpoints. The
    last step evaluates (fine-tuning), logs, films and saves, whatever the intervals."""
    progress: Progress = checkpointer.progress
    run = cfg.run
    train_metrics: dict[str, list[float]] = {}
    rates = Rates(progress)
    seconds_before, loop_start = progress.seconds, time.perf_counter()
    driver.reset(seed=cfg.seed + progress.env_steps)
    with progress_bar(mode, console, run.status_seconds) as bar:
        task = bar.add_task(mode, total=run.steps, completed=progress.env_steps, stats="")
        if mode == "finetune" and progress.last_eval < 0:
            evaluation(progress)  # the pretrained agent before any fine-tuning, at step 0
            logger.write(progress.env_steps)
        while progress.env_steps < run.steps:
            stops.check()
            prefill = progress.env_steps < run.prefill
            n = driver.step(policy(agent, relabeler.rng, cfg.agent.action_dim, prefill))
            progress.env_steps += n
            train_updates(agent, replay, progress, cfg, n, stops, train_metrics)
            progress.seconds = seconds_before + time.perf_counter() - loop_start
            last = progress.env_steps >= run.steps
            evaluate = mode == "finetune" and (last or progress.env_steps - progress.last_eval >= run.eval_every)
            if evaluate:
                evaluation(progress)
            if evaluate or last or progress.env_steps - progress.last_log >= run.log_every:
                line = write_metrics(
                    logger, progress, [relabeler.metrics, train_metrics], rates.measure(), cfg, agent, driver
                )
                rates.remember(line)
            if last or progress.env_steps - progress.last_video >= run.video_every:
                write_videos(logger, progress, relabeler, agent, replay)
            save_seconds = run.save_minutes * 60
            if (
                last
                or progress.env_steps - progress.last_save >= run.save_every
                or (save_seconds > 0 and checkpointer.seconds_since_save() >= save_seconds)
            ):
                checkpointer.save()
            bar.update(task, completed=progress.env_steps, stats=rates.status(progress, full=not console.is_terminal))
    if progress.last_save != progress.env_steps:  # e.g. resumed at the last step, killed before done.json
        checkpointer.save()
    done = {
        "env_steps": progress.env_steps,
        "episodes": progress.episodes,
        "updates": progress.updates,
        "eval_success": None if math.isnan(progress.eval_success) else progress.eval_success,
    }
    atomic_write_bytes(checkpointer.run_dir / DONE_FILE, json.dumps(done, indent=2).encode())


def policy(agent: Any, rng: np.random.Generator, action_dim: int, prefill: bool) -> Callable:
    """The acting policy: uniform in [-1, 1] during prefill (the original sampled from +-3 cm bounds: ~1 mm moves),
    then the agent's sampled training policy."""

    def act(obs: dict[str, np.ndarray], state: Any) -> tuple[np.ndarray, Any]:
        if prefill:
            return rng.uniform(-1, 1, (len(obs["is_first"]), action_dim)).astype(np.float32), state
        return agent.policy(obs, state, mode="train")

    return act


def train_updates(
    agent: Any,
    replay: Any,
    progress: Progress,
    cfg: DictConfig,
    env_steps: int,
    stops: Any,
    metrics: dict[str, list[float]],
) -> None:
    """The updates that `env_steps` new env steps pay for: `train_ratio` replayed steps per env step, carried over as
    fractional credit; none during prefill or before the replay holds one window. A requested stop ends them early."""
    agent_cfg = cfg.agent
    if progress.env_steps < cfg.run.prefill or len(replay) < agent_cfg.batch_length:
        return
    progress.train_credit += env_steps * agent_cfg.train_ratio / (agent_cfg.batch_size * agent_cfg.batch_length)
    # on a GPU the next batch's copy overlaps the current step (same batches, same order); on CPU there is no copy
    ahead = agent.device.type == "cuda"

    def sample() -> dict[str, np.ndarray]:
        return agent.prefetch(replay.sample(agent_cfg.batch_size, agent_cfg.batch_length))

    pending = None
    while progress.train_credit >= 1.0 and stops.requested is None:
        progress.train_credit -= 1.0
        batch = pending if pending is not None else sample()
        pending = sample() if ahead and progress.train_credit >= 1.0 else None
        for key, value in agent.train_step(batch).items():
            metrics.setdefault(f"train/{key}", []).append(value)
        progress.updates += 1


def write_metrics(
    logger: Any,
    progress: Progress,
    sources: list[dict[str, list[float]]],
    fps: dict[str, float],
    cfg: DictConfig,
    agent: Any,
    driver: Any,
) -> dict[str, Any]:
    """One metrics line at this env step: the means of what was collected since the last line, rates, counters."""
    for metrics in sources:
        for key, values in metrics.items():
            if values:
                logger.scalar(key, float(torch.stack([torch.as_tensor(v, dtype=torch.float32) for v in values]).mean()))
        metrics.clear()
    logger.scalars(fps, prefix="perf/")
    logger.scalar("progress/episodes", progress.episodes)
    logger.scalar("progress/updates", progress.updates)
    logger.scalar("progress/frames", progress.env_steps * cfg.env.action_repeat)  # physics frames
    logger.scalar("progress/hours", progress.seconds / 3600)
    logger.scalar("progress/dropped_episodes", getattr(driver.envs, "dropped_episodes", 0))
    logger.scalar("progress/skipped_updates", agent.counters.get("skipped", 0))
    progress.last_log = progress.env_steps
    return logger.write(progress.env_steps)


def write_videos(logger: Any, progress: Progress, relabeler: Any, agent: Any, replay: Any) -> None:
    """The latest episode with its reward curve, the top-reward frames per prompt, the world model's open loop; the
    videos enlarged and labelled (`labelled`) so that a person can read them."""
    from lamp.visualize import OPEN_LOOP_CONTEXT, labelled, open_loop_video, reward_strip_video

    step, episode = progress.env_steps, relabeler.latest_episode
    if episode is not None:
        frames = reward_strip_video(episode["image"], episode["reward"])
        low, high = float(episode["reward"].min()), float(episode["reward"].max())
        title = "front camera" + (f": '{episode['prompt']}'" if episode["prompt"] else "")
        footer = f"reward min {low:.4g} max {high:.4g}"  # the strip's axis (min-max scaled; red marks this frame)
        logger.video("episode/reward_curve", labelled(frames, [title], footer=footer), step)
    for noun, grid in relabeler.top_frames.grids().items():  # one tag per object class: a bounded tag count
        logger.image(f"top_frames/{noun.replace(' ', '_')}", grid, step)
    video = open_loop_video(agent, replay)
    if video is not None:
        panes = ["truth (replay)", f"model: open loop after {OPEN_LOOP_CONTEXT} frames", "|error|"]
        logger.video("world_model/open_loop", labelled(video, panes), step)
    progress.last_video = step


class Rates:
    """Env steps and updates per second since the last metrics line, and the progress bar's status text."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.time, self.steps, self.updates = time.perf_counter(), progress.env_steps, progress.updates
        self.fps = {"env_fps": 0.0, "train_fps": 0.0}
        self.ratio: float | None = None  # intrinsic/extrinsic reward std in imagination: which stream drives behaviour
        self.latest: dict[str, float] = {}  # the last metrics line's LOG_LINE_KEYS

    def measure(self) -> dict[str, float]:
        now, progress = time.perf_counter(), self.progress
        dt = max(now - self.time, 1e-9)
        self.fps = {
            "env_fps": (progress.env_steps - self.steps) / dt,
            "train_fps": (progress.updates - self.updates) / dt,
        }
        self.time, self.steps, self.updates = now, progress.env_steps, progress.updates
        return self.fps

    def remember(self, line: dict[str, Any]) -> None:
        ratio = line.get("train/behavior/intr_extr_ratio")
        if isinstance(ratio, float):  # a non-finite value is written as null
            self.ratio = ratio
        self.latest = {k: v for k, v in line.items() if k in LOG_LINE_KEYS and isinstance(v, float)}

    def status(self, progress: Progress, full: bool = False) -> str:
        """The bar's text; `full` adds the last episode return and the main losses (the plain lines of a log file)."""
        text = f"ep {progress.episodes:,} | env {self.fps['env_fps']:.0f}/s | upd {self.fps['train_fps']:.1f}/s"
        if not math.isnan(progress.eval_success):
            text += f" eval {progress.eval_success:.0%}"
        if self.ratio is not None:
            text += f" | intr/extr {self.ratio:.2g}"
        if full and self.latest:
            text += " | " + " ".join(f"{LOG_LINE_KEYS[k]} {v:.4g}" for k, v in self.latest.items())
        return text


# metrics a plain progress line shows, by their short names
LOG_LINE_KEYS = {
    "episode/return": "return",
    "train/loss/model": "loss model",
    "train/loss/actor": "actor",
    "train/loss/critic": "critic",
}


class PlainProgress:
    """The progress bar's stand-in when stdout is not a terminal (nohup, Slurm, `lamp ablate`'s run logs): one
    unwrapped line every `seconds` and one at the end, instead of a bar that a log file only gets when it finishes."""

    def __init__(self, mode: str, console: Any, seconds: float) -> None:
        self.mode, self.console, self.seconds = mode, console, seconds
        self.total = self.completed = self.first = 0
        self.stats = ""
        self.start = self.printed = time.perf_counter()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.print_line()

    def add_task(self, name: str, total: int, completed: int, stats: str) -> int:
        self.total, self.completed, self.first, self.stats = total, completed, completed, stats
        self.start = self.printed = time.perf_counter()
        return 0

    def update(self, task: int, completed: int, stats: str) -> None:
        self.completed, self.stats = completed, stats
        if time.perf_counter() - self.printed >= self.seconds:
            self.print_line()

    def print_line(self) -> None:
        self.printed = now = time.perf_counter()
        elapsed, done = now - self.start, self.completed - self.first
        left = (self.total - self.completed) * elapsed / done if done > 0 else math.nan
        eta = clock(left) if math.isfinite(left) else "-"
        share = self.completed / max(self.total, 1)
        steps = f"{self.completed:,}/{self.total:,} steps ({share:.0%})"
        self.console.out(f"{self.mode} {steps} | {self.stats} | {clock(elapsed)} ETA {eta}", highlight=False)


def clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def progress_bar(mode: str, console: Any, plain_seconds: float = 30.0) -> Any:
    """A rich progress bar on a terminal; plain lines every `plain_seconds` otherwise (PlainProgress)."""
    if not console.is_terminal:
        return PlainProgress(mode, console, plain_seconds)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn(f"[bold]{mode}[/]"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} steps"),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        refresh_per_second=2,
    )
