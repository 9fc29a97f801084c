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
    answer_lengths,
    decode_tokens,
    encode_examples,
    encode_text,
    get_task,
    heldout_pairs,
    is_test_pair,
    pair_index,
    sample_train_pairs,
    task_parts,
)


@pytest.mark.parametrize("name", sorted(n for n, t in TASKS.items() if not t.tail))
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


def test_last_digits_mix_is_python_arithmetic_at_every_length():
    task = get_task("addlast5")
    rng = np.random.default_rng(7)
    a, b = sample_train_pairs(task, 2000, rng, seed=0)
    lengths = answer_lengths(task, 2000, rng)
    assert sorted(set(lengths.tolist())) == [1, 2, 3, 4, 5]
    assert a.min() >= 0 and b.max() <= 99_999 and (a < 10_000).any()  # zero-padded operands
    tokens, n = encode_examples(task, a, b, lengths)
    assert tokens.shape == (2000, task.seq_len) and task.seq_len == 14 + 5 + 1
    for row, x, y, k in zip(tokens.tolist(), a.tolist(), b.tolist(), lengths.tolist(), strict=True):
        text = "".join(VOCAB[i] for i in row[: task.prompt_len])
        assert text == f"{k}:{str(x).zfill(5)}+{str(y).zfill(5)}="
        answer = decode_tokens(row[task.prompt_len :])
        assert answer == str(x + y)[-k:].zfill(k)  # the last k digits, as text
        assert answer == task.answer(x, y, k) and len(answer) == k
        tail = row[task.prompt_len + k :]
        assert tail[0] == EOS_ID and set(tail[1:]) <= {PAD_ID}
    assert n.tolist() == lengths.tolist()
    with pytest.raises(ValueError, match="answer lengths"):
        encode_examples(task, a, b)  # the mix needs the length asked
    with pytest.raises(ValueError, match="natural length"):
        encode_examples(get_task("add4"), a[:3] % 9000 + 1000, b[:3] % 9000 + 1000, lengths[:3])


def test_last_digits_mix_holds_out_pairs_and_names_its_lengths():
    task = get_task("addlast5")
    a, b = heldout_pairs(task, 2000, seed=0)
    assert len(set(zip(a.tolist(), b.tolist(), strict=True))) == 2000
    assert is_test_pair(task, pair_index(task, a, b), seed=0).all()
    ta, tb = sample_train_pairs(task, 100_000, np.random.default_rng(2), seed=0)
    test = set(zip(a.tolist(), b.tolist(), strict=True))
    assert not set(zip(ta.tolist(), tb.tolist(), strict=True)) & test
    # a split of its own: not add5's (whose operands start at 10000)
    assert not np.array_equal(heldout_pairs(get_task("add5"), 5, seed=0)[0], a[:5])
    parts = task_parts()
    assert [name for name in parts if name.startswith("addlast5")] == [
        f"addlast5-len{n}" for n in range(1, 6)
    ]
    assert parts["addlast5-len3"] == (task, 3) and parts["add4"] == (get_task("add4"), None)
    assert task.prompt(12, 345, 2) == "2:00012+00345=" and task.part(2) == "addlast5-len2"
    with pytest.raises(ValueError, match="asks for L"):
        task.answer(1, 2, 6)
