"""Partitioned datasets: a folder of parquet parts read as one validated table.

A dataset is ``key=value`` folders (Hive partitioning) holding parquet parts,
as :func:`miragelab.runners.units.run_units` writes them and as ``pyarrow.dataset``,
Spark and DuckDB ``PARTITION_BY`` write them. Partition values found only in
folder names are added as columns; every part is validated and so is the union.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from miragelab.errors import InputError
from miragelab.parquet_io import parquet_schema, read_parquet
from miragelab.schema import BadValue, TableSpec, parse_cell, union, validate_records

#: how Hive and Spark name the partition folder of a null value
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def unreadable_parquet(path: str | os.PathLike[str], exc: Exception) -> InputError:
    """The error of a file that pyarrow cannot read as parquet (one wording everywhere)."""
    reason = " ".join(str(exc).split())
    return InputError(f"not a readable parquet file ({reason})", path=path)


def part_files(root: str | os.PathLike[str]) -> list[Path]:
    """Every parquet file under ``root`` (any depth), in a stable (sorted) order.

    Files and folders whose name starts with ``.`` or ``_`` are not data (temporary
    parts, ``_SUCCESS`` markers, ``_common_metadata``), as in Hive and Spark.
    """
    folder = Path(root)
    found = []
    for path in folder.rglob("*.parquet"):
        rel = path.relative_to(folder).parts
        if path.is_file() and not any(p.startswith((".", "_")) for p in rel):
            found.append(path)
    return sorted(found)


def is_dataset(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a folder holding parquet parts (a partitioned dataset)."""
    folder = Path(path)
    return folder.is_dir() and bool(part_files(folder))


def hive_values(path: Path, root: Path) -> dict[str, str]:
    """``key=value`` folder names between ``root`` and a part, URL-decoded (Hive partitioning)."""
    values = {}
    for name in path.relative_to(root).parts[:-1]:
        key, sep, value = name.partition("=")
        if sep and key:
            values[urllib.parse.unquote(key)] = urllib.parse.unquote(value)
    return values


def read_part(
    path: Path,
    root: Path,
    columns: Sequence[str] | None = None,
    spec: TableSpec | None = None,
) -> pa.Table:
    """One part as Arrow, with the partition columns its folders name and it lacks.

    Parts written by :func:`run_units` carry every column; datasets written by
    other tools (``pyarrow.dataset.write_dataset``, Spark, DuckDB ``PARTITION_BY``)
    keep partition columns in the folder names only. Those values are text; with
    ``spec`` they are read as its fields say (``step=100`` is the integer 100).
    """
    try:
        table = read_parquet(path, None if columns is None else _present(path, columns))
    except (pa.ArrowException, OSError) as exc:
        raise unreadable_parquet(path, exc) from None
    return add_hive_columns(table, path, root, columns, spec)


def add_hive_columns(
    table: pa.Table,
    path: Path,
    root: Path,
    columns: Sequence[str] | None = None,
    spec: TableSpec | None = None,
) -> pa.Table:
    """``table`` (rows of the part ``path``) with the partition columns it lacks."""
    for key, text in hive_values(path, root).items():
        if key in table.column_names or (columns is not None and key not in columns):
            continue
        value: Any = None if text == HIVE_NULL else text
        if value is not None and spec is not None and key in spec.columns:
            try:
                value = parse_cell(text, spec.field(key))
            except BadValue as exc:
                raise InputError(
                    f"partition folder {key}={text}: {exc}", path=path, field=key
                ) from None
        table = table.append_column(key, pa.array([value] * table.num_rows))
    return table


def _present(path: Path, columns: Sequence[str]) -> list[str]:
    names = set(parquet_schema(path).names)
    return [c for c in columns if c in names]


def read_parts(paths: Iterable[Path], spec: TableSpec, root: Path) -> pd.DataFrame:
    """Read parts (in the order given) and validate them as one table.

    Each part is validated on its own (errors name the part and its row), then
    the union is checked (a duplicate across parts names the later part's row).
    """
    frames = []
    for path in paths:
        table = read_part(path, root, spec=spec)
        if table.num_rows == 0:  # a unit with no examples (an empty last shard)
            continue
        records = enumerate(table.to_pylist(), start=1)
        frames.append(validate_records(records, spec, path=path, unit="row"))
    if not frames:
        raise InputError(f"empty {spec.name} table: no records in its parquet parts", path=root)
    return union(frames, spec)


def read_dataset(root: str | os.PathLike[str], spec: TableSpec) -> pd.DataFrame:
    """Every part of a partitioned dataset folder as one validated table."""
    folder = Path(root)
    return read_parts(part_files(folder), spec, folder)
