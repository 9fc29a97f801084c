"""Streaming `mirage score`: the in-memory scores from record batches, and the same errors.

The data is small, but batches of a few dozen rows force every group across
many batches and part boundaries; ``BOOTSTRAP_MAX_N`` is lowered so that some
groups take the t interval (from streamed moments) and others the bootstrap.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import write_hive
from scipy import stats as sps

from miragelab import scoring
from miragelab.cli import main
from miragelab.errors import InputError
from miragelab.metrics import REGISTRY
from miragelab.runners.units import write_part
from miragelab.scoring import score_samples
from miragelab.streaming import should_stream, stream_score
from miragelab.tables import SAMPLES, read_table, to_arrow, validate_frame

SRC = Path(__file__).resolve().parents[1] / "src"
SMALL_N = 400  # groups above this many examples get the t interval
METRICS = list(REGISTRY)


@pytest.fixture(autouse=True)
def small_bootstrap_limit(monkeypatch):
    monkeypatch.setattr(scoring, "BOOTSTRAP_MAX_N", SMALL_N)


def make_samples(seed: int = 0) -> pd.DataFrame:
    """Three tasks (answers with token log-probs; multiple choice; LAMBADA-style totals with
    is_greedy) over five checkpoints."""
    rng = np.random.default_rng(seed)
    checkpoints = [  # family, model, params, step, examples per task
        ("f", "m0", 1e6, None, 150),
        ("f", "m1", 1e7, None, 700),
        ("f", "m2", 1e8, None, 45),
        ("g", "g-a", 3e6, 100, 520),
        ("g", "g-a", 3e6, 200, 90),
    ]
    rows = []
    for family, model, params, step, n in checkpoints:
        skill = math.log10(params) / 8
        for task in ("arith", "mc", "lambada"):
            for i in range(n):
                target = str(rng.integers(0, 10**4))
                right = rng.random() < skill
                row = {
                    "task": task,
                    "family": family,
                    "model": model,
                    "params": params,
                    "step": step,
                    "compute_flops": 6 * params * 1e9 if family == "f" else None,
                    "example_id": f"{task}-{i}",
                    "prompt": f"q{i}",
                    "target": target,
                    "prediction": (" " + target) if right else str(rng.integers(0, 10**4)),
                }
                if task == "arith":
                    lps = -rng.exponential(1 - skill + 0.05, size=len(target))
                    row["target_token_logprobs"] = lps.tolist()
                elif task == "lambada":
                    row["continuation_logprob"] = -rng.exponential(2 - skill)
                    row["continuation_is_greedy"] = bool(right)
                else:
                    logits = rng.normal(size=4) + np.eye(4)[i % 4] * 2 * skill
                    row["choice_logprobs"] = (logits - np.logaddexp.reduce(logits)).tolist()
                    row["correct_choice"] = i % 4
                    row["choice_lengths"] = rng.integers(1, 9, size=4).astype(float).tolist()
                rows.append(row)
    return validate_frame(pd.DataFrame(rows), SAMPLES)


def write_dataset(samples: pd.DataFrame, root: Path, part_rows: int = 97) -> list[Path]:
    """Parts of at most ``part_rows`` rows per (task, model), as ``run_units`` lays them out."""
    written = []
    for (task, model), rows in samples.groupby(["task", "model"], sort=False):
        for k, lo in enumerate(range(0, len(rows), part_rows)):
            path = root / f"task={task}" / f"model={model}" / f"part-{k:05d}.parquet"
            write_part(rows.iloc[lo : lo + part_rows], path)
            written.append(path)
    return written


def assert_same_scores(streamed: pd.DataFrame, in_memory: pd.DataFrame) -> None:
    """Same rows; 0/1 and bootstrap numbers exactly, t intervals to rounding."""
    numbers = ["value", "ci_low", "ci_high"]
    pd.testing.assert_frame_equal(streamed.drop(columns=numbers), in_memory.drop(columns=numbers))
    exact = (in_memory["ci_method"] != "t").to_numpy()
    assert exact.any() and (~exact).any()  # both kinds of group are exercised
    np.testing.assert_array_equal(
        streamed.loc[exact, numbers].to_numpy(), in_memory.loc[exact, numbers].to_numpy()
    )
    np.testing.assert_allclose(
        streamed.loc[~exact, numbers].to_numpy(),
        in_memory.loc[~exact, numbers].to_numpy(),
        rtol=1e-12,
        atol=1e-12,
    )


def test_streaming_a_dataset_equals_scoring_it_in_memory(tmp_path):
    samples = make_samples()
    write_dataset(samples, tmp_path / "ds")
    whole = read_table(tmp_path / "ds", SAMPLES)  # a dataset folder reads as one table
    assert len(whole) == len(samples)
    in_memory = score_samples(whole, METRICS)
    streamed = stream_score([tmp_path / "ds"], METRICS, batch_rows=37)
    assert_same_scores(streamed, in_memory)
    assert set(in_memory["ci_method"]) == {"wilson", "bca", "t"}
    # 4 text metrics on every row; on one third each: 4 log-prob metrics, 3 choice metrics and
    # the 2 continuation metrics
    text = [m for m in METRICS if REGISTRY[m].needs == ("prediction", "target")]
    assert len(text) == 4  # exact match, quasi exact match and the two edit distances
    assert in_memory["n"].sum() == 4 * len(samples) + (4 + 3 + 2) * len(samples) // 3


def test_streamed_numbers_match_independent_formulas(tmp_path):
    samples = make_samples(seed=3)
    write_dataset(samples, tmp_path / "ds", part_rows=64)
    scores = stream_score([tmp_path / "ds"], ["exact_match", "cross_entropy"], batch_rows=29)
    rows = samples.astype(object).where(samples.notna(), None).to_dict("records")

    em = scores[(scores.metric == "exact_match") & (scores.model == "m1")]
    em = em[em.task == "arith"].iloc[0]
    hits = [
        r["prediction"].strip() == r["target"].strip()
        for r in rows
        if r["model"] == "m1" and r["task"] == "arith"
    ]
    n, k = len(hits), sum(hits)
    z = sps.norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (em.value, em.n, em.ci_method) == (k / n, n, "wilson")
    assert em.ci_low == pytest.approx(centre - half, abs=1e-12)
    assert em.ci_high == pytest.approx(centre + half, abs=1e-12)

    ce = scores[(scores.metric == "cross_entropy") & (scores.model == "m1")].iloc[0]
    per_row = [
        -sum(r["target_token_logprobs"]) / len(r["target_token_logprobs"])
        for r in rows
        if r["model"] == "m1" and r["task"] == "arith"
    ]
    mean, sem = float(np.mean(per_row)), float(sps.sem(per_row))
    low, high = sps.t.interval(0.95, len(per_row) - 1, loc=mean, scale=sem)
    assert ce.ci_method == "t" and ce.n == len(per_row) == 700
    assert ce.value == pytest.approx(mean, rel=1e-12)
    assert ce.ci_low == pytest.approx(low, rel=1e-10)
    assert ce.ci_high == pytest.approx(high, rel=1e-10)
    # the multiple-choice task has no answer log-probs: no cross-entropy row for it
    assert set(scores[scores.metric == "cross_entropy"]["task"]) == {"arith"}


def test_a_big_single_file_streams_by_row_group(tmp_path):
    samples = make_samples(seed=1)
    path = tmp_path / "samples.parquet"
    pq.write_table(to_arrow(samples), path, row_group_size=50)
    assert pq.ParquetFile(path).num_row_groups > 50
    streamed = stream_score([path], METRICS, batch_rows=31)
    assert_same_scores(streamed, score_samples(read_table(path, SAMPLES), METRICS))


def test_a_hive_dataset_from_another_tool_reads_the_same(tmp_path):
    """pyarrow's write_dataset keeps the partition columns in folder names only."""
    samples = make_samples(seed=2)
    write_hive(samples, tmp_path / "hive", max_rows_per_file=80, max_rows_per_group=80)
    first = next((tmp_path / "hive").rglob("*.parquet"))
    assert "task" not in pq.read_schema(first).names
    whole = read_table(tmp_path / "hive", SAMPLES)
    key = list(SAMPLES.key)
    a = whole.sort_values(key, ignore_index=True)
    b = samples.sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(a[b.columns], b, check_dtype=False)
    in_memory = score_samples(whole, METRICS)
    assert_same_scores(stream_score([tmp_path / "hive"], METRICS, batch_rows=23), in_memory)


