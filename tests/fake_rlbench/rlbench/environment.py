"""Environment with the LAMP-fork (or master) constructor, launch/get_task/shutdown and action_shape."""

from __future__ import annotations

import os

import numpy as np
from pyrep import PyRep

from rlbench import FLAVOR, _stub
from rlbench.backend.scene import Scene
from rlbench.observation_config import ObservationConfig
from rlbench.sim2real.domain_randomization import RandomizeEvery
from rlbench.task_environment import TaskEnvironment

SUPPORTED_ROBOTS = {"panda": 7, "jaco": 6, "mico": 6, "sawyer": 7, "ur5": 6}
if FLAVOR == "lamp":
    SUPPORTED_ROBOTS["xarm"] = 7

_live_simulators = 0  # the real CoppeliaSim allows one per process; the stub enforces it


class Environment(object):
    def _setup(
        self,
        action_mode,
        dataset_root,
        obs_config,
        headless,
        static_positions,
        robot_setup,
        randomize_every,
        frequency,
        visual_randomization_config,
        dynamics_randomization_config,
        attach_grasped_objects,
        shaped_rewards,
        extra,
    ):
        self._action_mode = action_mode
        self._dataset_root = dataset_root
        self._obs_config = obs_config
        self._headless = headless
        self._static_positions = static_positions
        self._robot_setup = robot_setup.lower()
        self._randomize_every = randomize_every
        self._frequency = frequency
        self._visual_randomization_config = visual_randomization_config
        self._dynamics_randomization_config = dynamics_randomization_config
        self._attach_grasped_objects = attach_grasped_objects
        self._shaped_rewards = shaped_rewards
        self._extra = extra
        if robot_setup not in SUPPORTED_ROBOTS:
            raise ValueError("robot_configuration must be one of %s" % str(list(SUPPORTED_ROBOTS)))
        if (
            randomize_every is not None
            and visual_randomization_config is None
            and dynamics_randomization_config is None
        ):
            raise ValueError(
                "If domain randomization is enabled, must supply either "
                "visual_randomization_config or dynamics_randomization_config"
            )
        if len(dataset_root) > 0 and not os.path.exists(dataset_root):
            raise RuntimeError("Data set root does not exists: %s" % dataset_root)
        self._pyrep = None
        self._robot = None
        self._scene = None
        self._prev_task = None

    if FLAVOR == "lamp":

        def __init__(
            self,
            action_mode,
            dataset_root: str = "",
            obs_config=ObservationConfig(),
            headless=False,
            static_positions: bool = False,
            robot_setup: str = "panda",
            randomize_every: RandomizeEvery = None,
            frequency: int = 1,
            visual_randomization_config=None,
            dynamics_randomization_config=None,
            attach_grasped_objects: bool = True,
            shaped_rewards: bool = False,
            tex_kwargs=None,
        ):
            self._setup(
                action_mode,
                dataset_root,
                obs_config,
                headless,
                static_positions,
                robot_setup,
                randomize_every,
                frequency,
                visual_randomization_config,
                dynamics_randomization_config,
                attach_grasped_objects,
                shaped_rewards,
                {"tex_kwargs": tex_kwargs},
            )
    else:

        def __init__(
            self,
            action_mode,
            dataset_root: str = "",
            obs_config=ObservationConfig(),
            headless=False,
            static_positions: bool = False,
            robot_setup: str = "panda",
            randomize_every: RandomizeEvery = None,
            frequency: int = 1,
            visual_randomization_config=None,
            dynamics_randomization_config=None,
            attach_grasped_objects: bool = True,
            shaped_rewards: bool = False,
            arm_max_velocity: float = 1.0,
            arm_max_acceleration: float = 4.0,
        ):
            self._setup(
                action_mode,
                dataset_root,
                obs_config,
                headless,
                static_positions,
                robot_setup,
                randomize_every,
                frequency,
                visual_randomization_config,
                dynamics_randomization_config,
                attach_grasped_objects,
                shaped_rewards,
                {"arm_max_velocity": arm_max_velocity, "arm_max_acceleration": arm_max_acceleration},
            )

    def launch(self):
        global _live_simulators
        if self._pyrep is not None:
            raise RuntimeError("Already called launch!")
        if _live_simulators:
            raise RuntimeError("stub: one simulator per process")
        _stub.tick("launch")
        self._pyrep = PyRep()
        self._pyrep.launch("", headless=self._headless)
        _live_simulators += 1
        _stub.counters["headless"] = int(bool(self._headless))
        self._scene = Scene(self._pyrep, self._robot_setup, self._obs_config)
        self._robot = self._scene.robot
        self._action_mode.arm_action_mode.set_control_mode(self._robot)

    def shutdown(self):
        global _live_simulators
        if self._pyrep is not None:
            self._pyrep.shutdown()
            _live_simulators -= 1
            _stub.counters["shutdown"] = _stub.counters.get("shutdown", 0) + 1
        self._pyrep = None

    def get_task(self, task_class) -> TaskEnvironment:
        if self._pyrep is None:
            self.launch()
        self._scene.unload()
        task = task_class(self._pyrep, self._robot)
        task.scene = self._scene
        self._prev_task = task
        return TaskEnvironment(
            self._pyrep,
            self._robot,
            self._scene,
            task,
            self._action_mode,
            self._dataset_root,
            self._obs_config,
            self._static_positions,
            self._attach_grasped_objects,
            self._shaped_rewards,
        )

    @property
    def action_shape(self):
        return (np.int64(self._action_mode.action_shape(self._scene)),)

    def get_demos(
        self,
        task_name: str,
        amount: int,
        variation_number=0,
        image_paths=False,
        random_selection: bool = True,
        from_episode_number: int = 0,
    ):
        if self._dataset_root is None or len(self._dataset_root) == 0:
            raise RuntimeError("Can't ask for a stored demo when no dataset root provided.")
        raise NotImplementedError("stub: stored demos are not simulated")
