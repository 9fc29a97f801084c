"""Wide CSVs (one row per model, one column per score) -> the long scores table.

Columns
-------
Found by header, case-insensitively, ignoring a trailing ``(unit)``, unless
given by argument:

* model: ``Model``, ``model``, ``model_name``, ``model_id``, ``name``;
* family: ``Model Family``, ``family``, ``model_family`` (else
  :func:`~miragelab.sources.sizes.family_from_name` of the model; the models
  of a file whose names give no family form one family named after their
  common folder, :func:`~miragelab.sources.sizes.folder_family`, with a note);
* params: ``Model Size``, ``params``, ``parameters``, ``n_params``,
  ``num_params``, ``total_params``;
* training FLOPs: ``FLOPs``, ``compute_flops``, ``compute``, ``training_flops``;
* training tokens: ``Pretraining Data Size``, ``tokens``, ``tokens_trained``.

A unit in brackets scales the column to raw counts: ``(K)``, ``(M)``, ``(B)``
(billions), ``(T)`` (trillions), or a power of ten such as ``(1E21)``. So the
ObsScaling headers ``Model Size (B)``, ``Pretraining Data Size (T)`` and
``FLOPs (1E21)`` become params x 1e9, tokens x 1e12 and FLOPs x 1e21. A params
column without a unit holds raw counts; size strings (``1.4b``) are parsed too.
If such a column looks like billions (every value below 10,000) the loader
refuses rather than produce 7-parameter models.

Model metadata from another file
--------------------------------
``meta`` names a second wide CSV (or frame) with model, family and size columns,
joined on the model name; ``meta`` values fill what the file lacks. The
ObsScaling file ``base_llm_emergent_capability_eval.csv`` has only a ``Model``
column, so when a file has no family or params column and a
``base_llm_benchmark_eval.csv`` sits beside it, that file is used (the data
README says to join on ``Model``). ObsScaling sizes are used as published:
for some mixture-of-experts models they are active rather than total
parameters (``Mixtral-8x22B-v0.1`` 39B), and a few are errata of the source
(``open_llama_7b_v2`` 13B, ``btlm-3b-8k-base`` 627T tokens); the loader
notes every model whose published size disagrees with its name by more than
a factor of 1.5 but does not change the data.

Score columns -> (task, metric)
-------------------------------
Every other column whose non-empty cells are all numbers is a score. Its name
is split as ``<task>[_<shots>]_<metric>`` where ``<metric>`` is one of
:data:`METRIC_SUFFIXES`; a shot count above zero becomes a ``@<K>shot`` task
suffix, as in the lm-eval loader. Thus ObsScaling's
``ipa_transliterate_2_exact_match`` and ``ipa_transliterate_2_bleu`` are the
task ``ipa_transliterate@2shot`` with metrics ``exact_match`` and ``bleu``
(a harsh and a continuous metric on the same outputs), and
``arithmetic_3ds_2_acc`` is task ``arithmetic_3ds@2shot``, metric ``acc``.
A column without a known metric suffix is task ``<column>``, metric ``score``
(ObsScaling's ``MMLU``, ``GSM8K``: the file does not say which metric).
``metric_cols`` may instead map columns to ``(task, metric)`` pairs. Values
are stored as published (BLEU on 0-100, the rest 0-1). ``n``, ``stderr`` and
intervals are null: the files have none. The files state no direction either:
``higher_is_better`` is the metric's direction in :mod:`miragelab.metric_facts`
(``exact_match``, ``bleu``, ``acc``, ``score``: true), null for a metric not known
there (never a guess: the analysis then asks for it).

Missing data
------------
An empty score cell skips that (model, metric) only. A model with no size
anywhere (its column, ``meta``, a known family or its name) is dropped and
counted in ``frame.attrs["notes"]`` and the log. Two models of one family with
the same size cannot be one curve: by default (``on_size_clash="split"``) the
first in file order keeps the family and each later one moves to the family
``"<family> (<model>)"``, with a note; ``"error"`` raises instead.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from miragelab.errors import InputError
from miragelab.metric_facts import fact_of
from miragelab.schema import SCORES, ModelSizes, score_value_problem, validate_frame
from miragelab.sources.sizes import (
    Unnamed,
    family_from_name,
    family_in_name,
    folder_family,
    parse_size,
    short_name,
    size_from_name,
)
from miragelab.textio import iter_csv_rows, regular_file

__all__ = [
    "EMPTY_CELLS",
    "METRIC_SUFFIXES",
    "OBSSCALING_META",
    "cell_number",
    "empty_cells",
    "load_wide_csv",
    "read_wide_frame",
    "split_score_column",
    "wide_records",
]

log = logging.getLogger(__name__)

#: Metric names recognised at the end of a score column, longest first when matching.
METRIC_SUFFIXES = (
    "exact_match",
    "exact_str_match",
    "multiple_choice_grade",
    "acc_norm",
    "acc",
    "accuracy",
    "bleu",
    "bleurt",
    "chrf",
    "rouge1",
    "rouge2",
    "rougeL",
    "rougeLsum",
    "f1",
    "em",
    "mc1",
    "mc2",
    "brier_score",
    "ppl",
    "perplexity",
    "pass@1",
)
_SUFFIX_RE = re.compile(
    r"^(?P<task>.+?)(?:_(?P<shots>\d+))?_(?P<metric>"
    + "|".join(re.escape(m) for m in sorted(METRIC_SUFFIXES, key=len, reverse=True))
    + r")$"
)

#: the ObsScaling model-metadata file that ``base_llm_emergent_capability_eval.csv`` joins on
OBSSCALING_META = "base_llm_benchmark_eval.csv"

_ROLES = {
    "model": ("model", "model_name", "model_id", "name"),
    "family": ("model family", "family", "model_family"),
    "params": ("model size", "params", "parameters", "n_params", "num_params", "total_params"),
    "flops": ("flops", "compute_flops", "compute", "training_flops", "training flops"),
    "tokens": ("pretraining data size", "tokens", "tokens_trained", "training tokens"),
}
_UNIT_RE = re.compile(r"^(?P<base>.*?)\s*\((?P<unit>[^()]*)\)\s*$")
_UNIT_SCALE = {"k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}


def split_score_column(column: str) -> tuple[str, str]:
    """Task and metric of a score column.

    ``"ipa_transliterate_2_bleu"`` -> ``("ipa_transliterate@2shot", "bleu")``; a column
    without a known metric suffix -> ``(column, "score")``.
    """
    match = _SUFFIX_RE.match(column)
    if match is None:
        return column, "score"
    task = match.group("task")
    shots = match.group("shots")
    if shots is not None and int(shots) > 0:
        task = f"{task}@{int(shots)}shot"
    return task, match.group("metric")


def _header_parts(header: str) -> tuple[str, str | None]:
    match = _UNIT_RE.match(header)
    if match:
        return match.group("base").strip().lower(), match.group("unit").strip()
    return header.strip().lower(), None


def _unit_scale(unit: str | None, path: Path, column: str) -> Decimal:
    if unit is None or unit == "":
        return Decimal(1)
    text = unit.strip().lower()
    if text in _UNIT_SCALE:
        return Decimal(_UNIT_SCALE[text])
    match = re.fullmatch(r"(?:1e\+?(\d+)|10\^(\d+))", text)
    if match:
        return Decimal(10) ** int(match.group(1) or match.group(2))
    raise InputError(
        f"unknown unit ({unit}) in column header; expected K, M, B, T or 1E<n>",
        path=path,
        line=1,
        field=column,
    )


def find_column(columns: Sequence[str], role: str) -> str | None:
    for column in columns:
        if _header_parts(column)[0] in _ROLES[role]:
            return column
    return None


#: cells that hold no value (any case): a score not reported, a size not known
EMPTY_CELLS = ("", "nan", "na", "n/a", "null", "none")


def empty_cells(cells: pd.Series) -> pd.Series:
    """Which (stripped) cells of a text column are :data:`EMPTY_CELLS`."""
    return cells.str.lower().isin(EMPTY_CELLS)


def cell_number(
    text: str,
    path: Path,
    line: int,
    column: str,
    *,
    scale: Decimal = Decimal(1),
    sizes: bool = False,
) -> float | None:
    """A CSV cell as a number times ``scale``; None for an empty cell (:data:`EMPTY_CELLS`).

    ``sizes`` also reads sizes such as ``1.4b``. Anything else, infinities included,
    is an :class:`InputError` naming the file, line and column.
    """
    text = text.strip()
    if text.lower() in EMPTY_CELLS:
        return None
    try:  # Decimal reads "1_000" as Python does; a number in a table has no underscores
        value = None if "_" in text else Decimal(text)
    except ArithmeticError:
        value = None
    if value is None or not value.is_finite():
        if sizes and re.fullmatch(r"[\d.,]+\s*[kmbgt]\d*", text, re.I):
            return parse_size(text)
        raise InputError(
            f"expected a number, got {text[:40]!r}", path=path, line=line, field=column
        )
    number = float(value * scale)
    if not math.isfinite(number):
        raise InputError(
            f"{text[:40]!r} is too large for a number", path=path, line=line, field=column
        )
    return number


def read_wide_frame(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The CSV as strings (empty cells ``""``); :class:`InputError` naming the line when
    unreadable. ``frame.attrs["lines"]`` holds the line each row starts on."""
    p = regular_file(path)
    rows = iter_csv_rows(p)
    _, header = next(rows)
    lines, records = [], []
    for line, cells in rows:
        lines.append(line)
        records.append(cells)
    frame = pd.DataFrame(records, columns=header, dtype=object)
    frame = frame.astype(str) if len(frame) else frame.astype(object)
    frame.attrs["lines"] = lines
    return frame


