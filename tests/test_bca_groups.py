"""BCa intervals of many groups at once, against ``scipy.stats.bootstrap(method="BCa")``.

The reference is scipy's own BCa (its jackknife, its percentiles), run group by
group on the same values with other random draws, so the two agree up to the
Monte-Carlo error of each side: the q-quantile of R resampled means moves by
``sqrt(q (1 - q) / R) / phi(z_q)`` bootstrap standard deviations, and the BCa
level itself moves with the estimated bias correction. Data on a lattice
(0/1, integers, heavy ties) puts every resampled mean on a lattice of step
``gcd / n``, so one step more is allowed there.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from miragelab import bootstrap as bs
from miragelab.bootstrap import (
    bca_mean_interval,
    bca_mean_intervals,
    interval_tolerance,
)

R = 10_000


def _shapes() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2026)
    ties = np.concatenate(
        [np.zeros(500), np.full(250, 0.5), np.ones(150), np.full(20, 7.25), rng.random(80)]
    )
    return {
        "0/1, n=40": (rng.random(40) < 0.2).astype(float),
        "0/1, n=3000": (rng.random(3000) < 0.9).astype(float),
        "integer, n=25": rng.poisson(1.5, 25).astype(float),
        "integer, n=4000": rng.poisson(3.0, 4000).astype(float),
        "skewed, n=12": rng.lognormal(0.0, 1.0, 12),
        "skewed, n=300": rng.lognormal(0.0, 1.2, 300),
        "skewed, n=5000": -rng.gamma(0.7, 1.5, 5000),
        "skewed, n=20000": rng.pareto(3.5, 20_000),
        "heavy ties, n=1000": rng.permutation(ties),
    }


SHAPES = _shapes()


def _scipy_bca(x: np.ndarray, seed: int) -> tuple[float, float]:
    result = sps.bootstrap(
        (x,),
        np.mean,
        confidence_level=0.95,
        n_resamples=R,
        method="BCa",
        random_state=np.random.default_rng(seed),
        batch=max(1, 2_000_000 // x.size),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _lattice_step(x: np.ndarray) -> float:
    """The spacing of the resampled means where the values lie on a lattice, else 0."""
    distinct = np.unique(x)
    if distinct.size > 50:
        return 0.0
    gaps = np.diff(distinct)
    step = gaps.min() if gaps.size else 0.0
    return step / x.size if np.allclose(gaps / step, np.round(gaps / step)) else 0.0


@pytest.fixture(scope="module")
def ours() -> dict[str, tuple[float, float, float]]:
    """Every shape in one call: the groups one after another."""
    values = np.concatenate(list(SHAPES.values()))
    sizes = np.array([x.size for x in SHAPES.values()])
    means, low, high = bca_mean_intervals(values, sizes, 0.95, R, 7)
    return {name: (m, lo, hi) for name, m, lo, hi in zip(SHAPES, means, low, high, strict=True)}


@pytest.mark.parametrize("name", list(SHAPES))
def test_intervals_match_scipy_bca(name: str, ours: dict) -> None:
    x = SHAPES[name]
    mean, low, high = ours[name]
    assert mean == pytest.approx(x.mean(), rel=1e-12, abs=1e-15)
    ref_low, ref_high = _scipy_bca(x, 11)
    boot_sd = x.std() / math.sqrt(x.size)
    # Monte-Carlo sd of an end at 95%: 2.67 / sqrt(R) bootstrap sds per side, and the
    # bias correction's own noise; 4 sds of the difference of two runs, one lattice step
    tol = 4 * math.sqrt(2) * 1.3 * 2.67 / math.sqrt(R) * boot_sd + 1.01 * _lattice_step(x)
    assert abs(low - ref_low) <= tol, (low, ref_low, tol)
    assert abs(high - ref_high) <= tol, (high, ref_high, tol)
    assert low <= mean <= high


def test_skewed_groups_give_asymmetric_intervals_like_scipy() -> None:
    """On a strongly skewed small group the BCa ends sit unevenly about the mean, and
    by the same amounts as scipy's (a symmetric t interval would not)."""
    x = SHAPES["skewed, n=300"]
    _, low, high = bca_mean_intervals(x, [x.size], 0.95, 40_000, 3)
    ref_low, ref_high = _scipy_bca(x, 5)
    m = x.mean()
    assert (high[0] - m) / (m - low[0]) == pytest.approx((ref_high - m) / (m - ref_low), rel=0.06)
    assert (high[0] - m) / (m - low[0]) > 1.15


