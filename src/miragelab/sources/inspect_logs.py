"""UK AISI Inspect eval logs -> the samples table (and the scores table).

An Inspect log is a ``.eval`` archive (a zip of JSON members, Inspect's default
format) or a ``.json`` file; both are read with ``inspect_ai.log.read_eval_log``,
so every log format version the installed ``inspect_ai`` reads is read here
(``inspect_ai`` is an optional dependency: ``pip install "miragelab[inspect]"``).
A folder is searched recursively for ``*.eval`` archives and for ``*.json``
files that are Inspect logs (their JSON starts with the log's ``version``); other
JSON files in a folder are skipped, but a file named on its own must be a log.

Samples (one row per sample and epoch)
--------------------------------------
* ``task`` = ``eval.task`` (as Inspect names it), ``example_id`` = the sample's
  ``id``, ``epoch`` = its ``epoch`` (``--epochs``: one row per epoch; the
  epoch is part of the samples key, and ``mirage score`` averages each example
  over its epochs, as Inspect's default ``mean`` reducer does).
* ``prompt`` = the sample's ``input``: the string, or the text of its chat
  messages (one paragraph each). ``target`` = the target (the first, when
  there are several); ``references`` = every target when there are several
  (Inspect's ``match``, ``includes`` and ``exact`` scorers count a match with
  any of them).
* ``prediction`` = ``output.completion``; ``prediction_token_logprobs`` = the
  log-prob of each generated token (``output.choices[0].logprobs``, kept
  when the eval ran with ``logprobs=True``).
* Multiple choice (the sample has ``choices``): ``choices`` = their texts,
  ``target`` = the correct letter (Inspect stores multiple-choice targets as
  letters: A, B, ..., Z, then 1, 2, ...; several correct letters as
  ``"A, C"``), ``correct_choice`` = its index and, where several letters are
  correct, ``choice_is_correct`` flags each. ``prediction`` = the letter(s) the
  model chose: the ``answer`` of the ``choice`` scorer's score, else the
  completion parsed as Inspect's ``multiple_choice`` solver parses it (the last
  ``ANSWER: X``). So ``exact_match`` of ``prediction`` and ``target`` is what the
  ``choice`` scorer counts. ``choice_logprobs`` = the log-prob of each choice's
  letter (``"A"`` or ``" A"``) among the ``top_logprobs`` of the generated token
  where the model wrote its letter (the first chosen letter after the last
  ``ANSWER:``); ``multiple_choice_grade`` scores them. A sample whose answer
  token lacks some letter has none, and since ``mirage score`` refuses a task
  whose rows carry a metric's columns on some rows only, a task where some
  samples have them and others not keeps none (a note says so); the same holds
  for ``prediction_token_logprobs``. Without ``choice_logprobs`` a row keeps no
  ``correct_choice`` either (the samples table ties it to them).

``model`` is ``eval.model`` (``hf/EleutherAI/pythia-160m``,
``mockllm/model``) unless given; ``params`` is given by hand, else read from a
sizes sidecar (``model,params`` CSV), else from the size in the model name
(:mod:`~miragelab.sources.sizes`); ``family`` is the name without its size,
and the models of one ingest whose names give no family form one family named
after their common folder (:func:`~miragelab.sources.sizes.folder_family`).

Scores: each metric of each scorer in ``results.scores`` gives one row,
``metric`` = ``<metric>[<scorer>]`` (``accuracy[choice]``, ``accuracy[match]``;
``[<reducer>]`` is appended where the log holds several epoch reducers of a
scorer), ``value`` as Inspect computed it, ``n`` = the scored samples
(``scored_samples``), ``higher_is_better`` the metric's direction in
:mod:`miragelab.metric_facts` (null where unknown). Inspect's ``stderr`` (or
``bootstrap_stderr``) of a scorer is no row of its own: it gives the other
metrics of that scorer their ``stderr`` and normal interval, except that a
standard error of 0 at 0% or 100% is replaced by the Wilson interval of ``n``
(:func:`miragelab.stats.published_interval`).

Bad input is an :class:`~miragelab.errors.InputError` naming the log and what
is wrong: a file that is no log (or a ``.eval`` archive cut short, a ``.json``
log cut short, with the line where its JSON ends), a log format version newer
than the installed ``inspect_ai`` reads, a log without samples (a header-only
log, an eval that failed before logging any), a sample that ended in an error
or has no model output, a target that is not a letter of the sample's choices,
a model with no size, and a sample met in two logs of one task and model. A log
whose status is not ``success`` but that holds samples is read, with a note.
"""

