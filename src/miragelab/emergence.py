"""Emergence measures of one curve: a metric against model size (or training step).

A *curve* is the score of one model family on one task and metric, with the
models sorted by ``x`` (parameters, or the training step of one model). Three
measures, all pure numpy:

``emergence_score``
    BIG-bench's *breakthroughness*, the emergence score of Schaeffer et al.::

        sign(argmax_i y_i - argmin_i y_i) * (max y - min y) / sqrt(median_i (y_i - y_{i-1})**2)

    with ``x`` ascending. Large when the typical step between neighbouring
    models is small compared with the total change: a flat curve with one
    jump. It uses the order of the models only (not the spacing of ``x``) and
    grows with the number of points: a straight line over ``k`` points scores
    ``k - 1``. Invariant under ``y -> a * y + b`` for ``a > 0``; ``a < 0``
    flips its sign.

``smoothness``
    How evenly the change is spread over the ladder's steps, from 0 (all of
    it in one step) to 1 (every step moves the curve by the same amount).
    With increments ``d_i = y_i - y_{i-1}`` over ``m = k - 1`` steps, the
    *effective number of steps* is the participation ratio
    ``n_eff = (sum |d_i|)**2 / sum d_i**2``, which lies in ``[1, m]``, and::

        smoothness = (n_eff - 1) / (m - 1)

    Under ``y -> a * y + b`` every increment becomes ``a * d_i``; the factor
    ``a**2`` cancels between numerator and denominator of ``n_eff`` and the
    offset ``b`` never enters, so the measure is invariant under every affine
    map with ``a != 0``, including the sign flip that turns a lower-is-better
    metric into a higher-is-better one. Dividing by ``m - 1`` makes ladders of
    different density comparable: a change spread over the same share of the
    ladder scores the same whether the ladder has 6 or 12 models. Like the
    emergence score it uses the order of the models, not the spacing of ``x``.

``largest_jump_share``
    ``max_i |d_i| / (max y - min y)``: the share of the total range covered by
    the largest single step (1 for a step function, ``1 / (k - 1)`` for a
    straight line). Affine invariant like ``smoothness``.

Conventions for degenerate curves (the same in every function):

* fewer than 3 points: the emergence score and smoothness are NaN (one step
  has no median and no spread); ``largest_jump_share`` needs 2 points;
* a flat curve (``max y == min y``): emergence score 0.0, smoothness 1.0,
  largest jump share 0.0 -- nothing changed, so nothing changed suddenly;
* a curve with nonzero range whose median squared step is 0 (flat except a
  minority of steps): emergence score ``+inf`` or ``-inf``, signed by the
  formula. No clipping.

:func:`measures_table` applies the measures to every curve of a scores table,
after orienting lower-is-better metrics (``higher_is_better`` False, else the
metric's direction in :mod:`miragelab.metric_facts`) by negating them, so that
improvement is positive: a perplexity that falls with size gets a positive
emergence score, as an accuracy that rises does.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from miragelab.errors import InputError
from miragelab.metric_facts import metric_direction
from miragelab.tables import without_attrs

__all__ = [
    "Curve",
    "curve_direction",
    "size_curve",
    "iter_curves",
    "MEASURE_COLUMNS",
    "curve_measures",
    "emergence_score",
    "emergence_scores_sorted",
    "largest_jump_share",
    "measures_table",
    "smoothness",
    "smoothness_sorted",
    "sort_curve",
]

FloatArray = NDArray[np.float64]

#: columns of the table returned by :func:`measures_table`, in order
MEASURE_COLUMNS = (
    "task",
    "family",
    "model",
    "axis",
    "metric",
    "n_points",
    "x_min",
    "x_max",
    "y_first",
    "y_last",
    "emergence_score",
    "smoothness",
    "largest_jump_share",
    "higher_is_better",
)


def sort_curve(x: ArrayLike, y: ArrayLike, x_name: str = "params") -> tuple[FloatArray, FloatArray]:
    """Validate a curve and return it sorted by ``x`` ascending.

    Raises
    ------
    InputError
        If ``x`` and ``y`` differ in length, hold a non-finite value, or ``x``
        repeats a value (two models at one point of the ladder). The error
        names ``x_name`` (or ``value``) as the field at fault.
    """
    xs = np.asarray(x, dtype=float).ravel()
    ys = np.asarray(y, dtype=float).ravel()
    if xs.shape != ys.shape:
        raise InputError(f"x has {xs.size} values but y has {ys.size}", field=x_name)
    if not np.all(np.isfinite(xs)):
        raise InputError(f"{x_name} must be finite, got {xs[~np.isfinite(xs)][0]!r}", field=x_name)
    if not np.all(np.isfinite(ys)):
        raise InputError(f"value must be finite, got {ys[~np.isfinite(ys)][0]!r}", field="value")
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    repeated = xs[1:][xs[1:] == xs[:-1]]
    if repeated.size:
        raise InputError(
            f"two points of one curve share {x_name}={repeated[0]:g}; "
            "a curve needs one value per model",
            field=x_name,
        )
    return xs, ys


def emergence_scores_sorted(y: ArrayLike) -> FloatArray:
    """Emergence score of each row of ``y`` (shape ``(..., k)``), already sorted by x.

    The vectorised core of :func:`emergence_score`, used by the bootstrap: no
    validation, same conventions (NaN below 3 points, 0.0 when flat, +-inf
    when the median squared step is 0).
    """
    ys = np.asarray(y, dtype=float)
    if ys.shape[-1] < 3:
        return np.full(ys.shape[:-1], np.nan)
    span = ys.max(axis=-1) - ys.min(axis=-1)
    sign = np.sign(ys.argmax(axis=-1) - ys.argmin(axis=-1))
    typical = np.sqrt(np.median(np.square(np.diff(ys, axis=-1)), axis=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        score = sign * span / typical
    return np.asarray(np.where(span > 0, score, 0.0), dtype=float)


def emergence_score(x: ArrayLike, y: ArrayLike) -> float:
    """BIG-bench breakthroughness of the curve ``y(x)``; see the module docstring.

    ``sign(argmax y - argmin y) * (max y - min y) / sqrt(median((y_i - y_{i-1})**2))``
    over the points sorted by ``x``. NaN for fewer than 3 points, 0.0 for a
    flat curve, ``+-inf`` when the median squared step is 0 but the range is
    not. ``argmax``/``argmin`` take the first of tied extremes.
    """
    _, ys = sort_curve(x, y)
    return float(emergence_scores_sorted(ys))


def smoothness(x: ArrayLike, y: ArrayLike) -> float:
    """Share of the ladder's steps that carry the change, in [0, 1]; see the module docstring.

    ``(n_eff - 1) / (m - 1)`` with ``n_eff = (sum |d|)**2 / sum d**2`` over the
    ``m`` increments ``d``. 1.0 for a straight line (and for a flat curve),
    0.0 when one step carries all of the change; NaN below 3 points.
    Invariant under ``y -> a * y + b`` for any ``a != 0``.
    """
    _, ys = sort_curve(x, y)
    return float(smoothness_sorted(ys))


def smoothness_sorted(y: ArrayLike) -> FloatArray:
    """Smoothness of each row of ``y`` (shape ``(..., k)``), already sorted by x.

    The vectorised core of :func:`smoothness`, used by the bootstrap: no
    validation, same conventions (NaN below 3 points, 1.0 when flat).
    """
    ys = np.asarray(y, dtype=float)
    if ys.shape[-1] < 3:
        return np.full(ys.shape[:-1], np.nan)
    steps = np.abs(np.diff(ys, axis=-1))
    total = steps.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eff = total**2 / np.square(steps).sum(axis=-1)
        share = np.clip((n_eff - 1.0) / (steps.shape[-1] - 1), 0.0, 1.0)
    return np.asarray(np.where(total > 0, share, 1.0), dtype=float)


def largest_jump_share(x: ArrayLike, y: ArrayLike) -> float:
    """``max |y_i - y_{i-1}| / (max y - min y)`` over the sorted curve.

    1.0 when a single step covers the whole range; 0.0 for a flat curve; NaN
    below 2 points.
    """
    _, ys = sort_curve(x, y)
    if ys.size < 2:
        return float("nan")
    span = ys.max() - ys.min()
    if span == 0:
        return 0.0
    return float(np.abs(np.diff(ys)).max() / span)


def curve_measures(x: ArrayLike, y: ArrayLike, higher_is_better: bool = True) -> dict[str, float]:
    """All measures of one curve, with its extent, as a dict.

    ``y`` is negated first when ``higher_is_better`` is False, so the emergence
    score is positive for an improving curve whatever the metric's direction.
    ``y_first``/``y_last`` are the values as given (not negated) at the smallest
    and largest ``x``.
    """
    xs, ys = sort_curve(x, y)
    oriented = ys if higher_is_better else -ys
    n = int(xs.size)
    return {
        "n_points": n,
        "x_min": float(xs[0]) if n else float("nan"),
        "x_max": float(xs[-1]) if n else float("nan"),
        "y_first": float(ys[0]) if n else float("nan"),
        "y_last": float(ys[-1]) if n else float("nan"),
        "emergence_score": float(emergence_scores_sorted(oriented)),
        "smoothness": smoothness(xs, oriented),
        "largest_jump_share": largest_jump_share(xs, oriented) if n else float("nan"),
    }


def curve_direction(rows: pd.DataFrame) -> bool:
    """A curve's direction: the ``higher_is_better`` of its rows where they give one,
    else the metric's (:func:`miragelab.metric_facts.metric_direction`).

    Raises
    ------
    InputError
        If the rows disagree, or give no direction for a metric whose direction is
        not known.
    """
    if "higher_is_better" in rows.columns:
        flags = rows["higher_is_better"].dropna().unique()
        if len(flags) > 1:
            raise InputError(
                "rows of one metric disagree on higher_is_better", field="higher_is_better"
            )
        if len(flags):
            return bool(flags[0])
    if "metric" not in rows.columns or rows.empty:
        raise InputError("no higher_is_better and no metric to tell it", field="higher_is_better")
    return metric_direction(str(rows["metric"].iloc[0]))


def _curve_row(
    key: tuple[Hashable, ...], model: str | None, axis: str, rows: pd.DataFrame
) -> dict[str, object]:
    task, family, metric = key
    higher = curve_direction(rows)
    try:
        measures = curve_measures(rows[axis].to_numpy(), rows["value"].to_numpy(), higher)
    except InputError as error:
        raise InputError(
            f"task {task!r}, family {family!r}, metric {metric!r}: {error.message}",
            field=error.field,
        ) from None
    return {
        "task": task,
        "family": family,
        "model": model,
        "axis": axis,
        "metric": metric,
        **measures,
        "higher_is_better": higher,
    }


@dataclass(frozen=True)
class Curve:
    """One curve of a scores table: its key, its x axis and its rows (unsorted)."""

    task: str
    family: str
    metric: str
    model: str | None  # set for a training-step curve of one model
    axis: str  # "params" or "step"
    rows: pd.DataFrame


def iter_curves(scores: pd.DataFrame) -> Iterator[Curve]:
    """Every curve of a scores table, in (task, family, metric) order.

    Curves are found per (task, family, metric):

    * a model with more than one distinct ``step`` is a training-step ladder:
      its rows form one curve over ``step`` (``axis='step'``, ``model`` set);
    * the family's models form a size ladder over ``params`` (``axis='params'``,
      ``model`` None) when there are at least two models; a model with several
      checkpoints contributes its last one (largest ``step``).
    """
    needed = {"task", "family", "model", "params", "metric", "value"}
    missing = sorted(needed - set(scores.columns))
    if missing:
        raise InputError(f"scores table lacks column(s) {', '.join(missing)}", field=missing[0])
    table = without_attrs(scores)
    if "step" not in table.columns:
        table["step"] = np.nan
    table["step"] = pd.to_numeric(table["step"], errors="coerce")
    for (task, family, metric), group in table.groupby(
        ["task", "family", "metric"], sort=True, dropna=False
    ):
        n_steps = group.groupby("model")["step"].nunique()
        for model in sorted(n_steps.index[n_steps > 1]):
            rows = group[group["model"] == model]
            yield Curve(task, family, metric, str(model), "step", rows)
        if group["model"].nunique() >= 2:
            last = group.sort_values("step", na_position="first").groupby("model").tail(1)
            yield Curve(task, family, metric, None, "params", last)


def size_curve(scores: pd.DataFrame, task: str, family: str, metric: str) -> pd.DataFrame:
    """Rows of one size curve: each model of ``family`` at its last checkpoint (largest step)."""
    rows = scores[
        (scores["task"] == task) & (scores["family"] == family) & (scores["metric"] == metric)
    ]
    if "step" in rows.columns:
        rows = rows.sort_values("step", na_position="first")
    return rows.groupby("model").tail(1)


def measures_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Emergence measures of every curve in a scores table (see :func:`iter_curves`).

    One row per curve; columns are :data:`MEASURE_COLUMNS`; lower-is-better
    metrics are oriented as described in the module docstring.
    """
    out = [
        _curve_row((c.task, c.family, c.metric), c.model, c.axis, c.rows)
        for c in iter_curves(scores)
    ]
    return pd.DataFrame(out, columns=list(MEASURE_COLUMNS))
