"""From the samples table to the scores table: metric means with honest intervals.

One scores row per (task, family, model, step, metric). The interval method is
recorded per row (``ci_method``):

* ``wilson`` for 0/1 metrics (exact match, multiple-choice grade);
* ``bca`` (bias-corrected and accelerated bootstrap, ``n_resamples``
  resamples of the examples; :func:`miragelab.stats.bca_mean_interval`) for
  continuous metrics on up to ``BOOTSTRAP_MAX_N`` examples;
* ``t`` (Student-t interval of the mean) above that, where the bootstrap and
  the t interval agree to well within the bootstrap's own Monte-Carlo error
  and resampling millions of examples would only cost time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from miragelab.errors import InputError
from miragelab.metrics import REGISTRY, Metric, MetricOptions, compute_metrics, get_metric
from miragelab.stats import bca_mean_interval, wilson_interval
from miragelab.tables import SCORES

#: continuous metrics on more examples than this get a t interval
BOOTSTRAP_MAX_N = 20_000

_MODEL_KEY = ["task", "family", "model", "step"]
_MODEL_INFO = ["params", "compute_flops", "tokens_trained"]


def _resolve(metrics: Sequence[str | Metric]) -> list[Metric]:
    return [m if isinstance(m, Metric) else get_metric(m) for m in metrics]


def _line_of(samples: pd.DataFrame, row: int) -> tuple[str | None, int | None, str]:
    """Where a row came from, when the reader recorded it."""
    lines = samples.attrs.get("lines")
    unit = samples.attrs.get("unit", "line")
    if lines is None:
        return samples.attrs.get("path"), row + 1, "row"
    return lines.path_of(row) or samples.attrs.get("path"), int(lines[row]), unit


def applicable_rows(samples: pd.DataFrame, metric: Metric) -> np.ndarray:
    """Rows on which ``metric`` is computed; each task must have the columns on all or none.

    A task whose samples lack the metric's columns is skipped for that metric (a
    multiple-choice task has no exact match); a task that has them on some rows
    only is an error, because a mean over a silent subset would mislead.
    """
    missing_cols = [c for c in metric.needs if c not in samples.columns]
    if missing_cols:
        raise InputError(
            f"metric {metric.name!r} needs column(s) {', '.join(metric.needs)}; "
            f"the samples have no {missing_cols[0]!r} column",
            path=samples.attrs.get("path"),
            field=missing_cols[0],
        )
    present = samples[list(metric.needs)].notna().all(axis=1).to_numpy()
    if not present.any():
        first = next(c for c in metric.needs if samples[c].isna().all())
        raise InputError(
            f"metric {metric.name!r} needs column(s) {', '.join(metric.needs)}; "
            f"no sample has a value for {first!r}",
            path=samples.attrs.get("path"),
            field=first,
        )
    tasks = samples["task"].to_numpy()
    partial = pd.Series(present).groupby(tasks).agg(["any", "all"])
    mixed = partial.index[partial["any"] & ~partial["all"]]
    if len(mixed):
        task = mixed[0]
        row = int(np.flatnonzero((tasks == task) & ~present)[0])
        path, line, unit = _line_of(samples, row)
        lacking = next(c for c in metric.needs if pd.isna(samples[c].iloc[row]))
        raise mixed_task_error(task, metric.name, lacking, path, line, unit)
    return present


def mixed_task_error(
    task: str,
    metric: str,
    lacking: str,
    path: str | os.PathLike[str] | None,
    line: int | None,
    unit: str,
) -> InputError:
    """A sample lacks a column its metric needs while other samples of its task have it:
    a broken sample, not a task the metric does not apply to."""
    return InputError(
        f"task {task!r}: metric {metric!r} needs {lacking!r}, which this sample "
        f"lacks while other samples of the task have it",
        path=path,
        line=line,
        field=lacking,
        unit=unit,
    )


NO_METRIC_APPLIES = (
    "no metric applies: no sample has prediction and target, target token log-probs, "
    "or choice log-probs with the correct choice"
)


def applicable_metrics(samples: pd.DataFrame) -> list[Metric]:
    """Every registered metric that at least one sample has all the columns for.

    What ``--metrics auto`` scores: a generation task gets the string and
    log-prob metrics it has data for, a multiple-choice task the choice metrics.
    """
    chosen = [
        m
        for m in REGISTRY.values()
        if all(c in samples.columns for c in m.needs)
        and samples[list(m.needs)].notna().all(axis=1).any()
    ]
    if not chosen:
        raise InputError(NO_METRIC_APPLIES, path=samples.attrs.get("path"), field="metrics")
    return chosen


def score_samples(
    samples: pd.DataFrame,
    metrics: Sequence[str | Metric],
    options: MetricOptions | None = None,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Score a validated samples table: one row per (task, family, model, step, metric)."""
    resolved = _resolve(metrics)
    if not resolved:
        raise InputError("no metrics given", field="metrics")
    masks = {m.name: applicable_rows(samples, m) for m in resolved}
    values = compute_metrics(samples, resolved, options)

    keys = samples[_MODEL_KEY].astype(object).where(samples[_MODEL_KEY].notna(), None)
    group_ids, uniques = pd.MultiIndex.from_frame(keys).factorize()
    info = samples[_MODEL_INFO].groupby(group_ids).first()
    rng = np.random.default_rng(seed)
    frames = []
    for metric in resolved:
        mask = masks[metric.name]
        ids = group_ids[mask]
        vals = values[metric.name].to_numpy()[mask]
        if not np.isfinite(vals).all():
            row = int(np.flatnonzero(mask)[np.flatnonzero(~np.isfinite(vals))[0]])
            path, line, unit = _line_of(samples, row)
            raise InputError(
                f"metric {metric.name!r} is not finite for this sample",
                path=path,
                line=line,
                field=metric.name,
                unit=unit,
            )
        n = np.bincount(ids, minlength=len(uniques))
        sums = np.bincount(ids, weights=vals, minlength=len(uniques))
        present = np.flatnonzero(n > 0)
        means = sums[present] / n[present]
        if metric.binary:
            low, high = wilson_interval(sums[present], n[present], confidence)
            method = np.full(present.size, "wilson", dtype=object)
        else:
            low, high, method = _continuous_intervals(
                vals, ids, present, confidence, n_resamples, rng
            )
        frame = pd.DataFrame([uniques[i] for i in present], columns=_MODEL_KEY).assign(
            metric=metric.name,
            value=means,
            ci_low=low,
            ci_high=high,
            n=n[present],
            ci_method=method,
            higher_is_better=metric.higher_is_better,
        )
        frames.append(frame.join(info.iloc[present].reset_index(drop=True)))
    return assemble_scores(frames)