def test_should_stream_folders_and_big_parquet_only(tmp_path):
    samples = make_samples()
    write_dataset(samples, tmp_path / "ds")
    pq.write_table(to_arrow(samples), tmp_path / "small.parquet")
    assert should_stream([tmp_path / "small.parquet", tmp_path / "ds"])
    assert not should_stream([tmp_path / "small.parquet"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no parquet parts"):
        read_table(tmp_path / "empty", SAMPLES)
    with pytest.raises(InputError, match="no parquet parts"):
        stream_score([tmp_path / "empty"], METRICS)


# --------------------------------------------------------------------------- errors


def _score(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "miragelab", "score", *map(str, args)]
    command += ["--metrics", "exact_match,cross_entropy", "--batch-rows", "30"]
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def _score_here(capsys, *args: str | Path) -> tuple[int, str]:  # noqa: ANN001 - pytest's capsys
    """`mirage score` in this process: its exit code and stderr."""
    argv = ["score", *map(str, args), "--metrics", "exact_match,cross_entropy"]
    argv += ["--batch-rows", "30"]
    code = 0
    try:
        main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def _both_modes(capsys, folder: Path, out: Path) -> list[str]:  # noqa: ANN001
    """The error line of the streaming and the in-memory run (each exits 2, writes nothing)."""
    lines = []
    for mode in ("--stream", "--in-memory"):
        code, stderr = _score_here(capsys, folder, "--out", out, mode)
        assert code == 2, stderr
        error = stderr.strip().splitlines()
        assert len(error) == 1, stderr
        lines.append(error[0])
        assert not out.exists()
    return lines


def _corrupt(parts: list[Path], index: int, change) -> Path:  # noqa: ANN001 - frame -> frame
    path = parts[index]
    frame = read_table(path, SAMPLES)
    write_part(change(frame), path)
    return path


def test_a_malformed_part_is_one_line_naming_the_part(tmp_path):
    samples = make_samples()
    parts = write_dataset(samples, tmp_path / "ds")
    out = tmp_path / "scores.parquet"
    parts[5].write_bytes(b"PAR1 this is not a parquet file")
    for mode in ("--stream", "--in-memory"):  # as a user runs it: a process of its own
        result = _score(tmp_path / "ds", "--out", out, mode)
        assert result.returncode == 2 and not out.exists()
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {parts[5]}: "), result.stderr
        assert "parquet" in lines[0]


def _with_bad_logprob(frame: pd.DataFrame) -> pd.DataFrame:
    values = frame["target_token_logprobs"].tolist()
    values[41] = [-0.5, 0.25]
    frame["target_token_logprobs"] = pd.array(values, dtype=frame["target_token_logprobs"].dtype)
    return frame


def _with_missing_model(frame: pd.DataFrame) -> pd.DataFrame:
    frame["model"] = frame["model"].astype(object)
    frame.loc[60, "model"] = ""
    return frame


def _with_other_size(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[33:, "params"] = 5e6
    return frame


def _with_repeat(frame: pd.DataFrame) -> pd.DataFrame:
    frame["example_id"] = frame["example_id"].astype(object)
    frame.loc[12, "example_id"] = "arith-0"  # the first part of this model has it
    return frame


def _without_logprobs(frame: pd.DataFrame) -> pd.DataFrame:
    values = frame["target_token_logprobs"].tolist()
    values[7] = None
    frame["target_token_logprobs"] = pd.array(values, dtype=frame["target_token_logprobs"].dtype)
    return frame


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            _with_bad_logprob,
            "row 42, field 'target_token_logprobs': item 1: a log-probability must be <= 0, "
            "got 0.25",
        ),
        (_with_missing_model, "row 61, field 'model': missing required value"),
        (
            _with_other_size,
            "row 34, field 'params': model 'm1' has params=5e+06 here but 1e+07 in an earlier row",
        ),
        (_with_repeat, "row 13, field 'example_id': duplicate row"),
        (_without_logprobs, "row 8, field 'target_token_logprobs': task 'arith': metric"),
    ],
)
def test_a_bad_row_is_named_by_part_and_row_in_both_modes(tmp_path, capsys, change, expected):
    samples = make_samples()
    parts = write_dataset(samples, tmp_path / "ds")
    # the third part of model m1 on the arithmetic task: rows 195-291 of that model
    target = [p for p in parts if "task=arith" in str(p) and "model=m1" in str(p)][2]
    bad = _corrupt(parts, parts.index(target), change)
    streamed, in_memory = _both_modes(capsys, tmp_path / "ds", tmp_path / "scores.parquet")
    assert streamed.startswith(f"error: {bad}, {expected}"), streamed
    assert streamed == in_memory


