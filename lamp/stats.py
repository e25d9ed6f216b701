"""Small statistics shared by `lamp eval`, `lamp ablate` and the benchmarks: means with percentile-bootstrap 95%
intervals, and what a learning curve is summarised by (first evaluation over a threshold, area under it)."""

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


def first_reaching(curve: list[tuple[int, float]], threshold: float) -> int | None:
    """The env step of the first evaluation at or above `threshold`; None if no evaluation got there."""
    return next((step for step, value in curve if value >= threshold), None)


def curve_area(curve: list[tuple[int, float]], until: int) -> float:
    """Mean of a learning curve over [0, until] (trapezoids between evaluations, divided by `until`): for a success
    curve, the area under it as a fraction of always-100%. NaN if the curve does not reach `until` (a stopped run
    must not look like one that flattened)."""
    points = [(step, value) for step, value in curve if step <= until]
    if not points or curve[-1][0] < until or until <= 0:
        return float("nan")
    steps = np.array([s for s, _ in points], dtype=np.float64)
    values = np.array([v for _, v in points], dtype=np.float64)
    if steps[-1] < until:  # the last evaluation before `until` holds to it
        steps, values = np.append(steps, until), np.append(values, values[-1])
    area = float(np.sum((steps[1:] - steps[:-1]) * (values[1:] + values[:-1]) / 2))
    return area / until


def difference_ci(
    a: np.ndarray | list[float],
    b: np.ndarray | list[float],
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(mean(a) − mean(b), low, high): a percentile-bootstrap interval of the difference of two independent groups'
    means (e.g. two arms' seeds), each group resampled on its own; NaN unless both have a finite value."""
    x, y = (np.asarray(v, dtype=np.float64).ravel() for v in (a, b))
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if x.size == 0 or y.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    diffs = x[rng.integers(0, x.size, (resamples, x.size))].mean(1) - y[
        rng.integers(0, y.size, (resamples, y.size))
    ].mean(1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(diffs, [alpha, 1.0 - alpha])
    return float(x.mean() - y.mean()), float(low), float(high)
