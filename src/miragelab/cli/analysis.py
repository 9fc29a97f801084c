"""The analysis commands of ``mirage``: ``theory``, ``meta``, ``fit``, ``plan``, ``cost``,
``reproduce`` and ``report``. Each parses its options, calls the library and prints.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from miragelab.atomic import check_outputs, in_folder, staged_folder
from miragelab.cli._options import (
    SEED_MAX,
    ConfidenceOption,
    HigherIsBetter,
    ResamplesOption,
    ShippedOption,
    check_count,
    check_interval_options,
    check_resamples,
    direction_items,
    err,
    load_directed_scores,
    named_values,
    out,
    parse_list,
    print_rows,
    table,
)
from miragelab.errors import InputError

if TYPE_CHECKING:
    from miragelab.reproduce import Stage

__all__ = ["cost", "fit", "meta", "plan", "report", "reproduce", "theory"]

#: the most sizes on the grid of `mirage theory`
MAX_POINTS = 100_000


#: bounds of mirage theory's lists: curves per panel, tokens per answer, choices
MAX_LENGTHS = 100
MAX_LENGTH = 1_000_000
MAX_CHOICES = 1_000_000


def theory(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the figure and CSV.")],
    c: Annotated[float, typer.Option("--c", help="Scale constant c of L_CE = (N/c)^alpha.")] = 2e9,
    alpha: Annotated[float, typer.Option("--alpha", help="Power-law exponent (< 0).")] = -0.5,
    lengths: Annotated[str, typer.Option(help="Answer lengths L, comma-separated.")] = "1,2,3,4,5",
    k: Annotated[int, typer.Option(help="Number of choices for the multiple-choice grade.")] = 4,
    n_min: Annotated[float, typer.Option(help="Smallest model size N.")] = 1e7,
    n_max: Annotated[float, typer.Option(help="Largest model size N.")] = 1e12,
    points: Annotated[int, typer.Option(help="Sizes on the log grid.")] = 200,
) -> None:
    """The paper's closed-form model: six panels (PNG, SVG) and the curves (CSV)."""
    from miragelab.report.theory_figure import write_theory_outputs

    if not (math.isfinite(c) and c > 0):
        raise InputError(f"must be a finite number > 0, got {c}", field="c")
    if not (math.isfinite(alpha) and alpha < 0):
        raise InputError(
            f"must be finite and < 0 (loss falls with scale), got {alpha}", field="alpha"
        )
    check_count(k, "k", 2, MAX_CHOICES)
    if not (1 <= n_min < n_max and math.isfinite(n_max)):
        raise InputError(
            f"need 1 <= n-min < n-max, both finite parameter counts, got {n_min:g}, {n_max:g}",
            field="n-min",
        )
    check_count(points, "points", 2, MAX_POINTS)
    ls = parse_list(lengths, "lengths", int)
    if any(v < 1 for v in ls) or len(set(ls)) != len(ls):
        raise InputError(
            f"lengths must be distinct integers >= 1, got {lengths!r}", field="lengths"
        )
    check_count(len(ls), "lengths", 1, MAX_LENGTHS)  # one curve per length in every panel
    check_count(max(ls), "lengths", 1, MAX_LENGTH)
    with staged_folder(out_dir) as stage:
        written = write_theory_outputs(
            stage, c=c, alpha=alpha, lengths=ls, k=k, n_min=n_min, n_max=n_max, points=points
        )
    for path in written.values():
        out.print(f"wrote {in_folder(path, stage, out_dir)}")


