"""Stand-in for RLBench 1.2.0 (LAMP fork by default; RLBENCH_STUB_FLAVOR=master for upstream)."""

import os

__version__ = "1.2.0"

import numpy as np
import pyrep

_pv = pyrep.__version__.split(".")
if len(_pv) < 4 or tuple(int(x) for x in _pv[:4]) < (4, 1, 0, 2):
    raise ImportError(f"PyRep version must be greater than 4.1.0.2. Please update PyRep. (found {pyrep.__version__})")

FLAVOR = os.environ.get("RLBENCH_STUB_FLAVOR", "lamp")
if FLAVOR == "master":
    try:
        import gymnasium  # noqa: F401  (master registers its gym envs at import time)
    except ImportError as e:  # pragma: no cover
        raise ImportError("rlbench (master) needs gymnasium") from e

from rlbench.action_modes.action_mode import ActionMode  # noqa: E402
from rlbench.action_modes.arm_action_modes import ArmActionMode  # noqa: E402
from rlbench.action_modes.gripper_action_modes import GripperActionMode  # noqa: E402
from rlbench.environment import Environment  # noqa: E402
from rlbench.observation_config import CameraConfig, ObservationConfig  # noqa: E402
from rlbench.sim2real.domain_randomization import RandomizeEvery, VisualRandomizationConfig  # noqa: E402

if FLAVOR == "master":
    __all__ = [
        "ActionMode",
        "ArmActionMode",
        "CameraConfig",
        "Environment",
        "GripperActionMode",
        "ObservationConfig",
        "RandomizeEvery",
        "VisualRandomizationConfig",
    ]
del np
