"""env -> episodes: steps a vector env with a policy and hands every finished episode, whole, to callbacks.

Step t of an episode holds observation o_t, the action chosen at o_t, and the reward/is_first/is_last/is_terminal of
arriving at o_t (the DreamerV3 convention the replay uses). `begin_episode(worker, info)` is called on every first
observation and may add per-episode keys (the prompt embedding `lang`); the scorer relabels a finished episode in a
callback, before the replay sees it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Policy = Callable[[dict[str, np.ndarray], Any], tuple[np.ndarray, Any]]
EpisodeCallback = Callable[[int, dict[str, np.ndarray]], None]
INFO_KEYS = ("success", "task_reward")  # per-step info values kept in episodes for logging (not stored in replay)


class Driver:
    """Lock-step collection from `envs` (a VectorEnv: stacked obs, per-env info with `first`/`dropped`)."""

    def __init__(self, envs: Any, begin_episode: Callable[[int, dict], dict[str, np.ndarray]] | None = None) -> None:
        self.envs = envs
        self.num_envs = int(envs.num_envs)
        self.begin_episode = begin_episode or (lambda worker, info: {})
        self.callbacks: list[EpisodeCallback] = []
        self.policy_state: Any = None
        self.steps = 0
        self.episodes = 0
        self._current: dict[str, np.ndarray] = {}
        self._infos: list[dict] = []
        self._extra: list[dict[str, np.ndarray]] = [{} for _ in range(self.num_envs)]
        self._buffers: list[list[dict[str, Any]]] = [[] for _ in range(self.num_envs)]

    def on_episode(self, callback: EpisodeCallback) -> None:
        self.callbacks.append(callback)

    def reset(self, seed: int | None = None) -> None:
        obs, infos = self.envs.reset(seed=seed)
        zeros = np.zeros(self.num_envs, bool)
        self._set_current(obs, np.zeros(self.num_envs, np.float32), zeros, zeros, infos)
        self.policy_state = None

    def _set_current(self, obs: dict, reward: np.ndarray, term: np.ndarray, trunc: np.ndarray, infos: list) -> None:
        for i, info in enumerate(infos):
            if info.get("first"):
                self._buffers[i] = []  # also drops the partial episode of a crashed (restarted) worker
                self._extra[i] = self.begin_episode(i, info)
        current = dict(obs)
        for key in self._extra[0]:
            current[key] = np.stack([extra[key] for extra in self._extra])
        current["reward"] = np.asarray(reward, np.float32)
        current["is_first"] = np.array([bool(info.get("first")) for info in infos])
        current["is_last"] = np.asarray(term, bool) | np.asarray(trunc, bool)
        current["is_terminal"] = np.asarray(term, bool)
        self._current, self._infos = current, infos

    @property
    def observation(self) -> dict[str, np.ndarray]:
        """The current stacked observation the policy will see (with reward and flags)."""
        return self._current

    def step(self, policy: Policy) -> int:
        """One lock-step of all envs; returns how many env steps were taken (the number of envs)."""
        obs = self._current
        actions, self.policy_state = policy(obs, self.policy_state)
        actions = np.asarray(actions, np.float32)
        for i in range(self.num_envs):
            step = {key: value[i] for key, value in obs.items()}
            step["action"] = actions[i]
            for key in INFO_KEYS:
                step[key] = np.asarray(self._infos[i].get(key, 0.0), np.float32)
            self._buffers[i].append(step)
            if step["is_last"]:
                episode = {key: np.stack([s[key] for s in self._buffers[i]]) for key in step}
                self._buffers[i] = []
                self.episodes += 1
                for callback in self.callbacks:
                    callback(i, episode)
        next_obs, reward, term, trunc, infos = self.envs.step(actions)
        self._set_current(next_obs, reward, term, trunc, infos)
        self.steps += self.num_envs
        return self.num_envs
