"""The evidence behind each verdict, drawn: one figure per curve, and a grid of them.

Left panel: the continuous metric on the scale it was tested on, with each
point's 95% error bar, the smooth fit (the mirage hypothesis) with its 95%
band, the fit with a break, and the harsh jump's stretch of the ladder shaded.
Right panel: the harsh metric with its error bars, and the band predicted for it
from the continuous metric's smooth fit through the fitted link.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from miragelab.report.figures import plain_text, save_figure, slug
from miragelab.report.style import (
    CONTINUOUS,
    HARSH,
    INK,
    JUMP,
    SIZES,
    VERDICT_COLOURS,
    log_x,
    paper_figure,
    wrap,
)
from miragelab.verdict import PairVerdict

__all__ = [
    "draw_evidence",
    "figure_name",
    "verdict_figure",
    "verdict_grid",
    "write_verdict_figures",
]

#: a verdict's colour in titles (one table for every figure: :mod:`miragelab.report.style`)
COLOURS = VERDICT_COLOURS


def _shade_jump(ax: Axes, pair: PairVerdict) -> None:
    i0, i1 = pair.profile.jump
    if pair.profile.status != "smooth" and pair.x.size > i1 > i0:
        ax.axvspan(pair.x[i0], pair.x[i1], color=JUMP, alpha=0.35, lw=0, label="harsh jump")


def _field(row: object, name: str) -> str:
    """A text field of a verdict's row, ready to draw ("" when absent or not text)."""
    value = getattr(row, name, "")
    return plain_text(value) if isinstance(value, str) else ""


def draw_evidence(soft_ax: Axes | None, harsh_ax: Axes, pair: PairVerdict, row: object) -> None:
    """Draw one verdict's evidence on two axes (``soft_ax`` None: the harsh panel only).

    The continuous metric and its smooth fit are blue, the harsh metric and the fit
    with a break vermillion, and the harsh band predicted from the continuous
    metric blue again (:mod:`miragelab.report.style`).
    """
    x = pair.x
    if soft_ax is not None and pair.z.size == x.size and x.size:
        err = 1.96 * np.where(np.isfinite(pair.z_se), pair.z_se, 0.0)
        soft_ax.errorbar(x, pair.z, yerr=err, fmt="o", ms=3.5, capsize=2, color=CONTINUOUS,
                         lw=1, label=_field(row, "soft_metric"))  # fmt: skip
        test = pair.test
        if test is not None and test.fit_smooth.size == x.size:
            fit, band = test.fit_smooth, 1.96 * test.smooth_band
            if np.all(np.isfinite(fit)):
                soft_ax.plot(x, fit, color=CONTINUOUS, lw=1.2, label="smooth fit")
                if np.all(np.isfinite(band)):
                    soft_ax.fill_between(x, fit - band, fit + band, color=CONTINUOUS, alpha=0.15,
                                         lw=0)  # fmt: skip
                soft_ax.plot(x, test.fit_change, color=HARSH, lw=1, ls="--", label="with break")
            soft_ax.set_title(f"{_field(row, 'soft_metric')}: break p = {test.p_value:.2g}")
        _shade_jump(soft_ax, pair)
        log_x(soft_ax)
        soft_ax.set_ylabel(plain_text(pair.scale))
        soft_ax.legend(loc="best")
    err = 1.96 * np.where(np.isfinite(pair.harsh_se), pair.harsh_se, 0.0)
    harsh_ax.errorbar(x, pair.harsh, yerr=err, fmt="o", ms=3.5, capsize=2, color=HARSH, lw=1,
                      label=_field(row, "harsh_metric"))  # fmt: skip
    if pair.harsh_pred.size == x.size and x.size:
        harsh_ax.plot(
            x, pair.harsh_pred, color=CONTINUOUS, lw=1.2, ls="--",
            label="predicted from smooth fit",
        )  # fmt: skip
        harsh_ax.fill_between(x, pair.harsh_pred_low, pair.harsh_pred_high, color=CONTINUOUS,
                              alpha=0.15, lw=0)  # fmt: skip
    _shade_jump(harsh_ax, pair)
    log_x(harsh_ax)
    harsh_ax.set_ylabel(_field(row, "harsh_metric"))
    verdict = str(getattr(row, "verdict", pair.label))
    harsh_ax.set_title(plain_text(verdict), color=COLOURS.get(verdict, INK))
    harsh_ax.legend(loc="best")


