import numpy as np

from rlbench import FLAVOR
from rlbench.backend.task import Task

OPTIONS = ["left", "right"]


class TurnTap(Task):
    """The handle turns by the tip's travel while it is grasped."""

    def init_task(self) -> None:
        self.q = {"left_joint": 0.0, "right_joint": 0.0}
        self.register_success_conditions(lambda: abs(self.q[self.main_object] - self.q0) > 1.57)

    def init_episode(self, index: int):
        self.scene.objects["left_joint"] = np.array([0.25, 0.1, 0.9])
        self.scene.objects["right_joint"] = np.array([0.25, -0.1, 0.9])
        self.main_object = f"{OPTIONS[index]}_joint"
        self.register_graspable_objects([self.main_object])
        self.q = {"left_joint": 0.0, "right_joint": 0.0}
        self.q0 = self.q[self.main_object]
        self._last_tip = self.robot.arm.get_tip().get_position()
        return ["turn %s tap" % OPTIONS[index], "rotate the %s tap" % OPTIONS[index]]

    def step(self) -> None:
        tip = self.robot.arm.get_tip().get_position()
        if self._grasped(self.main_object):
            self.q[self.main_object] += float(np.linalg.norm(tip[:2] - self._last_tip[:2])) * 20
        self._last_tip = tip

    def get_low_dim_state(self):  # the real file repeats pos_right where pos_left belongs
        right = self.scene.objects["right_joint"]
        return np.concatenate([[self.q["right_joint"]], right, [self.q["left_joint"]], right])

    def variation_count(self) -> int:
        return 2

    if FLAVOR == "lamp":

        def reward(self) -> float:
            return -self._dist(self.main_object) + abs(self.q[self.main_object] - self.q0)

        def change_reward(self, lang) -> None:
            self.reward_lang = lang