def test_one_group_is_the_single_interval() -> None:
    x = SHAPES["skewed, n=5000"]
    _, low, high = bca_mean_intervals(x, [x.size], 0.9, 2000, 4)
    assert bca_mean_interval(x, 0.9, 2000, 4) == (low[0], high[0])


def test_deterministic_per_seed_and_independent_of_order_and_threads(monkeypatch) -> None:
    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 3000, size=300)  # several chunks of work
    values = rng.lognormal(0.0, 1.0, int(sizes.sum()))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    one = bca_mean_intervals(values, sizes, 0.95, 500, 9)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    two = bca_mean_intervals(values, sizes, 0.95, 500, 9)
    again = bca_mean_intervals(values, sizes, 0.95, 500, 9)
    # shuffle the values within each group: same groups, same intervals
    bounds = np.append(0, np.cumsum(sizes))
    shuffled = np.concatenate(
        [rng.permutation(values[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    )
    reordered = bca_mean_intervals(shuffled, sizes, 0.95, 500, 9)
    other = bca_mean_intervals(values, sizes, 0.95, 500, 10)
    for a, b in ((one, two), (one, again), (one, reordered)):
        for u, v in zip(a, b, strict=True):
            np.testing.assert_array_equal(u, v)
    assert not np.array_equal(one[1], other[1])


def test_edge_groups() -> None:
    values = np.array([3.0, 2.5, 2.5, 2.5, 1.0, 4.0])
    means, low, high = bca_mean_intervals(values, [1, 3, 2], 0.95, 200, 0)
    np.testing.assert_array_equal(means, [3.0, 2.5, 2.5])
    assert (low[0], high[0]) == (3.0, 3.0) and (low[1], high[1]) == (2.5, 2.5)
    assert 1.0 <= low[2] < 2.5 < high[2] <= 4.0
    assert bca_mean_interval(np.array([])) != bca_mean_interval(np.array([]))  # nan
    with pytest.raises(ValueError, match="add up"):
        bca_mean_intervals(values, [1, 3], 0.95, 10, 0)
    with pytest.raises(ValueError, match="at least one"):
        bca_mean_intervals(values, [3, 0, 3], 0.95, 10, 0)


def test_tolerance_is_a_tenth_of_the_monte_carlo_error_of_the_ends() -> None:
    # sqrt(q (1 - q)) / phi(z_q) at q = 0.025, computed here from its pieces
    q = 0.025
    z = 1.959963984540054
    phi = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    assert interval_tolerance(1000) == pytest.approx(
        0.1 * math.sqrt(q * (1 - q)) / phi / 31.6228, rel=1e-4
    )
    assert interval_tolerance(4000) == pytest.approx(interval_tolerance(1000) / 2)


@pytest.mark.parametrize(
    "name", ["skewed, n=5000", "skewed, n=20000", "integer, n=4000", "0/1, n=3000"]
)
def test_binned_groups_stay_within_the_tolerance(name: str) -> None:
    """Large continuous groups are binned (far fewer draws than values), within the bound;
    values further apart than the bins' width (0/1 here) are resampled exactly."""
    x = SHAPES[name]
    groups = bs._groups(*bs._checked(x, [x.size]))
    tol = interval_tolerance(1000)
    means, bound = bs._resampled_means(groups, 1000, np.random.default_rng(0), "auto", tol)
    boot_sd = x.std() / math.sqrt(x.size)
    assert bound[0] <= tol * boot_sd * (1 + 1e-9)
    bins = bs._binned_bins(groups, bs._start_edges(groups, 1), tol)
    if name.startswith("0/1"):
        assert bound[0] == 0.0 and bins.count[0] == 2
    else:
        assert 1 < bins.count[0] < min(100, np.unique(x).size) and bound[0] > 0
    # the first two moments of the resampled means are the bootstrap's
    assert means[0].mean() == pytest.approx(x.mean(), abs=4 * boot_sd / math.sqrt(1000))
    assert means[0].std() == pytest.approx(boot_sd, rel=4 / math.sqrt(2 * 1000))
