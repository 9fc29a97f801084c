"""The verdict per (task, family): is the emergence real, or made by the metric?

Given one *harsh* metric (exact match, multiple-choice grade: discontinuous or
nonlinear in the per-token probability) and one *continuous* metric computed
on the same outputs, :func:`classify` returns one of

``smooth``
    the harsh curve does not look emergent: its change is spread over the
    ladder (or it does not improve at all);
``mirage``
    the harsh curve looks emergent, but the continuous metric does not jump
    where the harsh one does -- the sharpness comes from the metric;
``genuine``
    both jump, at the same step of the ladder;
``insufficient``
    fewer than 3 sizes shared by the two curves, or a missing value.

The rule
--------
Both curves are oriented so that improvement is positive. Then

1. the harsh curve *looks emergent* when its ``smoothness`` (see
   :mod:`miragelab.emergence`: 0 when one step carries all the change, 1
   when every step carries the same share) is below :data:`SHARP_BELOW` and
   it improves overall (emergence score > 0);
2. its *jump* is the step with the largest improvement, widened to the
   neighbouring steps that improve by at least half as much (a fast rise on a
   dense ladder spans two or three steps);
3. the *co-jump share* is the continuous metric's improvement over those same
   steps divided by its total variation ``sum |d_i|``, and the *co-jump
   ratio* divides it by the harsh metric's own share of its change in those
   steps (so two identical curves have ratio 1: a metric is always as sharp
   as itself). The verdict is ``genuine`` when the co-jump ratio is at least
   :data:`CO_JUMP_MIN`, else ``mirage``.

Both measures are invariant to affine changes of either metric's scale, so
the thresholds do not depend on units, direction or answer length; both use
the order of the models, not the spacing of their sizes. The co-jump share
asks where the continuous metric moves, not only how concentrated it is: a
per-token loss in its power-law tail concentrates its change at the *small*
end of a ladder, which is no evidence that the harsh metric's late jump is
real.

Calibration (:func:`calibrate_thresholds`)
------------------------------------------
Curves simulated from :mod:`miragelab.theory` with binomial noise for
``n = 1000`` examples (per token for token edit distance), over ladders of
6, 8, 10 and 12 log-spaced sizes spanning 2, 3 and 4 decades, ``alpha`` in
{-0.3, -0.5, -0.7} and answer lengths ``L`` in {5, 10, 20}:

* *mirage*: the smooth law, ``c`` set so that exact match reaches 0.3 or 0.6
  at the largest model; harsh = exact match ``p ** L``, continuous = token
  edit distance ``L * (1 - p)``;
* *genuine*: ``p`` steps from ``p_lo`` in {0.2, 0.5} to ``p_hi`` in
  {0.9, 0.97} between two adjacent sizes (a third, half or two thirds up the
  ladder), with a drift of 0.01 across the ladder (kept small because
  ``p ** L`` multiplies a relative drift in ``p`` by ``L``); both metrics
  computed from that ``p``, on 6 to 12 sizes and ``L`` in {5, 10, 20}.

Quantiles over the 216 mirage and 144 genuine settings (seed 0); the co-jump
share is shown for the settings whose harsh curve looks emergent
(smoothness < 0.5: 136 mirage, all 144 genuine)::

                                   min     5%    25%    50%    75%    95%    max
    mirage   harsh smoothness     0.02   0.09   0.24   0.38   0.63   0.85   0.98
    genuine  harsh smoothness     0.01   0.02   0.02   0.04   0.07   0.19   0.38
    mirage   co-jump share        0.02   0.06   0.12   0.18   0.27   0.39   0.51
    genuine  co-jump share        0.80   0.90   0.94   0.96   0.98   0.99   0.99

The co-jump *ratio* (share over the harsh curve's own share, which is what
the rule uses) separates the cases further: mirage at most 0.52 (median
0.23), genuine at least 0.93 (median 1.08). ``CO_JUMP_MIN = 0.7`` sits in
that empty gap; every verdict of the genuine case is ``genuine`` with none
of the mirage case ``genuine``. Dividing by the harsh curve's own share
matters when the harsh jump is spread over a few steps: with the plain share,
a continuous metric identical to the harsh one could fall short of the
threshold and be called a mirage of itself.

``SHARP_BELOW = 0.5`` reads "half of the ladder's steps or fewer carry the
change" as emergent-looking: it keeps every genuine step (largest
smoothness 0.38) and flags 136 of 216 mirage settings; the other 80 are
exact-match curves that already rise gradually across the ladder, mostly on
short ladders (2 decades) or shallow laws (``alpha = -0.3``; e.g. exact match
from 0.07 to 0.3 over 2 decades), which are honestly ``smooth``. A straight
line scores 1. Result at seed 0: 144/144 genuine settings ``genuine``; 136
mirage settings ``mirage`` and 80 ``smooth``, none ``genuine``. Rerun
:func:`calibrate_thresholds` to reproduce the table.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from miragelab import theory
from miragelab.emergence import curve_direction, emergence_scores_sorted, smoothness, sort_curve
from miragelab.tables import without_attrs

__all__ = [
    "CONTINUOUS_METRICS",
    "CO_JUMP_MIN",
    "HARSH_METRICS",
    "SHARP_BELOW",
    "VERDICT_COLUMNS",
    "Verdict",
    "calibrate_thresholds",
    "classify",
    "co_jump_share",
    "verdict_table",
]

#: a harsh curve with smoothness below this looks emergent
SHARP_BELOW = 0.5
#: a continuous metric moving in the harsh jump at least this much, relative to the harsh
#: metric itself (the co-jump ratio), makes the jump genuine
CO_JUMP_MIN = 0.7

#: metrics read as harsh (discontinuous in the per-token probability); pass your own set.
#: A name ending in ``*`` matches every metric that starts with it.
HARSH_METRICS = frozenset(
    {
        "exact_match",
        "em",
        "multiple_choice_grade",
        "multiple_choice_grade_norm",
        "acc",
        "acc_norm",
        "accuracy",
        "exact_str_match",
        "quasi_exact_match",
        "greedy_match",
        "reconstruction_c*",  # vision: share of images reconstructed within a threshold c
        "subset_accuracy*",  # vision: all K images of a sequence right
    }
)
#: metrics read as continuous; pass your own set
CONTINUOUS_METRICS = frozenset(
    {
        "perplexity",
        "ppl",
        "word_perplexity",
        "byte_perplexity",
        "bits_per_byte",
        "brier_score",
        "token_edit_distance",
        "normalized_edit_similarity",
        "target_logprob",
        "target_logprob_mean",
        "per_token_prob",
        "cross_entropy",
        "continuation_logprob",
        "bleu",
        "chrf",
        "f1",
        "mse",
        "per_image_accuracy",
    }
)

#: columns of the table returned by :func:`verdict_table`, in order
VERDICT_COLUMNS = (
    "task",
    "family",
    "harsh_metric",
    "soft_metric",
    "n_points",
    "harsh_score",
    "soft_score",
    "harsh_smoothness",
    "soft_smoothness",
    "co_jump_share",
    "co_jump_ratio",
    "verdict",
    "reason",
)


@dataclass(frozen=True)
class Verdict:
    """The label with the numbers behind it (scores are emergence scores, oriented)."""

    label: str
    reason: str
    n_points: int
    harsh_score: float
    soft_score: float
    harsh_smoothness: float
    soft_smoothness: float
    co_jump_share: float
    co_jump_ratio: float = float("nan")


def _jump_steps(increments: np.ndarray) -> slice:
    """The largest improving step, widened over neighbours improving by >= half as much."""
    top = int(np.argmax(increments))
    half = increments[top] / 2.0
    first, last = top, top
    while first > 0 and increments[first - 1] >= half:
        first -= 1
    while last + 1 < increments.size and increments[last + 1] >= half:
        last += 1
    return slice(first, last + 1)


def co_jump_share(harsh: ArrayLike, soft: ArrayLike) -> float:
    """Share of the soft curve's total variation gained in the harsh curve's jump.

    Both curves oriented (improvement positive) and sorted on the same ``x``.
    The jump is the harsh curve's largest improving step with neighbours that
    improve by at least half as much; the share is the soft curve's signed
    change over those steps divided by ``sum |d_i|`` of the soft curve (0.0
    when the soft curve is flat), so it lies in [-1, 1].
    """
    h = np.diff(np.asarray(harsh, dtype=float))
    s = np.diff(np.asarray(soft, dtype=float))
    total = np.abs(s).sum()
    if h.size == 0 or total == 0:
        return 0.0
    return float(s[_jump_steps(h)].sum() / total)


def classify(
    harsh_x: ArrayLike,
    harsh_y: ArrayLike,
    soft_x: ArrayLike,
    soft_y: ArrayLike,
    harsh_higher_is_better: bool = True,
    soft_higher_is_better: bool = True,
    sharp_below: float = SHARP_BELOW,
    co_jump_min: float = CO_JUMP_MIN,
) -> Verdict:
    """Mirage, genuine, smooth or insufficient; see the module docstring for the rule.

    The two curves are compared on the sizes they share. Token edit distance,
    perplexity and the Brier score are lower-is-better: pass
    ``soft_higher_is_better=False``.
    """
    hx = np.asarray(harsh_x, dtype=float).ravel()
    hy = np.asarray(harsh_y, dtype=float).ravel()
    sx = np.asarray(soft_x, dtype=float).ravel()
    sy = np.asarray(soft_y, dtype=float).ravel()
    nan = float("nan")
    if not (np.all(np.isfinite(hy)) and np.all(np.isfinite(sy))):
        return Verdict("insufficient", "a value is missing (NaN)", 0, nan, nan, nan, nan, nan)
    hx, hy = sort_curve(hx, hy)
    sx, sy = sort_curve(sx, sy)
    common = np.intersect1d(hx, sx)
    n = int(common.size)
    if n < 3:
        reason = f"{n} sizes shared by both metrics; need 3"
        return Verdict("insufficient", reason, n, nan, nan, nan, nan, nan)
    harsh = hy[np.isin(hx, common)] * (1.0 if harsh_higher_is_better else -1.0)
    soft = sy[np.isin(sx, common)] * (1.0 if soft_higher_is_better else -1.0)
    harsh_score = float(emergence_scores_sorted(harsh))
    soft_score = float(emergence_scores_sorted(soft))
    harsh_smooth = smoothness(common, harsh)
    soft_smooth = smoothness(common, soft)
    share = co_jump_share(harsh, soft)
    own = co_jump_share(harsh, harsh)
    ratio = share / own if own > 0 else float("nan")
    numbers = (n, harsh_score, soft_score, harsh_smooth, soft_smooth, share, ratio)
    if not harsh_score > 0:
        reason = "harsh metric flat" if harsh_score == 0 else "harsh metric does not improve"
        return Verdict("smooth", reason, *numbers)
    if harsh_smooth >= sharp_below:
        reason = f"harsh change spread over the ladder (smoothness {harsh_smooth:.2f})"
        return Verdict("smooth", reason, *numbers)
    if ratio >= co_jump_min:
        reason = (
            f"harsh jump (smoothness {harsh_smooth:.2f}) matched by the continuous "
            f"metric ({share:.0%} of its change in the same step, {own:.0%} for the harsh one)"
        )
        return Verdict("genuine", reason, *numbers)
    reason = (
        f"harsh jump (smoothness {harsh_smooth:.2f}) not matched by the continuous "
        f"metric (only {share:.0%} of its change in the same step, {own:.0%} for the harsh one)"
    )
    return Verdict("mirage", reason, *numbers)


# --------------------------------------------------------------------------- table


def in_family(name: str, names: Iterable[str]) -> bool:
    """``name`` is listed, or starts with a listed prefix written as ``prefix*``."""
    return any(name == n or (n.endswith("*") and name.startswith(n[:-1])) for n in names)


def _pairs(metrics: Iterable[str], harsh: frozenset[str], soft: frozenset[str]):
    names = sorted(set(metrics))
    return [(h, s) for h in names if in_family(h, harsh) for s in names if in_family(s, soft)]


def verdict_table(
    scores: pd.DataFrame,
    pairs: Iterable[tuple[str, str]] | None = None,
    harsh_metrics: Iterable[str] = HARSH_METRICS,
    continuous_metrics: Iterable[str] = CONTINUOUS_METRICS,
) -> pd.DataFrame:
    """One verdict per (task, family, harsh metric, continuous metric) of a scores table.

    ``pairs`` lists ``(harsh, continuous)`` metric names to compare; by default
    every harsh metric present is paired with every continuous metric present
    for the same task and family. The curve is over ``params`` using each
    model's last checkpoint (largest ``step``). ``higher_is_better`` is read
    from the table when present; otherwise a metric is taken as
    higher-is-better. Columns are :data:`VERDICT_COLUMNS`.
    """
    harsh_set, soft_set = frozenset(harsh_metrics), frozenset(continuous_metrics)
    wanted = None if pairs is None else [tuple(p) for p in pairs]
    table = without_attrs(scores)
    if "step" not in table.columns:
        table["step"] = np.nan
    rows = []
    for (task, family), group in table.groupby(["task", "family"], sort=True):
        last = group.sort_values("step", na_position="first").groupby(["model", "metric"]).tail(1)
        by_metric = {name: g for name, g in last.groupby("metric")}
        candidates = (
            _pairs(by_metric, harsh_set, soft_set)
            if wanted is None
            else [(h, s) for h, s in wanted if h in by_metric and s in by_metric]
        )
        for harsh_name, soft_name in candidates:
            h, s = by_metric[harsh_name], by_metric[soft_name]
            verdict = classify(
                h["params"].to_numpy(),
                h["value"].to_numpy(),
                s["params"].to_numpy(),
                s["value"].to_numpy(),
                harsh_higher_is_better=curve_direction(h),
                soft_higher_is_better=curve_direction(s),
            )
            rows.append(
                {
                    "task": task,
                    "family": family,
                    "harsh_metric": harsh_name,
                    "soft_metric": soft_name,
                    "n_points": verdict.n_points,
                    "harsh_score": verdict.harsh_score,
                    "soft_score": verdict.soft_score,
                    "harsh_smoothness": verdict.harsh_smoothness,
                    "soft_smoothness": verdict.soft_smoothness,
                    "co_jump_share": verdict.co_jump_share,
                    "co_jump_ratio": verdict.co_jump_ratio,
                    "verdict": verdict.label,
                    "reason": verdict.reason,
                }
            )
    return pd.DataFrame(rows, columns=list(VERDICT_COLUMNS))


# --------------------------------------------------------------------------- calibration


def calibrate_thresholds(
    sizes: Iterable[int] = (6, 8, 10, 12),
    decades: Iterable[float] = (2, 3, 4),
    alphas: Iterable[float] = (-0.3, -0.5, -0.7),
    lengths: Iterable[int] = (5, 10, 20),
    n_examples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Simulate mirage and genuine ladders from the closed-form model; return their measures.

    One row per simulated (case, setting) with columns ``case`` ('mirage' or
    'genuine'), ``k``, ``decades``, ``alpha``, ``L``, ``setting`` (the
    case-specific parameter: top exact match for mirage, ``(p_lo, p_hi, jump
    position)`` for genuine), ``harsh_smoothness``, ``co_jump_share`` and the
    ``verdict`` of :func:`classify`. See the module docstring for the design
    and the resulting quantiles.
    """
    rng = np.random.default_rng(seed)
    top_size = 1e11
    simulated: list[tuple[str, dict[str, object], np.ndarray, np.ndarray, int]] = []
    for k, dec, alpha, L in itertools.product(sizes, decades, alphas, lengths):
        x = np.geomspace(top_size / 10.0**dec, top_size, k)
        for top in (0.3, 0.6):
            c = top_size / (-np.log(top) / L) ** (1.0 / alpha)
            setting = {"k": k, "decades": dec, "alpha": alpha, "L": L, "setting": top}
            simulated.append(("mirage", setting, x, theory.per_token_prob(x, c, alpha), L))
    for k, L in itertools.product(sizes, lengths):
        x = np.geomspace(top_size / 1e3, top_size, k)
        ramp = np.linspace(-0.01, 0.0, k)
        for p_lo, p_hi, where in itertools.product((0.2, 0.5), (0.9, 0.97), (1 / 3, 1 / 2, 2 / 3)):
            jump = min(max(round(where * (k - 1)), 1), k - 1)
            p = np.where(np.arange(k) < jump, p_lo, p_hi) + ramp
            setting = {"k": k, "decades": 3, "alpha": np.nan, "L": L}
            setting["setting"] = (p_lo, p_hi, round(where, 2))
            simulated.append(("genuine", setting, x, p, L))
    rows = []
    for case, setting, x, p, L in simulated:
        em = rng.binomial(n_examples, p**L) / n_examples
        ted = rng.binomial(n_examples * L, 1.0 - p) / n_examples
        verdict = classify(x, em, x, ted, soft_higher_is_better=False)
        rows.append(
            {
                "case": case,
                **setting,
                "harsh_smoothness": verdict.harsh_smoothness,
                "co_jump_share": verdict.co_jump_share,
                "co_jump_ratio": verdict.co_jump_ratio,
                "verdict": verdict.label,
            }
        )
    return pd.DataFrame(rows)
