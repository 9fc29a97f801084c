"""Error rates of the mirage/genuine verdict on simulated ladders (issue 20).

    python benchmarks/bench_verdict.py [--quick] [--per-cell 60] [--workers 2] [--seed 1]
        [--summary PATH]

Simulates ladders that share nothing with the tests or with the choices made in
:mod:`miragelab.verdict` beyond the rule itself, and labels each with
:func:`miragelab.verdict.classify`:

* **sizes**: the size grids of real families (Pythia, OPT, GPT-3 / InstructGPT,
  BLOOM, Llama-2, Qwen1.5, Cerebras-GPT, Chinchilla-style geometric ones) and
  random log-uniform grids of 3 to 16 rungs over 1 to 5 decades;
* **the smooth law** (the mirage case): a per-token cross-entropy ``CE(N) = E +
  A (N / N_min) ** alpha``, ``alpha`` in [-0.8, -0.2], with and without an
  irreducible term ``E``;
* **the break** (the genuine case): the same law with ``CE`` cut by a step
  between two rungs or a ramp over two gaps, its size set so that the
  continuous metric changes by 5, 10 or 20 of its standard errors;
* **links** from ``CE`` to the harsh metric: exact match ``exp(-L CE)`` (``p ** L``,
  ``L`` set so that the largest model scores 0.2-0.9) or a sigmoid in ``CE``
  centred inside the ladder;
* **continuous metrics**: mean per-token log-prob (``target_logprob``, noise with
  a coefficient of variation of 0.8 per example), a 4-choice Brier score, token
  edit distance (binomial over the answer's tokens);
* **noise**: every point is a mean over ``n`` examples, ``n`` log-uniform from 50
  to 10**5; the harsh metric is binomial; and each model's loss scatters about
  the law by 0, 1 or 3% (``jitter``: what training seeds and data order do,
  which no test-set error includes).

It prints the confusion matrix (share of each label) per setting -- by case,
metric, link, law, number of rungs, decades and ``n`` -- and the power (share of
breaks labelled genuine) against break size, rungs, decades and n. Targets, in
every cell: P(genuine | smooth law) <= 5% and P(mirage | break) <= 5%.
Not a test: a measurement, with its Monte Carlo error (each cell's count shown).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _summary import row as summary_row  # noqa: E402
from _summary import write_summary  # noqa: E402

NAME = "verdict"

#: parameter counts of real families' released sizes
FAMILY_GRIDS = {
    "pythia": [70e6, 160e6, 410e6, 1.0e9, 1.4e9, 2.8e9, 6.9e9, 12e9],
    "opt": [125e6, 350e6, 1.3e9, 2.7e9, 6.7e9, 13e9, 30e9, 66e9, 175e9],
    "gpt3": [350e6, 1.3e9, 6.7e9, 175e9],
    "bloom": [560e6, 1.1e9, 1.7e9, 3e9, 7.1e9, 176e9],
    "llama2": [7e9, 13e9, 70e9],
    "qwen1.5": [0.5e9, 1.8e9, 4e9, 7e9, 14e9, 32e9, 72e9, 110e9],
    "cerebras": [111e6, 256e6, 590e6, 1.3e9, 2.7e9, 6.7e9, 13e9],
}
METRICS = ("target_logprob", "brier_score", "token_edit_distance")
LINKS = ("p^L", "sigmoid")
SIZES_SE = (5.0, 10.0, 20.0)
#: relative scatter of each model's loss about the law (training noise, data order, ...)
JITTER = (0.0, 0.01, 0.03)


def _grid(rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.4:
        return np.asarray(FAMILY_GRIDS[rng.choice(list(FAMILY_GRIDS))])
    k = int(rng.integers(3, 17))
    decades = rng.uniform(1, 5)
    u = np.sort(rng.uniform(0, decades, k - 2))
    u = np.r_[0.0, u, decades]
    if np.min(np.diff(u)) < 0.02:  # two models at nearly one size: respace evenly
        u = np.linspace(0, decades, k)
    return 10 ** (7 + rng.uniform(0, 2) + u)


def _law(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    alpha = rng.uniform(-0.8, -0.2)
    irreducible = rng.uniform(0.1, 1.0) if rng.random() < 0.5 else 0.0
    top = rng.uniform(1.5, 6.0)
    return irreducible + (top - irreducible) * (x / x[0]) ** alpha, irreducible > 0


def _metric(name: str, ce: np.ndarray, n: int, tokens: int, rng: np.random.Generator):
    """Observed means and their standard errors (as a scorer reports them)."""
    p = np.exp(-ce)
    if name == "target_logprob":
        se = 0.8 * ce / np.sqrt(n)
        return -ce + se * rng.standard_normal(ce.size), se
    if name == "brier_score":
        mean = (1 - p) ** 2 * (1 + 1 / 3)
        se = np.maximum(0.35 * np.sqrt(mean), 1e-3) / np.sqrt(n)
        return mean + se * rng.standard_normal(ce.size), se
    ted = rng.binomial(n * tokens, 1 - p) / n
    q = np.clip(ted / tokens, 0, 1)
    return ted, np.sqrt(tokens * q * (1 - q) / n)


def _exact(name: str, ce: np.ndarray, n: int, tokens: int) -> np.ndarray:
    """The continuous metric without noise (to size a planted break)."""
    p = np.exp(-ce)
    if name == "target_logprob":
        return -ce
    if name == "brier_score":
        return (1 - p) ** 2 * (1 + 1 / 3)
    return tokens * (1 - p)


def _link(link: str, ce_smooth: np.ndarray, rng: np.random.Generator):
    """The harsh metric as a function of CE (drawn once per ladder), and the answer length."""
    if link == "p^L":
        length = max(1.0, -np.log(rng.uniform(0.2, 0.9)) / ce_smooth[-1])
        return (lambda ce: np.exp(-length * ce)), int(np.ceil(length))
    centre = np.quantile(ce_smooth, rng.uniform(0.1, 0.7))
    slope = rng.uniform(3, 12) / max(np.ptp(ce_smooth), 1e-9)
    return (lambda ce: 1.0 / (1.0 + np.exp(-slope * (centre - ce)))), int(rng.integers(1, 8))


def _binomial_se(v: np.ndarray, n: int) -> np.ndarray:
    edge = (v == 0) | (v == 1)
    s = np.where(edge, (v * n + 0.5) / (n + 1), v)
    return np.sqrt(s * (1 - s) / n)


def simulate(case: str, seed: int) -> dict[str, object]:
    """One simulated ladder of ``case`` ('smooth' or 'break') and its label."""
    from miragelab.verdict import classify

    rng = np.random.default_rng(seed)
    x = _grid(rng)
    ce0, irreducible = _law(rng, x)
    metric = str(rng.choice(METRICS))
    link = str(rng.choice(LINKS))
    n = int(round(10 ** rng.uniform(np.log10(50), 5)))
    ce, size_se, width = ce0, 0.0, 0
    harsh_of, tokens = _link(link, ce0, rng)
    if case == "break":
        k = x.size
        width = int(rng.integers(1, 3)) if k >= 4 else 1
        start = int(rng.integers(0, k - width))
        u = np.log10(x)
        ramp = np.clip((u - u[start]) / (u[start + width] - u[start]), 0, 1)
        size_se = float(rng.choice(SIZES_SE))
        # the metric's standard error where the break ends, and its change per unit drop
        _, se_end = _metric(metric, ce0, n, tokens, np.random.default_rng(0))
        base = _exact(metric, ce0, n, tokens)
        lo, hi = 0.0, 0.95
        for _ in range(60):  # bisection on the relative drop of CE
            mid = (lo + hi) / 2
            change = abs(_exact(metric, ce0 * (1 - mid * ramp), n, tokens) - base)[start + width]
            lo, hi = (
                (mid, hi) if change < size_se * max(se_end[start + width], 1e-12) else (lo, mid)
            )
        ce = ce0 * (1 - hi * ramp)
    # real models scatter about their family's law beyond their test-set noise
    jitter = float(rng.choice(JITTER))
    ce = ce * (1 + jitter * rng.standard_normal(ce.size))
    y, se = _metric(metric, ce, n, tokens, rng)
    harsh = rng.binomial(n, np.clip(harsh_of(ce), 0, 1)) / n  # from the same outputs
    pair = classify(
        x,
        harsh,
        x,
        y,
        harsh_se=_binomial_se(harsh, n),
        soft_se=se,
        soft_higher_is_better=metric == "target_logprob",
        soft_metric=metric,
        n_boot=199,
        seed=seed,
    )
    return {
        "case": case,
        "metric": metric,
        "link": link,
        "law": "with E" if irreducible else "pure power law",
        "rungs": int(x.size),
        "decades": float(np.log10(x[-1] / x[0])),
        "n": n,
        "break_se": size_se,
        "width": width,
        "jitter": jitter,
        "label": pair.label,
        "looks_emergent": pair.profile.status == "emergent",
        "wide_gap": pair.profile.status == "wide_gap",
    }


def _bins(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(
        rungs_bin=pd.cut(frame["rungs"], [2, 4, 6, 9, 16], labels=["3-4", "5-6", "7-9", "10-16"]),
        decades_bin=pd.cut(frame["decades"], [0, 2, 3, 5.1], labels=["1-2", "2-3", "3-5"]),
        n_bin=pd.cut(frame["n"], [0, 300, 3000, 1e6], labels=["50-300", "300-3k", "3k-100k"]),
    )


def confusion(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """Share of each label per value of ``by`` (and per case)."""
    table = pd.crosstab([frame["case"], frame[by]], frame["label"], normalize="index")
    table["count"] = frame.groupby(["case", by], observed=True).size()
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small grid (under a minute)")
    parser.add_argument("--per-case", type=int, default=None, help="ladders per case")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulation")
    parser.add_argument("--summary", type=Path, default=None, help="write the figures as JSON")
    parser.add_argument("--out", type=Path, default=None, help="write every ladder's row (CSV)")
    args = parser.parse_args()
    per_case = args.per_case or (400 if args.quick else 6000)
    jobs = [
        (case, args.seed * 10_000_000 + i * 2 + (case == "break"))
        for i, case in itertools.product(range(per_case), ("smooth", "break"))
    ]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        rows = list(pool.map(simulate, *zip(*jobs, strict=True), chunksize=64))
    seconds = time.perf_counter() - start
    frame = _bins(pd.DataFrame(rows))
    if args.out is not None:
        frame.to_csv(args.out, index=False)
    pd.set_option("display.width", 160)
    print(f"{len(frame)} ladders in {seconds:.1f} s ({args.workers} workers)\n")
    print(confusion(frame, "metric").round(3), "\n")
    for by in ("link", "law", "jitter", "rungs_bin", "decades_bin", "n_bin", "width"):
        print(confusion(frame, by).round(3), "\n")
    breaks = frame[frame["case"] == "break"]
    power = pd.DataFrame(
        {
            by: breaks.groupby(by, observed=True)["label"].apply(lambda s: (s == "genuine").mean())
            for by in ("break_se",)
        }
    )
    print("power (share of breaks labelled genuine) by break size (standard errors):")
    print(power.round(3), "\n")
    for by in ("rungs_bin", "decades_bin", "n_bin"):
        table = breaks.pivot_table(
            index=by, columns="break_se", values="label", observed=True,
            aggfunc=lambda s: (s == "genuine").mean(),
        )  # fmt: skip
        print(f"power by {by} and break size:\n{table.round(3)}\n")
    cells = []
    for by in ("metric", "link", "law", "jitter", "rungs_bin", "decades_bin", "n_bin", "width"):
        for case, label in (("smooth", "genuine"), ("break", "mirage")):
            sub = frame[frame["case"] == case]
            rates = sub.groupby(by, observed=True)["label"].apply(
                lambda s, lab=label: (s == lab).mean()
            )
            cells += [(f"P({label} | {case}) by {by}={k}", float(v)) for k, v in rates.items()]
    worst_fp = max(v for k, v in cells if "genuine | smooth" in k)
    worst_miss = max(v for k, v in cells if "mirage | break" in k)
    fp = float((frame.loc[frame["case"] == "smooth", "label"] == "genuine").mean())
    miss = float((breaks["label"] == "mirage").mean())
    mirage_share = float(
        (
            frame.loc[(frame["case"] == "smooth") & frame["looks_emergent"], "label"] == "mirage"
        ).mean()
    )
    print(f"P(genuine | smooth law): {fp:.2%} overall, worst cell {worst_fp:.2%} (target <= 5%)")
    print(
        f"P(mirage | break >= 5 se): {miss:.2%} overall, worst cell {worst_miss:.2%} (target <= 5%)"
    )
    print(f"smooth laws whose harsh curve looks emergent labelled mirage: {mirage_share:.1%}")
    print(f"power (genuine | break): {(breaks['label'] == 'genuine').mean():.1%}")
    write_summary(
        args.summary,
        [
            summary_row(NAME, "P(genuine | smooth law), worst cell", worst_fp, "share",
                        target="<= 5%", met=worst_fp <= 0.05),
            summary_row(NAME, "P(mirage | break >= 5 se), worst cell", worst_miss, "share",
                        target="<= 5%", met=worst_miss <= 0.05),
            summary_row(NAME, "emergent-looking smooth laws called mirage", mirage_share, "share"),
            summary_row(NAME, "simulation wall time", seconds, "s",
                        target="<= 600 s (--quick <= 60 s)",
                        met=seconds <= (60 if args.quick else 600)),
        ],
    )  # fmt: skip


if __name__ == "__main__":
    main()
