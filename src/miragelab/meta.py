"""The meta-analysis: every curve of a scores table, its emergence, and the verdicts.

For every (task, family, metric) curve (over model size, and over training
step where a model has several checkpoints) it computes the emergence measures
of :mod:`miragelab.emergence` with an interval for the emergence score, the
share of emergent-looking curves per metric (the paper's Figure 4 question:
is emergence a property of tasks, or of metrics?), and the mirage/genuine
verdict of :mod:`miragelab.verdict` wherever a task has a harsh and a
continuous metric on the same models.

Intervals for the emergence score come from the per-point uncertainty the
scores table carries: its ``stderr``, else the half-width of its interval,
else the binomial standard error ``sqrt(v (1 - v) / n)`` of a proportion. A
point without any of them is held fixed (its uncertainty is unknown, not
zero, and the table says which points those are in ``n_fixed_points``).
The interval says how far the score moves under that noise. It need not
contain the point estimate: a curve that is flat to many decimals at small
scale has a tiny typical step, and any noise on the flat part raises it, so
redrawn curves score lower than a noise-free one.
The verdicts are :func:`miragelab.verdict.verdict_table`'s: one row per curve
(task, family, axis, model, harsh metric), from a break test of the continuous
metrics where the harsh one jumps; the evidence per continuous metric goes to
``MetaResult.evidence``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from miragelab.emergence import curve_direction, iter_curves, measures_table
from miragelab.errors import InputError
from miragelab.metric_facts import resolve_directions
from miragelab.stats import emergence_score_interval_from_summary, point_stderr
from miragelab.tables import without_attrs
from miragelab.verdict import PairVerdict, verdict_table

__all__ = ["MetaResult", "meta_analysis"]

#: curves need this many points for an emergence score
MIN_POINTS = 3
#: a curve whose change is concentrated in fewer steps than this share looks emergent
EMERGENT_SMOOTHNESS = 0.5


@dataclass
class MetaResult:
    """The tables of a meta-analysis, and the evidence behind each verdict (for figures)."""

    measures: pd.DataFrame
    shares: pd.DataFrame
    verdicts: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    evidence: pd.DataFrame = field(default_factory=pd.DataFrame)
    details: dict[tuple, PairVerdict] = field(default_factory=dict)


#: the largest step must sit at least this far up the ladder (0 = first step, 1 = last)
LATE_JUMP_FROM = 1 / 3


def jump_position(x: np.ndarray, y: np.ndarray, higher_is_better: bool) -> float:
    """Where the largest improving step sits on the ladder: 0 = first step, 1 = last."""
    order = np.argsort(x, kind="stable")
    steps = np.diff(y[order] if higher_is_better else -y[order])
    if steps.size < 2 or not (steps > 0).any():
        return float("nan")
    return float(np.argmax(steps) / (steps.size - 1))


def _is_emergent_looking(measures: pd.DataFrame) -> pd.Series:
    """Concentrated change (smoothness below :data:`EMERGENT_SMOOTHNESS`) that improves,
    arriving late.

    A loss that falls fastest between the two smallest models is concentrated
    too, but that is saturation, not emergence: the jump must sit at least
    :data:`LATE_JUMP_FROM` of the way up the ladder.
    """
    return (
        (measures["smoothness"] < EMERGENT_SMOOTHNESS)
        & (measures["emergence_score"] > 0)
        & (measures["jump_position"] >= LATE_JUMP_FROM)
    )


def _lone_models(scores: pd.DataFrame) -> dict[str, str]:
    """family -> its one model, for the families that have one model at one step."""
    steps = scores["step"] if "step" in scores.columns else pd.Series(np.nan, scores.index)
    per = pd.DataFrame({"family": scores["family"], "model": scores["model"], "step": steps})
    counts = per.groupby("family", sort=True).agg(
        models=("model", "nunique"), steps=("step", "nunique"), model=("model", "first")
    )
    lone = counts[(counts["models"] == 1) & (counts["steps"] <= 1)]
    return {str(f): str(m) for f, m in lone["model"].items()}


def _listed(lone: dict[str, str], limit: int = 5) -> str:
    shown = [f"{family}: {model}" for family, model in list(lone.items())[:limit]]
    more = len(lone) - limit
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def meta_analysis(
    scores: pd.DataFrame,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    n_boot: int = 499,
    seed: int = 0,
    samples: pd.DataFrame | None = None,
) -> MetaResult:
    """Measures with intervals for every curve, shares per metric, one verdict per curve.

    ``n_resamples`` draws give the emergence scores' intervals; ``n_boot``
    replicates calibrate each verdict's break test. ``samples`` (those the
    scores came from) lets the verdicts test a harsh curve's differences as
    paired where every point saw the same examples.
    """
    rng = np.random.default_rng(seed)
    scores = resolve_directions(without_attrs(scores))
    lone = _lone_models(scores)
    curves = list(iter_curves(scores))
    if not curves:
        every = len(lone) == scores["family"].nunique()
        why = (
            f"every family here has one model ({_listed(lone)})"
            if every
            else "no (task, family, metric) here has two models or several steps"
        )
        raise InputError(
            "no curve to measure: a curve needs two models of one family (or several "
            f"steps of one model) on one task and metric, and {why}",
            field="family",
        )
    measures = measures_table(scores)
    lows, highs, fixed, positions = [], [], [], []
    for curve in curves:
        rows = curve.rows
        se = point_stderr(rows, confidence)
        fixed.append(int((~(np.isfinite(se) & (se > 0))).sum()))
        higher = curve_direction(rows)
        x = rows[curve.axis].to_numpy(dtype=float)
        positions.append(jump_position(x, rows["value"].to_numpy(dtype=float), higher))
        if len(rows) < MIN_POINTS:
            lows.append(np.nan)
            highs.append(np.nan)
            continue
        low, high = emergence_score_interval_from_summary(
            rows[curve.axis].to_numpy(dtype=float),
            rows["value"].to_numpy(dtype=float),
            se,
            confidence=confidence,
            n_resamples=n_resamples,
            rng=rng,
            higher_is_better=higher,
        )
        lows.append(low)
        highs.append(high)
    measures = measures.assign(
        score_ci_low=lows, score_ci_high=highs, n_fixed_points=fixed, jump_position=positions
    )
    notes = []
    if lone:
        notes.append(
            (
                "1 family with a single model (and one checkpoint) gives no curve and is"
                if len(lone) == 1
                else f"{len(lone)} families with a single model (and one checkpoint) give "
                "no curve and are"
            )
            + f" left out: {_listed(lone)}"
        )
    short = measures["n_points"] < MIN_POINTS
    if short.any():
        notes.append(
            f"{int(short.sum())} curve(s) with fewer than {MIN_POINTS} points have no "
            "emergence score and are left out of the table"
        )
    measures = measures[~short].reset_index(drop=True)
    measures["emergent_looking"] = _is_emergent_looking(measures)

    sized = measures[measures["axis"] == "params"]
    shares = (
        sized.groupby("metric")
        .agg(
            curves=("emergence_score", "size"),
            emergent_looking=("emergent_looking", "sum"),
            median_emergence_score=("emergence_score", "median"),
            median_smoothness=("smoothness", "median"),
        )
        .reset_index()
    )
    shares["share_emergent_looking"] = shares["emergent_looking"] / shares["curves"]
    shares = shares.sort_values(["share_emergent_looking", "curves"], ascending=[False, False])

    found = verdict_table(scores, confidence=confidence, n_boot=n_boot, seed=seed, samples=samples)
    return MetaResult(
        measures,
        shares.reset_index(drop=True),
        found.verdicts,
        notes,
        found.evidence,
        found.details,
    )
