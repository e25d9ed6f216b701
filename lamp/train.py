"""The training jobs: `lamp pretrain` (language reward + novelty in randomised scenes) and `lamp finetune` (a task).

`run_job` checks the input, builds the parts and hands them to the loop (`lamp.loop`): env -> driver -> (the scorer
relabels each finished episode, `lamp.relabel`) -> replay -> agent. Everything a run needs to continue is in
LOGDIR/checkpoints/latest.pt plus LOGDIR/replay/ (`lamp.checkpoint`), so re-running the same command resumes it;
Ctrl-C and SIGTERM stop at the end of the current step, save a checkpoint and exit 130 / 143 (`lamp.lifecycle`).
Nothing is written to LOGDIR until the config, prompts, devices, env, scorer, disk space, the lock and (for
fine-tuning) the source run have all been checked. A resume first puts the folder back to the checkpoint's step:
metrics, TensorBoard and replay lose what came after it (that is done again), and temp files of writes cut by a kill
are deleted.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from lamp.agent.agent import BLENDS, REPVAL_WITH_EXPLORER, TrainingStopped
from lamp.agent.behavior import ACTOR_GRADS
from lamp.agent.explorer import ACTS as ENSEMBLE_ACTS
from lamp.agent.nets import TWOHOT_SPACES
from lamp.agent.speed import PRECISION_VALUES, choose_compile, learner_threads, updates_to_go, use_compile_cache
from lamp.build import instruction_embedding, lang_dim, make_envs, make_scorer, obs_space, task_instruction
from lamp.config import check_device, save_config
from lamp.errors import UsageError
from lamp.lifecycle import Interrupted, Stops, full_disk_is_one_line
from lamp.rundir import DONE_FILE, LATEST, RunLock, check_writable_dir, find_checkpoint, tidy
from lamp.source import check_architecture, check_language, freeze_part, load_source, source_checkpoint


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


@dataclass
class Checked:
    """What the input check found: the scorer, the prompt style, and the checkpoint to start from."""

    scorer: Any = None
    style: Any = None
    resume_path: Path | None = None  # latest.pt, or previous.pt when latest.pt cannot be read
    resume_step: int = -1  # the checkpoint's env step; -1 = a fresh start
    source_path: Path | None = None  # fine-tuning: the source run's checkpoint


@dataclass
class Parts:
    """What a run is built from; `close` releases whatever was built, also after a failure half-way."""

    envs: Any = None
    agent: Any = None
    replay: Any = None
    logger: Any = None
    driver: Any = None
    relabeler: Any = None
    checkpointer: Any = None
    evaluation: Any = None

    def close(self) -> None:
        for envs in (self.envs, self.evaluation):
            if envs is not None:
                envs.close()
        if self.logger is not None:
            with contextlib.suppress(OSError):  # a full disk must not hide the real error behind a second one
                self.logger.close()


def check_inputs(cfg: DictConfig, mode: str, logdir: Path, lock: RunLock, log: Any) -> Checked:
    """Everything that can be wrong with the user's input is found here, before LOGDIR is touched."""
    if not cfg.logdir:
        raise UsageError("no run directory given; pass --logdir DIR")
    check_writable_dir(logdir)
    if cfg.replay.directory:
        check_writable_dir(Path(cfg.replay.directory).expanduser(), "replay.directory")
    check_device("device", cfg.device)
    check_device("scorer.device", cfg.scorer.device, allow_auto=True)
    lock.check_free()  # a live run on this folder: refuse now, before minutes of set-up
    from envs import DOWNSTREAM_TASKS
    from envs.common import check_render_size

    checked = Checked()
    if mode == "pretrain":
        from envs import pretrain_noun_classes
        from lamp.prompts import PromptStyle

        checked.style = PromptStyle.load(cfg.prompts.style, cfg.prompts.nouns, cfg.prompts.noun_fallback)
        classes = pretrain_noun_classes(cfg.env.backend, cfg.env.pool, list(cfg.rlbench.objects))
        log(checked.style.check_coverage(classes))
    elif cfg.env.task not in DOWNSTREAM_TASKS:
        raise UsageError(f"unknown task '{cfg.env.task}'; valid tasks: {', '.join(DOWNSTREAM_TASKS)}")
    for key, value, valid in (
        ("agent.actor_grad", cfg.agent.actor_grad, ACTOR_GRADS),
        ("agent.expl.blend", cfg.agent.expl.blend, BLENDS),
        ("agent.expl.act", cfg.agent.expl.act, ENSEMBLE_ACTS),
        ("agent.twohot", cfg.agent.twohot, TWOHOT_SPACES),
        ("agent.precision", cfg.agent.precision, PRECISION_VALUES),
    ):
        if value not in valid:
            raise UsageError(f"{key} is '{value}'; valid: {', '.join(valid)}")
    if cfg.env.backend != "metaworld" and cfg.env.action_repeat != 1:
        raise UsageError(
            f"env.action_repeat is {cfg.env.action_repeat} but only the metaworld back-end repeats actions "
            f"({cfg.env.backend}'s steps are already {cfg.env.action_scale * 100:g} cm path moves); set it to 1"
        )
    try:
        check_render_size(cfg.env.size, cfg.scorer.image_size)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if cfg.agent.repval > 0 and cfg.agent.expl.intr_scale > 0:
        raise UsageError(REPVAL_WITH_EXPLORER)
    checked.scorer = make_scorer(cfg, log)
    if mode == "pretrain" and checked.scorer is None and cfg.agent.expl.extr_scale != 0:
        raise UsageError(
            f"scorer.kind is none (no language reward) but agent.expl.extr_scale is {cfg.agent.expl.extr_scale}; "
            "set --agent.expl.extr_scale 0 (or --configs p2e) for Plan2Explore-only pretraining"
        )
    found = find_checkpoint(logdir, log) if logdir.is_dir() else None
    if found is not None:
        path, ckpt = found
        if not (logdir / "config.yaml").is_file():
            raise UsageError(f"{logdir} has a checkpoint but no config.yaml; use a fresh --logdir")
        check_architecture(path, cfg, "resume it with the same config blocks, or use a new --logdir", ckpt)
        checked.resume_path, checked.resume_step = path, int(ckpt["extra"]["progress"]["env_steps"])
    elif mode == "finetune" and cfg.finetune.source:  # "" = from scratch: a fresh agent
        path, ckpt = source_checkpoint(cfg.finetune.source, log)
        check_architecture(path, cfg, "fine-tune with the same size block as the pretraining run", ckpt)
        check_language(path, checked.scorer is not None, ckpt)
        checked.source_path = path
    return checked


