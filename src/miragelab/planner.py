"""Resolution planner: how many test examples tell an accuracy from chance.

The paper's second prediction: "zero accuracy at small scale" is often a
resolution artefact. A model with true accuracy ``1e-3`` answers nothing
right on a few hundred examples; only a test set large enough to catch its
rare successes shows that the curve was rising all along.

Two questions, one definition. A model with true accuracy ``p`` is
*distinguishable* from a chance level ``p0`` on ``n`` examples when a
one-sided exact binomial test of ``H0: accuracy = p0`` at level
``1 - confidence`` rejects with probability (power) at least ``power``
(default: ``confidence``). With ``k_n`` the smallest count whose upper tail
under ``p0`` is at most ``1 - confidence``, the power is
``P(X >= k_n | X ~ Binomial(n, p))``.

* Chance 0: any success rejects (``k_n = 1``), so the power is
  ``1 - (1 - p) ** n``, the probability of at least one correct answer, and
  the smallest ``n`` is ``ceil(log(1 - confidence) / log(1 - p))``:
  2995 examples for ``p = 1e-3`` at 95 %, 5 for ``p = 0.5``.
* Chance > 0: the power of a discrete test is not monotone in ``n`` (it
  saw-tooths as ``k_n`` steps up), so a slightly larger test set can have
  slightly less power. :func:`examples_needed` returns the smallest ``n``
  whose power reaches the target; a few sizes just above it may fall short
  of the target by a little.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize
from scipy import stats as sps

__all__ = ["detection_power", "examples_needed", "resolvable_accuracy"]

#: the largest test set a plan may ask for (beyond it the question has no answer)
MAX_EXAMPLES = 10**15
#: test-set sizes scanned in one vectorised call
_CHUNK = 1 << 20
#: above this many examples the size is bisected rather than scanned
_BISECT = 64 * _CHUNK


def _check_probability(name: str, value: float, low_open: bool = True) -> float:
    v = float(value)
    ok = (0.0 < v if low_open else 0.0 <= v) and v < 1.0
    if not (math.isfinite(v) and ok):
        bounds = "(0, 1)" if low_open else "[0, 1)"
        raise ValueError(f"{name} must lie in {bounds}, got {value!r}")
    return v


def detection_power(
    n: ArrayLike, accuracy: float, confidence: float = 0.95, chance: float = 0.0
) -> np.ndarray:
    """Power of the one-sided exact binomial test of ``chance`` on ``n`` examples.

    ``P(X >= k_n)`` for ``X ~ Binomial(n, accuracy)``, where ``k_n - 1`` is
    ``binom.isf(1 - confidence, n, chance)`` (scipy's smallest count whose
    strict upper tail is at most the level). Vectorised over ``n``.
    """
    sizes = np.asarray(n, dtype=float)
    level = 1.0 - confidence
    critical = sps.binom.isf(level, sizes, chance)  # reject when X > critical
    return np.asarray(sps.binom.sf(critical, sizes, accuracy))


def _normal_size(accuracy: float, chance: float, confidence: float, power: float) -> float:
    """Normal-approximation sample size for a one-sided test of a proportion (a float:
    it may be astronomically large)."""
    z_a = sps.norm.isf(1.0 - confidence)
    z_b = sps.norm.isf(1.0 - power)
    spread = z_a * math.sqrt(chance * (1 - chance)) + z_b * math.sqrt(accuracy * (1 - accuracy))
    with np.errstate(over="ignore"):
        return float(np.float64(spread / (accuracy - chance)) ** 2)


def _normal_start(accuracy: float, chance: float, confidence: float, power: float) -> int:
    return max(1, math.ceil(_normal_size(accuracy, chance, confidence, power)))


def _check_size(size: float, accuracy: float, chance: float) -> None:
    """Refuse a question no test set can answer, rather than search for ever."""
    if not size <= MAX_EXAMPLES:
        raise ValueError(
            f"telling accuracy {accuracy:g} from chance {chance:g} needs more than "
            f"{MAX_EXAMPLES:.0e} examples; no test set resolves it"
        )


def examples_needed(
    accuracy: float,
    confidence: float = 0.95,
    chance: float = 0.0,
    power: float | None = None,
) -> int:
    """Smallest test-set size on which ``accuracy`` is distinguishable from ``chance``.

    See the module docstring for the test. With ``chance == 0`` this is
    ``ceil(log(1 - confidence) / log(1 - accuracy))`` (checked exactly, so
    rounding cannot cost or gain an example). With ``chance > 0`` the exact
    binomial power is scanned upward, vectorised, from 1 (or, for very large
    sizes, from half of a size already known to suffice) and the first size
    whose power reaches ``power`` (default ``confidence``) is returned.

    Raises
    ------
    ValueError
        Unless ``0 <= chance < accuracy <= 1`` and confidence, power lie in (0, 1).
    """
    conf = _check_probability("confidence", confidence)
    target = conf if power is None else _check_probability("power", power)
    p0 = _check_probability("chance", chance, low_open=False)
    p = float(accuracy)
    if not (math.isfinite(p) and p0 < p <= 1.0):
        raise ValueError(f"accuracy must lie in (chance, 1] = ({p0:g}, 1], got {accuracy!r}")
    if p0 == 0.0:
        if p == 1.0:
            return 1
        log_miss = math.log1p(-p)
        _check_size(math.log1p(-target) / log_miss, p, p0)
        n = max(1, math.ceil(math.log1p(-target) / log_miss))
        # guard the ceiling against rounding in the logarithms
        while -math.expm1(n * log_miss) < target:
            n += 1
        while n > 1 and -math.expm1((n - 1) * log_miss) >= target:
            n -= 1
        return n

    _check_size(_normal_size(p, p0, conf, target), p, p0)
    start = _normal_start(p, p0, conf, target)
    high = start
    while detection_power(high, p, conf, p0) < target:
        high *= 2
        _check_size(high / 2, p, p0)
    low = 1 if high <= _CHUNK else high // 2
    # above a scan's worth of sizes, bisect: the power's sawtooth in n (a few examples
    # wide) is far below what a test set that large resolves, and a scan of millions of
    # exact binomial tails would take minutes
    if high > _BISECT:
        while high - low > 1:
            mid = (low + high) // 2
            if detection_power(mid, p, conf, p0) >= target:
                high = mid
            else:
                low = mid
        return int(high)
    for first in range(low, high + 1, _CHUNK):
        sizes = np.arange(first, min(high, first + _CHUNK - 1) + 1)
        hits = np.flatnonzero(detection_power(sizes, p, conf, p0) >= target)
        if hits.size:
            return int(sizes[hits[0]])
    return int(high)


def resolvable_accuracy(
    n: int, confidence: float = 0.95, chance: float = 0.0, power: float | None = None
) -> float:
    """Smallest true accuracy that ``n`` examples tell from ``chance`` (inverse planner).

    With ``chance == 0``: ``1 - (1 - confidence) ** (1 / n)``, the accuracy at
    which at least one success shows up with probability ``confidence``. With
    ``chance > 0``: the accuracy at which the exact test of the module
    docstring reaches ``power`` (default ``confidence``), found by root
    finding (the power rises with the accuracy at fixed ``n``); NaN when even
    a perfect model could not reject on ``n`` examples.
    """
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    conf = _check_probability("confidence", confidence)
    target = conf if power is None else _check_probability("power", power)
    p0 = _check_probability("chance", chance, low_open=False)
    if p0 == 0.0:
        return float(-math.expm1(math.log1p(-target) / n))
    if detection_power(n, 1.0, conf, p0) < target:
        return float("nan")
    return float(
        optimize.brentq(
            lambda a: float(detection_power(n, a, conf, p0)) - target, p0, 1.0, xtol=1e-12
        )
    )
