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

*Known noise* (``stderr`` given for every point): the fits are weighted by
each point's error, the Gaussian likelihood keeps the variance factor ``phi``
profiled at ``>= 1`` (the data may be noisier than their errors, never less),
the null is a parametric bootstrap from the smooth fit with the errors
inflated by ``phi``, the test runs from 3 points and the smooth model is kept
lean (:func:`smooth_shape`). ``law=True`` replaces the spline by a scaling law
``E + A exp(-r t)`` with its rate profiled. ``window`` restricts the candidate
breaks; ``exclude_up``/``exclude_down`` are one-sided bounds of the breaks the
data rule out. :mod:`miragelab.verdict` uses all of these; its error rates are
measured by ``benchmarks/bench_verdict.py``. The table below is the
unweighted path's.

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
from scipy import optimize
from scipy import stats as sps

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

#: the fewest points (after dropping ``x + offset <= 0``) the test runs on, noise unknown
MIN_POINTS = 6
#: the fewest points when every point's standard error is known
MIN_POINTS_KNOWN_NOISE = 3
#: with known noise the smooth model is a line up to this many points, then quadratic
KNOWN_NOISE_LINEAR_UP_TO = 4
#: rates of the scaling-law smooth model ``E + A exp(-r t)``, t in [0, 1]
#: without standard errors the noise is the smooth fit's residual; one below this share
#: of the curve's range is rounding (a curve computed, not measured), and no noise to
#: test a break against: a break of 1e-7 would pass as significant
EXACT_FIT = 1e-6
LAW_RATES = tuple(np.geomspace(0.1, 30.0, 16))
#: cubic from this many points
KNOWN_NOISE_CUBIC_FROM = 8
#: and gains interior knots (one per 8 points) from this many points
KNOWN_NOISE_KNOTS_FROM = 14

