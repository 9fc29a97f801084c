"""Score a samples table larger than memory: record batches in, sufficient statistics kept.

:func:`stream_score` gives the scores table of :func:`miragelab.scoring.score_samples`
without holding the samples: it reads parquet record batches (a partitioned
dataset folder part by part, or one big file row group by row group), checks
each batch by the rules of :mod:`miragelab.schema` (errors name the part file
and its row), and feeds it to the one accumulator, :class:`miragelab.scoring.Scorer`.

The rules across rows are checked by :class:`miragelab.schema.RowChecker`,
which keeps one 64-bit hash per row (8 bytes a row, the only per-row state)
and confirms a repeated hash on the rows themselves, read back from their file.

Memory is one batch plus that state: a few hundred MB for 10**7 rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from miragelab.datasets import add_hive_columns, part_files, unreadable_parquet
from miragelab.errors import InputError
from miragelab.metrics import Metric, MetricOptions
from miragelab.parquet_io import parquet_file
from miragelab.schema import SAMPLES, RowChecker, Where, check_batch
from miragelab.scoring import Scorer
from miragelab.tables import read_table, to_arrow
from miragelab.textio import regular_file, table_format

#: rows per record batch: about 10-20 MB of a typical samples table
DEFAULT_BATCH_ROWS = 65_536
#: `mirage score` streams a parquet file from this size on (and any dataset folder)
STREAM_MIN_BYTES = 256 * 2**20


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class _File:
    """One file of the input and, for a part of a dataset, the dataset's root."""

    path: Path
    root: Path | None


def input_files(paths: Sequence[str | os.PathLike[str]]) -> list[_File]:
    """The files behind ``paths``, in the order :func:`miragelab.tables.read_many` reads them."""
    files = []
    for item in paths:
        p = regular_file(item, folder=True)
        if p.is_dir():
            parts = part_files(p)
            if not parts:
                raise InputError("is a directory with no parquet parts, expected a table", path=p)
            files.extend(_File(part, p) for part in parts)
        else:
            files.append(_File(p, None))
    if not files:
        raise InputError("no samples files given")
    return files


def should_stream(paths: Sequence[str | os.PathLike[str]]) -> bool:
    """Whether `mirage score` streams by default: a dataset folder or a large parquet file."""
    for item in paths:
        p = Path(item)
        if p.is_dir():
            return True
        if p.is_file() and table_format(p) == "parquet" and p.stat().st_size >= STREAM_MIN_BYTES:
            return True
    return False


def _batches(source: _File, batch_rows: int) -> Iterator[tuple[pa.Table, Where]]:
    """Record batches of one file, with the columns the samples table knows, and where
    their rows came from.

    Parquet is read batch by batch (rows numbered from 1 across the file); a JSONL
    or CSV file (small by nature) is read and validated whole by :func:`read_table`,
    then cut into batches that keep the lines the reader recorded.
    """
    path = source.path
    if table_format(path) != "parquet":
        frame = read_table(path, SAMPLES)
        lines = frame.attrs["lines"].numbers
        first = 0
        for batch in to_arrow(frame).to_batches(batch_rows):
            n = batch.num_rows
            yield pa.Table.from_batches([batch]), Where(path, lines[first : first + n])
            first += n
        return
    try:
        handle = parquet_file(path)
        names = set(handle.schema_arrow.names)
        columns = [c for c in SAMPLES.columns if c in names]
        first = 0
        for batch in handle.iter_batches(batch_size=batch_rows, columns=columns):
            table = pa.Table.from_batches([batch])
            if source.root is not None:
                table = add_hive_columns(table, path, source.root, SAMPLES.columns, SAMPLES)
            yield table, Where.rows(path, first, table.num_rows)
            first += table.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise unreadable_parquet(path, exc) from None


# --------------------------------------------------------------------------- scoring


class StreamScorer:
    """Checks the batches of samples files and feeds them to one :class:`Scorer`."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.rows = RowChecker(SAMPLES, keep_keys=False)
        self.spans: list[tuple[_File, int, int]] = []  # file, first global row, rows

    def add_file(self, source: _File, batch_rows: int = DEFAULT_BATCH_ROWS) -> None:
        start = self.rows.rows
        for raw, where in _batches(source, batch_rows):
            self.add_batch(raw, where)
        self.spans.append((source, start, self.rows.rows - start))

    def add_batch(self, raw: pa.Table, where: Where) -> None:
        """Check one batch of a file's rows and score it."""
        if raw.num_rows == 0:
            return
        table = check_batch(raw, SAMPLES, where)
        self.rows.add(table, where)
        frame = pd.DataFrame(
            {name: pd.arrays.ArrowExtensionArray(table.column(name)) for name in table.column_names}
        )
        self.scorer.add(frame, where)

    def _row_key(self, row: int) -> tuple:
        """(task, family, model, step, example_id) of a global row, read back from its file."""
        for source, start, count in self.spans:
            if start <= row < start + count:
                local = row - start
                seen = 0
                for raw, where in _batches(source, DEFAULT_BATCH_ROWS):
                    if local < seen + raw.num_rows:
                        table = check_batch(raw, SAMPLES, where)
                        return tuple(table.column(c)[local - seen].as_py() for c in SAMPLES.key)
                    seen += raw.num_rows
        raise AssertionError(row)

    def scores(self) -> pd.DataFrame:
        """The scores table: the rows and columns :func:`score_samples` gives."""
        self.scorer.check()
        self.rows.finish(self._row_key)
        return self.scorer.scores()


def stream_score(
    paths: Sequence[str | os.PathLike[str]],
    metrics: str | Metric | Sequence[str | Metric],
    options: MetricOptions | None = None,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    skip_absent: bool = False,
) -> pd.DataFrame:
    """Score samples files and dataset folders batch by batch, with bounded memory.

    Gives the table :func:`miragelab.scoring.score_samples` gives on the same
    samples read whole: equal 0/1 means and Wilson intervals, equal BCa
    intervals (same values, same random stream), and means and t intervals
    equal up to the rounding of a different summation order.
    """
    if batch_rows < 1:
        raise InputError(f"must be >= 1, got {batch_rows}", field="batch-rows")
    scorer = StreamScorer(
        Scorer(
            metrics,
            options,
            confidence=confidence,
            n_resamples=n_resamples,
            seed=seed,
            skip_absent=skip_absent,
        )
    )
    for source in input_files(paths):
        scorer.add_file(source, batch_rows)
    return scorer.scores()
