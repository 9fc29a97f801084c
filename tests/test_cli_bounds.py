"""Every size option has an upper bound, answer lengths are finite and > 0, and a
repeated ``NAME=VALUE`` option names one thing once: each refusal is one line on
stderr naming the option, exit code 2, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import mirage_code


def _refused(capsys: pytest.CaptureFixture[str], args: list[object], field: str) -> str:
    capsys.readouterr()
    assert mirage_code(*args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: field '{field}': "), lines[0]
    return lines[0]


@pytest.fixture()
def scores(tmp_path: Path) -> Path:
    from miragelab.tables import write_table
    from tests.conftest import make_theory_scores

    return write_table(make_theory_scores(), tmp_path / "scores.parquet")


# (arguments after the command, the option blamed, the bound the message gives)
TOO_LARGE = [
    (["theory", "--points", "100001"], "points", "100,000"),
    (["meta", "SCORES", "--n-resamples", "1000001"], "n-resamples", "1,000,000"),
    (["report", "SCORES", "--n-resamples", "1000001"], "n-resamples", "1,000,000"),
    (["score", "SCORES", "--n-resamples", "5000000"], "n-resamples", "1,000,000"),
    (["score", "SCORES", "--batch-rows", "10000001"], "batch-rows", "10,000,000"),
    (["transitions", "detect", "SCORES", "--n-boot", "100001"], "n-boot", "100,000"),
    (["transitions", "induction", "--steps", "1000001"], "steps", "1,000,000"),
    (["transitions", "rates", "--n-smooth", "100001"], "n-smooth", "100,000"),
    (["transitions", "rates", "--n-per-setting", "10001"], "n-per-setting", "10,000"),
    (["vision", "autoencoder", "--seeds", "1001"], "seeds", "1,000"),
    (["vision", "classifier", "--epochs", "100001"], "epochs", "100,000"),
    (["vision", "classifier", "--sequences", "10000001"], "sequences", "10,000,000"),
]


@pytest.mark.parametrize(("args", "field", "bound"), TOO_LARGE)
def test_a_size_option_above_its_bound_is_refused(
    args: list[str],
    field: str,
    bound: str,
    scores: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / ("out.parquet" if args[0] == "score" else "out")
    argv = [scores if a == "SCORES" else a for a in args] + ["--out", out]
    line = _refused(capsys, argv, field)
    assert f"must be <= {bound}" in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["theory", "--points", "1"], "points"),
        (["vision", "autoencoder", "--epochs", "0"], "epochs"),
        (["ladder", "predictions", "SCORES", "--small-n", "0"], "small-n"),
    ],
)
def test_a_size_option_below_its_bound_is_refused(
    args: list[str], field: str, scores: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = [scores if a == "SCORES" else a for a in args] + ["--out", out]
    assert "must be >= " in _refused(capsys, argv, field)
    assert not out.exists()


def test_the_largest_allowed_resamples_pass_the_check() -> None:
    from miragelab.cli._options import MAX_RESAMPLES, check_interval_options

    check_interval_options(0.95, MAX_RESAMPLES)  # no error at the bound itself


@pytest.mark.parametrize("length", ["inf", "-inf", "nan", "0", "-1"])
def test_fit_refuses_an_answer_length_that_is_not_finite_and_positive(
    length: str, scores: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fit"
    args = ["fit", scores, "--task", "add", "--family", "law", "--harsh", "exact_match"]
    line = _refused(
        capsys, [*args, "--soft", "cross_entropy", "--length", length, "--out", out], "length"
    )
    assert length in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "field", "name"),
    [
        (["--task", "t=10:5", "--model", "m=1b", "--model", "m=2b"], "model", "'m'"),
        (["--task", "t=10:5", "--task", "t=20:5", "--model", "m=1b"], "task", "'t'"),
    ],
)
def test_cost_refuses_a_name_given_twice(
    args: list[str], field: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _refused(capsys, ["cost", *args], field)
    assert f"{name} given twice" in line


def test_cost_with_distinct_names_prints_each_model(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert mirage_code("cost", "--task", "t=10:5", "--model", "a=1b", "--model", "b=2b") == 0
    printed = capsys.readouterr().out
    # 10 samples x 5 tokens x 2 N FLOPs per token: 1e11 for 1b, 2e11 for 2b
    assert "1e+11" in printed and "2e+11" in printed
