"""Scoring throughput: the vectorised metric suite against a per-sample Python loop.

Builds ``--n`` synthetic samples (seeded), then times

* ``compute_metrics(samples, all metrics)`` -- the vectorised suite, on all rows;
* the straightforward baseline: one plain-Python function per metric for one
  sample (as metrics are usually written, e.g. a per-document
  ``process_results``), every metric run over every row of the table
  (``itertuples``), on a random subsample of ``--loop-n`` rows, as a rate;
* for reference, a hand-fused loop (all nine metrics in one pass, the edit
  distance computed once), on inputs already in Python lists and counting the
  time to read those lists out of the table -- a lower bound on what any
  per-sample Python code can do;
* per metric, the vectorised time of each metric alone;
* ``score_samples`` end to end (means and intervals), against ``compute_metrics``'
  rate (target: at least half of it), and beside today's path in the same run:
  the same accumulation with the per-group loop of BCa intervals it replaced
  (one ``bca_mean_interval`` call per group, index resampling whenever
  ``n x resamples <= 5e7``), kept callable here as ``legacy_score_samples``.
  The samples fall in ``--groups`` (task, model) groups of equal size; by
  default the fewest (a multiple of the 4 tasks, at least 32) that keep every
  group at or below the 20,000 examples up to which continuous metrics get the
  bootstrap (above it they get a t interval and cost nothing).

Every time is the best of three runs (as ``timeit`` reports), for both sides,
except today's path (one run: tens of seconds).
The loop's values are compared with the vectorised values on the subsample
(exactly for 0/1 metrics and edit distances, ``np.allclose`` otherwise); the
script exits with code 1 if they differ.

Run: ``python benchmarks/bench_scoring.py --n 1000000 --loop-n 50000 [--groups G]
[--no-legacy] [--summary PATH]``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from rapidfuzz.distance import Levenshtein
from scipy import stats as sps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _summary import row, write_summary  # noqa: E402

from miragelab.metrics import REGISTRY, compute_metrics  # noqa: E402
from miragelab.schema import LIST_TYPE, TEXT_DTYPE  # noqa: E402
from miragelab.scoring import BOOTSTRAP_MAX_N, Scorer, score_samples  # noqa: E402

WORDS = (
    "one two three four five six seven eight nine ten cat dog red blue yes no true false "
    "paris rome north south apple river stone light"
).split()
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 "
N_CHOICES = 4
MAX_TOKENS = 8
#: metrics whose values must agree exactly (0/1 and integer distances)
EXACT = (
    "exact_match",
    "multiple_choice_grade",
    "multiple_choice_grade_norm",
    "token_edit_distance",
    "greedy_match",
    "continuation_logprob",
)


# --------------------------------------------------------------------------- synthetic data


def _targets(rng: np.random.Generator, n: int) -> list[str]:
    """Half digit strings of 1-6 digits, half phrases of 1-3 words."""
    digits = rng.integers(0, 10**6, size=n)
    n_digits = rng.integers(1, 7, size=n)
    is_number = rng.random(n) < 0.5
    word_ids = rng.integers(0, len(WORDS), size=(n, 3))
    n_words = rng.integers(1, 4, size=n)
    out = []
    for i in range(n):
        if is_number[i]:
            out.append(str(digits[i] % 10 ** n_digits[i]))
        else:
            out.append(" ".join(WORDS[w] for w in word_ids[i, : n_words[i]]))
    return out


def _predictions(rng: np.random.Generator, targets: list[str]) -> list[str]:
    """A copy of each target with 0-3 random character edits, some with stray spaces."""
    n = len(targets)
    n_edits = rng.choice(4, size=n, p=[0.4, 0.3, 0.2, 0.1])
    kinds = rng.integers(0, 3, size=(n, 3))
    where = rng.random((n, 3))
    chars = rng.integers(0, len(ALPHABET), size=(n, 3))
    pad = rng.random(n) < 0.05
    out = []
    for i, target in enumerate(targets):
        text = target
        for e in range(n_edits[i]):
            pos = int(where[i, e] * (len(text) + 1))
            char = ALPHABET[chars[i, e]]
            if kinds[i, e] == 0 or not text:
                text = text[:pos] + char + text[pos:]
            elif kinds[i, e] == 1:
                pos = min(pos, len(text) - 1)
                text = text[:pos] + char + text[pos + 1 :]
            else:
                pos = min(pos, len(text) - 1)
                text = text[:pos] + text[pos + 1 :]
        out.append(f" {text} " if pad[i] else text)
    return out


def _list_column(values: np.ndarray, counts: np.ndarray) -> pd.arrays.ArrowExtensionArray:
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    array = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=pa.float64()))
    return pd.array(array, dtype=pd.ArrowDtype(LIST_TYPE))


N_TASKS = 4


def default_groups(n: int) -> int:
    """The fewest (task, model) groups, a multiple of the tasks and at least 32, whose
    sizes stay at or below the bootstrap's limit."""
    per_task = max(8, math.ceil(n / (N_TASKS * BOOTSTRAP_MAX_N)))
    return N_TASKS * per_task


