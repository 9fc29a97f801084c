"""Scaling-law fits, extrapolation of exact match, and back-tests against a sigmoid.

The paper's model predicts a sharp-looking accuracy curve from a smooth loss:
fit per-token cross-entropy with a power law in size (or compute)::

    L_CE(x) = (x / c) ** alpha  [+ e]          fitted as  exp(a + alpha * log x) [+ e]

with ``a = -alpha * log c`` (``e`` an optional irreducible loss), and the
exact match of an ``L``-token answer follows as ``exp(-L_CE(x)) ** L``. The
back-test holds out the largest models, predicts their accuracy from the
loss fitted on the others, and compares with fitting a sigmoid in ``log x``
to the accuracy directly -- the usual way to "extrapolate an emergent
ability", which cannot see a rise that has not started.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import optimize

__all__ = [
    "BACKTEST_COLUMNS",
    "PowerLawFit",
    "PowerLawIntervals",
    "SigmoidFit",
    "backtest",
    "bootstrap_power_law",
    "exact_match_of_loss",
    "fit_power_law",
    "fit_sigmoid",
    "predict_exact_match",
    "training_flops",
]

FloatArray = NDArray[np.float64]

#: columns of the table returned by :func:`backtest`, in order
BACKTEST_COLUMNS = (
    "params",
    "observed",
    "predicted_power_law",
    "predicted_sigmoid",
    "abs_error_power_law",
    "abs_error_sigmoid",
)


# --------------------------------------------------------------------------- power law


@dataclass(frozen=True)
class PowerLawFit:
    """``y = (x / c) ** alpha + irreducible``; ``irreducible`` is 0 when not fitted.

    ``rmse_log`` is the root-mean-square residual of ``log y`` and ``r2_log``
    the share of the variance of ``log y`` the fit explains.
    """

    c: float
    alpha: float
    irreducible: float
    fit_irreducible: bool
    n_points: int
    rmse_log: float
    r2_log: float

    def predict(self, x: ArrayLike) -> FloatArray:
        """The fitted curve at ``x``."""
        xs = np.asarray(x, dtype=float)
        return np.asarray(np.power(xs / self.c, self.alpha) + self.irreducible)


def _check_xy(x: ArrayLike, y: ArrayLike, minimum: int) -> tuple[FloatArray, FloatArray]:
    xs = np.asarray(x, dtype=float).ravel()
    ys = np.asarray(y, dtype=float).ravel()
    if xs.shape != ys.shape:
        raise ValueError(f"x has {xs.size} values but y has {ys.size}")
    if xs.size < minimum:
        raise ValueError(f"need at least {minimum} points to fit, got {xs.size}")
    if not (np.all(np.isfinite(xs)) and np.all(xs > 0)):
        raise ValueError("x must be finite and > 0")
    if not (np.all(np.isfinite(ys)) and np.all(ys > 0)):
        raise ValueError("y must be finite and > 0 (a loss) for a power law in log space")
    if np.unique(xs).size < 2:
        raise ValueError("x needs at least two distinct values")
    return xs, ys


def _log_model(log_x: FloatArray, a: float, alpha: float, e: float) -> FloatArray:
    return np.log(np.exp(a + alpha * log_x) + e)


def fit_power_law(x: ArrayLike, y: ArrayLike, irreducible: bool = False) -> PowerLawFit:
    """Least-squares fit of ``log y`` to ``log((x / c) ** alpha [+ e])``.

    Without the irreducible term the fit is the straight line
    ``log y = a + alpha * log x`` (solved exactly by ``scipy.optimize.curve_fit``
    from the linear-regression start). With it, ``e`` is bounded to
    ``[0, min y)`` and several starting values of ``e`` are tried, keeping the
    best. Errors are measured in log space, so every point weighs alike
    whatever the size of its loss.
    """
    xs, ys = _check_xy(x, y, 3 if irreducible else 2)
    log_x, log_y = np.log(xs), np.log(ys)
    alpha0, a0 = np.polyfit(log_x, log_y, 1)
    if not irreducible:
        (a, alpha), _ = optimize.curve_fit(
            lambda u, a, s: a + s * u, log_x, log_y, p0=(a0, alpha0), xtol=1e-15, ftol=1e-15
        )
        e = 0.0
    else:
        ceiling = float(ys.min()) * (1.0 - 1e-12)
        best: tuple[float, FloatArray] | None = None
        for share in (0.0, 0.25, 0.5, 0.75, 0.9, 0.99):
            e0 = share * ceiling
            start_alpha, start_a = np.polyfit(log_x, np.log(ys - e0), 1)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optimize.OptimizeWarning)
                    params, _ = optimize.curve_fit(
                        _log_model,
                        log_x,
                        log_y,
                        p0=(start_a, start_alpha, e0),
                        bounds=([-np.inf, -np.inf, 0.0], [np.inf, np.inf, ceiling]),
                        xtol=1e-15,
                        ftol=1e-15,
                        gtol=1e-15,
                        max_nfev=10_000,
                    )
            except (RuntimeError, ValueError):
                continue
            sse = float(np.sum(np.square(_log_model(log_x, *params) - log_y)))
            if best is None or sse < best[0]:
                best = (sse, params)
        if best is None:
            raise RuntimeError("the power law with an irreducible term did not converge")
        a, alpha, e = (float(v) for v in best[1])
    if alpha == 0:
        raise RuntimeError("the fitted exponent is 0: y does not change with x")
    c = math.exp(-a / alpha)
    residual = _log_model(log_x, a, alpha, e) - log_y
    total = float(np.sum(np.square(log_y - log_y.mean())))
    sse = float(np.sum(np.square(residual)))
    return PowerLawFit(
        c=c,
        alpha=float(alpha),
        irreducible=float(e),
        fit_irreducible=irreducible,
        n_points=int(xs.size),
        rmse_log=math.sqrt(sse / xs.size),
        r2_log=1.0 - sse / total if total > 0 else float("nan"),
    )


@dataclass(frozen=True)
class PowerLawIntervals:
    """Bootstrap intervals of a power-law fit: ``(low, high)`` per parameter."""

    fit: PowerLawFit
    alpha: tuple[float, float]
    c: tuple[float, float]
    irreducible: tuple[float, float]
    confidence: float
    n_resamples: int


def bootstrap_power_law(
    x: ArrayLike,
    y: ArrayLike,
    n_resamples: int = 500,
    rng: np.random.Generator | None = None,
    irreducible: bool = False,
    confidence: float = 0.95,
) -> PowerLawIntervals:
    """Percentile intervals for ``alpha``, ``c`` (and ``e``) by a residual bootstrap.

    A ladder is a designed set of sizes with few points, so the sizes are kept
    fixed and the log-space residuals of the fit are resampled:
    ``y* = fitted(x) * exp(r*)``, refitted each time. (Resampling the points
    themselves would repeat sizes and, with 5 to 10 points, often leave fewer
    than the fit needs.) Exact data have zero residuals and give intervals of
    zero width. Resamples whose fit fails are dropped.
    """
    xs, ys = _check_xy(x, y, 3 if irreducible else 2)
    rng = np.random.default_rng(0) if rng is None else rng
    fit = fit_power_law(xs, ys, irreducible)
    fitted = fit.predict(xs)
    residual = np.log(ys) - np.log(fitted)
    draws = residual[rng.integers(0, xs.size, size=(n_resamples, xs.size))]
    samples = []
    for row in draws:
        try:
            refit = fit_power_law(xs, fitted * np.exp(row), irreducible)
        except (RuntimeError, ValueError):
            continue
        samples.append((refit.alpha, refit.c, refit.irreducible))
    values = np.array(samples, dtype=float).reshape(-1, 3)
    tail = (1.0 - confidence) / 2.0

    def interval(column: int) -> tuple[float, float]:
        if values.shape[0] == 0:
            return float("nan"), float("nan")
        low, high = np.quantile(values[:, column], [tail, 1.0 - tail])
        return float(low), float(high)

    return PowerLawIntervals(
        fit=fit,
        alpha=interval(0),
        c=interval(1),
        irreducible=interval(2),
        confidence=confidence,
        n_resamples=int(values.shape[0]),
    )


def predict_exact_match(fit: PowerLawFit, x: ArrayLike, L: ArrayLike) -> FloatArray:
    """Exact match of an ``L``-token answer from a per-token cross-entropy fit.

    ``exp(-fit.predict(x)) ** L``; ``x`` and ``L`` broadcast against each other
    (pass ``x[:, None]`` and a row of lengths for a grid).
    """
    return exact_match_of_loss(fit.predict(x), L)


def exact_match_of_loss(per_token_ce: ArrayLike, L: ArrayLike) -> FloatArray:
    """The paper's law: an ``L``-token answer is right with probability ``exp(-CE) ** L``."""
    p = np.exp(-np.asarray(per_token_ce, dtype=float))
    return np.asarray(np.power(p, np.asarray(L, dtype=float)))


