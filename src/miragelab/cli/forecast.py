"""``mirage forecast``: a larger model's accuracy from a ladder over (N, D)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from miragelab.cli._options import (
    BootstrapSeedOption,
    FiguresOutOption,
    HigherIsBetter,
    check_count,
    direction_items,
    err,
    load_directed_scores,
    out,
    print_rows,
    table,
)
from miragelab.errors import InputError

__all__ = ["forecast"]


def forecast(
    scores: Annotated[list[Path], typer.Argument(help="Scores tables (mirage ingest runs).")],
    harsh: Annotated[str, typer.Option(help="Metric to forecast (accuracy).")],
    soft: Annotated[
        str | None,
        typer.Option(help="Continuous metric of step 1 (task loss); none: one step in compute."),
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME:params=N,tokens=D[,flops=C]", help="A model to forecast (repeatable)."
        ),
    ] = None,
    holdout: Annotated[
        int | None,
        typer.Option(help="Instead of --target: the K largest sizes are the targets."),
    ] = None,
    family: Annotated[
        str | None, typer.Option(help="The ladder's family, where the scores hold several.")
    ] = None,
    length: Annotated[
        str | None,
        typer.Option(
            metavar="L|auto",
            help="Answer length in the loss's tokens: adds the paper's p**L route.",
        ),
    ] = None,
    out_dir: FiguresOutOption = Path("mirage-forecast"),
    task: Annotated[
        list[str] | None, typer.Option(help="Tasks to forecast (default: all with both metrics).")
    ] = None,
    soft_task: Annotated[
        str | None,
        typer.Option(help="A task whose loss is a further intermediate (C4 cross-entropy)."),
    ] = None,
    chance: Annotated[
        list[str] | None,
        typer.Option(metavar="TASK=P", help="Chance accuracy: the floor of step 2 (repeatable)."),
    ] = None,
    last: Annotated[
        int, typer.Option(help="Step 1 anchors each run on the mean of its last K checkpoints.")
    ] = 1,
    skip: Annotated[
        float, typer.Option(help="Share of each run's first checkpoints left out of step 2.")
    ] = 0.1,
    smooth: Annotated[
        int, typer.Option(help="Step 2 smooths each run by a moving average of K evaluations.")
    ] = 5,
    n_boot: Annotated[int, typer.Option(help="Bootstrap draws of each interval.")] = 200,
    confidence: Annotated[float, typer.Option(help="Level of the intervals.")] = 0.9,
    seed: BootstrapSeedOption = 0,
    higher_is_better: HigherIsBetter = None,
) -> None:
    """Forecast a larger model's accuracy from a ladder over parameters and tokens."""
    from miragelab.atomic import staged_folder
    from miragelab.cli._options import named_values
    from miragelab.forecast import check_length
    from miragelab.report.ladder_figure import write_ladder_outputs
    from miragelab.scale_forecast import Settings, forecast_ladder, largest_models, parse_target

    check_count(n_boot, "n-boot", 20, 100_000)
    if bool(target) == (holdout is not None):
        raise InputError("give either --target (repeatable) or --holdout K", field="target")
    if holdout is not None:
        check_count(holdout, "holdout", 1, 1_000)
    targets = [parse_target(t) for t in target or []]
    if len({t.name for t in targets}) != len(targets):
        raise InputError("a target name is given twice", field="target")
    answer_length = None if length is None else "auto" if length == "auto" else check_length(length)
    floors = dict(named_values(chance or [], "chance", "TASK=0.25"))  # checked by the fit
    overrides = direction_items(higher_is_better)
    check_count(last, "last", 1, 1_000)
    check_count(smooth, "smooth", 1, 1_000)
    settings = Settings(skip=skip, smooth=smooth, last=last, n_boot=n_boot, confidence=confidence)
    with staged_folder(out_dir, scores) as stage:
        scores_table = load_directed_scores(scores, False, overrides)
        if holdout is not None:
            targets = largest_models(scores_table, holdout, family=family)
        with err.status("fitting the ladder"):
            result = forecast_ladder(
                scores_table,
                targets,
                harsh=harsh,
                soft=soft,
                family=family,
                tasks=task,
                soft_task=soft_task,
                length=answer_length,
                chance=floors,
                settings=settings,
                random_state=seed,
            )
        paths = write_ladder_outputs(result, stage)
    for note in result.notes:
        err.print(f"note: {note}")
    rows = result.table[result.table["default"]]
    view = table("task", "target", "method", "predicted", "interval", "observed", "|error| pts")
    print_rows(
        view,
        (
            (
                r.task,
                r.target_name,
                r.method,
                f"{r.predicted:.3f}",
                f"[{r.ci_low:.3f}, {r.ci_high:.3f}]",
                f"{r.observed:.3f}",
                f"{100 * r.abs_error:.1f}",
            )
            for r in rows.itertuples()
        ),
        len(rows),
        Path(out_dir) / "forecast.csv",
    )
    errors = rows["abs_error"].dropna()
    if len(errors):
        covered = (
            (rows["ci_low"] <= rows["observed"]) & (rows["observed"] <= rows["ci_high"])
        ).sum()
        out.print(
            f"mean |error| {100 * errors.mean():.2f} points over {len(errors)} forecast(s); "
            f"{covered} of {len(errors)} observed values inside their interval"
        )
    out.print(f"wrote {len(paths)} files to {out_dir}")
