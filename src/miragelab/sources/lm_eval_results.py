"""lm-evaluation-harness ``results`` JSON files -> the scores table.

Two formats are read:

* **0.3** (the ``pythia-evals`` files): ``{"results": {task: {"acc": .., "acc_stderr": ..,
  "ppl": .., "ppl_stderr": ..}}, "config": {"model_args": "pretrained=ORG/NAME,revision=stepN",
  "num_fewshot": K, ...}, "versions": {...}}``.
* **0.4**: metric keys carry a filter, ``"acc,none"`` and ``"acc_stderr,none"``; optional
  ``"n-samples": {task: {"original": N, "effective": M}}``, ``"n-shot": {task: K}``,
  ``"configs": {task: {"num_fewshot": K}}``, ``"higher_is_better": {task: {metric: bool}}``,
  and model details in ``config`` or at the top level (``model_name``,
  ``model_num_parameters``, ``model_revision``).

Naming
------
* ``task``: the results key (``lambada_openai``, ``hendrycksTest-anatomy``). A
  few-shot run gets the suffix ``@<K>shot`` (``lambada_openai@5shot``), so zero-
  and few-shot scores of one checkpoint stay apart in one table. The shot count
  is the task's ``n-shot`` entry, else ``configs[task].num_fewshot``, else
  ``config.num_fewshot``.
* ``metric``: the key before the comma; the ``none`` filter is dropped
  (``acc,none`` -> ``acc``), any other filter is kept in brackets
  (``exact_match,strict-match`` -> ``exact_match[strict-match]``). Keys ending
  in ``_stderr`` are not metrics: they fill ``stderr`` of their metric, and
  ``ci_low``/``ci_high`` = value -/+ 1.96 * stderr (``ci_method`` ``"normal (published
  stderr)"``; not clipped to the metric's range). A published stderr of 0 at 0% or
  100% (lm-eval's binomial formula) is not kept: the score gets the Wilson interval
  of its ``n-samples`` (``ci_method`` ``"wilson (published stderr 0 at the
  boundary)"``), or no interval when the file gives no count, and a null stderr
  (:func:`miragelab.stats.published_interval`). Values are stored as
  published: accuracies are fractions, perplexities are perplexities.
* ``model``: the ``pretrained=`` value of ``model_args`` (full Hugging Face id,
  e.g. ``EleutherAI/pythia-v1.1-1.4b-deduped``), else ``model_name``, else the
  file name without its ``_stepN`` part. ``family``:
  :func:`~miragelab.sources.sizes.family_from_name` (``pythia-v1.1-deduped``);
  the runs of one :func:`~miragelab.sources.published.load_scores` whose names
  give no family form one family named after their common folder
  (:func:`~miragelab.sources.sizes.folder_family`).
  ``step``: ``revision=stepN`` in ``model_args`` (or ``model_revision``),
  else ``_step(\\d+)`` in the file name.
  Explicit ``model=``/``family=`` arguments override what the file says.
* ``params``: the ``params=`` argument, else the ``sizes`` sidecar mapping, else
  ``model_num_parameters``, else :func:`~miragelab.sources.sizes.size_from_name`
  (exact Pythia counts from :data:`~miragelab.sources.sizes.KNOWN_FAMILIES`).
  None of them -> :class:`~miragelab.errors.InputError` for field ``params``.
* ``tokens_trained``: step x tokens per step for families that publish it
  (Pythia: 2,097,152); null otherwise and at step 0. ``compute_flops`` is left
  null: the files do not give it.
* ``higher_is_better``: the file's own ``higher_is_better`` when present, else the
  metric's direction in :mod:`miragelab.metric_facts` when it is known there, else
  null (never a guess: the analysis then asks for it). ``n``:
  ``n-samples[task].effective`` when present.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from miragelab.errors import InputError
from miragelab.metric_facts import fact_of, is_proportion
from miragelab.schema import (
    NUMBER,
    SCORES,
    BadValue,
    check_number,
    score_value_problem,
    validate_frame,
)
from miragelab.sources.sizes import (
    family_from_name,
    known_family,
    lookup_size,
    parse_params,
    read_size_sidecar,
    size_from_name,
)
from miragelab.stats import published_interval
from miragelab.textio import json_error, read_json_document

__all__ = [
    "is_lm_eval_results",
    "load_lm_eval_results",
    "read_json",
]


def read_json(path: str | os.PathLike[str]) -> Any:
    """Parse a JSON file (plain or gzip); any problem -> :class:`InputError` naming the
    file and, for a syntax error or a byte that is not UTF-8, the line.

    Python's ``json`` is the fallback for NaN/Infinity, which lm-eval can write.
    """
    return read_json_document(path)


def is_lm_eval_results(data: Any) -> bool:
    """Whether parsed JSON looks like an lm-eval results file."""
    return isinstance(data, dict) and isinstance(data.get("results"), dict)


def _parse_model_args(text: Any) -> dict[str, str]:
    if isinstance(text, dict):
        return {str(k): str(v) for k, v in text.items()}
    if not isinstance(text, str):
        return {}
    out: dict[str, str] = {}
    for part in text.split(","):
        if "=" in part:
            key, value = part.split("=", 1)
            out[key.strip()] = value.strip()
    return out


_STEP_REVISION = re.compile(r"(?:global_)?step[-_]?(\d+)", re.I)
_STEP_IN_NAME = re.compile(r"_step(\d+)")


def _number(value: Any, path: Path, keys: tuple) -> float | None:
    """A finite float, or None for strings ("N/A"), bools, NaN and missing; an integer
    beyond a double (JSON integers have no size limit) is refused at its line."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        try:
            check_number(value, NUMBER)
        except BadValue as exc:
            raise json_error(str(exc), path, keys) from None
    value = float(value)
    return value if math.isfinite(value) else None


