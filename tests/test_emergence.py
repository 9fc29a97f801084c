"""Emergence measures and their intervals against values worked out by hand.

Every expected number is computed here from the definitions (with ``math``
or by hand in a comment), never by calling the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from miragelab.bootstrap import bca_mean_interval
from miragelab.emergence import (
    MEASURE_COLUMNS,
    curve_measures,
    emergence_score,
    largest_jump_share,
    measures_table,
    smoothness,
)
from miragelab.errors import InputError
from miragelab.stats import (
    clopper_pearson_interval,
    emergence_score_interval,
    emergence_score_interval_from_summary,
)

X4 = [1.0, 2.0, 3.0, 4.0]


# --------------------------------------------------------------------------- emergence score


def test_emergence_score_hand_values():
    # squared steps [0, 0, 1]: median 0 with range 1 -> +inf
    assert emergence_score(X4, [0, 0, 0, 1]) == math.inf
    # squared steps [1, 1, 4]: median 1, range 4, max after min -> +4
    assert emergence_score(X4, [0, 1, 2, 4]) == pytest.approx(4.0)
    # squared steps [4, 1, 1]: median 1, range 4, max before min -> -4
    assert emergence_score(X4, [4, 2, 1, 0]) == pytest.approx(-4.0)
    # squared steps [0.25, 4, 0.25, 9]: median (0.25 + 4) / 2, range 3, first min at 0
    y = [0.0, 0.5, 2.5, 3.0, 0.0]
    assert emergence_score([1, 2, 3, 4, 5], y) == pytest.approx(3.0 / math.sqrt(4.25 / 2))


def test_emergence_score_sorts_by_x():
    assert emergence_score([4, 1, 3, 2], [4, 0, 2, 1]) == pytest.approx(4.0)


def test_emergence_score_degenerate_curves():
    assert emergence_score(X4, [0.3, 0.3, 0.3, 0.3]) == 0.0
    assert math.isnan(emergence_score([1, 2], [0, 1]))
    assert math.isnan(emergence_score([], []))
    # median squared step 0 and the max before the min -> -inf
    assert emergence_score(X4, [1, 0, 0, 0]) == -math.inf


def test_bad_curves_raise_input_error_naming_the_field():
    with pytest.raises(InputError) as error:
        emergence_score([1, 2, 2, 3], [0, 1, 2, 3])
    assert error.value.field == "params"
    with pytest.raises(InputError) as error:
        emergence_score([1, 2, 3], [0, math.nan, 1])
    assert error.value.field == "value"
    with pytest.raises(InputError):
        emergence_score([1, math.inf, 3], [0, 1, 2])


# --------------------------------------------------------------------------- smoothness, jump


def test_smoothness_hand_values():
    assert smoothness(X4, [0, 1, 2, 3]) == pytest.approx(1.0)  # every step alike
    assert smoothness(X4, [0, 0, 1, 1]) == pytest.approx(0.0)  # one step carries it all
    # steps [1, 2]: n_eff = 3**2 / (1 + 4) = 1.8; (1.8 - 1) / (2 - 1)
    assert smoothness([1, 2, 3], [0, 1, 3]) == pytest.approx(0.8)
    # steps [1, -1, 2]: n_eff = 16 / 6; (16/6 - 1) / 2
    assert smoothness(X4, [0, 1, 0, 2]) == pytest.approx((16 / 6 - 1) / 2)
    assert smoothness(X4, [2, 2, 2, 2]) == 1.0
    assert math.isnan(smoothness([1, 2], [0, 1]))


def test_largest_jump_share_hand_values():
    assert largest_jump_share([1, 2, 3], [0, 1, 3]) == pytest.approx(2 / 3)
    assert largest_jump_share(X4, [0, 1, 2, 3]) == pytest.approx(1 / 3)
    assert largest_jump_share(X4, [1, 1, 1, 1]) == 0.0
    # the range is 3 - (-1) = 4 and the largest step |0 - 3| = 3
    assert largest_jump_share(X4, [0, 3, 0, -1]) == pytest.approx(3 / 4)
    assert largest_jump_share([1, 2], [5, 7]) == 1.0
    assert math.isnan(largest_jump_share([1], [5]))


curves = st.lists(st.integers(-50, 50), min_size=3, max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    y=curves,
    a=st.floats(0.01, 100).flatmap(lambda v: st.sampled_from([v, -v])),
    b=st.floats(-100, 100),
)
def test_smoothness_and_jump_share_are_affine_invariant(y, a, b):
    x = np.arange(1, len(y) + 1, dtype=float)
    y = np.asarray(y, dtype=float)
    moved = a * y + b
    assert smoothness(x, moved) == pytest.approx(smoothness(x, y), abs=1e-9)
    assert largest_jump_share(x, moved) == pytest.approx(largest_jump_share(x, y), abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(y=curves, a=st.floats(0.01, 100), b=st.integers(-100, 100))
def test_emergence_score_is_invariant_under_positive_affine_maps(y, a, b):
    x = np.arange(1, len(y) + 1, dtype=float)
    y = np.asarray(y, dtype=float)
    before, after = emergence_score(x, y), emergence_score(x, a * y + b)
    if math.isinf(before):
        assert after == before
    else:
        assert after == pytest.approx(before, rel=1e-9, abs=1e-12)


# --------------------------------------------------------------------------- tables


def test_curve_measures_orients_lower_is_better():
    m = curve_measures(X4, [4, 2, 1, 0], higher_is_better=False)
    assert m["emergence_score"] == pytest.approx(4.0)
    assert (m["y_first"], m["y_last"]) == (4.0, 0.0)
    assert (m["x_min"], m["x_max"], m["n_points"]) == (1.0, 4.0, 4)


def _scores() -> pd.DataFrame:
    rows = []
    sizes = [1e7, 1e8, 1e9, 1e10]
    for size, em, ted in zip(sizes, [0, 1, 2, 4], [4, 2, 1, 0], strict=True):
        common = dict(task="t", family="A", model=f"a{size:g}", params=size, step=None)
        rows.append(common | dict(metric="exact_match", value=em, higher_is_better=True))
        rows.append(common | dict(metric="token_edit_distance", value=ted, higher_is_better=False))
    for step, value in zip([300, 100, 200, 0], [1, 0, 0, 0], strict=True):
        rows.append(
            dict(
                task="t",
                family="B",
                model="b1",
                params=5e8,
                step=step,
                metric="exact_match",
                value=value,
                higher_is_better=True,
            )
        )
    return pd.DataFrame(rows)


def test_measures_table_finds_size_and_step_ladders():
    table = measures_table(_scores())
    assert list(table.columns) == list(MEASURE_COLUMNS)
    size = table[table["family"] == "A"].set_index("metric")
    assert set(size["axis"]) == {"params"} and size["model"].isna().all()
    assert size.loc["exact_match", "emergence_score"] == pytest.approx(4.0)
    assert size.loc["token_edit_distance", "emergence_score"] == pytest.approx(4.0)
    assert size.loc["token_edit_distance", "y_first"] == 4.0
    assert size.loc["exact_match", "largest_jump_share"] == pytest.approx(2 / 4)
    step = table[table["family"] == "B"].iloc[0]
    assert (step["axis"], step["model"], step["n_points"]) == ("step", "b1", 4)
    assert (step["x_min"], step["x_max"]) == (0.0, 300.0)
    assert step["emergence_score"] == math.inf  # sorted by step: [0, 0, 0, 1]
    assert len(table) == 3  # one-model family B has no size ladder


def test_measures_table_reports_repeated_sizes():
    scores = _scores()
    scores.loc[scores["model"] == "a1e+08", "params"] = 1e7
    with pytest.raises(InputError, match="family 'A'") as error:
        measures_table(scores)
    assert error.value.field == "params"


# --------------------------------------------------------------------------- intervals


def test_clopper_pearson_edges_in_closed_form():
    # k = 0: the upper end solves (1 - u)**n = a/2; k = n: the lower end solves l**n = a/2
    low, high = clopper_pearson_interval(np.array([0, 10]), np.array([10, 10]), 0.95)
    assert low[0] == 0.0 and high[1] == 1.0
    assert high[0] == pytest.approx(1 - 0.025 ** (1 / 10), rel=1e-9)
    assert low[1] == pytest.approx(0.025 ** (1 / 10), rel=1e-9)
    low, high = clopper_pearson_interval(0, 0)
    assert (float(low), float(high)) == (0.0, 1.0)


def test_clopper_pearson_interior_tail_probabilities():
    # the ends are where the binomial tails equal a/2: P(X >= 3 | l) = P(X <= 3 | u) = 0.025
    k, n = 3, 12
    low, high = clopper_pearson_interval(k, n)

    def pmf(i, p):
        return math.comb(n, i) * p**i * (1 - p) ** (n - i)

    assert sum(pmf(i, float(low)) for i in range(k, n + 1)) == pytest.approx(0.025, rel=1e-6)
    assert sum(pmf(i, float(high)) for i in range(0, k + 1)) == pytest.approx(0.025, rel=1e-6)


def test_bca_interval():
    assert bca_mean_interval(np.full(7, 0.25)) == (0.25, 0.25)
    assert bca_mean_interval(np.array([3.0])) == (3.0, 3.0)
    assert all(math.isnan(v) for v in bca_mean_interval(np.array([])))
    values = np.random.default_rng(1).normal(10.0, 2.0, size=2000)
    low, high = bca_mean_interval(values, n_resamples=2000)
    half = 1.959964 * values.std(ddof=1) / math.sqrt(values.size)
    assert low == pytest.approx(values.mean() - half, abs=0.2 * half)
    assert high == pytest.approx(values.mean() + half, abs=0.2 * half)


def test_emergence_score_interval_collapses_without_spread():
    per_model = [np.full(5, v) for v in (4.0, 0.0, 2.0, 1.0)]
    x = np.array([4.0, 1.0, 3.0, 2.0])  # sorted: means [0, 1, 2, 4] -> score 4
    assert emergence_score_interval(per_model, x) == pytest.approx((4.0, 4.0))
    # lower is better: the means [4, 2, 1, 0] negated are [-4, -2, -1, 0] -> +4
    per_model = [np.full(5, v) for v in (4.0, 2.0, 1.0, 0.0)]
    low_high = emergence_score_interval(per_model, np.arange(1.0, 5.0), higher_is_better=False)
    assert low_high == pytest.approx((4.0, 4.0))
    summary = emergence_score_interval_from_summary(
        X4, np.array([0, 1, 2, 4]), np.array([0.0, np.nan, 0.0, 0.0])
    )
    assert summary == pytest.approx((4.0, 4.0))


def test_emergence_score_interval_covers_the_estimate():
    rng = np.random.default_rng(3)
    accuracy = [0.0, 0.01, 0.02, 0.3, 0.7]
    per_model = [(rng.random(400) < a).astype(float) for a in accuracy]
    means = np.array([v.mean() for v in per_model])
    x = np.geomspace(1e7, 1e11, 5)
    point = emergence_score(x, means)
    low, high = emergence_score_interval(per_model, x, n_resamples=500, rng=rng)
    assert low <= point <= high and low < high
    low_s, high_s = emergence_score_interval_from_summary(
        x, means, np.sqrt(means * (1 - means) / 400), n_resamples=500, rng=rng
    )
    assert low_s <= point <= high_s
