"""Crafted inputs that once gave tracebacks or silent wrong answers: one error line, exit 2.

Each case is written here (no fixture file) and run through the command a user
would run on it: samples through ``mirage score``, scores through ``mirage
meta``. The expected file, line and field come from how the case was written.
The error must be one line ``error: FILE, line N[, field 'F']: ...``, the exit
code 2, no traceback, and nothing left in the output folder; the input is
untouched.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

SAMPLE = {
    "task": "t",
    "family": "f",
    "model": "m",
    "params": 1e6,
    "example_id": "1",
    "prompt": "p",
    "target": "a",
    "prediction": "a",
}
SCORE = {"task": "t", "family": "f", "model": "m", "params": 1e6, "metric": "acc", "value": 0.5}


def _jsonl(*records: dict | str) -> bytes:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    return ("\n".join(lines) + "\n").encode()


def _second(record: dict, **change: object) -> bytes:
    """A valid first line, then ``record`` changed as given (the fault is on line 2)."""
    key = "example_id" if "example_id" in record else "model"
    return _jsonl(record, {**record, key: f"{record[key]}2", **change})


def _without(record: dict, key: str, **change: object) -> str:
    """``record`` changed as given, without ``key``, as JSON text open at the end (the
    caller appends ``key`` written by hand)."""
    rest = {k: v for k, v in {**record, **change}.items() if k != key}
    return json.dumps(rest)[:-1]


#: name -> (file name, bytes, command, line, field)
CASES = {
    # integers beyond 64 bits or beyond a double (JSON has no size limit)
    "params_400_digits": ("s.jsonl", _second(SAMPLE, params=10**400), "score", 2, "params"),
    "step_2_to_70": ("s.jsonl", _second(SAMPLE, step=2**70), "score", 2, "step"),
    "logprob_400_digits": (
        "s.jsonl",
        _second(SAMPLE, target_token_logprobs=[-(10**400)]),
        "score",
        2,
        "target_token_logprobs",
    ),
    "n_400_digits": ("c.jsonl", _second(SCORE, n=10**400), "meta", 2, "n"),
    # nesting deeper than Python's json can follow, after orjson refuses the line
    "deep_list": ("s.jsonl", _jsonl(SAMPLE, "[" * 5000 + "]" * 5000), "score", 2, None),
    "deep_prompt": (
        "s.jsonl",
        _jsonl(SAMPLE, json.dumps({**SAMPLE, "example_id": "2"})[:-1] + ', "x": ' + "[" * 5000),
        "score",
        2,
        None,
    ),
    "deep_scores": ("c.jsonl", _jsonl(SCORE, '{"a": ' + "[" * 5000), "meta", 2, None),
    # a lone surrogate: Python's json takes the escape, but it is not Unicode text
    "surrogate_prompt": (
        "s.jsonl",
        _jsonl(SAMPLE, _without(SAMPLE, "prompt", example_id="2") + ', "prompt": "\\ud800"}'),
        "score",
        2,
        None,
    ),
    "surrogate_target": (
        "s.jsonl",
        _jsonl(SAMPLE, _without(SAMPLE, "target", example_id="2") + ', "target": "x\\uDFFFy"}'),
        "score",
        2,
        None,
    ),
    "surrogate_task": (
        "c.jsonl",
        _jsonl(SCORE, _without(SCORE, "task", metric="b") + ', "task": "\\udabc"}'),
        "meta",
        2,
        None,
    ),
    # gzip with a valid header and a broken body
    "gzip_garbage_jsonl": (
        "s.jsonl.gz",
        gzip.compress(_jsonl(SAMPLE))[:10] + b"\x00garbage" * 30,
        "score",
        1,
        None,
    ),
    "gzip_garbage_csv": (
        "s.csv.gz",
        gzip.compress(b"task,family,model,params,example_id\n")[:10] + b"\xffgarbage" * 30,
        "score",
        1,
        None,
    ),
    "gzip_truncated_scores": (
        "c.jsonl.gz",
        gzip.compress(_jsonl(SCORE, {**SCORE, "metric": "b"}))[:-12],  # line 2 is cut
        "meta",
        2,
        None,
    ),
    # impossible values that were accepted
    "stderr_negative": ("c.jsonl", _second(SCORE, stderr=-0.01), "meta", 2, "stderr"),
    "n_zero": ("c.jsonl", _second(SCORE, n=0), "meta", 2, "n"),
    "params_with_underscores": (
        "s.csv",
        b"task,family,model,params,example_id,prediction,target\n"
        b"t,f,m,1000000,1,a,a\nt,f,m,1_000_000,2,a,a\n",
        "score",
        3,
        "params",
    ),
    # means outside their metric's range, intervals that exclude their value
    "acc_above_one": ("c.jsonl", _second(SCORE, value=1.5), "meta", 2, "value"),
    "acc_percent": ("c.jsonl", _second(SCORE, value=3.0), "meta", 2, "value"),
    "acc_negative": ("c.jsonl", _second(SCORE, value=-0.5), "meta", 2, "value"),
    "ppl_zero": (
        "c.jsonl",
        _second({**SCORE, "metric": "perplexity", "value": 5.0}, value=0.0),
        "meta",
        2,
        "value",
    ),
    "ppl_negative": (
        "c.jsonl",
        _second({**SCORE, "metric": "perplexity", "value": 5.0}, value=-3.0),
        "meta",
        2,
        "value",
    ),
    "ci_below_value": ("c.jsonl", _second(SCORE, ci_low=0.6, ci_high=0.7), "meta", 2, "ci_low"),
    "ci_above_value": ("c.jsonl", _second(SCORE, ci_low=0.1, ci_high=0.2), "meta", 2, "ci_high"),
    "ci_excludes_csv": (
        "c.csv",
        b"task,family,model,params,metric,value,ci_low,ci_high\n"
        b"t,f,m,1e6,acc,0.5,0.4,0.6\nt,f,m,1e6,b,0.5,0.55,0.6\n",
        "meta",
        3,
        "ci_low",
    ),
    # names that are blank, sizes that are no count
    "task_blank": ("c.jsonl", _second(SCORE, task=" "), "meta", 2, "task"),
    "model_blank_sample": ("s.jsonl", _second(SAMPLE, model="\t"), "score", 2, "model"),
    "family_blank_csv": (
        "c.csv",
        b"task,family,model,params,metric,value\nt,f,m,1e6,acc,0.5\nt,  ,m,1e6,b,0.5\n",
        "meta",
        3,
        "family",
    ),
    "params_half": ("c.jsonl", _second(SCORE, params=0.5), "meta", 2, "params"),
    "params_half_sample": ("s.jsonl", _second(SAMPLE, params=0.5), "score", 2, "params"),
    # one key twice in one object: JSON parsers keep the last without a word
    "repeated_key_jsonl": (
        "s.jsonl",
        _jsonl(
            SAMPLE, _without(SAMPLE, "target", example_id="2") + ', "target": "a", "target": "b"}'
        ),
        "score",
        2,
        "target",
    ),
    "repeated_key_scores": (
        "c.jsonl",
        _jsonl(SCORE, _without(SCORE, "value", metric="b") + ', "value": 0.1, "value": 0.9}'),
        "meta",
        2,
        "value",
    ),
    "repeated_key_spaced": (
        "c.jsonl",
        _jsonl(SCORE, _without(SCORE, "value", metric="b") + ', "value" : 0.1, "value"\t: 0.9}'),
        "meta",
        2,
        "value",
    ),
    "repeated_key_nan_fallback": (
        "c.jsonl",
        _jsonl(SCORE, _without(SCORE, "value", metric="b") + ', "value": NaN, "value": 0.9}'),
        "meta",
        2,
        "value",
    ),
}


def _command(kind: str, path: Path, out: Path) -> list[str]:
    if kind == "score":
        return ["score", str(path), "--out", str(out / "scores.csv"), "--metrics", "exact_match"]
    return ["meta", str(path), "--out", str(out)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_crafted_input_is_refused_in_one_line(name: str, tmp_path: Path, capsys) -> None:
    from miragelab.cli import main

    file_name, data, kind, line, field = CASES[name]
    path = tmp_path / file_name
    path.write_bytes(data)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(_command(kind, path, out))
    captured = capsys.readouterr()
    both = captured.out + captured.err
    assert "Traceback" not in both, both
    assert info.value.code == 2, both
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    expected = f"error: {path}, line {line}" + ("" if field is None else f", field '{field}'")
    assert lines[0].startswith(expected + ":"), (expected, lines[0])
    assert not out.exists() or list(out.iterdir()) == []
    assert path.read_bytes() == data


@pytest.mark.parametrize(
    "args",
    [
        ["--accuracy", "1e-300"],
        ["--accuracy", "1e-320"],
        ["--accuracy", "0.2500000001", "--chance", "0.25"],
    ],
)
def test_a_plan_no_test_set_can_answer_is_refused_not_searched(args, capsys) -> None:
    """log(0.05) / log(1 - 1e-300) is about 3e300 examples: the answer is that no test
    set resolves it, at once (the search used to run for ever)."""
    from miragelab.cli import main

    with pytest.raises(SystemExit) as info:
        main(["plan", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2
    assert len(err) == 1 and err[0].startswith("error: field 'accuracy': ")
    assert "no test set resolves it" in err[0]


LM_EVAL = Path(__file__).parent / "fixtures" / "lm_eval" / "v0.4.2" / "EleutherAI__pythia-70m"
BOOLQ = "samples_boolq_mini_2024-03-01T09-30-00.000001.json"
RESULTS = "results_2024-03-01T09-30-00.000001.json"


def _edited_copy(folder: Path, target: Path, name: str, old: str, new: str) -> Path:
    """``folder`` copied to ``target`` with ``old`` replaced once by ``new`` in ``name``."""
    import shutil

    shutil.copytree(folder, target)
    text = (target / name).read_text()
    assert text.count(old) >= 1, old
    (target / name).write_text(text.replace(old, new, 1))
    return target / name


def _line_of(path: Path, text: str) -> int:
    return path.read_text().split(text)[0].count("\n") + 1


@pytest.mark.parametrize(
    "name, old, new, field",
    [
        # a repeated key inside a JSON array of samples (lm-eval <= 0.4.2)
        (BOOLQ, '"target": 1,', '"target": 1, "target": 0,', "target"),
        # in a results document
        (RESULTS, '"batch_size": 1', '"batch_size": 1, "batch_size": 2', "batch_size"),
        # a parameter count that is no count
        (RESULTS, '"batch_size": 1', '"batch_size": 1, "model_num_parameters": 1.5', None),
    ],
    ids=["repeated_key_array", "repeated_key_results", "params_fractional"],
)
def test_crafted_lm_eval_output_is_refused(name, old, new, field, tmp_path, capsys) -> None:
    from miragelab.cli import main

    path = _edited_copy(LM_EVAL, tmp_path / "run", name, old, new)
    before = path.read_bytes()
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(["ingest", "lm-eval", str(tmp_path / "run"), "--out", str(out / "s.parquet")])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1, err
    line = _line_of(path, new)
    assert err[0].startswith(f"error: {path}, line {line}"), (line, err[0])
    if field is not None:
        assert f"field '{field}'" in err[0]
    assert "appears twice" in err[0] or "whole number" in err[0], err[0]
    assert not out.exists() or list(out.iterdir()) == []
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "command",
    [
        ["score", "{input}", "--out", "{out}/s.csv", "--metrics", "exact_match"],
        ["meta", "{input}", "--out", "{out}"],
        ["report", "{input}", "--out", "{out}"],
        ["ingest", "lm-eval", "{input}", "--out", "{out}/s.parquet"],
        ["transitions", "detect", "{input}", "--out", "{out}"],
    ],
    ids=lambda c: "-".join(c[:2]) if c[0] in ("ingest", "transitions") else c[0],
)
@pytest.mark.parametrize("kind", ["fifo", "device", "folder_with_fifo"])
def test_a_pipe_or_device_is_refused_not_read_for_ever(command, kind, tmp_path, capsys) -> None:
    """A named pipe would block the reader until someone writes to it; a device such as
    /dev/zero never ends. Each is refused by name before it is opened; inside a folder
    it is not a file to read."""
    import os

    from miragelab.cli import main

    if kind == "device":
        given = Path("/dev/zero")
    else:
        folder = tmp_path / "in"
        folder.mkdir()
        given = folder / "scores.jsonl"
        os.mkfifo(given)
        if kind == "folder_with_fifo":
            given = folder
    out = tmp_path / "out"
    args = [a.format(input=given, out=out) for a in command]
    with pytest.raises(SystemExit) as info:
        main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1, err
    if kind != "folder_with_fifo":  # a folder holding only a pipe holds no file to read
        what = "a named pipe" if kind == "fifo" else "a character device"
        assert err[0].startswith(f"error: {given}: {what}, not a regular file"), err[0]
    assert not out.exists() or list(out.iterdir()) == []


def test_valid_json_nested_deeper_than_orjson_writes_is_read(tmp_path: Path) -> None:
    """orjson reads 1024 levels but writes 255: the repeated-key check must not fail on
    a document between the two."""
    from miragelab.textio import read_json_document

    path = tmp_path / "deep.json"
    path.write_text('{"results": ' + "[" * 300 + "]" * 300 + "}")
    assert list(read_json_document(path)) == ["results"]


def test_a_repeated_key_before_a_syntax_error_in_an_array_is_one_line(tmp_path: Path) -> None:
    from miragelab.errors import InputError
    from miragelab.textio import iter_json_records

    path = tmp_path / "samples_a.json"
    path.write_text('[\n{"doc": {"b": 1, "b": 2}, "c": }\n]')
    with pytest.raises(InputError, match="key 'b' appears twice") as info:
        list(iter_json_records(path))
    assert info.value.line == 2