#: lm-eval writes ``model_num_parameters: -1`` when it cannot count the parameters
_UNKNOWN_SIZE = -1


def _resolve_params(
    path: Path,
    model: str,
    params: float | str | None,
    sizes: Mapping[str, float] | None,
    from_file: Any,
    file_keys: tuple[str, ...],
    hint: str,
    locate: bool,
) -> float:
    if params is not None:  # given by hand: an error is the option's, not the file's
        try:
            return parse_params(params)
        except InputError as exc:
            raise InputError(exc.message, field="params") from None
    value = lookup_size(dict(sizes) if sizes else None, model)
    if value is not None:
        return value
    number = _number(from_file, path, file_keys)
    if number is not None and number >= 1 and float(number).is_integer():
        return number  # the harness writes the model's parameter count, a whole number
    stated = from_file is not None and not (
        isinstance(from_file, int)
        and not isinstance(from_file, bool)
        and from_file == _UNKNOWN_SIZE
    )
    if stated:  # a size that is not a size: refuse rather than guess from the name
        raise json_error(
            f"model_num_parameters must be a whole number >= 1 (or -1 for unknown), "
            f"got {from_file!r}",
            path,
            file_keys,
        )
    value = size_from_name(model)
    if value is not None:
        return value
    said = "no model_num_parameters" if from_file is None else "model_num_parameters -1 (unknown)"
    message = (
        f"cannot tell the size of model {model!r}: the file has {said}, "
        f"the name has no size token and no known family matches; {hint}"
    )
    if not locate:
        raise InputError(message, path=path, field="params")
    raise json_error(message, path, file_keys, field="params")


def shots_of(data: dict[str, Any], task: str) -> int:
    """Few-shot count of ``task``: ``n-shot``, else ``configs[task]``, else ``config``."""

    def obj(value: Any) -> dict[str, Any]:  # anything but an object holds no count
        return value if isinstance(value, dict) else {}

    for candidate in (
        obj(data.get("n-shot")).get(task),
        obj(obj(data.get("configs")).get(task)).get("num_fewshot"),
        obj(data.get("config")).get("num_fewshot"),
    ):
        if (
            isinstance(candidate, int)
            and not isinstance(candidate, bool)
            and 0 <= candidate < 2**31
        ):
            return candidate
        if isinstance(candidate, str) and candidate.isdigit():
            return int(candidate)
    return 0


