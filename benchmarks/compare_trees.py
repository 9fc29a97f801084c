"""Two source trees of miragelab on the same work: is a refactor slower anywhere?

Times, in a fresh subprocess per run with ``PYTHONPATH`` set to one tree's
``src`` (same interpreter, same libraries), the paths a change to the edges
touches:

* ``score``: ``score_samples`` on ``--n`` in-memory samples (7 string and
  log-prob metrics, Wilson and BCa intervals);
* ``read``: ``read_table`` of the same samples as JSONL (every value checked);
* ``stream``: ``stream_score`` of a partitioned parquet dataset of ``--stream-n``
  rows (record batches checked, duplicates found from hashes);
* ``ingest``: ``ingest_lm_eval`` of an lm-eval ``--log_samples`` file of
  ``--ingest-n`` generation samples.

Runs alternate old, new, old, new, ... ``--repeats`` times (5 by default), so a
drift of the machine falls on both; the figure is the median wall time of each
side and their ratio new/old (> 1 is slower). Inputs are written once, before
any run, by this file's own helpers (with pyarrow and the benchmarks' writers).

Run: ``python benchmarks/compare_trees.py --old OLD_CHECKOUT --new . [--summary PATH]``
(``git worktree add /tmp/old REV`` gives the old checkout). Not a ``bench_*`` script:
``run.py`` does not run it, as it needs a second tree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _summary import row, write_summary  # noqa: E402
from bench_scale_out import METRICS  # noqa: E402  (the same metrics as the scale-out figure)

PATHS = ("score", "read", "stream", "ingest")


def _child(path: str, folder: str) -> None:
    """One timed run of one path, in the tree on ``sys.path``; prints seconds as JSON."""
    data = Path(folder)
    if path == "score":
        from miragelab.scoring import score_samples
        from miragelab.tables import SAMPLES, read_table

        samples = read_table(data / "samples.parquet", SAMPLES)
        start = time.perf_counter()
        score_samples(samples, METRICS)
    elif path == "read":
        from miragelab.tables import SAMPLES, read_table

        start = time.perf_counter()
        read_table(data / "samples.jsonl", SAMPLES)
    elif path == "stream":
        from miragelab.streaming import stream_score

        start = time.perf_counter()
        stream_score([data / "dataset"], METRICS)
    else:
        from miragelab.sources.lm_eval_samples import ingest_lm_eval

        out = data / f"ingest-{os.getpid()}.parquet"
        start = time.perf_counter()
        ingest_lm_eval([data / "lm_eval"], out)
        out.unlink()
    print(json.dumps({"seconds": time.perf_counter() - start}))


def _write_inputs(folder: Path, n: int, stream_n: int, ingest_n: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from bench_lm_eval_samples import write_samples
    from bench_scale_out import write_dataset

    write_dataset(folder / "dataset", stream_n, seed=0)
    parts = sorted((folder / "dataset").rglob("*.parquet"))
    tables, rows = [], 0
    for part in parts:  # the in-memory sample: the first parts, with their partition columns
        table = pq.read_table(part)
        for name in ("task", "model"):
            if name not in table.column_names:
                value = part.parent.name.split("=", 1)[1] if name == "model" else None
                if name == "task":
                    value = part.parent.parent.name.split("=", 1)[1]
                table = table.append_column(name, pa.array([value] * table.num_rows))
        tables.append(table)
        rows += table.num_rows
        if rows >= n:
            break
    sample = pa.concat_tables(tables, promote_options="default").slice(0, n)
    pq.write_table(sample, folder / "samples.parquet")
    with open(folder / "samples.jsonl", "wb") as handle:
        import orjson

        for record in sample.to_pylist():
            handle.write(orjson.dumps(record) + b"\n")
    (folder / "lm_eval").mkdir()
    write_samples(folder / "lm_eval", ingest_n, "generation")


def _run(tree: Path, path: str, folder: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree / "src"))
    out = subprocess.run(
        [sys.executable, __file__, "--child", path, "--data", str(folder)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{tree} {path} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, help="checkout of the tree before the change")
    parser.add_argument("--new", type=Path, default=HERE.parent)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--stream-n", type=int, default=1_000_000)
    parser.add_argument("--ingest-n", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default=",".join(PATHS))
    parser.add_argument("--summary", type=Path)
    parser.add_argument("--child", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.data)
        return 0
    if args.old is None:
        parser.error("--old is required")
    paths = [p for p in args.only.split(",") if p]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write_inputs(folder, args.n, args.stream_n, args.ingest_n)
        for path in paths:
            times: dict[str, list[float]] = {"old": [], "new": []}
            for _ in range(args.repeats):
                for side, tree in (("old", args.old), ("new", args.new)):
                    times[side].append(_run(tree.resolve(), path, folder))
            old, new = statistics.median(times["old"]), statistics.median(times["new"])
            ratio = new / old
            print(
                f"{path}: old {old:.3f} s, new {new:.3f} s (median of {args.repeats}), "
                f"new/old {ratio:.3f}; old runs {[round(t, 3) for t in times['old']]}, "
                f"new runs {[round(t, 3) for t in times['new']]}"
            )
            rows.append(
                row(
                    "trees",
                    f"{path}: wall time, median of {args.repeats} alternating runs",
                    new,
                    "s",
                    baseline=old,
                    baseline_name="the old tree",
                    ratio=ratio,
                    target="ratio <= 1 + noise",
                )
            )
    if args.summary:
        write_summary(args.summary, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