def decide_compile(cfg: DictConfig, start: int, log: Any) -> bool:
    """agent.compile for this run (auto: by the updates still to go), said in the log; a compiled run gets the
    persistent inductor cache."""
    a = cfg.agent
    updates = updates_to_go(cfg.run.steps, start, cfg.run.prefill, a.train_ratio, a.batch_size, a.batch_length)
    choice = choose_compile(a.compile, updates, cfg.run.compile_min_updates)
    where = f"; cache {use_compile_cache(log)}" if choice.on else ""
    log(f"agent step: {'compiled' if choice.on else 'eager'} ({choice.reason}{where})")
    return choice.on


def build(cfg: DictConfig, mode: str, logdir: Path, lock: RunLock, checked: Checked, parts: Parts, log: Any) -> None:
    """Make the env, agent, replay, logger, driver, relabeler, checkpointer and evaluation into `parts`; resume the
    checkpoint or load the fine-tuning source. LOGDIR is written only after the last check (the disk budget)."""
    from lamp.agent.agent import Agent
    from lamp.agent.replay import Replay, step_spec, storage_budget
    from lamp.checkpoint import Checkpointer, Progress
    from lamp.driver import Driver
    from lamp.evaluate import TrainingEvaluation
    from lamp.logger import Logger
    from lamp.relabel import Relabeler

    scorer = checked.scorer
    seed_everything(cfg.seed, cfg.deterministic)
    torch.set_num_threads(learner_threads(cfg.threads))  # threads: 0 = the cores this process may use
    # a missing simulator fails here, before LOGDIR is written
    parts.envs = make_envs(cfg, seed=cfg.seed, score_view=mode == "pretrain")
    space = obs_space(parts.envs.single_observation_space, lang_dim(scorer))
    compiled = decide_compile(cfg, checked.resume_step or 0, log)
    agent = parts.agent = Agent(OmegaConf.merge(cfg.agent, {"compile": compiled}), space, device=cfg.device)
    log(f"agent: {agent.precision.name}, {torch.get_num_threads()} torch threads ({agent.precision.reason})")
    replay_cfg = OmegaConf.to_container(cfg.replay)
    replay_cfg["directory"] = replay_cfg["directory"] or str(logdir / "replay")
    spec = step_spec(space, cfg.agent.action_dim)
    storage_budget(spec, replay_cfg, model_bytes=agent.model_bytes(), steps=cfg.run.steps, print_fn=log)
    # ---- all checked: from here on LOGDIR is written, and only while this run holds its lock
    logdir.mkdir(parents=True, exist_ok=True)
    lock.acquire(log)
    tidy(logdir, Path(replay_cfg["directory"]), checked.resume_path, log)
    save_config(cfg, logdir)
    parts.logger = Logger(logdir, keep_until=checked.resume_step)
    replay = parts.replay = Replay(replay_cfg, space, cfg.agent.action_dim, seed=cfg.seed)
    lang = None
    if mode == "finetune":
        instruction = task_instruction(cfg)
        lang = instruction_embedding(scorer, instruction)
        said = "without language" if lang is None else f"with instruction '{instruction}'"
        log(f"fine-tuning on '{cfg.env.task}' {said}")
    progress, rng = Progress(), np.random.default_rng(cfg.seed)  # rng: prompts and prefill actions, checkpointed
    parts.relabeler = Relabeler(mode, replay, progress, scorer, checked.style, lang, rng)
    parts.driver = Driver(parts.envs, parts.relabeler.begin)
    parts.driver.on_episode(parts.relabeler.end)
    if mode == "pretrain" and scorer is not None and scorer.text_batch_dependent():
        prompts = checked.style.expansions()
        log(
            f"embedding all {len(prompts):,} prompts of style '{checked.style.name}' in one padded batch "
            "(scorer.pooling: r3m, as the original did at start-up)"
        )
        scorer.embed_prompts(prompts)
    parts.checkpointer = Checkpointer(logdir, agent, replay, progress, rng, scorer)
    parts.evaluation = TrainingEvaluation(cfg, agent, lang, parts.logger)
    if checked.resume_path is not None:
        parts.checkpointer.load(checked.resume_path, log)
        for part in cfg.finetune.freeze if mode == "finetune" else ():
            freeze_part(agent, part)  # requires_grad is not in the checkpoint
    else:
        dropped = replay.truncate(0)  # steps of an attempt that died before its first checkpoint
        if dropped:
            log(f"replay: dropped {dropped:,} steps of an earlier attempt that saved no checkpoint")
        if mode == "finetune":
            load_source(cfg, agent, checked.source_path, logdir, log)


