"""An output folder is written whole or not at all, and no output overwrites an input.

A one-shot command writes into a hidden staging folder next to ``--out`` and moves
its files into ``--out`` only once it succeeded: a failure half-way (here a figure
that cannot be drawn, after the tables were written) leaves ``--out`` as it was
and no staging folder behind. An output that is one of the command's inputs (the
same file under another spelling, or a hard link), and a symlinked subfolder
inside ``--out``, are refused with one line and exit 2.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_noisy_theory_scores, mirage_code

from miragelab.tables import write_table


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture()
def scores_file(tmp_path: Path) -> Path:
    # one (task, family) size curve: exact match jumps, the continuous metrics do not
    return write_table(make_noisy_theory_scores(), tmp_path / "in" / "scores.parquet")


def _fail_drawing(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    """Make the second figure of `mirage meta` fail: the tables are written by then."""
    import miragelab.report.meta_figures as meta_figures

    def broken(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(meta_figures, "plot_top_curves", broken)


def test_a_failed_meta_leaves_no_out_folder(
    scores_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_drawing(monkeypatch, RuntimeError("cannot draw"))
    parent = tmp_path / "results"
    parent.mkdir()
    out = parent / "meta"
    with pytest.raises(RuntimeError, match="cannot draw"):
        mirage_code("meta", scores_file, "--out", out, "--n-resamples", 100)
    assert not out.exists()
    assert list(parent.iterdir()) == []  # no staging folder either


def test_a_failed_meta_into_missing_parents_makes_none(
    scores_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_drawing(monkeypatch, RuntimeError("cannot draw"))
    with pytest.raises(RuntimeError):
        mirage_code(
            "meta", scores_file, "--out", tmp_path / "a" / "b" / "meta", "--n-resamples", 100
        )
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("error", [RuntimeError("cannot draw"), KeyboardInterrupt()])
def test_a_failed_meta_leaves_an_existing_out_folder_as_it_was(
    scores_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    out = tmp_path / "meta"
    (out / "verdicts").mkdir(parents=True)
    (out / "meta_measures.csv").write_text("an earlier run's table\n")
    (out / "notes.txt").write_text("mine\n")
    (out / "verdicts" / "old.png").write_bytes(b"png")
    before = _snapshot(out)
    _fail_drawing(monkeypatch, error)
    if isinstance(error, KeyboardInterrupt):
        assert mirage_code("meta", scores_file, "--out", out, "--n-resamples", 100) == 130
    else:
        with pytest.raises(RuntimeError):
            mirage_code("meta", scores_file, "--out", out, "--n-resamples", 100)
    assert _snapshot(out) == before
    assert _hidden(tmp_path) == []


def test_a_successful_meta_replaces_its_files_and_keeps_others(
    scores_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "meta"
    out.mkdir()
    (out / "meta_measures.csv").write_text("an earlier run's table\n")
    (out / "notes.txt").write_text("mine\n")
    assert mirage_code("meta", scores_file, "--out", out, "--n-resamples", 100) == 0
    assert (out / "notes.txt").read_text() == "mine\n"
    # 3 metrics of one curve: one row each, the earlier text gone
    assert len(pd.read_csv(out / "meta_measures.csv")) == 3
    assert (out / "verdicts").is_dir() and (out / "emergence_by_metric.png").exists()
    assert _hidden(tmp_path) == [] and _hidden(out) == []


def test_a_successful_theory_run_leaves_no_hidden_folder(tmp_path: Path) -> None:
    out = tmp_path / "new" / "theory"
    assert mirage_code("theory", "--out", out, "--points", 20) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "theory.png",
        "theory.svg",
        "theory_curves.csv",
    ]
    assert _hidden(tmp_path / "new") == []
    # 20 sizes x the 5 default answer lengths, one row each
    assert len(pd.read_csv(out / "theory_curves.csv")) == 20 * 5


# --------------------------------------------------------------------------- clobbering


def _refused(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    """Run ``mirage ARGS``; it must exit 2 with one error line, which is returned."""
    capsys.readouterr()
    assert mirage_code(*args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize("spelling", ["same", "dotted", "hard link"])
def test_score_refuses_to_overwrite_its_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spelling: str
) -> None:
    samples = tmp_path / "in.jsonl"
    samples.write_text('{"task": "t"}\n')
    out = {
        "same": samples,
        "dotted": tmp_path / "sub" / ".." / "in.jsonl",
        "hard link": tmp_path / "linked.jsonl",
    }[spelling]
    (tmp_path / "sub").mkdir()
    if spelling == "hard link":
        os.link(samples, out)
    line = _refused(capsys, "score", samples, "--out", out)
    assert "field 'out'" in line and "input" in line and str(out) in line
    assert samples.read_text() == '{"task": "t"}\n'


def test_ingest_helm_refuses_one_file_for_both_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    target = tmp_path / "x.parquet"
    line = _refused(
        capsys, "ingest", "helm", run, "--out", target, "--scores-out", tmp_path / "." / "x.parquet"
    )
    assert "field 'scores-out'" in line and "--out" in line
    assert not target.exists()


def test_meta_refuses_an_out_folder_that_is_its_input(
    scores_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = scores_file.parent
    before = _snapshot(folder)
    line = _refused(capsys, "meta", folder, "--out", folder)
    assert "field 'out'" in line and "input" in line
    assert _snapshot(folder) == before and _hidden(folder.parent) == []


def test_meta_refuses_to_overwrite_an_input_inside_its_out_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "meta"
    # a scores table under the name of one of meta's own tables
    scores = write_table(make_noisy_theory_scores(), out / "meta_verdicts.parquet")
    before = _snapshot(out)
    line = _refused(capsys, "meta", scores, "--out", out, "--n-resamples", 100)
    assert str(scores) in line and "input" in line
    assert _snapshot(out) == before and _hidden(tmp_path) == []


def test_meta_refuses_a_symlinked_subfolder_of_out(
    scores_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "meta"
    out.mkdir()
    (out / "verdicts").symlink_to(elsewhere, target_is_directory=True)
    line = _refused(capsys, "meta", scores_file, "--out", out, "--n-resamples", 100)
    assert str(out / "verdicts") in line and "link" in line
    assert list(elsewhere.iterdir()) == []
    assert sorted(p.name for p in out.iterdir()) == ["verdicts"]
    assert _hidden(tmp_path) == []


# --------------------------------------------------------------------------- printed tables


def test_meta_prints_whole_names(tmp_path: Path) -> None:
    long_name = "an-arithmetic-task-whose-name-is-far-longer-than-any-terminal-column-" + "x" * 11
    assert len(long_name) == 80
    frame = make_noisy_theory_scores().assign(task=long_name)
    scores = write_table(frame, tmp_path / "scores.parquet")
    out = tmp_path / "meta"
    result = subprocess.run(
        [sys.executable, "-m", "miragelab", "meta", str(scores), "--out", str(out)]
        + ["--n-resamples", "100"],
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
    )
    assert result.returncode == 0, result.stderr
    assert long_name in result.stdout


def test_long_outputs_stop_at_40_rows_and_name_the_file(capsys) -> None:
    from miragelab.cli._options import MAX_ROWS, print_rows, table

    assert MAX_ROWS == 40
    rows = [(f"task{i:02d}", "mirage") for i in range(41)]
    print_rows(table("task", "verdict"), iter(rows), len(rows), "out/meta_verdicts.csv")
    printed = capsys.readouterr().out
    assert [f"task{i:02d}" in printed for i in range(41)] == [True] * 40 + [False]
    assert printed.rstrip().endswith("1 more in out/meta_verdicts.csv")


def test_an_existing_out_is_staged_inside_itself(tmp_path: Path) -> None:
    """Staged in ``--out`` itself: one file system (no copy across a mount point) and no
    need to write in its parent (a shared scratch folder)."""
    from miragelab.atomic import staged_folder

    out = tmp_path / "out"
    out.mkdir()
    with staged_folder(out) as stage:
        assert stage.parent == out and stage.name.startswith(".")
        (stage / "a.csv").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["a.csv"]


def test_a_failed_move_keeps_the_files_not_yet_moved_and_says_where(
    tmp_path: Path, monkeypatch
) -> None:
    import os

    from miragelab import atomic

    out = tmp_path / "out"
    out.mkdir()
    for name in ("a.csv", "b.csv"):
        (out / name).write_text("old")
    real, calls = os.replace, []

    def failing(src, dst):  # noqa: ANN001
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", failing)
    with pytest.raises(OSError, match=r"1 of 2 files moved, the rest are in .*staging") as info:
        with atomic.staged_folder(out) as stage:
            for name in ("a.csv", "b.csv"):
                (stage / name).write_text("new")
    assert (out / "a.csv").read_text() == "new" and (out / "b.csv").read_text() == "old"
    kept = Path(re.search(r"the rest are in (\S+)", info.value.strerror).group(1))
    assert (kept / "b.csv").read_text() == "new"
