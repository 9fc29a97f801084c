"""The verdict per curve: is an emergent-looking jump real, or made by the metric?

A *curve* is one harsh metric (exact match, accuracy, multiple-choice grade:
discontinuous in the per-token probability) of one model family on one task,
over model size (``axis='params'``) or over the training steps of one model
(``axis='step'``, ``model`` set), with the continuous metrics computed on the
same outputs (per-token log-probability, cross-entropy, perplexity, Brier
score, edit distance, ...). :func:`verdict_table` gives exactly one row per
(task, family, axis, model, harsh metric), with one of four labels:

``smooth``
    the harsh curve does not look emergent (its rise is spread over the ladder,
    within its noise, or absent; its ``shape`` says which);
``mirage``
    the harsh curve jumps, and the continuous metric shows no break where it
    jumps although the test could have found one: the sharpness is the metric's;
``genuine``
    the continuous metric itself breaks, in the improving direction, where the
    harsh metric jumps;
``inconclusive``
    the data cannot decide (too few rungs, too much noise, a jump inside a wide
    gap of the ladder, continuous metrics that disagree); ``reason`` says what
    would decide it.

The test
--------
*Mirage hypothesis* (the null): the continuous metric follows a smooth scaling
law in ``log10 x`` and the harsh metric is a fixed monotone function of it.
*Genuine alternative*: the continuous metric has a localised break -- a step or a
ramp in ``log10 x`` -- inside the harsh metric's jump.

1. **The harsh curve** (oriented so that improvement is positive, on the true
   spacing ``u = log10 x``). Its *jump* is the largest improving step, widened
   over neighbouring steps that improve by at least half as much. It *looks
   emergent* when the curve improves beyond its noise (2 standard errors from
   first to last point), the jump carries at least :data:`JUMP_SHARE` of the
   total rise in at most half of the ladder's steps, the jump itself exceeds 2
   standard errors, and its rate per decade is at least :data:`RATE_RATIO` times
   the ladder's average. A jump over several steps at an ordinary rate is a rise
   spread over the decades (``smooth``). A one-step jump in a gap so wide that
   its rate is ordinary is *not* called sharp: what happens inside the gap is
   unknown, so the label can be ``genuine`` (the continuous metric breaks there)
   but never ``mirage``; else ``inconclusive`` with the sizes to add in the gap.
2. **The continuous metric** is put on the scale where a power law in size is a
   straight line in ``u`` (:func:`loss_scale`: ``log`` of the cross-entropy for
   losses, perplexities, per-token probabilities and log-likelihoods, ``log`` of
   the distance to the best value for Brier score, edit distance and other
   bounded metrics), its standard errors carried over by the delta method. The
   break test is :func:`miragelab.transitions.detect.detect_transition`, the one
   detector of the package (``mirage transitions detect`` runs it alone), with
   the candidate breaks restricted to the harsh jump: a weighted fit of a smooth
   regression spline in ``u`` against the same plus a ramp, a likelihood ratio
   with the noise known from each point's standard error (the data may be
   noisier, never less noisy: the variance factor is profiled at ``>= 1``),
   calibrated by a parametric bootstrap from the smooth fit.
3. **Labels per continuous metric**: ``genuine`` when ``p <= alpha`` and the
   break improves the metric; ``inconclusive`` when it worsens it. Otherwise
   ``mirage`` only if the data *exclude* an improving break of
   :data:`RESOLVE_SE` standard errors of the continuous metric in the harsh
   metric's largest step: the one-sided :data:`EXCLUDE_CONFIDENCE` upper bound
   of a break fitted there (an equivalence test; ``resolvable_se`` is that bound
   in standard errors of the metric at the jump) is below it, for a step and
   for every ramp of the jump that spans that step. Else ``inconclusive``,
   saying which break size the ladder excludes.
4. **One answer per curve**: continuous metrics are taken in the facts table's
   order of preference (:attr:`miragelab.metric_facts.MetricFact.preference`:
   per-token log-prob / cross-entropy first, then Brier, edit distance, BLEU
   ...). One says ``genuine`` and another ``mirage``: ``inconclusive``
   (``metrics_agree`` False). Otherwise the first decisive one decides.
5. **Link check**: the harsh metric predicted from the continuous metric's
   smooth fit through a two-parameter monotone link (``exp(-exp(a + b z))``, the
   form of ``p ** L``, or a logistic), fitted to all points; ``link_residual`` is
   the observed harsh jump minus the predicted one, in standard errors of the
   observed jump. It is evidence shown beside the label, not part of the rule.

Error rates of the rule are measured, on simulations separate from the tests,
by ``benchmarks/bench_verdict.py``; the thresholds above were chosen there.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import optimize

from miragelab.bootstrap import key_seed
from miragelab.emergence import iter_curves, sort_curve
from miragelab.errors import InputError
from miragelab.metric_facts import fact_of, is_continuous, is_harsh, resolve_directions
from miragelab.metrics import REGISTRY, MetricOptions
from miragelab.paired import curve_paired_se, example_values
from miragelab.stats import point_stderr
from miragelab.tables import without_attrs
from miragelab.transitions.detect import Transition, detect_transition

__all__ = [
    "EVIDENCE_COLUMNS",
    "HarshProfile",
    "PairVerdict",
    "VERDICT_COLUMNS",
    "VerdictResult",
    "classify",
    "harsh_profile",
    "loss_scale",
    "verdict_table",
    "verdicts",
]

FloatArray = NDArray[np.float64]

#: test level of the break test
ALPHA = 0.05
#: a mirage needs the data to exclude an improving break of this many standard errors
RESOLVE_SE = 5.0
#: one-sided confidence of that exclusion
EXCLUDE_CONFIDENCE = 0.95
#: the harsh jump carries at least this share of the curve's total rise
JUMP_SHARE = 0.5
#: and rises at least this many times faster per decade than the ladder on average
RATE_RATIO = 2.0
#: a change counts when it exceeds this many standard errors
SIGNIFICANT_SE = 2.0

#: columns of the verdict table (one row per curve)
VERDICT_COLUMNS = (
    "task",
    "family",
    "axis",
    "model",
    "harsh_metric",
    "soft_metric",
    "n_points",
    "verdict",
    "shape",
    "p_value",
    "break_at",
    "break_low",
    "break_high",
    "break_size",
    "break_ci_low",
    "break_ci_high",
    "resolvable_se",
    "link_residual",
    "metrics_agree",
    "jump_from",
    "jump_to",
    "reason",
)
#: columns of the evidence table (one row per curve and continuous metric)
EVIDENCE_COLUMNS = (
    "task",
    "family",
    "axis",
    "model",
    "harsh_metric",
    "soft_metric",
    "preference",
    "scale",
    "n_points",
    "label",
    "p_value",
    "statistic",
    "break_at",
    "break_low",
    "break_high",
    "break_size",
    "break_ci_low",
    "break_ci_high",
    "excluded",
    "resolvable_se",
    "noise",
    "noise_scale",
    "link",
    "link_residual",
    "reason",
)


# --------------------------------------------------------------------------- the harsh curve


@dataclass(frozen=True)
class HarshProfile:
    """What the harsh curve looks like: its shape, its jump, and whether it is sharp.

    ``status`` is ``emergent`` (sharp jump), ``wide_gap`` (the jump carries the
    rise but its rate per decade is ordinary) or ``smooth``; ``jump`` the
    indices ``(i0, i1)`` of the points bounding the jump (sorted by ``x``).
    """

    shape: str
    status: str
    reason: str
    jump: tuple[int, int]
    rate_ratio: float


def _diff_se(se: FloatArray, i: int, j: int, pair_se: FloatArray | None = None) -> float:
    """Standard error of ``y[j] - y[i]``: from the paired matrix where the same examples
    were scored at every point, else of two independent means."""
    if pair_se is not None:
        return float(pair_se[i, j])
    return float(np.hypot(se[i], se[j]))


def _exceeds(value: float, se: float) -> bool:
    """``value`` is positive beyond noise (beyond 0 where the noise is unknown)."""
    return bool(value > SIGNIFICANT_SE * se) if np.isfinite(se) else bool(value > 0)


def _jump_steps(increments: FloatArray) -> tuple[int, int]:
    """The largest improving step, widened over neighbours improving by >= half as much."""
    top = int(np.argmax(increments))
    half = increments[top] / 2.0
    first, last = top, top
    while first > 0 and increments[first - 1] >= half:
        first -= 1
    while last + 1 < increments.size and increments[last + 1] >= half:
        last += 1
    return first, last + 1


def _shape(y: FloatArray, se: FloatArray, pair_se: FloatArray | None = None) -> str:
    steps = np.diff(y)
    if pair_se is None:
        step_se = np.hypot(se[1:], se[:-1])
    else:
        step_se = pair_se[np.arange(y.size - 1), np.arange(1, y.size)]
    known = np.isfinite(step_se)
    tol = np.where(known, SIGNIFICANT_SE * step_se, 1e-12 * max(np.ptp(y), 1e-300))
    net_se = _diff_se(se, 0, -1, pair_se)
    if np.ptp(y) == 0 or (known.all() and np.all(np.abs(steps) <= tol)):
        return "flat"
    up, down = bool(np.any(steps > tol)), bool(np.any(steps < -tol))
    net = y[-1] - y[0]
    if not down and net > 0:
        return "increasing"
    if not up and net < 0:
        return "inverse"
    if up and down:
        return "non-monotone"
    return "increasing" if _exceeds(net, net_se) else "flat"


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def harsh_profile(
    x: ArrayLike, y: ArrayLike, se: ArrayLike, pair_se: ArrayLike | None = None
) -> HarshProfile:
    """Shape, jump and sharpness of an oriented harsh curve (improvement positive).

    ``x`` sorted ascending and distinct, ``se`` the standard error of each point
    (NaN where unknown). ``pair_se[i, j]``: the standard error of ``y[j] - y[i]``
    where the same examples were scored at every point
    (:func:`miragelab.paired.paired_se`); the differences are then tested as
    paired, else as independent means. See the module docstring for the rule.
    """
    xs, ys, ses = (np.asarray(a, dtype=float) for a in (x, y, se))
    pair = None if pair_se is None else np.asarray(pair_se, dtype=float)
    shape = _shape(ys, ses, pair)
    steps = np.diff(ys)
    i0, i1 = _jump_steps(steps) if steps.size else (0, 0)
    rise = float(np.clip(steps, 0, None).sum())
    if shape in ("flat", "inverse") or not _exceeds(ys[-1] - ys[0], _diff_se(ses, 0, -1, pair)):
        reason = (
            "harsh metric flat within its noise"
            if shape == "flat"
            else ("harsh metric does not improve")
        )
        return HarshProfile(shape, "smooth", reason, (i0, i1), float("nan"))
    u = np.log10(xs)
    share = float((ys[i1] - ys[i0]) / rise)
    log_share = float((u[i1] - u[i0]) / (u[-1] - u[0]))
    ratio = share / log_share
    if share < JUMP_SHARE or (i1 - i0) > steps.size / 2:
        reason = (
            f"harsh rise spread over the ladder: its largest rise carries {share:.0%} of it "
            f"over {i1 - i0} of {steps.size} steps"
        )
        return HarshProfile(shape, "smooth", reason, (i0, i1), ratio)
    if not _exceeds(ys[i1] - ys[i0], _diff_se(ses, i0, i1, pair)):
        reason = "harsh jump within its noise (under 2 standard errors)"
        return HarshProfile(shape, "smooth", reason, (i0, i1), ratio)
    if ratio < RATE_RATIO and i1 - i0 > 1:
        reason = (
            f"harsh rise spread over the log range: its steepest stretch carries {share:.0%} "
            f"of it over {log_share:.0%} of the decades"
        )
        return HarshProfile(shape, "smooth", reason, (i0, i1), ratio)
    if ratio < RATE_RATIO:
        gap = xs[i1] / xs[i0]
        reason = (
            f"the harsh jump ({share:.0%} of its rise) falls in a {gap:.3g}x gap, "
            f"{log_share:.0%} of the ladder's log range: add sizes between "
            f"{_fmt(xs[i0])} and {_fmt(xs[i1])}"
        )
        return HarshProfile(shape, "wide_gap", reason, (i0, i1), ratio)
    reason = (
        f"harsh jump from {_fmt(xs[i0])} to {_fmt(xs[i1])} carries {share:.0%} of its rise "
        f"in {log_share:.0%} of the log range"
    )
    return HarshProfile(shape, "emergent", reason, (i0, i1), ratio)


# --------------------------------------------------------------------------- the continuous metric


def loss_scale(
    metric: str, y: ArrayLike, se: ArrayLike, higher_is_better: bool, log: bool = True
) -> tuple[FloatArray, FloatArray, str, bool]:
    """The continuous metric on the scale where a power law in size is straight.

    Returns ``(z, se_z, scale, improves_up)``: ``log`` of the per-token
    cross-entropy where the metric is one or converts to one
    (:attr:`~miragelab.metric_facts.MetricFact.to_loss`; with ``log=False`` the
    cross-entropy itself), else ``log`` of the distance to the metric's best
    value (:attr:`~miragelab.metric_facts.MetricFact.perfect`), else the values
    as given; ``improves_up`` says whether a larger ``z`` is better.
    The standard errors follow by the delta method. A value on the transform's
    edge (a probability of 0 or 1, a loss of 0) is moved half its standard error
    inside; a transform that still does not apply to every point falls back to
    the values as given.
    """
    ys, ses = np.asarray(y, dtype=float), np.asarray(se, dtype=float)
    fact = fact_of(metric)
    kind = fact.to_loss if fact is not None else None
    half = np.where(np.isfinite(ses), ses / 2, 0.0)  # how far an edge value is moved inside
    with np.errstate(divide="ignore", invalid="ignore"):
        loss, slope, name = None, None, ""
        if kind == "loss":
            loss, slope, name = np.maximum(ys, half), np.ones_like(ys), "log cross-entropy"
        elif kind == "log":
            v = np.maximum(ys, 1 + half)
            loss, slope, name = np.log(v), 1.0 / v, "log cross-entropy (log of log perplexity)"
        elif kind == "neg_log":
            v = np.clip(ys, half, 1 - half)
            loss, slope, name = -np.log(v), 1.0 / v, "log cross-entropy (-log probability)"
        elif kind == "neg":
            loss, slope, name = (
                np.maximum(-ys, half),
                np.ones_like(ys),
                "log negative log-likelihood",
            )
        elif fact is not None and fact.perfect is not None:
            loss = np.maximum(np.abs(ys - fact.perfect), half)
            slope, name = np.ones_like(ys), "log distance to the best value"
        if loss is not None and np.all(np.isfinite(loss)) and np.all(loss > 0):
            if not log and kind is not None:
                return loss, ses * np.abs(slope), name.removeprefix("log "), False
            return np.log(loss), ses * np.abs(slope) / loss, name, False
    return ys, ses, "as given", higher_is_better


def _fill_unknown(se: FloatArray) -> FloatArray:
    """Unknown or zero errors become the curve's largest known one (NaN when none is known)."""
    good = np.isfinite(se) & (se > 0)
    if not good.any():
        return np.full(se.shape, np.nan)
    return np.where(good, se, se[good].max())


