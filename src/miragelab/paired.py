"""Paired comparisons: does a metric differ between two models on the examples both saw?

Two models scored on the same examples are *paired* data: the example's
difficulty is shared, so the difference of their means is far less noisy than
two separate intervals suggest, and the test must use the pairing (an unpaired
z-test on paired data is wrong both ways). For each pair of models and each
metric, on the examples both have a value for (each example first averaged
over its epochs, as the scorer does), with ``d_i = b_i - a_i``:

``mcnemar_exact``
    a 0/1 metric: McNemar's exact test (the discordant pairs are binomial with
    p = 1/2 under the null; two-sided, as ``statsmodels``'
    ``mcnemar(exact=True)``), and Newcombe's (1998) method 10 interval for the
    difference of paired proportions, built from the two Wilson intervals and
    the phi correlation of the pairs -- never of zero width, and inside [-1, 1].
    The exact test is conservative: with few discordant pairs the interval can
    exclude 0 while p stays above 0.05 (5 discordant pairs all one way:
    p = 0.0625), never the reverse by much.
``paired_bootstrap``
    any other metric: the BCa bootstrap of the mean of ``d`` (resampling
    examples, so the pairs stay together) and the p-value that inverts it
    (:func:`miragelab.bootstrap.bca_mean_test`: the centred bootstrap's
    p-value). Differences that are all equal have no spread: no interval and
    no p-value (NaN), except all zero (p = 1, the models agree everywhere).
``cluster_robust_t``
    examples in groups (a ``cluster`` column: passage, subject, template):
    examples of one cluster are not independent, so the standard error of the
    mean of ``d`` is the cluster-robust (CR1) one, ``sqrt(G / (G - 1) *
    sum_g (sum_{i in g} (d_i - mean d))**2) / n`` over ``G`` clusters, as
    ``statsmodels`` ``OLS(...).fit(cov_type='cluster')`` gives for a mean,
    with a Student-t interval and p-value on ``G - 1`` degrees of freedom
    (Miller 2024, *Adding error bars to evals*). Fewer than two clusters give
    no interval; a clustered error of exactly 0 (every cluster's differences
    sum to their share of the mean) falls back to the unclustered method.

A p-value too small for a double (McNemar's on thousands of discordant pairs)
is written as the smallest normal double, ``2.2e-308``: a bound, never 0. The
bootstrap's p-value cannot go below about ``1 / n_resamples``; where it sits
there, every resample lay on one side of 0 and more resamples would resolve it.

``diff`` is ``mean(b) - mean(a)`` in the metric's own units (so positive means
``b`` scores higher, whichever direction is better). :func:`paired_se` gives
the standard errors of all differences between the rungs of one curve at once,
for the verdict's jump test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from miragelab.bootstrap import bca_mean_test, key_seed
from miragelab.errors import InputError
from miragelab.metrics import Metric, MetricOptions, compute_metrics
from miragelab.schema import Where
from miragelab.scoring import MODEL_KEY, resolve_metrics, where_of
from miragelab.stats import wilson_interval

__all__ = [
    "COMPARE_COLUMNS",
    "PairedDifference",
    "cluster_robust_se",
    "compare_samples",
    "curve_paired_se",
    "example_values",
    "mcnemar_exact_p",
    "newcombe_paired_interval",
    "paired_difference",
    "paired_se",
]

COMPARE_COLUMNS = (
    "task",
    "family",
    "model_a",
    "model_b",
    "metric",
    "n",
    "diff",
    "ci_low",
    "ci_high",
    "p_value",
    "method",
    "clusters",
    "step_a",
    "step_b",
)


# --------------------------------------------------------------------------- the tests


#: the smallest p-value written: a bound where the exact one underflows a double
P_FLOOR = float(np.finfo(float).tiny)


def mcnemar_exact_p(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs (1 when there are none)."""
    discordant = int(only_a) + int(only_b)
    if discordant == 0:
        return 1.0
    p = float(sps.binomtest(min(int(only_a), int(only_b)), discordant, 0.5).pvalue)
    return max(p, P_FLOOR)


