"""The second red-team pass over hardening 2: inputs of each class that still gave a
traceback, a hang, half an output, a silent wrong answer or an error in the wrong place.

Every input is written here. A refused input gives one line ``error: ...`` naming the
file, line and field where the fault is, exit code 2, no output, and an untouched input.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

HELM = Path(__file__).parent / "fixtures" / "helm" / "generation"
RESULTS = {
    "results": {"t": {"alias": "t", "acc,none": 0.5, "acc_stderr,none": 0.05}},
    "configs": {"t": {"task": "t", "num_fewshot": 0}},
    "config": {
        "model": "hf",
        "model_args": "pretrained=org/m-160m,revision=step1000",
        "model_num_parameters": 160000000,
    },
}


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    from conftest import mirage_code

    capsys.readouterr()
    code = mirage_code(*args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def refused(
    capsys: pytest.CaptureFixture[str],
    args: list[object],
    *expected: str,
    out: Path | None = None,
    inputs: tuple[Path, ...] = (),
) -> str:
    """Run a command that must refuse its input: exit 2, one line naming ``expected``."""
    before = {p: p.read_bytes() for p in inputs if p.is_file()}
    code, _, err = run(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for text in expected:
        assert text in lines[0], lines[0]
    assert "Traceback" not in err
    if out is not None:
        assert not out.exists()
        assert not [p for p in out.parent.iterdir() if ".staging-" in p.name]
    for path, data in before.items():
        assert path.read_bytes() == data
    return lines[0]


def results_folder(root: Path, name: str, text: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "results_2024-05-01T10-00-00.json").write_text(text)
    return folder


# --------------------------------------------------------------------------- huge integers


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (('"model_num_parameters": 160000000', '"model_num_parameters": 1' + "0" * 400), "config"),
        (('"acc,none": 0.5', '"acc,none": 1' + "0" * 400), "results.t.acc,none"),
        (("revision=step1000", f"revision=step{2**70}"), "step"),
    ],
)
def test_huge_integers_in_lm_eval_results_are_refused_at_their_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: tuple[str, str], field: str
) -> None:
    text = json.dumps(RESULTS).replace(": ", ": ").replace(*change)
    assert change[1] in text
    folder = results_folder(tmp_path, "run", text)
    out = tmp_path / "meta"
    line = refused(capsys, ["meta", folder, "--out", out], "results_", field, out=out)
    assert "too large" in line


def _helm_stat_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: object, *text: str
) -> None:
    """A HELM run whose first statistic of exact match has ``key`` set to ``value``."""
    run_dir = tmp_path / "run"
    shutil.copytree(HELM, run_dir)
    stats = json.loads((run_dir / "stats.json").read_text())
    at = next(i for i, s in enumerate(stats) if s["name"]["name"] == "exact_match")
    stats[at][key] = value
    (run_dir / "stats.json").write_text(json.dumps(stats, indent=1))
    out = tmp_path / "s.parquet"
    args = ["ingest", "helm", run_dir, "--out", out, "--scores-out", tmp_path / "c.parquet"]
    refused(capsys, args, "stats.json, line ", f"[{at}].{key}", *text, out=out)


@pytest.mark.parametrize(("key", "value"), [("mean", 10**400), ("count", 10**400)])
def test_huge_integers_in_helm_stats_are_refused_at_their_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: int
) -> None:
    _helm_stat_refused(tmp_path, capsys, key, value, "too large")


def test_a_helm_mean_outside_its_metric_is_named_in_stats_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _helm_stat_refused(tmp_path, capsys, "mean", 1.5, "outside the range of exact_match")


def _runs(tmp_path: Path, step: str = "200", params: str = "1e7") -> list[object]:
    root = tmp_path / "runs"
    root.mkdir()
    rows = []
    for i, n in enumerate((1e7, 3e7, 1e8)):
        name = f"r{i}"
        size = params if i == 0 else f"{n:g}"
        rows.append(f"{name},{size},{6 * n:g}")
        second = step if i == 0 else "200"
        (root / f"{name}.csv").write_text(
            "_step,throughput/total_tokens,eval/downstream/q_len_norm\n"
            f"100,{int(n * 2)},0.3\n{second},{int(n * 4)},0.4\n"
        )
    (root / "manifest.csv").write_text("run,params,flops_per_token\n" + "\n".join(rows) + "\n")
    return [root, "--manifest", root / "manifest.csv", "--family", "toy"]


@pytest.mark.parametrize(
    ("step", "params", "where", "field"),
    [
        (str(2**70), "1e7", "r0.csv, line 3", "_step"),
        ("1" + "0" * 400, "1e7", "r0.csv, line 3", "_step"),
        ("200", "1" + "0" * 400, "manifest.csv, line 2", "params"),
        ("200", "1_0000000", "manifest.csv, line 2", "params"),
    ],
)
def test_run_exports_refuse_huge_steps_and_sizes_and_underscores(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    step: str,
    params: str,
    where: str,
    field: str,
) -> None:
    args = _runs(tmp_path, step, params)
    out = tmp_path / "scores.parquet"
    refused(capsys, ["ingest", "runs", *args, "--out", out], where, f"'{field}'", out=out)


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    "args",
    [
        ["theory", "--n-max", "inf"],
        ["theory", "--c", "inf"],
        ["theory", "--alpha=-inf"],
        ["theory", "--n-min", "1e-300", "--n-max", "1e300"],
        ["theory", "--lengths", ",".join(str(i) for i in range(1, 2001))],
        ["meta", "--shipped", "--seed", "-5"],
        ["score", "SAMPLES", "--seed", "-1"],
        ["forecast", "SCORES", "--harsh", "acc", "--soft", "ppl", "--holdout", "1", "--seed", "-2"],
    ],
)
def test_options_out_of_range_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    table = tmp_path / "in.jsonl"
    table.write_text("{}\n")
    out = tmp_path / "out"
    args = [str(table) if a in ("SAMPLES", "SCORES") else a for a in args]
    refused(capsys, [*args, "--out", out], out=out, inputs=(table,))


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--task", "t=1" + "0" * 400 + ":5", "--model", "m=1b"], "task"),
        (["--task", "t=10:5", "--model", "m=1e300b"], "too large"),
        (["--task", "t=10:5", "--model", "m=1e300"], "parameters must be"),
        (["--task", "t=10:1e400", "--model", "m=1b"], "task"),
    ],
)
def test_cost_bounds_its_inputs(
    capsys: pytest.CaptureFixture[str], args: list[str], text: str
) -> None:
    refused(capsys, ["cost", *args], text)


def test_cost_refuses_a_model_that_is_in_the_ladder_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ladder = tmp_path / "ladder.csv"
    ladder.write_text("family,model,params\nf,m,1e9\n")
    refused(
        capsys,
        ["cost", "--task", "t=10:5", "--ladder", ladder, "--model", "m=2b"],
        "'m' is in the ladder too",
    )


def test_plan_near_chance_finishes_and_prints_the_accuracy_it_was_given(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from miragelab.planner import detection_power

    code, out, err = run(capsys, "plan", "--accuracy", "0.5000001", "--chance", "0.5")
    assert code == 0, err
    n = int(out.split(" examples")[0].replace(",", ""))
    assert "0.5000001" in out
    # the size found reaches the power, and 1% fewer examples do not
    assert detection_power(n, 0.5000001, 0.95, 0.5) >= 0.95
    assert detection_power(int(n * 0.99), 0.5000001, 0.95, 0.5) < 0.95


@pytest.mark.parametrize(
    ("option", "value", "text"),
    [
        ("--params", "1.5", "whole number"),
        ("--params", "160000000.5", "whole number"),
        ("--params", "1_000_000", "not a model size"),
        ("--params", "1e300b", "too large"),
        ("--model", " ", "blank"),
        ("--family", "\u200b", "blank"),
    ],
)
def test_ingest_options_given_by_hand_follow_the_tables_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, text: str
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(HELM, run_dir)
    out = tmp_path / "s.parquet"
    line = refused(capsys, ["ingest", "helm", run_dir, "--out", out, option, value], text, out=out)
    assert "stats.json" not in line and "run_spec" not in line  # the option's fault


# --------------------------------------------------------------------------- bounded work


def test_a_gzip_of_millions_of_blank_lines_is_read_at_once(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.jsonl.gz"
    bomb.write_bytes(gzip.compress(b"\n" * 16_000_000, compresslevel=9))
    assert bomb.stat().st_size < 100_000
    done = subprocess.run(
        [sys.executable, "-m", "miragelab", "meta", str(bomb), "--out", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard, not a speed test: this read once took minutes
    )
    assert done.returncode == 2 and "no records" in done.stderr


def test_sigterm_leaves_no_staging_folder(tmp_path: Path) -> None:
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from miragelab.cli import _stop\n"
        "from miragelab.atomic import staged_folder\n"
        "signal.signal(signal.SIGTERM, _stop)\n"
        "with staged_folder(Path(sys.argv[1])) as stage:\n"
        "    (stage / 'half.csv').write_text('x')\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    signal.pause()\n"
    )
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-c", code, str(out)], timeout=60)
    assert done.returncode == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_stops_on_sigterm_as_on_ctrl_c() -> None:
    from miragelab.cli import _stop

    with pytest.raises(SystemExit) as stop:
        _stop(signal.SIGTERM, None)
    assert stop.value.code == 128 + signal.SIGTERM


# --------------------------------------------------------------------------- wrong answers


def test_nan_and_text_scores_in_lm_eval_results_are_noted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from miragelab.sources.published import load_scores

    data = json.loads(json.dumps(RESULTS))
    data["results"]["t"]["acc_norm,none"] = float("nan")
    data["results"]["t"]["exact_match,none"] = "0.5"
    folder = results_folder(tmp_path, "run", json.dumps(data))
    scores = load_scores([folder])
    assert set(scores["metric"]) == {"acc"}
    (note,) = [n for n in scores.attrs["notes"] if "not numbers" in n]
    assert "2 score(s)" in note and "acc_norm" in note and "exact_match" in note


def test_meta_on_an_lm_eval_output_folder_reads_the_results_not_the_samples(
    tmp_path: Path,
) -> None:
    from miragelab.sources.published import load_scores

    folder = results_folder(tmp_path, "run", json.dumps(RESULTS))
    (folder / "samples_t_2024-05-01T10-00-00.jsonl").write_text('{"doc_id": 0}\n')
    scores = load_scores([folder])
    assert list(scores["metric"]) == ["acc"]
    assert any("lm-eval samples file" in n for n in scores.attrs["notes"])


def test_gzipped_lm_eval_samples_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = Path(__file__).parent / "fixtures" / "lm_eval" / "v0.4.13"
    folder = tmp_path / "run"
    shutil.copytree(source, folder)
    plain = tmp_path / "plain.parquet"
    assert run(capsys, "ingest", "lm-eval", folder, "--out", plain)[0] == 0
    for f in folder.rglob("samples_*.jsonl"):
        f.with_name(f.name + ".gz").write_bytes(gzip.compress(f.read_bytes()))
        f.unlink()
    zipped = tmp_path / "zipped.parquet"
    code, _, err = run(capsys, "ingest", "lm-eval", folder, "--out", zipped)
    assert code == 0, err
    import pandas as pd

    a, b = pd.read_parquet(plain), pd.read_parquet(zipped)
    assert len(a) == len(b) > 0
    assert sorted(a["task"].unique()) == sorted(b["task"].unique())


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_pipe_in_place_of_stats_json_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(HELM, run_dir)
    (run_dir / "stats.json").unlink()
    (run_dir / "per_instance_stats.json").unlink()
    os.mkfifo(run_dir / "stats.json")
    out = tmp_path / "s.parquet"
    refused(
        capsys,
        ["ingest", "helm", run_dir, "--out", out, "--scores-out", tmp_path / "c.parquet"],
        "stats.json",
        "pipe",
        out=out,
    )


# --------------------------------------------------------------------------- where the fault is


@pytest.mark.parametrize(
    ("cell", "metric", "text"),
    [("1.5", "exact_match", "outside the range"), ("-25", "bleu", "outside the range")],
)
def test_a_wide_csv_cell_out_of_range_is_named_by_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cell: str, metric: str, text: str
) -> None:
    wide = tmp_path / "wide.csv"
    wide.write_text(f"model,params,t_{metric}\nm-1b,1e9,0.2\nm-2b,2e9,{cell}\nm-3b,3e9,0.4\n")
    out = tmp_path / "m"
    refused(capsys, ["meta", wide, "--out", out], "wide.csv, line 3", f"t_{metric}", text, out=out)


def test_an_lm_eval_score_out_of_range_is_named_at_its_json_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = json.dumps(RESULTS, indent=1).replace('"acc,none": 0.5', '"acc,none": 1.5')
    folder = results_folder(tmp_path, "run", text)
    out = tmp_path / "m"
    line_no = text.splitlines().index(next(ln for ln in text.splitlines() if "1.5" in ln)) + 1
    refused(
        capsys,
        ["meta", folder, "--out", out],
        f"line {line_no}",
        "results.t.acc,none",
        "outside the range of acc",
        out=out,
    )


def test_an_input_given_twice_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "s.jsonl"
    row = {"task": "t", "family": "f", "model": "m", "params": 1e6, "example_id": "1"}
    table.write_text(json.dumps({**row, "target": "a", "prediction": "a"}) + "\n")
    refused(
        capsys,
        ["score", table, tmp_path / "." / "s.jsonl", "--out", tmp_path / "x.csv"],
        "given twice",
        out=tmp_path / "x.csv",
    )


def test_an_out_folder_inside_an_input_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = results_folder(tmp_path, "run", json.dumps(RESULTS))
    refused(capsys, ["meta", folder, "--out", folder / "meta"], "inside the input folder")
    assert [p.name for p in folder.iterdir()] == ["results_2024-05-01T10-00-00.json"]


@pytest.mark.parametrize(
    ("name", "text"),
    [("f\x1b[31m", "control characters"), ("x\x00y", "control characters"), ("\u200b", "blank")],
)
def test_names_with_control_or_only_invisible_characters_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str
) -> None:
    rows = [
        {"task": "t", "family": name if i else "f", "model": f"m{i}", "params": 1e6 * (i + 1),
         "metric": "acc", "value": 0.5}
        for i in range(3)
    ]  # fmt: skip
    table = tmp_path / "c.jsonl"
    table.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "m"
    refused(capsys, ["meta", table, "--out", out], "c.jsonl, line 2", "'family'", text, out=out)


def test_unknown_names_in_direction_overrides_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {"task": "t", "family": "f", "model": f"m{i}", "params": 1e6 * (i + 1),
         "metric": "acc", "value": 0.1 * i}
        for i in range(3)
    ]  # fmt: skip
    table = tmp_path / "c.jsonl"
    table.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "m"
    refused(
        capsys,
        ["meta", table, "--out", out, "--higher-is-better", "nosuch=true"],
        "higher-is-better",
        "'nosuch'",
        out=out,
    )


def test_a_corrupt_gzip_of_lm_eval_samples_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = results_folder(tmp_path, "run", json.dumps(RESULTS))
    bad = folder / "samples_t_2024-05-01T10-00-00.jsonl.gz"
    bad.write_bytes(gzip.compress(b'{"doc_id": 0}\n')[:10] + b"\x00garbage" * 30)
    out = tmp_path / "s.parquet"
    refused(capsys, ["ingest", "lm-eval", folder, "--out", out], str(bad), "line 1", out=out)


def test_a_model_name_with_an_escape_in_the_results_is_refused_at_ingest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = Path(__file__).parent / "fixtures" / "lm_eval" / "v0.4.13"
    folder = tmp_path / "run"
    shutil.copytree(source, folder)
    (results,) = folder.rglob("results_*.json")
    data = json.loads(results.read_text())
    data["config"]["model_args"] = "pretrained=org/pythia\x1b[31m-160m"
    data.pop("model_name", None)
    results.write_text(json.dumps(data))
    out = tmp_path / "s.parquet"
    refused(capsys, ["ingest", "lm-eval", folder, "--out", out], "results_", "control characters")


def test_a_run_name_with_a_control_character_is_named_in_the_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _runs(tmp_path)
    manifest = args[2]
    assert isinstance(manifest, Path)
    manifest.write_text(manifest.read_text().replace("r1,", "r1\x07,"))
    out = tmp_path / "scores.parquet"
    refused(
        capsys, ["ingest", "runs", *args, "--out", out], "manifest.csv, line 3", "'run'", out=out
    )