def _line(frame: pd.DataFrame, offset: int) -> int:
    lines = frame.attrs.get("lines")
    return int(lines[offset]) if lines is not None else offset + 2


def _is_numeric_column(values: pd.Series) -> bool:
    cells = values.str.strip()
    cells = cells[~empty_cells(cells)]
    if cells.empty:
        return False
    return bool(pd.to_numeric(cells, errors="coerce").notna().all())


def _refuse_mostly_numeric(frame: pd.DataFrame, column: str, path: Path) -> None:
    """A score column with a stray text cell would be dropped whole as "not a score":
    refuse it instead, naming the cell. A column counts as a score column when its
    name ends in a known metric or most of its cells are numbers."""
    cells = frame[column].str.strip()
    filled = ~empty_cells(cells)
    numeric = pd.to_numeric(cells.where(filled, "0"), errors="coerce").notna()
    text = filled & ~numeric
    n_numbers = int((filled & numeric).sum())
    if not text.any() or n_numbers == 0:
        return
    score_named = split_score_column(column)[1] != "score"
    if score_named or n_numbers > int(text.sum()):
        offset = int(text.to_numpy().nonzero()[0][0])
        raise InputError(
            f"expected a number, got {cells.iloc[offset][:40]!r} (the column's other cells "
            "are numbers; write an empty cell for a missing score)",
            path=path,
            line=_line(frame, offset),
            field=column,
        )


