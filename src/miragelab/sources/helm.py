"""HELM run folders -> the samples table (and the scores table).

A HELM run folder (``benchmark_output/runs/<suite>/<run name>/``) holds:

* ``scenario_state.json``: ``{"adapter_spec": {...}, "request_states": [...]}``;
  each request state has the ``instance`` (``input.text``, ``references``
  with ``output.text`` and ``tags`` such as ``"correct"``, ``split``, ``id``),
  ``train_trial_index``, ``output_mapping`` (multiple-choice letters),
  ``reference_index``/``request_mode`` (one request per answer choice),
  ``request`` (``prompt``, ``echo_prompt``, ``max_tokens``, ...) and
  ``result.completions``, each with ``text``, ``logprob`` and ``tokens``
  (``[{"text", "logprob", "top_logprobs"?}]``);
* ``run_spec.json``: the run ``name`` and ``adapter_spec`` (``method``, ``model``);
* ``stats.json``: the run's statistics ``[{"name": {"name", "split",
  "sub_split"?, "perturbation"?}, "count", "sum", "mean", ...}]``;
* ``per_instance_stats.json``: ``[{"instance_id", "train_trial_index",
  "stats": [...]}]``, the same statistics per instance.

Samples, by the adapter's ``method`` (following HELM's adapters and ``BasicMetric``)
------------------------------------------------------------------------------------
* ``generation`` (and any other one-request-per-instance method):
  ``prompt`` = ``request.prompt``, ``prediction`` = the first completion's
  ``text``, ``target`` = the first reference tagged ``correct``, and
  ``references`` = every correct reference when there are several (HELM
  scores the best of them). HELM compares stripped texts; ``mirage score``
  strips too by default.
* ``multiple_choice_joint``: one request whose completion is a letter; as for
  generation, with the letter mapped through ``output_mapping`` to its
  answer text (HELM's ``output_mapping.get(text.strip())``; an unmapped letter is
  kept as is and matches no target). ``correct_choice`` = index of the first
  correct reference; where several are correct, ``references`` = their texts
  and ``choice_is_correct`` flags each (HELM scores the best correct
  reference). ``choice_logprobs`` = the first generated token's
  ``top_logprobs`` of each letter (``"A"`` or ``" A"``), when the run kept
  them for every letter of every instance; otherwise null for the whole run
  (newer HELM versions store no top log-probs).
* ``multiple_choice_separate_original`` / ``..._calibrated``: one scoring
  request per answer choice (``echo_prompt``, ``max_tokens`` 0). HELM sums
  the log-probs of the trailing tokens that spell the reference; here those
  are the fewest trailing tokens whose text, stripped, ends with the stripped
  reference. ``choice_logprobs`` = those sums for the ``original`` requests
  (unnormalised: HELM's own prediction divides by the token count or
  subtracts the ``calibration`` request, so its ``exact_match`` can differ from
  ``multiple_choice_grade``); ``target_token_logprobs`` = the correct
  reference's tokens; ``prompt`` = the correct request's prompt without the
  reference; ``target`` = the correct reference; ``prediction`` stays null;
  several correct references are flagged in ``choice_is_correct``.
* ``language_modeling``: scoring requests over windows of the input;
  ``target_token_logprobs`` = every window's tokens after its
  ``num_conditioning_tokens`` (the empty first token HELM drops is dropped),
  concatenated per instance; ``target`` = ``input.text``.

``task`` is the run name without its ``model=``/``model_deployment=``
arguments (``mmlu:subject=anatomy,method=multiple_choice_joint``), with
``[<split>]`` appended for instances not in the ``test`` split; ``example_id``
is the instance ``id`` (``@trial<i>`` appended for train trials after the
first).

Perturbations (HELM's robustness and fairness copies of an instance, which
keep its ``id``) are skipped unless asked for (``perturbations=True``, CLI
``--perturbations``). Then each perturbation is a task of its own,
``<task>[perturbation=<label>]``, so a perturbed copy never collides with its
original and the analysis can compare the two curves. The label is the
perturbation's ``name``, with its other settings in brackets when it has any
(``typos(prob=0.1)``), so two settings of one perturbation stay apart; a copy
made with a non-default ``seed`` gets ``@seed<k>`` appended to its example id.

Scores: each statistic of ``stats.json`` gives one row, ``metric`` =
``name.name`` (``[<sub_split>]`` appended when present), ``value`` = ``mean``,
``n`` = ``count``, and the split as in the samples' task names. Without
``stats.json``, the per-instance means of ``per_instance_stats.json`` are
averaged. HELM publishes no interval, so ``ci_low``/``ci_high`` stay null,
and no direction: ``higher_is_better`` is the metric's direction in
:mod:`miragelab.metric_facts` (``exact_match``, ``f1_score``, ``rouge_l``: true;
``ece_10_bin``, ``perplexity``, ``bits_per_byte``: false), null for a statistic not
known there (``num_prompt_tokens``, ``inference_runtime``).
Statistics of perturbations are skipped unless asked for; then they go to the
perturbation's task, and a statistic HELM derives from both versions of an
instance names what it was computed on: ``exact_match[worst]`` (the worse of
the original and its perturbed copies, per instance: HELM's robustness and
fairness scores, whose tasks are ``[perturbation=robustness]`` and
``[perturbation=fairness]``) or ``exact_match[original]`` (the originals of
the perturbed instances). Older HELM versions said this with
``includes_perturbed``/``includes_identity``; both forms are read. HELM keeps
the copies made with other seeds as statistics of their own; they are pooled
(weighted by count), as their samples share the perturbation's task.

``model`` is ``adapter_spec.model`` (else ``model_deployment``); ``params``
and ``family`` come from the name (:mod:`~miragelab.sources.sizes`) unless
given; the models of one ingest whose names give no family form one family
named after their common folder (:func:`~miragelab.sources.sizes.folder_family`).
The JSON files are parsed whole (HELM runs hold thousands of instances, not
millions); an error names the file, the line where the faulty value sits and
its JSON path.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from miragelab.errors import InputError
from miragelab.metric_facts import fact_of
from miragelab.schema import (
    INTEGER,
    NUMBER,
    SCORES,
    BadValue,
    check_logprob,
    check_number,
    score_value_problem,
    validate_frame,
)
from miragelab.sources.families import name_folder_family
from miragelab.sources.letters import letter_logprobs
from miragelab.sources.lm_eval_samples import (
    ModelMeta,
    Origin,
    SamplesWriter,
    model_meta,
    write_scores_beside,
)
from miragelab.textio import JsonDocument, line_of, read_json_text

__all__ = ["HelmRun", "ingest_helm", "read_helm_run"]

Path_ = list[str | int]

SEPARATE = ("multiple_choice_separate_original", "multiple_choice_separate_calibrated")


# --------------------------------------------------------------------------- JSON with lines


class _Bad(Exception):
    """A value is wrong at a JSON path; the caller turns it into an InputError with a line."""

    def __init__(self, where: Path_, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


def _get(obj: Any, key: str, where: Path_, kind: type | tuple[type, ...], required: bool = True):
    if not isinstance(obj, dict):
        raise _Bad(where, f"expected an object, got {type(obj).__name__}")
    if key not in obj or obj[key] is None:
        if required:
            raise _Bad(where + [key], "missing")
        return None
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool) and bool not in _tuple(kind):
        names = "/".join(k.__name__ for k in _tuple(kind))
        raise _Bad(where + [key], f"expected {names}, got {type(value).__name__}")
    if isinstance(value, int) and not isinstance(value, bool):
        try:  # JSON integers have no size limit: the tables' number rule bounds them
            check_number(value, INTEGER if float not in _tuple(kind) else NUMBER)
        except BadValue as exc:
            raise _Bad(where + [key], str(exc)) from None
    return value


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _text(obj: Any, where: Path_) -> str:
    """HELM's ``Input``/``Output``: ``{"text": ...}``, or a plain string in old runs."""
    if isinstance(obj, str):
        return obj
    return _get(obj, "text", where, str)


