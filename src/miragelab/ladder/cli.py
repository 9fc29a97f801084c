"""``mirage ladder ...``: train a tiny-GPT ladder, evaluate it, test the paper's predictions."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from miragelab.errors import InputError

ladder_app = typer.Typer(
    help="Train tiny GPTs on arithmetic, evaluate them, and test the paper's three predictions.",
    no_args_is_help=True,
)
_err = Console(stderr=True)
_out = Console()


@contextlib.contextmanager
def unit_progress(total: int, label: str) -> Iterator[Callable[..., None]]:
    """A rich bar over units of work; yields the callback that advances it by one."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("units"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=_err, transient=False) as progress:
        task = progress.add_task(label, total=total)
        yield lambda *_: progress.advance(task)


class RichReporter:
    """Training progress as one rich bar per model (used by `ladder train` and `reproduce`)."""

    def __init__(self, progress) -> None:  # noqa: ANN001 - rich Progress
        self.progress = progress
        self.ids: dict[str, int] = {}

    def start(self, name: str, total: int, done: int) -> None:
        self.ids[name] = self.progress.add_task(
            name, total=total, completed=done, loss=0.0, tps=0.0
        )

    def advance(self, name: str, step: int, loss: float, tokens_per_s: float) -> None:
        self.progress.update(self.ids[name], completed=step, loss=loss, tps=tokens_per_s)

    def finish(self, name: str) -> None:
        self.progress.update(self.ids[name], description=f"[green]{name}")


@ladder_app.command()
def train(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder of the ladder.")],
    task: Annotated[str, typer.Option(help="add1..add5 or mul2.")] = "add4",
    preset: Annotated[str, typer.Option(help="Ladder preset: cpu, gpu or tiny.")] = "cpu",
    seed: Annotated[int, typer.Option(help="Seed of weights, data and split.")] = 0,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue a killed run; finished models are kept.")
    ] = False,
    checkpoint_minutes: Annotated[
        float, typer.Option(help="Save the training state this often (wall time).")
    ] = 3.0,
    checkpoint_steps: Annotated[
        int | None, typer.Option(help="Also save the training state every this many steps.")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="Torch CPU threads (default: torch's choice).")
    ] = None,
    device: Annotated[str, typer.Option(help="Torch device: cpu, cuda, cuda:1 ...")] = "cpu",
) -> None:
    """Train every size of a preset on one task; export each as a Hugging Face folder."""
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from miragelab.ladder.train import train_ladder

    if checkpoint_minutes <= 0:
        raise InputError(f"must be > 0, got {checkpoint_minutes}", field="checkpoint-minutes")
    if threads is not None:
        if threads < 1:
            raise InputError(f"must be >= 1, got {threads}", field="threads")
        torch.set_num_threads(threads)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TextColumn("{task.fields[tps]:,.0f} tok/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=_err) as progress:
        manifest = train_ladder(
            out_dir,
            task,
            preset,
            seed=seed,
            resume=resume,
            checkpoint_seconds=checkpoint_minutes * 60,
            checkpoint_steps=checkpoint_steps,
            reporter=RichReporter(progress),
            device=device,
        )
    for m in manifest["models"]:
        _out.print(
            f"{m['model']}: {m['params']:,} params, {m['tokens']:,} tokens, "
            f"{m['flops']:.2e} FLOPs, final loss {m['final_loss']:.4f}"
        )
    _out.print(f"wrote {out_dir / 'ladder.json'}")


@ladder_app.command("eval")
def eval_(
    ladder_dir: Annotated[Path, typer.Argument(help="Folder written by `mirage ladder train`.")],
    out_path: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Samples table to write (.parquet/.jsonl/.csv), or a folder for a "
            "partitioned dataset (task=.../model=.../part-N.parquet).",
        ),
    ],
    n_test: Annotated[int, typer.Option(help="Test examples per model.")] = 1000,
    threads: Annotated[int | None, typer.Option(help="Torch CPU threads.")] = None,
    device: Annotated[str, typer.Option(help="Torch device: cpu, cuda ...")] = "cpu",
) -> None:
    """Greedy predictions and teacher-forced target log-probs of every model -> samples table.

    Each (model, shard of examples) is written as its own part as soon as it is
    done, so rerunning the same command after an interruption resumes.
    """
    import torch

    from miragelab.ladder.evaluate import evaluate_ladder, ladder_units
    from miragelab.units import finish_output, work_dir_for

    if threads is not None:
        if threads < 1:
            raise InputError(f"must be >= 1, got {threads}", field="threads")
        torch.set_num_threads(threads)
    work_dir, temporary = work_dir_for(out_path)
    units, _ = ladder_units(ladder_dir, n_test, device=device)
    with unit_progress(len(units), "decoding") as advance:
        samples = evaluate_ladder(
            ladder_dir, n_test, device=device, parts_dir=work_dir, on_done=advance
        )
    finish_output(samples, out_path, work_dir, temporary)
    exact = (samples["prediction"] == samples["target"]).groupby(samples["model"], sort=False)
    for name, acc in exact.mean().items():
        _out.print(f"{name}: exact match {acc:.3f}")
    _out.print(f"wrote {len(samples):,} samples to {out_path}")


@ladder_app.command()
def predictions(
    samples_path: Annotated[
        Path, typer.Argument(help="Samples table from `mirage ladder eval` (many test examples).")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for figures and tables.")],
    small_n: Annotated[int, typer.Option(help="Prediction 2: size of the small test set.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap intervals.")] = 0,
) -> None:
    """The paper's three predictions on a ladder's samples: figures (PNG, SVG) and tables."""
    from miragelab.ladder.predictions import run_predictions
    from miragelab.tables import SAMPLES, read_table

    samples = read_table(samples_path, SAMPLES)
    written = run_predictions(samples, out_dir, small_n=small_n, seed=seed)
    for path in written:
        _out.print(f"wrote {path}")
