from abc import abstractmethod

import numpy as np

from rlbench.action_modes.arm_action_modes import ArmActionMode, JointPosition
from rlbench.action_modes.gripper_action_modes import GripperActionMode, GripperJointPosition


class ActionMode(object):
    def __init__(self, arm_action_mode: "ArmActionMode", gripper_action_mode: "GripperActionMode"):
        self.arm_action_mode = arm_action_mode
        self.gripper_action_mode = gripper_action_mode

    @abstractmethod
    def action(self, scene, action: np.ndarray):
        pass

    @abstractmethod
    def action_shape(self, scene):
        pass

    def action_bounds(self):
        raise NotImplementedError("You must define your own action bounds.")


class MoveArmThenGripper(ActionMode):
    """The arm action is applied first, then the gripper action (skipped if the arm raises)."""

    def action(self, scene, action: np.ndarray):
        arm_act_size = np.prod(self.arm_action_mode.action_shape(scene))
        arm_action = np.array(action[:arm_act_size])
        ee_action = np.array(action[arm_act_size:])
        self.arm_action_mode.action(scene, arm_action)
        self.gripper_action_mode.action(scene, ee_action)

    def action_shape(self, scene):
        return np.prod(self.arm_action_mode.action_shape(scene)) + np.prod(self.gripper_action_mode.action_shape(scene))


class JointPositionActionMode(ActionMode):
    def __init__(self):
        super().__init__(JointPosition(False), GripperJointPosition(True))

    def action(self, scene, action: np.ndarray):
        raise NotImplementedError("stub: joint modes are not simulated")

    def action_shape(self, scene):
        return np.prod(self.arm_action_mode.action_shape(scene)) + np.prod(self.gripper_action_mode.action_shape(scene))

    def action_bounds(self):
        return np.array(7 * [-0.1] + [0.0]), np.array(7 * [0.1] + [0.04])