def assemble_scores(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One scores table from per-metric frames: typed, in column and row order."""
    scores = pd.concat(frames, ignore_index=True)
    scores["step"] = scores["step"].astype("Int64")
    scores["n"] = scores["n"].astype("Int64")
    ordered = [c for c in SCORES.columns if c in scores.columns]
    return scores[ordered].sort_values(
        ["task", "metric", "family", "params", "step"], kind="stable", ignore_index=True
    )


def _continuous_intervals(
    vals: np.ndarray,
    ids: np.ndarray,
    present: np.ndarray,
    confidence: float,
    n_resamples: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(ids, kind="stable")
    sorted_vals = vals[order]
    bounds = np.searchsorted(ids[order], np.append(present, present[-1] + 1))
    low = np.empty(present.size)
    high = np.empty(present.size)
    method = np.empty(present.size, dtype=object)
    for j in range(present.size):
        group = sorted_vals[bounds[j] : bounds[j + 1]]
        if group.size <= BOOTSTRAP_MAX_N:
            low[j], high[j] = bca_mean_interval(group, confidence, n_resamples, rng)
            method[j] = "bca"
        else:
            mean = group.mean()
            sem = group.std(ddof=1) / np.sqrt(group.size)
            half = sps.t.ppf(0.5 + confidence / 2, group.size - 1) * sem
            low[j], high[j] = mean - half, mean + half
            method[j] = "t"
    return low, high, method
