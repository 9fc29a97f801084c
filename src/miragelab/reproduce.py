"""``mirage reproduce``: every analysis of the paper, stage by stage, cached by content.

Each stage writes into its own folder of the output directory and, once it is
complete, a ``stage.json`` recording a fingerprint of everything it depends on
(the package version, the stage's settings and the bytes of its input data).
A rerun skips every stage whose fingerprint is unchanged and whose outputs are
all present, so an interrupted run resumes at the stage it was killed in.
Parts of the paper this version does not build are listed as ``missing`` in
the summary and the report, never filled with made-up results.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import json
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from miragelab import __version__
from miragelab.atomic import write_text_atomic
from miragelab.errors import InputError

#: the live rich Progress of the running reproduction, for stages that report their own steps
STAGE_PROGRESS: contextvars.ContextVar[Any] = contextvars.ContextVar("stage_progress", default=None)

__all__ = [
    "Stage",
    "StageResult",
    "default_stages",
    "evidence_figures",
    "fingerprint",
    "meta_stage",
    "run_stages",
    "theory_scores",
    "write_summary",
]


@dataclass
class StageResult:
    """What a stage produced: files (relative to the output folder) and headline numbers."""

    verdict: str
    figures: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    headline: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Stage:
    """One part of the reproduction.

    ``run(folder)`` does the work and returns a :class:`StageResult`;
    ``inputs`` lists the data files whose bytes enter the fingerprint;
    ``settings`` are the parameters that change the result. A stage with
    ``run=None`` is a part of the paper not built in this version.
    """

    name: str
    title: str
    run: Callable[[Path], StageResult] | None
    settings: dict[str, Any] = field(default_factory=dict)
    inputs: Callable[[], Iterable[Path]] = lambda: ()
    missing_reason: str = ""


@functools.cache
def _code_digest() -> bytes:
    """A hash of the package's own code: a changed analysis invalidates every cached stage."""
    digest = hashlib.sha256()
    root = Path(__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.digest()


def fingerprint(stage: Stage) -> str:
    """A content hash of what a stage depends on: code, settings and input bytes."""
    digest = hashlib.sha256(_code_digest())
    digest.update(json.dumps([stage.name, __version__, stage.settings], sort_keys=True).encode())
    for path in sorted(Path(p) for p in stage.inputs()):
        digest.update(str(path.name).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _cached(folder: Path, print_: str) -> StageResult | None:
    record = folder / "stage.json"
    if not record.exists():
        return None
    try:
        saved = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    if saved.get("fingerprint") != print_:
        return None
    result = StageResult(**saved["result"])
    files = [folder.parent / Path(f).with_suffix(".png") for f in result.figures]
    files += [folder.parent / f for f in result.tables]
    return result if all(f.exists() for f in files) else None


def check_out_dir(out_dir: Path) -> None:
    """The output must be a folder (new or existing), never a file."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("is a file; --out must be a folder", path=out_dir, field="out")


def run_stages(
    stages: list[Stage],
    out_dir: Path,
    on_start: Callable[[Stage], None] = lambda s: None,
    on_end: Callable[[Stage, str, float], None] = lambda s, status, seconds: None,
) -> list[dict[str, Any]]:
    """Run (or reuse) each stage; return one summary record per stage."""
    check_out_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for stage in stages:
        on_start(stage)
        start = time.perf_counter()
        if stage.run is None:
            status, result = "missing", StageResult(verdict=stage.missing_reason)
        else:
            folder = out_dir / stage.name
            print_ = fingerprint(stage)
            result = _cached(folder, print_)
            status = "cached"
            if result is None:
                folder.mkdir(parents=True, exist_ok=True)
                result = stage.run(folder)
                status = "done"
                write_text_atomic(
                    folder / "stage.json",
                    json.dumps({"fingerprint": print_, "result": asdict(result)}, indent=2),
                )
        seconds = time.perf_counter() - start
        on_end(stage, status, seconds)
        records.append(
            {"name": stage.name, "title": stage.title, "status": status, "seconds": seconds}
            | asdict(result)
        )
    return records


def write_summary(title: str, records: list[dict[str, Any]], out_dir: Path) -> Path:
    """Write ``report.html`` and ``summary.json`` of a run of stages; return the report's path.

    ``summary.json`` also says what the page weighs, per section (``page``), and which
    sections pass :data:`miragelab.report.html.SECTION_BUDGET`.

    Parameters
    ----------
    title
        The page's title.
    records
        What :func:`run_stages` returned.
    out_dir
        The run's output folder.

    Returns
    -------
    Path
        The written ``report.html``.
    """
    from miragelab.report.html import SECTION_BUDGET, section_sizes, write_report

    provenance = machine_info()
    report = write_report(title, records, out_dir, provenance)
    sizes = section_sizes(report.read_text(encoding="utf-8"))
    page = {
        "bytes": sum(sizes.values()),
        "sections": sizes,
        "over_budget": [name for name, size in sizes.items() if size > SECTION_BUDGET],
    }
    summary = {"title": title, "stages": records, "provenance": provenance, "page": page}
    write_text_atomic(out_dir / "summary.json", json.dumps(summary, indent=2, default=str))
    return report


def machine_info() -> dict[str, str]:
    """Versions and machine, for the report's provenance table."""
    import matplotlib
    import numpy
    import pandas
    import scipy

    return {
        "miragelab": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "pandas": pandas.__version__,
        "matplotlib": matplotlib.__version__,
        "machine": f"{platform.system()} {platform.machine()}",
    }


# --------------------------------------------------------------------------- the stages


def theory_scores(
    c: float, alpha: float, lengths: Iterable[int], n: int, seed: int
) -> pd.DataFrame:
    """The closed-form model on a 12-model ladder, measured as a test set of ``n`` would be.

    Per answer length ``L`` (one task each): exact match ``Binomial(n, p**L) / n``,
    and from the same answers' ``n L`` tokens, token edit distance
    ``Binomial(n L, 1 - p) / n`` and the per-token probability ``1 - TED / L``,
    each with its binomial standard error.
    """
    from miragelab import theory

    rng = np.random.default_rng(seed)
    ladder = np.geomspace(1e7, 1e12, 12)  # the figure's range, as a 12-model ladder
    p = theory.per_token_prob(ladder, c, alpha)
    rows = []
    for length in lengths:
        exact = rng.binomial(n, p**length) / n
        wrong = rng.binomial(n * length, 1 - p)
        ted, prob = wrong / n, 1 - wrong / (n * length)
        tokens = n * length
        shrunk = (prob * tokens + 0.5) / (tokens + 1)
        em_shrunk = (exact * n + 0.5) / (n + 1)
        curves = {
            "exact_match": (exact, np.sqrt(em_shrunk * (1 - em_shrunk) / n)),
            "token_edit_distance": (ted, length * np.sqrt(shrunk * (1 - shrunk) / tokens)),
            "per_token_prob": (prob, np.sqrt(shrunk * (1 - shrunk) / tokens)),
        }
        for metric, (values, se) in curves.items():
            for size, value, err in zip(ladder, values, se, strict=True):
                rows.append(
                    {
                        "task": f"L = {length}",
                        "family": "closed-form",
                        "model": f"N={size:.3g}",
                        "params": size,
                        "metric": metric,
                        "value": float(value),
                        "stderr": float(err),
                        "n": n,
                    }
                )
    return pd.DataFrame(rows)


def _theory_run(folder: Path, seed: int) -> StageResult:
    """The six panels, and the verdict on a noisy 12-model ladder for growing answer length."""
    from miragelab.report.theory_figure import write_theory_outputs
    from miragelab.report.verdict_figures import write_verdict_figures
    from miragelab.tables import write_table
    from miragelab.verdict import verdict_table

    c, alpha, n = 2e9, -0.5, 1000
    write_theory_outputs(folder, c=c, alpha=alpha, lengths=[1, 2, 3, 4, 5], n_min=1e7, n_max=1e12)
    scores = theory_scores(c, alpha, (1, 2, 3, 5, 10, 20), n, seed)
    found = verdict_table(scores, seed=seed)
    table = found.verdicts.assign(length=found.verdicts["task"].str.slice(4).astype(int))
    table = table[["length", *found.verdicts.columns]].sort_values("length")
    table = table.reset_index(drop=True)
    write_table(table, folder / "theory_verdicts.csv")
    write_table(found.evidence, folder / "theory_verdict_evidence.csv")
    write_verdict_figures(table, found.details, folder / "verdicts")
    headline = {
        f"L = {r.length}": f"exact match {r.shape}, against {r.soft_metric or 'nothing'}"
        + (f" (break test p = {r.p_value:.2g})" if np.isfinite(r.p_value) else "")
        + f": {r.verdict}"
        for r in table.itertuples(index=False)
    }
    mirage = table.loc[table["verdict"] == "mirage", "length"]
    verdict = (
        f"one smooth loss, measured on {n:,} examples: exact match turns sharp as answers get "
        f"longer and reads as a mirage for L = {', '.join(map(str, mirage))}, while the "
        "per-token probability and edit distance show no break"
        if len(mirage)
        else "one smooth loss: no answer length gives a mirage verdict on this ladder"
    )
    return StageResult(
        verdict=verdict,
        figures=["theory/theory", *evidence_figures(table, "theory/verdicts", k=6)],
        tables=["theory/theory_verdicts.csv", "theory/theory_verdict_evidence.csv"],
        headline={
            "law": f"L_CE(N) = (N / {c:g}) ** {alpha:g}, 12 models from 1e7 to 1e12, "
            f"binomial noise of {n:,} examples (seed {seed})"
        }
        | headline,
    )


def _meta_result(
    folder: Path, scores: pd.DataFrame, n_resamples: int, seed: int = 0
) -> StageResult:
    from miragelab.meta import meta_analysis
    from miragelab.report.meta_figures import write_meta_outputs

    result = meta_analysis(scores, n_resamples=n_resamples, seed=seed)
    write_meta_outputs(result, scores, folder)
    counts = result.verdicts["verdict"].value_counts()
    sized = result.measures[result.measures["axis"] == "params"]
    summary = ", ".join(f"{n} {label}" for label, n in counts.items()) or "no metric pairs"
    headline = {
        "curves measured": f"{len(result.measures):,} ({len(sized):,} over model size)",
        "verdicts": summary,
    }
    for row in result.shares.head(6).itertuples(index=False):
        headline[f"emergent-looking share, {row.metric}"] = (
            f"{row.share_emergent_looking:.0%} of {row.curves} size curves"
        )
    figures = [
        f"{folder.name}/{name}"
        for name in ("emergence_by_metric", "verdict_pairs", "top_curves")
        if (folder / f"{name}.png").exists()
    ]
    figures += evidence_figures(result.verdicts, f"{folder.name}/verdicts")
    return StageResult(
        verdict=f"verdicts where a task has a harsh and a continuous metric: {summary}",
        figures=figures,
        tables=[
            f"{folder.name}/meta_verdicts.csv",
            f"{folder.name}/meta_verdict_evidence.csv",
            f"{folder.name}/meta_shares.csv",
            f"{folder.name}/meta_measures.csv",
        ],
        headline=headline,
        notes=result.notes,
    )


def evidence_figures(verdicts: pd.DataFrame, prefix: str, k: int = 12) -> list[str]:
    """Stems of the evidence figures of up to ``k`` verdicts that are not ``smooth``
    (genuine first), for the report page; every verdict's figure is in the folder."""
    from miragelab.report.verdict_figures import figure_name

    rank = {"genuine": 0, "mirage": 1, "inconclusive": 2}
    shown = verdicts[verdicts["verdict"] != "smooth"]
    shown = shown.assign(_rank=shown["verdict"].map(rank)).sort_values("_rank", kind="stable")
    return [f"{prefix}/{figure_name(row)}" for row in shown.head(k).itertuples(index=False)]


def meta_stage(
    scores_loader: Callable[[], pd.DataFrame],
    inputs: Callable[[], Iterable[Path]],
    n_resamples: int = 1000,
    seed: int = 0,
) -> Stage:
    """The meta-analysis of any scores (the shipped published results by default)."""
    return Stage(
        name="meta",
        title="Meta-analysis of published results",
        run=lambda folder: _meta_result(folder, scores_loader(), n_resamples, seed),
        settings={"n_resamples": n_resamples, "seed": seed},
        inputs=inputs,
    )


def _fit_run(folder: Path) -> StageResult:
    from miragelab.forecast import forecast_task
    from miragelab.report.forecast_figure import write_forecast_outputs
    from miragelab.sources.published import load_shipped
    from miragelab.tables import write_table

    scores = load_shipped()
    tables, figures, headline = [], [], {}
    for family in ("pythia-v1.1", "pythia-v1.1-deduped"):
        result = forecast_task(scores, "lambada_openai", family, "acc", "ppl", "auto", holdout=2)
        sub = folder / family
        write_forecast_outputs(result, sub)
        tables.append(result.table)
        figures.append(f"{folder.name}/{family}/forecast")
        err_power = result.table["abs_error_power_law"].mean()
        err_sigmoid = result.table["abs_error_sigmoid"].mean()
        headline[f"{family}: mean |error| on the 2 largest"] = (
            f"power law {err_power:.3f} vs sigmoid {err_sigmoid:.3f} (L = {result.length:.3g})"
        )
    combined = pd.concat(tables, ignore_index=True)
    write_table(combined, folder / "backtest.csv")
    better = (combined["abs_error_power_law"] < combined["abs_error_sigmoid"]).mean()
    return StageResult(
        verdict=f"LAMBADA accuracy of the largest Pythia models forecast from the smaller "
        f"models' perplexity: power law closer than a sigmoid in {better:.0%} of cases",
        figures=figures,
        tables=[f"{folder.name}/backtest.csv"],
        headline=headline,
    )


#: the eight tasks of the OLMo ladder's published 7B forecast, in the paper's order
OLMO_TASKS = (
    "mmlu",
    "hellaswag_val_rc_5shot",
    "arc_challenge_test_rc_5shot",
    "arc_easy_test_rc_5shot",
    "piqa_val_rc_5shot",
    "csqa_val_rc_5shot",
    "socialiqa_val_rc_5shot",
    "openbookqa_test_rc_5shot",
)
#: the published ladder: 190M to 1.3B at 1, 2, 5 and 10 x Chinchilla tokens (no reruns)
OLMO_LADDER = r"(190M|370M|760M|1B)-(1|2|5|10)xC"


def _within(errors: pd.DataFrame) -> int:
    return int(
        ((errors["ci_low"] <= errors["observed"]) & (errors["observed"] <= errors["ci_high"])).sum()
    )


def _scale_forecast_run(folder: Path, quick: bool, seed: int) -> StageResult:
    """The OLMo ladder's 7B forecast beside the published errors; the same code on the
    3.2B-extended ladder, on held-out 3.2B runs, and on Pythia and ObsScaling families."""
    from miragelab.report.figures import save_figure
    from miragelab.report.ladder_figure import plot_forecast_errors, write_ladder_outputs
    from miragelab.scale_forecast import Settings, forecast_ladder, largest_models
    from miragelab.sources.published import load_shipped
    from miragelab.sources.runs import load_shipped_ladder
    from miragelab.sources.shipped import shipped_data_dir
    from miragelab.tables import write_table

    settings = Settings(n_boot=50 if quick else 200)
    runs = load_shipped_ladder()
    target = largest_models(runs, 1)  # the 7B-4T model, observed
    held = ["3B-5xC", "3B-0.5xC"]  # other sizes and budgets of the recipe, never fitted
    options = {
        "harsh": "acc_norm",
        "soft": "bpb",
        "soft_task": "c4_en-validation",
        "tasks": OLMO_TASKS,
        "settings": settings,
        "random_state": seed,
    }
    ladder = runs["model"].str.fullmatch(OLMO_LADDER)
    targets = target + [t for t in largest_models(runs, 2) if t.name in held]
    main = forecast_ladder(
        runs[ladder | runs["model"].isin([*held, target[0].name])], targets, **options
    )
    write_ladder_outputs(main, folder / "olmo")
    bigger = runs["model"].str.fullmatch(r"(190M|370M|760M|1B|3B)-(1|2|5|10)xC")
    plus3b = forecast_ladder(runs[bigger | (runs["model"] == target[0].name)], target, **options)
    write_table(plus3b.table, folder / "olmo_with_3b.csv")

    published = pd.read_csv(shipped_data_dir() / "olmo-ladder" / "published_errors.csv")
    published = published.set_index("task").rename(
        columns={"task_loss": "task loss", "c4_loss": "C4 loss"}
    )
    table = main.table
    rows = table[table["default"] & (table["target_name"] == target[0].name)]
    rows = rows.set_index("task").loc[list(OLMO_TASKS)].reset_index()
    compare = rows[["task", "method", "predicted", "ci_low", "ci_high", "observed"]].assign(
        abs_error_points=100 * rows["abs_error"],
        published_task_loss=published["task loss"].reindex(rows["task"]).to_numpy(),
        published_c4_loss=published["C4 loss"].reindex(rows["task"]).to_numpy(),
    )
    write_table(compare, folder / "olmo_7b_vs_published.csv")
    save_figure(plot_forecast_errors(rows, published), folder / "olmo_7b_errors")

    headline = {}
    method = str(rows["method"].iloc[0])
    errors = ", ".join(f"{e:.1f}" for e in compare["abs_error_points"])
    headline["7B-4T from 190M-1.3B: method (lowest back-test error)"] = method
    headline["7B-4T: |error| per task (points)"] = errors
    headline["7B-4T: mean |error| vs published"] = (
        f"{compare['abs_error_points'].mean():.2f} vs {published['task loss'].mean():.1f} "
        f"(task loss), {published['C4 loss'].mean():.1f} (C4 loss); "
        f"{_within(rows)} of {len(rows)} inside the {settings.confidence:.0%} interval"
    )
    for name, group in table[table["target_name"] == target[0].name].groupby("method"):
        headline[f"7B-4T, {name}: mean |error|"] = (
            f"{100 * group['abs_error'].mean():.2f} points, "
            f"{_within(group)} of {len(group)} covered"
        )
    more = plus3b.table[plus3b.table["default"]]
    headline["7B-4T with the 3.2B runs added"] = (
        f"{more['method'].iloc[0]}: mean |error| {100 * more['abs_error'].mean():.2f} points, "
        f"{_within(more)} of {len(more)} covered"
    )
    for name in held:
        one = table[table["default"] & (table["target_name"] == name)]
        headline[f"held-out {name} from 190M-1.3B"] = (
            f"mean |error| {100 * one['abs_error'].mean():.2f} points, "
            f"{_within(one)} of {len(one)} covered"
        )

    # the same code on the other ladders shipped: each family's largest models held out
    shipped, others = load_shipped(), []
    for family in ("pythia-v1.1", "pythia-v1.1-deduped"):
        result = forecast_ladder(
            shipped,
            largest_models(shipped, 2, family=family),
            harsh="acc",
            soft="ppl",
            family=family,
            tasks=["lambada_openai"],
            length="auto",
            settings=settings,
            random_state=seed,
        )
        others.append(result.table)
    obs = shipped[shipped["metric"] == "score"]
    for _, rows_ in obs.groupby("family"):
        if rows_["params"].nunique() < 4 or rows_["tokens_trained"].isna().all():
            continue  # a back-test needs three sizes to fit and one to forecast
        result = forecast_ladder(
            rows_,
            largest_models(rows_, 1),
            harsh="score",
            soft=None,
            settings=settings,
            random_state=seed,
        )
        others.append(result.table)
    other = pd.concat(others, ignore_index=True)
    write_table(other, folder / "other_ladders.csv")
    chosen = other[other["default"] & other["abs_error"].notna()]
    pythia = chosen["family"].str.startswith("pythia-v1.1")
    for label, part in (("Pythia LAMBADA", pythia), ("ObsScaling families", ~pythia)):
        group = chosen[part]
        headline[f"{label}: largest held out"] = (
            f"mean |error| {100 * group['abs_error'].mean():.2f} points over {len(group)} "
            f"forecasts ({group['family'].nunique()} families), {_within(group)} covered"
        )
    return StageResult(
        verdict=f"7B-4T forecast from a ladder 5x smaller: mean |error| "
        f"{compare['abs_error_points'].mean():.2f} accuracy points over the eight tasks "
        f"(published: {published['task loss'].mean():.1f} with task loss, "
        f"{published['C4 loss'].mean():.1f} with C4 loss); {_within(rows)} of {len(rows)} "
        f"observed values inside their {settings.confidence:.0%} interval",
        figures=[f"{folder.name}/olmo_7b_errors"],
        tables=[
            f"{folder.name}/olmo_7b_vs_published.csv",
            f"{folder.name}/olmo/forecast.csv",
            f"{folder.name}/olmo/backtest.csv",
            f"{folder.name}/olmo_with_3b.csv",
            f"{folder.name}/other_ladders.csv",
        ],
        headline=headline,
        notes=main.notes,
    )


def _shipped_ladder_inputs() -> list[Path]:
    from miragelab.sources.shipped import shipped_data_dir

    root = shipped_data_dir() / "olmo-ladder"
    return [*_shipped_inputs(), *sorted(p for p in root.rglob("*") if p.is_file())]


def _resolution_run(folder: Path) -> StageResult:
    from miragelab.planner import examples_needed, resolvable_accuracy
    from miragelab.tables import write_table

    accuracies = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5]
    table = pd.DataFrame(
        {
            "accuracy": accuracies,
            "examples_needed_vs_0": [examples_needed(a, 0.95) for a in accuracies],
        }
    )
    write_table(table, folder / "resolution.csv")
    lambada = 5153  # examples in lm-eval's lambada_openai test split
    smallest = resolvable_accuracy(lambada, 0.95)
    return StageResult(
        verdict=f"a test set of n examples cannot tell accuracies below about 3/n from zero; "
        f"LAMBADA's {lambada:,} examples resolve {smallest:.2g} and above",
        tables=[f"{folder.name}/resolution.csv"],
        headline={"examples needed for accuracy 1e-3 (95%)": f"{examples_needed(1e-3):,}"},
    )


def _length_run(
    folder: Path, preset: str, quick: bool, device: str, seed: int, reporter: object
) -> tuple[dict[str, str], list[str], list[str]]:
    """Prediction 3 on its own ladder (``addmix``: 1- to 5-digit addition trained as one
    mix, the same models evaluated at every answer length) in ``folder/length``; its
    headline lines, figures and tables."""
    from miragelab.ladder.evaluate import evaluate_ladder
    from miragelab.ladder.predictions import run_predictions
    from miragelab.ladder.train import train_ladder
    from miragelab.tables import write_table

    out = folder / "length"
    models = folder / f"models-addmix-{preset}-seed{seed}"
    train_ladder(models, "addmix", preset, seed=seed, resume=True, device=device, reporter=reporter)
    samples = evaluate_ladder(models, n_test=1_000 if quick else 4_000, seed=seed, device=device)
    out.mkdir(parents=True, exist_ok=True)
    write_table(samples, out / "samples.parquet")
    run_predictions(samples, out, seed=seed)
    length = pd.read_csv(out / "pred3_length.csv")
    rank = pd.read_csv(out / "pred3_rank.csv").set_index(["metric", "measure"])
    headline = {}
    for row in length.itertuples(index=False):
        headline[f"prediction 3: L = {row.answer_length}, {row.metric}"] = (
            f"emergence score {row.emergence_score:.3g} "
            f"[{row.score_ci_low:.3g}, {row.score_ci_high:.3g}], smoothness "
            f"{row.smoothness:.2f} [{row.smoothness_ci_low:.2f}, {row.smoothness_ci_high:.2f}]"
            + (f", verdict {row.verdict}" if isinstance(row.verdict, str) else "")
            + ("" if row.curve_varies else " (every model scores the same: no curve)")
        )
    for (metric, measure), r in rank.iterrows():
        headline[f"prediction 3: Spearman rho of {metric}'s {measure} with L"] = (
            f"{r['spearman_rho']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}], "
            f"exact permutation p = {r['p_value']:.3g} over {r['n_lengths']} lengths"
            + (f" ({r['left_out']} left out: no model differs)" if isinstance(r["left_out"], str)
               else "")
        )  # fmt: skip
    verdicts = pd.read_csv(out / "pred3_verdict.csv")
    figures = [
        f"{folder.name}/length/pred3_length",
        *evidence_figures(verdicts, f"{folder.name}/length/verdicts", k=5),
    ]
    tables = [f"{folder.name}/length/{name}.csv" for name in ("pred3_length", "pred3_rank")]
    return headline, figures, tables


def _ladder_run(folder: Path, quick: bool, device: str, seed: int = 0) -> StageResult:
    """Train the arithmetic ladders (resuming a killed run), evaluate them, test the
    predictions: 1 and 2 on ``add4``, 3 on ``addmix``."""
    from miragelab.ladder.evaluate import evaluate_ladder
    from miragelab.ladder.predictions import run_predictions
    from miragelab.ladder.train import train_ladder
    from miragelab.tables import write_table

    preset = "cpu-quick" if quick else "cpu"
    models = folder / f"models-{preset}-seed{seed}"  # a killed run resumes here; never mixed
    progress = STAGE_PROGRESS.get()
    reporter = None
    if progress is not None:
        from miragelab.progress import RichReporter

        reporter = RichReporter(progress)
    train_ladder(models, "add4", preset, seed=seed, resume=True, device=device, reporter=reporter)
    samples = evaluate_ladder(models, n_test=2_000 if quick else 10_000, seed=seed, device=device)
    write_table(samples, folder / "samples.parquet")
    run_predictions(samples, folder, small_n=100, seed=seed)
    by_model = samples.groupby("model", sort=False)
    examples = by_model.head(2)[["model", "prompt", "target", "prediction"]]
    write_table(examples.reset_index(drop=True), folder / "examples.csv")
    metric = pd.read_csv(folder / "pred1_metric.csv").set_index("metric")
    resolution = pd.read_csv(folder / "pred2_resolution.csv")
    em = metric.loc["exact_match"]
    headline = {
        "exact match, smallest -> largest model": f"{em['y_first']:.4f} -> {em['y_last']:.4f}",
    }
    for name, row in metric.iterrows():
        verdict = row["verdict_vs_exact_match"]
        headline[f"prediction 1: {name}"] = (
            f"emergence score {row['emergence_score']:.3g}, smoothness {row['smoothness']:.2f}"
            + (f", verdict against exact match: {verdict}" if isinstance(verdict, str) else "")
        )
    zero_small = int(resolution["zero_on_small"].sum())
    resolved = int(resolution["resolved_above_zero_on_large"].sum())
    headline["prediction 2: resolution"] = (
        f"{zero_small} model(s) score 0 on {int(resolution['n_small'].iloc[0])} examples; "
        f"{resolved} of {len(resolution)} are resolved above 0 on "
        f"{int(resolution['n_large'].iloc[0]):,}"
    )
    verdict = metric["verdict_vs_exact_match"].dropna()
    summary = ", ".join(f"{name}: {v}" for name, v in verdict.items())
    final = pd.read_csv(folder / "pred1_verdict.csv").iloc[0]
    headline["verdict (one per curve)"] = f"{final['verdict']}: {final['reason']}"
    length_lines, length_figures, length_tables = _length_run(
        folder, "cpu-quick" if quick else "cpu-long", quick, device, seed, reporter
    )
    headline |= length_lines
    return StageResult(
        verdict=f"exact match (emergence score {em['emergence_score']:.3g}) reads "
        f"{final['verdict']} against the continuous metrics of the same outputs ({summary})",
        figures=[
            f"{folder.name}/pred1_metric",
            *evidence_figures(pd.read_csv(folder / "pred1_verdict.csv"), f"{folder.name}/verdicts"),
            f"{folder.name}/pred2_resolution",
            *length_figures,
        ],
        tables=[
            f"{folder.name}/pred1_metric.csv",
            f"{folder.name}/pred1_verdict.csv",
            f"{folder.name}/examples.csv",
            *length_tables,
        ],
        headline=headline,
    )


def _transitions_run(folder: Path, quick: bool) -> StageResult:
    """The induction-head run, and the detector on Pythia's training-step ladders."""
    from miragelab.report.transitions_figures import write_induction_outputs
    from miragelab.sources.published import load_shipped
    from miragelab.tables import write_table
    from miragelab.transitions.apply import induction_transitions, transitions_table
    from miragelab.transitions.induction import InductionConfig, config_dict, train_induction

    cfg = InductionConfig.quick() if quick else InductionConfig()
    run = train_induction(cfg)
    findings = induction_transitions(run.checkpoints, n_boot=499, seed=0)
    write_induction_outputs(run, findings, config_dict(cfg), folder / "induction")
    loss = findings.results["loss_repeated"]
    scores = load_shipped()
    pythia, _ = transitions_table(scores, tasks=["lambada_openai"], axis="step", n_boot=199, seed=0)
    write_table(pythia, folder / "pythia_lambada_steps.csv")
    found = pythia.groupby("metric")["detected"].agg(["sum", "size"])
    headline = {
        "induction: repeated-part loss": (
            f"transition {'found' if loss.detected else 'not found'} (p = {loss.p_value:.3g}), "
            f"span steps {loss.span_low:g}-{loss.span_high:g}"
        ),
        "induction: prefix-matching attention rises at step": f"{findings.attention_rise:g} "
        f"({'inside' if findings.rise_in_span else 'outside'} the loss transition's span)",
    }
    for metric, row in found.iterrows():
        headline[f"Pythia lambada_openai {metric} over training steps"] = (
            f"transition in {int(row['sum'])} of {int(row['size'])} models"
        )
    return StageResult(
        verdict=(
            "induction heads: a genuine transition in the continuous loss, with the attention "
            "pattern forming in the same steps"
            if loss.detected and findings.rise_in_span
            else "induction run: no transition aligned with the attention pattern was found"
        ),
        figures=[f"{folder.name}/induction/induction"],
        tables=[
            f"{folder.name}/induction/transitions.csv",
            f"{folder.name}/pythia_lambada_steps.csv",
        ],
        headline=headline,
    )


def _vision_run(folder: Path, quick: bool) -> StageResult:
    """Autoencoder and classifier ladders on the bundled digits; sharp vs smooth metrics."""
    from miragelab.report.vision_figures import write_vision_outputs
    from miragelab.vision import ladder as vision
    from miragelab.vision.data import load_digits_data

    data = load_digits_data()
    specs = {
        "autoencoder": vision.AUTOENCODER_QUICK if quick else vision.AUTOENCODER,
        "classifier": vision.CLASSIFIER_QUICK if quick else vision.CLASSIFIER,
    }
    headline, figures, tables, labels = {}, [], [], []
    for kind, spec in specs.items():
        result = vision.run_ladder(kind, data, spec, None, 1)
        write_vision_outputs(result, folder / kind)
        figures.append(f"{folder.name}/{kind}/{kind}")
        tables.append(f"{folder.name}/{kind}/verdicts.csv")
        scores = result.measures.set_index("metric")["emergence_score"]
        for row in result.verdicts.itertuples(index=False):
            labels.append(row.verdict)
            headline[f"{kind}: {row.harsh_metric} vs {row.soft_metric}"] = (
                f"{row.verdict} (emergence score {scores[row.harsh_metric]:.3g} vs "
                f"{scores[row.soft_metric]:.3g})"
            )
    counts = pd.Series(labels).value_counts()
    summary = ", ".join(f"{n} {label}" for label, n in counts.items())
    return StageResult(
        verdict=f"the same networks, sharp metrics vs smooth ones: {summary}",
        figures=figures,
        tables=tables,
        headline=headline,
    )


def _shipped_inputs() -> list[Path]:
    from miragelab.sources.published import shipped_sources

    files: list[Path] = []
    for source in shipped_sources():
        files.extend(
            sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
        )
    return files


def default_stages(quick: bool = False, device: str = "cpu", seed: int = 0) -> list[Stage]:
    """The reproduction, in the paper's order; ``quick`` trades resamples for time.

    ``seed`` seeds every random part: the simulated test sets of Part I, the
    resampling of the meta-analysis, and the training of the ladders.
    """
    from miragelab.sources.published import load_shipped

    n_resamples = 200 if quick else 1000
    return [
        Stage(
            "theory",
            "Part I: the closed-form model",
            lambda folder: _theory_run(folder, seed),
            settings={"seed": seed},
        ),
        meta_stage(load_shipped, _shipped_inputs, n_resamples, seed),
        Stage(
            "fit", "Prediction from the loss: back-test on Pythia", _fit_run, inputs=_shipped_inputs
        ),
        Stage(
            "scale_forecast",
            "Forecasting a 7B model from a small ladder",
            lambda folder: _scale_forecast_run(folder, quick, seed),
            settings={"quick": quick, "seed": seed},
            inputs=_shipped_ladder_inputs,
        ),
        Stage(
            "resolution",
            "Resolution: how many examples tell an accuracy from zero",
            _resolution_run,
        ),
        Stage(
            "ladder",
            "Part II: a model ladder trained here (arithmetic)",
            lambda folder: _ladder_run(folder, quick, device, seed),
            settings={"quick": quick, "device": device, "seed": seed},
        ),
        Stage(
            "vision",
            "Part IV: induced emergence in vision",
            lambda folder: _vision_run(folder, quick),
            settings={"quick": quick},
        ),
        Stage(
            "transitions",
            "Genuine transitions during training",
            lambda folder: _transitions_run(folder, quick),
            settings={"quick": quick},
            inputs=_shipped_inputs,
        ),
    ]
