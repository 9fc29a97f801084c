"""Ladder training: manifest accounting, exact resume after SIGKILL, evaluation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from miragelab.errors import InputError
from miragelab.ladder.model import param_count
from miragelab.ladder.presets import Preset, SizeSpec
from miragelab.ladder.tasks import get_task
from miragelab.ladder.train import batch_at, lr_at, model_config, train_ladder

TINY = Preset(
    name="test",
    sizes=(SizeSpec(1, 2, 8, 3e-3), SizeSpec(1, 2, 16, 3e-3), SizeSpec(2, 2, 16, 3e-3)),
    steps=12,
    batch_size=16,
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _train_cmd(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "miragelab",
        "ladder",
        "train",
        "--task",
        "add2",
        "--preset",
        "tiny",
        "--out",
        str(out),
        "--threads",
        "1",
        "--seed",
        "4",
        *extra,
    ]


def _weights(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    manifest = json.loads((folder / "ladder.json").read_text())
    return {
        m["model"]: load_file(folder / m["path"] / "model.safetensors") for m in manifest["models"]
    }


def test_manifest_accounts_params_tokens_and_flops(tmp_path):
    torch.set_num_threads(1)
    manifest = train_ladder(tmp_path / "l", "add3", TINY, seed=1)
    task = get_task("add3")
    assert [m["model"] for m in manifest["models"]] == [
        "tinygpt-add3-L1-d8",
        "tinygpt-add3-L1-d16",
        "tinygpt-add3-L2-d16",
    ]
    for m, size in zip(manifest["models"], TINY.sizes, strict=True):
        cfg = model_config(TINY, size)
        assert m["params"] == param_count(cfg)
        assert m["tokens"] == 12 * 16 * (task.seq_len - 1)  # equal tokens for every size
        assert m["flops"] == 6 * m["params"] * m["tokens"]
        assert (tmp_path / "l" / m["path"] / "config.json").exists()
    csv = (tmp_path / "l" / "ladder.csv").read_text().splitlines()
    assert csv[0].startswith("family,model,path,params,tokens,flops") and len(csv) == 4
    assert not (tmp_path / "l" / "state.pt").exists()
    with pytest.raises(InputError, match="--resume"):
        train_ladder(tmp_path / "l", "add3", TINY, seed=1)
    with pytest.raises(InputError, match="seed"):
        train_ladder(tmp_path / "l", "add3", TINY, seed=2, resume=True)
    # resuming a finished ladder trains nothing and changes nothing
    before = _weights(tmp_path / "l")
    again = train_ladder(tmp_path / "l", "add3", TINY, seed=1, resume=True)
    assert again["models"] == manifest["models"]
    after = _weights(tmp_path / "l")
    assert all(torch.equal(before[k][n], after[k][n]) for k in before for n in before[k])


def test_batches_are_a_function_of_seed_and_step():
    task = get_task("add4")
    x1, y1 = batch_at(task, 7, 8, seed=0)
    x2, y2 = batch_at(task, 7, 8, seed=0)
    x3, _ = batch_at(task, 8, 8, seed=0)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and not torch.equal(x1, x3)
    # the loss sees answer tokens and the end token only
    assert (y1[:, : task.prompt_len - 1] == -1).all()
    assert ((y1 >= 0).sum(dim=1) >= 5).all()


def test_lr_schedule_warms_up_then_decays():
    preset = Preset("lr", TINY.sizes, steps=200, batch_size=1)
    lrs = [lr_at(s, preset, 1.0) for s in range(preset.steps)]
    assert lrs[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])  # 5% warmup
    assert lrs[0] < 1.0 and max(lrs) == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(0.1, abs=0.05) and lrs[-1] >= 0.1


def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(_train_cmd(ref), check=True, env=_env(), capture_output=True, timeout=120)
    proc = subprocess.Popen(
        _train_cmd(killed, "--checkpoint-steps", "3"),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = killed / "state.pt"
    deadline = time.monotonic() + 90
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert state.exists(), "training never wrote a checkpoint"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    manifest = json.loads((killed / "ladder.json").read_text())
    assert len(manifest["models"]) < 2, "the run finished before it was killed"
    subprocess.run(
        _train_cmd(killed, "--resume", "--checkpoint-steps", "3"),
        check=True,
        env=_env(),
        capture_output=True,
        timeout=120,
    )
    a, b = _weights(ref), _weights(killed)
    assert list(a) == list(b) and len(a) == 2
    for name in a:
        for key in a[name]:
            assert torch.equal(a[name][key], b[name][key]), (name, key)
    ra = json.loads((ref / "ladder.json").read_text())
    rb = json.loads((killed / "ladder.json").read_text())
    assert ra == rb  # final losses included
    assert not (killed / "state.pt").exists()


class _Stop(Exception):
    pass


class _Recorder:
    def __init__(self, stop_at: tuple[str, int] | None = None) -> None:
        self.starts: list[tuple[str, int]] = []
        self.stop_at = stop_at

    def start(self, name: str, total: int, done: int) -> None:
        self.starts.append((name, done))

    def advance(self, name: str, step: int, loss: float, tokens_per_s: float) -> None:
        if (name, step) == self.stop_at:
            raise _Stop

    def finish(self, name: str) -> None:
        pass


def test_resume_continues_from_the_checkpoint_not_from_scratch(tmp_path):
    torch.set_num_threads(1)
    ref = train_ladder(tmp_path / "ref", "add2", TINY, seed=2)
    second = "tinygpt-add2-L1-d16"
    with pytest.raises(_Stop):
        train_ladder(
            tmp_path / "cut",
            "add2",
            TINY,
            seed=2,
            checkpoint_steps=5,
            reporter=_Recorder(stop_at=(second, 8)),
        )
    recorder = _Recorder()
    resumed = train_ladder(
        tmp_path / "cut", "add2", TINY, seed=2, resume=True, checkpoint_steps=5, reporter=recorder
    )
    # the first model was not retrained; the second restarted at its step-5 checkpoint
    assert recorder.starts == [(second, 5), ("tinygpt-add2-L2-d16", 0)]
    assert resumed["models"] == ref["models"]
    a, b = _weights(tmp_path / "ref"), _weights(tmp_path / "cut")
    assert all(torch.equal(a[m][k], b[m][k]) for m in a for k in a[m])


def test_eval_writes_a_valid_samples_table(tmp_path):
    torch.set_num_threads(1)
    from miragelab.ladder.evaluate import evaluate_ladder

    train_ladder(tmp_path / "l", "mul2", TINY, seed=0)
    samples = evaluate_ladder(tmp_path / "l", n_test=50)
    assert len(samples) == 150 and samples["model"].nunique() == 3
    assert set(samples["family"]) == {"tinygpt-mul2"}
    row = samples.iloc[0]
    a, b = (int(v) for v in row["example_id"].split("*"))
    assert row["target"] == str(a * b) and row["prompt"] == f"{a}*{b}="
    lp = np.asarray(row["target_token_logprobs"])
    assert lp.size == len(row["target"]) and (lp <= 0).all()
    # the command writes the same table
    from typer.testing import CliRunner

    from miragelab.cli import app
    from miragelab.tables import read_table

    out = tmp_path / "s.parquet"
    result = CliRunner().invoke(
        app, ["ladder", "eval", str(tmp_path / "l"), "--n-test", "50", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    back = read_table(out, "samples")
    assert back["prediction"].tolist() == samples["prediction"].tolist()
    np.testing.assert_allclose(
        np.concatenate(back["target_token_logprobs"].tolist()),
        np.concatenate(samples["target_token_logprobs"].tolist()),
    )


@pytest.mark.parametrize(
    ("device", "message"),
    [("bogus", "not a torch device: 'bogus'"), ("cuda", "CUDA is not available on this machine")],
)
def test_a_device_this_machine_cannot_use_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], device: str, message: str
) -> None:
    from miragelab.cli import main

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    ladder = tmp_path / "ladder"
    train_ladder(ladder, "add2", TINY)
    for args in (
        ["ladder", "train", "--preset", "tiny", "--task", "add2", "--out", tmp_path / "new"],
        ["ladder", "eval", ladder, "--n-test", "5", "--out", tmp_path / "s.parquet"],
    ):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in [*args, "--device", device]])
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.strip() == f"error: field 'device': {message}"
    assert not (tmp_path / "new").exists() and not (tmp_path / "s.parquet").exists()


def test_the_addition_mix_ladder_is_evaluated_part_by_part(tmp_path):
    """``addmix``: one ladder; each part's held-out L-digit sums, by every model, and the
    predictions command reads it as prediction 3 (one task per answer length)."""
    torch.set_num_threads(1)
    from typer.testing import CliRunner

    from miragelab.cli import app
    from miragelab.ladder.evaluate import evaluate_ladder
    from miragelab.tables import write_table

    task = get_task("addmix")
    x, y = batch_at(task, 3, 64, seed=0)
    assert (y[:, : task.prompt_len - 1] == -1).all() and ((y >= 0).sum(dim=1) >= 2).all()
    train_ladder(tmp_path / "l", "addmix", TINY, seed=0)
    samples = evaluate_ladder(tmp_path / "l", n_test=40)
    counts = samples.groupby("task")["model"].value_counts().unstack()
    assert list(counts.index) == [f"addmix-len{n}" for n in range(1, 6)]
    assert (counts.nunique(axis=1) == 1).all() and (counts.iloc[1:] == 40).all().all()
    for row in samples.sample(30, random_state=0).itertuples():
        a, b = (int(v) for v in row.example_id.split("+"))
        n = int(row.task.removeprefix("addmix-len"))
        assert row.prompt == f"{a}+{b}=" and row.target == str(a + b) and len(row.target) == n
        assert len(row.target_token_logprobs) == n
    path = write_table(samples, tmp_path / "s.parquet")
    result = CliRunner().invoke(app, ["ladder", "predictions", str(path), "--out",
                                      str(tmp_path / "p")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p" / "pred3_rank.csv").exists()


def test_the_addition_mix_ladder_is_deterministic_per_seed(tmp_path):
    """Same seed, same thread count: the same weights, bit for bit; another seed differs."""
    torch.set_num_threads(1)
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        train_ladder(tmp_path / name, "addmix", TINY, seed=seed)
    a, b, c = (_weights(tmp_path / name) for name in "abc")
    assert a.keys() == b.keys() == c.keys()
    for model in a:
        assert all(torch.equal(a[model][k], b[model][k]) for k in a[model])
        assert not all(torch.equal(a[model][k], c[model][k]) for k in a[model])
