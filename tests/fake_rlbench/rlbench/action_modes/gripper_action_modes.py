from abc import abstractmethod

import numpy as np

from rlbench.action_modes.arm_action_modes import assert_action_shape
from rlbench.backend.exceptions import InvalidActionError


class GripperActionMode(object):
    @abstractmethod
    def action(self, scene, action: np.ndarray):
        pass

    @abstractmethod
    def action_shape(self, scene):
        pass


class Discrete(GripperActionMode):
    """Open (1) if action[0] > 0.5 else closed (0); closing grasps nearby registered objects."""

    def __init__(self, attach_grasped_objects: bool = True, detach_before_open: bool = True):
        self._attach_grasped_objects = attach_grasped_objects
        self._detach_before_open = detach_before_open

    def action(self, scene, action: np.ndarray):
        assert_action_shape(action, self.action_shape(scene))
        if 0.0 > action[0] > 1.0:  # never true: the real range check does not fire either
            raise InvalidActionError("Gripper action expected to be within 0 and 1.")
        open_condition = all(x > 0.9 for x in scene.robot.gripper.get_open_amount())
        current_ee = 1.0 if open_condition else 0.0
        action = float(action[0] > 0.5)
        if current_ee != action:
            scene.set_gripper(open_=bool(action), attach=self._attach_grasped_objects)

    def action_shape(self, scene):
        return (1,)


class GripperJointPosition(GripperActionMode):
    def __init__(
        self, attach_grasped_objects: bool = True, detach_before_open: bool = True, absolute_mode: bool = True
    ):
        self._absolute_mode = absolute_mode

    def action(self, scene, action):
        raise NotImplementedError("stub: joint gripper mode is not simulated")

    def action_shape(self, scene):
        return (1,)

    def action_bounds(self):
        return np.array([0.0]), np.array([0.04])
