"""The bootstrap of the mean: exact where it claims to be, within its bound where it is binned.

Every reference here is computed independently of :mod:`miragelab.stats`: brute-force
index resampling written in the test, the plug-in variance ``var(x) / n`` of the
bootstrap mean, and, for eight values, the exact bootstrap distribution by
enumerating all 6,435 multisets of eight draws.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from miragelab.bootstrap import (
    BINNED_TOLERANCE,
    bca_mean_interval,
    binned_bootstrap_means,
    bootstrap_means,
)

R = 20_000  # resamples per side: Monte-Carlo errors below are computed for this


def _brute_force(x: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """The textbook bootstrap: draw n indices with replacement, take the mean."""
    rng = np.random.default_rng(seed)
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, 500):
        stop = min(n_resamples, start + 500)
        out[start:stop] = x[rng.integers(0, x.size, size=(stop - start, x.size))].mean(axis=1)
    return out


def _data(kind: str) -> np.ndarray:
    rng = np.random.default_rng({"binary": 11, "integer": 12, "continuous": 13}[kind])
    if kind == "binary":
        return (rng.random(150) < 0.3).astype(float)
    if kind == "integer":
        return rng.poisson(2.0, 300).astype(float)  # edit-distance-like small integers
    return rng.lognormal(0.0, 1.0, 2000)  # skewed, every value distinct


def _assert_same_distribution(ours: np.ndarray, reference: np.ndarray, x: np.ndarray) -> None:
    # a mean summed in another order differs in the last bits: compare at 1e-12
    ours, reference = np.round(ours, 12), np.round(reference, 12)
    s = x.std() / math.sqrt(x.size)  # the bootstrap standard deviation, in closed form
    mc = 1 / math.sqrt(R)
    assert abs(ours.mean() - x.mean()) < 4 * s * mc
    assert ours.std() == pytest.approx(s, rel=4 * mc / math.sqrt(2))
    assert reference.std() == pytest.approx(s, rel=4 * mc / math.sqrt(2))
    # quantiles: Monte-Carlo error of a q-quantile is sqrt(q(1-q)/R) / density,
    # about 0.019 s at 2.5% and 0.009 s at the median; two samples, four errors;
    # means of integers lie on a lattice of step 1/n, so one step more for them
    step = 1 / x.size if np.all(x == np.round(x)) else 0.0
    for q, tol in ((0.025, 0.11), (0.5, 0.06), (0.975, 0.11)):
        assert abs(np.quantile(ours, q) - np.quantile(reference, q)) <= tol * s + step, q
    assert sps.ks_2samp(ours, reference).pvalue > 1e-3


@pytest.mark.parametrize("kind", ["binary", "integer", "continuous"])
def test_auto_matches_brute_force_resampling(kind: str) -> None:
    x = _data(kind)
    ours = bootstrap_means(x, R, np.random.default_rng(1))
    _assert_same_distribution(ours, _brute_force(x, R, 2), x)


@pytest.mark.parametrize("kind", ["binary", "integer", "continuous"])
def test_binned_matches_brute_force_resampling(kind: str) -> None:
    # a coarse binning (16 bins, tolerance 5% of the standard deviation) still matches
    x = _data(kind)
    ours, bound = binned_bootstrap_means(x, R, np.random.default_rng(3), n_bins=16, tolerance=0.05)
    assert bound <= 0.05 * x.std() / math.sqrt(x.size)
    _assert_same_distribution(ours, _brute_force(x, R, 4), x)


def test_forced_exact_matches_brute_force_for_many_distinct_values() -> None:
    x = np.random.default_rng(5).normal(size=600)  # > 512 distinct values
    ours = bootstrap_means(x, R, np.random.default_rng(6), method="exact")
    _assert_same_distribution(ours, _brute_force(x, R, 7), x)


# --------------------------------------------------------------------------- the bound, exactly

EIGHT = np.array([0.1, 0.2, 0.35, 0.5, 0.9, 1.4, 2.6, 5.0])


def _exact_bootstrap_of_eight() -> tuple[np.ndarray, np.ndarray]:
    """Every resample of EIGHT as (mean, probability): multinomial over the multisets."""
    n = EIGHT.size
    means, probs = [], []
    for draw in itertools.combinations_with_replacement(range(n), n):
        counts = np.bincount(draw, minlength=n)
        ways = math.factorial(n) / np.prod([math.factorial(int(c)) for c in counts])
        means.append(float(counts @ EIGHT) / n)
        probs.append(ways / n**n)
    return np.array(means), np.array(probs)


def test_exact_enumeration_is_a_distribution() -> None:
    means, probs = _exact_bootstrap_of_eight()
    assert means.size == math.comb(15, 7) and probs.sum() == pytest.approx(1.0, abs=1e-12)
    assert probs @ means == pytest.approx(EIGHT.mean(), abs=1e-12)
    assert probs @ (means - EIGHT.mean()) ** 2 == pytest.approx(EIGHT.var() / 8, rel=1e-12)


@pytest.mark.parametrize("n_bins", [1, 2, 4])
def test_binned_error_stays_within_its_bound(n_bins: int) -> None:
    """Coarse bins on eight skewed values: a real error, measured exactly against the
    enumerated bootstrap, and never above the returned bound."""
    means, probs = _exact_bootstrap_of_eight()
    m = 400_000
    ours, bound = binned_bootstrap_means(
        EIGHT, m, np.random.default_rng(n_bins), n_bins=n_bins, tolerance=1e9
    )
    s = EIGHT.std() / math.sqrt(8)
    # the first two moments are exact by construction
    assert ours.mean() == pytest.approx(EIGHT.mean(), abs=5 * s / math.sqrt(m))
    assert ours.std() == pytest.approx(s, rel=5 / math.sqrt(2 * m))
    distance = sps.wasserstein_distance(ours, means, v_weights=probs)
    # Monte-Carlo part of the measured distance: that of an exact sample of the same size
    rng = np.random.default_rng(99)
    exact_sample = rng.choice(means, size=m, p=probs)
    noise = sps.wasserstein_distance(exact_sample, means, v_weights=probs)
    assert distance <= bound + 3 * noise
    # the bound by hand for one bin: E|x - mean|^3 / (n var)
    if n_bins == 1:
        d = EIGHT - EIGHT.mean()
        assert bound == pytest.approx(np.mean(np.abs(d) ** 3) / (8 * np.mean(d**2)), rel=1e-12)


def test_binning_more_finely_shrinks_the_bound() -> None:
    bounds = [
        binned_bootstrap_means(EIGHT, 10, np.random.default_rng(0), n_bins=k, tolerance=1e9)[1]
        for k in (1, 2, 4, 8)
    ]
    assert bounds[0] > bounds[1] > bounds[2] > bounds[3] == 0.0  # one value per bin is exact


def test_default_tolerance_is_reached_on_heavy_tails() -> None:
    x = np.random.default_rng(8).pareto(1.2, 50_000)  # a few huge values
    _, bound = binned_bootstrap_means(x, 100, np.random.default_rng(9))
    assert bound <= BINNED_TOLERANCE * x.std() / math.sqrt(x.size)
    _, bound = binned_bootstrap_means(x, 100, np.random.default_rng(9), tolerance=1e-4)
    assert bound <= 1e-4 * x.std() / math.sqrt(x.size)


def test_large_continuous_input_takes_the_binned_path_and_keeps_the_moments() -> None:
    x = np.random.default_rng(10).exponential(2.0, 300_000)
    means = bootstrap_means(x, 10_000, np.random.default_rng(11))  # 3e9 index draws exactly
    s = x.std() / math.sqrt(x.size)
    assert abs(means.mean() - x.mean()) < 4 * s / math.sqrt(10_000)
    assert means.std() == pytest.approx(s, rel=4 / math.sqrt(2 * 10_000))
    # skewed data -> positively skewed bootstrap means (skewness = data skew / sqrt(n) = 2 / 548)
    assert sps.skew(means) == pytest.approx(2 / math.sqrt(x.size), abs=4 * math.sqrt(6 / 10_000))


def test_edge_cases() -> None:
    rng = np.random.default_rng(0)
    assert np.isnan(bootstrap_means(np.array([]), 5, rng)).all()
    assert (bootstrap_means(np.full(10, 2.5), 5, rng) == 2.5).all()
    means, bound = binned_bootstrap_means(np.full(1000, -1.0), 5, rng)
    assert (means == -1.0).all() and bound == 0.0
    with pytest.raises(ValueError, match="method"):
        bootstrap_means(np.arange(3.0), 5, rng, method="fast")  # type: ignore[arg-type]
    low, high = bca_mean_interval(np.random.default_rng(1).normal(size=100_000), 0.95, 2000)
    half = 1.959964 / math.sqrt(100_000)
    assert low == pytest.approx(-half, abs=0.1 * half + 0.01) and high > low
