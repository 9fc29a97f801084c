"""The rows every benchmark script writes with ``--summary PATH`` (read by ``run.py``).

One row per figure::

    {"benchmark": str, "figure": str, "value": float, "unit": str,
     "baseline": float | null, "baseline_name": str | null, "ratio": float | null,
     "target": str, "met": bool | null}

``ratio`` compares the value with the baseline the way the script prints it
(a speed-up is baseline time / our time); ``met`` is null when the figure has
no target.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def row(
    benchmark: str,
    figure: str,
    value: float,
    unit: str,
    *,
    baseline: float | None = None,
    baseline_name: str | None = None,
    ratio: float | None = None,
    target: str = "",
    met: bool | None = None,
) -> dict[str, Any]:
    """One summary row; non-finite numbers become null (JSON has no NaN)."""

    def number(x: float | None) -> float | None:
        return None if x is None or not math.isfinite(float(x)) else float(x)

    return {
        "benchmark": benchmark,
        "figure": figure,
        "value": number(value),
        "unit": unit,
        "baseline": number(baseline),
        "baseline_name": baseline_name,
        "ratio": number(ratio),
        "target": target,
        "met": None if met is None else bool(met),
    }


def write_summary(path: str | os.PathLike[str] | None, rows: list[dict[str, Any]]) -> None:
    """Write the rows as a JSON array, atomically (nothing when ``path`` is None)."""
    if path is None:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
