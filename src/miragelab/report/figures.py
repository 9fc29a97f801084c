"""Saving figures the same way everywhere: PNG for pages, SVG for papers, atomically."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from miragelab.atomic import atomic_path

__all__ = ["save_figure"]


def save_figure(
    fig: Figure,
    stem: str | os.PathLike[str],
    dpi: int = 200,
    formats: tuple[str, ...] = ("png", "svg"),
) -> dict[str, Path]:
    """Write ``stem.png`` and ``stem.svg`` (those of ``formats``); return their paths.

    The SVG gets a fixed hash salt and no date, so the same figure gives the
    same bytes (the reproduction's cache and diffs rely on it).
    """
    stem = Path(stem)
    paths = {fmt: stem.with_name(f"{stem.name}.{fmt}") for fmt in formats}
    if "png" in paths:
        with atomic_path(paths["png"]) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
    if "svg" in paths:
        with matplotlib.rc_context({"svg.hashsalt": f"miragelab-{stem.name}"}):
            with atomic_path(paths["svg"]) as tmp:
                fig.savefig(tmp, format="svg", metadata={"Date": None})
    return paths
