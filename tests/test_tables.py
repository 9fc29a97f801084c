"""Tables: round trips through every format, and one clear error per bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from miragelab.errors import InputError
from miragelab.tables import SAMPLES, SCORES, read_samples, read_table, validate_frame, write_table


def _records() -> list[dict]:
    return [
        {
            "task": "add",
            "family": "tiny",
            "model": f"m{size}",
            "params": float(size),
            "example_id": str(i),
            "target": "12",
            "prediction": "12" if i else "13",
            "target_token_logprobs": [-0.1, -0.2],
            "choice_logprobs": [-1.0, -0.5, -3.0],
            "correct_choice": 1,
        }
        for size in (1000, 2000)
        for i in range(3)
    ]


def _write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".csv", ".parquet"])
def test_round_trip_keeps_values(tmp_path: Path, suffix: str) -> None:
    original = read_samples(_write_jsonl(tmp_path / "in.jsonl", _records()))
    out = write_table(original, tmp_path / f"out{suffix}")
    again = read_samples(out)
    assert again["params"].tolist() == [1000.0] * 3 + [2000.0] * 3
    assert again["prediction"].tolist() == ["13", "12", "12"] * 2
    assert [list(x) for x in again["choice_logprobs"]] == [[-1.0, -0.5, -3.0]] * 6
    assert again["correct_choice"].tolist() == [1] * 6
    assert list(tmp_path.glob("*.tmp")) == []


def _error(tmp_path: Path, records: list) -> InputError:
    with pytest.raises(InputError) as info:
        read_samples(_write_jsonl(tmp_path / "bad.jsonl", records))
    return info.value


def test_nan_logprob_names_line_and_field(tmp_path: Path) -> None:
    records = _records()
    path = tmp_path / "bad.jsonl"
    lines = [json.dumps(r) for r in records]
    lines[3] = lines[3].replace("[-0.1, -0.2]", "[-0.1, NaN]")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        read_samples(path)
    err = info.value
    assert (err.line, err.field) == (4, "target_token_logprobs")
    assert "bad.jsonl" in str(err) and "\n" not in str(err)


def test_duplicate_key_names_the_second_line(tmp_path: Path) -> None:
    records = _records()
    records.append(dict(records[1]))
    err = _error(tmp_path, records)
    assert err.line == 7 and err.field == "example_id"


def test_missing_required_field(tmp_path: Path) -> None:
    records = _records()
    del records[2]["params"]
    err = _error(tmp_path, records)
    assert (err.line, err.field) == (3, "params")


def test_mistyped_field(tmp_path: Path) -> None:
    records = _records()
    records[0]["params"] = "large"
    err = _error(tmp_path, records)
    assert (err.line, err.field) == (1, "params")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(InputError, match="empty"):
        read_samples(tmp_path / "empty.jsonl")


def test_same_params_for_two_models_of_a_family(tmp_path: Path) -> None:
    records = _records()
    for r in records:
        r["params"] = 1000.0
    err = _error(tmp_path, records)
    assert err.field == "params"


def test_validate_frame_numbers_rows(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "task": ["t", "t"],
            "family": ["f", "f"],
            "model": ["a", "b"],
            "params": [1.0, np.nan],
            "metric": ["acc", "acc"],
            "value": [0.1, 0.2],
        }
    )
    with pytest.raises(InputError) as info:
        validate_frame(frame, SCORES)
    assert (info.value.line, info.value.field, info.value.unit) == (2, "params", "row")


def test_scores_round_trip_csv(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "task": ["t", "t"],
            "family": ["f", "f"],
            "model": ["a", "b"],
            "params": [1e6, 1e7],
            "metric": ["acc", "acc"],
            "value": [0.25, 0.5],
            "ci_low": [0.2, 0.4],
            "ci_high": [0.3, 0.6],
        }
    )
    table = validate_frame(frame, SCORES)
    again = read_table(write_table(table, tmp_path / "s.csv"), SCORES)
    assert again["value"].tolist() == [0.25, 0.5]
    assert again["ci_high"].tolist() == [0.3, 0.6]
    assert set(SAMPLES.required) == {"task", "family", "model", "params", "example_id"}


def test_empty_prediction_is_an_answer_in_jsonl_but_missing_in_csv(tmp_path: Path) -> None:
    records = _records()
    records[0]["prediction"] = ""
    table = read_samples(_write_jsonl(tmp_path / "in.jsonl", records))
    assert table["prediction"].iloc[0] == ""
    records[0]["task"] = ""
    err = _error(tmp_path, records)
    assert (err.line, err.field) == (1, "task")
    csv = tmp_path / "in.csv"
    csv.write_text("task,family,model,params,example_id,prediction\nt,f,m,10,1,\n")
    assert pd.isna(read_samples(csv)["prediction"].iloc[0])


def test_unwritable_output_names_the_target_and_leaves_nothing(tmp_path: Path) -> None:
    table = read_samples(_write_jsonl(tmp_path / "in.jsonl", _records()))
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    target = blocker / "out.parquet"
    with pytest.raises(OSError) as info:
        write_table(table, target)
    assert info.value.filename == str(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "not-a-folder"]


def test_pandas_read_parquet_opens_a_written_samples_file(tmp_path):
    """The README promises that plain pandas opens the parquet files mirage writes."""
    frame = validate_frame(
        pd.DataFrame(
            {
                "task": ["t", "t"],
                "family": ["f", "f"],
                "model": ["m", "m"],
                "params": [1.0, 1.0],
                "example_id": ["1", "2"],
                "target_token_logprobs": [[-0.5, -0.25], [-1.0]],
                "choice_logprobs": [None, [-2.0, -0.5]],
                "correct_choice": [None, 1],
            }
        ),
        SAMPLES,
    )
    write_table(frame, tmp_path / "s.parquet")
    back = pd.read_parquet(tmp_path / "s.parquet")
    assert [list(v) for v in back["target_token_logprobs"]] == [[-0.5, -0.25], [-1.0]]
    assert str(back["correct_choice"].dtype) == "Int64"
    assert list(back["choice_logprobs"][1]) == [-2.0, -0.5]
    assert back["example_id"].tolist() == ["1", "2"]
