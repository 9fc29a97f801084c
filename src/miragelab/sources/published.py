"""Load published results of any supported kind into one validated scores table.

:func:`load_scores` takes files and folders and recognises each file by its
extension and content:

* ``.json`` with a ``results`` object -> lm-eval-harness results
  (:mod:`~miragelab.sources.lm_eval_results`);
* ``.json`` with ``model.model_family`` and a ``scores`` list -> BIG-bench score
  file (:mod:`~miragelab.sources.bigbench`);
* ``.csv`` (optionally ``.gz``) whose header has the scores columns (``task``,
  ``family``, ``model``, ``params``, ``metric``, ``value``) -> an already-long
  scores table (:func:`miragelab.tables.read_table`); other ``.csv`` with a
  model column -> a wide CSV (:mod:`~miragelab.sources.wide_csv`);
* ``.jsonl``, ``.ndjson``, ``.parquet`` -> a long scores table.

Folders are walked recursively in sorted order. In a walk, files of other
kinds (READMEs, ``bigbench/tasks.csv.gz`` metadata, unrelated JSON) are
skipped with a note, and so are the files in :data:`WALK_SKIP`; a file named
explicitly must be recognised or :class:`~miragelab.errors.InputError` is
raised. The union is checked as one table: the same (task, family, model,
step, metric) in two files, or one checkpoint given two sizes, is an error
naming the files.

Notes about skipped files, dropped or moved models, and the one family given
to lm-eval runs whose model names give none
(:func:`~miragelab.sources.sizes.folder_family`), are in ``frame.attrs["notes"]``;
the files read are in ``frame.attrs["sources"]``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from miragelab.errors import InputError
from miragelab.schema import SCORES, SourceLines, validate_frame
from miragelab.sources.bigbench import bigbench_records, is_bigbench_scores
from miragelab.sources.lm_eval_results import (
    is_lm_eval_results,
    lm_eval_records,
    read_json,
    sizes_mapping,
)
from miragelab.sources.shipped import shipped_data_dir
from miragelab.sources.sizes import Unnamed, family_in_name, folder_family
from miragelab.sources.wide_csv import find_column, wide_records
from miragelab.tables import read_table
from miragelab.textio import check_distinct, iter_csv_rows, regular_file

__all__ = ["WALK_SKIP", "load_scores", "load_shipped", "shipped_data_dir", "shipped_sources"]

#: Files skipped when walking a folder (still loaded when named explicitly), with the reason.
WALK_SKIP = {
    "base_llm_benchmark_eval_sub_10b.csv": (
        "ObsScaling's sub-10B re-run of base_llm_benchmark_eval.csv: the same models and "
        "columns with some values differing, so loading both would give each score twice"
    ),
}

_LONG_EXTS = (".jsonl", ".ndjson", ".parquet", ".pq", ".jsonl.gz", ".ndjson.gz")
_JSON_EXTS = (".json", ".json.gz")
_CSV_EXTS = (".csv", ".csv.gz")

_LM_EVAL_KW = ("model", "family", "params", "sizes")
_WIDE_KW = (
    "model_col",
    "family_col",
    "params_col",
    "flops_col",
    "tokens_col",
    "metric_cols",
    "id_cols",
    "meta",
    "on_size_clash",
)
_BIGBENCH_KW = ("params_field",)


def shipped_sources() -> list[Path]:
    """What :func:`load_shipped` reads: all Pythia evals and the two ObsScaling tables."""
    root = shipped_data_dir()
    return [
        root / "pythia-evals",
        root / "obsscaling" / "base_llm_emergent_capability_eval.csv",
        root / "obsscaling" / "base_llm_benchmark_eval.csv",
    ]


def load_shipped() -> pd.DataFrame:
    """Scores of the shipped real data: Pythia (lm-eval 0.3) and ObsScaling.

    ``base_llm_benchmark_eval_sub_10b.csv`` is left out (see :data:`WALK_SKIP`).
    """
    return load_scores(shipped_sources())


def _lower_name(path: Path) -> str:
    return path.name.lower()


def _has_ext(path: Path, exts: Iterable[str]) -> bool:
    name = _lower_name(path)
    return any(name.endswith(ext) for ext in exts)


def _hive_parts(folder: Path) -> list[Path]:
    """Parquet parts of ``folder`` that sit under ``key=value`` folders (a Hive dataset)."""
    from miragelab.datasets import hive_values, part_files

    return [part for part in part_files(folder) if hive_values(part, folder)]


def _expand(
    paths: Iterable[str | os.PathLike[str]], notes: list[str]
) -> tuple[list[tuple[Path, bool]], list[tuple[Path, list[Path]]]]:
    """Files to read, each with whether it was named explicitly, and Hive datasets.

    A folder's parquet parts under ``key=value`` folders are one partitioned
    dataset, read as a whole (the keys, say ``task`` and ``model``, may live in
    the folder names only); every other file is read on its own.
    """
    out: list[tuple[Path, bool]] = []
    datasets: list[tuple[Path, list[Path]]] = []
    lm_eval_samples: list[Path] = []
    paths = list(paths)
    check_distinct(paths)
    for item in paths:
        p = regular_file(item, folder=True)
        if p.is_file():
            out.append((p, True))
            continue
        hive = _hive_parts(p)
        if hive:
            datasets.append((p, hive))
        in_dataset = set(hive)
        for child in sorted(p.rglob("*")):
            rel = child.relative_to(p)
            if not child.is_file() or any(part.startswith(".") for part in rel.parts):
                continue
            if child in in_dataset:
                continue
            if not _has_ext(child, _LONG_EXTS + _JSON_EXTS + _CSV_EXTS):
                continue
            if child.name in WALK_SKIP:
                notes.append(f"skipped {child}: {WALK_SKIP[child.name]}")
                continue
            if child.name.startswith("samples_") and any(child.parent.glob("results*.json")):
                # lm-eval's --log_samples output beside its results: the results are the
                # scores, the samples are outputs to rescore (mirage ingest lm-eval)
                lm_eval_samples.append(child)
                continue
            out.append((child, False))
    if lm_eval_samples:
        notes.append(
            f"skipped {len(lm_eval_samples)} lm-eval samples file(s) beside their results "
            f"(such as {lm_eval_samples[0]}): the results hold the scores; rescore the samples "
            "with mirage ingest lm-eval and mirage score"
        )
    if not out and not datasets:
        raise InputError("no score files found in the given paths")
    return out, datasets


def _csv_header(path: Path) -> list[str]:
    try:
        if path.stat().st_size == 0:
            return []
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None
    rows = iter_csv_rows(path)
    try:
        _, header = next(rows)
    finally:
        rows.close()
    return [h.strip() for h in header]


def _pick(kw: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if k in names}


class _Collected:
    """Frames and their source files, in input order."""

    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []
        self.files: list[Path] = []

    def add(self, frame: pd.DataFrame, path: Path) -> None:
        if not frame.empty:
            self.frames.append(frame)
            self.files.append(path)


def _read_one(
    path: Path, explicit: bool, kw: dict[str, Any], notes: list[str], lm_eval: set[Path]
) -> pd.DataFrame | list[dict[str, Any]] | None:
    """Records (or a validated long frame) of one file; None when skipped in a walk.

    The files read as lm-eval results are added to ``lm_eval``."""
    if _has_ext(path, _LONG_EXTS):
        return read_table(path, SCORES)
    if _has_ext(path, _JSON_EXTS):
        data = read_json(path)
        # a file named explicitly with the top-level keys of a format is taken as that
        # format, so its loader says what is wrong (a folder walk skips such files)
        keys = set(data) if isinstance(data, dict) and explicit else set()
        if is_lm_eval_results(data) or "results" in keys:
            lm_eval.add(path)
            return lm_eval_records(data, path, **_pick(kw, _LM_EVAL_KW), notes=notes)
        if is_bigbench_scores(data) or {"scores", "model"} <= keys:
            return bigbench_records(data, path, **_pick(kw, _BIGBENCH_KW))
        if isinstance(data, dict) and set(SCORES.required) <= set(data):
            return read_table(path, SCORES)  # a one-record long table
        reason = "neither lm-eval results, a BIG-bench score file nor a scores record"
    else:
        header = _csv_header(path)
        if set(SCORES.required) <= set(header):
            return read_table(path, SCORES)
        if find_column(header, "model") is not None:
            records, wide_notes = wide_records(path, **_pick(kw, _WIDE_KW))
            notes.extend(wide_notes)
            return records
        reason = "a CSV with neither the scores columns nor a model column"
    if explicit:
        raise InputError(f"not a recognised scores file ({reason})", path=path)
    notes.append(f"skipped {path}: {reason}")
    return None


def _lm_eval_folder_family(
    record_lists: list[list[dict[str, Any]]], files: list[Path], lm_eval: set[Path]
) -> list[str]:
    """Give the lm-eval runs whose model names give no family the one family of
    :func:`~miragelab.sources.sizes.folder_family` (in place); its note, if any.

    One results file holds one run of one model, so its first record names it.
    """
    unnamed = [
        (records, path)
        for records, path in zip(record_lists, files, strict=True)
        if path in lm_eval and family_in_name(records[0]["model"]) is None
    ]
    grouped = folder_family(
        [
            Unnamed(records[0]["model"], records[0]["params"], records[0]["step"], path)
            for records, path in unnamed
        ],
        override="family= to ml.read_scores (the command line has no such option)",
    )
    if grouped is None:
        return []
    for records, _ in unnamed:
        for record in records:
            record["family"] = grouped[0]
    return [grouped[1]]


def load_scores(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], **kw: Any
) -> pd.DataFrame:
    """Load published results from files and folders into one validated scores table.

    Parameters
    ----------
    paths
        One path or several; folders are walked recursively (sorted).
    **kw
        Passed to the loader each file needs: ``model``, ``family``, ``params``,
        ``sizes`` (lm-eval results; ``sizes`` may be a sidecar CSV path);
        ``model_col``, ``family_col``, ``params_col``, ``flops_col``,
        ``tokens_col``, ``metric_cols``, ``id_cols``, ``meta``, ``on_size_clash``
        (wide CSVs); ``params_field`` (BIG-bench).
    """
    unknown = set(kw) - set(_LM_EVAL_KW + _WIDE_KW + _BIGBENCH_KW)
    if unknown:
        raise TypeError(f"load_scores() got unexpected keyword(s): {', '.join(sorted(unknown))}")
    if "sizes" in kw:
        kw = {**kw, "sizes": sizes_mapping(kw["sizes"])}
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    notes: list[str] = []
    files, datasets = _expand(paths, notes)

    record_lists: list[list[dict[str, Any]]] = []
    record_files: list[Path] = []
    collected = _Collected()
    for root, parts in datasets:
        from miragelab.datasets import read_parts

        collected.add(read_parts(parts, SCORES, root)[SCORES.columns], root)
    lm_eval: set[Path] = set()
    for path, explicit in files:
        result = _read_one(path, explicit, kw, notes, lm_eval)
        if result is None:
            continue
        if isinstance(result, pd.DataFrame):
            collected.add(result[SCORES.columns], path)
        elif result:
            record_lists.append(result)
            record_files.append(path)
    if kw.get("family") is None:
        notes.extend(_lm_eval_folder_family(record_lists, record_files, lm_eval))

    parts: list[pd.DataFrame] = []
    owners: list[np.ndarray] = []
    all_files: list[Path] = []
    if record_lists:
        flat = [r for records in record_lists for r in records]
        parts.append(pd.DataFrame.from_records(flat, columns=SCORES.columns))
        owners.append(np.repeat(np.arange(len(record_lists)), [len(r) for r in record_lists]))
        all_files.extend(record_files)
    for frame, path in zip(collected.frames, collected.files, strict=True):
        parts.append(frame.astype(object).where(frame.notna(), None))
        owners.append(np.full(len(frame), len(all_files)))
        all_files.append(path)
    if not parts:
        raise InputError("no scores found in the given paths")
    combined = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    owner = np.concatenate(owners)

    label = str(all_files[0]) if len(all_files) == 1 else f"({len(all_files)} files)"
    # documents (JSON results) have no row numbers: an error names the file of its row
    origin = None
    if len(all_files) > 1:
        origin = SourceLines(None, files=[str(p) for p in all_files], file_of_row=owner)
    table = validate_frame(combined, SCORES, path=label, origin=origin)
    table.attrs["notes"] = notes
    table.attrs["sources"] = [str(p) for p in all_files]
    return table


def load_scores_or_shipped(
    paths: Iterable[str | os.PathLike[str]], shipped: bool = False
) -> pd.DataFrame:
    """The scores a command was given: its files and folders, or the shipped results."""
    paths = list(paths)
    if shipped and paths:
        raise InputError("give score files or --shipped, not both", field="scores")
    if shipped:
        return load_shipped()
    if not paths:
        raise InputError("no score files given (or pass --shipped)", field="scores")
    return load_scores(paths)
