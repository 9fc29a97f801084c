"""What the commands of ``mirage`` share: the printers, the options, the input checks, and
the handling that turns bad input into one line on stderr and exit code 2.

An option used by several commands is defined here once, as an ``Annotated``
type, so its flag and help text are the same wherever it appears.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from miragelab.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

#: standard error: progress, notes, warnings and the one-line errors
err = Console(stderr=True)
#: standard output: what a command found (tables, summaries, the files it wrote)
out = Console()

# --------------------------------------------------------------------------- shared options

#: the repeatable ``--higher-is-better METRIC=true|false`` option of the analysis commands
HigherIsBetter = Annotated[
    list[str] | None,
    typer.Option(
        "--higher-is-better",
        metavar="METRIC=true|false",
        help="Direction of a metric, over the table's and the built-in one (repeatable).",
    ),
]
ConfidenceOption = Annotated[float, typer.Option(help="Confidence level of the intervals.")]
ResamplesOption = Annotated[int, typer.Option(help="Resamples for score intervals.")]
ShippedOption = Annotated[bool, typer.Option(help="Use the shipped published results.")]
#: ``--seed`` of the commands whose only randomness is a bootstrap
BootstrapSeedOption = Annotated[int, typer.Option(help="Seed of the bootstrap.")]
#: ``--n-boot`` of the transition detector's bootstrap test
BootOption = Annotated[int, typer.Option(help="Bootstrap replicates of the test.")]
#: ``--seed`` of the commands that read a built-in task
TaskSeedOption = Annotated[int, typer.Option(help="Split seed of a built-in task.")]
#: ``--out`` of the commands that write a folder of tables and figures
FiguresOutOption = Annotated[Path, typer.Option("--out", help="Folder for tables and figures.")]
#: ``--out`` of the commands that write a samples table or dataset
SamplesOutOption = Annotated[
    Path,
    typer.Option(
        "--out",
        help="Samples table to write (.parquet/.jsonl/.csv), or a folder for a "
        "partitioned dataset (task=.../model=.../part-N.parquet).",
    ),
]

# where units of work run: the same options on every command that fans out
ExecutorOption = Annotated[
    str,
    typer.Option(
        "--executor",
        help="Where units run: local (this process, in order) or ray (a Ray cluster; "
        "pip install 'miragelab\\[ray]').",
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Ray cluster to join (auto, HOST:6379, ray://HOST:10001); default RAY_ADDRESS, "
        "else a Ray instance started on this machine.",
    ),
]
CpusPerUnitOption = Annotated[
    float | None,
    typer.Option("--num-cpus-per-unit", help="CPUs each unit holds on Ray (default 1)."),
]
GpusPerUnitOption = Annotated[
    float | None,
    typer.Option("--num-gpus-per-unit", help="GPUs each unit holds on Ray (default 0)."),
]

# --------------------------------------------------------------------------- input checks


def parse_list(text: str, field: str, cast: type = str) -> list:
    """A comma-separated option as a list of ``cast`` values; empty or bad -> input error."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise InputError(f"expected a comma-separated list, got {text!r}", field=field)
    try:
        return [cast(t) for t in items]
    except ValueError:
        raise InputError(
            f"expected a comma-separated list of {cast.__name__}, got {text!r}", field=field
        ) from None


def check_interval_options(confidence: float, n_resamples: int) -> None:
    """``--confidence`` in (0, 1) and ``--n-resamples`` >= 100."""
    if not 0 < confidence < 1:
        raise InputError(f"must be in (0, 1), got {confidence}", field="confidence")
    if n_resamples < 100:
        raise InputError(f"must be >= 100, got {n_resamples}", field="n-resamples")


def check_boot(n_boot: int) -> None:
    """``--n-boot`` >= 99 (fewer replicates cannot give p-values near 0.01)."""
    if n_boot < 99:
        raise InputError(f"must be >= 99, got {n_boot}", field="n-boot")


def check_threads(threads: int | None) -> None:
    """``--threads`` >= 1 where given."""
    if threads is not None and threads < 1:
        raise InputError(f"must be >= 1, got {threads}", field="threads")


def direction_items(items: list[str] | None) -> dict[str, bool]:
    """``--higher-is-better`` items, parsed before anything is loaded."""
    from miragelab.metric_facts import parse_direction_overrides

    return parse_direction_overrides(items or [])


def load_directed_scores(
    paths: Sequence[Path], shipped: bool, overrides: dict[str, bool]
) -> pd.DataFrame:
    """Scores from files/folders (or the shipped ones) with a direction on every row.

    ``--higher-is-better`` wins over the table's direction, which wins over the
    facts table; a metric with none is an input error (exit 2).
    """
    from miragelab.metric_facts import resolve_directions
    from miragelab.sources.published import load_scores_or_shipped

    what = "the shipped published results" if shipped else f"{len(paths)} path(s)"
    with err.status(f"loading {what}"):
        scores = load_scores_or_shipped(list(paths), shipped)
    return resolve_directions(scores, overrides)


# --------------------------------------------------------------------------- errors


def run_app(app: typer.Typer, argv: list[str] | None = None, prog_name: str = "mirage") -> None:
    """Run ``app``, turning bad input into one line on stderr and exit code 2.

    An :class:`~miragelab.errors.InputError`, an ``OSError`` and a bad option
    on the command line each end as ``error: ...`` and exit 2; Ctrl-C as
    ``aborted`` and exit 130. Anything else is a bug and is raised.
    """
    try:
        code = app(args=argv, prog_name=prog_name, standalone_mode=False)
    except typer.Abort:
        err.print("aborted", markup=False)
        sys.exit(130)
    except InputError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        err.print(
            f"error: {where}{exc.strerror or exc}", markup=False, highlight=False, soft_wrap=True
        )
        sys.exit(2)
    except Exception as exc:
        if not is_usage_error(exc):
            raise
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        message = " ".join(exc.format_message().split())
        if not message:  # a bare group: its help was printed already
            sys.exit(2)
        err.print(f"error: {message}{hint}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    if isinstance(code, int) and code:
        sys.exit(code)


def is_usage_error(exc: Exception) -> bool:
    """A bad option or value on the command line (click's UsageError, as typer raises it)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return "UsageError" in names and hasattr(exc, "format_message")
