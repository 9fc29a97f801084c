"""The two tables every part of miragelab speaks: ``samples`` and ``scores``.

``samples`` has one row per (task, model, example): what the model was asked,
what it answered and the log-probabilities it gave. ``scores`` has one row per
(task, model, metric): the mean of a metric with its interval. Sources produce
samples, metrics turn samples into scores, analysis reads scores.

Both tables are validated once, at the edge, by :func:`read_table` (JSONL,
CSV, parquet) or :func:`validate_frame` (in-memory frames): any problem raises
:class:`~miragelab.errors.InputError` naming the file, the line (or row) and
the field. After validation the core trusts its input.

Conventions
-----------
* ``params`` is the total parameter count (a positive number); ``step`` the
  training step of a checkpoint when a ladder is over training time.
* A model is identified by ``(family, model, step)``; within a family two
  checkpoints may not share both ``params`` and ``step`` (one curve, one x).
* Log-probabilities are natural logs, so they must be <= 0.
* List columns (``target_token_logprobs``, ``choice_logprobs``, ``references``)
  are stored as Arrow lists in memory and parquet, as JSON arrays in JSONL and
  CSV cells.
* ``references`` lists the acceptable answers of a multi-reference task
  (TriviaQA aliases, BIG-bench target lists). ``target`` stays the one answer
  that log-probs are taken of; string metrics compare the prediction with the
  target and with every reference and keep the best.
* An empty string is a value for the optional text fields (an empty answer)
  in JSONL and parquet; in CSV an empty cell is missing.
* Missing optional values are null (``None``/``NaN``); NaN is never accepted
  as a *value* on input.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from miragelab.atomic import atomic_path
from miragelab.errors import InputError

Kind = Literal["str", "id", "int", "float", "float_list", "str_list", "bool"]

#: tolerance for log-probabilities that are positive by rounding only
LOGPROB_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Field:
    """One column of a table: its kind, whether it is required, and its bounds."""

    name: str
    kind: Kind
    required: bool
    doc: str
    positive: bool = False  # value > 0 (model sizes, FLOPs)
    nonnegative: bool = False  # value >= 0 (counts, steps)
    logprob: bool = False  # every value <= 0 (natural-log probabilities)
    min_len: int = 1  # for lists


@dataclass(frozen=True)
class TableSpec:
    """A table: its fields and the columns that identify one row."""

    name: str
    fields: tuple[Field, ...]
    key: tuple[str, ...]

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


_MODEL_FIELDS = (
    Field("task", "str", True, "task (or task:subtask) name"),
    Field("family", "str", True, "model family: one curve per family"),
    Field("model", "str", True, "model name"),
    Field("params", "float", True, "total parameters", positive=True),
    Field("compute_flops", "float", False, "training compute in FLOPs", positive=True),
    Field("tokens_trained", "float", False, "training tokens seen", positive=True),
    Field("step", "int", False, "training step of the checkpoint", nonnegative=True),
)

SAMPLES = TableSpec(
    name="samples",
    fields=_MODEL_FIELDS
    + (
        Field("example_id", "id", True, "example identifier, unique within (task, model, step)"),
        Field("prompt", "str", False, "the input shown to the model"),
        Field("target", "str", False, "the reference answer"),
        Field(
            "references",
            "str_list",
            False,
            "every acceptable answer of a multi-reference task; string metrics take the best "
            "match among target and these",
            min_len=1,
        ),
        Field("prediction", "str", False, "the model's (greedy) answer"),
        Field(
            "target_token_logprobs",
            "float_list",
            False,
            "teacher-forced log-prob of each target token",
            logprob=True,
        ),
        Field(
            "choice_logprobs",
            "float_list",
            False,
            "log-prob of each answer choice (multiple choice)",
            logprob=True,
            min_len=2,
        ),
        Field(
            "correct_choice",
            "int",
            False,
            "index of the correct choice (the first one, where several are correct)",
            nonnegative=True,
        ),
        Field(
            "choice_is_correct",
            "float_list",
            False,
            "1 for each correct choice, 0 for the others, where several choices are correct "
            "(lm-eval multi-target, HELM); correct_choice must be one of them",
            nonnegative=True,
            min_len=2,
        ),
        Field(
            "choice_lengths",
            "float_list",
            False,
            "length of each choice's text, for length-normalised multiple choice (acc_norm)",
            positive=True,
            min_len=2,
        ),
        Field(
            "continuation_logprob",
            "float",
            False,
            "log-prob of the whole target, where only the total is kept (lm-eval loglikelihood)",
            logprob=True,
        ),
        Field(
            "continuation_is_greedy",
            "bool",
            False,
            "whether greedy decoding gives the whole target (lm-eval's is_greedy)",
        ),
    ),
    key=("task", "family", "model", "step", "example_id"),
)

SCORES = TableSpec(
    name="scores",
    fields=_MODEL_FIELDS
    + (
        Field("metric", "str", True, "metric name"),
        Field("value", "float", True, "mean of the metric over examples"),
        Field("ci_low", "float", False, "lower end of the confidence interval"),
        Field("ci_high", "float", False, "upper end of the confidence interval"),
        Field("n", "int", False, "number of examples", nonnegative=True),
        Field("ci_method", "str", False, "how the interval was computed"),
        Field("stderr", "float", False, "standard error, when the source reports one"),
        Field("higher_is_better", "bool", False, "direction of the metric"),
    ),
    key=("task", "family", "model", "step", "metric"),
)

TABLES = {"samples": SAMPLES, "scores": SCORES}

LIST_TYPE = pa.list_(pa.float64())
STR_LIST_TYPE = pa.list_(pa.string())
TEXT_DTYPE = pd.StringDtype("pyarrow")
_NUMBER = (int, float)


class SourceLines:
    """Where each record came from: its line (or row) number and, for tables read
    from several files, its file. Kept in ``frame.attrs``.

    A wrapper with identity equality, so pandas can carry it through operations
    without comparing arrays element-wise.
    """

    __slots__ = ("file_of_row", "files", "numbers")

    def __init__(
        self,
        numbers: np.ndarray,
        files: list[str] | None = None,
        file_of_row: np.ndarray | None = None,
    ) -> None:
        self.numbers = numbers
        self.files = files
        self.file_of_row = file_of_row

    def __getitem__(self, row: int) -> int:
        return int(self.numbers[row])

    def __deepcopy__(self, memo: dict) -> SourceLines:
        # provenance never changes once read; pandas deep-copies attrs on every
        # operation, which would copy a million line numbers each time
        return self

    def __len__(self) -> int:
        return len(self.numbers)

    def path_of(self, row: int) -> str | None:
        """The file of ``row`` when the table spans several files, else None."""
        if self.files is None or self.file_of_row is None:
            return None
        return self.files[int(self.file_of_row[row])]


# --------------------------------------------------------------------------- values


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


class _Bad(Exception):
    """A field value is wrong; the caller adds file and line."""


def _check_number(value: Any, f: Field) -> float:
    if isinstance(value, bool) or not isinstance(value, _NUMBER):
        raise _Bad(f"expected a number, got {_describe(value)}")
    if not math.isfinite(value):
        raise _Bad(f"{value!r} is not allowed (must be a finite number)")
    if f.positive and value <= 0:
        raise _Bad(f"must be > 0, got {value!r}")
    if f.nonnegative and value < 0:
        raise _Bad(f"must be >= 0, got {value!r}")
    if f.logprob and value > LOGPROB_TOLERANCE:
        raise _Bad(f"a log-probability must be <= 0, got {value!r}")
    return value


def _as_list(value: Any, f: Field, items: str) -> list:
    """A list value of a list field, at least ``f.min_len`` long."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list):
        what = "numbers" if f.kind == "float_list" else "strings"
        raise _Bad(f"expected a list of {what}, got {_describe(value)}")
    if len(value) < f.min_len:
        raise _Bad(f"expected at least {f.min_len} {items}, got {len(value)}")
    return value


