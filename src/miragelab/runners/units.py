"""Units of work and the partitioned dataset they write.

A long evaluation (a ladder of models x tasks x many examples) is cut into
units: one ``(task, model, shard of examples)`` each. A unit's rows go to their
own parquet part, ``task=<task>/model=<model>/part-<shard>.parquet``, written
atomically (temporary file, then rename), so a part on disk is complete by
construction and *is* the record that the unit finished. A rerun therefore
skips finished parts: a killed run loses only the units that were in flight,
and a crashed worker's unit is simply run again.

Where units run is the executor's business only (``local``: this process, in
order; ``ray``: a Ray cluster, see :mod:`miragelab.ray_executor`); the job
function and the parts it writes are the same for both, so both give the same
table. A ``_run.json`` beside the parts records what the run computes (its
fingerprint), so a folder holding parts of a *different* run is refused rather
than silently mixed in.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from miragelab.atomic import atomic_path, write_text_atomic
from miragelab.errors import InputError
from miragelab.datasets import read_parts
from miragelab.tables import TableSpec, to_arrow, write_table

RUN_FILE = "_run.json"


@dataclass(frozen=True)
class Unit:
    """One piece of work: the rows of one model on one shard of one task's examples.

    ``spec`` holds what the job needs to compute the rows (paths, example range,
    settings); it must be JSON-serialisable so any executor can ship it.
    """

    task: str
    model: str
    shard: int
    spec: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> str:
        """Where the unit's part lives, relative to the dataset root."""
        task, model = segment(self.task), segment(self.model)
        return f"task={task}/model={model}/part-{self.shard:05d}.parquet"

    def __str__(self) -> str:
        return f"{self.task} / {self.model} / shard {self.shard}"


#: computes the rows of one unit; must be a picklable callable (a module-level
#: function, or a functools.partial of one) so remote executors can ship it
Job = Callable[[Unit], pd.DataFrame]


def segment(name: str) -> str:
    """``name`` as one safe path segment (URL-encoded, as Hive partitioning reads it).

    Every ``/`` and other special character is escaped, and ``.``/``..`` are
    spelled out, so no task or model name can point outside the dataset root.
    """
    quoted = urllib.parse.quote(str(name), safe="")
    if quoted in ("", ".", ".."):
        quoted = quoted.replace(".", "%2E") or "%00"
    return quoted


def part_path(root: str | os.PathLike[str], unit: Unit) -> Path:
    return Path(root) / unit.key


def write_part(frame: pd.DataFrame, path: Path) -> None:
    """Write one unit's rows as a parquet part, atomically."""
    table = to_arrow(frame)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def run_unit(job: Job, unit: Unit, root: str) -> str:
    """What a worker does: compute the unit's rows and write its part. Returns the key."""
    frame = job(unit)
    write_part(frame, part_path(root, unit))
    return unit.key


class Executor(Protocol):
    """Maps pending units to workers; calls ``on_done`` once per finished unit."""

    def run(
        self, job: Job, units: Sequence[Unit], root: Path, on_done: Callable[[Unit], None]
    ) -> None: ...


class LocalExecutor:
    """Run units one after another in this process (the default)."""

    def run(
        self, job: Job, units: Sequence[Unit], root: Path, on_done: Callable[[Unit], None]
    ) -> None:
        for unit in units:
            run_unit(job, unit, str(root))
            on_done(unit)


def get_executor(name: str, **options: Any) -> Executor:
    """The executor called ``name``: ``local`` or ``ray`` (needs the ``ray`` extra)."""
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        from miragelab.ray_executor import RayExecutor

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
