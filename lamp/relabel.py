"""Between the env and the replay: each episode gets its language input when it starts and, in pretraining, its
reward from the scorer when it ends (the scorer relabels the whole episode at once, from its first and each frame).

Pretraining samples a prompt per episode from the prompt style (the embedding is the `lang` observation, the same
prompt scores the frames); Plan2Explore-only pretraining (no scorer) stores a zero extrinsic reward; fine-tuning keeps
the task's reward and feeds the task instruction's embedding (or nothing, without a scorer).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np


class Relabeler:
    """`begin` and `end` are the driver's per-episode callbacks; finished episodes go into `replay`, their statistics
    into `metrics` (lists the loop averages at its next metrics line)."""

    def __init__(
        self,
        mode: str,
        replay: Any,
        progress: Any,
        scorer: Any = None,
        style: Any = None,
        lang: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        from lamp.visualize import TopFrames

        self.mode, self.replay, self.progress = mode, replay, progress
        self.scorer, self.style, self.lang = scorer, style, lang
        self.rng = rng if rng is not None else np.random.default_rng()
        self.metrics: dict[str, list[float]] = defaultdict(list)
        self.prompts: dict[int, str] = {}  # the prompt of each worker's current episode
        self.nouns: dict[int, str] = {}  # and its scene's object class: per-class metrics keep the tag count bounded
        self.top_frames = TopFrames(k=8)
        self.latest_episode: dict[str, Any] | None = None  # worker 0's last episode, for the reward-curve video

    def begin(self, worker: int, info: dict) -> dict[str, np.ndarray]:
        """Per-episode observation keys: the prompt's embedding (pretraining) or the task instruction's."""
        if self.scorer is None:  # no language at all (Plan2Explore-only, from scratch)
            return {}
        if self.mode == "finetune":
            return {"lang": self.lang}
        noun = str(info.get("noun", "object"))
        prompt = self.style.sample(noun, self.rng)
        self.prompts[worker], self.nouns[worker] = prompt, noun
        return {"lang": self.scorer.embed_prompts([prompt])[0].cpu().numpy()}

    def end(self, worker: int, episode: dict[str, np.ndarray]) -> None:
        """Relabel a finished pretraining episode with the scorer, log it, and insert it into the replay."""
        from envs.common import SCORER_KEY

        self.progress.episodes += 1
        metrics = self.metrics
        metrics["episode/length"].append(len(episode["reward"]))
        metrics["episode/success"].append(float(episode["success"].max()))
        metrics["episode/task_return"].append(float(episode["task_reward"][1:].sum()))
        prompt = None
        frames = episode.pop(SCORER_KEY, None)  # the scorer's 128 px view lives only until the episode is scored
        if self.mode == "pretrain" and self.scorer is None:  # Plan2Explore only: no extrinsic reward at all
            episode["reward"] = np.zeros_like(episode["reward"], dtype=np.float32)
        elif self.mode == "pretrain":
            prompt = self.prompts[worker]
            frames = episode["image"] if frames is None else frames
            vlm = self.scorer.score_episode(frames, prompt)
            episode["reward"] = vlm.astype(np.float32)
            metrics["vlm/reward_mean"].append(float(vlm.mean()))
            metrics["vlm/reward_min"].append(float(vlm.min()))
            metrics["vlm/reward_max"].append(float(vlm.max()))
            noun = self.nouns.get(worker, "object")  # per object class, not per sentence: thousands of prompts
            for stat, value in (("mean", vlm.mean()), ("min", vlm.min()), ("max", vlm.max())):
                metrics[f"vlm_noun/{noun.replace(' ', '_')}/{stat}"].append(float(value))
            self.top_frames.update(noun, frames, vlm, prompt)
        metrics["episode/return"].append(float(episode["reward"][1:].sum()))
        self.replay.add_episode(episode)
        if worker == 0:
            self.latest_episode = {"image": episode["image"], "reward": episode["reward"], "prompt": prompt}
