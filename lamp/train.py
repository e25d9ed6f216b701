"""The training jobs: `lamp pretrain` (language reward + novelty in randomised scenes) and `lamp finetune` (a task).

Data flows one way: env -> driver -> (scorer relabels the finished episode) -> replay -> agent. Everything a run needs
to continue is in LOGDIR/checkpoints/latest.pt plus LOGDIR/replay/, so re-running the same command resumes it; Ctrl-C
and SIGTERM stop at the end of the current step, save a checkpoint and exit (130 / 143). Nothing is written to LOGDIR
until the config, prompts, devices, env, scorer, disk space, the lock and (for fine-tuning) the source run have all been
checked. A resume first puts the folder back to the checkpoint's step: metrics, TensorBoard and replay lose what came
after it (that is done again), and temp files of writes cut by a kill are deleted.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import random
import shutil
import signal
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from time import monotonic  # the clock of time-based checkpoints
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from lamp.agent.agent import BLENDS, REPVAL_WITH_EXPLORER, TrainingStopped
from lamp.agent.behavior import ACTOR_GRADS
from lamp.agent.nets import TWOHOT_SPACES
from lamp.agent.speed import PRECISION_VALUES, learner_threads
from lamp.atomic import atomic_copy, atomic_write_bytes, clean_temp_files
from lamp.build import (
    CHECKPOINT,
    instruction_embedding,
    lang_dim,
    make_envs,
    make_scorer,
    obs_space,
    task_instruction,
)
from lamp.config import check_device, save_config, to_yaml
from lamp.errors import UsageError
from lamp.rundir import PREVIOUS, RunLock, check_writable_dir, find_checkpoint, read_checkpoint

DONE_FILE = "done.json"
LOW_DISK_BYTES = 16 * 2**20  # a write that fails with less free space than this is reported as a full disk


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM. `graceful`: raised by the loop between two steps, so the state is consistent and a
    checkpoint is saved; otherwise (a second signal, or one before training started) the run stops where it is."""

    def __init__(self, signum: int, graceful: bool = False) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum, self.graceful = signum, graceful


class DiskFull(RuntimeError):
    """The disk filled up while the run was writing; the last good checkpoint is intact (every write is atomic)."""


def config_hash(cfg: DictConfig) -> str:
    """A short fingerprint of a resolved config (recorded by fine-tuning runs for their source)."""
    return hashlib.sha256(to_yaml(cfg).encode()).hexdigest()[:12]


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


@dataclass
class Progress:
    """Counters saved in every checkpoint so a resumed run continues where it stopped."""

    env_steps: int = 0
    episodes: int = 0
    updates: int = 0
    train_credit: float = 0.0
    last_log: int = 0
    last_save: int = 0
    last_video: int = 0
    last_eval: int = -1
    eval_success: float = float("nan")
    seconds: float = 0.0  # wall-clock seconds in the loop (collection, training, evaluations), summed over resumes


