import numpy as np

from rlbench import FLAVOR
from rlbench.backend.task import Task
from rlbench.tasks._common import TABLE_HIGH, TABLE_LOW


class TakeLidOffSaucepan(Task):
    def init_task(self) -> None:
        self.register_graspable_objects(["saucepan_lid_grasp_point"])
        self.main_object = "saucepan_lid_grasp_point"
        self.register_success_conditions(
            lambda: (
                self._grasped("saucepan_lid_grasp_point")
                and self._dist("saucepan_lid_grasp_point", self.scene.objects["success"]) < 0.05
            )
        )

    def init_episode(self, index: int):
        pos = self._place("saucepan_lid_grasp_point", TABLE_LOW, TABLE_HIGH)
        self.scene.objects["success"] = pos + np.array([0.0, 0.0, 0.15])
        return [
            "take lid off the saucepan",
            "using the handle, lift the lid off of the pan",
            "remove the lid from the pan",
        ]

    def variation_count(self) -> int:
        return 1

    if FLAVOR == "lamp":

        def reward(self) -> float:
            if not self._grasped("saucepan_lid_grasp_point"):
                return float(np.exp(-self._dist("saucepan_lid_grasp_point")))
            return float(1 + np.exp(-self._dist("saucepan_lid_grasp_point", self.scene.objects["success"])))

        def change_reward(self, lang) -> None:
            self.reward_lang = lang

        def get_low_dim_state(self):
            return np.hstack([self.reward(), super().get_low_dim_state()])
    else:

        def reward(self) -> float:
            lid = "saucepan_lid_grasp_point"
            return -self._dist(lid) - self._dist(lid, self.scene.objects["success"])
