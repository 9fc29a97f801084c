"""The verdict on curves simulated from the closed-form model, and on hand-made curves."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from miragelab import theory
from miragelab.verdict import (
    CO_JUMP_MIN,
    CONTINUOUS_METRICS,
    HARSH_METRICS,
    SHARP_BELOW,
    VERDICT_COLUMNS,
    calibrate_thresholds,
    classify,
    co_jump_share,
    verdict_table,
)

N_EXAMPLES = 1000


def _noisy(rng, p, L):
    """Exact match and token edit distance of n examples with independent tokens."""
    em = rng.binomial(N_EXAMPLES, p**L) / N_EXAMPLES
    ted = rng.binomial(N_EXAMPLES * L, 1 - p) / N_EXAMPLES
    return em, ted


def test_exact_match_vs_edit_distance_is_a_mirage():
    # the paper's regime: ladders of 3-4 decades whose largest model reaches
    # exact match 0.3 or 0.6, so the smaller models sit near 0
    rng = np.random.default_rng(11)
    labels = []
    for k, decades, alpha, L, top in itertools.product(
        (6, 8, 10, 12), (3, 4), (-0.5, -0.7), (5, 10, 20), (0.3, 0.6)
    ):
        x = np.geomspace(1e11 / 10**decades, 1e11, k)
        c = 1e11 / (-math.log(top) / L) ** (1 / alpha)  # p(1e11) ** L == top
        em, ted = _noisy(rng, theory.per_token_prob(x, c, alpha), L)
        labels.append(classify(x, em, x, ted, soft_higher_is_better=False).label)
    assert len(labels) == 96
    assert labels.count("mirage") >= 0.9 * len(labels)
    assert "genuine" not in labels


@pytest.mark.parametrize("k", [6, 9, 12])
@pytest.mark.parametrize(("p_lo", "p_hi", "L"), [(0.3, 0.95, 5), (0.5, 0.97, 10), (0.2, 0.9, 20)])
def test_a_true_step_in_per_token_probability_is_genuine(k, p_lo, p_hi, L):
    rng = np.random.default_rng(k)
    x = np.geomspace(1e8, 1e11, k)
    p = np.where(np.arange(k) < k // 2, p_lo, p_hi) + np.linspace(-0.005, 0.0, k)
    em, ted = _noisy(rng, p, L)
    verdict = classify(x, em, x, ted, soft_higher_is_better=False)
    assert verdict.label == "genuine", verdict.reason


def test_steady_improvement_is_smooth():
    x = np.geomspace(1e8, 1e11, 8)
    acc = np.linspace(0.2, 0.7, 8)  # linear in log x
    brier = (1 - acc) ** 2
    assert classify(x, acc, x, brier, soft_higher_is_better=False).label == "smooth"
    # a harsh metric that gets worse is not an emergent ability
    assert classify(x, acc[::-1], x, brier, soft_higher_is_better=False).label == "smooth"
    assert classify(x, np.full(8, 0.25), x, brier).label == "smooth"


def test_insufficient():
    assert classify([1, 2], [0, 1], [1, 2], [1, 0]).label == "insufficient"
    # only two sizes in common
    assert classify([1, 2, 3], [0, 0, 1], [2, 3, 4], [1, 2, 3]).label == "insufficient"
    assert classify([1, 2, 3], [0, math.nan, 1], [1, 2, 3], [1, 2, 3]).label == "insufficient"


def test_co_jump_share_hand_values():
    # harsh jumps on step 1 only; soft moves 1 of its 3 units there
    assert co_jump_share([0, 0, 1, 1], [0, 1, 2, 3]) == pytest.approx(1 / 3)
    # harsh steps [1, 4, 3]: the jump is step 1 widened to step 2 (3 >= 4 / 2), not step 0
    assert co_jump_share([0, 1, 5, 8], [0, 2, 3, 4]) == pytest.approx(2 / 4)
    # soft steps [1, -2, 1] have total variation 4; the signed change over step 1 is -2
    assert co_jump_share([0, 0, 1, 1], [0, 1, -1, 0]) == pytest.approx(-2 / 4)
    assert co_jump_share([0, 0, 1, 1], [2, 2, 2, 2]) == 0.0


def test_hand_made_verdicts():
    x = [1, 2, 3, 4, 5]
    harsh = [0, 0, 0, 0.1, 0.9]  # steps [0, 0, 0.1, 0.8]: n_eff = 0.81 / 0.65
    soft_smooth = [10, 8, 6, 4, 2]
    soft_step = [10, 10, 10, 9, 2]
    assert classify(x, harsh, x, soft_smooth, soft_higher_is_better=False).label == "mirage"
    assert classify(x, harsh, x, soft_step, soft_higher_is_better=False).label == "genuine"
    verdict = classify(x, harsh, x, soft_step, soft_higher_is_better=False)
    assert verdict.harsh_smoothness == pytest.approx((0.81 / 0.65 - 1) / 3)
    assert verdict.co_jump_share == pytest.approx(7 / 8)
    # the harsh curve keeps 0.8 of its 0.9 in that step: ratio (7/8) / (8/9) = 63/64
    assert verdict.co_jump_ratio == pytest.approx(63 / 64)


def test_a_metric_is_as_sharp_as_itself():
    # steps 0.02, 0.03, 0.55, 0.05, 0.35: the jump (0.55) holds only 0.55 of the change,
    # below the threshold, yet a continuous metric identical to the harsh one is as sharp
    x = [1, 2, 3, 4, 5, 6]
    curve = [0, 0.02, 0.05, 0.60, 0.65, 1.0]
    verdict = classify(x, curve, x, curve)
    assert verdict.co_jump_share == pytest.approx(0.55)
    assert verdict.co_jump_ratio == pytest.approx(1.0)
    assert verdict.label == "genuine"


def test_thresholds_separate_the_calibration_cases():
    table = calibrate_thresholds(sizes=(6, 10), decades=(3, 4), alphas=(-0.5,), lengths=(10,))
    sharp = table[table["harsh_smoothness"] < SHARP_BELOW]
    assert sharp.loc[sharp["case"] == "mirage", "co_jump_ratio"].max() < CO_JUMP_MIN
    assert sharp.loc[sharp["case"] == "genuine", "co_jump_ratio"].min() >= CO_JUMP_MIN
    assert (table.loc[table["case"] == "genuine", "verdict"] == "genuine").all()


def test_verdict_table():
    sizes = [1e7, 1e8, 1e9, 1e10, 1e11]
    rows = []
    for i, size in enumerate(sizes):
        base = dict(task="t", family="F", model=f"m{i}", params=size, step=143000)
        rows.append(
            base | dict(metric="exact_match", value=[0, 0, 0, 0.1, 0.9][i], higher_is_better=True)
        )
        rows.append(
            base | dict(metric="token_edit_distance", value=10.0 - 2 * i, higher_is_better=False)
        )
        rows.append(base | dict(metric="something_else", value=float(i), higher_is_better=True))
    # an earlier checkpoint of m4 is ignored: the last step counts
    rows.append(
        dict(
            task="t",
            family="F",
            model="m4",
            params=1e11,
            step=1000,
            metric="exact_match",
            value=0.0,
            higher_is_better=True,
        )
    )
    table = verdict_table(pd.DataFrame(rows))
    assert list(table.columns) == list(VERDICT_COLUMNS)
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["harsh_metric"], row["soft_metric"], row["verdict"]) == (
        "exact_match",
        "token_edit_distance",
        "mirage",
    )
    assert row["n_points"] == 5
    # oriented edit distance [-10, -8, ..., -2]: all squared steps 4, range 8 -> 8 / 2
    assert row["soft_score"] == pytest.approx(4.0)
    custom = verdict_table(pd.DataFrame(rows), pairs=[("exact_match", "something_else")])
    assert custom["soft_metric"].tolist() == ["something_else"]
    assert {"acc", "exact_match", "multiple_choice_grade"} <= HARSH_METRICS
    assert {"perplexity", "bleu", "token_edit_distance"} <= CONTINUOUS_METRICS


def test_metric_families_match_prefixes() -> None:
    from miragelab.verdict import CONTINUOUS_METRICS, HARSH_METRICS, in_family

    assert in_family("reconstruction_c0.25", HARSH_METRICS)
    assert in_family("subset_accuracy_K20", HARSH_METRICS)
    assert in_family("acc", HARSH_METRICS) and not in_family("accx", HARSH_METRICS)
    assert in_family("mse", CONTINUOUS_METRICS) and not in_family("acc", CONTINUOUS_METRICS)