def loop_with_stops(cfg: DictConfig, mode: str, parts: Parts, stops: Stops, console: Any, log: Any) -> None:
    """The loop, with its stops: a first Ctrl-C/SIGTERM (graceful) and NaN losses save; a second signal does not."""
    from lamp.loop import train_loop

    checkpointer, progress = parts.checkpointer, parts.checkpointer.progress
    stops.in_loop = True
    try:
        train_loop(
            cfg,
            mode,
            parts.driver,
            parts.replay,
            parts.agent,
            parts.logger,
            checkpointer,
            parts.relabeler,
            parts.evaluation,
            stops,
            console,
        )
    except KeyboardInterrupt as e:
        stops.in_loop = False  # from here a signal stops at once, even in the middle of this save
        if isinstance(e, Interrupted) and not e.graceful:
            log(f"stopped at once, without a checkpoint of this moment; the last one is {checkpointer.path}")
            raise
        if progress.last_save != progress.env_steps:
            checkpointer.save()  # a plain KeyboardInterrupt (no handler installed) keeps the old behaviour: save anyway
        log(
            f"interrupted at env step {progress.env_steps:,}: checkpoint saved to "
            f"{checkpointer.path}; re-run the same command to resume"
        )
        raise
    except TrainingStopped:
        stops.in_loop = False
        checkpointer.save()  # bad updates were never applied, so the saved weights are the last good ones
        raise
    finally:
        stops.in_loop = False


def run_job(cfg: DictConfig, mode: str, console: Any = None, intro: Sequence[str] = ()) -> dict[str, Any]:
    """check -> build -> loop. Ctrl-C and SIGTERM save a checkpoint (Interrupted); a full disk is DiskFull. `intro`
    (the config summary) is printed once the input is checked, never above an error about it."""
    from rich.console import Console

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    console = console or Console(highlight=False, soft_wrap=True)  # a log file gets whole lines, never wrapped

    def log(message: str) -> None:
        console.print(message, markup=False)

    logdir = Path(cfg.logdir).expanduser()
    lock, stops, parts = RunLock(logdir), Stops(log), Parts()
    with stops.installed():
        try:
            with full_disk_is_one_line(logdir, logdir / LATEST, passthrough=(TrainingStopped,)):
                checked = check_inputs(cfg, mode, logdir, lock, log)
                for line in intro:
                    log(line)
                build(cfg, mode, logdir, lock, checked, parts, log)
                steps = parts.checkpointer.progress.env_steps
                if (logdir / DONE_FILE).is_file() and steps >= cfg.run.steps:
                    log(f"{logdir} is already finished ({steps:,} steps); nothing to do")
                else:
                    loop_with_stops(cfg, mode, parts, stops, console, log)
        finally:
            try:
                parts.close()
            finally:
                lock.release()
    return {
        "logdir": logdir,
        "checkpoint": logdir / LATEST,
        "videos": sorted((logdir / "videos").glob("*.mp4")),
        "metrics": logdir / "metrics.jsonl",
    }
