"""Induction-head metrics on hand-built arrays, and the training loop on tiny settings."""

from __future__ import annotations

import numpy as np
import pytest

from miragelab.tables import SCORES, validate_frame
from miragelab.transitions.induction import (
    InductionConfig,
    checkpoint_steps,
    icl_score,
    make_sequences,
    prefix_matching_scores,
    repeat_mask,
    split_losses,
)


def test_sequences_repeat_one_segment_at_random_places():
    cfg = InductionConfig(vocab=16, seq_len=32, seg_len=6)
    tokens, s1, s2 = make_sequences(np.random.default_rng(0), 200, cfg)
    assert tokens.shape == (200, 32) and tokens.min() >= 0 and tokens.max() < 16
    assert np.all(s1 >= 0) and np.all(s1 + 6 <= 16)
    assert np.all(s2 >= s1 + 6) and np.all(s2 + 6 <= 32)
    for row, a, b in zip(tokens, s1, s2, strict=True):
        assert np.array_equal(row[a : a + 6], row[b : b + 6])
    assert len(np.unique(s2 - s1)) > 5  # the offset varies: no positional shortcut


def test_repeat_mask_marks_the_copied_targets():
    mask = repeat_mask(np.array([5]), seg_len=4, seq_len=12)
    # copy occupies tokens 5..8; tokens 6, 7, 8 are predictable, i.e. targets j = 5, 6, 7
    assert mask.shape == (1, 11)
    assert np.flatnonzero(mask[0]).tolist() == [5, 6, 7]


def test_split_losses_and_icl_score():
    losses = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    mask = np.array([[False, True, False, False], [False, False, False, True]])
    rep, non = split_losses(losses, mask)
    assert rep == pytest.approx((2.0 + 8.0) / 2)
    assert non == pytest.approx((1 + 3 + 4 + 5 + 6 + 7) / 6)
    # window 1: late = last column mean (4 + 8) / 2 = 6; early = column 1 mean (2 + 6) / 2 = 4
    assert icl_score(losses, 1) == pytest.approx(2.0)


def test_prefix_matching_scores_on_hand_built_attention():
    n, heads, t, seg = 3, 2, 10, 3
    s1, s2 = np.array([0, 1, 0]), np.array([4, 5, 6])
    attn = np.zeros((n, heads, t, t))
    causal = np.tril(np.ones((t, t)))
    attn[:, 0] = causal / causal.sum(axis=1, keepdims=True)  # head 0: uniform
    for i in range(n):
        for k in range(seg - 1):
            attn[i, 1, s2[i] + k, s1[i] + k + 1] = 1.0  # head 1: a perfect induction head
    scores = prefix_matching_scores(attn, s1, s2, seg)
    expected_uniform = np.mean([1.0 / (s2[i] + k + 1) for i in range(n) for k in range(seg - 1)])
    assert scores[0] == pytest.approx(expected_uniform)
    assert scores[1] == pytest.approx(1.0)


def test_checkpoint_steps_are_log_spaced_and_distinct():
    steps = checkpoint_steps(InductionConfig(steps=1000, n_checkpoints=20, first_checkpoint=10))
    assert steps[0] == 10 and steps[-1] == 1000
    assert np.all(np.diff(steps) > 0)
    ratios = steps[1:] / steps[:-1]
    assert ratios.max() < 1.5  # 100-fold over 19 gaps: about 1.27 each


def test_tiny_training_is_deterministic_and_valid():
    from miragelab.transitions.induction import run_to_scores, train_induction

    cfg = InductionConfig(
        vocab=8, seq_len=16, seg_len=4, d_model=16, n_heads=2, steps=30,
        n_checkpoints=5, first_checkpoint=2, eval_sequences=16, icl_window=2,
    )  # fmt: skip
    a, b = train_induction(cfg), train_induction(cfg)
    assert a.checkpoints["step"].tolist() == checkpoint_steps(cfg).tolist()
    cols = ["loss_repeated", "loss_nonrepeated", "prefix_matching"]
    assert np.array_equal(a.checkpoints[cols].to_numpy(), b.checkpoints[cols].to_numpy())
    # an untrained model is near uniform: loss ~ log(vocab)
    assert a.checkpoints["loss_nonrepeated"].iloc[0] == pytest.approx(np.log(8), abs=0.2)
    scores = run_to_scores(a)
    validate_frame(scores, SCORES)
    assert len(scores) == 4 * len(a.checkpoints)


@pytest.mark.slow
def test_quick_run_shows_the_induction_transition():
    from miragelab.transitions.apply import induction_transitions
    from miragelab.transitions.induction import train_induction

    run = train_induction(InductionConfig.quick())
    found = induction_transitions(run.checkpoints, n_boot=199)
    loss = found.results["loss_repeated"]
    assert loss.detected and loss.jump < 0
    assert found.rise_in_span
    last = run.checkpoints.iloc[-1]
    # copying works on the repeat (well below log 32 = 3.47), not on the noise
    assert last["loss_repeated"] < 2.0 < last["loss_nonrepeated"]
    assert last["prefix_matching"] > 0.3
