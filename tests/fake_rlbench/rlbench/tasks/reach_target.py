from rlbench.backend.task import Task
from rlbench.tasks._common import TABLE_HIGH, TABLE_LOW


class ReachTarget(Task):
    def init_task(self) -> None:
        self.main_object = "target"
        self.register_success_conditions(lambda: self._dist("target") < 0.05)

    def init_episode(self, index: int):
        self._place("target", TABLE_LOW, TABLE_HIGH)
        return ["reach the red target"]

    def variation_count(self) -> int:
        return 20

    def reward(self) -> float:
        return -self._dist("target")
