"""``mirage score``, ``mirage metrics``, ``mirage schema``: samples tables -> scores tables."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from miragelab.atomic import check_outputs
from miragelab.cli._options import (
    BootstrapSeedOption,
    ConfidenceOption,
    IgnoreCaseOption,
    IgnorePunctuationOption,
    StripOption,
    TokensOption,
    check_count,
    check_interval_options,
    err,
    out,
    print_rows,
    table,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["list_metrics", "schema", "score"]

#: the most rows of one record batch when streaming (memory grows with it)
MAX_BATCH_ROWS = 10_000_000


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
    tokens: TokensOption = "char",
    strip: StripOption = True,
    ignore_case: IgnoreCaseOption = False,
    ignore_punctuation: IgnorePunctuationOption = False,
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
    check_count(batch_rows, "batch-rows", 1, MAX_BATCH_ROWS)
    check_outputs(samples, {"out": out_path})
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
    _print_scores(scores, confidence, out_path)
    out.print(f"wrote {len(scores)} score rows to {out_path}")


def _print_scores(scores: pd.DataFrame, confidence: float, out_path: Path) -> None:
    """The first scores as a table on stdout; the rest are in the written ``out_path``."""
    view = table("task", "family", "model", "metric", "value", f"{confidence:.0%} interval", "n")
    rows = (
        (
            row.task,
            row.family,
            row.model,
            row.metric,
            f"{row.value:.4g}",
            f"[{row.ci_low:.4g}, {row.ci_high:.4g}]",
            str(row.n),
        )
        for row in scores.itertuples(index=False)
    )
    print_rows(view, rows, len(scores), out_path)


def list_metrics() -> None:
    """List the metrics, the columns each needs, and their direction."""
    from miragelab.metrics import REGISTRY

    view = table("metric", "needs", "kind", "better", "what")
    for metric in REGISTRY.values():
        view.add_row(
            metric.name,
            ", ".join(metric.needs),
            "0/1" if metric.binary else "continuous",
            "higher" if metric.higher_is_better else "lower",
            metric.doc,
        )
    out.print(view)


def schema() -> None:
    """Print the columns of the samples and scores tables."""
    from miragelab.tables import TABLES

    for spec in TABLES.values():
        view = table("column", "type", "required", "meaning", title=f"{spec.name} table")
        for f in spec.fields:
            view.add_row(f.name, f.kind, "yes" if f.required else "", f.doc)
        out.print(view)
        out.print(f"one row per ({', '.join(spec.key)})\n")