def meta(
    scores: Annotated[
        list[Path] | None,
        typer.Argument(help="Scores: lm-eval results, BIG-bench scores, wide CSVs, folders."),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for tables and figures.")] = Path(
        "mirage-meta"
    ),
    shipped: Annotated[
        bool, typer.Option(help="Use the published results shipped with the package.")
    ] = False,
    confidence: ConfidenceOption = 0.95,
    n_resamples: ResamplesOption = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the resampling.", min=0, max=SEED_MAX)] = 0,
    higher_is_better: HigherIsBetter = None,
    samples: Annotated[
        list[Path] | None,
        typer.Option(
            "--samples",
            help="The samples the scores came from: the verdicts then test the harsh "
            "differences as paired where every size saw the same examples (repeatable).",
        ),
    ] = None,
) -> None:
    """Emergence of every (task, family, metric) curve, shares per metric, and verdicts."""
    from miragelab.meta import meta_analysis
    from miragelab.report.meta_figures import write_meta_outputs
    from miragelab.tables import SAMPLES, read_many

    check_interval_options(confidence, n_resamples)
    overrides = direction_items(higher_is_better)
    with staged_folder(out_dir, [*(scores or []), *(samples or [])]) as stage:
        scores_table = load_directed_scores(scores or [], shipped, overrides)
        samples_table = read_many(samples, SAMPLES) if samples else None
        with err.status(f"measuring {len(scores_table):,} scores"):
            result = meta_analysis(
                scores_table,
                confidence=confidence,
                n_resamples=n_resamples,
                seed=seed,
                samples=samples_table,
            )
        paths = write_meta_outputs(result, scores_table, stage)
    for note in result.notes:
        err.print(f"note: {note}")
    shares = table("metric", "size curves", "emergent-looking", "share", "median score")
    print_rows(
        shares,
        (
            (
                row.metric,
                str(row.curves),
                str(row.emergent_looking),
                f"{row.share_emergent_looking:.0%}",
                f"{row.median_emergence_score:.3g}",
            )
            for row in result.shares.itertuples(index=False)
        ),
        len(result.shares),
        out_dir / "meta_shares.csv",
    )
    counts = result.verdicts["verdict"].value_counts()
    out.print(
        f"{len(result.verdicts)} verdicts (one per curve): "
        + ", ".join(f"{n} {label}" for label, n in counts.items())
    )
    rank = {"genuine": 0, "mirage": 1, "inconclusive": 2}
    shown = result.verdicts[result.verdicts["verdict"] != "smooth"]
    shown = shown.assign(_rank=shown["verdict"].map(rank)).sort_values("_rank", kind="stable")
    verdicts = table("task", "family", "curve", "harsh", "continuous", "points", "verdict", "p")
    print_rows(
        verdicts,
        (
            (
                row.task,
                row.family,
                row.axis if not isinstance(row.model, str) else f"{row.axis}: {row.model}",
                row.harsh_metric,
                row.soft_metric or "-",
                str(row.n_points),
                row.verdict,
                "-" if row.p_value != row.p_value else f"{row.p_value:.2g}",
            )
            for row in shown.itertuples(index=False)
        ),
        len(shown),
        out_dir / "meta_verdicts.csv",
    )
    out.print("reasons and evidence: meta_verdicts.csv, meta_verdict_evidence.csv, verdicts/")
    out.print(f"wrote {len(paths)} files to {out_dir}")


def fit(
    scores: Annotated[
        list[Path] | None, typer.Argument(help="Scores files or folders (as for `mirage meta`).")
    ] = None,
    task: Annotated[str, typer.Option(help="Task to back-test.")] = "lambada_openai",
    family: Annotated[str, typer.Option(help="Model family (one size ladder).")] = "pythia-v1.1",
    harsh: Annotated[str, typer.Option(help="Accuracy-like metric to forecast.")] = "acc",
    soft: Annotated[str, typer.Option(help="Continuous metric turned into cross-entropy.")] = "ppl",
    length: Annotated[
        str, typer.Option(help="Answer length L in the loss's tokens, or 'auto'.")
    ] = "auto",
    holdout: Annotated[int, typer.Option(help="Largest models held out.")] = 2,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the back-test.")] = Path(
        "mirage-fit"
    ),
    shipped: ShippedOption = False,
    higher_is_better: HigherIsBetter = None,
) -> None:
    """Back-test: forecast the largest models' accuracy from the smaller ones' loss."""
    from miragelab.forecast import check_length, forecast_task
    from miragelab.report.forecast_figure import write_forecast_outputs

    check_count(holdout, "holdout")
    answer_length = length if length == "auto" else check_length(length)  # before loading
    overrides = direction_items(higher_is_better)
    with staged_folder(out_dir, scores or []) as stage:
        scores_table = load_directed_scores(scores or [], shipped, overrides)
        result = forecast_task(scores_table, task, family, harsh, soft, answer_length, holdout)
        paths = write_forecast_outputs(result, stage)
    view = table(
        "params", "observed", "power law (p^L)", "sigmoid", "|err| power law", "|err| sigmoid"
    )
    for note in result.notes:  # the models the fit could not use, and why
        err.print(f"note: {note}")
    out.print(f"{task} · {family}: L = {result.length:.3g}, fit on {result.fit.n_points} models")
    print_rows(
        view,
        (
            (
                f"{row.params:.3g}",
                f"{row.observed:.4f}",
                f"{row.predicted_power_law:.4f}",
                f"{row.predicted_sigmoid:.4f}",
                f"{row.abs_error_power_law:.4f}",
                f"{row.abs_error_sigmoid:.4f}",
            )
            for row in result.table.itertuples(index=False)
        ),
        len(result.table),
        out_dir / "backtest.csv",
    )
    out.print(f"wrote {len(paths)} files to {out_dir}")


