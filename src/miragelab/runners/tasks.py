"""Tasks for ``mirage eval``: a JSONL file of the user's examples, or a built-in task by name.

The file format (generation and multiple-choice lines) and the built-in
arithmetic tasks are described in ``docs/eval.md`` ("Tasks").
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from miragelab.atomic import atomic_path
from miragelab.errors import InputError
from miragelab.textio import malformed_json

Kind = Literal["generate", "choice"]

#: examples of a built-in task when no ``--limit`` is given (as ``mirage ladder eval``)
DEFAULT_BUILTIN_N = 1000
#: new tokens of a greedy answer when a file task gives no ``--max-tokens``
DEFAULT_MAX_TOKENS = 32


@dataclass(frozen=True)
class Example:
    """One example; ``target`` is the correct choice's text for multiple choice."""

    example_id: str
    prompt: str
    target: str
    choices: tuple[str, ...] | None = None
    answer: int | None = None
    #: every acceptable answer of a multi-reference example (for multiple choice: the
    #: texts of the correct choices, where several are)
    references: tuple[str, ...] | None = None
    #: every correct choice, where several are (``answer`` is the first)
    answers: tuple[int, ...] | None = None
    #: line of the task file it came from (None for built-in tasks)
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class EvalTask:
    """A task's examples and its generation settings."""

    name: str
    kind: Kind
    examples: tuple[Example, ...]
    stop: tuple[str, ...] = ()
    max_tokens: int = DEFAULT_MAX_TOKENS
    #: how to load it again (a JSON-able dict, see :func:`load_task_ref`)
    ref: dict[str, Any] = field(default_factory=dict, compare=False)
    #: digest of the examples, so a changed file is a different run
    digest: str = ""


# --------------------------------------------------------------------------- JSONL


def _open_text(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise InputError("is a folder; expected a task JSONL file", path=path) from None
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"corrupt gzip data ({exc})", path=path) from None
    return raw


def _example_from(
    obj: Any, path: Path, line: int, index: int, kind: Kind | None, first_line: int
) -> Example:
    if not isinstance(obj, dict):
        raise InputError(f"expected a JSON object, got {type(obj).__name__}", path=path, line=line)
    if "id" in obj:
        raw_id = obj["id"]
        if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or raw_id == "":
            raise InputError(
                f"must be a non-empty string or an integer, got {raw_id!r}",
                path=path,
                line=line,
                field="id",
            )
        example_id = str(raw_id)
    else:
        example_id = str(index)
    prompt = obj.get("prompt")
    if "prompt" not in obj:
        raise InputError("required key is missing", path=path, line=line, field="prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError(
            f"must be a string with a non-space character, got {prompt!r}"[:120],
            path=path,
            line=line,
            field="prompt",
        )
    has_choices = "choices" in obj or "answer" in obj
    this: Kind = "choice" if has_choices else "generate"
    if has_choices and "target" in obj:
        raise InputError(
            "give either 'target' (generation) or 'choices' and 'answer' (multiple choice)",
            path=path,
            line=line,
            field="target",
        )
    if kind is not None and this != kind:
        other = "multiple-choice" if kind == "choice" else "generation"
        raise InputError(
            f"line {first_line} makes this a {other} task; every line must be of one kind",
            path=path,
            line=line,
            field="choices" if this == "choice" else "target",
        )
    if this == "generate":
        if "target" not in obj:
            raise InputError(
                "required key is missing (or give 'choices' and 'answer')",
                path=path,
                line=line,
                field="target",
            )
        target = obj["target"]
        if not isinstance(target, str) or not target:
            raise InputError(
                f"must be a non-empty string, got {target!r}"[:120],
                path=path,
                line=line,
                field="target",
            )
        references = obj.get("references")
        if references is not None and (
            not isinstance(references, list)
            or not references
            or not all(isinstance(r, str) for r in references)
        ):
            raise InputError(
                f"must be a non-empty list of strings, got {references!r}"[:120],
                path=path,
                line=line,
                field="references",
            )
        refs = None if references is None else tuple(references)
        return Example(example_id, prompt, target, references=refs, line=line)
    for key in ("choices", "answer"):
        if key not in obj:
            raise InputError("required key is missing", path=path, line=line, field=key)
    choices = obj["choices"]
    if (
        not isinstance(choices, list)
        or len(choices) < 2
        or not all(isinstance(c, str) and c for c in choices)
    ):
        raise InputError(
            "must be a list of at least 2 non-empty strings", path=path, line=line, field="choices"
        )
    given = obj["answer"]
    if isinstance(given, list) and not given:
        raise InputError("an empty list of correct choices", path=path, line=line, field="answer")
    indices = []
    for i, answer in enumerate(given if isinstance(given, list) else [given]):
        at = f"answer[{i}]" if isinstance(given, list) else "answer"
        if isinstance(answer, bool) or not isinstance(answer, int):
            raise InputError(
                f"must be an integer index into 'choices' (or a list of them), got {answer!r}",
                path=path,
                line=line,
                field=at,
            )
        if not 0 <= answer < len(choices):
            raise InputError(
                f"{answer} is out of range for {len(choices)} choices (0-based)",
                path=path,
                line=line,
                field=at,
            )
        if answer not in indices:
            indices.append(answer)
    first = indices[0]
    several = tuple(indices) if len(indices) > 1 else None
    refs = None if several is None else tuple(choices[i] for i in several)
    return Example(
        example_id,
        prompt,
        choices[first],
        tuple(choices),
        first,
        references=refs,
        answers=several,
        line=line,
    )


