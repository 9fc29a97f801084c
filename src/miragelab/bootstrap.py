"""The bootstrap of a mean, for one group of values or for thousands at once.

A resample of ``n`` values drawn with replacement has a mean whose distribution
depends only on how many draws land on each value, so it is drawn in one of
three ways, whichever costs least for the group:

* **index**: the ``n`` resampled indices themselves (exact; cheapest for
  small groups: an index draw costs about a seventh of a binomial draw);
* **counts**: multinomial counts over the distinct values (exact; 0/1 and
  small-integer metrics cost a few binomial draws per resample whatever ``n``);
* **binned**: multinomial counts over bins of consecutive values, each bin's
  inner sum replaced by a normal of the same conditional mean and variance,
  with a proven bound on the error (:func:`binned_bootstrap_means`). The bins
  are as wide as the bound allows, so their number does not grow with ``n``.

The binned method's error is bounded in Wasserstein-1 distance to the exact
bootstrap distribution, in units of its standard deviation ``sd``: by 0.1%
for :func:`bootstrap_means` and :func:`binned_bootstrap_means`
(``BINNED_TOLERANCE``), and for an interval by a tenth of the Monte-Carlo
standard error that its ``R`` resamples leave in its ends
(:func:`interval_tolerance`: 0.84% of ``sd`` for a 95% interval from 1,000
resamples, whose ends move by 8.4% of ``sd`` from one seed to the next).

:func:`bca_mean_intervals` gives the BCa interval of every group's mean from
one sorted pass over the values: the resampled means of all groups form one
``(groups, resamples)`` matrix, and the bias correction, the closed-form
jackknife acceleration and the percentiles are computed on its rows at once.
:func:`bca_mean_interval` is the same for one group.
"""

from __future__ import annotations

import math
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

#: default error bound of the binned bootstrap of a distribution: Wasserstein-1
#: distance to the exact bootstrap distribution, as a fraction of its standard deviation
BINNED_TOLERANCE = 1e-3
#: the binned bootstrap behind an interval is kept within this fraction of the
#: Monte-Carlo standard error of the interval's ends
MC_FRACTION = 0.1
#: an index draw costs about this fraction of a binomial draw
_INDEX_COST = 1 / 7
#: the ways a group is resampled, in the order of their cost columns
_INDEX, _COUNTS, _BINNED = 0, 1, 2
#: resampled values (or resampled means) held in memory at once
_CHUNK_ELEMENTS = 4_000_000
#: values per chunk of groups: the unit of work of one thread, with its own random stream
_CHUNK_VALUES = 1 << 18
#: above this many groups in a chunk, one lexsort sorts them all (below, each in place)
_SORT_LOOP_MAX = 4096

BootstrapMethod = Literal["auto", "exact", "binned"]


def interval_tolerance(n_resamples: int, confidence: float = 0.95) -> float:
    """Error bound of the binned bootstrap behind an interval from ``n_resamples`` resamples.

    In units of the bootstrap standard deviation ``sd``: a tenth of the
    Monte-Carlo standard error of the interval's ends, which is
    ``sqrt(q (1 - q) / R) / phi(z_q)`` in those units for the ``q`` quantile
    of ``R`` resamples (``q = 0.025`` at 95%: ``2.67 / sqrt(R)``). So
    ``0.0084`` at 1,000 resamples and 95% confidence: binning moves the
    bootstrap distribution (in Wasserstein-1 distance) by less than a tenth of
    what resampling already moves the interval's ends.
    """
    q = (1.0 - confidence) / 2.0
    if not 0.0 < q < 0.5:
        return MC_FRACTION / math.sqrt(max(int(n_resamples), 1))
    quantile_error = math.sqrt(q * (1 - q)) / sps.norm.pdf(sps.norm.ppf(q))
    return MC_FRACTION * quantile_error / math.sqrt(max(int(n_resamples), 1))


# ------------------------------------------------------------------- groups of sorted values


@dataclass(frozen=True)
class _Groups:
    """Values sorted within each group, groups one after another, and their moments."""

    xs: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray
    #: group of each value
    gid: np.ndarray
    #: per group: mean; sums of squared, cubed and absolute cubed deviations;
    #: number of distinct values
    centre: np.ndarray
    m2: np.ndarray
    m3: np.ndarray
    r3: np.ndarray
    distinct: np.ndarray
    #: position of the first of each run of equal values (a run never spans two groups)
    runs: np.ndarray

    @property
    def sd(self) -> np.ndarray:
        return np.sqrt(self.m2 / self.sizes)


