"""Confidence intervals for the mean of a metric over examples.

Two cases, chosen per metric:

* 0/1 metrics (exact match, multiple-choice grade): the Wilson score interval,
  which stays inside [0, 1] and is honest at 0 successes, where "zero accuracy
  at small scale" lives.
* continuous metrics: a BCa bootstrap of the mean, in
  :mod:`miragelab.bootstrap` (exact where that costs least: few distinct
  values, small groups; otherwise a binned resample with a proven error bound).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from miragelab.bootstrap import bootstrap_means
from miragelab.emergence import emergence_scores_sorted, sort_curve

#: the normal quantile of a 95% interval
Z95 = 1.959963984540054


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


# --------------------------------------------------------------------------- the emergence score


def percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
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
    return percentile_interval(emergence_scores_sorted(means), confidence)


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
    return percentile_interval(emergence_scores_sorted(sign * draws), confidence)


#: ``ci_method`` of an interval built from a published standard error
NORMAL_CI = "normal (published stderr)"
#: ``ci_method`` where a published standard error of 0 at 0% or 100% was replaced
WILSON_AT_BOUNDARY = "wilson (published stderr 0 at the boundary)"


def published_interval(
    value: float, stderr: float | None, n: int | None, binary: bool | None
) -> tuple[float | None, float | None, str | None, float | None]:
    """``(ci_low, ci_high, ci_method, stderr)`` of a score a harness published with its
    standard error (95%, normal: value -/+ 1.96 stderr, not clipped).

    A standard error of 0 on a finite sample is never kept: a proportion at 0 or
    1 (lm-eval's ``acc_stderr`` and Inspect's ``stderr`` are 0 there) gets the
    Wilson interval of its ``n`` examples when ``n`` is known (``ci_method``
    :data:`WILSON_AT_BOUNDARY`), and no interval otherwise; the standard error
    becomes null (unknown) either way. ``binary`` says the metric is a 0/1
    mean (None: unknown, then a value of exactly 0 or 1 counts as one).
    """
    if stderr is None or not math.isfinite(stderr):
        return None, None, None, None
    if stderr > 0:
        half = Z95 * stderr
        return value - half, value + half, NORMAL_CI, stderr
    at_edge = value in (0.0, 1.0) and binary is not False
    if at_edge and n is not None and n > 0:
        low, high = wilson_interval(value * n, n)
        return float(low), float(high), WILSON_AT_BOUNDARY, None
    return None, None, None, None


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