def _title(row: object, inches: float) -> str:
    """``task · family[ · model] (axis)`` in lines of ``inches``, ready to draw (see
    :func:`plain_text`)."""
    model = getattr(row, "model", None)
    where = f" · {model}" if isinstance(model, str) and model else ""
    text = f"{row.task} · {row.family}{where} ({row.axis})"  # type: ignore[attr-defined]
    return plain_text(wrap(text, inches, max_lines=2))


def verdict_figure(pair: PairVerdict, row: object) -> Figure:
    """The two panels of one verdict, titled with its curve and its reason."""
    fig, ((soft_ax, harsh_ax),) = paper_figure(8.2, 3.8, 1, 2)
    draw_evidence(soft_ax, harsh_ax, pair, row)
    for ax in (soft_ax, harsh_ax):
        ax.set_xlabel(plain_text(getattr(row, "axis", "x")))
    reason = wrap(str(getattr(row, "reason", "")), 8.0, role="note")
    fig.suptitle(_title(row, 8.0))
    fig.supxlabel(plain_text(reason), fontsize=SIZES["note"], ha="center")
    return fig


def verdict_grid(
    verdicts: pd.DataFrame, details: Mapping[tuple, PairVerdict], k: int = 12
) -> Figure | None:
    """The harsh panel of up to ``k`` verdicts (mirage, genuine, inconclusive first)."""
    rank = {"genuine": 0, "mirage": 1, "inconclusive": 2, "smooth": 3}
    shown = verdicts.assign(_rank=verdicts["verdict"].map(rank)).sort_values("_rank").head(k)
    if shown.empty:
        return None
    cols = min(4, len(shown))
    rows = -(-len(shown) // cols)
    fig, grid = paper_figure(3.3 * cols, 2.9 * rows, rows, cols)
    axes = grid.ravel()
    for ax, row in zip(axes, shown.itertuples(index=False), strict=False):
        draw_evidence(None, ax, details[_key(row)], row)
        ax.set_title(f"{_title(row, 3.2)}\n{plain_text(row.verdict)}",
                     color=COLOURS.get(row.verdict, INK))  # fmt: skip
    for ax in axes[len(shown) :]:
        ax.set_visible(False)
    fig.suptitle("Harsh metric and its band predicted from the continuous metric")
    return fig


def _key(row: object) -> tuple:
    model = getattr(row, "model", None)
    model = model if isinstance(model, str) else None
    return (row.task, row.family, row.axis, model, row.harsh_metric)  # type: ignore[attr-defined]


def figure_name(row: object) -> str:
    """A file name per verdict: :func:`~miragelab.report.figures.slug` of its key."""
    return slug(*(str(part) for part in _key(row) if part is not None))


def write_verdict_figures(
    verdicts: pd.DataFrame,
    details: Mapping[tuple, PairVerdict],
    out_dir: str | os.PathLike[str],
) -> dict[str, Path]:
    """One PNG per verdict that is not ``smooth`` under ``out_dir`` (named by
    :func:`figure_name`): a smooth harsh curve has no jump, so no break was tested,
    and its curve is in the meta-analysis' own tables."""
    out = Path(out_dir)
    paths: dict[str, Path] = {}
    for row in verdicts[verdicts["verdict"] != "smooth"].itertuples(index=False):
        name = figure_name(row)
        fig = verdict_figure(details[_key(row)], row)
        paths[name] = save_figure(fig, out / name, formats=("png",))["png"]
    return paths