def _checked(values: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sizes = np.asarray(sizes, dtype=np.int64).ravel()
    values = np.asarray(values, dtype=float).ravel()
    if sizes.size and sizes.min() < 1:
        raise ValueError("every group needs at least one value")
    if int(sizes.sum()) != values.size:
        raise ValueError(f"group sizes add up to {int(sizes.sum())}, not {values.size} values")
    return values, sizes


def _groups(values: np.ndarray, sizes: np.ndarray) -> _Groups:
    """Sort each group (a copy) and take its moments; ``sizes`` are >= 1 and add up."""
    starts = np.cumsum(sizes) - sizes
    gid = np.repeat(np.arange(sizes.size), sizes)
    if sizes.size > _SORT_LOOP_MAX:
        xs = values[np.lexsort((values, gid))]
    else:
        xs = np.array(values, dtype=float)
        for a, b in zip(starts.tolist(), (starts + sizes).tolist(), strict=True):
            xs[a:b].sort()
    centre = np.add.reduceat(xs, starts) / sizes
    d = xs - centre[gid]
    d2 = d * d
    new = np.empty(xs.size, dtype=bool)
    new[0] = True
    np.not_equal(xs[1:], xs[:-1], out=new[1:])
    new[starts] = True
    return _Groups(
        xs,
        starts,
        sizes,
        gid,
        centre,
        np.add.reduceat(d2, starts),
        np.add.reduceat(d2 * d, starts),
        np.add.reduceat(d2 * np.abs(d), starts),
        np.add.reduceat(new.astype(np.int64), starts),
        np.flatnonzero(new),
    )


def _chunks(sizes: np.ndarray, n_resamples: int) -> list[tuple[int, int]]:
    """Runs of consecutive groups, each of about ``_CHUNK_VALUES`` values at most (and of at
    most ``_CHUNK_ELEMENTS / n_resamples`` groups, the memory of their resampled means);
    they depend on the sizes only, so the result does not depend on the threads."""
    starts = np.cumsum(sizes) - sizes
    max_groups = max(1, _CHUNK_ELEMENTS // max(n_resamples, 1))
    index = np.arange(sizes.size)
    new = np.ones(sizes.size, dtype=bool)
    new[1:] = (starts[1:] // _CHUNK_VALUES != starts[:-1] // _CHUNK_VALUES) | (
        index[1:] % max_groups == 0
    )
    first = np.flatnonzero(new).tolist()
    return list(zip(first, [*first[1:], sizes.size], strict=True))


def key_seed(seed: int, key: tuple) -> int:
    """A seed for one unit of work (a curve, a pair of models) from the run's ``seed`` and
    the unit's key: stable across runs and independent of the order units come in."""
    return (seed * 1_000_003 + zlib.crc32(repr(key).encode())) % (2**32)


def cpu_threads(tasks: int) -> int:
    """Threads for ``tasks`` independent chunks: the CPUs this process may use, at most
    ``OMP_NUM_THREADS`` where it is set (as Ray and schedulers set it per worker)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "")
    if limit.isdigit() and int(limit) >= 1:
        cpus = min(cpus, int(limit))
    return max(1, min(cpus, tasks))


# --------------------------------------------------------------------------- bins


def _bin_moments(
    xs: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Size, mean, variance and mean absolute third central moment of each bin
    (``edges``: the bins' first positions, then the end)."""
    starts, sizes = edges[:-1], np.diff(edges)
    mu = np.add.reduceat(xs, starts) / sizes
    d = xs - np.repeat(mu, sizes)
    d2 = d * d
    var = np.add.reduceat(d2, starts) / sizes
    r3 = np.add.reduceat(d2 * np.abs(d), starts) / sizes
    return sizes, mu, var, r3


@dataclass(frozen=True)
class _Bins:
    """Bins of consecutive sorted values, for every group at once."""

    edges: np.ndarray  # first position of each bin, then the end
    group: np.ndarray  # group of each bin
    sizes: np.ndarray
    mu: np.ndarray
    var: np.ndarray
    #: per group: the bound on the Wasserstein-1 distance to the exact bootstrap
    #: distribution of the mean, and the number of bins
    bound: np.ndarray
    count: np.ndarray


def _bound_terms(var: np.ndarray, r3: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Goldstein's bound per bin, ``E|x - mu|^3 / (n var)`` (``var``, ``r3``: the bin's
    variance and mean absolute third central moment, ``n``: its group's size); 0 for a
    bin of equal values."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var > 0, r3 / var, 0.0) / n


def _bins(groups: _Groups, edges: np.ndarray, allowed: np.ndarray) -> tuple[_Bins, np.ndarray]:
    """Moments and bound terms of the bins starting at ``edges``; which exceed ``allowed``."""
    sizes, mu, var, r3 = _bin_moments(groups.xs, edges)
    group = groups.gid[edges[:-1]]
    term = _bound_terms(var, r3, groups.sizes[group])
    bound = np.zeros(groups.sizes.size)
    np.maximum.at(bound, group, term)
    count = np.bincount(group, minlength=groups.sizes.size)
    return _Bins(edges, group, sizes, mu, var, bound, count), term > allowed[group]


def _refined(
    groups: _Groups, edges: np.ndarray, too_wide: np.ndarray, width: np.ndarray
) -> np.ndarray:
    """The edges with every bin in ``too_wide`` cut into cells ``width`` wide (per group),
    counted from the group's smallest value; equal values stay in one cell."""
    xs = groups.xs
    cuts = [edges]
    for b in np.flatnonzero(too_wide).tolist():
        a, e = int(edges[b]), int(edges[b + 1])
        g = int(groups.gid[a])
        w, origin = float(width[g]), float(xs[groups.starts[g]])
        first = math.floor((xs[a] - origin) / w) + 1
        last = math.floor((xs[e - 1] - origin) / w)
        if last < first:
            continue
        if last - first >= e - a:  # more cell boundaries than values: cut value by value
            cell = np.floor((xs[a:e] - origin) / w)
            cuts.append(a + np.flatnonzero(cell[1:] != cell[:-1]) + 1)
        else:  # the first value at or above each boundary
            boundaries = origin + np.arange(first, last + 1) * w
            cuts.append(a + np.searchsorted(xs[a:e], boundaries, side="left"))
    return np.unique(np.concatenate(cuts)).astype(np.int64)


def _binned_bins(groups: _Groups, edges: np.ndarray, tolerance: float) -> _Bins:
    """Bins as wide as the bound allows: each group's error stays within ``tolerance`` times
    its bootstrap standard deviation ``sd / sqrt(n)``.

    Why the bins are right: a bin whose values span at most ``w`` has ``r / s**2 <= w``
    (``r``: its mean absolute third central moment, ``s**2``: its variance), so its
    term ``r / (n s**2)`` is at most ``w / n``. Starting from ``edges``, a bin over
    the budget is cut into cells ``2 w`` wide (``w = budget * n``), and a cell
    still over it into halves ``w`` wide, which are within it by that inequality.
    A bin of equal values is exact, so values further apart than the cells each
    keep a bin of their own (a lattice of integers is resampled exactly).
    """
    allowed = tolerance * groups.sd / np.sqrt(groups.sizes)
    width = allowed * groups.sizes
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if edges.size == groups.starts.size + 1:  # one bin per group: its own moments
            var, r3 = groups.m2 / groups.sizes, groups.r3 / groups.sizes
            term = _bound_terms(var, r3, groups.sizes)
            count = np.ones(groups.sizes.size, dtype=np.int64)
            bins = _Bins(
                edges, np.arange(count.size), groups.sizes, groups.centre, var, term, count
            )
            too_wide = term > allowed
        else:
            bins, too_wide = _bins(groups, edges, allowed)
        for scale in (2.0, 1.0):
            if not too_wide.any():
                break
            edges = _refined(groups, bins.edges, too_wide, scale * width)
            bins, too_wide = _bins(groups, edges, allowed)
    return bins


def _start_edges(groups: _Groups, n_bins: int) -> np.ndarray:
    """First positions of ``n_bins`` bins of about equal counts per group, cut only where
    the value changes (ties stay in one bin), then the end."""
    n = groups.xs.size
    if n_bins <= 1:
        return np.append(groups.starts, n)
    inner = []
    for a, size in zip(groups.starts.tolist(), groups.sizes.tolist(), strict=True):
        breaks = groups.runs[(groups.runs > a) & (groups.runs < a + size)]
        if breaks.size == 0:
            continue
        targets = a + np.linspace(0, size, min(n_bins, size) + 1)[1:-1]
        right = np.minimum(np.searchsorted(breaks, targets), breaks.size - 1)
        left = np.maximum(right - 1, 0)
        near = np.where(
            np.abs(breaks[right] - targets) < np.abs(breaks[left] - targets),
            breaks[right],
            breaks[left],
        )
        inner.append(near)
    return np.unique(np.concatenate([groups.starts, [n], *inner])).astype(np.int64)


def _distinct_bins(groups: _Groups) -> _Bins:
    """One bin per distinct value: the exact multinomial over them."""
    edges = np.append(groups.runs, groups.xs.size)
    sizes = np.diff(edges)
    zeros = np.zeros(groups.sizes.size)
    return _Bins(
        edges,
        groups.gid[groups.runs],
        sizes,
        groups.xs[groups.runs],
        np.zeros(sizes.size),
        zeros,
        groups.distinct,
    )


# --------------------------------------------------------------------------- drawing


def _index_means(
    groups: _Groups, which: np.ndarray, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Exact: the resampled indices themselves, for the groups ``which`` at once."""
    sizes = groups.sizes[which]
    starts = groups.starts[which]
    col_size = np.repeat(sizes, sizes)
    col_start = np.repeat(starts, sizes)
    local = np.cumsum(sizes) - sizes
    out = np.empty((which.size, n_resamples))
    per_chunk = max(1, _CHUNK_ELEMENTS // max(int(col_size.size), 1))
    for r0 in range(0, n_resamples, per_chunk):
        r1 = min(n_resamples, r0 + per_chunk)
        idx = col_start + rng.integers(0, col_size, size=(r1 - r0, col_size.size))
        out[:, r0:r1] = (np.add.reduceat(groups.xs[idx], local, axis=1) / sizes).T
    return out


def _counted_means(
    groups: _Groups, bins: _Bins, g: int, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Multinomial counts over one group's bins; exact where its bins hold equal values,
    else each bin's inner sum is the normal of its conditional mean and variance."""
    lo, hi = np.searchsorted(bins.group, [g, g + 1])
    n = int(groups.sizes[g])
    sizes, mu, var = bins.sizes[lo:hi], bins.mu[lo:hi], bins.var[lo:hi]
    centre = groups.centre[g]
    counts = rng.multinomial(n, sizes / n, size=n_resamples)
    total = counts @ (mu - centre)
    if var.any():
        total += np.sqrt(counts @ var) * rng.standard_normal(n_resamples)
    return centre + total / n


def _resampled_means(
    groups: _Groups,
    n_resamples: int,
    rng: np.random.Generator,
    method: BootstrapMethod,
    tolerance: float,
    n_bins: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Means of ``n_resamples`` resamples of every group, ``(groups, resamples)``, and each
    group's bound on the Wasserstein-1 distance to its exact bootstrap distribution."""
    n_groups = groups.sizes.size
    means = np.empty((n_groups, n_resamples))
    # equal or non-finite values: every resample has the group's mean
    drawn = (groups.distinct > 1) & np.isfinite(groups.m2)
    means[~drawn] = groups.centre[~drawn, None]
    binned = None
    if method == "binned":
        binned = _binned_bins(groups, _start_edges(groups, n_bins), tolerance)
        use = np.full(n_groups, _BINNED)
    else:
        # cost in binomial draws per resample: index n / 7, counts distinct, binned bins
        cost = [groups.sizes * _INDEX_COST, groups.distinct]
        if method == "auto":
            binned = _binned_bins(groups, _start_edges(groups, n_bins), tolerance)
            cost.append(binned.count)
        use = np.argmin(np.column_stack(cost), axis=1)  # ties go to the exact methods
    index = np.flatnonzero(drawn & (use == _INDEX))
    if index.size:
        means[index] = _index_means(groups, index, n_resamples, rng)
    exact = _distinct_bins(groups) if np.any(drawn & (use == _COUNTS)) else None
    for g in np.flatnonzero(drawn & (use != _INDEX)).tolist():
        bins = exact if use[g] == _COUNTS else binned
        means[g] = _counted_means(groups, bins, g, n_resamples, rng)
    bound = np.zeros(n_groups)
    if binned is not None:
        bound = np.where(drawn & (use == _BINNED), binned.bound, 0.0)
    return means, bound


def _check_method(method: str) -> None:
    if method not in ("auto", "exact", "binned"):
        raise ValueError(f"method must be 'auto', 'exact' or 'binned', got {method!r}")


def bootstrap_means(
    values: np.ndarray,
    n_resamples: int,
    rng: np.random.Generator,
    method: BootstrapMethod = "auto",
) -> np.ndarray:
    """Means of ``n_resamples`` bootstrap resamples of ``values`` (same size, with replacement).

    ``method="exact"`` draws from the exact bootstrap distribution: multinomial
    counts over the distinct values (``n_resamples x distinct`` binomial draws,
    so 0/1 and integer metrics cost almost nothing whatever ``n``), or the
    resampled indices themselves (``n_resamples x n`` draws, about seven to a
    binomial draw), whichever is cheaper. ``method="binned"`` is
    :func:`binned_bootstrap_means` with its default tolerance. ``"auto"`` (the
    default) takes the cheapest of the three: binning where it needs fewer
    draws than the exact methods, within ``BINNED_TOLERANCE`` (0.1% of the
    bootstrap standard deviation, in Wasserstein-1 distance).
    """
    _check_method(method)
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        return np.full(n_resamples, np.nan)
    groups = _groups(x, np.array([x.size], dtype=np.int64))
    return _resampled_means(groups, n_resamples, rng, method, BINNED_TOLERANCE)[0][0]


def binned_bootstrap_means(
    values: np.ndarray,
    n_resamples: int,
    rng: np.random.Generator,
    *,
    n_bins: int = 1,
    tolerance: float | None = None,
) -> tuple[np.ndarray, float]:
    """Bootstrap means of many distinct values, with a proven bound on the error.

    Returns ``(means, bound)``: ``bound`` is an upper bound on the Wasserstein-1
    distance between the distribution the means are drawn from and the exact
    bootstrap distribution of the mean (in the units of ``values``).

    Why it is right: sort the values and cut them into bins of consecutive
    values. A bootstrap resample draws ``n`` indices uniformly; the numbers
    ``C_b`` of draws that land in each bin are jointly
    ``Multinomial(n, m_b / n)`` (``m_b`` values in bin ``b``), and given those
    counts the draws inside bin ``b`` are ``C_b`` independent uniform draws from
    its values. The counts are drawn exactly. The sum of the draws inside the
    bins is replaced by a normal with the same conditional mean
    ``sum C_b mu_b`` and variance ``sum C_b s_b**2`` (``mu_b``, ``s_b``: the
    bin's mean and standard deviation), so the mean and the variance of the
    resampled means are exactly the bootstrap's, and the skew of the data is
    kept by the exact counts between bins.

    The bound: for a sum ``S`` of independent terms, the Wasserstein-1 distance
    to the normal of the same mean and variance is at most
    ``sum E|xi - E xi|**3 / Var(S)`` (Goldstein 2010, *Bounds on the constant in
    the mean central limit theorem*, Ann. Probab. 38). Per resampled mean the
    terms are ``x / n``, which gives ``sum_b C_b r_b / (n sum_b C_b s_b**2)``
    with ``r_b`` the bin's mean absolute third central moment, hence at most
    ``max_b (r_b / s_b**2) / n`` whatever the counts, and the same holds for the
    mixture over the counts. ``r_b / s_b**2`` is at most the bin's range, so
    narrow bins give a small bound; it shrinks as ``1 / n`` while the bootstrap
    standard deviation shrinks as ``1 / sqrt(n)``.

    Bins start as ``n_bins`` bins of about equal counts, cut only where the value
    changes (ties stay in one bin, so data with at most ``n_bins`` distinct
    values is resampled exactly). Any bin whose term exceeds ``tolerance`` times
    the bootstrap standard deviation ``sd / sqrt(n)`` (default
    ``BINNED_TOLERANCE``, 0.1%) is cut into cells of values
    ``2 w`` wide, and a cell still over it into halves ``w`` wide, with
    ``w = tolerance * sd * sqrt(n)``: a bin spanning at most ``w`` is within
    the tolerance because ``r_b / s_b**2`` is at most its range. The returned
    bound is what was reached.
    """
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        return np.full(n_resamples, np.nan), 0.0
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    tolerance = BINNED_TOLERANCE if tolerance is None else tolerance
    if not tolerance > 0:
        raise ValueError(f"tolerance must be > 0, got {tolerance}")
    groups = _groups(x, np.array([x.size], dtype=np.int64))
    means, bound = _resampled_means(groups, n_resamples, rng, "binned", tolerance, n_bins)
    return means[0], float(bound[0])


# --------------------------------------------------------------------------- BCa intervals


def _lerp_rows(sorted_rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row ``i``'s ``q[i]`` quantile by linear interpolation, as ``np.percentile`` computes it."""
    last = sorted_rows.shape[1] - 1
    position = np.clip(q, 0.0, 1.0) * last
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, last)
    t = position - below
    rows = np.arange(sorted_rows.shape[0])
    a, b = sorted_rows[rows, below], sorted_rows[rows, above]
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def _bias_and_acceleration(
    groups: _Groups, means: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BCa's bias correction ``z0`` and acceleration per group, and where ``z0`` is finite
    (not every resampled mean on one side of the estimate; elsewhere ``z0`` is 0)."""
    # a resampled mean equal to the estimate is not below it, whatever the rounding of the
    # two sums (0/1 and integer data put many resamples exactly on the estimate)
    tie = 1e-9 * (np.abs(groups.centre) + groups.sd)
    below = np.mean(means < (groups.centre - tie)[:, None], axis=1)
    usable = (below > 0.0) & (below < 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z0 = sps.norm.ppf(np.where(usable, below, 0.5))
        accel = groups.m3 / (6.0 * groups.m2**1.5)
    return z0, np.where(np.isfinite(accel), accel, 0.0), usable


def _bca_rows(
    groups: _Groups, means: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """BCa ends of every group from its row of resampled means."""
    estimate = groups.centre
    tail = (1.0 - confidence) / 2.0
    ordered = np.sort(means, axis=1)
    z0, accel, usable = _bias_and_acceleration(groups, means)
    with np.errstate(divide="ignore", invalid="ignore"):
        levels = []
        for z in sps.norm.ppf([tail, 1.0 - tail]):
            adjusted = sps.norm.cdf(z0 + (z0 + z) / (1.0 - accel * (z0 + z)))
            # all resamples on one side of the estimate: the bias correction is infinite,
            # and the percentile interval is what is left
            levels.append(np.where(usable, adjusted, 1.0 - tail if z > 0 else tail))
    low = _lerp_rows(ordered, levels[0])
    high = _lerp_rows(ordered, levels[1])
    # with extreme skew in few values the adjusted levels can pass the estimate (or
    # cross); an interval that does not hold its own estimate is widened to it
    low, high = np.minimum(low, high), np.maximum(low, high)
    low, high = np.minimum(low, estimate), np.maximum(high, estimate)
    constant = groups.distinct <= 1
    return np.where(constant, estimate, low), np.where(constant, estimate, high)


def bca_mean_intervals(
    values: np.ndarray,
    sizes: np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int | np.random.Generator | None = 0,
    *,
    tolerance: float | None = None,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BCa bootstrap intervals for the means of many groups at once.

    ``values`` holds the groups one after another (``sizes[i]`` values for group
    ``i``, each at least 1, in any order within the group). Returns ``(means,
    low, high)``, one entry per group. Each group is resampled by the cheapest
    of the three methods of :func:`bootstrap_means` (``"auto"``), binning
    within ``tolerance`` (default :func:`interval_tolerance`, a tenth of the
    Monte-Carlo error of the interval's ends) of the exact bootstrap: the interval
    is Efron's BCa as ``scipy.stats.bootstrap(method='BCa')`` computes it, with
    the jackknife of the mean in closed form (the acceleration is
    ``sum(d**3) / (6 * sum(d**2) ** 1.5)``, ``d = x - mean``). A group of equal
    values gives ``(v, v)``. Where every resampled mean falls on one side of the
    estimate the bias correction is infinite and the percentile interval is
    returned instead, and an interval always holds its estimate (with extreme
    skew in a handful of values the adjusted levels can pass it). The groups
    draw from random streams derived from ``seed`` for runs of consecutive
    groups, which run on ``threads`` threads (default: the process's CPUs, at
    most ``OMP_NUM_THREADS``), so the result depends only on ``seed`` and the groups'
    values (not their order within a group, nor the number of threads).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    values, sizes = _checked(values, sizes)
    if tolerance is None:
        tolerance = interval_tolerance(n_resamples, confidence)
    chunks = _chunks(sizes, n_resamples)
    # one random stream per chunk, drawn in order: the same whatever the threads
    seeds = rng.integers(0, 2**63, size=len(chunks), dtype=np.int64).tolist()
    offsets = np.append(0, np.cumsum(sizes))
    means, low, high = np.empty(sizes.size), np.empty(sizes.size), np.empty(sizes.size)

    def one(k: int) -> None:
        lo, hi = chunks[k]
        groups = _groups(values[offsets[lo] : offsets[hi]], sizes[lo:hi])
        resampled, _ = _resampled_means(
            groups, n_resamples, np.random.default_rng(seeds[k]), "auto", tolerance
        )
        means[lo:hi] = groups.centre
        low[lo:hi], high[lo:hi] = _bca_rows(groups, resampled, confidence)

    threads = cpu_threads(len(chunks)) if threads is None else max(1, threads)
    if threads == 1:
        for k in range(len(chunks)):
            one(k)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(len(chunks))))
    return means, low, high


def bca_mean_interval(
    values: np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int | np.random.Generator | None = 0,
) -> tuple[float, float]:
    """Bias-corrected and accelerated (BCa) bootstrap interval for the mean of one group.

    :func:`bca_mean_intervals` for a single group. Constant data (including a
    single value) gives ``(v, v)``; no values gives ``(nan, nan)``.
    """
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        return float("nan"), float("nan")
    _, low, high = bca_mean_intervals(x, np.array([x.size]), confidence, n_resamples, seed)
    return float(low[0]), float(high[0])


@dataclass(frozen=True)
class BcaTest:
    """A mean, its BCa interval, and the two-sided bootstrap p-value of a null value."""

    mean: float
    low: float
    high: float
    p_value: float


def bca_mean_test(
    values: np.ndarray,
    null: float = 0.0,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int | np.random.Generator | None = 0,
) -> BcaTest:
    """BCa interval of a mean and the bootstrap p-value of ``null``, from one set of
    resamples.

    The p-value is the centred bootstrap test's (Efron & Tibshirani 1993, sec.
    16.4; the paired bootstrap of Berg-Kirkpatrick et al. 2012): the resampled
    means, shifted to the null, reach at least as far from it as the estimate
    does, ``(1 + #{|m* - m| >= |m - null|}) / (R + 1)``. It never falls below
    ``1 / (R + 1)``; there, every resample lay nearer than the estimate and more
    resamples would resolve a smaller p. Near a significance boundary it can
    disagree with the BCa interval (two procedures), never by much. The paired
    bootstrap of a difference is this test on the per-example differences.
    Equal values (no variation) give NaN for the interval and the p-value:
    nothing is known of their spread.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    x = np.asarray(values, dtype=float).ravel()
    nan = float("nan")
    if x.size == 0:
        return BcaTest(nan, nan, nan, nan)
    groups = _groups(x, np.array([x.size], dtype=np.int64))
    estimate = float(groups.centre[0])
    if groups.distinct[0] <= 1:
        return BcaTest(estimate, nan, nan, nan)
    tolerance = interval_tolerance(n_resamples, confidence)
    means, _ = _resampled_means(groups, n_resamples, rng, "auto", tolerance)
    low, high = _bca_rows(groups, means, confidence)
    # a hair below the distance: a resample exactly as far counts, whatever the rounding
    reach = abs(estimate - null) * (1 - 1e-12)
    far = int(np.sum(np.abs(means[0] - estimate) >= reach))
    p = (1 + far) / (means.shape[1] + 1)
    return BcaTest(estimate, float(low[0]), float(high[0]), float(min(1.0, p)))