def _coerce(value: Any, f: Field, from_text: bool) -> Any:
    """Check one value against its field; return it in canonical form."""
    kind = f.kind
    if from_text and isinstance(value, str):
        value = _parse_text(value, f)
    if kind == "str":
        if not isinstance(value, str):
            raise _Bad(f"expected a string, got {_describe(value)}")
        return value
    if kind == "id":
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise _Bad(f"expected a string or integer id, got {_describe(value)}")
    if kind == "float":
        return float(_check_number(value, f))
    if kind == "int":
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad(f"expected an integer, got {_describe(value)}")
        return _check_number(value, f)
    if kind == "bool":
        if not isinstance(value, bool):
            raise _Bad(f"expected true or false, got {_describe(value)}")
        return value
    if kind == "float_list":
        out = []
        for i, item in enumerate(_as_list(value, f, "value(s)")):
            try:
                out.append(float(_check_number(item, f)))
            except _Bad as exc:
                raise _Bad(f"item {i}: {exc}") from None
        return out
    if kind == "str_list":
        value = _as_list(value, f, "string(s)")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise _Bad(f"item {i}: expected a string, got {_describe(item)}")
        return value
    raise AssertionError(kind)


def _parse_text(text: str, f: Field) -> Any:
    """Turn a CSV cell into the value its field expects."""
    if f.kind in ("str", "id"):
        return text
    if f.kind in ("float_list", "str_list"):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            what = "numbers" if f.kind == "float_list" else "strings"
            raise _Bad(f"expected a JSON list of {what}, got {text[:40]!r}") from None
    if f.kind == "bool":
        lowered = text.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise _Bad(f"expected true or false, got {text[:40]!r}")
    try:
        number = float(text)
    except ValueError:
        raise _Bad(f"expected a number, got {text[:40]!r}") from None
    if f.kind == "int" and number.is_integer():
        return int(number)
    return number


