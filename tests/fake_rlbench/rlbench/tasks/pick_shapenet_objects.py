"""LAMP fork's pretraining task: one main ShapeNet object plus distractors; success = the main object grasped."""

import random

import numpy as np

from rlbench import FLAVOR
from rlbench.backend.exceptions import DemoError
from rlbench.backend.task import Task

if FLAVOR != "lamp":  # upstream RLBench has no such task file
    raise ModuleNotFoundError("No module named 'rlbench.tasks.pick_shapenet_objects'")

SPAWN_BOUNDARY_HYPOTENUSE = 0.3436538967 * 1.5


class _Sampler:
    def __init__(self, names, num_unique):
        self.names = list(names)
        self.num_unique = num_unique


class PickShapenetObjects(Task):
    def init_task(self) -> None:
        """As the fork: runs at the first reset and puts the samplers (a mug; lamp and clock) and count (1) back."""
        self.main_shapenet_sampler = _Sampler(["mug"], -1)
        self.extra_shapenet_sampler = _Sampler(["lamp", "clock"], -1)
        self.num_objects = 1
        self.register_success_conditions(lambda: self._grasped("obj0"))

    def reset_samplers(self, main_objs, extra_objs, num_unique_main, num_unique_extra):
        self.main_shapenet_sampler = _Sampler(main_objs, num_unique_main)
        self.extra_shapenet_sampler = _Sampler(extra_objs, num_unique_extra)

    def set_num_objects(self, num_objects) -> None:
        self.num_objects = num_objects

    def change_reward(self, task) -> None:
        self.reward_lang = task

    def init_episode(self, index: int):
        self.bin_objects_meta = [random.choice(self.main_shapenet_sampler.names)]
        self.bin_objects_meta += [random.choice(self.extra_shapenet_sampler.names) for _ in range(self.num_objects - 1)]
        self.bin_objects = [f"obj{i}" for i in range(self.num_objects)]
        for name in self.bin_objects:
            self._place(name, (0.1, -0.2, 0.78), (0.4, 0.2, 0.80))
        self.main_object = "obj0"
        self.register_graspable_objects(self.bin_objects)
        return ["pick and lift and object from the container"]

    def variation_count(self) -> int:
        return 20

    def base_rotation_bounds(self):
        return (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)

    def reward(self) -> float:
        r = float(np.clip(1 - self._dist("obj0") / SPAWN_BOUNDARY_HYPOTENUSE, 0, 1))
        return r + 3.0 * self._grasped("obj0")

    def get_demos_error(self):
        raise DemoError("bin_objects_not_done is never defined", self)
