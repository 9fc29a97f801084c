"""``mirage compare``: paired differences of a metric between models on shared examples."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from miragelab.atomic import check_outputs
from miragelab.cli._options import (
    BootstrapSeedOption,
    ConfidenceOption,
    IgnoreCaseOption,
    IgnorePunctuationOption,
    StripOption,
    TokensOption,
    check_interval_options,
    err,
    out,
    print_rows,
    table,
)

__all__ = ["compare"]


def compare(
    samples: Annotated[
        list[Path],
        typer.Argument(help="Samples tables (.jsonl, .csv, .parquet) or dataset folders."),
    ],
    metric: Annotated[str, typer.Option("--metric", help="Metric(s) to compare, comma-separated.")],
    out_path: Annotated[
        Path, typer.Option("--out", help="Comparison table to write (.csv/.jsonl/.parquet).")
    ],
    model_a: Annotated[str | None, typer.Option("--a", help="First model (diff = b - a).")] = None,
    model_b: Annotated[str | None, typer.Option("--b", help="Second model.")] = None,
    adjacent: Annotated[
        bool,
        typer.Option(
            "--adjacent",
            help="Every adjacent pair of each family's ladder: consecutive sizes (each model at "
            "its last step) and consecutive steps of a model that has several.",
        ),
    ] = False,
    confidence: ConfidenceOption = 0.95,
    n_resamples: Annotated[int, typer.Option(help="Paired bootstrap resamples.")] = 2000,
    seed: BootstrapSeedOption = 0,
    tokens: TokensOption = "char",
    strip: StripOption = True,
    ignore_case: IgnoreCaseOption = False,
    ignore_punctuation: IgnorePunctuationOption = False,
) -> None:
    """Paired difference of a metric between two models, or each adjacent pair of a ladder.

    McNemar's exact test for 0/1 metrics, a paired bootstrap otherwise, and
    cluster-robust standard errors when the samples have a cluster column.
    """
    from miragelab.api import compare as compare_samples
    from miragelab.errors import InputError
    from miragelab.tables import write_table

    check_interval_options(confidence, n_resamples)
    if adjacent == (model_a is not None or model_b is not None):
        raise InputError("give --a and --b, or --adjacent", field="adjacent")
    check_outputs(samples, {"out": out_path})
    with err.status(f"comparing models in {len(samples)} input(s)"):
        result = compare_samples(
            samples,
            metric,
            a=model_a,
            b=model_b,
            adjacent=adjacent,
            confidence=confidence,
            n_resamples=n_resamples,
            random_state=seed,
            strip=strip,
            ignore_case=ignore_case,
            ignore_punctuation=ignore_punctuation,
            tokens=tokens,
        )
    for note in result.attrs.get("notes", []):
        err.print(f"note: {note}", markup=False)
    write_table(result, out_path)
    view = table(
        "task",
        "family",
        "a",
        "b",
        "metric",
        "n",
        "diff",
        f"{confidence:.0%} interval",
        "p",
        "method",
    )
    rows = (
        (
            row.task,
            row.family,
            row.model_a,
            row.model_b,
            row.metric,
            str(row.n),
            f"{row.diff:+.4g}",
            f"[{row.ci_low:.4g}, {row.ci_high:.4g}]",
            f"{row.p_value:.3g}",
            row.method,
        )
        for row in result.itertuples(index=False)
    )
    print_rows(view, rows, len(result), out_path)
    out.print(f"wrote {len(result)} comparison rows to {out_path}")
