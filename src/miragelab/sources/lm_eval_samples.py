"""lm-evaluation-harness ``--log_samples`` files -> the samples table, streamed to parquet.

Users keep the per-sample logs of their lm-eval runs; this module turns them
into samples rows so any metric can rescore them without rerunning a model.

Formats read (all of lm-eval 0.4.x)
-----------------------------------
* **0.4.3 and later**: ``samples_<task>_<date>.jsonl``, one JSON object per line
  with ``doc_id``, ``doc``, ``target`` (stringified), ``arguments``
  (``{"gen_args_0": {"arg_0": context, "arg_1": continuation or generation
  kwargs}, ...}``), ``resps`` and ``filtered_resps`` whose leaves are strings
  (``[["-2.71", "False"], ...]``), ``filter``, ``metrics`` and the per-sample
  metric values (``acc``, ``exact_match``, ...). The run's
  ``results_<date>.json`` sits in the same folder.
* **0.4.2**: ``samples_<task>_<date>.json``, **0.4.0/0.4.1**:
  ``<model_args>_<task>.jsonl`` next to ``results.json``: one JSON *array* of
  the same objects, with ``arguments`` as ``[[context, continuation], ...]``
  and numeric leaves (``[[-2.71, false]]``). Such a file is one JSON document,
  so it is parsed whole (not streamed); line numbers are still reported.

Leaves may be strings or numbers/booleans in any version: both are accepted.

What maps where (one row per sample)
------------------------------------
The request type is read from ``arguments`` (the same for every sample of a task):

* **generation** (``generate_until``, ``arg_1`` is a dict of generation
  kwargs): ``prompt`` = ``arg_0``, ``target`` = ``target``, ``prediction`` =
  ``filtered_resps[0]`` (the text lm-eval scored, after its filters). A
  multi-target task (TriviaQA, NQ-Open: ``target`` is a list of golds) keeps
  every gold in ``references`` and the first as ``target``; string metrics
  then count the best match, as lm-eval does. A generation task with
  ``doc_to_choice`` logs the index of the right choice: ``target`` is that
  choice's text (see :mod:`~miragelab.sources.lm_eval_choices`).
* **multiple choice** (two or more ``loglikelihood`` requests): ``prompt`` =
  the shared context, ``choice_logprobs`` = the log-likelihood of each choice
  (``filtered_resps[i][0]``), ``correct_choice`` = the target index, ``target``
  = the text of the correct choice. The target is an index when it is an
  integer (or a digit string below the number of choices), otherwise the
  choice whose continuation equals it (with the task's ``target_delimiter``).
  A multi-target task (a list of golds, or its ``str()``) gives the first
  gold as ``correct_choice`` and a 1 per gold in ``choice_is_correct``.
  Tasks with ``acc_mutual_info`` keep only the conditional half of the
  requests. Multiple-input tasks (Winogrande style: one continuation, several
  contexts) log the continuation as target, not the index; with two choices the
  index follows from the logged ``acc``, otherwise the sample is rejected.
* **single loglikelihood** (one request, e.g. LAMBADA) and
  **loglikelihood_rolling** (perplexity): lm-eval logs only the *total*
  log-probability of the continuation, which cannot be split per token.
  ``target_token_logprobs`` stays null, because a one-element list would make
  the per-token metrics (``target_logprob_mean``, ``per_token_prob``,
  ``cross_entropy``) treat a whole continuation as one token. The total goes to
  ``continuation_logprob`` and lm-eval's ``is_greedy`` to
  ``continuation_is_greedy`` (scored by the metrics of the same name and
  ``greedy_match``); ``prompt``/``target`` are the context and the
  continuation.

Names: ``task`` is the task of the file name, with ``@<K>shot`` when the
results say K > 0 shots (as :mod:`~miragelab.sources.lm_eval_results` names
scores) and ``[<filter>]`` for a filter other than ``none``
(``gsm8k[strict-match]``); ``example_id`` is ``doc_id``. ``model``,
``family``, ``params`` and ``step`` come from the matching results file as in
:mod:`~miragelab.sources.lm_eval_results` (``pretrained=`` of
``config.model_args``, else ``model_name``; ``config.model_num_parameters``),
unless given explicitly. Models whose names give no family (no size token:
``models/w8`` ... ``models/w128``) form one family named after their common
folder (:func:`~miragelab.sources.sizes.folder_family`), said in the summary's notes.

Memory: lines are parsed one by one with orjson into column chunks of
``chunk_rows`` rows, each written as a parquet row group to a temporary file
that is renamed onto the output only when every file is read, so a failure
leaves no output. The only state kept across chunks is one bit-per-id table
per (task, model) for the duplicate check.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from miragelab.atomic import as_created
from miragelab.errors import InputError
from miragelab.parquet_io import parquet_file, parquet_writer
from miragelab.schema import (
    LOGPROB,
    SAMPLES,
    BadValue,
    RowChecker,
    Where,
    arrow_schema,
    check_logprob,
    coerce_value,
    duplicate_message,
    out_of_range,
    value_message,
)
from miragelab.sources.lm_eval_choices import BadChoice, choice_target
from miragelab.sources.lm_eval_results import RunModel, read_json, run_model, shots_of
from miragelab.sources.sizes import Unnamed, family_in_name, folder_family, parse_params
from miragelab.tables import write_table
from miragelab.textio import iter_json_records, regular_file

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "IngestSummary",
    "LmEvalFile",
    "ModelMeta",
    "SamplesWriter",
    "find_lm_eval_files",
    "ingest_lm_eval",
    "parse_lm_eval_record",
    "write_scores_beside",
]

#: the parquet schema of an ingested samples table: the samples table's canonical types
SAMPLES_ARROW = arrow_schema(SAMPLES)

_DATE = re.compile(r"_(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?)$")

GENERATION, CHOICE, LOGLIKELIHOOD, ROLLING = (
    "generation",
    "multiple choice",
    "loglikelihood",
    ("loglikelihood_rolling"),
)


# --------------------------------------------------------------------------- model metadata


#: the model columns shared by every row of a samples file
ModelMeta = RunModel


def model_meta(
    results: dict[str, Any],
    where: Path,
    *,
    model: str | None = None,
    family: str | None = None,
    params: float | str | None = None,
) -> ModelMeta:
    """Model columns from a parsed results file (``{}`` when there is none) and overrides.

    Read by :func:`~miragelab.sources.lm_eval_results.run_model`, as the results
    file itself is, so samples and scores of one run name the model alike.
    ``where`` is the file named in errors: the results file, or the samples file
    when there is none. The ``--params`` option is checked here: a bad value is
    a command-line error, not the file's.
    """
    if params is not None:
        try:
            params = parse_params(params)
        except InputError as exc:
            raise InputError(exc.message, field="params") from None
    hint = "pass --params" if results else "no results_*.json was found; pass --params"
    meta = run_model(
        results,
        where,
        model=model,
        family=family,
        params=params,
        name_from_file=False,
        size_hint=hint,
    )
    for name in ("family", "model"):  # names read from a file: the tables' name rule
        try:
            coerce_value(getattr(meta, name), SAMPLES.field(name))
        except BadValue as exc:
            raise InputError(str(exc), path=where, field=name) from None
    return meta


# --------------------------------------------------------------------------- finding files


@dataclass(frozen=True)
class LmEvalFile:
    """One samples file, its task name and the results file of the same run (if any)."""

    path: Path
    task: str
    results: Path | None


def _results_for(samples: Path, date: str | None) -> Path | None:
    folder = samples.parent
    if date is not None and (folder / f"results_{date}.json").is_file():
        return folder / f"results_{date}.json"
    candidates = sorted(folder.glob("results*.json"))
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        return None
    raise InputError(
        f"{len(candidates)} results files in {folder} and none has the samples' date; "
        "keep one run per folder or pass the model options",
        path=samples,
    )


def _task_of(path: Path, results: Path | None) -> tuple[str, str | None]:
    """Task name and run date from a samples file name."""
    stem = path.name.removesuffix(".gz")
    for suffix in (".jsonl", ".json"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    if stem.startswith("samples_"):
        stem = stem[len("samples_") :]
        match = _DATE.search(stem)
        if match:
            return stem[: match.start()], match.group(1)
        return stem, None
    # 0.4.0/0.4.1: "<model_args>_<task>.jsonl"; the task is a key of the results' configs
    if results is not None:
        configs = read_json(results).get("configs")
        if isinstance(configs, dict):
            tasks = sorted((t for t in configs if stem.endswith(f"_{t}") or stem == t), key=len)
            if tasks:
                return tasks[-1], None
    return stem, None


def find_lm_eval_files(paths: Iterable[str | os.PathLike[str]]) -> list[LmEvalFile]:
    """Samples files (and their results files) from files and folders.

    A folder is searched recursively for ``samples_*.jsonl`` (or ``.jsonl.gz``) and
    ``samples_*.json``, and for the 0.4.0/0.4.1 files named after the tasks
    of a ``results.json`` beside them.
    """
    found: list[LmEvalFile] = []
    seen: set[Path] = set()
    for raw in paths:
        p = regular_file(raw, folder=True)
        if p.is_dir():
            files = sorted(
                {
                    *p.rglob("samples_*.jsonl"),
                    *p.rglob("samples_*.jsonl.gz"),
                    *p.rglob("samples_*.json"),
                }
                | set(_old_style_files(p))
            )
            if not files:
                raise InputError(
                    "no lm-eval samples files (samples_*.jsonl) in this folder", path=p
                )
        else:
            files = [p]
        for f in files:
            f = f.resolve()
            if f in seen:
                continue
            seen.add(f)
            date = None
            if f.name.startswith("samples_"):
                match = _DATE.search(f.name.rsplit(".", 1)[0])
                date = match.group(1) if match else None
            results = _results_for(f, date)
            task, _ = _task_of(f, results)
            found.append(LmEvalFile(f, task, results))
    if not found:
        raise InputError("no lm-eval samples files given")
    return found


def _old_style_files(folder: Path) -> Iterator[Path]:
    for results in folder.rglob("results.json"):
        configs = read_json(results).get("configs")
        if isinstance(configs, dict):
            for f in results.parent.glob("*.jsonl"):
                if any(f.stem.endswith(f"_{t}") for t in configs):
                    yield f


# --------------------------------------------------------------------------- one record


class _Bad(Exception):
    """A field of one record is wrong; the caller adds file and line."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _logprob(value: Any, where: str) -> float:
    """A log-probability leaf: a number or its string (lm-eval >= 0.4.3 stringifies)."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise _Bad(where, f"expected a log-probability, got {_short(value)}") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float: no log-probability (<= 0)
            raise _Bad(where, f"expected a log-probability <= 0, got {_short(value)}") from None
    else:
        raise _Bad(where, f"expected a log-probability, got {type(value).__name__} {_short(value)}")
    try:
        return check_logprob(number)
    except BadValue as exc:
        raise _Bad(where, str(exc)) from None


def _greedy(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("True", "False"):
        return value == "True"
    raise _Bad(where, f"expected True or False, got {_short(value)}")


def _requests(record: dict[str, Any]) -> list[tuple[Any, Any]]:
    """``arguments`` as a list of (arg_0, arg_1) pairs; arg_1 is ``...`` when absent."""
    args = record.get("arguments")
    if args is None:
        raise _Bad("arguments", "missing: the requests sent to the model")
    out: list[tuple[Any, Any]] = []
    if isinstance(args, dict):  # >= 0.4.3: {"gen_args_0": {"arg_0": ..., "arg_1": ...}}
        for i, value in enumerate(args.values()):
            if not isinstance(value, dict) or "arg_0" not in value:
                raise _Bad(f"arguments.gen_args_{i}", "expected an object with 'arg_0'")
            out.append((value["arg_0"], value.get("arg_1", ...)))
    elif isinstance(args, list):  # <= 0.4.2: [[context, continuation], ...]
        for i, value in enumerate(args):
            if not isinstance(value, list) or not value:
                raise _Bad(f"arguments[{i}]", "expected a list [context, continuation]")
            out.append((value[0], value[1] if len(value) > 1 else ...))
    else:
        raise _Bad("arguments", f"expected an object or a list, got {type(args).__name__}")
    if not out:
        raise _Bad("arguments", "no requests")
    return out


def _responses(record: dict[str, Any], n: int) -> tuple[str, list[Any]]:
    """What lm-eval scored for each request: ``filtered_resps``, else ``resps`` unwrapped."""
    if "filtered_resps" in record:
        name, values = "filtered_resps", record["filtered_resps"]
    elif "resps" in record:
        name, values = "resps", record["resps"]
        if isinstance(values, list):
            values = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in values]
    else:
        raise _Bad("resps", "missing: neither 'filtered_resps' nor 'resps' holds the answers")
    if not isinstance(values, list):
        raise _Bad(name, f"expected a list, got {type(values).__name__} {_short(values)}")
    if len(values) != n:
        raise _Bad(name, f"{len(values)} response(s) for {n} request(s)")
    return name, values


def _kind(requests: list[tuple[Any, Any]]) -> str:
    second = requests[0][1]
    if isinstance(second, dict):
        return GENERATION
    if second is ...:
        return ROLLING
    return CHOICE if len(requests) > 1 else LOGLIKELIHOOD


def _text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    raise _Bad(where, f"expected a string, got {type(value).__name__} {_short(value)}")


def _target_text(value: Any, where: str = "target") -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list):
        raise _Bad(where, "several reference answers, where this kind of sample takes one")
    raise _Bad(where, f"expected a string, got {type(value).__name__} {_short(value)}")


def _literal_list(text: str) -> list | None:
    """The list a ``str(list)`` spells (Python literals only), else None."""
    if not (text.startswith("[") and text.endswith("]")):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, list) else None


def listed_golds(text: str) -> list[str] | None:
    """The golds of a target that lm-eval >= 0.4.3 logged as ``str(list_of_golds)``.

    Those versions write every target through ``str()``, so the golds of a
    multi-target task arrive as ``"['Paris', 'paris']"``. A target counts as
    such a list only when it is exactly Python's rendering of a non-empty list
    of strings; a target like ``"[1, 2]"`` (BIG-bench list_functions) stays
    one string.
    """
    if not (text.startswith("['") or text.startswith('["')):
        return None
    value = _literal_list(text)
    if value is None or not value or not all(isinstance(v, str) for v in value):
        return None
    return value if str(value) == text else None


def _generation_targets(value: Any, split_targets: bool = True) -> tuple[str, list[str] | None]:
    """The target and, for a multi-target task (a list of golds), every gold answer.

    lm-eval-harness counts a generation right when it matches any of the golds,
    so they all go to ``references``; the first is the ``target``.
    """
    if isinstance(value, str) and split_targets:
        golds = listed_golds(value)
        value = value if golds is None else golds
    if not isinstance(value, list):
        return _target_text(value), None
    if not value:
        raise _Bad("target", "an empty list of reference answers")
    golds = [_target_text(v, f"target[{i}]") for i, v in enumerate(value)]
    return golds[0], golds


def _correct_choices(
    target: Any, continuations: list[str], delimiter: str
) -> tuple[int, list[float] | None]:
    """The correct choice, and where several are (a multi-target task), a flag per choice.

    lm-eval counts such a question right when the top choice is any gold
    (``acc = pred in gold``); its log (>= 0.4.3) writes the gold list through
    ``str()``, so ``"[0, 2]"`` is read back as the list unless it is a choice.
    """
    if (
        isinstance(target, str)
        and target not in continuations
        and delimiter + target not in continuations
    ):
        listed = _literal_list(target)
        target = target if listed is None else listed
    if not isinstance(target, list):
        return _correct_index(target, continuations, delimiter), None
    if not target:
        raise _Bad("target", "an empty list of correct choices")
    indices = []
    for i, gold in enumerate(target):
        try:
            indices.append(_correct_index(gold, continuations, delimiter))
        except _Bad as bad:
            raise _Bad(f"target[{i}]", bad.message) from None
    if len(set(indices)) == 1:
        return indices[0], None
    flags = [0.0] * len(continuations)
    for index in indices:
        flags[index] = 1.0
    return indices[0], flags


def _correct_index(target: Any, continuations: list[str], delimiter: str) -> int:
    k = len(continuations)
    if isinstance(target, int) and not isinstance(target, bool):
        index = target
    elif isinstance(target, str) and target.strip().isdigit() and int(target) < k:
        index = int(target)
    elif isinstance(target, str):
        for i, cont in enumerate(continuations):
            if cont in (target, delimiter + target) or cont.strip() == target.strip():
                return i
        raise _Bad("target", f"{_short(target)} is neither a choice index nor one of the choices")
    else:
        raise _Bad("target", f"expected a choice index, got {type(target).__name__}")
    if not 0 <= index < k:
        raise _Bad("target", f"choice index {index} but the sample has {k} choices")
    return index


@dataclass
class Parsed:
    """One sample in the columns of the samples table."""

    kind: str
    example_id: str
    filter: str
    prompt: str | None = None
    target: str | None = None
    references: list[str] | None = None
    prediction: str | None = None
    choice_logprobs: list[float] | None = None
    correct_choice: int | None = None
    choice_is_correct: list[float] | None = None  # where several choices are correct
    choice_texts: list[str] | None = None  # request continuations, delimiter included
    continuation_logprob: float | None = None
    continuation_is_greedy: bool | None = None


def parse_lm_eval_record(record: Any, delimiter: str = " ", split_targets: bool = True) -> Parsed:
    """One logged sample -> its samples-table values. Raises ``_Bad`` naming the field.

    ``split_targets``: read a generation target logged as ``str(list)`` as
    its list of golds (see :func:`listed_golds`).
    """
    if not isinstance(record, dict):
        raise _Bad("-", f"expected a JSON object, got {type(record).__name__}")
    doc_id = record.get("doc_id")
    if isinstance(doc_id, bool) or not isinstance(doc_id, int | str):
        raise _Bad(
            "doc_id", "missing" if doc_id is None else f"expected an integer, got {_short(doc_id)}"
        )
    filt = record.get("filter", "none")
    filt = filt if isinstance(filt, str) and filt else "none"
    requests = _requests(record)
    kind = _kind(requests)
    name, resps = _responses(record, len(requests))
    out = Parsed(kind, str(doc_id), filt)
    if kind == GENERATION:
        out.prompt = _text(requests[0][0], "arguments")
        if "target" not in record:
            raise _Bad("target", "missing: the reference answer")
        out.target, out.references = _generation_targets(record["target"], split_targets)
        answer = resps[0]
        if isinstance(answer, list) and len(answer) == 1:
            answer = answer[0]
        out.prediction = _text(answer, f"{name}[0]")
        return out
    if kind in (LOGLIKELIHOOD, ROLLING):
        item = resps[0]
        if isinstance(item, list):
            if not item:
                raise _Bad(f"{name}[0]", "empty response")
            if len(item) > 1:
                out.continuation_is_greedy = _greedy(item[1], f"{name}[0][1]")
            item = item[0]
        out.continuation_logprob = _logprob(item, f"{name}[0]")
        if kind == LOGLIKELIHOOD:
            out.prompt = _text(requests[0][0], "arguments")
            target = record.get("target", requests[0][1])
            out.target = _target_text(target)
        else:
            out.target = _target_text(record.get("target", requests[0][0]))
        return out
    # multiple choice
    k = len(requests)
    if "acc_mutual_info" in record and k % 2 == 0 and all(r[0] == "" for r in requests[k // 2 :]):
        k //= 2
    lls = []
    for i in range(k):
        item = resps[i]
        if isinstance(item, list):
            if not item:
                raise _Bad(f"{name}[{i}]", "empty response")
            lls.append(_logprob(item[0], f"{name}[{i}][0]"))
        else:
            lls.append(_logprob(item, f"{name}[{i}]"))
    continuations = [_text(r[1], f"arguments[{i}]") for i, r in enumerate(requests[:k])]
    contexts = [r[0] for r in requests[:k]]
    if len(set(continuations)) == 1 and len(set(contexts)) == k:  # multiple-input task
        acc = record.get("acc")
        if k != 2 or not isinstance(acc, int | float) or isinstance(acc, bool):
            raise _Bad(
                "target",
                "a multiple-input task logs the continuation, not the correct index, and the "
                "index cannot be recovered (needs two choices and a logged 'acc')",
            )
        best = int(np.argmax(lls))
        out.correct_choice = best if acc >= 0.5 else 1 - best
        out.target = continuations[0]
    else:
        out.prompt = _text(contexts[0], "arguments")
        if "target" not in record:
            raise _Bad("target", "missing: the correct choice")
        index, out.choice_is_correct = _correct_choices(record["target"], continuations, delimiter)
        out.correct_choice = index
        out.target = _undelimited(continuations[index], delimiter)
        out.choice_texts = continuations
    out.choice_logprobs = lls
    return out


def _undelimited(continuation: str, delimiter: str) -> str:
    """A choice's text: its request continuation less the task's target delimiter."""
    if delimiter and continuation.startswith(delimiter):
        return continuation[len(delimiter) :]
    return continuation


def choice_lengths(texts: pa.Array, delimiters: Sequence[tuple[int, int, str]]) -> pa.Array:
    """Characters of each choice's text, as lm-eval's ``acc_norm`` divides by.

    ``texts`` holds each row's request continuations (list<string>);
    ``delimiters`` gives ``(first row, end row, target delimiter)`` runs, the
    delimiter being cut from the front of the continuations that start with it.
    A row with an empty choice (no per-character score exists) or no texts is null.
    """
    flat = pc.list_flatten(texts)
    lengths = pc.utf8_length(flat).to_numpy(zero_copy_only=False).astype(np.float64)
    parents = pc.list_parent_indices(texts).to_numpy(zero_copy_only=False)
    for lo, hi, delimiter in delimiters:
        if not delimiter:
            continue
        starts = pc.starts_with(flat, delimiter).to_numpy(zero_copy_only=False)
        lengths -= len(delimiter) * (starts & (parents >= lo) & (parents < hi))
    valid = texts.is_valid().to_numpy(zero_copy_only=False).astype(bool)
    empty = np.zeros(len(texts), dtype=bool)
    empty[parents[lengths <= 0]] = True
    return pa.ListArray.from_arrays(
        texts.offsets, pa.array(lengths, pa.float64()), mask=pa.array(~valid | empty)
    )


# --------------------------------------------------------------------------- reading lines


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class Origin:
    """Where a run of rows comes from: its task, model and file (for error messages)."""

    task: str
    meta: ModelMeta
    path: Path
    recheck: Callable[[int], None] | None = None  # re-parses one line to name a fault
    locate: Callable[[int], int] | None = None  # stored 'line' value -> line in the file
    id_field: str = "doc_id"  # the source's name for the example id
    delimiter: str = ""  # the task's target delimiter, cut from choice texts


#: the columns each kind of sample fills (besides the model columns); ``line`` is kept
#: for error messages only
ROW_COLUMNS = {
    GENERATION: ("example_id", "line", "prompt", "target", "references", "prediction"),
    CHOICE: (
        "example_id",
        "line",
        "prompt",
        "target",
        "choice_logprobs",
        "correct_choice",
        "choice_is_correct",
        "choice_texts",
    ),
    LOGLIKELIHOOD: (
        "example_id",
        "line",
        "prompt",
        "target",
        "continuation_logprob",
        "continuation_is_greedy",
    ),
    "any": (
        "example_id",
        "line",
        "prompt",
        "target",
        "references",
        "prediction",
        "target_token_logprobs",
        "choice_logprobs",
        "correct_choice",
        "choice_is_correct",
        "choice_texts",
        "continuation_logprob",
        "continuation_is_greedy",
        "epoch",
        "cluster",
        "choices",
        "prediction_token_logprobs",
    ),
}
ROW_COLUMNS[ROLLING] = ROW_COLUMNS[LOGLIKELIHOOD]


class SamplesWriter:
    """Streams samples rows into one parquet file, checking the rules of the samples table.

    Rows are buffered column-wise (only the columns their kind fills, see
    :data:`ROW_COLUMNS`) and written as one row group every ``chunk_rows``
    rows, after vectorised checks: log-probabilities finite and <= 0, example
    ids unique within a task and model. The file appears at ``path`` only when
    :meth:`close` succeeds; on any error nothing is left.

    Use: ``start(origin, kind)``, then append to the lists in :attr:`columns`
    (one value each per row) and call :meth:`rows_added` now and then.
    """

    def __init__(self, path: str | os.PathLike[str], chunk_rows: int = 65_536) -> None:
        target = Path(path)
        if not target.name.lower().endswith((".parquet", ".pq")):
            raise InputError(
                "ingested samples are written as parquet: name the output *.parquet",
                path=target,
                field="out",
            )
        self.path = target
        self.chunk_rows = chunk_rows
        self.rows = 0
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        except OSError as exc:  # name the file asked for, not the temporary one
            raise OSError(exc.errno, f"cannot write here ({exc.strerror})", str(target)) from None
        os.close(fd)
        self._tmp = Path(name)
        self._writer: pq.ParquetWriter | None = parquet_writer(self._tmp, SAMPLES_ARROW)
        #: example ids unique within (task, model, step), and the models' sizes, across
        #: every input (sizes are checked per model in check_model, before its rows)
        self._keys = RowChecker(SAMPLES, keep_keys=False)
        #: (first row written, origin) of every run of rows, and each row's stored line
        self._written: list[tuple[int, Origin]] = []
        self._line_chunks: list[np.ndarray] = []
        self.columns: dict[str, list] = {name: [] for name in ROW_COLUMNS["any"]}
        self._kind = "any"
        self._runs: list[tuple[int, Origin]] = []
        #: rows written per origin
        self.counts: dict[Origin, int] = {}

    def check_model(self, meta: ModelMeta, where: Path) -> None:
        """One size per checkpoint and distinct sizes within a family, across every input."""
        clash = self._keys.sizes.add(meta.family, meta.model, meta.step, meta.params, str(where))
        if clash is not None:
            raise InputError(clash, path=where, field="params")

    @property
    def pending(self) -> int:
        return len(self.columns["example_id"])

    def start(self, origin: Origin, kind: str) -> None:
        """The rows appended next are of ``kind`` and belong to ``origin``."""
        if kind != self._kind:
            self.flush()
            self._kind = kind
        n = self.pending
        if not self._runs or self._runs[-1][1] != origin:
            if self._runs and self._runs[-1][0] == n:
                self._runs.pop()
            self._runs.append((n, origin))

    def add(self, **values: Any) -> None:
        """Append one row (slow but simple; hot loops append to :attr:`columns` directly)."""
        for name in ROW_COLUMNS[self._kind]:
            self.columns[name].append(values.get(name))
        self.rows_added()

    def rows_added(self) -> None:
        """Flush when a chunk is full."""
        if self.pending >= self.chunk_rows:
            self.flush()

    # ----------------------------------------------------------------- checks

    def _origin(self, row: int) -> Origin:
        starts = [start for start, _ in self._runs]
        return self._runs[int(np.searchsorted(starts, row, side="right")) - 1][1]

    def _fail(self, row: int, field_name: str, message: str) -> None:
        origin = self._origin(row)
        line = self.columns["line"][row]
        if origin.recheck is not None:
            origin.recheck(line)  # raises the precise error when the record is at fault
        if origin.locate is not None:
            line = origin.locate(line)
        raise InputError(message, path=origin.path, line=line, field=field_name)

    def _check_logprobs(self, array: pa.Array, name: str) -> None:
        """Log-probabilities finite and <= 0 (a list column's items, or one per row)."""
        is_list = pa.types.is_list(array.type)
        values = (array.values if is_list else array).to_numpy(zero_copy_only=False)
        bad = out_of_range(values, LOGPROB)
        if not is_list:
            bad &= ~np.isnan(values)  # a missing value is no value
        if not bad.any():
            return
        at = int(np.flatnonzero(bad)[0])
        message = value_message(float(values[at]), LOGPROB)
        if not is_list:
            self._fail(at, name, message)
        offsets = array.offsets.to_numpy()
        row = int(np.searchsorted(offsets, at, side="right")) - 1
        self._fail(row, f"{name}[{at - int(offsets[row])}]", message)

    def _add_keys(self, arrays: dict[str, pa.Array], n: int) -> None:
        """Feed the chunk's keys to the duplicate check (reported at :meth:`close`)."""
        types = SAMPLES_ARROW
        keys = pa.table(
            {k: arrays[k] if k in arrays else pa.nulls(n, types.field(k).type) for k in SAMPLES.key}
        )
        self._keys.add(keys, Where.rows(self.path, self.rows, n), sizes=False)

    def _key_of(self, row: int) -> tuple:
        """The key of a written row, read back from the file."""
        handle = parquet_file(self._tmp)
        for group in range(handle.num_row_groups):
            size = handle.metadata.row_group(group).num_rows
            if row < size:
                table = handle.read_row_group(group, columns=list(SAMPLES.key))
                return tuple(table.column(c)[row].as_py() for c in SAMPLES.key)
            row -= size
        raise AssertionError(row)

    def _check_duplicates(self) -> None:
        found = self._keys.first_duplicate(self._key_of)
        if found is None:
            return
        row, earlier, key = found
        origin, line = self._where_written(row)
        first_origin, first_line = self._where_written(earlier)
        place = f"line {first_line}"
        if first_origin.path != origin.path:
            place += f" of {first_origin.path}"
        raise InputError(
            duplicate_message(SAMPLES.key, key, place),
            path=origin.path,
            line=line,
            field=origin.id_field,
        )

    def _where_written(self, row: int) -> tuple[Origin, int]:
        """The origin of a written row and its line in that origin's file."""
        starts = [start for start, _ in self._written]
        origin = self._written[int(np.searchsorted(starts, row, side="right")) - 1][1]
        line = int(np.concatenate(self._line_chunks)[row])
        return origin, line if origin.locate is None else origin.locate(line)

    # ----------------------------------------------------------------- output

    def _repeat(self, column: str, typ: pa.DataType, n: int) -> pa.Array:
        bounds = [start for start, _ in self._runs] + [n]
        parts = []
        for (start, origin), end in zip(self._runs, bounds[1:], strict=True):
            value = origin.task if column == "task" else getattr(origin.meta, column)
            parts.append(pa.repeat(pa.scalar(value, typ), end - start))
        return pa.concat_arrays(parts)

    def flush(self) -> None:
        """Check the buffered rows and write them as one row group."""
        n = self.pending
        if not n or self._writer is None:
            return
        arrays: dict[str, pa.Array] = {}
        for name in ROW_COLUMNS[self._kind]:
            if name == "choice_texts":
                texts = pa.array(self.columns[name], pa.list_(pa.large_string()))
                starts = [start for start, _ in self._runs] + [n]
                runs = [
                    (lo, hi, origin.delimiter)
                    for (lo, origin), hi in zip(self._runs, starts[1:], strict=True)
                ]
                arrays["choice_lengths"] = choice_lengths(texts, runs)
            elif name != "line":
                arrays[name] = pa.array(self.columns[name], SAMPLES_ARROW.field(name).type)
        for name in (
            "choice_logprobs",
            "target_token_logprobs",
            "prediction_token_logprobs",
            "continuation_logprob",
        ):
            if name in arrays:
                self._check_logprobs(arrays[name], name)
        for name in ("task", "family", "model", "params", "tokens_trained", "step"):
            arrays[name] = self._repeat(name, SAMPLES_ARROW.field(name).type, n)
        self._add_keys(arrays, n)
        self._line_chunks.append(np.asarray(self.columns["line"], dtype=np.int64))
        for start, origin in self._runs:
            if not self._written or self._written[-1][1] != origin:
                self._written.append((self.rows + start, origin))
        columns = [
            arrays[f.name] if f.name in arrays else pa.nulls(n, f.type) for f in SAMPLES_ARROW
        ]
        self._writer.write_table(pa.Table.from_arrays(columns, schema=SAMPLES_ARROW))
        self.rows += n
        bounds = [start for start, _ in self._runs] + [n]
        for (start, origin), end in zip(self._runs, bounds[1:], strict=True):
            self.counts[origin] = self.counts.get(origin, 0) + end - start
        for values in self.columns.values():
            values.clear()  # in place: hot loops hold the lists' append methods
        if self._runs:  # rows appended next continue the last origin
            self._runs = [(0, self._runs[-1][1])]

    def close(self) -> Path:
        """Flush, close and move the file into place."""
        self.flush()
        if self.rows == 0:
            self.abort()
            raise InputError("no samples to write", path=self.path)
        assert self._writer is not None
        try:
            self._writer.close()
            self._writer = None
            self._check_duplicates()
            as_created(self._tmp)
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Drop the partial file."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()

    def __enter__(self) -> SamplesWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_scores_beside(
    scores: pd.DataFrame, path: str | os.PathLike[str], samples: str | os.PathLike[str]
) -> Path:
    """Write a source's own scores next to the samples just written from it: both
    outputs or neither (the samples file goes when the scores cannot be written)."""
    try:
        return write_table(scores, path)
    except BaseException:
        Path(samples).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- ingest


@dataclass
class IngestSummary:
    """What was read and written."""

    out: Path
    rows: int = 0
    files: int = 0
    tasks: dict[str, int] = field(default_factory=dict)
    #: what the reader decided for the user (one line each), e.g. a family it named
    notes: list[str] = field(default_factory=list)


class _Slow(Exception):
    """The fast path met something it does not handle: parse the record carefully."""


def _fast_choice(record: dict, k: int) -> tuple[str, str, list[float], int, str]:
    """(doc_id, prompt, choice log-probs, correct index, filter) of a plain multiple-choice
    sample of lm-eval >= 0.4.3; anything unusual -> :class:`_Slow`. Log-probabilities are
    checked later, for a whole chunk at once."""
    doc_id = record["doc_id"]
    args = record["arguments"]
    resps = record["filtered_resps"]
    target = record["target"]
    if (
        type(doc_id) is not int
        or type(args) is not dict
        or len(args) != k
        or len(resps) != k
        or type(target) is not str
        or "acc_mutual_info" in record
    ):
        raise _Slow
    first = args["gen_args_0"]
    prompt = first["arg_0"]
    if type(prompt) is not str or type(first["arg_1"]) is not str:
        raise _Slow
    lls = [float(r[0]) for r in resps]
    index = int(target)  # a text target (not an index) goes the slow way
    if not 0 <= index < k or str(index) != target:
        raise _Slow
    return str(doc_id), prompt, lls, index, record.get("filter", "none")


def _fast_generation(record: dict) -> tuple[str, str, str, str, str]:
    """(doc_id, prompt, target, prediction, filter) of a generation sample (lm-eval >= 0.4.3)."""
    doc_id = record["doc_id"]
    args = record["arguments"]
    resps = record["filtered_resps"]
    target = record["target"]
    if type(doc_id) is not int or type(args) is not dict or len(args) != 1 or len(resps) != 1:
        raise _Slow
    first = args["gen_args_0"]
    prompt = first["arg_0"]
    prediction = resps[0]
    if (
        type(prompt) is not str
        or type(first["arg_1"]) is not dict
        or type(prediction) is not str
        or type(target) is not str
        or target.endswith("]")  # perhaps str(list of golds): the careful path decides
    ):
        raise _Slow
    return str(doc_id), prompt, target, prediction, record.get("filter", "none")


def _recheck(path: Path, delimiter: str, split_targets: bool) -> Callable[[int], None]:
    """A function that re-reads one line of ``path`` and raises its precise error."""

    def recheck(wanted: int) -> None:
        for line, record, _ in iter_json_records(path):
            if line == wanted:
                try:
                    parse_lm_eval_record(record, delimiter, split_targets)
                except _Bad as bad:
                    raise InputError(
                        bad.message,
                        path=path,
                        line=line,
                        field=None if bad.field == "-" else bad.field,
                    ) from None
                return

    return recheck


def _run_of(item: LmEvalFile, options: dict[str, Any]) -> tuple[dict[str, Any], ModelMeta]:
    """The parsed results file of a samples file (``{}`` when none) and its model."""
    results = read_json(item.results) if item.results is not None else {}
    if item.results is not None and not isinstance(results, dict):
        raise InputError("expected a JSON object", path=item.results)
    return results, model_meta(results, item.results or item.path, **options)


def _with_folder_family(
    runs: list[tuple[LmEvalFile, dict[str, Any], ModelMeta]], family: str | None
) -> tuple[list[tuple[LmEvalFile, dict[str, Any], ModelMeta]], list[str]]:
    """The runs with the family of :func:`~miragelab.sources.sizes.folder_family` for the
    models whose names give none (unless ``family`` was given), and its note."""
    if family is not None:
        return runs, []
    grouped = folder_family(
        Unnamed(meta.model, meta.params, meta.step, item.results or item.path)
        for item, _, meta in runs
        if family_in_name(meta.model) is None
    )
    if grouped is None:
        return runs, []
    name, note = grouped
    return [
        (item, results, replace(meta, family=name) if family_in_name(meta.model) is None else meta)
        for item, results, meta in runs
    ], [note]


def _ingest_file(
    item: LmEvalFile,
    results: dict[str, Any],
    meta: ModelMeta,
    writer: SamplesWriter,
    summary: IngestSummary,
    on_bytes: Callable[[int], None] | None,
    split_targets: bool = True,
) -> None:
    writer.check_model(meta, item.results or item.path)
    shots = shots_of(results, item.task)
    base = f"{item.task}@{shots}shot" if shots > 0 else item.task
    configs = results.get("configs") if isinstance(results.get("configs"), dict) else {}
    task_config = configs.get(item.task)
    delimiter = task_config.get("target_delimiter", " ") if isinstance(task_config, dict) else " "
    delimiter = delimiter if isinstance(delimiter, str) else " "
    recheck = _recheck(item.path, delimiter, split_targets)
    # a generation task that logs its target as a choice index: map it to the choice's text
    choice_answer = choice_target(task_config, item.results, item.task)
    origins: dict[str, Origin] = {}
    current = None
    kind: str | None = None
    k = 0
    reported = 0
    cols = writer.columns
    chunk = writer.chunk_rows
    eids, lines, prompts, targets = (
        cols["example_id"],
        cols["line"],
        cols["prompt"],
        cols["target"],
    )
    predictions, choices, corrects, references, texts_of, flags_of = (
        cols["prediction"],
        cols["choice_logprobs"],
        cols["correct_choice"],
        cols["references"],
        cols["choice_texts"],
        cols["choice_is_correct"],
    )
    arg_keys = [f"gen_args_{i}" for i in range(64)]
    for line, record, done in iter_json_records(item.path):
        # fast paths for the common kinds of lm-eval >= 0.4.3; anything else is parsed carefully
        try:
            if kind == GENERATION and choice_answer is None:
                eid, prompt, target, prediction, filt = _fast_generation(record)
                if filt != current:
                    raise _Slow
                eids.append(eid)
                lines.append(line)
                prompts.append(prompt)
                targets.append(target)
                references.append(None)
                predictions.append(prediction)
                if len(eids) >= chunk:
                    writer.flush()
                    if on_bytes is not None:
                        on_bytes(done - reported)
                        reported = done
                continue
            if kind == CHOICE:
                eid, prompt, lls, index, filt = _fast_choice(record, k)
                if filt != current:
                    raise _Slow
                args = record["arguments"]
                texts = [args[key]["arg_1"] for key in arg_keys[:k]]
                target = _undelimited(texts[index], delimiter)
                eids.append(eid)  # every value is ready: the columns stay aligned
                lines.append(line)
                prompts.append(prompt)
                targets.append(target)
                choices.append(lls)
                corrects.append(index)
                flags_of.append(None)
                texts_of.append(texts)  # lengths are taken at flush, vectorised
                if len(eids) >= chunk:
                    writer.flush()
                    if on_bytes is not None:
                        on_bytes(done - reported)
                        reported = done
                continue
        except (_Slow, KeyError, TypeError, ValueError, OverflowError, IndexError, AttributeError):
            pass
        try:
            row = parse_lm_eval_record(record, delimiter, split_targets)
            if choice_answer is not None and row.kind == GENERATION and row.target is not None:
                row.target = choice_answer(record, row.target)
        except (_Bad, BadChoice) as bad:
            raise InputError(
                bad.message,
                path=item.path,
                line=line,
                field=None if bad.field == "-" else bad.field,
            ) from None
        if kind is None:
            kind = row.kind
            k = len(row.choice_logprobs or ())
        elif row.kind != kind:
            raise InputError(
                f"a {row.kind} sample in a file whose earlier samples are {kind}",
                path=item.path,
                line=line,
                field="arguments",
            )
        if row.filter != current:
            current = row.filter
            if current not in origins:
                task = base if current == "none" else f"{base}[{current}]"
                origins[current] = Origin(task, meta, item.path, recheck, delimiter=delimiter)
            writer.start(origins[current], kind)
        writer.add(
            example_id=row.example_id,
            line=line,
            prompt=row.prompt,
            target=row.target,
            references=row.references,
            prediction=row.prediction,
            choice_logprobs=row.choice_logprobs,
            correct_choice=row.correct_choice,
            choice_is_correct=row.choice_is_correct,
            choice_texts=row.choice_texts,
            continuation_logprob=row.continuation_logprob,
            continuation_is_greedy=row.continuation_is_greedy,
        )
        if on_bytes is not None and done - reported > 1 << 22:
            on_bytes(done - reported)
            reported = done
    if on_bytes is not None:
        on_bytes(max(item.path.stat().st_size - reported, 0))
    writer.flush()  # checks this file's last rows while its name is at hand
    for origin in origins.values():
        n = writer.counts.pop(origin, 0)
        summary.tasks[origin.task] = summary.tasks.get(origin.task, 0) + n
        summary.rows += n
    summary.files += 1


def ingest_lm_eval(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    model: str | None = None,
    family: str | None = None,
    params: float | str | None = None,
    chunk_rows: int = 65_536,
    on_bytes: Callable[[int], None] | None = None,
    split_targets: bool = True,
) -> IngestSummary:
    """Read lm-eval samples files (or folders of them) into one samples parquet file.

    ``model``, ``family`` and ``params`` override what the results files say,
    for every input. ``split_targets=False`` keeps a generation target that
    reads as ``str(list of golds)`` as one string. ``on_bytes`` is called with
    the number of bytes read since its last call (for a progress bar). Bad input raises
    :class:`InputError` naming the file, line and field; then no output is written.
    Without ``family``, models whose names give none form one family after their
    folder (:func:`~miragelab.sources.sizes.folder_family`); ``notes`` of the summary
    says so.
    """
    files = find_lm_eval_files(paths)
    options = {"model": model, "family": family, "params": params}
    parsed: dict[Path, tuple[dict[str, Any], ModelMeta]] = {}  # one copy per results file
    runs = []
    for item in files:
        key = item.results if item.results is not None else item.path
        if key not in parsed:
            parsed[key] = _run_of(item, options)
        runs.append((item, *parsed[key]))
    runs, notes = _with_folder_family(runs, family)
    summary = IngestSummary(Path(out), notes=notes)
    with SamplesWriter(out, chunk_rows) as writer:
        for item, results, meta in runs:
            _ingest_file(item, results, meta, writer, summary, on_bytes, split_targets)
    return summary


def total_bytes(paths: Sequence[str | os.PathLike[str]]) -> int:
    """Size of the samples files ``paths`` name (for a progress bar)."""
    return sum(f.path.stat().st_size for f in find_lm_eval_files(paths))
