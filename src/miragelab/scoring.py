"""From the samples table to the scores table: metric means with honest intervals.

One scores row per (task, family, model, step, metric). :class:`Scorer` is the
one accumulator: it takes samples batch by batch (a table in memory is one
batch; :mod:`miragelab.streaming` feeds the record batches of files larger
than memory) and keeps, per (task, family, model, step, metric):

* ``n`` and the sum of the values -- for a 0/1 metric the sum is the count of
  successes, an exact integer, so its Wilson interval does not depend on how
  the rows were cut into batches;
* the mean and the sum of squared deviations (merged batch by batch with Chan's
  update, which stays accurate where ``sum(x**2) - n mean**2`` would cancel);
* the values themselves while the group has at most ``BOOTSTRAP_MAX_N`` of them
  (a bounded amount: 20,000 floats per group and metric).

The interval method is recorded per row (``ci_method``):

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from miragelab.errors import InputError
from miragelab.metrics import REGISTRY, Metric, MetricOptions, compute_metrics, get_metric
from miragelab.schema import SCORES, Where
from miragelab.stats import bca_mean_interval, t_interval, wilson_interval

#: continuous metrics on more examples than this get a t interval
BOOTSTRAP_MAX_N = 20_000

MODEL_KEY = ["task", "family", "model", "step"]
MODEL_INFO = ["params", "compute_flops", "tokens_trained"]

NO_METRIC_APPLIES = (
    "no metric applies: no sample has prediction and target, target token log-probs, "
    "or choice log-probs with the correct choice"
)


def resolve_metrics(metrics: str | Metric | Sequence[str | Metric]) -> list[Metric]:
    """Metrics by name or object; one name is one metric (not its letters)."""
    if isinstance(metrics, str | Metric):
        metrics = [metrics]
    return [m if isinstance(m, Metric) else get_metric(m) for m in metrics]


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


def where_of(samples: pd.DataFrame) -> Where:
    """Where the rows of a table read by :mod:`miragelab.tables` came from (row
    numbers from 1 for a frame built in memory)."""
    lines = samples.attrs.get("lines")
    if lines is None:
        return Where(samples.attrs.get("path"), np.arange(1, len(samples) + 1), "row")
    return Where(samples.attrs.get("path"), lines, samples.attrs.get("unit", "line"))


# --------------------------------------------------------------------------- accumulation


@dataclass
class _Moments:
    """Per-group statistics of one metric, in arrays indexed by group id."""

    binary: bool
    n: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    total: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    m2: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: the values of each group while it is small enough for the bootstrap
    kept: dict[int, list[np.ndarray] | None] = field(default_factory=dict)

    def grow(self, size: int) -> None:
        extra = size - self.n.size
        if extra > 0:
            self.n = np.concatenate([self.n, np.zeros(extra, dtype=np.int64)])
            self.total = np.concatenate([self.total, np.zeros(extra)])
            self.mean = np.concatenate([self.mean, np.zeros(extra)])
            self.m2 = np.concatenate([self.m2, np.zeros(extra)])

    def add(self, ids: np.ndarray, values: np.ndarray, n_groups: int) -> None:
        """Merge one batch (Chan et al.'s parallel update of mean and M2)."""
        self.grow(n_groups)
        n_b = np.bincount(ids, minlength=n_groups)
        sum_b = np.bincount(ids, weights=values, minlength=n_groups)
        here = np.flatnonzero(n_b)
        self.total[here] += sum_b[here]
        if self.binary:
            self.n[here] += n_b[here]
            return
        mean_b = np.zeros(n_groups)
        mean_b[here] = sum_b[here] / n_b[here]
        m2_b = np.bincount(ids, weights=(values - mean_b[ids]) ** 2, minlength=n_groups)
        n_a = self.n[here].astype(float)
        nb = n_b[here].astype(float)
        both = n_a + nb
        delta = mean_b[here] - self.mean[here]
        self.mean[here] += delta * nb / both
        self.m2[here] += m2_b[here] + delta**2 * n_a * nb / both
        self.n[here] += n_b[here]
        order = np.argsort(ids, kind="stable")
        bounds = np.searchsorted(ids[order], np.append(here, n_groups))
        for j, g in enumerate(here.tolist()):
            kept = self.kept.setdefault(g, [])
            if kept is None:
                continue
            if self.n[g] > BOOTSTRAP_MAX_N:
                self.kept[g] = None  # the t interval needs only the moments
            else:
                kept.append(values[order[bounds[j] : bounds[j + 1]]])


@dataclass
class _Presence:
    """Which tasks have a metric's columns on some rows, and where one lacks them."""

    any_value: bool = False
    present_tasks: set[str] = field(default_factory=set)
    #: task -> (file, line, unit, column) of its first sample without the columns
    first_absent: dict[str, tuple[str | os.PathLike[str] | None, int | None, str, str]] = field(
        default_factory=dict
    )


class Scorer:
    """The one accumulator of scores: batches of validated samples in, a scores table out.

    Parameters
    ----------
    metrics
        Metric names or objects (one name is one metric).
    options
        Options of the string metrics.
    confidence
        Level of every interval.
    n_resamples
        Resamples of the BCa bootstrap.
    seed
        Seed of the bootstrap's random stream (groups are resampled in the order
        they were first seen, metric by metric).
    skip_absent
        Drop a metric no sample has the columns for instead of refusing it
        (what ``--metrics auto`` wants).
    """

    def __init__(
        self,
        metrics: str | Metric | Sequence[str | Metric],
        options: MetricOptions | None = None,
        *,
        confidence: float = 0.95,
        n_resamples: int = 1000,
        seed: int = 0,
        skip_absent: bool = False,
    ) -> None:
        self.metrics = resolve_metrics(metrics)
        if not self.metrics:
            raise InputError("no metrics given", field="metrics")
        self.skip_absent = skip_absent
        self.options = options or MetricOptions()
        self.confidence, self.n_resamples, self.seed = confidence, n_resamples, seed
        self.moments = {m.name: _Moments(m.binary) for m in self.metrics}
        self.presence = {m.name: _Presence() for m in self.metrics}
        self.columns_seen: set[str] = set()
        self.group_of: dict[tuple, int] = {}
        self.keys: list[tuple] = []
        self.info = np.zeros((0, len(MODEL_INFO)))
        self.paths: set[str] = set()
        self.rows = 0

    # ------------------------------------------------------------------ feeding

    def add(self, samples: pd.DataFrame, where: Where | None = None) -> None:
        """Add one batch of validated samples (a frame read or checked by the schema).

        ``where`` names the batch's rows in errors (default: what the reader
        recorded in ``samples.attrs``).
        """
        n = len(samples)
        if n == 0:
            return
        where = where or where_of(samples)
        if where.path is not None:
            self.paths.add(str(where.path))
        ids = self._group_ids(samples)
        self._keep_info(samples, ids)
        notna = {}
        for name in sorted({c for m in self.metrics for c in m.needs}):
            if name in samples.columns:
                notna[name] = samples[name].notna().to_numpy()
                if notna[name].any():
                    self.columns_seen.add(name)
            else:
                notna[name] = np.zeros(n, dtype=bool)
        present = {m.name: np.logical_and.reduce([notna[c] for c in m.needs]) for m in self.metrics}
        computable = [m for m in self.metrics if present[m.name].any()]
        values = compute_metrics(samples, computable, self.options) if computable else {}
        tasks = samples["task"].to_numpy(dtype=object)
        for metric in self.metrics:
            mask = present[metric.name]
            self._note_presence(metric, notna, mask, tasks, where)
            if not mask.any():
                continue
            vals = values[metric.name].to_numpy()[mask]
            finite = np.isfinite(vals)
            if not finite.all():
                row = int(np.flatnonzero(mask)[np.flatnonzero(~finite)[0]])
                raise where.error(
                    f"metric {metric.name!r} is not finite for this sample", row, metric.name
                )
            self.moments[metric.name].add(ids[mask], vals, len(self.keys))
        self.rows += n

    def _group_ids(self, samples: pd.DataFrame) -> np.ndarray:
        """Global id of each row's (task, family, model, step), in first-seen order."""
        codes = np.zeros(len(samples), dtype=np.int64)
        columns = []
        for name in MODEL_KEY:
            column_codes, uniques = pd.factorize(samples[name], use_na_sentinel=False)
            # re-coded after each column, so the combined code stays below the row count
            codes = pd.factorize(codes * max(len(uniques), 1) + column_codes)[0].astype(np.int64)
            values = [None if pd.isna(u) else u for u in uniques.tolist()]
            columns.append((values, column_codes))
        _, first, local = np.unique(codes, return_index=True, return_inverse=True)
        local_to_global = np.empty(first.size, dtype=np.int64)
        for j in np.argsort(first, kind="stable").tolist():
            row = int(first[j])
            key = tuple(values[int(idx[row])] for values, idx in columns)
            gid = self.group_of.get(key)
            if gid is None:
                gid = self.group_of[key] = len(self.keys)
                self.keys.append(key)
            local_to_global[j] = gid
        if len(self.keys) > self.info.shape[0]:
            grown = np.full((len(self.keys), len(MODEL_INFO)), np.nan)
            grown[: self.info.shape[0]] = self.info
            self.info = grown
        return local_to_global[local.ravel()]

    def _keep_info(self, samples: pd.DataFrame, ids: np.ndarray) -> None:
        """The first non-null params / compute / tokens of each group (``groupby.first``)."""
        for j, name in enumerate(MODEL_INFO):
            if name not in samples.columns:
                continue
            values = samples[name].to_numpy(dtype=float, na_value=np.nan)
            have = ~np.isnan(values)
            groups, first = np.unique(ids[have], return_index=True)
            unset = np.isnan(self.info[groups, j])
            self.info[groups[unset], j] = values[have][first[unset]]

    def _note_presence(
        self,
        metric: Metric,
        notna: dict[str, np.ndarray],
        present: np.ndarray,
        tasks: np.ndarray,
        where: Where,
    ) -> None:
        state = self.presence[metric.name]
        if present.any():
            state.any_value = True
            state.present_tasks.update(pd.unique(tasks[present]).tolist())
        if present.all():
            return
        absent = np.flatnonzero(~present)
        names, first = np.unique(tasks[absent], return_index=True)
        for task, idx in zip(names.tolist(), first.tolist(), strict=True):
            if task in state.first_absent:
                continue
            row = int(absent[idx])
            lacking = next(c for c in metric.needs if not notna[c][row])
            path, line = where.locate(row)
            state.first_absent[task] = (path, line, where.unit_of(row), lacking)

    # ------------------------------------------------------------------ results

    def _path(self) -> Path | None:
        return Path(next(iter(self.paths))) if len(self.paths) == 1 else None

    def check(self) -> None:
        """The rules that need every row: each metric applies, and to whole tasks."""
        if self.rows == 0:
            raise InputError("empty samples table: no records")
        if self.skip_absent:
            self.metrics = [m for m in self.metrics if self.presence[m.name].any_value]
            if not self.metrics:
                raise InputError(NO_METRIC_APPLIES, path=self._path(), field="metrics")
        for metric in self.metrics:
            state = self.presence[metric.name]
            if not state.any_value:
                first = next((c for c in metric.needs if c not in self.columns_seen), None)
                first = first or metric.needs[0]
                raise InputError(
                    f"metric {metric.name!r} needs column(s) {', '.join(metric.needs)}; "
                    f"no sample has a value for {first!r}",
                    path=self._path(),
                    field=first,
                )
            mixed = sorted(t for t in state.first_absent if t in state.present_tasks)
            if mixed:
                task = mixed[0]  # the first mixed task by name
                path, line, unit, lacking = state.first_absent[task]
                raise mixed_task_error(task, metric.name, lacking, path, line, unit)

    def scores(self) -> pd.DataFrame:
        """The scores table, in column and row order."""
        self.check()
        rng = np.random.default_rng(self.seed)
        frames = []
        for metric in self.metrics:
            acc = self.moments[metric.name]
            acc.grow(len(self.keys))
            present = np.flatnonzero(acc.n > 0)
            n = acc.n[present]
            if metric.binary:
                means = acc.total[present] / n
                low, high = wilson_interval(acc.total[present], n, self.confidence)
                method = np.full(present.size, "wilson", dtype=object)
            else:
                means, low, high, method = self._continuous(acc, present, rng)
            frame = pd.DataFrame([self.keys[g] for g in present], columns=MODEL_KEY).assign(
                metric=metric.name,
                value=means,
                ci_low=low,
                ci_high=high,
                n=n,
                ci_method=method,
                higher_is_better=metric.higher_is_better,
            )
            info = pd.DataFrame(self.info[present], columns=MODEL_INFO)
            frames.append(frame.join(info))
        return assemble_scores(frames)

    def _continuous(
        self, acc: _Moments, present: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Means and intervals: BCa on a small group's values, t from the moments above."""
        means = np.empty(present.size)
        low = np.empty(present.size)
        high = np.empty(present.size)
        method = np.empty(present.size, dtype=object)
        for j, g in enumerate(present.tolist()):
            count = int(acc.n[g])
            kept = acc.kept.get(g)
            if kept is not None and count <= BOOTSTRAP_MAX_N:
                values = np.concatenate(kept)
                # summed in row order, as one bincount over the group
                means[j] = np.bincount(np.zeros(count, dtype=np.int64), weights=values)[0] / count
                low[j], high[j] = bca_mean_interval(values, self.confidence, self.n_resamples, rng)
                method[j] = "bca"
            else:
                means[j] = acc.total[g] / count
                stderr = np.sqrt(acc.m2[g] / (count - 1)) / np.sqrt(count)
                low[j], high[j] = t_interval(acc.mean[g], stderr, count, self.confidence)
                method[j] = "t"
        return means, low, high, method


def assemble_scores(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One scores table from per-metric frames: typed, in column and row order."""
    scores = pd.concat(frames, ignore_index=True)
    scores["step"] = scores["step"].astype("Int64")
    scores["n"] = scores["n"].astype("Int64")
    ordered = [c for c in SCORES.columns if c in scores.columns]
    return scores[ordered].sort_values(
        ["task", "metric", "family", "params", "step"], kind="stable", ignore_index=True
    )


def score_samples(
    samples: pd.DataFrame,
    metrics: str | Metric | Sequence[str | Metric],
    options: MetricOptions | None = None,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Score a validated samples table: one row per (task, family, model, step, metric).

    The table is one batch of :class:`Scorer`; errors name the file and line
    the reader recorded for the row at fault.
    """
    scorer = Scorer(metrics, options, confidence=confidence, n_resamples=n_resamples, seed=seed)
    scorer.add(samples)
    return scorer.scores()
