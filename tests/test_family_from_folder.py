"""Models whose names carry no family form one family named after their folder.

A sweep saved as ``models/w8`` ... ``models/w128`` has no size token in its
names, so no name gives a family; each model used to be a one-model family and
``meta`` found no curve. Now the models of one ingest form one family named
after their common parent folder (``models``), else after the common folder of
the files they were read from, and the command says so in one ``note:`` line
naming ``--family``. Names with a size token keep their families; ``--family``
names the family instead. Every expected family below is the folder the test
itself created or the name it wrote.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from miragelab.sources.published import load_scores
from miragelab.sources.sizes import Unnamed, family_in_name, folder_family

FIXTURES = Path(__file__).parent / "fixtures"
LM_EVAL = FIXTURES / "lm_eval" / "v0.4.13" / "EleutherAI__pythia-160m"
RESULTS = "results_2024-05-01T10-00-00.123456.json"
WIDTHS = (8, 16, 32, 48, 64, 128)


def _lm_eval_run(folder: Path, model: str, params: int) -> Path:
    """The 0.4.13 fixture run copied to ``folder``, its results naming ``model`` of ``params``."""
    shutil.copytree(LM_EVAL, folder)
    results = folder / RESULTS
    data = json.loads(results.read_text())
    data["config"]["model_args"] = f"pretrained={model},dtype=float32"
    data["config"]["model_num_parameters"] = params
    data["model_name"] = model
    results.write_text(json.dumps(data))
    return folder


def _mirage(args: list[str], capsys) -> list[str]:
    """Run ``mirage ARGS``; fail unless it succeeds. Returns its ``note:`` lines."""
    from miragelab.cli import main

    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    err = capsys.readouterr().err
    return [line for line in err.splitlines() if line.startswith("note:")]


def _families(path: Path) -> dict[str, str]:
    """model -> family of a written samples table, read from its bytes."""
    table = pq.read_table(io.BytesIO(path.read_bytes()), columns=["model", "family"])
    return dict(zip(table["model"].to_pylist(), table["family"].to_pylist(), strict=True))


def _sweep(root: Path, names: list[str]) -> Path:
    for i, name in enumerate(names):
        _lm_eval_run(root / f"run{i}", name, 1_000_000 * WIDTHS[i])
    return root


def test_six_models_without_size_tokens_form_the_family_of_their_folder(tmp_path, capsys):
    models = [f"models/w{w}" for w in WIDTHS]
    root = _sweep(tmp_path / "sweep", models)
    out = tmp_path / "s.parquet"
    notes = _mirage(["ingest", "lm-eval", str(root), "--out", str(out)], capsys)
    assert _families(out) == dict.fromkeys(models, "models")
    assert len(notes) == 1
    assert "'models'" in notes[0] and "--family" in notes[0] and "6 models" in notes[0]


def test_names_without_a_folder_take_the_folder_of_their_files(tmp_path, capsys):
    models = [f"w{w}" for w in WIDTHS[:3]]
    root = _sweep(tmp_path / "my-sweep", models)
    out = tmp_path / "s.parquet"
    notes = _mirage(["ingest", "lm-eval", str(root), "--out", str(out)], capsys)
    # the results files lie in my-sweep/run0 ... my-sweep/run2: their common folder
    assert _families(out) == dict.fromkeys(models, "my-sweep")
    assert len(notes) == 1 and "'my-sweep'" in notes[0]


def test_names_with_size_tokens_keep_their_families_and_give_no_note(tmp_path, capsys):
    root = tmp_path / "pythia"
    _lm_eval_run(root / "a", "EleutherAI/pythia-70m", 70_426_624)
    _lm_eval_run(root / "b", "EleutherAI/pythia-160m", 162_322_944)
    out = tmp_path / "s.parquet"
    notes = _mirage(["ingest", "lm-eval", str(root), "--out", str(out)], capsys)
    assert _families(out) == {
        "EleutherAI/pythia-70m": "pythia",
        "EleutherAI/pythia-160m": "pythia",
    }
    assert notes == []


def test_the_family_option_overrides(tmp_path, capsys):
    models = [f"models/w{w}" for w in WIDTHS]
    root = _sweep(tmp_path / "sweep", models)
    out = tmp_path / "s.parquet"
    notes = _mirage(["ingest", "lm-eval", str(root), "--out", str(out), "--family", "x"], capsys)
    assert _families(out) == dict.fromkeys(models, "x")
    assert notes == []


def test_same_size_runs_stay_apart(tmp_path, capsys):
    """Two seeds of one size are not a curve: one family would refuse them."""
    root = tmp_path / "seeds"
    _lm_eval_run(root / "a", "models/seed1", 8_000_000)
    _lm_eval_run(root / "b", "models/seed2", 8_000_000)
    out = tmp_path / "s.parquet"
    notes = _mirage(["ingest", "lm-eval", str(root), "--out", str(out)], capsys)
    assert _families(out) == {"models/seed1": "seed1", "models/seed2": "seed2"}
    assert notes == []


def _helm_run(folder: Path, model: str) -> Path:
    shutil.copytree(FIXTURES / "helm" / "generation", folder)
    for name in ("run_spec.json", "scenario_state.json"):
        path = folder / name
        path.write_text(path.read_text().replace("acme/tiny-gpt-1m", model))
    return folder


def test_helm_runs_named_by_size_alone(tmp_path, capsys):
    """``acme/7b``: a size token and nothing else, so the name gives no family."""
    runs = [_helm_run(tmp_path / "runs" / n, f"acme/{n}") for n in ("1b", "7b", "13b")]
    out, scores = tmp_path / "s.parquet", tmp_path / "h.csv"
    args = ["ingest", "helm", *map(str, runs), "--out", str(out), "--scores-out", str(scores)]
    notes = _mirage(args, capsys)
    assert _families(out) == {"acme/1b": "acme", "acme/7b": "acme", "acme/13b": "acme"}
    stats = pd.read_csv(scores)  # the runs' statistics name the same family
    assert set(stats["model"]) == {"acme/1b", "acme/7b", "acme/13b"}
    assert set(stats["family"]) == {"acme"}
    assert len(notes) == 1 and "'acme'" in notes[0] and "--family" in notes[0]
    notes = _mirage([*args, "--family", "mine"], capsys)
    assert set(_families(out).values()) == {"mine"} and notes == []


def test_lm_eval_results_and_wide_csv_through_load_scores(tmp_path):
    for w in WIDTHS[:3]:  # the results files alone (a walk reads no samples files)
        run = _lm_eval_run(tmp_path / "copies" / f"w{w}", f"w{w}", 1_000_000 * w)
        (tmp_path / "grid" / f"w{w}").mkdir(parents=True)
        shutil.copy(run / RESULTS, tmp_path / "grid" / f"w{w}" / RESULTS)
    table = load_scores([tmp_path / "grid"])
    # the results files lie in grid/w8, grid/w16, grid/w32
    assert set(zip(table["model"], table["family"], strict=True)) == {
        ("w8", "grid"),
        ("w16", "grid"),
        ("w32", "grid"),
    }
    assert sum("'grid'" in note for note in table.attrs["notes"]) == 1

    wide = tmp_path / "tables" / "scores.csv"
    wide.parent.mkdir()
    wide.write_text("model,params,toy_0_acc\nw8,8000000,0.1\nw16,16000000,0.2\nx-1b,1e9,0.3\n")
    table = load_scores([wide])
    got = set(zip(table["model"], table["family"], strict=True))
    assert got == {("w8", "tables"), ("w16", "tables"), ("x-1b", "x")}
    assert sum("'tables'" in note for note in table.attrs["notes"]) == 1


def test_the_rule():
    assert family_in_name("models/w8") is None
    assert family_in_name("acme/7b") is None
    assert family_in_name("EleutherAI/pythia-1.4b-deduped") == "pythia-deduped"
    here = Path("a/b/results.json")
    assert folder_family([Unnamed("models/w8", 8e6, None, here)]) is None  # one model
    elsewhere = Path("/x/r1/f"), Path("/a/b/f")
    two = [
        Unnamed("org1/w8", 8e6, None, elsewhere[0]),
        Unnamed("org2/w16", 16e6, None, elsewhere[1]),
    ]
    # no common folder in the names, and the files' folders /x/r1 and /a/b share only /
    assert folder_family(two) is None
    # ".." names no folder: the files' folder a/b does
    up = [Unnamed("../w8", 8e6, None, here), Unnamed("../w16", 16e6, None, here)]
    assert folder_family(up)[0] == "b"  # type: ignore[index]
    same_step = [Unnamed("m/w-a1", 8e6, 1, here), Unnamed("m/w-a2", 8e6, 1, here)]
    assert folder_family(same_step) is None
    other_steps = [Unnamed("m/w-a1", 8e6, 1, here), Unnamed("m/w-a2", 8e6, 2, here)]
    assert folder_family(other_steps)[0] == "m"  # type: ignore[index]


@pytest.mark.parametrize("override", ["--family", "a family column"])
def test_the_note_names_the_override(override):
    here = Path("a/b/results.json")
    models = [Unnamed("m/w8", 8e6, None, here), Unnamed("m/w16", 16e6, None, here)]
    family, note = folder_family(models, override=override)  # type: ignore[misc]
    assert family == "m" and override in note and "\n" not in note


def test_models_of_different_stems_are_no_ladder(tmp_path: Path) -> None:
    """``phi-2`` and ``distilgpt2`` side by side in a results folder are two models, not
    one family: a folder of downloads is not a scaling curve."""
    here = tmp_path / "results" / "x.json"
    apart = [
        Unnamed("results/phi-2", 2.7e9, None, here),
        Unnamed("results/distilgpt2", 8.2e7, None, here),
    ]
    assert folder_family(apart) is None
    runs = [
        Unnamed(f"org_{n}", p, None, here) for n, p in (("davinci", 1.75e11), ("bloom", 1.76e11))
    ]
    assert folder_family(runs) is None
