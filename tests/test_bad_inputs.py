"""`mirage score` on malformed samples: one error line naming file, line and field; exit 2.

Each case of the corpus in ``tests/fixtures/bad/`` (see its README) breaks one
rule of the samples table. The expected line and field below come from how each
file was written, not from running the code: the CLI must print exactly one
line ``error: FILE, line N, field 'F': ...`` on stderr, exit with code 2, and
leave nothing in the output folder (no scores file, no temporary file).

Parquet cases are written here into ``tmp_path`` (rows are numbered from 1).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from miragelab.metrics import REGISTRY

BAD = Path(__file__).parent / "fixtures" / "bad"


@dataclass(frozen=True)
class Case:
    """One malformed input and where the error must point."""

    files: tuple[str, ...]
    line: int | None
    field: str | None
    metrics: str = "all"
    unit: str = "line"
    names_file: bool = True  # False when the fault is in the command line, not a file


CASES: dict[str, Case] = {
    "malformed_json": Case(("malformed_json.jsonl",), 2, None),
    "truncated_last_line": Case(("truncated_last_line.jsonl",), 3, None),
    "empty_file": Case(("empty.jsonl",), None, None),
    "whitespace_only": Case(("whitespace_only.jsonl",), None, None),
    "missing_task": Case(("missing_task.jsonl",), 2, "task"),
    "missing_family": Case(("missing_family.jsonl",), 2, "family"),
    "missing_model": Case(("missing_model.jsonl",), 2, "model"),
    "missing_params": Case(("missing_params.jsonl",), 2, "params"),
    "missing_example_id": Case(("missing_example_id.jsonl",), 2, "example_id"),
    "params_string": Case(("params_string.jsonl",), 3, "params"),
    "params_negative": Case(("params_negative.jsonl",), 2, "params"),
    "params_nan": Case(("params_nan.jsonl",), 2, "params"),
    "step_negative": Case(("step_negative.jsonl",), 2, "step"),
    "logprob_nan": Case(("logprob_nan.jsonl",), 3, "target_token_logprobs"),
    "logprob_infinity": Case(("logprob_infinity.jsonl",), 2, "target_token_logprobs"),
    "logprob_positive": Case(("logprob_positive.jsonl",), 2, "target_token_logprobs"),
    "logprob_string": Case(("logprob_string.jsonl",), 2, "target_token_logprobs"),
    "choice_logprobs_one": Case(("choice_logprobs_one.jsonl",), 3, "choice_logprobs"),
    "choice_logprobs_positive": Case(("choice_logprobs_positive.jsonl",), 2, "choice_logprobs"),
    "correct_choice_out_of_range": Case(
        ("correct_choice_out_of_range.jsonl",), 2, "correct_choice"
    ),
    "correct_choice_negative": Case(("correct_choice_negative.jsonl",), 3, "correct_choice"),
    "correct_choice_float": Case(("correct_choice_float.jsonl",), 2, "correct_choice"),
    "duplicate_key": Case(("duplicate_key.jsonl",), 4, "example_id"),
    "model_two_params": Case(("model_two_params.jsonl",), 3, "params"),
    "model_two_params_with_step": Case(("model_two_params_with_step.jsonl",), 3, "params"),
    "family_same_params": Case(("family_same_params.jsonl",), 3, "params"),
    "non_object_line": Case(("non_object_line.jsonl",), 2, None),
    "not_utf8": Case(("not_utf8.jsonl",), 2, None),
    "partial_prediction": Case(("partial_prediction.jsonl",), 3, "prediction", "exact_match"),
    "unknown_metric": Case(
        ("unknown_metric.jsonl",), None, "metrics", "exact_match,accuracy", names_file=False
    ),
    "csv_missing_column": Case(("csv_missing_column.csv",), 2, "params"),
    "csv_params_not_numeric": Case(("csv_params_not_numeric.csv",), 3, "params"),
    "csv_logprob_not_json": Case(("csv_logprob_not_json.csv",), 4, "target_token_logprobs"),
    "duplicate_across_files": Case(
        ("across_files_a.jsonl", "across_files_b.jsonl"),
        2,
        "example_id",
        "exact_match",
    ),
}


# --------------------------------------------------------------------------- parquet cases


def _record(i: int, **changes: object) -> dict:
    record = {
        "task": "arith",
        "family": "tiny",
        "model": "tiny-1m",
        "params": 1e6,
        "example_id": f"e{i}",
        "prompt": f"{i}+1=",
        "target": str(i + 1),
        "prediction": str(i + 1),
        "target_token_logprobs": [-0.1, -0.2],
        "choice_logprobs": [-0.2, -1.9],
        "correct_choice": 0,
    }
    record.update(changes)
    return record


_PARQUET_SCHEMA = pa.schema(
    [
        ("task", pa.string()),
        ("family", pa.string()),
        ("model", pa.string()),
        ("params", pa.float64()),
        ("example_id", pa.string()),
        ("prompt", pa.string()),
        ("target", pa.string()),
        ("prediction", pa.string()),
        ("target_token_logprobs", pa.list_(pa.float64())),
        ("choice_logprobs", pa.list_(pa.float64())),
        ("correct_choice", pa.int64()),
    ]
)


def _write_parquet(path: Path, records: list[dict], schema: pa.Schema = _PARQUET_SCHEMA) -> None:
    pq.write_table(pa.Table.from_pylist(records, schema=schema), path)


def _parquet_params_negative(path: Path) -> None:
    _write_parquet(path, [_record(1), _record(2), _record(3, params=-1.0)])


def _parquet_logprob_nan(path: Path) -> None:
    _write_parquet(path, [_record(1), _record(2, target_token_logprobs=[-0.1, float("nan")])])


def _parquet_duplicate(path: Path) -> None:
    _write_parquet(path, [_record(1), _record(2), _record(1, prediction="0")])


def _parquet_missing_model_column(path: Path) -> None:
    schema = pa.schema([f for f in _PARQUET_SCHEMA if f.name != "model"])
    records = [{k: v for k, v in _record(i).items() if k != "model"} for i in (1, 2)]
    _write_parquet(path, records, schema)


def _parquet_params_as_string(path: Path) -> None:
    schema = _PARQUET_SCHEMA.set(3, pa.field("params", pa.string()))
    _write_parquet(path, [_record(1, params="1e6"), _record(2, params="big")], schema)


def _parquet_not_parquet(path: Path) -> None:
    path.write_bytes(b"PAR1 this is not a parquet file PAR1")


PARQUET_CASES: dict[str, tuple[Callable[[Path], None], Case]] = {
    "parquet_params_negative": (_parquet_params_negative, Case((), 3, "params", unit="row")),
    "parquet_logprob_nan": (
        _parquet_logprob_nan,
        Case((), 2, "target_token_logprobs", unit="row"),
    ),
    "parquet_duplicate": (_parquet_duplicate, Case((), 3, "example_id", unit="row")),
    "parquet_missing_model_column": (
        _parquet_missing_model_column,
        Case((), 1, "model", unit="row"),
    ),
    "parquet_params_as_string": (_parquet_params_as_string, Case((), 1, "params", unit="row")),
    "parquet_not_parquet": (_parquet_not_parquet, Case((), None, None, unit="row")),
}


# --------------------------------------------------------------------------- running the CLI


def _score(paths: list[Path], metrics: str, out: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "miragelab", "score", *map(str, paths)]
    command += ["--metrics", metrics, "--out", str(out)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _expected_prefix(path: Path | None, case: Case) -> str:
    """The start of the error line, rendered the way InputError promises."""
    where = [] if path is None else [str(path)]
    if case.line is not None:
        where.append(f"{case.unit} {case.line}")
    if case.field is not None:
        where.append(f"field '{case.field}'")
    return "error: " + ", ".join(where) + ": "


def _check_rejected(paths: list[Path], case: Case, out_dir: Path) -> None:
    out_dir.mkdir()
    result = _score(paths, case.metrics, out_dir / "scores.parquet")
    both = result.stdout + result.stderr
    assert "Traceback" not in both, both
    assert result.returncode == 2, both
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"expected one error line, got {result.stderr!r}"
    blamed = paths[-1] if case.names_file else None
    expected = _expected_prefix(blamed, case)
    message = lines[0]
    assert message.startswith(expected), f"expected {expected!r}..., got {message!r}"
    assert len(message) > len(expected), "the error line gives no reason"
    assert sorted(p.name for p in out_dir.iterdir()) == [], "output or temp file left behind"


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=name) for name, c in CASES.items()],
)
def test_bad_fixture_is_rejected(case: Case, tmp_path: Path) -> None:
    _check_rejected([BAD / name for name in case.files], case, tmp_path / "out")


@pytest.mark.parametrize(
    ("build", "case"),
    [pytest.param(b, c, id=name) for name, (b, c) in PARQUET_CASES.items()],
)
def test_bad_parquet_is_rejected(build: Callable[[Path], None], case: Case, tmp_path: Path) -> None:
    path = tmp_path / "samples.parquet"
    build(path)
    _check_rejected([path], case, tmp_path / "out")


def test_corpus_is_covered() -> None:
    """Every fixture file is used by a case, and every case's files exist."""
    used = {name for case in CASES.values() for name in case.files}
    on_disk = {p.name for p in BAD.iterdir() if p.suffix in (".jsonl", ".csv")}
    assert used == on_disk
    assert len(used) + len(PARQUET_CASES) >= 20


def test_valid_file_is_scored(tmp_path: Path) -> None:
    samples = tmp_path / "samples.jsonl"
    records = [_record(i) for i in range(1, 6)]
    records += [_record(i, model="tiny-2m", params=2e6, prediction="x") for i in range(1, 6)]
    samples.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "out" / "scores.parquet"
    result = _score([samples], "all", out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.exists()
    scores = pq.read_table(out).to_pandas()
    assert len(scores) == 2 * len(REGISTRY)  # two models x every metric
    em = scores[scores["metric"] == "exact_match"].set_index("model")["value"]
    assert em["tiny-1m"] == 1.0 and em["tiny-2m"] == 0.0
    assert [p.name for p in out.parent.iterdir()] == ["scores.parquet"]
