"""`mirage score` without --metrics scores every metric the samples have columns for."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from miragelab.cli import app
from miragelab.tables import SAMPLES, read_table, validate_frame, write_table


def _samples() -> pd.DataFrame:
    gen = pd.DataFrame(
        {
            "task": "add",
            "family": "f",
            "model": "m",
            "params": 1e6,
            "example_id": ["1", "2"],
            "target": ["12", "30"],
            "prediction": ["12", "31"],
        }
    )
    mc = pd.DataFrame(
        {
            "task": "quiz",
            "family": "f",
            "model": "m",
            "params": 1e6,
            "example_id": ["1", "2"],
            "choice_logprobs": [[-0.1, -3.0], [-0.2, -2.0]],
            "correct_choice": [0, 1],
        }
    )
    return validate_frame(pd.concat([gen, mc], ignore_index=True), SAMPLES)


@pytest.mark.parametrize("mode", ["--in-memory", "--stream"])
def test_auto_scores_each_task_with_the_metrics_it_has(tmp_path, mode):
    write_table(_samples(), tmp_path / "s.parquet")
    result = CliRunner().invoke(
        app, ["score", str(tmp_path / "s.parquet"), "--out", str(tmp_path / "sc.csv"), mode]
    )
    assert result.exit_code == 0, result.output
    scores = read_table(tmp_path / "sc.csv", "scores")
    got = {(r.task, r.metric): r.value for r in scores.itertuples()}
    # generation task: one of two answers exactly right; "31" vs "30" is one character off
    assert got[("add", "exact_match")] == pytest.approx(0.5)
    assert got[("add", "token_edit_distance")] == pytest.approx(0.5)
    # multiple choice: argmax is choice 0 for both, right only for the first
    assert got[("quiz", "multiple_choice_grade")] == pytest.approx(0.5)
    assert {m for t, m in got if t == "quiz"} == {"multiple_choice_grade", "brier_score"}
    assert not any(m.startswith(("target_logprob", "per_token")) for _, m in got)


def test_auto_with_nothing_to_score_is_one_line(tmp_path):
    frame = _samples().iloc[:2].drop(columns=["prediction"])
    write_table(frame, tmp_path / "s.jsonl")
    result = CliRunner().invoke(
        app, ["score", str(tmp_path / "s.jsonl"), "--out", str(tmp_path / "sc.csv")]
    )
    assert result.exit_code != 0
    assert "no metric applies" in str(result.exception)
    assert not (tmp_path / "sc.csv").exists()
