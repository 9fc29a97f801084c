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
3. **Answer length** (``pred3_length``): on samples of several tasks whose
   answers have ``L`` tokens each (the ``addmix`` ladder: 1- to 5-digit
   addition trained as one mix, each ``L`` evaluated on held-out ``L``-digit
   pairs whose sum has ``L`` digits, by the same models), exact match and
   token edit distance per ``L``, each one's emergence score and smoothness
   with intervals from resampling the examples within each model, exact
   match's verdict per ``L``, the closed form ``p**L`` from the per-token
   probability beside the observed exact match, and Spearman's rank
   correlation of each sharpness measure with ``L``. The paper predicts that
   exact match sharpens as ``L`` grows while edit distance stays smooth. (An
   earlier version cut the answers of one task to their first ``L`` digits;
   the first digits of a sum depend on every carry, so a 1-digit prefix is not
   a 1-token task and that did not test the prediction.)

A samples table of one task gets predictions 1 and 2, one of several answer
lengths prediction 3 (:func:`run_predictions`).
Each prediction writes ``NAME.png``/``NAME.svg`` and ``NAME.csv``; the
scores behind the figures go to ``scores.csv``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import permutation_test, rankdata

from miragelab.emergence import curve_measures, emergence_scores_sorted, smoothness_sorted
from miragelab.errors import InputError
from miragelab.metrics import compute_metrics
from miragelab.planner import resolvable_accuracy
from miragelab.report.figures import plain_text, save_figure
from miragelab.report.style import log_x, metric_colour, paper_figure, sequence_colours
from miragelab.report.verdict_figures import write_verdict_figures
from miragelab.scoring import score_samples
from miragelab.stats import emergence_score_interval, percentile_interval, wilson_interval
from miragelab.tables import without_attrs, write_table
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


#: resamples of the examples behind each emergence score's interval and the rank correlation
N_RESAMPLES = 1000
#: the two measures of a curve's sharpness: a column of the measures, its resampled form and
#: the prefix of its interval's columns (a sharper curve: a larger emergence score, a
#: smaller smoothness)
SHARPNESS = {
    "emergence_score": (emergence_scores_sorted, "score"),
    "smoothness": (smoothness_sorted, "smoothness"),
}


def _lengths(table: pd.DataFrame) -> dict[str, int]:
    """Each task's answer length in tokens (its targets' one count of target log-probs)."""
    counts = table["target_token_logprobs"].map(
        lambda v: len(v) if isinstance(v, (list, tuple, np.ndarray)) else -1
    )
    found = counts.groupby(table["task"], sort=False).unique()
    lengths = {}
    for task, values in found.items():
        if len(values) != 1 or values[0] < 1:
            shown = ", ".join(str(v) for v in sorted(values) if v >= 0) or "none"
            raise InputError(
                f"task {task}: answers of {shown} target token(s); prediction 3 needs one "
                "answer length per task (the target log-probs of every row)",
                field="target_token_logprobs",
            )
        lengths[str(task)] = int(values[0])
    if len(set(lengths.values())) != len(lengths):
        raise InputError("two tasks have the same answer length", field="task")
    if len(lengths) < 3:
        raise InputError(
            f"prediction 3 needs at least 3 answer lengths, found {len(lengths)}", field="task"
        )
    return dict(sorted(lengths.items(), key=lambda item: item[1]))


def _length_ladder(samples: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int], pd.Series]:
    """The samples of one family whose models answered every answer length."""
    table = without_attrs(samples)
    families = table["family"].unique()
    if len(families) != 1:
        raise InputError(
            f"expected the samples of one ladder (one family), found {', '.join(families)}",
            field="family",
        )
    lengths = _lengths(table)
    models = table.groupby("task", sort=False)["model"].agg(frozenset)
    if models.nunique() != 1:
        raise InputError("every answer length needs the same models", field="model")
    by_size = table.groupby("model")["params"].first().sort_values()
    if by_size.size < 3:
        raise InputError("need at least 3 models for an emergence score", field="model")
    return table, lengths, by_size


