import os
from enum import Enum

import numpy as np

from rlbench import FLAVOR


class RandomizeEvery(Enum):
    EPISODE = 0
    VARIATION = 1
    TRANSITION = 1


class VisualRandomizationConfig:
    def __init__(self, image_directory: str, whitelist=None, blacklist=None, randomize_arm: bool = True):
        if not os.path.isdir(image_directory):
            raise NotADirectoryError("The supplied image directory (%s) does not exist!" % image_directory)
        suffixes = (".png",) if FLAVOR == "lamp" else (".png", ".jpg")
        self._imgs = np.array(
            sorted(os.path.join(image_directory, f) for f in os.listdir(image_directory) if f.endswith(suffixes))
        )
        if len(self._imgs) == 0:
            raise RuntimeError("The supplied image directory (%s) does not have any images!" % image_directory)
        self.whitelist = whitelist
        self.blacklist = [] if blacklist is None else blacklist
        self._randomize_arm = randomize_arm

    def sample(self, samples: int) -> np.ndarray:
        return np.random.choice(self._imgs, samples)

    def should_randomize(self, obj_name: str) -> bool:
        if not self._randomize_arm and "panda" in obj_name.lower():
            return False
        return obj_name in self.whitelist if self.whitelist is not None else obj_name not in self.blacklist


class DynamicsRandomizationConfig:
    def __init__(self):
        raise NotImplementedError("Dynamics randomization coming soon! Only visual randomization available.")
