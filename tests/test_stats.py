"""Bootstrap intervals: contain the mean, shrink with more data, degenerate sensibly."""

from __future__ import annotations

import math

import numpy as np

from lamp.stats import bootstrap_ci


def test_interval_contains_mean_and_shrinks_with_more_data() -> None:
    rng = np.random.default_rng(0)
    small = rng.binomial(1, 0.3, size=10).astype(float)
    large = rng.binomial(1, 0.3, size=1000).astype(float)
    m, lo, hi = bootstrap_ci(small)
    assert lo <= m <= hi and lo >= 0.0 and hi <= 1.0
    _m2, lo2, hi2 = bootstrap_ci(large)
    assert hi2 - lo2 < hi - lo
    assert lo2 < 0.3 < hi2  # covers the true rate
    assert abs((hi2 - lo2) / 2 - 1.96 * large.std() / math.sqrt(large.size)) < 0.01  # ≈ normal theory at n=1000


def test_degenerate_inputs() -> None:
    assert bootstrap_ci([0.5]) == (0.5, 0.5, 0.5)
    assert bootstrap_ci([1.0, 1.0, 1.0]) == (1.0, 1.0, 1.0)
    assert all(math.isnan(x) for x in bootstrap_ci([]))
    assert bootstrap_ci([1.0, float("nan"), 0.0])[0] == 0.5
    assert bootstrap_ci([0.0, 1.0], seed=3) == bootstrap_ci([0.0, 1.0], seed=3)
