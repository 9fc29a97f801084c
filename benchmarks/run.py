"""Run every benchmark script and print one table of their figures.

Each ``benchmarks/bench_*.py`` (found by glob, so scripts added later join in)
runs in its own subprocess with ``--summary TMPFILE``; the JSON rows it writes
there (see ``_summary.py``) are collected into one table:
benchmark, figure, value, baseline, ratio, target, met.

``--quick`` passes each script the flags of :data:`QUICK` (smaller inputs, a
fast overview); a script not listed there gets ``--quick`` when its ``--help``
offers it, and nothing otherwise. Without ``--quick`` every script runs with
its defaults: the full targets. A script that fails or writes no rows appears
as one row with ``met`` false.

    python benchmarks/run.py [--quick] [--only NAME] [--skip NAME] [--out table.md|table.json]

Names are the file names without ``bench_`` and ``.py`` (``scoring``,
``bootstrap``); ``--only`` and ``--skip`` may be repeated or comma-separated.
The exit code is 1 when any target is missed or any script fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

#: flags for a fast overview, per script; the defaults are the full targets
QUICK: dict[str, list[str]] = {
    "bootstrap": ["--repeat", "1", "--baseline-resamples", "12"],
    "scoring": ["--n", "100000", "--loop-n", "5000"],
    "ladder": ["--preset", "tiny", "--task", "add3", "--n-test", "1000"],
    "vision": ["--quick"],
    "transitions": ["--quick", "--n-smooth", "60"],
    "eval": ["--arch", "gpt2", "--n", "20"],
    "reproduce": ["--skip-full"],
}

COLUMNS = ("benchmark", "figure", "value", "baseline", "ratio", "target", "met")


def discover() -> list[Path]:
    return sorted(HERE.glob("bench_*.py"))


def short(path: Path) -> str:
    return path.stem.removeprefix("bench_")


def _names(values: list[str]) -> set[str]:
    return {
        n.strip().removeprefix("bench_").removesuffix(".py")
        for v in values
        for n in v.split(",")
        if n.strip()
    }


def _offers_quick(script: Path) -> bool:
    try:
        text = subprocess.run(
            [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120
        ).stdout
    except subprocess.TimeoutExpired:
        return False
    return "--quick" in text


def flags_for(script: Path, quick: bool) -> list[str]:
    if not quick:
        return []
    name = short(script)
    if name in QUICK:
        return list(QUICK[name])
    return ["--quick"] if _offers_quick(script) else []


def _failure(name: str, why: str) -> dict[str, Any]:
    return {
        "benchmark": name,
        "figure": why,
        "value": None,
        "unit": "",
        "baseline": None,
        "baseline_name": None,
        "ratio": None,
        "target": "runs and writes its summary",
        "met": False,
    }


def run_script(script: Path, flags: list[str], timeout: float | None) -> dict[str, Any]:
    """Run one script; its rows (or one failure row), exit code and wall time."""
    name = short(script)
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        summary = Path(tmp) / "summary.json"
        command = [sys.executable, str(script), *flags, "--summary", str(summary)]
        print(f"== {name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            # the script's own report goes to our stderr; stdout is kept for the table
            done = subprocess.run(command, stdout=sys.stderr, timeout=timeout, check=False)
            code: int | None = done.returncode
        except subprocess.TimeoutExpired:
            code = None
        seconds = time.perf_counter() - start
        rows: list[dict[str, Any]] = []
        if summary.exists():
            try:
                loaded = json.loads(summary.read_text(encoding="utf-8"))
                if isinstance(loaded, list):
                    rows = [r for r in loaded if isinstance(r, dict)]
            except (json.JSONDecodeError, UnicodeDecodeError):
                rows = []
        if code is None:
            rows.append(_failure(name, f"timed out after {timeout:g} s"))
        elif not rows:
            rows.append(_failure(name, f"no summary rows (exit code {code})"))
        elif code != 0 and not any(r.get("met") is False for r in rows):
            rows.append(_failure(name, f"exit code {code}"))
    return {
        "name": name,
        "command": command[1:-2],
        "exit_code": code,
        "seconds": seconds,
        "rows": rows,
    }


def _number(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:.4g}"
    return text if unit in ("ratio", "fraction", "bool") else f"{text} {unit}".strip()


def cells(r: dict[str, Any]) -> list[str]:
    unit = r.get("unit") or ""
    baseline = _number(r.get("baseline"), unit)
    if r.get("baseline") is not None and r.get("baseline_name"):
        baseline += f" ({r['baseline_name']})"
    met = r.get("met")
    return [
        str(r.get("benchmark", "")),
        str(r.get("figure", "")),
        _number(r.get("value"), unit),
        baseline,
        "-" if r.get("ratio") is None else f"{r['ratio']:.3g}",
        str(r.get("target") or "-"),
        "-" if met is None else ("yes" if met else "NO"),
    ]


def markdown(rows: list[dict[str, Any]]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(esc(c) for c in cells(r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*COLUMNS, title="miragelab benchmarks")
    for r in rows:
        table.add_row(*cells(r), style="red" if r.get("met") is False else None)
    Console(width=max(160, Console().width)).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fast overview (see QUICK)")
    parser.add_argument("--only", action="append", default=[], help="run only these")
    parser.add_argument("--skip", action="append", default=[], help="do not run these")
    parser.add_argument("--out", action="append", type=Path, default=[], help=".md or .json")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per script")
    parser.add_argument("--list", action="store_true", help="list the scripts and exit")
    args = parser.parse_args(argv)
    for out in args.out:
        if out.suffix not in (".md", ".json"):
            parser.error(f"--out {out}: expected a .md or .json file name")

    scripts = discover()
    known = {short(s) for s in scripts}
    only, skip = _names(args.only), _names(args.skip)
    unknown = (only | skip) - known
    if unknown:
        parser.error(
            f"no benchmark named {', '.join(sorted(unknown))} (have {', '.join(sorted(known))})"
        )
    chosen = [s for s in scripts if (not only or short(s) in only) and short(s) not in skip]
    if args.list:
        for s in scripts:
            print(f"{short(s):<16} {' '.join(flags_for(s, True)) or '-':<40} {s.name}")
        return 0

    results = [run_script(s, flags_for(s, args.quick), args.timeout) for s in chosen]
    rows = [r for result in results for r in result["rows"]]
    print_table(rows)
    for result in results:
        code = "timeout" if result["exit_code"] is None else result["exit_code"]
        print(f"{result['name']:<16} {result['seconds']:8.1f} s  exit {code}")
    for out in args.out:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".md":
            out.write_text(markdown(rows), encoding="utf-8")
        else:
            record = {
                "mode": "quick" if args.quick else "full",
                "machine": {
                    "cpu_count": os.cpu_count(),
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                },
                "scripts": [{k: v for k, v in r.items() if k != "rows"} for r in results],
                "rows": rows,
            }
            out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    failed = any(r.get("met") is False for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
