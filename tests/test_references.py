"""Multi-reference tasks: the ``references`` column, its metrics, I/O and lm-eval's golds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import assert_refused

from miragelab.errors import InputError
from miragelab.metrics import MetricOptions, compute_metrics
from miragelab.scoring import score_samples
from miragelab.sources.lm_eval_samples import _Bad, listed_golds, parse_lm_eval_record
from miragelab.tables import SAMPLES, read_samples, validate_frame, write_table

STRING_METRICS = ["exact_match", "token_edit_distance", "normalized_edit_similarity"]


def _samples(rows: list[tuple[str, str, list[str] | None]]) -> pd.DataFrame:
    return validate_frame(
        pd.DataFrame(
            {
                "task": "qa",
                "family": "f",
                "model": "m",
                "params": 1e6,
                "example_id": [str(i) for i in range(len(rows))],
                "target": [t for t, _, _ in rows],
                "prediction": [p for _, p, _ in rows],
                "references": [r for _, _, r in rows],
            }
        ),
        SAMPLES,
    )


def test_best_reference_counts_worked_by_hand():
    samples = _samples(
        [
            # matches its second reference: right, distance 0
            ("Paris", "City of Paris", ["Paris", "City of Paris"]),
            # "five" vs "4": 4 edits over 4 chars; vs "four": f=f, i/o, v/u, e/r -> 3 over 4
            ("4", "five", ["4", "four"]),
            # no references: the target alone; "abd" vs "abc" is 1 edit over 3
            ("abc", "abd", None),
            # "abcd" vs "abxy": 2 edits over 4 (similarity 0.5); vs "abcdxyz": 3 edits over 7
            # (similarity 4/7): the closest in edits is not the closest relative to length
            ("abxy", "abcd", ["abcdxyz"]),
        ]
    )
    got = compute_metrics(samples, STRING_METRICS)
    np.testing.assert_array_equal(got["exact_match"], [1, 0, 0, 0])
    np.testing.assert_array_equal(got["token_edit_distance"], [0, 3, 1, 2])
    np.testing.assert_allclose(
        got["normalized_edit_similarity"], [1.0, 0.25, 2 / 3, 4 / 7], rtol=0, atol=1e-15
    )


def test_references_are_normalised_like_the_target():
    samples = _samples([("Lutetia", " PARIS ", ["paris"])])
    assert compute_metrics(samples, ["exact_match"])["exact_match"].tolist() == [0.0]
    cased = compute_metrics(samples, ["exact_match"], MetricOptions(case=True))
    assert cased["exact_match"].tolist() == [1.0]
    words = compute_metrics(
        _samples([("a b", "a c d", ["x y z w", "a c"])]),
        ["token_edit_distance"],
        MetricOptions(tokens="word"),
    )
    assert words["token_edit_distance"].tolist() == [1.0]  # "a c d" vs "a c": one word


def test_references_equal_to_the_target_change_nothing():
    rng = np.random.default_rng(0)
    alphabet = list("abc ")
    rows = [
        ("".join(rng.choice(alphabet, 4)), "".join(rng.choice(alphabet, rng.integers(0, 6))))
        for _ in range(300)
    ]
    plain = compute_metrics(_samples([(t, p, None) for t, p in rows]), STRING_METRICS)
    same = compute_metrics(_samples([(t, p, [t, t]) for t, p in rows]), STRING_METRICS)
    pd.testing.assert_frame_equal(plain, same)


def test_references_round_trip_through_every_format(tmp_path):
    samples = _samples([("Paris", "paris", ["Paris", "paris"]), ("4", "4", None)])
    for name in ("s.jsonl", "s.csv", "s.parquet", "s.jsonl.gz"):
        back = read_samples(write_table(samples, tmp_path / name))
        assert [None if v is None or v is pd.NA else list(v) for v in back["references"]] == [
            ["Paris", "paris"],
            None,
        ]
    assert list(pd.read_parquet(tmp_path / "s.parquet")["references"][0]) == ["Paris", "paris"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"Paris"', "expected a list of strings, got str"),
        ("[]", "expected at least 1 string(s), got 0"),
        ('["a", 3]', "item 1: expected a string, got int 3"),
        ('[["a"]]', "item 0: expected a string, got list"),
    ],
)
def test_bad_references_name_line_and_field(tmp_path, value, message):
    good = {"task": "t", "family": "f", "model": "m", "params": 1, "target": "a"}
    lines = [
        json.dumps({**good, "example_id": "0", "prediction": "a"}),
        f'{{"task": "t", "family": "f", "model": "m", "params": 1, "example_id": "1", '
        f'"target": "a", "prediction": "b", "references": {value}}}',
    ]
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert_refused(lambda: read_samples(path), path, 2, "references", message)


def test_bad_references_in_parquet_are_refused_by_both_scorers(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "task": ["t", "t"],
            "family": ["f", "f"],
            "model": ["m", "m"],
            "params": [1.0, 1.0],
            "example_id": ["0", "1"],
            "target": ["a", "b"],
            "prediction": ["a", "b"],
            "references": pa.array([["a"], ["b", None]], pa.list_(pa.string())),
        }
    )
    path = tmp_path / "s.parquet"
    pq.write_table(table, path)
    with pytest.raises(InputError, match="references"):
        read_samples(path)
    from miragelab.streaming import stream_score

    with pytest.raises(InputError, match="references"):
        stream_score([path], ["exact_match"])


def test_streaming_and_in_memory_scores_agree_with_references(tmp_path):
    from miragelab.streaming import stream_score

    rows = [("Paris", "paris", ["Paris", "paris"]), ("4", "four", ["4", "four"])] * 5 + [
        ("x", "y", None)
    ] * 3
    samples = _samples(rows)
    path = write_table(samples, tmp_path / "s.parquet")
    memory = score_samples(read_samples(path), STRING_METRICS)
    streamed = stream_score([path], STRING_METRICS, batch_rows=4)
    key = ["metric"]
    a = memory.sort_values(key).reset_index(drop=True)
    b = streamed.sort_values(key).reset_index(drop=True)
    np.testing.assert_allclose(a["value"], b["value"], rtol=0, atol=1e-12)
    em = a.set_index("metric").loc["exact_match", "value"]
    assert em == pytest.approx(10 / 13)  # 10 rows match a reference, the 3 "x"/"y" rows do not


def test_listed_golds_reads_only_python_lists_of_strings():
    assert listed_golds("['Paris', 'paris']") == ["Paris", "paris"]
    assert listed_golds("[\"it's\", 'b']") == ["it's", "b"]
    assert listed_golds("['one']") == ["one"]
    for single in ("[1, 2]", "[]", "Paris", "['a', 1]", '["a", "b"]', "['a',  'b']", "['a'"):
        assert listed_golds(single) is None, single


def test_lm_eval_generation_targets_become_references():
    base = {
        "doc_id": 0,
        "arguments": {"gen_args_0": {"arg_0": "Capital of France?", "arg_1": {"until": ["\n"]}}},
        "resps": [["Paris"]],
        "filtered_resps": ["Paris"],
    }
    row = parse_lm_eval_record({**base, "target": "['Paris', 'City of Paris']"})
    assert (row.target, row.references) == ("Paris", ["Paris", "City of Paris"])
    row = parse_lm_eval_record({**base, "target": ["Paris", 7]})  # lm-eval < 0.4.3: a list
    assert (row.target, row.references) == ("Paris", ["Paris", "7"])
    row = parse_lm_eval_record({**base, "target": "['Paris']"}, split_targets=False)
    assert (row.target, row.references) == ("['Paris']", None)
    row = parse_lm_eval_record({**base, "target": "[1, 2]"})
    assert (row.target, row.references) == ("[1, 2]", None)
    with pytest.raises(_Bad) as info:
        parse_lm_eval_record({**base, "target": []})
    assert info.value.field == "target"
    with pytest.raises(_Bad) as info:
        parse_lm_eval_record({**base, "target": ["Paris", {"a": 1}]})
    assert info.value.field == "target[1]"