from __future__ import annotations

import bisect
import math
import os
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from miragelab.errors import InputError
from miragelab.metric_facts import fact_of, is_proportion
from miragelab.schema import (
    SAMPLES,
    SCORES,
    BadValue,
    check_logprob,
    coerce_value,
    score_value_problem,
    validate_frame,
)
from miragelab.sources.families import name_folder_family
from miragelab.sources.letters import letter_logprobs
from miragelab.sources.lm_eval_results import sizes_mapping
from miragelab.sources.lm_eval_samples import (
    ModelMeta,
    Origin,
    SamplesWriter,
    model_meta,
    write_scores_beside,
)
from miragelab.sources.sizes import lookup_size
from miragelab.stats import published_interval
from miragelab.textio import regular_file

__all__ = [
    "InspectLog",
    "InspectSummary",
    "find_inspect_logs",
    "ingest_inspect",
    "parse_answer",
    "read_inspect_log",
]

INSTALL_HINT = 'reading Inspect logs needs inspect_ai: pip install "miragelab[inspect]"'

#: Inspect's standard errors of a scorer's metrics: attached to the other metrics, no rows
_STDERRS = ("stderr", "bootstrap_stderr")
#: how the choice scorer's explanation begins when the solver shuffled the choices
_SHUFFLED = "Choices were shuffled"
#: Inspect's metrics that are the mean of a scorer's scores, which its stderr is of
_MEANS = ("accuracy", "mean")


# --------------------------------------------------------------------------- finding logs

#: how an Inspect JSON log begins (its first field is the log format version)
_JSON_LOG = re.compile(rb'\A(?:\xef\xbb\xbf)?\s*\{\s*"version"\s*:')


