"""Several correct choices: the ``choice_is_correct`` column, its metrics, rules and I/O.

lm-eval-harness scores a multi-target multiple-choice task as right when the
top choice is any gold (``acc = pred in gold``); HELM takes the best of the
correct references. The expected values below are worked by hand.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import assert_refused

from miragelab.metrics import compute_metrics
from miragelab.scoring import score_samples
from miragelab.tables import SAMPLES, read_samples, validate_frame, write_table

CHOICE_METRICS = ["multiple_choice_grade", "multiple_choice_grade_norm", "brier_score"]


def _samples(rows: list[tuple], ragged: bool = False) -> pd.DataFrame:
    """rows: (choice log-probs, choice lengths, correct index, flags or None)."""
    return validate_frame(
        pd.DataFrame(
            {
                "task": "mc",
                "family": "f",
                "model": "m",
                "params": 1e6,
                "example_id": [str(i) for i in range(len(rows))],
                "choice_logprobs": [r[0] for r in rows],
                "choice_lengths": [r[1] for r in rows],
                "correct_choice": [r[2] for r in rows],
                "choice_is_correct": [r[3] for r in rows],
            }
        ),
        SAMPLES,
    )


ROWS = [
    # top choice 2 (-0.5) is the second correct one: right only because several are correct
    ([-1.0, -2.0, -0.5], [1.0, 1.0, 1.0], 0, [1, 0, 1]),
    # one correct choice (no flags): top choice 0 is it
    ([-0.2, -3.0, -1.0], [1.0, 1.0, 1.0], 0, None),
    # top choice 1 is wrong; per character (-0.2, -1, -3) choice 0 wins, and it is correct
    ([-2.0, -1.0, -3.0], [10.0, 1.0, 1.0], 0, [1, 0, 1]),
]


def _brier(logprobs: list[float], target: list[int]) -> float:
    weights = [math.exp(v) for v in logprobs]
    probs = [w / sum(weights) for w in weights]
    return sum((p - t) ** 2 for p, t in zip(probs, target, strict=True)) / len(probs)


@pytest.mark.parametrize("ragged", [False, True])
def test_grades_and_brier_worked_by_hand(ragged):
    rows = list(ROWS)
    if ragged:  # a fourth example with two choices: the per-example (not per-column) path
        rows.append(([-0.3, -0.1], [1.0, 1.0], 1, [0, 1]))
    values = compute_metrics(_samples(rows), CHOICE_METRICS)
    grade = [1.0, 1.0, 0.0] + ([1.0] if ragged else [])
    grade_norm = [1.0, 1.0, 1.0] + ([1.0] if ragged else [])
    assert values["multiple_choice_grade"].tolist() == grade
    assert values["multiple_choice_grade_norm"].tolist() == grade_norm
    brier = [
        _brier([-1.0, -2.0, -0.5], [1, 0, 1]),  # = 0.2225 (probs 0.3315, 0.1220, 0.5466)
        _brier([-0.2, -3.0, -1.0], [1, 0, 0]),
        _brier([-2.0, -1.0, -3.0], [1, 0, 1]),
    ] + ([_brier([-0.3, -0.1], [0, 1])] if ragged else [])
    np.testing.assert_allclose(values["brier_score"], brier, rtol=0, atol=1e-12)
    assert brier[0] == pytest.approx(0.2225, abs=1e-4)


def test_flags_that_only_repeat_correct_choice_change_nothing():
    single = [(r[0], r[1], r[2], None) for r in ROWS]
    one_hot = [(r[0], r[1], r[2], [int(j == r[2]) for j in range(len(r[0]))]) for r in ROWS]
    a = compute_metrics(_samples(single), CHOICE_METRICS)
    b = compute_metrics(_samples(one_hot), CHOICE_METRICS)
    pd.testing.assert_frame_equal(a, b)


def test_flags_round_trip_through_every_format(tmp_path):
    samples = _samples(ROWS)
    for name in ("s.jsonl", "s.csv", "s.parquet"):
        back = read_samples(write_table(samples, tmp_path / name))
        flags = [None if v is None or v is pd.NA else list(v) for v in back["choice_is_correct"]]
        assert flags == [[1.0, 0.0, 1.0], None, [1.0, 0.0, 1.0]]


@pytest.mark.parametrize(
    ("flags", "correct", "message"),
    [
        ("[1, 0]", 0, "2 correctness flag(s) for 3 choice log-prob(s)"),
        ("[1, 0, 0.5]", 0, "item 2: must be 0 or 1, got 0.5"),
        ("[0, 0, 0]", 0, "no choice is flagged correct (1)"),
        ("[0, 1, 1]", 0, "correct_choice=0 is not flagged correct here"),
        ("[1, -1, 0]", 0, "item 1: must be >= 0, got -1"),
        ('"1,0,1"', 0, "expected a list of numbers"),
    ],
)
def test_bad_flags_name_line_and_field(tmp_path, flags, correct, message):
    good = {"task": "t", "family": "f", "model": "m", "params": 1}
    lines = [
        json.dumps({**good, "example_id": "0", "choice_logprobs": [-1, -2], "correct_choice": 1}),
        f'{{"task": "t", "family": "f", "model": "m", "params": 1, "example_id": "1", '
        f'"choice_logprobs": [-1, -2, -3], "correct_choice": {correct}, '
        f'"choice_is_correct": {flags}}}',
    ]
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(lines) + "\n")
    from miragelab.streaming import stream_score

    assert_refused(lambda: read_samples(path), path, 2, "choice_is_correct", message)
    grade = ["multiple_choice_grade"]
    assert_refused(lambda: stream_score([path], grade), path, 2, "choice_is_correct", message)


def test_streaming_and_in_memory_scores_agree(tmp_path):
    from miragelab.streaming import stream_score

    samples = _samples(ROWS * 4)
    samples["example_id"] = [str(i) for i in range(len(samples))]
    path = write_table(samples, tmp_path / "s.parquet")
    memory = score_samples(read_samples(path), CHOICE_METRICS)
    streamed = stream_score([path], CHOICE_METRICS, batch_rows=5)  # batches cut the examples
    a = memory.sort_values("metric").reset_index(drop=True)
    b = streamed.sort_values("metric").reset_index(drop=True)
    np.testing.assert_allclose(a["value"], b["value"], rtol=0, atol=1e-12)
    grade = a.set_index("metric").loc["multiple_choice_grade", "value"]
    assert grade == pytest.approx(2 / 3)  # rows 1 and 2 of each three are right