def training_flops(params: ArrayLike, tokens: ArrayLike) -> FloatArray:
    """Training compute by the usual estimate ``6 N D`` (forward ``2 N D``, backward
    ``4 N D``; Kaplan et al. 2020)."""
    return np.asarray(6.0 * np.asarray(params, dtype=float) * np.asarray(tokens, dtype=float))


# --------------------------------------------------------------------------- sigmoid


@dataclass(frozen=True)
class SigmoidFit:
    """``lower + (upper - lower) / (1 + exp(-slope * (log_x - midpoint)))`` in ``log x``."""

    lower: float
    upper: float
    slope: float
    midpoint: float
    n_params: int

    def predict(self, log_x: ArrayLike) -> FloatArray:
        """The fitted curve at ``log_x`` (natural log of the size)."""
        u = np.asarray(log_x, dtype=float)
        z = np.clip(-self.slope * (u - self.midpoint), -700.0, 700.0)
        return np.asarray(self.lower + (self.upper - self.lower) / (1.0 + np.exp(z)))


def _logistic(u: FloatArray, lower: float, upper: float, slope: float, mid: float) -> FloatArray:
    z = np.clip(-slope * (u - mid), -700.0, 700.0)
    return lower + (upper - lower) / (1.0 + np.exp(z))


def fit_sigmoid(
    log_x: ArrayLike,
    acc: ArrayLike,
    n_params: int | None = None,
    start: SigmoidFit | None = None,
) -> SigmoidFit:
    """Bounded least-squares logistic fit of accuracy against ``log x``.

    ``n_params=4`` fits floor, ceiling (both in [0, 1]), slope (>= 0) and
    midpoint; ``n_params=2`` fixes the floor at 0 and the ceiling at 1. The
    default uses 4 parameters from 6 points on and 2 below. The midpoint is
    bounded to the data range widened by five times its width on each side,
    and several starting midpoints are tried, keeping the best fit; a refit of
    resampled points passes the first fit as its one ``start``.
    """
    u = np.asarray(log_x, dtype=float).ravel()
    a = np.asarray(acc, dtype=float).ravel()
    if u.shape != a.shape or u.size < 2:
        raise ValueError("need at least 2 (log_x, acc) pairs of equal length")
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(a))):
        raise ValueError("log_x and acc must be finite")
    k = (4 if u.size >= 6 else 2) if n_params is None else int(n_params)
    if k not in (2, 4):
        raise ValueError(f"n_params must be 2 or 4, got {n_params!r}")
    width = max(float(np.ptp(u)), 1e-9)
    mid_bounds = (float(u.min()) - 5 * width, float(u.max()) + 5 * width)
    slope_max = 100.0 / width
    if k == 4:
        bounds = ([0.0, 0.0, 0.0, mid_bounds[0]], [1.0, 1.0, slope_max, mid_bounds[1]])

        def model(uu: FloatArray, *params: float) -> FloatArray:
            return _logistic(uu, *params)
    else:
        bounds = ([0.0, mid_bounds[0]], [slope_max, mid_bounds[1]])

        def model(uu: FloatArray, *params: float) -> FloatArray:
            return _logistic(uu, 0.0, 1.0, *params)

    floor, ceiling = float(a.min()), float(max(a.max(), a.min() + 1e-6))
    if start is not None:
        guesses = [[start.lower, start.upper, start.slope, start.midpoint][4 - k :]]
    else:
        guesses = [
            [floor, ceiling, slope0, mid0][4 - k :]
            for mid0 in np.linspace(u.min(), u.max() + width, 5)
            for slope0 in (1.0 / width, 5.0 / width)
        ]
    best: tuple[float, list[float]] | None = None
    for guess in guesses:
        p0 = [float(np.clip(v, lo, hi)) for v, lo, hi in zip(guess, *bounds, strict=True)]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optimize.OptimizeWarning)
                params, _ = optimize.curve_fit(model, u, a, p0=p0, bounds=bounds, max_nfev=5_000)
        except (RuntimeError, ValueError):
            continue
        sse = float(np.sum(np.square(model(u, *params) - a)))
        if best is None or sse < best[0]:
            best = (sse, [float(v) for v in params])
    if best is None:
        raise RuntimeError("the sigmoid fit did not converge")
    lower, upper, slope, mid = best[1] if k == 4 else [0.0, 1.0, *best[1]]
    return SigmoidFit(lower=lower, upper=upper, slope=slope, midpoint=mid, n_params=k)


