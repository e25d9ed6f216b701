import numpy as np

from rlbench import FLAVOR
from rlbench.backend.task import Task
from rlbench.tasks._common import TABLE_HIGH, TABLE_LOW
from rlbench.tasks.pick_up_cup import COLORS


class PushButton(Task):
    """The button joint sinks by the tip's downward travel while the tip is within 3 cm (xy) of it."""

    def init_task(self) -> None:
        self.q = 0.0
        self.q0 = 0.0
        self.main_object = "push_button_target"
        self.register_success_conditions(lambda: abs(self.q - self.q0) > 0.003)

    def init_episode(self, index: int):
        self._place("push_button_target", TABLE_LOW, TABLE_HIGH)
        self.q = 0.0
        return ["push the %s button" % COLORS[index % 18], "push down the %s button" % COLORS[index % 18]]

    def step(self) -> None:
        button = self.scene.objects["push_button_target"]
        tip = self.robot.arm.get_tip().get_position()
        if np.linalg.norm(tip[:2] - button[:2]) < 0.03:
            self.q = max(self.q, float(button[2] + 0.02 - tip[2]))

    def variation_count(self) -> int:
        return 18

    if FLAVOR == "lamp":

        def reward(self) -> float:
            return -self._dist("push_button_target") + 10 * min(abs(self.q - self.q0) - 0.003, 0)

        def change_reward(self, lang) -> None:
            self.reward_lang = lang