def _per_example(
    table: pd.DataFrame, lengths: dict[str, int], by_size: pd.Series
) -> tuple[dict[str, list[np.ndarray]], list[np.ndarray | None]]:
    """Per task, per model (by size): rows of [exact match, edit distance, target log-prob],
    in example order; and per model the example ids when every task has the same ones."""
    values = compute_metrics(table, ["exact_match", "token_edit_distance"])
    total = table["target_token_logprobs"].map(lambda v: float(np.sum(v)))
    frame = pd.DataFrame(
        {
            "task": table["task"],
            "model": table["model"],
            "id": table["example_id"].astype(str),
            "em": values["exact_match"],
            "ted": values["token_edit_distance"],
            "lp": total,
        }
    ).sort_values(["task", "model", "id"], kind="stable")
    groups = dict(iter(frame.groupby(["task", "model"], sort=False)))
    arrays = {
        task: [groups[(task, m)][["em", "ted", "lp"]].to_numpy(float).T for m in by_size.index]
        for task in lengths
    }
    shared: list[np.ndarray | None] = []
    for m in by_size.index:
        ids = [groups[(task, m)]["id"].to_numpy() for task in lengths]
        same = all(len(i) == len(ids[0]) and (i == ids[0]).all() for i in ids)
        shared.append(ids[0] if same else None)
    return arrays, shared


def _resampled_means(
    arrays: dict[str, list[np.ndarray]],
    shared: list[np.ndarray | None],
    n_resamples: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Per task, the means of the resampled examples: shape ``(R, 3, models)``.

    Each model's examples are resampled on their own (the models are independent);
    a model whose examples are the same at every answer length uses the same draw
    at every length, so the lengths are compared on the same examples.
    """
    tasks = list(arrays)
    out = {task: np.empty((n_resamples, 3, len(shared))) for task in tasks}
    for j, ids in enumerate(shared):
        draw = None
        for task in tasks:
            block = arrays[task][j]
            if draw is None or ids is None:
                draw = rng.integers(0, block.shape[1], size=(n_resamples, block.shape[1]))
            out[task][:, :, j] = block[:, draw].mean(axis=2).T
    return out


def _spearman(scores: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row of ``scores`` with ``lengths`` (ties at their mid-rank;
    +-inf ranks as the largest / smallest; NaN where a row is constant)."""
    ranks = rankdata(scores, axis=-1)
    ranked_l = rankdata(lengths)
    a = ranks - ranks.mean(axis=-1, keepdims=True)
    b = ranked_l - ranked_l.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis=-1) / np.sqrt((a * a).sum(axis=-1) * (b * b).sum())


def _rank_row(
    metric: str,
    measure: str,
    scores: np.ndarray,
    draws: np.ndarray,
    ls: np.ndarray,
    how: str,
    flat: np.ndarray,
) -> dict:
    """Spearman's rho of ``scores`` with the lengths ``ls``, over the lengths whose curve
    varies: a curve on which every model scores the same (no model answers any example
    right, say) has no shape to be sharp or smooth, and is left out, by name."""
    keep = ~flat
    row = {"metric": metric, "measure": measure, "n_lengths": int(keep.sum())}
    row["left_out"] = ", ".join(f"L = {length:g}" for length in ls[flat]) or None
    if keep.sum() < 3:
        return row | {"note": "fewer than 3 lengths whose curve varies: no rank correlation"}
    scores, draws, ls = scores[keep], draws[:, keep], ls[keep]
    test = permutation_test(
        (scores,), lambda s: _spearman(s, ls), permutation_type="pairings", n_resamples=np.inf
    )
    low, high = percentile_interval(_spearman(draws, ls), 0.95)
    return row | {
        "spearman_rho": float(_spearman(scores, ls)),
        "ci_low": low,
        "ci_high": high,
        "p_value": float(test.pvalue),
        "n_resamples": len(draws),
        "ci_method": f"percentile bootstrap: {how}",
        "p_method": "exact permutation test over the orders of the lengths",
    }


