"""Saving figures the same way everywhere: PNG for pages, SVG for papers, atomically."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from miragelab.atomic import atomic_path

__all__ = ["save_figure"]


def save_figure(fig: Figure, stem: str | os.PathLike[str], dpi: int = 200) -> dict[str, Path]:
    """Write ``stem.png`` and ``stem.svg``; return their paths keyed by format.

    The SVG gets a fixed hash salt and no date, so the same figure gives the
    same bytes (the reproduction's cache and diffs rely on it).
    """
    stem = Path(stem)
    paths = {"png": stem.with_suffix(".png"), "svg": stem.with_suffix(".svg")}
    with atomic_path(paths["png"]) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
    with matplotlib.rc_context({"svg.hashsalt": f"miragelab-{stem.name}"}):
        with atomic_path(paths["svg"]) as tmp:
            fig.savefig(tmp, format="svg", metadata={"Date": None})
    return paths
