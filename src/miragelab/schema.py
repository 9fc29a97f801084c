"""The schema of the two tables and every rule their rows obey, in one place.

``samples`` has one row per (task, model, example): what the model was asked,
what it answered and the log-probabilities it gave. ``scores`` has one row per
(task, model, metric): the mean of a metric with its interval. The data model
and its conventions are described in ``docs/sources.md``.

Every reader, writer, source and the streaming scorer check rows here:

* :func:`coerce_value` - one value against its field (types, ranges), for
  records read from JSON, CSV cells and Python objects;
* :func:`check_column` / :func:`check_batch` - the same rules on whole Arrow
  columns (parquet batches), vectorised; a bad row's message comes from
  :func:`coerce_value`, so both say the same;
* :func:`row_problem` - rules between the columns of one row (a correct choice
  among the choices, one length and one flag per choice, ``ci_low <= ci_high``);
* :class:`ModelSizes` - one size per checkpoint and distinct sizes within a
  family, for any source that knows models before it has rows;
* :class:`RowChecker` - the rules across rows (a key seen twice, the sizes
  above), stateful, batch by batch: an in-memory table is one batch.

Any problem raises :class:`~miragelab.errors.InputError` naming the file, the
line (or row) and the field.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from miragelab.errors import InputError
from miragelab.metric_facts import fact_of

Kind = Literal["str", "id", "int", "float", "float_list", "str_list", "bool"]

#: tolerance for log-probabilities that are positive by rounding only
LOGPROB_TOLERANCE = 1e-6

#: the range rules of numeric fields: which flag, the values it refuses (``value <= 0``
#: is ``("<=", 0.0)``), and what to say
_RANGES: tuple[tuple[str, str, float, str], ...] = (
    ("positive", "<=", 0.0, "must be > 0, got {!r}"),
    ("nonnegative", "<", 0.0, "must be >= 0, got {!r}"),
    ("logprob", ">", LOGPROB_TOLERANCE, "a log-probability must be <= 0, got {!r}"),
    ("count", "<", 1.0, "must be >= 1 (a number of parameters), got {!r}"),
)
_REFUSES: dict[str, Callable[[Any, float], Any]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">": operator.gt,
}


def _rules_of(f: Field) -> tuple[tuple[Callable[[Any, float], Any], float, str], ...]:
    return tuple(
        (_REFUSES[op], bound, message) for flag, op, bound, message in _RANGES if getattr(f, flag)
    )


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
    count: bool = False  # value >= 1 (parameter counts)
    name_like: bool = False  # a name: not blank (not only spaces)
    min_len: int = 1  # for lists
    #: the range rules that apply (from ``_RANGES``), set once when the field is made
    rules: tuple = dataclasses.field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", _rules_of(self))


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
    Field("task", "str", True, "task (or task:subtask) name", name_like=True),
    Field("family", "str", True, "model family: one curve per family", name_like=True),
    Field("model", "str", True, "model name", name_like=True),
    Field("params", "float", True, "total parameters", positive=True, count=True),
    Field("compute_flops", "float", False, "training compute in FLOPs", positive=True),
    Field("tokens_trained", "float", False, "training tokens seen", positive=True),
    Field("step", "int", False, "training step of the checkpoint", nonnegative=True),
    Field(
        "replicate_of",
        "str",
        False,
        "the model this one repeats with another seed (same params and training tokens)",
        name_like=True,
    ),
)

SAMPLES = TableSpec(
    name="samples",
    fields=_MODEL_FIELDS
    + (
        Field(
            "example_id", "id", True, "example identifier, unique within (task, model, step, epoch)"
        ),
        Field(
            "epoch",
            "int",
            False,
            "epoch of a sample asked several times (Inspect's --epochs); scores average each "
            "example over its epochs before the mean over examples",
            positive=True,
        ),
        Field(
            "cluster",
            "str",
            False,
            "group of related examples (passage, subject, template): paired comparisons "
            "cluster their standard errors by it",
        ),
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
            "prediction_token_logprobs",
            "float_list",
            False,
            "log-prob of each token the model generated (its own answer, not the target)",
            logprob=True,
        ),
        Field(
            "choices",
            "str_list",
            False,
            "text of each answer choice (multiple choice)",
            min_len=2,
        ),
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
        Field(
            "dtype",
            "str",
            False,
            "floating-point type of the weights that gave the row (mirage eval --model hf)",
        ),
    ),
    key=("task", "family", "model", "step", "example_id", "epoch"),
)

SCORES = TableSpec(
    name="scores",
    fields=_MODEL_FIELDS
    + (
        Field("metric", "str", True, "metric name", name_like=True),
        Field("value", "float", True, "mean of the metric over examples"),
        Field("ci_low", "float", False, "lower end of the confidence interval"),
        Field("ci_high", "float", False, "upper end of the confidence interval"),
        Field("n", "int", False, "number of examples behind the mean", positive=True),
        Field("ci_method", "str", False, "how the interval was computed"),
        Field(
            "stderr",
            "float",
            False,
            "standard error, when the source reports one",
            nonnegative=True,
        ),
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

    def __getitem__(self, row: int) -> int | None:
        # a table built from documents (JSON results) has files but no line numbers
        return None if self.numbers is None else int(self.numbers[row])

    def __deepcopy__(self, memo: dict) -> SourceLines:
        # provenance never changes once read; pandas deep-copies attrs on every
        # operation, which would copy a million line numbers each time
        return self

    def __len__(self) -> int:
        return len(self.numbers if self.numbers is not None else self.file_of_row)

    def path_of(self, row: int) -> str | None:
        """The file of ``row`` when the table spans several files, else None."""
        if self.files is None or self.file_of_row is None:
            return None
        return self.files[int(self.file_of_row[row])]


#: the Arrow type of each kind of field, as batches and parquet files hold it
ARROW_TYPES: dict[str, pa.DataType] = {
    "str": pa.large_string(),
    "id": pa.large_string(),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "float_list": LIST_TYPE,
    "str_list": pa.list_(pa.large_string()),
}


def arrow_schema(spec: TableSpec) -> pa.Schema:
    """The Arrow schema of a table in canonical types (what ingest writes to parquet)."""
    return pa.schema([(f.name, ARROW_TYPES[f.kind]) for f in spec.fields])


@dataclass(frozen=True)
class Where:
    """Where the rows of one batch came from, to name them in an error.

    ``lines`` gives each row's line (or row) number in its file; a
    :class:`SourceLines` with files gives each row's file too, else ``path``.
    """

    path: str | os.PathLike[str] | None
    lines: SourceLines | np.ndarray
    unit: str = "line"
    #: per-row units where the rows come from files of different kinds (lines, rows)
    row_units: tuple[list[str], np.ndarray] | None = None

    def unit_of(self, row: int) -> str:
        if self.row_units is None:
            return self.unit
        names, index = self.row_units
        return names[int(index[row])]

    def locate(self, row: int) -> tuple[str | os.PathLike[str] | None, int | None]:
        if isinstance(self.lines, SourceLines):
            return self.lines.path_of(row) or self.path, self.lines[row]
        return self.path, int(self.lines[row])

    def error(self, message: str, row: int, field: str | None) -> InputError:
        path, line = self.locate(row)
        return InputError(message, path=path, line=line, field=field, unit=self.unit_of(row))

    @staticmethod
    def rows(path: str | os.PathLike[str] | None, first_row: int, n: int) -> Where:
        """Rows ``first_row + 1 .. first_row + n`` of a file (parquet rows count from 1)."""
        return Where(path, np.arange(first_row + 1, first_row + n + 1), "row")


# --------------------------------------------------------------------------- values


def describe(value: Any) -> str:
    """A value in an error message: its type and a short repr."""
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


#: a name that shows nothing (white space, zero-width and other format characters), and
#: control characters (a terminal would run an escape sequence in a printed name): one
#: list of code points, as Python's re (one value) and RE2 (an Arrow column) spell them
_INVISIBLE_POINTS = ((0xAD, 0xAD), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E),
                     (0x2060, 0x2064), (0xFEFF, 0xFEFF))  # fmt: skip
_CONTROL_POINTS = ((0x00, 0x1F), (0x7F, 0x9F))


def _char_class(points: tuple[tuple[int, int], ...], spell: str) -> str:
    return "".join(
        spell.format(lo) + ("" if lo == hi else "-" + spell.format(hi)) for lo, hi in points
    )


_PY, _RE2 = r"\u{:04x}", r"\x{{{:x}}}"
_INVISIBLE = re.compile(r"[\s" + _char_class(_INVISIBLE_POINTS, _PY) + "]*")
_CONTROL = re.compile("[" + _char_class(_CONTROL_POINTS, _PY) + "]")
_INVISIBLE_RE2 = r"^[\s" + _char_class(_INVISIBLE_POINTS, _RE2) + "]*$"
_CONTROL_RE2 = "[" + _char_class(_CONTROL_POINTS, _RE2) + "]"


class BadValue(Exception):
    """A field value is wrong; the caller adds file and line."""


def out_of_range(x: np.ndarray, f: Field) -> np.ndarray:
    """Mask of the values of ``x`` that break ``f``'s rules: not finite, or out of range.

    NaN counts as not finite: callers mask out missing values first.
    """
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(x)
        for refuses, bound, _ in f.rules:
            bad |= refuses(x, bound)
    return bad


def check_number(value: Any, f: Field) -> float:
    """``value`` if it is a finite number within ``f``'s range, else :class:`BadValue`."""
    if isinstance(value, bool) or not isinstance(value, _NUMBER):
        raise BadValue(f"expected a number, got {describe(value)}")
    # JSON integers have no size limit; a 400-digit one is no size, count or log-prob
    if isinstance(value, int) and f.kind == "int" and not -_INT_LIMIT <= value < _INT_LIMIT:
        raise BadValue(f"{describe(value)} is too large (integers are 64-bit)")
    if isinstance(value, int) and not -_FLOAT_LIMIT < value < _FLOAT_LIMIT:
        raise BadValue(f"{describe(value)} is too large for a number")
    if not math.isfinite(value):
        raise BadValue(f"{value!r} is not allowed (must be a finite number)")
    for refuses, bound, message in f.rules:
        if refuses(value, bound):
            raise BadValue(message.format(value))
    return value