def plan(
    accuracy: Annotated[
        float | None, typer.Option(help="True accuracy to resolve (e.g. 1e-3).")
    ] = None,
    n: Annotated[int | None, typer.Option("--n", help="Or: a test-set size to invert.")] = None,
    confidence: Annotated[float, typer.Option(help="Confidence of the detection.")] = 0.95,
    chance: Annotated[float, typer.Option(help="Chance accuracy to tell it from.")] = 0.0,
) -> None:
    """How many test examples tell an accuracy from 0 (or from chance)?"""
    from miragelab.planner import examples_needed, resolvable_accuracy

    if (accuracy is None) == (n is None):
        raise InputError("give exactly one of --accuracy or --n", field="accuracy")
    if not 0 < confidence < 1:
        raise InputError(f"must be in (0, 1), got {confidence}", field="confidence")
    if not 0 <= chance < 1:
        raise InputError(f"must be in [0, 1), got {chance}", field="chance")
    against = "0" if chance == 0 else f"chance {chance:g}"
    if accuracy is not None:
        if not chance < accuracy <= 1:
            raise InputError(f"must be in ({chance:g}, 1], got {accuracy}", field="accuracy")
        try:
            needed = examples_needed(accuracy, confidence, chance)
        except ValueError as exc:  # a question no test set can answer
            raise InputError(str(exc), field="accuracy") from None
        out.print(
            f"{needed:,} examples tell accuracy {accuracy:.12g} from {against} "
            f"(one-sided exact binomial test at level {1 - confidence:.2g}, "
            f"power {confidence:.0%})"
        )
    else:
        if n < 1:
            raise InputError(f"must be >= 1, got {n}", field="n")
        smallest = resolvable_accuracy(n, confidence, chance)
        out.print(
            f"{n:,} examples tell accuracies of {smallest:.4g} and above from {against} "
            f"(one-sided exact binomial test at level {1 - confidence:.2g}, "
            f"power {confidence:.0%})"
        )


#: bounds of mirage cost's inputs: no evaluation is larger, and the arithmetic stays finite
MAX_COST_SAMPLES = 10**15
MAX_COST_TOKENS = 1e9
MAX_COST_PARAMS = 1e15


def _cost_tasks(items: list[str]) -> dict:
    from miragelab.costs import Task

    tasks = {}
    for name, value in named_values(items, "task", "NAME=SAMPLES:TOKENS (e.g. arith=10000:60)"):
        samples, sep, tokens = value.partition(":")
        try:
            n, t = int(samples.replace(",", "")), float(tokens)
        except ValueError:
            n, t = -1, float("nan")
        if not sep or not 0 <= n <= MAX_COST_SAMPLES or not 0 < t <= MAX_COST_TOKENS:
            raise InputError(
                f"task {name!r}: expected SAMPLES:TOKENS (an integer in 0..{MAX_COST_SAMPLES:.0e} "
                f"and a number in (0, {MAX_COST_TOKENS:.0e}]), got {value[:60]!r}",
                field="task",
            )
        tasks[name] = Task(samples=n, tokens_per_sample=t)
    return tasks