# --------------------------------------------------------------------------- the link


def _gumbel(v: FloatArray) -> FloatArray:
    return np.exp(-np.exp(np.clip(v, -50, 50)))


def _logistic(v: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-np.clip(v, -50, 50)))


_LINKS = {"exp(-exp(a + b z))": _gumbel, "logistic(a + b z)": _logistic}


def _fit_link(h: FloatArray, se: FloatArray, z: FloatArray):
    """The better of the two links for harsh ``h`` in [0, 1] against ``z``; None if none fits."""
    best = None
    # errors unknown for the whole curve (NaN after _fill_unknown): equal weights
    sigma = np.maximum(np.where(np.isfinite(se) & (se > 0), se, 1.0), 1e-4)
    zc = (z - z.mean()) / (z.std() or 1.0)
    for name, link in _LINKS.items():
        for slope in (-3.0, 3.0):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optimize.OptimizeWarning)
                    coef, _ = optimize.curve_fit(
                        lambda v, a, b, link=link: link(a + b * v),
                        zc,
                        h,
                        p0=(0.0, slope),
                        sigma=sigma,
                        maxfev=2000,
                    )
            except (RuntimeError, ValueError, optimize.OptimizeWarning):
                continue
            rss = float(np.sum(((link(coef[0] + coef[1] * zc) - h) / sigma) ** 2))
            if best is None or rss < best[0]:
                best = (rss, name, link, coef)
    if best is None:
        return None
    _, name, link, coef = best

    def predict(values: FloatArray) -> FloatArray:
        return link(coef[0] + coef[1] * (values - z.mean()) / (z.std() or 1.0))

    return name, predict