def _is_missing(value: Any, f: Field, from_text: bool) -> bool:
    """None is missing. An empty string is a value for optional text fields read from
    JSON or parquet (a model may answer nothing), and missing everywhere else: a CSV
    cannot tell an empty answer from an empty cell, and a required name may not be empty."""
    if value is None:
        return True
    if isinstance(value, str) and value == "":
        return from_text or f.required or f.kind not in ("str", "id")
    return False


# --------------------------------------------------------------------------- validation


def validate_records(
    records: Iterable[tuple[int, Any]],
    spec: TableSpec,
    *,
    path: str | os.PathLike[str] | None = None,
    unit: str = "line",
    from_text: bool = False,
) -> pd.DataFrame:
    """Validate ``(line_number, record)`` pairs and build the table.

    Raises :class:`InputError` at the first problem, naming path, line and field.
    """
    fields = spec.fields
    columns: dict[str, list[Any]] = {f.name: [] for f in fields}
    extras: dict[str, list[Any]] = {}
    lines: list[int] = []
    for count, (line, record) in enumerate(records):
        if not isinstance(record, dict):
            raise InputError(
                f"expected a JSON object, got {_describe(record)}", path=path, line=line, unit=unit
            )
        for f in fields:
            value = record.get(f.name)
            if _is_missing(value, f, from_text):
                if f.required:
                    raise InputError(
                        "missing required value", path=path, line=line, field=f.name, unit=unit
                    )
                columns[f.name].append(None)
                continue
            try:
                columns[f.name].append(_coerce(value, f, from_text))
            except _Bad as exc:
                raise InputError(str(exc), path=path, line=line, field=f.name, unit=unit) from None
        for name, value in record.items():
            if name in columns:
                continue
            if name not in extras:
                extras[name] = [None] * count
            extras[name].append(value)
        for values in extras.values():
            if len(values) < count + 1:
                values.append(None)
        lines.append(line)
    if not lines:
        raise InputError(f"empty {spec.name} table: no records", path=path)
    frame = _build_frame(spec, columns, extras)
    line_numbers = np.asarray(lines)
    _check_rows(frame, spec, line_numbers, path, unit)
    frame.attrs.update(
        path=None if path is None else str(path), lines=SourceLines(line_numbers), unit=unit
    )
    return frame