def _cost_models(items: list[str], ladder: Path | None) -> dict[str, float]:
    from miragelab.sources.sizes import parse_size

    models: dict[str, float] = {}
    lines: dict[str, int] = {}
    if ladder is not None:
        from miragelab.runners.hf import read_ladder

        entries, _ = read_ladder(ladder, require_path=False)
        models.update({e.unit_name: e.params for e in entries})
        lines.update({e.unit_name: e.line for e in entries})
    for name, size in named_values(items, "model", "NAME=SIZE (e.g. pythia-1.4b=1.4b)"):
        if name in models:
            raise InputError(
                f"model {name!r} is in the ladder too ({ladder}, line {lines[name]}): "
                "one size per model",
                field="model",
            )
        try:
            value = parse_size(size)
        except InputError as exc:
            raise InputError(f"model {name!r}: {exc.message}", field="model") from None
        if not 1 <= value <= MAX_COST_PARAMS:
            raise InputError(
                f"model {name!r}: parameters must be in 1..{MAX_COST_PARAMS:.0e}, got {size!r}",
                field="model",
            )
        models[name] = value
    if not models:
        raise InputError("give models with --model NAME=SIZE or --ladder CSV", field="model")
    return models


def cost(
    task: Annotated[
        list[str],
        typer.Option(
            "--task", help="NAME=SAMPLES:TOKENS, tokens run through the model per sample."
        ),
    ],
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="NAME=SIZE, e.g. pythia-1.4b=1.4b (repeatable)."),
    ] = None,
    ladder: Annotated[
        Path | None, typer.Option(help="And/or a ladder CSV (family, model, params).")
    ] = None,
    gpu: Annotated[str, typer.Option(help="GPU whose dense bf16 peak and memory to use.")] = (
        "H100-SXM"
    ),
    gpu_flops: Annotated[
        float | None, typer.Option(help="Peak FLOP/s instead of the GPU's data sheet.")
    ] = None,
    utilization: Annotated[float, typer.Option(help="Achieved share of the peak.")] = 0.3,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Write every (model, task) row here.")
    ] = None,
) -> None:
    """GPU-hours an evaluation will take: 2 N FLOPs per token, at a share of a GPU's peak."""
    from miragelab.costs import GPU_MEMORY, GPU_PEAK_FLOPS, plan_cost
    from miragelab.tables import write_table

    if gpu not in GPU_PEAK_FLOPS:
        raise InputError(f"unknown GPU {gpu!r}; known: {', '.join(GPU_PEAK_FLOPS)}", field="gpu")
    if gpu_flops is not None and not 0 < gpu_flops < float("inf"):
        raise InputError(f"must be > 0, got {gpu_flops}", field="gpu-flops")
    check_outputs([ladder], {"out": out_path})
    tasks = _cost_tasks(task)
    models = _cost_models(model or [], ladder)
    plan = plan_cost(
        models,
        tasks,
        gpu_flops=gpu_flops or GPU_PEAK_FLOPS[gpu],
        utilization=utilization,
        gpu_memory=GPU_MEMORY[gpu],
    )
    per_model = plan.groupby("model", sort=False).agg(
        params=("params", "first"),
        gpus=("gpus", "first"),
        flops=("flops", "sum"),
        gpu_hours=("gpu_hours", "sum"),
        wall_hours=("wall_hours", "sum"),
    )
    view = table("model", "params", "GPUs", "FLOPs", "GPU-hours", "wall hours")
    print_rows(
        view,
        (
            (
                str(name),
                f"{row.params:.3g}",
                str(int(row.gpus)),
                f"{row.flops:.3g}",
                f"{row.gpu_hours:.4g}",
                f"{row.wall_hours:.4g}",
            )
            for name, row in per_model.iterrows()
        ),
        len(per_model),
        out_path,
    )
    out.print(
        f"total: {plan['gpu_hours'].sum():.4g} GPU-hours ({plan['flops'].sum():.3g} FLOPs) "
        f"on {gpu if gpu_flops is None else f'{gpu_flops:.3g} FLOP/s'} "
        f"at {utilization:.0%} of peak"
    )
    if out_path is not None:
        out.print(f"wrote {write_table(plan, out_path)}")


