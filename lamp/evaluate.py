"""Evaluation: deterministic-policy episodes (success = the task succeeded at any step), and the `lamp eval` job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from lamp.atomic import atomic_write_bytes
from lamp.errors import UsageError


def run_episodes(
    agent: Any,
    envs: Any,
    lang: np.ndarray | None,
    episodes: int,
    seed: int,
    keep_frames: int = 0,
    mode: str = "eval",
    on_episode: Any = None,
) -> dict[str, Any]:
    """Run `episodes` full episodes on one env; record success, return, length and seed.

    `mode` "eval" acts with the policy's mode (deterministic), "train" samples as training does: a policy whose
    training episodes succeed while its mode does not shows up as the gap between the two.
    `lang` is the instruction's embedding, or None for an agent without language (`scorer.kind: none`)."""
    from envs.common import SCORER_KEY
    from lamp.driver import Driver

    results: list[dict[str, Any]] = []
    frames: list[np.ndarray] = []
    seeds = [seed + k for k in range(episodes)]
    extra = {} if lang is None else {"lang": np.asarray(lang, np.float32)}
    driver = Driver(envs, lambda worker, info: dict(extra))

    def collect(worker: int, episode: dict[str, np.ndarray]) -> None:
        results.append(
            {
                "seed": seeds[len(results)],
                "success": bool(episode["success"].max() > 0),
                "return": float(episode["reward"][1:].sum()),
                "length": int(len(episode["reward"]) - 1),
            }
        )
        if len(frames) < keep_frames:  # the scorer's plain front-camera view where the env renders it, else the agent's
            frames.append(episode.get(SCORER_KEY, episode["image"]))
        if on_episode is not None:  # progress of a long evaluation (`lamp eval`)
            on_episode(len(results), results[-1])

    driver.on_episode(collect)
    for k in range(episodes):
        driver.reset(seed=seeds[k])
        target = k + 1
        while len(results) < target:
            driver.step(lambda obs, state: agent.policy(obs, state, mode=mode))
    return {"episodes": results, "frames": frames}


class TrainingEvaluation:
    """The evaluations inside a fine-tuning run: `run.eval_episodes` deterministic-policy episodes, then
    (`run.eval_sample`) the same episodes with the sampled training policy, on one env of their own (seeds apart
    from training's). The scalars go out with the logger's next line of this step."""

    def __init__(self, cfg: Any, agent: Any, lang: np.ndarray | None, logger: Any) -> None:
        self.cfg, self.agent, self.lang, self.logger = cfg, agent, lang, logger
        self.envs: Any = None  # made at the first evaluation

    def __call__(self, progress: Any) -> None:
        from lamp.build import make_envs

        cfg, step = self.cfg, progress.env_steps
        if self.envs is None:
            self.envs = make_envs(cfg, workers=1, seed=cfg.seed + 10_000)
        for mode, suffix in (("eval", ""), ("train", "_sample"))[: 2 if cfg.run.eval_sample else 1]:
            results = run_episodes(
                self.agent,
                self.envs,
                self.lang,
                cfg.run.eval_episodes,
                seed=cfg.seed + 10_000 + step,
                keep_frames=int(mode == "eval"),
                mode=mode,
            )
            success = float(np.mean([r["success"] for r in results["episodes"]]))
            self.logger.scalar(f"eval/success{suffix}", success)
            self.logger.scalar(f"eval/return{suffix}", float(np.mean([r["return"] for r in results["episodes"]])))
            if mode == "eval":
                progress.eval_success = success
            if results["frames"]:
                from lamp.visualize import labelled

                first = results["episodes"][0]
                title = f"front camera, deterministic policy: {'success' if first['success'] else 'no success'}"
                footer = f"episode 1 of {len(results['episodes'])}, return {first['return']:.0f}"
                self.logger.video("eval/rollout", labelled(results["frames"][0], [title], footer=footer), step)
        progress.last_eval = step

    def close(self) -> None:
        if self.envs is not None:
            self.envs.close()


