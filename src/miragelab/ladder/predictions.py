"""The paper's three predictions, tested on a ladder's own samples table.

1. **Metric** (``pred1_metric``): on the same greedy outputs, exact match looks
   emergent while token edit distance and the per-token probability of the
   target improve smoothly. Emergence score, smoothness and the
   verdict of exact match (:func:`miragelab.verdict.verdict_table`), with the
   evidence of each continuous metric (``pred1_verdict*.csv``).
2. **Resolution** (``pred2_resolution``): exact match of every model on the
   first ``small_n`` test examples and on all of them, with Wilson
   intervals. Where the small set shows 0 and the large one resolves the
   accuracy above 0 (Wilson lower bound > 0), "zero accuracy" was a
   resolution artefact. The planner's smallest resolvable accuracy of each
   test-set size (:func:`miragelab.planner.resolvable_accuracy`) is listed.
3. **Answer length** (``pred3_length``): the exact match of an ``L``-digit
   answer, measured as the first ``L`` digits of each greedy answer against
   the first ``L`` digits of the target (``L = 1 ..`` the shortest target
   length), with the token edit distance of the same prefixes. A greedy
   decoder's first ``L`` tokens are exactly the answer it would give if asked
   for ``L`` digits, so each ``L`` is a real ``L``-token answer of the same
   models on the same prompts. The emergence score of exact match should rise
   with ``L`` while edit distance stays smooth. Caveat: the digits of an
   answer are not equally hard (in addition the leading digit of a
   carry-out answer is always 1; middle digits need carries), so ``L`` is
   confounded with which digits are added; the per-``L`` table shows it.

Each prediction writes ``NAME.png``/``NAME.svg`` and ``NAME.csv``; the
scores behind the figures go to ``scores.csv``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from miragelab.emergence import curve_measures
from miragelab.errors import InputError
from miragelab.metrics import compute_metrics
from miragelab.planner import resolvable_accuracy
from miragelab.report.figures import plain_text, save_figure
from miragelab.report.style import log_x, metric_colour, paper_figure, sequence_colours
from miragelab.report.verdict_figures import write_verdict_figures
from miragelab.scoring import score_samples
from miragelab.stats import emergence_score_interval, wilson_interval
from miragelab.tables import SAMPLES, validate_frame, without_attrs, write_table
from miragelab.verdict import VerdictResult, verdict_table

METRICS_1 = ("exact_match", "token_edit_distance", "per_token_prob")
_LABELS = {
    "exact_match": "exact match",
    "token_edit_distance": "token edit distance",
    "per_token_prob": "per-token probability",
}


def _one_family(samples: pd.DataFrame) -> pd.DataFrame:
    table = without_attrs(samples)
    pairs = table[["task", "family"]].drop_duplicates()
    if len(pairs) != 1:
        found = ", ".join(f"{t}/{f}" for t, f in pairs.itertuples(index=False))
        raise InputError(
            f"expected the samples of one ladder (one task and family), found {found}",
            field="family",
        )
    if table["model"].nunique() < 3:
        raise InputError("need at least 3 models for an emergence score", field="model")
    return table


def _curve(scores: pd.DataFrame, metric: str) -> pd.DataFrame:
    return scores[scores["metric"] == metric].sort_values("params")


def _verdicts(
    scores: pd.DataFrame, harsh: str, seed: int, samples: pd.DataFrame | None = None
) -> VerdictResult:
    """The verdict of ``harsh`` against every other metric of ``scores`` (one size curve);
    with the ``samples`` scored, the harsh jumps are tested as paired differences (every
    size of the ladder answered the same test examples)."""
    others = [m for m in scores["metric"].unique() if m != harsh]
    pairs = [(harsh, m) for m in others]
    return verdict_table(scores, pairs=pairs, seed=seed, samples=samples)


def _measure_rows(
    scores: pd.DataFrame,
    harsh: str,
    label: dict,
    seed: int = 0,
    samples: pd.DataFrame | None = None,
) -> list[dict]:
    rows = []
    evidence = _verdicts(scores, harsh, seed, samples).evidence.set_index("soft_metric")
    for metric in scores["metric"].unique():
        c = _curve(scores, metric)
        higher = bool(c["higher_is_better"].iloc[0])
        m = curve_measures(c["params"], c["value"], higher)
        row = {**label, "metric": metric, **m, "higher_is_better": higher}
        if metric in evidence.index:
            e = evidence.loc[metric]
            row |= {
                "verdict_vs_exact_match": e["label"],
                "break_p_value": e["p_value"],
                "resolvable_se": e["resolvable_se"],
            }
        rows.append(row)
    return rows


def _plot_curve(ax, c: pd.DataFrame, label: str | None = None, **kw) -> None:  # noqa: ANN001
    x, y = c["params"].to_numpy(), c["value"].to_numpy()
    err = np.vstack([y - c["ci_low"].to_numpy(), c["ci_high"].to_numpy() - y])
    ax.errorbar(x, y, yerr=np.clip(err, 0, None), marker="o", capsize=3, label=label, **kw)
    log_x(ax)
    ax.set_xlabel("parameters")


def prediction_metric(samples: pd.DataFrame, out: Path, seed: int = 0) -> list[Path]:
    table = _one_family(samples)
    scores = score_samples(table, list(METRICS_1), seed=seed)
    label = {"task": table["task"].iloc[0]}
    measures = pd.DataFrame(_measure_rows(scores, "exact_match", label, seed, table))
    found = _verdicts(scores, "exact_match", seed, table)
    # the emergence score's own interval: resample the examples within each model
    values = compute_metrics(table, list(METRICS_1))
    by_size = table.groupby("model")["params"].first().sort_values()
    rng = np.random.default_rng(seed)
    intervals = {}
    for metric in METRICS_1:
        per_model = [values.loc[table["model"] == m, metric].to_numpy() for m in by_size.index]
        higher = bool(_curve(scores, metric)["higher_is_better"].iloc[0])
        intervals[metric] = emergence_score_interval(
            per_model, by_size.to_numpy(), n_resamples=1000, rng=rng, higher_is_better=higher
        )
    measures["score_ci_low"] = [intervals[m][0] for m in measures["metric"]]
    measures["score_ci_high"] = [intervals[m][1] for m in measures["metric"]]
    fig, (axes,) = paper_figure(12, 3.6, 1, 3)
    for ax, metric in zip(axes, METRICS_1, strict=True):
        _plot_curve(ax, _curve(scores, metric), color=metric_colour(metric))
        score = measures.loc[measures["metric"] == metric, "emergence_score"].iloc[0]
        ax.set_title(f"{_LABELS[metric]}\nemergence score {score:.1f}")
        ax.set_ylabel(_LABELS[metric])
    fig.suptitle(f"{plain_text(table['family'].iloc[0])}: the same outputs under three metrics")
    paths = list(save_figure(fig, out / "pred1_metric").values())
    paths.append(write_table(measures, out / "pred1_metric.csv"))
    paths.append(write_table(found.verdicts, out / "pred1_verdict.csv"))
    paths.append(write_table(found.evidence, out / "pred1_verdict_evidence.csv"))
    paths += list(write_verdict_figures(found.verdicts, found.details, out / "verdicts").values())
    paths.append(write_table(scores, out / "scores.csv"))
    return paths


def prediction_resolution(samples: pd.DataFrame, out: Path, small_n: int = 100) -> list[Path]:
    table = _one_family(samples)
    table["hit"] = (table["prediction"] == table["target"]).astype(float)
    rows = []
    for model, g in table.groupby("model", sort=False):
        n_large = len(g)
        if small_n >= n_large:
            raise InputError(
                f"--small-n {small_n} must be below the {n_large} test examples per model",
                field="small-n",
            )
        small = g.iloc[:small_n]  # the first examples: a prefix of the same test set
        row = {"model": model, "params": float(g["params"].iloc[0])}
        for tag, part in (("small", small), ("large", g)):
            k, n = float(part["hit"].sum()), len(part)
            low, high = wilson_interval(k, n)
            row |= {
                f"n_{tag}": n,
                f"correct_{tag}": int(k),
                f"acc_{tag}": k / n,
                f"ci_low_{tag}": float(low),
                f"ci_high_{tag}": float(high),
                f"resolvable_{tag}": resolvable_accuracy(n),
            }
        row["zero_on_small"] = row["correct_small"] == 0
        row["resolved_above_zero_on_large"] = row["ci_low_large"] > 0
        rows.append(row)
    res = pd.DataFrame(rows).sort_values("params", ignore_index=True)
    fig, (axes,) = paper_figure(11, 4, 1, 2)
    shades = sequence_colours(2, kind="harsh")  # exact match: light the small set, dark the large
    for ax, log in zip(axes, (False, True), strict=True):
        for tag, colour in zip(("small", "large"), shades, strict=True):
            x, y = res["params"].to_numpy(), res[f"acc_{tag}"].to_numpy()
            err = np.vstack([y - res[f"ci_low_{tag}"], res[f"ci_high_{tag}"] - y])
            shown = y > 0 if log else np.ones_like(y, dtype=bool)
            n = int(res[f"n_{tag}"].iloc[0])
            ax.errorbar(
                x[shown],
                y[shown],
                yerr=err[:, shown],
                marker="o",
                capsize=3,
                color=colour,
                label=f"{n:,} test examples",
            )
            zero = ~shown
            if log and zero.any():
                ax.scatter(
                    x[zero],
                    res.loc[zero, f"ci_high_{tag}"],
                    marker="v",
                    color=colour,
                    label=f"0 correct of {n:,}: Wilson upper bound",
                )
        log_x(ax)
        ax.set_xlabel("parameters")
        ax.set_ylabel("exact match")
        if log:
            ax.set_yscale("log")
            ax.set_title("log scale: zeros shown by their upper bound")
        else:
            ax.set_title("linear scale")
        ax.legend()
    family = plain_text(table["family"].iloc[0])
    fig.suptitle(f"{family}: resolution of small models' accuracy (95% Wilson)")
    paths = list(save_figure(fig, out / "pred2_resolution").values())
    paths.append(write_table(res, out / "pred2_resolution.csv"))
    return paths


def prefix_samples(samples: pd.DataFrame, length: int) -> pd.DataFrame:
    """Samples whose target and prediction are cut to their first ``length`` characters."""
    table = without_attrs(samples)
    table = table[table["target"].str.len() >= length].copy()
    table["task"] = table["task"] + f":first{length}"
    table["target"] = table["target"].str[:length]
    table["prediction"] = table["prediction"].str[:length]
    table["target_token_logprobs"] = [list(v)[:length] for v in table["target_token_logprobs"]]
    return validate_frame(table.reset_index(drop=True), SAMPLES)


def prediction_length(samples: pd.DataFrame, out: Path, seed: int = 0) -> list[Path]:
    table = _one_family(samples)
    max_len = int(table["target"].str.len().min())
    if max_len < 2:
        raise InputError("answer length needs targets of at least 2 digits", field="target")
    rows, curves = [], {}
    for length in range(1, max_len + 1):
        scores = score_samples(
            prefix_samples(table, length), ["exact_match", "token_edit_distance"], seed=seed
        )
        curves[length] = scores
        for row in _measure_rows(scores, "exact_match", {"answer_length": length}, seed):
            rows.append(row)
    res = pd.DataFrame(rows)
    fig, (axes,) = paper_figure(13, 3.8, 1, 3)
    harsh = sequence_colours(len(curves), kind="harsh")
    soft = sequence_colours(len(curves), kind="continuous")
    for (length, scores), c_harsh, c_soft in zip(curves.items(), harsh, soft, strict=True):
        label = f"L={length}"
        _plot_curve(axes[0], _curve(scores, "exact_match"), label=label, color=c_harsh)
        _plot_curve(axes[1], _curve(scores, "token_edit_distance"), label=label, color=c_soft)
    axes[0].set_ylabel("exact match of the first L digits")
    axes[1].set_ylabel("token edit distance of the first L digits")
    for ax in axes[:2]:
        ax.legend()
    for metric, marker in (("exact_match", "o"), ("token_edit_distance", "s")):
        part = res[res["metric"] == metric]
        axes[2].plot(part["answer_length"], part["emergence_score"], marker=marker,
                     color=metric_colour(metric), label=_LABELS[metric])  # fmt: skip
    axes[2].set_xlabel("answer length L (digits)")
    axes[2].set_ylabel("emergence score")
    axes[2].set_xticks(sorted(curves))
    axes[2].legend()
    family = plain_text(table["family"].iloc[0])
    fig.suptitle(f"{family}: exact match and edit distance of L-digit answers")
    paths = list(save_figure(fig, out / "pred3_length").values())
    paths.append(write_table(res, out / "pred3_length.csv"))
    return paths


def run_predictions(
    samples: pd.DataFrame, out: str | os.PathLike[str], small_n: int = 100, seed: int = 0
) -> list[Path]:
    """All three predictions into ``out``; returns the files written."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = prediction_metric(samples, folder, seed)
    paths += prediction_resolution(samples, folder, small_n)
    paths += prediction_length(samples, folder, seed)
    return paths
