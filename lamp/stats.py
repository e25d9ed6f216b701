"""Small statistics shared by `lamp eval` and `lamp ablate`: means with percentile-bootstrap 95% intervals."""

from __future__ import annotations

import numpy as np


def bootstrap_ci(
    values: np.ndarray | list[float], confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): the sample mean and a percentile-bootstrap interval; one value gives a zero-width interval.

    Success rates from a handful of seeds are skewed and bounded, so a bootstrap says more than mean ± 1.96·sem.
    """
    data = np.asarray(values, dtype=np.float64).ravel()
    data = data[np.isfinite(data)]
    if data.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(data.mean())
    if data.size == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return mean, float(low), float(high)
