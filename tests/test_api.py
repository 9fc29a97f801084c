"""The notebook API (``import miragelab as ml``): its example, its conventions, its errors.

Expected numbers are derived here, independently of the code under test: the
Wilson interval from its formula and from scipy, closed forms of the theory
and of the planner, means counted by hand, values read off the input tables.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import miragelab as ml
from miragelab import InputError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "api.md"
SRC = Path(__file__).resolve().parents[1] / "src" / "miragelab"


@pytest.fixture()
def registry():
    """The metric registry, restored after the test (registering is global)."""
    from miragelab.metrics import REGISTRY

    saved = dict(REGISTRY)
    yield REGISTRY
    REGISTRY.clear()
    REGISTRY.update(saved)


@pytest.fixture(scope="module")
def shipped() -> pd.DataFrame:
    """The shipped published results, read once (about 3 s)."""
    return ml.read_scores("shipped")


@pytest.fixture(scope="module")
def lambada(shipped) -> pd.DataFrame:
    """The shipped LAMBADA scores: 810 rows, every analysis on them takes about a second."""
    return shipped[shipped["task"] == "lambada_openai"]


def _samples(n_models: int = 3, n: int = 40, seed: int = 0) -> pd.DataFrame:
    """A generation task on a small ladder: strings and noisy target-token log-probs."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(n_models):
        for i in range(n):
            target = f"{rng.integers(100, 1000)}"
            right = i < (m + 1) * n // (n_models + 1)
            rows.append(
                {
                    "task": "add",
                    "family": "toy",
                    "model": f"m{m}",
                    "params": 10.0 ** (6 + m),
                    "example_id": f"e{i}",
                    "target": target,
                    "prediction": target if right else target[:-1] + "x",
                    "target_token_logprobs": (-rng.gamma(2.0, 0.5 / (m + 1), 3)).tolist(),
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the docs


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_docs_example_runs(tmp_path, monkeypatch, registry):
    blocks = _python_blocks(DOCS.read_text(encoding="utf-8"))
    assert len(blocks) >= 8
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its temporary folder, here
    namespace: dict = {"__name__": "docs_api"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{DOCS.name}, python block {i + 1}", "exec"), namespace)
    # the example did what it says
    assert {"lambada", "result", "forecast", "mine", "curves"} <= set(namespace)
    assert list(tmp_path.rglob("samples.jsonl"))


def test_the_docstring_examples_run(shipped, monkeypatch, registry):
    import doctest

    from miragelab import api
    from miragelab.sources import published

    monkeypatch.setattr(published, "load_shipped", lambda: shipped.copy(deep=False))
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(api, optionflags=flags, report=True)
    assert result.attempted >= 30 and result.failed == 0


# --------------------------------------------------------------------------- scoring


def _wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """The Wilson score interval, from its formula."""
    z = sps.norm.ppf(0.5 + confidence / 2)
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return centre - half, centre + half


def test_exact_match_two_of_three_has_the_wilson_interval():
    frame = pd.DataFrame(
        {
            "task": "t",
            "family": "f",
            "model": "m",
            "params": 1e6,
            "example_id": ["a", "b", "c"],
            "prediction": ["yes", "no", "maybe"],
            "target": ["yes", "no", "never"],
        }
    )
    scores = ml.score(frame, "exact_match")
    assert len(scores) == 1
    row = scores.iloc[0]
    assert row["metric"] == "exact_match" and row["n"] == 3 and row["ci_method"] == "wilson"
    assert row["value"] == pytest.approx(2 / 3, abs=1e-15)
    low, high = _wilson(2, 3, 0.95)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), abs=1e-12)
    scipy_ci = sps.binomtest(2, 3).proportion_ci(confidence_level=0.95, method="wilson")
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        (scipy_ci.low, scipy_ci.high), abs=1e-12
    )
    try:
        from statsmodels.stats.proportion import proportion_confint
    except ImportError:
        pass  # not installed here; the formula and scipy above are two derivations
    else:
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(
            proportion_confint(2, 3, alpha=0.05, method="wilson"), abs=1e-12
        )
    at_90 = ml.score(frame, "exact_match", confidence=0.9).iloc[0]
    assert (at_90["ci_low"], at_90["ci_high"]) == pytest.approx(_wilson(2, 3, 0.9), abs=1e-12)