# --------------------------------------------------------------------------- one pair


@dataclass(frozen=True)
class PairVerdict:
    """The label of one (harsh, continuous) pair with the evidence behind it.

    ``test`` is the break test of the continuous metric (None when it did not
    run); the arrays are for figures: ``x``, the harsh values ``harsh`` (as given)
    with ``harsh_se``, the continuous metric on its ``scale`` (``z``, ``z_se``),
    and the harsh values predicted from the continuous smooth fit
    (``harsh_pred`` with its band ``harsh_pred_low``/``harsh_pred_high``; as given,
    not oriented).
    """

    label: str
    reason: str
    profile: HarshProfile
    scale: str = ""
    test: Transition | None = None
    resolvable_se: float = float("nan")
    excluded: float = float("nan")
    link: str = ""
    link_residual: float = float("nan")
    break_size: float = float("nan")
    break_ci: tuple[float, float] = (float("nan"), float("nan"))
    x: FloatArray = field(repr=False, default_factory=lambda: np.empty(0))
    harsh: FloatArray = field(repr=False, default_factory=lambda: np.empty(0))
    harsh_se: FloatArray = field(repr=False, default_factory=lambda: np.empty(0))
    z: FloatArray = field(repr=False, default_factory=lambda: np.empty(0))
    z_se: FloatArray = field(repr=False, default_factory=lambda: np.empty(0))
    harsh_pred: FloatArray = field(repr=False, default_factory=lambda: np.empty(0))
    harsh_pred_low: FloatArray = field(repr=False, default_factory=lambda: np.empty(0))
    harsh_pred_high: FloatArray = field(repr=False, default_factory=lambda: np.empty(0))


