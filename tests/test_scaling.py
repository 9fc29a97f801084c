"""Power-law fits recover the closed-form law; the back-test sees the rise a sigmoid misses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from miragelab import theory
from miragelab.scaling import (
    BACKTEST_COLUMNS,
    backtest,
    bootstrap_power_law,
    fit_power_law,
    fit_sigmoid,
    predict_exact_match,
)

SIZES = np.geomspace(1e7, 1e12, 11)


@pytest.mark.parametrize(("c", "alpha"), [(1e10, -0.3), (3e8, -0.076), (5e11, -0.7)])
def test_recovers_the_law(c, alpha):
    fit = fit_power_law(SIZES, theory.cross_entropy(SIZES, c, alpha))
    assert fit.c == pytest.approx(c, rel=1e-6)
    assert fit.alpha == pytest.approx(alpha, rel=1e-6)
    assert fit.irreducible == 0.0 and fit.r2_log == pytest.approx(1.0)
    assert fit.rmse_log < 1e-9


def test_recovers_the_law_with_an_irreducible_loss():
    y = theory.cross_entropy(SIZES, 1e10, -0.4) + 0.5
    fit = fit_power_law(SIZES, y, irreducible=True)
    assert fit.c == pytest.approx(1e10, rel=1e-6)
    assert fit.alpha == pytest.approx(-0.4, rel=1e-6)
    assert fit.irreducible == pytest.approx(0.5, rel=1e-6)
    assert fit.predict(2e12) == pytest.approx((2e12 / 1e10) ** -0.4 + 0.5, rel=1e-6)


def test_predict_exact_match_is_p_to_the_length():
    fit = fit_power_law(SIZES, theory.cross_entropy(SIZES, 1e10, -0.3))
    new = np.array([3e12, 1e13])
    expected = [math.exp(-((n / 1e10) ** -0.3)) ** 8 for n in new]
    assert predict_exact_match(fit, new, 8) == pytest.approx(expected, rel=1e-6)
    grid = predict_exact_match(fit, new[:, None], np.array([1, 8]))
    assert grid.shape == (2, 2)


def test_bootstrap_intervals():
    exact = theory.cross_entropy(SIZES, 1e10, -0.3)
    result = bootstrap_power_law(SIZES, exact, n_resamples=50)
    assert result.alpha == pytest.approx((-0.3, -0.3), rel=1e-6)
    assert result.c == pytest.approx((1e10, 1e10), rel=1e-6)
    noisy = exact * np.exp(np.random.default_rng(2).normal(0, 0.02, SIZES.size))
    result = bootstrap_power_law(SIZES, noisy, n_resamples=400, rng=np.random.default_rng(5))
    assert result.alpha[0] < -0.3 < result.alpha[1]
    assert result.alpha[1] - result.alpha[0] < 0.05


def test_fit_sigmoid_recovers_a_logistic():
    u = np.linspace(0.0, 10.0, 12)
    two = 1 / (1 + np.exp(-1.5 * (u - 6.0)))
    fit = fit_sigmoid(u, two, n_params=2)
    assert (fit.slope, fit.midpoint) == pytest.approx((1.5, 6.0), rel=1e-4)
    four = 0.25 + 0.6 / (1 + np.exp(-2.0 * (u - 4.0)))
    fit = fit_sigmoid(u, four)
    assert fit.n_params == 4
    assert (fit.lower, fit.upper, fit.slope, fit.midpoint) == pytest.approx(
        (0.25, 0.85, 2.0, 4.0), rel=1e-4
    )


def test_backtest_power_law_sees_the_rise_sigmoid_misses():
    # exact match of a 10-token answer is ~0 on the 7 smaller models and rises on the last 3
    x = np.geomspace(1e8, 1e12, 10)
    c, alpha, L = 1.5e10, -0.7, 10
    ce = theory.cross_entropy(x, c, alpha)
    acc = np.exp(-ce * L)
    assert acc[:7].max() < 0.02 and acc[-1] > 0.5
    table = backtest(x, ce, acc, L, holdout=3)
    assert list(table.columns) == list(BACKTEST_COLUMNS)
    assert table["params"].tolist() == pytest.approx(x[-3:].tolist())
    expected = [math.exp(-L * (n / c) ** alpha) for n in x[-3:]]
    assert table["predicted_power_law"].tolist() == pytest.approx(expected, rel=1e-6)
    assert table["abs_error_power_law"].max() < 1e-6
    assert table["abs_error_sigmoid"].max() > 0.1