def make_samples(n: int, seed: int, groups: int = 32) -> pd.DataFrame:
    """``n`` samples over 4 tasks x ``groups / 4`` models of one family (groups of equal
    size, rows in random order), with every metric's columns, in the dtypes
    ``read_samples`` gives (Arrow strings, Arrow lists)."""
    rng = np.random.default_rng(seed)
    n_tasks, n_models = N_TASKS, groups // N_TASKS
    group = rng.permutation(np.arange(n) % (n_tasks * n_models))
    task, model = group // n_models, group % n_models
    targets = _targets(rng, n)
    predictions = _predictions(rng, targets)

    n_tokens = rng.integers(1, MAX_TOKENS + 1, size=n)
    token_logprobs = -rng.exponential(0.7, size=int(n_tokens.sum()))

    logits = rng.normal(0.0, 2.0, size=(n, N_CHOICES))
    ties = rng.random(n) < 0.01  # exact ties: the first maximum wins
    logits[ties, 1] = logits[ties].max(axis=1)
    logits[ties, 0] = logits[ties, 1]
    top = logits.max(axis=1, keepdims=True)
    choice_logprobs = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
    choice_logprobs = np.minimum(choice_logprobs, 0.0)
    choice_lengths = rng.integers(1, 40, size=(n, N_CHOICES)).astype(float)
    continuation_logprob = -rng.exponential(3.0, size=n)

    sizes = np.geomspace(1e7, 1e10, n_models)
    example = np.arange(n)
    return pd.DataFrame(
        {
            "task": pd.array(
                np.array([f"task{t}" for t in range(n_tasks)], object)[task], dtype=TEXT_DTYPE
            ),
            "family": pd.array(np.full(n, "synthetic", dtype=object), dtype=TEXT_DTYPE),
            "model": pd.array(
                np.array([f"m{m}" for m in range(n_models)], object)[model], dtype=TEXT_DTYPE
            ),
            "params": sizes[model],
            "compute_flops": 6 * sizes[model] * 2e10,
            "tokens_trained": np.full(n, 2e10),
            "step": pd.array(np.full(n, pd.NA), dtype="Int64"),
            "example_id": pd.array(example.astype(str).astype(object), dtype=TEXT_DTYPE),
            "prompt": pd.array(np.full(n, "Q:", dtype=object), dtype=TEXT_DTYPE),
            "target": pd.array(np.array(targets, dtype=object), dtype=TEXT_DTYPE),
            "prediction": pd.array(np.array(predictions, dtype=object), dtype=TEXT_DTYPE),
            "target_token_logprobs": _list_column(token_logprobs, n_tokens),
            "choice_logprobs": _list_column(choice_logprobs.ravel(), np.full(n, N_CHOICES)),
            "correct_choice": pd.array(rng.integers(0, N_CHOICES, size=n), dtype="Int64"),
            "choice_lengths": _list_column(choice_lengths.ravel(), np.full(n, N_CHOICES)),
            "continuation_logprob": continuation_logprob,
            "continuation_is_greedy": pd.array(rng.random(n) < 0.4, dtype="boolean"),
        }
    )


# --------------------------------------------------------------------------- the plain loop


