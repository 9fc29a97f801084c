"""Small helpers on pandas frames that every layer may use (no project imports)."""

from __future__ import annotations

import pandas as pd

__all__ = ["without_attrs"]


def without_attrs(frame: pd.DataFrame) -> pd.DataFrame:
    """A shallow copy without ``attrs``: analysis code works on plain frames, because
    pandas deep-copies ``attrs`` (provenance, notes) on every operation."""
    plain = frame.copy(deep=False)
    plain.attrs = {}
    return plain
