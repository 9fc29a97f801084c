"""The verdict: hand-worked harsh profiles, the weighted break test, labels and tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from miragelab import theory
from miragelab.transitions.detect import detect_transition
from miragelab.verdict import (
    EVIDENCE_COLUMNS,
    VERDICT_COLUMNS,
    classify,
    harsh_profile,
    loss_scale,
    verdict_table,
    verdicts,
)

INSTRUCT_GPT = np.array([350e6, 1.3e9, 6.7e9, 175e9])


def test_a_late_jump_on_an_even_ladder_looks_emergent() -> None:
    x = np.geomspace(1e8, 1e12, 5)
    profile = harsh_profile(x, [0.0, 0.0, 0.0, 0.5, 0.6], np.full(5, 0.01))
    # the largest rise 0.5 (steps 2 -> 3), its neighbour 0.1 < 0.25: the jump is one step,
    # 0.5 / 0.6 = 83% of the rise in a quarter of the log range: rate ratio 3.3
    assert profile.status == "emergent" and profile.shape == "increasing"
    assert profile.jump == (2, 3)
    assert profile.rate_ratio == pytest.approx((0.5 / 0.6) / 0.25)


def test_a_jump_in_a_26x_gap_is_not_called_sharp() -> None:
    # InstructGPT's four sizes: the last gap is log10(175 / 6.7) = 1.417 of 2.699 decades
    profile = harsh_profile(INSTRUCT_GPT, [0.0, 0.0, 0.01, 0.5], np.full(4, 0.005))
    share = (0.5 - 0.01) / 0.5
    assert profile.rate_ratio == pytest.approx(share / (np.log10(175 / 6.7) / np.log10(500)))
    assert profile.status == "wide_gap"
    assert "26.1x gap" in profile.reason and "add sizes between 6.7e+09 and 1.75e+11" in (
        profile.reason
    )


def test_spread_flat_and_inverse_curves_are_smooth() -> None:
    x = np.geomspace(1e8, 1e12, 6)
    se = np.full(6, 0.01)
    line = harsh_profile(x, np.linspace(0.1, 0.6, 6), se)
    assert line.status == "smooth" and "spread" in line.reason
    flat = harsh_profile(x, [0.2, 0.21, 0.2, 0.205, 0.2, 0.21], se)
    assert flat.status == "smooth" and flat.shape == "flat"
    inverse = harsh_profile(x, np.linspace(0.6, 0.1, 6), se)
    assert inverse.status == "smooth" and inverse.shape == "inverse"
    dip = harsh_profile(x, [0.1, 0.3, 0.1, 0.1, 0.8, 0.8], se)
    assert dip.shape == "non-monotone"


def test_loss_scale_straightens_a_power_law() -> None:
    x = np.geomspace(1e7, 1e11, 6)
    ce = theory.cross_entropy(x, 1e9, -0.4)
    for metric, values in (
        ("per_token_prob", np.exp(-ce)),
        ("ppl", np.exp(ce)),
        ("cross_entropy", ce),
    ):
        z, _, _, up = loss_scale(metric, values, np.full(6, 1e-4), metric == "per_token_prob")
        # log CE = -0.4 * ln(N / c): a straight line in log10 N with slope -0.4 ln 10
        slope = np.polyfit(np.log10(x), z, 1)[0]
        assert slope == pytest.approx(-0.4 * np.log(10), rel=1e-9)
        assert not up


def test_known_noise_statistic_is_the_weighted_residual_sum() -> None:
    # three points, a line as the smooth model and one step between the last two:
    # the break model fits exactly, so with unit errors T = RSS0 of the weighted line fit
    x = np.array([1e8, 1e9, 1e10])
    y = np.array([1.0, 0.8, 0.1])
    se = np.array([0.5, 0.5, 0.5])
    result = detect_transition(x, y, stderr=se, window=(1e9, 1e10), max_width=1.0, n_boot=99)
    u = np.log10(x)
    design = np.column_stack([np.ones(3), u])
    coef, *_ = np.linalg.lstsq(design / se[:, None], y / se, rcond=None)
    rss0 = float(np.sum(((y - design @ coef) / se) ** 2))
    assert rss0 / 3 <= 1  # the variance factor stays at its floor of 1
    assert result.statistic == pytest.approx(rss0, rel=1e-9)
    assert result.noise == "known" and result.degree == 1


def _ladder(ce: np.ndarray, length: int, n: int, rng: np.random.Generator):
    """Exact match and per-token probability of n answers of `length` independent tokens."""
    p = np.exp(-ce)
    em = rng.binomial(n, p**length) / n
    hits = rng.binomial(n * length, p)
    prob = hits / (n * length)
    return em, np.sqrt(em * (1 - em) / n) + 1e-9, prob, np.sqrt(prob * (1 - prob) / (n * length))


def test_a_smooth_power_law_with_exact_match_is_a_mirage() -> None:
    x = np.geomspace(1e7, 1e12, 12)
    ce = theory.cross_entropy(x, 2e9, -0.5)
    rng = np.random.default_rng(11)
    em, em_se, prob, prob_se = _ladder(ce, 10, 20_000, rng)
    pair = classify(x, em, x, prob, harsh_se=em_se, soft_se=prob_se, soft_metric="per_token_prob")
    assert pair.profile.status == "emergent"
    assert pair.label == "mirage", pair.reason
    assert pair.test.p_value > 0.05 and pair.resolvable_se <= 5
    # p ** L of the smooth fit predicts the jump: the link residual is a few errors at most
    assert abs(pair.link_residual) < 3


def test_a_break_in_the_per_token_probability_is_genuine() -> None:
    x = np.geomspace(1e7, 1e12, 12)
    ce = theory.cross_entropy(x, 2e9, -0.3) * np.where(np.arange(12) >= 8, 0.35, 1.0)
    rng = np.random.default_rng(12)
    em, em_se, prob, prob_se = _ladder(ce, 6, 5_000, rng)
    pair = classify(x, em, x, prob, harsh_se=em_se, soft_se=prob_se, soft_metric="per_token_prob")
    assert pair.label == "genuine", pair.reason
    assert pair.test.p_value <= 0.05
    assert x[7] <= pair.test.x_change <= x[8]
    # the loss falls to 0.35 of its trend: by 0.65 of the law's value at the first model
    # after the break (the test is on the cross-entropy, in nats)
    low, high = pair.break_ci
    drop = -0.65 * theory.cross_entropy(x[8], 2e9, -0.3)
    assert low <= drop <= high


def test_three_rungs_cannot_rule_out_a_break() -> None:
    x = np.array([1e9, 1e10, 1e11])
    pair = classify(
        x, [0.0, 0.01, 0.6], x, [0.5, 0.6, 0.72],
        harsh_se=[0.005, 0.005, 0.01], soft_se=[0.01, 0.01, 0.01], soft_metric="per_token_prob",
    )  # fmt: skip
    # on three evenly spaced rungs a one-step rise is only twice the average rate at best
    assert pair.label == "inconclusive"
    assert "add sizes between 1e+10 and 1e+11" in pair.reason


def test_without_noise_a_short_curve_is_inconclusive() -> None:
    x = np.array([1e9, 1e10, 1e11, 1e12])
    pair = classify(x, [0.0, 0.0, 0.0, 0.7], x, [5.0, 4.0, 3.0, 2.5], soft_metric="cross_entropy",
                    soft_higher_is_better=False)  # fmt: skip
    assert pair.label == "inconclusive" and "cannot run" in pair.reason


def _scores_rows(x, metrics: dict[str, tuple[np.ndarray, np.ndarray]], **key) -> list[dict]:
    rows = []
    for metric, (values, se) in metrics.items():
        for i, size in enumerate(x):
            rows.append({"task": "t", "family": "F", "model": f"m{i}", "params": size,
                         "metric": metric, "value": float(values[i]), "stderr": float(se[i])}
                        | key)  # fmt: skip
    return rows


def test_one_row_per_curve_and_disagreeing_metrics_are_inconclusive() -> None:
    x = np.geomspace(1e7, 1e12, 12)
    ce = theory.cross_entropy(x, 2e9, -0.5)
    rng = np.random.default_rng(3)
    em, em_se, prob, prob_se = _ladder(ce, 10, 20_000, rng)
    # a Brier score that drops by 40 of its errors where exact match jumps
    jump = int(np.argmax(np.diff(em))) + 1
    brier = 0.5 - 0.01 * np.log10(x / x[0]) - 0.2 * (np.arange(12) >= jump)
    rows = _scores_rows(
        x,
        {
            "exact_match": (em, em_se),
            "per_token_prob": (prob, prob_se),
            "brier_score": (brier, np.full(12, 0.005)),
        },
    )
    result = verdict_table(pd.DataFrame(rows), seed=0)
    assert list(result.verdicts.columns) == list(VERDICT_COLUMNS)
    assert list(result.evidence.columns) == list(EVIDENCE_COLUMNS)
    assert len(result.verdicts) == 1
    labels = dict(zip(result.evidence["soft_metric"], result.evidence["label"], strict=True))
    assert labels == {"per_token_prob": "mirage", "brier_score": "genuine"}
    row = result.verdicts.iloc[0]
    assert row["verdict"] == "inconclusive" and not row["metrics_agree"]
    assert "disagree" in row["reason"]
    # the per-token probability comes first in the order of preference
    assert row["soft_metric"] == "per_token_prob"
    # the notebook call gives the same table
    pd.testing.assert_frame_equal(verdicts(pd.DataFrame(rows), seed=0), result.verdicts)


def test_training_step_curves_get_their_own_rows() -> None:
    steps = np.array([0, 1000, 2000, 4000, 8000, 16000, 32000, 64000])
    rows = []
    for model, params in (("a", 1e8), ("b", 1e9)):
        em = np.array([0, 0, 0, 0.01, 0.02, 0.4, 0.45, 0.5])
        rows += [
            {"task": "t", "family": "F", "model": model, "params": params, "step": int(s),
             "metric": "exact_match", "value": float(v), "n": 1000}
            for s, v in zip(steps, em, strict=True)
        ]  # fmt: skip
    result = verdict_table(pd.DataFrame(rows))
    keys = set(zip(result.verdicts["axis"], result.verdicts["model"].fillna(""), strict=True))
    assert keys == {("step", "a"), ("step", "b"), ("params", "")}
    step_rows = result.verdicts[result.verdicts["axis"] == "step"]
    # no continuous metric: a jump is inconclusive, with what would decide it
    assert (step_rows["verdict"] == "inconclusive").all()
    assert step_rows["reason"].str.contains("no continuous metric").all()
    # step 0 has no place on a log axis
    assert (step_rows["n_points"] == 7).all()


def test_a_scores_table_without_directions_is_oriented_by_the_facts() -> None:
    x = np.geomspace(1e7, 1e12, 12)
    ce = theory.cross_entropy(x, 2e9, -0.5)
    rng = np.random.default_rng(5)
    em, em_se, _, _ = _ladder(ce, 10, 20_000, rng)
    ppl = np.exp(ce) * (1 + 0.01 * rng.standard_normal(12))
    rows = _scores_rows(x, {"exact_match": (em, em_se), "ppl": (ppl, 0.01 * ppl)})
    table = pd.DataFrame(rows)
    assert "higher_is_better" not in table.columns
    row = verdict_table(table).verdicts.iloc[0]
    assert row["soft_metric"] == "ppl"
    # perplexity falls as the models improve: read as higher-is-better, the break test
    # would find the loss improving the wrong way; it is not 'genuine' either way
    assert row["verdict"] in ("mirage", "inconclusive")
    flipped = table.assign(higher_is_better=table["metric"] == "exact_match")
    assert verdict_table(flipped).verdicts.iloc[0]["verdict"] == row["verdict"]
