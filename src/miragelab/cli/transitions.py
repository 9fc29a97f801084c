"""``mirage transitions ...``: genuine transitions, tested on a continuous metric.

``induction --out DIR``
    trains the tiny transformer (:mod:`~miragelab.transitions.induction`),
    writes ``checkpoints.parquet``/``.csv`` (one row per checkpoint),
    ``scores.parquet``/``.csv`` (the run as a scores table),
    ``transitions.parquet``/``.csv`` (the detector per metric),
    ``summary.json`` and ``induction.png``/``.svg``.
``detect SCORES... --out DIR`` (or ``--shipped``)
    runs the detector on every curve of the scores (training-step ladders and
    size ladders), writes ``transitions.parquet``/``.csv`` and one figure per
    curve (detected ones first, at most ``--max-figures``).
``rates --out DIR``
    false-positive rate and power on simulated curves (``rates.csv``).

torch is imported inside the commands that need it; the files are written by
:mod:`miragelab.report.transitions_figures`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from miragelab.atomic import staged_folder
from miragelab.cli._options import (
    MAX_ROWS,
    SEED_MAX,
    BootOption,
    BootstrapSeedOption,
    FiguresOutOption,
    ShippedOption,
    check_boot,
    check_count,
    check_threads,
    err,
    out,
    print_rows,
    table,
)
from miragelab.errors import InputError

__all__ = ["transitions_app"]

transitions_app = typer.Typer(
    help="Genuine transitions: abrupt changes in a continuous metric (induction heads, Pythia).",
    no_args_is_help=True,
)


#: the most training steps of `transitions induction`
MAX_STEPS = 1_000_000
#: the most simulated curves of `transitions rates` (smooth ones; per planted setting)
MAX_SMOOTH = 100_000
MAX_PER_SETTING = 10_000


def _fmt(value: float) -> str:
    return "-" if value != value else f"{value:.4g}"


@transitions_app.command()
def induction(
    out_dir: FiguresOutOption,
    quick: Annotated[bool, typer.Option("--quick", help="Shorter run (about half).")] = False,
    steps: Annotated[
        int | None, typer.Option(help="Training steps (default: the config's).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of data and weights.", min=0, max=SEED_MAX)] = 0,
    threads: Annotated[int, typer.Option(help="torch threads.")] = 1,
    n_boot: BootOption = 499,
) -> None:
    """Train a 2-layer transformer on repeated random tokens; find the induction transition."""
    from miragelab.report.transitions_figures import write_induction_outputs
    from miragelab.transitions.apply import induction_transitions
    from miragelab.transitions.induction import (
        InductionConfig,
        config_dict,
        train_induction,
        with_overrides,
    )

    check_boot(n_boot)
    check_count(steps, "steps", 100, MAX_STEPS)
    check_threads(threads)
    base = InductionConfig.quick() if quick else InductionConfig()
    cfg = with_overrides(base, steps=steps, seed=seed, threads=threads)
    with staged_folder(out_dir) as stage:
        with err.status("training") as status:

            def progress(row: dict[str, float]) -> None:
                status.update(
                    f"step {row['step']}/{cfg.steps}: repeated-part loss "
                    f"{row['loss_repeated']:.3f}, prefix matching {row['prefix_matching']:.2f}"
                )

            run = train_induction(cfg, progress)
        err.print(f"trained {run.params:,} parameters for {cfg.steps} steps in {run.seconds:.1f} s")
        findings = induction_transitions(run.checkpoints, n_boot=n_boot, seed=seed)
        paths = write_induction_outputs(run, findings, config_dict(cfg), stage)
    view = table("metric", "detected", "p", "effect", "change at", "interval", "span")
    for row in findings.table.itertuples(index=False):
        view.add_row(
            row.metric,
            "yes" if row.detected else "no",
            _fmt(row.p_value),
            _fmt(row.effect_size),
            _fmt(row.x_change),
            f"[{_fmt(row.x_low)}, {_fmt(row.x_high)}]",
            f"[{_fmt(row.span_low)}, {_fmt(row.span_high)}]",
        )
    out.print(view)
    where = "inside" if findings.rise_in_span else "outside"
    out.print(
        f"prefix-matching score rises at step {findings.attention_rise:g}: {where} the "
        f"repeated-part loss transition's span"
    )
    out.print(f"wrote {len(paths)} files to {out_dir}")


@transitions_app.command()
def detect(
    scores: Annotated[
        list[Path] | None,
        typer.Argument(help="Scores: lm-eval results, BIG-bench, wide CSVs, tables, folders."),
    ] = None,
    out_dir: FiguresOutOption = Path("mirage-transitions"),
    shipped: ShippedOption = False,
    task: Annotated[str | None, typer.Option(help="Only these tasks, comma-separated.")] = None,
    metric: Annotated[str | None, typer.Option(help="Only these metrics, comma-separated.")] = None,
    axis: Annotated[str | None, typer.Option(help="Only 'step' or 'params' curves.")] = None,
    max_figures: Annotated[int, typer.Option(help="At most this many curve figures.")] = 24,
    n_boot: BootOption = 499,
    seed: BootstrapSeedOption = 0,
) -> None:
    """Test every curve of a scores table for an abrupt transition (log x; log of perplexity)."""
    from miragelab.report.transitions_figures import write_transitions_outputs
    from miragelab.sources.published import load_scores_or_shipped
    from miragelab.transitions.apply import transitions_table

    check_boot(n_boot)
    if axis not in (None, "step", "params"):
        raise InputError(f"expected 'step' or 'params', got {axis!r}", field="axis")
    if max_figures < 0:
        raise InputError(f"must be >= 0, got {max_figures}", field="max-figures")
    tasks = [t.strip() for t in task.split(",") if t.strip()] if task else None
    metrics = [m.strip() for m in metric.split(",") if m.strip()] if metric else None
    with staged_folder(out_dir, scores or []) as stage:
        with err.status("loading scores"):
            scores_table = load_scores_or_shipped(scores or [], shipped)
        with err.status("testing curves"):
            found, results = transitions_table(
                scores_table, tasks=tasks, metrics=metrics, axis=axis, n_boot=n_boot, seed=seed
            )
        if found.empty:
            raise InputError("no curve matches (need a task/metric with >= 2 models or steps)")
        paths = write_transitions_outputs(found, results, stage, max_figures)
    view = table("task", "model / family", "metric", "axis", "detected", "p", "effect", "at")
    shown = found
    if len(found) > MAX_ROWS:  # the detected curves first, as the figures
        shown = found.sort_values("detected", ascending=False, kind="stable")
    print_rows(
        view,
        (
            (
                row.task,
                row.model if row.axis == "step" else row.family,
                row.metric,
                row.axis,
                "yes" if row.detected else "no",
                _fmt(row.p_value),
                _fmt(row.effect_size),
                _fmt(row.x_change),
            )
            for row in shown.itertuples(index=False)
        ),
        len(shown),
        out_dir / "transitions.csv",
    )
    out.print(f"{int(found['detected'].sum())} of {len(found)} curves show a transition")
    out.print(f"wrote {len(paths)} files to {out_dir}")


@transitions_app.command()
def rates(
    out_dir: FiguresOutOption = Path("mirage-transition-rates"),
    n_smooth: Annotated[int, typer.Option(help="Smooth curves simulated.")] = 400,
    n_per_setting: Annotated[int, typer.Option(help="Curves per planted transition.")] = 60,
    seed: BootstrapSeedOption = 0,
) -> None:
    """False-positive rate on smooth theory curves and power on planted transitions."""
    from miragelab.tables import write_table
    from miragelab.transitions.detect import error_rates

    check_count(n_smooth, "n-smooth", 10, MAX_SMOOTH)
    check_count(n_per_setting, "n-per-setting", 3, MAX_PER_SETTING)
    with err.status("simulating"):
        rates_table = error_rates(n_smooth=n_smooth, n_per_setting=n_per_setting, seed=seed)
    with staged_folder(out_dir) as stage:
        write_table(rates_table, stage / "rates.csv")
    path = out_dir / "rates.csv"
    view = table("case", "drop", "width", "curves", "detected", "p <= 0.05", "located")
    for row in rates_table[rates_table["metric"] == "all"].itertuples(index=False):
        view.add_row(
            row.case,
            f"{row.drop:g}",
            f"{row.width:g}",
            str(row.curves),
            f"{row.rate:.1%}",
            f"{row.significant_rate:.1%}",
            "-" if row.located != row.located else f"{row.located:.0%}",
        )
    out.print(view)
    out.print(f"wrote {path}")