#: integers are 64-bit in every table (Arrow int64); other numbers are doubles
_INT_LIMIT = 2**63
_FLOAT_LIMIT = int(np.finfo(np.float64).max)


#: a log-probability field, for sources that check one value at a time
LOGPROB = Field("logprob", "float", True, "a natural-log probability", logprob=True)
#: any finite number (a JSON integer within a double's range), and any 64-bit integer:
#: the rules of sources that read numbers before the tables' own fields apply
NUMBER = Field("number", "float", True, "a finite number")
INTEGER = Field("integer", "int", True, "a 64-bit integer")


def check_logprob(value: Any) -> float:
    """A finite log-probability (<= 0 up to rounding) as float, else :class:`BadValue`."""
    return float(check_number(value, LOGPROB))


def _as_list(value: Any, f: Field, items: str) -> list:
    """A list value of a list field, at least ``f.min_len`` long."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list):
        what = "numbers" if f.kind == "float_list" else "strings"
        raise BadValue(f"expected a list of {what}, got {describe(value)}")
    if len(value) < f.min_len:
        raise BadValue(f"expected at least {f.min_len} {items}, got {len(value)}")
    return value


def coerce_value(value: Any, f: Field, from_text: bool = False) -> Any:
    """Check one value against its field; return it in canonical form."""
    kind = f.kind
    if from_text and isinstance(value, str):
        value = parse_cell(value, f)
    if kind == "str":
        if not isinstance(value, str):
            raise BadValue(f"expected a string, got {describe(value)}")
        if f.name_like and _INVISIBLE.fullmatch(value):
            raise BadValue(f"a name may not be blank, got {value!r}")
        if f.name_like and _CONTROL.search(value):
            raise BadValue(f"a name may not hold control characters, got {value!r}")
        return value
    if kind == "id":
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise BadValue(f"expected a string or integer id, got {describe(value)}")
    if kind == "float":
        return float(check_number(value, f))
    if kind == "int":
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadValue(f"expected an integer, got {describe(value)}")
        return check_number(value, f)
    if kind == "bool":
        if not isinstance(value, bool):
            raise BadValue(f"expected true or false, got {describe(value)}")
        return value
    if kind == "float_list":
        out = []
        for i, item in enumerate(_as_list(value, f, "value(s)")):
            try:
                out.append(float(check_number(item, f)))
            except BadValue as exc:
                raise BadValue(f"item {i}: {exc}") from None
        return out
    if kind == "str_list":
        value = _as_list(value, f, "string(s)")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise BadValue(f"item {i}: expected a string, got {describe(item)}")
        return value
    raise AssertionError(kind)


def parse_cell(text: str, f: Field) -> Any:
    """Turn a CSV cell (or a partition folder's value) into the value its field expects."""
    if f.kind in ("str", "id"):
        return text
    if f.kind in ("float_list", "str_list"):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            what = "numbers" if f.kind == "float_list" else "strings"
            raise BadValue(f"expected a JSON list of {what}, got {text[:40]!r}") from None
    if f.kind == "bool":
        lowered = text.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise BadValue(f"expected true or false, got {text[:40]!r}")
    try:
        if "_" in text:  # Python reads "1_000" as 1000; no CSV writer means that
            raise ValueError(text)
        number = float(text)
    except ValueError:
        raise BadValue(f"expected a number, got {text[:40]!r}") from None
    if f.kind == "int" and number.is_integer():
        return int(number)
    return number


def is_missing(value: Any, f: Field, from_text: bool) -> bool:
    """None is missing. An empty string is a value for optional text fields read from
    JSON or parquet (a model may answer nothing), and missing everywhere else: a CSV
    cannot tell an empty answer from an empty cell, and a required name may not be empty."""
    if value is None:
        return True
    if isinstance(value, str) and value == "":
        return from_text or f.required or f.kind not in ("str", "id")
    return False


def value_message(value: Any, f: Field) -> str:
    """Why ``value`` is refused for ``f`` (the message :func:`coerce_value` gives)."""
    if value is None or (isinstance(value, str) and value == "" and f.required):
        return "missing required value"
    try:
        coerce_value(value, f, False)
    except BadValue as exc:
        return str(exc)
    return "invalid value"


# --------------------------------------------------------------------------- Arrow columns


def _numpy(arr: pa.Array, fill: Any = np.nan) -> np.ndarray:
    return arr.fill_null(fill).to_numpy(zero_copy_only=False)


def list_lengths(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Each row's count of items in a list column, NaN where the list is null."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return _numpy(pc.list_value_length(arr).cast(pa.float64()))


def _is_number_type(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _is_string_type(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _list_items_bad(out: pa.Array, item_bad: np.ndarray, bad: np.ndarray) -> None:
    if item_bad.any():
        parents = _numpy(pc.list_parent_indices(out), 0).astype(np.int64)
        bad[parents[item_bad]] = True


def check_column(arr: pa.Array, f: Field) -> tuple[pa.Array, np.ndarray]:
    """The column in its canonical Arrow type, and the mask of rows whose value is bad.

    The mask marks exactly the rows :func:`coerce_value` (with the missing-value
    rule of JSON and parquet) refuses for this field, so the first bad row's
    message is :func:`value_message` of its value.
    """
    n = len(arr)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    t = arr.type
    canonical = ARROW_TYPES[f.kind]
    if pa.types.is_null(t):
        return pa.nulls(n, canonical), np.full(n, f.required)
    null = _numpy(arr.is_null(), False).astype(bool)
    missing = null & f.required
    everything_bad = (pa.nulls(n, canonical), ~null | missing)
    if f.kind in ("str", "id"):
        if _is_string_type(t):
            out = arr.cast(canonical)
            empty = _numpy(pc.equal(out, ""), False).astype(bool)
            bad = (null | empty) & f.required
            if f.name_like:  # the rules of coerce_value, on the whole column
                blank = pc.match_substring_regex(out, _INVISIBLE_RE2)
                control = pc.match_substring_regex(out, _CONTROL_RE2)
                bad |= _numpy(pc.or_(blank, control), False).astype(bool)
            return out, bad
        if f.kind == "id" and pa.types.is_integer(t):
            return arr.cast(canonical), missing
        return everything_bad
    if f.kind == "float":
        if not _is_number_type(t):
            return everything_bad
        out = arr.cast(canonical)
        return out, (~null & out_of_range(_numpy(out), f)) | missing
    if f.kind == "int":
        if not _is_number_type(t):
            return everything_bad
        x = _numpy(arr.cast(pa.float64()))
        with np.errstate(invalid="ignore"):
            bad = ~null & (out_of_range(x, f) | (x != np.floor(x)))
        if bad.any():
            return pa.nulls(n, canonical), bad | missing
        return arr.cast(canonical, safe=False), missing
    if f.kind == "bool":
        if pa.types.is_boolean(t):
            return arr, missing
        return everything_bad
    is_list = pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    item_type_ok = _is_string_type if f.kind == "str_list" else _is_number_type
    if not (is_list and item_type_ok(t.value_type)):
        return everything_bad
    out = arr.cast(canonical)
    bad = ~null & (_numpy(pc.list_value_length(out), 0) < f.min_len)
    values = pc.list_flatten(out)
    if f.kind == "str_list":
        _list_items_bad(out, _numpy(values.is_null(), False).astype(bool), bad)
    elif len(values):
        _list_items_bad(out, out_of_range(_numpy(values), f), bad)  # a null item is NaN: bad
    return out, bad | missing


def check_batch(table: pa.Table, spec: TableSpec, where: Where) -> pa.Table:
    """A batch with every column of ``spec`` in its canonical Arrow type, or InputError.

    The first bad row (in row order, then field order) is reported, then the
    rules between columns (:func:`row_problem`). Columns the spec does not know
    are dropped.
    """
    n = table.num_rows
    columns: dict[str, pa.Array] = {}
    worst: tuple[int, int, Any] | None = None
    for order, f in enumerate(spec.fields):
        if f.name in table.column_names:
            original = table.column(f.name).combine_chunks()
        else:
            original = pa.nulls(n)
        canonical, bad = check_column(original, f)
        columns[f.name] = canonical
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            if worst is None or (row, order) < worst[:2]:
                worst = (row, order, original)
    if worst is not None:
        row, order, original = worst
        f = spec.fields[order]
        raise where.error(value_message(original[row].as_py(), f), row, f.name)
    checked = pa.table(columns)
    problem = row_problem(checked)
    if problem is not None:
        row, name, message = problem
        raise where.error(message, row, name)
    return checked


# --------------------------------------------------------------------------- rules of a row


def arrow_column(series: pd.Series) -> pa.Array:
    """An Arrow-backed column as one Arrow array, without a copy per row."""
    return pa.chunked_array(series.array._pa_array).combine_chunks()


def _column(frame: pd.DataFrame | pa.Table, name: str) -> pa.Array | None:
    """A column as one Arrow array (no copy for Arrow-backed pandas columns), or None."""
    if isinstance(frame, pa.Table):
        return frame.column(name).combine_chunks() if name in frame.column_names else None
    if name not in frame.columns:
        return None
    series = frame[name]
    if isinstance(series.dtype, pd.ArrowDtype):
        return arrow_column(series)
    return pa.array(series.to_numpy(dtype=float, na_value=np.nan), from_pandas=True)


def _floats(arr: pa.Array) -> np.ndarray:
    return _numpy(arr.cast(pa.float64()))


def choice_length_mismatch(lengths: np.ndarray, n_choices: np.ndarray) -> tuple[int, str] | None:
    """The first row whose count of choice lengths differs from its count of choice
    log-probs, and what to say; both arrays hold list lengths, NaN where null."""
    return _one_per_choice(lengths, n_choices, "choice length(s)")


def _one_per_choice(counts: np.ndarray, n_choices: np.ndarray, what: str) -> tuple[int, str] | None:
    """The first row whose list (``counts`` items, NaN where null) does not give one item
    per choice log-prob, and what to say."""
    mismatch = ~np.isnan(counts) & (counts != n_choices)
    if not mismatch.any():
        return None
    row = int(np.flatnonzero(mismatch)[0])
    if np.isnan(n_choices[row]):
        return row, f"{int(counts[row])} {what} but no choice log-probs"
    return row, f"{int(counts[row])} {what} for {n_choices[row]:.0f} choice log-prob(s)"


def correct_choices_problem(
    flags: pa.Array, n_choices: np.ndarray, correct: np.ndarray
) -> tuple[int, str] | None:
    """The first row whose ``choice_is_correct`` breaks a rule, and what to say.

    ``flags`` is the list column; ``n_choices`` the count of choice log-probs
    and ``correct`` the ``correct_choice`` of each row (NaN where null). A row
    gives one flag per choice, each 0 or 1, at least one 1, and its
    ``correct_choice`` (when given) must be one of the correct choices.
    """
    lengths = list_lengths(flags)
    bad = _one_per_choice(lengths, n_choices, "correctness flag(s)")
    if bad is not None:
        return bad
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


def row_problem(frame: pd.DataFrame | pa.Table) -> tuple[int, str, str] | None:
    """The first rule between columns of one row that a table breaks: ``(row, field,
    message)``, or None. Works on a validated frame or a checked Arrow batch."""
    choices = _column(frame, "choice_logprobs")
    n_choices = None if choices is None else list_lengths(choices)
    correct_arr = _column(frame, "correct_choice")
    correct = None if correct_arr is None else _floats(correct_arr)
    if correct is not None and n_choices is not None:
        has = ~np.isnan(correct)
        out_of_range = has & (correct >= np.nan_to_num(n_choices))
        if out_of_range.any():
            row = int(np.flatnonzero(out_of_range)[0])
            return (
                row,
                "correct_choice",
                (
                    f"correct_choice={int(correct[row])} but the example has "
                    f"{int(np.nan_to_num(n_choices[row]))} choice log-prob(s)"
                ),
            )
    flags = _column(frame, "choice_is_correct")
    if flags is not None and n_choices is not None and correct is not None:
        if flags.null_count < len(flags):
            bad = correct_choices_problem(flags, n_choices, correct)
            if bad is not None:
                return bad[0], "choice_is_correct", bad[1]
    lengths = _column(frame, "choice_lengths")
    if lengths is not None and n_choices is not None:
        bad = choice_length_mismatch(list_lengths(lengths), n_choices)
        if bad is not None:
            return bad[0], "choice_lengths", bad[1]
    low, high = _column(frame, "ci_low"), _column(frame, "ci_high")
    if low is not None and high is not None:
        lo, hi = _floats(low), _floats(high)
        inverted = np.isfinite(lo) & np.isfinite(hi) & (lo > hi)
        if inverted.any():
            return int(np.flatnonzero(inverted)[0]), "ci_low", "ci_low is above ci_high"
    return _score_problem(frame)


#: slack for values computed in floating point (a mean of 0/1 values, an interval end)
_SLACK = 1e-9
#: and for scores computed from log-probabilities, which may exceed 0 by this much
#: (:data:`LOGPROB_TOLERANCE`): a mean log-prob of 2.5e-7 is a rounding, not an error
_RANGE_SLACK = LOGPROB_TOLERANCE


def _metric_ranges(metric: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the smallest and largest valid value of its metric (:func:`fact_of`),
    -inf and inf where the metric has no bound."""
    if isinstance(metric, pa.ChunkedArray):
        metric = metric.combine_chunks()
    if pa.types.is_dictionary(metric.type):
        metric = metric.dictionary_decode()
    names = pc.unique(metric)
    lower = np.full(len(names), -np.inf)
    upper = np.full(len(names), np.inf)
    for i, name in enumerate(names.to_pylist()):
        fact = None if name is None else fact_of(name)
        if fact is not None:
            lower[i] = -np.inf if fact.lower is None else fact.lower
            upper[i] = np.inf if fact.upper is None else fact.upper
    index = _numpy(pc.index_in(metric, value_set=names), 0).astype(np.intp)
    return lower[index], upper[index]


def _interval_text(lower: float, upper: float) -> str:
    low = "(-inf" if np.isneginf(lower) else f"[{lower:g}"
    high = "inf)" if np.isposinf(upper) else f"{upper:g}]"
    return f"{low}, {high}"


def score_value_problem(metric: str, value: float) -> str | None:
    """Why one score of ``metric`` is impossible (outside the metric's range), or None:
    the rule of the scores table, for sources that check a value where they read it, so
    that the error names the value's own file, line and field."""
    found = _score_problem(pd.DataFrame({"metric": [metric], "value": [float(value)]}))
    return None if found is None else found[2]


def _score_problem(frame: pd.DataFrame | pa.Table) -> tuple[int, str, str] | None:
    """A score outside its metric's range (an accuracy of 1.5, a perplexity <= 0), or an
    interval that does not hold its own value."""
    value = _column(frame, "value")
    columns = frame.column_names if isinstance(frame, pa.Table) else frame.columns
    if value is None or len(value) == 0 or "metric" not in columns:
        return None
    metric = frame.column("metric") if isinstance(frame, pa.Table) else pa.array(frame["metric"])
    v = _floats(value)
    nan = np.full(len(v), np.nan)
    ends = {}
    for name in ("ci_low", "ci_high"):
        column = _column(frame, name)
        ends[name] = nan if column is None else _floats(column)
    lower, upper = _metric_ranges(metric)
    # the ends of an interval are not checked against the range: one computed as
    # value +- z * stderr may pass a bound, and says no more than that
    with np.errstate(invalid="ignore"):
        outside = (v < lower - _RANGE_SLACK * np.maximum(1, np.abs(lower))) | (
            v > upper + _RANGE_SLACK * np.maximum(1, np.abs(upper))
        )
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        hint = (
            " (a percentage? give proportions)" if upper[row] == 1 and 1.5 < v[row] <= 100 else ""
        )
        return (
            row,
            "value",
            f"value {v[row]:.9g} is outside the range of {metric[row].as_py()}, "
            f"{_interval_text(lower[row], upper[row])}{hint}",
        )
    slack = _SLACK * np.maximum(1, np.abs(v))
    low, high = ends["ci_low"], ends["ci_high"]
    with np.errstate(invalid="ignore"):
        excludes = {"ci_low": low > v + slack, "ci_high": high < v - slack}
    for name, bad in excludes.items():
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            side = "above" if name == "ci_low" else "below"
            return (
                row,
                name,
                f"the interval [{low[row]:g}, {high[row]:g}] does not hold its value "
                f"{v[row]:g} ({name} is {side} it)",
            )
    return None


# --------------------------------------------------------------------------- rules across rows


@dataclass
class _RunEnd:
    """A run's size and last checkpoint, for :meth:`ModelSizes.run_clash`."""

    params: float
    step: Any
    tokens: float
    place: Any
    replicate_of: set[str | None] = dataclasses.field(default_factory=set)


class ModelSizes:
    """One size per checkpoint, and distinct sizes within a family.

    A curve has one x per model: a checkpoint ``(family, model, step)`` with two
    sizes, or two models of one family with one size (at one step), cannot be
    drawn. :meth:`add` records a checkpoint and returns what is wrong, if
    anything; the caller raises it with the place it knows (a line, a JSON path).

    A checkpoint that states its training tokens is part of a ladder over
    (params, tokens): runs of one size trained for different budgets share
    (params, step, tokens) at their early checkpoints, so for them the rule is
    checked on each run's last checkpoint, once every row is in
    (:meth:`run_clash`): two runs of a family that end at the same params and
    tokens are one model given twice, unless one is a ``replicate_of`` the other.
    """

    def __init__(self) -> None:
        self._size: dict[tuple, tuple[float, Any]] = {}
        self._model: dict[tuple, tuple[str, Any]] = {}
        self._runs: dict[tuple, _RunEnd] = {}  # by (family, model)

    def add(
        self,
        family: str | None,
        model: str,
        step: Any,
        params: float,
        where: Any = None,
        *,
        distinct: bool = True,
        tokens: float | None = None,
        replicate_of: str | None = None,
        place: Any = None,
    ) -> str | None:
        """Record ``model``'s size; the message of a clash with an earlier model, or None.

        ``where`` describes where the model was given (it is quoted in a later clash);
        ``distinct=False`` checks one size per checkpoint only (a list of sizes that
        spans families). ``tokens`` (the checkpoint's training tokens) makes the
        model a run of a (params, tokens) ladder; ``place`` is handed back by
        :meth:`run_clash` to locate its error.
        """
        ident = (family, model, step)
        known = self._size.get(ident)
        if known is not None and known[0] != params:
            return (
                f"model {model!r} has params={params:g} here but {known[0]:g} "
                f"{_at(known[1], 'in an earlier row')}; a checkpoint has one size"
            )
        if tokens is not None:
            self._add_run(family, model, step, params, tokens, replicate_of, where, place)
            return None
        if known is not None:
            return None
        other = self._model.get((family, params, step)) if distinct else None
        if other is not None and other[0] != model:
            return (
                f"models {other[0]!r}{_at(other[1], '', ' ')} and {model!r} of family "
                f"{family!r} both have params={params:g}; sizes must be distinct within a family "
                f"(give them different families or steps)"
            )
        self._size[ident] = (params, where)
        self._model[(family, params, step)] = (model, where)
        return None

    def _add_run(
        self,
        family: str | None,
        model: str,
        step: Any,
        params: float,
        tokens: float,
        replicate_of: str | None,
        where: Any,
        place: Any,
    ) -> None:
        self._size.setdefault((family, model, step), (params, where))
        run = self._runs.setdefault((family, model), _RunEnd(params, step, tokens, place))
        run.replicate_of.add(replicate_of)
        order = (tokens, -1 if step is None else step)
        if order > (run.tokens, -1 if run.step is None else run.step):
            run.step, run.tokens, run.place = step, tokens, place

    def run_clash(self) -> tuple[str, Any, str] | None:
        """The first problem of the runs' last checkpoints, where it lies and its field, or
        None: two runs of a family ending at one (params, tokens) that are not replicates,
        or a ``replicate_of`` that is not one other run of that size."""
        ends: dict[tuple, str] = {}
        for (family, model), run in self._runs.items():
            if len(run.replicate_of) > 1:
                named = ", ".join(sorted(repr(of) for of in run.replicate_of))
                message = f"model {model!r} is given as the replicate_of more than one run: {named}"
                return message, run.place, "replicate_of"
            (of,) = run.replicate_of
            if of is None:
                other = ends.setdefault((family, run.params, run.tokens), model)
                if other != model:
                    return (
                        f"models {other!r} and {model!r} of family {family!r} both end at "
                        f"params={run.params:g}, tokens_trained={run.tokens:g}; give one as the "
                        "replicate_of the other (another seed), or different families",
                        run.place,
                        "tokens_trained",
                    )
                continue
            base = self._runs.get((family, of))
            if base is None or of == model:
                message = (
                    f"model {model!r} is a replicate_of {of!r}, which is not another model "
                    f"of family {family!r}"
                )
                return message, run.place, "replicate_of"
            if base.params != run.params:
                message = (
                    f"model {model!r} (params={run.params:g}) is a replicate_of {of!r}, which "
                    f"has params={base.params:g}; a replicate has the same size"
                )
                return message, run.place, "replicate_of"
        return None

    def other_of(self, family: str, params: float, step: Any = None) -> str | None:
        """The model of ``family`` already given the size ``params`` (at ``step``)."""
        other = self._model.get((family, params, step))
        return None if other is None else other[0]


def _at(where: Any, otherwise: str, sep: str = "") -> str:
    """``in WHERE`` (after ``sep``), or ``otherwise`` when the place is not known."""
    return otherwise if where is None else f"{sep}in {where}"


def duplicate_message(names: Iterable[str], key: Iterable[Any], earlier: str | None) -> str:
    """What to say of a row whose key repeats an earlier row's."""
    what = ", ".join(f"{k}={v!r}" for k, v in zip(names, key, strict=True) if v is not None)
    return f"duplicate row ({what}) repeats {earlier or 'an earlier one'}"


_NULL_HASH = np.uint64(0x5BD1E9955BD1E995)


def _column_hashes(values: pa.Array | pa.ChunkedArray | pd.Series) -> np.ndarray:
    """One 64-bit hash per row of a key column (null hashes alike); each distinct value is
    hashed once, so repeated names (task, model) cost a lookup, not a string hash."""
    if not isinstance(values, pd.Series):
        values = pd.Series(pd.arrays.ArrowExtensionArray(values))
    codes, uniques = pd.factorize(values)
    if len(uniques) == 0:
        return np.full(len(codes), _NULL_HASH)
    hashed = pd.util.hash_array(np.asarray(uniques, dtype=object), categorize=False)
    return np.where(codes >= 0, hashed[np.maximum(codes, 0)], _NULL_HASH)


def _key_hashes(columns: list[Any]) -> np.ndarray:
    """One 64-bit hash per row of the key columns."""
    h = np.zeros(len(columns[0]), dtype=np.uint64)
    for values in columns:
        h = h * np.uint64(0x9E3779B97F4A7C15) + _column_hashes(values)
    return h


def _objects(values: pa.Array | pa.ChunkedArray | pd.Series) -> np.ndarray:
    """A key column as an object array with None for null (null equals null)."""
    if isinstance(values, pd.Series):
        return values.astype(object).where(values.notna(), None).to_numpy()
    return np.asarray(values.to_pylist(), dtype=object)


class RowChecker:
    """The rules across the rows of one table, checked batch by batch.

    * one size per checkpoint and distinct sizes within a family
      (:class:`ModelSizes`), as batches arrive;
    * no key repeated: each row's key is kept as one 64-bit hash (8 bytes a
      row, so a table larger than memory can be checked), and a hash seen twice
      is confirmed on the rows themselves (``key_of``) before it is reported,
      so a hash collision can never fail a run.

    An in-memory table is one batch; the streaming scorer and the parquet
    writers feed theirs as they go. Call :meth:`finish` at the end.
    """

    def __init__(self, spec: TableSpec, *, keep_keys: bool = True) -> None:
        self.spec = spec
        self.sizes = ModelSizes()
        self.keep_keys = keep_keys
        self._hashes: list[np.ndarray] = []
        self._keys: list[list[np.ndarray]] = []
        self._where: list[tuple[int, Where]] = []  # first global row, its batch's origin
        self.rows = 0

    def add(self, frame: pd.DataFrame | pa.Table, where: Where, *, sizes: bool = True) -> None:
        """Check one batch (frame or Arrow table with the spec's key and size columns).

        ``sizes=False`` skips the size rules, for a caller that checks each model
        with :attr:`sizes` before it has rows.
        """
        n = len(frame)
        if n == 0:
            return
        get = frame.column if isinstance(frame, pa.Table) else frame.__getitem__
        columns = [get(name) for name in self.spec.key]
        if sizes:
            self._check_sizes(frame, get, where)
        self._hashes.append(_key_hashes(columns))
        if self.keep_keys:
            self._keys.append([_objects(c) for c in columns])
        self._where.append((self.rows, where))
        self.rows += n

    def _check_sizes(self, frame: Any, get: Callable[[str], Any], where: Where) -> None:
        names = frame.column_names if isinstance(frame, pa.Table) else frame.columns
        ident = ["family", "model", "step", "params"]
        ident += [c for c in ("tokens_trained", "replicate_of") if c in names]
        if isinstance(frame, pa.Table):
            models = pa.table({c: frame.column(c) for c in ident}).to_pandas()
        else:
            models = pd.DataFrame({c: frame[c].to_numpy(dtype=object) for c in ident})
        for c in ("tokens_trained", "replicate_of"):
            if c not in models.columns:
                models[c] = None
        models = models[[*ident[:4], "tokens_trained", "replicate_of"]]
        models = models.astype(object).where(models.notna(), None).drop_duplicates()
        for row, family, model, step, params, tokens, of in models.itertuples(name=None):
            # the earlier row is not named: which one is seen first depends on how
            # the rows were cut into batches, and the message must not
            clash = self.sizes.add(
                family, model, step, params, tokens=tokens, replicate_of=of, place=(where, row)
            )
            if clash is not None:
                raise where.error(clash, row, "params")

    def _locate(self, row: int) -> tuple[Where, int]:
        starts = [start for start, _ in self._where]
        i = int(np.searchsorted(starts, row, side="right")) - 1
        start, where = self._where[i]
        return where, row - start

    def _key(self, row: int) -> tuple:
        starts = [start for start, _ in self._where]
        i = int(np.searchsorted(starts, row, side="right")) - 1
        local = row - self._where[i][0]
        return tuple(column[local] for column in self._keys[i])

    def first_duplicate(
        self, key_of: Callable[[int], tuple] | None = None
    ) -> tuple[int, int, tuple] | None:
        """``(row, earlier_row, key)`` of the first row repeating an earlier key, or None.

        Rows are counted from 0 across batches. ``key_of`` reads a row's key back
        when the checker was built with ``keep_keys=False``.
        """
        if not self._hashes:
            return None
        key_of = key_of or self._key
        hashes = np.concatenate(self._hashes)
        order = np.argsort(hashes, kind="stable")
        ranked = hashes[order]
        repeat = np.flatnonzero(ranked[1:] == ranked[:-1]) + 1
        if repeat.size == 0:
            return None
        # a later row of a run of equal hashes; its run starts at the earliest such row
        starts = np.searchsorted(ranked, ranked[repeat], side="left")
        candidates = sorted(
            zip(order[repeat].tolist(), starts.tolist(), repeat.tolist(), strict=True)
        )
        for row, start, end in candidates:
            key = key_of(row)
            for earlier in sorted(order[start:end].tolist()):
                if key_of(earlier) == key:
                    return row, earlier, key
        return None

    def finish(self, key_of: Callable[[int], tuple] | None = None) -> None:
        """Raise the error of the first row repeating an earlier key, or of two runs
        ending at one size (:meth:`ModelSizes.run_clash`), if any."""
        clash = self.sizes.run_clash()
        if clash is not None:
            message, (where, row), name = clash
            raise where.error(message, row, name)
        found = self.first_duplicate(key_of)
        if found is None:
            return
        row, earlier, key = found
        where, local = self._locate(row)
        first, first_local = self._locate(earlier)
        path, _ = where.locate(local)
        earlier_path, earlier_line = first.locate(first_local)
        same_file = earlier_path is None or str(earlier_path) == str(path)
        if earlier_line is None:
            place = "an earlier one" if same_file else f"a row of {earlier_path}"
        else:
            place = f"{first.unit_of(first_local)} {earlier_line}"
            place += "" if same_file else f" of {earlier_path}"
        # the field that repeats: a sample's id (its epoch is an optional part of the key)
        repeated = "example_id" if "example_id" in self.spec.key else self.spec.key[-1]
        raise where.error(duplicate_message(self.spec.key, key, place), local, repeated)


def check_table(frame: pd.DataFrame | pa.Table, spec: TableSpec, where: Where) -> None:
    """Every rule of ``spec`` between columns and across rows, on a whole table."""
    problem = row_problem(frame)
    if problem is not None:
        row, name, message = problem
        raise where.error(message, row, name)
    checker = RowChecker(spec)
    checker.add(frame, where)
    checker.finish()


# --------------------------------------------------------------------------- records


def validate_records(
    records: Iterable[tuple[int, Any]],
    spec: TableSpec,
    *,
    path: str | os.PathLike[str] | None = None,
    unit: str = "line",
    from_text: bool = False,
    origin: SourceLines | None = None,
) -> pd.DataFrame:
    """Validate ``(line_number, record)`` pairs and build the table.

    Raises :class:`InputError` at the first problem, naming path, line and field;
    ``origin``, where given, names the file (and line) of each record instead.
    """

    def fail(message: str, count: int, line: int, field: str | None = None) -> InputError:
        if origin is None:
            return InputError(message, path=path, line=line, field=field, unit=unit)
        return Where(path, origin, unit).error(message, count, field)

    fields = spec.fields
    columns: dict[str, list[Any]] = {f.name: [] for f in fields}
    extras: dict[str, list[Any]] = {}
    lines: list[int] = []
    for count, (line, record) in enumerate(records):
        if not isinstance(record, dict):
            raise fail(f"expected a JSON object, got {describe(record)}", count, line)
        for f in fields:
            value = record.get(f.name)
            if is_missing(value, f, from_text):
                if f.required:
                    raise fail("missing required value", count, line, f.name)
                columns[f.name].append(None)
                continue
            try:
                columns[f.name].append(coerce_value(value, f, from_text))
            except BadValue as exc:
                raise fail(str(exc), count, line, f.name) from None
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
    check_table(frame, spec, Where(path, line_numbers if origin is None else origin, unit))
    frame.attrs.update(
        path=None if path is None else str(path),
        lines=SourceLines(line_numbers) if origin is None else origin,
        unit=unit,
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


def validate_frame(
    frame: pd.DataFrame,
    spec: TableSpec,
    *,
    path: str | os.PathLike[str] | None = None,
    origin: SourceLines | None = None,
    unit: str = "row",
) -> pd.DataFrame:
    """Validate an in-memory frame (e.g. built by a source); rows are numbered from 1.

    ``origin`` names each row's file (and line) where the frame gathers several;
    ``unit="line"`` when its numbers are the lines of text files.
    """
    if frame.empty:
        raise InputError(f"empty {spec.name} table: no records", path=path)
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        raise InputError(
            f"missing required column(s): {', '.join(missing)}", path=path, field=missing[0]
        )
    cleaned = frame.astype(object).where(frame.notna(), None)
    records = cleaned.to_dict("records")
    return validate_records(enumerate(records, start=1), spec, path=path, unit=unit, origin=origin)


def union(frames: list[pd.DataFrame], spec: TableSpec) -> pd.DataFrame:
    """Concatenate validated tables of one kind and check the union (no key in two
    tables, one size per model across them); an error names the file and line at fault."""
    if len(frames) == 1:
        return frames[0]
    combined = pd.concat(frames, ignore_index=True)
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
    units = [f.attrs.get("unit", "line") for f in frames]
    frame_of_row = np.repeat(np.arange(len(frames)), [len(f) for f in frames])
    check_table(combined, spec, Where(None, origin, units[0], (units, frame_of_row)))
    combined.attrs.update(path=None, lines=origin, unit=units[0])
    return combined
