"""Metric values checked against hand-worked cases and properties, not the code's own output."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from miragelab.errors import InputError
from miragelab.metrics import (
    REGISTRY,
    MetricOptions,
    compute_metrics,
    get_metric,
    parse_metric_list,
)


def _samples(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {
        "task": ["t"] * n,
        "family": ["f"] * n,
        "model": ["m"] * n,
        "params": [1e6] * n,
        "example_id": [str(i) for i in range(n)],
    }
    return pd.DataFrame({**base, **columns})


def _text(pred: list[str], target: list[str]) -> pd.DataFrame:
    return _samples(prediction=pred, target=target)


def _one(metric: str, frame: pd.DataFrame, **options) -> np.ndarray:
    return compute_metrics(frame, [metric], MetricOptions(**options))[metric].to_numpy()


# --------------------------------------------------------------------------- exact match


def test_exact_match_default_strips_only() -> None:
    frame = _text([" 42\n", "Paris", "Paris."], ["42", "paris", "Paris"])
    assert _one("exact_match", frame).tolist() == [1.0, 0.0, 0.0]


def test_exact_match_case_and_punctuation_options() -> None:
    frame = _text([" 42\n", "Paris", "Paris.", "N.Y."], ["42", "paris", "Paris", "ny"])
    assert _one("exact_match", frame, case=True).tolist() == [1.0, 1.0, 0.0, 0.0]
    assert _one("exact_match", frame, case=True, punctuation=True).tolist() == [1, 1, 1, 1]


def test_exact_match_without_strip_is_literal() -> None:
    frame = _text([" 42", "42"], ["42", "42"])
    assert _one("exact_match", frame, strip=False).tolist() == [0.0, 1.0]


# --------------------------------------------------------------------------- edit distances


def test_char_edit_distance_textbook_cases() -> None:
    # kitten -> sitting: substitute k/s, e/i, insert g = 3; flaw -> lawn: 2; "" -> "abc": 3
    frame = _text(["kitten", "flaw", "", "same"], ["sitting", "lawn", "abc", "same"])
    assert _one("token_edit_distance", frame).tolist() == [3.0, 2.0, 3.0, 0.0]


def test_word_edit_distance_counts_words_not_characters() -> None:
    # "the cat sat" vs "the dog sat": one word substituted; "a b" vs "a b c d": two inserted
    frame = _text(["the cat sat", "a b", "x"], ["the dog sat", "a b c d", "x"])
    assert _one("token_edit_distance", frame, tokens="word").tolist() == [1.0, 2.0, 0.0]


def test_tokenizer_callable_matches_equivalent_word_split() -> None:
    frame = _text(["1 2 3 4", "12 34"], ["1 2 4", "12 43"])
    by_word = _one("token_edit_distance", frame, tokens="word")
    by_callable = _one("token_edit_distance", frame, tokens=lambda s: s.split(" "))
    assert by_word.tolist() == by_callable.tolist() == [1.0, 1.0]


def test_tokenizer_may_return_integer_ids() -> None:
    frame = _text(["ab", "abc"], ["ac", "abc"])
    ids = _one("token_edit_distance", frame, tokens=lambda s: [ord(ch) for ch in s])
    assert ids.tolist() == [1.0, 0.0]


def test_normalized_edit_similarity_is_partial_credit() -> None:
    # kitten/sitting: 1 - 3/7; empty/empty: identical -> 1; "ab"/"xy": 1 - 2/2 = 0
    frame = _text(["kitten", "", "ab"], ["sitting", "", "xy"])
    got = _one("normalized_edit_similarity", frame)
    np.testing.assert_allclose(got, [1 - 3 / 7, 1.0, 0.0], rtol=0, atol=1e-15)


def test_edit_distance_sees_normalisation() -> None:
    # "Hello, World" -> "hello world": H->h, delete ",", W->w = 3; none left once normalised
    frame = _text(["Hello, World"], ["hello world"])
    assert _one("token_edit_distance", frame).tolist() == [3.0]
    assert _one("token_edit_distance", frame, case=True, punctuation=True).tolist() == [0.0]


# --------------------------------------------------------------------------- choices


def _choices(logprobs: list[list[float]], correct: list[int]) -> pd.DataFrame:
    return _samples(choice_logprobs=logprobs, correct_choice=correct)


def test_multiple_choice_grade_argmax_and_first_tie() -> None:
    frame = _choices(
        [[-1.0, -2.0], [-3.0, -0.5, -4.0], [-1.0, -1.0, -5.0], [-1.0, -1.0, -5.0]],
        [0, 1, 1, 0],
    )
    # ties go to the first maximum (index 0), so only the last tie counts as correct
    assert _one("multiple_choice_grade", frame).tolist() == [1.0, 1.0, 0.0, 1.0]


def test_brier_two_choices_worked_by_hand() -> None:
    # probs (0.8, 0.2), correct 0: ((0.8-1)^2 + (0.2-0)^2) / 2 = (0.04 + 0.04) / 2 = 0.04
    # probs (0.5, 0.5), correct 1: (0.25 + 0.25) / 2 = 0.25
    frame = _choices([[math.log(0.8), math.log(0.2)], [-7.0, -7.0]], [0, 1])
    np.testing.assert_allclose(_one("brier_score", frame), [0.04, 0.25], atol=1e-15)


def test_brier_uses_softmax_of_unnormalised_scores() -> None:
    # scores (2, 0, 0) -> softmax e^2/(e^2+2), 1/(e^2+2), 1/(e^2+2); correct 2
    e2 = math.e**2
    z = e2 + 2
    expected = ((e2 / z) ** 2 + (1 / z) ** 2 + (1 / z - 1) ** 2) / 3
    frame = _choices([[2.0, 0.0, 0.0]], [2])
    np.testing.assert_allclose(_one("brier_score", frame), [expected], rtol=1e-14)


def test_ragged_choice_counts() -> None:
    frame = _choices([[0.0, -1.0], [-1.0, -2.0, 0.0, -3.0]], [0, 2])
    assert _one("multiple_choice_grade", frame).tolist() == [1.0, 1.0]


# --------------------------------------------------------------------------- log-probs


def test_logprob_metrics_by_hand() -> None:
    frame = _samples(target_token_logprobs=[[-1.0, -2.0], [-0.5], [0.0, 0.0, 0.0]])
    got = compute_metrics(
        frame, ["target_logprob", "target_logprob_mean", "per_token_prob", "cross_entropy"]
    )
    assert got["target_logprob"].tolist() == [-3.0, -0.5, 0.0]
    assert got["target_logprob_mean"].tolist() == [-1.5, -0.5, 0.0]
    np.testing.assert_allclose(got["per_token_prob"], [math.exp(-1.5), math.exp(-0.5), 1.0])
    assert got["cross_entropy"].tolist() == [1.5, 0.5, 0.0]


def test_length_normalised_grade_worked_by_hand() -> None:
    # row 1: log-probs -4, -3 over 8 and 2 characters -> -0.5, -1.5: choice 0 wins normalised,
    # choice 1 raw. Row 2: -2, -2 over 4 and 4 -> a tie, which goes to the first choice.
    # Row 3: three choices, -6/3 = -2, -1/1 = -1, -9/9 = -1 -> a tie of 1 and 2: choice 1.
    frame = _samples(
        choice_logprobs=[[-4.0, -3.0], [-2.0, -2.0], [-6.0, -1.0, -9.0]],
        choice_lengths=[[8.0, 2.0], [4.0, 4.0], [3.0, 1.0, 9.0]],
        correct_choice=[0, 0, 2],
    )
    got = compute_metrics(frame, ["multiple_choice_grade_norm", "multiple_choice_grade"])
    assert got["multiple_choice_grade_norm"].tolist() == [1.0, 1.0, 0.0]
    assert got["multiple_choice_grade"].tolist() == [0.0, 1.0, 0.0]


def test_continuation_metrics_read_lm_eval_totals() -> None:
    # LAMBADA-style rows: only the total log-prob and is_greedy of the continuation are known
    frame = _samples(
        continuation_logprob=[-2.5, -0.25, None],
        continuation_is_greedy=pd.array([True, False, None], dtype="boolean"),
    )
    got = compute_metrics(frame, ["greedy_match", "continuation_logprob"])
    assert got["greedy_match"].iloc[:2].tolist() == [1.0, 0.0]
    assert got["continuation_logprob"].iloc[:2].tolist() == [-2.5, -0.25]
    assert got.iloc[2].isna().all()  # a row without the values gets none
    assert get_metric("greedy_match").binary and not get_metric("continuation_logprob").binary


def test_continuation_values_are_validated() -> None:
    from miragelab.tables import SAMPLES, validate_frame

    with pytest.raises(InputError) as info:
        validate_frame(_samples(continuation_logprob=[-1.0, 0.5]), SAMPLES)
    assert (info.value.line, info.value.field) == (2, "continuation_logprob")
    with pytest.raises(InputError) as info:
        validate_frame(_samples(continuation_is_greedy=[True, "yes"]), SAMPLES)
    assert (info.value.line, info.value.field) == (2, "continuation_is_greedy")


def test_rows_without_the_columns_get_nan() -> None:
    frame = _samples(
        prediction=["a", None], target=["a", "b"], target_token_logprobs=[[-1.0], [-2.0]]
    )
    got = compute_metrics(frame, ["exact_match", "cross_entropy"])
    assert got["exact_match"].iloc[0] == 1.0 and np.isnan(got["exact_match"].iloc[1])
    assert got["cross_entropy"].tolist() == [1.0, 2.0]


# --------------------------------------------------------------------------- registry


def test_registry_declares_needs_and_direction() -> None:
    assert get_metric("exact_match").needs == ("prediction", "target")
    assert get_metric("brier_score").higher_is_better is False
    assert get_metric("multiple_choice_grade").binary is True
    assert [m.name for m in parse_metric_list("all")] == list(REGISTRY)


@pytest.mark.parametrize("text", ["nope", "exact_match,nope", "", "exact_match,exact_match"])
def test_bad_metric_lists_name_the_field(text: str) -> None:
    with pytest.raises(InputError, match="metrics"):
        parse_metric_list(text)


def test_missing_column_is_named() -> None:
    with pytest.raises(InputError, match="choice_logprobs"):
        compute_metrics(_text(["a"], ["a"]), ["multiple_choice_grade"])


# --------------------------------------------------------------------------- properties

words = st.text(alphabet="abc ", max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(words, words, words), min_size=1, max_size=8))
def test_edit_distance_is_a_metric(triples: list[tuple[str, str, str]]) -> None:
    a, b, c = (list(x) for x in zip(*triples, strict=True))
    for tokens in ("char", "word"):
        d_ab = _one("token_edit_distance", _text(a, b), tokens=tokens, strip=False)
        d_ba = _one("token_edit_distance", _text(b, a), tokens=tokens, strip=False)
        d_bc = _one("token_edit_distance", _text(b, c), tokens=tokens, strip=False)
        d_ac = _one("token_edit_distance", _text(a, c), tokens=tokens, strip=False)
        d_aa = _one("token_edit_distance", _text(a, a), tokens=tokens, strip=False)
        assert (d_ab == d_ba).all() and (d_aa == 0).all() and (d_ab >= 0).all()
        assert (d_ac <= d_ab + d_bc).all()
        same = np.array([x == y for x, y in zip(a, b, strict=True)]) if tokens == "char" else None
        if same is not None:
            assert ((d_ab == 0) == same).all()


logprob_lists = st.lists(
    st.floats(min_value=-20, max_value=0, allow_nan=False), min_size=1, max_size=6
)


@settings(max_examples=60, deadline=None)
@given(st.lists(logprob_lists, min_size=1, max_size=10))
def test_sequence_prob_never_exceeds_per_token_prob(lists: list[list[float]]) -> None:
    # P(all tokens right) = exp(sum) <= exp(mean) since sum <= mean for logprobs <= 0
    got = compute_metrics(
        _samples(target_token_logprobs=lists), ["target_logprob", "per_token_prob"]
    )
    assert (np.exp(got["target_logprob"]) <= got["per_token_prob"] * (1 + 1e-12)).all()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.floats(-30, 0, allow_nan=False), min_size=2, max_size=5),
            st.integers(0, 4),
            words,
            words,
        ),
        min_size=1,
        max_size=10,
    ),
    st.randoms(use_true_random=False),
)
def test_metrics_are_invariant_to_row_order(rows, rnd) -> None:
    rows = [(lp, k % len(lp), p, t) for lp, k, p, t in rows]
    frame = _samples(
        choice_logprobs=[r[0] for r in rows],
        correct_choice=[r[1] for r in rows],
        prediction=[r[2] for r in rows],
        target=[r[3] for r in rows],
        target_token_logprobs=[r[0] for r in rows],
        choice_lengths=[[1.0 + (j * 7) % 5 for j in range(len(r[0]))] for r in rows],
        continuation_logprob=[sum(r[0]) for r in rows],
        continuation_is_greedy=[r[1] == 0 for r in rows],
    )
    order = list(range(len(rows)))
    rnd.shuffle(order)
    names = list(REGISTRY)
    before = compute_metrics(frame, names).to_numpy()
    after = compute_metrics(frame.iloc[order].reset_index(drop=True), names).to_numpy()
    np.testing.assert_allclose(after, before[order], rtol=1e-12, atol=1e-15)
    brier = compute_metrics(frame, ["brier_score"])["brier_score"]
    assert ((brier >= 0) & (brier <= 1)).all()


def test_segment_sums_with_empty_rows_anywhere() -> None:
    from miragelab.metrics import _segment_sum

    values = np.array([1.0, 2.0, 3.0])
    # rows: [], [1], [], [2, 3], [] -> 0, 1, 0, 5, 0
    assert _segment_sum(values, np.array([0, 0, 1, 1, 3, 3])).tolist() == [0, 1, 0, 5, 0]
    assert _segment_sum(values, np.array([0, 3, 3])).tolist() == [6.0, 0.0]


def test_choice_lengths_must_match_the_choices_in_memory_and_streaming(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from miragelab.streaming import stream_score
    from miragelab.tables import SAMPLES, validate_frame

    frame = _samples(
        choice_logprobs=[[-1.0, -2.0], [-1.0, -2.0]],
        choice_lengths=[[3.0, 4.0], [3.0, 4.0, 5.0]],
        correct_choice=[0, 0],
    )
    with pytest.raises(InputError) as info:
        validate_frame(frame, SAMPLES)
    assert (info.value.line, info.value.field) == (2, "choice_lengths")
    assert info.value.message == "3 choice length(s) for 2 choice log-prob(s)"
    path = tmp_path / "s.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    with pytest.raises(InputError) as info:
        stream_score([path], ["multiple_choice_grade_norm"])
    assert (info.value.line, info.value.field) == (2, "choice_lengths")
    assert info.value.message == "3 choice length(s) for 2 choice log-prob(s)"


@pytest.mark.parametrize(
    ("prediction", "target", "expected"),
    [
        ("The cat.", "cat", 1.0),  # article and punctuation go
        ("  an  Apple!! ", "apple", 1.0),  # case and whitespace too
        ("theater", "ater", 0.0),  # "the" only as a word
        ("a-b", "ab", 1.0),  # ASCII punctuation inside a word goes
        ("café.", "cafe", 0.0),  # accents stay
        ("", "", 0.0),  # an empty prediction scores 0, as in HELM
        ("B", "b", 1.0),
    ],
)
def test_quasi_exact_match_is_helms_normalisation(prediction, target, expected):
    """HELM's quasi_exact_match (QuAC's normalize_text), cases worked by hand."""
    from miragelab.metrics import REGISTRY

    frame = pd.DataFrame({"prediction": [prediction], "target": [target]})
    assert REGISTRY["quasi_exact_match"](frame).tolist() == [expected]


def test_quasi_exact_match_takes_any_reference_and_ignores_the_options():
    from miragelab.metrics import REGISTRY, MetricOptions

    frame = pd.DataFrame(
        {"prediction": ["The Dog", "x", None], "target": ["cat", "y", "z"],
         "references": [["a dog", "cow"], None, ["z"]]}
    )  # fmt: skip
    metric = REGISTRY["quasi_exact_match"]
    assert metric(frame).tolist() == [1.0, 0.0, 0.0]
    assert metric(frame, MetricOptions(case=False, strip=False)).tolist() == [1.0, 0.0, 0.0]


def test_quasi_exact_match_reads_an_arrow_references_column():
    from miragelab.metrics import REGISTRY

    frame = pd.DataFrame(
        {"prediction": ["The Dog", "x"], "target": ["cat", "y"],
         "references": pd.array([["a dog"], None], dtype=pd.ArrowDtype(pa.list_(pa.string())))}
    )  # fmt: skip
    assert REGISTRY["quasi_exact_match"](frame).tolist() == [1.0, 0.0]