def loop_metrics(
    targets: list[str],
    predictions: list[str],
    token_logprobs: list[list[float]],
    choice_logprobs: list[list[float]],
    correct: list[int],
    lengths: list[list[float]],
    continuation: list[float],
    greedy: list[bool],
) -> dict[str, list[float]]:
    """Every metric of the suite, one sample at a time, in plain Python."""
    out: dict[str, list[float]] = {name: [] for name in REGISTRY}
    for target, prediction, lps, choices, right, chars, total, is_greedy in zip(
        targets,
        predictions,
        token_logprobs,
        choice_logprobs,
        correct,
        lengths,
        continuation,
        greedy,
        strict=True,
    ):
        t, p = target.strip(), prediction.strip()
        out["exact_match"].append(1.0 if p == t else 0.0)
        dist = Levenshtein.distance(p, t)
        out["token_edit_distance"].append(float(dist))
        longest = max(len(p), len(t))
        out["normalized_edit_similarity"].append(1.0 - dist / longest if longest else 1.0)

        best = 0
        for j in range(1, len(choices)):
            if choices[j] > choices[best]:
                best = j
        out["multiple_choice_grade"].append(1.0 if best == right else 0.0)
        best_norm = 0
        for j in range(1, len(choices)):
            if choices[j] / chars[j] > choices[best_norm] / chars[best_norm]:
                best_norm = j
        out["multiple_choice_grade_norm"].append(1.0 if best_norm == right else 0.0)
        out["greedy_match"].append(1.0 if is_greedy else 0.0)
        out["continuation_logprob"].append(total)
        top = choices[best]
        weights = [math.exp(c - top) for c in choices]
        total = sum(weights)
        brier = 0.0
        for j, w in enumerate(weights):
            brier += (w / total - (1.0 if j == right else 0.0)) ** 2
        out["brier_score"].append(brier / len(choices))

        total_lp = sum(lps)
        mean_lp = total_lp / len(lps)
        out["target_logprob"].append(total_lp)
        out["target_logprob_mean"].append(mean_lp)
        out["per_token_prob"].append(math.exp(mean_lp))
        out["cross_entropy"].append(-mean_lp)
    return out


# One function per metric for one sample, as a metric is usually written (a
# per-document ``process_results``): each metric reads its own fields and does
# its own normalisation, and the loop runs every metric over every row.


def _texts(row) -> tuple[str, str]:  # noqa: ANN001 - a table row (namedtuple)
    return row.prediction.strip(), row.target.strip()


def _exact_match(row) -> float:  # noqa: ANN001
    prediction, target = _texts(row)
    return 1.0 if prediction == target else 0.0


def _token_edit_distance(row) -> float:  # noqa: ANN001
    return float(Levenshtein.distance(*_texts(row)))


def _normalized_edit_similarity(row) -> float:  # noqa: ANN001
    prediction, target = _texts(row)
    longest = max(len(prediction), len(target))
    return 1.0 - Levenshtein.distance(prediction, target) / longest if longest else 1.0


def _multiple_choice_grade(row) -> float:  # noqa: ANN001
    choices = list(row.choice_logprobs)
    return 1.0 if choices.index(max(choices)) == row.correct_choice else 0.0


def _multiple_choice_grade_norm(row) -> float:  # noqa: ANN001
    per_char = [lp / n for lp, n in zip(row.choice_logprobs, row.choice_lengths, strict=True)]
    return 1.0 if per_char.index(max(per_char)) == row.correct_choice else 0.0


def _greedy_match(row) -> float:  # noqa: ANN001
    return 1.0 if row.continuation_is_greedy else 0.0


def _continuation_logprob(row) -> float:  # noqa: ANN001
    return float(row.continuation_logprob)


def _brier_score(row) -> float:  # noqa: ANN001
    choices = list(row.choice_logprobs)
    top = max(choices)
    weights = [math.exp(c - top) for c in choices]
    total = sum(weights)
    return sum(
        (w / total - (1.0 if j == row.correct_choice else 0.0)) ** 2 for j, w in enumerate(weights)
    ) / len(choices)


def _target_logprob(row) -> float:  # noqa: ANN001
    return float(sum(row.target_token_logprobs))


def _target_logprob_mean(row) -> float:  # noqa: ANN001
    logprobs = list(row.target_token_logprobs)
    return sum(logprobs) / len(logprobs)


def _per_token_prob(row) -> float:  # noqa: ANN001
    return math.exp(_target_logprob_mean(row))


def _cross_entropy(row) -> float:  # noqa: ANN001
    return -_target_logprob_mean(row)