def _run_stages(stages: list[Stage], out_dir: Path, title: str) -> tuple[list[dict], Path]:
    """Run stages with a progress bar, write report.html and summary.json; return the
    stages' records and the report's path."""
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from miragelab.reproduce import STAGE_PROGRESS, run_stages, write_summary

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,  # on a pipe stderr holds an error's one line only
        transient=True,
    ) as progress:
        STAGE_PROGRESS.set(progress)  # long stages add their own bars (e.g. one per model)
        bar = progress.add_task("reproduction", total=len(stages))

        def started(stage: Stage) -> None:
            progress.update(bar, description=stage.title)

        def ended(stage: Stage, status: str, seconds: float) -> None:
            progress.advance(bar)
            out.print(f"{stage.name:<12} {status:<8} {seconds:6.1f} s")

        records = run_stages(stages, out_dir, on_start=started, on_end=ended)
    return records, write_summary(title, records, out_dir)


def _print_run(records: list[dict], report: Path) -> None:
    """One row per stage, and where the report is."""
    view = table("part", "status", "seconds", "verdict")
    for record in records:
        view.add_row(
            record["title"], record["status"], f"{record['seconds']:.1f}", record["verdict"]
        )
    out.print(view)
    out.print(f"report: {report}")


def reproduce(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the report and files.")] = Path(
        "mirage-out"
    ),
    quick: Annotated[bool, typer.Option(help="Fewer resamples: a faster, coarser run.")] = False,
    device: Annotated[str, typer.Option(help="cpu or cuda, for the parts that train models.")] = (
        "cpu"
    ),
    seed: Annotated[
        int,
        typer.Option(
            help="Seed of every random part (simulated test sets, training).", min=0, max=SEED_MAX
        ),
    ] = 0,
) -> None:
    """The whole paper on the shipped data and models: one report.html with every figure."""
    from miragelab.reproduce import check_out_dir, default_stages

    if device not in ("cpu", "cuda"):
        raise InputError(f"expected 'cpu' or 'cuda', got {device!r}", field="device")
    if seed < 0:
        raise InputError(f"--seed must be >= 0, got {seed}", field="--seed")
    stages = default_stages(quick=quick, device=device, seed=seed)
    check_out_dir(out_dir)  # before the progress bar, so bad input is one line
    # the stages are cached by content in --out, so a rerun redoes only what changed
    _print_run(*_run_stages(stages, out_dir, "miragelab reproduction"))


def report(
    scores: Annotated[
        list[Path], typer.Argument(help="Scores: lm-eval results, BIG-bench, wide CSVs, tables.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the report.")] = Path(
        "mirage-report"
    ),
    n_resamples: ResamplesOption = 1000,
    higher_is_better: HigherIsBetter = None,
    pdf: Annotated[
        bool,
        typer.Option(
            "--pdf", help="Also print the page to report.pdf with headless Chromium (A4)."
        ),
    ] = False,
) -> None:
    """The report page for your own scores: emergence per curve, verdicts, figures."""
    from miragelab.report.html import find_chromium, write_pdf
    from miragelab.reproduce import meta_stage

    check_resamples(n_resamples)
    if pdf and find_chromium() is None:  # said before any work: no output at all
        raise InputError(
            "--pdf needs Chromium (apt-get install chromium); none was found", field="pdf"
        )
    overrides = direction_items(higher_is_better)
    with staged_folder(out_dir, scores) as folder:
        scores_table = load_directed_scores(scores, False, overrides)
        files = [p for p in scores if p.is_file()] + [
            f for p in scores if p.is_dir() for f in sorted(p.rglob("*")) if f.is_file()
        ]
        stage = meta_stage(lambda: scores_table, lambda: files, n_resamples)
        stage.title = "Meta-analysis of your scores"
        records, page = _run_stages([stage], folder, "miragelab report")
        if pdf:
            with err.status("printing report.pdf with headless Chromium"):
                write_pdf(page, folder / "report.pdf")
    _print_run(records, in_folder(page, folder, out_dir))
    if pdf:
        out.print(f"pdf: {out_dir / 'report.pdf'}")
