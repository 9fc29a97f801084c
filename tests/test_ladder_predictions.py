"""The three predictions on a synthetic ladder whose answers are known digit by digit."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from miragelab.emergence import emergence_score
from miragelab.ladder.predictions import prefix_samples, run_predictions
from miragelab.tables import SAMPLES, validate_frame, write_table

N_EX, L = 2000, 4
P_DIGIT = np.array([0.02, 0.3, 0.55, 0.75, 0.9, 0.98])  # per-digit accuracy of each model
PARAMS = np.logspace(3.5, 5.5, P_DIGIT.size)


def _synthetic() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    u = rng.random((N_EX, L))
    targets = [f"{v:04d}" for v in rng.integers(1000, 10000, N_EX)]
    correct = u[None, :, :] < P_DIGIT[:, None, None]  # (model, example, digit)
    rows = []
    for k, p in enumerate(P_DIGIT):
        for j, t in enumerate(targets):
            pred = "".join(
                c if correct[k, j, i] else str((int(c) + 1) % 10) for i, c in enumerate(t)
            )
            rows.append(
                {
                    "task": "add4",
                    "family": "synthetic",
                    "model": f"m{k}",
                    "params": float(PARAMS[k]),
                    "example_id": str(j),
                    "prompt": "x",
                    "target": t,
                    "prediction": pred,
                    "target_token_logprobs": [math.log(p)] * L,
                }
            )
    return validate_frame(pd.DataFrame(rows), SAMPLES), correct


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def test_predictions_match_hand_computed_curves(tmp_path):
    samples, correct = _synthetic()
    run_predictions(samples, tmp_path, small_n=100)
    for stem in ("pred1_metric", "pred2_resolution", "pred3_length"):
        for ext in (".png", ".svg", ".csv"):
            assert (tmp_path / (stem + ext)).stat().st_size > 0
    scores = pd.read_csv(tmp_path / "scores.csv")
    em = scores[scores.metric == "exact_match"].sort_values("params")["value"].to_numpy()
    np.testing.assert_allclose(em, correct.all(axis=2).mean(axis=1))
    ted = scores[scores.metric == "token_edit_distance"].sort_values("params")["value"]
    by_model = samples.groupby("model", sort=False)
    expected = [
        np.mean([_levenshtein(t, p) for t, p in zip(g.target, g.prediction, strict=True)])
        for _, g in by_model
    ]
    np.testing.assert_allclose(ted, expected)
    assert (ted.to_numpy() <= (~correct).sum(axis=2).mean(axis=1) + 1e-12).all()  # <= Hamming
    ptp = scores[scores.metric == "per_token_prob"].sort_values("params")["value"]
    np.testing.assert_allclose(ptp, P_DIGIT)

    length = pd.read_csv(tmp_path / "pred3_length.csv")
    for n in range(1, L + 1):
        curve = correct[:, :, :n].all(axis=2).mean(axis=1)
        row = length[(length.answer_length == n) & (length.metric == "exact_match")].iloc[0]
        assert row["emergence_score"] == pytest.approx(emergence_score(PARAMS, curve))
        assert row["y_last"] == pytest.approx(curve[-1]) and row["y_first"] == pytest.approx(
            curve[0]
        )
    pred1 = pd.read_csv(tmp_path / "pred1_metric.csv").set_index("metric")
    assert pred1.loc["token_edit_distance", "verdict_vs_exact_match"] in {"mirage", "smooth"}


def test_resolution_flags_zero_on_small_set_resolved_on_large(tmp_path):
    samples, correct = _synthetic()
    hits = correct.all(axis=2)
    run_predictions(samples, tmp_path, small_n=100)
    res = pd.read_csv(tmp_path / "pred2_resolution.csv").sort_values("params")
    np.testing.assert_array_equal(res["correct_small"], hits[:, :100].sum(axis=1))
    np.testing.assert_array_equal(res["correct_large"], hits.sum(axis=1))
    # 0.3**4 = 0.8%: expect about 0.8 hits in 100 and 16 in 2000
    second = res.iloc[1]
    assert second["correct_large"] > 0 and second["ci_low_large"] > 0
    assert second["resolvable_small"] == pytest.approx(1 - 0.05 ** (1 / 100))
    assert (res["zero_on_small"] == (res["correct_small"] == 0)).all()


def test_prefix_samples_cut_targets_and_logprobs():
    samples, _ = _synthetic()
    cut = prefix_samples(samples.head(10), 2)
    assert (cut["target"].str.len() == 2).all() and (cut["task"] == "add4:first2").all()
    assert all(len(v) == 2 for v in cut["target_token_logprobs"])


def test_cli_rejects_two_ladders_in_one_table(tmp_path):
    samples, _ = _synthetic()
    other = samples.copy()
    other["family"] = "other"
    path = write_table(pd.concat([samples.head(50), other.head(50)]), tmp_path / "s.parquet")
    src = str(Path(__file__).resolve().parents[1] / "src")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {src!r}); from miragelab.cli import main; main()",
            "ladder",
            "predictions",
            str(path),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "one ladder" in proc.stderr and proc.stderr.count("\n") == 1
