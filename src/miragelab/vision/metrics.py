"""Smooth and sharp metrics of the same vision outputs (pure numpy).

Reconstruction (autoencoders), per image ``n`` with ``D`` values::

    squared_error_n = ||x_n - xhat_n||^2 = sum_d (x_nd - xhat_nd)^2
    mse_n           = squared_error_n / D                       (smooth)
    Reconstruction_c = mean_n 1[squared_error_n < c]            (sharp)

``c`` is a threshold on the *summed* squared error of one image (the paper's
definition), so its scale depends on ``D`` and on the pixel range ([0, 1]
here).

Classification, per image: ``correct_n = 1[prediction_n == label_n]`` and
the per-image accuracy ``mean_n correct_n`` (smooth). The sharp metric is the
paper's *subset accuracy*: the test images are grouped into sequences of
``K`` images and a sequence counts only when **all** ``K`` of its images are
classified correctly.

How sequences are formed (:func:`make_sequences`): each of ``n_sequences``
sequences is ``K`` distinct test images drawn uniformly at random, without
replacement within a sequence, independently across sequences, from
``numpy.random.default_rng(seed)``. The same sequences (same seed) are used
for every model and every training seed of a ladder, so differences between
models are not differences between draws. The expectation over such draws is
``C(m, K) / C(n, K)`` for ``m`` correct images out of ``n``
(:func:`subset_accuracy_exact`), close to ``accuracy ** K``.
"""

from __future__ import annotations

from math import comb

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "make_sequences",
    "per_image_correct",
    "per_image_mse",
    "reconstruction_c",
    "squared_errors",
    "subset_accuracy",
    "subset_accuracy_exact",
]


def _pair(x: ArrayLike, xhat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    a = np.asarray(x, dtype=float)
    b = np.asarray(xhat, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"x has shape {a.shape} but xhat has shape {b.shape}")
    if a.ndim < 1 or a.shape[0] == 0:
        raise ValueError("need at least one image")
    return a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)


def squared_errors(x: ArrayLike, xhat: ArrayLike) -> NDArray[np.float64]:
    """``||x_n - xhat_n||^2`` per image (first axis = images, the rest flattened)."""
    a, b = _pair(x, xhat)
    return np.square(a - b).sum(axis=1)


def per_image_mse(x: ArrayLike, xhat: ArrayLike) -> NDArray[np.float64]:
    """Mean squared error per image: ``||x_n - xhat_n||^2 / D``."""
    a, b = _pair(x, xhat)
    return np.square(a - b).mean(axis=1)


def reconstruction_c(x: ArrayLike, xhat: ArrayLike, c: float) -> float:
    """``mean_n 1[||x_n - xhat_n||^2 < c]``: share of images reconstructed within ``c``."""
    if not c > 0:
        raise ValueError(f"threshold c must be > 0, got {c}")
    return float(np.mean(squared_errors(x, xhat) < c))


def per_image_correct(predictions: ArrayLike, labels: ArrayLike) -> NDArray[np.bool_]:
    """``prediction_n == label_n`` per image; its mean is the per-image accuracy."""
    p = np.asarray(predictions)
    y = np.asarray(labels)
    if p.shape != y.shape or p.ndim != 1:
        raise ValueError(f"predictions {p.shape} and labels {y.shape} must be equal 1-d shapes")
    return p == y


def make_sequences(n_items: int, k: int, n_sequences: int, seed: int = 0) -> NDArray[np.int64]:
    """``(n_sequences, k)`` indices: each row ``k`` distinct items drawn uniformly at random.

    Rows are independent; within a row the items are distinct (drawn without
    replacement). Deterministic in ``seed``.
    """
    if not 1 <= k <= n_items:
        raise ValueError(f"need 1 <= k <= n_items, got k={k}, n_items={n_items}")
    if n_sequences < 1:
        raise ValueError(f"need n_sequences >= 1, got {n_sequences}")
    rng = np.random.default_rng(seed)
    out = np.empty((n_sequences, k), dtype=np.int64)
    chunk = max(1, 2_000_000 // n_items)  # bound memory of the random keys
    for start in range(0, n_sequences, chunk):
        stop = min(start + chunk, n_sequences)
        keys = rng.random((stop - start, n_items))
        # the k smallest of i.i.d. uniform keys: a uniform k-subset, in random order
        part = np.argpartition(keys, k - 1, axis=1)[:, :k] if k < n_items else np.argsort(keys, 1)
        out[start:stop] = part
    return out


def subset_accuracy(correct: ArrayLike, sequences: ArrayLike) -> float:
    """Share of sequences (rows of item indices) whose items are all correct."""
    c = np.asarray(correct, dtype=bool)
    s = np.asarray(sequences, dtype=np.int64)
    if c.ndim != 1:
        raise ValueError(f"correct must be 1-d, got shape {c.shape}")
    if s.ndim != 2 or s.shape[0] == 0 or s.shape[1] == 0:
        raise ValueError(f"sequences must be a non-empty 2-d index array, got shape {s.shape}")
    if s.min() < 0 or s.max() >= c.size:
        raise ValueError(f"sequence indices must lie in 0..{c.size - 1}")
    return float(np.mean(c[s].all(axis=1)))


def subset_accuracy_exact(correct: ArrayLike, k: int) -> float:
    """Expected subset accuracy over uniform ``k``-subsets: ``C(m, k) / C(n, k)``."""
    c = np.asarray(correct, dtype=bool)
    n, m = int(c.size), int(c.sum())
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= {n}, got {k}")
    return comb(m, k) / comb(n, k)