def _build_frame(
    spec: TableSpec, columns: dict[str, list[Any]], extras: dict[str, list[Any]]
) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for f in spec.fields:
        values = columns[f.name]
        if f.kind in ("str", "id"):
            # Arrow-backed strings: metrics read them without a per-string conversion
            data[f.name] = pd.array(values, dtype=TEXT_DTYPE)
        elif f.kind == "float":
            data[f.name] = np.array([np.nan if v is None else v for v in values], dtype=float)
        elif f.kind == "int":
            data[f.name] = pd.array(values, dtype="Int64")
        elif f.kind == "bool":
            data[f.name] = pd.array(values, dtype="boolean")
        else:
            arrow_type = STR_LIST_TYPE if f.kind == "str_list" else LIST_TYPE
            data[f.name] = pd.array(
                pa.array(values, type=arrow_type), dtype=pd.ArrowDtype(arrow_type)
            )
    for name, values in extras.items():
        data[name] = pd.array(values, dtype="object")
    return pd.DataFrame(data)


def _first_line(lines: np.ndarray, mask: np.ndarray) -> int:
    return int(lines[np.flatnonzero(mask)[0]])


def _same_model(models: pd.DataFrame, ident: list[str], bad: pd.Series) -> np.ndarray:
    """Rows of the checkpoint ``bad`` (null-safe: a missing step equals a missing step)."""
    wanted = tuple(bad[c] for c in ident)
    rows = zip(*(models[c].tolist() for c in ident), strict=True)
    return np.fromiter((row == wanted for row in rows), dtype=bool, count=len(models))


def _check_rows(
    frame: pd.DataFrame,
    spec: TableSpec,
    lines: np.ndarray,
    path: str | os.PathLike[str] | None,
    unit: str,
) -> None:
    """Checks that span rows: duplicates, one size per model, choice indices in range."""
    key = frame[list(spec.key)].astype(object).where(frame[list(spec.key)].notna(), None)
    dup = key.duplicated(keep="first").to_numpy()
    if dup.any():
        row = np.flatnonzero(dup)[0]
        what = ", ".join(
            f"{k}={key.iloc[row][k]!r}" for k in spec.key if key.iloc[row][k] is not None
        )
        raise InputError(
            f"duplicate row ({what}) repeats an earlier one",
            path=path,
            line=int(lines[row]),
            field=spec.key[-1],
            unit=unit,
        )

    ident = ["family", "model", "step"]
    models = frame[ident + ["params"]].astype(object).where(frame[ident + ["params"]].notna(), None)
    per_model = models.drop_duplicates()
    clash = per_model.duplicated(subset=ident, keep=False).to_numpy()
    if clash.any():
        bad = per_model[clash].iloc[1]
        mask = _same_model(models, ident, bad) & (models["params"].to_numpy() == bad["params"])
        raise InputError(
            f"model {bad['model']!r} has more than one params value "
            f"(another row gives a different size for the same checkpoint)",
            path=path,
            line=_first_line(lines, mask),
            field="params",
            unit=unit,
        )
    size_clash = per_model.duplicated(subset=["family", "params", "step"], keep="first").to_numpy()
    if size_clash.any():
        bad = per_model[size_clash].iloc[0]
        others = per_model[
            (per_model["family"] == bad["family"])
            & (per_model["params"] == bad["params"])
            & (per_model["model"] != bad["model"])
        ]["model"].tolist()
        mask = _same_model(models, ident, bad)
        raise InputError(
            f"models {others[0]!r} and {bad['model']!r} of family {bad['family']!r} both have "
            f"params={bad['params']:g}; sizes must be distinct within a family "
            f"(give them different families or steps)",
            path=path,
            line=_first_line(lines, mask),
            field="params",
            unit=unit,
        )

    if "correct_choice" in frame and "choice_logprobs" in frame:
        correct = frame["correct_choice"]
        has = correct.notna().to_numpy()
        if has.any():
            n_choices = frame["choice_logprobs"].list.len().to_numpy(dtype=float, na_value=0)
            idx = correct.to_numpy(dtype=float, na_value=-1)
            out_of_range = has & (idx >= n_choices)
            if out_of_range.any():
                row = np.flatnonzero(out_of_range)[0]
                raise InputError(
                    f"correct_choice={int(idx[row])} but the example has "
                    f"{int(n_choices[row])} choice log-prob(s)",
                    path=path,
                    line=int(lines[row]),
                    field="correct_choice",
                    unit=unit,
                )

    if "choice_is_correct" in frame:  # a samples table: its choice columns are all here
        bad = correct_choices_problem(
            arrow_column(frame["choice_is_correct"]),
            frame["choice_logprobs"].list.len().to_numpy(dtype=float, na_value=np.nan),
            frame["correct_choice"].to_numpy(dtype=float, na_value=np.nan),
        )
        if bad is not None:
            row, message = bad
            raise InputError(
                message, path=path, line=int(lines[row]), field="choice_is_correct", unit=unit
            )

    if "choice_lengths" in frame and "choice_logprobs" in frame:
        bad = choice_length_mismatch(
            frame["choice_lengths"].list.len().to_numpy(dtype=float, na_value=np.nan),
            frame["choice_logprobs"].list.len().to_numpy(dtype=float, na_value=np.nan),
        )
        if bad is not None:
            row, message = bad
            raise InputError(
                message, path=path, line=int(lines[row]), field="choice_lengths", unit=unit
            )

    if "ci_low" in frame and "ci_high" in frame:
        lo, hi = frame["ci_low"].to_numpy(), frame["ci_high"].to_numpy()
        inverted = np.isfinite(lo) & np.isfinite(hi) & (lo > hi)
        if inverted.any():
            raise InputError(
                "ci_low is above ci_high",
                path=path,
                line=_first_line(lines, inverted),
                field="ci_low",
                unit=unit,
            )