@dataclass(frozen=True)
class RunModel:
    """Who produced a run: the model columns its scores and samples share."""

    family: str
    model: str
    params: float
    step: int | None = None
    tokens_trained: float | None = None


def run_model(
    data: dict[str, Any],
    path: str | os.PathLike[str],
    *,
    model: str | None = None,
    family: str | None = None,
    params: float | str | None = None,
    sizes: Mapping[str, float] | None = None,
    name_from_file: bool = True,
    size_hint: str = "pass params= or a sizes sidecar (model,params CSV)",
) -> RunModel:
    """The model of a parsed results file (``{}`` when there is none) and the overrides.

    One reading for ``results_*.json`` and for the ``--log_samples`` files beside
    it, so the scores and the samples of a run name the model alike. ``path`` is
    the file named in errors. ``name_from_file``: ``path`` is the results file
    itself, so its stem may name the model and a missing size points at the
    line of the object lacking it; otherwise (samples beside it) neither.
    """
    p = Path(path)
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    args = _parse_model_args(config.get("model_args"))
    name = (
        model
        or args.get("pretrained")
        or config.get("model_name")
        or data.get("model_name")
        or (_STEP_IN_NAME.sub("", p.stem) if name_from_file else None)
    )
    if not isinstance(name, str) or not name:
        raise InputError(
            "cannot tell the model name (no config.model_args pretrained= and no "
            "model_name); pass the model name",
            path=p,
            field="model",
        )
    step: int | None = None
    revision = args.get("revision") or config.get("model_revision") or data.get("model_revision")
    if isinstance(revision, str):
        match = _STEP_REVISION.fullmatch(revision.strip())
        if match:
            step = int(match.group(1))
    if step is None:
        match = _STEP_IN_NAME.search(p.name)
        if match:
            step = int(match.group(1))
    if step is not None:
        try:  # the tables' step rule: a 64-bit integer
            check_number(step, SCORES.field("step"))
        except BadValue as exc:
            raise InputError(f"step from the revision: {exc}", path=p, field="step") from None
    in_config = "model_num_parameters" in config
    n_params = _resolve_params(
        p,
        name,
        params,
        sizes,
        config.get("model_num_parameters", data.get("model_num_parameters")),
        ("config", "model_num_parameters") if in_config else ("model_num_parameters",),
        size_hint,
        locate=name_from_file,
    )
    known = known_family(name)
    tokens = None
    if known is not None and known[0].tokens_per_step and step:
        tokens = float(step * known[0].tokens_per_step)
    return RunModel(family or family_from_name(name), name, n_params, step, tokens)


def _split_key(key: str) -> tuple[str, str]:
    """``"acc,none"`` -> ``("acc", "none")``; ``"acc"`` -> ``("acc", "")``."""
    if "," in key:
        name, filt = key.split(",", 1)
        return name, filt
    return key, ""


def _metric_name(name: str, filt: str) -> str:
    return name if filt in ("", "none") else f"{name}[{filt}]"