def read_task_jsonl(path: str | os.PathLike[str]) -> tuple[Kind, list[Example], str]:
    """Validated examples of a task file, its kind, and a digest of its bytes."""
    file = Path(path)
    raw = _open_text(file)
    digest = hashlib.sha256(raw).hexdigest()[:16]
    examples: list[Example] = []
    kind: Kind | None = None
    first_line = 0
    seen: dict[str, int] = {}
    for number, data in enumerate(raw.split(b"\n"), start=1):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text (byte {exc.start})", path=file, line=number) from None
        if not text.strip():
            continue
        try:
            obj = json.loads(text, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise malformed_json(exc.msg, file, number) from None
        except ValueError as exc:
            raise InputError(str(exc), path=file, line=number) from None
        example = _example_from(obj, file, number, len(examples), kind, first_line)
        if kind is None:
            kind = "choice" if example.choices is not None else "generate"
            first_line = number
        if example.example_id in seen:
            raise InputError(
                f"duplicate id {example.example_id!r} (first on line {seen[example.example_id]})",
                path=file,
                line=number,
                field="id",
            )
        seen[example.example_id] = number
        examples.append(example)
    if kind is None:
        raise InputError("holds no examples", path=file)
    return kind, examples, digest


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def task_name_of(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".jsonl", ".ndjson", ".json"):
        name = name.removesuffix(suffix)
    return name or path.name


# --------------------------------------------------------------------------- built-in tasks


def builtin_names() -> list[str]:
    """The built-in tasks one can evaluate: each plain arithmetic task, and each part of a
    mix (``addmix-len1`` .. ``-len5``; the mix itself is for training)."""
    from miragelab.ladder.tasks import task_parts

    return list(task_parts())


def arithmetic_examples(name: str, n: int, seed: int = 0) -> list[Example]:
    """The first ``n`` held-out pairs of an arithmetic task, as ``mirage ladder eval`` has them."""
    from miragelab.ladder.tasks import heldout_pairs, heldout_part, task_parts

    task, part = task_parts()[name]
    a, b = heldout_pairs(task, n, seed) if part is None else heldout_part(task, part, n, seed)
    return [
        Example(f"{x}{task.op}{y}", task.prompt(x, y), task.answer(x, y))
        for x, y in zip(a.tolist(), b.tolist(), strict=True)
    ]


# --------------------------------------------------------------------------- loading


def _check_settings(stop: Sequence[str], max_tokens: int | None, limit: int | None) -> None:
    if any(not s for s in stop):
        raise InputError("stop strings must be non-empty", field="stop")
    if max_tokens is not None and max_tokens < 1:
        raise InputError(f"must be >= 1, got {max_tokens}", field="max-tokens")
    if limit is not None and limit < 1:
        raise InputError(f"must be >= 1, got {limit}", field="limit")


def load_task(
    spec: str,
    *,
    limit: int | None = None,
    seed: int = 0,
    stop: Sequence[str] = (),
    max_tokens: int | None = None,
    name: str | None = None,
) -> EvalTask:
    """A task by built-in name (``add4``) or JSONL path, validated.

    ``limit`` keeps the first examples (for a built-in task it is the number of
    held-out examples, ``DEFAULT_BUILTIN_N`` without it).
    """
    _check_settings(stop, max_tokens, limit)
    if spec in builtin_names() and not Path(spec).exists():
        from miragelab.ladder.tasks import task_parts

        n = limit or DEFAULT_BUILTIN_N
        examples = arithmetic_examples(spec, n, seed)
        budget = max_tokens or task_parts()[spec][0].max_answer_len + 1
        ref = {"builtin": spec, "n": n, "seed": seed}
        digest = hashlib.sha256(json.dumps(ref, sort_keys=True).encode()).hexdigest()[:16]
        kind: Kind = "generate"
    else:
        path = Path(spec)
        if not path.exists():
            raise InputError(
                f"{spec!r} is neither a task file nor a built-in task "
                f"({', '.join(builtin_names())})",
                field="task",
            )
        kind, examples, digest = read_task_jsonl(path)
        examples = examples[:limit] if limit else examples
        budget = max_tokens or DEFAULT_MAX_TOKENS
        ref = {"path": str(path.resolve()), "limit": limit}
        spec = task_name_of(path)
    ref.update({"stop": list(stop), "max_tokens": budget, "name": name or spec, "digest": digest})
    return EvalTask(
        name=name or spec,
        kind=kind,
        examples=tuple(examples),
        stop=tuple(stop),
        max_tokens=budget,
        ref=ref,
        digest=digest,
    )


@functools.lru_cache(maxsize=4)
def _load_ref(ref_json: str) -> EvalTask:
    ref = json.loads(ref_json)
    if "builtin" in ref:
        task = load_task(
            ref["builtin"],
            limit=ref["n"],
            seed=ref["seed"],
            stop=ref["stop"],
            max_tokens=ref["max_tokens"],
            name=ref["name"],
        )
    else:
        task = load_task(
            ref["path"],
            limit=ref["limit"],
            stop=ref["stop"],
            max_tokens=ref["max_tokens"],
            name=ref["name"],
        )
    if task.digest != ref["digest"]:
        raise InputError(
            "changed while the run was going on; start the run again",
            path=ref.get("path"),
        )
    return task


def load_task_ref(ref: dict[str, Any]) -> EvalTask:
    """The task an :attr:`EvalTask.ref` describes (what a unit's job loads), cached."""
    return _load_ref(json.dumps(ref, sort_keys=True))


def export_task(task: EvalTask, path: str | os.PathLike[str]) -> Path:
    """Write ``task`` in the JSONL task format (atomically)."""
    target = Path(path)
    lines = []
    for ex in task.examples:
        record: dict[str, Any] = {"id": ex.example_id, "prompt": ex.prompt}
        if ex.choices is None:
            record["target"] = ex.target
            if ex.references is not None:
                record["references"] = list(ex.references)
        else:
            record["choices"] = list(ex.choices)
            record["answer"] = ex.answer if ex.answers is None else list(ex.answers)
        lines.append(json.dumps(record, ensure_ascii=False))
    opener = gzip.open if target.suffix == ".gz" else open
    with atomic_path(target) as tmp, opener(tmp, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return target


# --------------------------------------------------------------------------- samples rows


def samples_frame(
    task: EvalTask,
    examples: Sequence[Example],
    entry: dict[str, Any],
    predictions: Sequence[str | None],
    target_logprobs: Sequence[Sequence[float]],
    choice_logprobs: Sequence[Sequence[float]] | None = None,
) -> pd.DataFrame:
    """The samples rows of one model on ``examples`` (log-probs clipped at 0 from rounding)."""
    frame = pd.DataFrame(
        {
            "task": task.name,
            "family": entry["family"],
            "model": entry["model"],
            "params": float(entry["params"]),
        },
        index=range(len(examples)),
    )
    for col in ("compute_flops", "tokens_trained"):
        if col in entry:
            frame[col] = None if entry[col] is None else float(entry[col])
    if "step" in entry:
        frame["step"] = pd.array([entry["step"]] * len(examples), dtype="Int64")
    frame["example_id"] = [ex.example_id for ex in examples]
    frame["prompt"] = [ex.prompt for ex in examples]
    frame["target"] = [ex.target for ex in examples]
    if any(ex.references is not None for ex in examples):
        frame["references"] = [
            None if ex.references is None else list(ex.references) for ex in examples
        ]
    frame["prediction"] = list(predictions)
    frame["target_token_logprobs"] = [[min(float(v), 0.0) for v in lp] for lp in target_logprobs]
    if choice_logprobs is not None:
        frame["choice_logprobs"] = [[min(float(v), 0.0) for v in lp] for lp in choice_logprobs]
        frame["correct_choice"] = [ex.answer for ex in examples]
        if any(ex.answers is not None for ex in examples):
            frame["choice_is_correct"] = [
                None
                if ex.answers is None
                else [float(j in ex.answers) for j in range(len(ex.choices or ()))]
                for ex in examples
            ]
        # characters of each choice as scored, for the length-normalised grade (acc_norm)
        frame["choice_lengths"] = [[float(len(c)) for c in ex.choices or ()] for ex in examples]
    return frame


def continuations(ex: Example) -> tuple[str, ...]:
    """What is scored after an example's prompt: each choice, or the target."""
    return ex.choices if ex.choices is not None else (ex.target,)


def gather_scores(
    examples: Sequence[Example], scored: Sequence[tuple[int, list[float]]], kind: Kind
) -> tuple[list[str | None] | None, list[list[float]], list[list[float]] | None]:
    """Token log-probs of ``(example index, continuation)`` pairs -> the samples' values.

    Returns ``(predictions, target log-probs, choice log-probs)``. Multiple choice:
    each choice scores its summed log-probs, the prediction is the best choice
    and the target log-probs are the right choice's. Generation: the target's
    log-probs, no choice log-probs, and predictions None (the backend generates them).
    """
    per_example: list[list[list[float]]] = [[] for _ in examples]
    for k, logprobs in scored:
        per_example[k].append(logprobs)
    if kind == "generate":
        return None, [lists[0] for lists in per_example], None
    choice_lps = [[float(sum(c)) for c in lists] for lists in per_example]
    target_lps = [lists[ex.answer] for ex, lists in zip(examples, per_example, strict=True)]
    predictions: list[str | None] = [
        ex.choices[argmax_first(c)] for ex, c in zip(examples, choice_lps, strict=True)
    ]
    return predictions, target_lps, choice_lps


def argmax_first(values: Sequence[float]) -> int:
    """Index of the largest value; ties go to the first (as ``multiple_choice_grade``)."""
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best
