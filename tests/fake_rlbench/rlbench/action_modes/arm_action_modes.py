"""Arm action modes; only EndEffectorPoseViaPlanning/IK are simulated (straight-line motion in the stub)."""

from abc import abstractmethod
from enum import Enum

import numpy as np

from rlbench import FLAVOR
from rlbench.backend.exceptions import InvalidActionError


def assert_action_shape(action: np.ndarray, expected_shape: tuple):
    if np.shape(action) != expected_shape:
        raise InvalidActionError(
            "Expected the action shape to be: %s, but was shape: %s" % (str(expected_shape), str(np.shape(action)))
        )


def assert_unit_quaternion(quat):
    if not np.isclose(np.linalg.norm(quat), 1.0):
        raise InvalidActionError("Action contained non unit quaternion!")


def _qmul(a, b):
    """Hamilton product of xyzw quaternions."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def _rotate(q, v):
    qv = np.array([*v, 0.0])
    conj = np.array([-q[0], -q[1], -q[2], q[3]])
    return _qmul(_qmul(q, qv), conj)[:3]


def calculate_delta_pose(robot, action: np.ndarray):
    a_x, a_y, a_z, a_qx, a_qy, a_qz, a_qw = action
    x, y, z, qx, qy, qz, qw = robot.arm.get_tip().get_pose()
    new_rot = _qmul([a_qx, a_qy, a_qz, a_qw], [qx, qy, qz, qw])
    return np.array([a_x + x, a_y + y, a_z + z, *new_rot])


class RelativeFrame(Enum):
    WORLD = 0
    EE = 1


class ArmActionMode(object):
    _callable_each_step = None

    @abstractmethod
    def action(self, scene, action: np.ndarray):
        pass

    @abstractmethod
    def action_shape(self, scene):
        pass

    def set_control_mode(self, robot):
        robot.arm.set_control_loop_enabled(True)

    def record_end(self, scene, steps=60, step_scene=True):
        return True


class JointVelocity(ArmActionMode):
    def action(self, scene, action):
        raise NotImplementedError("stub: joint modes are not simulated")

    def action_shape(self, scene):
        return (len(scene.robot.arm.joints),)

    def set_control_mode(self, robot):
        robot.arm.set_control_loop_enabled(False)


class JointPosition(ArmActionMode):
    def __init__(self, absolute_mode: bool = True):
        self._absolute_mode = absolute_mode

    def action(self, scene, action):
        raise NotImplementedError("stub: joint modes are not simulated")

    def action_shape(self, scene):
        return (len(scene.robot.arm.joints),)


class JointTorque(JointVelocity):
    pass


class _EndEffectorMode(ArmActionMode):
    def __init__(
        self,
        absolute_mode: bool = True,
        frame="world" if FLAVOR == "lamp" else RelativeFrame.WORLD,
        collision_checking: bool = False,
    ):
        self._absolute_mode = absolute_mode
        self._frame = frame
        self._collision_checking = collision_checking
        if FLAVOR == "lamp" and frame not in ["world", "end effector"]:
            raise ValueError("Expected frame to one of: 'world, 'end effector'")

    def _is_world(self) -> bool:
        # master compares with the enum: a string frame falls through to the end-effector branch (real pitfall)
        return self._frame == "world" if FLAVOR == "lamp" else self._frame == RelativeFrame.WORLD

    def _target(self, scene, action):
        assert_action_shape(action, (7,))
        action = np.asarray(action, dtype=np.float64)
        assert_unit_quaternion(action[3:])
        if self._absolute_mode:
            return action
        if not self._is_world():  # deltas expressed in the tip frame
            tip_q = scene.robot.arm.get_tip().get_pose()[3:]
            action = np.concatenate([_rotate(tip_q, action[:3]), action[3:]])
        return calculate_delta_pose(scene.robot, action)

    def action(self, scene, action: np.ndarray):
        target = self._target(scene, action)
        if not scene.in_workspace(target[:3]):
            raise InvalidActionError("A path could not be found because the target is outside of workspace.")
        fault = scene.pop_planning_fault()
        if fault is not None:
            raise InvalidActionError("A path could not be found.") from fault
        scene.move_tip(target)

    def action_shape(self, scene):
        return (7,)


class EndEffectorPoseViaPlanning(_EndEffectorMode):
    pass


class EndEffectorPoseViaIK(_EndEffectorMode):
    def _target(self, scene, action):
        target = super()._target(scene, action)
        if FLAVOR == "lamp":
            target[3:] = [0, 1, 0, 0]
        return target


if FLAVOR != "master":
    del RelativeFrame  # the LAMP fork uses strings for frames
