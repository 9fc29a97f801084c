"""Paired comparisons (``mirage compare``), scores averaged over epochs, and intervals at the
boundary, each checked against another library, a brute-force computation or a hand-worked
case."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import miragelab as ml
from miragelab.paired import (
    cluster_robust_se,
    mcnemar_exact_p,
    newcombe_paired_interval,
    paired_difference,
    paired_se,
)

sm = pytest.importorskip("statsmodels.api")
contingency = pytest.importorskip("statsmodels.stats.contingency_tables")


def _pairs(table: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-example 0/1 outcomes of models a and b from a 2x2 table [[11, 10], [01, 00]]."""
    (both, only_a), (only_b, neither) = table
    a = np.repeat([1, 1, 0, 0], [both, only_a, only_b, neither]).astype(float)
    b = np.repeat([1, 0, 1, 0], [both, only_a, only_b, neither]).astype(float)
    return a, b


# --------------------------------------------------------------------------- McNemar


@pytest.mark.parametrize(
    "table", [[[30, 12], [4, 14]], [[5, 0], [7, 1]], [[10, 3], [3, 10]], [[9, 0], [0, 4]]]
)
def test_mcnemar_equals_statsmodels_exact(table):
    a, b = _pairs(table)
    expected = contingency.mcnemar(np.array(table), exact=True).pvalue
    result = paired_difference(a, b, binary=True)
    assert result.method == "mcnemar_exact"
    assert result.p_value == pytest.approx(expected, rel=1e-12)
    assert result.diff == pytest.approx((table[1][0] - table[0][1]) / a.size)


def test_mcnemar_hand_worked():
    # 12 pairs only a gets right, 4 only b: 2 * P(Bin(16, 1/2) <= 4)
    hand = 2 * (1 + 16 + 120 + 560 + 1820) / 2**16
    assert mcnemar_exact_p(12, 4) == pytest.approx(hand, rel=1e-12)
    assert mcnemar_exact_p(0, 0) == 1.0


def test_newcombe_interval_is_the_published_one():
    # Newcombe (1998), paired example with cells 36, 12, 2, 0: method 10 gives
    # 0.0569 to 0.3404 for the difference 0.2
    low, high = newcombe_paired_interval(36, 2, 12, 0)
    assert (round(low, 4), round(high, 4)) == (0.0569, 0.3404)
    # the same table seen from the other model mirrors it
    low2, high2 = newcombe_paired_interval(36, 12, 2, 0)
    assert (low2, high2) == pytest.approx((-high, -low))


