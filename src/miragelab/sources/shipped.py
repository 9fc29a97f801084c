"""Where the package keeps the real data it ships (Pythia, ObsScaling, BIG-bench)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def shipped_data_dir() -> Path:
    """The package's data folder (``miragelab/data``: pythia-evals, obsscaling, bigbench)."""
    ref = resources.files("miragelab") / "data"
    path = Path(str(ref))
    if not path.is_dir():
        raise FileNotFoundError(f"miragelab's package data is missing (looked in {path})")
    return path