def _common(x1, y1, s1, x2, y2, s2):  # noqa: ANN001, ANN202 - arrays
    """The two curves on the x values they share, sorted."""
    common = np.intersect1d(x1, x2)
    a, b = np.isin(x1, common), np.isin(x2, common)
    return common, y1[a], s1[a], y2[b], s2[b]


def _as_arrays(x: ArrayLike, y: ArrayLike, se: ArrayLike | None) -> tuple[FloatArray, ...]:
    xs = np.asarray(x, dtype=float).ravel()
    ses = np.full(xs.size, np.nan) if se is None else np.asarray(se, dtype=float).ravel()
    if ses.size != xs.size:
        raise InputError(f"{ses.size} standard errors for {xs.size} points", field="stderr")
    order = np.argsort(xs, kind="stable")
    sx, sy = sort_curve(x, y)
    return sx, sy, ses[order]


def classify(
    harsh_x: ArrayLike,
    harsh_y: ArrayLike,
    soft_x: ArrayLike | None,
    soft_y: ArrayLike | None,
    *,
    harsh_se: ArrayLike | None = None,
    soft_se: ArrayLike | None = None,
    harsh_higher_is_better: bool = True,
    soft_higher_is_better: bool = True,
    soft_metric: str = "",
    law: bool | None = None,
    alpha: float = ALPHA,
    resolve_se: float = RESOLVE_SE,
    exclude_confidence: float = EXCLUDE_CONFIDENCE,
    n_boot: int = 499,
    seed: int = 0,
    harsh_pairs: tuple[ArrayLike, ArrayLike] | None = None,
) -> PairVerdict:
    """Smooth, mirage, genuine or inconclusive for one harsh and one continuous curve.

    Parameters
    ----------
    harsh_x, harsh_y, soft_x, soft_y
        The two curves (any order); they are compared on the ``x`` they share.
        ``soft_x``/``soft_y`` None: the harsh curve alone (``smooth``, or
        ``inconclusive`` when it jumps, since nothing can test the jump).
    harsh_se, soft_se
        Standard error of each point (NaN where unknown; an unknown or zero one
        is taken as the curve's largest known one). Without any for the
        continuous metric its noise is estimated from the fit, which needs
        :data:`~miragelab.transitions.detect.MIN_POINTS` points.
    harsh_higher_is_better, soft_higher_is_better
        Directions of the two metrics.
    soft_metric
        Name of the continuous metric: chooses its scale (:func:`loss_scale`).
    law
        Test the cross-entropy against a scaling law ``E + A exp(-r log x)``
        (:func:`~miragelab.transitions.detect.detect_transition`'s ``law``)
        rather than a regression spline of its logarithm. Default: when the
        continuous metric converts to a cross-entropy; pass False for curves
        over training steps, whose early plateau no such law follows.
    alpha, resolve_se, exclude_confidence, n_boot, seed
        Test level, the break a mirage must exclude (standard errors of the
        continuous metric) and the one-sided confidence of the exclusion,
        bootstrap size and seed.
    harsh_pairs
        ``(x, pair_se)``: the standard errors of the paired differences of the
        harsh metric between the points at ``x`` (the same examples scored at
        each), used by the harsh curve's tests where they cover its points.
    """
    hx, hy, hs = _as_arrays(harsh_x, harsh_y, harsh_se)
    alone = soft_x is None or soft_y is None
    sx, sy, ss = (hx, hy, hs) if alone else _as_arrays(soft_x, soft_y, soft_se)
    x, hy, hs, sy, ss = _common(hx, hy, hs, sx, sy, ss)
    positive = x > 0  # a log axis: a training step 0 (the initialisation) has no place on it
    x, hy, hs, sy, ss = x[positive], hy[positive], hs[positive], sy[positive], ss[positive]
    hs, ss = _fill_unknown(hs), _fill_unknown(ss)
    oriented = hy if harsh_higher_is_better else -hy
    if x.size < 3:
        profile = HarshProfile("", "smooth", "", (0, 0), float("nan"))
        shared = "points" if alone else "sizes shared by the harsh and the continuous metric"
        reason = f"{x.size} {shared}; need 3"
        return PairVerdict("inconclusive", reason, profile, x=x, harsh=hy, harsh_se=hs)
    profile = harsh_profile(x, oriented, hs, _pairs_at(harsh_pairs, x))
    base = {"profile": profile, "x": x, "harsh": hy, "harsh_se": hs}
    if profile.status == "smooth":
        return PairVerdict("smooth", profile.reason, **base)
    if alone:  # nothing to test the jump against
        return PairVerdict("inconclusive", profile.reason, **base)
    fact = fact_of(soft_metric)
    if law is None:  # the law's three parameters need five points to leave a test
        law = fact is not None and fact.to_loss is not None and x.size >= 5
    z, zs, scale, up = loss_scale(soft_metric, sy, ss, soft_higher_is_better, log=not law)
    law = law and scale != "as given"
    i0, i1 = profile.jump
    top = int(np.argmax(np.diff(oriented)))  # the harsh metric's largest step
    test = detect_transition(
        x,
        z,
        stderr=zs if np.all(np.isfinite(zs)) else None,
        window=(x[i0], x[i1]),
        focus=float(np.sqrt(x[top] * x[top + 1])),
        law=law,
        max_width=1.0,
        min_effect=0.0,
        alpha=alpha,
        confidence=exclude_confidence,
        n_boot=n_boot,
        seed=seed,
    )
    base |= {"scale": scale, "test": test, "z": z, "z_se": zs}
    base |= _link_evidence(hy, hs, test, profile.jump, log_fit=law)
    if not np.isfinite(test.p_value):
        reason = f"{profile.reason}; the break test cannot run: {test.reason}"
        return PairVerdict("inconclusive", reason, **base)
    local = float(np.mean(zs[[i0, i1]])) if np.all(np.isfinite(zs)) else np.sqrt(test.noise_scale)
    excluded = test.exclude_up if up else test.exclude_down
    resolvable = excluded / local
    base |= {
        "resolvable_se": resolvable,
        "excluded": excluded,
        "break_size": test.jump,
        "break_ci": (test.jump_low, test.jump_high),
    }
    where = f"between {_fmt(x[i0])} and {_fmt(x[i1])}"
    if test.p_value <= alpha:
        improving = (test.jump > 0) == up
        size = f"{test.jump:+.3g} in {scale} (p = {test.p_value:.3g})"
        if improving and profile.status in ("emergent", "wide_gap"):
            reason = f"{profile.reason}; the continuous metric breaks there too: {size}"
            return PairVerdict("genuine", reason, **base)
        reason = f"{profile.reason}; the continuous metric worsens {where}: {size}"
        return PairVerdict("inconclusive", reason, **base)
    if profile.status == "wide_gap":
        reason = (
            f"{profile.reason}; no break found in the continuous metric (p = {test.p_value:.2g})"
        )
        return PairVerdict("inconclusive", reason, **base)
    if resolvable <= resolve_se:
        reason = (
            f"{profile.reason}; the continuous metric has no break there (p = "
            f"{test.p_value:.2g}): an improving break above {resolvable:.1f} standard errors "
            f"is excluded at {exclude_confidence:.0%}"
        )
        return PairVerdict("mirage", reason, **base)
    reason = (
        f"{profile.reason}; no break found in the continuous metric (p = {test.p_value:.2g}), "
        f"but the data exclude only breaks above {excluded:.2g} in {scale} "
        f"({resolvable:.1f} standard errors; {resolve_se:g} needed): add models {where} "
        "or around it, or examples"
    )
    return PairVerdict("inconclusive", reason, **base)