def test_a_single_string_is_one_metric_not_its_letters():
    frame = _samples()
    assert ml.score(frame, "exact_match")["metric"].unique().tolist() == ["exact_match"]
    assert ml.score(frame, ["exact_match"])["metric"].unique().tolist() == ["exact_match"]
    assert ml.score(frame, ml.get_metric("exact_match"))["metric"].unique().tolist() == [
        "exact_match"
    ]
    both = ml.score(frame, "exact_match,token_edit_distance")
    assert sorted(both["metric"].unique()) == ["exact_match", "token_edit_distance"]
    # auto: what the columns allow (strings and target log-probs, no choices)
    auto = set(ml.score(frame)["metric"])
    assert {"exact_match", "token_edit_distance", "cross_entropy"} <= auto
    assert not auto & {"multiple_choice_grade", "brier_score", "greedy_match"}
    # the mean is the share of right answers, counted here
    em = ml.score(frame, "exact_match").set_index("model")["value"]
    for model, rows in frame.groupby("model"):
        assert em[model] == pytest.approx((rows["prediction"] == rows["target"]).mean())


def test_a_frame_without_step_or_other_optional_columns_works():
    frame = _samples()
    assert "step" not in frame.columns and "prompt" not in frame.columns
    samples = ml.read_samples(frame)
    assert samples["step"].isna().all() and "continuation_logprob" in samples.columns
    scores = ml.score(frame, ["exact_match", "cross_entropy"])
    assert scores["step"].isna().all()
    ce = scores[scores["metric"] == "cross_entropy"].set_index("model")["value"]
    for model, rows in frame.groupby("model"):
        expected = np.mean([-np.mean(lp) for lp in rows["target_token_logprobs"]])
        assert ce[model] == pytest.approx(expected, rel=1e-12)
    # the analysis functions take a scores frame without the optional columns too
    minimal = scores[["task", "family", "model", "params", "metric", "value"]]
    assert len(ml.read_scores(minimal)) == len(scores)


def test_random_state_int_and_generator_give_reproducible_intervals():
    frame = _samples(n=60)
    metric = "target_logprob"  # continuous: a BCa bootstrap interval

    def intervals(random_state):
        scores = ml.score(frame, metric, n_resamples=200, random_state=random_state)
        assert (scores["ci_method"] == "bca").all()
        return scores[["ci_low", "ci_high"]].to_numpy()

    np.testing.assert_array_equal(intervals(3), intervals(3))
    np.testing.assert_array_equal(intervals(np.int64(3)), intervals(3))
    np.testing.assert_array_equal(
        intervals(np.random.default_rng(5)), intervals(np.random.default_rng(5))
    )
    shared = np.random.default_rng(5)
    first, second = intervals(shared), intervals(shared)  # a generator advances
    assert not np.array_equal(first, second)
    assert not np.array_equal(intervals(3), intervals(4))
    # the int is the library's seed: the default is what `mirage score --seed 0` gives
    from miragelab.scoring import score_samples

    library = score_samples(ml.read_samples(frame), [metric], n_resamples=200, seed=0)
    np.testing.assert_array_equal(intervals(0), library[["ci_low", "ci_high"]].to_numpy())
    for bad in (-1, True, 1.5, "0", np.random.default_rng):
        with pytest.raises(InputError, match="random_state"):
            ml.score(frame, metric, random_state=bad)


def test_score_of_a_path_equals_score_of_the_frame_read_from_it(tmp_path):
    frame = _samples()
    jsonl, parquet = tmp_path / "samples.jsonl", tmp_path / "samples.parquet"
    frame.to_json(jsonl, orient="records", lines=True)
    frame.to_parquet(parquet)
    from_frame = ml.score(frame, random_state=2)
    for path in (jsonl, str(jsonl), parquet, [parquet]):
        pd.testing.assert_frame_equal(ml.score(path, random_state=2), from_frame)
        pd.testing.assert_frame_equal(ml.score(ml.read_samples(path), random_state=2), from_frame)
    # two files, one model apart, are one table
    (tmp_path / "parts").mkdir()
    parts = []
    for model, rows in frame.groupby("model"):
        parts.append(tmp_path / "parts" / f"{model}.jsonl")
        rows.to_json(parts[-1], orient="records", lines=True)
    pd.testing.assert_frame_equal(ml.score(parts, random_state=2), from_frame)
    # streamed on request: the same table
    streamed = ml.score(parquet, stream=True, batch_rows=17, random_state=2)
    pd.testing.assert_frame_equal(streamed, from_frame, check_dtype=False)


