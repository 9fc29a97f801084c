"""``mirage ingest ...``: saved lm-eval, HELM and Inspect outputs -> the samples table;
training logs -> the scores table.

The outputs of an evaluation harness hold what each model answered; ingesting
them once lets ``mirage score`` rescore them with any metric, without the models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from miragelab.cli._options import HigherIsBetter, direction_items, err, out
from miragelab.errors import InputError

__all__ = ["ingest_app"]

ingest_app = typer.Typer(
    help="Turn saved lm-eval-harness samples, HELM runs and Inspect logs into a samples "
    "table, and training logs into a scores table.",
    no_args_is_help=True,
)
ModelOption = Annotated[
    str | None, typer.Option("--model", help="Model name (default: read from the files).")
]
FamilyOption = Annotated[
    str | None,
    typer.Option(
        "--family",
        help="Model family (default: the model name without its size; models whose names "
        "carry none form one family named after their common folder).",
    ),
]
ParamsOption = Annotated[
    str | None,
    typer.Option("--params", help="Parameter count, e.g. 1.4b or 160000000 (default: the files)."),
]


def _check_names(**names: str | None) -> None:
    """``--model`` and ``--family`` given by hand follow the tables' rule for names."""
    from miragelab.schema import SAMPLES, BadValue, coerce_value

    for field, value in names.items():
        if value is not None:
            try:  # the tables' name rule: not blank, no control characters
                coerce_value(value, SAMPLES.field(field))
            except BadValue as exc:
                raise InputError(str(exc), field=field) from None


def _print_done(line: str) -> None:
    """A line naming a file: its ``[brackets]`` are the name's, not markup."""
    out.print(line)


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        err.print(f"note: {note}")


def _print_tasks(tasks: dict[str, int]) -> None:
    if len(tasks) > 40:
        return
    table = Table("task", "samples")
    for task, n in tasks.items():
        table.add_row(Text(task), f"{n:,}")  # a task may hold [brackets]: not markup
    out.print(table)


@ingest_app.command("lm-eval")
def lm_eval(
    paths: Annotated[
        list[Path],
        typer.Argument(help="samples_*.jsonl files, or folders searched for them (lm-eval 0.4)."),
    ],
    out_path: Annotated[Path, typer.Option("--out", help="Samples table to write (.parquet).")],
    model: ModelOption = None,
    family: FamilyOption = None,
    params: ParamsOption = None,
    split_targets: Annotated[
        bool,
        typer.Option(
            "--split-targets/--one-target",
            help="Read a generation target logged as str(list), e.g. \"['Paris', 'paris']\", "
            "as its list of golds (lm-eval >= 0.4.3 logs multi-target tasks that way).",
        ),
    ] = True,
) -> None:
    """lm-eval-harness --log_samples files (with their results_*.json) -> samples table."""
    from miragelab.atomic import check_outputs
    from miragelab.sources.lm_eval_samples import ingest_lm_eval, total_bytes

    check_outputs(paths, {"out": out_path})
    _check_names(model=model, family=family)
    total = total_bytes(paths)
    columns = (
        TextColumn("[bold]reading samples"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as progress:
        bar = progress.add_task("read", total=total)
        summary = ingest_lm_eval(
            paths,
            out_path,
            model=model,
            family=family,
            params=params,
            on_bytes=lambda n: progress.advance(bar, n),
            split_targets=split_targets,
        )
    _print_notes(summary.notes)
    _print_tasks(summary.tasks)
    _print_done(f"wrote {summary.rows:,} samples from {summary.files} file(s) to {summary.out}")


@ingest_app.command("helm")
def helm(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="HELM run folders (each with scenario_state.json).")
    ],
    out_path: Annotated[Path, typer.Option("--out", help="Samples table to write (.parquet).")],
    scores_out: Annotated[
        Path | None,
        typer.Option("--scores-out", help="Also write the runs' stats.json as a scores table."),
    ] = None,
    model: ModelOption = None,
    family: FamilyOption = None,
    params: ParamsOption = None,
    perturbations: Annotated[
        bool,
        typer.Option(
            "--perturbations",
            help="Keep perturbed instances (robustness, fairness) and their statistics, each "
            "perturbation as its own task: TASK\\[perturbation=NAME].",
        ),
    ] = False,
) -> None:
    """HELM run folders -> samples table (and, with --scores-out, their statistics)."""
    from miragelab.atomic import check_outputs
    from miragelab.sources.helm import ingest_helm

    check_outputs(run_dirs, {"out": out_path, "scores-out": scores_out})
    _check_names(model=model, family=family)
    with err.status(f"reading {len(run_dirs)} HELM run(s)"):
        summary = ingest_helm(
            run_dirs,
            out_path,
            scores_out=scores_out,
            model=model,
            family=family,
            params=params,
            perturbations=perturbations,
        )
    _print_notes(summary.notes)
    _print_tasks(summary.tasks)
    if summary.skipped_perturbed:
        err.print(
            f"skipped {summary.skipped_perturbed:,} request(s) of perturbed instances "
            "(robustness, fairness); --perturbations keeps them as tasks of their own"
        )
    _print_done(f"wrote {summary.rows:,} samples from {summary.runs} run(s) to {summary.out}")
    if summary.scores_out is not None:
        _print_done(f"wrote {summary.score_rows:,} score rows to {summary.scores_out}")


