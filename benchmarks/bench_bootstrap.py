"""Bootstrap of the mean: 10,000 resamples of 1,000,000 samples, against index resampling.

For each kind of metric values -- 0/1 (exact match), small integers (edit
distances) and continuous (every value distinct: log-probabilities, Brier
scores) -- times ``miragelab.bootstrap.bootstrap_means(values, 10_000, rng)``
(best of ``--repeat``) beside the straightforward baseline: draw the resampled
indices with ``rng.integers`` and average ``x[idx]``, in chunks of
``--chunk`` resamples. The baseline runs ``--baseline-resamples`` resamples
(``10^10`` index draws would take minutes) and its time is scaled linearly to
all of them; the baseline's cost is the same for every resample, so the
extrapolation is exact up to timing noise (the script prints the per-resample
spread). Target: <= 2 s wall per kind on a 2-core machine.

Accuracy is printed too: the standard deviation of the resampled means
against the closed form ``std(x) / sqrt(n)``, and for continuous data the
binned method's proven bound on the Wasserstein distance to the exact
bootstrap distribution, as a fraction of that standard deviation (target <= 0.1%).

Run: ``python benchmarks/bench_bootstrap.py [--n 1000000] [--resamples 10000] [--summary PATH]``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _summary import row, write_summary  # noqa: E402

from miragelab.bootstrap import BINNED_TOLERANCE, binned_bootstrap_means, bootstrap_means  # noqa: E402

TARGET_S = 2.0
NAME = "bootstrap"


def make_values(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "0/1":
        return (rng.random(n) < 0.37).astype(float)
    if kind == "integer":
        return rng.poisson(3.0, n).astype(float)  # like token edit distances
    return -rng.gamma(2.0, 0.6, n)  # like mean target log-probs: all distinct, skewed


def baseline_seconds(x: np.ndarray, resamples: int, chunk: int, seed: int) -> list[float]:
    """Seconds per resample of index resampling, one figure per chunk."""
    rng = np.random.default_rng(seed)
    x[rng.integers(0, x.size, size=(1, x.size))].mean(axis=1)  # warm-up: page in the buffers
    per_resample = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        t = time.perf_counter()
        idx = rng.integers(0, x.size, size=(size, x.size))
        x[idx].mean(axis=1)
        per_resample.append((time.perf_counter() - t) / size)
    return per_resample


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="samples")
    parser.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples")
    parser.add_argument("--baseline-resamples", type=int, default=40, help="resamples timed")
    parser.add_argument("--chunk", type=int, default=4, help="baseline resamples per chunk")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--summary", type=Path, default=None, help="write the rows as JSON")
    args = parser.parse_args(argv)
    n, resamples = args.n, args.resamples
    print(f"cpu cores: {os.cpu_count()}; n = {n:,}, {resamples:,} resamples")
    header = (
        f"{'data':<11} {'distinct':>9} {'ours s':>8} {'baseline s':>11} {'speed-up':>9} "
        f"{'sd / closed form':>17} {'bound / sd':>11}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for kind in ("0/1", "integer", "continuous"):
        x = make_values(kind, n, args.seed)
        best, means = math.inf, None
        for r in range(args.repeat):
            t = time.perf_counter()
            means = bootstrap_means(x, resamples, np.random.default_rng(args.seed + r))
            best = min(best, time.perf_counter() - t)
        per = baseline_seconds(x, args.baseline_resamples, args.chunk, args.seed)
        base = float(np.median(per)) * resamples
        sd_ratio = float(means.std() / (x.std() / math.sqrt(n)))
        bound_frac = None
        if kind == "continuous":
            _, bound = binned_bootstrap_means(x, 10, np.random.default_rng(0))
            bound_frac = bound / (x.std() / math.sqrt(n))
        distinct = np.unique(x).size
        print(
            f"{kind:<11} {distinct:>9,} {best:>8.3f} {base:>11.1f} {base / best:>8.0f}x "
            f"{sd_ratio:>17.4f} {'-' if bound_frac is None else f'{bound_frac:.2e}':>11}"
        )
        spread = (max(per) - min(per)) / float(np.median(per))
        print(
            f"{'':<11} baseline: median {np.median(per) * 1e3:.1f} ms per resample over "
            f"{len(per)} chunks (spread {spread:.0%}), scaled to {resamples:,}"
        )
        label = f"{resamples:,} resamples of {n:,} {kind} values"
        rows.append(
            row(
                NAME,
                f"{label}, wall time",
                best,
                "s",
                baseline=base,
                baseline_name=(
                    f"index resampling (rng.integers + mean): {args.baseline_resamples} "
                    f"resamples timed, scaled to {resamples:,}"
                ),
                ratio=base / best,
                target=f"<= {TARGET_S:g} s",
                met=best <= TARGET_S,
            )
        )
        # a 4-sigma Monte-Carlo band for the standard deviation of the resampled means
        band = 4 / math.sqrt(2 * resamples)
        rows.append(
            row(
                NAME,
                f"{kind}: sd of the resampled means / std(x)/sqrt(n)",
                sd_ratio,
                "ratio",
                target=f"1 +- {band:.3f}",
                met=abs(sd_ratio - 1) <= band,
            )
        )
        if bound_frac is not None:
            rows.append(
                row(
                    NAME,
                    "continuous: Wasserstein bound of the binned resample / bootstrap sd",
                    bound_frac,
                    "fraction",
                    target=f"<= {BINNED_TOLERANCE:g}",
                    met=bound_frac <= BINNED_TOLERANCE,
                )
            )
    write_summary(args.summary, rows)
    missed = [r["figure"] for r in rows if r["met"] is False]
    for figure in missed:
        print(f"target missed: {figure}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