def choice_length_mismatch(lengths: np.ndarray, n_choices: np.ndarray) -> tuple[int, str] | None:
    """The first row whose count of choice lengths differs from its count of choice
    log-probs, and what to say; both arrays hold list lengths, NaN where null."""
    mismatch = ~np.isnan(lengths) & (lengths != n_choices)
    if not mismatch.any():
        return None
    row = int(np.flatnonzero(mismatch)[0])
    if np.isnan(n_choices[row]):
        return row, f"{int(lengths[row])} choice length(s) but no choice log-probs"
    return row, f"{int(lengths[row])} choice length(s) for {n_choices[row]:.0f} choice log-prob(s)"


def arrow_column(series: pd.Series) -> pa.Array:
    """An Arrow-backed column as one Arrow array, without a copy per row."""
    return pa.chunked_array(series.array._pa_array).combine_chunks()


def correct_choices_problem(
    flags: pa.Array, n_choices: np.ndarray, correct: np.ndarray
) -> tuple[int, str] | None:
    """The first row whose ``choice_is_correct`` breaks a rule, and what to say.

    ``flags`` is the list column; ``n_choices`` the count of choice log-probs
    and ``correct`` the ``correct_choice`` of each row (NaN where null). A row
    gives one flag per choice, each 0 or 1, at least one 1, and its
    ``correct_choice`` (when given) must be one of the correct choices.
    """
    lengths = pc.list_value_length(flags).to_numpy(zero_copy_only=False)
    lengths = np.asarray(lengths, dtype=float)  # NaN for null rows
    mismatch = ~np.isnan(lengths) & (lengths != n_choices)
    if mismatch.any():
        row = int(np.flatnonzero(mismatch)[0])
        if np.isnan(n_choices[row]):
            return row, f"{int(lengths[row])} correctness flag(s) but no choice log-probs"
        return row, (
            f"{int(lengths[row])} correctness flag(s) for {n_choices[row]:.0f} choice log-prob(s)"
        )
    values = np.asarray(pc.list_flatten(flags).to_numpy(zero_copy_only=False), dtype=float)
    rows = np.asarray(pc.list_parent_indices(flags).to_numpy(zero_copy_only=False))
    starts = np.concatenate([[0], np.cumsum(np.nan_to_num(lengths))[:-1]]).astype(np.int64)
    not_flag = (values != 0) & (values != 1)
    if not_flag.any():
        at = int(np.flatnonzero(not_flag)[0])
        row = int(rows[at])
        return row, f"item {at - starts[row]}: must be 0 or 1, got {float(values[at])!r}"
    any_correct = np.zeros(len(lengths), dtype=bool)
    any_correct[rows[values == 1]] = True
    none = ~np.isnan(lengths) & ~any_correct
    if none.any():
        return int(np.flatnonzero(none)[0]), "no choice is flagged correct (1)"
    has = ~np.isnan(lengths) & ~np.isnan(correct) & (correct < np.nan_to_num(lengths))
    flagged = np.zeros(len(lengths), dtype=bool)
    idx = np.flatnonzero(has)
    flagged[idx] = values[starts[idx] + correct[idx].astype(np.int64)] == 1
    wrong = has & ~flagged
    if wrong.any():
        row = int(np.flatnonzero(wrong)[0])
        return row, f"correct_choice={int(correct[row])} is not flagged correct here"
    return None


