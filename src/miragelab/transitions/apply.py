"""The detector applied: scores tables, the induction run, and the verdict.

:func:`transitions_table`
    :func:`~miragelab.transitions.detect.detect_transition` on every curve of
    a scores table (:func:`miragelab.emergence.iter_curves`: training-step
    ladders of one model and size ladders of a family). Perplexities are
    tested on ``log(ppl)``, the cross-entropy (:func:`tested_on_log`); step 0 is
    dropped (``offset=0``: the log axis starts at the first trained step).
:func:`induction_transitions`
    the detector on the induction run's curves, and the step where the
    prefix-matching score rises (:func:`rise_step`), with whether it falls in
    the loss transition's span.
Both return data; the tables and figures of a run are written by
:mod:`miragelab.report.transitions_figures`.
The verdict (:mod:`miragelab.verdict`) runs the same detector on a continuous
metric, with its candidate breaks restricted to where a harsh metric jumps.
Each point's standard error (:func:`miragelab.stats.point_stderr`) is passed on
when the table has one for every point: the test then weighs each point by its
noise and runs from 3 points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from miragelab.emergence import Curve, curve_direction, iter_curves
from miragelab.metric_facts import fact_of
from miragelab.stats import point_stderr
from miragelab.transitions.detect import (
    TRANSITION_COLUMNS,
    Transition,
    detect_transition,
)

__all__ = [
    "CURVE_COLUMNS",
    "tested_on_log",
    "InductionFindings",
    "induction_transitions",
    "rise_step",
    "transitions_table",
]


def tested_on_log(metric: str) -> bool:
    """Perplexities are tested on their logarithm, the cross-entropy (the facts table's
    ``to_loss == 'log'``)."""
    fact = fact_of(metric)
    return fact is not None and fact.to_loss == "log"


#: leading columns of :func:`transitions_table`; the detector's follow
CURVE_COLUMNS = ("task", "family", "model", "axis", "metric", "higher_is_better", "log_y")


def _detect_curve(
    curve: Curve, weighted: bool = True, **kw: object
) -> tuple[dict[str, object], Transition]:
    higher = curve_direction(curve.rows)
    log_y = tested_on_log(curve.metric) and bool((curve.rows["value"] > 0).all())
    result = detect_transition(
        curve.rows[curve.axis].to_numpy(dtype=float),
        curve.rows["value"].to_numpy(dtype=float),
        stderr=point_stderr(curve.rows) if weighted else None,
        log_y=log_y,
        **kw,  # type: ignore[arg-type]
    )
    row = {
        "task": curve.task,
        "family": curve.family,
        "model": curve.model,
        "axis": curve.axis,
        "metric": curve.metric,
        "higher_is_better": higher,
        "log_y": log_y,
        **result.row(),
        "improving": bool(np.isfinite(result.jump) and (result.jump > 0) == higher),
    }
    return row, result


def transitions_table(
    scores: pd.DataFrame,
    tasks: list[str] | None = None,
    metrics: list[str] | None = None,
    axis: str | None = None,
    weighted: bool = True,
    **kw: object,
) -> tuple[pd.DataFrame, list[Transition]]:
    """Detect transitions on every curve of ``scores``; one row per curve.

    ``tasks``, ``metrics`` and ``axis`` ('step' or 'params') filter the curves;
    ``weighted`` passes each point's standard error to the detector where the
    table has one for every point (else the noise is estimated from the fit);
    ``**kw`` goes to :func:`detect_transition`. Columns: :data:`CURVE_COLUMNS`,
    the detector's :data:`~miragelab.transitions.detect.TRANSITION_COLUMNS` and
    ``improving`` (the fitted jump goes in the metric's better direction).
    Returns the table and the results (same order) for figures.
    """
    table = scores
    if tasks is not None:
        table = table[table["task"].isin(tasks)]
    if metrics is not None:
        table = table[table["metric"].isin(metrics)]
    rows, results = [], []
    for curve in iter_curves(table):
        if axis is not None and curve.axis != axis:
            continue
        row, result = _detect_curve(curve, weighted, **kw)
        rows.append(row)
        results.append(result)
    columns = [*CURVE_COLUMNS, *TRANSITION_COLUMNS, "improving"]
    return pd.DataFrame(rows, columns=columns), results


def rise_step(steps: ArrayLike, score: ArrayLike, share: float = 0.5) -> float:
    """First step where ``score`` has covered ``share`` of its rise from its first value to its max.

    NaN when the score never rises above its first value.
    """
    x = np.asarray(steps, dtype=float)
    s = np.asarray(score, dtype=float)
    order = np.argsort(x)
    x, s = x[order], s[order]
    top = s.max()
    if not top > s[0]:
        return float("nan")
    level = s[0] + share * (top - s[0])
    return float(x[np.argmax(s >= level)])


@dataclass(frozen=True)
class InductionFindings:
    """The detector on the induction run: per-metric table, the results, the alignment."""

    table: pd.DataFrame
    results: dict[str, Transition]
    attention_rise: float
    rise_in_span: bool
    rise_in_interval: bool


def induction_transitions(checkpoints: pd.DataFrame, **kw: object) -> InductionFindings:
    """Transitions in the induction run's curves and where the attention score rises.

    Tests ``loss_repeated``, ``loss_nonrepeated``, ``icl_score`` and
    ``prefix_matching`` against ``step``. ``rise_in_span``: the prefix-matching
    rise (:func:`rise_step`) lies in the repeated-part loss transition's span
    ``[span_low, span_high]``; ``rise_in_interval``: in the midpoint interval
    ``[x_low, x_high]``.
    """
    higher = {
        "loss_repeated": False,
        "loss_nonrepeated": False,
        "icl_score": False,
        "prefix_matching": True,
    }
    steps = checkpoints["step"].to_numpy(dtype=float)
    rows, results = [], {}
    for metric, better in higher.items():
        result = detect_transition(steps, checkpoints[metric].to_numpy(dtype=float), **kw)  # type: ignore[arg-type]
        results[metric] = result
        rows.append(
            {
                "metric": metric,
                "higher_is_better": better,
                **result.row(),
                "improving": bool(np.isfinite(result.jump) and (result.jump > 0) == better),
            }
        )
    rise = rise_step(steps, checkpoints["prefix_matching"].to_numpy(dtype=float))
    loss = results["loss_repeated"]
    in_span = bool(loss.detected and loss.span_low <= rise <= loss.span_high)
    in_interval = bool(loss.detected and loss.x_low <= rise <= loss.x_high)
    table = pd.DataFrame(
        rows, columns=["metric", "higher_is_better", *TRANSITION_COLUMNS, "improving"]
    )
    return InductionFindings(table, results, rise, in_span, in_interval)
