"""The changepoint test: planted steps are found where they are, smooth curves pass."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from miragelab import theory
from miragelab.transitions.apply import rise_step, transitions_table
from miragelab.transitions.detect import (
    MIN_POINTS,
    detect_transition,
    genuine_transition,
    simulate_curves,
)
from miragelab.verdict import classify


def _planted(seed: int = 1, where: float = 500.0, jump: float = -1.0, sd: float = 0.05):
    rng = np.random.default_rng(seed)
    x = np.geomspace(10, 1e4, 40)
    y = 2.0 - 0.3 * np.log10(x) + np.where(x > where, jump, 0.0) + sd * rng.standard_normal(40)
    return x, y


def test_planted_step_is_found_within_its_interval():
    x, y = _planted()
    result = detect_transition(x, y, n_boot=199)
    assert result.detected and result.p_value <= 0.05
    # the step sits between the neighbouring points 10**(1 + 3*k/39) around 500
    assert result.span_low <= 500.0 <= result.span_high
    assert result.x_start < 500.0 < result.x_end * 1.0001
    # fitted height of the ramp ~ the planted -1 (noise sd 0.05 over 40 points)
    assert result.jump == pytest.approx(-1.0, abs=0.2)
    # the range of the curve is 0.9 (trend) + 1 (step): the effect is about 1 / 1.9
    assert 0.35 < result.effect_size < 0.75
    assert bool(result) is True


def test_planted_step_location_moves_with_the_step():
    x, y = _planted(seed=2, where=60.0)
    result = detect_transition(x, y, n_boot=199)
    assert result.detected
    assert result.span_low <= 60.0 <= result.span_high
    assert result.span_high < 500.0


def test_pure_trend_is_not_a_transition():
    rng = np.random.default_rng(3)
    x = np.geomspace(10, 1e4, 40)
    y = 2.0 - 0.3 * np.log10(x) + 0.05 * rng.standard_normal(40)
    result = detect_transition(x, y, n_boot=199)
    assert not result.detected


def test_false_positive_rate_on_smooth_theory_curves_is_low():
    # 40 smooth curves (loss, probability, edit distance) from the closed-form model.
    # Were the per-curve false-positive rate 5% (the target), P(X >= 7) for
    # X ~ Binomial(40, 0.05) is below 1.4%; 7 or more would reject the target.
    curves = simulate_curves(40, seed=123)
    hits = sum(
        detect_transition(c["x"], c["y"], n_boot=99, seed=i).detected for i, c in enumerate(curves)
    )
    assert stats.binom.sf(6, 40, 0.05) < 0.014
    assert hits <= 6


def test_too_few_points_or_flat_curve_does_not_run():
    short = detect_transition([1, 2, 3, 4, 5], [5, 4, 3, 2, 1])
    assert short.n_points == 5 < MIN_POINTS
    assert not short.detected and np.isnan(short.p_value)
    flat = detect_transition(np.arange(1, 20), np.ones(19))
    assert not flat.detected and "flat" in flat.reason


def test_step_zero_is_dropped_unless_offset():
    x, y = _planted()
    x0, y0 = np.r_[0.0, x], np.r_[y[0], y]
    assert detect_transition(x0, y0, n_boot=99).n_dropped == 1
    assert detect_transition(x0, y0, n_boot=99, offset=1.0).n_dropped == 0


def test_genuine_transition_requires_improvement():
    x, y = _planted(jump=1.0)  # a loss that jumps *up*
    assert detect_transition(x, y, n_boot=199).detected
    assert not genuine_transition(x, y, higher_is_better=False, n_boot=199)
    assert genuine_transition(x, y, higher_is_better=True, n_boot=199)


def test_log_y_tests_the_logarithm():
    x, y = _planted()
    ppl = np.exp(y + 3.0)
    a = detect_transition(x, ppl, log_y=True, n_boot=99)
    b = detect_transition(x, y + 3.0, n_boot=99)
    assert a.statistic == pytest.approx(b.statistic)
    assert a.jump == pytest.approx(b.jump)


def test_rise_step():
    steps = [1, 10, 100, 1000, 10000]
    score = [0.02, 0.03, 0.1, 0.6, 0.7]
    # first value 0.02, max 0.7: half-way level 0.36 is first reached at step 1000
    assert rise_step(steps, score) == 1000
    assert np.isnan(rise_step(steps, [0.5, 0.4, 0.3, 0.2, 0.1]))


def _ladder(p: np.ndarray, x: np.ndarray, length: int, seed: int):
    rng = np.random.default_rng(seed)
    n = 2000
    em = rng.binomial(n, p**length) / n
    ted = rng.binomial(n * length, 1 - p) / n
    return em, ted


def _se(values: np.ndarray, n: int) -> np.ndarray:
    return np.sqrt(np.clip(values * (1 - values), 1e-6, None) / n)


def test_the_verdict_runs_this_detector_where_the_harsh_metric_jumps():
    x = np.geomspace(1e8, 1e11, 30)
    p = np.where(np.arange(30) < 15, 0.4, 0.95) + np.linspace(0, 0.02, 30)
    em, ted = _ladder(p, x, 5, seed=4)
    ted_se = np.sqrt(5 * np.clip(ted / 5 * (1 - ted / 5), 1e-6, None) / 2000)
    result = classify(x, em, x, ted, harsh_se=_se(em, 2000), soft_se=ted_se,
                      soft_higher_is_better=False, soft_metric="token_edit_distance",
                      n_boot=199)  # fmt: skip
    assert result.label == "genuine"
    assert result.test.p_value <= 0.05
    assert result.test.span_low <= x[15] and x[14] <= result.test.span_high


def test_a_smooth_law_is_never_genuine():
    x = np.geomspace(1e8, 1e11, 30)
    p = theory.per_token_prob(x, 1e8, -0.4)
    em, ted = _ladder(p, x, 10, seed=5)
    ted_se = np.sqrt(10 * np.clip(ted / 10 * (1 - ted / 10), 1e-6, None) / 2000)
    result = classify(x, em, x, ted, harsh_se=_se(em, 2000), soft_se=ted_se,
                      soft_higher_is_better=False, soft_metric="token_edit_distance",
                      n_boot=199)  # fmt: skip
    assert result.label != "genuine"


def test_transitions_table_over_a_scores_table():
    x, y = _planted()
    rows = [
        {"task": "t", "family": "f", "model": "m", "params": 1e9, "step": int(s),
         "metric": "loss", "value": float(v), "higher_is_better": False}
        for s, v in zip(np.round(x), y, strict=True)
    ]  # fmt: skip
    table, results = transitions_table(pd.DataFrame(rows), n_boot=99)
    assert len(table) == 1 and len(results) == 1
    row = table.iloc[0]
    assert row["axis"] == "step" and bool(row["detected"]) and bool(row["improving"])


def test_arithmetic_ladder_continuous_metrics_with_and_without_their_noise() -> None:
    """Six sizes: with the noise estimated, only exact match's jump is found; with each
    point's own error, the per-token probability's jump (0.44 -> 0.98 in one 2.6x step,
    a loss 45 times lower) is found too, while edit distance stays unresolved."""
    from pathlib import Path

    from miragelab.tables import read_scores
    from miragelab.transitions.apply import transitions_table

    scores = read_scores(Path(__file__).parent / "fixtures" / "ladder" / "add4_cpu_scores.csv")
    table, _ = transitions_table(scores, axis="params", weighted=False, n_boot=499, seed=0)
    found = dict(zip(table["metric"], table["detected"], strict=True))
    assert not found["token_edit_distance"]
    assert not found["per_token_prob"] and not found["target_logprob_mean"]
    assert found["exact_match"]
    table, _ = transitions_table(scores, axis="params", n_boot=499, seed=0)
    assert (table["noise"] == "known").all()
    found = dict(zip(table["metric"], table["detected"], strict=True))
    assert found["per_token_prob"] and found["exact_match"]
    assert not found["token_edit_distance"]