# ------------------------------------------------------------------------------------------------------ the job
class Run:
    """One pretraining or fine-tuning run in LOGDIR (see the module docstring)."""

    def __init__(self, cfg: DictConfig, mode: str, console: Any = None) -> None:
        from rich.console import Console

        self.cfg, self.mode = cfg, mode
        self.console = console or Console(highlight=False)
        self.logdir = Path(cfg.logdir).expanduser()
        self.ckpt_path = self.logdir / CHECKPOINT
        self.rng = np.random.default_rng(cfg.seed)
        self.progress = Progress()
        self.metrics: dict[str, list[float]] = defaultdict(list)
        self.latest_episode: dict[str, Any] | None = None
        self.lock = RunLock(self.logdir)
        self.resume_path: Path | None = None  # latest.pt, or previous.pt when latest.pt cannot be read
        self.resume_step = -1  # the checkpoint's env step; -1 = a fresh start
        self.stop_signal: int | None = None  # set by SIGINT/SIGTERM during the loop: stop after the current step
        self.in_loop = False
        self.last_save_time = monotonic()

    def log(self, message: str) -> None:
        self.console.print(message, markup=False)

    # ---------------------------------------------------------------------------------------------------- set-up
    def validate(self) -> None:
        """Everything that can be wrong with the user's input is found here, before LOGDIR is touched."""
        cfg = self.cfg
        if not cfg.logdir:
            raise UsageError("no run directory given; pass --logdir DIR")
        check_writable_dir(self.logdir)
        if cfg.replay.directory:
            check_writable_dir(Path(cfg.replay.directory).expanduser(), "replay.directory")
        check_device("device", cfg.device)
        check_device("scorer.device", cfg.scorer.device, allow_auto=True)
        self.lock.check_free()  # a live run on this folder: refuse now, before minutes of set-up
        from envs import DOWNSTREAM_TASKS

        if self.mode == "pretrain":
            from lamp.prompts import PromptStyle

            self.style = PromptStyle.load(cfg.prompts.style)
        elif cfg.env.task not in DOWNSTREAM_TASKS:
            raise UsageError(f"unknown task '{cfg.env.task}'; valid tasks: {', '.join(DOWNSTREAM_TASKS)}")
        if cfg.agent.actor_grad not in ACTOR_GRADS:
            raise UsageError(f"agent.actor_grad is '{cfg.agent.actor_grad}'; valid: {', '.join(ACTOR_GRADS)}")
        if cfg.env.backend != "metaworld" and cfg.env.action_repeat != 1:
            raise UsageError(
                f"env.action_repeat is {cfg.env.action_repeat} but only the metaworld back-end repeats actions "
                f"({cfg.env.backend}'s steps are already {cfg.env.action_scale * 100:g} cm path moves); set it to 1"
            )
        from envs.common import check_render_size

        try:
            check_render_size(cfg.env.size, cfg.scorer.image_size)
        except ValueError as err:
            raise UsageError(str(err)) from None
        if cfg.agent.expl.blend not in BLENDS:
            raise UsageError(f"agent.expl.blend is '{cfg.agent.expl.blend}'; valid: {', '.join(BLENDS)}")
        if cfg.agent.twohot not in TWOHOT_SPACES:
            raise UsageError(f"agent.twohot is '{cfg.agent.twohot}'; valid: {', '.join(TWOHOT_SPACES)}")
        if cfg.agent.repval > 0 and cfg.agent.expl.intr_scale > 0:
            raise UsageError(REPVAL_WITH_EXPLORER)
        if cfg.agent.precision not in PRECISION_VALUES:
            raise UsageError(f"agent.precision is '{cfg.agent.precision}'; valid: {', '.join(PRECISION_VALUES)}")
        self.scorer = make_scorer(cfg, self.log)
        if self.mode == "pretrain" and self.scorer is None and cfg.agent.expl.extr_scale != 0:
            raise UsageError(
                f"scorer.kind is none (no language reward) but agent.expl.extr_scale is {cfg.agent.expl.extr_scale}; "
                "set --agent.expl.extr_scale 0 (or --configs p2e) for Plan2Explore-only pretraining"
            )
        found = find_checkpoint(self.logdir, self.log) if self.logdir.is_dir() else None
        if found is not None:
            path, ckpt = found
            if not (self.logdir / "config.yaml").is_file():
                raise UsageError(f"{self.logdir} has a checkpoint but no config.yaml; use a fresh --logdir")
            check_architecture(path, cfg, "resume it with the same config blocks, or use a new --logdir", ckpt)
            self.resume_path = path
            self.resume_step = int(ckpt["extra"]["progress"]["env_steps"])
        elif self.mode == "finetune" and cfg.finetune.source:  # "" = from scratch: a fresh agent
            path, ckpt = source_checkpoint(cfg.finetune.source, self.log)
            check_architecture(path, cfg, "fine-tune with the same size block as the pretraining run", ckpt)
            check_language(path, self.scorer is not None, ckpt)
            self.source_path = path

    def setup(self) -> None:
        cfg = self.cfg
        seed_everything(cfg.seed, cfg.deterministic)
        torch.set_num_threads(learner_threads(cfg.threads))  # threads: 0 = the cores this process may use
        # a missing simulator fails here, before LOGDIR is written
        self.envs = make_envs(cfg, seed=cfg.seed, score_view=self.mode == "pretrain")
        self.obs_space = obs_space(self.envs.single_observation_space, lang_dim(self.scorer))
        from lamp.agent.agent import Agent
        from lamp.agent.replay import Replay, step_spec, storage_budget

        self.agent = Agent(cfg.agent, self.obs_space, device=cfg.device)
        precision = self.agent.precision
        self.log(f"agent: {precision.name}, {torch.get_num_threads()} torch threads ({precision.reason})")
        replay_cfg = OmegaConf.to_container(cfg.replay)
        replay_cfg["directory"] = replay_cfg["directory"] or str(self.logdir / "replay")
        model_bytes = self.agent.model_bytes()  # parameters, buffers and Adam moments
        spec = step_spec(self.obs_space, cfg.agent.action_dim)
        storage_budget(spec, replay_cfg, model_bytes=model_bytes, steps=cfg.run.steps, print_fn=self.log)
        # ---- all checked: from here on LOGDIR is written, and only while this run holds its lock
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.lock.acquire(self.log)
        self.tidy(Path(replay_cfg["directory"]))
        save_config(cfg, self.logdir)
        from lamp.logger import Logger

        self.logger = Logger(self.logdir, keep_until=self.resume_step)
        self.replay = Replay(replay_cfg, self.obs_space, cfg.agent.action_dim, seed=cfg.seed)
        from lamp.driver import Driver

        self.driver = Driver(self.envs, self.begin_episode)
        self.driver.on_episode(self.end_episode)
        if self.mode == "pretrain" and self.scorer is not None and self.scorer.text_batch_dependent():
            prompts = self.style.expansions()
            self.log(
                f"embedding all {len(prompts):,} prompts of style '{self.style.name}' in one padded batch "
                "(scorer.pooling: r3m, as the original did at start-up)"
            )
            self.scorer.embed_prompts(prompts)
        if self.mode == "finetune":
            instruction = task_instruction(self.cfg)
            self.lang_fixed = instruction_embedding(self.scorer, instruction)
            said = "without language" if self.lang_fixed is None else f"with instruction '{instruction}'"
            self.log(f"fine-tuning on '{cfg.env.task}' {said}")
        if self.resume_path is not None:
            self.resume()
            for part in cfg.finetune.freeze if self.mode == "finetune" else ():
                freeze_part(self.agent, part, reinit=False)  # requires_grad is not in the checkpoint
        else:
            dropped = self.replay.truncate(0)  # steps of an attempt that died before its first checkpoint
            if dropped:
                self.log(f"replay: dropped {dropped:,} steps of an earlier attempt that saved no checkpoint")
            if self.mode == "finetune":
                self.load_source()
        from lamp.visualize import TopFrames

        self.top_frames = TopFrames(k=8)
        self.last_save_time = monotonic()

    def tidy(self, replay_dir: Path) -> None:
        """Delete temp files of writes that a kill cut short, and set an unreadable latest.pt aside (resuming from
        previous.pt must not rotate the broken file into previous.pt on the next save)."""
        removed = clean_temp_files(self.logdir)
        if replay_dir.is_dir() and not replay_dir.resolve().is_relative_to(self.logdir.resolve()):
            removed += clean_temp_files(replay_dir)
        if removed:
            self.log(f"removed {len(removed)} temp file(s) of interrupted writes (e.g. {removed[0].name})")
        if self.resume_path is not None and self.resume_path != self.ckpt_path and self.ckpt_path.exists():
            aside = self.ckpt_path.with_name("latest.unreadable.pt")
            os.replace(self.ckpt_path, aside)
            self.log(f"moved the unreadable checkpoint to {aside}")

    # --------------------------------------------------------------------------------------------- checkpoints
    def save(self) -> None:
        """Checkpoint: the replay's partial chunk first, then latest.pt is kept as previous.pt (a hard link), then the
        new latest.pt is written atomically; at every moment both files are complete."""
        self.replay.flush()
        self.progress.last_save = self.progress.env_steps  # saved with the checkpoint: a resume does not save again
        extra = {
            "progress": dict(vars(self.progress)),
            "replay": self.replay.state_dict(),
            "prompt_rng": self.rng.bit_generator.state,
        }
        if getattr(self.scorer, "standardizer", None) is not None:
            extra["standardizer"] = self.scorer.standardizer.state_dict()
        if self.ckpt_path.is_file():
            atomic_copy(self.ckpt_path, self.logdir / PREVIOUS)
        self.agent.save(self.ckpt_path, extra=json_safe(extra))
        self.last_save_time = monotonic()

    def resume(self) -> None:
        assert self.resume_path is not None
        extra = self.agent.load(self.resume_path)
        for key, value in extra["progress"].items():
            setattr(self.progress, key, value)
        self.replay.load_state_dict(extra["replay"])
        self.rng.bit_generator.state = extra["prompt_rng"]
        if "standardizer" in extra and getattr(self.scorer, "standardizer", None) is not None:
            self.scorer.standardizer.load_state_dict(extra["standardizer"])
        self.log(f"resumed from {self.resume_path} at env step {self.progress.env_steps:,}")
        if getattr(self.replay, "dropped", 0):
            self.log(f"replay: dropped {self.replay.dropped:,} steps collected after that checkpoint (done again)")

    def load_source(self) -> None:
        """Start fine-tuning from a pretrained agent: weights only (fresh optimisers), then --freeze / --reset.

        Without a source (`--scratch`) the agent keeps its fresh initialisation: the no-pretraining baseline."""
        if not self.cfg.finetune.source:
            record = {"source": None, "scratch": True, "freeze": [], "reset": []}
            atomic_write_bytes(self.logdir / "source.json", json.dumps(record, indent=2).encode())
            self.log("fine-tuning from scratch: a freshly initialised agent, no pretraining")
            return
        source = Path(self.cfg.finetune.source)
        load_pretrained(self.agent, self.source_path)
        for part in self.cfg.finetune.reset:
            reset_part(self.agent, part)
        for part in self.cfg.finetune.freeze:
            freeze_part(self.agent, part)
        from lamp.config import load_saved_config

        src_cfg = load_saved_config(source)
        record = {
            "source": str(source.resolve()),
            "config_hash": config_hash(src_cfg),
            "source_env_steps": read_done(source).get("env_steps"),
            "freeze": list(self.cfg.finetune.freeze),
            "reset": list(self.cfg.finetune.reset),
        }
        atomic_write_bytes(self.logdir / "source.json", json.dumps(record, indent=2).encode())
        self.log(f"loaded pretrained agent from {source} (config {record['config_hash']})")

    # ------------------------------------------------------------------------------------------------- episodes
    def begin_episode(self, worker: int, info: dict) -> dict[str, np.ndarray]:
        """Per-episode observation keys: the prompt's embedding (pretraining) or the task instruction's."""
        if self.scorer is None:  # no language at all (Plan2Explore-only, from scratch)
            return {}
        if self.mode == "finetune":
            return {"lang": self.lang_fixed}
        prompt = self.style.sample(str(info.get("noun", "object")), self.rng)
        self.prompts = getattr(self, "prompts", {})
        self.prompts[worker] = prompt
        return {"lang": self.scorer.embed_prompts([prompt])[0].cpu().numpy()}

    def end_episode(self, worker: int, episode: dict[str, np.ndarray]) -> None:
        """Relabel a finished pretraining episode with the scorer, log it, and insert it into the replay."""
        progress = self.progress
        progress.episodes += 1
        self.metrics["episode/length"].append(len(episode["reward"]))
        self.metrics["episode/success"].append(float(episode["success"].max()))
        self.metrics["episode/task_return"].append(float(episode["task_reward"][1:].sum()))
        from envs.common import SCORER_KEY

        prompt = None
        frames = episode.pop(SCORER_KEY, None)  # the scorer's 128 px view lives only until the episode is scored
        if self.mode == "pretrain" and self.scorer is None:  # Plan2Explore only: no extrinsic reward at all
            episode["reward"] = np.zeros_like(episode["reward"], dtype=np.float32)
        elif self.mode == "pretrain":
            prompt = self.prompts[worker]
            frames = episode["image"] if frames is None else frames
            vlm = self.scorer.score_episode(frames, prompt)
            episode["reward"] = vlm.astype(np.float32)
            self.metrics["vlm/reward_mean"].append(float(vlm.mean()))
            self.metrics["vlm/reward_min"].append(float(vlm.min()))
            self.metrics["vlm/reward_max"].append(float(vlm.max()))
            for stat, value in (("mean", vlm.mean()), ("min", vlm.min()), ("max", vlm.max())):
                self.metrics[f"vlm_prompt/{prompt}/{stat}"].append(float(value))
            self.top_frames.update(prompt, frames, vlm)
        self.metrics["episode/return"].append(float(episode["reward"][1:].sum()))
        self.replay.add_episode(episode)
        if worker == 0:
            self.latest_episode = {"image": episode["image"], "reward": episode["reward"], "prompt": prompt}

    # ----------------------------------------------------------------------------------------------- training
    def policy(self, prefill: bool):
        agent, action_dim = self.agent, self.cfg.agent.action_dim

        def act(obs: dict[str, np.ndarray], state: Any) -> tuple[np.ndarray, Any]:
            if prefill:  # uniform in [-1, 1] (the original sampled from +-3 cm bounds: ~1 mm moves)
                return self.rng.uniform(-1, 1, (len(obs["is_first"]), action_dim)).astype(np.float32), state
            return agent.policy(obs, state, mode="train")

        return act

    def train(self, env_steps: int) -> None:
        cfg = self.cfg.agent
        if self.progress.env_steps < self.cfg.run.prefill or len(self.replay) < cfg.batch_length:
            return
        self.progress.train_credit += env_steps * cfg.train_ratio / (cfg.batch_size * cfg.batch_length)
        # on a GPU the next batch's copy overlaps the current step (same batches, same order); on CPU there is no copy
        ahead = self.agent.device.type == "cuda"
        pending = None
        while self.progress.train_credit >= 1.0 and self.stop_signal is None:
            self.progress.train_credit -= 1.0
            batch = pending if pending is not None else self.agent.prefetch(self.sample())
            pending = self.agent.prefetch(self.sample()) if ahead and self.progress.train_credit >= 1.0 else None
            metrics = self.agent.train_step(batch)
            self.progress.updates += 1
            for key, value in metrics.items():
                self.metrics[f"train/{key}"].append(value)

    def sample(self) -> dict[str, np.ndarray]:
        cfg = self.cfg.agent
        batch = self.replay.sample(cfg.batch_size, cfg.batch_length)
        return {k: batch[k] for k in batch}

    def write_metrics(self, fps: dict[str, float]) -> None:
        logger = self.logger
        for key, values in self.metrics.items():
            if values:
                value = float(torch.stack([torch.as_tensor(v, dtype=torch.float32) for v in values]).mean())
                logger.scalar(key, value)
                if key == "train/behavior/intr_extr_ratio":
                    self.intr_extr_ratio = value
        self.metrics.clear()
        logger.scalars(fps, prefix="perf/")
        logger.scalar("progress/episodes", self.progress.episodes)
        logger.scalar("progress/updates", self.progress.updates)
        logger.scalar("progress/frames", self.progress.env_steps * self.cfg.env.action_repeat)  # physics frames
        logger.scalar("progress/hours", self.progress.seconds / 3600)
        logger.scalar("progress/dropped_episodes", getattr(self.envs, "dropped_episodes", 0))
        logger.scalar("progress/skipped_updates", self.agent.counters.get("skipped", 0))
        logger.write(self.progress.env_steps)

    def write_videos(self) -> None:
        from lamp.visualize import reward_strip_video

        step = self.progress.env_steps
        if self.latest_episode is not None:
            frames = reward_strip_video(self.latest_episode["image"], self.latest_episode["reward"])
            self.logger.video("episode/reward_curve", frames, step)
        for i, (prompt, grid) in enumerate(self.top_frames.grids().items()):
            self.logger.image(f"top_frames/{i}_{prompt[:60]}", grid, step)
        video = open_loop_video(self.agent, self.replay)
        if video is not None:
            self.logger.video("world_model/open_loop", video, step)
        self.progress.last_video = step

    def evaluate(self) -> None:
        """Deterministic-policy episodes, then (`run.eval_sample`) the same episodes with the sampled training policy;
        their scalars go out with the next `logger.write` of this step."""
        from lamp.evaluate import run_episodes

        cfg = self.cfg
        if not hasattr(self, "eval_envs"):
            self.eval_envs = make_envs(cfg, workers=1, seed=cfg.seed + 10_000)
        for mode, suffix in (("eval", ""), ("train", "_sample"))[: 2 if cfg.run.eval_sample else 1]:
            results = run_episodes(
                self.agent,
                self.eval_envs,
                self.lang_fixed,
                cfg.run.eval_episodes,
                seed=cfg.seed + 10_000 + self.progress.env_steps,
                keep_frames=int(mode == "eval"),
                mode=mode,
            )
            success = float(np.mean([r["success"] for r in results["episodes"]]))
            self.logger.scalar(f"eval/success{suffix}", success)
            self.logger.scalar(f"eval/return{suffix}", float(np.mean([r["return"] for r in results["episodes"]])))
            if mode == "eval":
                self.progress.eval_success = success
            if results["frames"]:
                self.logger.video("eval/rollout", results["frames"][0], self.progress.env_steps)
        self.progress.last_eval = self.progress.env_steps

    # ------------------------------------------------------------------------------------------------ main loop
    def loop(self) -> None:
        """Collect, train, and per step at most one metrics line (so metrics.jsonl steps strictly increase), then
        videos and checkpoints. The last step evaluates (fine-tuning), logs, films and saves, whatever the intervals."""
        cfg, progress = self.cfg, self.progress
        run = cfg.run
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        bar = Progress(
            TextColumn(f"[bold]{self.mode}[/]"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,} steps"),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
            refresh_per_second=2,
        )
        self.driver.reset(seed=cfg.seed + progress.env_steps)
        t_last, steps_last, updates_last = time.perf_counter(), progress.env_steps, progress.updates
        fps = {"env_fps": 0.0, "train_fps": 0.0}
        save_seconds = run.save_minutes * 60
        loop_start, seconds_before = time.perf_counter(), progress.seconds
        with bar:
            task = bar.add_task(self.mode, total=run.steps, completed=progress.env_steps, stats="")
            if self.mode == "finetune" and progress.last_eval < 0:
                self.evaluate()  # the pretrained agent before any fine-tuning, at step 0
                self.logger.write(progress.env_steps)
            while progress.env_steps < run.steps:
                if self.stop_signal is not None:
                    raise Interrupted(self.stop_signal, graceful=True)
                prefill = progress.env_steps < run.prefill
                n = self.driver.step(self.policy(prefill))
                progress.env_steps += n
                self.train(n)
                progress.seconds = seconds_before + time.perf_counter() - loop_start
                last = progress.env_steps >= run.steps
                evaluate = self.mode == "finetune" and (
                    last or progress.env_steps - progress.last_eval >= run.eval_every
                )
                if evaluate:
                    self.evaluate()
                if evaluate or last or progress.env_steps - progress.last_log >= run.log_every:
                    now = time.perf_counter()
                    dt = max(now - t_last, 1e-9)
                    fps = {
                        "env_fps": (progress.env_steps - steps_last) / dt,
                        "train_fps": (progress.updates - updates_last) / dt,
                    }
                    t_last, steps_last, updates_last = now, progress.env_steps, progress.updates
                    self.write_metrics(fps)
                    progress.last_log = progress.env_steps
                if last or progress.env_steps - progress.last_video >= run.video_every:
                    self.write_videos()
                if (
                    last
                    or progress.env_steps - progress.last_save >= run.save_every
                    or (save_seconds > 0 and monotonic() - self.last_save_time >= save_seconds)
                ):
                    self.save()
                success = "" if math.isnan(progress.eval_success) else f" eval {progress.eval_success:.0%}"
                ratio = getattr(self, "intr_extr_ratio", None)  # which reward stream drives behaviour (std ratio)
                success += "" if ratio is None else f" | intr/extr {ratio:.2g}"
                bar.update(
                    task,
                    completed=progress.env_steps,
                    stats=(
                        f"ep {progress.episodes:,} | env {fps['env_fps']:.0f}/s | upd {fps['train_fps']:.1f}/s{success}"
                    ),
                )
        if progress.last_save != progress.env_steps:  # e.g. resumed at the last step, killed before done.json
            self.save()
        done = {
            "env_steps": progress.env_steps,
            "episodes": progress.episodes,
            "updates": progress.updates,
            "eval_success": None if math.isnan(progress.eval_success) else progress.eval_success,
        }
        atomic_write_bytes(self.logdir / DONE_FILE, json.dumps(done, indent=2).encode())

    def close(self) -> None:
        for name in ("envs", "eval_envs"):
            envs = getattr(self, name, None)
            if envs is not None:
                envs.close()
        logger = getattr(self, "logger", None)
        if logger is not None:
            with contextlib.suppress(OSError):  # a full disk must not hide the real error behind a second one
                logger.close()
        self.lock.release()

    def on_signal(self, signum: int, frame: Any) -> None:
        """SIGINT/SIGTERM: inside the loop the first one asks for a stop after the current step; otherwise stop now."""
        if self.in_loop and self.stop_signal is None:
            self.stop_signal = signum
            self.log(f"{signal.Signals(signum).name}: stopping after this step and saving a checkpoint ...")
            return
        raise Interrupted(signum)

    @contextlib.contextmanager
    def signals(self):
        """Route SIGINT and SIGTERM to `on_signal` while the run executes (main thread only; others keep Python's)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def execute(self) -> dict[str, Any]:
        """validate -> set up -> loop. Ctrl-C and SIGTERM save a checkpoint (Interrupted); a full disk is DiskFull."""
        with self.signals():
            try:
                self.validate()
                self.setup()
                if (self.logdir / DONE_FILE).is_file() and self.progress.env_steps >= self.cfg.run.steps:
                    self.log(f"{self.logdir} is already finished ({self.progress.env_steps:,} steps); nothing to do")
                else:
                    self.run_loop()
            except OSError as e:
                if e.errno in (errno.ENOSPC, errno.EDQUOT) or self.disk_is_full():
                    raise self.disk_full(e) from None
                raise
            except (UsageError, KeyboardInterrupt, TrainingStopped):
                raise
            except Exception as e:
                if self.disk_is_full():  # some writers (ffmpeg, torch's zip writer) report ENOSPC their own way
                    raise self.disk_full(e) from None
                raise
            finally:
                self.close()
        videos = sorted((self.logdir / "videos").glob("*.mp4"))
        return {
            "logdir": self.logdir,
            "checkpoint": self.ckpt_path,
            "videos": videos,
            "metrics": self.logdir / "metrics.jsonl",
        }

    def run_loop(self) -> None:
        """The loop, with its stops: a first Ctrl-C/SIGTERM (graceful) and NaN losses save; a second signal does not."""
        self.in_loop = True
        try:
            self.loop()
        except KeyboardInterrupt as e:
            self.in_loop = False  # from here a signal stops at once, even in the middle of this save
            if isinstance(e, Interrupted) and not e.graceful:
                self.log(f"stopped at once, without a checkpoint of this moment; the last one is {self.ckpt_path}")
                raise
            if self.progress.last_save != self.progress.env_steps:
                self.save()  # a plain KeyboardInterrupt (no handler installed) keeps the old behaviour: save anyway
            self.log(
                f"interrupted at env step {self.progress.env_steps:,}: checkpoint saved to "
                f"{self.ckpt_path}; re-run the same command to resume"
            )
            raise
        except TrainingStopped:
            self.in_loop = False
            self.save()  # bad updates were never applied, so the saved weights are the last good ones
            raise
        finally:
            self.in_loop = False

    def disk_is_full(self) -> bool:
        with contextlib.suppress(OSError):
            return shutil.disk_usage(self.logdir).free < LOW_DISK_BYTES
        return False

    def disk_full(self, error: BaseException) -> DiskFull:
        detail = (str(error).strip().splitlines() or [error.__class__.__name__])[0][:200]
        last = f"the last good checkpoint is {self.ckpt_path}" if self.ckpt_path.is_file() else "no checkpoint yet"
        return DiskFull(
            f"the disk of {self.logdir} is full ({detail}); {last}; free some space and re-run the same command "
            "to resume"
        )


# ---------------------------------------------------------------------------------------------------- helpers
def json_safe(value: Any) -> Any:
    """Checkpoint extras must load with weights_only=True: turn numpy scalars/arrays into Python/tensors."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_done(run_dir: Path) -> dict[str, Any]:
    path = run_dir / DONE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def check_source(source: str | Path) -> Path:
    """A fine-tuning source must be a lamp pretraining run with a config and a checkpoint."""
    path = Path(source).expanduser()
    if not path.is_dir():
        raise UsageError(f"--from '{path}' is not a folder; pass the --logdir of a lamp pretrain run")
    has_ckpt = (path / CHECKPOINT).is_file() or (path / PREVIOUS).is_file()
    if not (path / "config.yaml").is_file() or not has_ckpt:
        raise UsageError(
            f"--from '{path}' is not a lamp run (needs config.yaml and {CHECKPOINT}); "
            "pass the --logdir of a lamp pretrain run"
        )
    return path