def prediction_length(
    samples: pd.DataFrame, out: Path, seed: int = 0, n_resamples: int = N_RESAMPLES
) -> list[Path]:
    """Prediction 3 on a ladder that answered tasks of several answer lengths ``L``.

    ``samples``: one family, the same models on every task, each task's answers
    of one length ``L`` (its number of target tokens, from the target
    log-probs): ``addmix``'s ``addmix-len1`` .. ``-len5``. Writes
    ``pred3_length.csv`` (per ``L`` and metric: emergence score and
    smoothness with intervals, exact match's verdict), ``pred3_curves.csv`` (per
    ``L`` and model: exact match and edit distance with intervals, the
    geometric-mean per-token probability ``p`` and the closed form ``p**L``
    with intervals), ``pred3_rank.csv`` (Spearman's rho of each metric's
    emergence score, and of its smoothness, with ``L``: its interval and exact
    permutation p-value; the paper predicts a positive rho of exact match's
    score, a negative one of its smoothness),
    ``pred3_verdict.csv``, the verdicts' figures and ``pred3_length.png``.

    Intervals resample the examples within each model (:data:`N_RESAMPLES`
    times), with the same draw at every ``L`` where the models answered the same
    examples at every ``L``, so the rank correlation compares lengths on the
    same examples.
    """
    table, lengths, by_size = _length_ladder(samples)
    out.mkdir(parents=True, exist_ok=True)
    ls = np.array(list(lengths.values()), dtype=float)
    scores = score_samples(table, list(METRICS_1), seed=seed)
    arrays, shared = _per_example(table, lengths, by_size)
    paired = all(ids is not None for ids in shared)
    how = (
        "examples within each model, the same draw at every L"
        if paired
        else "examples within each model and L"
    )
    draws = _resampled_means(arrays, shared, n_resamples, np.random.default_rng(seed))
    rows, curves, verdicts = [], [], []
    measured = {(m, k): [] for m in ("exact_match", "token_edit_distance") for k in SHARPNESS}
    paths: list[Path] = []
    for task, length in lengths.items():
        part = scores[scores["task"] == task]
        found = _verdicts(part, "exact_match", seed, table[table["task"] == task])
        verdicts.append(found.verdicts)
        paths += list(
            write_verdict_figures(found.verdicts, found.details, out / "verdicts").values()
        )
        observed = np.array([block.mean(axis=1) for block in arrays[task]])  # (models, 3)
        for k, (metric, sign) in enumerate((("exact_match", 1.0), ("token_edit_distance", -1.0))):
            c = _curve(part, metric)
            row = {"answer_length": length, "task": task, "metric": metric}
            row |= curve_measures(c["params"], c["value"], sign > 0)
            for measure, (of, ci) in SHARPNESS.items():
                drawn = of(sign * draws[task][:, k, :])
                measured[(metric, measure)].append(drawn)
                row[f"{ci}_ci_low"], row[f"{ci}_ci_high"] = percentile_interval(drawn, 0.95)
            row["ci_method"] = how
            row["verdict"] = found.verdicts["verdict"].iloc[0] if k == 0 else None
            rows.append(row)
        p = np.exp(observed[:, 2] / length)  # geometric-mean probability of a target token
        closed = np.exp(draws[task][:, 2, :])  # p**L = exp(mean total target log-prob)
        for j, model in enumerate(by_size.index):
            em, ted = _curve(part, "exact_match"), _curve(part, "token_edit_distance")
            em, ted = em[em["model"] == model].iloc[0], ted[ted["model"] == model].iloc[0]
            low, high = percentile_interval(closed[:, j], 0.95)
            curves.append(
                {
                    "answer_length": length,
                    "task": task,
                    "model": model,
                    "params": float(by_size[model]),
                    "exact_match": em["value"],
                    "exact_match_ci_low": em["ci_low"],
                    "exact_match_ci_high": em["ci_high"],
                    "token_edit_distance": ted["value"],
                    "token_edit_distance_ci_low": ted["ci_low"],
                    "token_edit_distance_ci_high": ted["ci_high"],
                    "per_token_prob_geomean": p[j],
                    # p = (p**L)**(1/L) is monotone, so its interval is the closed form's
                    "per_token_prob_ci_low": low ** (1 / length),
                    "per_token_prob_ci_high": high ** (1 / length),
                    "closed_form_exact_match": p[j] ** length,
                    "closed_form_ci_low": low,
                    "closed_form_ci_high": high,
                }
            )
    res, curve_table = pd.DataFrame(rows), pd.DataFrame(curves)
    res["curve_varies"] = True
    flat_of = {}
    for metric in ("exact_match", "token_edit_distance"):
        c = curve_table.groupby("answer_length")[metric]
        flat_of[metric] = (c.max() == c.min()).reindex(ls.astype(int)).to_numpy(bool)
        res.loc[res["metric"] == metric, "curve_varies"] = ~flat_of[metric]
    rank = pd.DataFrame(
        [
            _rank_row(
                metric,
                measure,
                res.loc[res["metric"] == metric, measure].to_numpy(float),
                np.column_stack(drawn),
                ls,
                how,
                flat_of[metric],
            )
            for (metric, measure), drawn in measured.items()
        ]
    )
    fig = _length_figure(res, curve_table, str(table["family"].iloc[0]), rank)
    paths += list(save_figure(fig, out / "pred3_length").values())
    for name, frame in (
        ("pred3_length", res),
        ("pred3_curves", curve_table),
        ("pred3_rank", rank),
        ("pred3_verdict", pd.concat(verdicts, ignore_index=True)),
        ("scores", scores),
    ):
        paths.append(write_table(frame, out / f"{name}.csv"))
    return paths


