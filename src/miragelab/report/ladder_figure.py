"""The figures and tables of ``mirage forecast``: one figure per task, both steps shown."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from miragelab.report.figures import plain_text, save_figure, slug
from miragelab.report.style import (
    CATEGORY,
    FORECAST,
    HARSH,
    INK,
    log_x,
    paper_figure,
    sequence_colours,
)
from miragelab.scale_forecast import LadderForecast
from miragelab.tables import write_table

__all__ = ["plot_forecast_errors", "plot_ladder_forecast", "write_ladder_outputs"]


FORECAST_COLOUR, OBSERVED_COLOUR = FORECAST, INK


def _mark(ax, x: float, y: float, name: str, observed: bool) -> None:  # noqa: ANN001
    """A target's forecast (star) or observed value (cross), where both numbers exist."""
    if not (np.isfinite(x) and np.isfinite(y)):
        return
    ax.scatter(
        x,
        y,
        marker="x" if observed else "*",
        s=60 if observed else 90,
        color=OBSERVED_COLOUR if observed else FORECAST_COLOUR,
        zorder=5,
        label=plain_text(f"{name} {'observed' if observed else 'forecast'}"),
    )


def plot_ladder_forecast(result: LadderForecast, task: str, method: str) -> Figure:
    """Left: step 1, each run's last loss against N with the fit along each budget
    (tokens per parameter), and each target's forecast and observed loss. Right:
    accuracy against the intermediate loss (or compute, for the one-step route) at the
    kept checkpoints, the fit, and each target's interval and observed value. The
    one-step route has no step 1: its figure is the right panel alone."""
    lad = result.ladders[(task, method)]
    fits = result.fits.get((task, method))
    rows = result.table[(result.table["task"] == task) & (result.table["method"] == method)]
    a = lad.anchors
    step1, step2 = fits if fits is not None else (None, None)
    fig, grid = paper_figure(10, 4, 1, 2) if step1 is not None else paper_figure(5.5, 4)
    acc_ax = grid[0, -1]
    if step1 is not None:
        loss_ax = grid[0, 0]
        budget = np.round(np.log(a["tokens"] / a["params"]), 1)  # runs of one budget share it
        n_grid = np.geomspace(a["params"].min() / 1.2, rows["target_params"].max() * 1.2)
        budgets = np.unique(budget)
        for colour, value in zip(sequence_colours(budgets.size), budgets, strict=True):
            run = a[budget == value]
            ratio = float(np.median(run["tokens"] / run["params"]))
            loss_ax.scatter(run["params"], run["loss"], s=18, color=colour, zorder=3,
                            label=f"{ratio:.3g} tokens/parameter")  # fmt: skip
            loss_ax.plot(n_grid, step1.predict(n_grid, n_grid * ratio), color=colour, lw=0.8)
        for _, r in rows.iterrows():
            _mark(loss_ax, r["target_params"], r["predicted_loss"], r["target_name"], False)
            _mark(loss_ax, r["target_params"], r["observed_loss"], r["target_name"], True)
        log_x(loss_ax)
        loss_ax.set_xlabel("parameters N")
        loss_ax.set_ylabel("intermediate cross-entropy (nats)")
        loss_ax.set_title("step 1: last checkpoint of each run")
        loss_ax.legend()
    if step1 is not None:
        x, x_target, x_observed = lad.points["loss"], rows["predicted_loss"], rows["observed_loss"]
        acc_ax.set_xlabel("intermediate cross-entropy (nats, lower is better)")
    else:
        x = a["flops"]
        x_target = x_observed = rows["target_flops"]
        log_x(acc_ax)
        acc_ax.set_xlabel("training compute (FLOPs)")
    y = lad.points["acc"] if step1 is not None else a["acc"]
    acc_ax.scatter(x, y, s=4 if step1 is not None else 18, alpha=0.5, color=HARSH,
                   label="ladder")  # fmt: skip
    if step2 is not None:
        # the one-step route is fitted on the natural log of the compute
        ends = np.array([np.nanmin([np.nanmin(x), np.nanmin(x_target)]),
                         np.nanmax([np.nanmax(x), np.nanmax(x_target)])])  # fmt: skip
        if step1 is None:
            ends = np.log(ends)
        lo, hi = ends
        grid = np.linspace(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo), 200)
        shown = grid if step1 is not None else np.exp(grid)
        acc_ax.plot(shown, step2.predict(grid), color=HARSH, lw=1.2, label="fit")
    for (_, r), xt, xo in zip(rows.iterrows(), x_target, x_observed, strict=True):
        if np.isfinite(r["predicted"]):
            acc_ax.errorbar(
                xt,
                r["predicted"],
                yerr=[[r["predicted"] - r["ci_low"]], [r["ci_high"] - r["predicted"]]],
                fmt="none",
                color=FORECAST_COLOUR,
                capsize=3,
            )
        _mark(acc_ax, xt, r["predicted"], r["target_name"], False)
        _mark(acc_ax, xo, r["observed"], r["target_name"], True)
    if step1 is not None:
        acc_ax.invert_xaxis()
    acc_ax.set_ylabel("accuracy")
    acc_ax.set_title(plain_text(f"step 2: {method}" if step1 is not None else method))
    acc_ax.legend()
    fig.suptitle(plain_text(task))
    return fig


