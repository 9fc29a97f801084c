"""The reproduction's stage runner: content caching, resume after a crash, missing parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from miragelab.report.html import render_report
from miragelab.reproduce import Stage, StageResult, default_stages, run_stages


def _counting_stage(name: str, calls: list[str], settings: dict | None = None) -> Stage:
    def run(folder: Path) -> StageResult:
        calls.append(name)
        (folder / "table.csv").write_text("a,b\n1,2\n")
        return StageResult(verdict=f"{name} ok", tables=[f"{name}/table.csv"])

    return Stage(name, name.title(), run, settings=settings or {})


def test_second_run_reuses_every_stage(tmp_path: Path) -> None:
    calls: list[str] = []
    stages = [_counting_stage("one", calls), _counting_stage("two", calls)]
    first = run_stages(stages, tmp_path)
    second = run_stages(stages, tmp_path)
    assert calls == ["one", "two"]
    assert [r["status"] for r in first] == ["done", "done"]
    assert [r["status"] for r in second] == ["cached", "cached"]
    assert second[0]["verdict"] == "one ok"


def test_changed_settings_or_missing_output_rerun_only_that_stage(tmp_path: Path) -> None:
    calls: list[str] = []
    run_stages([_counting_stage("one", calls), _counting_stage("two", calls)], tmp_path)
    (tmp_path / "two" / "table.csv").unlink()
    records = run_stages(
        [_counting_stage("one", calls, {"n": 2}), _counting_stage("two", calls)], tmp_path
    )
    assert calls == ["one", "two", "one", "two"]
    assert [r["status"] for r in records] == ["done", "done"]
    records = run_stages(
        [_counting_stage("one", calls, {"n": 2}), _counting_stage("two", calls)], tmp_path
    )
    assert [r["status"] for r in records] == ["cached", "cached"]


def test_a_crashed_run_resumes_after_its_last_finished_stage(tmp_path: Path) -> None:
    calls: list[str] = []

    def crash(folder: Path) -> StageResult:
        raise KeyboardInterrupt  # as a killed process would stop mid-stage

    with pytest.raises(KeyboardInterrupt):
        run_stages([_counting_stage("one", calls), Stage("two", "Two", crash)], tmp_path)
    assert not (tmp_path / "two" / "stage.json").exists()
    records = run_stages([_counting_stage("one", calls), _counting_stage("two", calls)], tmp_path)
    assert calls == ["one", "two"]
    assert [r["status"] for r in records] == ["cached", "done"]


def test_missing_parts_are_listed_not_faked(tmp_path: Path) -> None:
    stage = Stage("later", "A later part", None, missing_reason="not built in this version")
    (record,) = run_stages([stage], tmp_path)
    assert record["status"] == "missing" and record["figures"] == []
    page = render_report("t", [record], tmp_path, {"python": "3.11"})
    assert "not built in this version" in page


def test_theory_and_resolution_stages_for_real(tmp_path: Path) -> None:
    stages = [s for s in default_stages(quick=True) if s.name in ("theory", "resolution")]
    records = {r["name"]: r for r in run_stages(stages, tmp_path)}
    theory = records["theory"]
    assert (tmp_path / "theory" / "theory.png").exists()
    verdicts = (tmp_path / "theory" / "theory_verdicts.csv").read_text().splitlines()
    assert verdicts[0].startswith("length,") and len(verdicts) == 7
    # exact match of 1,000 examples on a 12-model ladder: a mirage by L = 10
    assert theory["headline"]["L = 10"].endswith("mirage")
    assert "2,995" in records["resolution"]["headline"]["examples needed for accuracy 1e-3 (95%)"]
    saved = json.loads((tmp_path / "theory" / "stage.json").read_text())
    assert saved["result"]["verdict"] == theory["verdict"]


def test_out_must_be_a_folder(tmp_path: Path) -> None:
    from miragelab.errors import InputError

    target = tmp_path / "a-file"
    target.write_text("")
    with pytest.raises(InputError, match="must be a folder"):
        run_stages([_counting_stage("one", [])], target)


@pytest.mark.slow  # about a minute and a half: the OLMo, Pythia and ObsScaling ladders
def test_the_7b_forecast_stage_sets_its_errors_beside_the_published_ones(tmp_path: Path) -> None:
    from miragelab.reproduce import OLMO_TASKS, _scale_forecast_run
    from miragelab.sources.shipped import shipped_data_dir

    result = _scale_forecast_run(tmp_path, quick=True, seed=0)
    table = pd.read_csv(tmp_path / "olmo_7b_vs_published.csv")
    assert list(table["task"]) == list(OLMO_TASKS)
    # the published means (Bhagia et al. 2024, Table 4): 3.8 with task loss, 2.0 with C4 loss
    assert table["published_task_loss"].mean() == pytest.approx(3.8, abs=0.05)
    assert table["published_c4_loss"].mean() == pytest.approx(2.0, abs=0.05)
    # observed: the 7B export's own final row, read here without the runs source
    export = pd.read_csv(
        shipped_data_dir() / "olmo-ladder" / "runs" / "peteish7_eval_anneal.csv.gz"
    )
    hellaswag = export["eval/downstream/hellaswag_val_rc_5shot_len_norm"].iloc[-1]
    observed = table.set_index("task")["observed"]
    assert observed["hellaswag_val_rc_5shot"] == pytest.approx(hellaswag)
    parts = [f"eval/downstream/mmlu_{p}_test_rc_5shot_len_norm"
             for p in ("stem", "humanities", "social_sciences", "other")]  # fmt: skip
    assert observed["mmlu"] == pytest.approx(export[parts].iloc[-1].mean())
    errors = 100 * (table["predicted"] - table["observed"]).abs()
    assert np.allclose(errors, table["abs_error_points"])
    assert (table["ci_low"] <= table["predicted"]).all()
    assert (table["predicted"] <= table["ci_high"]).all()
    other = pd.read_csv(tmp_path / "other_ladders.csv")
    assert {"pythia-v1.1", "pythia-v1.1-deduped", "Pythia", "OPT"} <= set(other["family"])
    assert "7B-4T: mean |error| vs published" in result.headline
