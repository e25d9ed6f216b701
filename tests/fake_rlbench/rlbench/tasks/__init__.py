from rlbench import FLAVOR
from rlbench.tasks.close_microwave import CloseMicrowave
from rlbench.tasks.pick_up_cup import PickUpCup
from rlbench.tasks.push_button import PushButton
from rlbench.tasks.reach_target import ReachTarget
from rlbench.tasks.take_lid_off_saucepan import TakeLidOffSaucepan
from rlbench.tasks.turn_tap import TurnTap

if FLAVOR == "lamp":
    from rlbench.tasks.pick_shapenet_objects import PickShapenetObjects  # noqa: F401

__all__ = ["CloseMicrowave", "PickUpCup", "PushButton", "ReachTarget", "TakeLidOffSaucepan", "TurnTap"]