def _pairs_at(pairs: tuple[ArrayLike, ArrayLike] | None, x: FloatArray) -> FloatArray | None:
    """The paired standard errors between the points ``x``, or None where they do not
    cover every point."""
    if pairs is None:
        return None
    px, matrix = np.asarray(pairs[0], dtype=float), np.asarray(pairs[1], dtype=float)
    at = np.array([np.flatnonzero(px == v)[0] if np.any(px == v) else -1 for v in x])
    if at.size == 0 or np.any(at < 0):
        return None
    return matrix[np.ix_(at, at)]


def _link_evidence(
    h: FloatArray, se: FloatArray, test: Transition, jump: tuple[int, int], log_fit: bool
):
    """Harsh values predicted from the continuous smooth fit, and the jump's residual.

    The links take the log cross-entropy (``p ** L = exp(-exp(log L + log CE))``):
    a fit of the cross-entropy itself (``log_fit``) is logged first.
    """
    if not (np.all((h >= 0) & (h <= 1)) and test.fit_smooth.size == h.size):
        return {}
    fit, band = test.fit_smooth, test.smooth_band
    if log_fit:
        if not np.all(fit > 0):
            return {}
        fit, band = np.log(fit), band / fit
    if not np.all(np.isfinite(fit)):
        return {}
    found = _fit_link(h, se, fit)
    if found is None:
        return {}
    name, predict = found
    band = band if np.all(np.isfinite(band)) else np.zeros_like(fit)
    pred = predict(fit)
    ends = predict(fit - 1.96 * band), predict(fit + 1.96 * band)
    i0, i1 = jump
    observed, predicted = h[i1] - h[i0], pred[i1] - pred[i0]
    jump_se = _diff_se(se, i0, i1)
    residual = (observed - predicted) / jump_se if np.isfinite(jump_se) and jump_se > 0 else np.nan
    return {
        "link": name,
        "link_residual": float(residual),
        "harsh_pred": pred,
        "harsh_pred_low": np.minimum(*ends),
        "harsh_pred_high": np.maximum(*ends),
    }