def validate_frame(
    frame: pd.DataFrame, spec: TableSpec, *, path: str | os.PathLike[str] | None = None
) -> pd.DataFrame:
    """Validate an in-memory frame (e.g. built by a source); rows are numbered from 1."""
    if frame.empty:
        raise InputError(f"empty {spec.name} table: no records", path=path)
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        raise InputError(
            f"missing required column(s): {', '.join(missing)}", path=path, field=missing[0]
        )
    cleaned = frame.astype(object).where(frame.notna(), None)
    records = cleaned.to_dict("records")
    return validate_records(enumerate(records, start=1), spec, path=path, unit="row")


# --------------------------------------------------------------------------- reading


def _format_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "jsonl")):
        if name.endswith(suffix):
            return fmt
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    raise InputError(
        "unknown file format (expected .jsonl, .json, .csv or .parquet, optionally .gz)", path=path
    )


def _open_binary(path: Path) -> io.BufferedIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


#: a JSONL line longer than this is refused (one record is far smaller), so a file
#: without newlines cannot make the reader hold gigabytes for one "line"
MAX_LINE_BYTES = 64 * 2**20


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, parsed_object)`` for each non-blank line of a JSONL file."""
    p = Path(path)
    try:
        handle = _open_binary(p)
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror or exc}", path=p) from None
    number = 0
    with handle:
        try:
            while raw := handle.readline(MAX_LINE_BYTES + 1):
                number += 1
                if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                    raise InputError(
                        f"line longer than {MAX_LINE_BYTES:,} bytes (JSON Lines holds one "
                        "record per line)",
                        path=p,
                        line=number,
                    )
                if not raw.strip():
                    continue
                try:
                    yield number, orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    yield number, _lenient_or_raise(raw, exc, p, number)
        except (OSError, EOFError) as exc:
            raise InputError(f"cannot read: {exc}", path=p, line=number + 1) from None


def _lenient_or_raise(raw: bytes, exc: Exception, path: Path, line: int) -> Any:
    """Python's json accepts NaN/Infinity: parse with it so validation names the field."""
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 text (byte {err.start})", path=path, line=line) from None
    except ValueError:
        reason = str(exc).split(":")[0]
        raise InputError(f"malformed JSON ({reason})", path=path, line=line) from None


