"""Figures and files of the meta-analysis: emergence by metric, top curves, verdicts.

The verdicts' own figures (one per curve, and a grid) are
:mod:`miragelab.report.verdict_figures`'.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from miragelab.emergence import size_curve
from miragelab.meta import MetaResult
from miragelab.report.figures import plain_text, save_figure
from miragelab.report.style import (
    CONTINUOUS,
    HARSH,
    INK,
    MUTED,
    log_x,
    metric_colour,
    paper_figure,
    wrap,
)
from miragelab.report.verdict_figures import verdict_grid, write_verdict_figures
from miragelab.stats import point_stderr
from miragelab.tables import write_table

__all__ = [
    "plot_emergence_by_metric",
    "plot_top_curves",
    "write_meta_outputs",
]


def plot_emergence_by_metric(measures: pd.DataFrame, min_curves: int = 3) -> Figure:
    """Emergence score of every size curve, one column per metric (the paper's Fig. 4 idea):
    the metrics with ``min_curves`` curves or more, or every metric where none has.

    Points take their metric's colour (harsh vermillion, continuous blue, other
    black: :func:`~miragelab.report.style.metric_colour`); emergent-looking curves
    are filled, the others hollow. Infinite scores (a curve flat but for a
    minority of steps) are drawn as triangles at the top edge; the y axis is
    symmetric-log so scores from -10 to 1000 stay readable.
    """
    sized = measures[measures["axis"] == "params"]
    counts = sized["metric"].value_counts()
    # metrics with fewer curves are left out, unless no metric has enough (one family)
    metrics = [m for m in counts.index if counts[m] >= min_curves] or list(counts.index)
    fig, ((ax,),) = paper_figure(max(6.0, 0.9 * len(metrics) + 2), 4.2)
    rng = np.random.default_rng(0)
    finite = sized["emergence_score"].replace([np.inf, -np.inf], np.nan).abs()
    top = float(np.nanmax(finite)) * 2 if finite.notna().any() else 10.0
    for i, metric in enumerate(metrics):
        rows = sized[sized["metric"] == metric]
        score = rows["emergence_score"].to_numpy(dtype=float)
        looks = rows["emergent_looking"].to_numpy(dtype=bool)
        jitter = i + rng.uniform(-0.25, 0.25, score.size)
        inf = np.isinf(score)
        shown = np.where(inf, np.sign(score) * top, score)
        colour = metric_colour(metric)
        for mask, face in ((looks, colour), (~looks, "none")):
            for marker, part, size in (("o", ~inf, 14), ("^", inf, 22)):
                keep = mask & part
                ax.scatter(jitter[keep], shown[keep], s=size, marker=marker, alpha=0.7,
                           facecolors=face, edgecolors=colour, linewidths=0.8)  # fmt: skip
    ax.set_yscale("symlog", linthresh=1.0)
    ax.axhline(0, color=INK, lw=0.6)
    ticks = [plain_text(f"{m}\n(n={counts[m]})") for m in metrics]
    ax.set_xticks(range(len(metrics)), ticks)
    ax.set_ylabel("emergence score (symlog; ▲ = ±inf)")
    ax.set_title("Emergence score of each size curve, by metric")
    if metrics:
        kinds = {metric_colour(m) for m in metrics}
        handles = [
            Line2D([], [], ls="", marker="o", color=colour, label=label)
            for colour, label in ((HARSH, "harsh metric"), (CONTINUOUS, "continuous metric"),
                                  (INK, "other metric"))
            if colour in kinds
        ]  # fmt: skip
        handles.append(Line2D([], [], ls="", marker="o", color=MUTED, mfc="none",
                              label="hollow: not emergent-looking"))  # fmt: skip
        ax.legend(handles=handles, loc="best")
    return fig


def _points(rows: pd.DataFrame, axis: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = rows.sort_values(axis)
    x = rows[axis].to_numpy(dtype=float)
    y = rows["value"].to_numpy(dtype=float)
    half = 1.96 * point_stderr(rows)
    return x, y, np.where(np.isfinite(half), half, 0.0)


def plot_top_curves(scores: pd.DataFrame, measures: pd.DataFrame, k: int = 8) -> Figure | None:
    """The ``k`` most emergent-looking size curves, with 95% intervals, log-x."""
    sized = measures[(measures["axis"] == "params") & measures["emergent_looking"]]
    top = sized.sort_values(["smoothness", "n_points"], ascending=[True, False]).head(k)
    if top.empty:
        return None
    cols = min(4, len(top))
    nrows = math.ceil(len(top) / cols)
    fig, grid = paper_figure(3.4 * cols, 2.8 * nrows + 0.4, nrows, cols)
    axes = grid.ravel()
    for ax, row in zip(axes, top.itertuples(index=False), strict=False):
        x, y, half = _points(size_curve(scores, row.task, row.family, row.metric), "params")
        colour = metric_colour(row.metric)
        ax.errorbar(x, y, yerr=half, marker="o", ms=4, capsize=2, lw=1.2, color=colour)
        log_x(ax)
        ax.set_title(plain_text(f"{wrap(row.task, 3.3)}\n{wrap(row.family, 3.3)}"))
        ax.set_ylabel(plain_text(row.metric))
        ax.set_xlabel("parameters")
    for ax in axes[len(top) :]:
        ax.set_visible(False)
    fig.suptitle("Most emergent-looking curves (smallest smoothness)")
    return fig


def write_meta_outputs(
    result: MetaResult, scores: pd.DataFrame, out_dir: str | os.PathLike[str]
) -> dict[str, Path]:
    """Tables (parquet + CSV) and figures (PNG + SVG) of a meta-analysis."""
    out = Path(out_dir)
    paths: dict[str, Path] = {}
    for name, frame in (
        ("measures", result.measures),
        ("shares", result.shares),
        ("verdicts", result.verdicts),
        ("verdict_evidence", result.evidence),
    ):
        paths[f"{name}_parquet"] = write_table(frame, out / f"meta_{name}.parquet")
        paths[f"{name}_csv"] = write_table(frame, out / f"meta_{name}.csv")
    figures = {
        "emergence_by_metric": plot_emergence_by_metric(result.measures),
        "top_curves": plot_top_curves(scores, result.measures),
        "verdict_pairs": verdict_grid(result.verdicts, result.details),
    }
    for name, fig in figures.items():
        if fig is not None:
            for fmt, path in save_figure(fig, out / name).items():
                paths[f"{name}_{fmt}"] = path
    for name, path in write_verdict_figures(
        result.verdicts, result.details, out / "verdicts"
    ).items():
        paths[f"verdicts/{name}"] = path
    return paths