# --------------------------------------------------------------------------- back-test


def backtest(
    x: ArrayLike,
    per_token_ce: ArrayLike,
    accuracy: ArrayLike,
    L: float,
    holdout: int = 1,
    irreducible: bool = False,
    sigmoid_params: int | None = None,
) -> pd.DataFrame:
    """Predict the largest ``holdout`` models' accuracy from the smaller ones, two ways.

    *Power law*: fit per-token cross-entropy on the smaller models
    (:func:`fit_power_law`) and predict exact match as ``exp(-L_CE) ** L``
    (:func:`predict_exact_match`). *Sigmoid*: fit :func:`fit_sigmoid` to the
    smaller models' accuracy against ``log x`` and extrapolate. One row per
    held-out model, largest last; columns :data:`BACKTEST_COLUMNS`.
    """
    xs = np.asarray(x, dtype=float).ravel()
    ce = np.asarray(per_token_ce, dtype=float).ravel()
    acc = np.asarray(accuracy, dtype=float).ravel()
    if not (xs.shape == ce.shape == acc.shape):
        raise ValueError("x, per_token_ce and accuracy must have the same length")
    k = int(holdout)
    if k < 1 or xs.size - k < (3 if irreducible else 2):
        raise ValueError(f"holdout={holdout!r} leaves too few models to fit ({xs.size} given)")
    order = np.argsort(xs, kind="stable")
    xs, ce, acc = xs[order], ce[order], acc[order]
    train, test = slice(0, xs.size - k), slice(xs.size - k, xs.size)
    power = predict_exact_match(fit_power_law(xs[train], ce[train], irreducible), xs[test], L)
    sigmoid = fit_sigmoid(np.log(xs[train]), acc[train], sigmoid_params).predict(np.log(xs[test]))
    return pd.DataFrame(
        {
            "params": xs[test],
            "observed": acc[test],
            "predicted_power_law": power,
            "predicted_sigmoid": sigmoid,
            "abs_error_power_law": np.abs(power - acc[test]),
            "abs_error_sigmoid": np.abs(sigmoid - acc[test]),
        },
        columns=list(BACKTEST_COLUMNS),
    )