def test_streaming_refuses_what_reading_refuses(tmp_path):
    samples = make_samples()
    bad = samples.copy()
    bad["params"] = bad["params"].where(bad["model"] != "m2", 1e7)  # m2 now has m1's size
    write_dataset(bad, tmp_path / "ds")
    with pytest.raises(InputError) as streamed:
        stream_score([tmp_path / "ds"], METRICS, batch_rows=50)
    with pytest.raises(InputError) as whole:
        read_table(tmp_path / "ds", SAMPLES)
    assert "sizes must be distinct within a family" in str(streamed.value)
    assert str(streamed.value) == str(whole.value)
    with pytest.raises(InputError, match="batch-rows"):
        stream_score([tmp_path / "ds"], METRICS, batch_rows=0)
    empty = pa.Table.from_pylist([], schema=to_arrow(samples).schema)
    pq.write_table(empty, tmp_path / "empty.parquet")
    with pytest.raises(InputError, match="empty samples table"):
        stream_score([tmp_path / "empty.parquet"], METRICS)


def test_score_command_streams_a_dataset_folder(tmp_path, capsys):
    samples = make_samples()
    write_dataset(samples, tmp_path / "ds")
    for mode, out in (("--stream", "a.parquet"), ("--in-memory", "b.parquet")):
        code, stderr = _score_here(capsys, tmp_path / "ds", "--out", tmp_path / out, mode)
        assert code == 0, stderr
    a = pq.read_table(tmp_path / "a.parquet").to_pandas(types_mapper=pd.ArrowDtype)
    b = pq.read_table(tmp_path / "b.parquet").to_pandas(types_mapper=pd.ArrowDtype)
    assert set(a["ci_method"]) == {"wilson", "bca", "t"}
    pd.testing.assert_frame_equal(a, b, rtol=1e-12)


