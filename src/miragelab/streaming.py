"""Score a samples table larger than memory: record batches in, sufficient statistics kept.

:func:`stream_score` gives the scores table of :func:`miragelab.scoring.score_samples`
without holding the samples: it reads parquet record batches (a partitioned
dataset folder part by part, or one big file row group by row group), checks
each batch as :func:`miragelab.tables.read_table` would (errors name the part
file and its row), computes the metrics on the batch (they are vectorised), and
keeps, per (task, family, model, step, metric):

* ``n`` and the sum of the values -- for a 0/1 metric the sum is the count of
  successes, an exact integer, so its Wilson interval is the in-memory one;
* the mean and the sum of squared deviations (merged batch by batch with Chan's
  update, which stays accurate where ``sum(x**2) - n mean**2`` would cancel),
  which give the t interval used above ``BOOTSTRAP_MAX_N`` examples;
* the values themselves while the group has at most ``BOOTSTRAP_MAX_N`` of them
  (a bounded amount: 20,000 floats per group and metric), so small groups get
  the same BCa bootstrap, with the same random stream, as in memory.

Checks across rows need state too: one size per model and distinct sizes per
family are checked as batches arrive; duplicate (task, family, model, step,
example) rows are found at the end from one 64-bit hash per row (8 bytes a
row, the only per-row state), and a hash match is confirmed on the rows
themselves before it is reported, so a hash collision can never fail a run.

Memory is one batch plus that state: a few hundred MB for 10**7 rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy import stats as sps

from miragelab import scoring
from miragelab.errors import InputError
from miragelab.metrics import Metric, MetricOptions, compute_metrics
from miragelab.scoring import (
    _MODEL_INFO,
    _MODEL_KEY,
    NO_METRIC_APPLIES,
    _resolve,
    assemble_scores,
    mixed_task_error,
)
from miragelab.stats import bca_mean_interval, wilson_interval
from miragelab.tables import (
    LOGPROB_TOLERANCE,
    SAMPLES,
    Field,
    choice_length_mismatch,
    correct_choices_problem,
    read_table,
    to_arrow,
)
from miragelab.tables import _Bad as BadValue
from miragelab.tables import _coerce as coerce_value
from miragelab.tables import _format_of as format_of
from miragelab.units import add_hive_columns, part_files

#: rows per record batch: about 10-20 MB of a typical samples table
DEFAULT_BATCH_ROWS = 65_536
#: `mirage score` streams a parquet file from this size on (and any dataset folder)
STREAM_MIN_BYTES = 256 * 2**20

_TEXT_COLUMNS = ("prediction", "target")
_LIST_TYPE = pa.list_(pa.float64())
_CANONICAL = {
    "str": pa.large_string(),
    "id": pa.large_string(),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "float_list": _LIST_TYPE,
    "str_list": pa.list_(pa.string()),
}


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class _File:
    """One file of the input and, for a part of a dataset, the dataset's root."""

    path: Path
    root: Path | None


def input_files(paths: Sequence[str | os.PathLike[str]]) -> list[_File]:
    """The files behind ``paths``, in the order :func:`miragelab.tables.read_many` reads them."""
    files = []
    for item in paths:
        p = Path(item)
        if not p.exists():
            raise InputError("no such file", path=p)
        if p.is_dir():
            parts = part_files(p)
            if not parts:
                raise InputError("is a directory with no parquet parts, expected a table", path=p)
            files.extend(_File(part, p) for part in parts)
        else:
            files.append(_File(p, None))
    if not files:
        raise InputError("no samples files given")
    return files


def should_stream(paths: Sequence[str | os.PathLike[str]]) -> bool:
    """Whether `mirage score` streams by default: a dataset folder or a large parquet file."""
    for item in paths:
        p = Path(item)
        if p.is_dir():
            return True
        if p.is_file() and format_of(p) == "parquet" and p.stat().st_size >= STREAM_MIN_BYTES:
            return True
    return False