def write_ladder_outputs(
    result: LadderForecast, out_dir: str | os.PathLike[str]
) -> dict[str, Path]:
    """``forecast.csv`` (and ``.parquet``), ``backtest.csv``, and per task a figure of the
    default method, ``figures/<task>.png``/``.svg``."""
    out = Path(out_dir)
    paths = {
        "csv": write_table(result.table, out / "forecast.csv"),
        "parquet": write_table(result.table, out / "forecast.parquet"),
        "backtest": write_table(result.backtest, out / "backtest.csv"),
    }
    figures = out / "figures"
    figures.mkdir(exist_ok=True)
    default = result.table.loc[result.table["default"], "method"]
    method = str(default.iloc[0]) if len(default) else str(result.table["method"].iloc[0])
    for task in dict.fromkeys(result.table["task"]):
        if (task, method) not in result.ladders:
            continue
        fig = plot_ladder_forecast(result, task, method)
        for fmt, path in save_figure(fig, figures / slug(task)).items():
            paths[f"{task}.{fmt}"] = path
    return paths


def plot_forecast_errors(rows: pd.DataFrame, published: pd.DataFrame | None = None) -> Figure:
    """Left: each task's forecast (star) with its interval and the observed value (cross).
    Right: the absolute errors in accuracy points, beside ``published``'s columns (one
    bar per column, indexed by task) where given."""
    fig, ((acc_ax, err_ax),) = paper_figure(10, 4, 1, 2)
    x = np.arange(len(rows))
    labels = [plain_text(t) for t in rows["task"]]
    acc_ax.errorbar(
        x,
        rows["predicted"],
        yerr=[rows["predicted"] - rows["ci_low"], rows["ci_high"] - rows["predicted"]],
        fmt="*",
        color=FORECAST_COLOUR,
        capsize=3,
        label="forecast and interval",
    )
    acc_ax.scatter(
        x, rows["observed"], marker="x", color=OBSERVED_COLOUR, zorder=5, label="observed"
    )
    acc_ax.set_ylabel("accuracy")
    err_ax.set_ylabel("|error| (accuracy points)")
    columns = {"this forecast": 100 * rows["abs_error"].to_numpy(dtype=float)}
    if published is not None:
        for name in published.columns:
            columns[f"published: {name}"] = published[name].reindex(rows["task"]).to_numpy(float)
    width = 0.8 / len(columns)
    for i, (name, values) in enumerate(columns.items()):
        colour = FORECAST_COLOUR if i == 0 else CATEGORY[(i - 1) % len(CATEGORY)]
        offset = (i - (len(columns) - 1) / 2) * width
        err_ax.bar(x + offset, values, width, color=colour, label=plain_text(name))
    for ax in (acc_ax, err_ax):
        ax.set_xticks(x, labels, rotation=45, ha="right")
        ax.legend()
    return fig
