"""Driver: episodes come out whole, in the replay's step convention, with per-episode keys and dropped fragments."""

from __future__ import annotations

import numpy as np

from lamp.driver import Driver


class CountingEnvs:
    """Two fake envs whose observation is the step counter; env i ends its episodes after 3 + i steps."""

    def __init__(self, crash_at: int | None = None) -> None:
        self.num_envs = 2
        self.t = [0, 0]
        self.done = [False, False]
        self.calls = 0
        self.crash_at = crash_at

    def _obs(self) -> dict[str, np.ndarray]:
        return {"state": np.array([[float(t)] for t in self.t], np.float32)}

    def reset(self, seed=None):
        self.t = [0, 0]
        self.done = [False, False]
        return self._obs(), [{"first": True, "dropped": False, "noun": f"thing{i}"} for i in range(2)]

    def step(self, actions):
        self.calls += 1
        rewards, term, trunc, infos = np.zeros(2, np.float32), np.zeros(2, bool), np.zeros(2, bool), []
        for i in range(2):
            if self.done[i] or (self.crash_at == self.calls and i == 1):
                dropped = not self.done[i]
                self.t[i], self.done[i] = 0, False
                infos.append({"first": True, "dropped": dropped, "noun": f"thing{i}"})
                continue
            self.t[i] += 1
            rewards[i] = float(self.t[i])
            trunc[i] = self.t[i] >= 3 + i
            self.done[i] = bool(trunc[i])
            infos.append({"first": False, "dropped": False, "success": self.t[i] == 2, "task_reward": 0.5})
        return self._obs(), rewards, term, trunc, infos


def test_episodes_follow_the_step_convention() -> None:
    envs = CountingEnvs()
    begun = []
    driver = Driver(envs, lambda worker, info: begun.append((worker, info["noun"])) or {"lang": np.full(2, worker)})
    episodes: list[tuple[int, dict]] = []
    driver.on_episode(lambda worker, ep: episodes.append((worker, ep)))
    driver.reset(seed=0)
    seen_actions = []

    def policy(obs, state):
        assert obs["lang"].shape == (2, 2)
        seen_actions.append(obs["state"][:, 0].copy())
        return np.tile(obs["state"], (1, 4)), (state or 0) + 1

    for _ in range(10):
        driver.step(policy)
    assert driver.steps == 20 and driver.policy_state == 10
    first = next(ep for w, ep in episodes if w == 0)
    assert first["state"][:, 0].tolist() == [0, 1, 2, 3]  # o_0 .. o_3, each stored once
    assert first["reward"].tolist() == [0, 1, 2, 3]  # reward of arriving at o_t
    assert first["is_first"].tolist() == [True, False, False, False]
    assert first["is_last"].tolist() == [False, False, False, True]
    assert first["action"][:, 0].tolist() == [0, 1, 2, 3]  # the action chosen at o_t
    assert first["lang"].tolist() == [[0, 0]] * 4
    assert first["success"].tolist() == [0, 0, 1, 0]
    env1 = next(ep for w, ep in episodes if w == 1)
    assert len(env1["reward"]) == 5 and env1["lang"][0].tolist() == [1, 1]
    assert begun[:2] == [(0, "thing0"), (1, "thing1")]
    assert len([b for b in begun if b[0] == 0]) >= 3  # a new episode begins after each one ends


def test_a_crashed_workers_partial_episode_is_dropped() -> None:
    envs = CountingEnvs(crash_at=3)
    driver = Driver(envs)
    episodes = []
    driver.on_episode(lambda worker, ep: episodes.append((worker, ep)))
    driver.reset()
    for _ in range(12):
        driver.step(lambda obs, state: (np.zeros((2, 4)), state))
    for worker, ep in episodes:
        assert ep["is_first"][0] and ep["is_last"][-1] and ep["is_first"].sum() == 1
        assert len(ep["reward"]) == 4 + worker  # only complete episodes, never the fragment cut by the crash
