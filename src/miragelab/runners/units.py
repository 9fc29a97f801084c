"""Units of work and the partitioned dataset they write.

A long evaluation (a ladder of models x tasks x many examples) is cut into
units: one ``(task, model, shard of examples)`` each. A unit's rows go to their
own parquet part, ``task=<task>/model=<model>/part-<shard>.parquet``, written
atomically (temporary file, then rename), so a part on disk is complete by
construction and *is* the record that the unit finished. A rerun therefore
skips finished parts: a killed run loses only the units that were in flight,
and a crashed worker's unit is simply run again.

Where units run is the executor's business only (``local``: this process, in
order; ``ray``: a Ray cluster, see :mod:`miragelab.runners.ray_executor`); the
job function and the parts it writes (:mod:`miragelab.runners.work`) are the
same for both, so both give the same table. A ``_run.json`` beside the parts
records what the run computes (its fingerprint), so a folder holding parts of a
*different* run is refused rather than silently mixed in.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from miragelab.atomic import write_text_atomic
from miragelab.datasets import read_parts
from miragelab.errors import InputError
from miragelab.runners.work import (
    Executor,
    Job,
    LocalExecutor,
    Unit,
    part_path,
    run_unit,
    segment,
    write_part,
)
from miragelab.tables import TableSpec, write_table

__all__ = [
    "RUN_FILE",
    "TABLE_SUFFIXES",
    "Executor",
    "Job",
    "LocalExecutor",
    "RunSummary",
    "Unit",
    "collect",
    "executor_from_options",
    "finish_output",
    "fingerprint_of",
    "get_executor",
    "part_path",
    "run_unit",
    "run_units",
    "segment",
    "shards",
    "work_dir_for",
    "write_part",
]

#: the run record beside the parts: what the run computes (its fingerprint and settings)
RUN_FILE = "_run.json"


def get_executor(name: str, **options: Any) -> Executor:
    """The executor called ``name``: ``local`` or ``ray`` (needs the ``ray`` extra)."""
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        from miragelab.runners.ray_executor import RayExecutor

        return RayExecutor(**options)
    raise InputError(f"unknown executor {name!r}; use 'local' or 'ray'", field="executor")


def executor_from_options(
    name: str,
    address: str | None = None,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
) -> Executor:
    """The executor the command-line options ask for (``--executor``, ``--ray-address`` ...)."""
    if name == "local" and (address, num_cpus, num_gpus) != (None, None, None):
        raise InputError(
            "--ray-address, --num-cpus-per-unit and --num-gpus-per-unit need --executor ray",
            field="executor",
        )
    options: dict[str, Any] = {"address": address}
    if num_cpus is not None:
        options["num_cpus"] = num_cpus
    if num_gpus is not None:
        options["num_gpus"] = num_gpus
    return get_executor(name, **options) if name == "ray" else get_executor(name)


def fingerprint_of(settings: Mapping[str, Any]) -> str:
    """A stable digest of a run's settings (JSON with sorted keys)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _claim_root(root: Path, settings: Mapping[str, Any]) -> None:
    """Record the run's settings in ``root``, or refuse a root holding a different run."""
    if root.exists() and not root.is_dir():
        raise InputError("is a file; a partitioned dataset needs a folder", path=root)
    run_file = root / RUN_FILE
    record = {"fingerprint": fingerprint_of(settings), "settings": settings}
    if run_file.exists():
        try:
            old = json.loads(run_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"unreadable run record ({exc})", path=run_file) from None
        if not isinstance(old, dict) or old.get("fingerprint") != record["fingerprint"]:
            raise InputError(
                "holds parts of a different run (other models, examples or settings); "
                "write to another folder or delete this one",
                path=run_file,
                field="fingerprint",
            )
        return
    root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_file, json.dumps(record, indent=2, default=str) + "\n")


@dataclass
class RunSummary:
    """What :func:`run_units` did: units already on disk, and units it ran now."""

    skipped: int
    ran: int

    @property
    def total(self) -> int:
        return self.skipped + self.ran


def run_units(
    units: Sequence[Unit],
    job: Job,
    root: str | os.PathLike[str],
    settings: Mapping[str, Any],
    executor: Executor | None = None,
    on_done: Callable[[Unit], None] | None = None,
) -> RunSummary:
    """Run every unit whose part is not yet in ``root``; finished parts are kept.

    ``settings`` describe what the units compute (models, examples, seeds ...);
    they are recorded so a rerun with other settings cannot reuse stale parts.
    ``on_done`` is called once per unit: at once for parts already on disk, and
    as each pending unit finishes.
    """
    keys = [u.key for u in units]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise InputError(f"two units write the same part {dup!r} (duplicate model names?)")
    folder = Path(root)
    _claim_root(folder, settings)
    pending = [u for u in units if not part_path(folder, u).exists()]
    done_cb = on_done or (lambda unit: None)
    waiting = {u.key for u in pending}
    for unit in units:
        if unit.key not in waiting:
            done_cb(unit)
    (executor or LocalExecutor()).run(job, pending, folder, done_cb)
    missing = [u for u in pending if not part_path(folder, u).exists()]
    if missing:
        raise RuntimeError(f"{len(missing)} unit(s) finished without writing a part: {missing[0]}")
    return RunSummary(skipped=len(units) - len(pending), ran=len(pending))


def collect(units: Sequence[Unit], root: str | os.PathLike[str], spec: TableSpec) -> pd.DataFrame:
    """The table of ``units`` in *unit order*, whatever order they finished in."""
    folder = Path(root)
    return read_parts([part_path(folder, u) for u in units], spec, folder)


def shards(n: int, size: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` example ranges of at most ``size`` covering ``range(n)``."""
    if size < 1:
        raise InputError(f"must be >= 1, got {size}", field="shard-size")
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]


TABLE_SUFFIXES = (".parquet", ".pq", ".jsonl", ".ndjson", ".json", ".csv", ".gz")


def work_dir_for(out: str | os.PathLike[str]) -> tuple[Path, bool]:
    """Where a run's parts go for the output ``out``, and whether they are temporary.

    A table file (``samples.parquet``, ``.jsonl``, ``.csv``) keeps its parts in a
    hidden sibling folder until the final table is written, so a rerun after a
    kill resumes from them; any other path is itself the partitioned dataset.
    """
    path = Path(out)
    if path.suffix.lower() in TABLE_SUFFIXES:
        if path.is_dir():
            raise InputError("is a folder; give a table file name or a dataset folder", path=path)
        return path.parent / f".{path.name}.parts", True
    return path, False


def finish_output(
    frame: pd.DataFrame, out: str | os.PathLike[str], work_dir: Path, temporary: bool
) -> None:
    """Write the final table (for a file output) and drop the temporary parts."""
    if not temporary:
        return
    write_table(frame, out)
    shutil.rmtree(work_dir, ignore_errors=True)
