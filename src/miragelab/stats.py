"""Confidence intervals for the mean of a metric over examples.

Two cases, chosen per metric:

* 0/1 metrics (exact match, multiple-choice grade): the Wilson score interval,
  which stays inside [0, 1] and is honest at 0 successes, where "zero accuracy
  at small scale" lives.
* continuous metrics: a BCa bootstrap of the mean (:func:`bca_mean_interval`).
  When the values take few distinct values (edit distances are small integers)
  the resample is drawn exactly as multinomial counts over the distinct
  values, which costs ``n_resamples x n_distinct`` instead of ``n_resamples x n``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from miragelab.emergence import emergence_scores_sorted, sort_curve

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


def clopper_pearson_interval(
    successes: np.ndarray | float, n: np.ndarray | float, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Clopper-Pearson (exact, beta-quantile) interval for a binomial proportion, vectorised.

    ``[B(a/2; k, n-k+1), B(1-a/2; k+1, n-k)]`` with ``a = 1 - confidence``; the
    lower end is 0 at ``k == 0`` and the upper end 1 at ``k == n``. ``n == 0``
    gives [0, 1].
    """
    k = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    tail = (1.0 - confidence) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        low = sps.beta.ppf(tail, k, n - k + 1.0)
        high = sps.beta.ppf(1.0 - tail, k + 1.0, n - k)
    low = np.where((k <= 0) | (n <= 0), 0.0, low)
    high = np.where((k >= n) | (n <= 0), 1.0, high)
    return low, high


def bca_mean_interval(
    values: np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int | np.random.Generator | None = 0,
) -> tuple[float, float]:
    """Bias-corrected and accelerated (BCa) bootstrap interval for the mean.

    Efron's BCa, as ``scipy.stats.bootstrap(method='BCa')`` computes it, with
    the jackknife of the mean in closed form: leaving out ``x_i`` moves the
    mean by ``(mean - x_i) / (n - 1)``, so the acceleration is
    ``sum(d**3) / (6 * sum(d**2) ** 1.5)`` with ``d = x - mean``. That is
    O(n) where scipy's generic jackknife is O(n**2), so a scores table with
    thousands of examples per model stays fast. Constant data (including a
    single value) gives ``(v, v)``; no values gives ``(nan, nan)``. When every
    resampled mean falls on one side of the estimate the bias correction is
    infinite and the percentile interval is returned instead.
    """
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        return float("nan"), float("nan")
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    means = bootstrap_means(x, n_resamples, rng)
    estimate = x.mean()
    tail = (1.0 - confidence) / 2.0
    below = np.mean(means < estimate)
    if not 0.0 < below < 1.0:
        low, high = np.percentile(means, [100 * tail, 100 * (1 - tail)])
        return float(low), float(high)
    z0 = sps.norm.ppf(below)
    d = x - estimate
    accel = np.sum(d**3) / (6.0 * np.sum(d**2) ** 1.5)
    z = sps.norm.ppf([tail, 1.0 - tail])
    adjusted = sps.norm.cdf(z0 + (z0 + z) / (1.0 - accel * (z0 + z)))
    low, high = np.percentile(means, 100 * adjusted)
    return float(low), float(high)


# --------------------------------------------------------------------------- the emergence score


def _percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval that tolerates +-inf (picks order statistics, no interpolation)."""
    finite_or_inf = samples[~np.isnan(samples)]
    if finite_or_inf.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite_or_inf, [tail, 1.0 - tail], method="inverted_cdf")
    return float(low), float(high)


def _sorted_curve(x: np.ndarray) -> np.ndarray:
    xs = np.asarray(x, dtype=float)
    sort_curve(xs, np.zeros_like(xs))  # validates: finite, no repeated x
    return np.argsort(xs, kind="stable")


def emergence_score_interval(
    per_model_values: list[np.ndarray],
    x: np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    rng: np.random.Generator | None = None,
    higher_is_better: bool = True,
) -> tuple[float, float]:
    """Percentile bootstrap interval for the emergence score of a curve of means.

    Each model's per-example values are resampled independently (the models
    were evaluated on their own draws of the test set), the curve of means is
    recomputed, and its emergence score taken; the interval is the percentile
    interval of those scores (which may be infinite). ``higher_is_better``
    False negates the values first, as :func:`miragelab.emergence.measures_table`
    does.
    """
    if len(per_model_values) != len(x):
        raise ValueError(f"{len(per_model_values)} models of values but {len(x)} x values")
    rng = np.random.default_rng(0) if rng is None else rng
    order = _sorted_curve(np.asarray(x))
    sign = 1.0 if higher_is_better else -1.0
    means = np.column_stack(
        [sign * bootstrap_means(per_model_values[i], n_resamples, rng) for i in order]
    )
    return _percentile_interval(emergence_scores_sorted(means), confidence)


def emergence_score_interval_from_summary(
    x: np.ndarray,
    mean: np.ndarray,
    stderr: np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    rng: np.random.Generator | None = None,
    higher_is_better: bool = True,
) -> tuple[float, float]:
    """Parametric bootstrap interval for the emergence score from published summaries.

    For scores without per-example data: each point is drawn from
    ``Normal(mean, stderr)``; a point whose stderr is 0 or missing (NaN) stays
    fixed. Percentile interval of the resulting emergence scores.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    order = _sorted_curve(np.asarray(x))
    mu = np.asarray(mean, dtype=float)[order]
    se = np.asarray(stderr, dtype=float)[order]
    se = np.where(np.isfinite(se) & (se > 0), se, 0.0)
    draws = mu + se * rng.standard_normal((n_resamples, mu.size))
    sign = 1.0 if higher_is_better else -1.0
    return _percentile_interval(emergence_scores_sorted(sign * draws), confidence)
