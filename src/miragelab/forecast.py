"""Forecast a task's harsh metric from its continuous one, and back-test the forecast.

The paper's second prediction: an exact-match curve that looks emergent is
predictable from the smooth per-token loss of smaller models. Given a scores
table with both metrics for one (task, family), this module turns the
continuous metric into a per-token cross-entropy, fits its power law on all
but the largest ``holdout`` models, predicts their accuracy as ``p ** L``, and
sets the error beside that of a sigmoid fitted to accuracy directly
(:func:`miragelab.scaling.backtest`).

Continuous metrics are converted to cross-entropy (nats per token) by their
:attr:`~miragelab.metric_facts.MetricFact.to_loss` in :mod:`miragelab.metric_facts`:

* ``loss`` (``cross_entropy``, ``loss``, ``nll``): ``value``; in bits
  (``bits_per_byte``, ``bpb``, ``bits_per_token``): ``value * log(2)``;
* ``log`` (perplexities: ``ppl``, ``perplexity``, ...): ``log(value)``;
* ``neg`` (log-probabilities: ``target_logprob_mean``, ``logprob``, ...): ``-value``;
* ``neg_log`` (``per_token_prob``): ``-log(value)``.

A summed log-probability (``target_logprob``, ``continuation_logprob``) is the
loss of the whole answer: use ``L = 1`` (or ``"auto"``) with it.

``L`` is the answer length in the loss's tokens. For lm-eval's LAMBADA the
perplexity is per *target* (the last word), so ``L = 1``. ``L="auto"`` fits an
effective length on the training models only (least squares of
``log acc = -L * CE``), which absorbs the gap between the mean log-probability
and the mean accuracy (Jensen's inequality) without looking at the held-out
models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from miragelab.emergence import size_curve
from miragelab.errors import InputError
from miragelab.metric_facts import FACTS, LOSSES_IN_BITS, fact_of
from miragelab.scaling import PowerLawFit, backtest, fit_power_law
from miragelab.tables import without_attrs

__all__ = ["Forecast", "check_length", "fit_length", "forecast_task", "to_cross_entropy"]

_TRANSFORMS = {
    "log": np.log,
    "loss": lambda v: v,
    "neg": np.negative,
    "neg_log": lambda v: -np.log(v),
}


def to_cross_entropy(metric: str, values: np.ndarray) -> np.ndarray:
    """Per-token cross-entropy (nats) from a continuous metric, by the metric's
    :attr:`~miragelab.metric_facts.MetricFact.to_loss` (losses in bits times ``log 2``)."""
    v = np.asarray(values, dtype=float)
    fact = fact_of(metric)
    if fact is None or fact.to_loss is None:
        known = ", ".join(sorted(n for n, f in FACTS.items() if f.to_loss is not None))
        raise InputError(
            f"cannot turn metric {metric!r} into a cross-entropy; known: {known}", field="soft"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        ce = _TRANSFORMS[fact.to_loss](v)
    return ce * math.log(2) if fact.name in LOSSES_IN_BITS else ce


@dataclass
class Forecast:
    """A back-test and the power law fitted on the training models."""

    table: pd.DataFrame
    fit: PowerLawFit
    length: float
    curve: pd.DataFrame  # every model: params, observed accuracy, cross-entropy, held out?
    #: the family's models that could not be used, each with the reason
    notes: list[str] = field(default_factory=list)


def _last(scores: pd.DataFrame, task: str, family: str, metric: str) -> pd.DataFrame:
    rows = size_curve(scores, task, family, metric)
    if rows.empty:
        raise InputError(
            f"no scores for task {task!r}, family {family!r}, metric {metric!r}", field="metric"
        )
    return rows.set_index("model")


def forecast_task(
    scores: pd.DataFrame,
    task: str,
    family: str,
    harsh: str,
    soft: str,
    length: float | str = 1.0,
    holdout: int = 2,
    axis: str = "params",
) -> Forecast:
    """Back-test the accuracy forecast of the largest ``holdout`` models of one family."""
    scores = without_attrs(scores)
    acc_rows = _last(scores, task, family, harsh)
    soft_rows = _last(scores, task, family, soft)
    if length != "auto":
        length = check_length(length)
    models = acc_rows.index.intersection(soft_rows.index)
    if axis not in acc_rows.columns:
        raise InputError(f"the scores have no {axis!r} column", field="axis")
    unused = {m: f"no {soft} score" for m in acc_rows.index.difference(models)}
    unused |= {m: f"no {harsh} score" for m in soft_rows.index.difference(models)}
    x = acc_rows.loc[models, axis].to_numpy(dtype=float)
    acc = acc_rows.loc[models, "value"].to_numpy(dtype=float)
    ce = to_cross_entropy(soft, soft_rows.loc[models, "value"].to_numpy(dtype=float))
    with np.errstate(invalid="ignore"):
        reasons = np.select(
            [~np.isfinite(x), ~np.isfinite(acc), ~np.isfinite(ce), ~(ce > 0)],
            [
                f"no {axis}",
                f"{harsh} is not a number",
                f"{soft} gives no cross-entropy",
                f"{soft} is a cross-entropy of 0 (a power law cannot reach it)",
            ],
            default="",
        )
    unused |= {m: r for m, r in zip(models, reasons, strict=True) if r}
    usable = reasons == ""
    x, acc, ce = x[usable], acc[usable], ce[usable]
    notes = [f"not used: {m} ({unused[m]})" for m in sorted(unused, key=str)]
    if x.size - holdout < 3:
        raise InputError(
            f"{x.size} models with both metrics; need at least {holdout + 3} "
            f"to hold out {holdout} and fit on 3" + (f"; {'; '.join(notes)}" if notes else ""),
            field="holdout",
        )
    order = np.argsort(x)
    x, acc, ce = x[order], acc[order], ce[order]
    train = slice(0, x.size - holdout)
    length_value = fit_length(ce[train], acc[train]) if length == "auto" else length
    table = backtest(x, ce, acc, length_value, holdout=holdout)
    table.insert(0, "length", length_value)
    for name, value in (("soft_metric", soft), ("harsh_metric", harsh), ("family", family)):
        table.insert(0, name, value)
    table.insert(0, "task", task)
    curve = pd.DataFrame(
        {
            axis: x,
            "observed": acc,
            "cross_entropy": ce,
            "held_out": np.arange(x.size) >= x.size - holdout,
        }
    )
    return Forecast(table, fit_power_law(x[train], ce[train]), length_value, curve, notes)


def fit_length(per_token_ce: np.ndarray, accuracy: np.ndarray) -> float:
    """The effective answer length ``L`` of ``accuracy = exp(-L * CE)``: least squares of
    ``log acc = -L * CE`` through the origin, on the points with accuracy > 0."""
    ce, acc = np.asarray(per_token_ce, float), np.asarray(accuracy, float)
    positive = (acc > 0) & np.isfinite(ce) & (ce > 0)
    if positive.sum() < 1:
        raise InputError("no model has accuracy > 0 to fit L", field="length")
    c, a = ce[positive], np.log(acc[positive])
    return float(-(c * a).sum() / (c * c).sum())


def check_length(length: float | str) -> float:
    """An answer length: a finite number > 0 (text such as ``"3"`` is read as one)."""
    try:
        value = float(length)
    except (TypeError, ValueError):
        raise InputError(f"expected a number or 'auto', got {length!r}", field="length") from None
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"must be a finite number > 0 or 'auto', got {length!r}", field="length")
    return value
