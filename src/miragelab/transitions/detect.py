"""Is there an abrupt transition in a curve ``y(x)``? A changepoint test in log ``x``.

Works on any curve against model size or training step: a continuous metric
(loss, per-token probability, token edit distance, perplexity) over a ladder.
Pure numpy.

The method
----------
``x`` is put on a log scale, ``u = log10(x + offset)``; points with
``x + offset <= 0`` are dropped and counted (``offset=0``, the default, drops
a training step 0, the untrained initialisation; pass ``offset=1`` for
``log10(step + 1)`` to keep it). ``u`` is rescaled to ``t`` in [0, 1].

*Smooth model* (the null): a cubic regression spline in ``t`` -- the
polynomial ``1, t, t^2, t^3`` plus ``(t - k)_+^3`` at ``n_knots`` interior
knots equally spaced in ``t`` (so a sparse stretch of an uneven ladder, such
as Pythia's steps 1000 -> 3000 -> 13000, keeps its flexibility). By default
``n_knots = min(8, (n - 6) // 4)`` (0 below 10 points), and the degree falls
to 2 below 10 points and 1 below 7.
Fewer knots leave wavy misfit on steep smooth curves (theory curves over 4
decades), which the ramp then "explains": with ``min(3, (n - 8) // 8)`` knots
21% of 150 smooth curves tested significant; with the default, 4.5% of 400
(table below).
A power law, an exponential in ``log x`` and the Gumbel-shaped curves of
:mod:`miragelab.theory` (``1 - exp(-(N/c)^alpha)``) are all smooth in ``t``
and fit well.

*Changepoint model* (the alternative): the smooth model plus a ramp of
height ``h`` that rises linearly in ``t`` from ``t_a`` to ``t_b`` (both data
points, ``t_b - t_a <= max_width``; adjacent points always allowed, which is a
pure step). At least ``min_side`` points lie at or before ``t_a`` and at or
after ``t_b``. A transition is a change that is fast compared with the
smooth model's flexibility.

*Statistic*: the likelihood ratio of the best ramp, ``T = n * log(RSS0 / RSS1)``
(Gaussian errors), maximised over every candidate ``(t_a, t_b)`` -- a sup-LR
(Andrews 1993) changepoint statistic. Adding one regressor to a linear model
makes each candidate a projection, so every candidate and every bootstrap
replicate is one matrix product.

*Null distribution*: a wild bootstrap from the smooth fit: ``y* = fit0 +
r_i v_i / sqrt(1 - h_ii)`` with Rademacher ``v_i`` and leverages ``h_ii``, which
keeps each point's own noise level (binomial noise is heteroscedastic) and
accounts for the search over candidates. ``p = (1 + #{T* >= T}) / (B + 1)``.

*Decision*: ``detected`` when ``p <= alpha`` and the *effect size*
``|h| / (max - min of the changepoint fit)`` is at least ``min_effect``.

*Location*: the fitted ramp's start, end and midpoint (reported in ``x``
units). Its uncertainty comes from a wild bootstrap from the changepoint fit
(refit each replicate over all candidates): ``x_low, x_high`` is the
percentile interval of the midpoint, and ``span_low, span_high`` runs from the
lower percentile of the ramp start to the upper percentile of the ramp end --
the range of steps within which the transition happens.

Error rates (:func:`error_rates`, seed 0, ``n_boot=199``, ``alpha=0.05``)
-------------------------------------------------------------------------
Smooth curves from :mod:`miragelab.theory`: ``alpha`` uniform in
[-0.8, -0.2], per-token loss of the smallest model uniform in [1, 6]
nats, 12, 20, 30 or 40 log-spaced sizes over 2, 3 or 4 decades. Noise:
per-token cross-entropy with relative Gaussian noise (sd 0.5% or 2%);
per-token probability as ``Binomial(n, p) / n`` with ``n`` in {500, 5000};
token edit distance of ``L`` in {5, 10} tokens as ``Binomial(n L, 1 - p) / n``.
Genuine transitions: the same curves with the per-token loss multiplied by
``1 - drop * ramp`` (a drop of 10, 20, 30 or 50% of the loss, as a step or a
ramp over 5% or 10% of the log range, placed uniformly in the middle 60%),
every metric then computed from that loss::

    smooth curves (false positives)   curves   detected   p <= 0.05 only
      all                                400       1.2%       4.5%
      cross_entropy                      134       0.0%       2.2%
      per_token_prob                     133       3.0%       6.8%
      token_edit_distance                133       0.8%       4.5%

    planted transitions (power)      width 0 (step)   width 0.05   width 0.10
      loss drop 10% (60 curves each)         3.3%         6.7%         3.3%
      loss drop 20% (60 curves each)        28.3%        20.0%        18.3%
      loss drop 30% (60 curves each)        51.7%        40.0%        31.7%
      loss drop 50% (60 curves each)        70.0%        50.0%        63.3%

    detected planted transitions whose span holds the true midpoint: 96.6%

``detected`` is ``p <= 0.05`` and effect >= 0.1; the last column of the first
block is the test alone. The effect-size floor removes most of the remaining
significant misfits (wavy residuals of steep smooth curves); power is lowest
for the per-token probability and edit distance where ``p`` saturates near 0
or 1 and hides the planted drop, and for drops that are small next to the
curve's whole range (a 10% drop of the loss is rarely 10% of the range of a
curve spanning 2-4 decades).

Rerun :func:`error_rates` to reproduce the table.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from miragelab import theory
from miragelab.emergence import sort_curve
from miragelab.errors import InputError

__all__ = [
    "MIN_POINTS",
    "TRANSITION_COLUMNS",
    "Transition",
    "detect_transition",
    "error_rates",
    "genuine_transition",
    "simulate_curves",
]

FloatArray = NDArray[np.float64]

#: the fewest points (after dropping ``x + offset <= 0``) the test runs on
MIN_POINTS = 6

#: scalar fields of :class:`Transition`, in order (one table row per curve)
TRANSITION_COLUMNS = (
    "detected",
    "p_value",
    "statistic",
    "effect_size",
    "jump",
    "x_change",
    "x_low",
    "x_high",
    "x_start",
    "x_end",
    "span_low",
    "span_high",
    "n_points",
    "n_dropped",
    "n_knots",
    "degree",
    "reason",
)


@dataclass(frozen=True)
class Transition:
    """The test's result for one curve; ``bool(result)`` is ``detected``.

    ``jump`` is the fitted ramp height in ``y`` units (signed: negative for a
    drop); ``effect_size`` is ``|jump|`` over the range of the changepoint
    fit. ``x_change`` is the ramp's midpoint (geometric, in ``x`` units),
    ``x_low``/``x_high`` its bootstrap percentile interval; ``x_start``/``x_end``
    the fitted ramp; ``span_low``/``span_high`` the bootstrap range of the ramp
    (lower percentile of starts, upper percentile of ends). NaN fields mean
    the test did not run (``reason`` says why). The arrays hold the points used
    and both fits, for figures.
    """

    detected: bool
    p_value: float
    statistic: float
    effect_size: float
    jump: float
    x_change: float
    x_low: float
    x_high: float
    x_start: float
    x_end: float
    span_low: float
    span_high: float
    n_points: int
    n_dropped: int
    n_knots: int
    degree: int
    reason: str
    x: FloatArray = field(repr=False, default_factory=lambda: np.empty(0))
    y: FloatArray = field(repr=False, default_factory=lambda: np.empty(0))
    fit_smooth: FloatArray = field(repr=False, default_factory=lambda: np.empty(0))
    fit_change: FloatArray = field(repr=False, default_factory=lambda: np.empty(0))

    def __bool__(self) -> bool:
        return bool(self.detected)

    def row(self) -> dict[str, object]:
        """The scalar fields as a dict (one table row)."""
        return {name: getattr(self, name) for name in TRANSITION_COLUMNS}


# --------------------------------------------------------------------------- pieces


def _smooth_basis(t: FloatArray, degree: int, n_knots: int) -> FloatArray:
    """Cubic (or lower) regression-spline basis in ``t``: polynomial + truncated powers."""
    columns = [t**d for d in range(degree + 1)]
    if n_knots:
        knots = np.linspace(0, 1, n_knots + 2)[1:-1]
        columns += [np.clip(t - k, 0, None) ** degree for k in knots]
    return np.column_stack(columns)


def default_knots(n: int) -> int:
    """Interior knots of the smooth model for ``n`` points."""
    return min(8, max(0, (n - 6) // 4))


def _candidates(t: FloatArray, max_width: float, min_side: int) -> tuple[FloatArray, FloatArray]:
    """Index pairs ``(a, b)`` of ramp start and end, and the ramp regressors ``(n, K)``."""
    n = t.size
    pairs = [
        (a, b)
        for a in range(min_side - 1, n - min_side)
        for b in range(a + 1, n - min_side + 1)
        if b == a + 1 or t[b] - t[a] <= max_width
    ]
    idx = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    ta, tb = t[idx[:, 0]], t[idx[:, 1]]
    ramps = np.clip((t[:, None] - ta[None, :]) / (tb - ta)[None, :], 0.0, 1.0)
    return idx, ramps


def _best(resid: FloatArray, ramps_r: FloatArray, norms: FloatArray):
    """For rows of ``resid`` (already orthogonal to the smooth basis): best ramp and reduction."""
    proj = resid @ ramps_r  # (B, K)
    reduction = proj**2 / norms
    best = reduction.argmax(axis=1)
    rows = np.arange(resid.shape[0])
    return best, reduction[rows, best], proj[rows, best] / norms[best]


def _annihilate(values: FloatArray, q: FloatArray) -> FloatArray:
    """Residuals of each row of ``values`` after projecting on the columns of ``q``."""
    return values - (values @ q) @ q.T


def _not_run(reason: str, n: int, dropped: int, xs: FloatArray, ys: FloatArray) -> Transition:
    nan = float("nan")
    return Transition(
        False, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan,
        n, dropped, 0, 0, reason, xs, ys, np.full(n, nan), np.full(n, nan),
    )  # fmt: skip


def detect_transition(
    x: ArrayLike,
    y: ArrayLike,
    *,
    offset: float = 0.0,
    log_y: bool = False,
    n_knots: int | None = None,
    degree: int | None = None,
    max_width: float = 0.25,
    min_side: int | None = None,
    n_boot: int = 499,
    alpha: float = 0.05,
    min_effect: float = 0.1,
    confidence: float = 0.95,
    seed: int = 0,
) -> Transition:
    """Test the curve ``y(x)`` for an abrupt transition; see the module docstring.

    Parameters
    ----------
    x, y
        The curve (any order; ``x`` distinct and finite, ``y`` finite).
    offset
        ``u = log10(x + offset)``; points with ``x + offset <= 0`` are dropped.
    log_y
        Test ``log(y)`` instead of ``y`` (perplexity -> cross-entropy); ``y`` must be > 0.
    n_knots, degree
        The smooth model; ``None`` picks them from the number of points.
    max_width
        Widest ramp, as a share of the log-``x`` range.
    min_side
        Points required before the ramp's start and after its end (default 3,
        2 below 12 points).
    n_boot, alpha, min_effect, confidence, seed
        Bootstrap replicates, test level, smallest effect size that counts,
        level of the location intervals, seed of the bootstrap.
    """
    xs, ys = sort_curve(x, y, x_name="x")
    if log_y:
        if np.any(ys <= 0):
            raise InputError("log_y needs y > 0", field="value")
        ys = np.log(ys)
    keep = xs + offset > 0
    dropped = int((~keep).sum())
    xs, ys = xs[keep], ys[keep]
    n = int(xs.size)
    if n < MIN_POINTS:
        return _not_run(f"{n} points with x + offset > 0; need {MIN_POINTS}", n, dropped, xs, ys)
    if np.ptp(ys) == 0:
        return _not_run("flat curve", n, dropped, xs, ys)
    if not (0 < alpha < 1 and 0 < confidence < 1 and n_boot >= 19):
        raise ValueError("need 0 < alpha < 1, 0 < confidence < 1 and n_boot >= 19")
    deg = degree if degree is not None else (3 if n >= 10 else 2 if n >= 7 else 1)
    knots = n_knots if n_knots is not None else default_knots(n)
    side = min_side if min_side is not None else (3 if n >= 12 else 2)

    u = np.log10(xs + offset)
    t = (u - u[0]) / (u[-1] - u[0])
    basis_u, sv, _ = np.linalg.svd(_smooth_basis(t, deg, knots), full_matrices=False)
    q = basis_u[:, sv > 1e-10 * sv[0]]  # orthonormal; drops directions lost to empty knot gaps
    idx, ramps = _candidates(t, max_width, side)
    if idx.shape[0] == 0:
        reason = "no candidate changepoint with min_side points each side"
        return _not_run(reason, n, dropped, xs, ys)
    ramps_r = _annihilate(ramps.T, q).T  # ramps orthogonal to the smooth basis
    norms = np.square(ramps_r).sum(axis=0)
    usable = norms > 1e-10 * n
    idx, ramps_r, norms = idx[usable], ramps_r[:, usable], norms[usable]
    if idx.shape[0] == 0:
        return _not_run("every candidate ramp is smooth", n, dropped, xs, ys)

    resid0 = _annihilate(ys[None, :], q)[0]
    rss0 = float(resid0 @ resid0)
    fit_smooth = ys - resid0
    best, red, height = _best(resid0[None, :], ramps_r, norms)
    k, h = int(best[0]), float(height[0])
    tiny = 1e-12 * max(rss0, 1e-300)

    def lr(rss: FloatArray, reduction: FloatArray) -> FloatArray:
        return n * np.log(rss / np.maximum(rss - reduction, tiny))

    statistic = float(lr(np.array([rss0]), red)[0]) if rss0 > 0 else float("inf")

    rng = np.random.default_rng(seed)
    leverage = np.clip(np.square(q).sum(axis=1), 0, 1 - 1e-9)
    signs = rng.choice([-1.0, 1.0], size=(n_boot, n))
    null = _annihilate(signs * (resid0 / np.sqrt(1 - leverage))[None, :], q)
    _, null_red, _ = _best(null, ramps_r, norms)
    null_stat = lr(np.square(null).sum(axis=1), null_red)
    p_value = float((1 + np.sum(null_stat >= statistic)) / (n_boot + 1))

    fit_change = fit_smooth + h * ramps_r[:, k]
    resid1 = ys - fit_change
    span = float(np.ptp(fit_change))
    effect = abs(h) / span if span > 0 else float("nan")

    # where: refit the changepoint on bootstrap replicates of the changepoint fit
    lev1 = np.clip(leverage + np.square(ramps_r[:, k]) / norms[k], 0, 1 - 1e-9)
    signs = rng.choice([-1.0, 1.0], size=(n_boot, n))
    boot_y = fit_change[None, :] + signs * (resid1 / np.sqrt(1 - lev1))[None, :]
    boot_best, _, _ = _best(_annihilate(boot_y, q), ramps_r, norms)
    starts, ends = u[idx[boot_best, 0]], u[idx[boot_best, 1]]
    mids = (starts + ends) / 2
    tail = 100 * (1 - confidence) / 2
    a, b = idx[k]

    def to_x(value: float) -> float:
        return float(10.0**value - offset)

    detected = bool(p_value <= alpha and effect >= min_effect)
    if detected:
        reason = f"transition: p = {p_value:.3g}, effect {effect:.2f} of the range"
    elif p_value > alpha:
        reason = f"no transition: p = {p_value:.3g} > {alpha:g}"
    else:
        reason = f"significant but small: effect {effect:.2f} < {min_effect:g} of the range"
    return Transition(
        detected=detected,
        p_value=p_value,
        statistic=statistic,
        effect_size=float(effect),
        jump=h,
        x_change=to_x((u[a] + u[b]) / 2),
        x_low=to_x(np.percentile(mids, tail)),
        x_high=to_x(np.percentile(mids, 100 - tail)),
        x_start=to_x(u[a]),
        x_end=to_x(u[b]),
        span_low=to_x(np.percentile(starts, tail)),
        span_high=to_x(np.percentile(ends, 100 - tail)),
        n_points=n,
        n_dropped=dropped,
        n_knots=knots,
        degree=deg,
        reason=reason,
        x=xs,
        y=ys,
        fit_smooth=fit_smooth,
        fit_change=fit_change,
    )


def genuine_transition(
    curve_x: ArrayLike, curve_y: ArrayLike, higher_is_better: bool | None = None, **kw: object
) -> Transition:
    """A transition in a *continuous* metric's curve: the evidence for ``genuine``.

    :func:`detect_transition` with its defaults (``**kw`` passed on). When
    ``higher_is_better`` is given, a transition counts only when the jump goes
    in the improving direction (a loss that drops, an accuracy that rises);
    otherwise ``detected`` is set False with the reason. ``bool(result)`` is
    the answer; see :func:`miragelab.transitions.apply.combined_verdict` for the
    combination with :func:`miragelab.verdict.classify`.
    """
    result = detect_transition(curve_x, curve_y, **kw)  # type: ignore[arg-type]
    if higher_is_better is None or not result.detected:
        return result
    improving = (result.jump > 0) == bool(higher_is_better)
    if improving:
        return result
    from dataclasses import replace

    return replace(result, detected=False, reason=result.reason + ", but the metric worsens")


# --------------------------------------------------------------------------- error rates


def _metric_from_loss(
    metric: str, ce: FloatArray, noise: float, length: int, rng: np.random.Generator
) -> FloatArray:
    """A noisy metric curve computed from the per-token loss ``ce``."""
    p = np.exp(-ce)
    if metric == "cross_entropy":
        return ce * (1 + noise * rng.standard_normal(ce.size))
    n = int(noise)
    if metric == "per_token_prob":
        return rng.binomial(n, p) / n
    if metric == "token_edit_distance":
        return rng.binomial(n * length, 1 - p) / n
    raise ValueError(f"unknown metric {metric!r}")


#: noise levels of the simulation per metric: relative sd for the loss, examples otherwise
SIM_NOISE = {
    "cross_entropy": (0.005, 0.02),
    "per_token_prob": (500, 5000),
    "token_edit_distance": (500, 5000),
}


def simulate_curves(
    n_curves: int,
    drop: float = 0.0,
    width: float = 0.0,
    seed: int = 0,
) -> list[dict[str, object]]:
    """Smooth theory curves (``drop = 0``) or with a planted transition; see the docstring.

    Each item holds ``x``, ``y``, ``metric``, ``noise``, ``n_points``,
    ``decades`` and, with a transition, ``x_true`` (its midpoint).
    """
    rng = np.random.default_rng(seed)
    metrics = tuple(SIM_NOISE)
    out = []
    for i in range(n_curves):
        metric = metrics[i % len(metrics)]
        noise = SIM_NOISE[metric][rng.integers(2)]
        n_points = int(rng.choice([12, 20, 30, 40]))
        decades = int(rng.choice([2, 3, 4]))
        length = int(rng.choice([5, 10]))
        alpha = rng.uniform(-0.8, -0.2)
        x = np.geomspace(1e7, 1e7 * 10.0**decades, n_points)
        c = x[0] / rng.uniform(1.0, 6.0) ** (1 / alpha)
        ce = theory.cross_entropy(x, c, alpha)
        item: dict[str, object] = {"metric": metric, "noise": noise, "n_points": n_points}
        item["decades"] = decades
        if drop > 0:
            t = np.linspace(0, 1, n_points)
            centre = rng.uniform(0.2, 0.8)
            lo, hi = centre - width / 2, centre + width / 2
            ramp = np.clip((t - lo) / (hi - lo), 0, 1) if width > 0 else (t >= centre) * 1.0
            ce = ce * (1 - drop * ramp)
            item["x_true"] = float(x[0] * (x[-1] / x[0]) ** centre)
        item["x"] = x
        item["y"] = _metric_from_loss(metric, ce, noise, length, rng)
        out.append(item)
    return out


def error_rates(
    n_smooth: int = 400,
    n_per_setting: int = 60,
    drops: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5),
    widths: tuple[float, ...] = (0.0, 0.05, 0.1),
    seed: int = 0,
    **detect_kw: object,
) -> pd.DataFrame:
    """False-positive rate on smooth theory curves and power on planted transitions.

    One row per (case, drop, width, metric) plus an ``all`` row per case/setting:
    ``case`` ('smooth' or 'step'), ``drop``, ``width``, ``metric``, ``curves``,
    ``detected`` (count), ``rate``, ``significant_rate`` (``p <= alpha``
    regardless of effect size) and, for steps, ``located`` (share of detected
    transitions whose span interval holds the true midpoint).
    """
    kw = {"n_boot": 199, **detect_kw}
    settings = [("smooth", 0.0, 0.0, n_smooth)] + [
        ("step", d, w, n_per_setting) for d, w in itertools.product(drops, widths)
    ]
    rows = []
    for j, (case, drop, width, count) in enumerate(settings):
        curves = simulate_curves(count, drop, width, seed=seed * 1000 + j)
        results = [
            detect_transition(c["x"], c["y"], seed=seed + i, **kw)  # type: ignore[arg-type]
            for i, c in enumerate(curves)
        ]
        frame = pd.DataFrame(
            {
                "metric": [c["metric"] for c in curves],
                "detected": [r.detected for r in results],
                "significant": [r.p_value <= kw.get("alpha", 0.05) for r in results],
                "located": [
                    bool(r.detected and r.span_low <= c.get("x_true", np.nan) <= r.span_high)
                    for r, c in zip(results, curves, strict=True)
                ],
            }
        )
        for metric, group in [("all", frame), *frame.groupby("metric", sort=True)]:
            hits = int(group["detected"].sum())
            rows.append(
                {
                    "case": case,
                    "drop": drop,
                    "width": width,
                    "metric": metric,
                    "curves": len(group),
                    "detected": hits,
                    "rate": hits / len(group),
                    "significant_rate": float(group["significant"].mean()),
                    "located": float(group["located"].sum() / hits)
                    if hits and case == "step"
                    else float("nan"),
                }
            )
    return pd.DataFrame(rows)