def test_newcombe_from_wilson_by_hand():
    """Method 10 assembled from statsmodels' Wilson intervals and the phi coefficient."""
    from statsmodels.stats.proportion import proportion_confint

    both, only_a, only_b, neither = 20, 3, 9, 8
    n = both + only_a + only_b + neither
    la, ua = proportion_confint(both + only_a, n, method="wilson")
    lb, ub = proportion_confint(both + only_b, n, method="wilson")
    pa, pb = (both + only_a) / n, (both + only_b) / n
    phi = (both * neither - only_a * only_b) / np.sqrt(
        (both + only_b) * (only_a + neither) * (both + only_a) * (only_b + neither)
    )
    low = pb - pa - np.sqrt((pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2)
    high = pb - pa + np.sqrt((ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la) + (pa - la) ** 2)
    assert newcombe_paired_interval(both, only_a, only_b, neither) == pytest.approx((low, high))


def test_no_zero_width_interval_at_the_boundary():
    """Both models right on every example: no difference seen, but not a certain one."""
    a = b = np.ones(12)
    result = paired_difference(a, b, binary=True)
    assert result.diff == 0 and result.p_value == 1.0
    assert result.ci_low < -0.1 and result.ci_high > 0.1
    se = paired_se(np.column_stack([np.zeros(5), np.ones(5)]), binary=True)
    assert se[0, 1] > 0  # five flips out of five: not a zero standard error


# --------------------------------------------------------------------------- paired bootstrap


def _exact_bca(d: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """The BCa interval and the centred bootstrap p-value of 0 from the exact bootstrap
    distribution, every one of the n**n resamples of the pairs enumerated (brute force)."""
    n = d.size
    index = np.array(list(itertools.product(range(n), repeat=n)))
    means = np.sort(d[index].mean(axis=1))
    estimate = d.mean()
    z0 = sps.norm.ppf(np.mean(means < estimate))
    jack = np.array([np.delete(d, i).mean() for i in range(n)])
    dev = jack.mean() - jack
    accel = np.sum(dev**3) / (6 * np.sum(dev**2) ** 1.5)
    ends = []
    for z in sps.norm.ppf([(1 - confidence) / 2, (1 + confidence) / 2]):
        ends.append(
            np.percentile(means, 100 * sps.norm.cdf(z0 + (z0 + z) / (1 - accel * (z0 + z))))
        )
    p = np.mean(np.abs(means - estimate) >= abs(estimate))
    return ends[0], ends[1], p


def test_paired_bootstrap_matches_the_brute_force_bootstrap():
    rng = np.random.default_rng(5)  # values in general position: no ties among resamples
    a = rng.uniform(0.1, 0.8, 7)
    b = a + rng.normal(0.1, 0.15, 7)
    d = b - a
    low, high, p = _exact_bca(d)
    result = paired_difference(a, b, binary=False, n_resamples=40_000, seed=1)
    sd = d.std() / np.sqrt(d.size)  # the bootstrap sd of the mean
    assert result.method == "paired_bootstrap"
    assert result.diff == pytest.approx(d.mean())
    # within a tenth of a bootstrap sd: a few times the Monte-Carlo error of 40,000 resamples
    assert abs(result.ci_low - low) < 0.1 * sd and abs(result.ci_high - high) < 0.1 * sd
    assert result.p_value == pytest.approx(p, abs=0.006)


def test_bootstrap_p_value_by_hand():
    """One example of 20 differs (by 1): the centred bootstrap's p-value is the chance that
    a resample's count of that example is not exactly 1, 1 - 20 (1/20) (19/20)**19; as
    0/1 pairs McNemar says the same: one discordant pair tells nothing."""
    b = np.zeros(20)
    b[0] = 1
    result = paired_difference(np.zeros(20), b, binary=False, n_resamples=20_000, seed=3)
    assert result.p_value == pytest.approx(1 - (19 / 20) ** 19, abs=0.01)
    assert result.ci_low <= 0 <= result.ci_high
    assert paired_difference(np.zeros(20), b, binary=True).p_value == 1.0


# --------------------------------------------------------------------------- clusters


def test_cluster_robust_se_hand_worked():
    d = np.array([1, 0, 1, 0, 0, 1, 1, 1, 0], dtype=float)
    clusters = np.array(list("AAABBCCCC"))
    # residual sums per cluster: 1/3, -10/9, 7/9; V = 3/2 * 158/81 / 81
    se, g = cluster_robust_se(d, clusters)
    assert g == 3 and se == pytest.approx(np.sqrt(237) / 81, rel=1e-12)


def test_cluster_robust_t_equals_statsmodels():
    rng = np.random.default_rng(7)
    clusters = np.repeat(np.arange(12), rng.integers(3, 9, 12))
    shared = rng.normal(0, 0.3, 12)[clusters]
    a = rng.normal(0.5, 0.2, clusters.size) + shared
    b = a + 0.05 + rng.normal(0, 0.1, clusters.size) + 0.5 * shared
    d = b - a
    fit = sm.OLS(d, np.ones((d.size, 1))).fit(
        cov_type="cluster", cov_kwds={"groups": clusters}, use_t=True
    )
    result = paired_difference(a, b, binary=False, clusters=clusters)
    assert result.method == "cluster_robust_t" and result.clusters == 12
    assert result.diff == pytest.approx(fit.params[0])
    low, high = fit.conf_int(0.05)[0]
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), rel=1e-9)
    assert result.p_value == pytest.approx(fit.pvalues[0], rel=1e-9)
    # clustering widens the interval of correlated examples
    plain = paired_difference(a, b, binary=False, n_resamples=2000)
    assert result.ci_high - result.ci_low > plain.ci_high - plain.ci_low


def test_paired_se_matrix():
    x = np.random.default_rng(3).normal(size=(40, 4))
    se = paired_se(x, binary=False)
    assert se[1, 3] == pytest.approx(np.std(x[:, 3] - x[:, 1], ddof=1) / np.sqrt(40))
    y = np.array([[1, 1, 0], [0, 1, 1], [0, 0, 1], [1, 1, 1], [0, 1, 1]], dtype=float)
    se = paired_se(y, binary=True)
    # columns 0 -> 2: b (0 then 1) = 3, c (1 then 0) = 1, n = 5: Agresti-Min by hand
    assert se[0, 2] == pytest.approx(np.sqrt(3 + 1 + 1 - (3 - 1) ** 2 / 7) / 7)


