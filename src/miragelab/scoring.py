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
  resamples of the examples, every group at once;
  :func:`miragelab.bootstrap.bca_mean_intervals`: exact resampling where it
  costs least (few distinct values, small groups), otherwise bins with a
  proven error bound of a tenth of the Monte-Carlo error of the interval's
  ends) for continuous metrics on up to
  ``BOOTSTRAP_MAX_N`` examples;
* ``t`` (Student-t interval of the mean) above that, where the bootstrap and
  the t interval agree to well within the bootstrap's own Monte-Carlo error
  and resampling millions of examples would only cost time.

Samples asked several times (an ``epoch`` column, Inspect's ``--epochs``) are
averaged per example first, as Inspect's ``mean`` reducer does: ``value`` is the
mean over examples of each example's mean over its epochs, ``n`` counts
examples, and the interval resamples examples (epochs of one example are not
independent draws). A 0/1 metric whose epochs disagree on some example is no
longer 0/1 there, so that group gets the BCa interval; where every example's
epochs agree (and in tasks without epochs) it keeps the Wilson interval, so
0% and 100% never get an interval of zero width. The epochs of an example must
arrive in one batch: such samples are scored in memory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from miragelab.bootstrap import bca_mean_intervals, cpu_threads
from miragelab.errors import InputError
from miragelab.metrics import REGISTRY, Metric, MetricOptions, get_metric, iter_metrics
from miragelab.schema import SCORES, Where
from miragelab.stats import t_interval, wilson_interval

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


def first_rows(codes: np.ndarray, size: int) -> np.ndarray:
    """Position of the first occurrence of each code ``0 .. size - 1`` in ``codes``
    (``len(codes)`` for a code that does not occur)."""
    first = np.full(size, codes.size, dtype=np.int64)
    np.minimum.at(first, codes, np.arange(codes.size, dtype=np.int64))
    return first


def grouping_order(ids: np.ndarray, n_groups: int) -> np.ndarray:
    """The stable order that groups rows by id (a radix sort where ids fit in 16 bits)."""
    key = ids.astype(np.uint16) if n_groups <= np.iinfo(np.uint16).max + 1 else ids
    return np.argsort(key, kind="stable")


@dataclass(frozen=True)
class _Codes:
    """A column as codes into its distinct values (in first-seen order)."""

    codes: np.ndarray
    names: list


@dataclass
class _Moments:
    """Per-group statistics of one metric, in arrays indexed by group id."""

    binary: bool
    n: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    total: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    m2: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: values other than 0 and 1 (a 0/1 metric averaged over epochs stays 0/1 where every
    #: example's epochs agree)
    fractional: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: the values of the groups still small enough for the bootstrap, batch by batch,
    #: with their group ids (a group's values leave once it passes ``BOOTSTRAP_MAX_N``)
    kept_ids: list[np.ndarray] = field(default_factory=list)
    kept_values: list[np.ndarray] = field(default_factory=list)

    def grow(self, size: int) -> None:
        extra = size - self.n.size
        if extra > 0:
            self.n = np.concatenate([self.n, np.zeros(extra, dtype=np.int64)])
            self.total = np.concatenate([self.total, np.zeros(extra)])
            self.mean = np.concatenate([self.mean, np.zeros(extra)])
            self.m2 = np.concatenate([self.m2, np.zeros(extra)])
            self.fractional = np.concatenate([self.fractional, np.zeros(extra, dtype=np.int64)])

    def add(self, ids: np.ndarray, values: np.ndarray, n_groups: int) -> None:
        """Merge one batch whose rows are grouped by id (Chan et al.'s parallel update of
        mean and M2)."""
        self.grow(n_groups)
        starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))
        here = ids[starts]
        n_b = np.diff(np.append(starts, ids.size))
        sum_b = np.add.reduceat(values, starts)
        self.total[here] += sum_b
        if self.binary:
            self.n[here] += n_b
            return
        self.fractional[here] += np.add.reduceat(((values != 0) & (values != 1)), starts)
        mean_b = sum_b / n_b
        m2_b = np.add.reduceat((values - np.repeat(mean_b, n_b)) ** 2, starts)
        n_a = self.n[here].astype(float)
        both = n_a + n_b
        delta = mean_b - self.mean[here]
        self.mean[here] += delta * n_b / both
        self.m2[here] += m2_b + delta**2 * n_a * n_b / both
        was_small = self.n <= BOOTSTRAP_MAX_N
        self.n[here] += n_b
        small = self.n <= BOOTSTRAP_MAX_N
        if (was_small & ~small).any():  # the t interval needs only the moments
            for j, kept in enumerate(self.kept_ids):
                keep = small[kept]
                self.kept_ids[j], self.kept_values[j] = kept[keep], self.kept_values[j][keep]
        if small[here].all():
            self.kept_ids.append(ids)
            self.kept_values.append(values)
        else:
            keep = np.repeat(small[here], n_b)
            self.kept_ids.append(ids[keep])
            self.kept_values.append(values[keep])

    def kept(self) -> np.ndarray:
        """The kept values grouped by group id (row order within a group)."""
        if len(self.kept_ids) == 1:
            return self.kept_values[0]
        ids = np.concatenate(self.kept_ids) if self.kept_ids else np.zeros(0, dtype=np.int64)
        values = np.concatenate(self.kept_values) if self.kept_values else np.zeros(0)
        return values[grouping_order(ids, self.n.size)]


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
        Seed of the bootstrap: each metric gets a stream of its own from it, and
        its groups are resampled in the order they were first seen, so the
        intervals do not depend on how the samples were cut into batches.
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
        #: whether the samples repeat examples over epochs (then averaged per example)
        self.epochs = False
        self.presence = {m.name: _Presence() for m in self.metrics}
        self.columns_seen: set[str] = set()
        self.group_of: dict[tuple, int] = {}
        self.keys: list[tuple] = []
        self.info = np.zeros((0, len(MODEL_INFO)))
        self.paths: set[str] = set()
        self.rows = 0
        # each metric's bootstrap draws from a stream of its own, keyed by its name: the
        # same whichever way the samples arrive and whichever other metrics are scored
        self.streams = {
            m.name: np.random.SeedSequence(seed, spawn_key=tuple(m.name.encode()))
            for m in self.metrics
        }
        self.pool: ThreadPoolExecutor | None = None
        self.intervals: dict[str, Future] = {}

    # ------------------------------------------------------------------ feeding

    def add(self, samples: pd.DataFrame, where: Where | None = None, *, only: bool = False) -> None:
        """Add one batch of validated samples (a frame read or checked by the schema).

        ``where`` names the batch's rows in errors (default: what the reader
        recorded in ``samples.attrs``). ``only=True`` says this is the one batch
        there will be: each continuous metric's intervals are then computed in a
        background thread as soon as its values are in, while the next metric is
        computed (the same intervals as at the end).
        """
        try:
            self._add(samples, where, eager=only and self.rows == 0)
        except BaseException:
            self._drop_pending()
            raise

    def _add(self, samples: pd.DataFrame, where: Where | None, eager: bool) -> None:
        n = len(samples)
        if n == 0:
            return
        where = where or where_of(samples)
        if where.path is not None:
            self.paths.add(str(where.path))
        ids, tasks = self._group_ids(samples)
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
        examples = self._epoch_examples(samples, ids, where)
        # continuous metrics first: their intervals can start while the rest is computed
        metrics = sorted(self.metrics, key=self._binary)
        computable = [m for m in metrics if present[m.name].any()]
        produced = iter_metrics(samples, computable, self.options)
        order = grouping_order(ids, len(self.keys))
        grouped = ids[order]
        for metric in metrics:
            mask = present[metric.name]
            self._note_presence(metric, notna, mask, tasks, where)
            if not mask.any():
                continue
            if mask.all():
                rows, group_ids = order, grouped
            else:
                keep = mask[order]
                rows, group_ids = order[keep], grouped[keep]
            _, values = next(produced)  # the metrics come in the order of ``computable``
            vals = values[rows]
            finite = np.isfinite(vals)
            if not finite.all():
                row = int(rows[~finite].min())
                raise where.error(
                    f"metric {metric.name!r} is not finite for this sample", row, metric.name
                )
            if examples is not None:  # each example's mean over its epochs
                group_ids, vals = _per_example(group_ids, vals, examples[rows], len(self.keys))
            self.moments[metric.name].add(group_ids, vals, len(self.keys))
            if eager and not self._binary(metric):
                self._start_intervals(metric)
        self.rows += n

    def _binary(self, metric: Metric) -> bool:
        """Whether the metric's means are of 0/1 values (not once averaged over epochs)."""
        return self.moments[metric.name].binary

    def _epoch_examples(self, samples: pd.DataFrame, ids: np.ndarray, where: Where):
        """Each row's example (a code per group and ``example_id``) where the samples come
        in several epochs, else None. A binary metric's means then become continuous.

        Samples with epochs are one batch, all of them: the epochs of an example in
        two batches would count as two examples.
        """
        has_epochs = "epoch" in samples.columns and samples["epoch"].notna().any()
        if not has_epochs and not self.epochs:
            return None
        codes = None
        if has_epochs:
            example = pd.factorize(samples["example_id"], use_na_sentinel=False)[0]
            codes = pd.factorize(ids * (int(example.max()) + 1) + example)[0].astype(np.int64)
            if np.bincount(codes).max() < 2 and not (samples["epoch"] > 1).any():
                codes = None  # one epoch per example: nothing to average
        if codes is None and not self.epochs:
            return None
        if self.rows:  # epochs here after other batches, or other batches after epochs
            raise where.error(
                "samples with several epochs are scored in memory, all in one batch "
                "(mirage score --in-memory; stream=False in the API)",
                0,
                "epoch",
            )
        self.epochs = True
        for m in self.metrics:
            self.moments[m.name] = _Moments(False)
        return codes

    def _group_ids(self, samples: pd.DataFrame) -> tuple[np.ndarray, _Codes]:
        """Global id of each row's (task, family, model, step), in first-seen order, and
        the rows' task codes."""
        codes = np.zeros(len(samples), dtype=np.int64)
        span = 1  # codes lie in [0, span)
        columns = []
        for name in MODEL_KEY:
            column_codes, uniques = pd.factorize(samples[name], use_na_sentinel=False)
            size = max(len(uniques), 1)
            if span * size >= 2**62:  # re-coded, so the combined code stays below the rows
                codes, span = pd.factorize(codes)[0].astype(np.int64), int(codes.size)
            codes = codes * size + column_codes
            span *= size
            values = [None if pd.isna(u) else u for u in uniques.tolist()]
            columns.append((values, column_codes))
        # numbered in first-seen order
        codes = pd.factorize(codes)[0].astype(np.int64)
        tasks = _Codes(columns[0][1], columns[0][0])
        first = first_rows(codes, int(codes.max()) + 1)
        local_to_global = np.empty(first.size, dtype=np.int64)
        for j, row in enumerate(first.tolist()):
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
        return local_to_global[codes], tasks

    def _keep_info(self, samples: pd.DataFrame, ids: np.ndarray) -> None:
        """The first non-null params / compute / tokens of each group (``groupby.first``)."""
        for j, name in enumerate(MODEL_INFO):
            unset = np.isnan(self.info[:, j])
            if name not in samples.columns or not unset.any():
                continue
            values = samples[name].to_numpy(dtype=float, na_value=np.nan)
            rows = np.flatnonzero(~np.isnan(values) & unset[ids])
            first = first_rows(ids[rows], unset.size)
            got = first < rows.size
            self.info[got, j] = values[rows[first[got]]]

    def _note_presence(
        self,
        metric: Metric,
        notna: dict[str, np.ndarray],
        present: np.ndarray,
        tasks: _Codes,
        where: Where,
    ) -> None:
        state = self.presence[metric.name]
        if present.all():
            state.any_value = True
            state.present_tasks.update(tasks.names)
            return
        if present.any():
            state.any_value = True
            seen = np.bincount(tasks.codes[present], minlength=len(tasks.names)) > 0
            state.present_tasks.update(tasks.names[t] for t in np.flatnonzero(seen).tolist())
        absent = np.flatnonzero(~present)
        first = first_rows(tasks.codes[absent], len(tasks.names))
        for t in np.flatnonzero(first < absent.size).tolist():
            task = tasks.names[t]
            if task in state.first_absent:
                continue
            row = int(absent[first[t]])
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
        columns = {}
        for metric in self.metrics:
            acc = self.moments[metric.name]
            acc.grow(len(self.keys))
            present = np.flatnonzero(acc.n > 0)
            n = acc.n[present]
            means = acc.total[present] / n
            if acc.binary:
                low, high = wilson_interval(acc.total[present], n, self.confidence)
                method = "wilson"
            else:
                with np.errstate(divide="ignore", invalid="ignore"):  # n = 1: bootstrapped
                    stderr = np.sqrt(acc.m2[present] / (n - 1)) / np.sqrt(n)
                    low, high = t_interval(acc.mean[present], stderr, n, self.confidence)
                method = "t"
            columns[metric.name] = _Column(
                present, n, means, low, high, np.full(present.size, method, dtype=object)
            )
        self._bootstrap(columns)
        self._zero_one_after_epochs(columns)
        parts = [columns[m.name] for m in self.metrics]
        sizes = [c.present.size for c in parts]
        present = np.concatenate([c.present for c in parts])
        keys = pd.DataFrame([self.keys[g] for g in present.tolist()], columns=MODEL_KEY)
        frame = keys.assign(
            metric=np.repeat([m.name for m in self.metrics], sizes),
            value=np.concatenate([c.value for c in parts]),
            ci_low=np.concatenate([c.low for c in parts]),
            ci_high=np.concatenate([c.high for c in parts]),
            n=np.concatenate([c.n for c in parts]),
            ci_method=np.concatenate([c.method for c in parts]),
            higher_is_better=np.repeat([m.higher_is_better for m in self.metrics], sizes),
        )
        info = pd.DataFrame(self.info[present], columns=MODEL_INFO)
        return assemble_scores([frame.join(info)])

    def _zero_one_after_epochs(self, columns: dict[str, _Column]) -> None:
        """A 0/1 metric averaged over epochs keeps the Wilson interval where its
        per-example means are still 0/1 (every example's epochs agree; a task without
        epochs): a 0% or 100% is never given an interval of zero width."""
        if not self.epochs:
            return
        for metric in self.metrics:
            if not metric.binary:
                continue
            column, acc = columns[metric.name], self.moments[metric.name]
            whole = np.flatnonzero(acc.fractional[column.present] == 0)
            low, high = wilson_interval(
                acc.total[column.present][whole], column.n[whole], self.confidence
            )
            column.value[whole] = acc.total[column.present][whole] / column.n[whole]
            column.low[whole], column.high[whole] = low, high
            column.method[whole] = "wilson"

    def _start_intervals(self, metric: Metric) -> None:
        if self.pool is None:
            workers = sum(not self._binary(m) for m in self.metrics)
            self.pool = ThreadPoolExecutor(cpu_threads(workers))
        self.intervals[metric.name] = self.pool.submit(self._intervals, metric, 1)

    def _intervals(
        self, metric: Metric, threads: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """BCa means and ends of a continuous metric's groups of at most ``BOOTSTRAP_MAX_N``
        examples (in group order), from the metric's own random stream."""
        acc = self.moments[metric.name]
        n = acc.n[acc.n > 0]
        sizes = n[n <= BOOTSTRAP_MAX_N]
        if sizes.size == 0:
            return None
        return bca_mean_intervals(
            acc.kept(),
            sizes,
            self.confidence,
            self.n_resamples,
            np.random.default_rng(self.streams[metric.name]),
            threads=threads,
        )

    def _drop_pending(self) -> None:
        for future in self.intervals.values():
            future.cancel()
        self.intervals.clear()
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None

    def _bootstrap(self, columns: dict[str, _Column]) -> None:
        """BCa intervals of every continuous metric's groups of at most ``BOOTSTRAP_MAX_N``
        examples: those started while the samples came in, the others now (on threads of
        their own when there are several; one alone threads over its groups)."""
        continuous = [m for m in self.metrics if not self._binary(m)]
        unstarted = [m for m in continuous if m.name not in self.intervals]
        if len(unstarted) > 1:
            for metric in unstarted:
                self._start_intervals(metric)
        try:
            for metric in continuous:
                future = self.intervals.get(metric.name)
                result = future.result() if future else self._intervals(metric)
                if result is None:
                    continue
                column = columns[metric.name]
                small = np.flatnonzero(column.n <= BOOTSTRAP_MAX_N)
                column.value[small], column.low[small], column.high[small] = result
                column.method[small] = "bca"
        finally:
            self._drop_pending()


def _per_example(
    group_ids: np.ndarray, values: np.ndarray, examples: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each example's mean over its rows (its epochs), grouped by group id as ``add`` wants."""
    codes, inverse = np.unique(examples, return_inverse=True)
    counts = np.bincount(inverse)
    means = np.bincount(inverse, weights=values) / counts
    owner = np.empty(codes.size, dtype=np.int64)
    owner[inverse] = group_ids
    order = grouping_order(owner, n_groups)
    return owner[order], means[order]


@dataclass(frozen=True)
class _Column:
    """One metric's rows of the scores table, as arrays over its groups."""

    present: np.ndarray
    n: np.ndarray
    value: np.ndarray
    low: np.ndarray
    high: np.ndarray
    method: np.ndarray


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
    scorer.add(samples, only=True)
    return scorer.scores()
