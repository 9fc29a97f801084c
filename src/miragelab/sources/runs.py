"""Training-log exports (one row per evaluated checkpoint) -> the scores table.

A W&B or TensorBoard export of a training run holds one row per evaluated
checkpoint and one column per logged value. Each run is a model (``model`` =
the run's name, e.g. ``1B-5xC``); a *manifest* gives what the logs do not:

Manifest (CSV)
--------------
``run, params, flops_per_token`` and, optionally, ``file``, ``tokens`` and
``replicate_of``:

* ``run``: the run's name; its export is the input file named ``file``, else
  the one whose name without ``.csv`` is the run;
* ``params``: parameters (a number or a size such as ``1.3b``);
* ``flops_per_token``: training FLOPs per token, so ``compute_flops`` is
  ``flops_per_token x tokens`` (empty: no compute);
* ``tokens``: the run's training tokens, used for a file that logs neither
  tokens nor steps (a final-only export holds one row);
* ``replicate_of``: the run this one repeats with another seed (same params and
  tokens); the analysis treats the two as replicates of one model.

Checkpoints
-----------
``step`` is the first of :data:`STEP_COLUMNS` present. Tokens per checkpoint
come from the first of :data:`TOKENS_COLUMNS` present, else ``step x
batch_size_in_tokens``, else the manifest's ``tokens`` (a file with one row and
no step column only).

Metric columns
--------------
A column whose whole name matches one of the patterns becomes (task, metric),
the task being the pattern's ``task`` group. The default,
:data:`DEFAULT_PATTERNS`, reads the OLMo ladder's exports:

* ``eval/downstream/<task>_len_norm`` -> ``acc_norm``; ``..._acc`` -> ``acc``;
* ``eval/downstream_bpb/<task>_bpb`` -> ``bpb``;
* ``eval/downstream_soft/<task>_soft`` -> ``soft`` (the probability of the
  correct choice, normalised over the choices);
* ``eval/downstream_soft_log/<task>_soft_log`` -> ``soft_log`` (its log);
* ``eval/<set>/CrossEntropyLoss`` -> (``<set>``, ``cross_entropy``).

``patterns`` replaces them (``REGEX=METRIC`` on the command line). Every other
column (learning rate, throughput) is not a score. An empty or ``nan`` cell is a
value not logged at that checkpoint. ``averages`` adds tasks that are the plain
mean of others (MMLU's four subsets), at the checkpoints where every part has
the metric. Each metric gets its direction from
:mod:`miragelab.metric_facts` or from ``directions``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from miragelab.errors import InputError
from miragelab.metric_facts import metric_direction
from miragelab.schema import SCORES, BadValue, SourceLines, coerce_value, validate_frame
from miragelab.sources.wide_csv import cell_number, empty_cells, read_wide_frame
from miragelab.textio import regular_file

__all__ = [
    "DEFAULT_PATTERNS",
    "STEP_COLUMNS",
    "TOKENS_COLUMNS",
    "Run",
    "OLMO_MMLU",
    "load_runs",
    "load_shipped_ladder",
    "parse_averages",
    "parse_patterns",
    "read_manifest",
]

DEFAULT_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"eval/downstream/(?P<task>.+)_len_norm", "acc_norm"),
    (r"eval/downstream/(?P<task>.+)_acc", "acc"),
    (r"eval/downstream_bpb/(?P<task>.+)_bpb", "bpb"),
    (r"eval/downstream_soft_log/(?P<task>.+)_soft_log", "soft_log"),
    (r"eval/downstream_soft/(?P<task>.+)_soft", "soft"),
    (r"eval/(?P<task>[^/]+)/CrossEntropyLoss", "cross_entropy"),
)
STEP_COLUMNS = ("_step", "step", "global_step", "trainer/global_step")
TOKENS_COLUMNS = ("throughput/total_tokens", "tokens", "tokens_trained", "total_tokens")
BATCH_COLUMNS = ("batch_size_in_tokens", "batch_tokens")


@dataclass(frozen=True)
class Run:
    """One manifest row: a training run and what its logs do not say."""

    name: str
    params: float
    flops_per_token: float | None
    file: str | None = None
    tokens: float | None = None
    replicate_of: str | None = None
    line: int = 0


def _positive(
    text: str, path: Path, line: int, column: str, *, sizes: bool = False
) -> float | None:
    """A cell that is empty (None) or a number > 0."""
    value = cell_number(text, path, line, column, sizes=sizes)
    if value is not None and not value > 0:
        raise InputError(f"must be > 0, got {text.strip()!r}", path=path, line=line, field=column)
    return value


MANIFEST_COLUMNS = ("run", "params", "flops_per_token", "file", "tokens", "replicate_of")


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Run]:
    """The runs of a manifest CSV, by name (see the module docstring)."""
    p = regular_file(path)
    frame = read_wide_frame(p)
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in frame.columns:
        if column not in MANIFEST_COLUMNS:
            raise InputError(
                f"unknown column {column!r} (known: {', '.join(MANIFEST_COLUMNS)})",
                path=p,
                line=1,
                field=column,
            )
    for column in MANIFEST_COLUMNS[:3]:
        if column not in frame.columns:
            raise InputError(f"the manifest has no {column!r} column", path=p, line=1, field=column)
    if frame.empty:
        raise InputError("the manifest lists no run", path=p)
    runs: dict[str, Run] = {}
    files: dict[str, str] = {}
    for line, row in zip(frame.attrs["lines"], frame.to_dict("records"), strict=True):
        cell = {c: str(row.get(c, "")).strip() for c in MANIFEST_COLUMNS}
        name = cell["run"]
        if not name:
            raise InputError("a run needs a name", path=p, line=line, field="run")
        try:  # a run is a model: the tables' name rule
            coerce_value(name, SCORES.field("model"))
        except BadValue as exc:
            raise InputError(str(exc), path=p, line=line, field="run") from None
        if name in runs:
            raise InputError(
                f"run {name!r} is given twice (also line {runs[name].line})",
                path=p,
                line=line,
                field="run",
            )
        params = cell_number(cell["params"], p, line, "params", sizes=True)
        if params is None or params < 1:
            raise InputError(
                f"a run's params must be >= 1, got {cell['params']!r}",
                path=p,
                line=line,
                field="params",
            )
        file = cell["file"] or None
        if file is not None:
            if file in files:
                raise InputError(
                    f"file {file!r} is given to runs {files[file]!r} and {name!r}",
                    path=p,
                    line=line,
                    field="file",
                )
            files[file] = name
        runs[name] = Run(
            name,
            params,
            _positive(cell["flops_per_token"], p, line, "flops_per_token"),
            file,
            _positive(cell["tokens"], p, line, "tokens", sizes=True),
            cell["replicate_of"] or None,
            line,
        )
    for run in runs.values():
        if run.replicate_of is not None and run.replicate_of not in runs:
            raise InputError(
                f"run {run.name!r} is a replicate_of {run.replicate_of!r}, which the manifest "
                "does not list",
                path=p,
                line=run.line,
                field="replicate_of",
            )
    return runs


def parse_patterns(items: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``["REGEX=METRIC", ...]`` -> ``((REGEX, METRIC), ...)``; each regex must compile and
    have a ``(?P<task>...)`` group."""
    out = []
    for item in items:
        regex, sep, metric = str(item).rpartition("=")
        if not sep or not regex or not metric.strip():
            raise InputError(f"expected REGEX=METRIC, got {item!r}", field="column")
        try:
            compiled = re.compile(regex)
        except re.error as exc:
            raise InputError(
                f"not a regular expression: {regex!r} ({exc})", field="column"
            ) from None
        if "task" not in compiled.groupindex:
            raise InputError(f"{regex!r} has no (?P<task>...) group", field="column")
        out.append((regex, metric.strip()))
    return tuple(out)


