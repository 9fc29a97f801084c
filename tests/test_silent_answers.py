"""Inputs that once gave a confident answer the data cannot support.

* ``fit`` dropped the models it could not use without a word ("fit on 3 models");
  it now names each one and why.
* ``meta`` on a single model wrote empty tables; it now says there is no curve.
* A continuous curve computed rather than measured (an exact power law, no
  standard errors) has no noise: the smooth fit's rounding residual made a break
  of 1e-7 "significant". The test now declines to run and the verdict says what
  would decide it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from miragelab.errors import InputError
from miragelab.forecast import forecast_task
from miragelab.meta import meta_analysis
from miragelab.transitions.detect import detect_transition
from miragelab.verdict import classify

SIZES = np.logspace(7, 10, 7)


def _ladder(ppl: dict[int, float] | None = None, skip_ppl: tuple[int, ...] = ()) -> pd.DataFrame:
    """Seven models: accuracy p**2 from a per-token loss 3 * (N / 1e7) ** -0.1."""
    rows = []
    for i, n in enumerate(SIZES):
        ce = 3.0 * (n / 1e7) ** -0.1
        base = {"task": "t", "family": "f", "model": f"m{i}", "params": n}
        rows.append({**base, "metric": "acc", "value": math.exp(-2 * ce)})
        if i not in skip_ppl:
            value = (ppl or {}).get(i, math.exp(ce))
            rows.append({**base, "metric": "ppl", "value": value})
    return pd.DataFrame(rows)


def test_fit_names_every_model_it_cannot_use() -> None:
    table = _ladder(ppl={1: 1.0}, skip_ppl=(3,))
    result = forecast_task(table, "t", "f", "acc", "ppl", length=2.0, holdout=2)
    assert result.fit.n_points == 3  # 7 models, two unusable, two held out
    assert result.notes == [
        "not used: m1 (ppl is a cross-entropy of 0 (a power law cannot reach it))",
        "not used: m3 (no ppl score)",
    ]


def test_fit_too_few_usable_models_says_which_were_left_out() -> None:
    table = _ladder(skip_ppl=(0, 1, 2))
    with pytest.raises(InputError, match=r"4 models .*not used: m0 \(no ppl score\)"):
        forecast_task(table, "t", "f", "acc", "ppl", length=2.0, holdout=2)


@pytest.mark.parametrize("length", [math.inf, -math.inf, math.nan, 0.0, -1.0, "inf", "x"])
def test_fit_refuses_an_answer_length_that_is_no_length(length) -> None:
    with pytest.raises(InputError) as info:
        forecast_task(_ladder(), "t", "f", "acc", "ppl", length=length, holdout=2)
    assert info.value.field == "length"


def test_meta_on_one_model_says_there_is_no_curve() -> None:
    one = _ladder()
    one = one[one["model"] == "m0"]
    with pytest.raises(InputError, match="no curve to measure.*f: m0") as info:
        meta_analysis(one, n_resamples=100)
    assert info.value.field == "family"


def test_meta_notes_the_families_with_one_model() -> None:
    lone = pd.DataFrame(
        [
            {
                "task": "t",
                "family": "g",
                "model": "solo",
                "params": 1e8,
                "metric": "acc",
                "value": 0.4,
            }
        ]
    )
    result = meta_analysis(pd.concat([_ladder(), lone]), n_resamples=100)
    assert any("1 family with a single model" in n and "g: solo" in n for n in result.notes)


def _exact_loss(break_size: float) -> np.ndarray:
    """A power law to the last bit, with a step of ``break_size`` after the 4th point."""
    loss = 0.5 + 3.0 * (SIZES / 1e7) ** -0.1
    loss[4:] -= break_size
    return loss


@pytest.mark.parametrize("break_size", [0.0, 1e-7, -1e-7])
def test_a_computed_curve_has_no_noise_to_test_a_break_against(break_size: float) -> None:
    found = detect_transition(SIZES, _exact_loss(break_size), law=True)
    assert not found.detected and math.isnan(found.p_value)
    assert "no noise" in found.reason


@pytest.mark.parametrize("break_size", [1e-7, -1e-7])
def test_verdict_of_a_computed_curve_is_inconclusive_not_genuine(break_size: float) -> None:
    acc = np.array([0.0, 0.0, 0.01, 0.02, 0.5, 0.8, 0.9])
    for stderr in (None, np.zeros(SIZES.size)):
        pair = classify(
            SIZES,
            acc,
            SIZES,
            _exact_loss(break_size),
            harsh_se=np.full(SIZES.size, 0.01),
            soft_se=stderr,
            soft_metric="loss",
            soft_higher_is_better=False,
        )
        assert pair.label == "inconclusive"
        assert "give standard errors" in pair.reason
        assert not np.isinf(pair.resolvable_se)


def test_a_measured_curve_still_gets_its_test() -> None:
    """Noise well above rounding: the test runs (the floor is not a threshold on data)."""
    rng = np.random.default_rng(0)
    found = detect_transition(SIZES, _exact_loss(0.0) + rng.normal(0, 1e-4, SIZES.size), law=True)
    assert np.isfinite(found.p_value)


def test_scores_of_log_probs_at_the_tolerance_are_not_refused() -> None:
    """Samples may hold log-probs up to 1e-6 above 0 (rounding in the tool that wrote
    them); the scores computed from them pass a bound by as much and stay valid."""
    from miragelab.schema import SAMPLES, SCORES, validate_frame
    from miragelab.scoring import score_samples

    row = {"task": "t", "family": "f", "model": "m", "params": 1e6, "prompt": "p",
           "target": "ab", "prediction": "ab"}  # fmt: skip
    samples = validate_frame(
        pd.DataFrame(
            [
                {**row, "example_id": "1", "target_token_logprobs": [5e-7, 0.0]},
                {**row, "example_id": "2", "target_token_logprobs": [4e-7, 1e-7]},
            ]
        ),
        SAMPLES,
    )
    metrics = ["cross_entropy", "target_logprob_mean", "per_token_prob"]
    scores = score_samples(samples, metrics, n_resamples=100)
    checked = validate_frame(scores, SCORES)
    ce = checked.set_index("metric").loc["cross_entropy", "value"]
    assert -1e-6 <= ce < 0  # the mean of -2.5e-7 and -2.5e-7, kept, not refused


def test_meta_without_a_curve_says_why_when_families_have_two_models() -> None:
    """Two models of one family, each on its own task: no curve, and no lone family."""
    rows = [
        {"task": t, "family": "f", "model": m, "params": p, "metric": "acc", "value": 0.3}
        for t, m, p in (("t1", "a", 1e6), ("t2", "b", 1e7))
    ]
    with pytest.raises(InputError, match=r"no \(task, family, metric\) here has two models"):
        meta_analysis(pd.DataFrame(rows), n_resamples=100)


def test_noise_small_beside_the_level_but_not_beside_the_range_is_measured() -> None:
    """A curve at 1e4 with noise 1e-3: tiny next to its level, large next to its range;
    it is measured, so the test runs."""
    rng = np.random.default_rng(0)
    x = np.logspace(6, 10, 8)
    found = detect_transition(x, 1e4 + rng.normal(0, 1e-3, x.size))
    assert np.isfinite(found.p_value), found.reason
