"""Property-based fuzzing of the JSONL reader (``tables.read_table`` over ``iter_jsonl``).

Three properties, each over a few hundred generated inputs (about 10 s in all):

* any bytes at all give either a validated frame or an :class:`InputError` whose
  message is one line starting with the file name -- never another exception;
* valid records mutated structurally (a key dropped, a value replaced by any JSON
  value including NaN and huge integers, a line cut, duplicated or replaced,
  stray bytes) give the same: a frame or a one-line InputError;
* valid records round-trip: ``write_table`` then ``read_table`` gives an equal
  frame, for ``.jsonl`` and ``.jsonl.gz``.
"""

from __future__ import annotations

import json
import math
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from miragelab.errors import InputError
from miragelab.tables import SAMPLES, SCORES, TABLES, read_table, validate_records, write_table

FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _read_or_refuse(data: bytes, spec_name: str, suffix: str = ".jsonl") -> pd.DataFrame | None:
    """The property: a valid frame, or one InputError line naming the file."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(data)
        try:
            frame = read_table(path, spec_name)
        except InputError as exc:
            message = str(exc)
            assert len(message.splitlines()) == 1, message
            assert message.startswith(str(path)), message
            assert exc.path == str(path)
            return None
    spec = TABLES[spec_name]
    assert len(frame) > 0 and set(spec.required) <= set(frame.columns)
    for name in spec.required:
        assert frame[name].notna().all()
    return frame


# --------------------------------------------------------------------------- arbitrary bytes


@FUZZ
@given(data=st.binary(max_size=600), spec=st.sampled_from(["samples", "scores"]))
def test_arbitrary_bytes_give_a_frame_or_one_error_line(data: bytes, spec: str) -> None:
    _read_or_refuse(data, spec)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def _dumps(value: Any) -> str:
    """JSON text, with Python's NaN/Infinity extension (some tools write it)."""
    return json.dumps(value, allow_nan=True)


@FUZZ
@given(
    lines=st.lists(
        st.one_of(
            JSON_VALUES.map(_dumps),
            st.dictionaries(st.sampled_from(SAMPLES.columns), JSON_VALUES).map(_dumps),
            st.text(max_size=30),
        ),
        max_size=6,
    ),
    spec=st.sampled_from(["samples", "scores"]),
)
def test_json_shaped_lines_give_a_frame_or_one_error_line(lines: list[str], spec: str) -> None:
    _read_or_refuse("\n".join(lines).encode("utf-8", "surrogatepass"), spec)


# --------------------------------------------------------------------------- valid records

NAMES = st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=10).filter(
    # a name shows something: not blank, not only zero-width or other format characters
    lambda s: any(not c.isspace() and unicodedata.category(c) != "Cf" for c in s)
)
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
COUNT = st.floats(min_value=1.0, max_value=1e300, allow_nan=False, allow_infinity=False)
POSITIVE = st.floats(min_value=1e-300, max_value=1e300, allow_nan=False, allow_infinity=False)
LOGPROB = st.floats(min_value=-1e300, max_value=0.0, allow_nan=False, allow_infinity=False)