PER_SAMPLE = {
    "exact_match": _exact_match,
    "token_edit_distance": _token_edit_distance,
    "normalized_edit_similarity": _normalized_edit_similarity,
    "multiple_choice_grade": _multiple_choice_grade,
    "multiple_choice_grade_norm": _multiple_choice_grade_norm,
    "brier_score": _brier_score,
    "target_logprob": _target_logprob,
    "target_logprob_mean": _target_logprob_mean,
    "per_token_prob": _per_token_prob,
    "cross_entropy": _cross_entropy,
    "greedy_match": _greedy_match,
    "continuation_logprob": _continuation_logprob,
}


def straightforward_loop(samples: pd.DataFrame) -> dict[str, list[float]]:
    """Every metric over every row of the table, one per-sample function call each."""
    rows = list(samples.itertuples(index=False))
    return {name: [fn(row) for row in rows] for name, fn in PER_SAMPLE.items()}


# --------------------------------------------------------------------------- today's intervals
# The per-group BCa loop that ``Scorer`` used before its intervals were computed for
# every group at once, as it was: one call per group, whose resampled means are
# exact multinomial counts for at most 512 distinct values and otherwise index
# resampling while n x resamples <= 5e7 (always, for groups of <= 20,000 and 1,000
# resamples).


def _legacy_bootstrap_means(x: np.ndarray, n_resamples: int, rng: np.random.Generator):
    n = x.size
    xs = np.sort(x)
    starts = np.flatnonzero(np.concatenate(([True], xs[1:] != xs[:-1])))
    distinct, counts = xs[starts], np.diff(np.append(starts, n))
    if distinct.size <= 512:
        return rng.multinomial(n, counts / n, size=n_resamples) @ distinct / n
    if n * n_resamples > 50_000_000:
        raise ValueError("today's path would bin this group: not a case of this benchmark")
    means = np.empty(n_resamples)
    per_chunk = max(1, 4_000_000 // n)
    for start in range(0, n_resamples, per_chunk):
        stop = min(n_resamples, start + per_chunk)
        means[start:stop] = x[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return means


def _legacy_bca(x: np.ndarray, confidence: float, n_resamples: int, rng) -> tuple[float, float]:
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    means = _legacy_bootstrap_means(x, n_resamples, rng)
    estimate = x.mean()
    tail = (1.0 - confidence) / 2.0
    below = np.mean(means < estimate)
    if not 0.0 < below < 1.0:
        low, high = np.percentile(means, [100 * tail, 100 * (1 - tail)])
    else:
        z0 = sps.norm.ppf(below)
        d = x - estimate
        accel = np.sum(d**3) / (6.0 * np.sum(d**2) ** 1.5)
        z = sps.norm.ppf([tail, 1.0 - tail])
        adjusted = sps.norm.cdf(z0 + (z0 + z) / (1.0 - accel * (z0 + z)))
        low, high = np.percentile(means, 100 * adjusted)
    return float(min(low, high, estimate)), float(max(low, high, estimate))


class _LegacyScorer(Scorer):
    def _bootstrap(self, columns: dict) -> None:
        rng = np.random.default_rng(self.seed)
        for metric in self.metrics:
            if metric.binary:
                continue
            column = columns[metric.name]
            small = np.flatnonzero(column.n <= BOOTSTRAP_MAX_N)
            values = self.moments[metric.name].kept()
            bounds = np.append(0, np.cumsum(column.n[small]))
            for j, g in enumerate(small.tolist()):
                x = values[bounds[j] : bounds[j + 1]]
                column.value[g] = x.mean()
                column.low[g], column.high[g] = _legacy_bca(
                    x, self.confidence, self.n_resamples, rng
                )
                column.method[g] = "bca"


def legacy_score_samples(samples: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """``score_samples`` with today's per-group loop of intervals."""
    scorer = _LegacyScorer(metrics)
    scorer.add(samples)
    return scorer.scores()


def _agreement(new: pd.DataFrame, old: pd.DataFrame) -> tuple[float, float]:
    """Median and largest difference of the BCa ends between the two paths, in bootstrap
    standard deviations (the interval's width / 3.92)."""
    key = ["task", "model", "metric"]
    both = new.merge(old, on=key, suffixes=("", "_old"))
    both = both[both["ci_method"] == "bca"]
    sd = ((both["ci_high_old"] - both["ci_low_old"]) / 3.92).to_numpy()
    ok = sd > 0
    diff = np.concatenate(
        [
            np.abs(both["ci_low"] - both["ci_low_old"]).to_numpy()[ok] / sd[ok],
            np.abs(both["ci_high"] - both["ci_high_old"]).to_numpy()[ok] / sd[ok],
        ]
    )
    return (float(np.median(diff)), float(diff.max())) if diff.size else (math.nan, math.nan)


# --------------------------------------------------------------------------- timing


REPEAT = 3


def _timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, object]:
    """Best wall time of ``repeat`` runs (as timeit reports), and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _row(label: str, n: int, seconds: float) -> str:
    return f"{label:<46} {n:>10,} {seconds:>10.3f} {n / seconds:>14,.0f}"


def _compare(vectorised: pd.DataFrame, loop: dict[str, list[float]]) -> list[str]:
    problems = []
    for name in REGISTRY:
        got = vectorised[name].to_numpy()
        want = np.asarray(loop[name])
        if name in EXACT:
            differ = got != want
        else:
            differ = ~np.isclose(got, want, rtol=1e-9, atol=1e-12)
        if differ.any():
            bad = np.flatnonzero(differ)
            problems.append(
                f"{name}: {bad.size} of {want.size} values differ "
                f"(first at subsample row {bad[0]}: vectorised {got[bad[0]]!r}, "
                f"loop {want[bad[0]]!r})"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="synthetic samples")
    parser.add_argument("--loop-n", type=int, default=50_000, help="rows timed in the loop")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument(
        "--groups",
        type=int,
        default=None,
        help="(task, model) groups, a multiple of 4 (default: the fewest, at least 32, "
        "of at most 20,000 samples each)",
    )
    parser.add_argument(
        "--legacy",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time today's per-group loop of intervals (tens of seconds)",
    )
    parser.add_argument("--summary", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    if args.n < 1 or args.loop_n < 1:
        parser.error("--n and --loop-n must be >= 1")
    groups = default_groups(args.n) if args.groups is None else args.groups
    if groups < N_TASKS or groups % N_TASKS:
        parser.error(f"--groups must be a positive multiple of {N_TASKS}")
    loop_n = min(args.loop_n, args.n)
    names = list(REGISTRY)

    build_s, samples = _timed(lambda: make_samples(args.n, args.seed, groups))
    size = math.ceil(args.n / groups)
    print(
        f"built {args.n:,} synthetic samples in {build_s:.1f} s (seed {args.seed}), "
        f"{groups} (task, model) groups of {size:,}"
        + (" (over the bootstrap's limit: t intervals)" if size > BOOTSTRAP_MAX_N else "")
    )

    compute_metrics(samples.iloc[:1000], names)  # warm-up: lazy imports and kernel lookups
    vec_s, values = _timed(lambda: compute_metrics(samples, names), REPEAT)

    rng = np.random.default_rng(args.seed + 1)
    rows = np.sort(rng.choice(args.n, size=loop_n, replace=False))
    sub = samples.iloc[rows]
    extract_s, inputs = _timed(
        lambda: (
            sub["target"].tolist(),
            sub["prediction"].tolist(),
            pa.array(sub["target_token_logprobs"]).to_pylist(),
            pa.array(sub["choice_logprobs"]).to_pylist(),
            sub["correct_choice"].astype(int).tolist(),
            pa.array(sub["choice_lengths"]).to_pylist(),
            sub["continuation_logprob"].tolist(),
            sub["continuation_is_greedy"].astype(bool).tolist(),
        )
    )
    loop_s, loop = _timed(lambda: loop_metrics(*inputs), REPEAT)
    plain_s, plain = _timed(lambda: straightforward_loop(sub), REPEAT)

    per_metric = {
        name: _timed(lambda m=name: compute_metrics(samples, [m]), REPEAT)[0] for name in names
    }
    score_s, scores = _timed(lambda: score_samples(samples, names), REPEAT)
    legacy_s, legacy = (
        _timed(lambda: legacy_score_samples(samples, names)) if args.legacy else (math.nan, None)
    )

    vec_rate = args.n / vec_s
    header = f"{'what':<46} {'samples':>10} {'seconds':>10} {'samples/s':>14}"
    print()
    print(header)
    print("-" * len(header))
    print(_row(f"vectorised compute_metrics ({len(names)} metrics)", args.n, vec_s))
    print(_row("straightforward loop: each metric over the rows", loop_n, plain_s))
    print(_row("hand-fused loop, inputs as Python lists", loop_n, loop_s))
    print(_row("  + reading those lists out of the table", loop_n, extract_s + loop_s))
    print(_row(f"score_samples end to end ({len(scores)} score rows)", args.n, score_s))
    if legacy is not None:
        print(_row("  today's path: one BCa interval per group", args.n, legacy_s))
    print()
    methods = ", ".join(f"{k} {v}" for k, v in scores["ci_method"].value_counts().items())
    score_ratio = (args.n / score_s) / vec_rate
    print(
        f"score_samples at {score_ratio:.0%} of compute_metrics' rate (target >= 50%); "
        f"intervals: {methods}"
    )
    if legacy is not None:
        median, largest = _agreement(scores, legacy)
        print(
            f"speed-up over today's path: {legacy_s / score_s:,.1f}x; BCa ends differ from "
            f"today's by {median:.3f} bootstrap sds in the median, {largest:.3f} at most "
            f"(two Monte-Carlo runs of 1,000 resamples: about 0.08 and 0.4-0.6)"
        )
    print()
    print(f"speed-up over the straightforward loop:     {vec_rate / (loop_n / plain_s):,.1f}x")
    print(f"speed-up over the hand-fused loop (lists given): {vec_rate / (loop_n / loop_s):,.1f}x")
    print(
        f"speed-up over the hand-fused loop (lists read):  "
        f"{vec_rate / (loop_n / (extract_s + loop_s)):,.1f}x"
    )
    print()
    print(f"{'vectorised, one metric at a time':<46} {'seconds':>21} {'samples/s':>14}")
    for name, seconds in sorted(per_metric.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<44} {seconds:>21.3f} {args.n / seconds:>14,.0f}")

    expected = values.iloc[rows].reset_index(drop=True)
    problems = _compare(expected, loop) + _compare(expected, plain)
    write_summary(
        args.summary,
        _summary_rows(args.n, loop_n, vec_s, plain_s, loop_s, extract_s, score_s, problems)
        + _score_rows(args.n, groups, vec_s, score_s, legacy_s),
    )
    print()
    if problems:
        print(f"MISMATCH between vectorised and loop values on {loop_n:,} rows:")
        for line in problems:
            print(f"  {line}")
        return 1
    print(f"vectorised values equal the loop's on {loop_n:,} rows (all {len(names)} metrics)")
    return 0


def _score_rows(n: int, groups: int, vec_s: float, score_s: float, legacy_s: float) -> list[dict]:
    ratio = vec_s / score_s  # rate of score_samples / rate of compute_metrics
    where = f"{n:,} samples in {groups} groups of {math.ceil(n / groups):,}"
    return [
        row(
            "scoring",
            f"score_samples end to end against compute_metrics' rate, {where}",
            n / score_s,
            "samples/s",
            baseline=n / vec_s,
            baseline_name="compute_metrics, all metrics",
            ratio=ratio,
            target=">= 0.5",
            met=ratio >= 0.5,
        ),
        row(
            "scoring",
            f"score_samples end to end against today's per-group intervals, {where}",
            n / score_s,
            "samples/s",
            baseline=n / legacy_s,
            baseline_name="one BCa interval per group (index resampling)",
            ratio=legacy_s / score_s,
        ),
    ]


def _summary_rows(
    n: int,
    loop_n: int,
    vec_s: float,
    plain_s: float,
    loop_s: float,
    extract_s: float,
    score_s: float,
    problems: list[str],
) -> list[dict]:
    vec_rate = n / vec_s
    plain_rate, fused_rate = loop_n / plain_s, loop_n / (extract_s + loop_s)
    name = "scoring"
    return [
        row(
            name,
            f"all {len(REGISTRY)} metrics on {n:,} samples, throughput",
            vec_rate,
            "samples/s",
            baseline=plain_rate,
            baseline_name=f"one Python function per metric per row ({loop_n:,} rows)",
            ratio=vec_rate / plain_rate,
            target=">= 50x",
            met=vec_rate / plain_rate >= 50,
        ),
        row(
            name,
            "throughput against a hand-fused loop (lists read from the table)",
            vec_rate,
            "samples/s",
            baseline=fused_rate,
            baseline_name=f"all metrics in one Python pass ({loop_n:,} rows)",
            ratio=vec_rate / fused_rate,
        ),
        row(
            name,
            "vectorised values equal the loop's",
            float(not problems),
            "bool",
            target="1",
            met=not problems,
        ),
    ]


if __name__ == "__main__":
    sys.exit(main())
