"""``mirage score``, ``mirage metrics``, ``mirage schema``: samples tables -> scores tables."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from miragelab.cli._options import (
    BootstrapSeedOption,
    ConfidenceOption,
    check_interval_options,
    err,
    out,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["list_metrics", "schema", "score"]


def score(
    samples: Annotated[
        list[Path],
        typer.Argument(help="Samples tables (.jsonl, .csv, .parquet) or dataset folders."),
    ],
    out_path: Annotated[
        Path, typer.Option("--out", help="Scores table to write (.parquet/.jsonl/.csv).")
    ],
    metrics: Annotated[
        str,
        typer.Option(
            help="Comma-separated metric names, 'all', or 'auto': every metric some sample "
            "has the columns for (see `mirage metrics`)."
        ),
    ] = "auto",
    tokens: Annotated[str, typer.Option(help="Edit-distance tokens: char or word.")] = "char",
    strip: Annotated[bool, typer.Option(help="exact_match: strip surrounding whitespace.")] = True,
    ignore_case: Annotated[
        bool, typer.Option(help="exact_match: compare case-insensitively.")
    ] = False,
    ignore_punctuation: Annotated[
        bool, typer.Option(help="exact_match: drop punctuation before comparing.")
    ] = False,
    confidence: ConfidenceOption = 0.95,
    n_resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000,
    seed: BootstrapSeedOption = 0,
    stream: Annotated[
        bool | None,
        typer.Option(
            "--stream/--in-memory",
            help="Stream record batches with bounded memory (default for dataset folders and "
            "parquet files of 256 MiB and more), or read the samples whole.",
        ),
    ] = None,
    batch_rows: Annotated[int, typer.Option(help="Rows per record batch when streaming.")] = 65536,
) -> None:
    """Rescore saved outputs with any metrics: samples table -> scores table."""
    from miragelab.api import score as score_samples
    from miragelab.tables import write_table

    check_interval_options(confidence, n_resamples)  # named as the flags are
    with err.status(f"scoring {len(samples)} input(s)"):
        scores = score_samples(
            samples,
            metrics,
            confidence=confidence,
            n_resamples=n_resamples,
            random_state=seed,
            stream=stream,
            batch_rows=batch_rows,
            strip=strip,
            ignore_case=ignore_case,
            ignore_punctuation=ignore_punctuation,
            tokens=tokens,
        )
    write_table(scores, out_path)
    _print_scores(scores, confidence)
    out.print(f"wrote {len(scores)} score rows to {out_path}")


def _print_scores(scores: pd.DataFrame, confidence: float) -> None:
    """The scores as a table on stdout, unless there are more than 60 rows."""
    if len(scores) > 60:
        return
    table = Table("task", "family", "model", "metric", "value", f"{confidence:.0%} interval", "n")
    for row in scores.itertuples(index=False):
        table.add_row(
            row.task,
            row.family,
            row.model,
            row.metric,
            f"{row.value:.4g}",
            f"[{row.ci_low:.4g}, {row.ci_high:.4g}]",
            str(row.n),
        )
    out.print(table)


def list_metrics() -> None:
    """List the metrics, the columns each needs, and their direction."""
    from miragelab.metrics import REGISTRY

    table = Table("metric", "needs", "kind", "better", "what")
    for metric in REGISTRY.values():
        table.add_row(
            metric.name,
            ", ".join(metric.needs),
            "0/1" if metric.binary else "continuous",
            "higher" if metric.higher_is_better else "lower",
            metric.doc,
        )
    out.print(table)


def schema() -> None:
    """Print the columns of the samples and scores tables."""
    from miragelab.tables import TABLES

    for spec in TABLES.values():
        table = Table("column", "type", "required", "meaning", title=f"{spec.name} table")
        for f in spec.fields:
            table.add_row(f.name, f.kind, "yes" if f.required else "", f.doc)
        out.print(table)
        out.print(f"one row per ({', '.join(spec.key)})\n")
