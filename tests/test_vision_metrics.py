"""Vision metrics on hand-worked arrays (numbers worked out by hand in the comments)."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from miragelab.vision.metrics import (
    make_sequences,
    per_image_correct,
    per_image_mse,
    reconstruction_c,
    squared_errors,
    subset_accuracy,
    subset_accuracy_exact,
)

# three "images" of two values each
X = np.array([[0.0, 0.0], [1.0, 1.0], [0.5, 0.0]])
XHAT = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
# squared errors: 0, 1^2 = 1, 0.5^2 = 0.25; per-value MSE: 0, 0.5, 0.125


def test_squared_errors_and_mse_by_hand():
    assert squared_errors(X, XHAT).tolist() == [0.0, 1.0, 0.25]
    assert per_image_mse(X, XHAT).tolist() == [0.0, 0.5, 0.125]


def test_images_with_more_axes_are_flattened():
    x = np.zeros((2, 2, 2))
    xhat = np.zeros((2, 2, 2))
    xhat[1, 0, 1] = 0.5
    xhat[1, 1, 0] = -0.5
    # image 1: 0.25 + 0.25 over 4 values
    assert squared_errors(x, xhat).tolist() == [0.0, 0.5]
    assert per_image_mse(x, xhat).tolist() == [0.0, 0.125]


@pytest.mark.parametrize(
    ("c", "expected"),
    [
        (0.5, 2 / 3),  # 0 and 0.25 are below 0.5
        (0.25, 1 / 3),  # strict: 0.25 is not below 0.25
        (1.0, 2 / 3),  # strict: 1 is not below 1
        (1.0001, 1.0),
        (1e-9, 1 / 3),  # only the perfect reconstruction
    ],
)
def test_reconstruction_c_by_hand(c, expected):
    assert reconstruction_c(X, XHAT, c) == pytest.approx(expected, abs=1e-15)


def test_reconstruction_c_rejects_bad_input():
    with pytest.raises(ValueError, match="c must be > 0"):
        reconstruction_c(X, XHAT, 0.0)
    with pytest.raises(ValueError, match="shape"):
        reconstruction_c(X, XHAT[:2], 1.0)


def test_per_image_correct():
    assert per_image_correct([3, 1, 4, 1], [3, 1, 5, 9]).tolist() == [True, True, False, False]


def test_subset_accuracy_on_given_sequences():
    correct = np.array([1, 1, 0, 1, 1], dtype=bool)
    pairs = [[0, 1], [1, 2], [3, 4], [0, 4]]  # all correct, has item 2, all, all
    assert subset_accuracy(correct, pairs) == 0.75
    triples = [[0, 1, 3], [2, 3, 4]]  # all correct; contains the wrong item 2
    assert subset_accuracy(correct, triples) == 0.5
    singles = [[0], [1], [2], [3], [4]]  # K = 1 over every item once: per-image accuracy
    assert subset_accuracy(correct, singles) == 0.8


def test_subset_accuracy_rejects_bad_indices():
    with pytest.raises(ValueError, match="indices"):
        subset_accuracy([True, False], [[0, 2]])


def test_subset_accuracy_exact_by_hand():
    correct = [True, True, True, True, False]
    assert subset_accuracy_exact(correct, 1) == 0.8
    assert subset_accuracy_exact(correct, 2) == 6 / 10  # C(4,2) / C(5,2)
    assert subset_accuracy_exact(correct, 5) == 0.0
    assert subset_accuracy_exact([True] * 3, 3) == 1.0


def test_sequences_are_distinct_items_and_deterministic():
    seqs = make_sequences(30, 7, 500, seed=3)
    assert seqs.shape == (500, 7)
    assert seqs.min() >= 0 and seqs.max() < 30
    assert all(len(set(row)) == 7 for row in seqs.tolist())
    assert np.array_equal(seqs, make_sequences(30, 7, 500, seed=3))
    assert not np.array_equal(seqs, make_sequences(30, 7, 500, seed=4))
    full = make_sequences(5, 5, 10, seed=0)  # K = n: every row a permutation
    assert all(sorted(row) == [0, 1, 2, 3, 4] for row in full.tolist())


def test_random_sequences_match_the_exact_expectation():
    # 15 of 20 correct, K = 3: C(15,3)/C(20,3) = 455/1140 = 0.3991...
    correct = np.arange(20) < 15
    n_seq = 20_000
    estimate = subset_accuracy(correct, make_sequences(20, 3, n_seq, seed=0))
    exact = comb(15, 3) / comb(20, 3)
    assert exact == pytest.approx(455 / 1140)
    sigma = np.sqrt(exact * (1 - exact) / n_seq)
    assert abs(estimate - exact) < 4 * sigma
    # every item is drawn about equally often: K / n = 0.15 of the sequences
    counts = np.bincount(make_sequences(20, 3, n_seq, seed=1).ravel(), minlength=20) / n_seq
    assert np.all(np.abs(counts - 0.15) < 4 * np.sqrt(0.15 * 0.85 / n_seq))


def test_subset_accuracy_is_sharp_where_accuracy_is_smooth():
    # per-image accuracy rising linearly 0.5 -> 0.95; subset accuracy at K = 20
    # stays near 0 until the top: 0.5**20 ~ 1e-6, 0.95**20 ~ 0.36
    values = [subset_accuracy_exact(np.arange(100) < m, 20) for m in (50, 65, 80, 95)]
    assert values[0] < 1e-6 and values[1] < 1e-3 and values[2] < 0.02
    assert 0.3 < values[3] < 0.4