class _Meta:
    """Model metadata (family, params, flops, tokens) keyed by model name."""

    def __init__(self, rows: dict[str, dict[str, Any]]) -> None:
        self.rows = rows

    def get(self, model: str) -> dict[str, Any]:
        if model in self.rows:
            return self.rows[model]
        short = short_name(model)
        for key, value in self.rows.items():
            if short_name(key) == short:
                return value
        return {}


def _model_info(
    frame: pd.DataFrame,
    path: Path,
    *,
    model_col: str,
    family_col: str | None,
    params_col: str | None,
    flops_col: str | None,
    tokens_col: str | None,
) -> dict[str, dict[str, Any]]:
    """Per-row model metadata in raw units, keyed by model, with line numbers."""
    scales = {
        role: _unit_scale(_header_parts(col)[1], path, col)
        for role, col in (("params", params_col), ("flops", flops_col), ("tokens", tokens_col))
        if col is not None
    }
    if params_col is not None and _header_parts(params_col)[1] in (None, ""):
        numbers = pd.to_numeric(frame[params_col].str.strip(), errors="coerce").dropna()
        if not numbers.empty and numbers.max() < 1e4:
            raise InputError(
                f"column {params_col!r} has no unit and its largest value is {numbers.max():g}; "
                "write the unit in the header, e.g. 'params (B)', or give raw counts",
                path=path,
                line=1,
                field=params_col,
            )
    info: dict[str, dict[str, Any]] = {}
    for offset, row in enumerate(frame.to_dict("records")):
        line = _line(frame, offset)
        model = str(row[model_col]).strip()
        if not model:
            raise InputError("missing model name", path=path, line=line, field=model_col)
        if model in info:
            raise InputError(
                f"model {model!r} appears twice (first on line {info[model]['line']})",
                path=path,
                line=line,
                field=model_col,
            )
        entry: dict[str, Any] = {"line": line}
        if family_col is not None and str(row[family_col]).strip():
            entry["family"] = str(row[family_col]).strip()
        for role, col in (("params", params_col), ("flops", flops_col), ("tokens", tokens_col)):
            if col is None:
                continue
            value = cell_number(
                str(row[col]), path, line, col, scale=scales[role], sizes=role == "params"
            )
            if value is not None and value <= 0:
                raise InputError(f"must be > 0, got {row[col]!r}", path=path, line=line, field=col)
            if value is not None:
                entry[role] = value
        info[model] = entry
    return info


