"""Any local file name works for every reader and writer.

pyarrow reads a bare string with a colon before any slash as a URI
(``simple1:model=x.parquet``, the style of HELM's run folders) and refused it;
names with spaces, ``#``, ``%``, ``?``, brackets, a leading dash or non-ASCII
letters are ordinary local names too. Each command a user runs is run here on
folders and files so named, through ``mirage`` as typed, with the paths relative
to the working folder (as a user types them; an absolute path starts with ``/``
and never read as a URI). Expected values come
from how the inputs were written (counted by hand below), and outputs are read
back from their bytes, not through the readers under test.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

FIXTURES = Path(__file__).parent / "fixtures"

NAMES = {
    "colon": "simple1:model=x",
    "space": "my runs",
    "hash": "run#1",
    "percent": "run%20x",
    "question": "run?x",
    "dash": "-x",
    "non_ascii": "modèle-测试",
    "brackets": "[a]",
}

#: model -> (params, right answers out of 4); the exact_match means are these / 4
MODELS = {"a": (1e6, 0), "b": (1e7, 1), "c": (1e8, 2), "d": (1e9, 3), "e": (1e10, 4)}


def _samples() -> list[dict]:
    rows = []
    for model, (params, right) in MODELS.items():
        for i in range(4):
            rows.append(
                {
                    "task": "t",
                    "family": "f",
                    "model": model,
                    "params": params,
                    "example_id": str(i),
                    "prompt": "p",
                    "target": "yes",
                    "prediction": "yes" if i < right else "no",
                }
            )
    return rows


def _write_samples(path: Path) -> None:
    """``path`` (.jsonl, .csv or .parquet) with the rows of :func:`_samples`, written
    without miragelab (parquet through a Python file handle)."""
    rows = _samples()
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif path.suffix == ".csv":
        header = list(rows[0])
        lines = [",".join(header)] + [",".join(str(r[k]) for k in header) for r in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        with open(path, "wb") as handle:
            pq.write_table(pa.Table.from_pylist(rows), handle)


def _read_back(path: Path) -> pd.DataFrame:
    """A written table, read from its bytes (parquet) or its text (CSV)."""
    if path.suffix == ".parquet":
        return pq.read_table(io.BytesIO(path.read_bytes())).to_pandas()
    return pd.read_csv(io.StringIO(path.read_text(encoding="utf-8")))


def _arg(path: Path) -> str:
    """``path`` as typed on the command line: relative, ``./`` before a leading dash."""
    text = str(path)
    return f"./{text}" if text.startswith("-") else text


def _mirage(args: list[str], capsys) -> str:
    """Run ``mirage ARGS``; fail with its stderr unless it succeeds. Returns stdout."""
    from miragelab.cli import main

    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    return capsys.readouterr().out


def _means(path: Path) -> dict[str, float]:
    frame = _read_back(path)
    assert set(frame["metric"]) == {"exact_match"}
    return dict(zip(frame["model"], frame["value"], strict=True))


EXPECTED_MEANS = {model: right / 4 for model, (_, right) in MODELS.items()}


@pytest.mark.parametrize("key", sorted(NAMES))
@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_score_reads_and_writes_any_name(
    key: str, fmt: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    name = NAMES[key]
    folder = Path(name)
    folder.mkdir()
    samples = folder / f"{name}.{fmt}"
    _write_samples(samples)
    for out_fmt in ("csv", "parquet"):
        out = folder / f"{name} scores.{out_fmt}"
        _mirage(["score", _arg(samples), "--out", _arg(out), "--metrics", "exact_match"], capsys)
        assert _means(out) == EXPECTED_MEANS


@pytest.mark.parametrize("key", ["colon", "percent", "non_ascii"])
def test_score_streams_a_dataset_folder_of_any_name(
    key: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    """A folder of parquet parts (Hive style) whose own name is unusual, read part by part."""
    monkeypatch.chdir(tmp_path)
    root = Path(NAMES[key])
    rows = _samples()
    for model in MODELS:
        part = root / "task=t" / f"model={model}" / "part-00000.parquet"
        part.parent.mkdir(parents=True)
        mine = [{k: v for k, v in r.items() if k not in ("task", "model")} for r in rows]
        mine = [r for r, full in zip(mine, rows, strict=True) if full["model"] == model]
        with open(part, "wb") as handle:
            pq.write_table(pa.Table.from_pylist(mine), handle)
    out = Path(f"{NAMES[key]}.parquet")
    _mirage(["score", _arg(root), "--out", _arg(out), "--metrics", "exact_match"], capsys)
    assert _means(out) == EXPECTED_MEANS


def test_a_leading_dash_as_dot_slash_and_after_double_dash(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _write_samples(tmp_path / "-x.csv")
    _mirage(["score", "./-x.csv", "--out", "./-s.csv", "--metrics", "exact_match"], capsys)
    assert _means(tmp_path / "-s.csv") == EXPECTED_MEANS
    _mirage(["score", "--out", "-t.parquet", "--metrics", "exact_match", "--", "-x.csv"], capsys)
    assert _means(tmp_path / "-t.parquet") == EXPECTED_MEANS


def _scores_rows() -> list[dict]:
    return [
        {
            "task": "t",
            "family": "f",
            "model": model,
            "params": params,
            "metric": "exact_match",
            "value": right / 4,
            "n": 4,
            "higher_is_better": True,
        }
        for model, (params, right) in MODELS.items()
    ]


@pytest.mark.parametrize("key", sorted(NAMES))
def test_meta_reads_scores_and_writes_into_any_name(
    key: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    name = NAMES[key]
    folder = Path(name)
    folder.mkdir()
    csv_in, parquet_in = folder / f"{name}.csv", folder / f"{name}.parquet"
    pd.DataFrame(_scores_rows()).to_csv(csv_in, index=False)
    with open(parquet_in, "wb") as handle:
        pq.write_table(pa.Table.from_pylist(_scores_rows()), handle)
    for scores, out in ((csv_in, folder / f"{name} meta"), (parquet_in, folder / name)):
        _mirage(["meta", _arg(scores), "--out", _arg(out), "--n-resamples", "100"], capsys)
        measures = _read_back(out / "meta_measures.parquet")
        # one curve: task t, family f, five sizes
        curves = zip(measures["task"], measures["family"], measures["n_points"], strict=True)
        assert list(curves) == [("t", "f", 5)]
        assert (out / "meta_measures.csv").is_file()


@pytest.mark.parametrize("key", sorted(NAMES))
def test_ingest_lm_eval_from_any_name(key: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    name = NAMES[key]
    folder = Path(name)
    shutil.copytree(FIXTURES / "lm_eval" / "v0.4.13", folder)
    out = folder / f"{name}.parquet"
    said = _mirage(["ingest", "lm-eval", _arg(folder), "--out", _arg(out)], capsys)
    assert f"to {out}\n" in said  # the name as given, brackets and all
    rows = _read_back(out)
    # the fixture's four samples files hold 2 + 2 + 1 + 2 samples, all of pythia-160m
    assert len(rows) == 7
    assert set(rows["model"]) == {"EleutherAI/pythia-160m"}
    assert set(rows["task"]) >= {"arith", "mcq", "lambada_mini"}


@pytest.mark.parametrize("key", sorted(NAMES))
def test_ingest_helm_from_any_name(key: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    name = NAMES[key]
    run = Path(name) / name
    shutil.copytree(FIXTURES / "helm" / "generation", run)
    out, scores_out = Path(name) / f"{name}.parquet", Path(name) / f"{name} stats.parquet"
    said = _mirage(
        ["ingest", "helm", _arg(run), "--out", _arg(out), "--scores-out", _arg(scores_out)],
        capsys,
    )
    assert f"to {out}\n" in said and f"to {scores_out}\n" in said
    rows = _read_back(out)
    # three instances, the perturbed copy skipped (tests/fixtures/helm/generation)
    assert sorted(rows["example_id"]) == ["id0", "id1", "id2"]
    assert set(_read_back(scores_out)["model"]) == {"acme/tiny-gpt-1m"}