def _shown(values: np.ndarray, top: float) -> np.ndarray:
    """``values`` with +-inf drawn at +-``top`` (the edge of a symmetric-log axis)."""
    return np.where(np.isinf(values), np.sign(values) * top, values)


def _length_figure(res: pd.DataFrame, curves: pd.DataFrame, family: str, rank: pd.DataFrame):
    """Exact match (with the closed form p**L dashed) and edit distance against parameters,
    one curve per L; each metric's emergence score, then its smoothness, against L with
    their intervals."""
    fig, (axes,) = paper_figure(16, 3.9, 1, 4)
    ls = sorted(curves["answer_length"].unique())
    harsh = sequence_colours(len(ls), kind="harsh")
    soft = sequence_colours(len(ls), kind="continuous")
    for length, c_harsh, c_soft in zip(ls, harsh, soft, strict=True):
        c = curves[curves["answer_length"] == length].sort_values("params")
        x = c["params"].to_numpy(float)
        for ax, metric, colour in (
            (axes[0], "exact_match", c_harsh),
            (axes[1], "token_edit_distance", c_soft),
        ):
            y = c[metric].to_numpy(float)
            err = np.vstack([y - c[f"{metric}_ci_low"], c[f"{metric}_ci_high"] - y])
            ax.errorbar(
                x,
                y,
                yerr=np.clip(err, 0, None),
                marker="o",
                ms=3.5,
                capsize=2,
                color=colour,
                label=f"L = {length}",
            )
        axes[0].plot(x, c["closed_form_exact_match"], ls="--", lw=1, color=c_harsh)
    axes[0].plot([], [], ls="--", lw=1, color="grey", label="p**L (closed form)")
    axes[0].set_ylabel("exact match")
    axes[1].set_ylabel("token edit distance")
    for ax in axes[:2]:
        log_x(ax)
        ax.set_xlabel("parameters")
        ax.legend()
    finite = res[["emergence_score", "score_ci_low", "score_ci_high"]].to_numpy(float)
    finite = np.abs(finite[np.isfinite(finite)])
    top = 2.0 * float(finite.max()) if finite.size else 10.0
    ranks = rank.set_index(["metric", "measure"])
    for ax, (measure, (_, ci)) in zip(axes[2:], SHARPNESS.items(), strict=True):
        for metric, marker in (("exact_match", "o"), ("token_edit_distance", "s")):
            part = res[res["metric"] == metric].sort_values("answer_length")
            y, low, high = (
                _shown(part[column].to_numpy(float), top)
                for column in (measure, f"{ci}_ci_low", f"{ci}_ci_high")
            )
            ax.errorbar(
                part["answer_length"],
                y,
                yerr=np.clip([y - low, high - y], 0, None),
                marker=marker,
                capsize=3,
                color=metric_colour(metric),
                label=f"{_LABELS[metric]} "
                f"(Spearman rho {ranks.loc[(metric, measure), 'spearman_rho']:.2f})",
            )
        ax.set_xticks(ls)
        ax.set_xlabel("answer length L (tokens)")
        ax.legend()
    every = res[["emergence_score", "score_ci_low", "score_ci_high"]].to_numpy(float)
    if np.isinf(every).any() or (finite.size and finite.max() > 10 * max(finite.min(), 1.0)):
        # infinite scores, or scores over decades: symmetric-log, +-inf at the edge
        axes[2].set_yscale("symlog", linthresh=1.0)
        axes[2].set_ylabel(f"emergence score (symlog; +-inf at +-{top:.3g})")
    else:
        axes[2].set_ylabel("emergence score")
    axes[3].set_ylim(-0.03, 1.03)
    axes[3].set_ylabel("smoothness (lower: sharper)")
    fig.suptitle(plain_text(f"{family}: the same models on answers of {ls[0]} to {ls[-1]} tokens"))
    return fig


def run_predictions(
    samples: pd.DataFrame, out: str | os.PathLike[str], small_n: int = 100, seed: int = 0
) -> list[Path]:
    """All three predictions into ``out``; returns the files written."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    if without_attrs(samples)["task"].nunique() > 1:  # several answer lengths: prediction 3
        return prediction_length(samples, folder, seed)
    paths = prediction_metric(samples, folder, seed)
    paths += prediction_resolution(samples, folder, small_n)
    return paths