def _logprob(obj: Any, where: Path_) -> float:
    value = _get(obj, "logprob", where, (int, float))
    try:
        return check_logprob(value)
    except BadValue as exc:
        raise _Bad(where + ["logprob"], str(exc)) from None


# --------------------------------------------------------------------------- one run


@dataclass
class _Row:
    state: int  # index of the request state, for error lines
    task: str
    example_id: str
    prompt: str | None = None
    target: str | None = None
    prediction: str | None = None
    target_token_logprobs: list[float] | None = None
    choice_logprobs: list[float] | None = None
    correct_choice: int | None = None
    references: list[str] | None = None
    choice_is_correct: list[float] | None = None


@dataclass
class HelmRun:
    """One run folder, read: model, samples rows and scores."""

    folder: Path
    meta: ModelMeta
    method: str
    state_file: JsonDocument
    rows: list[_Row] = field(default_factory=list)
    scores: pd.DataFrame | None = None
    skipped_perturbed: int = 0  # request states of perturbed instances left out

    @property
    def source(self) -> Path:
        """The run folder, as the family named after a folder uses it."""
        return self.folder


_MODEL_ARG = re.compile(r"(^|,)(model|model_deployment)=[^,]*")


def _task_base(name: str) -> str:
    if ":" not in name:
        return name
    head, args = name.split(":", 1)
    args = _MODEL_ARG.sub("", args).strip(",")
    return f"{head}:{args}" if args else head


