"""``mirage vision ...``: the induced-emergence ladders (autoencoder, classifier).

Each command trains its ladder (progress bar on stderr), writes to ``--out``:
``scores.parquet`` and ``scores.csv`` (the scores table: mean over seeds,
t-interval over seeds, ``n`` = number of seeds), ``runs.csv`` (one value per
model, seed and metric), ``emergence.csv`` (emergence measures per metric),
``verdicts.csv`` (mirage/genuine/smooth per sharp-smooth pair) and the figure
(``autoencoder.png``/``.svg`` or ``classifier.png``/``.svg``), and prints the
emergence score and verdict per metric (the files are written by
:mod:`miragelab.report.vision_figures`). torch is imported inside the commands.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from miragelab.atomic import staged_folder
from miragelab.cli._options import (
    FiguresOutOption,
    check_count,
    check_threads,
    err,
    out,
    parse_list,
    table,
)
from miragelab.errors import InputError

__all__ = ["vision_app"]

vision_app = typer.Typer(
    help="Induced emergence in vision: a harsh metric makes emergence appear on demand.",
    no_args_is_help=True,
)

SeedsOption = Annotated[
    int | None,
    typer.Option(help="Training seeds per width (0..N-1); default 3 (2 with --quick)."),
]
QuickOption = Annotated[
    bool, typer.Option("--quick", help="A small ladder in seconds (tests, quick look).")
]
WidthsOption = Annotated[
    str | None, typer.Option(help="Hidden widths, comma-separated (default: the ladder's).")
]
EpochsOption = Annotated[int | None, typer.Option(help="Epochs per model (default: the ladder's).")]
ThreadsOption = Annotated[int, typer.Option(help="torch threads (tiny models train fastest on 1).")]
MnistImages = Annotated[
    Path | None, typer.Option(help="MNIST images, IDX format (.gz allowed), instead of digits.")
]
MnistLabels = Annotated[Path | None, typer.Option(help="MNIST labels, IDX format (.gz allowed).")]
CifarOption = Annotated[
    Path | None,
    typer.Option(help="CIFAR-100 as .npz (arrays x, y; see miragelab.vision.data)."),
]
LimitOption = Annotated[
    int | None, typer.Option(help="Use at most this many images (a fixed random subset).")
]


#: the most training seeds per width, epochs per model, and random sequences per K
MAX_SEEDS = 1_000
MAX_EPOCHS = 100_000
MAX_SEQUENCES = 10_000_000


def _ints(text: str, field: str) -> tuple[int, ...]:
    return tuple(parse_list(text, field, int))


def _floats(text: str, field: str) -> tuple[float, ...]:
    return tuple(parse_list(text, field, float))


def _load_data(
    mnist_images: Path | None, mnist_labels: Path | None, cifar100: Path | None, limit: int | None
):  # noqa: ANN202 - an ImageData
    import numpy as np

    from miragelab.vision.data import load_cifar100_numpy, load_digits_data, load_mnist_idx

    if (mnist_images is None) != (mnist_labels is None):
        raise InputError("give both --mnist-images and --mnist-labels", field="mnist-labels")
    if mnist_images is not None and cifar100 is not None:
        raise InputError("give MNIST files or --cifar100, not both", field="cifar100")
    if mnist_images is not None and mnist_labels is not None:
        data = load_mnist_idx(mnist_images, mnist_labels)
    elif cifar100 is not None:
        data = load_cifar100_numpy(cifar100)
    else:
        data = load_digits_data()
    if limit is not None:
        check_count(limit, "limit", 10)
        if limit < data.n:
            keep = np.sort(np.random.default_rng(0).permutation(data.n)[:limit])
            data = data.subset(keep)
    return data


def _spec(base, seeds: int | None, widths: str | None, epochs: int | None, **extra):  # noqa: ANN001, ANN202
    changes = dict(extra)
    if seeds is not None:
        check_count(seeds, "seeds", 1, MAX_SEEDS)
        changes["seeds"] = tuple(range(seeds))
    if widths is not None:
        changes["widths"] = _ints(widths, "widths")
    if epochs is not None:
        check_count(epochs, "epochs", 1, MAX_EPOCHS)
        changes["epochs"] = epochs
    return replace(base, **changes)


def _train_with_progress(kind: str, total: int, train):  # noqa: ANN001, ANN202
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(f"{kind} ladder", total=total)
        return train(lambda text: bar.update(task, advance=1, description=text))


def _report(result, paths: list[Path], out_dir: Path, seconds: float) -> None:  # noqa: ANN001
    verdict_of = {row.harsh_metric: row.verdict for row in result.verdicts.itertuples(index=False)}
    view = table(
        "metric",
        "role",
        "score",
        "smoothness",
        "emergent?",
        "verdict",
        title="emergence per metric",
    )
    for metric in result.smooth_metrics + result.sharp_metrics:
        row = result.measures[result.measures["metric"] == metric].iloc[0]
        view.add_row(
            metric,
            str(row["role"]),
            f"{row['emergence_score']:.3g}",
            f"{row['smoothness']:.2f}",
            "yes" if row["looks_emergent"] else "no",
            verdict_of.get(metric, "reference"),
        )
    out.print(view)
    out.print(f"verdicts against {', '.join(result.smooth_metrics)}; see verdicts.csv for reasons")
    out.print(f"trained and scored in {seconds:.1f} s; wrote {len(paths)} files to {out_dir}")


@vision_app.command()
def autoencoder(
    out_dir: FiguresOutOption,
    seeds: SeedsOption = None,
    quick: QuickOption = False,
    widths: WidthsOption = None,
    epochs: EpochsOption = None,
    thresholds: Annotated[
        str | None,
        typer.Option(
            help="Thresholds c of Reconstruction_c (summed squared error of one image), "
            "comma-separated; default 0.05,0.25,1 on digits, scaled by values/64 otherwise."
        ),
    ] = None,
    threads: ThreadsOption = 1,
    mnist_images: MnistImages = None,
    mnist_labels: MnistLabels = None,
    cifar100: CifarOption = None,
    limit: LimitOption = None,
) -> None:
    """Shallow autoencoders of growing width: MSE (smooth) vs Reconstruction_c (sharp)."""
    from miragelab.vision.ladder import (
        AUTOENCODER,
        AUTOENCODER_QUICK,
        default_thresholds,
    )

    check_threads(threads)
    data = _load_data(mnist_images, mnist_labels, cifar100, limit)
    cs = (
        _floats(thresholds, "thresholds")
        if thresholds is not None
        else default_thresholds(data.n_features)
    )
    spec = _spec(AUTOENCODER_QUICK if quick else AUTOENCODER, seeds, widths, epochs, thresholds=cs)
    _train_and_write(
        "autoencoder", data, spec, threads, out_dir, [mnist_images, mnist_labels, cifar100]
    )


def _train_and_write(
    kind: str, data, spec, threads: int, out_dir: Path, inputs: list[Path | None]
) -> None:  # noqa: ANN001 - the ladder's data and spec
    """Train the ladder with a progress bar, write its outputs whole, print the summary."""
    from miragelab.report.vision_figures import write_vision_outputs
    from miragelab.vision.ladder import run_ladder

    start = time.perf_counter()
    with staged_folder(out_dir, inputs) as stage:
        result = _train_with_progress(
            kind,
            len(spec.widths) * len(spec.seeds),
            lambda step: run_ladder(kind, data, spec, step, threads),
        )
        paths = write_vision_outputs(result, stage)
    _report(result, paths, out_dir, time.perf_counter() - start)


@vision_app.command()
def classifier(
    out_dir: FiguresOutOption,
    seeds: SeedsOption = None,
    quick: QuickOption = False,
    widths: WidthsOption = None,
    epochs: EpochsOption = None,
    k: Annotated[
        str | None,
        typer.Option(
            "--k", help="Sequence lengths K of subset accuracy (default 1,2,3,4,5,10,20,50)."
        ),
    ] = None,
    sequences: Annotated[
        int | None, typer.Option(help="Random sequences per K (default 10000).")
    ] = None,
    threads: ThreadsOption = 1,
    mnist_images: MnistImages = None,
    mnist_labels: MnistLabels = None,
    cifar100: CifarOption = None,
    limit: LimitOption = None,
) -> None:
    """MLP classifiers of growing width: per-image accuracy (smooth) vs subset accuracy (sharp)."""
    from miragelab.vision.ladder import CLASSIFIER, CLASSIFIER_QUICK

    check_threads(threads)
    extra: dict[str, object] = {}
    if k is not None:
        extra["ks"] = _ints(k, "k")
    if sequences is not None:
        check_count(sequences, "sequences", 1, MAX_SEQUENCES)
        extra["n_sequences"] = sequences
    data = _load_data(mnist_images, mnist_labels, cifar100, limit)
    spec = _spec(CLASSIFIER_QUICK if quick else CLASSIFIER, seeds, widths, epochs, **extra)
    _train_and_write(
        "classifier", data, spec, threads, out_dir, [mnist_images, mnist_labels, cifar100]
    )
