"""Parquet files on the local disk, whatever their names: the one way miragelab opens them.

Given a bare string, pyarrow decides whether it is a path or a URI, and a local
name with a colon before any slash (``simple1:model=x.parquet``, the style of
HELM's run folders) reads as a URI with an unknown scheme and is refused. Every
parquet read and write in miragelab goes through this module, which names the
local file system and gives it an absolute path, so any file name works.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

__all__ = [
    "local_path",
    "parquet_file",
    "parquet_schema",
    "parquet_writer",
    "read_parquet",
    "write_parquet",
]

#: every parquet file miragelab reads or writes lives on the local disk
LOCAL = pafs.LocalFileSystem()


def local_path(path: str | os.PathLike[str]) -> str:
    """``path`` as an absolute local path (a relative ``a:b`` would read as a URI)."""
    return os.path.abspath(os.fspath(path))


def read_parquet(path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> pa.Table:
    """The table in one parquet file (only ``columns``, in that order, when given)."""
    return pq.read_table(
        local_path(path), columns=None if columns is None else list(columns), filesystem=LOCAL
    )


def parquet_schema(path: str | os.PathLike[str]) -> pa.Schema:
    """The Arrow schema of one parquet file, read from its footer."""
    return pq.read_schema(local_path(path), filesystem=LOCAL)


def parquet_file(path: str | os.PathLike[str]) -> pq.ParquetFile:
    """One parquet file opened for reading row group by row group or batch by batch."""
    return pq.ParquetFile(local_path(path), filesystem=LOCAL)


def parquet_writer(path: str | os.PathLike[str], schema: pa.Schema) -> pq.ParquetWriter:
    """A writer of a parquet file with ``schema``, written a table at a time."""
    return pq.ParquetWriter(local_path(path), schema, filesystem=LOCAL)


def write_parquet(table: pa.Table, path: str | os.PathLike[str]) -> None:
    """Write ``table`` as one parquet file (not atomic: callers give a temporary path)."""
    pq.write_table(table, local_path(path), filesystem=LOCAL)