def _batches(source: _File, batch_rows: int) -> Iterator[pa.Table]:
    """Record batches of one file, with the columns the samples table knows.

    Parquet is read batch by batch; a JSONL or CSV file (small by nature) is read
    and validated whole by :func:`read_table`, then cut into batches.
    """
    path = source.path
    if format_of(path) != "parquet":
        table = to_arrow(read_table(path, SAMPLES))
        yield from (pa.Table.from_batches([b]) for b in table.to_batches(batch_rows))
        return
    try:
        handle = pq.ParquetFile(path)
        names = set(handle.schema_arrow.names)
        columns = [c for c in SAMPLES.columns if c in names]
        for batch in handle.iter_batches(batch_size=batch_rows, columns=columns):
            table = pa.Table.from_batches([batch])
            if source.root is not None:
                table = add_hive_columns(table, path, source.root, SAMPLES.columns, SAMPLES)
            yield table
    except (pa.ArrowException, OSError) as exc:
        reason = " ".join(str(exc).split())
        raise InputError(f"not a readable parquet file ({reason})", path=path) from None


# --------------------------------------------------------------------------- validation


def _row_error(message: str, path: Path, row: int, field: str | None) -> InputError:
    """A bad value at ``row`` (counted from 0 across the file's batches) of ``path``."""
    return InputError(message, path=path, line=row + 1, field=field, unit="row")


def _numpy(arr: pa.Array, fill: Any = np.nan) -> np.ndarray:
    return arr.fill_null(fill).to_numpy(zero_copy_only=False)


def _list_lengths(table: pa.Table, name: str) -> np.ndarray:
    """Each row's count of items in a list column, NaN where the list is null."""
    lengths = pc.list_value_length(table.column(name).combine_chunks())
    return _numpy(lengths.cast(pa.float64()))