def _task(base: str, split: Any) -> str:
    return base if split in (None, "test") else f"{base}[{split}]"


# what a PerturbationDescription says about where a statistic was computed, not which
# perturbation it is: left out of the label
_NOT_SETTINGS = {"name", "robustness", "fairness", "computed_on", "seed"}
_NOT_SETTINGS |= {"includes_perturbed", "includes_identity"}


def _setting(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def perturbation_label(description: Any, where: Path_) -> str:
    """``name``, or ``name(key=value,...)`` with the perturbation's own settings."""
    if not isinstance(description, dict):
        raise _Bad(where, f"expected an object, got {type(description).__name__}")
    name = _get(description, "name", where, str)
    settings = [
        f"{key}={_setting(value)}"
        for key, value in sorted(description.items())
        if key not in _NOT_SETTINGS and value is not None
    ]
    return f"{name}({','.join(settings)})" if settings else name


def _computed_on(description: dict) -> str:
    """``perturbed``, ``original`` or ``worst``, from either HELM form."""
    on = description.get("computed_on")
    if isinstance(on, str):
        return on
    perturbed = description.get("includes_perturbed", True)
    identity = description.get("includes_identity", False)
    if perturbed and identity:
        return "worst"
    return "original" if identity else "perturbed"


def _perturbed_task(task: str, label: str) -> str:
    return f"{task}[perturbation={label}]"


def _instance_rows(state: dict, i: int) -> tuple[dict, str, list[dict]]:
    where: Path_ = ["request_states", i]
    instance = _get(state, "instance", where, dict)
    refs = _get(instance, "references", where + ["instance"], list, required=False) or []
    for j, ref in enumerate(refs):
        at = where + ["instance", "references", j]
        _text(_get(ref, "output", at, (dict, str)), at + ["output"])
    instance_id = instance.get("id")
    if not isinstance(instance_id, str | int) or isinstance(instance_id, bool):
        raise _Bad(where + ["instance", "id"], "missing: the instance id")
    trial = state.get("train_trial_index", 0)
    trial = trial if isinstance(trial, int) and not isinstance(trial, bool) else 0
    example = f"{instance_id}@trial{trial}" if trial else str(instance_id)
    perturbation = instance.get("perturbation")
    if isinstance(perturbation, dict):
        seed = perturbation.get("seed")
        if isinstance(seed, int) and not isinstance(seed, bool):
            example += f"@seed{seed}"
    return instance, example, refs


def _is_correct(ref: dict) -> bool:
    tags = ref.get("tags")
    return isinstance(tags, list) and "correct" in tags


def _all_correct(refs: list[dict]) -> list[str]:
    """Texts of every reference tagged correct (HELM's ``golds``)."""
    return [_text(ref["output"], []) for ref in refs if _is_correct(ref)]


def _flags(refs: list[dict]) -> list[float] | None:
    """1 per reference tagged correct, 0 per other one, when several are correct."""
    flags = [float(_is_correct(ref)) for ref in refs]
    return flags if sum(flags) > 1 else None


def _correct(refs: list[dict]) -> tuple[int | None, str | None]:
    for j, ref in enumerate(refs):
        if _is_correct(ref):
            return j, _text(ref["output"], [])
    return None, None


def _completion(state: dict, where: Path_) -> tuple[dict, list[dict]]:
    """The first completion, checked: text, logprob and tokens with text and logprob."""
    result = _get(state, "result", where, dict)
    if result.get("success") is False:
        raise _Bad(where + ["result", "success"], f"the request failed: {result.get('error')}")
    completions = _get(result, "completions", where + ["result"], list)
    if not completions:
        raise _Bad(where + ["result", "completions"], "no completion")
    for c, completion in enumerate(completions):
        at = where + ["result", "completions", c]
        _get(completion, "text", at, str)
        _logprob(completion, at)
        tokens = _get(completion, "tokens", at, list, required=False) or []
        for t, token in enumerate(tokens):
            _get(token, "text", at + ["tokens", t], str)
            _logprob(token, at + ["tokens", t])
    return completions[0], completions[0].get("tokens") or []


def _span(tokens: list[dict], reference: str, where: Path_) -> list[float]:
    """Log-probs of the fewest trailing tokens that spell ``reference`` (HELM's answer span)."""
    want = reference.strip()
    if not want:
        raise _Bad(where, "an empty reference has no tokens to score")
    text = ""
    for k in range(1, len(tokens) + 1):
        text = tokens[-k]["text"] + text
        spelled = text.replace("\u0120", " ").replace("\u2581", " ").strip()
        if spelled.endswith(want):
            return [float(t["logprob"]) for t in tokens[-k:]]
    raise _Bad(where, f"the echoed tokens do not end with the reference {want[:40]!r}")


def _rows(states: list[Any], method: str, base: str, perturbations: bool) -> tuple[list[_Row], int]:
    """The samples rows of a run, and how many perturbed request states were skipped."""
    rows: list[_Row] = []
    groups: dict[tuple[str, str], dict[str, Any]] = {}  # separate MC: per instance
    lm: dict[tuple[str, str], _Row] = {}  # language modeling: per instance
    joint_complete = True
    skipped = 0
    for i, state in enumerate(states):
        where: Path_ = ["request_states", i]
        if not isinstance(state, dict):
            raise _Bad(where, f"expected an object, got {type(state).__name__}")
        instance, example, refs = _instance_rows(state, i)
        task = _task(base, instance.get("split"))
        if instance.get("perturbation"):
            if not perturbations:
                skipped += 1
                continue
            at = where + ["instance", "perturbation"]
            task = _perturbed_task(task, perturbation_label(instance["perturbation"], at))
        request = _get(state, "request", where, dict)
        prompt = _get(request, "prompt", where + ["request"], str)
        completion, tokens = _completion(state, where)
        index, target = _correct(refs)
        if method == "language_modeling":
            skip = state.get("num_conditioning_tokens", 0)
            skip = skip if isinstance(skip, int) and not isinstance(skip, bool) else 0
            if skip > 0 and tokens and tokens[0]["text"] == "":
                tokens = tokens[1:]
            if not tokens[skip:]:
                raise _Bad(where + ["result", "completions", 0, "tokens"], "no scored tokens")
            key = (task, example)
            if key not in lm:
                text = _text(_get(instance, "input", where + ["instance"], (dict, str)), [])
                lm[key] = _Row(i, task, example, None, text, None, [])
                rows.append(lm[key])
            assert lm[key].target_token_logprobs is not None
            lm[key].target_token_logprobs.extend(float(t["logprob"]) for t in tokens[skip:])
        elif method in SEPARATE:
            ref_index = state.get("reference_index")
            if isinstance(ref_index, bool) or not isinstance(ref_index, int):
                raise _Bad(
                    where + ["reference_index"], "missing: the answer choice this request scores"
                )
            if not 0 <= ref_index < len(refs):
                raise _Bad(where + ["reference_index"], f"{ref_index} but {len(refs)} references")
            if state.get("request_mode") == "calibration":
                continue
            if not tokens:
                raise _Bad(where + ["result", "completions", 0, "tokens"], "no echoed tokens")
            reference = _text(refs[ref_index]["output"], [])
            span = _span(tokens, reference, where + ["result", "completions", 0, "tokens"])
            group = groups.setdefault(
                (task, example),
                {"state": i, "n": len(refs), "sums": {}, "row": None, "flags": _flags(refs)},
            )
            group["sums"][ref_index] = sum(span)
            if ref_index == index:
                stem = (
                    prompt[: len(prompt) - len(reference)] if prompt.endswith(reference) else prompt
                )
                group["row"] = _Row(i, task, example, stem, target, None, span, None, index)
        else:
            text = completion["text"]
            mapping = state.get("output_mapping")
            choices = None
            if isinstance(mapping, dict) and mapping:
                prediction = mapping.get(text.strip(), text.strip())
                choices = (
                    letter_logprobs(tokens[0].get("top_logprobs"), list(mapping))
                    if tokens
                    else None
                )
                joint_complete &= choices is not None
            else:
                prediction = text
            row = _Row(i, task, example, prompt, target, prediction, None, choices, index)
            golds = _all_correct(refs)  # HELM's exact match takes the best correct reference
            row.references = golds if len(golds) > 1 else None
            if choices is not None:
                row.choice_is_correct = _flags(refs)
            rows.append(row)
    for (_, example), group in groups.items():
        n = group["n"]
        missing = [j for j in range(n) if j not in group["sums"]]
        where = ["request_states", group["state"]]
        if missing:
            raise _Bad(where, f"instance {example!r} has no request for reference {missing[0]}")
        row = group["row"]
        if row is None:
            raise _Bad(where + ["instance", "references"], "no reference is tagged 'correct'")
        row.choice_logprobs = [group["sums"][j] for j in range(n)]
        row.choice_is_correct = group["flags"]
        rows.append(row)
    rows.sort(key=lambda r: r.state)
    if not joint_complete:  # a column filled on some rows only would mislead the scorer
        for row in rows:
            row.choice_logprobs = None
    for row in rows:
        if row.choice_logprobs is not None and len(row.choice_logprobs) < 2:
            row.choice_logprobs = None
        if row.choice_logprobs is None:
            row.correct_choice = None
            row.choice_is_correct = None
    return rows, skipped


def _model_name(spec: dict) -> str | None:
    adapter = spec.get("adapter_spec")
    if not isinstance(adapter, dict):
        return None
    for key in ("model", "model_deployment"):
        value = adapter.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def read_helm_run(
    folder: str | os.PathLike[str],
    *,
    model: str | None = None,
    family: str | None = None,
    params: float | str | None = None,
    perturbations: bool = False,
) -> HelmRun:
    """Read one HELM run folder: its samples rows and its scores table.

    ``perturbations``: keep perturbed instances and statistics, each
    perturbation as a task of its own (see the module docstring).
    """
    run = Path(folder)
    if not run.is_dir():
        raise InputError("not a HELM run folder (expected a folder)", path=run)
    state_path = run / "scenario_state.json"
    if not state_path.is_file():
        raise InputError("no scenario_state.json in this HELM run folder", path=run)
    state = read_json_text(state_path)
    # optional files that exist are read (a pipe or a folder in their place is refused)
    spec_file = read_json_text(run / "run_spec.json") if (run / "run_spec.json").exists() else None
    spec = spec_file.data if spec_file is not None else {}
    if not isinstance(spec, dict):
        raise spec_file.error([], "expected a JSON object")  # type: ignore[union-attr]
    if not isinstance(state.data, dict):
        raise state.error([], "expected a JSON object with 'request_states'")
    name = model or _model_name(spec) or _model_name(state.data)
    where = spec_file.path if spec_file is not None else state.path
    if name is None:
        raise InputError(
            "cannot tell the model (no adapter_spec.model); pass --model", path=where, field="model"
        )
    meta = model_meta({}, where, model=name, family=family, params=params)
    adapter = spec.get("adapter_spec") or state.data.get("adapter_spec") or {}
    method = adapter.get("method", "generation") if isinstance(adapter, dict) else "generation"
    base = _task_base(str(spec.get("name") or run.name))
    states = state.data.get("request_states")
    if not isinstance(states, list):
        raise state.error(["request_states"], "missing: expected a list of request states")
    if not states:
        raise state.error(["request_states"], "no request states")
    try:
        rows, skipped = _rows(states, str(method), base, perturbations)
    except _Bad as bad:
        raise state.error(bad.where, bad.message) from None
    result = HelmRun(run, meta, str(method), state, rows, skipped_perturbed=skipped)
    result.scores = _scores(run, base, meta, perturbations)
    return result


# --------------------------------------------------------------------------- scores


def _stat_value(
    stat: Any, where: Path_, perturbations: bool, perturbation: Any = None
) -> tuple[str, str, float, int] | None:
    """(task suffix, metric, mean, count) of one statistic; None for skipped or empty ones.

    ``perturbation`` is the entry's own (``per_instance_stats.json`` puts it
    beside the statistics); a statistic's name may carry one too.
    """
    name = _get(stat, "name", where, dict)
    metric = _get(name, "name", where + ["name"], str)
    if name.get("perturbation"):
        perturbation, at = name["perturbation"], where + ["name", "perturbation"]
    else:
        at = where[:-2] + ["perturbation"]  # the entry's, beside its "stats" list
    if perturbation and not perturbations:
        return None
    count = _get(stat, "count", where, int)
    if count == 0:
        return None
    mean = _get(stat, "mean", where, (int, float), required=False)
    if mean is None:
        total = _get(stat, "sum", where, (int, float))
        mean = total / count
    if isinstance(mean, bool) or not isinstance(mean, int | float) or not math.isfinite(mean):
        raise _Bad(where + ["mean"], f"expected a finite number, got {mean!r}")
    problem = score_value_problem(metric, mean)
    if problem is not None:
        raise _Bad(where + ["mean"], problem)
    if name.get("sub_split"):
        metric = f"{metric}[{name['sub_split']}]"
    task = _task("", name.get("split"))
    if perturbation:
        task = _perturbed_task(task, perturbation_label(perturbation, at))
        on = _computed_on(perturbation)
        if on != "perturbed":
            metric = f"{metric}[{on}]"
    return task, metric, float(mean), count


def _pool(records: dict, key: tuple[str, str], mean: float, count: int) -> None:
    """Add a statistic; one met again (another seed of a perturbation, another instance)
    is pooled with it, weighted by count."""
    if key in records:
        seen = records[key]
        total = seen["n"] + count
        mean = (seen["value"] * seen["n"] + mean * count) / total
        count = total
    records[key] = {"value": mean, "n": count}


def _direction(metric: str) -> bool | None:
    """HELM's statistics state no direction: the metric's fact, else null."""
    fact = fact_of(metric)
    return None if fact is None else fact.higher_is_better


def _scores(run: Path, base: str, meta: ModelMeta, perturbations: bool) -> pd.DataFrame | None:
    records: dict[tuple[str, str], dict[str, Any]] = {}
    stats_path, per_path = run / "stats.json", run / "per_instance_stats.json"
    if stats_path.exists():
        stats = read_json_text(stats_path)
        if not isinstance(stats.data, list):
            raise stats.error([], "expected a list of statistics")
        for i, stat in enumerate(stats.data):
            try:
                got = _stat_value(stat, [i], perturbations)
            except _Bad as bad:
                raise stats.error(bad.where, bad.message) from None
            if got is not None:
                suffix, metric, mean, count = got
                _pool(records, (base + suffix, metric), mean, count)
    elif per_path.exists():
        per = read_json_text(per_path)
        if not isinstance(per.data, list):
            raise per.error([], "expected a list of per-instance statistics")
        for i, entry in enumerate(per.data):
            try:
                own = entry.get("perturbation") if isinstance(entry, dict) else None
                for j, stat in enumerate(_get(entry, "stats", [i], list)):
                    got = _stat_value(stat, [i, "stats", j], perturbations, own)
                    if got is not None:  # one instance's mean: an instance counts once
                        suffix, metric, mean, _ = got
                        _pool(records, (base + suffix, metric), mean, 1)
            except _Bad as bad:
                raise per.error(bad.where, bad.message) from None
    else:
        return None
    if not records:
        return None
    frame = pd.DataFrame(
        [
            {
                "task": task,
                "family": meta.family,
                "model": meta.model,
                "params": meta.params,
                "step": meta.step,
                "metric": metric,
                "higher_is_better": _direction(metric),
                **values,
            }
            for (task, metric), values in records.items()
        ]
    )
    return frame


# --------------------------------------------------------------------------- ingest


@dataclass
class HelmSummary:
    """What was read and written."""

    out: Path
    rows: int = 0
    runs: int = 0
    scores_out: Path | None = None
    score_rows: int = 0
    tasks: dict[str, int] = field(default_factory=dict)
    skipped_perturbed: int = 0
    #: what the reader decided for the user (one line each), e.g. a family it named
    notes: list[str] = field(default_factory=list)


def ingest_helm(
    run_dirs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    scores_out: str | os.PathLike[str] | None = None,
    model: str | None = None,
    family: str | None = None,
    params: float | str | None = None,
    perturbations: bool = False,
) -> HelmSummary:
    """Read HELM run folders into one samples parquet file (and a scores table).

    Every input is read and checked before anything is written; on bad input
    :class:`InputError` names the file, line and JSON path, and neither output
    is written. ``perturbations`` keeps perturbed instances and statistics as
    tasks of their own.
    """
    if not run_dirs:
        raise InputError("no HELM run folders given")
    runs = [
        read_helm_run(d, model=model, family=family, params=params, perturbations=perturbations)
        for d in run_dirs
    ]
    notes = [] if family is not None else name_folder_family(runs)
    scores = [r.scores for r in runs if r.scores is not None]
    score_table = None
    if scores_out is not None:
        if not scores:
            raise InputError(
                "no stats.json or per_instance_stats.json in the run folders",
                path=runs[0].folder,
                field="scores-out",
            )
        score_table = validate_frame(pd.concat(scores, ignore_index=True), SCORES)
    summary = HelmSummary(
        Path(out), skipped_perturbed=sum(r.skipped_perturbed for r in runs), notes=notes
    )
    with SamplesWriter(out) as writer:
        for run in runs:
            writer.check_model(run.meta, run.state_file.path)
            text = run.state_file.text
            origins: dict[str, Origin] = {}
            for row in run.rows:
                if row.task not in origins:
                    origins[row.task] = Origin(
                        row.task,
                        run.meta,
                        run.state_file.path,
                        locate=lambda i, t=text: line_of(t, ["request_states", i]),
                        id_field="instance.id",
                    )
                writer.start(origins[row.task], "any")
                writer.add(
                    example_id=row.example_id,
                    line=row.state,
                    prompt=row.prompt,
                    target=row.target,
                    references=row.references,
                    prediction=row.prediction,
                    target_token_logprobs=row.target_token_logprobs,
                    choice_logprobs=row.choice_logprobs,
                    correct_choice=row.correct_choice,
                    choice_is_correct=row.choice_is_correct,
                )
                summary.tasks[row.task] = summary.tasks.get(row.task, 0) + 1
            summary.runs += 1
        writer.flush()
        summary.rows = writer.rows
    if score_table is not None and scores_out is not None:
        summary.scores_out = write_scores_beside(score_table, scores_out, out)
        summary.score_rows = len(score_table)
    return summary
