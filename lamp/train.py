"""The training jobs: `lamp pretrain` (language reward + novelty in randomised scenes) and `lamp finetune` (a task).

Data flows one way: env -> driver -> (scorer relabels the finished episode) -> replay -> agent. Everything a run needs
to continue is in LOGDIR/checkpoints/latest.pt plus LOGDIR/replay/, so re-running the same command resumes it, and
Ctrl-C saves a checkpoint before exiting. Nothing is written to LOGDIR until the config, prompts, env, scorer and
(for fine-tuning) the source run have all been checked.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from lamp.agent.agent import BLENDS, TrainingStopped
from lamp.agent.behavior import ACTOR_GRADS
from lamp.agent.speed import PRECISION_VALUES, learner_threads
from lamp.atomic import atomic_write_bytes
from lamp.build import CHECKPOINT, make_envs, make_scorer, obs_space, task_instruction
from lamp.config import save_config, to_yaml
from lamp.errors import UsageError

DONE_FILE = "done.json"


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

    def log(self, message: str) -> None:
        self.console.print(message, markup=False)

    # ---------------------------------------------------------------------------------------------------- set-up
    def validate(self) -> None:
        """Everything that can be wrong with the user's input is found here, before LOGDIR is touched."""
        cfg = self.cfg
        if not cfg.logdir:
            raise UsageError("no run directory given; pass --logdir DIR")
        from envs import DOWNSTREAM_TASKS

        if self.mode == "pretrain":
            from lamp.prompts import PromptStyle

            self.style = PromptStyle.load(cfg.prompts.style)
        elif cfg.env.task not in DOWNSTREAM_TASKS:
            raise UsageError(f"unknown task '{cfg.env.task}'; valid tasks: {', '.join(DOWNSTREAM_TASKS)}")
        if cfg.agent.actor_grad not in ACTOR_GRADS:
            raise UsageError(f"agent.actor_grad is '{cfg.agent.actor_grad}'; valid: {', '.join(ACTOR_GRADS)}")
        from envs.common import check_render_size

        try:
            check_render_size(cfg.env.size, cfg.scorer.image_size)
        except ValueError as err:
            raise UsageError(str(err)) from None
        if cfg.agent.expl.blend not in BLENDS:
            raise UsageError(f"agent.expl.blend is '{cfg.agent.expl.blend}'; valid: {', '.join(BLENDS)}")
        if cfg.agent.precision not in PRECISION_VALUES:
            raise UsageError(f"agent.precision is '{cfg.agent.precision}'; valid: {', '.join(PRECISION_VALUES)}")
        self.scorer = make_scorer(cfg, self.log)
        if self.ckpt_path.is_file():
            if not (self.logdir / "config.yaml").is_file():
                raise UsageError(f"{self.logdir} has a checkpoint but no config.yaml; use a fresh --logdir")
            check_architecture(self.ckpt_path, cfg, "resume it with the same config blocks, or use a new --logdir")
        elif self.mode == "finetune":
            source = check_source(cfg.finetune.source) / CHECKPOINT
            check_architecture(source, cfg, "fine-tune with the same size block as the pretraining run")

    def setup(self) -> None:
        cfg = self.cfg
        seed_everything(cfg.seed, cfg.deterministic)
        torch.set_num_threads(learner_threads(cfg.threads))  # threads: 0 = the cores this process may use
        # a missing simulator fails here, before LOGDIR is written
        self.envs = make_envs(cfg, seed=cfg.seed, score_view=self.mode == "pretrain")
        self.logdir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, self.logdir)
        from lamp.logger import Logger

        self.logger = Logger(self.logdir)
        if self.mode == "pretrain" and self.scorer.text_batch_dependent():
            prompts = self.style.expansions()
            self.log(
                f"embedding all {len(prompts):,} prompts of style '{self.style.name}' in one padded batch "
                "(scorer.pooling: r3m, as the original did at start-up)"
            )
            self.scorer.embed_prompts(prompts)
        lang_dim = int(self.scorer.embed_prompts(["a"]).shape[-1])
        self.obs_space = obs_space(self.envs.single_observation_space, lang_dim)
        from lamp.agent.agent import Agent
        from lamp.agent.replay import Replay

        self.agent = Agent(cfg.agent, self.obs_space, device=cfg.device)
        precision = self.agent.precision
        self.log(f"agent: {precision.name}, {torch.get_num_threads()} torch threads ({precision.reason})")
        replay_cfg = OmegaConf.to_container(cfg.replay)
        replay_cfg["directory"] = replay_cfg["directory"] or str(self.logdir / "replay")
        self.replay = Replay(replay_cfg, self.obs_space, cfg.agent.action_dim, seed=cfg.seed)
        model_bytes = sum(p.numel() * p.element_size() for p in self.agent.parameters()) * 3  # + Adam moments
        self.replay.memory_budget(model_bytes=model_bytes, print_fn=self.log)
        from lamp.driver import Driver

        self.driver = Driver(self.envs, self.begin_episode)
        self.driver.on_episode(self.end_episode)
        if self.mode == "finetune":
            instruction = task_instruction(self.cfg)
            self.lang_fixed = self.scorer.embed_prompts([instruction])[0].cpu().numpy()
            self.log(f"fine-tuning on '{cfg.env.task}' with instruction '{instruction}'")
        if self.ckpt_path.is_file():
            self.resume()
            for part in cfg.finetune.freeze if self.mode == "finetune" else ():
                freeze_part(self.agent, part, reinit=False)  # requires_grad is not in the checkpoint
        elif self.mode == "finetune":
            self.load_source()
        from lamp.visualize import TopFrames

        self.top_frames = TopFrames(k=8)

    # --------------------------------------------------------------------------------------------- checkpoints
    def save(self) -> None:
        self.replay.flush()
        extra = {
            "progress": dict(vars(self.progress)),
            "replay": self.replay.state_dict(),
            "prompt_rng": self.rng.bit_generator.state,
        }
        if getattr(self.scorer, "standardizer", None) is not None:
            extra["standardizer"] = self.scorer.standardizer.state_dict()
        self.agent.save(self.ckpt_path, extra=json_safe(extra))
        self.progress.last_save = self.progress.env_steps

    def resume(self) -> None:
        extra = self.agent.load(self.ckpt_path)
        for key, value in extra["progress"].items():
            setattr(self.progress, key, value)
        self.replay.load_state_dict(extra["replay"])
        self.rng.bit_generator.state = extra["prompt_rng"]
        if "standardizer" in extra and getattr(self.scorer, "standardizer", None) is not None:
            self.scorer.standardizer.load_state_dict(extra["standardizer"])
        self.log(f"resumed from {self.ckpt_path} at env step {self.progress.env_steps:,}")

    def load_source(self) -> None:
        """Start fine-tuning from a pretrained agent: weights only (fresh optimisers), then --freeze / --reset."""
        source = Path(self.cfg.finetune.source)
        load_pretrained(self.agent, source / CHECKPOINT)
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
        if self.mode == "pretrain":
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
        while self.progress.train_credit >= 1.0:
            self.progress.train_credit -= 1.0
            batch = self.replay.sample(cfg.batch_size, cfg.batch_length)
            metrics = self.agent.train_step({k: batch[k] for k in batch})
            self.progress.updates += 1
            for key, value in metrics.items():
                self.metrics[f"train/{key}"].append(value)

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
        from lamp.evaluate import run_episodes

        cfg = self.cfg
        if not hasattr(self, "eval_envs"):
            self.eval_envs = make_envs(cfg, workers=1, seed=cfg.seed + 10_000)
        results = run_episodes(
            self.agent,
            self.eval_envs,
            self.lang_fixed,
            cfg.run.eval_episodes,
            seed=cfg.seed + 10_000 + self.progress.env_steps,
            keep_frames=1,
        )
        success = float(np.mean([r["success"] for r in results["episodes"]]))
        self.progress.eval_success = success
        self.logger.scalar("eval/success", success)
        self.logger.scalar("eval/return", float(np.mean([r["return"] for r in results["episodes"]])))
        if results["frames"]:
            self.logger.video("eval/rollout", results["frames"][0], self.progress.env_steps)
        self.progress.last_eval = self.progress.env_steps
        self.logger.write(self.progress.env_steps)

    # ------------------------------------------------------------------------------------------------ main loop
    def loop(self) -> None:
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
        with bar:
            task = bar.add_task(self.mode, total=run.steps, completed=progress.env_steps, stats="")
            while progress.env_steps < run.steps:
                if self.mode == "finetune" and (
                    progress.last_eval < 0 or progress.env_steps - progress.last_eval >= run.eval_every
                ):
                    self.evaluate()
                prefill = progress.env_steps < run.prefill
                n = self.driver.step(self.policy(prefill))
                progress.env_steps += n
                self.train(n)
                if progress.env_steps - progress.last_log >= run.log_every:
                    now = time.perf_counter()
                    dt = max(now - t_last, 1e-9)
                    fps = {
                        "env_fps": (progress.env_steps - steps_last) / dt,
                        "train_fps": (progress.updates - updates_last) / dt,
                    }
                    t_last, steps_last, updates_last = now, progress.env_steps, progress.updates
                    self.write_metrics(fps)
                    progress.last_log = progress.env_steps
                if progress.env_steps - progress.last_video >= run.video_every:
                    self.write_videos()
                if progress.env_steps - progress.last_save >= run.save_every:
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
        if self.mode == "finetune":
            self.evaluate()
        self.write_videos()
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
            logger.close()

    def execute(self) -> dict[str, Any]:
        """validate -> set up -> loop; Ctrl-C saves a checkpoint. Returns where the outputs are."""
        self.validate()
        try:
            self.setup()
            if (self.logdir / DONE_FILE).is_file() and self.progress.env_steps >= self.cfg.run.steps:
                self.log(f"{self.logdir} is already finished ({self.progress.env_steps:,} steps); nothing to do")
            else:
                try:
                    self.loop()
                except KeyboardInterrupt:
                    self.save()
                    self.log(
                        f"interrupted at env step {self.progress.env_steps:,}: checkpoint saved to "
                        f"{self.ckpt_path}; re-run the same command to resume"
                    )
                    raise
                except TrainingStopped:
                    self.save()  # bad updates were never applied, so the saved weights are the last good ones
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
    if not (path / "config.yaml").is_file() or not (path / CHECKPOINT).is_file():
        raise UsageError(
            f"--from '{path}' is not a lamp run (needs config.yaml and {CHECKPOINT}); "
            "pass the --logdir of a lamp pretrain run"
        )
    return path


def check_architecture(path: Path, cfg: DictConfig, fix: str) -> None:
    """Refuse (one line, before anything is written) a checkpoint whose agent architecture differs from cfg.agent."""
    from lamp.agent.agent import ARCH_KEYS

    saved = torch.load(path, map_location="cpu", weights_only=True)["agent"]["config"]
    diff = [
        f"agent.{k}: checkpoint {saved.get(k)!r} vs config {cfg.agent[k]!r}"
        for k in ARCH_KEYS
        if k in cfg.agent and _plain(saved.get(k)) != _plain(cfg.agent[k])
    ]
    if diff:
        raise UsageError(f"checkpoint {path} was trained with another architecture ({'; '.join(diff[:3])}); {fix}")


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if isinstance(value, DictConfig | ListConfig) else value


def load_pretrained(agent: Any, path: Path) -> None:
    """Copy a pretrained agent's weights; the ensemble (and its normalisers) may be absent on either side."""
    ckpt = torch.load(path, map_location=agent.device, weights_only=True)
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
