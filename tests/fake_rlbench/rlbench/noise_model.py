import numpy as np


class NoiseModel:
    def apply(self, val):
        raise NotImplementedError()


class Identity(NoiseModel):
    def apply(self, val):
        return val


class GaussianNoise(NoiseModel):
    def __init__(self, variance, min_max_clip=None):
        self._variance = variance
        self._clip = min_max_clip

    def apply(self, val):
        val = val + np.random.normal(0.0, self._variance, size=np.shape(val))
        return val if self._clip is None else np.clip(val, *self._clip)