# --------------------------------------------------------------------------- tables


@dataclass
class VerdictResult:
    """The verdicts (one row per curve), the evidence (one per curve and continuous
    metric), and the :class:`PairVerdict` each verdict rests on, keyed like its row."""

    verdicts: pd.DataFrame
    evidence: pd.DataFrame
    details: dict[tuple, PairVerdict]


def _preference(metric: str) -> tuple[int, str]:
    fact = fact_of(metric)
    return (fact.preference if fact is not None else 99, metric)


def _curve_arrays(rows: pd.DataFrame, axis: str, confidence: float):
    return (
        rows[axis].to_numpy(dtype=float),
        rows["value"].to_numpy(dtype=float),
        point_stderr(rows, confidence),
    )


def _break_fields(pair: PairVerdict) -> dict[str, float]:
    """The break test's numbers, as both tables give them (NaN where it did not run)."""
    t, nan = pair.test, float("nan")
    return {
        "p_value": t.p_value if t is not None else nan,
        "break_at": t.x_change if t is not None else nan,
        "break_low": t.x_low if t is not None else nan,
        "break_high": t.x_high if t is not None else nan,
        "break_size": pair.break_size,
        "break_ci_low": pair.break_ci[0],
        "break_ci_high": pair.break_ci[1],
        "resolvable_se": pair.resolvable_se,
        "link_residual": pair.link_residual,
    }