def test_a_folder_reads_wherever_a_table_file_does(tmp_path):
    """read_many mixes files and folders; a duplicate across them names the part and row."""
    from miragelab.sources.published import load_scores
    from miragelab.tables import read_many

    samples = make_samples()
    parts = write_dataset(samples, tmp_path / "ds")
    first = read_table(parts[0], SAMPLES)
    pq.write_table(to_arrow(first), tmp_path / "again.parquet")
    with pytest.raises(InputError) as info:
        read_many([tmp_path / "ds", tmp_path / "again.parquet"], SAMPLES)
    assert str(info.value).startswith(f"{tmp_path / 'again.parquet'}, row 1, field 'example_id'")
    with pytest.raises(InputError) as info:
        read_many([tmp_path / "again.parquet", tmp_path / "ds"], SAMPLES)
    assert str(info.value).startswith(f"{parts[0]}, row 1, field 'example_id': duplicate row")
    # a scores dataset (one part per model) loads as the scores table it was cut from
    scores = score_samples(samples, ["exact_match"])
    for model, rows in scores.groupby("model", sort=False):
        write_part(rows, tmp_path / "scores" / "task=all" / f"model={model}" / "part-00000.parquet")
    loaded = load_scores([tmp_path / "scores"])
    key = ["task", "model", "step", "metric"]
    a = loaded.sort_values(key, ignore_index=True)
    b = scores.sort_values(key, ignore_index=True)
    np.testing.assert_array_equal(a["value"].to_numpy(), b["value"].to_numpy())
    assert a["model"].tolist() == b["model"].tolist()
