"""Choice-index targets of lm-eval generation tasks with ``doc_to_choice``."""

from __future__ import annotations

from pathlib import Path

import pytest

from miragelab.errors import InputError
from miragelab.sources.lm_eval_choices import BadChoice, choice_target

RESULTS = Path("results_2024-01-01T00-00-00.json")
DOC = {"label": 1, "options": ["no", "yes"], "idx": {"question": 7}}


def _answer(doc_to_choice, target="1", doc=DOC, output_type="generate_until"):
    config = {"output_type": output_type, "doc_to_choice": doc_to_choice}
    resolve = choice_target(config, RESULTS, "boolq")
    return None if resolve is None else resolve({"doc": doc}, target)


def test_every_form_lm_eval_accepts_gives_the_chosen_text():
    assert _answer(["False", "True"]) == "True"  # a list (SuperGLUE T5 prompts)
    assert _answer({"a": "no", "b": "yes"}, "0") == "no"  # a dict: its values
    assert _answer("options") == "yes"  # a field of the doc
    assert _answer("{{options}}") == "yes"  # a template rendering a list literal
    # MultiRC's template, built from the doc's fields
    template = "{% set g = idx.question|string %}{{[g+'_False', g+'_True']}}"
    assert _answer(template, "0") == "7_False"
    assert _answer("{{[options[1]|upper, 'x']|reverse|list}}", "1") == "YES"


def test_tasks_without_choices_keep_their_target():
    assert choice_target({"output_type": "generate_until"}, RESULTS, "t") is None
    assert _answer(["a", "b"], output_type="multiple_choice") is None
    assert choice_target(None, None, "t") is None


def test_a_function_is_refused_naming_the_results_field():
    source = "def doc_to_choice(doc):\n    return ['a', 'b']\n"
    with pytest.raises(InputError) as info:
        choice_target({"output_type": "generate_until", "doc_to_choice": source}, RESULTS, "bbq")
    assert info.value.field == "configs.bbq.doc_to_choice"
    assert info.value.path == str(RESULTS) and "Python function" in info.value.message


@pytest.mark.parametrize(
    ("spec", "target", "doc", "field", "phrase"),
    [
        (["a", "b"], "yes", DOC, "target", "expected a choice index"),
        (["a", "b"], "2", DOC, "target", "choice index 2 but there are 2 choices"),
        ("{{missing}}", "0", DOC, "doc", "fails on this doc"),
        ("{{label}} and more", "0", DOC, "doc", "not a list"),
        ("absent_field", "0", DOC, "doc", "no field 'absent_field'"),
        ("{{options}}", "0", None, "doc", "missing: the document"),
        ("label", "0", DOC, "doc", "gives int, not a list"),
    ],
)
def test_records_that_cannot_be_mapped_name_the_field(spec, target, doc, field, phrase):
    with pytest.raises(BadChoice) as info:
        _answer(spec, target, doc)
    assert info.value.field == field and phrase in info.value.message


def test_templates_from_a_file_cannot_reach_python_internals():
    # the classic template-injection path to os.system goes through dunder attributes
    hostile = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(BadChoice, match="fails on this doc"):
        _answer(hostile, "0")