def _key_fields(key: tuple, soft: str, pair: PairVerdict) -> dict[str, object]:
    """The curve's key, its continuous metric and its size, as both tables begin."""
    task, family, axis, model, harsh = key
    return {
        "task": task,
        "family": family,
        "axis": axis,
        "model": model,
        "harsh_metric": harsh,
        "soft_metric": soft,
        "n_points": int(pair.x.size),
    }


def _evidence_row(key: tuple, soft: str, pair: PairVerdict) -> dict[str, object]:
    t = pair.test
    nan = float("nan")
    row = {
        **_key_fields(key, soft, pair),
        "preference": _preference(soft)[0],
        "scale": pair.scale,
        "label": pair.label,
        "statistic": t.statistic if t is not None else nan,
        "excluded": pair.excluded,
        "noise": t.noise if t is not None else "",
        "noise_scale": t.noise_scale if t is not None else nan,
        "link": pair.link,
        "reason": pair.reason,
    }
    return {name: (row | _break_fields(pair))[name] for name in EVIDENCE_COLUMNS}


def _combine(key: tuple, pairs: list[tuple[str, PairVerdict]], harsh_only: PairVerdict | None):
    """One row from the pairs of a curve, in order of preference."""
    if pairs:
        labels = [p.label for _, p in pairs]
        decisive = [(s, p) for s, p in pairs if p.label in ("genuine", "mirage")]
        agree = len({p.label for _, p in decisive}) <= 1
        if not agree:
            breaks = ", ".join(s for s, p in decisive if p.label == "genuine")
            smooth = ", ".join(s for s, p in decisive if p.label == "mirage")
            soft, pair = pairs[0]
            label = "inconclusive"
            reason = (
                f"continuous metrics disagree: {breaks} break(s) where the harsh metric "
                f"jumps, {smooth} resolve(s) no break there"
            )
        else:
            soft, pair = decisive[0] if decisive else pairs[0]
            label, reason = pair.label, pair.reason
        if all(lab == "smooth" for lab in labels):
            label, reason = "smooth", pair.reason
    else:
        assert harsh_only is not None
        soft, pair = "", harsh_only
        agree = True
        label, reason = pair.label, pair.reason
        if pair.profile.status != "smooth" and pair.x.size >= 3:
            label = "inconclusive"
            reason = (
                f"{pair.profile.reason}; no continuous metric of the same outputs to test: "
                "add per-token log-probs (target_logprob) or an edit distance"
            )
    nan = float("nan")
    i0, i1 = pair.profile.jump
    jump_ok = pair.x.size > i1 and pair.profile.status != "smooth"
    row = {
        **_key_fields(key, soft, pair),
        "verdict": label,
        "shape": pair.profile.shape,
        **_break_fields(pair),
        "metrics_agree": agree,
        "jump_from": float(pair.x[i0]) if jump_ok else nan,
        "jump_to": float(pair.x[i1]) if jump_ok else nan,
        "reason": reason,
    }
    return {name: row[name] for name in VERDICT_COLUMNS}, pair


