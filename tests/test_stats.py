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


def test_first_reaching_and_curve_area_by_hand() -> None:
    from lamp.stats import curve_area, first_reaching

    curve = [(0, 0.0), (1000, 0.0), (2000, 0.6), (3000, 0.4), (4000, 1.0)]
    assert first_reaching(curve, 0.5) == 2000 and first_reaching(curve, 0.4) == 2000
    assert first_reaching(curve, 1.0) == 4000 and first_reaching(curve, 1.01) is None
    # trapezoids: 0 + 300 + 500 + 700 = 1500 over 4000 steps
    assert curve_area(curve, 4000) == 1500 / 4000
    assert curve_area(curve, 2500) == (0 + 300 + 0.6 * 500) / 2500  # the 2000-step value holds to 2500
    assert math.isnan(curve_area(curve, 5000))  # the run stopped before 5000: no area, not a flat tail
    assert math.isnan(curve_area([], 1000))


def test_difference_ci_of_two_groups() -> None:
    from lamp.stats import difference_ci

    diff, low, high = difference_ci([3000, 4000, 5000], [8000, 9000, 10000])
    assert diff == -5000 and -7000 <= low < diff < high <= -3000  # clearly apart: the interval excludes 0
    diff, low, high = difference_ci([1000, 9000], [5000, 5000])
    assert diff == 0 and low < 0 < high  # overlapping groups: the interval holds 0
    assert all(math.isnan(v) for v in difference_ci([float("nan")], [1.0]))
    assert difference_ci([2.0], [1.0]) == (1.0, 1.0, 1.0)
