"""The paper's closed-form model: one smooth loss curve, six metrics.

Schaeffer, Miranda & Koyejo (NeurIPS 2023) argue that "emergence" can be made
by the metric alone. Start from a per-token cross-entropy that falls as a
power law in the number of parameters ``N``::

    L_CE(N) = (N / c) ** alpha          alpha < 0
    p(N)    = exp(-L_CE(N))             probability one target token is right

and score an ``L``-token answer with different metrics. Exact match
(``p ** L``) and multiple-choice grade look sudden; token edit distance
(``L * (1 - p)``) and the Brier score change smoothly, although every one of
them is a function of the same smooth ``p``.

Every function is pure numpy. Metric functions take model sizes ``N`` and
answer lengths ``L`` and return their outer product as an ``ndarray`` of
shape ``N.shape + L.shape`` (rows are sizes, columns are lengths), so ``N`` of
shape ``(n,)`` and ``L`` of shape ``(m,)`` give ``(n, m)`` and two scalars give
a 0-d array.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CURVE_COLUMNS",
    "brier_score",
    "cross_entropy",
    "curves",
    "exact_match",
    "multiple_choice_grade",
    "per_token_prob",
    "token_edit_distance",
]

#: columns of the table returned by :func:`curves`, in order
CURVE_COLUMNS = (
    "params",
    "length",
    "cross_entropy",
    "per_token_prob",
    "exact_match",
    "token_edit_distance",
    "multiple_choice_grade",
    "brier_score",
)

FloatArray = NDArray[np.float64]


# --------------------------------------------------------------------------- validation


def _check_law(c: float, alpha: float) -> tuple[float, float]:
    """The scaling law only makes sense for a positive scale and a falling loss."""
    try:
        c_value, alpha_value = float(c), float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"c and alpha must be numbers, got c={c!r}, alpha={alpha!r}") from None
    if not (math.isfinite(c_value) and c_value > 0):
        raise ValueError(f"c must be a finite number > 0 (a parameter count), got {c!r}")
    if not (math.isfinite(alpha_value) and alpha_value < 0):
        raise ValueError(
            f"alpha must be a finite number < 0 (loss falls as models grow), got {alpha!r}"
        )
    return c_value, alpha_value


def _check_sizes(N: ArrayLike) -> FloatArray:
    sizes = np.asarray(N, dtype=float)
    if sizes.size == 0:
        raise ValueError("N must hold at least one model size")
    if not (np.all(np.isfinite(sizes)) and np.all(sizes > 0)):
        bad = sizes[~(np.isfinite(sizes) & (sizes > 0))].flat[0]
        raise ValueError(f"N (model parameters) must be finite and > 0, got {bad!r}")
    return sizes


def _check_lengths(L: ArrayLike) -> FloatArray:
    lengths = np.asarray(L, dtype=float)
    if lengths.size == 0:
        raise ValueError("L must hold at least one answer length")
    if not (np.all(np.isfinite(lengths)) and np.all(lengths > 0)):
        bad = lengths[~(np.isfinite(lengths) & (lengths > 0))].flat[0]
        raise ValueError(f"L (answer length in tokens) must be finite and > 0, got {bad!r}")
    return lengths


def _check_choices(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 2:
        raise ValueError(f"k (number of choices) must be an integer >= 2, got {k!r}")
    return int(k)


def _outer_power(p: FloatArray, lengths: FloatArray) -> FloatArray:
    """``p ** L`` for every (size, length) pair: shape ``p.shape + L.shape``."""
    expanded = p.reshape(p.shape + (1,) * lengths.ndim)
    return np.asarray(np.power(expanded, lengths))


# --------------------------------------------------------------------------- the model


def cross_entropy(N: ArrayLike, c: float, alpha: float) -> FloatArray:
    """Per-token cross-entropy ``L_CE(N) = (N / c) ** alpha``.

    ``alpha < 0`` makes the loss fall as a power law; at ``N = c`` it is 1 nat.

    Raises
    ------
    ValueError
        If ``c <= 0``, ``alpha >= 0`` or any ``N <= 0`` (or a value is not finite).
    """
    c_value, alpha_value = _check_law(c, alpha)
    sizes = _check_sizes(N)
    return np.asarray(np.power(sizes / c_value, alpha_value))


def per_token_prob(N: ArrayLike, c: float, alpha: float) -> FloatArray:
    """Probability that one target token is right, ``p(N) = exp(-L_CE(N))``."""
    return np.asarray(np.exp(-cross_entropy(N, c, alpha)))


def exact_match(N: ArrayLike, c: float, alpha: float, L: ArrayLike) -> FloatArray:
    """Exact-match accuracy of an ``L``-token answer, ``p ** L``.

    All ``L`` tokens must be right, and tokens are taken as independent, so the
    accuracy is a geometric function of ``p``: sharp in ``N`` for long answers.
    """
    p = per_token_prob(N, c, alpha)
    return _outer_power(p, _check_lengths(L))


def token_edit_distance(N: ArrayLike, c: float, alpha: float, L: ArrayLike) -> FloatArray:
    """Expected token edit distance of an ``L``-token answer, ``L * (1 - p)``.

    Each of the ``L`` tokens is wrong with probability ``1 - p`` and costs one
    substitution; the metric is linear in ``p``, hence smooth in ``N``.
    """
    p = per_token_prob(N, c, alpha)
    lengths = _check_lengths(L)
    miss = (1.0 - p).reshape(p.shape + (1,) * lengths.ndim)
    return np.asarray(lengths * miss)


def multiple_choice_grade(N: ArrayLike, c: float, alpha: float, L: ArrayLike, k: int) -> FloatArray:
    """Multiple-choice grade with ``k`` options: a step in ``N``.

    Derivation: the correct option is an ``L``-token answer, so the model gives
    it probability ``q = p ** L``. With no other knowledge the remaining mass
    ``1 - q`` is shared evenly by the ``k - 1`` distractors, each getting
    ``(1 - q) / (k - 1)``. The model picks the correct option (arg-max) iff::

        q > (1 - q) / (k - 1)   <=>   (k - 1) q > 1 - q   <=>   q > 1 / k

    Above the threshold the grade is 1. At or below it the correct option is
    not preferred over the distractors (at ``q = 1/k`` all ``k`` options tie),
    so the model's pick carries no information about the answer and its
    expected grade over a benchmark is chance, ``1 / k``. The grade therefore
    jumps from ``1/k`` to 1 at the size where ``p(N) ** L`` crosses ``1/k``,
    although ``p`` itself moves smoothly.
    """
    choices = _check_choices(k)
    q = exact_match(N, c, alpha, L)
    return np.asarray(np.where(q > 1.0 / choices, 1.0, 1.0 / choices))


def brier_score(N: ArrayLike, c: float, alpha: float, L: ArrayLike) -> FloatArray:
    """Brier score of the correct option, ``(1 - p ** L) ** 2`` (lower is better).

    The squared error of the probability ``p ** L`` given to the right answer:
    the continuous counterpart of the multiple-choice grade. For ``L = 1`` it
    is ``(1 - p) ** 2``.
    """
    q = exact_match(N, c, alpha, L)
    return np.asarray(np.square(1.0 - q))


# --------------------------------------------------------------------------- the table


def curves(
    c: float,
    alpha: float,
    lengths: Sequence[float] | ArrayLike,
    k: int = 4,
    n_min: float = 1e7,
    n_max: float = 1e12,
    points: int = 200,
) -> pd.DataFrame:
    """Every metric on a log-spaced grid of sizes, as one long table.

    One row per (size, length), ordered by length then size so each curve is a
    contiguous block; columns are :data:`CURVE_COLUMNS`. ``cross_entropy`` and
    ``per_token_prob`` do not depend on the length and repeat in each block.
    """
    c_value, alpha_value = _check_law(c, alpha)
    lengths_array = _check_lengths(lengths).ravel()
    choices = _check_choices(k)
    if isinstance(points, bool) or not isinstance(points, int | np.integer) or points < 2:
        raise ValueError(f"points must be an integer >= 2, got {points!r}")
    lo, hi = float(n_min), float(n_max)
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
        raise ValueError(f"need 0 < n_min < n_max (finite), got n_min={n_min!r}, n_max={n_max!r}")

    sizes = np.geomspace(lo, hi, int(points))
    ce = cross_entropy(sizes, c_value, alpha_value)
    p = np.exp(-ce)
    n_sizes, n_lengths = sizes.size, lengths_array.size

    def block(values: FloatArray) -> FloatArray:
        """(sizes, lengths) grid -> length-major column."""
        return np.ascontiguousarray(values.T).ravel()

    integral = bool(np.all(lengths_array == np.round(lengths_array)))
    length_column = lengths_array.astype(np.int64) if integral else lengths_array
    return pd.DataFrame(
        {
            "params": np.tile(sizes, n_lengths),
            "length": np.repeat(length_column, n_sizes),
            "cross_entropy": np.tile(ce, n_lengths),
            "per_token_prob": np.tile(p, n_lengths),
            "exact_match": block(exact_match(sizes, c_value, alpha_value, lengths_array)),
            "token_edit_distance": block(
                token_edit_distance(sizes, c_value, alpha_value, lengths_array)
            ),
            "multiple_choice_grade": block(
                multiple_choice_grade(sizes, c_value, alpha_value, lengths_array, choices)
            ),
            "brier_score": block(brier_score(sizes, c_value, alpha_value, lengths_array)),
        },
        columns=list(CURVE_COLUMNS),
    )