def source_checkpoint(source: str | Path, log: Any = print) -> tuple[Path, dict[str, Any]]:
    """The fine-tuning source's newest readable checkpoint (previous.pt, with a warning, if latest.pt is broken)."""
    found = find_checkpoint(check_source(source), log)
    assert found is not None  # check_source saw one of the two files
    return found


def check_architecture(path: Path, cfg: DictConfig, fix: str, ckpt: dict[str, Any] | None = None) -> None:
    """Refuse (one line, before anything is written) a checkpoint whose agent architecture differs from cfg.agent."""
    from lamp.agent.agent import ARCH_KEYS, saved_arch

    saved = (ckpt if ckpt is not None else read_checkpoint(path))["agent"].get("config", {})
    diff = [
        f"agent.{k}: checkpoint {saved_arch(saved, k)!r} vs config {cfg.agent[k]!r}"
        for k in ARCH_KEYS
        if k in cfg.agent and _plain(saved_arch(saved, k)) != _plain(cfg.agent[k])
    ]
    if diff:
        raise UsageError(f"checkpoint {path} was trained with another architecture ({'; '.join(diff[:3])}); {fix}")


def check_language(path: Path, has_scorer: bool, ckpt: dict[str, Any] | None = None) -> None:
    """A pretrained agent without a `lang` input (scorer.kind none) must be fine-tuned without a scorer, and back."""
    had_lang = "lang" in (ckpt if ckpt is not None else read_checkpoint(path))["agent"]["obs_space"]
    if had_lang and not has_scorer:
        raise UsageError(f"{path} was pretrained with language (a scorer); fine-tune it with its scorer, not none")
    if not had_lang and has_scorer:
        raise UsageError(
            f"{path} was pretrained without language (scorer.kind none, e.g. Plan2Explore only); "
            "fine-tune it with --scorer.kind none"
        )


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if isinstance(value, DictConfig | ListConfig) else value