def read_table(path: str | os.PathLike[str], spec: TableSpec | str) -> pd.DataFrame:
    """Read and validate a samples or scores table from JSONL, CSV or parquet."""
    spec = TABLES[spec] if isinstance(spec, str) else spec
    p = Path(path)
    if not p.exists():
        raise InputError("no such file", path=p)
    if p.is_dir():
        # a partitioned dataset (task=.../model=.../part-N.parquet): every part, validated
        from miragelab.units import is_dataset, read_dataset

        if not is_dataset(p):
            raise InputError("is a directory with no parquet parts, expected a table", path=p)
        return read_dataset(p, spec)
    fmt = _format_of(p)
    if fmt == "jsonl":
        return validate_records(iter_jsonl(p), spec, path=p)
    if fmt == "csv":
        return validate_records(_iter_csv(p), spec, path=p, from_text=True)
    try:
        table = pq.read_table(p)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"not a readable parquet file ({exc})", path=p) from None
    return validate_records(enumerate(table.to_pylist(), start=1), spec, path=p, unit="row")


def _bad_utf8_line(path: Path) -> tuple[int | None, int | None]:
    """Line and byte offset of the first byte that is not UTF-8 (error path only)."""
    try:
        with _open_binary(path) as handle:
            raw = handle.read()
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return raw.count(b"\n", 0, err.start) + 1, err.start
    except (OSError, EOFError):
        pass
    return None, None


