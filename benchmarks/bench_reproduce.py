"""Wall time of the README's main job: `mirage reproduce` (full and --quick), from scratch.

Targets (2 CPU cores): full <= 30 minutes, --quick <= 5 minutes. Each run starts
in an empty folder, so nothing is reused from an earlier run; a second --quick
run into the same folder shows what the content cache saves.

Run: ``python benchmarks/bench_reproduce.py [--skip-full] [--summary PATH]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _summary import row, write_summary  # noqa: E402

TARGETS = {"quick": 5 * 60.0, "full": 30 * 60.0}


def _run(out: Path, quick: bool) -> float:
    command = [sys.executable, "-m", "miragelab", "reproduce", "--out", str(out)]
    command += ["--quick"] if quick else []
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"mirage reproduce failed with exit code {result.returncode}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-full", action="store_true", help="time --quick only")
    parser.add_argument("--summary", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        quick_dir = Path(tmp) / "quick"
        rows.append(("reproduce --quick, from scratch", _run(quick_dir, True), TARGETS["quick"]))
        rows.append(("reproduce --quick, rerun (cached)", _run(quick_dir, True), None))
        if not args.skip_full:
            rows.append(
                ("reproduce, from scratch", _run(Path(tmp) / "full", False), TARGETS["full"])
            )
    print(f"{'run':<36} {'seconds':>9} {'target':>9} {'ratio':>7}")
    failed = False
    for name, seconds, target in rows:
        if target is None:
            print(f"{name:<36} {seconds:>9.1f} {'-':>9} {'-':>7}")
            continue
        failed |= seconds > target
        print(f"{name:<36} {seconds:>9.1f} {target:>9.0f} {seconds / target:>7.2f}")
    summary = []
    for name, seconds, target in rows:
        extra = {}
        if target is None:  # the cached rerun: compared with the run from scratch
            scratch = rows[0][1]
            extra = dict(baseline=scratch, baseline_name=rows[0][0], ratio=scratch / seconds)
        else:
            extra = dict(target=f"<= {target:g} s", met=seconds <= target)
        summary.append(row("reproduce", f"{name}, wall time", seconds, "s", **extra))
    write_summary(args.summary, summary)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