def _load_meta(meta: Any, path: Path) -> _Meta | None:
    if meta is None or meta is False:
        return None
    if isinstance(meta, _Meta):
        return meta
    if isinstance(meta, pd.DataFrame):
        frame, meta_path = meta.astype(str).where(meta.notna(), ""), path
    else:
        meta_path = Path(meta)
        frame = read_wide_frame(meta_path)
    columns = list(frame.columns)
    model_col = find_column(columns, "model")
    if model_col is None:
        raise InputError("model metadata file has no model column", path=meta_path, line=1)
    info = _model_info(
        frame,
        meta_path,
        model_col=model_col,
        family_col=find_column(columns, "family"),
        params_col=find_column(columns, "params"),
        flops_col=find_column(columns, "flops"),
        tokens_col=find_column(columns, "tokens"),
    )
    return _Meta(info)


def wide_records(
    path: str | os.PathLike[str],
    *,
    model_col: str | None = None,
    family_col: str | None = None,
    params_col: str | None = None,
    flops_col: str | None = None,
    tokens_col: str | None = None,
    metric_cols: Sequence[str] | Mapping[str, tuple[str, str]] | None = None,
    id_cols: Sequence[str] = (),
    meta: Any = "auto",
    on_size_clash: str = "split",
) -> tuple[list[dict[str, Any]], list[str]]:
    """Score records of one wide CSV (unvalidated) and the notes about dropped or moved rows."""
    p = Path(path)
    if on_size_clash not in ("split", "error"):
        raise ValueError("on_size_clash must be 'split' or 'error'")
    frame = read_wide_frame(p)
    columns = list(frame.columns)
    for given in (model_col, family_col, params_col, flops_col, tokens_col, *id_cols):
        if given is not None and given not in columns:
            raise InputError("no such column", path=p, line=1, field=given)
    model_col = model_col or find_column(columns, "model")
    if model_col is None:
        raise InputError(
            "no model column (expected 'Model', 'model' or 'model_name'; or pass model_col=)",
            path=p,
            line=1,
            field="model",
        )
    family_col = family_col or find_column(columns, "family")
    params_col = params_col or find_column(columns, "params")
    flops_col = flops_col or find_column(columns, "flops")
    tokens_col = tokens_col or find_column(columns, "tokens")
    if frame.empty:
        raise InputError("no rows below the header", path=p)

    info = _model_info(
        frame,
        p,
        model_col=model_col,
        family_col=family_col,
        params_col=params_col,
        flops_col=flops_col,
        tokens_col=tokens_col,
    )
    if isinstance(meta, str) and meta == "auto":
        sibling = p.parent / OBSSCALING_META
        meta = (
            sibling
            if (family_col is None or params_col is None)
            and sibling.exists()
            and sibling.resolve() != p.resolve()
            else None
        )
    meta_info = _load_meta(meta, p)

    notes: list[str] = []
    no_size: list[str] = []
    mismatched: list[str] = []
    unnamed: list[str] = []  # sized models with no family given and none in their names
    for model, entry in info.items():
        extra = meta_info.get(model) if meta_info is not None else {}
        for role in ("family", "params", "flops", "tokens"):
            if role not in entry and role in extra:
                entry[role] = extra[role]
        if "params" not in entry:
            guess = size_from_name(model)
            if guess is None:
                no_size.append(model)
                continue
            entry["params"] = guess
        named = size_from_name(model)
        if named is not None and max(named, entry["params"]) > 1.5 * min(named, entry["params"]):
            mismatched.append(f"{model} ({entry['params']:.4g} vs name {named:.4g})")
        if "family" not in entry and family_in_name(model) is None:
            unnamed.append(model)
        entry.setdefault("family", family_from_name(model))
    grouped = folder_family(
        (Unnamed(m, info[m]["params"], None, p) for m in unnamed), override="a family column"
    )
    if grouped is not None:
        for model in unnamed:
            info[model]["family"] = grouped[0]
        notes.append(f"{p.name}: {grouped[1]}")
    if no_size:
        dropped = f"{p.name}: dropped {len(no_size)} model(s) with no size: {', '.join(no_size)}"
        notes.append(dropped)
        log.warning(dropped)
    if mismatched:
        notes.append(
            f"{p.name}: published size differs from the name's size token for "
            f"{len(mismatched)} model(s), kept as published: {', '.join(mismatched)}"
        )

    # one size per family: split or refuse clashes
    sizes = ModelSizes()
    for model, entry in info.items():
        if "params" not in entry:
            continue
        where = f"line {entry['line']}"
        clash = sizes.add(entry["family"], model, None, entry["params"], where)
        if clash is None:
            continue
        if on_size_clash == "error":
            raise InputError(clash, path=p, line=entry["line"], field=params_col or "params")
        other = sizes.other_of(entry["family"], entry["params"])
        new_family = f"{entry['family']} ({short_name(model)})"
        notes.append(
            f"{p.name}: {model!r} has the same size as {other!r} in family "
            f"{entry['family']!r}; moved to family {new_family!r}"
        )
        entry["family"] = new_family
        sizes.add(new_family, model, None, entry["params"], where)

    # score columns
    reserved = {model_col, family_col, params_col, flops_col, tokens_col, *id_cols} - {None}
    if metric_cols is None:
        for column in columns:
            if column not in reserved:
                _refuse_mostly_numeric(frame, column, p)
        chosen = [c for c in columns if c not in reserved and _is_numeric_column(frame[c])]
        mapping = {c: split_score_column(c) for c in chosen}
    elif isinstance(metric_cols, Mapping):
        mapping = {c: (str(t), str(m)) for c, (t, m) in metric_cols.items()}
    else:
        mapping = {c: split_score_column(c) for c in metric_cols}
    for column in mapping:
        if column not in columns:
            raise InputError("no such column", path=p, line=1, field=column)
    if not mapping:
        raise InputError("no numeric score columns", path=p, line=1)
    pairs = list(mapping.values())
    if len(set(pairs)) != len(pairs):
        dup = next(pair for pair in pairs if pairs.count(pair) > 1)
        raise InputError(
            f"two columns map to the same task and metric {dup}", path=p, line=1, field=dup[1]
        )

    records: list[dict[str, Any]] = []
    models = frame[model_col].str.strip().tolist()
    for column, (task, metric) in mapping.items():
        fact = fact_of(metric)
        higher = None if fact is None else fact.higher_is_better
        cells = frame[column].tolist()
        for offset, (model, cell) in enumerate(zip(models, cells, strict=True)):
            entry = info[model]
            if "params" not in entry:
                continue
            value = cell_number(str(cell), p, _line(frame, offset), column)
            if value is None or not math.isfinite(value):
                continue
            problem = score_value_problem(metric, value)
            if problem is not None:  # named at its cell, not as a row of the table built
                raise InputError(problem, path=p, line=_line(frame, offset), field=column)
            records.append(
                {
                    "task": task,
                    "family": entry["family"],
                    "model": model,
                    "params": entry["params"],
                    "compute_flops": entry.get("flops"),
                    "tokens_trained": entry.get("tokens"),
                    "step": None,
                    "metric": metric,
                    "value": value,
                    "ci_low": None,
                    "ci_high": None,
                    "n": None,
                    "ci_method": None,
                    "stderr": None,
                    "higher_is_better": higher,
                }
            )
    for note in notes[1 if no_size else 0 :]:
        log.info(note)
    return records, notes