def parse_averages(items: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """``["NAME=task1,task2", ...]`` -> ``{NAME: (task1, task2)}``."""
    out: dict[str, tuple[str, ...]] = {}
    for item in items:
        name, sep, parts = str(item).partition("=")
        tasks = tuple(t.strip() for t in parts.split(",") if t.strip())
        if not sep or not name.strip() or len(tasks) < 2:
            raise InputError(
                f"expected NAME=task1,task2,... (two tasks or more), got {item!r}", field="average"
            )
        if name.strip() in out:
            raise InputError(f"average {name.strip()!r} given twice", field="average")
        if len(set(tasks)) != len(tasks):
            raise InputError(f"average {name.strip()!r} names a task twice", field="average")
        out[name.strip()] = tasks
    return out


def _first(header: Sequence[str], names: Sequence[str]) -> str | None:
    return next((n for n in names if n in header), None)


def _metric_columns(
    header: Sequence[str], patterns: Sequence[tuple[str, str]]
) -> dict[str, tuple[str, str]]:
    """``{column: (task, metric)}`` for the columns a pattern matches whole (first wins)."""
    compiled = [(re.compile(regex), metric) for regex, metric in patterns]
    found = {}
    for name in header:
        for regex, metric in compiled:
            match = regex.fullmatch(name)
            if match is not None and match.group("task"):
                found[name] = (match.group("task"), metric)
                break
    return found


def _numbers(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """A column of cells as floats, NaN where empty; the first cell that is not a number
    (or is infinite) raises :func:`~miragelab.sources.wide_csv.cell_number`'s error."""
    cells = frame[column].str.strip()
    empty = empty_cells(cells)
    values = pd.to_numeric(cells.where(~empty, "nan"), errors="coerce").to_numpy(dtype=float)
    bad = ~empty.to_numpy() & ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        cell_number(cells.iloc[row], path, frame.attrs["lines"][row], column)
    return values


def _read_run(path: Path, run: Run, patterns: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """One export as long rows: line, step, tokens_trained, task, metric, value."""
    frame = read_wide_frame(path)
    header = list(frame.columns)
    metrics = _metric_columns(header, patterns)
    if not metrics:
        raise InputError(
            f"no column is a score (none matches the metric patterns, e.g. {patterns[0][0]!r})",
            path=path,
            line=1,
        )
    if frame.empty:
        raise InputError("no checkpoints: the file has a header only", path=path)
    lines = np.asarray(frame.attrs["lines"])
    step_col = _first(header, STEP_COLUMNS)
    tokens_col = _first(header, TOKENS_COLUMNS)
    batch_col = _first(header, BATCH_COLUMNS)
    steps = np.full(len(frame), np.nan)
    if step_col is None:
        if len(frame) > 1:
            raise InputError(
                f"{len(frame)} checkpoints but no step column (one of {', '.join(STEP_COLUMNS)})",
                path=path,
                line=1,
            )
    else:
        steps = _numbers(frame, step_col, path)
        bad = np.flatnonzero(~((steps >= 0) & (steps < 2.0**63)) | (steps != np.floor(steps)))
        if bad.size:
            raise InputError(
                f"a step is a whole number in 0..2**63-1, got {frame[step_col].iloc[bad[0]]!r}",
                path=path,
                line=int(lines[bad[0]]),
                field=step_col,
            )
        repeat = pd.Series(steps).duplicated().to_numpy()
        if repeat.any():
            row = int(np.flatnonzero(repeat)[0])
            first = int(lines[np.flatnonzero(steps == steps[row])[0]])
            raise InputError(
                f"step {steps[row]:.0f} is logged twice (also line {first})",
                path=path,
                line=int(lines[row]),
                field=step_col,
            )
    tokens = np.full(len(frame), np.nan)
    if tokens_col is not None:
        tokens = _numbers(frame, tokens_col, path)
    if batch_col is not None:
        tokens = np.where(np.isnan(tokens), steps * _numbers(frame, batch_col, path), tokens)
    if step_col is None and run.tokens is not None:
        tokens = np.where(np.isnan(tokens), run.tokens, tokens)
    bad = np.flatnonzero(~(tokens > 0))
    if bad.size:
        given = tokens[bad[0]]
        raise InputError(
            f"training tokens must be > 0, got {given:g}"
            if np.isfinite(given)
            else "no training tokens for this checkpoint (a tokens column, step x "
            "batch_size_in_tokens, or the manifest's tokens for a one-row file)",
            path=path,
            line=int(lines[bad[0]]),
            field=tokens_col or TOKENS_COLUMNS[0],
        )
    columns = list(metrics)
    values = np.column_stack([_numbers(frame, c, path) for c in columns])
    r_idx, c_idx = np.nonzero(~np.isnan(values))
    return pd.DataFrame(
        {
            "line": lines[r_idx],
            "step": pd.array(
                [None if np.isnan(v) else int(v) for v in steps[r_idx]], dtype="Int64"
            ),
            "tokens_trained": tokens[r_idx],
            "task": [metrics[columns[c]][0] for c in c_idx],
            "metric": [metrics[columns[c]][1] for c in c_idx],
            "value": values[r_idx, c_idx],
        }
    )


def _match_files(
    paths: Sequence[str | os.PathLike[str]], runs: Mapping[str, Run]
) -> dict[str, Path]:
    """Each manifest run's export among ``paths`` (files, or folders of ``*.csv``)."""
    by_file = {r.file: r.name for r in runs.values() if r.file is not None}
    found: dict[str, Path] = {}
    for given in paths:
        p = Path(given)
        folder = p.is_dir()
        candidates = sorted(p.glob("*.csv")) + sorted(p.glob("*.csv.gz")) if folder else [p]
        for f in candidates:
            stem = f.name[: -len(".csv.gz")] if f.name.endswith(".csv.gz") else f.stem
            name = by_file.get(f.name)
            if name is None and stem in runs and runs[stem].file is None:
                name = stem
            if name is None:
                if folder:
                    continue  # a folder may hold runs this manifest does not use
                raise InputError("no run of the manifest names this file", path=f)
            if name in found and found[name] != f:
                raise InputError(f"two files for run {name!r}: {found[name]} and this one", path=f)
            found[name] = regular_file(f)
    missing = [r for r in runs if r not in found]
    if missing:
        want = runs[missing[0]].file or f"{missing[0]}.csv"
        raise InputError(
            f"no file for run {missing[0]!r} (expected {want!r} among the inputs)",
            field="file",
        )
    return found


def load_runs(
    paths: Sequence[str | os.PathLike[str]],
    manifest: str | os.PathLike[str],
    family: str,
    *,
    patterns: Sequence[tuple[str, str]] = DEFAULT_PATTERNS,
    averages: Mapping[str, Sequence[str]] | None = None,
    directions: Mapping[str, bool] | None = None,
) -> pd.DataFrame:
    """Training-log exports of the manifest's runs as one validated scores table.

    Parameters
    ----------
    paths
        Export CSVs, or folders of them.
    manifest
        The runs' CSV manifest (see the module docstring).
    family
        The family of every run (one ladder).
    patterns
        ``(regex, metric)`` pairs mapping columns to (task, metric).
    averages
        ``{name: tasks}``: tasks added as the plain mean of others.
    directions
        ``{metric: higher_is_better}`` for metrics not in the metric facts.
    """
    runs = read_manifest(manifest)
    files = _match_files(paths, runs)
    frames, file_names = [], []
    for i, (name, path) in enumerate(files.items()):
        rows = _read_run(path, runs[name], patterns)
        rows["model"] = name
        rows["file"] = i
        frames.append(rows)
        file_names.append(str(path))
    table = pd.concat(frames, ignore_index=True)
    if averages:
        table = pd.concat([table, _averages(table, averages)], ignore_index=True)
    higher = {}
    for metric in pd.unique(table["metric"]):
        try:
            higher[metric] = metric_direction(metric, directions)
        except InputError:
            raise InputError(
                f"metric {metric!r} has no known direction; give it with "
                f"--higher-is-better {metric}=true|false",
                field="higher-is-better",
            ) from None
    run_of = table["model"].map(runs)
    tokens = table["tokens_trained"].to_numpy(dtype=float)
    flops = np.array([r.flops_per_token or np.nan for r in run_of], dtype=float)
    frame = pd.DataFrame(
        {
            "task": table["task"],
            "family": family,
            "model": table["model"],
            "params": [r.params for r in run_of],
            "compute_flops": flops * tokens,
            "tokens_trained": tokens,
            "step": table["step"],
            "replicate_of": [r.replicate_of for r in run_of],
            "metric": table["metric"],
            "value": table["value"],
            "higher_is_better": table["metric"].map(higher).astype(bool),
        }
    )
    origin = SourceLines(
        table["line"].to_numpy(dtype=int), file_names, table["file"].to_numpy(dtype=int)
    )
    out = validate_frame(frame, SCORES, path=manifest, origin=origin, unit="line")
    return out


def _averages(table: pd.DataFrame, averages: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Rows of each averaged task: the mean over its parts at the checkpoints and metrics
    where every part has a value."""
    tasks = set(table["task"])
    out = []
    for name, parts in averages.items():
        if name in tasks:
            raise InputError(
                f"average {name!r} has the name of a task in the files", field="average"
            )
        absent = [t for t in parts if t not in tasks]
        if absent:
            raise InputError(
                f"average {name!r}: no task {absent[0]!r} in the files", field="average"
            )
        rows = table[table["task"].isin(parts)]
        keys = ["model", "file", "step", "tokens_trained", "metric"]
        grouped = rows.groupby(keys, dropna=False, sort=False)
        summary = grouped.agg(
            value=("value", "mean"), parts=("task", "nunique"), line=("line", "min")
        )
        summary = summary[summary["parts"] == len(parts)].reset_index()
        if summary.empty:
            raise InputError(
                f"average {name!r}: no checkpoint has a metric for all of {', '.join(parts)}",
                field="average",
            )
        summary["task"] = name
        out.append(summary.drop(columns="parts"))
    return pd.concat(out, ignore_index=True)


#: MMLU of the OLMo ladder: the plain mean of its four subsets, as the source averages them
OLMO_MMLU = {
    "mmlu": tuple(
        f"mmlu_{part}_test_rc_5shot" for part in ("stem", "humanities", "social_sciences", "other")
    )
}


def load_shipped_ladder() -> pd.DataFrame:
    """The OLMo ladder shipped with the package (``data/olmo-ladder/``): every run of its
    manifest as family ``olmo``, with MMLU averaged (:data:`OLMO_MMLU`)."""
    from miragelab.sources.shipped import shipped_data_dir

    root = shipped_data_dir() / "olmo-ladder"
    return load_runs([root / "runs"], root / "manifest.csv", "olmo", averages=OLMO_MMLU)