@ingest_app.command("inspect")
def inspect_logs(
    logs: Annotated[
        list[Path],
        typer.Argument(
            help="Inspect logs (.eval or .json), or folders searched for them recursively."
        ),
    ],
    out_path: Annotated[Path, typer.Option("--out", help="Samples table to write (.parquet).")],
    scores_out: Annotated[
        Path | None,
        typer.Option("--scores-out", help="Also write the logs' own results as a scores table."),
    ] = None,
    model: ModelOption = None,
    family: FamilyOption = None,
    params: ParamsOption = None,
    sizes: Annotated[
        Path | None,
        typer.Option(
            "--sizes", help="CSV model,params: the size of each model (default: its name)."
        ),
    ] = None,
) -> None:
    """Inspect eval logs -> samples table (and, with --scores-out, their own scores)."""
    from miragelab.atomic import check_outputs
    from miragelab.sources.inspect_logs import ingest_inspect

    check_outputs([*logs, sizes], {"out": out_path, "scores-out": scores_out})
    _check_names(model=model, family=family)
    with err.status(f"reading {len(logs)} Inspect log path(s)"):
        summary = ingest_inspect(
            logs,
            out_path,
            scores_out=scores_out,
            model=model,
            family=family,
            params=params,
            sizes=sizes,
        )
    _print_notes(summary.notes)
    _print_tasks(summary.tasks)
    _print_done(f"wrote {summary.rows:,} samples from {summary.logs} log(s) to {summary.out}")
    if summary.scores_out is not None:
        _print_done(f"wrote {summary.score_rows:,} score rows to {summary.scores_out}")


@ingest_app.command("runs")
def runs(
    paths: Annotated[list[Path], typer.Argument(help="Run exports (CSV), or folders of them.")],
    manifest: Annotated[
        Path,
        typer.Option(help="CSV: run, params, flops_per_token [, file, tokens, replicate_of]."),
    ],
    family: Annotated[str, typer.Option(help="The ladder's family name.")],
    out_path: Annotated[Path, typer.Option("--out", help="Scores table to write.")],
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--column",
            metavar="REGEX=METRIC",
            help="Map columns whose whole name matches REGEX (with a (?P<task>...) group) to "
            "METRIC; replaces the default OLMo/W&B patterns (repeatable).",
        ),
    ] = None,
    average: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME=TASK1,TASK2,...",
            help="Add a task that is the plain mean of others (repeatable).",
        ),
    ] = None,
    higher_is_better: HigherIsBetter = None,
) -> None:
    """Training-log exports (one row per checkpoint) + a manifest -> scores table."""
    from miragelab.atomic import check_outputs
    from miragelab.sources.runs import DEFAULT_PATTERNS, load_runs, parse_averages, parse_patterns
    from miragelab.tables import write_table

    check_outputs([*paths, manifest], {"out": out_path})
    patterns = parse_patterns(column) if column else DEFAULT_PATTERNS
    averages = parse_averages(average or [])
    overrides = direction_items(higher_is_better)
    with err.status(f"reading {len(paths)} path(s) of runs"):
        scores = load_runs(
            paths, manifest, family, patterns=patterns, averages=averages, directions=overrides
        )
    write_table(scores, out_path)
    models = scores["model"].nunique()
    out.print(
        f"wrote {len(scores):,} scores of {models} run(s), {scores['task'].nunique()} task(s) "
        f"to {out_path}"
    )
