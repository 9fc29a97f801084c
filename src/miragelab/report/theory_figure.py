"""The paper's Figure 2: one smooth loss, metrics that look sudden or smooth.

Six panels in a 2x3 grid. The left column is the model itself (per-token
cross-entropy and per-token probability); the middle and right columns score
answers of several lengths ``L`` with a nonlinear / discontinuous metric on top
(exact match, multiple-choice grade) and its linear / continuous counterpart
below (token edit distance, Brier score). The figure is built on a bare
:class:`~matplotlib.figure.Figure` (no pyplot), so it never changes global
state and needs no display.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from miragelab.atomic import atomic_path
from miragelab.report.figures import save_figure
from miragelab.report.style import INK, MUTED, SIZES, log_x, paper_figure, sequence_colours
from miragelab.theory import CURVE_COLUMNS, curves

__all__ = ["plot_theory", "write_theory_outputs"]

#: (row, column, column in the curves table, title, y label, one curve per length)
_PANELS = (
    (0, 0, "cross_entropy", "Per-token cross-entropy", r"$\mathcal{L}_{CE}(N)$ (nats)", False),
    (1, 0, "per_token_prob", "Per-token probability", r"$p(\mathrm{correct\ token})$", False),
    (0, 1, "exact_match", "Nonlinear: exact match", r"Accuracy $\approx p^L$", True),
    (
        1,
        1,
        "token_edit_distance",
        "Linear: token edit distance",
        r"Token edit distance $\approx L\,(1-p)$",
        True,
    ),
    (
        0,
        2,
        "multiple_choice_grade",
        "Discontinuous: multiple-choice grade",
        "Multiple-choice grade",
        True,
    ),
    (1, 2, "brier_score", "Continuous: Brier score", r"Brier score $(1-p^L)^2$", True),
)


def _latex_number(value: float) -> str:
    """``2e9`` -> ``2 \\times 10^{9}``: readable constants in the annotation."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    exponent = math.floor(math.log10(abs(value)))
    if -2 <= exponent <= 3:
        return f"{value:.3g}"
    mantissa = value / 10**exponent
    if math.isclose(mantissa, 1.0):
        return f"10^{{{exponent}}}"
    return rf"{mantissa:.3g} \times 10^{{{exponent}}}"


def _length_label(length: float) -> str:
    return f"{int(length)}" if float(length).is_integer() else f"{length:g}"


def plot_theory(frame: pd.DataFrame, c: float, alpha: float) -> Figure:
    """Draw the six panels from a :func:`miragelab.theory.curves` table.

    ``c`` and ``alpha`` only annotate the cross-entropy panel; the curves come
    from ``frame``, so a figure can be redrawn from a saved CSV.
    """
    missing = [name for name in CURVE_COLUMNS if name not in frame.columns]
    if missing:
        raise ValueError(f"theory curves table lacks column(s): {', '.join(missing)}")
    if frame.empty:
        raise ValueError("theory curves table is empty")

    lengths = np.sort(frame["length"].unique())
    colours = sequence_colours(lengths.size)
    single = frame.drop_duplicates("params").sort_values("params")

    fig, grid = paper_figure(13.0, 7.6, 2, 3, sharex=True)
    for letter, (row, col, column, title, ylabel, per_length) in zip(
        "ABCDEF", _PANELS, strict=True
    ):
        ax: Axes = grid[row, col]
        if per_length:
            for length, colour in zip(lengths, colours, strict=True):
                block = frame[frame["length"] == length].sort_values("params")
                ax.plot(
                    block["params"],
                    block[column],
                    color=colour,
                    linewidth=1.8,
                    label=f"L = {_length_label(length)}",
                )
        else:
            ax.plot(single["params"], single[column], color=INK, linewidth=2.0)
        log_x(ax)
        ax.set_title(f"{letter}.  {title}", loc="left")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
        if row == 1:
            ax.set_xlabel("Model parameters $N$")

    ce_ax: Axes = grid[0, 0]
    ce_ax.set_yscale("log")
    ce_ax.text(
        0.97,
        0.95,
        rf"$\mathcal{{L}}_{{CE}}(N) = (N/c)^{{\alpha}}$"
        "\n"
        rf"$c = {_latex_number(float(c))},\ \alpha = {float(alpha):g}$",
        transform=ce_ax.transAxes,
        ha="right",
        va="top",
        fontsize=SIZES["note"],
        bbox={"boxstyle": "round,pad=0.35", "facecolor": "white", "edgecolor": "0.7"},
    )
    for ax in (grid[1, 0], grid[0, 1]):
        ax.set_ylim(-0.03, 1.03)
    grade = frame["multiple_choice_grade"].to_numpy()
    chance = float(grade.min())
    mcg_ax: Axes = grid[0, 2]
    mcg_ax.set_ylim(-0.03, 1.03)
    if chance < 1.0:
        mcg_ax.axhspan(-0.03, chance, color="0.92", zorder=0)
        mcg_ax.text(
            0.03,
            chance / 2,
            f"chance = {chance:.3g}",
            transform=mcg_ax.get_yaxis_transform(),
            ha="left",
            va="center",
            fontsize=SIZES["note"],
            color=MUTED,
        )

    handles, labels = grid[0, 1].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncol=min(len(labels), 10),
        title="answer length L",
    )
    return fig


def write_theory_outputs(
    out_dir: str | os.PathLike[str],
    c: float,
    alpha: float,
    lengths: Sequence[float],
    k: int = 4,
    n_min: float = 1e7,
    n_max: float = 1e12,
    points: int = 200,
) -> dict[str, Path]:
    """Write ``theory.png``, ``theory.svg`` and ``theory_curves.csv`` into ``out_dir``.

    Each file is written atomically. The CSV keeps every float at full
    (round-trip) precision so the curves can be checked against the formulas
    exactly. Returns the paths keyed ``png``, ``svg`` and ``csv``.
    """
    frame = curves(c, alpha, lengths, k=k, n_min=n_min, n_max=n_max, points=points)
    fig = plot_theory(frame, c, alpha)
    out = Path(out_dir)
    paths = save_figure(fig, out / "theory")
    paths["csv"] = out / "theory_curves.csv"
    with atomic_path(paths["csv"]) as tmp:
        frame.to_csv(tmp, index=False)
    return paths