# --------------------------------------------------------------------------- the table and CLI


def _ladder(rng: np.random.Generator, clusters: bool = False) -> pd.DataFrame:
    rows = []
    for m, (params, acc) in enumerate([(1e6, 0.2), (1e7, 0.25), (1e8, 0.8)]):
        for i in range(120):
            right = rng.random() < acc
            row = {
                "task": "t",
                "family": "f",
                "model": f"m{m}",
                "params": params,
                "example_id": i,
                "prediction": "yes" if right else "no",
                "target": "yes",
                "target_token_logprobs": [float(-rng.exponential(1.5 - acc))],
            }
            if clusters:
                row["cluster"] = f"passage{i // 10}"
            rows.append(row)
    return pd.DataFrame(rows)


def test_compare_adjacent_rungs_and_a_named_pair():
    samples = _ladder(np.random.default_rng(0))
    table = ml.compare(samples, "exact_match,target_logprob", adjacent=True)
    assert list(table.columns[:12]) == [
        "task", "family", "model_a", "model_b", "metric", "n", "diff", "ci_low", "ci_high",
        "p_value", "method", "clusters",
    ]  # fmt: skip
    em = table[table["metric"] == "exact_match"]
    assert list(zip(em["model_a"], em["model_b"], strict=True)) == [("m0", "m1"), ("m1", "m2")]
    assert set(em["method"]) == {"mcnemar_exact"}
    assert set(table[table["metric"] == "target_logprob"]["method"]) == {"paired_bootstrap"}
    big = em.iloc[1]
    wide = samples.pivot(index="example_id", columns="model", values="prediction") == "yes"
    assert big["diff"] == pytest.approx(wide["m2"].mean() - wide["m1"].mean())
    assert big["p_value"] < 1e-6 and big["ci_low"] > 0
    pair = ml.compare(samples, "exact_match", a="m2", b="m0")
    assert pair["diff"].iloc[0] == pytest.approx(wide["m0"].mean() - wide["m2"].mean())


def test_compare_only_shared_examples_and_clusters():
    samples = _ladder(np.random.default_rng(1), clusters=True)
    samples = samples[~((samples["model"] == "m1") & (samples["example_id"] < 20))]
    table = ml.compare(samples, "exact_match", adjacent=True)
    assert list(table["n"]) == [100, 100]
    assert set(table["method"]) == {"cluster_robust_t"} and list(table["clusters"]) == [10, 10]


def test_compare_epochs_are_averaged_per_example():
    rows = []
    for epoch in (1, 2):
        for i in range(30):
            for model, params in (("s", 1e6), ("l", 1e7)):
                right = (i + epoch) % 3 == 0 if model == "s" else i % 2 == 0 or epoch == 1
                rows.append({"task": "t", "family": "f", "model": model, "params": params,
                             "example_id": i, "epoch": epoch, "target": "a",
                             "prediction": "a" if right else "b"})  # fmt: skip
    samples = pd.DataFrame(rows)
    row = ml.compare(samples, "exact_match", a="s", b="l").iloc[0]
    assert row["n"] == 30 and row["method"] == "paired_bootstrap"  # means of epochs: not 0/1
    right = samples["prediction"] == samples["target"]
    per = samples.assign(right=right).groupby(["model", "example_id"])["right"].mean()
    assert row["diff"] == pytest.approx(per["l"].mean() - per["s"].mean())


def test_compare_cli_and_its_refusals(tmp_path, capsys):
    from conftest import mirage_code

    path = tmp_path / "samples.jsonl"
    _ladder(np.random.default_rng(2)).to_json(path, orient="records", lines=True)
    out = tmp_path / "compare.csv"
    assert mirage_code("compare", path, "--metric", "exact_match", "--adjacent", "--out", out) == 0
    written = pd.read_csv(out)
    assert len(written) == 2 and written["p_value"].between(0, 1).all()
    for args, expected in (
        (["--a", "m0", "--b", "nope"], "no samples of model 'nope'"),
        (["--a", "m0", "--adjacent"], "give --a and --b, or --adjacent"),
        (["--a", "m0", "--b", "m1", "--metric", "no_such_metric"], "no_such_metric"),
    ):
        capsys.readouterr()
        bad = tmp_path / "bad.csv"
        metric = [] if "--metric" in args else ["--metric", "exact_match"]
        code = mirage_code("compare", path, *metric, *args, "--out", bad)
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and expected in err
        assert not bad.exists()


