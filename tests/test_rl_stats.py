"""benchmarks/rl_stats.py (the MuJoCo table's statistics) against their definitions."""

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from rl_stats import bootstrap_ci, iqm, probability_of_improvement


@pytest.mark.parametrize("n", [3, 4, 5, 8, 10, 13])
def test_iqm_is_the_mean_of_the_middle_half(n):
    """rliable's IQM is scipy.stats.trim_mean(x, 0.25): a quarter of n, rounded down, cut at each end."""
    scipy_stats = pytest.importorskip("scipy.stats")
    x = np.random.default_rng(n).normal(size=n) * 100
    assert iqm(x) == pytest.approx(scipy_stats.trim_mean(x, 0.25))
    assert iqm([1.0, 2.0, 3.0, 4.0, 1000.0]) == 3.0  # the outlier (and the lowest run) trimmed


def test_probability_of_improvement_counts_every_pair():
    x, y = [1.0, 5.0, 5.0, 9.0], [5.0, 2.0, 7.0]
    pairs = list(itertools.product(x, y))
    expected = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs) / len(pairs)
    assert probability_of_improvement(x, y) == expected
    assert probability_of_improvement(y, x) == pytest.approx(1 - expected)


def test_bootstrap_interval_of_the_mean_covers_as_it_should():
    """95% percentile intervals over 10 seeds of N(0, 1) contain the true mean about 95% of the
    time (a percentile bootstrap with n = 10 under-covers a little: 88-97% over 300 samples)."""
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(300):
        low, high = bootstrap_ci(rng.normal(size=10), resamples=1000, seed=int(rng.integers(1 << 30)))
        hits += low <= 0.0 <= high
    assert 0.88 <= hits / 300 <= 0.97


def test_bootstrap_of_a_curve_statistic_resamples_whole_seeds():
    """Each resample draws whole rows (seeds), so the max of the mean curve stays within the
    rows' own range, and one seed gives the degenerate interval."""
    curves = np.array([[0.0, 1.0, 2.0], [0.0, 3.0, 1.0], [1.0, 1.0, 1.0]])
    low, high = bootstrap_ci(curves, statistic=lambda c: float(np.max(np.mean(c, axis=0))), resamples=2000)
    assert 1.0 <= low <= high <= 3.0
    assert bootstrap_ci([4.0]) == (4.0, 4.0)
