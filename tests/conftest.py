"""Shared fixtures: small tables whose values follow from closed forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from miragelab import theory
from miragelab.tables import SCORES, validate_frame

SIZES = np.geomspace(1e7, 1e11, 10)
C, ALPHA, LENGTH = 1e9, -0.5, 8


def make_theory_scores() -> pd.DataFrame:
    """One family, one task: exact match (sharp) and token edit distance (smooth)."""
    em = theory.exact_match(SIZES, C, ALPHA, LENGTH)
    ted = theory.token_edit_distance(SIZES, C, ALPHA, LENGTH)
    ce = theory.cross_entropy(SIZES, C, ALPHA)
    rows = []
    for i, size in enumerate(SIZES):
        for metric, value, higher in (
            ("exact_match", em[i], True),
            ("token_edit_distance", ted[i], False),
            ("cross_entropy", ce[i], False),
        ):
            rows.append(
                {
                    "task": "add",
                    "family": "law",
                    "model": f"m{i}",
                    "params": size,
                    "metric": metric,
                    "value": float(value),
                    "higher_is_better": higher,
                }
            )
    return validate_frame(pd.DataFrame(rows), SCORES)


@pytest.fixture()
def theory_scores() -> pd.DataFrame:
    return make_theory_scores()


def write_hive(frame: pd.DataFrame, root, **options) -> None:  # noqa: ANN001 - a path
    """``frame`` as another tool writes a dataset: parquet parts under ``task=../model=..``
    folders, those two columns in the folder names only (pyarrow's ``write_dataset``)."""
    import pyarrow.dataset as pads

    from miragelab.tables import to_arrow

    pads.write_dataset(
        to_arrow(frame),
        root,
        format="parquet",
        partitioning=["task", "model"],
        partitioning_flavor="hive",
        **options,
    )


def assert_refused(call, path, line: int, field: str, message: str) -> None:  # noqa: ANN001
    """``call()`` raises an InputError that names ``path``, ``line`` and ``field`` and says
    ``message``."""
    from miragelab.errors import InputError

    with pytest.raises(InputError) as info:
        call()
    text = str(info.value)
    assert f"{path}, line {line}, field '{field}'" in text and message in text


def make_noisy_theory_scores(n: int = 20_000, seed: int = 0) -> pd.DataFrame:
    """The closed-form model measured on ``n`` test examples, with each point's error:
    exact match ``Binomial(n, p**L) / n``, token edit distance over the ``n L`` tokens,
    and the mean per-token cross-entropy with a coefficient of variation of 0.8 per
    example."""
    rng = np.random.default_rng(seed)
    p = theory.per_token_prob(SIZES, C, ALPHA)
    ce = theory.cross_entropy(SIZES, C, ALPHA)
    em = rng.binomial(n, p**LENGTH) / n
    wrong = rng.binomial(n * LENGTH, 1 - p)
    q = (wrong + 0.5) / (n * LENGTH + 1)
    curves = {
        "exact_match": (em, np.sqrt(np.clip(em * (1 - em), 0.5 / n, None) / n), True),
        "token_edit_distance": (wrong / n, LENGTH * np.sqrt(q * (1 - q) / (n * LENGTH)), False),
        "cross_entropy": (
            ce * (1 + 0.8 / np.sqrt(n) * rng.standard_normal(SIZES.size)),
            0.8 * ce / np.sqrt(n),
            False,
        ),
    }
    rows = [
        {"task": "add", "family": "law", "model": f"m{i}", "params": size, "metric": metric,
         "value": float(values[i]), "stderr": float(se[i]), "higher_is_better": higher}
        for metric, (values, se, higher) in curves.items()
        for i, size in enumerate(SIZES)
    ]  # fmt: skip
    return validate_frame(pd.DataFrame(rows), SCORES)


@pytest.fixture()
def noisy_theory_scores() -> pd.DataFrame:
    return make_noisy_theory_scores()


def mirage_code(*args: object) -> int:
    """``mirage ARGS`` run in this process; its exit code."""
    from miragelab.cli import main

    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return 0 if exc.code is None else int(exc.code)
    return 0