# --------------------------------------------------------------------------- scores


def test_scores_average_epochs_per_example():
    rows = []
    outcomes = {1: [1, 0, 1, 1], 2: [0, 0, 1, 1], 3: [1, 0, 1, 0]}  # epoch -> per example
    for epoch, right in outcomes.items():
        for i, ok in enumerate(right):
            rows.append({"task": "t", "family": "f", "model": "m-1b", "params": 1e9,
                         "example_id": i, "epoch": epoch, "target": "a",
                         "prediction": "a" if ok else "b"})  # fmt: skip
    scores = ml.score(pd.DataFrame(rows), "exact_match")
    row = scores.iloc[0]
    # per-example means 2/3, 0, 1, 2/3; their mean 7/12; four examples, not twelve rows
    assert row["value"] == pytest.approx(7 / 12) and row["n"] == 4
    assert row["ci_method"] == "bca" and row["ci_low"] < 7 / 12 < row["ci_high"]


def test_a_published_zero_stderr_at_the_boundary_becomes_a_wilson_interval(tmp_path):
    results = {
        "results": {"toy": {"acc,none": 1.0, "acc_stderr,none": 0.0,
                            "acc_norm,none": 0.5, "acc_norm_stderr,none": 0.07,
                            "mcc,none": 0.0, "mcc_stderr,none": 0.0}},
        "n-samples": {"toy": {"original": 50, "effective": 50}},
        "config": {"model_args": "pretrained=org/toy-160m", "model_num_parameters": 160_000_000},
    }  # fmt: skip
    path = tmp_path / "results_2024-01-01T00-00-00.json"
    path.write_text(json.dumps(results))
    scores = ml.read_scores(path).set_index("metric")
    acc = scores.loc["acc"]
    z2 = sps.norm.ppf(0.975) ** 2
    assert acc["ci_low"] == pytest.approx(50 / (50 + z2)) and acc["ci_high"] == 1.0
    assert acc["ci_method"] == "wilson (published stderr 0 at the boundary)"
    assert pd.isna(acc["stderr"])
    norm = scores.loc["acc_norm"]
    assert norm["stderr"] == 0.07 and norm["ci_method"] == "normal (published stderr)"
    # MCC is no share of examples: its zero stderr is dropped, and no binomial interval
    mcc = scores.loc["mcc"]
    assert pd.isna(mcc["stderr"]) and pd.isna(mcc["ci_low"]) and pd.isna(mcc["ci_method"])


# --------------------------------------------------------------------------- the verdict's test


def _nested_ladder(counts: list[int], n: int = 40, shift: int = 0) -> pd.DataFrame:
    """Each rung gets the first ``k`` examples right (the easy ones stay right as models
    grow); ``shift`` renumbers the last rung's examples (then the rungs share none)."""
    rows = []
    for m, (params, k) in enumerate(zip([1e6, 1e7, 1e8, 1e9, 1e10], counts, strict=True)):
        for i in range(n):
            rows.append({"task": "t", "family": "f", "model": f"m{m}", "params": params,
                         "example_id": i + (shift if m == len(counts) - 1 else 0),
                         "prediction": "a" if i < k else "b", "target": "a"})  # fmt: skip
    return pd.DataFrame(rows)


def test_verdict_tests_the_jump_as_paired_where_every_rung_saw_the_same_examples():
    samples = _nested_ladder([0, 1, 1, 6, 6])
    scores = ml.score(samples, "exact_match")
    # the jump 1/40 -> 6/40: five pairs flip up, none down. Paired (Agresti-Min) error
    # sqrt(5 + 1 - 25/42)/42 = 0.0554, so 0.125 is beyond 2 errors; as two independent
    # Wilson-sized errors (0.032 and 0.056) it is not
    assert 0.125 > 2 * np.sqrt(5 + 1 - 25 / 42) / 42
    unpaired = ml.verdicts(scores).iloc[0]
    paired = ml.verdicts(scores, samples=samples).iloc[0]
    assert unpaired["reason"] == "harsh metric flat within its noise"
    assert (
        paired["verdict"] == "inconclusive" and "harsh jump from 1e+08 to 1e+09" in paired["reason"]
    )
    # rungs that did not see the same examples are not paired: the independent test stays
    shifted = _nested_ladder([0, 1, 1, 6, 6], shift=1000)
    again = ml.verdicts(ml.score(shifted, "exact_match"), samples=shifted).iloc[0]
    assert again["reason"] == "harsh metric flat within its noise"


