"""Confidence intervals for the mean of a metric over examples.

Two cases, chosen per metric:

* 0/1 metrics (exact match, multiple-choice grade): the Wilson score interval,
  which stays inside [0, 1] and is honest at 0 successes, where "zero accuracy
  at small scale" lives.
* continuous metrics: a percentile bootstrap of the mean. When the values take
  few distinct values (edit distances are small integers) the resample is drawn
  exactly as multinomial counts over the distinct values, which costs
  ``n_resamples x n_distinct`` instead of ``n_resamples x n``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

#: above this many distinct values the bootstrap resamples indices
_MAX_DISTINCT_FOR_COUNTS = 512
#: resampled values held in memory at once by the index bootstrap
_CHUNK_ELEMENTS = 4_000_000


def wilson_interval(
    successes: np.ndarray | float, n: np.ndarray | float, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion, vectorised over arrays.

    ``n == 0`` gives the uninformative interval [0, 1].
    """
    k = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    z = sps.norm.ppf(0.5 + confidence / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1.0 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
        low = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), 0.0)
        high = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), 1.0)
    # exact at the edges: the closed form can be off by rounding there
    low = np.where(k == 0, 0.0, low)
    high = np.where(k == n, 1.0, high)
    return low, high


def bootstrap_means(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_resamples`` bootstrap resamples of ``values`` (same size, with replacement)."""
    x = np.asarray(values, dtype=float)
    n = x.size
    if n == 0:
        return np.full(n_resamples, np.nan)
    distinct, counts = np.unique(x, return_counts=True)
    if distinct.size <= _MAX_DISTINCT_FOR_COUNTS:
        # resampling n items from the empirical distribution == multinomial counts
        draws = rng.multinomial(n, counts / n, size=n_resamples)
        return draws @ distinct / n
    means = np.empty(n_resamples)
    per_chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_resamples, per_chunk):
        stop = min(n_resamples, start + per_chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = x[idx].mean(axis=1)
    return means


def bootstrap_mean_interval(
    values: np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean of ``values``."""
    rng = np.random.default_rng(0) if rng is None else rng
    means = bootstrap_means(values, n_resamples, rng)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)
