"""The answer text of an lm-eval generation task whose target is a choice index.

A ``generate_until`` task with ``doc_to_choice`` (SuperGLUE's T5 prompts,
BoolQ seq2seq, ...) logs ``target`` as the *index* of the right choice, and
lm-eval scores the generation against ``choices[index]``. The choices come from
the task's config in ``results_*.json`` as lm-eval reads it
(``ConfigurableTask.doc_to_choice``):

* a list, or a dict (its values);
* the name of a field of the document: ``doc[name]``;
* a Jinja template rendered with the document, whose text is a Python list
  literal. Templates come from a file, so they are rendered in Jinja's
  sandbox, which refuses attribute tricks that reach Python internals;
* a Python function: its source is all the results keep, so the choices
  cannot be rebuilt, and the file is refused.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from miragelab.errors import InputError

ChoiceTarget = Callable[[dict, str], str]


class BadChoice(ValueError):
    """The record cannot be mapped; ``field`` names the part of the record at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _regex_replace(string: str, pattern: str, repl: str, count: int = 0) -> str:
    # the one custom filter lm-eval's Jinja environment adds
    return re.sub(pattern, repl, string, count=count)


def _template_choices(template: str) -> Callable[[dict], Any]:
    from jinja2 import StrictUndefined
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters["regex_replace"] = _regex_replace
    compiled = env.from_string(template)

    def render(doc: dict) -> Any:
        try:
            text = compiled.render(**doc)
        except TemplateError as exc:
            raise BadChoice("doc", f"doc_to_choice fails on this doc ({exc})") from None
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise BadChoice(
                "doc", f"the doc_to_choice template gives {text[:60]!r}, not a list"
            ) from None

    return render


def choice_target(task_config: Any, results: Path | None, task: str) -> ChoiceTarget | None:
    """A function ``(record, logged target) -> answer text`` for a generation task whose
    target is a choice index, or None when the task's target is its text already."""
    if not isinstance(task_config, dict) or task_config.get("output_type") != "generate_until":
        return None
    spec = task_config.get("doc_to_choice")
    if spec is None:
        return None
    where = f"configs.{task}.doc_to_choice"
    if isinstance(spec, dict):
        spec = list(spec.values())
    if isinstance(spec, list):
        fixed = spec

        def choices_of(doc: dict) -> Any:
            return fixed
    elif isinstance(spec, str) and re.match(r"\s*(@|def\s|async\s+def\s|lambda\b)", spec):
        raise InputError(
            "the choices of this generation task come from a Python function, so its logged "
            "targets (choice indices) cannot be turned into answer texts; leave its samples out",
            path=results,
            field=where,
        )
    elif isinstance(spec, str):
        render = None if "{{" not in spec and "{%" not in spec else _template_choices(spec)

        def choices_of(doc: dict) -> Any:
            if spec in doc:
                return doc[spec]
            if render is None:
                raise BadChoice("doc", f"the doc has no field {spec!r} (doc_to_choice)")
            return render(doc)
    else:
        raise InputError(
            f"expected a list, a field name or a template, got {type(spec).__name__}",
            path=results,
            field=where,
        )

    def answer(record: dict, target: str) -> str:
        text = target.strip()
        if not text.isdigit():
            raise BadChoice("target", f"expected a choice index (doc_to_choice), got {target!r}")
        doc = record.get("doc")
        if not isinstance(doc, dict):
            raise BadChoice("doc", "missing: the document the choices are read from")
        choices = choices_of(doc)
        if not isinstance(choices, list | tuple):
            raise BadChoice("doc", f"doc_to_choice gives {type(choices).__name__}, not a list")
        index = int(text)
        if index >= len(choices):
            raise BadChoice("target", f"choice index {index} but there are {len(choices)} choices")
        return str(choices[index])

    return answer
