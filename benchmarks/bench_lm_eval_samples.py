"""Ingesting lm-eval-harness ``--log_samples`` files: streamed ingest against pandas.read_json.

Writes a realistic samples file of ``--n`` rows in the format of lm-eval
0.4.3+ (one JSON object per line with ``doc``, stringified ``arguments``,
``resps``/``filtered_resps``, the three hashes and the per-sample metric),
next to its ``results_<date>.json``, then measures, each side in its own
fresh subprocess (its wall time around the call, and its peak RSS from
``getrusage(RUSAGE_SELF)``):

* ``ingest_lm_eval(file) -> samples.parquet`` (what ``mirage ingest lm-eval`` runs);
* the baseline ``pandas.read_json(path, lines=True)`` on the same file, which
  only parses it into a frame of nested Python objects (no samples table).

Memory is compared with the size of the resulting samples table held in memory
as Arrow (``pyarrow.parquet.read_table(out).nbytes``, every column, strings
included). The process's RSS right after the imports is printed too: it is
part of the peak, and does not grow with the file.

``--kind generation`` (default; GSM8K-like ``generate_until`` samples, about
760 bytes a line) or ``--kind choice`` (four-way multiple choice, about 1.5 kB
a line; pandas then needs ~14 GB at 1M rows).

Run: ``python benchmarks/bench_lm_eval_samples.py [--n 1000000] [--kind generation]
[--summary PATH]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _summary import row, write_summary  # noqa: E402

DATE = "2025-01-01T00-00-00.000000"
WORDS = (
    "the of and to in is was for on that with as by at from his her an be this which are "
    "have had were their one all would there been more when who will what some into"
).split()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def write_samples(folder: Path, n: int, kind: str, seed: int = 0) -> Path:
    """A samples file of ``n`` rows (and its results file) as lm-eval 0.4.3+ writes them."""
    import orjson

    rng = random.Random(seed)
    task = "gsm_like" if kind == "generation" else "mmlu_like"
    folder.mkdir(parents=True, exist_ok=True)
    results = {
        "results": {task: {"alias": task, "acc,none": 0.5}},
        "configs": {task: {"task": task, "num_fewshot": 0, "target_delimiter": " "}},
        "n-shot": {task: 0},
        "config": {
            "model": "hf",
            "model_args": "pretrained=EleutherAI/pythia-410m,revision=step143000",
            "model_num_parameters": 405334016,
        },
        "model_name": "EleutherAI/pythia-410m",
    }
    (folder / f"results_{DATE}.json").write_text(json.dumps(results, indent=2))
    path = folder / f"samples_{task}_{DATE}.jsonl"
    with open(path, "wb") as handle:
        for i in range(n):
            question = " ".join(rng.choice(WORDS) for _ in range(25))
            if kind == "generation":
                answer = str(rng.randint(0, 9999))
                pred = answer if rng.random() < 0.4 else str(rng.randint(0, 9999))
                prompt = f"Question: {question}?\nAnswer:"
                record = {
                    "doc_id": i,
                    "doc": {"question": question, "answer": answer},
                    "target": answer,
                    "arguments": {
                        "gen_args_0": {
                            "arg_0": prompt,
                            "arg_1": {
                                "until": ["\n\n", "Question:"],
                                "do_sample": False,
                                "temperature": 0.0,
                                "max_gen_toks": 32,
                            },
                        }
                    },
                    "resps": [[" " + pred]],
                    "filtered_resps": [" " + pred],
                    "filter": "none",
                    "metrics": ["exact_match"],
                    "doc_hash": _sha(question),
                    "prompt_hash": _sha(prompt),
                    "target_hash": _sha(answer),
                    "exact_match": float(pred == answer),
                }
            else:
                choices = [" ".join(rng.choice(WORDS) for _ in range(4)) for _ in range(4)]
                label = rng.randint(0, 3)
                prompt = f"{question}\nAnswer:"
                lls = [-rng.uniform(1, 30) for _ in range(4)]
                record = {
                    "doc_id": i,
                    "doc": {"question": question, "choices": choices, "answer": label},
                    "target": str(label),
                    "arguments": {
                        f"gen_args_{j}": {"arg_0": prompt, "arg_1": " " + c}
                        for j, c in enumerate(choices)
                    },
                    "resps": [[[str(x), "False"]] for x in lls],
                    "filtered_resps": [[str(x), "False"] for x in lls],
                    "filter": "none",
                    "metrics": ["acc"],
                    "doc_hash": _sha(question),
                    "prompt_hash": _sha(prompt),
                    "target_hash": _sha(str(label)),
                    "acc": float(max(range(4), key=lls.__getitem__) == label),
                }
            handle.write(orjson.dumps(record) + b"\n")
    return path


def _child(mode: str, path: str, out: str) -> None:
    """Run one side and print its figures as JSON (in a fresh process)."""
    if mode == "ingest":
        from miragelab.sources.lm_eval_samples import ingest_lm_eval
    else:
        import pandas as pd
    imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    if mode == "ingest":
        rows = ingest_lm_eval([path], out).rows
    else:
        rows = len(pd.read_json(path, lines=True))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"rows": rows, "seconds": seconds, "peak": peak, "imported": imported}))


def _measure(mode: str, path: Path, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, str(path), str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="samples in the file")
    parser.add_argument("--kind", choices=("generation", "choice"), default="generation")
    parser.add_argument("--summary", type=Path, default=None, help="write the figures as JSON")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "PATH", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0

    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="bench-lm-eval-") as tmp:
        folder = Path(tmp) / "run"
        start = time.perf_counter()
        path = write_samples(folder, args.n, args.kind)
        size = path.stat().st_size
        print(
            f"wrote {args.n:,} {args.kind} samples ({size / 2**20:,.0f} MiB) "
            f"in {time.perf_counter() - start:.1f} s"
        )
        out = Path(tmp) / "samples.parquet"
        ours = _measure("ingest", path, out)
        theirs = _measure("pandas", path, out)
        arrow = pq.read_table(out).nbytes
        assert ours["rows"] == theirs["rows"] == args.n, (ours, theirs)

    mib = 2**20
    ours_rate, theirs_rate = args.n / ours["seconds"], args.n / theirs["seconds"]
    speedup = ours_rate / theirs_rate
    rss_vs_arrow = ours["peak"] / arrow
    print(
        f"ingest_lm_eval:     {ours['seconds']:7.2f} s  {ours_rate:12,.0f} rows/s  "
        f"peak RSS {ours['peak'] / mib:7,.0f} MiB (after imports {ours['imported'] / mib:,.0f})"
    )
    print(
        f"pandas.read_json:   {theirs['seconds']:7.2f} s  {theirs_rate:12,.0f} rows/s  "
        f"peak RSS {theirs['peak'] / mib:7,.0f} MiB (after imports {theirs['imported'] / mib:,.0f})"
    )
    print(f"speed-up: {speedup:.1f}x (target >= 5x)")
    print(
        f"samples table in memory as Arrow: {arrow / mib:,.0f} MiB; ingest peak RSS / table "
        f"= {rss_vs_arrow:.2f} (target <= 2); pandas peak RSS / table = "
        f"{theirs['peak'] / arrow:.2f}"
    )
    name = "lm-eval samples ingest"
    write_summary(
        args.summary,
        [
            row(
                name,
                f"rows/s, {args.n:,} {args.kind} samples",
                ours_rate,
                "rows/s",
                baseline=theirs_rate,
                baseline_name="pandas.read_json(lines=True)",
                ratio=speedup,
                target=">= 5x pandas",
                met=speedup >= 5,
            ),
            row(
                name,
                "peak RSS / samples table as Arrow",
                ours["peak"] / mib,
                "MiB",
                baseline=arrow / mib,
                baseline_name="pyarrow.parquet.read_table(out).nbytes",
                ratio=rss_vs_arrow,
                target="<= 2x the Arrow table",
                met=rss_vs_arrow <= 2,
            ),
            row(
                name,
                "peak RSS against pandas",
                ours["peak"] / mib,
                "MiB",
                baseline=theirs["peak"] / mib,
                baseline_name="pandas.read_json(lines=True)",
                ratio=theirs["peak"] / ours["peak"],
                target="",
                met=None,
            ),
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
