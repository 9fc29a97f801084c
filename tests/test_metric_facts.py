"""The table of metric facts: directions read, never guessed, and the one rule that applies
them (user override > the table's own column > the fact)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from miragelab.emergence import curve_direction
from miragelab.errors import InputError
from miragelab.forecast import to_cross_entropy
from miragelab.metric_facts import (
    CONTINUOUS_METRICS,
    FACTS,
    HARSH_METRICS,
    fact_of,
    is_continuous,
    is_harsh,
    metric_direction,
    normalise_metric_name,
    parse_direction_overrides,
    resolve_directions,
)
from miragelab.sources.bigbench import bigbench_records
from miragelab.sources.lm_eval_results import lm_eval_records
from miragelab.sources.published import load_scores
from miragelab.tables import SCORES, read_table

# Directions by the definition of each metric, written by hand (not read from the module).
LOWER_IS_BETTER = {
    "ppl": 12.0,  # exp(cross-entropy)
    "perplexity": 12.0,
    "word_perplexity": 30.0,
    "byte_perplexity": 1.8,
    "bits_per_byte": 0.9,  # a log-loss in bits
    "bpb": 0.9,
    "cross_entropy": 2.5,  # a negative log-likelihood
    "loss": 2.5,
    "brier_score": 0.4,  # a squared error
    "token_edit_distance": 3.0,  # a distance
    "mse": 0.02,  # a squared error
    "ter": 60.0,  # translation edit rate
    "expected_calibration_error": 0.1,  # |confidence - accuracy|
}
HIGHER_IS_BETTER = {
    "acc": 0.5,  # share right
    "acc_norm": 0.5,
    "exact_match": 0.3,
    "multiple_choice_grade": 0.4,
    "bleu": 20.0,  # n-gram overlap
    "f1": 0.6,  # token overlap
    "per_token_prob": 0.7,  # a probability of the target
    "target_logprob": -4.0,  # a log-likelihood
}
EXPECTED = {**{m: False for m in LOWER_IS_BETTER}, **{m: True for m in HIGHER_IS_BETTER}}
VALUES = {**LOWER_IS_BETTER, **HIGHER_IS_BETTER}


def long_csv(path: Path, metric: str, value: float, extra: str = "") -> Path:
    """A long scores CSV by hand: three models of one family, no higher_is_better column
    (or the column ``extra`` gives, as ``,name`` header and ``,value`` cells)."""
    head = "task,family,model,params,metric,value" + (f",{extra.split('=')[0]}" if extra else "")
    cell = f",{extra.split('=')[1]}" if extra else ""
    rows = [f"t,fam,m{i},{10 ** (6 + i)},{metric},{value * (1 + 0.1 * i)}{cell}" for i in range(3)]
    path.write_text("\n".join([head, *rows]) + "\n")
    return path


@pytest.mark.parametrize(("metric", "expected"), list(EXPECTED.items()), ids=list(EXPECTED))
def test_a_long_csv_without_directions_gets_them_from_the_metric(
    tmp_path: Path, metric: str, expected: bool
) -> None:
    path = long_csv(tmp_path / "scores.csv", metric, VALUES[metric])
    for table in (read_table(path, SCORES), load_scores([path])):
        assert table["higher_is_better"].isna().all()  # the file says nothing: no guess
        resolved = resolve_directions(table)
        assert resolved["higher_is_better"].dtype == bool
        assert resolved["higher_is_better"].tolist() == [expected] * 3
        assert curve_direction(table) is expected
    assert metric_direction(metric) is expected


@pytest.mark.parametrize(
    ("name", "bare"),
    [
        ("acc,none", "acc"),
        ("word_perplexity,none", "word_perplexity"),
        ("exact_match,flexible-extract", "exact_match"),
        ("exact_match[strict-match]", "exact_match"),
        (" ACC_NORM ", "acc_norm"),
    ],
)
def test_lm_eval_suffixes_resolve_like_the_bare_names(name: str, bare: str) -> None:
    assert normalise_metric_name(name) == bare
    assert fact_of(name) == fact_of(bare) is not None
    assert metric_direction(name) is metric_direction(bare)
    table = pd.DataFrame({"metric": [name, bare], "value": [1.5, 1.5]})
    resolved = resolve_directions(table)["higher_is_better"].tolist()
    assert resolved[0] is resolved[1]


def test_suffixes_by_hand() -> None:
    assert metric_direction("acc,none") is True
    assert metric_direction("word_perplexity,none") is False


def test_vision_prefix_entries_are_harsh() -> None:
    assert is_harsh("subset_accuracy_K5") and is_harsh("reconstruction_c0.1")
    assert fact_of("subset_accuracy_K5").higher_is_better is True
    assert is_continuous("mse") and not is_harsh("mse")


def test_the_sets_keep_todays_names() -> None:
    harsh = {"exact_match", "em", "multiple_choice_grade", "multiple_choice_grade_norm", "acc"}
    harsh |= {"acc_norm", "accuracy", "exact_str_match", "quasi_exact_match", "greedy_match"}
    harsh |= {"reconstruction_c*", "subset_accuracy*"}
    soft = {"perplexity", "ppl", "word_perplexity", "byte_perplexity", "bits_per_byte"}
    soft |= {"brier_score", "token_edit_distance", "normalized_edit_similarity"}
    soft |= {"target_logprob", "target_logprob_mean", "per_token_prob", "cross_entropy"}
    soft |= {"continuation_logprob", "bleu", "chrf", "f1", "mse", "per_image_accuracy"}
    assert harsh <= HARSH_METRICS and soft <= CONTINUOUS_METRICS
    assert not HARSH_METRICS & CONTINUOUS_METRICS


def test_fields_are_consistent() -> None:
    for name, fact in FACTS.items():
        assert fact.name == name and fact.kind in ("harsh", "continuous", "other")
        assert fact.to_loss in (None, "loss", "log", "neg_log", "neg")
        if fact.to_loss is not None:
            assert fact.preference == 0 and fact.kind == "continuous"
        if fact.lower is not None and fact.upper is not None:
            assert fact.lower < fact.upper
        if fact.perfect is not None:
            assert fact.lower is None or fact.perfect >= fact.lower
            assert fact.upper is None or fact.perfect <= fact.upper
    # by hand: the best value of a perplexity is 1, of a loss 0, of a proportion 1
    assert fact_of("ppl").perfect == 1.0 and fact_of("ppl").lower == 1.0
    assert fact_of("cross_entropy").perfect == 0.0 and fact_of("brier_score").perfect == 0.0
    assert fact_of("acc").perfect == 1.0 and fact_of("bleu").perfect is None
    assert fact_of("brier_score").preference == 1
    assert fact_of("token_edit_distance").preference == 2
    assert fact_of("bleu").preference == 3


@pytest.mark.parametrize(
    ("metric", "value", "expected"),
    [
        ("bpb", 1.0, math.log(2)),
        ("loss", 2.0, 2.0),
        ("word_perplexity,none", math.e**3, 3.0),
        ("continuation_logprob", -5.0, 5.0),
    ],
)
def test_to_cross_entropy_uses_the_facts(metric: str, value: float, expected: float) -> None:
    assert to_cross_entropy(metric, np.array([value]))[0] == pytest.approx(expected)


# --------------------------------------------------------------------------- precedence


def test_an_unknown_metric_has_no_direction(tmp_path: Path) -> None:
    assert fact_of("that") is None
    with pytest.raises(InputError) as info:
        metric_direction("that")
    assert info.value.field == "higher_is_better" and "'that'" in str(info.value)
    assert "--higher-is-better that=true|false" in str(info.value)
    table = read_table(long_csv(tmp_path / "s.csv", "that", 1.0), SCORES)
    with pytest.raises(InputError, match="'that'"):
        resolve_directions(table)
    with pytest.raises(InputError, match="'that'"):
        curve_direction(table)
    assert resolve_directions(table, {"that": False})["higher_is_better"].tolist() == [False] * 3


def test_the_tables_column_wins_over_the_fact_and_the_override_over_the_table(
    tmp_path: Path,
) -> None:
    # a loss-like column published as higher-is-better: the table says so, the table wins
    path = long_csv(tmp_path / "s.csv", "ppl", 10.0, extra="higher_is_better=true")
    table = load_scores([path])
    assert resolve_directions(table)["higher_is_better"].tolist() == [True] * 3
    assert curve_direction(table) is True
    overridden = resolve_directions(table, {"ppl": False})
    assert overridden["higher_is_better"].tolist() == [False] * 3
    assert (
        resolve_directions(table, {"PPL,none": False})["higher_is_better"].tolist() == [False] * 3
    )
    assert overridden.attrs["sources"] == table.attrs["sources"]  # provenance kept


def test_a_partly_stated_metric_fills_its_null_rows_from_its_own_rows() -> None:
    table = pd.DataFrame(
        {"metric": ["acc", "acc", "ppl"], "higher_is_better": pd.array([False, None, None])}
    )
    assert resolve_directions(table)["higher_is_better"].tolist() == [False, False, False]


def test_rows_of_one_metric_that_disagree_are_refused() -> None:
    table = pd.DataFrame({"metric": ["acc", "acc"], "higher_is_better": [True, False]})
    with pytest.raises(InputError, match="'acc'") as info:
        resolve_directions(table)
    assert info.value.field == "higher_is_better"
    assert resolve_directions(table, {"acc": True})["higher_is_better"].all()


def test_parse_direction_overrides() -> None:
    got = parse_direction_overrides(["a=true", "b=False", "c=1", "d=0", "e=yes", "f=NO"])
    assert got == {"a": True, "b": False, "c": True, "d": False, "e": True, "f": False}
    for bad in ("acc", "acc=", "=true", "acc=maybe"):
        with pytest.raises(InputError) as info:
            parse_direction_overrides([bad])
        assert info.value.field == "--higher-is-better" and repr(bad) in str(info.value)


# --------------------------------------------------------------------------- loaders


def test_loaders_leave_an_unknown_direction_null(tmp_path: Path) -> None:
    results = {
        "results": {"lambada": {"acc": 0.5, "ppl": 9.0, "mystery": 0.2}},
        "config": {"model_args": "pretrained=EleutherAI/pythia-160m"},
    }
    records = {r["metric"]: r["higher_is_better"] for r in lm_eval_records(results, "r.json")}
    assert records == {"acc": True, "ppl": False, "mystery": None}
    bigbench = {
        "model": {"model_family": "BIG-G", "model_name": "2m", "total_params": 2e6},
        "task": {"task_name": "t"},
        "scores": [
            {
                "score_dict": {"multiple_choice_grade": 0.3, "mystery": 0.1, "bleu": 3.0},
                "subtask_description": "t",
            }
        ],
    }
    records = {r["metric"]: r["higher_is_better"] for r in bigbench_records(bigbench, "b.json")}
    assert records == {"multiple_choice_grade": True, "mystery": None, "bleu": True}


def test_the_registry_takes_its_directions_from_the_facts() -> None:
    from miragelab.metrics import REGISTRY, Metric, register

    for metric in REGISTRY.values():
        assert FACTS[metric.name].higher_is_better is metric.higher_is_better
    assert REGISTRY["token_edit_distance"].higher_is_better is False  # by hand
    assert fact_of("my_distance") is None
    mine = Metric("my_distance", ("prediction",), False, False, "a user metric", lambda *a: None)
    register(mine)
    try:
        assert fact_of("my_distance").higher_is_better is False
        assert fact_of("my_distance").kind == "other"
        assert metric_direction("My_Distance,none") is False
        with pytest.raises(ValueError):
            register(mine)
    finally:
        REGISTRY.pop("my_distance")
    with pytest.raises(ValueError, match="contradicts"):
        register(Metric("ppl", ("prediction",), False, True, "wrong way", lambda *a: None))
    assert "ppl" not in REGISTRY


# --------------------------------------------------------------------------- command line


def mirage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "miragelab", *args], capture_output=True, text=True, timeout=300
    )


def unknown_scores(path: Path) -> Path:
    rows = [
        {"task": "t", "family": "f", "model": f"m{i}", "params": 10 ** (6 + i)}
        | {"metric": "that", "value": float(v)}
        for i, v in enumerate([5.0, 4.0, 2.0, 1.5])
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_meta_refuses_an_unknown_direction_in_one_line(tmp_path: Path) -> None:
    scores, out = unknown_scores(tmp_path / "that.csv"), tmp_path / "meta"
    result = mirage("meta", str(scores), "--out", str(out), "--n-resamples", "100")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "'that'" in lines[0]
    assert "--higher-is-better" in lines[0] and not out.exists()


def test_meta_runs_with_the_direction_given(tmp_path: Path) -> None:
    scores, out = unknown_scores(tmp_path / "that.csv"), tmp_path / "meta"
    result = mirage(
        "meta",
        str(scores),
        "--out",
        str(out),
        "--n-resamples",
        "100",
        "--higher-is-better",
        "that=false",
    )
    assert result.returncode == 0, result.stderr
    measures = pd.read_parquet(out / "meta_measures.parquet")
    assert measures["higher_is_better"].tolist() == [False]
    assert measures["emergence_score"].iloc[0] > 0  # falling values improve


@pytest.mark.parametrize("command", ["meta", "report", "fit"])
@pytest.mark.parametrize("item", ["that", "that=maybe", "=false"])
def test_a_malformed_direction_is_one_line_and_exit_2(
    tmp_path: Path, command: str, item: str
) -> None:
    scores, out = unknown_scores(tmp_path / "that.csv"), tmp_path / "out"
    result = mirage(command, str(scores), "--out", str(out), "--higher-is-better", item)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--higher-is-better" in lines[0] and repr(item) in lines[0]
    assert "Traceback" not in result.stderr and not out.exists()


def test_fit_and_report_refuse_an_unknown_direction(tmp_path: Path) -> None:
    scores = unknown_scores(tmp_path / "that.csv")
    for command in ("fit", "report"):
        out = tmp_path / command
        result = mirage(command, str(scores), "--out", str(out))
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "'that'" in lines[0] and not out.exists()


def test_json_scores_keep_their_own_direction(tmp_path: Path) -> None:
    # a scores table that states a direction for an unknown metric needs no option
    path = tmp_path / "scores.jsonl"
    rows = [
        {"task": "t", "family": "f", "model": f"m{i}", "params": 10 ** (6 + i), "metric": "that"}
        | {"value": v, "higher_is_better": False}
        for i, v in enumerate([5.0, 4.0, 2.0])
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert resolve_directions(load_scores([path]))["higher_is_better"].tolist() == [False] * 3
