"""`mirage plan`, `mirage meta` and `mirage fit` end to end, including bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from miragelab.tables import write_table


def mirage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "miragelab", *args], capture_output=True, text=True, timeout=300
    )


def test_plan_matches_the_hand_computed_test_set_size() -> None:
    # chance 0: n = ceil(log(0.05) / log(0.999)) = ceil(2994.73) = 2995
    result = mirage("plan", "--accuracy", "1e-3", "--confidence", "0.95")
    assert result.returncode == 0
    assert "2,995 examples" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["plan"],
        ["plan", "--accuracy", "0.1", "--n", "10"],
        ["plan", "--accuracy", "0"],
        ["plan", "--accuracy", "0.2", "--chance", "0.25"],
        ["plan", "--n", "100", "--confidence", "1.5"],
    ],
)
def test_plan_rejects_bad_options(args: list[str]) -> None:
    result = mirage(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: field '")


@pytest.fixture()
def scores_file(tmp_path: Path, theory_scores: pd.DataFrame) -> Path:
    return write_table(theory_scores, tmp_path / "scores.parquet")


@pytest.fixture()
def noisy_scores_file(tmp_path: Path, noisy_theory_scores: pd.DataFrame) -> Path:
    return write_table(noisy_theory_scores, tmp_path / "noisy.parquet")


def test_meta_writes_tables_and_figures(noisy_scores_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "meta"
    result = mirage("meta", str(noisy_scores_file), "--out", str(out), "--n-resamples", "200")
    assert result.returncode == 0, result.stderr
    verdicts = pd.read_csv(out / "meta_verdicts.csv")
    assert verdicts["verdict"].tolist() == ["mirage"]
    evidence = pd.read_csv(out / "meta_verdict_evidence.csv")
    assert set(evidence["soft_metric"]) == {"cross_entropy", "token_edit_distance"}
    assert len(list((out / "verdicts").glob("*.png"))) == 1
    measures = pd.read_parquet(out / "meta_measures.parquet")
    assert len(measures) == 3
    for name in ("emergence_by_metric", "top_curves", "verdict_pairs"):
        assert (out / f"{name}.png").stat().st_size > 1000
        assert (out / f"{name}.svg").exists()


def test_fit_writes_the_backtest(scores_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "fit"
    result = mirage(
        "fit",
        str(scores_file),
        "--task",
        "add",
        "--family",
        "law",
        "--harsh",
        "exact_match",
        "--soft",
        "cross_entropy",
        "--length",
        "8",
        "--holdout",
        "2",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out / "backtest.csv")
    assert len(table) == 2 and table["abs_error_power_law"].max() < 1e-9
    assert (out / "forecast.png").exists()


def test_meta_on_a_malformed_scores_file(tmp_path: Path) -> None:
    bad = tmp_path / "scores.jsonl"
    good = {"task": "t", "family": "f", "model": "a", "params": 1e6, "metric": "acc", "value": 0.1}
    wrong = {**good, "model": "b", "params": "huge"}
    bad.write_text(f"{json.dumps(good)}\n{json.dumps(wrong)}\n")
    out = tmp_path / "meta"
    result = mirage("meta", str(bad), "--out", str(out))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "scores.jsonl" in lines[0] and "line 2" in lines[0] and "'params'" in lines[0]
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["plan", "--accuracy", "abc"], "'--accuracy'"),
        (["score", "x.jsonl", "--bogus"], "--bogus"),
        (["score"], "'samples'"),
    ],
)
def test_a_bad_command_line_is_one_line_and_exit_2(args, names):
    """Typos in options get the same one-line error as bad files, not a usage box."""
    run = subprocess.run(
        [sys.executable, "-m", "miragelab", *args], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and names in lines[0]
    assert "Traceback" not in run.stderr and run.stdout == ""