def test_streaming_is_the_librarys_choice(tmp_path, monkeypatch):
    from miragelab import streaming

    calls = []
    original = streaming.stream_score

    def spy(paths, metrics, options=None, **kw):
        calls.append((list(paths), kw.get("skip_absent")))
        return original(paths, metrics, options, **kw)

    monkeypatch.setattr(streaming, "stream_score", spy)
    frame = _samples()
    path = tmp_path / "samples.parquet"
    frame.to_parquet(path)
    folder = tmp_path / "dataset"
    (folder / "model=all").mkdir(parents=True)
    frame.to_parquet(folder / "model=all" / "part-0.parquet")
    assert not streaming.should_stream([path]) and streaming.should_stream([folder])

    in_memory = ml.score(path)
    assert calls == []
    from_folder = ml.score(folder)  # a dataset folder streams, as `mirage score` does
    assert calls == [([folder], True)]
    pd.testing.assert_frame_equal(from_folder, in_memory, check_dtype=False)
    ml.score(path, stream=True)
    ml.score(path, "exact_match", stream=True)
    assert calls[1:] == [([path], True), ([path], False)]
    assert len(ml.score(folder, stream=False)) == len(in_memory)
    assert len(calls) == 3


def test_metric_options_reach_the_metrics():
    frame = pd.DataFrame(
        {
            "task": "t",
            "family": "f",
            "model": "m",
            "params": 1e6,
            "example_id": ["a", "b", "c", "d"],
            "prediction": [" Paris ", "paris", "Paris!", "Rome"],
            "target": ["Paris", "Paris", "Paris", "Paris"],
        }
    )

    def mean(**options):
        return ml.score(frame, "exact_match", **options)["value"].iloc[0]

    assert mean() == pytest.approx(1 / 4)
    assert mean(strip=False) == pytest.approx(0)
    assert mean(ignore_case=True) == pytest.approx(2 / 4)
    assert mean(ignore_case=True, ignore_punctuation=True) == pytest.approx(3 / 4)
    words = pd.DataFrame(
        {
            "task": "t",
            "family": "f",
            "model": "m",
            "params": 1e6,
            "example_id": ["a"],
            "prediction": ["the red cat"],
            "target": ["the big cat"],
        }
    )
    ted = {
        tokens: ml.score(words, "token_edit_distance", tokens=tokens)["value"].iloc[0]
        for tokens in ("char", "word")
    }
    assert ted == {"char": 3.0, "word": 1.0}  # r-e-d vs b-i-g; one word


def test_bad_input_is_an_input_error():
    frame = _samples()
    for column in ("model", "task", "example_id"):
        with pytest.raises(InputError, match=f"missing required column.*{column}"):
            ml.score(frame.drop(columns=column), "exact_match")
        with pytest.raises(InputError):
            ml.read_samples(frame.drop(columns=column))
    with pytest.raises(InputError, match="unknown metric 'exact_mach'"):
        ml.score(frame, "exact_mach")
    with pytest.raises(InputError, match="unknown metric"):
        ml.score(frame, ["exact_match", "nope"])
    with pytest.raises(InputError, match="unknown metric"):
        ml.get_metric("nope")
    with pytest.raises(InputError, match="twice"):
        ml.score(frame, ["exact_match", "exact_match"])
    with pytest.raises(InputError, match="no sample has a value"):
        ml.score(frame, "multiple_choice_grade")
    with pytest.raises(InputError, match="target_token_logprobs"):
        ml.score(frame.drop(columns="target_token_logprobs"), "cross_entropy")
    bad_options = [
        {"metrics": 42},
        {"metrics": []},
        {"confidence": 1.5},
        {"n_resamples": 10},
        {"n_resamples": 1000.0},
        {"tokens": "subword"},
        {"stream": True},  # a frame is scored in memory
        {"batch_rows": 0},
    ]
    for options in bad_options:
        with pytest.raises(InputError):
            ml.score(frame, **options)
    for source in (42, [frame], None):
        with pytest.raises(InputError):
            ml.score(source)
    with pytest.raises(InputError, match="no such file"):
        ml.score("no/such/samples.jsonl")
    with pytest.raises(InputError, match="missing required column"):
        ml.read_scores(pd.DataFrame({"task": ["t"], "metric": ["acc"]}))
    with pytest.raises(InputError, match="not both"):
        ml.read_scores(["shipped", "scores.csv"])
    broken = frame.assign(params=-1.0)
    with pytest.raises(InputError, match="params"):
        ml.score(broken)


# --------------------------------------------------------------------------- analysis


