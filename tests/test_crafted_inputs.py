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
    key = "example_id" if "example_id" in record else "metric"
    return _jsonl(record, {**record, key: f"{record[key]}2", **change})


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
        _jsonl(SAMPLE, json.dumps({**SAMPLE, "example_id": "2"})[:-1] + ', "prompt": "\\ud800"}'),
        "score",
        2,
        None,
    ),
    "surrogate_target": (
        "s.jsonl",
        _jsonl(SAMPLE, json.dumps({**SAMPLE, "example_id": "2"})[:-1] + ', "target": "x\\uDFFFy"}'),
        "score",
        2,
        None,
    ),
    "surrogate_task": (
        "c.jsonl",
        _jsonl(SCORE, json.dumps({**SCORE, "metric": "b"})[:-1] + ', "task": "\\udabc"}'),
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


def _modes(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_mode & 0o777
        for p in sorted(folder.rglob("*"))
        if not p.is_symlink()
    }


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_get_the_users_umask(umask: int, tmp_path: Path, capsys) -> None:
    """Files and folders the commands write have the modes ``open`` and ``mkdir`` would
    give them under the user's umask, not the 0600 of a temporary file."""
    import os

    from miragelab.cli import main

    samples = tmp_path / "samples.jsonl"
    samples.write_bytes(
        _jsonl(
            *(
                {**SAMPLE, "model": m, "params": p, "example_id": str(i)}
                for m, p in (("a", 1e6), ("b", 1e7))
                for i in range(5)
            )
        )
    )
    out = tmp_path / "out"
    old = os.umask(umask)
    try:
        for args in (
            [
                "score",
                str(samples),
                "--out",
                str(out / "scores.parquet"),
                "--metrics",
                "exact_match",
            ],
            ["score", str(samples), "--out", str(out / "scores.csv"), "--metrics", "exact_match"],
            ["theory", "--out", str(out / "theory")],
            ["meta", str(out / "scores.csv"), "--out", str(out / "meta")],
        ):
            try:
                main(args)
            except SystemExit as exc:
                assert exc.code in (0, None), capsys.readouterr().err
    finally:
        os.umask(old)
    modes = _modes(out)
    assert modes, "nothing written"
    expected = {name: (0o777 if (out / name).is_dir() else 0o666) & ~umask for name in modes}
    assert modes == expected


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
