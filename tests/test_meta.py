"""Meta-analysis and forecasts on scores tables built from the closed-form model."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from miragelab.errors import InputError
from miragelab.forecast import forecast_task, to_cross_entropy
from miragelab.meta import jump_position, meta_analysis
from miragelab.stats import point_stderr

C, ALPHA, LENGTH = 1e9, -0.5, 8  # as in conftest.make_theory_scores


def test_point_stderr_prefers_reported_then_interval_then_binomial() -> None:
    rows = pd.DataFrame(
        {
            "value": [0.5, 0.5, 0.25, 3.0],
            "stderr": [0.01, np.nan, np.nan, np.nan],
            "ci_low": [0.0, 0.4, np.nan, np.nan],
            "ci_high": [1.0, 0.6, np.nan, np.nan],
            "n": [10, 10, 100, np.nan],
        }
    )
    z = 1.959963984540054
    got = point_stderr(rows)
    assert got[0] == 0.01
    assert got[1] == pytest.approx(0.2 / (2 * z))
    assert got[2] == pytest.approx(math.sqrt(0.25 * 0.75 / 100))
    assert np.isnan(got[3])  # not a proportion, nothing reported: unknown


def test_meta_analysis_calls_the_closed_form_model_a_mirage(
    theory_scores: pd.DataFrame, noisy_theory_scores: pd.DataFrame
) -> None:
    result = meta_analysis(theory_scores, n_resamples=200)
    measures = result.measures.set_index("metric")
    assert set(measures.index) == {"exact_match", "token_edit_distance", "cross_entropy"}
    assert (measures["n_points"] == 10).all()
    # exact match p**L is concentrated at the top of the ladder; the loss is not
    assert measures.loc["exact_match", "emergent_looking"]
    assert measures.loc["exact_match", "smoothness"] < measures.loc["cross_entropy", "smoothness"]
    # no uncertainty given for any point, and the jump ends at the last model: the break
    # test cannot exclude a break there with the noise estimated from the fit
    assert len(result.verdicts) == 1
    assert result.verdicts["verdict"].iloc[0] == "inconclusive"
    # measured on 20,000 examples with each point's error: one verdict, a mirage, resting
    # on the cross-entropy (first in the order of preference)
    noisy = meta_analysis(noisy_theory_scores, n_resamples=200)
    row = noisy.verdicts.iloc[0]
    assert len(noisy.verdicts) == 1
    assert (row["verdict"], row["soft_metric"]) == ("mirage", "cross_entropy")
    assert set(noisy.evidence["soft_metric"]) == {"cross_entropy", "token_edit_distance"}
    shares = result.shares.set_index("metric")
    assert shares.loc["exact_match", "share_emergent_looking"] == 1.0


def test_emergence_interval_reflects_known_noise_only(theory_scores: pd.DataFrame) -> None:
    scores = theory_scores.copy()
    em = scores["metric"] == "exact_match"
    scores.loc[em, "stderr"] = 0.01
    result = meta_analysis(scores, n_resamples=400)
    measures = result.measures.set_index("metric")
    row = measures.loc["exact_match"]
    assert row["n_fixed_points"] == 0
    assert np.isfinite(row["score_ci_low"]) and row["score_ci_low"] < row["score_ci_high"]
    # noise on the flat start raises the typical step, so noisy redraws score lower
    assert row["score_ci_high"] < row["emergence_score"]
    # a curve whose points carry no uncertainty has a degenerate interval at its score
    ce = measures.loc["cross_entropy"]
    assert ce["n_fixed_points"] == 10
    assert ce["score_ci_low"] == ce["score_ci_high"] == ce["emergence_score"]
    # the continuous curves' noise is unknown: their break tests estimate it
    assert set(result.evidence["noise"]) <= {"estimated", ""}


def test_short_curves_are_left_out_with_a_note(theory_scores: pd.DataFrame) -> None:
    scores = theory_scores.copy()
    two = scores[scores["model"].isin(["m0", "m1"])].assign(family="pair")
    result = meta_analysis(pd.concat([scores, two], ignore_index=True), n_resamples=100)
    assert "pair" not in set(result.measures["family"])
    assert any("fewer than 3 points" in note for note in result.notes)


@pytest.mark.parametrize(
    ("metric", "value", "expected"),
    [
        ("ppl", math.e**2, 2.0),
        ("cross_entropy", 1.5, 1.5),
        ("target_logprob_mean", -0.7, 0.7),
        ("per_token_prob", math.exp(-3.0), 3.0),
        ("bits_per_byte", 1.0, math.log(2)),
    ],
)
def test_to_cross_entropy(metric: str, value: float, expected: float) -> None:
    assert to_cross_entropy(metric, np.array([value]))[0] == pytest.approx(expected)


def test_unknown_continuous_metric_is_refused() -> None:
    with pytest.raises(InputError, match="bleu"):
        to_cross_entropy("bleu", np.array([1.0]))


def test_forecast_is_exact_on_the_closed_form_model(theory_scores: pd.DataFrame) -> None:
    result = forecast_task(
        theory_scores, "add", "law", "exact_match", "cross_entropy", length=LENGTH, holdout=3
    )
    # exact match is exactly exp(-CE)**L and CE an exact power law: no error at all
    assert result.table["abs_error_power_law"].max() < 1e-9
    assert result.fit.alpha == pytest.approx(ALPHA, rel=1e-9)
    assert result.fit.c == pytest.approx(C, rel=1e-9)
    assert list(result.curve["held_out"]) == [False] * 7 + [True] * 3


def test_forecast_fits_the_answer_length_on_training_models_only(
    theory_scores: pd.DataFrame,
) -> None:
    result = forecast_task(
        theory_scores, "add", "law", "exact_match", "cross_entropy", length="auto", holdout=2
    )
    assert result.length == pytest.approx(LENGTH, rel=1e-9)


def test_forecast_needs_enough_models(theory_scores: pd.DataFrame) -> None:
    with pytest.raises(InputError) as info:
        forecast_task(theory_scores, "add", "law", "exact_match", "cross_entropy", holdout=8)
    assert info.value.field == "holdout"
    with pytest.raises(InputError, match="no scores"):
        forecast_task(theory_scores, "add", "law", "acc", "cross_entropy")


def test_jump_position_by_hand() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    # steps 0.1, 0.1, 0.8: the last of three steps
    assert jump_position(x, np.array([0.0, 0.1, 0.2, 1.0]), True) == 1.0
    # a loss falling 8, 0.5, 0.3: the first step, so saturation rather than emergence
    assert jump_position(x, np.array([10.0, 2.0, 1.5, 1.2]), False) == 0.0
    assert np.isnan(jump_position(x, np.array([1.0, 0.9, 0.8, 0.7]), True))


def test_a_saturating_loss_is_not_emergent_looking(theory_scores: pd.DataFrame) -> None:
    measures = meta_analysis(theory_scores, n_resamples=100).measures.set_index("metric")
    # cross-entropy (N/c)**alpha falls most between the two smallest models
    assert measures.loc["cross_entropy", "jump_position"] == 0.0
    assert not measures.loc["cross_entropy", "emergent_looking"]
