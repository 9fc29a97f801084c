"""Units of work: safe part paths, resume after a failure, and unit-order collection."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from miragelab.datasets import read_dataset
from miragelab.errors import InputError
from miragelab.runners.units import (
    RUN_FILE,
    Unit,
    collect,
    part_path,
    run_units,
    segment,
    shards,
    work_dir_for,
)
from miragelab.tables import SAMPLES


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("EleutherAI/pythia-70m", "EleutherAI%2Fpythia-70m"),
        ("../../x", "..%2F..%2Fx"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("a b=c", "a%20b%3Dc"),
    ],
)
def test_a_name_is_one_safe_segment(tmp_path, name, expected):
    assert segment(name) == expected
    path = part_path(tmp_path, Unit("t", name, 3)).resolve()
    assert path.parent.parent.parent == tmp_path.resolve()
    assert path.name == "part-00003.parquet"


def test_shards_cover_the_range_once():
    assert shards(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert shards(4, 4) == [(0, 4)]
    with pytest.raises(InputError, match="shard-size"):
        shards(3, 0)


def _rows(unit: Unit) -> pd.DataFrame:
    lo, hi = unit.spec["lo"], unit.spec["hi"]
    return pd.DataFrame(
        {
            "task": unit.task,
            "family": "f",
            "model": unit.model,
            "params": float(unit.spec["params"]),
            "example_id": [str(i) for i in range(lo, hi)],
            "target": "1",
            "prediction": ["1" if i % 2 else "0" for i in range(lo, hi)],
        }
    )


def _units() -> list[Unit]:
    out = []
    for model, params in (("m/small", 1e6), ("big", 1e7)):
        for shard, (lo, hi) in enumerate(shards(5, 2)):
            out.append(Unit("t", model, shard, {"lo": lo, "hi": hi, "params": params}))
    return out


class _FailOn:
    """A job that fails on one unit, as a killed worker would leave it unfinished."""

    def __init__(self, bad: str | None) -> None:
        self.bad, self.calls = bad, []

    def __call__(self, unit: Unit) -> pd.DataFrame:
        self.calls.append(unit.key)
        if unit.key == self.bad:
            raise RuntimeError("worker died")
        return _rows(unit)


def test_a_rerun_runs_only_unfinished_units_and_collects_in_unit_order(tmp_path):
    units = _units()
    settings = {"n": 5}
    first = _FailOn(units[3].key)
    with pytest.raises(RuntimeError):
        run_units(units, first, tmp_path / "d", settings)
    assert len(first.calls) == 4  # units 0-2 written, unit 3 failed
    second = _FailOn(None)
    seen = []
    summary = run_units(units, second, tmp_path / "d", settings, on_done=seen.append)
    assert second.calls == [u.key for u in units[3:]]
    assert (summary.skipped, summary.ran) == (3, 3) and len(seen) == 6
    table = collect(units, tmp_path / "d", SAMPLES)
    # 2 models x 5 examples, model then example order, no duplicate
    assert table["model"].tolist() == ["m/small"] * 5 + ["big"] * 5
    assert table["example_id"].tolist() == [str(i) for i in range(5)] * 2
    assert len(read_dataset(tmp_path / "d", SAMPLES)) == 10
    assert not list((tmp_path / "d").rglob("*.tmp"))


def test_a_folder_of_another_run_is_refused(tmp_path):
    units = _units()
    run_units(units, _FailOn(None), tmp_path / "d", {"n": 5})
    with pytest.raises(InputError) as info:
        run_units(units, _FailOn(None), tmp_path / "d", {"n": 6})
    assert RUN_FILE in str(info.value) and "different run" in str(info.value)
    assert json.loads((tmp_path / "d" / RUN_FILE).read_text())["settings"] == {"n": 5}


def test_duplicate_units_are_refused(tmp_path):
    u = _units()[0]
    with pytest.raises(InputError, match="same part"):
        run_units([u, u], _FailOn(None), tmp_path / "d", {})


def test_work_dir_of_a_file_output_is_a_hidden_sibling(tmp_path):
    assert work_dir_for(tmp_path / "s.parquet") == (tmp_path / ".s.parquet.parts", True)
    assert work_dir_for(tmp_path / "ds") == (tmp_path / "ds", False)


def test_ladder_eval_resumes_and_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    from miragelab.ladder import evaluate
    from miragelab.ladder.presets import get_preset
    from miragelab.ladder.train import train_ladder

    torch.set_num_threads(1)
    train_ladder(tmp_path / "l", "add2", get_preset("tiny"), seed=0)
    ref = evaluate.evaluate_ladder(tmp_path / "l", n_test=30)
    units, _ = evaluate.ladder_units(tmp_path / "l", 30, shard_size=evaluate.SHARD_SIZE)
    # stop after the first unit, as a kill would
    real = evaluate.evaluate_unit
    calls = []

    def dying(unit):
        calls.append(unit)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(unit)

    monkeypatch.setattr(evaluate, "evaluate_unit", dying)
    with pytest.raises(KeyboardInterrupt):
        evaluate.evaluate_ladder(tmp_path / "l", n_test=30, parts_dir=tmp_path / "p")
    monkeypatch.setattr(evaluate, "evaluate_unit", real)
    assert len(list((tmp_path / "p").rglob("part-*.parquet"))) == 1
    resumed = evaluate.evaluate_ladder(tmp_path / "l", n_test=30, parts_dir=tmp_path / "p")
    assert len(units) == 2
    pd.testing.assert_frame_equal(
        resumed.drop(columns="target_token_logprobs"), ref.drop(columns="target_token_logprobs")
    )
    np.testing.assert_array_equal(
        np.concatenate(resumed["target_token_logprobs"].tolist()),
        np.concatenate(ref["target_token_logprobs"].tolist()),
    )
