"""Statistics for results over a few seeds (Agarwal et al. 2021, "Deep RL at the Edge of the
Statistical Precipice"; the quantities rliable computes).

rliable 1.2 itself does not import beside pandas 3 (its dependency ``arch`` fails), so the
three quantities the MuJoCo table needs are written here, numpy only, and tested in
``tests/test_rl_stats.py`` against their definitions:

- :func:`bootstrap_ci`: the percentile bootstrap interval of a statistic over seeds;
- :func:`iqm`: the interquartile mean (the mean of the middle 50% of runs, rliable's
  ``aggregate_iqm``: ``scipy.stats.trim_mean(x, 0.25)``);
- :func:`probability_of_improvement`: P(X > Y) + P(X = Y) / 2 for a run X of one algorithm and a
  run Y of another (the Mann-Whitney U statistic over ``len(x) * len(y)``).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

__all__ = ["bootstrap_ci", "iqm", "probability_of_improvement"]


def iqm(values: Sequence[float]) -> float:
    """The interquartile mean: the 25% lowest and 25% highest runs trimmed (a quarter of ``n``
    rounded down at each end, as ``scipy.stats.trim_mean(values, 0.25)``), the rest averaged.

    >>> iqm([1.0, 2.0, 3.0, 4.0, 100.0, -50.0, 5.0, 6.0])
    3.5
    """
    x = np.sort(np.asarray(values, dtype=float))
    cut = int(0.25 * len(x))
    return float(x[cut : len(x) - cut].mean())


def bootstrap_ci(
    values: Sequence, statistic: Callable = np.mean, confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """The percentile bootstrap interval of ``statistic`` over ``values`` (one entry per seed; an
    entry may be a whole learning curve, which ``statistic`` then reduces): ``values`` resampled
    with replacement ``resamples`` times, the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
    quantiles of the statistic. One value gives the degenerate interval ``(v, v)``."""
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(data), size=(resamples, len(data)))
    stats = np.array([statistic(data[p]) for p in picks])
    low, high = np.quantile(stats, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def probability_of_improvement(x: Sequence[float], y: Sequence[float]) -> float:
    """P(X > Y) + P(X = Y) / 2, X a run (seed) of ``x``'s algorithm and Y one of ``y``'s.

    >>> probability_of_improvement([3.0, 4.0], [1.0, 3.0])
    0.875
    """
    a, b = np.asarray(x, dtype=float)[:, None], np.asarray(y, dtype=float)[None, :]
    return float(((a > b) + 0.5 * (a == b)).mean())
