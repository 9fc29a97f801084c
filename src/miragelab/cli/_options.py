"""What the commands of ``mirage`` share: the printers, the options, the input checks, and
the handling that turns bad input into one line on stderr and exit code 2.

An option used by several commands is defined here once, as an ``Annotated``
type, so its flag and help text are the same wherever it appears.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from miragelab.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

#: the width of a console that writes to a pipe or file: wide enough that nothing is cut
PIPE_WIDTH = 10_000
#: rows of a long table printed before the line that names the file holding them all
MAX_ROWS = 40


def _console(stderr: bool) -> Console:
    """A console as wide as the terminal, or, writing to a pipe or file (and without
    ``COLUMNS`` set), :data:`PIPE_WIDTH` wide, so that piped output is never cut."""
    stream = sys.stderr if stderr else sys.stdout
    isatty = getattr(stream, "isatty", None)
    piped = not (isatty is not None and isatty()) and "COLUMNS" not in os.environ
    # names from the data are text: "[a]" or "gsm@5shot[strict-match]" is not markup
    return Console(
        stderr=stderr, width=PIPE_WIDTH if piped else None, markup=False, highlight=False
    )


#: standard error: progress, notes, warnings and the one-line errors
err = _console(stderr=True)
#: standard output: what a command found (tables, summaries, the files it wrote)
out = _console(stderr=False)


def table(*headers: str, title: str | None = None) -> Table:
    """A table whose cells fold onto more lines when the terminal is narrow: a task or
    model name is never cut short with an ellipsis."""
    view = Table(title=title)
    for header in headers:
        view.add_column(header, overflow="fold")
    return view


def print_rows(
    view: Table, rows: Iterable[Sequence[str]], total: int, where: str | os.PathLike[str] | None
) -> None:
    """Print ``view`` with the first :data:`MAX_ROWS` of ``total`` rows; when there are
    more, then one line ``N more in WHERE`` (the file that holds them all; ``None``:
    the command wrote none, and the line says to give ``--out``)."""
    for row in itertools.islice(rows, MAX_ROWS):
        view.add_row(*row)
    if view.row_count:
        out.print(view)
    if total > MAX_ROWS:
        rest = f"{total - MAX_ROWS:,} more"
        line = f"{rest} in {where}" if where is not None else f"{rest}: --out FILE writes them all"
        out.print(line)


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
#: the string options of the metrics (``mirage score``, ``mirage compare``)
TokensOption = Annotated[str, typer.Option(help="Edit-distance tokens: char or word.")]
StripOption = Annotated[bool, typer.Option(help="exact_match: strip surrounding whitespace.")]
IgnoreCaseOption = Annotated[bool, typer.Option(help="exact_match: compare case-insensitively.")]
IgnorePunctuationOption = Annotated[
    bool, typer.Option(help="exact_match: drop punctuation before comparing.")
]
ResamplesOption = Annotated[int, typer.Option(help="Resamples for score intervals.")]
ShippedOption = Annotated[bool, typer.Option(help="Use the shipped published results.")]
#: ``--seed`` of the commands whose only randomness is a bootstrap
#: seeds are 64-bit integers >= 0 (what numpy takes)
SEED_MAX = 2**63 - 1
BootstrapSeedOption = Annotated[
    int, typer.Option(help="Seed of the bootstrap.", min=0, max=SEED_MAX)
]
#: ``--n-boot`` of the transition detector's bootstrap test
BootOption = Annotated[int, typer.Option(help="Bootstrap replicates of the test.")]
#: ``--seed`` of the commands that read a built-in task
TaskSeedOption = Annotated[
    int, typer.Option(help="Split seed of a built-in task.", min=0, max=SEED_MAX)
]
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


#: the most resamples of a score interval (``--n-resamples``)
MAX_RESAMPLES = 1_000_000
#: the most bootstrap replicates of the transition test (``--n-boot``)
MAX_BOOT = 100_000


def check_count(value: int | None, field: str, low: int = 1, high: int | None = None) -> None:
    """A count option (where given) in ``low..high``: every size option that sets how
    much work a command does has an upper bound, so no typo runs for ever."""
    if value is None:
        return
    if value < low:
        raise InputError(f"must be >= {low}, got {value}", field=field)
    if high is not None and value > high:
        raise InputError(f"must be <= {high:,}, got {value:,}", field=field)


def check_interval_options(confidence: float, n_resamples: int) -> None:
    """``--confidence`` in (0, 1) and ``--n-resamples`` in 100..:data:`MAX_RESAMPLES`."""
    if not 0 < confidence < 1:
        raise InputError(f"must be in (0, 1), got {confidence}", field="confidence")
    check_resamples(n_resamples)


def check_resamples(n_resamples: int) -> None:
    """``--n-resamples`` in 100..:data:`MAX_RESAMPLES`."""
    check_count(n_resamples, "n-resamples", 100, MAX_RESAMPLES)


def check_boot(n_boot: int) -> None:
    """``--n-boot`` in 99..:data:`MAX_BOOT` (fewer than 99 replicates cannot give
    p-values near 0.01)."""
    check_count(n_boot, "n-boot", 99, MAX_BOOT)


def check_threads(threads: int | None) -> None:
    """``--threads`` >= 1 where given."""
    check_count(threads, "threads")


def named_values(items: Iterable[str], field: str, example: str) -> list[tuple[str, str]]:
    """Repeatable ``NAME=VALUE`` options, split: a missing ``=``, name or value, and a
    name given twice, are input errors naming the option."""
    pairs: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise InputError(f"expected {example}, got {item!r}", field=field)
        if name in pairs:
            raise InputError(f"{field} {name!r} given twice", field=field)
        pairs[name] = value
    return list(pairs.items())


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
    for note in scores.attrs.get("notes", []):  # files skipped, families named
        err.print(f"note: {note}")
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
        err.print("aborted")
        sys.exit(130)
    except InputError as exc:
        err.print(f"error: {exc}", soft_wrap=True)
        sys.exit(2)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        err.print(f"error: {where}{exc.strerror or exc}", soft_wrap=True)
        sys.exit(2)
    except Exception as exc:
        if not is_usage_error(exc):
            raise
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        message = " ".join(exc.format_message().split())
        if not message:  # a bare group: its help was printed already
            sys.exit(2)
        err.print(f"error: {message}{hint}", soft_wrap=True)
        sys.exit(2)
    if isinstance(code, int) and code:
        sys.exit(code)


def is_usage_error(exc: Exception) -> bool:
    """A bad option or value on the command line (click's UsageError, as typer raises it)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return "UsageError" in names and hasattr(exc, "format_message")