def lm_eval_records(
    data: Any,
    path: str | os.PathLike[str],
    *,
    model: str | None = None,
    family: str | None = None,
    params: float | str | None = None,
    sizes: Mapping[str, float] | None = None,
    notes: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Score records (dicts with the scores columns) of one parsed results file, unvalidated.

    Scores the harness wrote as NaN or infinity are left out, and ``notes`` (where
    given) says which."""
    p = Path(path)
    if not is_lm_eval_results(data):
        raise json_error(
            "not an lm-eval results file (expected an object with a 'results' object)",
            p,
            ("results",),
        )
    who = run_model(data, p, model=model, family=family, params=params, sizes=sizes)

    hib_table = (
        data.get("higher_is_better") if isinstance(data.get("higher_is_better"), dict) else {}
    )
    n_samples = data.get("n-samples") if isinstance(data.get("n-samples"), dict) else {}

    records: list[dict[str, Any]] = []
    unscored: list[str] = []
    for task, metrics in data["results"].items():
        if not isinstance(metrics, dict):
            raise json_error(
                f"results[{task!r}] should be an object of metrics, got {type(metrics).__name__}",
                p,
                ("results", task),
            )
        shots = shots_of(data, task)
        task_name = f"{task}@{shots}shot" if shots > 0 else str(task)
        hib = hib_table.get(task) if isinstance(hib_table.get(task), dict) else {}
        n = None
        counts = n_samples.get(task)
        if isinstance(counts, dict):
            effective = counts.get("effective", counts.get("original"))
            if isinstance(effective, int) and not isinstance(effective, bool) and effective >= 0:
                n = effective
        stderrs: dict[tuple[str, str], float | None] = {}
        for key, value in metrics.items():
            base, filt = _split_key(key)
            if base.endswith("_stderr"):
                stderrs[(base[: -len("_stderr")], filt)] = _number(value, p, ("results", task, key))
        for key, value in metrics.items():
            base, filt = _split_key(key)
            if base.endswith("_stderr") or base == "alias":
                continue
            number = _number(value, p, ("results", task, key))
            if number is None:
                if isinstance(value, float) or (  # NaN or inf, or a number written as text
                    isinstance(value, str) and value.strip().upper() not in ("N/A", "NA", "")
                ):
                    unscored.append(f"{task_name}/{key}")
                continue  # strings ("alias", "N/A") and nulls carry no score
            problem = score_value_problem(base, number)
            if problem is not None:
                raise json_error(problem, p, ("results", task, key))
            higher = hib.get(base)
            fact = fact_of(base)
            if not isinstance(higher, bool):
                higher = None if fact is None else fact.higher_is_better
            low, high, method, err = published_interval(
                number, stderrs.get((base, filt)), n, is_proportion(base)
            )
            records.append(
                {
                    "task": task_name,
                    "family": who.family,
                    "model": who.model,
                    "params": who.params,
                    "compute_flops": None,
                    "tokens_trained": who.tokens_trained,
                    "step": who.step,
                    "metric": _metric_name(base, filt),
                    "value": number,
                    "ci_low": low,
                    "ci_high": high,
                    "n": n,
                    "ci_method": method,
                    "stderr": err,
                    "higher_is_better": higher,
                }
            )
    if not records:
        raise json_error("no numeric scores in the results", p, ("results",))
    if unscored and notes is not None:
        shown = ", ".join(unscored[:3]) + (", ..." if len(unscored) > 3 else "")
        notes.append(f"{p}: {len(unscored)} score(s) are not numbers and are left out ({shown})")
    return records


def sizes_mapping(
    sizes: Mapping[str, float] | str | os.PathLike[str] | None,
) -> Mapping[str, float] | None:
    if sizes is None or isinstance(sizes, Mapping):
        return sizes
    return read_size_sidecar(sizes)


def load_lm_eval_results(
    path: str | os.PathLike[str],
    *,
    model: str | None = None,
    family: str | None = None,
    params: float | str | None = None,
    sizes: Mapping[str, float] | str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Load one lm-eval results JSON (0.3 or 0.4 format) as a validated scores table.

    Parameters
    ----------
    path
        The results JSON.
    model, family
        Override the names read from the file (see the module docstring).
    params
        Parameter count (number or ``"1.4b"``); overrides every other source.
    sizes
        ``{model: params}`` or the path of a ``model,params`` sidecar CSV.
    """
    p = Path(path)
    data = read_json(p)
    records = lm_eval_records(
        data, p, model=model, family=family, params=params, sizes=sizes_mapping(sizes)
    )
    return validate_frame(pd.DataFrame.from_records(records), SCORES, path=p)
