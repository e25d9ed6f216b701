import numpy as np

from rlbench import FLAVOR
from rlbench.backend.task import Task
from rlbench.tasks._common import TABLE_HIGH, TABLE_LOW

COLORS = [
    "red",
    "maroon",
    "lime",
    "green",
    "blue",
    "navy",
    "yellow",
    "cyan",
    "magenta",
    "silver",
    "gray",
    "orange",
    "olive",
    "purple",
    "teal",
    "azure",
    "violet",
    "rose",
    "black",
    "white",
]


class PickUpCup(Task):
    def init_task(self) -> None:
        self.register_graspable_objects(["cup1"])
        self.main_object = "cup1"
        self.register_success_conditions(
            lambda: self._grasped("cup1") and self._dist("cup1", self.scene.objects["success"]) > 0.05
        )

    def init_episode(self, index: int):
        pos = self._place("cup1", TABLE_LOW, TABLE_HIGH)
        self.scene.objects["success"] = pos.copy()
        return [
            "pick up the %s cup" % COLORS[index],
            "grasp the %s cup and lift it" % COLORS[index],
            "lift the %s cup" % COLORS[index],
        ]

    def variation_count(self) -> int:
        return len(COLORS)

    def get_low_dim_state(self):
        state = super().get_low_dim_state()
        return np.hstack([self.reward(), state]) if FLAVOR == "lamp" else state

    if FLAVOR == "lamp":

        def reward(self) -> float:
            if not self._grasped("cup1"):
                return float(np.exp(-self._dist("cup1")))
            return float(1 + np.exp(-self._dist("cup1", self.scene.objects["success"])))

        def change_reward(self, lang) -> None:
            self.reward_lang = lang
