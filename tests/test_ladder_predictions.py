"""The three predictions on a synthetic ladder whose answers are known digit by digit."""

from __future__ import annotations

import math
import subprocess
import sys
from itertools import permutations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from miragelab.emergence import emergence_score
from miragelab.errors import InputError
from miragelab.ladder.predictions import prediction_length, run_predictions
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
    for stem in ("pred1_metric", "pred2_resolution"):
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

    assert not (tmp_path / "pred3_length.csv").exists()  # one answer length: no prediction 3
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


def _by_length(
    p_digit: np.ndarray = P_DIGIT, n_ex: int = 600, lengths=(1, 2, 3, 4, 5), seed: int = 1
) -> tuple[pd.DataFrame, np.ndarray]:
    """Every model answers the same operand pairs at every answer length L: digit i of an
    answer is right with the model's probability (independently), the target log-prob of
    every digit is log p. ``correct[k, j, i]``: model k, example j, digit i."""
    rng = np.random.default_rng(seed)
    width = max(lengths)
    correct = rng.random((p_digit.size, n_ex, width)) < p_digit[:, None, None]
    values = rng.integers(0, 10**width, n_ex)
    rows = []
    for length in lengths:
        for k, p in enumerate(p_digit):
            for j, v in enumerate(values):
                target = f"{v % 10**length:0{length}d}"
                pred = "".join(c if correct[k, j, width - length + i] else str((int(c) + 1) % 10)
                               for i, c in enumerate(target))  # fmt: skip
                rows.append({"task": f"tail-len{length}", "family": "synthetic", "model": f"m{k}",
                             "params": float(PARAMS[k]), "example_id": str(j), "prompt": "x",
                             "target": target, "prediction": pred,
                             "target_token_logprobs": [math.log(p)] * length})  # fmt: skip
    return validate_frame(pd.DataFrame(rows), SAMPLES), correct


def _spearman_p(scores: np.ndarray) -> float:
    """Two-sided exact permutation p-value of Spearman's rho with 1..n, by enumeration."""
    lengths = np.arange(1, scores.size + 1)
    observed = abs(spearmanr(lengths, scores).statistic)
    found = [abs(spearmanr(lengths, np.array(order)).statistic) for order in permutations(scores)]
    return float(np.mean(np.array(found) >= observed - 1e-12))


def test_prediction_3_by_hand(tmp_path):
    samples, correct = _by_length()
    run_predictions(samples, tmp_path, seed=0)  # several answer lengths: prediction 3
    assert not (tmp_path / "pred1_metric.csv").exists()
    for name in ("pred3_length.png", "pred3_length.svg", "pred3_verdict.csv", "scores.csv"):
        assert (tmp_path / name).stat().st_size > 0
    curves = pd.read_csv(tmp_path / "pred3_curves.csv")
    length = pd.read_csv(tmp_path / "pred3_length.csv")
    scores = []
    for n in range(1, 6):
        hits = correct[:, :, 5 - n :].all(axis=2)  # the last n digits
        em = hits.mean(axis=1)
        rows = samples[samples.task == f"tail-len{n}"]
        ted = np.array([
            np.mean([_levenshtein(t, q) for t, q in zip(g.target, g.prediction, strict=True)])
            for _, g in rows.groupby("model", sort=False)
        ])  # fmt: skip
        assert (ted <= (~correct[:, :, 5 - n :]).sum(axis=2).mean(axis=1) + 1e-12).all()
        c = curves[curves.answer_length == n].sort_values("params")
        np.testing.assert_allclose(c["exact_match"], em)
        np.testing.assert_allclose(c["token_edit_distance"], ted)
        np.testing.assert_allclose(c["closed_form_exact_match"], P_DIGIT**n, rtol=1e-9)
        np.testing.assert_allclose(c["per_token_prob_geomean"], P_DIGIT, rtol=1e-9)
        assert (c["closed_form_ci_low"] <= P_DIGIT**n + 1e-12).all()
        assert (c["per_token_prob_ci_low"] <= P_DIGIT + 1e-12).all()
        assert (c["per_token_prob_ci_high"] >= P_DIGIT - 1e-12).all()
        row = length[(length.answer_length == n) & (length.metric == "exact_match")].iloc[0]
        assert row["emergence_score"] == pytest.approx(emergence_score(PARAMS, em))
        assert row["score_ci_low"] <= row["emergence_score"] <= row["score_ci_high"]
        assert "same draw at every L" in row["ci_method"]
        ted_row = length[(length.answer_length == n) & (length.metric == "token_edit_distance")]
        assert ted_row["emergence_score"].iloc[0] == pytest.approx(emergence_score(PARAMS, -ted))
        scores.append(row["emergence_score"])
    rank = pd.read_csv(tmp_path / "pred3_rank.csv").set_index(["metric", "measure"])
    em_rank = rank.loc[("exact_match", "emergence_score")]
    assert em_rank["spearman_rho"] == pytest.approx(spearmanr(range(1, 6), scores).statistic)
    assert em_rank["p_value"] == pytest.approx(_spearman_p(np.array(scores)))
    assert em_rank["ci_low"] <= em_rank["spearman_rho"] <= em_rank["ci_high"]
    smooth = length[length.metric == "exact_match"].sort_values("answer_length")["smoothness"]
    smooth_rank = rank.loc[("exact_match", "smoothness")]
    assert smooth_rank["spearman_rho"] == pytest.approx(spearmanr(range(1, 6), smooth).statistic)
    assert (length["smoothness_ci_low"] <= length["smoothness"] + 1e-12).all()
    verdicts = pd.read_csv(tmp_path / "pred3_verdict.csv")
    assert sorted(verdicts["task"]) == [f"tail-len{n}" for n in range(1, 6)]


