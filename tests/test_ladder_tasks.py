"""Arithmetic generators: answers, encoding and the train/test split."""

from __future__ import annotations

import numpy as np
import pytest

from miragelab.errors import InputError
from miragelab.ladder.tasks import (
    EOS_ID,
    PAD_ID,
    TASKS,
    VOCAB,
    decode_tokens,
    encode_examples,
    encode_text,
    get_task,
    heldout_pairs,
    is_test_pair,
    pair_index,
    sample_train_pairs,
)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_encoded_examples_are_python_arithmetic(name):
    task = get_task(name)
    rng = np.random.default_rng(5)
    a, b = sample_train_pairs(task, 500, rng, seed=0)
    assert a.min() >= task.low and b.max() <= task.high
    tokens, lengths = encode_examples(task, a, b)
    assert tokens.shape == (500, task.seq_len)
    for row, x, y, n in zip(tokens.tolist(), a.tolist(), b.tolist(), lengths.tolist(), strict=True):
        text = "".join(VOCAB[i] for i in row[: task.prompt_len])
        assert text == f"{x}{'+' if task.op == '+' else '*'}{y}="
        answer = decode_tokens(row[task.prompt_len :])
        expected = x + y if task.op == "+" else x * y
        assert answer == str(expected) and n == len(str(expected))
        tail = row[task.prompt_len + n :]
        assert tail[0] == EOS_ID and set(tail[1:]) <= {PAD_ID}


def test_operand_widths_are_fixed():
    assert (get_task("add1").low, get_task("add1").high) == (0, 9)
    add4 = get_task("add4")
    assert (add4.low, add4.high, add4.prompt_len, add4.max_answer_len) == (1000, 9999, 10, 5)
    mul2 = get_task("mul2")
    assert (mul2.max_answer_len, mul2.seq_len) == (4, 11)  # 99*99 = 9801


def test_small_split_has_no_overlap_and_train_never_draws_a_test_pair():
    task = get_task("add2")
    a, b = heldout_pairs(task, 10**9, seed=3)  # all test pairs
    test = set(zip(a.tolist(), b.tolist(), strict=True))
    assert len(test) == len(a)  # distinct
    assert 0.07 * task.n_pairs < len(test) < 0.13 * task.n_pairs
    ta, tb = sample_train_pairs(task, 300_000, np.random.default_rng(0), seed=3)
    train = set(zip(ta.tolist(), tb.tolist(), strict=True))
    assert not train & test
    # the train draws cover the rest of the space
    assert len(train) + len(test) == task.n_pairs


def test_large_split_has_no_overlap():
    task = get_task("add4")
    a, b = heldout_pairs(task, 3000, seed=0)
    test = set(zip(a.tolist(), b.tolist(), strict=True))
    assert len(test) == 3000
    assert is_test_pair(task, pair_index(task, a, b), seed=0).all()
    ta, tb = sample_train_pairs(task, 200_000, np.random.default_rng(1), seed=0)
    assert not set(zip(ta.tolist(), tb.tolist(), strict=True)) & test
    # a different seed gives a different split
    assert not is_test_pair(task, pair_index(task, a, b), seed=1).all()


def test_test_set_is_deterministic_and_nested():
    task = get_task("add3")
    a1, b1 = heldout_pairs(task, 50, seed=0)
    a2, b2 = heldout_pairs(task, 200, seed=0)
    assert np.array_equal(a1, a2[:50]) and np.array_equal(b1, b2[:50])


def test_text_round_trip_and_unknown_names():
    assert decode_tokens(encode_text("12+34=46")) == "12+34=46"
    with pytest.raises(InputError, match="vocabulary"):
        encode_text("1-2")
    with pytest.raises(InputError, match="unknown task"):
        get_task("sub2")
