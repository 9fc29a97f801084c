"""Figures of the transition detector: a curve with its fits and changepoint interval.

Built on :class:`matplotlib.figure.Figure` (no pyplot) and saved with
:func:`miragelab.report.figures.save_figure` (PNG + SVG, atomic).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from miragelab.report.figures import save_figure
from miragelab.transitions.apply import InductionFindings
from miragelab.transitions.detect import Transition

__all__ = ["draw_transition", "induction_figure", "transition_figure"]


def _shade(ax: Axes, result: Transition) -> None:
    """The span interval (light), the midpoint interval (darker), the midpoint (line)."""
    if not np.isfinite(result.x_change):
        return
    ax.axvspan(result.span_low, result.span_high, color="tab:red", alpha=0.10, lw=0)
    ax.axvspan(result.x_low, result.x_high, color="tab:red", alpha=0.20, lw=0)
    ax.axvline(result.x_change, color="tab:red", lw=1, ls="--")


def draw_transition(ax: Axes, result: Transition, label: str = "observed") -> None:
    """The tested points, the smooth and changepoint fits, and the intervals, log x."""
    ax.plot(result.x, result.y, "o", ms=3, color="black", label=label)
    if np.all(np.isfinite(result.fit_smooth)):
        ax.plot(result.x, result.fit_smooth, color="tab:blue", lw=1, label="smooth fit")
        ax.plot(result.x, result.fit_change, color="tab:red", lw=1.2, label="changepoint fit")
    _shade(ax, result)
    ax.set_xscale("log")
    verdict = "transition" if result.detected else "no transition"
    ax.set_title(
        f"{verdict}: p = {result.p_value:.3g}, effect {result.effect_size:.2f}", fontsize=9
    )


def transition_figure(result: Transition, title: str, ylabel: str, stem: str | os.PathLike[str]):
    """One curve's figure, saved as ``stem.png`` and ``stem.svg``; returns the paths."""
    fig = Figure(figsize=(5.5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    draw_transition(ax, result)
    ax.set_xlabel("x (log scale)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, stem)


def induction_figure(
    checkpoints: pd.DataFrame, findings: InductionFindings, stem: str | os.PathLike[str]
) -> dict[str, Path]:
    """Repeated-part loss with its changepoint, the other losses, and the attention score.

    Three panels on the same log-step axis: the repeated-part loss (fits and
    intervals), the non-repeated loss and ICL score, and the prefix-matching
    score with the loss transition's intervals and the score's rise marked.
    """
    fig = Figure(figsize=(6.5, 8.0), layout="constrained")
    axes = fig.subplots(3, 1, sharex=True)
    loss = findings.results["loss_repeated"]
    draw_transition(axes[0], loss, label="loss on the repeated part")
    axes[0].set_ylabel("loss, repeated part (nats)")
    axes[0].legend(fontsize=7)
    steps = checkpoints["step"].to_numpy(dtype=float)
    axes[1].plot(steps, checkpoints["loss_nonrepeated"], "o-", ms=2, label="loss, non-repeated")
    axes[1].plot(steps, checkpoints["icl_score"], "s-", ms=2, label="ICL score (late - early)")
    axes[1].axhline(0, color="grey", lw=0.5)
    _shade(axes[1], loss)
    axes[1].set_ylabel("nats")
    axes[1].legend(fontsize=7)
    axes[2].plot(steps, checkpoints["prefix_matching"], "o-", ms=2, color="tab:green")
    _shade(axes[2], loss)
    if np.isfinite(findings.attention_rise):
        axes[2].axvline(findings.attention_rise, color="tab:green", ls=":", lw=1.2)
    axes[2].set_ylabel("prefix-matching score\n(max over heads)")
    axes[2].set_xlabel("training step (log scale)")
    axes[2].set_xscale("log")
    where = "inside" if findings.rise_in_span else "outside"
    fig.suptitle(
        f"Induction heads: attention rises at step {findings.attention_rise:g}, "
        f"{where} the loss transition's span",
        fontsize=10,
    )
    return save_figure(fig, stem)
