"""Larger-than-memory scoring: stream a 10**7-row partitioned samples dataset.

Writes a synthetic samples dataset (``task=.../model=.../part-N.parquet`` in a
temporary folder; realistic columns: prompt, target and prediction strings,
per-token target log-prob lists) of ``--rows`` rows, and a ``--baseline-rows``
one (default 10**6). Each measurement runs in a child process of its own, so
its peak resident memory (``ru_maxrss``) is its own:

* ``mirage score`` streaming (``stream_score``) on the big dataset -- the figure;
* the in-memory path (``read_table`` + ``score_samples``) on the baseline dataset,
  the baseline it is compared with;
* streaming on the baseline dataset too, whose scores must equal the
  in-memory ones (exit code 1 otherwise).

Target: peak RSS <= 2 GiB while streaming 10**7 rows.

Run: ``python benchmarks/bench_scale_out.py [--rows 10000000] [--summary out.json]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

METRICS = [
    "exact_match",
    "token_edit_distance",
    "normalized_edit_similarity",
    "target_logprob",
    "target_logprob_mean",
    "per_token_prob",
    "cross_entropy",
]
N_TASKS, N_MODELS = 4, 16
PART_ROWS = 200_000
RSS_TARGET_GIB = 2.0


# --------------------------------------------------------------------------- data


def _digits(rng: np.random.Generator, n: int, max_digits: int) -> pa.Array:
    """Random decimal strings of 1..max_digits digits, built without a Python loop."""
    width = rng.integers(1, max_digits + 1, size=n)
    values = rng.integers(0, 10**max_digits, size=n) % (10**width)
    return pc.cast(pa.array(values), pa.string())


def _part(rng: np.random.Generator, task: int, model: int, lo: int, hi: int) -> pa.Table:
    """Rows ``lo..hi`` of one (task, model): a model of size index ``model`` gets more right."""
    n = hi - lo
    params = 1e7 * 2.0**model
    skill = 0.05 + 0.9 * model / (N_MODELS - 1)
    a, b = _digits(rng, n, 4), _digits(rng, n, 4)
    target = _digits(rng, n, 8)
    right = rng.random(n) < skill
    wrong = _digits(rng, n, 8)
    prediction = pc.if_else(pa.array(right), target, wrong)
    lengths = pc.utf8_length(target).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    per_token = -rng.exponential(1.2 - skill, size=int(offsets[-1]))
    logprobs = pa.ListArray.from_arrays(pa.array(offsets), pa.array(per_token))
    ids = pc.cast(pa.array(np.arange(lo, hi)), pa.string())
    return pa.table(
        {
            "task": pa.array([f"task{task}"] * n),
            "family": pa.array(["synthetic"] * n),
            "model": pa.array([f"m{model:02d}"] * n),
            "params": pa.array(np.full(n, params)),
            "compute_flops": pa.array(np.full(n, 6 * params * 2e10)),
            "tokens_trained": pa.array(np.full(n, 2e10)),
            "example_id": pc.binary_join_element_wise("ex", ids, ""),
            "prompt": pc.binary_join_element_wise("Q: what is ", a, " + ", b, "? A:", ""),
            "target": target,
            "prediction": prediction,
            "target_token_logprobs": logprobs,
        }
    )


def write_dataset(root: Path, rows: int, seed: int) -> int:
    """``rows`` rows over N_TASKS x N_MODELS, parts of at most PART_ROWS; returns bytes."""
    rng = np.random.default_rng(seed)
    per_group = -(-rows // (N_TASKS * N_MODELS))
    written = 0
    for task in range(N_TASKS):
        for model in range(N_MODELS):
            left = rows - written
            if left <= 0:
                break
            n = min(per_group, left)
            for k, lo in enumerate(range(0, n, PART_ROWS)):
                hi = min(lo + PART_ROWS, n)
                folder = root / f"task=task{task}" / f"model=m{model:02d}"
                folder.mkdir(parents=True, exist_ok=True)
                pq.write_table(_part(rng, task, model, lo, hi), folder / f"part-{k:05d}.parquet")
            written += n
    return sum(p.stat().st_size for p in root.rglob("*.parquet"))


# --------------------------------------------------------------------------- children


def child(mode: str, path: str, out: str, batch_rows: int) -> None:
    """One measurement, in a process of its own; prints a JSON line."""
    from miragelab.scoring import score_samples
    from miragelab.streaming import stream_score
    from miragelab.tables import SAMPLES, read_table, write_table

    start = time.perf_counter()
    if mode == "stream":
        scores = stream_score([path], METRICS, batch_rows=batch_rows)
    else:
        scores = score_samples(read_table(path, SAMPLES), METRICS)
    seconds = time.perf_counter() - start
    write_table(scores, out)
    maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    rows = int(scores.loc[scores["metric"] == METRICS[0], "n"].sum())
    methods = {str(k): int(v) for k, v in scores["ci_method"].value_counts().items()}
    record = {"seconds": seconds, "rows": rows, "maxrss_gib": maxrss_kib / 2**20}
    print(json.dumps(record | {"methods": methods}))


def measure(mode: str, path: Path, out: Path, batch_rows: int) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--path", str(path), "--out", str(out)]
    command += ["--batch-rows", str(batch_rows)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"the {mode} child failed")
    return json.loads(result.stdout.strip().splitlines()[-1])


def same_scores(a_path: Path, b_path: Path) -> str | None:
    """Why two scores tables differ (None when equal: exact, or to 1e-9 for t intervals)."""
    a = pq.read_table(a_path).to_pandas()
    b = pq.read_table(b_path).to_pandas()
    if len(a) != len(b) or list(a["ci_method"]) != list(b["ci_method"]):
        return "different rows or interval methods"
    for column in ("value", "ci_low", "ci_high"):
        if not np.allclose(a[column], b[column], rtol=1e-9, atol=1e-12):
            return f"{column} differs"
    return None


# --------------------------------------------------------------------------- main


def _row(figure: str, value: float, unit: str, baseline=None, name=None, target="", met=None):  # noqa: ANN001
    ratio = None if baseline in (None, 0) else value / baseline
    return {
        "benchmark": "scale_out",
        "figure": figure,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_name": name,
        "ratio": ratio,
        "target": target,
        "met": met,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the big dataset")
    parser.add_argument("--baseline-rows", type=int, default=1_000_000, help="in-memory rows")
    parser.add_argument("--batch-rows", type=int, default=65_536, help="rows per record batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--summary", type=Path, help="write the figures here as JSON rows")
    parser.add_argument("--child", choices=["stream", "memory"], help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.path, args.out, args.batch_rows)
        return 0
    if args.rows < 1 or args.baseline_rows < 1:
        parser.error("--rows and --baseline-rows must be >= 1")
    baseline_rows = min(args.baseline_rows, args.rows)

    with tempfile.TemporaryDirectory(prefix="mirage-scale-out-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        big_bytes = write_dataset(work / "big", args.rows, args.seed)
        small_bytes = write_dataset(work / "small", baseline_rows, args.seed + 1)
        print(
            f"wrote {args.rows:,} rows ({big_bytes / 2**20:,.0f} MiB of parquet) and "
            f"{baseline_rows:,} rows ({small_bytes / 2**20:,.0f} MiB) "
            f"in {time.perf_counter() - start:.0f} s"
        )
        memory = measure("memory", work / "small", work / "memory.parquet", args.batch_rows)
        stream_small = measure("stream", work / "small", work / "small.parquet", args.batch_rows)
        stream_big = measure("stream", work / "big", work / "big.parquet", args.batch_rows)
        mismatch = same_scores(work / "memory.parquet", work / "small.parquet")

    def rate(m: dict) -> float:
        return m["rows"] / m["seconds"]

    header = f"{'what':<50} {'rows':>12} {'seconds':>9} {'rows/s':>11} {'peak RSS':>12}"
    print()
    print(header)
    print("-" * len(header))
    for label, m in (
        (f"in-memory read_table + score_samples ({len(METRICS)} metrics)", memory),
        ("streaming, same data", stream_small),
        ("streaming, big dataset", stream_big),
    ):
        print(
            f"{label:<50} {m['rows']:>12,} {m['seconds']:>9.1f} {rate(m):>11,.0f} "
            f"{m['maxrss_gib']:>8.2f} GiB   intervals: "
            + ", ".join(f"{n} {k}" for k, n in sorted(m["methods"].items()))
        )
    speed = rate(stream_big) / rate(memory)
    same = rate(stream_small) / rate(memory)
    print()
    print(
        "(groups of at most 20,000 examples get a BCa bootstrap, which dominates the time of "
        "the smaller datasets; larger groups get a t interval)"
    )
    print(f"streaming rows/s on {args.rows:,} rows vs in-memory on {baseline_rows:,}: {speed:.2f}x")
    print(f"streaming vs in-memory on the same {baseline_rows:,} rows: {same:.2f}x")
    met = stream_big["maxrss_gib"] <= RSS_TARGET_GIB
    print(
        f"peak RSS streaming {args.rows:,} rows: {stream_big['maxrss_gib']:.2f} GiB "
        f"(target <= {RSS_TARGET_GIB:g} GiB: {'met' if met else 'NOT met'}); in-memory on "
        f"{baseline_rows:,} rows: {memory['maxrss_gib']:.2f} GiB"
    )
    print(
        "streaming and in-memory scores on the same data: "
        + ("equal" if mismatch is None else f"DIFFER ({mismatch})")
    )
    if args.summary:
        rows = [
            _row(
                f"streaming score rows/s ({args.rows:,} rows)",
                rate(stream_big),
                "rows/s",
                rate(memory),
                f"in-memory score ({baseline_rows:,} rows)",
            ),
            _row(
                f"streaming score peak RSS ({args.rows:,} rows)",
                stream_big["maxrss_gib"],
                "GiB",
                memory["maxrss_gib"],
                f"in-memory score ({baseline_rows:,} rows)",
                f"<= {RSS_TARGET_GIB:g} GiB",
                met,
            ),
            _row(
                f"streaming score rows/s ({baseline_rows:,} rows)",
                rate(stream_small),
                "rows/s",
                rate(memory),
                f"in-memory score ({baseline_rows:,} rows)",
            ),
            _row(
                f"streaming score peak RSS ({baseline_rows:,} rows)",
                stream_small["maxrss_gib"],
                "GiB",
                memory["maxrss_gib"],
                f"in-memory score ({baseline_rows:,} rows)",
            ),
        ]
        args.summary.write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if mismatch is None else 1


if __name__ == "__main__":
    sys.exit(main())