def newcombe_paired_interval(
    both: int, only_a: int, only_b: int, neither: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Newcombe's method 10 interval for ``p_b - p_a`` of paired 0/1 outcomes.

    ``both``/``neither``: pairs where both or neither model succeeds;
    ``only_a``/``only_b``: the discordant pairs. With Wilson intervals
    ``(l_b, u_b)`` of ``p_b`` and ``(l_a, u_a)`` of ``p_a`` and the phi
    coefficient of the 2x2 table (0 where a margin is empty),
    ``low = diff - sqrt((p_b - l_b)**2 - 2 phi (p_b - l_b)(u_a - p_a) + (u_a - p_a)**2)``
    and symmetrically for ``high`` (Newcombe, *Stat. Med.* 17:2635, 1998).
    """
    n = both + only_a + only_b + neither
    p_b, p_a = (both + only_b) / n, (both + only_a) / n
    (l_b, l_a), (u_b, u_a) = wilson_interval(
        np.array([both + only_b, both + only_a]), n, confidence
    )
    margins = (both + only_b) * (only_a + neither) * (both + only_a) * (only_b + neither)
    phi = (both * neither - only_a * only_b) / np.sqrt(margins) if margins > 0 else 0.0
    diff = p_b - p_a
    down = (p_b - l_b) ** 2 - 2 * phi * (p_b - l_b) * (u_a - p_a) + (u_a - p_a) ** 2
    up = (u_b - p_b) ** 2 - 2 * phi * (u_b - p_b) * (p_a - l_a) + (p_a - l_a) ** 2
    return float(max(diff - np.sqrt(max(down, 0.0)), -1.0)), float(
        min(diff + np.sqrt(max(up, 0.0)), 1.0)
    )


def cluster_robust_se(d: np.ndarray, clusters: np.ndarray) -> tuple[float, int]:
    """CR1 standard error of ``mean(d)`` with examples grouped by ``clusters``, and ``G``."""
    d = np.asarray(d, dtype=float)
    codes, _ = pd.factorize(pd.Series(clusters), use_na_sentinel=False)
    g = int(codes.max()) + 1 if codes.size else 0
    if g < 2:
        return float("nan"), g
    sums = np.bincount(codes, weights=d - d.mean(), minlength=g)
    return float(np.sqrt(g / (g - 1) * np.sum(sums**2)) / d.size), g


@dataclass(frozen=True)
class PairedDifference:
    """``mean(b) - mean(a)`` on paired examples, its interval, p-value and method."""

    n: int
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    method: str
    clusters: int | None = None


def _unclustered(
    a: np.ndarray, b: np.ndarray, binary: bool, confidence: float, n_resamples: int, seed: int
) -> PairedDifference:
    n = a.size
    if binary:
        both = int(np.sum((a == 1) & (b == 1)))
        only_a = int(np.sum((a == 1) & (b == 0)))
        only_b = int(np.sum((a == 0) & (b == 1)))
        low, high = newcombe_paired_interval(both, only_a, only_b, n - both - only_a - only_b,
                                             confidence)  # fmt: skip
        p = mcnemar_exact_p(only_a, only_b)
        return PairedDifference(n, (only_b - only_a) / n, low, high, p, "mcnemar_exact")
    d = b - a
    test = bca_mean_test(d, 0.0, confidence, n_resamples, seed)
    p = 1.0 if np.all(d == 0) else test.p_value  # identical on every example: no difference
    return PairedDifference(n, float(d.mean()), test.low, test.high, p, "paired_bootstrap")


def paired_difference(
    a: np.ndarray,
    b: np.ndarray,
    *,
    binary: bool,
    clusters: np.ndarray | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> PairedDifference:
    """The paired difference ``mean(b) - mean(a)`` of one metric (see the module docstring).

    ``a`` and ``b`` are aligned per example; ``binary`` says both hold only 0
    and 1 (McNemar); ``clusters`` (aligned too) switches to the cluster-robust t.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    plain = _unclustered(a, b, binary, confidence, n_resamples, seed)
    if clusters is None:
        return plain
    d = b - a
    se, g = cluster_robust_se(d, clusters)
    if g >= 2 and se <= 1e-12 * max(1.0, float(np.abs(d).max())):
        # no spread left between clusters (but rounding): the pairs themselves
        return PairedDifference(**{**plain.__dict__, "clusters": g})
    diff, nan = float(d.mean()), float("nan")
    if g < 2:
        return PairedDifference(a.size, diff, nan, nan, nan, "cluster_robust_t", g)
    half = float(sps.t.ppf(0.5 + confidence / 2, g - 1)) * se
    p = max(float(2 * sps.t.sf(abs(diff) / se, g - 1)), P_FLOOR)
    return PairedDifference(a.size, diff, diff - half, diff + half, p, "cluster_robust_t", g)


def paired_se(values: np.ndarray, binary: bool) -> np.ndarray:
    """Standard errors of the differences of means between every two columns of ``values``
    (examples x rungs, the same examples at every rung): a ``k x k`` matrix.

    A continuous metric: ``sd(d) / sqrt(n)``. A 0/1 metric: Agresti & Min's
    (2005) paired error with half a pair added to each cell,
    ``sqrt(b + c + 1 - (c - b)**2 / (n + 2)) / (n + 2)``, which is never 0 for a
    finite sample (no discordant pair is not proof of no difference).
    """
    x = np.asarray(values, dtype=float)
    n, k = x.shape
    out = np.zeros((k, k))
    for i, j in zip(*np.triu_indices(k, 1), strict=True):  # one column pair at a time
        d = x[:, j] - x[:, i]
        if binary:
            up, down = float(np.sum(d > 0)), float(np.sum(d < 0))
            se = np.sqrt(up + down + 1 - (up - down) ** 2 / (n + 2)) / (n + 2)
        else:
            se = d.std(ddof=1) / np.sqrt(n) if n >= 2 else np.nan
        out[i, j] = out[j, i] = se
    return out


# --------------------------------------------------------------------------- tables


def example_values(
    samples: pd.DataFrame, metric: Metric, options: MetricOptions | None = None
) -> pd.DataFrame:
    """One value of ``metric`` per (task, family, model, step, example_id): each example's
    mean over its epochs, on the rows that have the metric's columns; ``params``,
    ``cluster`` (when the samples have one) and ``row`` (the example's first sample in
    ``samples``, to name it in errors) kept beside it."""
    values = compute_metrics(samples, [metric], options)[metric.name].to_numpy()
    keep = ~np.isnan(values)
    extra = ["params"] + (["cluster"] if "cluster" in samples.columns else [])
    frame = samples.loc[keep, [*MODEL_KEY, "example_id", *extra]].copy()
    frame["value"] = values[keep]
    frame["row"] = np.flatnonzero(keep)  # the first sample of each example, for errors
    frame["step"] = frame["step"].astype("Int64")
    agg = {"value": "mean", "params": "first", "row": "first"}
    agg |= {"cluster": "first"} if len(extra) > 1 else {}
    return (
        frame.groupby([*MODEL_KEY, "example_id"], dropna=False, sort=False).agg(agg).reset_index()
    )


def _adjacent_pairs(per_task: pd.DataFrame) -> list[tuple[tuple, tuple]]:
    """The adjacent pairs of a task's ladders, as the curves run: in each family, the
    models by size (each at its last step), and the steps of each model that has several.
    A rung is ``(family, model, step)``."""
    rungs = per_task.groupby(["family", "model", "step"], dropna=False, sort=False)["params"]
    table = rungs.first().reset_index()
    pairs = []
    for family, models in table.groupby("family", sort=True):
        last = []
        for model, steps in models.groupby("model", sort=False):
            ordered = steps.sort_values("step", kind="stable", na_position="last")
            chain = [(family, model, step) for step in ordered["step"]]
            pairs.extend(zip(chain, chain[1:], strict=False))  # over training steps
            last.append((float(ordered["params"].iloc[-1]), str(model), chain[-1]))
        by_size = [rung for _, _, rung in sorted(last, key=lambda t: (t[0], t[1]))]
        pairs.extend(zip(by_size, by_size[1:], strict=False))  # over size
    return pairs


def _pick(per_task: pd.DataFrame, model: str, option: str) -> tuple[str, str, object] | None:
    chosen = per_task[per_task["model"] == model]
    if chosen.empty:
        return None
    steps = chosen["step"].drop_duplicates()
    if len(steps) > 1:
        raise InputError(
            f"model {model!r} has {len(steps)} steps in task {chosen['task'].iloc[0]!r}; "
            "compare the steps of one model as adjacent pairs (--adjacent)",
            field=option,
        )
    return chosen["family"].iloc[0], model, steps.iloc[0]


def _shared_clusters(
    ca: pd.Series,
    cb: pd.Series,
    rows: tuple[pd.Series, pd.Series],
    a: tuple,
    b: tuple,
    where: Where,
) -> np.ndarray:
    """The cluster of each shared example: the same for both models, none missing.
    ``rows``: each shared example's first sample, of model a and of model b."""
    for side, model, at_rows in ((ca, a[1], rows[0]), (cb, b[1], rows[1])):
        if side.isna().any():
            at = int(np.flatnonzero(side.isna().to_numpy())[0])
            raise where.error(
                f"example {side.index[at]!r} of model {model!r} has no cluster while other "
                "examples have one; give every example its cluster",
                int(at_rows.iloc[at]),
                "cluster",
            )
    differ = np.flatnonzero(ca.to_numpy(dtype=object) != cb.to_numpy(dtype=object))
    if differ.size:
        at = int(differ[0])
        raise where.error(
            f"example {ca.index[at]!r} is in cluster {ca.iloc[at]!r} for {a[1]!r} but in "
            f"{cb.iloc[at]!r} for {b[1]!r}",
            int(rows[1].iloc[at]),
            "cluster",
        )
    return ca.to_numpy(dtype=object)


def _one_pair(
    per_task: pd.DataFrame,
    a: tuple,
    b: tuple,
    metric: Metric,
    binary: bool,
    opts: dict,
    where: Where,
) -> dict | None:
    def rows(rung: tuple) -> pd.DataFrame:
        family, model, step = rung
        same_step = per_task["step"].isna() if pd.isna(step) else per_task["step"] == step
        pick = per_task[(per_task["family"] == family) & (per_task["model"] == model) & same_step]
        return pick.set_index("example_id")

    left, right = rows(a), rows(b)
    shared = left.index.intersection(right.index, sort=False)
    if shared.empty:
        return None
    va = left.loc[shared, "value"].to_numpy(dtype=float)
    vb = right.loc[shared, "value"].to_numpy(dtype=float)
    clusters = None
    if "cluster" in per_task.columns:
        ca, cb = left.loc[shared, "cluster"], right.loc[shared, "cluster"]
        if ca.notna().any() or cb.notna().any():
            rows = (left.loc[shared, "row"], right.loc[shared, "row"])
            clusters = _shared_clusters(ca, cb, rows, a, b, where)
    both_binary = binary and np.isin(va, (0.0, 1.0)).all() and np.isin(vb, (0.0, 1.0)).all()
    key = (per_task["task"].iloc[0], a, b, metric.name)
    result = paired_difference(
        va, vb, binary=bool(both_binary), clusters=clusters,
        confidence=opts["confidence"], n_resamples=opts["n_resamples"],
        seed=key_seed(opts["seed"], key),
    )  # fmt: skip
    family = a[0] if a[0] == b[0] else f"{a[0]} vs {b[0]}"
    return {
        "task": per_task["task"].iloc[0],
        "family": family,
        "model_a": a[1],
        "model_b": b[1],
        "metric": metric.name,
        "n": result.n,
        "diff": result.diff,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "p_value": result.p_value,
        "method": result.method,
        "clusters": result.clusters,
        "step_a": a[2],
        "step_b": b[2],
    }


def compare_samples(
    samples: pd.DataFrame,
    metrics: str | Metric | Sequence[str | Metric],
    *,
    a: str | None = None,
    b: str | None = None,
    adjacent: bool = False,
    options: MetricOptions | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Paired differences of each metric between two models, or every adjacent pair of
    each family's ladder, task by task: consecutive sizes (each model at its last
    step), and consecutive steps of each model that has several.

    One row per (task, pair, metric) with the columns of :data:`COMPARE_COLUMNS`;
    ``attrs["notes"]`` lists the pairs that share no example. A pair is
    compared on the examples both have a value for.
    """
    if adjacent == (a is not None or b is not None):
        raise InputError("give either both models to compare or adjacent=True", field="a")
    if not adjacent and (a is None or b is None):
        raise InputError("give both models (a and b)", field="b" if b is None else "a")
    if not adjacent and a == b:
        raise InputError(f"model {a!r} compared with itself: name two models", field="b")
    opts = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed}
    where = where_of(samples)
    records, notes = [], []
    for metric in resolve_metrics(metrics):
        values = example_values(samples, metric, options)
        if values.empty:
            raise InputError(
                f"no sample has the columns of metric {metric.name!r}",
                path=samples.attrs.get("path"),
                field="metric",
            )
        found_a = found_b = False
        for _, per_task in values.groupby("task", sort=True):
            if adjacent:
                pairs = _adjacent_pairs(per_task)
            else:
                ra, rb = _pick(per_task, a, "a"), _pick(per_task, b, "b")  # type: ignore[arg-type]
                found_a, found_b = found_a or ra is not None, found_b or rb is not None
                pairs = [] if ra is None or rb is None else [(ra, rb)]
            for x, y in pairs:
                row = _one_pair(per_task, x, y, metric, metric.binary, opts, where)
                if row is None:
                    notes.append(
                        f"task {per_task['task'].iloc[0]!r}: {x[1]} and {y[1]} share no "
                        f"example with {metric.name!r}; not compared"
                    )
                else:
                    records.append(row)
        if not adjacent and not (found_a and found_b):
            missing, option = (a, "a") if not found_a else (b, "b")
            raise InputError(
                f"no samples of model {missing!r}", path=samples.attrs.get("path"), field=option
            )
    if not records:
        what = f"models {a!r} and {b!r} share" if not adjacent else "no adjacent models share"
        raise InputError(
            f"{what} no example with a value of the metric", path=samples.attrs.get("path"),
            field="b" if not adjacent else "adjacent",
        )  # fmt: skip
    frame = pd.DataFrame(records, columns=list(COMPARE_COLUMNS))
    frame["n"] = frame["n"].astype("Int64")
    frame["clusters"] = frame["clusters"].astype("Int64")
    for column in ("step_a", "step_b"):
        frame[column] = frame[column].astype("Int64")
    frame.attrs["notes"] = notes
    return frame


def curve_paired_se(
    values: pd.DataFrame, task: str, family: str, rungs: pd.DataFrame, axis: str, binary: bool
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(x, pair_se)`` of one curve's points where the same examples were scored at every
    point (:func:`paired_se` over them), else None.

    ``values``: :func:`example_values` of the curve's metric; ``rungs``: the
    curve's rows of the scores table (``model``, ``step`` and the ``axis``
    column, and ``value``), one per point. None too where the examples' means
    are not the scores' values (the samples were scored with other options, or
    are other outputs), and where some difference has no spread to judge it by
    (equal differences of a continuous metric; a single example).
    """
    here = values[(values["task"] == task) & (values["family"] == family)]
    if here.empty:
        return None
    columns, xs = [], []
    for model, step, x in rungs[["model", "step", axis]].itertuples(index=False, name=None):
        same = here["step"].isna() if pd.isna(step) else here["step"] == step
        rows = here[(here["model"] == model) & same]
        if rows.empty:
            return None
        columns.append(rows.set_index("example_id")["value"])
        xs.append(float(x))
    first = columns[0].index
    if any(len(c) != len(first) or not c.index.isin(first).all() for c in columns[1:]):
        return None  # not the same examples at every point: the means are not paired
    matrix = np.column_stack([c.reindex(first).to_numpy(dtype=float) for c in columns])
    if "value" in rungs.columns and not np.allclose(
        matrix.mean(axis=0), rungs["value"].to_numpy(dtype=float), rtol=1e-9, atol=1e-12
    ):
        return None  # the samples do not give the scores (other options, other outputs)
    zero_one = binary and bool(np.isin(matrix, (0.0, 1.0)).all())
    se = paired_se(matrix, zero_one)
    off = ~np.eye(len(columns), dtype=bool)
    if not (np.isfinite(se[off]).all() and (se[off] > 0).all()):
        return None  # no spread to judge a difference by: the independent errors stay
    return np.asarray(xs), se
