"""The closed-form model against numbers worked out by hand, and its figure.

Expected values are computed here from the formulas with ``math``, never by
calling the module under test, so a slip in the vectorised code cannot hide.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from miragelab.report import plot_theory, write_theory_outputs
from miragelab.theory import (
    CURVE_COLUMNS,
    brier_score,
    cross_entropy,
    curves,
    exact_match,
    multiple_choice_grade,
    per_token_prob,
    token_edit_distance,
)

C = 2e9
ALPHA = -0.5
E_INV = math.exp(-1.0)  # p at N = c


# --------------------------------------------------------------------------- hand-computed points


def test_at_n_equals_c_the_loss_is_one_nat() -> None:
    assert cross_entropy(C, C, ALPHA) == pytest.approx(1.0, abs=1e-15)
    assert per_token_prob(C, C, ALPHA) == pytest.approx(E_INV, rel=1e-15)


def test_power_law_at_four_c_and_a_quarter_c() -> None:
    # (4)^-0.5 = 0.5 and (1/4)^-0.5 = 2
    assert cross_entropy(4 * C, C, ALPHA) == pytest.approx(0.5, rel=1e-15)
    assert cross_entropy(C / 4, C, ALPHA) == pytest.approx(2.0, rel=1e-15)
    assert per_token_prob(4 * C, C, ALPHA) == pytest.approx(math.exp(-0.5), rel=1e-15)


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 10])
def test_exact_match_and_edit_distance_at_n_equals_c(length: int) -> None:
    assert exact_match(C, C, ALPHA, length) == pytest.approx(math.exp(-length), rel=1e-13)
    assert token_edit_distance(C, C, ALPHA, length) == pytest.approx(
        length * (1 - E_INV), rel=1e-13
    )


def test_exact_match_at_four_c_is_exp_of_minus_half_l() -> None:
    got = exact_match(4 * C, C, ALPHA, [1, 2, 3])
    np.testing.assert_allclose(got, [math.exp(-0.5), math.exp(-1.0), math.exp(-1.5)], rtol=1e-13)


def test_multiple_choice_grade_on_each_side_of_one_over_k() -> None:
    # at N = c: p = 0.3679 > 1/4 for L = 1; p**2 = 0.1353 < 1/4 for L = 2
    assert multiple_choice_grade(C, C, ALPHA, 1, 4) == 1.0
    assert multiple_choice_grade(C, C, ALPHA, 2, 4) == 0.25
    # with two choices the bar is 1/2: p = 0.3679 is below it -> chance
    assert multiple_choice_grade(C, C, ALPHA, 1, 2) == 0.5
    # at N = 4c: p = exp(-0.5) = 0.6065 > 1/2
    assert multiple_choice_grade(4 * C, C, ALPHA, 1, 2) == 1.0


def test_multiple_choice_grade_only_takes_two_values() -> None:
    sizes = np.geomspace(1e6, 1e13, 300)
    grade = multiple_choice_grade(sizes, C, ALPHA, [1, 3, 7], 5)
    assert set(np.unique(grade)) <= {0.2, 1.0}
    # each column is a single step from chance to 1
    assert np.all(np.diff(grade, axis=0) >= 0)


def test_multiple_choice_grade_jumps_where_p_to_the_l_crosses_one_over_k() -> None:
    # p**L = 1/k  <=>  L_CE = ln(k) / L  <=>  N = c * (ln(k) / L) ** (1 / alpha)
    k, length = 4, 3
    threshold = C * (math.log(k) / length) ** (1 / ALPHA)
    assert multiple_choice_grade(threshold * 0.999, C, ALPHA, length, k) == 0.25
    assert multiple_choice_grade(threshold * 1.001, C, ALPHA, length, k) == 1.0


def test_brier_score_at_length_one_is_squared_miss_probability() -> None:
    sizes = np.array([1e7, C / 4, C, 4 * C, 1e12])
    p = np.array([math.exp(-((n / C) ** ALPHA)) for n in sizes])
    np.testing.assert_allclose(brier_score(sizes, C, ALPHA, 1), (1 - p) ** 2, rtol=1e-13)
    assert brier_score(C, C, ALPHA, 2) == pytest.approx((1 - math.exp(-2)) ** 2, rel=1e-13)


# --------------------------------------------------------------------------- shapes


def test_sizes_are_rows_and_lengths_are_columns() -> None:
    sizes = np.array([1e8, 1e9, 1e10, 1e11])
    lengths = np.array([1, 2, 5])
    for metric in (exact_match, token_edit_distance, brier_score):
        got = metric(sizes, C, ALPHA, lengths)
        assert got.shape == (4, 3)
        for i, n in enumerate(sizes):
            p = math.exp(-((n / C) ** ALPHA))
            for j, length in enumerate(lengths):
                expected = {
                    exact_match: p**length,
                    token_edit_distance: length * (1 - p),
                    brier_score: (1 - p**length) ** 2,
                }[metric]
                assert got[i, j] == pytest.approx(expected, rel=1e-12, abs=1e-300)
    assert multiple_choice_grade(sizes, C, ALPHA, lengths, 4).shape == (4, 3)


def test_scalars_give_zero_dimensional_arrays() -> None:
    for value in (
        cross_entropy(C, C, ALPHA),
        per_token_prob(C, C, ALPHA),
        exact_match(C, C, ALPHA, 2),
        token_edit_distance(C, C, ALPHA, 2),
        brier_score(C, C, ALPHA, 2),
        multiple_choice_grade(C, C, ALPHA, 2, 4),
    ):
        assert isinstance(value, np.ndarray)
        assert value.shape == ()
    assert exact_match([C, 4 * C], C, ALPHA, 3).shape == (2,)
    assert exact_match(C, C, ALPHA, [1, 2, 3]).shape == (3,)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"c": 0.0}, "c must"),
        ({"c": -1e9}, "c must"),
        ({"c": math.inf}, "c must"),
        ({"alpha": 0.0}, "alpha must"),
        ({"alpha": 0.3}, "alpha must"),
        ({"alpha": math.nan}, "alpha must"),
        ({"N": 0.0}, "N (model parameters)"),
        ({"N": [1e9, -5.0]}, "N (model parameters)"),
        ({"N": [math.nan]}, "N (model parameters)"),
        ({"N": []}, "N must"),
    ],
)
def test_bad_law_parameters_are_refused(kwargs: dict[str, object], needle: str) -> None:
    args: dict[str, object] = {"N": C, "c": C, "alpha": ALPHA} | kwargs
    with pytest.raises(ValueError, match="^" + re.escape(needle)):
        cross_entropy(args["N"], args["c"], args["alpha"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        exact_match(args["N"], args["c"], args["alpha"], 2)  # type: ignore[arg-type]


@pytest.mark.parametrize("length", [0, -1, math.inf, [1, 0]])
def test_bad_lengths_are_refused(length: object) -> None:
    with pytest.raises(ValueError, match="L \\(answer length"):
        exact_match(C, C, ALPHA, length)  # type: ignore[arg-type]


@pytest.mark.parametrize("k", [1, 0, 2.5, True])
def test_bad_number_of_choices_is_refused(k: object) -> None:
    with pytest.raises(ValueError, match="k \\(number of choices\\)"):
        multiple_choice_grade(C, C, ALPHA, 1, k)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [{"points": 1}, {"n_min": 0.0}, {"n_min": 1e12, "n_max": 1e7}, {"lengths": []}, {"k": 1}],
)
def test_curves_refuses_a_bad_grid(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"c": C, "alpha": ALPHA, "lengths": [1, 2]} | kwargs
    with pytest.raises(ValueError):
        curves(**args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- monotonicity

law = {
    "c": st.floats(min_value=1e6, max_value=1e13),
    "alpha": st.floats(min_value=-2.0, max_value=-0.05),
}
size = st.floats(min_value=1e5, max_value=1e15)
length = st.integers(min_value=1, max_value=50)


@settings(max_examples=150, deadline=None)
@given(**law, n1=size, n2=size, length=length)
def test_accuracy_rises_and_edit_distance_falls_with_size(
    c: float, alpha: float, n1: float, n2: float, length: int
) -> None:
    small, large = sorted((n1, n2))
    assert exact_match(large, c, alpha, length) >= exact_match(small, c, alpha, length)
    assert token_edit_distance(large, c, alpha, length) <= token_edit_distance(
        small, c, alpha, length
    )
    assert brier_score(large, c, alpha, length) <= brier_score(small, c, alpha, length)
    assert multiple_choice_grade(large, c, alpha, length, 4) >= multiple_choice_grade(
        small, c, alpha, length, 4
    )
    if large > small * (1 + 1e-6):
        assert cross_entropy(large, c, alpha) < cross_entropy(small, c, alpha)


@settings(max_examples=150, deadline=None)
@given(**law, n=size, l1=length, l2=length)
def test_accuracy_falls_with_answer_length(
    c: float, alpha: float, n: float, l1: int, l2: int
) -> None:
    short, long = sorted((l1, l2))
    got = exact_match(n, c, alpha, [short, long])
    assert got[1] <= got[0]
    assert np.all((got >= 0) & (got <= 1))


@settings(max_examples=50, deadline=None)
@given(**law, lengths=st.lists(length, min_size=1, max_size=4, unique=True))
def test_curves_are_monotone_along_each_length(c: float, alpha: float, lengths: list[int]) -> None:
    frame = curves(c, alpha, lengths, points=40)
    for _, block in frame.groupby("length"):
        assert np.all(np.diff(block["params"].to_numpy()) > 0)
        assert np.all(np.diff(block["exact_match"].to_numpy()) >= 0)
        assert np.all(np.diff(block["token_edit_distance"].to_numpy()) <= 0)


# --------------------------------------------------------------------------- the table


def test_curves_table_layout() -> None:
    frame = curves(C, ALPHA, [1, 2, 3], k=4, n_min=1e7, n_max=1e12, points=11)
    assert list(frame.columns) == list(CURVE_COLUMNS)
    assert len(frame) == 33
    assert frame["length"].tolist() == [1] * 11 + [2] * 11 + [3] * 11
    np.testing.assert_allclose(frame["params"].iloc[:11], np.logspace(7, 12, 11), rtol=1e-12)
    assert not frame.duplicated(["params", "length"]).any()
    row = frame.iloc[11 + 5]  # L = 2, N = 10 ** 9.5
    p = math.exp(-((10**9.5 / C) ** ALPHA))
    assert row["per_token_prob"] == pytest.approx(p, rel=1e-12)
    assert row["exact_match"] == pytest.approx(p**2, rel=1e-12)
    assert row["token_edit_distance"] == pytest.approx(2 * (1 - p), rel=1e-12)
    assert row["brier_score"] == pytest.approx((1 - p**2) ** 2, rel=1e-12)
    assert row["multiple_choice_grade"] == (1.0 if p**2 > 0.25 else 0.25)


# --------------------------------------------------------------------------- figure and files

LENGTHS = [1, 2, 3, 4, 5]
PER_LENGTH_PANELS = {
    "exact match",
    "token edit distance",
    "multiple-choice grade",
    "Brier score",
}


def test_figure_has_six_log_x_panels_with_one_line_per_length() -> None:
    fig = plot_theory(curves(C, ALPHA, LENGTHS, points=50), C, ALPHA)
    axes = fig.axes
    assert len(axes) == 6
    assert all(ax.get_xscale() == "log" for ax in axes)
    per_length = 0
    for ax in axes:
        title = ax.get_title(loc="left")
        assert title
        assert ax.get_ylabel()
        if any(name in title for name in PER_LENGTH_PANELS):
            per_length += 1
            assert len(ax.get_lines()) == len(LENGTHS)
        else:
            assert "cross-entropy" in title or "probability" in title
            assert len(ax.get_lines()) == 1
    assert per_length == 4
    assert sum(ax.get_xlabel() == "Model parameters $N$" for ax in axes) == 3
    (legend,) = fig.legends
    assert legend.get_title().get_text() == "answer length L"
    assert [t.get_text() for t in legend.get_texts()] == [f"L = {n}" for n in LENGTHS]


def test_figure_needs_the_curve_columns() -> None:
    frame = curves(C, ALPHA, LENGTHS, points=10).drop(columns="brier_score")
    with pytest.raises(ValueError, match="brier_score"):
        plot_theory(frame, C, ALPHA)


def test_outputs_are_written_and_the_csv_matches_the_formula(tmp_path: Path) -> None:
    paths = write_theory_outputs(tmp_path / "out", C, ALPHA, LENGTHS, points=200)
    assert set(paths) == {"png", "svg", "csv"}
    assert {p.name for p in paths.values()} == {"theory.png", "theory.svg", "theory_curves.csv"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        p.name for p in paths.values()
    )  # no temporary files left behind
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in paths["svg"].read_bytes()[:2000]

    table = pd.read_csv(paths["csv"])
    assert list(table.columns) == list(CURVE_COLUMNS)
    assert len(table) == 200 * len(LENGTHS)
    assert sorted(table["length"].unique()) == LENGTHS
    worst = 0.0
    for params, length, value in zip(
        table["params"], table["length"], table["exact_match"], strict=True
    ):
        expected = math.exp(-((params / C) ** ALPHA)) ** length
        worst = max(worst, abs(value - expected))
    assert worst <= 1e-12


def test_svg_output_is_reproducible(tmp_path: Path) -> None:
    first = write_theory_outputs(tmp_path / "a", C, ALPHA, [1, 2], points=20)
    second = write_theory_outputs(tmp_path / "b", C, ALPHA, [1, 2], points=20)
    for key in ("svg", "csv"):
        assert first[key].read_bytes() == second[key].read_bytes()


def test_writing_outputs_does_not_touch_pyplot(tmp_path: Path) -> None:
    code = (
        "import sys, matplotlib\n"
        "from miragelab.report import write_theory_outputs\n"
        f"write_theory_outputs({str(tmp_path)!r}, 2e9, -0.5, [1, 2], points=20)\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "theory.png").exists()
