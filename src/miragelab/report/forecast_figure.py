"""The back-test figure: loss fitted on small models, accuracy forecast for the largest."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from miragelab.forecast import Forecast
from miragelab.report.figures import plain_text, save_figure
from miragelab.report.style import CONTINUOUS, HARSH, log_x, paper_figure
from miragelab.scaling import fit_sigmoid, predict_exact_match
from miragelab.tables import write_table

__all__ = ["plot_forecast", "write_forecast_outputs"]


def plot_forecast(result: Forecast, title: str = "") -> Figure:
    """Left: cross-entropy and its power law. Right: accuracy, p**L forecast and sigmoid.

    The continuous metric (cross-entropy) and what is forecast from it are blue,
    the harsh one (accuracy) and the sigmoid fitted to it vermillion; the held-out
    models are hollow. ``title`` is drawn as plain text
    (:func:`~miragelab.report.figures.plain_text`).
    """
    curve = result.curve
    axis = curve.columns[0]
    x = curve[axis].to_numpy(dtype=float)
    held = curve["held_out"].to_numpy(dtype=bool)
    grid = np.geomspace(x.min() / 1.5, x.max() * 1.5, 200)
    fig, ((loss_ax, acc_ax),) = paper_figure(9.5, 3.8, 1, 2)
    for ax, column, colour in ((loss_ax, "cross_entropy", CONTINUOUS), (acc_ax, "observed", HARSH)):
        y = curve[column].to_numpy(dtype=float)
        ax.scatter(x[~held], y[~held], color=colour, zorder=3, label="fitted on")
        ax.scatter(x[held], y[held], facecolor="white", edgecolor=colour, lw=1.5, zorder=3,
                   label="held out")  # fmt: skip
        log_x(ax)
        ax.set_xlabel(plain_text(axis))
    loss_ax.plot(grid, result.fit.predict(grid), color=CONTINUOUS, lw=1, label="power law")
    loss_ax.set_ylabel("per-token cross-entropy (nats)")
    loss_ax.set_yscale("log")
    loss_ax.set_title(f"power law: alpha = {result.fit.alpha:.3f}")
    acc_ax.plot(
        grid,
        predict_exact_match(result.fit, grid, result.length),
        color=CONTINUOUS,
        label=f"exp(-CE)^L, L = {result.length:.3g}",
    )
    sigmoid = fit_sigmoid(np.log(x[~held]), curve["observed"].to_numpy(dtype=float)[~held])
    acc_ax.plot(grid, sigmoid.predict(np.log(grid)), color=HARSH, ls="--", label="sigmoid")
    acc_ax.set_ylabel("accuracy")
    acc_ax.set_ylim(0, 1)
    acc_ax.legend()
    if title:
        fig.suptitle(plain_text(title))
    return fig


def write_forecast_outputs(result: Forecast, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """``backtest.csv``/``.parquet`` and ``forecast.png``/``.svg``."""
    out = Path(out_dir)
    paths = {
        "csv": write_table(result.table, out / "backtest.csv"),
        "parquet": write_table(result.table, out / "backtest.parquet"),
    }
    row = result.table.iloc[0]
    title = (
        f"{row['task']} · {row['family']}: forecast {row['harsh_metric']} from {row['soft_metric']}"
    )
    paths.update(save_figure(plot_forecast(result, title), out / "forecast"))
    return paths
