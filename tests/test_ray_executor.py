"""The Ray executor: same tables as the local executor, retries of killed workers, no Ray needed.

A local Ray instance with 2 CPUs is started once for the module and shut down
after it; its workers import this module (for the test jobs) from ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from miragelab.cli import app
from miragelab.datasets import read_dataset
from miragelab.errors import InputError
from miragelab.runners.units import Unit, collect, get_executor, run_units, segment, shards
from miragelab.tables import SAMPLES, read_table, without_attrs

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(TESTS), env.get("PYTHONPATH", "")])
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def ray_cluster():
    """A 2-CPU local Ray instance whose workers can import this test module."""
    ray = pytest.importorskip("ray")
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "RAY_USAGE_STATS_ENABLED")}
    os.environ.update({k: _env()[k] for k in saved})
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def tiny_ladder(tmp_path_factory) -> Path:
    from miragelab.ladder.train import train_ladder

    folder = tmp_path_factory.mktemp("ladder") / "l"
    torch.set_num_threads(1)
    train_ladder(folder, "add3", "tiny", seed=0)
    return folder


def _invoke(*args: str) -> None:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------- test jobs


def rows_of(unit: Unit) -> pd.DataFrame:
    """Rows of a unit, a pure function of its spec (independent of where it runs)."""
    lo, hi = unit.spec["lo"], unit.spec["hi"]
    ids = np.arange(lo, hi)
    return pd.DataFrame(
        {
            "task": unit.task,
            "family": "f",
            "model": unit.model,
            "params": float(unit.spec["params"]),
            "example_id": [f"e{i}" for i in ids],
            "target": [str(i % 7) for i in ids],
            "prediction": [str(i % 5) for i in ids],
        }
    )


def pid_job(unit: Unit) -> pd.DataFrame:
    """Record the worker's pid; the unit ``hold`` waits until the test lets it go."""
    marks = Path(unit.spec["marks"])
    name = f"{segment(unit.model)}-{unit.shard}"
    (marks / f"{name}-{os.getpid()}.pid").write_text(str(os.getpid()))
    if name == unit.spec["hold"]:
        deadline = time.monotonic() + 120
        while not (marks / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    return rows_of(unit)


def failing_job(unit: Unit) -> pd.DataFrame:
    if unit.shard == 1:
        raise ValueError("no answer for this shard")
    return rows_of(unit)


def bad_input_job(unit: Unit) -> pd.DataFrame:
    raise InputError("prompt too long for the model", path="task.jsonl", line=3, field="prompt")


def _units(n: int, size: int, **spec) -> list[Unit]:
    out = []
    for model, params in (("m/small", 1e6), ("big", 1e7)):
        for shard, (lo, hi) in enumerate(shards(n, size)):
            out.append(Unit("t", model, shard, {"lo": lo, "hi": hi, "params": params, **spec}))
    return out


# --------------------------------------------------------------------------- tests


def test_a_killed_worker_is_retried_and_every_row_is_written_once(tmp_path, ray_cluster):
    marks = tmp_path / "marks"
    marks.mkdir()
    units = _units(40, 10, marks=str(marks), hold="big-2")  # 2 models x 4 shards
    done: list[Unit] = []
    errors: list[BaseException] = []
    executor = get_executor("ray", max_retries=2)

    def drive() -> None:
        try:
            run_units(units, pid_job, tmp_path / "d", {"n": 40}, executor, on_done=done.append)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    driver = threading.Thread(target=drive)
    driver.start()
    deadline = time.monotonic() + 120
    held: list[Path] = []
    while not held and time.monotonic() < deadline:
        held = sorted(marks.glob("big-2-*.pid"))
        time.sleep(0.05)
    assert held, "the held unit never started"
    victim = int(held[0].read_text())
    os.kill(victim, signal.SIGKILL)
    (marks / "release").write_text("")
    driver.join(timeout=180)
    assert not driver.is_alive() and not errors, errors
    # the held unit ran again in another worker process, after the kill
    pids = {int(p.read_text()) for p in marks.glob("big-2-*.pid")}
    assert victim in pids and len(pids) >= 2
    assert sorted(u.key for u in done) == sorted(u.key for u in units)
    table = read_dataset(tmp_path / "d", SAMPLES)
    keys = list(zip(table["task"], table["model"], table["example_id"], strict=True))
    expected = [("t", m, f"e{i}") for m in ("m/small", "big") for i in range(40)]
    assert len(keys) == len(set(keys)) == 80 and set(keys) == set(expected)
    assert not list((tmp_path / "d").rglob("*.tmp"))


def test_a_failing_unit_is_named_and_finished_parts_are_kept(tmp_path, ray_cluster):
    units = _units(30, 10)
    executor = get_executor("ray", max_retries=0)
    with pytest.raises(RuntimeError, match=r"unit t / \S+ / shard 1 failed: ValueError"):
        run_units(units, failing_job, tmp_path / "d", {"n": 30}, executor)
    with pytest.raises(InputError) as info:
        run_units(units, bad_input_job, tmp_path / "e", {"n": 30}, executor)
    assert str(info.value) == "task.jsonl, line 3, field 'prompt': prompt too long for the model"
    # a rerun with a working job resumes: only the missing parts are computed
    summary = run_units(units, rows_of, tmp_path / "d", {"n": 30}, executor)
    assert summary.ran >= 2 and summary.total == 6
    table = collect(units, tmp_path / "d", SAMPLES)
    assert table["example_id"].tolist() == [f"e{i}" for i in range(30)] * 2


def test_ladder_eval_on_ray_equals_local(tmp_path, tiny_ladder, ray_cluster):
    common = ["ladder", "eval", str(tiny_ladder), "--n-test", "4500", "--threads", "1"]
    _invoke(*common, "--out", str(tmp_path / "local.parquet"))
    _invoke(*common, "--out", str(tmp_path / "ray"), "--executor", "ray")
    # the Ray run wrote a partitioned dataset: 2 models x 2 shards
    assert len(sorted((tmp_path / "ray").rglob("part-*.parquet"))) == 4
    key = ["model", "example_id"]
    local = read_table(tmp_path / "local.parquet", SAMPLES).sort_values(key, ignore_index=True)
    on_ray = read_table(tmp_path / "ray", SAMPLES).sort_values(key, ignore_index=True)
    assert len(on_ray) == len(local) == 2 * 4500
    lp = "target_token_logprobs"
    pd.testing.assert_frame_equal(
        without_attrs(on_ray.drop(columns=lp)), without_attrs(local.drop(columns=lp))
    )
    # log-probs bit for bit
    np.testing.assert_array_equal(
        np.concatenate(on_ray[lp].map(np.asarray).tolist()),
        np.concatenate(local[lp].map(np.asarray).tolist()),
    )


def test_ladder_train_on_ray_equals_local(tmp_path, ray_cluster):
    common = ["ladder", "train", "--task", "add2", "--preset", "tiny", "--threads", "1"]
    _invoke(*common, "--out", str(tmp_path / "local"))
    _invoke(*common, "--out", str(tmp_path / "ray"), "--executor", "ray")
    for name in ("local", "ray"):
        assert not list((tmp_path / name).glob("state*.pt"))
    a = json.loads((tmp_path / "local" / "ladder.json").read_text())
    b = json.loads((tmp_path / "ray" / "ladder.json").read_text())
    assert a == b and len(a["models"]) == 2  # final losses included, in ladder order
    for m in a["models"]:
        wa = load_file(tmp_path / "local" / m["path"] / "model.safetensors")
        wb = load_file(tmp_path / "ray" / m["path"] / "model.safetensors")
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # resuming the finished ladder on Ray trains nothing
    before = (tmp_path / "ray" / "ladder.json").read_text()
    _invoke(*common, "--out", str(tmp_path / "ray"), "--executor", "ray", "--resume")
    assert (tmp_path / "ray" / "ladder.json").read_text() == before


def test_a_model_finished_but_not_recorded_is_recorded_on_resume(tmp_path, ray_cluster):
    """The driver dies after a worker wrote a model's record: resume records it, trains nothing."""
    from miragelab.ladder.train import RECORDS, train_ladder

    out = tmp_path / "l"
    train_ladder(out, "add2", "tiny", seed=1, executor=get_executor("ray"), threads=1)
    manifest = json.loads((out / "ladder.json").read_text())
    full = dict(manifest)
    manifest["models"] = manifest["models"][:1]  # as if killed before recording the second
    (out / "ladder.json").write_text(json.dumps(manifest))
    weights = out / full["models"][1]["path"] / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    seen: list[Unit] = []
    again = train_ladder(
        out, "add2", "tiny", seed=1, resume=True, executor=get_executor("ray"), on_done=seen.append
    )
    assert again == full and [u.model for u in seen] == [full["models"][1]["model"]]
    assert weights.stat().st_mtime_ns == stamp  # not retrained
    assert (out / RECORDS / "_run.json").exists()


def test_mirage_eval_hf_on_ray_equals_local(tmp_path, tiny_ladder, ray_cluster):
    manifest = json.loads((tiny_ladder / "ladder.json").read_text())
    lines = ["family,model,path,params"]
    for m in manifest["models"]:
        lines.append(f"{m['family']},{m['model']},{tiny_ladder / m['path']},{m['params']}")
    csv = tmp_path / "ladder.csv"
    csv.write_text("\n".join(lines) + "\n")
    common = ["eval", "--model", "hf", "--ladder", str(csv), "--task", "add3", "--limit", "60"]
    common += ["--shard-size", "25", "--threads", "1"]
    _invoke(*common, "--out", str(tmp_path / "local.parquet"))
    _invoke(*common, "--out", str(tmp_path / "ray.parquet"), "--executor", "ray")
    local = pq.read_table(tmp_path / "local.parquet")
    on_ray = pq.read_table(tmp_path / "ray.parquet")
    assert local.num_rows == 120 and on_ray.equals(local)


def test_ray_options_need_the_ray_executor(tmp_path, tiny_ladder, ray_cluster):
    result = CliRunner().invoke(
        app,
        ["ladder", "eval", str(tiny_ladder), "--out", str(tmp_path / "s.parquet")]
        + ["--num-gpus-per-unit", "1"],
    )
    assert isinstance(result.exception, InputError)
    assert "need --executor ray" in str(result.exception)
    with pytest.raises(InputError, match="num-gpus-per-unit"):
        get_executor("ray", num_gpus=-1)
    # the 2-CPU instance can never place a unit asking for a GPU, or for 3 CPUs
    with pytest.raises(InputError) as info:
        get_executor("ray", num_cpus=3, num_gpus=1)._check_room(owned=True)
    assert str(info.value) == (
        "field 'executor': cannot place a unit: a unit needs 3 CPU(s), the Ray instance has 2; "
        "a unit needs 1 GPU(s), the Ray instance has 0"
    )
    get_executor("ray", num_cpus=2)._check_room(owned=True)


def test_without_ray_the_ray_executor_is_one_line_and_the_rest_works(tmp_path, tiny_ladder):
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['ray'] = None\n")
    env = _env(PYTHONPATH=os.pathsep.join([str(hide), str(SRC)]))
    base = [sys.executable, "-m", "miragelab", "ladder", "eval", str(tiny_ladder)]
    base += ["--n-test", "20"]
    out = tmp_path / "s.parquet"
    failed = subprocess.run(
        [*base, "--out", str(out), "--executor", "ray"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines() == [
        "error: field 'executor': the ray executor needs Ray: pip install 'miragelab[ray]'"
    ]
    assert not out.exists()
    worked = subprocess.run(
        [*base, "--out", str(out)], env=env, capture_output=True, text=True, timeout=120
    )
    assert worked.returncode == 0, worked.stderr
    assert pq.read_table(out).num_rows == 40
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import miragelab.runners.ray_executor, sys; print('ray' in sys.modules)",
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.stdout.strip() == "False"  # the module imports Ray only when built


def test_the_request_rate_limit_holds_for_all_ray_workers_together(tmp_path, ray_cluster):
    """``--rps`` is one budget for the run: two units sending at once share it."""
    from test_eval_hf import build_llama, write_jsonl, write_ladder
    from test_eval_openai import Gate

    from miragelab.runners.hf import HFModel
    from miragelab.runners.serve import create_app, running

    gate = Gate(create_app(HFModel(build_llama(tmp_path / "llama")), "llama"))
    ladder = write_ladder(tmp_path / "api.csv", [("toy", "llama", None, 1e5)])
    rows = [
        {"id": str(i), "prompt": f"{i}. The capital of France is", "target": " Paris"}
        for i in range(20)
    ]  # distinct prompts: the response cache would answer a repeated request
    task = write_jsonl(tmp_path / "gen.jsonl", rows)  # 2 requests each: 2 units of 20
    rps = 10.0
    with running(gate) as url:
        _invoke(
            "eval", "--model", "openai", "--base-url", url, "--ladder", str(ladder),
            "--task", str(task), "--out", str(tmp_path / "s.parquet"), "--max-tokens", "3",
            "--rps", str(rps), "--concurrency", "4", "--shard-size", "10", "--executor", "ray",
        )  # fmt: skip
    times = np.sort([t for t, _ in gate.log])
    assert len(times) == 40
    # one shared budget: any 20 consecutive arrivals span about 19 intervals, where two
    # workers each holding the whole rate would span about half (9.5). The bound leaves
    # room for a burst of queued arrivals on a busy machine (up to 0.5 s here).
    spans = times[19:] - times[:-19]
    assert spans.min() >= (19 - 5) / rps, spans
    assert times[-1] - times[0] >= 39 / rps * 0.95