def load_wide_csv(
    path: str | os.PathLike[str],
    *,
    model_col: str | None = None,
    family_col: str | None = None,
    params_col: str | None = None,
    flops_col: str | None = None,
    tokens_col: str | None = None,
    metric_cols: Sequence[str] | Mapping[str, tuple[str, str]] | None = None,
    id_cols: Sequence[str] = (),
    meta: Any = "auto",
    on_size_clash: str = "split",
) -> pd.DataFrame:
    """Load a wide CSV as a validated scores table; see the module docstring.

    Parameters
    ----------
    model_col, family_col, params_col, flops_col, tokens_col
        Column names, when the headers are not recognised automatically.
    metric_cols
        Score columns (names, split into task and metric by
        :func:`split_score_column`), or a mapping ``{column: (task, metric)}``.
        Default: every other all-numeric column.
    id_cols
        Further columns that are not scores.
    meta
        ``"auto"`` (ObsScaling sibling file), a path or frame of model
        metadata, or ``None`` for none.
    on_size_clash
        ``"split"`` or ``"error"``: what to do when two models of one family
        have the same size.

    The notes (dropped models, moved models, suspicious sizes) are in
    ``frame.attrs["notes"]``.
    """
    records, notes = wide_records(
        path,
        model_col=model_col,
        family_col=family_col,
        params_col=params_col,
        flops_col=flops_col,
        tokens_col=tokens_col,
        metric_cols=metric_cols,
        id_cols=id_cols,
        meta=meta,
        on_size_clash=on_size_clash,
    )
    if not records:
        raise InputError("no scores: every model lacks a size or every cell is empty", path=path)
    frame = validate_frame(pd.DataFrame.from_records(records), SCORES, path=path)
    frame.attrs["notes"] = notes
    return frame
