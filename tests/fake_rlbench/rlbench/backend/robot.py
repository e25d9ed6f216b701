"""Robot(arm, gripper) over the stub scene's state."""

import numpy as np


class _Tip:
    def __init__(self, scene):
        self._scene = scene

    def get_position(self, relative_to=None):
        return self._scene.tip.copy()

    def get_quaternion(self, relative_to=None):
        return self._scene.tip_quat.copy()

    def get_pose(self, relative_to=None):
        return np.concatenate([self._scene.tip, self._scene.tip_quat])

    def get_name(self):
        return "Panda_tip"


class _Arm:
    joints = tuple(range(7))

    def __init__(self, scene):
        self._tip = _Tip(scene)
        self._scene = scene
        self.control_loop = True

    def get_tip(self):
        return self._tip

    def get_joint_positions(self):
        p = self._scene.tip
        return np.array([p[0], p[1], p[2] - 1.0, p[0] - p[1], 0.1, 0.2, 0.3], dtype=np.float64)

    def get_joint_velocities(self):
        return np.zeros(7)

    def get_joint_forces(self):
        return np.zeros(7)

    def set_control_loop_enabled(self, value: bool):
        self.control_loop = value

    def get_visuals(self):
        return []


class _Gripper:
    def __init__(self, scene):
        self._scene = scene

    def get_open_amount(self):
        return [1.0, 1.0] if self._scene.gripper_open else [0.0, 0.0]

    def get_joint_positions(self):
        return np.array([0.04, 0.04]) if self._scene.gripper_open else np.array([0.0, 0.0])

    def get_grasped_objects(self):
        return sorted(self._scene.grasped)

    def get_visuals(self):
        return []


class Robot(object):
    def __init__(self, arm, gripper):
        self.arm = arm
        self.gripper = gripper