def test_a_p_value_that_underflows_is_a_bound_not_zero():
    # 3,000 discordant pairs all one way: 2 * 2**-3000 underflows a double
    a, b = _pairs([[10, 0], [3000, 10]])
    p = paired_difference(a, b, binary=True).p_value
    assert 0 < p <= np.finfo(float).tiny


def test_epochs_keep_wilson_where_every_example_agrees_over_its_epochs():
    rows = []
    for epoch in (1, 2, 3):
        for i in range(40):
            rows.append({"task": "ep", "family": "f", "model": "m-1b", "params": 1e9,
                         "example_id": i, "epoch": epoch, "target": "a",
                         "prediction": "a"})  # fmt: skip
    for i in range(30):
        rows.append({"task": "plain", "family": "f", "model": "m-1b", "params": 1e9,
                     "example_id": i, "target": "a", "prediction": "a"})  # fmt: skip
    scores = ml.score(pd.DataFrame(rows), "exact_match").set_index("task")
    z2 = sps.norm.ppf(0.975) ** 2
    for task, n in (("ep", 40), ("plain", 30)):
        row = scores.loc[task]
        assert row["value"] == 1.0 and row["n"] == n and row["ci_method"] == "wilson"
        assert row["ci_low"] == pytest.approx(n / (n + z2)) and row["ci_high"] == 1.0


def test_adjacent_pairs_follow_the_curves_sizes_and_steps():
    rows = []
    for model, params, steps in (("s", 1e6, [100, 200]), ("l", 1e7, [100, 200, 300])):
        for step in steps:
            for i in range(10):
                rows.append({"task": "t", "family": "f", "model": model, "params": params,
                             "step": step, "example_id": i, "target": "a",
                             "prediction": "a" if i < step // 50 else "b"})  # fmt: skip
    table = ml.compare(pd.DataFrame(rows), "exact_match", adjacent=True)
    pairs = set(
        zip(table["model_a"], table["step_a"], table["model_b"], table["step_b"], strict=True)
    )
    assert pairs == {("s", 100, "s", 200), ("l", 100, "l", 200), ("l", 200, "l", 300),
                     ("s", 200, "l", 300)}  # fmt: skip


def test_cluster_rounding_is_no_spread():
    # the per-cluster residual sums are 0 but for rounding: the pairs' own test, not p ~ 1e-17
    result = paired_difference(
        np.zeros(4), np.array([0.1, 0.2, 0.1, 0.2]), binary=False, clusters=np.array(list("xxyy"))
    )
    assert result.method == "paired_bootstrap" and result.clusters == 2
    assert result.ci_low < result.ci_high  # an interval of the pairs, not of width 0


def test_compare_refusals_name_the_file_line_and_field(tmp_path, capsys):
    from conftest import mirage_code

    samples = _ladder(np.random.default_rng(4), clusters=True)
    moved = samples.index[(samples["model"] == "m1") & (samples["example_id"] == 5)][0]
    samples.loc[moved, "cluster"] = "elsewhere"
    path = tmp_path / "samples.jsonl"
    samples.to_json(path, orient="records", lines=True)
    cases = (
        (["--adjacent"], f"{path}, line {moved + 1}, field 'cluster'"),
        (["--a", "m0", "--b", "m0"], "compared with itself"),
    )
    for args, expected in cases:
        capsys.readouterr()
        out = tmp_path / "out.csv"
        code = mirage_code("compare", path, "--metric", "exact_match", *args, "--out", out)
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and expected in err, err
        assert not out.exists()
    lone = samples[samples["model"] == "m0"]
    with pytest.raises(ml.InputError, match="no adjacent models share"):
        ml.compare(lone, "exact_match", adjacent=True)


def test_verdict_keeps_independent_errors_when_samples_do_not_give_the_scores():
    samples = _nested_ladder([0, 1, 1, 6, 6])
    scores = ml.score(samples, "exact_match")
    other = samples.assign(
        prediction=np.where(samples["example_id"] == 39, "a", samples["prediction"])
    )
    row = ml.verdicts(scores, samples=other).iloc[0]
    assert row["reason"] == "harsh metric flat within its noise"