#: scalar fields of :class:`Transition`, in order (one table row per curve)
TRANSITION_COLUMNS = (
    "detected",
    "p_value",
    "statistic",
    "effect_size",
    "jump",
    "jump_low",
    "jump_high",
    "exclude_up",
    "exclude_down",
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
    "noise",
    "noise_scale",
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
    (lower percentile of starts, upper percentile of ends). ``jump_low`` /
    ``jump_high``: bootstrap percentile interval of the height. ``exclude_up`` /
    ``exclude_down``: the largest one-sided upper confidence bound (level
    ``confidence``), over the candidate breaks (those spanning ``focus`` when
    given), of a rise / a drop fitted at that candidate alone: breaks larger
    than these are excluded by the data (``y`` units). ``noise`` is ``known`` (weighted by the
    given standard errors, ``noise_scale`` = the variance factor ``phi >= 1``) or
    ``estimated`` (``noise_scale`` = residual variance). NaN fields mean the test
    did not run (``reason`` says why). The arrays hold the points used, both
    fits, the smooth fit's pointwise standard error and the errors used.
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
    jump_low: float = float("nan")
    jump_high: float = float("nan")
    exclude_up: float = float("nan")
    exclude_down: float = float("nan")
    noise: str = ""
    noise_scale: float = float("nan")
    x: FloatArray = field(repr=False, default_factory=lambda: np.empty(0))
    y: FloatArray = field(repr=False, default_factory=lambda: np.empty(0))
    fit_smooth: FloatArray = field(repr=False, default_factory=lambda: np.empty(0))
    fit_change: FloatArray = field(repr=False, default_factory=lambda: np.empty(0))
    smooth_band: FloatArray = field(repr=False, default_factory=lambda: np.empty(0))
    stderr: FloatArray = field(repr=False, default_factory=lambda: np.empty(0))

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


def _rss(values: FloatArray, q: FloatArray, extra: FloatArray | None = None) -> float:
    """Weighted residual sum of ``values`` on the columns of ``q`` (and one more column)."""
    if extra is not None:
        e = extra - q @ (q.T @ extra)
        norm = float(e @ e)
        if norm > 1e-12:
            q = np.column_stack([q, e / np.sqrt(norm)])
    resid = values - q @ (q.T @ values)
    return float(resid @ resid)


def _refine_rate(rates: list[float], best: int, rss_of_rate) -> float:  # noqa: ANN001
    """The law's rate that minimises ``rss_of_rate``, searched between the neighbours of
    the best grid rate ``rates[best]`` (rate 0, the straight line, is kept as it is)."""
    if best == 0:
        return 0.0
    grid = np.asarray(rates[1:], dtype=float)
    i = best - 1
    lo = grid[i - 1] if i > 0 else grid[0] / 2
    hi = grid[i + 1] if i + 1 < grid.size else grid[-1] * 2
    result = optimize.minimize_scalar(
        lambda log_rate: rss_of_rate(float(np.exp(log_rate))),
        bounds=(np.log(lo), np.log(hi)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(result.x))


def _not_run(reason: str, n: int, dropped: int, xs: FloatArray, ys: FloatArray) -> Transition:
    nan = float("nan")
    return Transition(
        False, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan,
        n, dropped, 0, 0, reason, nan, nan, nan, nan, "", nan,
        xs, ys, np.full(n, nan), np.full(n, nan), np.full(n, nan), np.full(n, nan),
    )  # fmt: skip


def noise_weights(stderr: FloatArray | None) -> FloatArray | None:
    """Per-point standard errors when every one is finite and positive, else None."""
    if stderr is None or not (np.all(np.isfinite(stderr)) and np.all(stderr > 0)):
        return None
    return stderr


def smooth_shape(n: int, known_noise: bool) -> tuple[int, int]:
    """Degree and interior knots of the smooth model for ``n`` points.

    With unknown noise the scale is estimated from the residuals, so the model may
    be more flexible (cubic from 10 points, quadratic from 7). With known noise
    every parameter is paid for in power: on the scale the verdict tests (log
    cross-entropy, where a power law is a straight line and an irreducible loss
    bends it one way) the model is linear up to
    :data:`KNOWN_NOISE_LINEAR_UP_TO` points and quadratic above, with a knot
    per 8 points from :data:`KNOWN_NOISE_KNOTS_FROM`. Misfit of a curve that
    this cannot follow inflates the profiled variance factor, which makes the
    test more conservative, not less.
    """
    if known_noise:
        degree = 1 if n <= KNOWN_NOISE_LINEAR_UP_TO else 2 if n < KNOWN_NOISE_CUBIC_FROM else 3
        return degree, min(8, max(0, (n - KNOWN_NOISE_KNOTS_FROM) // 8 + 1))
    return (3 if n >= 10 else 2 if n >= 7 else 1), default_knots(n)


def _neg2loglik(rss: FloatArray, n: int, floor: float) -> FloatArray:
    """``-2 log L`` of a Gaussian fit with weighted residual sum ``rss``, scale profiled.

    The variance factor ``phi`` is ``max(floor, rss / n)``: with known noise
    (``floor = 1``) the data may be noisier than their standard errors say, never
    less noisy; with unknown noise (``floor = 0``) it is free, and the difference of
    two of these is ``n log(RSS0 / RSS1)``.
    """
    phi = np.maximum(rss / n, max(floor, 1e-300))
    return n * np.log(phi) + rss / phi


def detect_transition(
    x: ArrayLike,
    y: ArrayLike,
    *,
    stderr: ArrayLike | None = None,
    window: tuple[float, float] | None = None,
    focus: float | None = None,
    law: bool = False,
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
    stderr
        Standard error of each ``y`` (same order as ``x``). When every one is
        finite and positive the fits are weighted, the noise is taken as known
        (the data may be noisier, not less noisy) and the test runs from
        :data:`MIN_POINTS_KNOWN_NOISE` points; otherwise the noise is estimated.
    window
        ``(x_lo, x_hi)``: only breaks that start and end inside it are candidates
        (a break *where* something else happens, such as a harsh metric's jump).
    focus
        An ``x`` between two points: ``exclude_up``/``exclude_down`` are taken over
        the candidate breaks that span it (by default over every candidate).
    law
        The smooth model is a scaling law ``y = E + A exp(-r t)`` (``t`` the log
        axis scaled to [0, 1]) with its rate ``r`` profiled over :data:`LAW_RATES`
        and the straight line as the limit ``r -> 0``, instead of the regression
        spline: for a loss against size, where a power law with an irreducible
        term is this form, and no member of it drops suddenly.
    offset
        ``u = log10(x + offset)``; points with ``x + offset <= 0`` are dropped.
    log_y
        Test ``log(y)`` instead of ``y`` (perplexity -> cross-entropy); ``y`` must be > 0.
    n_knots, degree
        The smooth model; ``None`` picks them with :func:`smooth_shape`.
    max_width
        Widest ramp, as a share of the log-``x`` range.
    min_side
        Points required before the ramp's start and after its end. With known
        noise 1 for the law and below 6 points, else 2 (a spline bends into a
        break with one point after it); with unknown noise 3, or 2 below 12.
    n_boot, alpha, min_effect, confidence, seed
        Bootstrap replicates, test level, smallest effect size that counts, level
        of the intervals and bounds, seed of the bootstrap.
    """
    xs, ys = sort_curve(x, y, x_name="x")
    order = np.argsort(np.asarray(x, dtype=float).ravel(), kind="stable")
    se_in = None if stderr is None else np.asarray(stderr, dtype=float).ravel()
    if se_in is not None and se_in.size != xs.size:
        raise InputError(f"stderr has {se_in.size} values for {xs.size} points", field="stderr")
    if se_in is not None:
        se_in = se_in[order]
    if log_y:
        if np.any(ys <= 0):
            raise InputError("log_y needs y > 0", field="value")
        if se_in is not None:
            se_in = se_in / ys
        ys = np.log(ys)
    keep = xs + offset > 0
    dropped = int((~keep).sum())
    xs, ys = xs[keep], ys[keep]
    n = int(xs.size)
    se = noise_weights(None if se_in is None else se_in[keep])
    known = se is not None
    need = MIN_POINTS_KNOWN_NOISE if known else MIN_POINTS
    if n < need:
        noise = "known noise" if known else "no per-point noise"
        reason = f"{n} points with x + offset > 0 and {noise}; need {need}"
        return _not_run(reason, n, dropped, xs, ys)
    if np.ptp(ys) == 0:
        return _not_run("flat curve", n, dropped, xs, ys)
    if not (0 < alpha < 1 and 0 < confidence < 1 and n_boot >= 19):
        raise ValueError("need 0 < alpha < 1, 0 < confidence < 1 and n_boot >= 19")
    shape = smooth_shape(n, known)
    deg = degree if degree is not None else shape[0]
    knots = n_knots if n_knots is not None else shape[1]
    if min_side is not None:
        side = min_side
    elif known:  # the law cannot bend into a last-point drop; a spline can
        side = 1 if law or n < 6 else 2
    else:
        side = 3 if n >= 12 else 2
    w = 1.0 / se if known else np.ones(n)
    floor = 1.0 if known else 0.0

    u = np.log10(xs + offset)
    t = (u - u[0]) / (u[-1] - u[0])

    def orthonormal(basis: FloatArray) -> FloatArray:
        basis_u, sv, _ = np.linalg.svd(basis * w[:, None], full_matrices=False)
        return basis_u[:, sv > 1e-10 * sv[0]]  # drops directions lost to empty knot gaps

    def law_basis(rate: float) -> FloatArray:
        if rate <= 0:
            return orthonormal(np.column_stack([np.ones(n), t]))
        return orthonormal(np.column_stack([np.ones(n), np.exp(-rate * t)]))

    rates = [0.0, *LAW_RATES] if law else []
    qs = [law_basis(r) for r in rates] if law else [orthonormal(_smooth_basis(t, deg, knots))]
    p0 = 3 if law else qs[0].shape[1]  # the law's rate is a parameter too
    idx, ramps = _candidates(t, max_width, side)
    if window is not None and idx.shape[0]:
        lo, hi = np.log10(np.asarray(window, dtype=float) + offset)
        inside = (u[idx[:, 0]] >= lo - 1e-12) & (u[idx[:, 1]] <= hi + 1e-12)
        idx, ramps = idx[inside], ramps[:, inside]
    if idx.shape[0] == 0:
        reason = "no candidate changepoint with min_side points each side"
        return _not_run(reason, n, dropped, xs, ys)
    # weighted ramps orthogonal to each smooth basis
    ramps_rs = np.stack([_annihilate((ramps * w[:, None]).T, q).T for q in qs])  # (G, n, K)
    norms_s = np.square(ramps_rs).sum(axis=1)  # (G, K)
    usable = norms_s.min(axis=0) > 1e-10 * np.square(w).sum()
    idx, ramps_rs, norms_s = idx[usable], ramps_rs[:, :, usable], norms_s[:, usable]
    if idx.shape[0] == 0:
        return _not_run("every candidate ramp is smooth", n, dropped, xs, ys)

    def fit_all(values: FloatArray):
        """Per basis: residual sums, best candidate, its reduction and height (G, B)."""
        rss0, best, red, height = [], [], [], []
        for q, ramps_r, norms in zip(qs, ramps_rs, norms_s, strict=True):
            resid = _annihilate(values, q)
            b_, r_, h_ = _best(resid, ramps_r, norms)
            rss0.append(np.square(resid).sum(axis=1))
            best.append(b_)
            red.append(r_)
            height.append(h_)
        return np.array(rss0), np.array(best), np.array(red), np.array(height)

    yw = ys * w
    if law:  # the rates of the best smooth fit and of the best fit with a break, refined
        raw_ramps = ramps[:, usable] * w[:, None]
        rss0_g, best_g, red_g, _ = fit_all(yw[None, :])
        g_null = int(np.argmin(rss0_g[:, 0]))
        g_alt = int(np.argmin(rss0_g[:, 0] - red_g[:, 0]))
        ramp = raw_ramps[:, int(best_g[g_alt, 0])]
        refined = [
            _refine_rate(rates, g_null, lambda r: _rss(yw, law_basis(r))),
            _refine_rate(rates, g_alt, lambda r: _rss(yw, law_basis(r), ramp)),
        ]
        for rate in refined:
            q = law_basis(rate)
            r_r = _annihilate(raw_ramps.T, q).T
            qs.append(q)
            ramps_rs = np.concatenate([ramps_rs, r_r[None]], axis=0)
            norms_s = np.concatenate([norms_s, np.square(r_r).sum(axis=0)[None]], axis=0)
        rates += refined
    rss0_g, best_g, red_g, height_g = fit_all(yw[None, :])
    g0 = int(np.argmin(rss0_g[:, 0]))
    g1 = int(np.argmin(rss0_g[:, 0] - red_g[:, 0]))
    q = qs[g0]
    resid0 = _annihilate(yw[None, :], q)[0]
    rss0 = float(rss0_g[g0, 0])
    fit_smooth = (yw - resid0) / w
    k, h = int(best_g[g1, 0]), float(height_g[g1, 0])
    resid0_g1 = _annihilate(yw[None, :], qs[g1])[0]
    tiny = 1e-12 * max(rss0, 1e-300)
    # rounding: a share of the curve's range, and at least a few ulps of its level
    rounding = max(
        EXACT_FIT * float(np.ptp(ys)), 64 * np.finfo(float).eps * float(np.max(np.abs(ys)))
    )
    if not known and not np.sqrt(rss0 / max(n - p0, 1)) > rounding:
        reason = (
            "the smooth fit leaves no residual (below "
            f"{EXACT_FIT:g} of the curve's range), so there is no noise to test a break "
            "against: give standard errors (stderr, an interval or n)"
        )
        return _not_run(reason, n, dropped, xs, ys)

    def lr(rss: FloatArray, rss1: FloatArray) -> FloatArray:
        return _neg2loglik(rss, n, floor) - _neg2loglik(np.maximum(rss1, tiny), n, floor)

    def statistics(values: FloatArray) -> FloatArray:
        rss, _, red, _ = fit_all(values)
        return lr(rss.min(axis=0), (rss - red).min(axis=0))

    statistic = float(statistics(yw[None, :])[0]) if rss0 > 0 else float("inf")

    rng = np.random.default_rng(seed)
    leverage = np.clip(np.square(q).sum(axis=1), 0, 1 - 1e-9)
    # the null's noise: the known errors, inflated when the smooth fit's residuals say so
    phi0 = max(1.0, rss0 / (n - p0)) if known and n > p0 else 1.0
    fit0w = fit_smooth * w
    if known:
        null = fit0w[None, :] + np.sqrt(phi0) * rng.standard_normal((n_boot, n))
    else:
        signs = rng.choice([-1.0, 1.0], size=(n_boot, n))
        null = fit0w[None, :] + signs * (resid0 / np.sqrt(1 - leverage))[None, :]
    null_stat = statistics(null)
    p_value = float((1 + np.sum(null_stat >= statistic)) / (n_boot + 1))

    ramps_r, norms = ramps_rs[g1], norms_s[g1]
    fit_change = (yw - resid0_g1 + h * ramps_r[:, k]) / w
    resid1 = (ys - fit_change) * w
    span = float(np.ptp(fit_change))
    effect = abs(h) / span if span > 0 else float("nan")

    # the breaks the data exclude: one-sided upper confidence bounds of each candidate's
    # height fitted alone on the smooth fit, the largest over the candidates, up and down
    if known:
        scale, quantile = np.sqrt(phi0), sps.norm.ppf(confidence)
    else:
        dof = max(n - p0 - 1, 1)
        scale, quantile = np.sqrt(rss0 / max(n - p0, 1)), sps.t.ppf(confidence, dof)
    heights = (resid0 @ ramps_rs[g0]) / norms_s[g0]
    if focus is not None:
        gap = (xs[idx[:, 0]] < focus) & (focus < xs[idx[:, 1]])
    else:
        gap = np.ones(heights.size, dtype=bool)
    margin = quantile * scale / np.sqrt(norms_s[g0][gap])
    # no candidate spans the focus (a gap at the end of the ladder): nothing is excluded
    exclude_up = float(np.max(heights[gap] + margin)) if gap.any() else float("inf")
    exclude_down = float(np.max(-heights[gap] + margin)) if gap.any() else float("inf")

    # where and how big: refit the changepoint on bootstrap replicates of the changepoint fit
    lev1 = np.clip(np.square(qs[g1]).sum(axis=1) + np.square(ramps_r[:, k]) / norms[k], 0, 1 - 1e-9)
    fit1w = fit_change * w
    if known:
        phi1 = max(1.0, float(resid1 @ resid1) / max(n - p0 - 1, 1))
        boot_y = fit1w[None, :] + np.sqrt(phi1) * rng.standard_normal((n_boot, n))
    else:
        signs = rng.choice([-1.0, 1.0], size=(n_boot, n))
        boot_y = fit1w[None, :] + signs * (resid1 / np.sqrt(1 - lev1))[None, :]
    rss_b, best_b, red_b, height_b = fit_all(boot_y)
    pick = np.argmin(rss_b - red_b, axis=0)
    cols = np.arange(n_boot)
    boot_best, boot_h = best_b[pick, cols], height_b[pick, cols]
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
    band = np.sqrt(phi0 * leverage) / w if known else np.sqrt(rss0 / max(n - p0, 1) * leverage)
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
        jump_low=float(np.percentile(boot_h, tail)),
        jump_high=float(np.percentile(boot_h, 100 - tail)),
        exclude_up=exclude_up,
        exclude_down=exclude_down,
        noise="known" if known else "estimated",
        noise_scale=float(phi0) if known else float(rss0 / max(n - p0, 1)),
        x=xs,
        y=ys,
        fit_smooth=fit_smooth,
        fit_change=fit_change,
        smooth_band=band,
        stderr=se if known else np.full(n, np.nan),
    )


def genuine_transition(
    curve_x: ArrayLike, curve_y: ArrayLike, higher_is_better: bool | None = None, **kw: object
) -> Transition:
    """A transition in a *continuous* metric's curve: the evidence for ``genuine``.

    :func:`detect_transition` with its defaults (``**kw`` passed on). When
    ``higher_is_better`` is given, a transition counts only when the jump goes
    in the improving direction (a loss that drops, an accuracy that rises);
    otherwise ``detected`` is set False with the reason. ``bool(result)`` is
    the answer. :func:`miragelab.verdict.classify` runs the same test, restricted
    to where a harsh metric jumps.
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