def test_meta_verdicts_and_fit_on_shipped_lambada(lambada):
    result = ml.meta_analysis(lambada, n_resamples=200, n_boot=99)
    assert sorted(result.shares["metric"]) == ["acc", "ppl"]
    # two families, each a size ladder and one training-step curve per model
    n_models = lambada.loc[lambada["step"].notna(), ["family", "model"]].drop_duplicates()
    expected_curves = len(n_models) + lambada["family"].nunique()
    assert len(result.verdicts) == expected_curves
    assert set(result.verdicts["harsh_metric"]) == {"acc"}
    table = ml.verdicts(lambada, n_boot=99)
    pd.testing.assert_frame_equal(table, result.verdicts)  # one seed, one answer
    full = ml.verdicts(lambada, n_boot=99, full=True)
    pd.testing.assert_frame_equal(full.verdicts, table)
    assert set(full.evidence["soft_metric"]) == {"ppl"}
    with pytest.raises(TypeError, match="alpha"):
        ml.verdicts(lambada, n_boot=99, alfa=0.1)

    forecast = ml.fit(lambada, task="lambada_openai", family="pythia-v1.1", holdout=2)
    final = lambada.query("family == 'pythia-v1.1' and metric == 'acc'")
    final = final[final["step"] == final["step"].max()].sort_values("params")
    assert forecast.table["params"].tolist() == pytest.approx(final["params"].tolist()[-2:])
    assert forecast.table["observed"].tolist() == pytest.approx(final["value"].tolist()[-2:])
    assert forecast.fit.n_points == len(final) - 2
    assert ml.fit(lambada, task="lambada_openai", family="pythia-v1.1", length=1).length == 1
    for bad in ({"holdout": 0}, {"length": "long"}, {"length": True}, {"soft": "acc_norm"}):
        with pytest.raises(InputError):
            ml.fit(lambada, task="lambada_openai", family="pythia-v1.1", **bad)


def _law_scores(soft_name: str, with_direction: bool) -> pd.DataFrame:
    """Exact match and cross-entropy of the closed-form model on ten sizes."""
    sizes = np.geomspace(1e7, 1e11, 10)
    p = np.exp(-((sizes / 1e9) ** -0.5))
    rows = []
    for i, size in enumerate(sizes):
        for metric, value, higher in (
            ("exact_match", p[i] ** 8, True),
            (soft_name, (sizes[i] / 1e9) ** -0.5, False),
        ):
            row = {
                "task": "add",
                "family": "law",
                "model": f"m{i}",
                "params": size,
                "metric": metric,
                "value": float(value),
            }
            if with_direction:
                row["higher_is_better"] = higher
            rows.append(row)
    return pd.DataFrame(rows)


def test_directions_come_from_the_table_the_facts_or_the_caller():
    known = _law_scores("cross_entropy", with_direction=False)  # both in the facts table
    found = ml.verdicts(known, n_boot=49, random_state=1)
    assert found[["harsh_metric", "soft_metric"]].values.tolist() == [
        ["exact_match", "cross_entropy"]
    ]
    mystery = _law_scores("mystery_loss", with_direction=False)
    with pytest.raises(InputError, match="mystery_loss"):
        ml.meta_analysis(mystery, n_resamples=100, n_boot=49)
    for overrides in ({"mystery_loss": False}, ["mystery_loss=false"]):
        result = ml.meta_analysis(mystery, n_resamples=100, n_boot=49, higher_is_better=overrides)
        assert set(result.measures["metric"]) == {"exact_match", "mystery_loss"}
    paired = ml.verdicts(
        mystery, pairs=[("exact_match", "mystery_loss")], higher_is_better={"mystery_loss": False}
    )
    assert paired["soft_metric"].tolist() == ["mystery_loss"]
    for bad in ({"mystery_loss": "no"}, ["mystery_loss"]):
        with pytest.raises(InputError):
            ml.meta_analysis(mystery, higher_is_better=bad)
    with pytest.raises(InputError, match="n_boot"):
        ml.verdicts(known, n_boot=0)


def test_theory_curves_follow_the_closed_form():
    c, alpha = 2e9, -0.5
    curves = ml.theory_curves(c=c, alpha=alpha, lengths=[1, 4], n_min=1e8, n_max=1e11, points=7)
    assert len(curves) == 14
    params = curves["params"].to_numpy()
    length = curves["length"].to_numpy()
    p = np.exp(-((params / c) ** alpha))
    np.testing.assert_allclose(curves["exact_match"], p**length, rtol=1e-12)
    np.testing.assert_allclose(curves["token_edit_distance"], length * (1 - p), rtol=1e-12)
    np.testing.assert_allclose(np.unique(params), np.geomspace(1e8, 1e11, 7), rtol=1e-12)
    one = ml.theory_curves(lengths=3, points=2)
    assert one["length"].tolist() == [3, 3]
    for bad in ({"alpha": 0.5}, {"c": -1}, {"lengths": [1, 1]}, {"k": 1}, {"points": 1}):
        with pytest.raises(InputError):
            ml.theory_curves(**bad)


