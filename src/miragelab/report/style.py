"""One look for every figure the project draws: fonts, colours, log-x.

Every figure goes through :func:`miragelab.report.figures.save_figure`, which
calls :func:`finish` on it: whatever sizes a module asked for, the saved figure
has one font, one size per role (figure title, panel title, axis label, tick
label, legend), no top or right spine and no legend frame. Nothing here
changes matplotlib's global ``rcParams``, so figures drawn beside each other
(threads, a notebook with its own style) do not disturb one another.

Colours carry meaning, the same in every figure (the Okabe-Ito palette, which
readers with colour-vision deficiency can tell apart, and which prints in grey
as distinct shades):

``HARSH`` (vermillion)
    A harsh metric (discontinuous in the per-token probability: exact match,
    accuracy, multiple-choice grade), and a fit with a break or a changepoint,
    the "sharp" hypothesis.
``CONTINUOUS`` (blue)
    A continuous metric (log-probability, Brier score, edit distance), the
    smooth fit, and what is predicted from the continuous metric.
``INK`` (black)
    Observed points that are neither, or whose kind the panel already says.
``FORECAST`` (orange)
    A forecast of a model not fitted on, with its interval.
``JUMP`` (yellow)
    The stretch of the ladder where a harsh curve jumps (a light shade).

:func:`metric_colour` gives a metric's colour from its kind
(:func:`miragelab.metric_facts.is_harsh`); :func:`sequence_colours` the colours
of an ordered family of curves (answer length ``L``, threshold ``c``);
:data:`CATEGORY` those of unordered series. Axes against a scale (parameters,
tokens, steps, compute) are log-x (:func:`log_x`).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import NullFormatter

from miragelab.metric_facts import is_continuous, is_harsh

__all__ = [
    "CATEGORY",
    "CONTINUOUS",
    "FONT",
    "FORECAST",
    "HARSH",
    "INK",
    "JUMP",
    "MUTED",
    "SIZES",
    "VERDICT_COLOURS",
    "finish",
    "log_x",
    "metric_colour",
    "paper_figure",
    "sequence_colours",
    "wrap",
]

HARSH = "#D55E00"
CONTINUOUS = "#0072B2"
INK = "#000000"
FORECAST = "#E69F00"
JUMP = "#F0E442"
MUTED = "#7F7F7F"
#: unordered series, in order of use (the colours with a meaning above come last)
CATEGORY = ("#009E73", "#CC79A7", "#56B4E9", "#000000", "#0072B2", "#D55E00")
#: a verdict's colour: genuine is the harsh colour (the jump is real), mirage green
VERDICT_COLOURS = {
    "mirage": "#009E73",
    "genuine": HARSH,
    "smooth": "#555555",
    "inconclusive": "#B07A00",
}

#: DejaVu Sans ships with matplotlib, so every machine draws the same glyphs
FONT = "DejaVu Sans"
#: font size in points of each role of text
SIZES = {"suptitle": 11.0, "title": 10.0, "label": 9.0, "tick": 8.0, "legend": 8.0, "note": 8.0}


def metric_colour(metric: str) -> str:
    """``HARSH`` for a harsh metric, ``CONTINUOUS`` for a continuous one, else ``INK``."""
    if is_harsh(metric):
        return HARSH
    if is_continuous(metric):
        return CONTINUOUS
    return INK


#: the light and dark ends of the shades of a kind of metric (its colour in between)
_SHADES = {
    "harsh": ("#F3B58A", HARSH, "#5E2A00"),
    "continuous": ("#A6CBE8", CONTINUOUS, "#00304D"),
}


def sequence_colours(n: int, kind: str | None = None) -> list[tuple[float, ...]]:
    """``n`` colours of an ordered family of curves (answer length ``L``, threshold ``c``),
    light to dark.

    ``kind`` ``"harsh"`` or ``"continuous"``: shades of that kind's colour, so curves
    of a harsh metric stay vermillion and those of a continuous one blue; None:
    viridis, for a family drawn across panels of both kinds (its yellow end is left
    out: it does not show on white paper).
    """
    if kind is None:
        return [tuple(c) for c in colormaps["viridis"](np.linspace(0.0, 0.85, max(n, 0)))]
    if kind not in _SHADES:
        raise ValueError(f"kind must be 'harsh', 'continuous' or None, not {kind!r}")
    cmap = LinearSegmentedColormap.from_list(kind, _SHADES[kind])
    points = np.linspace(0.0, 1.0, n) if n > 1 else np.full(max(n, 0), 0.5)  # 0.5: the colour
    return [tuple(c) for c in cmap(points)]


def wrap(text: str, inches: float, role: str = "title", max_lines: int = 3) -> str:
    """``text`` broken into lines that fit ``inches`` at the size of ``role`` (at most
    ``max_lines``, the last one ending in ``[...]`` when cut). Wrap plain text first,
    then escape it (:func:`miragelab.report.figures.plain_text`), so no escape is split."""
    per_line = max(8, int(inches * 72 / (0.6 * SIZES[role])))
    return textwrap.fill(str(text), width=per_line, max_lines=max_lines)


def paper_figure(
    width: float, height: float, nrows: int = 1, ncols: int = 1, **subplot_kw: object
) -> tuple[Figure, np.ndarray]:
    """A bare figure (no pyplot, no global state) of ``width`` x ``height`` inches with
    constrained layout, and its grid of axes as a 2-d array (``nrows`` x ``ncols``)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, axes


def log_x(ax: Axes) -> None:
    """Put ``ax`` on a log x axis (the scale of parameters, tokens, steps, compute)."""
    ax.set_xscale("log")


def _quiet_minor_labels(ax: Axes) -> None:
    """Label only decades on a log axis that spans one or more of them: the minor
    labels of a longer span collide. A shorter span keeps matplotlib's own labels,
    or it would show no number at all."""
    for axis, limits in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if axis.get_scale() != "log":
            continue
        low, high = sorted(limits)
        if low > 0 and math.isfinite(high) and math.log10(high / low) >= 1.0:
            axis.set_minor_formatter(NullFormatter())


def _size(texts: Sequence[Text], role: str) -> None:
    for text in texts:
        text.set_fontsize(SIZES[role])


def _finish_axes(ax: Axes) -> None:
    _size([ax.title, ax._left_title, ax._right_title], "title")
    _size([ax.xaxis.label, ax.yaxis.label], "label")
    ax.tick_params(which="both", labelsize=SIZES["tick"])
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    legend = ax.get_legend()
    if legend is not None:
        _size(legend.get_texts(), "legend")
        _size([legend.get_title()], "legend")
        legend.set_frame_on(False)
    _quiet_minor_labels(ax)


def finish(fig: Figure) -> Figure:
    """Give ``fig`` the house style (see the module's text) in place; return it.

    Sizes by role: the figure's title, each panel's titles, axis labels, tick
    labels and legends. A figure-level label (``supxlabel``, used for a note
    under the panels) and text placed in a panel keep the size they were given.
    """
    for ax in fig.get_axes():
        _finish_axes(ax)
    for legend in fig.legends:
        _size(legend.get_texts(), "legend")
        _size([legend.get_title()], "legend")
        legend.set_frame_on(False)
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None:
        suptitle.set_fontsize(SIZES["suptitle"])
    for text in fig.findobj(Text):
        text.set_fontfamily(FONT)
    return fig