def _looks_like_json_log(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return _JSON_LOG.match(handle.read(256)) is not None
    except OSError:
        return False


def find_inspect_logs(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The Inspect logs named by ``paths``: files, and folders searched recursively.

    A folder gives its ``*.eval`` archives and those of its ``*.json`` files
    that are Inspect logs; JSON files that are not (Inspect's own ``logs.json``
    listing, a results file) are skipped there. A file named on its own is
    taken as a log whatever it holds, so a file that is not one is an error
    when read. A folder without logs is an :class:`InputError`.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        p = regular_file(raw, folder=True)
        if p.is_dir():
            files = sorted(
                f
                for f in p.rglob("*")
                if f.is_file()
                and (
                    f.suffix.lower() == ".eval"
                    or (f.suffix.lower() == ".json" and _looks_like_json_log(f))
                )
            )
            if not files:
                raise InputError("no Inspect logs (*.eval, or *.json logs) in this folder", path=p)
        else:
            files = [p]
        for f in files:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                found.append(f)
    if not found:
        raise InputError("no Inspect logs given")
    return found


# --------------------------------------------------------------------------- reading one log

_AT_LINE = re.compile(r"\s*at line (\d+) column \d+\s*$")
_VERSION = re.compile(r"Unable to read version (\d+) of log format")


def _dotted(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _read_error(path: Path, exc: Exception, newest: Any) -> InputError:
    """What a failed ``read_eval_log`` says, as one line about ``path``; ``newest`` is the
    log format version the installed ``inspect_ai`` writes."""
    from pydantic import ValidationError

    archive = path.suffix.lower() == ".eval"
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        loc, message = tuple(first.get("loc", ())), str(first.get("msg", exc))
        if not loc:
            return InputError(f"not an Inspect log: {message}", path=path)
        if exc.title == "EvalSample":  # an .eval archive's sample member
            what, where = "a sample of the log does not read", f"samples.{_dotted(loc)}"
        else:
            what, where = "not an Inspect log, or a damaged one", _dotted(loc)
        return InputError(f"{what}: {message}", path=path, field=where)
    text = " ".join(str(exc).split())
    version = _VERSION.search(text)
    if version is not None:
        return _too_new(path, version.group(1), newest)
    if isinstance(exc, OSError):
        return InputError(f"cannot read: {exc.strerror or text}", path=path)
    if archive:
        if isinstance(exc, NotImplementedError):  # a compression this Python cannot undo
            return InputError(
                f"an .eval archive the installed inspect_ai cannot read: {text}; upgrade "
                "inspect_ai",
                path=path,
            )
        if isinstance(exc, zipfile.BadZipFile | EOFError) or not zipfile.is_zipfile(path):
            return InputError(
                f"not a readable .eval archive (cut short, or not a log): {text}", path=path
            )
        return InputError(f"a damaged .eval archive: {text}", path=path)
    at = _AT_LINE.search(text)
    line = int(at.group(1)) if at else getattr(exc, "lineno", None)
    message = _AT_LINE.sub("", text) if at else text
    if "EOF while parsing" in message:
        message += " (the log is cut short)"
    return InputError(f"not a readable JSON log: {message}", path=path, line=line)


def _too_new(path: Path, version: Any, newest: Any) -> InputError:
    return InputError(
        f"log format version {version} is newer than the installed inspect_ai reads "
        f"({newest}); upgrade inspect_ai",
        path=path,
        field="version",
    )


def _read(path: Path) -> Any:
    """``read_eval_log(path)``; a log that does not read -> :class:`InputError`."""
    try:
        from inspect_ai.log import EvalLog, read_eval_log
    except ImportError:
        raise InputError(INSTALL_HINT, path=path) from None
    if path.suffix.lower() not in (".eval", ".json"):
        raise InputError("not an Inspect log: expected a .eval archive or a .json log", path=path)
    if path.stat().st_size == 0:
        raise InputError("empty file", path=path)
    if path.suffix.lower() == ".json" and "::" in str(path):
        raise InputError(
            "inspect_ai opens a .json log through fsspec, which reads '::' in a name as a "
            "chain of file systems: rename the log (or a folder of its path)",
            path=path,
        )
    newest = EvalLog.model_fields["version"].default  # the format this inspect_ai writes
    try:
        log = read_eval_log(str(path))
    except (
        ValueError,
        zipfile.BadZipFile,
        EOFError,
        KeyError,
        OSError,
        NotImplementedError,
    ) as exc:
        raise _read_error(path, exc, newest) from None
    # the .eval reader takes any version: one newer than this inspect_ai writes is refused
    if isinstance(log.version, int) and isinstance(newest, int) and log.version > newest:
        raise _too_new(path, log.version, newest)
    return log


def _first_line(text: Any) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[0] if lines else "no message"


def _letter(index: int) -> str:
    """Inspect's letter of choice ``index``: A ... Z, then 1, 2, ..."""
    return chr(ord("A") + index) if index < 26 else str(index - 25)


def _letter_index(text: str) -> int | None:
    """The choice index of an answer letter (``"B"`` -> 1, ``"1"`` -> 26), else None."""
    if len(text) == 1 and text.isascii() and text.isalpha():
        return ord(text.upper()) - ord("A")
    if text.isdecimal() and int(text) > 0:
        return 25 + int(text)
    return None


_WRAPPERS = (  # how Inspect's multiple_choice unwraps $X$, **X** and (X) before parsing
    (re.compile(r"\$\s*([A-Za-z\d][A-Za-z\d ,]*?)\s*\$"), r"\1"),
    (re.compile(r"\*\*\s*([A-Za-z\d][A-Za-z\d ,]*?)\s*\*\*"), r"\1"),
    (re.compile(r"(?i)(^|[:,])(\s*)\(([A-Za-z\d])\)(?=\s*(?:,|\.|\n|\Z))"), r"\1\2\3"),
)
_STRICT_ANSWER = re.compile(r"(?i)^ANSWER\s*:\s*([A-Za-z\d ,]+)\s*(?:$|\n|\.)", re.MULTILINE)
_LOOSE_ANSWER = re.compile(r"(?i)ANSWER\s*:\s*([A-Za-z\d ,]+)(?:[^\w]|\n|$|\.)")


def parse_answer(completion: str, n_choices: int, multiple: bool = False) -> list[int]:
    """The choices a completion picks, read as Inspect's ``multiple_choice`` solver reads it.

    Parameters
    ----------
    completion : str
        The model's answer, ending with ``ANSWER: B`` (``ANSWER: A, C`` where
        several choices may be correct).
    n_choices : int
        The number of choices; a letter beyond them picks nothing.
    multiple : bool, default False
        Whether several letters may be picked.

    Returns
    -------
    list of int
        The indices of the picked choices, ascending; empty when the last
        ``ANSWER:`` picks no valid choice (or there is none).
    """
    for pattern, replacement in _WRAPPERS:
        completion = pattern.sub(replacement, completion)
    matches = _STRICT_ANSWER.findall(completion) or _LOOSE_ANSWER.findall(completion)
    if not matches:
        return []
    matched = matches[-1].strip().rstrip(".").upper()
    allowed = {_letter(i) for i in range(n_choices)}
    if multiple:
        matched = matched.replace(" AND ", ",").replace(" ", "")
        picked = {x for x in matched.split(",") if x}
        if not picked <= allowed:
            picked = set(matched)
            if not picked <= allowed:
                return []
    else:
        tokens = [t for t in matched.split(",") if t]
        if len(tokens) != 1 or tokens[0] not in allowed:
            return []
        picked = {tokens[0]}
    return sorted(i for i in (_letter_index(p) for p in picked) if i is not None)


@dataclass
class _Row:
    index: int  # position of the sample in the log, for messages
    example_id: str
    epoch: int
    prompt: str | None = None
    target: str | None = None
    references: list[str] | None = None
    prediction: str | None = None
    prediction_token_logprobs: list[float] | None = None
    choices: list[str] | None = None
    choice_logprobs: list[float] | None = None
    correct_choice: int | None = None
    choice_is_correct: list[float] | None = None


@dataclass
class InspectLog:
    """One Inspect log, read: its task, model, samples rows and scores."""

    path: Path
    task: str
    meta: ModelMeta
    status: str
    rows: list[_Row] = field(default_factory=list)
    scores: pd.DataFrame | None = None

    @property
    def source(self) -> Path:
        """The log file, as the family named after a folder uses it."""
        return self.path


class _Bad(Exception):
    """A value of one sample is wrong; the caller adds the log's path."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


def _text(value: Any) -> str:
    """A sample's input as text: the string, or its chat messages' text, one paragraph each."""
    if isinstance(value, str):
        return value
    parts = [getattr(m, "text", "") for m in value or []]
    return "\n\n".join(p for p in parts if p)


def _targets(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _generated(output: Any) -> list[Any] | None:
    """The log-probs of the generated tokens (``Logprob`` objects), or None."""
    choices = getattr(output, "choices", None) or []
    logprobs = getattr(choices[0], "logprobs", None) if choices else None
    content = getattr(logprobs, "content", None)
    return list(content) if content else None


def _token_logprobs(content: list[Any], where: str) -> list[float]:
    out = []
    for j, token in enumerate(content):
        try:
            out.append(check_logprob(token.logprob))
        except BadValue as exc:
            raise _Bad(f"{where}[{j}].logprob", str(exc)) from None
    return out


_ANSWER_AT = re.compile(r"(?i)ANSWER\s*:[\s*$(]*")


def _answer_letter_logprobs(
    content: list[Any] | None, letter: str, letters: list[str]
) -> list[float] | None:
    """Each letter's log-prob at the generated token where the model wrote ``letter``
    (the token after the last ``ANSWER:``), or None when that token is not ``letter`` or
    lacks some letter among its top log-probs."""
    if not content or not letter:
        return None
    starts, text = [], ""
    for token in content:
        starts.append(len(text))
        text += token.token
    matches = list(_ANSWER_AT.finditer(text))
    if not matches or matches[-1].end() >= len(text):
        return None
    token = content[bisect.bisect_right(starts, matches[-1].end()) - 1]
    if token.token.strip().strip("*$().").strip() != letter:
        return None
    tops = token.top_logprobs or []
    top = {t.token: t.logprob for t in reversed(tops)}  # a token listed twice: its first
    return letter_logprobs(top, letters)


def _choice_scorers(log: Any) -> set[str]:
    """Names under which the ``choice`` scorer scored the log's samples."""
    results = getattr(log, "results", None)
    named = {s.name for s in (results.scores if results else []) if s.scorer == "choice"}
    return named or {"choice"}


def _choice_row(row: _Row, sample: Any, where: str, scorers: set[str], content) -> None:
    """Fill a multiple-choice row: letters, the chosen letter and the letters' log-probs."""
    choices = [str(c) for c in sample.choices]
    letters = [_letter(i) for i in range(len(choices))]
    picked: list[int] = []
    for value in _targets(sample.target):  # Inspect's reading: "A, C", "AC" and "12"
        for token in value.replace(",", " ").split():
            for letter in [token] if token.isdecimal() else list(token):
                index = _letter_index(letter)
                if index is None or index >= len(choices):
                    raise _Bad(
                        f"{where}.target",
                        f"{value!r} is not a letter of the sample's {len(choices)} choices",
                    )
                picked.append(index)
    if not picked:
        raise _Bad(f"{where}.target", "no correct letter: the sample has choices but no target")
    correct = sorted(set(picked))
    row.choices = choices
    row.target = ", ".join(letters[i] for i in correct)
    row.references = None
    row.correct_choice = correct[0]
    if len(correct) > 1:
        row.choice_is_correct = [float(i in correct) for i in range(len(choices))]
    answer, shuffled = None, False
    for name, score in (sample.scores or {}).items():
        if name in scorers and isinstance(getattr(score, "answer", None), str):
            answer = score.answer
            # the solver's own shuffle (multiple_choice(shuffle=True)): the model wrote
            # letters of another order than the choices', which the answer is given in
            explanation = getattr(score, "explanation", None) or ""
            shuffled = explanation.startswith(_SHUFFLED)
            break
    if answer is None:
        chosen = parse_answer(sample.output.completion or "", len(choices), len(correct) > 1)
        answer = ", ".join(letters[i] for i in chosen)
    row.prediction = answer
    first = answer.split(",")[0].strip()
    row.choice_logprobs = None if shuffled else _answer_letter_logprobs(content, first, letters)


def _rows(log: Any) -> list[_Row]:
    rows = []
    scorers = _choice_scorers(log)
    for i, sample in enumerate(log.samples):
        where = f"samples[{i}]"
        who = f"sample {sample.id!r} (epoch {sample.epoch})"
        if getattr(sample, "error", None) is not None:
            raise _Bad(f"{where}.error", f"{who} failed: {_first_line(sample.error.message)}")
        output = getattr(sample, "output", None)
        if output is None or (not output.choices and not output.completion):
            raise _Bad(f"{where}.output", f"{who} has no model output")
        row = _Row(i, str(sample.id), int(sample.epoch), _text(sample.input))
        content = _generated(output)
        at = f"{where}.output.choices[0].logprobs.content"
        row.prediction_token_logprobs = _token_logprobs(content, at) if content else None
        if sample.choices:
            _choice_row(row, sample, where, scorers, content)
        else:
            targets = _targets(sample.target)
            row.target = targets[0] if targets else None
            row.references = targets if len(targets) > 1 else None
            row.prediction = output.completion
        rows.append(row)
    return rows


def _meta(
    path: Path,
    name: str,
    family: str | None,
    params: float | str | None,
    sizes: Mapping[str, float] | None,
) -> ModelMeta:
    """The model columns: ``params`` given, else the sidecar's, else the size in the name."""
    listed = lookup_size(dict(sizes) if sizes else None, name) if params is None else None
    try:
        return model_meta(
            {}, path, model=name, family=family, params=listed if params is None else params
        )
    except InputError as exc:
        if exc.field != "params" or params is not None:
            raise
        if listed is not None:
            raise InputError(
                f"the sizes sidecar gives model {name!r} {listed:g} parameters: {exc.message}",
                path=path,
                field="params",
            ) from None
        raise InputError(
            f"cannot tell the size of model {name!r}: the log states none and the name has no "
            "size token (nor a known family); pass --params, or --sizes (a model,params CSV)",
            path=path,
            field="params",
        ) from None


def read_inspect_log(
    path: str | os.PathLike[str],
    *,
    model: str | None = None,
    family: str | None = None,
    params: float | str | None = None,
    sizes: Mapping[str, float] | str | os.PathLike[str] | None = None,
) -> InspectLog:
    """Read one Inspect log (``.eval`` or ``.json``): its samples rows and its scores.

    Parameters
    ----------
    path : path
        The log file.
    model, family, params : optional
        The model columns, instead of those the log and the model name give.
    sizes : mapping or path, optional
        Model sizes, ``{model: params}`` or a ``model,params`` CSV
        (:func:`~miragelab.sources.sizes.read_size_sidecar`), used where
        ``params`` is not given.

    Returns
    -------
    InspectLog
        The log's task, model, rows (one per sample and epoch) and scores
        table (None when the log has no results).

    Raises
    ------
    InputError
        On a log that does not read, has no samples, or holds a failed sample
        (see the module docstring).
    """
    p = regular_file(path)
    log = _read(p)
    samples = log.samples
    if not samples:
        if log.status != "success":
            why = f": {_first_line(log.error.message)}" if log.error is not None else ""
            raise InputError(
                f"the eval's status is {log.status!r} and the log holds no samples{why}",
                path=p,
                field="samples",
            )
        planned = log.results.total_samples if log.results is not None else 0
        said = f" (its results count {planned})" if planned else ""
        raise InputError(
            f"the log holds no samples{said}: a header-only log, or one whose samples were removed",
            path=p,
            field="samples",
        )
    task = log.eval.task
    try:  # the tables' name rule
        coerce_value(task, SAMPLES.field("task"))
    except BadValue as exc:
        raise InputError(str(exc), path=p, field="eval.task") from None
    meta = _meta(p, model or log.eval.model, family, params, sizes_mapping(sizes))
    try:
        rows = _rows(log)
    except _Bad as bad:
        raise InputError(bad.message, path=p, field=bad.where) from None
    read = InspectLog(p, task, meta, str(log.status), rows)
    read.scores = _scores(log, p, task, meta)
    return read


# --------------------------------------------------------------------------- scores


def _scored(log: Any, name: str) -> int:
    """How many distinct samples have a score of scorer ``name`` (older logs state none)."""
    return len({s.id for s in log.samples if s.scores and name in s.scores})


def _scores(log: Any, path: Path, task: str, meta: ModelMeta) -> pd.DataFrame | None:
    results = log.results
    if results is None or not results.scores:
        return None
    reducers: dict[str, int] = {}
    for score in results.scores:
        reducers[score.name] = reducers.get(score.name, 0) + 1
    records = []
    for k, score in enumerate(results.scores):
        metrics = score.metrics or {}
        label = score.name
        if reducers[score.name] > 1 and score.reducer:
            label = f"{label}][{score.reducer}"
        n = getattr(score, "scored_samples", None)  # stated by inspect_ai >= 0.3.113
        n = _scored(log, score.name) if n is None else n
        stderr = next(
            (float(metrics[s].value) for s in _STDERRS if s in metrics),
            None,
        )
        for name, metric in metrics.items():
            if name in _STDERRS:
                continue
            value = metric.value
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            value = float(value)
            if not math.isfinite(value):
                continue  # Inspect's NaN: no score
            problem = score_value_problem(name, value)
            if problem is not None:
                raise InputError(
                    problem, path=path, field=f"results.scores[{k}].metrics.{name}.value"
                )
            fact = fact_of(name)
            # the scorer's stderr is that of the mean of its scores: of accuracy or mean,
            # not of std or var
            own = stderr if name in _MEANS else None
            low, high, method, err = published_interval(value, own, n, is_proportion(name))
            records.append(
                {
                    "task": task,
                    "family": meta.family,
                    "model": meta.model,
                    "params": meta.params,
                    "step": meta.step,
                    "metric": f"{name}[{label}]",
                    "value": value,
                    "n": n,
                    "ci_low": low,
                    "ci_high": high,
                    "ci_method": method,
                    "stderr": err,
                    "higher_is_better": None if fact is None else fact.higher_is_better,
                }
            )
    return pd.DataFrame(records) if records else None


# --------------------------------------------------------------------------- ingest


@dataclass
class InspectSummary:
    """What was read and written."""

    out: Path
    rows: int = 0
    logs: int = 0
    scores_out: Path | None = None
    score_rows: int = 0
    tasks: dict[str, int] = field(default_factory=dict)
    #: what the reader decided for the user (one line each), e.g. a family it named
    notes: list[str] = field(default_factory=list)


def _complete_per_task(logs: list[InspectLog]) -> list[str]:
    """Log-prob columns that some rows of a task have and others lack are dropped for the
    whole task (in place), as ``mirage score`` refuses a metric such a task half supports;
    a note per column and task says so."""
    notes = []
    by_task: dict[str, list[_Row]] = {}
    for log in logs:
        by_task.setdefault(log.task, []).extend(log.rows)
    for task, rows in by_task.items():
        for column, why in (
            ("choice_logprobs", "no log-prob for every answer letter at their answer token"),
            ("prediction_token_logprobs", "no token log-probs"),
        ):
            wanted = [r for r in rows if column != "choice_logprobs" or r.choices]
            lacking = sum(getattr(r, column) is None for r in wanted)
            if 0 < lacking < len(wanted):
                for row in wanted:
                    setattr(row, column, None)
                notes.append(
                    f"task {task!r}: {lacking} of {len(wanted)} samples have {why}; "
                    f"{column} is left out for the whole task"
                )
    for rows in by_task.values():
        for row in rows:
            if row.choice_logprobs is None:  # the samples table ties these to them
                row.correct_choice = None
                row.choice_is_correct = None
    return notes


def _check_unique(logs: list[InspectLog]) -> None:
    """A sample (task, model, id, epoch) met twice -> :class:`InputError`."""
    seen: dict[tuple, tuple[Path, int]] = {}
    for log in logs:
        for row in log.rows:
            meta = log.meta
            key = (log.task, meta.family, meta.model, meta.step, row.example_id, row.epoch)
            if key not in seen:
                seen[key] = (log.path, row.index)
                continue
            path, index = seen[key]
            earlier = f"samples[{index}]" + ("" if path == log.path else f" of {path}")
            raise InputError(
                f"sample {row.example_id!r} (epoch {row.epoch}) of task {log.task!r} and "
                f"model {log.meta.model!r} is also {earlier}: give one log per task and "
                "model (or tell the models apart with --model)",
                path=log.path,
                field=f"samples[{row.index}].id",
            )


def ingest_inspect(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    scores_out: str | os.PathLike[str] | None = None,
    model: str | None = None,
    family: str | None = None,
    params: float | str | None = None,
    sizes: Mapping[str, float] | str | os.PathLike[str] | None = None,
) -> InspectSummary:
    """Read Inspect logs (or folders of them) into one samples parquet file (and scores).

    Parameters
    ----------
    paths : sequence of paths
        ``.eval`` and ``.json`` logs, or folders searched for them.
    out : path
        The samples table to write (``.parquet``).
    scores_out : path, optional
        Also write the logs' own results as a scores table.
    model, family, params : optional
        The model columns for every log, instead of what the logs say.
    sizes : mapping or path, optional
        Model sizes (``model,params`` CSV) where ``params`` is not given.

    Returns
    -------
    InspectSummary
        Rows, logs and tasks written, and the notes of what was decided.

    Raises
    ------
    InputError
        On bad input (see the module docstring); then neither output is written.
    """
    files = find_inspect_logs(paths)
    table = sizes_mapping(sizes)
    logs = [
        read_inspect_log(f, model=model, family=family, params=params, sizes=table) for f in files
    ]
    notes = [] if family is not None else name_folder_family(logs)
    for log in logs:
        if log.status != "success":
            notes.append(
                f"{log.path}: the eval's status is {log.status!r}; its {len(log.rows)} logged "
                "sample(s) are read"
            )
    notes.extend(_complete_per_task(logs))
    _check_unique(logs)
    score_table = None
    if scores_out is not None:
        scores = [log.scores for log in logs if log.scores is not None]
        if not scores:
            raise InputError(
                "no scores in the logs (results.scores)", path=files[0], field="scores-out"
            )
        score_table = validate_frame(pd.concat(scores, ignore_index=True), SCORES)
    summary = InspectSummary(Path(out), notes=notes)
    with SamplesWriter(out) as writer:
        for log in logs:
            writer.check_model(log.meta, log.path)
            writer.start(Origin(log.task, log.meta, log.path, id_field="id"), "any")
            for row in log.rows:
                writer.add(
                    example_id=row.example_id,
                    line=row.index + 1,
                    epoch=row.epoch,
                    prompt=row.prompt,
                    target=row.target,
                    references=row.references,
                    prediction=row.prediction,
                    prediction_token_logprobs=row.prediction_token_logprobs,
                    choices=row.choices,
                    choice_logprobs=row.choice_logprobs,
                    correct_choice=row.correct_choice,
                    choice_is_correct=row.choice_is_correct,
                )
            summary.tasks[log.task] = summary.tasks.get(log.task, 0) + len(log.rows)
            summary.logs += 1
        writer.flush()
        summary.rows = writer.rows
    if score_table is not None and scores_out is not None:
        summary.scores_out = write_scores_beside(score_table, scores_out, out)
        summary.score_rows = len(score_table)
    return summary