def load_pretrained(agent: Any, path: Path) -> None:
    """Copy a pretrained agent's weights; the ensemble (and its normalisers) may be absent on either side."""
    ckpt = read_checkpoint(path, map_location=agent.device)
    theirs = ckpt["agent"]["model"]
    ours = agent.state_dict()
    optional = ("explorer.", "intr_norm.", "extr_norm.")
    problems = [
        f"{k}: {tuple(theirs[k].shape)} != {tuple(ours[k].shape)}"
        for k in ours
        if k in theirs and theirs[k].shape != ours[k].shape
    ]
    missing = [k for k in ours if k not in theirs and not k.startswith(optional)]
    if problems or missing:
        detail = "; ".join(problems[:3] + [f"missing {k}" for k in missing[:3]])
        raise UsageError(
            f"checkpoint {path} was trained with another architecture ({detail}); "
            "fine-tune with the same size block as the pretraining run"
        )
    agent.load_state_dict({k: v for k, v in theirs.items() if k in ours}, strict=False)


def reset_part(agent: Any, part: str, check_only: bool = False) -> None:
    """Re-initialise a named part (`reward_head`) so fine-tuning learns it from the task's reward alone."""
    if part != "reward_head":
        raise UsageError(f"--reset '{part}' is unknown; valid: reward_head")
    if check_only:
        return
    head = agent.world_model.reward_head
    for module in head.modules():
        if hasattr(module, "reset_parameters") and module is not head:
            module.reset_parameters()
    torch.nn.init.zeros_(head.out.weight)
    if head.out.bias is not None:
        torch.nn.init.zeros_(head.out.bias)


