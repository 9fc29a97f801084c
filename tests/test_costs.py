"""The cost model against a hand-worked example, and the local throughput measurement."""

from __future__ import annotations

import pytest
import torch

from miragelab.costs import (
    Task,
    achieved_flops,
    gpus_per_model,
    ladder_hours,
    measure_ladder,
    plan_cost,
)
from miragelab.errors import InputError


def test_gpu_hours_of_a_ladder_worked_by_hand():
    """Three models, two tasks, 500 tokens a sample, an 989 TFLOP/s GPU at 40%.

    FLOPs = 2 * (1e9 + 7e9 + 70e9) * 500 * (10,000 + 50,000)
          = 2 * 78e9 * 500 * 6e4 = 4.68e18
    seconds = 4.68e18 / (989e12 * 0.4) = 4.68e18 / 3.956e14 = 11,830.13
    hours = 3.28615; the 70B model alone: 4.2e18 / 3.956e14 / 3600 = 2.94911 h.
    The 70B model in bf16 is 140 GB, times 1.3 = 182 GB: three 80 GB GPUs.
    """
    models = {"1b": 1e9, "7b": 7e9, "70b": 70e9}
    tasks = {"short": Task(10_000, 500), "long": Task(50_000, 500)}
    plan = plan_cost(models, tasks, gpu_flops=989e12, utilization=0.4)
    assert len(plan) == 6
    assert plan["flops"].sum() == pytest.approx(4.68e18, rel=1e-12)
    assert plan["gpu_hours"].sum() == pytest.approx(3.28615, abs=1e-5)
    big = plan[plan["model"] == "70b"]
    assert big["gpu_hours"].sum() == pytest.approx(2.94911, abs=1e-5)
    assert set(big["gpus"]) == {3} and set(plan[plan["model"] == "7b"]["gpus"]) == {1}
    assert big["wall_hours"].sum() == pytest.approx(2.94911 / 3, abs=1e-5)
    hours = ladder_hours(
        [1e9, 7e9, 70e9], 30_000, 500, n_tasks=2, gpu_flops=989e12, utilization=0.4
    )
    assert hours == pytest.approx(3.28615, abs=1e-5)


def test_achieved_flops_and_gpus_per_model():
    # 1e6 params, 30 tokens, 1000 samples/s: 2 * 1e6 * 30 * 1000 = 6e10 FLOP/s
    assert achieved_flops(1e6, 30, 1000) == pytest.approx(6e10)
    assert gpus_per_model(30e9, gpu_memory=80e9) == 1  # 60 GB * 1.3 = 78 GB
    assert gpus_per_model(31e9, gpu_memory=80e9) == 2


def test_bad_plans_are_refused():
    with pytest.raises(InputError, match="utilization"):
        plan_cost({"m": 1e9}, {"t": Task(1, 1)}, utilization=0)
    with pytest.raises(InputError, match="params"):
        plan_cost({"m": -1.0}, {"t": Task(1, 1)})


def test_measure_ladder_times_every_model(tmp_path):
    from miragelab.ladder.train import train_ladder

    torch.set_num_threads(1)
    train_ladder(tmp_path / "l", "add2", "tiny", seed=0)
    table = measure_ladder(tmp_path / "l", n_test=200, threads=1)
    assert list(table["samples"]) == [200, 200]
    # add2: prompt "ab+cd=" is 6 tokens, answers up to 3 digits plus <eos>, 10 positions
    assert list(table["tokens_per_sample"]) == [6 + 4 + 9] * 2
    assert (table["samples_per_s"] > 0).all()
    expected = 2 * table["params"] * table["tokens_per_sample"] * table["samples_per_s"]
    assert table["achieved_flops"].tolist() == pytest.approx(expected.tolist())


def _cost(args: list[str], capsys) -> tuple[int, str, str]:
    from miragelab.cli import main

    try:
        main(["cost", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cost_command_worked_by_hand(tmp_path, capsys):
    """1b and 7b models, 1,000 samples of 100 tokens and 200 of 500, an H100 SXM at 50%.

    tokens = 1,000 * 100 + 200 * 500 = 200,000 per model
    FLOPs  = 2 * 1e9 * 2e5 = 4e14 and 2 * 7e9 * 2e5 = 2.8e15; total 3.2e15
    hours  = 3.2e15 / (989e12 * 0.5) / 3600 = 6.4712 s / 3600 = 0.0017976
    """
    ladder = tmp_path / "ladder.csv"
    ladder.write_text("family,model,params\nf,big,7e9\n")  # no checkpoint paths: not needed
    out = tmp_path / "plan.csv"
    code, text, err = _cost(
        [
            "--model", "small=1b", "--ladder", str(ladder),
            "--task", "a=1000:100", "--task", "b=200:500",
            "--utilization", "0.5", "--out", str(out),
        ],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "total: 0.001798 GPU-hours (3.2e+15 FLOPs)" in text
    import pandas as pd

    plan = pd.read_csv(out)
    assert len(plan) == 4 and plan["flops"].sum() == pytest.approx(3.2e15)
    assert plan.groupby("model")["flops"].sum().to_dict() == pytest.approx(
        {"small": 4e14, "big": 2.8e15}
    )


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--model", "m", "--task", "a=1:1"], "model"),
        (["--model", "m=lots", "--task", "a=1:1"], "model"),
        (["--task", "a=1:1"], "model"),
        (["--model", "m=1b", "--task", "a=10"], "task"),
        (["--model", "m=1b", "--task", "a=-1:5"], "task"),
        (["--model", "m=1b", "--task", "a=1:1", "--task", "a=2:2"], "task"),
        (["--model", "m=1b", "--task", "a=1:1", "--gpu", "TPU"], "gpu"),
        (["--model", "m=1b", "--task", "a=1:1", "--utilization", "2"], "utilization"),
    ],
)
def test_cost_command_bad_values_are_one_line(args, field, capsys):
    code, _, err = _cost(args, capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"error: field '{field}': ")