@st.composite
def samples_records(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Valid samples rows: distinct (model, params) pairs, unique keys, choices in range."""
    models = draw(
        st.lists(
            st.tuples(NAMES, COUNT),
            min_size=1,
            max_size=3,
            unique_by=(lambda m: m[0], lambda m: m[1]),
        )
    )
    step = draw(st.none() | st.integers(min_value=0, max_value=2**62))
    rows = []
    n = draw(st.integers(min_value=1, max_value=6))
    tasks = draw(st.lists(NAMES, min_size=1, max_size=2, unique=True))
    for i in range(n):
        model, params = draw(st.sampled_from(models))
        row: dict[str, Any] = {
            "task": draw(st.sampled_from(tasks)),
            "family": "fam",
            "model": model,
            "params": params,
            "example_id": f"e{i}" if draw(st.booleans()) else i,
        }
        if step is not None:
            row["step"] = step
        for name in ("prompt", "target", "prediction"):
            if draw(st.booleans()):
                row[name] = draw(TEXT)
        if draw(st.booleans()):
            row["target_token_logprobs"] = draw(st.lists(LOGPROB, min_size=1, max_size=4))
        if draw(st.booleans()):
            choices = draw(st.lists(LOGPROB, min_size=2, max_size=4))
            row["choice_logprobs"] = choices
            if draw(st.booleans()):
                row["correct_choice"] = draw(st.integers(min_value=0, max_value=len(choices) - 1))
        if draw(st.booleans()):
            row["compute_flops"] = draw(POSITIVE)
        if draw(st.booleans()):
            row["note"] = draw(TEXT)  # a column the table does not know: carried along
        rows.append(row)
    return rows


def _lines(records: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(r).encode() for r in records]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """Valid records, then one to three structural mutations of the text."""
    records = draw(samples_records())
    lines = _lines(records)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        kind = draw(
            st.sampled_from(
                ["drop", "replace", "cut", "bytes", "duplicate", "line", "rename", "empty"]
            )
        )
        i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        if kind in ("drop", "replace", "rename"):
            try:
                record = json.loads(lines[i])
            except ValueError:
                continue
            if not isinstance(record, dict) or not record:
                continue
            key = draw(st.sampled_from(sorted(record)))
            if kind == "drop":
                del record[key]
            elif kind == "replace":
                record[key] = draw(JSON_VALUES)
            else:
                record[key + draw(st.sampled_from(["_", " ", "X"]))] = record.pop(key)
            lines[i] = _dumps(record).encode()
        elif kind == "cut":
            lines[i] = lines[i][: draw(st.integers(min_value=0, max_value=len(lines[i])))]
        elif kind == "bytes":
            at = draw(st.integers(min_value=0, max_value=len(lines[i])))
            lines[i] = lines[i][:at] + draw(st.binary(min_size=1, max_size=4)) + lines[i][at:]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "line":
            lines[i] = _dumps(draw(JSON_VALUES)).encode()
        else:
            lines[i] = b""
    return b"\n".join(lines) + draw(st.sampled_from([b"", b"\n", b"\r\n"]))


@FUZZ
@given(data=mutated())
def test_mutated_records_give_a_frame_or_one_error_line(data: bytes) -> None:
    _read_or_refuse(data, "samples")


# --------------------------------------------------------------------------- round trip


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=samples_records())
def test_valid_records_round_trip(records: list[dict[str, Any]]) -> None:
    frame = validate_records(enumerate(records, start=1), SAMPLES)
    assert len(frame) == len(records)
    with tempfile.TemporaryDirectory() as folder:
        for name in ("t.jsonl", "t.jsonl.gz"):
            path = Path(folder) / name
            write_table(frame, path)
            back = read_table(path, SAMPLES)
            pd.testing.assert_frame_equal(back, frame)
            assert list(Path(folder).glob(".*")) == []  # no temporary file left


def test_round_trip_keeps_exact_floats(tmp_path: Path) -> None:
    """The values a JSON writer most often loses: tiny, huge and negative-zero floats."""
    record = {
        "task": "t",
        "family": "f",
        "model": "m",
        "params": 1.0000000000000002,
        "tokens_trained": 5e-324,
        "compute_flops": 1.7976931348623157e308,
        "example_id": "e",
        "target_token_logprobs": [-0.0, -5e-324, -0.1],
        "step": 2**62,
    }
    frame = validate_records([(1, record)], SAMPLES)
    path = tmp_path / "x.jsonl"
    write_table(frame, path)
    back = read_table(path, SAMPLES)
    pd.testing.assert_frame_equal(back, frame)
    logprobs = back["target_token_logprobs"].iloc[0]
    assert math.copysign(1.0, logprobs[0]) == -1.0 and logprobs[1] == -5e-324
    assert back["step"].iloc[0] == 2**62


@pytest.mark.parametrize("spec", [SAMPLES, SCORES])
def test_a_known_bad_line_is_named(spec: Any, tmp_path: Path) -> None:
    """A guard that the property is not vacuous: a cut line is refused, naming line 2."""
    path = tmp_path / "cut.jsonl"
    first = {"task": "t", "family": "f", "model": "m", "params": 1.0}
    first |= {"example_id": "e"} if spec is SAMPLES else {"metric": "acc", "value": 0.5}
    path.write_text(json.dumps(first) + '\n{"task": "t", "fam\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_table(path, spec)
    assert info.value.line == 2 and str(info.value).startswith(str(path))