def _is_number_type(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _is_string_type(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _check_field(arr: pa.Array, f: Field) -> tuple[pa.Array, np.ndarray]:
    """The column in its canonical type, and the mask of rows whose value is bad.

    The mask marks exactly the rows :func:`miragelab.tables.validate_records`
    refuses for this field (a missing required value or a bad value), so the
    first bad row's message can be taken from the per-value check itself.
    """
    n = len(arr)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    t = arr.type
    if pa.types.is_null(t):
        return pa.nulls(n, _CANONICAL[f.kind]), np.full(n, f.required)
    null = _numpy(arr.is_null(), False).astype(bool)
    everything_bad = (pa.nulls(n, _CANONICAL[f.kind]), ~null | (null & f.required))
    if f.kind in ("str", "id"):
        if _is_string_type(t):
            out = arr.cast(pa.large_string())
            empty = _numpy(pc.equal(out, ""), False).astype(bool)
            return out, (null | empty) & f.required
        if f.kind == "id" and pa.types.is_integer(t):
            return arr.cast(pa.large_string()), null & f.required
        return everything_bad
    if f.kind == "float":
        if not _is_number_type(t):
            return everything_bad
        out = arr.cast(pa.float64())
        x = _numpy(out)
        with np.errstate(invalid="ignore"):
            bad = ~null & ~np.isfinite(x)
            if f.positive:
                bad |= ~null & (x <= 0)
            if f.nonnegative:
                bad |= ~null & (x < 0)
            if f.logprob:
                bad |= ~null & (x > LOGPROB_TOLERANCE)
        return out, bad | (null & f.required)
    if f.kind == "int":
        if pa.types.is_integer(t):
            x = _numpy(arr.cast(pa.float64()))
            bad = np.zeros(n, dtype=bool)
        elif pa.types.is_floating(t):
            x = _numpy(arr.cast(pa.float64()))
            with np.errstate(invalid="ignore"):
                bad = ~null & ~(np.isfinite(x) & (x == np.floor(x)))
        else:
            return everything_bad
        if f.nonnegative:
            with np.errstate(invalid="ignore"):
                bad |= ~null & (x < 0)
        if bad.any():
            return pa.nulls(n, pa.int64()), bad | (null & f.required)
        return arr.cast(pa.int64(), safe=False), null & f.required
    if f.kind == "bool":
        if pa.types.is_boolean(t):
            return arr, null & f.required
        return everything_bad
    is_list = pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    if f.kind == "str_list":
        if not (is_list and _is_string_type(t.value_type)):
            return everything_bad
        out = arr.cast(_CANONICAL["str_list"])
        lengths = _numpy(pc.list_value_length(out), 0)
        bad = ~null & (lengths < f.min_len)
        values = pc.list_flatten(out)
        if values.null_count:
            parents = _numpy(pc.list_parent_indices(out), 0).astype(np.int64)
            bad[parents[_numpy(values.is_null(), False).astype(bool)]] = True
        return out, bad | (null & f.required)
    # float_list
    if not (is_list and _is_number_type(t.value_type)):
        return everything_bad
    out = arr.cast(_LIST_TYPE)
    lengths = _numpy(pc.list_value_length(out), 0)
    bad = ~null & (lengths < f.min_len)
    values = pc.list_flatten(out)
    if len(values):
        v = _numpy(values)
        with np.errstate(invalid="ignore"):
            item_bad = ~np.isfinite(v)  # a null item is NaN here, and refused as well
            if f.logprob:
                item_bad |= v > LOGPROB_TOLERANCE
            if f.positive:
                item_bad |= v <= 0
        if item_bad.any():
            parents = _numpy(pc.list_parent_indices(out), 0).astype(np.int64)
            bad[parents[item_bad]] = True
    return out, bad | (null & f.required)


def _message(value: Any, f: Field) -> str:
    """Why the per-row validator refuses ``value`` for field ``f``."""
    if value is None or (isinstance(value, str) and value == "" and f.required):
        return "missing required value"
    try:
        coerce_value(value, f, False)
    except BadValue as exc:
        return str(exc)
    return "invalid value"


def _validate(table: pa.Table, path: Path, first_row: int) -> pa.Table:
    """A batch with every samples column in its canonical Arrow type, or InputError.

    Rows are numbered from 1 within their file, as :func:`read_table` numbers
    parquet rows; the first bad row (in row order, then field order) is reported.
    """
    n = table.num_rows
    columns: dict[str, pa.Array] = {}
    worst: tuple[int, int, Any] | None = None
    for order, f in enumerate(SAMPLES.fields):
        if f.name in table.column_names:
            original = table.column(f.name).combine_chunks()
        else:
            original = pa.nulls(n)
        canonical, bad = _check_field(original, f)
        columns[f.name] = canonical
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            if worst is None or (row, order) < worst[:2]:
                worst = (row, order, original)
    if worst is not None:
        row, order, original = worst
        f = SAMPLES.fields[order]
        raise _row_error(
            _message(original[row].as_py(), f),
            path,
            first_row + row,
            f.name,
        )
    return pa.table(columns)


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
            if self.n[g] > scoring.BOOTSTRAP_MAX_N:
                self.kept[g] = None  # the t interval needs only the moments
            else:
                kept.append(values[order[bounds[j] : bounds[j + 1]]])


@dataclass
class _Presence:
    """Which tasks have a metric's columns on some rows, and where one lacks them."""

    any_value: bool = False
    present_tasks: set[str] = field(default_factory=set)
    #: task -> (file, row, column) of its first sample without the columns
    first_absent: dict[str, tuple[Path, int, str]] = field(default_factory=dict)


class StreamScorer:
    """Accumulates batches of samples; :meth:`scores` gives the scores table."""

    def __init__(
        self,
        metrics: Sequence[str | Metric],
        options: MetricOptions | None = None,
        *,
        confidence: float = 0.95,
        n_resamples: int = 1000,
        seed: int = 0,
        skip_absent: bool = False,
    ) -> None:
        self.metrics = _resolve(metrics)
        # `--metrics auto`: a metric no sample has the columns for is dropped, not an error
        self.skip_absent = skip_absent
        if not self.metrics:
            raise InputError("no metrics given", field="metrics")
        self.options = options or MetricOptions()
        self.confidence, self.n_resamples, self.seed = confidence, n_resamples, seed
        self.moments = {m.name: _Moments(m.binary) for m in self.metrics}
        self.presence = {m.name: _Presence() for m in self.metrics}
        self.columns_seen: set[str] = set()
        self.group_of: dict[tuple, int] = {}
        self.keys: list[tuple] = []
        self.info = np.zeros((0, len(_MODEL_INFO)))
        self.size_of: dict[tuple, tuple[float, Path, int]] = {}
        self.model_of_size: dict[tuple, str] = {}
        self.hashes: list[np.ndarray] = []
        self.spans: list[tuple[Path, Path | None, int, int]] = []  # file, root, first row, rows
        self.rows = 0

    # ------------------------------------------------------------------ feeding

    def add_file(self, source: _File, batch_rows: int = DEFAULT_BATCH_ROWS) -> None:
        first = 0
        for raw in _batches(source, batch_rows):
            self.add_batch(raw, source, first)
            first += raw.num_rows
        self.spans.append((source.path, source.root, self.rows - first, first))

    def add_batch(self, raw: pa.Table, source: _File, first_row: int) -> None:
        if raw.num_rows == 0:
            return
        path = source.path
        table = _validate(raw, path, first_row)
        ids = self._group_ids(table)
        self._check_models(table, ids, path, first_row)
        self._check_choices(table, path, first_row)
        self._check_choice_lengths(table, path, first_row)
        self._check_correct_choices(table, path, first_row)
        self._keep_info(table, ids)
        self._hash_rows(table, ids)
        frame, notna = self._frame(table)
        values = compute_metrics(frame, self.metrics, self.options)
        tasks = table.column("task").to_numpy(zero_copy_only=False)
        for metric in self.metrics:
            present = np.logical_and.reduce([notna[c] for c in metric.needs])
            self._note_presence(metric, notna, present, tasks, path, first_row)
            if not present.any():
                continue
            vals = values[metric.name].to_numpy()[present]
            finite = np.isfinite(vals)
            if not finite.all():
                row = int(np.flatnonzero(present)[np.flatnonzero(~finite)[0]])
                raise _row_error(
                    f"metric {metric.name!r} is not finite for this sample",
                    path,
                    first_row + row,
                    metric.name,
                )
            self.moments[metric.name].add(ids[present], vals, len(self.keys))
        self.rows += raw.num_rows

    def _frame(self, table: pa.Table) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        """The columns the metrics read, as Arrow-backed pandas columns (no copy per
        string), and where each has a value."""
        needed = {c for m in self.metrics for c in m.needs}
        data, notna = {}, {}
        for name in sorted(needed):
            column = table.column(name)
            if column.null_count < len(column):
                self.columns_seen.add(name)
            data[name] = pd.arrays.ArrowExtensionArray(column)
            notna[name] = _numpy(column.is_valid(), False).astype(bool)
        if "target" in needed and "references" in table.column_names:
            # other acceptable answers: read by the string metrics, needed by none
            data["references"] = pd.arrays.ArrowExtensionArray(table.column("references"))
        if "correct_choice" in needed:
            # other correct choices: read by the choice metrics, needed by none
            flags = table.column("choice_is_correct")
            data["choice_is_correct"] = pd.arrays.ArrowExtensionArray(flags)
        return pd.DataFrame(data), notna

    def _group_ids(self, table: pa.Table) -> np.ndarray:
        """Global id of each row's (task, family, model, step), in first-seen order."""
        codes = np.zeros(table.num_rows, dtype=np.int64)
        dictionaries = []
        for name in _MODEL_KEY:
            encoded = pc.dictionary_encode(table.column(name), null_encoding="encode")
            encoded = encoded.combine_chunks() if isinstance(encoded, pa.ChunkedArray) else encoded
            indices = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
            size = len(encoded.dictionary)
            codes = codes * max(size, 1) + indices
            dictionaries.append((encoded.dictionary.to_pylist(), indices))
        _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        local_to_global = np.empty(first.size, dtype=np.int64)
        for local in np.argsort(first, kind="stable").tolist():
            row = int(first[local])
            key = tuple(values[int(idx[row])] for values, idx in dictionaries)
            gid = self.group_of.get(key)
            if gid is None:
                gid = self.group_of[key] = len(self.keys)
                self.keys.append(key)
            local_to_global[local] = gid
        ids = local_to_global[inverse.ravel()]
        if len(self.keys) > self.info.shape[0]:
            grown = np.full((len(self.keys), len(_MODEL_INFO)), np.nan)
            grown[: self.info.shape[0]] = self.info
            self.info = grown
        return ids

    def _check_models(self, table: pa.Table, ids: np.ndarray, path: Path, first_row: int) -> None:
        """One size per checkpoint, and distinct sizes within a family (as ``read_table``)."""
        params = _numpy(table.column("params").combine_chunks())
        pairs = pd.DataFrame({"g": ids, "p": params}).drop_duplicates()
        rows, groups, sizes = pairs.index.tolist(), pairs["g"].tolist(), pairs["p"].tolist()
        for row, g, p in zip(rows, groups, sizes, strict=True):
            _, family, model, step = self.keys[g]
            ident = (family, model, step)
            known = self.size_of.get(ident)
            if known is None:
                self.size_of[ident] = (p, path, first_row + row + 1)
                other = self.model_of_size.setdefault((family, p, step), model)
                if other != model:
                    raise _row_error(
                        f"models {other!r} and {model!r} of family {family!r} both have "
                        f"params={p:g}; sizes must be distinct within a family "
                        f"(give them different families or steps)",
                        path,
                        first_row + row,
                        "params",
                    )
            elif known[0] != p:
                raise _row_error(
                    f"model {model!r} has more than one params value "
                    f"(another row gives a different size for the same checkpoint)",
                    path,
                    first_row + row,
                    "params",
                )

    @staticmethod
    def _check_choices(table: pa.Table, path: Path, first_row: int) -> None:
        correct = _numpy(table.column("correct_choice").combine_chunks().cast(pa.float64()))
        has = ~np.isnan(correct)
        if not has.any():
            return
        n_choices = np.nan_to_num(_list_lengths(table, "choice_logprobs"))
        out_of_range = has & (correct >= n_choices)
        if out_of_range.any():
            row = int(np.flatnonzero(out_of_range)[0])
            raise _row_error(
                f"correct_choice={int(correct[row])} but the example has "
                f"{int(n_choices[row])} choice log-prob(s)",
                path,
                first_row + row,
                "correct_choice",
            )

    @staticmethod
    def _check_choice_lengths(table: pa.Table, path: Path, first_row: int) -> None:
        """One length per choice log-prob, as the in-memory tables check."""
        counts = _list_lengths(table, "choice_lengths"), _list_lengths(table, "choice_logprobs")
        bad = choice_length_mismatch(*counts)
        if bad is not None:
            row, message = bad
            raise _row_error(message, path, first_row + row, "choice_lengths")

    @staticmethod
    def _check_correct_choices(table: pa.Table, path: Path, first_row: int) -> None:
        """The rules of several correct choices, as the in-memory tables check them."""
        flags = table.column("choice_is_correct").combine_chunks()
        if flags.null_count == len(flags):
            return
        correct = table.column("correct_choice").combine_chunks().cast(pa.float64())
        n_choices = _list_lengths(table, "choice_logprobs")
        bad = correct_choices_problem(flags, n_choices, _numpy(correct))
        if bad is not None:
            row, message = bad
            raise _row_error(message, path, first_row + row, "choice_is_correct")

    def _keep_info(self, table: pa.Table, ids: np.ndarray) -> None:
        """The first non-null params / compute / tokens of each group (``groupby.first``)."""
        for j, name in enumerate(_MODEL_INFO):
            values = _numpy(table.column(name).combine_chunks())
            have = ~np.isnan(values)
            groups, first = np.unique(ids[have], return_index=True)
            unset = np.isnan(self.info[groups, j])
            self.info[groups[unset], j] = values[have][first[unset]]

    def _hash_rows(self, table: pa.Table, ids: np.ndarray) -> None:
        examples = table.column("example_id").to_numpy(zero_copy_only=False)
        h = pd.util.hash_array(examples.astype(object), categorize=False)
        h = h * np.uint64(0x9E3779B97F4A7C15) + pd.util.hash_array(ids.astype(np.uint64))
        self.hashes.append(h)

    def _note_presence(
        self,
        metric: Metric,
        notna: dict[str, np.ndarray],
        present: np.ndarray,
        tasks: np.ndarray,
        path: Path,
        first_row: int,
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
            state.first_absent[task] = (path, first_row + row + 1, lacking)

    # ------------------------------------------------------------------ results

    def _check_end(self) -> None:
        if self.rows == 0:
            raise InputError("empty samples table: no records")
        if self.skip_absent:
            self.metrics = [m for m in self.metrics if self.presence[m.name].any_value]
            if not self.metrics:
                raise InputError(NO_METRIC_APPLIES, field="metrics")
        for metric in self.metrics:
            state = self.presence[metric.name]
            if not state.any_value:
                first = next((c for c in metric.needs if c not in self.columns_seen), None)
                first = first or metric.needs[0]
                raise InputError(
                    f"metric {metric.name!r} needs column(s) {', '.join(metric.needs)}; "
                    f"no sample has a value for {first!r}",
                    field=first,
                )
            mixed = sorted(t for t in state.first_absent if t in state.present_tasks)
            if mixed:
                task = mixed[0]  # as in memory: the first mixed task by name
                path, line, lacking = state.first_absent[task]
                raise mixed_task_error(task, metric.name, lacking, path, line, "row")
        self._check_duplicates()

    def _check_duplicates(self) -> None:
        """The first row repeating an earlier (task, family, model, step, example_id)."""
        if not self.hashes:
            return
        hashes = np.concatenate(self.hashes)
        order = np.argsort(hashes, kind="stable")
        ranked = hashes[order]
        repeat = np.flatnonzero(ranked[1:] == ranked[:-1]) + 1
        if repeat.size == 0:
            return
        # a later row of a run of equal hashes; its run starts at the earliest such row
        starts = np.searchsorted(ranked, ranked[repeat], side="left")
        candidates = sorted(
            zip(order[repeat].tolist(), starts.tolist(), repeat.tolist(), strict=True)
        )
        for row, start, end in candidates:
            key = self._row_key(row)
            for earlier in order[start:end].tolist():
                if self._row_key(earlier) == key:
                    path, line = self._locate(row)
                    what = ", ".join(
                        f"{k}={v!r}" for k, v in zip(SAMPLES.key, key, strict=True) if v is not None
                    )
                    raise InputError(
                        f"duplicate row ({what}) repeats an earlier one",
                        path=path,
                        line=line,
                        field=SAMPLES.key[-1],
                        unit="row",
                    )

    def _locate(self, row: int) -> tuple[Path, int]:
        for path, _, start, count in self.spans:
            if start <= row < start + count:
                return path, row - start + 1
        raise AssertionError(row)

    def _row_key(self, row: int) -> tuple:
        """(task, family, model, step, example_id) of a global row, read back from its file."""
        for path, root, start, count in self.spans:
            if start <= row < start + count:
                local = row - start
                source = _File(path, root)
                seen = 0
                for raw in _batches(source, DEFAULT_BATCH_ROWS):
                    if local < seen + raw.num_rows:
                        table = _validate(raw, path, seen)
                        return tuple(table.column(c)[local - seen].as_py() for c in SAMPLES.key)
                    seen += raw.num_rows
        raise AssertionError(row)

    def scores(self) -> pd.DataFrame:
        """The scores table: the rows and columns :func:`score_samples` gives."""
        self._check_end()
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
            frame = pd.DataFrame([self.keys[g] for g in present], columns=_MODEL_KEY).assign(
                metric=metric.name,
                value=means,
                ci_low=low,
                ci_high=high,
                n=n,
                ci_method=method,
                higher_is_better=metric.higher_is_better,
            )
            info = pd.DataFrame(self.info[present], columns=_MODEL_INFO)
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
            if kept is not None and count <= scoring.BOOTSTRAP_MAX_N:
                values = np.concatenate(kept)
                # summed in row order, as the in-memory bincount sums a group
                means[j] = np.bincount(np.zeros(count, dtype=np.int64), weights=values)[0] / count
                low[j], high[j] = bca_mean_interval(values, self.confidence, self.n_resamples, rng)
                method[j] = "bca"
            else:
                means[j] = acc.total[g] / count
                sem = np.sqrt(acc.m2[g] / (count - 1)) / np.sqrt(count)
                half = sps.t.ppf(0.5 + self.confidence / 2, count - 1) * sem
                centre = acc.mean[g]
                low[j], high[j] = centre - half, centre + half
                method[j] = "t"
        return means, low, high, method


def stream_score(
    paths: Sequence[str | os.PathLike[str]],
    metrics: Sequence[str | Metric],
    options: MetricOptions | None = None,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    skip_absent: bool = False,
) -> pd.DataFrame:
    """Score samples files and dataset folders batch by batch, with bounded memory.

    Gives the table :func:`miragelab.scoring.score_samples` gives on the same
    samples read whole: equal 0/1 means and Wilson intervals, equal BCa
    intervals (same values, same random stream), and means and t intervals
    equal up to the rounding of a different summation order.
    """
    if batch_rows < 1:
        raise InputError(f"must be >= 1, got {batch_rows}", field="batch-rows")
    scorer = StreamScorer(
        metrics,
        options,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
        skip_absent=skip_absent,
    )
    for source in input_files(paths):
        scorer.add_file(source, batch_rows)
    return scorer.scores()
