"""A unit of work, the job that computes it, and the executor that runs units in this process.

:mod:`miragelab.runners.units` (running units with resume) and
:mod:`miragelab.runners.ray_executor` (units as Ray tasks) both build on this
module, which imports neither; see ``docs/scale-out.md`` for the parts on disk.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from miragelab.atomic import atomic_path
from miragelab.parquet_io import write_parquet
from miragelab.tables import to_arrow

__all__ = [
    "Executor",
    "Job",
    "LocalExecutor",
    "Unit",
    "part_path",
    "run_unit",
    "segment",
    "write_part",
]


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
    """The file of ``unit``'s part under the dataset ``root``."""
    return Path(root) / unit.key


def write_part(frame: pd.DataFrame, path: Path) -> None:
    """Write one unit's rows as a parquet part, atomically."""
    table = to_arrow(frame)
    with atomic_path(path) as tmp:
        write_parquet(table, tmp)


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
        """Run every unit in order, calling ``on_done`` after each."""
        for unit in units:
            run_unit(job, unit, str(root))
            on_done(unit)
