"""Commands driven with generated hostile records: never a traceback, never half an output.

Each example takes a valid input (samples for ``mirage score``, scores for
``mirage meta``, an lm-eval output folder for ``mirage ingest lm-eval``, a HELM
run folder for ``mirage ingest helm``) and rewrites some of its values as raw
JSON text a hostile or broken writer could produce: integers of 400 digits or
beyond 64 bits, nesting deeper than any parser follows, lone surrogates, names
that matplotlib would read as mathtext, NaN and Infinity, blank names, a key
given twice, values of the wrong type. The command run in-process must end in
one of two ways:

* exit 2 with one ``error:`` line, and nothing written (no output file, an
  output folder absent or empty);
* success, with its output whole: every table it always writes is there, and
  no temporary file or staging folder is left.

Either way the input is untouched. Anything else (an exception, exit 1, a
traceback) fails the test with the generated input shown by hypothesis.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FIXTURES = Path(__file__).parent / "fixtures"
LM_EVAL = FIXTURES / "lm_eval" / "v0.4.13" / "EleutherAI__pythia-160m"
HELM = FIXTURES / "helm" / "generation"

#: raw JSON texts that replace a value (``{key}`` is the key the value sits under)
HOSTILE = [
    "1" + "0" * 400,
    "-" + "9" * 400,
    str(2**70),
    str(-(2**64)),
    "1e309",
    "-1e309",
    "5e-324",
    "NaN",
    "Infinity",
    "-Infinity",
    "[" * 3000 + "]" * 3000,
    '{"a": ' * 3000 + "1" + "}" * 3000,
    '"\\ud800"',
    '"x\\udfffy"',
    '"t$\\\\undefinedmacro$"',
    '"$x^$"',
    '"50$ and $"',
    '"a_b^c\\\\frac{"',
    '" "',
    '""',
    '"\\u0000"',
    "true",
    "null",
    "[]",
    "{}",
    '"0.5"',
    "-0.0",
    "1.5",
    "0",
    "-1",
    "{value}, {key}: {value}",  # the key twice in one object
]

SAMPLE = {"task": "t", "family": "f", "prompt": "p", "target": "a"}


def _samples() -> list[dict[str, Any]]:
    return [
        {**SAMPLE, "model": m, "params": p, "example_id": str(i), "prediction": "a" if i else "b"}
        for m, p in (("m-small", 1e6), ("m-large", 1e8))
        for i in range(4)
    ]


def _scores() -> list[dict[str, Any]]:
    rows = []
    for i, params in enumerate((1e6, 1e7, 1e8, 1e9)):
        base = {"task": "t", "family": "f", "model": f"m{i}", "params": params}
        rows.append({**base, "metric": "acc", "value": [0.0, 0.02, 0.1, 0.9][i], "n": 200})
        rows.append({**base, "metric": "brier_score", "value": [0.8, 0.7, 0.6, 0.3][i]})
    return rows


def _leaves(data: Any, path: tuple = ()) -> list[tuple]:
    """Every place a value sits in ``data`` (dict keys and list indices)."""
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in [(*path, k), *_leaves(v, (*path, k))]]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in [(*path, i), *_leaves(v, (*path, i))]]
    return []


def _rewrite(data: Any, where: tuple, raw: str) -> str:
    """``data`` as JSON with the value at ``where`` replaced by the raw text ``raw``."""
    marker = "\x00HOSTILE\x00"
    copy = json.loads(json.dumps(data))
    holder = copy
    for key in where[:-1]:
        holder = holder[key]
    old = json.dumps(holder[where[-1]])
    holder[where[-1]] = marker
    key = json.dumps(where[-1]) if isinstance(where[-1], str) else None
    if "{key}" in raw:
        if key is None:  # in a list: no key to repeat
            raw = old
        else:
            raw = raw.format(value=old, key=key)
    return json.dumps(copy).replace(json.dumps(marker), raw)


@st.composite
def hostile_edits(draw: st.DrawFn, records: list[Any]) -> dict[int, str]:
    """For some records (by index), the record as text with one value rewritten."""
    chosen = draw(st.sets(st.integers(0, len(records) - 1), min_size=1, max_size=3))
    out = {}
    for i in sorted(chosen):
        leaves = _leaves(records[i])
        where = leaves[draw(st.integers(0, len(leaves) - 1))]
        out[i] = _rewrite(records[i], where, draw(st.sampled_from(HOSTILE)))
    return out


#: legal names that are not plain text to a figure or a file system
NAMES = [
    "t$\\undefinedmacro$",
    "$x^$",
    "50$ and $x^2$",
    "a_b^c",
    "a/b",
    "a.b",
    "../up",
    "名前 with spaces",
    "x" * 300,
    "<script>&amp;",
]


@st.composite
def renames(draw: st.DrawFn, records: list[dict[str, Any]]) -> dict[int, str]:
    """One name field (task, family, model or metric) renamed in every record alike,
    to a legal name that is hard to draw or to use as a file name: the input stays
    valid, so the command must succeed."""
    fields = sorted({k for r in records for k in r} & {"task", "family", "model"})
    key = draw(st.sampled_from(fields))
    old = draw(st.sampled_from(sorted({r[key] for r in records})))
    new = draw(st.sampled_from(NAMES) | st.text(st.characters(codec="utf-8"), min_size=1))
    return {i: json.dumps({**r, key: new} if r[key] == old else r) for i, r in enumerate(records)}


def _jsonl(records: list[Any], edits: dict[int, str]) -> bytes:
    lines = [edits.get(i, json.dumps(r)) for i, r in enumerate(records)]
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _run(
    args: list[str], out: Path, inputs: Path, always: tuple[str, ...], capsys
) -> tuple[int, str]:
    from miragelab.cli import main

    before = _snapshot(inputs)
    code: int | None = 0
    try:
        main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    captured = capsys.readouterr()
    both = captured.out + captured.err
    assert "Traceback" not in both, both
    assert code in (0, 2), (code, both)
    assert _snapshot(inputs) == before, "an input was changed"
    siblings = [p.name for p in out.parent.iterdir() if p.name.startswith(".")]
    assert siblings == [], f"left behind: {siblings}"
    if code == 2:
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
        assert not out.exists() or (out.is_dir() and not any(out.iterdir())), "partial output"
    else:
        names = {p.name for p in out.rglob("*")} if out.is_dir() else {out.name}
        missing = [name for name in always if name not in names]
        assert not missing, f"output not whole: {missing} missing"
        hidden = [p for p in out.rglob(".*")] if out.is_dir() else []
        assert not hidden, hidden
    return code, captured.err


SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


def _in_temp(run: Callable[[Path], None]) -> None:
    with tempfile.TemporaryDirectory() as name:
        run(Path(name))


@SETTINGS
@given(edits=hostile_edits(_samples()) | renames(_samples()))
def test_score_never_crashes(edits: dict[int, str], capsys) -> None:
    def run(root: Path) -> None:
        inputs = root / "in"
        inputs.mkdir()
        (inputs / "s.jsonl").write_bytes(_jsonl(_samples(), edits))
        out = root / "out" / "scores.csv"
        out.parent.mkdir()
        args = ["score", str(inputs / "s.jsonl"), "--out", str(out), "--metrics", "exact_match"]
        _run(args, out, inputs, ("scores.csv",), capsys)

    _in_temp(run)


META_TABLES = ("meta_measures.csv", "meta_shares.csv", "meta_verdicts.csv")


@settings(SETTINGS, max_examples=8)  # each success draws its figures
@given(edits=hostile_edits(_scores()) | renames(_scores()))
def test_meta_never_crashes(edits: dict[int, str], capsys) -> None:
    def run(root: Path) -> None:
        inputs = root / "in"
        inputs.mkdir()
        (inputs / "c.jsonl").write_bytes(_jsonl(_scores(), edits))
        out = root / "meta"
        args = ["meta", str(inputs / "c.jsonl"), "--out", str(out), "--n-resamples", "200"]
        _run(args, out, inputs, META_TABLES, capsys)

    _in_temp(run)


def _folder_case(source: Path, file_name: str, draw: st.DrawFn) -> tuple[str, dict[int, str] | str]:
    """One file of a copied folder rewritten: JSONL line by line, JSON as a whole."""
    text = (source / file_name).read_text()
    if file_name.endswith(".jsonl"):
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        return file_name, draw(hostile_edits(records))
    document = json.loads(text)
    leaves = _leaves(document)
    where = leaves[draw(st.integers(0, len(leaves) - 1))]
    return file_name, _rewrite(document, where, draw(st.sampled_from(HOSTILE)))


def _write_case(source: Path, target: Path, file_name: str, edit: dict[int, str] | str) -> None:
    shutil.copytree(source, target)
    path = target / file_name
    if isinstance(edit, str):
        path.write_bytes(edit.encode("utf-8", "surrogatepass"))
    else:
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        path.write_bytes(_jsonl(records, edit))


@st.composite
def lm_eval_cases(draw: st.DrawFn) -> tuple[str, dict[int, str] | str]:
    names = sorted(p.name for p in LM_EVAL.iterdir())
    return _folder_case(LM_EVAL, draw(st.sampled_from(names)), draw)


@st.composite
def helm_cases(draw: st.DrawFn) -> tuple[str, dict[int, str] | str]:
    names = sorted(p.name for p in HELM.iterdir())
    return _folder_case(HELM, draw(st.sampled_from(names)), draw)


@SETTINGS
@given(case=lm_eval_cases())
def test_ingest_lm_eval_never_crashes(case, capsys) -> None:
    def run(root: Path) -> None:
        inputs = root / "in" / LM_EVAL.name
        _write_case(LM_EVAL, inputs, *case)
        out = root / "out"
        out.mkdir()
        args = ["ingest", "lm-eval", str(inputs), "--out", str(out / "samples.parquet")]
        _run(args, out, inputs, ("samples.parquet",), capsys)

    _in_temp(run)


@SETTINGS
@given(case=helm_cases())
def test_ingest_helm_never_crashes(case, capsys) -> None:
    def run(root: Path) -> None:
        inputs = root / "in" / HELM.name
        _write_case(HELM, inputs, *case)
        out = root / "out"
        out.mkdir()
        args = ["ingest", "helm", str(inputs), "--out", str(out / "samples.parquet")]
        args += ["--scores-out", str(out / "scores.csv")]
        _run(args, out, inputs, ("samples.parquet",), capsys)

    _in_temp(run)


@pytest.mark.parametrize("raw", HOSTILE)
def test_every_hostile_text_is_json_or_what_a_broken_writer_writes(raw: str) -> None:
    """The corpus itself: each text is read by Python's json (as NaN, a huge int, a
    surrogate...) or refused for depth, so the commands meet what a real writer makes."""
    text = raw.format(value="1", key='"k"') if "{key}" in raw else raw
    try:
        value = json.loads("{" + '"k": ' + text + "}")
    except RecursionError:
        return
    assert isinstance(value, dict)
    if text in ("NaN", "Infinity", "-Infinity", "1e309", "-1e309"):
        assert not math.isfinite(value["k"])
