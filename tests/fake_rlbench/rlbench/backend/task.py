"""Base Task(pyrep, robot, name=None) with the overridables and framework methods of rlbench/backend/task.py."""

from __future__ import annotations

import re

import numpy as np


class Task(object):
    def __init__(self, pyrep, robot, name: str | None = None):
        self.pyrep = pyrep
        self.name = name or re.sub("(?<!^)(?=[A-Z])", "_", self.__class__.__name__).lower()
        self.robot = robot
        self.graspable: list[str] = []
        self.main_object: str | None = None
        self._success_fn = None
        self.scene = None  # stub: set by the Scene that loads the task

    # overridables
    def init_task(self) -> None:
        pass

    def init_episode(self, index: int) -> list[str]:
        raise NotImplementedError()

    def variation_count(self) -> int:
        raise NotImplementedError()

    def get_low_dim_state(self) -> np.ndarray:
        return np.concatenate([p for p in self.scene.objects.values()]) if self.scene.objects else np.zeros(0)

    def step(self) -> None:
        pass

    def reward(self) -> float | None:
        """Allows the user to customise the task and add reward shaping."""
        return None

    def cleanup(self) -> None:
        pass

    def base_rotation_bounds(self):
        return (0.0, 0.0, -3.14 / 4.0), (0.0, 0.0, 3.14 / 4.0)

    def is_static_workspace(self) -> bool:
        return False

    # framework
    def load(self) -> None:
        pass

    def register_success_conditions(self, fn) -> None:
        self._success_fn = fn

    def register_graspable_objects(self, names: list[str]) -> None:
        self.graspable = list(names)

    def success(self):
        ok = bool(self._success_fn()) if self._success_fn is not None else False
        return np.all([ok]), np.all([ok])

    def get_name(self) -> str:
        return self.name

    def get_base(self):
        return self

    def cleanup_(self) -> None:
        self.cleanup()
        self.scene.objects.clear()

    # stub helpers
    def _place(self, name: str, low, high) -> np.ndarray:
        pos = np.random.uniform(low, high)
        self.scene.objects[name] = pos
        return pos

    def _dist(self, a: str, b=None) -> float:
        other = self.robot.arm.get_tip().get_position() if b is None else b
        return float(np.linalg.norm(self.scene.objects[a] - other))

    def _grasped(self, name: str) -> bool:
        return name in self.scene.grasped
