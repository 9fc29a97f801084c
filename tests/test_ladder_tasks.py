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
    heldout_part,
    is_test_pair,
    operand_digits,
    pair_index,
    sample_train_pairs,
    task_parts,
)


@pytest.mark.parametrize("name", sorted(n for n, t in TASKS.items() if not t.mix))
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
    # a spare row of a model's embedding (16 rows, 15 tokens) decodes, as a wrong answer
    assert decode_tokens([*encode_text("12"), len(VOCAB), EOS_ID, 3]) == "12\ufffd"
    with pytest.raises(InputError, match="vocabulary"):
        encode_text("1-2")
    with pytest.raises(InputError, match="unknown task"):
        get_task("sub2")


def test_the_addition_mix_is_python_arithmetic_left_padded():
    task = get_task("addmix")
    rng = np.random.default_rng(7)
    a, b = sample_train_pairs(task, 3000, rng, seed=0)
    parts = operand_digits(a)
    assert (parts == operand_digits(b)).all()  # both operands of one part's width
    assert sorted(set(parts.tolist())) == [1, 2, 3, 4, 5]
    assert all(500 < (parts == n).sum() < 700 for n in range(1, 6))  # each part about 1/5
    tokens, lengths = encode_examples(task, a, b)
    assert tokens.shape == (3000, task.seq_len) and task.seq_len == 12 + 6 + 1
    for row, x, y, n in zip(tokens.tolist(), a.tolist(), b.tolist(), lengths.tolist(), strict=True):
        prompt = row[: task.prompt_len]
        text = f"{x}+{y}="
        assert set(prompt[: task.prompt_len - len(text)]) <= {PAD_ID}  # padded on the left
        assert "".join(VOCAB[i] for i in prompt[task.prompt_len - len(text) :]) == text
        answer = decode_tokens(row[task.prompt_len :])
        assert answer == str(x + y) and n == len(answer)
        tail = row[task.prompt_len + n :]
        assert tail[0] == EOS_ID and set(tail[1:]) <= {PAD_ID}
    assert operand_digits(np.array([0, 9, 10, 99_999, 100_000])).tolist() == [1, 1, 2, 5, 6]


def test_the_mix_holds_out_each_parts_pairs_and_names_its_parts():
    task = get_task("addmix")
    trained = sample_train_pairs(task, 200_000, np.random.default_rng(2), seed=0)
    seen = set(zip(*(v.tolist() for v in trained), strict=True))
    for n in task.mix:
        a, b = heldout_part(task, n, 3000, seed=0)
        sub = get_task(f"add{n}")
        assert (a + b < 10**n).all() and (operand_digits(a) == n).all()  # L-digit sums
        assert is_test_pair(sub, pair_index(sub, a, b), 0, sub.test_fraction()).all()
        assert not seen & set(zip(a.tolist(), b.tolist(), strict=True))  # never trained on
        if n >= 3:
            assert len(a) == 3000
    # add1 holds out half of its 100 pairs; those summing to one digit are all there is
    a1, b1 = heldout_part(task, 1, 3000, seed=0)
    assert get_task("add1").test_fraction() == 0.5 and 15 < len(a1) < 40
    assert np.array_equal(heldout_part(task, 4, 50, 0)[0], heldout_part(task, 4, 3000, 0)[0][:50])
    parts = task_parts()
    assert [name for name in parts if name.startswith("addmix")] == [
        f"addmix-len{n}" for n in range(1, 6)
    ]
    assert parts["addmix-len3"] == (task, 3) and parts["add4"] == (get_task("add4"), None)
    assert task.part(2) == "addmix-len2" and task.part_task(2) == get_task("add2")
    with pytest.raises(ValueError, match="parts"):
        task.part_task(6)
