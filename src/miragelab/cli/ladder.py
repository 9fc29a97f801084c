"""``mirage ladder ...``: train a tiny-GPT ladder, evaluate it, test the paper's predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from miragelab.atomic import check_outputs, in_folder, staged_folder
from miragelab.cli._options import (
    SEED_MAX,
    CpusPerUnitOption,
    ExecutorOption,
    GpusPerUnitOption,
    RayAddressOption,
    SamplesOutOption,
    check_count,
    check_threads,
    err,
    out,
)
from miragelab.errors import InputError
from miragelab.progress import RichReporter, unit_progress

__all__ = ["ladder_app"]

#: the most test examples per model of `ladder eval`
MAX_TEST = 10_000_000

ladder_app = typer.Typer(
    help="Train tiny GPTs on arithmetic, evaluate them, and test the paper's three predictions.",
    no_args_is_help=True,
)


@ladder_app.command()
def train(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder of the ladder.")],
    task: Annotated[str, typer.Option(help="add1..add5 or mul2.")] = "add4",
    preset: Annotated[str, typer.Option(help="Ladder preset: cpu, gpu or tiny.")] = "cpu",
    seed: Annotated[
        int, typer.Option(help="Seed of weights, data and split.", min=0, max=SEED_MAX)
    ] = 0,
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
    device: Annotated[str, typer.Option(help="Torch device: cpu, cuda, cuda:1, auto ...")] = "cpu",
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    num_cpus_per_unit: CpusPerUnitOption = None,
    num_gpus_per_unit: GpusPerUnitOption = None,
) -> None:
    """Train every size of a preset on one task; export each as a Hugging Face folder.

    With ``--executor ray`` the models train at once, one unit (model) per
    ``--num-cpus-per-unit`` CPUs / ``--num-gpus-per-unit`` GPUs.
    """
    import torch

    from miragelab.ladder.presets import get_preset
    from miragelab.ladder.train import MANIFEST, read_manifest, train_ladder
    from miragelab.runners.hf import resolve_device
    from miragelab.runners.units import LocalExecutor, executor_from_options

    device = resolve_device(device, local=executor == "local")
    if checkpoint_minutes <= 0:
        raise InputError(f"must be > 0, got {checkpoint_minutes}", field="checkpoint-minutes")
    check_threads(threads)
    if threads is not None:
        torch.set_num_threads(threads)
    runner = executor_from_options(executor, ray_address, num_cpus_per_unit, num_gpus_per_unit)
    settings = {
        "seed": seed,
        "resume": resume,
        "checkpoint_seconds": checkpoint_minutes * 60,
        "checkpoint_steps": checkpoint_steps,
        "device": device,
    }
    if isinstance(runner, LocalExecutor):
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.3f}"),
            TextColumn("{task.fields[tps]:,.0f} tok/s"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=err) as progress:
            manifest = train_ladder(
                out_dir, task, preset, reporter=RichReporter(progress), **settings
            )
    else:
        total = len(get_preset(preset).sizes)
        trained = 0
        if resume and (out_dir / MANIFEST).exists():
            trained = len(read_manifest(out_dir)["models"])
        with unit_progress(total, "training", done=trained) as advance:
            manifest = train_ladder(
                out_dir, task, preset, executor=runner, threads=threads, on_done=advance, **settings
            )
    for m in manifest["models"]:
        out.print(
            f"{m['model']}: {m['params']:,} params, {m['tokens']:,} tokens, "
            f"{m['flops']:.2e} FLOPs, final loss {m['final_loss']:.4f}"
        )
    out.print(f"wrote {out_dir / 'ladder.json'}")


@ladder_app.command("eval")
def eval_(
    ladder_dir: Annotated[Path, typer.Argument(help="Folder written by `mirage ladder train`.")],
    out_path: SamplesOutOption,
    n_test: Annotated[
        int,
        typer.Option(help="Held-out operand pairs per model (of each part, for addmix)."),
    ] = 1000,
    threads: Annotated[
        int | None, typer.Option(help="Torch CPU threads (per unit, wherever it runs).")
    ] = None,
    device: Annotated[str, typer.Option(help="Torch device: cpu, cuda, auto ...")] = "cpu",
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    num_cpus_per_unit: CpusPerUnitOption = None,
    num_gpus_per_unit: GpusPerUnitOption = None,
) -> None:
    """Greedy predictions and teacher-forced target log-probs of every model -> samples table.

    Each (model, shard of examples) is written as its own part as soon as it is
    done, so rerunning the same command after an interruption resumes. With
    ``--executor ray`` the units run as Ray tasks; the table is the same.
    """
    import torch

    from miragelab.ladder.evaluate import evaluate_ladder, ladder_units
    from miragelab.runners.hf import resolve_device
    from miragelab.runners.summary import model_summary
    from miragelab.runners.units import executor_from_options, finish_output, work_dir_for

    check_count(n_test, "n-test", 1, MAX_TEST)
    check_outputs([ladder_dir], {"out": out_path})
    device = resolve_device(device, local=executor == "local")
    check_threads(threads)
    if threads is not None:
        torch.set_num_threads(threads)
    runner = executor_from_options(executor, ray_address, num_cpus_per_unit, num_gpus_per_unit)
    work_dir, temporary = work_dir_for(out_path)
    units, _ = ladder_units(ladder_dir, n_test, device=device)
    with unit_progress(len(units), "decoding") as advance:
        samples = evaluate_ladder(
            ladder_dir,
            n_test,
            device=device,
            parts_dir=work_dir,
            executor=runner,
            on_done=advance,
            threads=threads,
        )
    finish_output(samples, out_path, work_dir, temporary)
    for row in model_summary(samples, keys=("model",)).itertuples(index=False):
        out.print(f"{row.model}: exact match {row.exact_match:.3f}")
    out.print(f"wrote {len(samples):,} samples to {out_path}")


@ladder_app.command()
def predictions(
    samples_path: Annotated[
        Path, typer.Argument(help="Samples table from `mirage ladder eval` (many test examples).")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for figures and tables.")],
    small_n: Annotated[int, typer.Option(help="Prediction 2: size of the small test set.")] = 100,
    seed: Annotated[
        int, typer.Option(help="Seed of the bootstrap intervals.", min=0, max=SEED_MAX)
    ] = 0,
) -> None:
    """The paper's three predictions on a ladder's samples: figures (PNG, SVG) and tables."""
    from miragelab.errors import about
    from miragelab.ladder.predictions import run_predictions
    from miragelab.tables import SAMPLES, read_table

    check_count(small_n, "small-n")
    with staged_folder(out_dir, [samples_path]) as stage:
        samples = read_table(samples_path, SAMPLES)
        with about(samples_path):
            written = run_predictions(samples, stage, small_n=small_n, seed=seed)
    for path in written:
        out.print(f"wrote {in_folder(path, stage, out_dir)}")