def iter_csv_rows(path: str | os.PathLike[str]) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line, cells)`` for the header, then for every record of a CSV file.

    ``line`` is the physical line a record starts on (a quoted cell may span
    lines); blank lines are skipped. Every problem raises :class:`InputError`
    naming the line: a byte that is not UTF-8, broken quoting, a record with
    more or fewer cells than the header, a column named twice in the header.
    """
    p = Path(path)
    try:
        handle = (
            gzip.open(p, "rt", encoding="utf-8-sig", newline="")
            if p.name.lower().endswith(".gz")
            else open(p, encoding="utf-8-sig", newline="")
        )
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror or exc}", path=p) from None
    with handle:
        reader = csv.reader(handle, strict=True)
        header: list[str] | None = None
        end = 0
        try:
            for cells in reader:
                start, end = end + 1, reader.line_num
                if not cells:
                    continue
                if header is None:
                    header = cells
                    seen: set[str] = set()
                    for name in header:
                        if name in seen:
                            raise InputError(
                                f"column {name!r} appears twice in the header",
                                path=p,
                                line=start,
                                field=name,
                            )
                        seen.add(name)
                elif len(cells) != len(header):
                    raise InputError(
                        f"{len(cells)} cells, but the header has {len(header)} columns",
                        path=p,
                        line=start,
                    )
                yield start, cells
        except csv.Error as exc:
            raise InputError(f"malformed CSV ({exc})", path=p, line=end + 1) from None
        except UnicodeDecodeError:
            line, byte = _bad_utf8_line(p)
            raise InputError(f"not UTF-8 text (byte {byte})", path=p, line=line) from None
        except (OSError, EOFError) as exc:
            raise InputError(f"cannot read: {exc}", path=p, line=end + 1) from None
    if header is None:
        raise InputError("empty file: no header and no records", path=p)


def _iter_csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    rows = iter_csv_rows(path)
    _, header = next(rows)
    for line, cells in rows:
        yield line, dict(zip(header, cells, strict=True))


def read_samples(path: str | os.PathLike[str]) -> pd.DataFrame:
    return read_table(path, SAMPLES)


def read_scores(path: str | os.PathLike[str]) -> pd.DataFrame:
    return read_table(path, SCORES)


def read_many(paths: Iterable[str | os.PathLike[str]], spec: TableSpec | str) -> pd.DataFrame:
    """Read several tables of one kind and check the union (no row in two files).

    An error found only in the union (a duplicate across files, one model with
    two sizes) names the file and line of the offending row.
    """
    spec = TABLES[spec] if isinstance(spec, str) else spec
    frames = [read_table(p, spec) for p in paths]
    if not frames:
        raise InputError(f"no {spec.name} files given")
    if len(frames) == 1:
        return frames[0]
    combined = pd.concat(frames, ignore_index=True)
    frame_of_row = np.repeat(np.arange(len(frames)), [len(f) for f in frames])
    files: list[str | None] = []
    file_of_row = []
    for f in frames:  # a dataset folder is already several files
        lines = f.attrs["lines"]
        if lines.files is not None and lines.file_of_row is not None:
            file_of_row.append(np.asarray(lines.file_of_row) + len(files))
            files.extend(lines.files)
        else:
            file_of_row.append(np.full(len(f), len(files)))
            files.append(f.attrs["path"])
    origin = SourceLines(
        np.concatenate([f.attrs["lines"].numbers for f in frames]),
        files=files,
        file_of_row=np.concatenate(file_of_row),
    )
    try:
        _check_rows(combined, spec, np.arange(1, len(combined) + 1), None, "row")
    except InputError as exc:
        row = int(exc.line) - 1
        file_unit = frames[int(frame_of_row[row])].attrs.get("unit", "line")
        raise InputError(
            exc.message, path=origin.path_of(row), line=origin[row], field=exc.field, unit=file_unit
        ) from None
    combined.attrs.update(path=None, lines=origin, unit=frames[0].attrs.get("unit", "line"))
    return combined


# --------------------------------------------------------------------------- writing


def without_attrs(frame: pd.DataFrame) -> pd.DataFrame:
    """A shallow copy without ``attrs``: analysis code works on plain frames, because
    pandas deep-copies ``attrs`` (provenance, notes) on every operation."""
    plain = frame.copy(deep=False)
    plain.attrs = {}
    return plain


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """Arrow table of a validated frame (list columns stay Arrow lists)."""
    # provenance (path, line numbers) stays in memory, not in the file
    table = pa.Table.from_pandas(without_attrs(frame), preserve_index=False)
    return _readable_by_pandas(table)


def _readable_by_pandas(table: pa.Table) -> pa.Table:
    """Mark Arrow list columns as plain object columns in the pandas metadata.

    pandas records an ``ArrowDtype`` list column as ``list<item: double>[pyarrow]``,
    a dtype string ``pandas.read_parquet`` cannot parse back; as ``object`` the
    file opens anywhere (lists come back as arrays) and other dtypes are kept.
    """
    meta = table.schema.pandas_metadata
    if not meta:
        return table
    for column in meta.get("columns", []):
        numpy_type = str(column.get("numpy_type", ""))
        if numpy_type.endswith("[pyarrow]") and "list<" in numpy_type:
            column["numpy_type"] = "object"
    metadata = dict(table.schema.metadata or {})
    metadata[b"pandas"] = json.dumps(meta).encode()
    return table.replace_schema_metadata(metadata)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value).__name__)


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a table atomically; the format follows the file name."""
    p = Path(path)
    fmt = _format_of(p)
    gz = p.name.lower().endswith(".gz")
    writers: dict[str, Callable[[pd.DataFrame, Path, bool], None]] = {
        "parquet": lambda df, tmp, _gz: pq.write_table(to_arrow(df), tmp),
        "jsonl": _write_jsonl,
        "csv": _write_csv,
    }
    with atomic_path(p) as tmp:
        writers[fmt](frame, tmp, gz)
    return p


def _plain_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Records with nulls as None and lists as Python lists (JSON-ready)."""
    return to_arrow(frame).to_pylist()


def _write_jsonl(frame: pd.DataFrame, tmp: Path, gz: bool) -> None:
    opener: Callable[..., Any] = gzip.open if gz else open
    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
    with opener(tmp, "wb") as handle:
        for record in _plain_records(frame):
            handle.write(orjson.dumps(record, default=_json_default, option=option))


def _write_csv(frame: pd.DataFrame, tmp: Path, gz: bool) -> None:
    out = frame.copy()
    for name in out.columns:
        dtype = out[name].dtype
        if isinstance(dtype, pd.ArrowDtype) and pa.types.is_list(dtype.pyarrow_dtype):
            values = pa.array(out[name]).to_pylist()
            out[name] = [None if v is None else orjson.dumps(v).decode() for v in values]
    out.to_csv(tmp, index=False, compression="gzip" if gz else None)
