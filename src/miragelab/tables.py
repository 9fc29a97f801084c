"""Reading and writing the two tables, ``samples`` and ``scores``.

:func:`read_table` reads JSONL, CSV, parquet (and a folder of parquet parts);
:func:`write_table` writes them atomically. Every row is checked by the rules
of :mod:`miragelab.schema`, which holds the table specs and their conventions;
any problem raises :class:`~miragelab.errors.InputError` naming the file, the
line (or row) and the field. After validation the core trusts its input.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from miragelab.atomic import atomic_path
from miragelab.datasets import is_dataset, read_dataset, unreadable_parquet
from miragelab.errors import InputError
from miragelab.frames import without_attrs
from miragelab.parquet_io import read_parquet, write_parquet
from miragelab.schema import (
    SAMPLES,
    SCORES,
    TABLES,
    SourceLines,
    TableSpec,
    union,
    validate_frame,
    validate_records,
)
from miragelab.textio import (
    MAX_LINE_BYTES,
    check_distinct,
    iter_csv_rows,
    iter_jsonl,
    regular_file,
    table_format,
)

__all__ = [
    "MAX_LINE_BYTES",
    "SAMPLES",
    "SCORES",
    "TABLES",
    "SourceLines",
    "read_many",
    "read_samples",
    "read_scores",
    "read_table",
    "to_arrow",
    "validate_frame",
    "without_attrs",
    "write_table",
]

# --------------------------------------------------------------------------- reading


def read_table(path: str | os.PathLike[str], spec: TableSpec | str) -> pd.DataFrame:
    """Read and validate a samples or scores table from JSONL, CSV or parquet."""
    spec = TABLES[spec] if isinstance(spec, str) else spec
    p = regular_file(path, folder=True)
    if p.is_dir():
        # a partitioned dataset (task=.../model=.../part-N.parquet): every part, validated
        if not is_dataset(p):
            raise InputError("is a directory with no parquet parts, expected a table", path=p)
        return read_dataset(p, spec)
    fmt = table_format(p)
    if fmt == "jsonl":
        return validate_records(iter_jsonl(p), spec, path=p)
    if fmt == "csv":
        return validate_records(_iter_csv(p), spec, path=p, from_text=True)
    try:
        table = read_parquet(p)
    except (pa.ArrowException, OSError) as exc:
        raise unreadable_parquet(p, exc) from None
    return validate_records(enumerate(table.to_pylist(), start=1), spec, path=p, unit="row")


def _iter_csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    rows = iter_csv_rows(path)
    _, header = next(rows)
    for line, cells in rows:
        yield line, dict(zip(header, cells, strict=True))


def read_samples(path: str | os.PathLike[str]) -> pd.DataFrame:
    return read_table(path, SAMPLES)


def read_scores(path: str | os.PathLike[str]) -> pd.DataFrame:
    return read_table(path, SCORES)


def read_many(paths: Iterable[str | os.PathLike[str]], spec: TableSpec | str) -> pd.DataFrame:
    """Read several tables of one kind and check the union (no row in two files).

    An error found only in the union (a duplicate across files, one model with
    two sizes) names the file and line of the offending row.
    """
    spec = TABLES[spec] if isinstance(spec, str) else spec
    paths = list(paths)
    check_distinct(paths)
    frames = [read_table(p, spec) for p in paths]
    if not frames:
        raise InputError(f"no {spec.name} files given")
    return union(frames, spec)


# --------------------------------------------------------------------------- writing


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """Arrow table of a validated frame (list columns stay Arrow lists)."""
    # provenance (path, line numbers) stays in memory, not in the file
    table = pa.Table.from_pandas(without_attrs(frame), preserve_index=False)
    return _readable_by_pandas(table)


def _readable_by_pandas(table: pa.Table) -> pa.Table:
    """Mark Arrow list columns as plain object columns in the pandas metadata.

    pandas records an ``ArrowDtype`` list column as ``list<item: double>[pyarrow]``,
    a dtype string ``pandas.read_parquet`` cannot parse back; as ``object`` the
    file opens anywhere (lists come back as arrays) and other dtypes are kept.
    """
    meta = table.schema.pandas_metadata
    if not meta:
        return table
    for column in meta.get("columns", []):
        numpy_type = str(column.get("numpy_type", ""))
        if numpy_type.endswith("[pyarrow]") and "list<" in numpy_type:
            column["numpy_type"] = "object"
    metadata = dict(table.schema.metadata or {})
    metadata[b"pandas"] = json.dumps(meta).encode()
    return table.replace_schema_metadata(metadata)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value).__name__)


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a table atomically; the format follows the file name."""
    p = Path(path)
    fmt = table_format(p)
    gz = p.name.lower().endswith(".gz")
    writers: dict[str, Callable[[pd.DataFrame, Path, bool], None]] = {
        "parquet": lambda df, tmp, _gz: write_parquet(to_arrow(df), tmp),
        "jsonl": _write_jsonl,
        "csv": _write_csv,
    }
    with atomic_path(p) as tmp:
        writers[fmt](frame, tmp, gz)
    return p


def _plain_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Records with nulls as None and lists as Python lists (JSON-ready)."""
    return to_arrow(frame).to_pylist()


def _write_jsonl(frame: pd.DataFrame, tmp: Path, gz: bool) -> None:
    opener: Callable[..., Any] = gzip.open if gz else open
    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
    with opener(tmp, "wb") as handle:
        for record in _plain_records(frame):
            handle.write(orjson.dumps(record, default=_json_default, option=option))


def _write_csv(frame: pd.DataFrame, tmp: Path, gz: bool) -> None:
    out = frame.copy()
    for name in out.columns:
        dtype = out[name].dtype
        if isinstance(dtype, pd.ArrowDtype) and pa.types.is_list(dtype.pyarrow_dtype):
            values = pa.array(out[name]).to_pylist()
            out[name] = [None if v is None else orjson.dumps(v).decode() for v in values]
    out.to_csv(tmp, index=False, compression="gzip" if gz else None)