def reference_policy(
    task: str, episodes: int, seed: int, episode_length: int, scripted: bool = False, action_repeat: int = 1
) -> dict[str, Any]:
    """Success (at any step) and return of uniform random actions on a downstream task: the floor that every learning
    curve is read against, measured in the same run (no rendering: the policy ignores the pixels). `scripted`: the
    simulator's hand-written expert instead (Meta-World's policies), the ceiling that returns are read against. Both
    play with the agent's `action_repeat`, so their returns are on the agent's scale."""
    from envs import make_env

    env = make_env(task, wrist=True, episode_length=episode_length, action_repeat=action_repeat, render=False)
    rng = np.random.default_rng(seed)
    successes, returns = [], []
    try:
        for k in range(episodes):
            env.reset(seed=seed + 10_000 + k)
            done, success, total = False, False, 0.0
            while not done:
                if scripted:
                    action = env.scripted_action()  # already clipped to the action box
                else:
                    action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
                _, reward, terminated, truncated, info = env.step(action)
                success |= bool(info["success"])
                total += float(reward)
                done = terminated or truncated
            successes.append(success)
            returns.append(total)
    finally:
        env.close()
    return {"episodes": episodes, "success_rate": float(np.mean(successes)), "return": float(np.mean(returns))}


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean success and return with 95% bootstrap intervals."""
    from lamp.stats import bootstrap_ci

    success = bootstrap_ci([r["success"] for r in results])
    returns = bootstrap_ci([r["return"] for r in results])
    return {
        "episodes": len(results),
        "success_mean": success[0],
        "success_ci95": [success[1], success[2]],
        "return_mean": returns[0],
        "return_ci95": [returns[1], returns[2]],
    }


def evaluate_checkpoint(
    run_dir: str | Path,
    task: str | None,
    episodes: int,
    seed: int,
    out: str | Path | None,
    log: Any = print,
    device: str | None = None,
) -> dict[str, Any]:
    """`lamp eval`: load a run's config and latest checkpoint (or the checkpoint file given), run the task (default:
    the run's own), write JSONL, summary and MP4s; one progress line per episode."""
    from envs import DOWNSTREAM_TASKS
    from lamp.build import (
        CHECKPOINT,
        instruction_embedding,
        lang_dim,
        make_envs,
        make_scorer,
        obs_space,
        task_instruction,
    )
    from lamp.config import build_config, check_device, load_saved_config
    from lamp.rundir import find_checkpoint

    run_dir = Path(run_dir).expanduser()
    ckpt_file = None
    if run_dir.is_file() and run_dir.suffix == ".pt":  # a checkpoint file inside a run: RUN/checkpoints/x.pt
        ckpt_file, run_dir = run_dir, run_dir.parent.parent
        if not (run_dir / "config.yaml").is_file():
            raise UsageError(f"--checkpoint '{ckpt_file}' is not inside a lamp run (no {run_dir}/config.yaml)")
    found = find_checkpoint(run_dir, log) if (run_dir / "config.yaml").is_file() and ckpt_file is None else None
    if found is None and ckpt_file is None:
        raise UsageError(f"--checkpoint '{run_dir}' is not a lamp run (needs config.yaml and {CHECKPOINT})")
    ckpt_path = ckpt_file or found[0]
    del found  # the agent loads it again, onto its device
    saved = load_saved_config(run_dir)
    if task is None:
        task = str(saved.env.task)
        if task not in DOWNSTREAM_TASKS:
            raise UsageError(f"{run_dir} is a pretraining run: pass --task (one of {', '.join(DOWNSTREAM_TASKS)})")
    if task not in DOWNSTREAM_TASKS:
        raise UsageError(f"unknown task '{task}'; valid tasks: {', '.join(DOWNSTREAM_TASKS)}")
    if episodes < 1:
        raise UsageError(f"--episodes must be at least 1, got {episodes}")
    overrides: dict[str, Any] = {"env.task": task, "env.workers": 1}
    if device is not None:  # the agent and (unless it picks for itself) the scorer
        overrides["device"] = device
        if saved.scorer.device != "auto":
            overrides["scorer.device"] = device
    cfg = build_config(base=saved, overrides=overrides)
    check_device("--device" if device is not None else "device (from the run's config.yaml)", cfg.device)
    check_device("scorer.device (from the run's config.yaml)", cfg.scorer.device, allow_auto=True)
    out_dir = Path(out) if out else run_dir / "eval" / f"{task}-seed{seed}"
    scorer = make_scorer(cfg, log)
    from lamp.agent.agent import Agent

    # score_view: the videos are the plain front camera at the scorer's size (scorer.image_size), which
    # `lamp score` reads as training scored it
    envs = make_envs(cfg, workers=1, seed=seed, score_view=True)
    try:
        instruction = task_instruction(cfg)
        lang = instruction_embedding(scorer, instruction)
        agent = Agent(cfg.agent, obs_space(envs.single_observation_space, lang_dim(scorer)), device=cfg.device)
        agent.load(ckpt_path)

        def progress(k: int, episode: dict[str, Any]) -> None:
            outcome = "success" if episode["success"] else "failure"
            log(f"episode {k}/{episodes} (seed {episode['seed']}): {outcome}, return {episode['return']:.4g}")

        results = run_episodes(agent, envs, lang, episodes, seed, keep_frames=episodes, on_episode=progress)
    finally:
        envs.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r) + "\n" for r in results["episodes"])
    atomic_write_bytes(out_dir / "episodes.jsonl", lines.encode())
    summary = {
        "task": task,
        "instruction": instruction,
        "checkpoint": str(ckpt_path),
        "seed": seed,
        **summarize(results["episodes"]),
    }
    atomic_write_bytes(out_dir / "summary.json", json.dumps(summary, indent=2).encode())
    from lamp.logger import Logger

    with Logger(out_dir, tensorboard=False) as logger:
        for k, frames in enumerate(results["frames"]):
            logger.video(f"episode{k:03d}", frames, seed + k)
    return {"out": out_dir, **summary}
