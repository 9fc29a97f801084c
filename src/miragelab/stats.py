"""Confidence intervals for the mean of a metric over examples.

Two cases, chosen per metric:

* 0/1 metrics (exact match, multiple-choice grade): the Wilson score interval,
  which stays inside [0, 1] and is honest at 0 successes, where "zero accuracy
  at small scale" lives.
* continuous metrics: a BCa bootstrap of the mean (:func:`bca_mean_interval`),
  whose resampled means come from :func:`bootstrap_means` (exact for 0/1 and
  integer metrics and for small tables; for millions of distinct values, a
  binned resample with a proven error bound, see :func:`binned_bootstrap_means`).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats as sps

from miragelab.emergence import emergence_scores_sorted, sort_curve

#: at most this many distinct values: multinomial counts over them, always (exact)
_MAX_DISTINCT_FOR_COUNTS = 512
#: index resampling (exact) while ``n * n_resamples`` stays below this (about 0.5 s)
_INDEX_BUDGET = 50_000_000
#: multinomial counts over the distinct values (exact) while ``distinct * n_resamples``
#: stays below this (about 1 s); above both budgets the binned resample is used
_COUNTS_BUDGET = 20_000_000
#: resampled values held in memory at once by the index bootstrap
_CHUNK_ELEMENTS = 4_000_000
#: bins the binned bootstrap starts from, and the most it refines to
_START_BINS = 256
_MAX_BINS = 16_384
#: default error budget of the binned bootstrap: Wasserstein-1 distance to the exact
#: bootstrap distribution, as a fraction of the bootstrap standard deviation
BINNED_TOLERANCE = 1e-3

BootstrapMethod = Literal["auto", "exact", "binned"]


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


def t_interval(
    mean: np.ndarray | float,
    stderr: np.ndarray | float,
    n: np.ndarray | float,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Student-t interval of a mean from its standard error and the sample size.

    Vectorised; ``n - 1`` degrees of freedom (``n >= 2``).
    """
    mean = np.asarray(mean, dtype=float)
    half = sps.t.ppf(0.5 + confidence / 2.0, np.asarray(n, dtype=float) - 1) * np.asarray(stderr)
    return mean - half, mean + half


