"""The resolution planner against closed forms and brute-force binomial enumeration."""

from __future__ import annotations

import math

import pytest

from miragelab.planner import detection_power, examples_needed, resolvable_accuracy


def test_chance_zero_hand_values():
    assert examples_needed(1e-3, 0.95) == 2995
    assert 1 - 0.999**2995 >= 0.95 > 1 - 0.999**2994
    assert examples_needed(0.5, 0.95) == 5
    assert 1 - 0.5**5 >= 0.95 > 1 - 0.5**4
    assert examples_needed(0.01, 0.99) == math.ceil(math.log(0.01) / math.log(0.99))
    assert examples_needed(1.0) == 1


def test_resolvable_accuracy_inverts_the_planner():
    for n in (1, 5, 100, 2995):
        a = resolvable_accuracy(n, 0.95)
        assert a == pytest.approx(1 - 0.05 ** (1 / n), rel=1e-12)
        assert examples_needed(a * (1 + 1e-9), 0.95) == n
    assert resolvable_accuracy(2995) < 1e-3 < resolvable_accuracy(2994)


def _brute_force(accuracy: float, chance: float, confidence: float) -> int:
    """Smallest n whose one-sided exact test rejects ``chance`` with power >= confidence."""
    level = 1 - confidence
    for n in range(1, 2000):
        tail = 0.0
        critical = n + 1  # reject when X >= critical; n + 1 means never
        for k in range(n, -1, -1):
            tail += math.comb(n, k) * chance**k * (1 - chance) ** (n - k)
            if tail > level:
                break
            critical = k
        power = sum(
            math.comb(n, k) * accuracy**k * (1 - accuracy) ** (n - k)
            for k in range(critical, n + 1)
        )
        if power >= confidence:
            return n
    raise AssertionError("not found")


@pytest.mark.parametrize(
    ("accuracy", "chance", "confidence"),
    [(0.9, 0.5, 0.9), (0.5, 0.25, 0.95), (0.6, 0.5, 0.8), (1.0, 0.5, 0.95)],
)
def test_chance_above_zero_matches_enumeration(accuracy, chance, confidence):
    assert examples_needed(accuracy, confidence, chance) == _brute_force(
        accuracy, chance, confidence
    )


def test_power_at_chance_zero_is_at_least_one_success():
    assert float(detection_power(7, 0.2, 0.95, 0.0)) == pytest.approx(1 - 0.8**7)


def test_resolvable_accuracy_above_chance_reaches_the_power():
    a = resolvable_accuracy(50, 0.95, chance=0.25)
    assert 0.25 < a < 1
    assert float(detection_power(50, a, 0.95, 0.25)) == pytest.approx(0.95, abs=1e-6)
    # one example cannot reject chance 0.5 at level 0.05, whatever the accuracy
    assert math.isnan(resolvable_accuracy(1, 0.95, chance=0.5))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"accuracy": 0.0},
        {"accuracy": 0.2, "chance": 0.25},
        {"accuracy": 0.5, "confidence": 1.0},
        {"accuracy": 1.5},
        {"accuracy": math.nan},
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        examples_needed(**kwargs)
