"""The task format of `mirage eval`: JSONL files, built-in tasks, `mirage task export`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from miragelab.errors import InputError
from miragelab.ladder.tasks import get_task, heldout_pairs
from miragelab.runners.tasks import (
    export_task,
    load_task,
    load_task_ref,
    read_task_jsonl,
    samples_frame,
)
from miragelab.tables import SAMPLES, validate_frame


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_generation_file_is_read_with_default_ids_and_blank_lines_skipped(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "qa.jsonl",
        [
            '{"prompt": "Q: 1+1=", "target": " 2"}',
            "",
            '{"id": 7, "prompt": "Q: 2+2=", "target": " 4", "source": "ignored"}',
            '{"prompt": "Q: 3+3=", "target": " 6"}',
        ],
    )
    kind, examples, _ = read_task_jsonl(path)
    assert kind == "generate"
    # ids: position among the examples (from 0) unless given; line numbers are physical
    assert [e.example_id for e in examples] == ["0", "7", "2"]
    assert [e.line for e in examples] == [1, 3, 4]
    assert [e.target for e in examples] == [" 2", " 4", " 6"]
    task = load_task(str(path), limit=2, stop=["\n"], max_tokens=5)
    assert task.name == "qa" and len(task.examples) == 2
    assert task.stop == ("\n",) and task.max_tokens == 5


def test_multiple_choice_file_keeps_choices_and_the_right_answer(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "mc.jsonl",
        ['{"id": "a", "prompt": "Sky is", "choices": [" red", " blue", " green"], "answer": 1}'],
    )
    task = load_task(str(path))
    (ex,) = task.examples
    assert task.kind == "choice"
    assert ex.choices == (" red", " blue", " green") and ex.answer == 1 and ex.target == " blue"


def test_several_correct_choices_are_kept_and_flagged(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "mc.jsonl",
        [
            '{"id": "a", "prompt": "Even:", "choices": [" 1", " 2", " 4"], "answer": [2, 1, 2]}',
            '{"id": "b", "prompt": "Odd:", "choices": [" 1", " 2"], "answer": 0}',
        ],
    )
    task = load_task(str(path))
    a, b = task.examples
    assert (a.answer, a.answers, a.target, a.references) == (2, (2, 1), " 4", (" 4", " 2"))
    assert (b.answer, b.answers, b.references) == (0, None, None)
    again = load_task(str(export_task(task, tmp_path / "again.jsonl")))
    assert again.examples == task.examples
    entry = {"family": "f", "model": "m", "params": 1e6}
    # the model's top choice for "a" is " 2": right, as the second correct choice
    frame = samples_frame(
        task,
        task.examples,
        entry,
        [" 2", " 1"],
        [[-1.0], [-0.5]],
        [[-3.0, -0.5, -1.0], [-0.1, -2.0]],
    )
    table = validate_frame(frame, SAMPLES)
    assert table["choice_is_correct"].tolist()[0] == [0.0, 1.0, 1.0]
    assert table["choice_is_correct"].isna().tolist() == [False, True]
    from miragelab.metrics import compute_metrics

    values = compute_metrics(table, ["multiple_choice_grade", "exact_match"])
    assert values.to_numpy().tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_builtin_task_has_the_prompts_targets_and_ids_of_ladder_eval() -> None:
    task = load_task("add3", limit=50, seed=3)
    a, b = heldout_pairs(get_task("add3"), 50, 3)
    assert [e.example_id for e in task.examples] == [f"{x}+{y}" for x, y in zip(a, b, strict=True)]
    assert [e.prompt for e in task.examples] == [f"{x}+{y}=" for x, y in zip(a, b, strict=True)]
    assert [e.target for e in task.examples] == [str(x + y) for x, y in zip(a, b, strict=True)]
    # answer digits plus the end token, as `mirage ladder eval` decodes
    assert task.max_tokens == 5
    assert load_task("mul2", limit=3).examples[0].prompt.count("*") == 1


def test_a_unit_reloads_the_same_task_from_its_ref(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.jsonl", ['{"prompt": "x", "target": "y"}'])
    task = load_task(str(path), stop=["\n"])
    again = load_task_ref(json.loads(json.dumps(task.ref)))
    assert again.examples == task.examples and again.stop == task.stop
    # a file changed under a running run is refused, not mixed in
    _write(path, ['{"prompt": "x", "target": "z"}'])
    stale = dict(task.ref, limit=None)
    stale["digest"] = "0" * 16
    with pytest.raises(InputError, match="changed"):
        load_task_ref(stale)


def test_export_round_trips_both_kinds(tmp_path: Path) -> None:
    mc = _write(
        tmp_path / "mc.jsonl",
        [
            '{"prompt": "P", "choices": ["a", "b"], "answer": 0}',
            '{"prompt": "Q", "choices": ["c", "d"], "answer": 1}',
        ],
    )
    for source in (str(mc), "add2"):
        task = load_task(source, limit=10)
        out = export_task(task, tmp_path / f"out-{task.name}.jsonl.gz")
        again = load_task(str(out))
        assert again.examples == task.examples


def test_task_export_command_writes_n_heldout_examples(tmp_path: Path) -> None:
    out = tmp_path / "task.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "miragelab",
            "task",
            "export",
            "add4",
            "--n",
            "1000",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    a, b = heldout_pairs(get_task("add4"), 1000, 0)
    assert len(records) == 1000
    assert records[0] == {
        "id": f"{a[0]}+{b[0]}",
        "prompt": f"{a[0]}+{b[0]}=",
        "target": str(a[0] + b[0]),
    }
    assert len({r["id"] for r in records}) == 1000


def test_samples_rows_validate_and_carry_the_ladder_columns() -> None:
    task = load_task("add1", limit=3)
    entry = {"family": "f", "model": "m", "params": 10.0, "step": 4, "compute_flops": None}
    frame = samples_frame(task, task.examples, entry, ["1", "2", "3"], [[-0.5], [1e-9], [-2.0]])
    table = validate_frame(frame, SAMPLES)
    assert table["step"].tolist() == [4, 4, 4]
    # a log-prob positive by rounding only is clipped to 0
    assert table["target_token_logprobs"].tolist()[1] == [0.0]


@pytest.mark.parametrize(
    ("lines", "line", "field"),
    [
        (['{"prompt": "a", "target": "b"}', '{"prompt": "c"}'], 2, "target"),
        (['{"prompt": "a", "choices": ["x", "y"]}'], 1, "answer"),
        (['{"prompt": "a", "choices": ["x", ""], "answer": 0}'], 1, "choices"),
        (['{"prompt": "a", "choices": ["x", "y"], "answer": []}'], 1, "answer"),
        (['{"prompt": "a", "choices": ["x", "y"], "answer": [0, 2]}'], 1, "answer[1]"),
        (['{"prompt": "a", "choices": ["x", "y"], "answer": [0, true]}'], 1, "answer[1]"),
        (['{"prompt": "a", "target": "b", "id": ""}'], 1, "id"),
        (['{"prompt": 3, "target": "b"}'], 1, "prompt"),
        (['{"prompt": "a", "target": NaN}'], 1, None),
        (['{"prompt": "a", "target": "b", "references": "b"}'], 1, "references"),
        (['{"prompt": "a", "target": "b", "references": []}'], 1, "references"),
        (
            ['{"prompt": "a", "target": "b"}', '{"prompt": "c", "target": "d", "references": [1]}'],
            2,
            "references",
        ),
    ],
)
def test_bad_lines_name_file_line_and_field(
    tmp_path: Path, lines: list[str], line: int, field: str | None
) -> None:
    path = _write(tmp_path / "bad.jsonl", lines)
    with pytest.raises(InputError) as info:
        load_task(str(path))
    assert info.value.path == str(path)
    assert info.value.line == line and info.value.field == field
    assert "\n" not in str(info.value)


def test_unknown_task_and_bad_settings_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="neither a task file nor a built-in task") as info:
        load_task("add9")
    assert info.value.field == "task"
    with pytest.raises(InputError) as info:
        load_task("add2", max_tokens=0)
    assert info.value.field == "max-tokens"
    with pytest.raises(InputError) as info:
        load_task("add2", stop=[""])
    assert info.value.field == "stop"


def test_references_travel_from_the_task_file_to_the_samples(tmp_path: Path) -> None:
    from miragelab.metrics import compute_metrics

    path = _write(
        tmp_path / "qa.jsonl",
        [
            '{"prompt": "France?", "target": " Paris", "references": [" Paris", " paris"]}',
            '{"prompt": "2+2=", "target": "4"}',
        ],
    )
    task = load_task(str(path))
    assert [e.references for e in task.examples] == [(" Paris", " paris"), None]
    again = load_task(str(export_task(task, tmp_path / "again.jsonl")))
    assert again.examples == task.examples
    entry = {"family": "f", "model": "m", "params": 10.0}
    frame = samples_frame(task, task.examples, entry, [" paris", "5"], [[-1.0], [-0.5]])
    table = validate_frame(frame, SAMPLES)
    assert compute_metrics(table, ["exact_match"])["exact_match"].tolist() == [1.0, 0.0]