def _distinct_sorted(xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a sorted array and their counts (``np.unique`` without its sort)."""
    starts = np.flatnonzero(np.concatenate(([True], xs[1:] != xs[:-1])))
    counts = np.diff(np.append(starts, xs.size))
    return xs[starts], counts


def _counts_means(
    distinct: np.ndarray, counts: np.ndarray, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Exact: resampling n items from the empirical distribution == multinomial counts."""
    n = int(counts.sum())
    draws = rng.multinomial(n, counts / n, size=n_resamples)
    return draws @ distinct / n


def _index_means(x: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Exact: draw the resampled indices themselves, in chunks that fit in memory."""
    n = x.size
    means = np.empty(n_resamples)
    per_chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_resamples, per_chunk):
        stop = min(n_resamples, start + per_chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = x[idx].mean(axis=1)
    return means


def bootstrap_means(
    values: np.ndarray,
    n_resamples: int,
    rng: np.random.Generator,
    method: BootstrapMethod = "auto",
) -> np.ndarray:
    """Means of ``n_resamples`` bootstrap resamples of ``values`` (same size, with replacement).

    ``method="exact"`` draws from the exact bootstrap distribution: multinomial
    counts over the distinct values (``n_resamples x distinct`` draws, so 0/1 and
    integer metrics cost almost nothing whatever ``n``), or the resampled indices
    themselves (``n_resamples x n`` draws), whichever is cheaper.
    ``method="binned"`` is :func:`binned_bootstrap_means` with its default
    tolerance. ``"auto"`` (the default) is exact whenever that is affordable (few
    distinct values, or ``n x n_resamples`` up to 5e7, or ``distinct x
    n_resamples`` up to 2e7) and binned otherwise: 10,000 resamples of a
    million distinct values cost ``10^10`` index draws exactly, but a fraction
    of a second binned, at a Wasserstein distance below 0.1% of the bootstrap
    standard deviation.
    """
    x = np.asarray(values, dtype=float).ravel()
    n = x.size
    if n == 0:
        return np.full(n_resamples, np.nan)
    if method not in ("auto", "exact", "binned"):
        raise ValueError(f"method must be 'auto', 'exact' or 'binned', got {method!r}")
    if method == "binned":
        return binned_bootstrap_means(x, n_resamples, rng)[0]
    xs = np.sort(x)
    distinct, counts = _distinct_sorted(xs)
    k = distinct.size
    if k <= _MAX_DISTINCT_FOR_COUNTS:
        return _counts_means(distinct, counts, n_resamples, rng)
    if method == "exact":
        if n <= 7 * k:  # an index draw costs about a seventh of a binomial draw
            return _index_means(x, n_resamples, rng)
        return _counts_means(distinct, counts, n_resamples, rng)
    if n * n_resamples <= _INDEX_BUDGET:
        return _index_means(x, n_resamples, rng)
    if k * n_resamples <= _COUNTS_BUDGET:
        return _counts_means(distinct, counts, n_resamples, rng)
    return _binned_sorted(xs, n_resamples, rng, _START_BINS, BINNED_TOLERANCE)[0]


def binned_bootstrap_means(
    values: np.ndarray,
    n_resamples: int,
    rng: np.random.Generator,
    *,
    n_bins: int = _START_BINS,
    tolerance: float = BINNED_TOLERANCE,
) -> tuple[np.ndarray, float]:
    """Bootstrap means of many distinct values, with a proven bound on the error.

    Returns ``(means, bound)``: ``bound`` is an upper bound on the Wasserstein-1
    distance between the distribution the means are drawn from and the exact
    bootstrap distribution of the mean (in the units of ``values``).

    Why it is right: sort the values and cut them into bins of consecutive
    values. A bootstrap resample draws ``n`` indices uniformly; the numbers
    ``C_b`` of draws that land in each bin are jointly
    ``Multinomial(n, m_b / n)`` (``m_b`` values in bin ``b``), and given those
    counts the draws inside bin ``b`` are ``C_b`` independent uniform draws from
    its values. The counts are drawn exactly. The sum of the draws inside the
    bins is replaced by a normal with the same conditional mean
    ``sum C_b mu_b`` and variance ``sum C_b s_b**2`` (``mu_b``, ``s_b``: the
    bin's mean and standard deviation), so the mean and the variance of the
    resampled means are exactly the bootstrap's, and the skew of the data is
    kept by the exact counts between bins.

    The bound: for a sum ``S`` of independent terms, the Wasserstein-1 distance
    to the normal of the same mean and variance is at most
    ``sum E|xi - E xi|**3 / Var(S)`` (Goldstein 2010, *Bounds on the constant in
    the mean central limit theorem*, Ann. Probab. 38). Per resampled mean the
    terms are ``x / n``, which gives ``sum_b C_b r_b / (n sum_b C_b s_b**2)``
    with ``r_b`` the bin's mean absolute third central moment, hence at most
    ``max_b (r_b / s_b**2) / n`` whatever the counts, and the same holds for the
    mixture over the counts. ``r_b / s_b**2`` is at most the bin's range, so
    narrow bins give a small bound; it shrinks as ``1 / n`` while the bootstrap
    standard deviation shrinks as ``1 / sqrt(n)``.

    Bins start as ``n_bins`` bins of about equal counts, cut only where the value
    changes (ties stay in one bin, so data with at most ``n_bins`` distinct
    values is resampled exactly); any bin whose term exceeds ``tolerance`` times
    the bootstrap standard deviation ``sd / sqrt(n)`` is split in two, until
    none does (a bin of equal values is exact) or there are ``16,384`` bins;
    the returned bound is what was reached.
    """
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        return np.full(n_resamples, np.nan), 0.0
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if not tolerance > 0:
        raise ValueError(f"tolerance must be > 0, got {tolerance}")
    return _binned_sorted(np.sort(x), n_resamples, rng, n_bins, tolerance)


def _bin_moments(
    xs: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Size, mean, variance and mean absolute third central moment of each bin."""
    starts, sizes = edges[:-1], np.diff(edges)
    mu = np.add.reduceat(xs, starts) / sizes
    d = xs - np.repeat(mu, sizes)
    d2 = d * d
    var = np.add.reduceat(d2, starts) / sizes
    r3 = np.add.reduceat(d2 * np.abs(d), starts) / sizes
    return sizes, mu, var, r3


def _nearest_breaks(
    breaks: np.ndarray, targets: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """For each target, the value boundary strictly inside ``(lo, hi)`` nearest to it
    (the caller guarantees there is one)."""
    right = np.minimum(np.searchsorted(breaks, targets), breaks.size - 1)
    left = np.maximum(right - 1, 0)
    a, b = breaks[left], breaks[right]
    a_ok = (a > lo) & (a < hi)
    b_ok = (b > lo) & (b < hi)
    pick_b = b_ok & (~a_ok | (np.abs(b - targets) < np.abs(a - targets)))
    return np.where(pick_b, b, a)


def _binned_sorted(
    xs: np.ndarray, n_resamples: int, rng: np.random.Generator, n_bins: int, tolerance: float
) -> tuple[np.ndarray, float]:
    n = xs.size
    centre = xs.mean()
    sd = xs.std()
    if sd == 0 or not math.isfinite(sd):
        return np.full(n_resamples, centre), 0.0
    allowed = tolerance * sd / math.sqrt(n)  # per resampled mean, in the data's units
    # bins end where a value ends (ties stay together), so data with at most as many
    # distinct values as bins is resampled exactly, on its own lattice
    breaks = np.flatnonzero(xs[1:] != xs[:-1]) + 1
    targets = np.linspace(0, n, min(n_bins, n) + 1)[1:-1]
    inner = _nearest_breaks(breaks, targets, np.zeros_like(targets), np.full_like(targets, n))
    edges = np.unique(np.concatenate(([0, n], inner.astype(np.int64))))
    while True:
        sizes, mu, var, r3 = _bin_moments(xs, edges)
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(var > 0, r3 / var, 0.0) / n
        too_wide = term > allowed
        if not too_wide.any() or edges.size - 1 >= _MAX_BINS:
            break
        # a bin with spread holds two distinct values, so a value boundary lies inside it
        lo, hi = edges[:-1][too_wide], edges[1:][too_wide]
        edges = np.union1d(edges, _nearest_breaks(breaks, (lo + hi) / 2, lo, hi))
    bound = float(term.max())
    counts = rng.multinomial(n, sizes / n, size=n_resamples)
    spread = np.sqrt(counts @ var)
    means = centre + (counts @ (mu - centre) + spread * rng.standard_normal(n_resamples)) / n
    return means, bound


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
    infinite and the percentile interval is returned instead. The interval always
    holds the estimate: where the adjusted levels would pass it (extreme skew in
    a handful of values), the end is moved to the estimate.
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
    else:
        z0 = sps.norm.ppf(below)
        d = x - estimate
        accel = np.sum(d**3) / (6.0 * np.sum(d**2) ** 1.5)
        z = sps.norm.ppf([tail, 1.0 - tail])
        adjusted = sps.norm.cdf(z0 + (z0 + z) / (1.0 - accel * (z0 + z)))
        low, high = np.percentile(means, 100 * adjusted)
    # with extreme skew in few values the adjusted levels can pass the estimate (or
    # cross); an interval that does not hold its own estimate is widened to it
    low, high = min(low, high, estimate), max(low, high, estimate)
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


def point_stderr(rows: pd.DataFrame, confidence: float = 0.95) -> np.ndarray:
    """Standard error of each score: reported, else from its interval, else binomial.

    At 0 or ``n`` successes the binomial error of a proportion uses ``(v n + 0.5) /
    (n + 1)`` in place of ``v``, so that 0 of ``n`` has an error of about
    ``0.7 / n`` rather than none; a reported error of 0 on a proportion is
    replaced by the binomial one too. NaN where nothing tells the error.
    """
    n_rows = len(rows)

    def column(name: str) -> np.ndarray:
        if name not in rows.columns:
            return np.full(n_rows, np.nan)
        return pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    stderr = column("stderr")
    z = sps.norm.ppf(0.5 + confidence / 2)
    from_ci = (column("ci_high") - column("ci_low")) / (2 * z)
    value, n = column("value"), column("n")
    proportion = (value >= 0) & (value <= 1) & (n > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        edge = (value == 0) | (value == 1)
        shrunk = np.where(edge, (value * n + 0.5) / (n + 1), value)
        binomial = np.where(proportion, np.sqrt(shrunk * (1 - shrunk) / n), np.nan)
    out = np.where(np.isfinite(stderr), stderr, from_ci)
    out = np.where(np.isfinite(out) & ~((out == 0) & proportion), out, binomial)
    return out
