"""Wall time of the two induced-emergence ladders, end to end, as a user runs them.

Runs ``mirage vision autoencoder`` and ``mirage vision classifier`` with their
default settings (or ``--quick``) in fresh processes, each writing to its own
folder under ``--out``, and prints the wall time of each and of both together
against the issue's target (10 minutes together on 2 CPU cores). Exits with
code 1 when a command fails or the target is missed.

Run: ``python benchmarks/bench_vision.py [--quick] [--out DIR] [--summary PATH]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _summary import row, write_summary  # noqa: E402

TARGET_S = 600.0


def run(command: str, out: Path, quick: bool) -> float:
    args = [sys.executable, "-m", "miragelab", "vision", command, "--out", str(out)]
    if quick:
        args.append("--quick")
    start = time.perf_counter()
    done = subprocess.run(args, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        print(f"mirage vision {command} failed with exit code {done.returncode}")
        sys.exit(1)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the small ladders")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: temp)")
    parser.add_argument("--summary", type=Path, default=None, help="write the figures as JSON")
    options = parser.parse_args()
    base = options.out or Path(tempfile.mkdtemp(prefix="bench-vision-"))
    times = {name: run(name, base / name, options.quick) for name in ("autoencoder", "classifier")}
    total = sum(times.values())
    print(f"cpu cores available: {os.cpu_count()}")
    for name, seconds in times.items():
        print(f"mirage vision {name}{' --quick' if options.quick else ''}: {seconds:.1f} s")
    print(f"together: {total:.1f} s (target <= {TARGET_S:.0f} s); outputs in {base}")
    flag = " --quick" if options.quick else ""
    rows = [
        row("vision", f"mirage vision {name}{flag}, wall time", t, "s") for name, t in times.items()
    ]
    rows.append(
        row(
            "vision",
            f"both vision ladders{flag}, wall time",
            total,
            "s",
            target=f"<= {TARGET_S:g} s",
            met=total <= TARGET_S,
        )
    )
    write_summary(options.summary, rows)
    if total > TARGET_S:
        sys.exit(1)


if __name__ == "__main__":
    main()