def freeze_part(agent: Any, part: str, check_only: bool = False, reinit: bool = True) -> None:
    """`critic_hidden`: LAMP's linear probe. Hidden critic layers keep their pretrained values and stop training;
    the output layer is re-initialised for real (the original accidentally kept the pretrained one).

    A resumed run freezes again with reinit=False: which parameters train is not part of a checkpoint."""
    if part != "critic_hidden":
        raise UsageError(f"--freeze '{part}' is unknown; valid: critic_hidden")
    if check_only:
        return
    critic = agent.behavior.critic
    for name, param in critic.named_parameters():
        if not name.startswith("out."):
            param.requires_grad_(False)
    if not reinit:
        return
    torch.nn.init.zeros_(critic.out.weight)  # the critic's fresh init (zero output, as DreamerV3 initialises it)
    if critic.out.bias is not None:
        torch.nn.init.zeros_(critic.out.bias)
    agent.behavior.slow_critic.load_state_dict(critic.state_dict())


@torch.no_grad()
def open_loop_video(agent: Any, replay: Any, context: int = 5, length: int = 32) -> np.ndarray | None:
    """The world model's open-loop prediction of a replayed clip: `context` observed frames, then imagined ones
    driven by the recorded actions; returned as truth | prediction | error for the `image` key."""
    from lamp.visualize import side_by_side

    wm = agent.world_model
    if "image" not in wm.image_keys or len(replay) < length:
        return None
    batch = agent.to_tensors(replay.sample(1, length))
    embed = wm.encode(batch)
    is_first = batch["is_first"].clone()
    is_first[:, 0] = True
    post = wm.rssm.observe(
        embed[:, :context], wm.prev_actions(batch["action"].float())[:, :context], is_first[:, :context]
    )
    stoch, deter = post["stoch"][:, -1], post["deter"][:, -1]
    feats = [wm.feat(post["stoch"][:, t], post["deter"][:, t]) for t in range(context)]
    for t in range(context, length):
        stoch, deter = wm.rssm.imagine_step(stoch, deter, batch["action"][:, t - 1].float())
        feats.append(wm.feat(stoch, deter))
    decoded = wm.image_decoder(torch.cat(feats)).float()  # (T, H, W, C) in [-0.5, 0.5]
    channels = batch["image"].shape[-1]
    prediction = ((decoded[..., :channels] + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    truth = batch["image"][0].cpu().numpy()
    return side_by_side(truth, prediction.reshape(truth.shape))


def run_job(cfg: DictConfig, mode: str) -> dict[str, Any]:
    """Entry point for the CLI."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return Run(cfg, mode).execute()
