"""The figures and tables of ``mirage forecast``: one figure per task, both steps shown."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from miragelab.report.figures import plain_text, save_figure, slug
from miragelab.scale_forecast import LadderForecast
from miragelab.tables import write_table

__all__ = ["plot_ladder_forecast", "write_ladder_outputs"]


def plot_ladder_forecast(result: LadderForecast, task: str, method: str) -> Figure:
    """Left: step 1, each run's last loss against N, the fit, each target's forecast.
    Right: step 2, accuracy against the loss at every kept checkpoint, the sigmoid, and
    each target's band (interval) and observed value."""
    lad = result.ladders[(task, method)]
    fits = result.fits.get((task, method))
    rows = result.table[(result.table["task"] == task) & (result.table["method"] == method)]
    fig = Figure(figsize=(10, 4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    a = lad.anchors
    step1 = fits[0] if fits is not None else None
    if step1 is not None:
        tokens = np.unique(a["tokens"] / a["params"])
        n_grid = np.geomspace(a["params"].min() / 1.2, max(rows["target_params"].max(), 1) * 1.2)
        for ratio in tokens:
            run = a[np.isclose(a["tokens"] / a["params"], ratio)]
            loss_ax.scatter(run["params"], run["loss"], s=18, zorder=3)
            loss_ax.plot(n_grid, step1.predict(n_grid, n_grid * ratio), lw=0.8, alpha=0.7)
        loss_ax.set_xscale("log")
        loss_ax.set_xlabel("parameters N")
        loss_ax.set_ylabel(plain_text("intermediate (step 1)"))
        loss_ax.set_title(plain_text("step 1: last checkpoint of each run"), fontsize=9)
        for _, r in rows.iterrows():
            if np.isfinite(r["predicted_loss"]):
                loss_ax.scatter(
                    r["target_params"],
                    r["predicted_loss"],
                    marker="*",
                    s=90,
                    color="#c0392b",
                    zorder=4,
                    label=plain_text(f"{r['target_name']} forecast"),
                )
            if np.isfinite(r["observed_loss"]):
                loss_ax.scatter(
                    r["target_params"],
                    r["observed_loss"],
                    marker="x",
                    s=60,
                    color="black",
                    zorder=4,
                    label=plain_text(f"{r['target_name']} observed"),
                )
        loss_ax.legend(fontsize=7)
    else:
        loss_ax.set_axis_off()
    p = lad.points
    acc_ax.scatter(
        p["loss"], p["acc"], s=4, alpha=0.35, color="#2c3e50", label="ladder checkpoints"
    )
    step2 = fits[1] if fits is not None else None
    if step1 is not None and step2 is not None:
        lo = min(float(p["loss"].min()), float(np.nanmin(rows["predicted_loss"]))) * 0.95
        grid = np.linspace(lo, float(p["loss"].max()) * 1.02, 200)
        acc_ax.plot(grid, step2.predict(grid), color="#2980b9", lw=1.2, label="step 2 fit")
        for _, r in rows.iterrows():
            if np.isfinite(r["predicted"]):
                acc_ax.errorbar(
                    r["predicted_loss"],
                    r["predicted"],
                    yerr=[[r["predicted"] - r["ci_low"]], [r["ci_high"] - r["predicted"]]],
                    fmt="*",
                    color="#c0392b",
                    ms=10,
                    capsize=3,
                    label=plain_text(f"{r['target_name']} forecast and interval"),
                )
            if np.isfinite(r["observed"]) and np.isfinite(r["observed_loss"]):
                acc_ax.scatter(
                    r["observed_loss"],
                    r["observed"],
                    marker="x",
                    s=60,
                    color="black",
                    zorder=5,
                    label=plain_text(f"{r['target_name']} observed"),
                )
        acc_ax.invert_xaxis()
    acc_ax.set_xlabel(plain_text("intermediate (lower is better)"))
    acc_ax.set_ylabel("accuracy")
    acc_ax.set_title(plain_text(f"step 2: {method}"), fontsize=9)
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
