"""Training-log runs and the (N, D) forecast, on ladders drawn from a known law."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest
from conftest import mirage_code

from miragelab.errors import InputError
from miragelab.scale_forecast import (
    AccuracyFit,
    LossFit,
    Settings,
    Target,
    fit_accuracy,
    fit_loss,
    parse_target,
)
from miragelab.sources.runs import load_runs

LAW = LossFit(E=1.5, a=np.log(400.0), alpha=0.34, b=np.log(1200.0), beta=0.28)
CURVE = AccuracyFit(floor=0.25, top=1.0, k=1.5, L0=4.2)  # top 1: the ideal point holds
FAST = Settings(n_boot=20)
SIZES = (2e7, 5e7, 1.2e8, 3e8)
BUDGETS = (10, 20, 50)  # tokens per parameter at the end of each run


def test_the_loss_law_is_recovered_from_noiseless_runs():
    n, d = np.meshgrid(np.geomspace(1e7, 1e9, 5), np.geomspace(1e9, 1e11, 4))
    fit = fit_loss(n.ravel(), d.ravel(), LAW.predict(n.ravel(), d.ravel()))
    far = LAW.predict(7e9, 4e12)  # 7x the params and 40x the tokens of the runs
    assert fit.predict(7e9, 4e12) == pytest.approx(far, rel=1e-3)


def test_the_sigmoid_is_recovered_and_its_floor_can_be_fixed():
    loss = np.linspace(2.0, 4.5, 60)
    fit = fit_accuracy(loss, CURVE.predict(loss), chance=0.25)
    assert fit.floor == pytest.approx(0.25, abs=1e-6)
    assert fit.predict(1.8) == pytest.approx(float(CURVE.predict(1.8)), abs=2e-3)


def _write_ladder(folder, sizes=SIZES, budgets=BUDGETS, acc_of=None, noise=0.003, seed=0):
    """One export per run (every 10% of the run) and the manifest; values from LAW/CURVE."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = [["run", "params", "flops_per_token"]]
    for n in sizes:
        for k in budgets:
            name = f"{n / 1e6:g}M-{k}x"
            manifest.append([name, f"{n:g}", f"{6 * n:g}"])
            rows = [["_step", "throughput/total_tokens", "eval/downstream/quiz_len_norm",
                     "eval/downstream_bpb/quiz_bpb", "eval/c4/CrossEntropyLoss"]]  # fmt: skip
            for i in range(1, 11):
                d = k * n * i / 10
                loss = float(LAW.predict(n, d))
                acc = float(CURVE.predict(loss)) if acc_of is None else acc_of(loss)
                acc = float(np.clip(acc + rng.normal(0, noise), 0, 1))
                rows.append([i * 100, f"{d:.0f}", f"{acc:.5f}", f"{loss:.5f}", f"{loss + 0.5:.5f}"])
            with open(folder / f"{name}.csv", "w", newline="") as fh:
                csv.writer(fh).writerows(rows)
    with open(folder / "manifest.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(manifest)
    return folder / "manifest.csv"


@pytest.mark.slow  # about 10 s each: kept out of the default run's budget
def test_the_forecast_of_a_larger_model_holds_the_law_and_the_csv_says_so(tmp_path):
    manifest = _write_ladder(tmp_path / "runs")
    scores = tmp_path / "scores.parquet"
    assert mirage_code("ingest", "runs", tmp_path / "runs", "--manifest", manifest,
                       "--family", "toy", "--out", scores) == 0  # fmt: skip
    n, d = 1.2e9, 1.2e9 * 40
    truth = float(CURVE.predict(LAW.predict(n, d)))
    out = tmp_path / "fc"
    code = mirage_code("forecast", scores, "--harsh", "acc_norm", "--soft", "bpb",
                       "--target", f"big:params={n:g},tokens={d:g}", "--n-boot", 20,
                       "--out", out)  # fmt: skip
    assert code == 0
    table = pd.read_csv(out / "forecast.csv")
    columns = "task target_name target_params target_tokens method default predicted"
    assert set(f"{columns} ci_low ci_high observed abs_error".split()) <= set(table.columns)
    assert table["default"].sum() == 1  # one method recommended, for the one task
    two = table[table["method"] == "two_step"].iloc[0]
    assert two["predicted"] == pytest.approx(truth, abs=0.02)
    assert two["ci_low"] <= truth <= two["ci_high"]
    assert np.isnan(two["observed"])  # no model of the scores is the target
    assert list((out / "figures").glob("*.png"))


def test_a_target_in_the_scores_is_its_observation_and_not_fitted(tmp_path):
    manifest = _write_ladder(tmp_path / "runs", sizes=(*SIZES, 1.2e9), budgets=(10, 20, 50))
    table = load_runs([tmp_path / "runs"], manifest, "toy")
    from miragelab.scale_forecast import forecast_ladder

    target = Target("1200M-50x", 1.2e9, 1.2e9 * 50)
    result = forecast_ladder(table, [target], harsh="acc_norm", soft="bpb", settings=FAST)
    row = result.table[result.table["method"] == "two_step"].iloc[0]
    observed = table[(table["model"] == "1200M-50x") & (table["metric"] == "acc_norm")]
    assert row["observed"] == pytest.approx(observed.sort_values("step")["value"].iloc[-1])
    assert "1200M-50x" not in set(result.ladders[("quiz", "two_step")].anchors["model"])
    assert result.notes == ["target 1200M-50x: observed as 1200M-50x"]


@pytest.mark.slow  # about 10 s each: kept out of the default run's budget
def test_degenerate_ladders_say_so(tmp_path):
    from miragelab.scale_forecast import forecast_ladder

    manifest = _write_ladder(tmp_path / "two", sizes=SIZES[:2])
    two = load_runs([tmp_path / "two"], manifest, "toy")
    with pytest.raises(InputError, match="2 size"):
        forecast_ladder(two, [Target("t", 1e9, 1e11)], harsh="acc_norm", soft="bpb", settings=FAST)
    # accuracy at chance all along: no number, and the note says why
    manifest = _write_ladder(tmp_path / "flat", acc_of=lambda loss: 0.25, noise=0.01)
    flat = load_runs([tmp_path / "flat"], manifest, "toy")
    result = forecast_ladder(
        flat, [Target("t", 1e9, 1e11)], harsh="acc_norm", soft="bpb", settings=FAST
    )
    row = result.table[result.table["method"] == "two_step"].iloc[0]
    assert np.isnan(row["predicted"]) and "not identified" in row["note"]


@pytest.mark.slow  # about 10 s each: kept out of the default run's budget
def test_a_target_inside_the_ladder_is_marked(tmp_path):
    from miragelab.scale_forecast import forecast_ladder

    manifest = _write_ladder(tmp_path / "runs")
    table = load_runs([tmp_path / "runs"], manifest, "toy")
    result = forecast_ladder(
        table, [Target("mid", 1e8, 1e8 * 30)], harsh="acc_norm", soft="bpb", settings=FAST
    )
    assert result.table["note"].str.contains("inside the ladder").all()


def test_target_text_is_read_and_refused_in_one_line():
    assert parse_target("7B:params=6.9b,tokens=4T") == Target("7B", 6.9e9, 4e12)
    for bad in ("7B", "7B:params=6.9b", "7B:params=x,tokens=1", "7B:params=1,tokens=-1"):
        with pytest.raises(InputError):
            parse_target(bad)


def test_bad_runs_name_file_line_and_column(tmp_path, capsys):
    manifest = _write_ladder(tmp_path / "runs", sizes=SIZES[:3], budgets=(10,))
    run = tmp_path / "runs" / "20M-10x.csv"
    lines = run.read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[2], "oops", 1)
    run.write_text("\n".join(lines) + "\n")
    out = tmp_path / "s.parquet"
    code = mirage_code("ingest", "runs", tmp_path / "runs", "--manifest", manifest,
                       "--family", "toy", "--out", out)  # fmt: skip
    assert code == 2 and not out.exists()
    message = capsys.readouterr().err.strip()
    assert "20M-10x.csv" in message and "line 4" in message
    assert "eval/downstream/quiz_len_norm" in message and "'oops'" in message


def test_two_runs_ending_at_one_size_need_replicate_of(tmp_path):
    manifest = _write_ladder(tmp_path / "runs", sizes=SIZES[:3], budgets=(10,))
    copy = tmp_path / "runs" / "20M-10x-seed2.csv"
    copy.write_text((tmp_path / "runs" / "20M-10x.csv").read_text())
    text = manifest.read_text()
    manifest.write_text(text + "20M-10x-seed2,2e+07,1.2e+08\n")
    with pytest.raises(InputError, match="replicate_of"):
        load_runs([tmp_path / "runs"], manifest, "toy")
    rows = list(csv.reader(text.splitlines()))
    rows[0].append("replicate_of")
    rows = [r + [""] if i else r for i, r in enumerate(rows)]
    rows.append(["20M-10x-seed2", "2e+07", "1.2e+08", "20M-10x"])
    with open(manifest, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    table = load_runs([tmp_path / "runs"], manifest, "toy")
    seed2 = table[table["model"] == "20M-10x-seed2"]
    assert set(seed2["replicate_of"]) == {"20M-10x"}
