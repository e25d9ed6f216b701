"""Vector env: spawned workers, next-step auto-reset, and recovery from a crashed or hung worker."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from envs.vector import VectorEnv
from lamp.errors import UsageError

pytest.importorskip("envs.metaworld")

OPTIONS = {"size": 32, "episode_length": 4}


@pytest.fixture(scope="module")
def vec():
    env = VectorEnv("push_button", 2, OPTIONS, timeout=20, seed=0)
    yield env
    env.close()


def test_reset_step_and_autoreset(vec):
    obs, infos = vec.reset(seed=0)
    assert obs["image"].shape == (2, 32, 32, 3) and obs["state"].shape == (2, 4)
    assert vec.single_action_space.shape == (4,) and vec.single_observation_space["image"].shape == (32, 32, 3)
    assert all(info["first"] and not info["dropped"] for info in infos)
    assert not np.array_equal(obs["state"][0], obs["state"][1]) or not np.array_equal(obs["image"][0], obs["image"][1])
    truncated_seen = []
    for _ in range(4):
        obs, reward, terminated, truncated, infos = vec.step(np.zeros((2, 4)))
        truncated_seen.append(truncated.copy())
        assert reward.dtype == np.float32 and not terminated.any()
    assert truncated_seen[-1].all() and not np.any(truncated_seen[:-1])
    obs, reward, terminated, truncated, infos = vec.step(np.zeros((2, 4)))  # the next step starts new episodes
    assert all(info["first"] for info in infos) and np.all(reward == 0)
    with pytest.raises(ValueError, match="shape"):
        vec.step(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        vec.step(np.array([[0, 0, 0, 0], [np.nan, 0, 0, 0]]))


def test_crashed_worker_is_restarted_and_episode_dropped(vec):
    vec.reset(seed=1)
    vec.step(np.zeros((2, 4)))
    dropped, restarts = vec.dropped_episodes, vec.restarts
    os.kill(vec.worker_pids()[0], signal.SIGKILL)
    obs, *_, infos = vec.step(np.zeros((2, 4)))
    assert infos[0]["dropped"] and infos[0]["first"] and not infos[1]["dropped"]
    assert vec.dropped_episodes == dropped + 1 and vec.restarts == restarts + 1
    assert obs["image"].shape == (2, 32, 32, 3)
    vec.step(np.zeros((2, 4)))  # the replacement keeps working


@pytest.mark.slow
def test_hung_worker_times_out_and_is_replaced():
    env = VectorEnv("push_button", 1, OPTIONS, timeout=3, seed=0)
    try:
        env.reset(seed=0)
        os.kill(env.worker_pids()[0], signal.SIGSTOP)  # a frozen worker never answers
        *_, infos = env.step(np.zeros((1, 4)))
        assert infos[0]["dropped"] and env.dropped_episodes == 1
        env.step(np.zeros((1, 4)))
    finally:
        env.close()


def test_bad_options_fail_in_the_parent():
    with pytest.raises(UsageError, match="camera 'nope'"):
        VectorEnv("push_button", 1, {"camera": "nope"}, timeout=20)
    with pytest.raises(UsageError, match="workers must be at least 1"):
        VectorEnv("push_button", 0)


@pytest.mark.slow
def test_vector_from_config():
    from envs.vector import vector_from_config
    from lamp import config

    cfg = config.build_config([], flags=["--env.task", "turn_tap", "--env.size", "32", "--env.worker_timeout", "30"])
    with vector_from_config(cfg.env, cfg.textures, seed=3) as vec:
        assert vec.num_envs == 1 and vec.timeout == 30.0 and vec.name == "metaworld/turn_tap"
        obs, infos = vec.reset(seed=0)
        assert obs["image"].shape == (1, 32, 32, 3) and infos[0]["noun"] == "faucet"


def test_a_worker_that_keeps_failing_is_reported_with_its_own_error():
    """After the restarts the error names the worker's exception, not only "keeps failing" (RLBench pretraining
    errors are raised in the worker's reset, so this is how they reach the user)."""
    env = object.__new__(VectorEnv)  # the recovery logic alone, without processes
    env.name, env.timeout, env.dropped_episodes = "pretrain", 5.0, 0
    answers = iter([(False, ("RLBenchPretrainError", "task holds 0 of 3 objects", "tb"))] * 3)
    env._restart = lambda index: None
    env._send = lambda index, command, payload: True
    env._receive = lambda index, deadline: next(answers)
    env.close = lambda: None
    with pytest.raises(RuntimeError) as err:
        env._recover(0, None, count=True, why="timeout")
    message = str(err.value)
    assert "keeps failing right after a restart: RLBenchPretrainError: task holds 0 of 3 objects" in message
    assert "before the restarts: no answer within env.worker_timeout (5 s)" in message
    assert env.dropped_episodes == 0