def test_prediction_3_resamples_each_length_alone_when_the_examples_differ(tmp_path):
    samples, _ = _by_length(n_ex=200)
    long = samples["task"] == "tail-len5"
    samples.loc[long, "example_id"] = "other-" + samples.loc[long, "example_id"]
    prediction_length(samples, tmp_path, n_resamples=200)
    length = pd.read_csv(tmp_path / "pred3_length.csv")
    assert length["ci_method"].str.contains("within each model and L").all()


def test_a_length_no_model_answers_is_left_out_of_the_rank_correlation(tmp_path):
    samples, correct = _by_length(n_ex=200)
    five = samples["task"] == "tail-len5"
    samples.loc[five, "prediction"] = "x"  # no model answers any 5-digit example
    prediction_length(samples, tmp_path, n_resamples=200)
    length = pd.read_csv(tmp_path / "pred3_length.csv").set_index(["answer_length", "metric"])
    assert not length.loc[(5, "exact_match"), "curve_varies"]
    assert length.loc[(4, "exact_match"), "curve_varies"]
    rank = pd.read_csv(tmp_path / "pred3_rank.csv").set_index(["metric", "measure"])
    em = rank.loc[("exact_match", "emergence_score")]
    assert em["n_lengths"] == 4 and em["left_out"] == "L = 5"
    scores = [length.loc[(n, "exact_match"), "emergence_score"] for n in range(1, 5)]
    assert em["spearman_rho"] == pytest.approx(spearmanr(range(1, 5), scores).statistic)
    ted = rank.loc[("token_edit_distance", "emergence_score")]
    assert ted["n_lengths"] == 4  # "x" is 5 edits from every target: flat there too


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ("mixed", "target_token_logprobs", "one answer length per task"),
        ("same", "task", "same answer length"),
        ("two", "task", "at least 3 answer lengths"),
        ("models", "model", "same models"),
    ],
)
def test_prediction_3_refuses_what_it_cannot_read(tmp_path, change, field, message):
    samples, _ = _by_length(n_ex=30)
    if change == "mixed":
        logprobs = [list(v) for v in samples["target_token_logprobs"]]
        logprobs[int(np.flatnonzero(samples["task"] == "tail-len2")[0])] = [-0.1] * 3
        samples = samples.assign(target_token_logprobs=logprobs)
    elif change == "same":
        copy = samples[samples["task"] == "tail-len1"].assign(task="copy-len1")
        samples = pd.concat([samples, copy], ignore_index=True)
    elif change == "two":
        samples = samples[samples["task"].isin(["tail-len1", "tail-len2"])]
    else:
        samples = samples[~((samples["task"] == "tail-len3") & (samples["model"] == "m0"))]
    with pytest.raises(InputError, match=message) as caught:
        prediction_length(samples, tmp_path)
    assert caught.value.field == field


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
    assert f"{path}, field 'family'" in proc.stderr  # the file, then the field
    assert not (tmp_path / "o").exists()
