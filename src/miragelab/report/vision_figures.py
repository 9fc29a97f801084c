"""The vision ladders' figure and output folder (:mod:`miragelab.vision.ladder`).

:func:`ladder_figure` draws the paper's style: metric against parameters, log-x.
Left panel: the smooth metric (MSE or per-image accuracy); right panel: the
sharp metric, one curve per threshold ``c`` or sequence length ``K``. Points
are means over training seeds, bands the interval over seeds from the scores
table. The title of each panel carries the emergence score of its curves.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from miragelab.report.figures import plain_text, save_figure
from miragelab.report.style import CONTINUOUS, log_x, paper_figure, sequence_colours
from miragelab.tables import write_table
from miragelab.vision.ladder import VisionResult

__all__ = ["ladder_figure", "write_vision_outputs"]

_LABELS = {
    "mse": "per-image MSE",
    "per_image_accuracy": "per-image accuracy",
}


def _label(metric: str) -> str:
    """A metric's name in the figure, as plain text (never parsed as math)."""
    if metric.startswith("reconstruction_c"):
        return plain_text(f"c = {metric.removeprefix('reconstruction_c')}")
    if metric.startswith("subset_accuracy_K"):
        return plain_text(f"K = {metric.removeprefix('subset_accuracy_K')}")
    return plain_text(_LABELS.get(metric, metric))


def _curve(ax: Axes, result: VisionResult, metric: str, colour: object) -> None:
    rows = result.scores[result.scores["metric"] == metric].sort_values("params")
    x = rows["params"].to_numpy(dtype=float)
    y = rows["value"].to_numpy(dtype=float)
    ax.plot(x, y, "o-", color=colour, ms=3.5, lw=1.4, label=_label(metric))
    low = rows["ci_low"].to_numpy(dtype=float)
    high = rows["ci_high"].to_numpy(dtype=float)
    if np.isfinite(low).all() and np.isfinite(high).all():
        ax.fill_between(x, low, high, color=colour, alpha=0.2, lw=0)


def _score_of(result: VisionResult, metric: str) -> float:
    rows = result.measures[result.measures["metric"] == metric]
    return float(rows["emergence_score"].iloc[0]) if len(rows) else float("nan")


def ladder_figure(result: VisionResult) -> Figure:
    """Two panels: smooth metric(s) left, sharp metrics right (one curve per c or K)."""
    fig, ((left, right),) = paper_figure(10.0, 4.0, 1, 2)
    task = str(result.scores["task"].iloc[0])
    for metric in result.smooth_metrics:
        _curve(left, result, metric, CONTINUOUS)
    smooth = result.smooth_metrics[0]
    left.set_ylabel(_label(smooth))
    left.set_title(f"{_label(smooth)} (smooth): emergence score {_score_of(result, smooth):.3g}")
    colours = sequence_colours(len(result.sharp_metrics), kind="harsh")
    for metric, colour in zip(result.sharp_metrics, colours, strict=True):
        _curve(right, result, metric, colour)
    what = "Reconstruction_c" if result.kind == "autoencoder" else "subset accuracy"
    right.set_ylabel(what)
    right.set_ylim(-0.03, 1.03)
    scores = [_score_of(result, m) for m in result.sharp_metrics]
    right.set_title(f"{what} (sharp): emergence scores {min(scores):.3g} .. {max(scores):.3g}")
    right.legend(ncol=2, title=None)
    for ax in (left, right):
        log_x(ax)
        ax.set_xlabel("parameters")
        ax.grid(True, which="major", alpha=0.3)
    family = result.scores["family"].iloc[0]
    fig.suptitle(plain_text(f"{task}: {family} ladder, mean over seeds"))
    return fig


def write_vision_outputs(result: VisionResult, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write a ladder's tables (parquet + CSV) and its figure (PNG + SVG).

    Parameters
    ----------
    result
        What :func:`~miragelab.vision.ladder.run_ladder` returned.
    out_dir
        Folder of the outputs (created if needed).

    Returns
    -------
    list of Path
        ``scores.parquet``, ``scores.csv``, ``runs.csv``, ``emergence.csv``,
        ``verdicts.csv``, then the figure ``<kind>.png`` and ``<kind>.svg``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        write_table(result.scores, out / "scores.parquet"),
        write_table(result.scores, out / "scores.csv"),
        write_table(result.runs, out / "runs.csv"),
        write_table(result.measures, out / "emergence.csv"),
        write_table(result.verdicts, out / "verdicts.csv"),
    ]
    paths.extend(save_figure(ladder_figure(result), out / result.kind).values())
    return paths