def test_plan_matches_the_binomial_test():
    # chance 0: the first n with P(at least one success) >= confidence
    assert ml.plan(accuracy=1e-3) == math.ceil(math.log(0.05) / math.log(1 - 1e-3)) == 2995
    assert ml.plan(n=500) == pytest.approx(1 - 0.05 ** (1 / 500), rel=1e-12)
    # chance 0.25: the exact one-sided test's power, from scipy, crosses 95 % there
    n = ml.plan(accuracy=0.3, chance=0.25)

    def power(size: int) -> float:
        critical = sps.binom.isf(0.05, size, 0.25)
        return float(sps.binom.sf(critical, size, 0.3))

    assert power(n) >= 0.95 and all(power(m) < 0.95 for m in range(n - 20, n))
    for bad in ({}, {"accuracy": 0.1, "n": 10}, {"accuracy": 2.0}, {"n": 0}, {"n": 2.5}):
        with pytest.raises(InputError):
            ml.plan(**bad)


# --------------------------------------------------------------------------- metrics


def test_metrics_can_be_listed_and_registered(registry):
    listing = ml.list_metrics()
    assert listing["metric"].tolist() == list(registry)
    assert listing.set_index("metric").loc["exact_match", "needs"] == ("prediction", "target")

    @ml.register(needs=("prediction",), binary=True, higher_is_better=True)
    def says_four(samples, options, cache):
        """1 if the prediction is 4"""
        return (samples["prediction"].astype(str) == "4").to_numpy(dtype=float)

    assert isinstance(says_four, ml.Metric) and ml.get_metric("says_four") is says_four
    assert (
        ml.list_metrics().set_index("metric").loc["says_four", "doc"] == "1 if the prediction is 4"
    )
    frame = pd.DataFrame(
        {
            "task": "t",
            "family": "f",
            "model": "m",
            "params": 1e6,
            "example_id": list("abcde"),
            "prediction": ["4", "4", "5", "4", "x"],
            "target": "4",
        }
    )
    row = ml.score(frame, "says_four").iloc[0]
    assert row["value"] == pytest.approx(3 / 5) and row["ci_method"] == "wilson"
    assert "says_four" in set(ml.score(frame)["metric"])  # auto knows it
    with pytest.raises(InputError, match="already registered"):
        ml.register(says_four)
    again = ml.register(says_four.fn, name="says_four", needs=("prediction",),
                        higher_is_better=True, replace=True)  # fmt: skip
    assert again.binary is False
    with pytest.raises(InputError, match="contradicts"):
        ml.register(says_four.fn, name="exact_match", needs=("prediction",),
                    higher_is_better=False, replace=True)  # fmt: skip
    with pytest.raises(InputError, match="higher_is_better"):
        ml.register(says_four.fn, name="other", needs=("prediction",))
    with pytest.raises(InputError, match="needs"):
        ml.register(says_four.fn, name="other", needs="prediction", higher_is_better=True)


# --------------------------------------------------------------------------- the package


def test_import_miragelab_stays_cheap():
    code = (
        "import sys, miragelab; "
        "print(miragelab.__version__); "
        "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow', 'miragelab.api') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    version, loaded = done.stdout.splitlines()
    assert version == ml.__version__ and loaded == "[]"


def test_the_public_names_are_exported_lazily_and_never_shadowed():
    import miragelab

    assert {"InputError", "__version__", "score", "verdicts", "register"} <= set(miragelab.__all__)
    assert set(miragelab.__all__) <= set(dir(miragelab))
    # a submodule of the same name would replace the function once imported
    submodules = {p.stem for p in SRC.glob("*.py")} | {p.name for p in SRC.iterdir() if p.is_dir()}
    assert not set(miragelab.__all__) & submodules
    import miragelab.meta
    import miragelab.metrics
    import miragelab.theory
    import miragelab.verdict  # noqa: F401 - bound on the package as it is imported

    for name in miragelab.__all__:
        value = getattr(miragelab, name)
        assert not isinstance(value, type(miragelab)), name
    from miragelab import api

    for name in api.__all__:
        obj = getattr(api, name)
        if callable(obj):
            doc = obj.__doc__ or ""
            assert all(s in doc for s in ("Parameters", "Returns", "Examples")) or (
                "Returns" in doc and "Examples" in doc and name == "list_metrics"
            ), name
    with pytest.raises(AttributeError):
        miragelab.no_such_name  # noqa: B018
