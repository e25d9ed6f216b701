"""TaskEnvironment.reset/step with the real return types and exceptions, plus the stub's fault hooks."""

from __future__ import annotations

import numpy as np
from pyrep.errors import ConfigurationPathError

from rlbench import FLAVOR, _stub
from rlbench.backend.exceptions import InvalidActionError, TaskEnvironmentError

_MAX_RESET_ATTEMPTS = 40


class TaskEnvironment(object):
    def __init__(
        self,
        pyrep,
        robot,
        scene,
        task,
        action_mode,
        dataset_root,
        obs_config,
        static_positions=False,
        attach_grasped_objects=True,
        shaped_rewards=False,
    ):
        self._pyrep = pyrep
        self._robot = robot
        self._scene = scene
        self._task = task
        self._variation_number = 0
        self._action_mode = action_mode
        self._dataset_root = dataset_root
        self._obs_config = obs_config
        self._static_positions = static_positions
        self._attach_grasped_objects = attach_grasped_objects
        self._shaped_rewards = shaped_rewards
        self._reset_called = False
        self._scene.load(self._task)
        self._pyrep.start()

    def get_name(self) -> str:
        return self._task.get_name()

    def sample_variation(self) -> int:
        self._variation_number = np.random.randint(0, self._task.variation_count())
        return self._variation_number

    def set_variation(self, v: int) -> None:
        if v >= self.variation_count():
            raise TaskEnvironmentError(
                "Requested variation %d, but there are only %d variations." % (v, self.variation_count())
            )
        self._variation_number = v

    def variation_count(self) -> int:
        return self._task.variation_count()

    def _reset(self):
        self._scene.reset()
        _stub.tick("reset")
        desc = self._scene.init_episode(
            self._variation_number, max_attempts=_MAX_RESET_ATTEMPTS, randomly_place=not self._static_positions
        )
        self._reset_called = True
        return desc, self._scene.get_observation()

    if FLAVOR == "lamp":

        def reset(self):
            return self._reset()
    else:

        def reset(self, demo=None):
            return self._reset()

    def get_observation(self):
        return self._scene.get_observation()

    def step(self, action):
        if not self._reset_called:
            raise RuntimeError("Call 'reset' before calling 'step' on a task.")
        _stub.last_actions.append(np.array(action, copy=True))
        try:
            _stub.tick("step")
        except InvalidActionError as e:  # a planning failure: chained from ConfigurationPathError, as in RLBench
            if e.__cause__ is None and not e.args:
                raise InvalidActionError("A path could not be found.") from ConfigurationPathError("stub fault")
            raise
        self._action_mode.action(self._scene, action)
        success, terminate = self._task.success()
        reward = float(success)
        if self._shaped_rewards:
            reward = self._task.reward()
            if reward is None:
                raise RuntimeError(
                    "User requested shaped rewards, but task %s does not have a defined reward() "
                    "function." % self._task.get_name()
                )
        return self._scene.get_observation(), reward, terminate

    def get_demos(
        self,
        amount: int,
        live_demos: bool = False,
        image_paths: bool = False,
        callable_each_step=None,
        max_attempts: int = 10,
        random_selection: bool = True,
        from_episode_number: int = 0,
    ):
        raise NotImplementedError("stub: demos are not simulated")
