"""Figures and output folders of the transition detector (:mod:`miragelab.transitions`).

:func:`write_induction_outputs` writes the induction run's tables, figure and
``summary.json``; :func:`write_transitions_outputs` the detector's table over a
scores table and one figure per curve. Figures are built on
:class:`matplotlib.figure.Figure` (no pyplot) and saved with
:func:`miragelab.report.figures.save_figure` (PNG + SVG, atomic).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from miragelab.atomic import write_text_atomic
from miragelab.report.figures import plain_text, save_figure, slug
from miragelab.report.style import CATEGORY, CONTINUOUS, HARSH, INK, MUTED, log_x, paper_figure
from miragelab.tables import write_table
from miragelab.transitions.apply import InductionFindings
from miragelab.transitions.detect import Transition

__all__ = [
    "draw_transition",
    "induction_figure",
    "transition_figure",
    "write_induction_outputs",
    "write_transitions_outputs",
]


def _shade(ax: Axes, result: Transition) -> None:
    """The span interval (light), the midpoint interval (darker), the midpoint (line)."""
    if not np.isfinite(result.x_change):
        return
    ax.axvspan(result.span_low, result.span_high, color=HARSH, alpha=0.10, lw=0)
    ax.axvspan(result.x_low, result.x_high, color=HARSH, alpha=0.20, lw=0)
    ax.axvline(result.x_change, color=HARSH, lw=1, ls="--")


def draw_transition(ax: Axes, result: Transition, label: str = "observed") -> None:
    """The tested points, the smooth and changepoint fits, and the intervals, log x.

    ``label`` (the points' legend entry) is drawn as plain text (:func:`plain_text`).
    """
    ax.plot(result.x, result.y, "o", ms=3, color=INK, label=plain_text(label))
    if np.all(np.isfinite(result.fit_smooth)):
        ax.plot(result.x, result.fit_smooth, color=CONTINUOUS, lw=1, label="smooth fit")
        ax.plot(result.x, result.fit_change, color=HARSH, lw=1.2, label="changepoint fit")
    _shade(ax, result)
    log_x(ax)
    verdict = "transition" if result.detected else "no transition"
    ax.set_title(f"{verdict}: p = {result.p_value:.3g}, effect {result.effect_size:.2f}")


def transition_figure(result: Transition, title: str, ylabel: str, stem: str | os.PathLike[str]):
    """One curve's figure, saved as ``stem.png`` and ``stem.svg``; returns the paths.

    ``title`` and ``ylabel`` are drawn as plain text (:func:`plain_text`), never as math.
    """
    fig, ((ax,),) = paper_figure(5.5, 3.6)
    draw_transition(ax, result)
    ax.set_xlabel("x (log scale)")
    ax.set_ylabel(plain_text(ylabel))
    ax.legend()
    fig.suptitle(plain_text(title))
    return save_figure(fig, stem)


def induction_figure(
    checkpoints: pd.DataFrame, findings: InductionFindings, stem: str | os.PathLike[str]
) -> dict[str, Path]:
    """Repeated-part loss with its changepoint, the other losses, and the attention score.

    Three panels on the same log-step axis: the repeated-part loss (fits and
    intervals), the non-repeated loss and ICL score, and the prefix-matching
    score with the loss transition's intervals and the score's rise marked.
    """
    fig, grid = paper_figure(6.5, 8.0, 3, 1, sharex=True)
    axes = grid[:, 0]
    loss = findings.results["loss_repeated"]
    draw_transition(axes[0], loss, label="loss on the repeated part")
    axes[0].set_ylabel("loss, repeated part (nats)")
    axes[0].legend()
    steps = checkpoints["step"].to_numpy(dtype=float)
    axes[1].plot(steps, checkpoints["loss_nonrepeated"], "o-", ms=2, color=CATEGORY[1],
                 label="loss, non-repeated")  # fmt: skip
    axes[1].plot(steps, checkpoints["icl_score"], "s-", ms=2, color=CATEGORY[2],
                 label="ICL score (late - early)")  # fmt: skip
    axes[1].axhline(0, color=MUTED, lw=0.5)
    _shade(axes[1], loss)
    axes[1].set_ylabel("nats")
    axes[1].legend()
    axes[2].plot(steps, checkpoints["prefix_matching"], "o-", ms=2, color=CATEGORY[0])
    _shade(axes[2], loss)
    if np.isfinite(findings.attention_rise):
        axes[2].axvline(findings.attention_rise, color=CATEGORY[0], ls=":", lw=1.2)
    axes[2].set_ylabel("prefix-matching score\n(max over heads)")
    axes[2].set_xlabel("training step (log scale)")
    log_x(axes[2])
    where = "inside" if findings.rise_in_span else "outside"
    fig.suptitle(
        f"Induction heads: attention rises at step {findings.attention_rise:g}, "
        f"{where} the loss transition's span"
    )
    return save_figure(fig, stem)


def _write_both(frame: pd.DataFrame, stem: Path) -> list[Path]:
    """``frame`` as ``stem.parquet`` and ``stem.csv``."""
    return [
        write_table(frame, stem.with_suffix(".parquet")),
        write_table(frame, stem.with_suffix(".csv")),
    ]


def write_induction_outputs(
    run: Any, findings: InductionFindings, config: dict[str, Any], out_dir: Path
) -> list[Path]:
    """Write the induction run's tables, its figure and ``summary.json``.

    Parameters
    ----------
    run
        The :class:`~miragelab.transitions.induction.InductionRun` trained.
    findings
        :func:`~miragelab.transitions.apply.induction_transitions` of its checkpoints.
    config
        The run's settings, as a JSON-able dict (recorded in ``summary.json``).
    out_dir
        Folder of the outputs (created if needed).

    Returns
    -------
    list of Path
        ``checkpoints``, ``scores`` and ``transitions`` (parquet + CSV), the
        figure ``induction`` (PNG + SVG) and ``summary.json``.
    """
    from miragelab.transitions.induction import run_to_scores

    paths: list[Path] = []
    for frame, stem in (
        (run.checkpoints, "checkpoints"),
        (run_to_scores(run), "scores"),
        (findings.table, "transitions"),
    ):
        paths += _write_both(frame, out_dir / stem)
    paths += list(induction_figure(run.checkpoints, findings, out_dir / "induction").values())
    loss = findings.results["loss_repeated"]
    summary = {
        "config": config,
        "train_seconds": run.seconds,
        "params": run.params,
        "loss_transition": dict(loss.row().items()),
        "attention_rise_step": findings.attention_rise,
        "attention_rise_in_span": findings.rise_in_span,
        "attention_rise_in_interval": findings.rise_in_interval,
    }
    write_text_atomic(out_dir / "summary.json", json.dumps(summary, indent=2, default=str))
    paths.append(out_dir / "summary.json")
    return paths


def write_transitions_outputs(
    found: pd.DataFrame, results: list[Transition], out_dir: Path, max_figures: int = 24
) -> list[Path]:
    """Write the detector's table over a scores table and the figures of its curves.

    Parameters
    ----------
    found, results
        What :func:`~miragelab.transitions.apply.transitions_table` returned.
    out_dir
        Folder of the outputs: ``transitions.parquet``/``.csv`` and ``figures/``.
    max_figures
        At most this many curve figures, curves with a transition first, each named
        by :func:`~miragelab.report.figures.slug` of its curve's key (task, family,
        model of a step curve, metric, axis).

    Returns
    -------
    list of Path
        The two tables, then each figure's PNG and SVG.
    """
    paths = _write_both(found, out_dir / "transitions")
    order = sorted(range(len(found)), key=lambda i: (not found["detected"].iat[i], i))
    for i in order[:max_figures]:
        row = found.iloc[i]
        who = row["model"] if row["axis"] == "step" else row["family"]
        title = f"{row['task']} · {who} · {row['metric']}"
        ylabel = f"log {row['metric']}" if row["log_y"] else str(row["metric"])
        key = (row[column] for column in ("task", "family", "model", "metric", "axis"))
        stem = out_dir / "figures" / slug(*(part for part in key if isinstance(part, str)))
        paths += list(transition_figure(results[i], title, ylabel, stem).values())
    return paths
