"""Every loader a user can point at, fed malformed input: one error line, exit 2, nothing left.

Each case of the corpus in ``tests/fixtures/bad/`` (see its README) breaks one
rule of one input format, and is run through the command a user would run on
it: samples tables through ``mirage score``; scores tables, lm-eval
``results_*.json``, wide CSVs and BIG-bench score files through ``mirage meta``,
``mirage fit`` or ``mirage report``; a ladder folder through ``mirage ladder
eval``; MNIST IDX and CIFAR ``.npz`` files through ``mirage vision
autoencoder``; and bad command-line values through the command that takes
them. The expected line and field come from how each file was written (see
the README), not from running the code. The CLI must print exactly one line
``error: FILE, line N, field 'F': ...`` on stderr (parts absent where the
README says "-"), exit with code 2, print no traceback, and leave nothing in
the output folder (no output file, no temporary file).

Parquet cases, the huge line and the missing ``ladder.json`` are built here in
``tmp_path`` (no binary blobs or 64 MiB files in the repository).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from miragelab.metrics import REGISTRY
from miragelab.tables import MAX_LINE_BYTES

BAD = Path(__file__).parent / "fixtures" / "bad"
#: corpus folders kept by other parts of the project (their own tests drive them)
OTHER_FOLDERS = ("lm_eval", "helm", "eval")


@dataclass(frozen=True)
class Case:
    """One malformed input, the command it goes through, and where the error must point.

    ``command`` is one of :data:`COMMANDS`; ``options`` are appended to it;
    ``blamed`` is the file the error must name (relative to the corpus; default:
    the last of ``files``), or None when the fault is a command-line value.
    """

    files: tuple[str, ...]
    line: int | None
    field: str | None
    command: str = "score"
    options: tuple[str, ...] = ("--metrics", "all")
    unit: str = "line"
    blamed: str | None = ""


def _score(files: list[Path], out: Path) -> list[str]:
    return ["score", *map(str, files), "--out", str(out / "scores.parquet")]


def _meta(files: list[Path], out: Path) -> list[str]:
    return ["meta", *map(str, files), "--out", str(out / "meta"), "--n-resamples", "100"]


def _fit(files: list[Path], out: Path) -> list[str]:
    return ["fit", *map(str, files), "--task", "lambada", "--family", "tiny"] + [
        "--soft",
        "ppl",
        "--holdout",
        "1",
        "--out",
        str(out / "fit"),
    ]


def _report(files: list[Path], out: Path) -> list[str]:
    return ["report", *map(str, files), "--out", str(out / "report"), "--n-resamples", "100"]


def _ladder_eval(files: list[Path], out: Path) -> list[str]:
    folder = files[0] if files[0].is_dir() else files[0].parent
    return ["ladder", "eval", str(folder), "--out", str(out / "samples.parquet"), "--n-test", "8"]


def _mnist(files: list[Path], out: Path) -> list[str]:
    images, labels = files
    return ["vision", "autoencoder", "--quick", "--mnist-images", str(images)] + [
        "--mnist-labels",
        str(labels),
        "--out",
        str(out / "vision"),
    ]


def _cifar(files: list[Path], out: Path) -> list[str]:
    return ["vision", "autoencoder", "--quick", "--cifar100", str(files[0])] + [
        "--out",
        str(out / "vision"),
    ]


def _theory(files: list[Path], out: Path) -> list[str]:
    return ["theory", "--out", str(out / "theory")]


def _plan(files: list[Path], out: Path) -> list[str]:
    return ["plan"]


def _vision_digits(files: list[Path], out: Path) -> list[str]:
    return ["vision", "autoencoder", "--quick", "--out", str(out / "vision")]


COMMANDS: dict[str, Callable[[list[Path], Path], list[str]]] = {
    "score": _score,
    "meta": _meta,
    "fit": _fit,
    "report": _report,
    "ladder eval": _ladder_eval,
    "mnist": _mnist,
    "cifar": _cifar,
    "theory": _theory,
    "plan": _plan,
    "vision": _vision_digits,
}

# --------------------------------------------------------------------------- samples tables

SAMPLES_CASES: dict[str, Case] = {
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
    "partial_prediction": Case(
        ("partial_prediction.jsonl",), 3, "prediction", options=("--metrics", "exact_match")
    ),
    "unknown_metric": Case(
        ("unknown_metric.jsonl",),
        None,
        "metrics",
        options=("--metrics", "exact_match,accuracy"),
        blamed=None,
    ),
    "csv_missing_column": Case(("csv_missing_column.csv",), 2, "params"),
    "csv_params_not_numeric": Case(("csv_params_not_numeric.csv",), 3, "params"),
    "csv_logprob_not_json": Case(("csv_logprob_not_json.csv",), 4, "target_token_logprobs"),
    "duplicate_across_files": Case(
        ("across_files_a.jsonl", "across_files_b.jsonl"),
        2,
        "example_id",
        options=("--metrics", "exact_match"),
    ),
    "task_empty": Case(("task_empty.jsonl",), 2, "task"),
    "prediction_number": Case(("prediction_number.jsonl",), 3, "prediction"),
    "logprobs_not_list": Case(("logprobs_not_list.jsonl",), 2, "target_token_logprobs"),
    "step_float": Case(("step_float.jsonl",), 3, "step"),
    "example_id_float": Case(("example_id_float.jsonl",), 2, "example_id"),
    "params_bool": Case(("params_bool.jsonl",), 2, "params"),
    "choice_logprobs_missing": Case(("choice_logprobs_missing.jsonl",), 3, "correct_choice"),
    "trailing_garbage": Case(("trailing_garbage.jsonl",), 2, None),
    "json_array": Case(("json_array.json",), 1, None),
    "csv_not_utf8": Case(("csv_not_utf8.csv",), 3, None),
    "csv_ragged": Case(("csv_ragged.csv",), 4, None),
    "csv_unclosed_quote": Case(("csv_unclosed_quote.csv",), 3, None),
    "csv_duplicate_column": Case(("csv_duplicate_column.csv",), 1, "prediction"),
    "gzip_truncated": Case(("gzip_truncated.jsonl.gz",), 4, None),
}

# --------------------------------------------------------------------------- scores tables

SCORES_CASES: dict[str, Case] = {
    "scores_value_nan": Case(("scores/value_nan.jsonl",), 2, "value", "meta", ()),
    "scores_ci_inverted": Case(("scores/ci_inverted.csv",), 3, "ci_low", "meta", ()),
    "scores_hib_string": Case(("scores/hib_string.jsonl",), 2, "higher_is_better", "report", ()),
    "scores_n_negative": Case(("scores/n_negative.jsonl",), 3, "n", "meta", ()),
    "scores_duplicate_metric": Case(("scores/duplicate_metric.csv",), 5, "metric", "meta", ()),
    "scores_missing_value": Case(
        ("scores/missing_value.jsonl",), 2, "value", "fit", ("--harsh", "acc")
    ),
    "scores_family_same_params": Case(
        ("scores/family_same_params.csv",), 3, "params", "report", ()
    ),
    "scores_params_zero": Case(("scores/params_zero.csv",), 2, "params", "fit", ("--harsh", "acc")),
    "scores_step_string": Case(("scores/step_string.jsonl",), 1, "step", "meta", ()),
    "fit_unknown_metric": Case(
        ("scores/fit_unknown_metric.jsonl",),
        None,
        "metric",
        "fit",
        ("--harsh", "accuracy"),
        blamed=None,
    ),
}

# --------------------------------------------------------------------------- published results

LM = "lm_eval_results/"
RESULTS_CASES: dict[str, Case] = {
    "lm_eval_malformed": Case((LM + "malformed.json",), 13, None, "meta", ()),
    "lm_eval_not_utf8": Case((LM + "not_utf8.json",), 28, None, "meta", ()),
    "lm_eval_empty": Case((LM + "empty.json",), 1, None, "meta", ()),
    "lm_eval_results_list": Case((LM + "results_list.json",), 2, "results", "meta", ()),
    "lm_eval_task_not_object": Case((LM + "task_not_object.json",), 10, "results.piqa", "meta", ()),
    "lm_eval_params_string": Case(
        (LM + "params_string.json",), 29, "config.model_num_parameters", "meta", ()
    ),
    "lm_eval_params_negative": Case(
        (LM + "params_negative.json",), 29, "config.model_num_parameters", "report", ()
    ),
    "lm_eval_params_fractional": Case(
        (LM + "params_fractional.json",), 29, "config.model_num_parameters", "meta", ()
    ),
    "lm_eval_repeated_key": Case((LM + "repeated_key.json",), 13, "acc,none", "meta", ()),
    "lm_eval_no_numeric_scores": Case((LM + "no_numeric_scores.json",), 2, "results", "meta", ()),
    "lm_eval_unknown_size": Case((LM + "unknown_size.json",), 29, "params", "meta", ()),
    "wide_duplicate_model": Case(("wide_csv/duplicate_model.csv",), 5, "model", "meta", ()),
    "wide_params_negative": Case(("wide_csv/params_negative.csv",), 3, "params (M)", "meta", ()),
    "wide_unknown_unit": Case(("wide_csv/unknown_unit.csv",), 1, "params (Q)", "meta", ()),
    "wide_stray_text_cell": Case(
        ("wide_csv/stray_text_cell.csv",), 3, "toy_copy_3_exact_match", "report", ()
    ),
    "wide_empty_model": Case(("wide_csv/empty_model.csv",), 3, "model", "meta", ()),
    "wide_params_no_unit": Case(("wide_csv/params_no_unit.csv",), 1, "params", "meta", ()),
    "wide_ragged": Case(("wide_csv/ragged.csv",), 3, None, "meta", ()),
    "wide_not_utf8": Case(("wide_csv/not_utf8.csv",), 3, None, "meta", ()),
    "bigbench_params_negative": Case(
        ("bigbench/params_negative.json",), 5, "model.total_params", "meta", ()
    ),
    "bigbench_score_string": Case(
        ("bigbench/score_string.json",),
        24,
        "scores[1].score_dict.multiple_choice_grade",
        "meta",
        (),
    ),
    "bigbench_shots_negative": Case(
        ("bigbench/shots_negative.json",), 19, "scores[0].number_of_shots", "meta", ()
    ),
    "bigbench_missing_model_name": Case(
        ("bigbench/missing_model_name.json",), 2, "model.model_name", "meta", ()
    ),
    "bigbench_scores_not_list": Case(("bigbench/scores_not_list.json",), 12, "scores", "meta", ()),
    "bigbench_entry_not_object": Case(
        ("bigbench/entry_not_object.json",), 22, "scores[1]", "report", ()
    ),
}

# --------------------------------------------------------------------------- ladder folders

LADDER_CASES: dict[str, Case] = {
    f"ladder_{name}": Case((f"ladder/{name}/ladder.json",), line, field, "ladder eval", ())
    for name, line, field in (
        ("malformed", 21, None),
        ("not_utf8", 18, None),
        ("path_escape", 11, "models[0].path"),
        ("absolute_path", 19, "models[1].path"),
        ("params_negative", 20, "models[1].params"),
        ("duplicate_model", 18, "models[1].model"),
        ("duplicate_params", 20, "models[1].params"),
        ("unknown_task", 3, "task"),
        ("seed_string", 6, "seed"),
        ("models_not_list", 7, "models"),
        ("missing_path", 8, "models[0].path"),
        ("missing_folder", 11, "models[0].path"),
    )
}

# --------------------------------------------------------------------------- image datasets
# The image loaders name the file, and where the file has one the byte offset (from 0) and
# header field of an IDX file or the array of an .npz archive. Offsets read off the bytes:
# IDX bytes 0-1 are zero, 2 the type code, 3 the number of dimensions, then 4 bytes per
# dimension, then the data (images: 16-byte header, labels: 8).

V = "vision/"
IMAGES, LABELS = V + "good-images-idx3-ubyte", V + "good-labels-idx1-ubyte"
_IMAGE_FAULTS = {  # name: (offset, field)
    "bad_magic": (0, "magic"),  # 01 00 08 03: the first byte is not zero
    "float_type": (2, "magic"),  # type code 0x0d (float), images must be 0x08
    "cut_header": (6, "dimensions"),  # 6 bytes where the header needs 16
    "truncated": (26, "data"),  # 16 + 3*2*2 = 28 bytes needed, 26 present
    "empty": (4, "dimensions"),  # the image count (bytes 4-7) is 0
}
_LABEL_FAULTS = {
    "wrong_dims": (3, "magic"),  # 3 dimensions where labels have 1
    "trailing": (11, "data"),  # 8 + 3 label bytes, then 2 more
    "short": (4, "dimensions"),  # 2 labels (bytes 4-7) for 3 images
}
VISION_CASES: dict[str, Case] = {
    **{
        f"mnist_{name}": Case(
            (V + f"{name}-images-idx3-ubyte", LABELS),
            offset,
            field,
            "mnist",
            (),
            unit="byte offset",
            blamed=V + f"{name}-images-idx3-ubyte",
        )
        for name, (offset, field) in _IMAGE_FAULTS.items()
    },
    **{
        f"mnist_{name}": Case(
            (IMAGES, V + f"{name}-labels-idx1-ubyte"),
            offset,
            field,
            "mnist",
            (),
            unit="byte offset",
        )
        for name, (offset, field) in _LABEL_FAULTS.items()
    },
    **{
        f"cifar_{name}": Case((V + f"cifar_{name}.npz",), None, field, "cifar", ())
        for name, field in (
            ("labels_out_of_range", "y"),
            ("wrong_shape", "x"),
            ("missing_labels", "labels"),
            ("nan_pixel", "x"),
            ("object_array", "x"),
            ("not_zip", None),
        )
    },
}

# --------------------------------------------------------------------------- command-line values

VALID_SAMPLES = "unknown_metric.jsonl"  # a valid samples file
VALID_SCORES = "scores/fit_unknown_metric.jsonl"  # a valid scores file
OPTION_CASES: dict[str, Case] = {
    "theory_alpha_positive": Case((), None, "alpha", "theory", ("--alpha", "0.5"), blamed=None),
    "theory_sizes_reversed": Case(
        (), None, "n-min", "theory", ("--n-min", "1e9", "--n-max", "1e8"), blamed=None
    ),
    "theory_lengths_repeated": Case(
        (), None, "lengths", "theory", ("--lengths", "2,2"), blamed=None
    ),
    "plan_accuracy_above_one": Case(
        (), None, "accuracy", "plan", ("--accuracy", "1.5"), blamed=None
    ),
    "score_confidence": Case(
        (VALID_SAMPLES,),
        None,
        "confidence",
        "score",
        ("--metrics", "all", "--confidence", "1.5"),
        blamed=None,
    ),
    "score_resamples": Case(
        (VALID_SAMPLES,),
        None,
        "n-resamples",
        "score",
        ("--metrics", "all", "--n-resamples", "10"),
        blamed=None,
    ),
    "score_tokens": Case(
        (VALID_SAMPLES,),
        None,
        "tokens",
        "score",
        ("--metrics", "all", "--tokens", "sentence"),
        blamed=None,
    ),
    "meta_confidence": Case(
        (VALID_SCORES,), None, "confidence", "meta", ("--confidence", "2"), blamed=None
    ),
    "fit_holdout": Case(
        (VALID_SCORES,), None, "holdout", "fit", ("--harsh", "acc", "--holdout", "0"), blamed=None
    ),
    "vision_widths_repeated": Case(
        (), None, "widths", "vision", ("--widths", "4,4,16"), blamed=None
    ),
    "vision_threads": Case((), None, "threads", "vision", ("--threads", "0"), blamed=None),
}

CASES: dict[str, Case] = {
    **SAMPLES_CASES,
    **SCORES_CASES,
    **RESULTS_CASES,
    **LADDER_CASES,
    **VISION_CASES,
    **OPTION_CASES,
}


# --------------------------------------------------------------------------- running the CLI


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _mirage(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "miragelab", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=_env(), cwd=cwd)


def _expected_prefix(path: Path | str | None, line: int | None, field: str | None, unit: str):
    """The start of the error line, rendered the way InputError promises."""
    where = [] if path is None else [str(path)]
    if line is not None:
        where.append(f"{unit} {line}")
    if field is not None:
        where.append(f"field '{field}'")
    return "error: " + ", ".join(where) + ": "


def _leftovers(out_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*"))


Runner = Callable[[list[str]], tuple[int | str | None, str, str]]


def _subprocess_runner(args: list[str]) -> tuple[int | str | None, str, str]:
    result = _mirage(args)
    return result.returncode, result.stdout, result.stderr


@pytest.fixture()
def in_process(capsys: pytest.CaptureFixture[str]) -> Runner:
    """``mirage ARGS`` through the same entry point, in this process (one import, fast)."""
    from miragelab.cli import main

    def run(args: list[str]) -> tuple[int | str | None, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            main(args)
        captured = capsys.readouterr()
        return info.value.code, captured.out, captured.err

    return run


def _check_rejected(
    args: list[str], blamed: Path | str | None, case: Case, out_dir: Path, run: Runner
) -> str:
    code, stdout, stderr = run(args)
    both = stdout + stderr
    assert "Traceback" not in both, both
    assert code == 2, both
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"expected one error line, got {stderr!r}"
    expected = _expected_prefix(blamed, case.line, case.field, case.unit)
    message = lines[0]
    assert message.startswith(expected), f"expected {expected!r}..., got {message!r}"
    assert len(message) > len(expected), "the error line gives no reason"
    assert _leftovers(out_dir) == [], "output or temp file left behind"
    return message


def _run_case(case: Case, files: list[Path], tmp_path: Path, run: Runner) -> str:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    args = COMMANDS[case.command](files, out_dir) + list(case.options)
    if case.blamed is None:
        blamed = None
    elif case.blamed:
        blamed = BAD / case.blamed
    else:
        blamed = files[-1]
    return _check_rejected(args, blamed, case, out_dir, run)


@pytest.mark.parametrize("case", [pytest.param(c, id=name) for name, c in CASES.items()])
def test_bad_fixture_is_rejected(case: Case, tmp_path: Path, in_process: Runner) -> None:
    _run_case(case, [BAD / name for name in case.files], tmp_path, in_process)


#: one case per loader and command, run as a real process: exit status, one stderr line
PROCESS_CASES = (
    "gzip_truncated",
    "csv_unclosed_quote",
    "scores_value_nan",
    "fit_unknown_metric",
    "lm_eval_task_not_object",
    "wide_stray_text_cell",
    "bigbench_score_string",
    "ladder_path_escape",
    "mnist_truncated",
    "cifar_object_array",
    "theory_sizes_reversed",
)


@pytest.mark.parametrize("name", PROCESS_CASES)
def test_bad_fixture_is_rejected_by_the_mirage_process(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    _run_case(case, [BAD / f for f in case.files], tmp_path, _subprocess_runner)


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


def _parquet_scores_value_inf(path: Path) -> None:
    rows = [
        {"task": "t", "family": "f", "model": "m1", "params": 1e6, "metric": "acc", "value": 0.2},
        {"task": "t", "family": "f", "model": "m2", "params": 2e6, "metric": "acc", "value": 0.3},
        {"task": "t", "family": "f", "model": "m4", "params": 4e6, "metric": "acc"}
        | {"value": float("inf")},
    ]
    pq.write_table(pa.Table.from_pylist(rows), path)


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
    "parquet_scores_value_inf": (
        _parquet_scores_value_inf,
        Case((), 3, "value", "meta", (), unit="row"),
    ),
}


@pytest.mark.parametrize(
    ("build", "case"),
    [pytest.param(b, c, id=name) for name, (b, c) in PARQUET_CASES.items()],
)
def test_bad_parquet_is_rejected(
    build: Callable[[Path], None], case: Case, tmp_path: Path, in_process: Runner
) -> None:
    path = tmp_path / "table.parquet"
    build(path)
    _run_case(case, [path], tmp_path, in_process)


# --------------------------------------------------------------------------- built in the test


def test_huge_line_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    """A line above the reader's limit (a file with no newlines, say): line 2 is refused."""
    path = tmp_path / "huge.jsonl"
    first = json.dumps(_record(1)) + "\n"
    head = json.dumps(_record(2))[:-1] + ', "pad": "'
    with path.open("w", encoding="utf-8") as handle:
        handle.write(first + head)
        block = "x" * 2**20
        for _ in range(MAX_LINE_BYTES // len(block) + 1):
            handle.write(block)
        handle.write('"}\n')
    assert path.stat().st_size > MAX_LINE_BYTES
    case = Case((), 2, None)
    message = _run_case(case, [path], tmp_path, _subprocess_runner)
    assert "longer than" in message


def test_long_valid_line_is_read(tmp_path: Path) -> None:
    """A 4 MB prompt is a long line, not a bad one."""
    path = tmp_path / "long.jsonl"
    records = [_record(1, prompt="y" * 4_000_000), _record(2)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "scores.jsonl"
    result = _mirage(["score", str(path), "--metrics", "exact_match", "--out", str(out)])
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text().splitlines()[0])["n"] == 2


def test_ladder_folder_without_ladder_json(tmp_path: Path, in_process: Runner) -> None:
    folder = tmp_path / "not-a-ladder"
    folder.mkdir()
    case = Case((), None, None, "ladder eval", ())
    message = _run_case(case, [folder], tmp_path, in_process)
    assert "ladder.json is missing" in message


def test_ladder_n_test_zero(tmp_path: Path, in_process: Runner) -> None:
    """A well-formed ladder (folders present) with a bad --n-test: the option is named."""
    folder = tmp_path / "ladder"
    shutil.copytree(BAD / "ladder" / "missing_folder", folder)
    for name in ("tinygpt-add2-a", "tinygpt-add2-b"):
        (folder / "models" / name).mkdir(parents=True)
    case = Case((), None, "n-test", "ladder eval", ("--n-test", "0"), blamed=None)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    args = _ladder_eval([folder], out_dir)
    args[args.index("--n-test") + 1] = "0"
    _check_rejected(args, None, case, out_dir, in_process)


# --------------------------------------------------------------------------- the corpus itself


def _corpus_files() -> set[str]:
    """Every file of the corpus kept here (not the READMEs, not other parts' folders)."""
    found = set()
    for path in BAD.rglob("*"):
        rel = path.relative_to(BAD)
        if path.is_file() and path.name != "README.md" and rel.parts[0] not in OTHER_FOLDERS:
            found.add(rel.as_posix())
    return found


def test_corpus_is_covered_and_listed() -> None:
    """Every fixture file is used by a case and listed in the README; >= 50 files."""
    used = {name for case in CASES.values() for name in case.files}
    on_disk = _corpus_files()
    assert used == on_disk
    assert len(on_disk) >= 50
    readme = (BAD / "README.md").read_text(encoding="utf-8")
    unlisted = [name for name in sorted(on_disk) if f"`{name}`" not in readme]
    assert unlisted == []


def test_valid_file_is_scored(tmp_path: Path) -> None:
    samples = tmp_path / "samples.jsonl"
    whole = {  # every metric applies
        "continuation_logprob": -0.3,
        "continuation_is_greedy": True,
        "choice_lengths": [2.0, 5.0],
    }
    records = [_record(i, **whole) for i in range(1, 6)]
    records += [
        _record(i, model="tiny-2m", params=2e6, prediction="x", **whole) for i in range(1, 6)
    ]
    samples.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "out" / "scores.parquet"
    result = _mirage(["score", str(samples), "--metrics", "all", "--out", str(out)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.exists()
    scores = pq.read_table(out).to_pandas()
    assert len(scores) == 2 * len(REGISTRY)  # two models x every metric
    em = scores[scores["metric"] == "exact_match"].set_index("model")["value"]
    assert em["tiny-1m"] == 1.0 and em["tiny-2m"] == 0.0
    assert [p.name for p in out.parent.iterdir()] == ["scores.parquet"]


# --------------------------------------------------------------------------- names as paths


def _all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_names_that_look_like_paths_stay_inside_the_output(tmp_path: Path) -> None:
    """Tasks and models called ``../../x`` or ``a/b`` are data: every command that
    writes files named after them keeps every file under its --out folder."""
    work = tmp_path / "deep" / "er" / "work"
    work.mkdir(parents=True)
    scores = work / "scores.jsonl"
    rows = []
    for task in ("../../escape", "a/b/c"):
        for i, model in enumerate(("../../../m1", "/abs/m2", "org/m3", "..", "m5")):
            for metric, value in (("exact_match", 0.1 * i), ("token_edit_distance", 3 - 0.5 * i)):
                rows.append(
                    {
                        "task": task,
                        "family": "../fam",
                        "model": model,
                        "params": 10.0 ** (6 + i),
                        "metric": metric,
                        "value": value,
                        "higher_is_better": metric == "exact_match",
                    }
                )
    scores.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    before = _all_files(tmp_path)
    outs = {
        "meta": ["meta", str(scores), "--out", str(work / "o-meta"), "--n-resamples", "100"],
        "report": ["report", str(scores), "--out", str(work / "o-report"), "--n-resamples", "100"],
        "transitions": [
            "transitions",
            "detect",
            str(scores),
            "--out",
            str(work / "o-trans"),
            "--n-boot",
            "99",
        ],
    }
    for name, args in outs.items():
        result = _mirage(args, cwd=work)
        assert result.returncode == 0, (name, result.stderr)
    created = _all_files(tmp_path) - before
    allowed = [(work / f"o-{n}").resolve() for n in ("meta", "report", "trans")]
    outside = [p for p in created if not any(p.resolve().is_relative_to(a) for a in allowed)]
    assert outside == []
    assert any((work / "o-trans").rglob("*.png"))  # one figure per curve, named by the data


def test_model_names_that_look_like_paths_stay_inside_ladder_eval_output(tmp_path: Path) -> None:
    """A ladder whose models are called ``../../evil`` and ``org/m``: the partitioned
    output (one folder per model) and the table file stay inside their --out."""
    import torch

    from miragelab.ladder.presets import Preset, SizeSpec
    from miragelab.ladder.train import train_ladder

    ladder = tmp_path / "a" / "b" / "ladder"
    preset = Preset("names", (SizeSpec(1, 2, 8, 3e-3), SizeSpec(1, 2, 16, 3e-3)), 4, 8)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_ladder(ladder, "add2", preset, seed=0)
    finally:
        torch.set_num_threads(threads)
    manifest = json.loads((ladder / "ladder.json").read_text())
    for entry, name in zip(manifest["models"], ("../../evil", "org/m"), strict=True):
        entry["model"] = name
    (ladder / "ladder.json").write_text(json.dumps(manifest), encoding="utf-8")
    work = tmp_path / "a" / "b" / "work"
    work.mkdir()
    before = _all_files(tmp_path)
    for out in (work / "o-parts", work / "o-table" / "samples.parquet"):
        args = [
            "ladder",
            "eval",
            str(ladder),
            "--out",
            str(out),
            "--n-test",
            "16",
            "--threads",
            "1",
        ]
        result = _mirage(args, cwd=work)
        assert result.returncode == 0, result.stderr
    created = _all_files(tmp_path) - before
    allowed = [(work / "o-parts").resolve(), (work / "o-table").resolve()]
    outside = [p for p in created if not any(p.resolve().is_relative_to(a) for a in allowed)]
    assert outside == []
    root = work / "o-parts"
    parts = [p.relative_to(root).as_posix() for p in created if p.is_relative_to(root)]
    parts = [p for p in parts if p.endswith(".parquet")]
    assert len(parts) == 2 and all(".." not in p.split("/") for p in parts)


def test_about_names_the_file_only_where_an_error_names_none():
    from miragelab.errors import InputError, about

    with pytest.raises(InputError) as caught, about("s.parquet"):
        raise InputError("too few", field="task")
    assert str(caught.value) == "s.parquet, field 'task': too few"
    with pytest.raises(InputError) as caught, about("s.parquet"):
        raise InputError("bad", path="other.csv", line=3, field="x")
    assert str(caught.value) == "other.csv, line 3, field 'x': bad"
