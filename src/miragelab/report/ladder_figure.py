"""The figures and tables of ``mirage forecast``: one figure per task, both steps shown."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from miragelab.report.figures import plain_text, save_figure, slug
from miragelab.scale_forecast import LadderForecast
from miragelab.tables import write_table

__all__ = ["plot_forecast_errors", "plot_ladder_forecast", "write_ladder_outputs"]


FORECAST_COLOUR, OBSERVED_COLOUR = "#c0392b", "black"


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
    kept checkpoints, the fit, and each target's interval and observed value."""
    lad = result.ladders[(task, method)]
    fits = result.fits.get((task, method))
    rows = result.table[(result.table["task"] == task) & (result.table["method"] == method)]
    fig = Figure(figsize=(10, 4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    a = lad.anchors
    step1, step2 = fits if fits is not None else (None, None)
    if step1 is not None:
        budget = np.round(np.log(a["tokens"] / a["params"]), 1)  # runs of one budget share it
        n_grid = np.geomspace(a["params"].min() / 1.2, rows["target_params"].max() * 1.2)
        for colour, value in enumerate(np.unique(budget)):
            run = a[budget == value]
            ratio = float(np.median(run["tokens"] / run["params"]))
            loss_ax.scatter(run["params"], run["loss"], s=18, color=f"C{colour}", zorder=3)
            loss_ax.plot(n_grid, step1.predict(n_grid, n_grid * ratio), color=f"C{colour}", lw=0.8)
        for _, r in rows.iterrows():
            _mark(loss_ax, r["target_params"], r["predicted_loss"], r["target_name"], False)
            _mark(loss_ax, r["target_params"], r["observed_loss"], r["target_name"], True)
        loss_ax.set_xscale("log")
        loss_ax.set_xlabel("parameters N")
        loss_ax.set_ylabel("intermediate cross-entropy (nats)")
        loss_ax.set_title("step 1: last checkpoint of each run", fontsize=9)
        loss_ax.legend(fontsize=7)
    else:
        loss_ax.set_axis_off()
    if step1 is not None:
        x, x_target, x_observed = lad.points["loss"], rows["predicted_loss"], rows["observed_loss"]
        acc_ax.set_xlabel("intermediate cross-entropy (nats, lower is better)")
    else:
        x = np.log10(a["flops"])
        x_target = x_observed = np.log10(rows["target_flops"])
        acc_ax.set_xlabel("log10 training compute (FLOPs)")
    y = lad.points["acc"] if step1 is not None else a["acc"]
    acc_ax.scatter(x, y, s=4 if step1 is not None else 18, alpha=0.5, color="#2c3e50",
                   label="ladder")  # fmt: skip
    if step2 is not None:
        lo = np.nanmin([np.nanmin(x), np.nanmin(x_target)])
        hi = np.nanmax([np.nanmax(x), np.nanmax(x_target)])
        grid = np.linspace(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo), 200)
        fitted = step2.predict(grid if step1 is not None else grid * np.log(10))
        acc_ax.plot(grid, fitted, color="#2980b9", lw=1.2, label="fit")
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
    acc_ax.set_title(plain_text(f"step 2: {method}" if step1 is not None else method), fontsize=9)
    acc_ax.legend(fontsize=7)
    fig.suptitle(plain_text(task), fontsize=10)
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
    fig = Figure(figsize=(10, 4), layout="constrained")
    acc_ax, err_ax = fig.subplots(1, 2)
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
        colour = FORECAST_COLOUR if i == 0 else f"C{i}"
        offset = (i - (len(columns) - 1) / 2) * width
        err_ax.bar(x + offset, values, width, color=colour, label=plain_text(name))
    for ax in (acc_ax, err_ax):
        ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=7)
        ax.legend(fontsize=7)
    return fig
