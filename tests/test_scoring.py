"""Scoring: means and intervals against hand-computed values, and `mirage score` end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from miragelab.bootstrap import bootstrap_means
from miragelab.scoring import score_samples
from miragelab.stats import wilson_interval
from miragelab.tables import SAMPLES, read_scores, validate_frame


def test_wilson_matches_the_textbook_formula() -> None:
    # k=3, n=10, z=1.959964: centre (0.3 + z^2/20) / (1 + z^2/10), half-width by hand
    z = 1.959963984540054
    p, n = 0.3, 10
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low, high = wilson_interval(3, 10, 0.95)
    assert float(low) == pytest.approx(centre - half, abs=1e-12)
    assert float(high) == pytest.approx(centre + half, abs=1e-12)
    # zero successes: the lower end is exactly 0 and the upper end z^2/(n+z^2)
    low0, high0 = wilson_interval(0, 100, 0.95)
    assert float(low0) == 0.0
    assert float(high0) == pytest.approx(z * z / (100 + z * z), abs=1e-12)


def test_bootstrap_means_have_the_right_spread() -> None:
    # the bootstrap variance of a mean is the plug-in variance / n
    rng = np.random.default_rng(1)
    values = rng.integers(0, 5, size=400).astype(float)
    means = bootstrap_means(values, 20000, rng)
    assert means.mean() == pytest.approx(values.mean(), abs=0.01)
    assert means.std() == pytest.approx(values.std() / math.sqrt(400), rel=0.03)


def _frame(n_per_model: int = 50) -> pd.DataFrame:
    rows = []
    for size, n_right in ((1e6, 5), (1e7, 20), (1e8, 45)):
        for i in range(n_per_model):
            rows.append(
                {
                    "task": "t",
                    "family": "f",
                    "model": f"m{size:g}",
                    "params": size,
                    "example_id": i,
                    "target": "ab",
                    "prediction": "ab" if i < n_right else "xb",
                    "target_token_logprobs": [-0.5, -1.5],
                }
            )
    return validate_frame(pd.DataFrame(rows), SAMPLES)


def test_score_samples_means_and_methods() -> None:
    scores = score_samples(_frame(), ["exact_match", "token_edit_distance", "cross_entropy"])
    em = scores[scores.metric == "exact_match"].set_index("params")
    assert em["value"].tolist() == [0.1, 0.4, 0.9]
    assert (em["ci_method"] == "wilson").all() and (em["n"] == 50).all()
    low, high = wilson_interval(np.array([5, 20, 45]), 50)
    np.testing.assert_allclose(em["ci_low"], low)
    np.testing.assert_allclose(em["ci_high"], high)
    ted = scores[scores.metric == "token_edit_distance"].set_index("params")
    assert ted["value"].tolist() == [0.9, 0.6, 0.1]  # one edit on each wrong answer
    assert (ted["ci_method"] == "bca").all()
    assert ((ted["ci_low"] <= ted["value"]) & (ted["value"] <= ted["ci_high"])).all()
    ce = scores[scores.metric == "cross_entropy"]
    assert ce["value"].tolist() == [1.0, 1.0, 1.0]  # mean of 0.5 and 1.5
    assert not ce["higher_is_better"].any() and em["higher_is_better"].all()


def test_mirage_score_cli_writes_scores(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    frame = _frame(20)
    with path.open("w") as handle:
        for record in frame.astype(object).where(frame.notna(), None).to_dict("records"):
            record["target_token_logprobs"] = list(record["target_token_logprobs"])
            handle.write(json.dumps(record) + "\n")
    out = tmp_path / "scores.parquet"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "miragelab",
            "score",
            str(path),
            "--metrics",
            "all",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    # 'all' includes choice metrics that this task has no columns for
    assert result.returncode == 2 and "choice_logprobs" in result.stderr
    assert not out.exists()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "miragelab",
            "score",
            str(path),
            "--metrics",
            "exact_match,per_token_prob",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    scores = read_scores(out)
    assert len(scores) == 6
    pt = scores[scores.metric == "per_token_prob"]["value"]
    np.testing.assert_allclose(pt, math.exp(-1.0))


def test_bca_matches_scipy_within_monte_carlo_error() -> None:
    from scipy import stats as sps

    from miragelab.bootstrap import bca_mean_interval

    x = np.random.default_rng(3).exponential(1.0, 200)
    low, high = bca_mean_interval(x, 0.95, 40_000, np.random.default_rng(1))
    ref = sps.bootstrap(
        (x,),
        np.mean,
        n_resamples=40_000,
        method="BCa",
        vectorized=True,
        rng=np.random.default_rng(2),
    ).confidence_interval
    width = ref.high - ref.low
    assert abs(low - ref.low) < 0.03 * width and abs(high - ref.high) < 0.03 * width
    # skewed data: BCa shifts the interval up relative to the symmetric t interval
    t_low, t_high = sps.t.interval(0.95, x.size - 1, loc=x.mean(), scale=sps.sem(x))
    assert high - x.mean() > x.mean() - low
    assert high > t_high
