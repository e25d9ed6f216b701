import numpy as np

from rlbench import FLAVOR
from rlbench.backend.task import Task


class CloseMicrowave(Task):
    """The door angle falls as the tip pushes within 5 cm of the door (in -y)."""

    def init_task(self) -> None:
        self.main_object = "microwave_door"
        self.register_success_conditions(lambda: abs(self.q - self.q0) > np.deg2rad(40))

    def init_episode(self, index: int):
        self.scene.objects["microwave_door"] = np.array([0.3, 0.1, 0.9])
        self.q0 = self.q = 1.2
        self._last_tip = self.robot.arm.get_tip().get_position()
        return ["close microwave", "shut the microwave", "close the microwave door", "push the microwave door shut"]

    def step(self) -> None:
        tip = self.robot.arm.get_tip().get_position()
        if self._dist("microwave_door") < 0.05:
            self.q = max(0.0, self.q - max(0.0, float(self._last_tip[1] - tip[1])) * 10)
        self._last_tip = tip

    def variation_count(self) -> int:
        return 1

    if FLAVOR == "lamp":

        def reward(self) -> float:
            return -self.q - self._dist("microwave_door")

        def change_reward(self, lang) -> None:
            self.reward_lang = lang
