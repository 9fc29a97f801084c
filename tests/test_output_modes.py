"""Every file and folder any command writes gets the modes the user's umask gives.

A temporary file is created 0600 and a temporary folder 0700; written through
them, a report or a table would be unreadable to the user's group. Each command
is run here, in-process, under an umask of 027 (so a 0600 file, a 0644 file and
a 0640 one all differ from what is expected), and every path under its output
must have ``0666 & ~umask`` (files) or ``0777 & ~umask`` (folders).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import make_noisy_theory_scores, mirage_code

FIXTURES = Path(__file__).parent / "fixtures"
UMASK = 0o027


def _main(*args: object) -> None:
    assert mirage_code(*args) == 0, f"mirage {' '.join(map(str, args))} failed"


def _wrong_modes(folder: Path) -> dict[str, str]:
    """Paths under ``folder`` (and itself) whose modes differ from the umask's."""
    wrong = {}
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        want = (0o777 if path.is_dir() else 0o666) & ~UMASK
        have = path.stat().st_mode & 0o777
        if have != want:
            wrong[str(path.relative_to(folder.parent))] = f"{have:o} (want {want:o})"
    return wrong


@pytest.fixture()
def umask():
    old = os.umask(UMASK)
    try:
        yield UMASK
    finally:
        os.umask(old)


def _samples(path: Path) -> Path:
    rows = [
        {"task": "t", "family": "f", "model": m, "params": p, "example_id": str(i),
         "prompt": "p", "target": "a", "prediction": "a" if i % (j + 2) else "b"}
        for j, (m, p) in enumerate((("a", 1e6), ("b", 1e7), ("c", 1e8)))
        for i in range(6)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_analysis_and_ingest_outputs_get_the_umask(tmp_path: Path, umask) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    samples = _samples(inputs / "samples.jsonl")
    scores = inputs / "theory_scores.csv"
    make_noisy_theory_scores(n=2000).to_csv(scores, index=False)
    _main("theory", "--out", out / "theory", "--points", 20)
    for name in ("scores.csv", "scores.parquet", "scores.jsonl"):
        _main("score", samples, "--out", out / "score" / name, "--metrics", "exact_match")
    _main("meta", scores, "--out", out / "meta", "--n-resamples", 200)
    _main("report", scores, "--out", out / "report", "--n-resamples", 200)
    fit = ["--task", "add", "--family", "law", "--harsh", "exact_match"]
    _main("fit", scores, "--out", out / "fit", *fit, "--soft", "cross_entropy", "--holdout", 2)
    _main("transitions", "detect", scores, "--out", out / "detect")
    _main("transitions", "rates", "--out", out / "rates", "--n-smooth", 20, "--n-per-setting", 5)
    lm_eval = FIXTURES / "lm_eval" / "v0.4.13"
    _main("ingest", "lm-eval", lm_eval, "--out", out / "ingest" / "lm_eval.parquet")
    helm = FIXTURES / "helm" / "generation"
    _main(
        "ingest", "helm", helm, "--out", out / "ingest" / "helm.parquet",
        "--scores-out", out / "ingest" / "helm_scores.csv",
    )  # fmt: skip
    _main("task", "export", "add2", "--out", out / "task" / "add2.jsonl", "--n", 5)
    _main("cost", "--task", "t=100:50", "--model", "m=1b", "--out", out / "cost" / "cost.csv")
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(
        ["theory", "score", "meta", "report", "fit", "detect", "rates", "ingest", "task", "cost"]
    )
    assert _wrong_modes(out) == {}


def _ladder_samples(path: Path) -> Path:
    """Three models of two-digit sums, right on a growing share of the examples."""
    rows = [
        {"task": "add2", "family": "tiny", "model": f"m{k}", "params": 10.0 ** (3 + k),
         "example_id": str(i), "prompt": "x", "target": f"{10 + i:02d}",
         "prediction": f"{10 + i:02d}" if i < 10 * (k + 1) else f"{20 + i:02d}",
         "target_token_logprobs": [-1.0 / (k + 1)] * 2}
        for k in range(3)
        for i in range(40)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.slow  # trains three ladders (run by CI with the other slow tests)
def test_training_and_evaluation_outputs_get_the_umask(tmp_path: Path, umask) -> None:
    """The commands that train or run models: ladder, eval, vision, induction."""
    out = tmp_path / "out"
    ladder = out / "ladder"
    _main("ladder", "train", "--preset", "tiny", "--task", "add2", "--out", ladder)
    _main("ladder", "eval", ladder, "--out", out / "ladder_samples.parquet", "--n-test", 8)
    _main("ladder", "predictions", _ladder_samples(tmp_path / "three.jsonl"),
          "--out", out / "predictions", "--small-n", 10)  # fmt: skip
    models = json.loads((ladder / "ladder.json").read_text())["models"]
    table = tmp_path / "ladder.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["family", "model", "path", "params"])
        for m in models:
            writer.writerow(["tiny", m["model"], str(ladder / m["path"]), m["params"]])
    _main("eval", "--model", "hf", "--ladder", table, "--task", "add2", "--limit", 4,
          "--out", out / "eval" / "samples.parquet")  # fmt: skip
    _main("vision", "classifier", "--quick", "--seeds", 1, "--out", out / "vision")
    _main("transitions", "induction", "--quick", "--steps", 100, "--n-boot", 99,
          "--out", out / "induction")  # fmt: skip
    assert _wrong_modes(out) == {}
    shutil.rmtree(out)