def verdict_table(
    scores: pd.DataFrame,
    *,
    harsh_metrics: Iterable[str] | None = None,
    continuous_metrics: Iterable[str] | None = None,
    pairs: Iterable[tuple[str, str]] | None = None,
    confidence: float = 0.95,
    n_boot: int = 499,
    seed: int = 0,
    samples: pd.DataFrame | None = None,
    options: MetricOptions | None = None,
    **classify_kw: object,
) -> VerdictResult:
    """One verdict per (task, family, axis, model, harsh metric) of a scores table.

    Curves are those of :func:`miragelab.emergence.iter_curves` (size ladders
    over ``params``, a model's training steps over ``step``). Harsh and
    continuous metrics are recognised by :mod:`miragelab.metric_facts` unless
    named (``harsh_metrics``, ``continuous_metrics``, or explicit ``(harsh,
    continuous)`` ``pairs``). Each point's noise is its ``stderr``, else its
    interval, else binomial from ``n`` (:func:`miragelab.stats.point_stderr`).
    Directions come from the table's ``higher_is_better`` or the facts; an
    unknown metric without one is an :class:`~miragelab.errors.InputError`.
    ``classify_kw`` goes to :func:`classify`.

    ``samples`` (the samples table the scores came from, with ``options`` the
    metrics' string options): where a harsh curve's points were scored on the
    same examples, its differences are tested as paired
    (:func:`miragelab.paired.curve_paired_se`): the examples' shared
    difficulty cancels, so a real jump between neighbouring sizes is found
    with fewer examples. Harsh metrics the samples cannot compute keep the
    independent errors.
    """
    table = resolve_directions(without_attrs(scores))
    wanted = None if pairs is None else [tuple(p) for p in pairs]
    harsh_set = None if harsh_metrics is None else set(harsh_metrics)
    soft_set = None if continuous_metrics is None else set(continuous_metrics)

    def harsh_ok(m: str) -> bool:
        if wanted is not None:
            return any(m == h for h, _ in wanted)
        return m in harsh_set if harsh_set is not None else is_harsh(m)

    def soft_ok(h: str, m: str) -> bool:
        if wanted is not None:
            return (h, m) in wanted
        return m in soft_set if soft_set is not None else is_continuous(m)

    groups: dict[tuple, dict[str, pd.DataFrame]] = {}
    for curve in iter_curves(table):
        key = (curve.task, curve.family, curve.axis, curve.model)
        groups.setdefault(key, {})[curve.metric] = curve.rows
    rows, evidence, details = [], [], {}
    per_example: dict[str, tuple[pd.DataFrame, bool] | None] = {}
    for (task, family, axis, model), curves in groups.items():
        for harsh in sorted(m for m in curves if harsh_ok(m)):
            hrows = curves[harsh]
            hx, hy, hs = _curve_arrays(hrows, axis, confidence)
            paired = None
            if samples is not None:
                if harsh not in per_example:
                    per_example[harsh] = _example_values(samples, harsh, options)
                found_values = per_example[harsh]
                if found_values is not None:
                    values, binary = found_values
                    paired = curve_paired_se(values, task, family, hrows, axis, binary)
            hib = bool(hrows["higher_is_better"].iloc[0])
            key = (task, family, axis, model, harsh)
            softs = sorted((m for m in curves if m != harsh and soft_ok(harsh, m)), key=_preference)
            found = []
            for soft in softs:
                srows = curves[soft]
                sx, sy, ss = _curve_arrays(srows, axis, confidence)
                pair = classify(
                    hx, hy, sx, sy,
                    harsh_se=hs, soft_se=ss,
                    harsh_higher_is_better=hib,
                    soft_higher_is_better=bool(srows["higher_is_better"].iloc[0]),
                    soft_metric=soft, n_boot=n_boot, seed=key_seed(seed, key),
                    law=None if axis != "step" else False, harsh_pairs=paired,
                    **classify_kw,  # type: ignore[arg-type]
                )  # fmt: skip
                found.append((soft, pair))
                evidence.append(_evidence_row(key, soft, pair))
            alone = None if found else classify(hx, hy, None, None, harsh_se=hs,
                                                 harsh_higher_is_better=hib,
                                                 harsh_pairs=paired)  # fmt: skip
            row, pair = _combine(key, found, alone)
            rows.append(row)
            details[key] = pair
    verdict_frame = pd.DataFrame(rows, columns=list(VERDICT_COLUMNS))
    evidence_frame = pd.DataFrame(evidence, columns=list(EVIDENCE_COLUMNS))
    return VerdictResult(verdict_frame, evidence_frame, details)


def _example_values(
    samples: pd.DataFrame, metric: str, options: MetricOptions | None
) -> tuple[pd.DataFrame, bool] | None:
    """Each example's value of a harsh metric the samples can compute, and whether the
    metric is 0/1; None for a metric that is not registered or lacks its columns."""
    if metric not in REGISTRY:
        return None
    found = REGISTRY[metric]
    if not all(c in samples.columns for c in found.needs):
        return None
    return example_values(samples, found, options), found.binary


def verdicts(scores: pd.DataFrame, **kw: object) -> pd.DataFrame:
    """The verdict table of :func:`verdict_table` (one row per curve), for notebooks."""
    return verdict_table(scores, **kw).verdicts  # type: ignore[arg-type]
