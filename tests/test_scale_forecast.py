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


def test_the_loss_fit_of_noisy_runs_is_a_minimum_of_its_huber_loss():
    # independent of the optimiser: no point of a small neighbourhood (in the bounds) has a
    # lower Huber loss on log residuals than the fit, on runs scattered by 1% noise
    rng = np.random.default_rng(3)
    n, d = np.meshgrid(np.geomspace(2e8, 1.3e9, 4), np.geomspace(4e9, 3e10, 4))
    n, d = n.ravel(), d.ravel()
    y = LAW.predict(n, d) * np.exp(rng.normal(0, 0.01, n.size))
    fit = fit_loss(n, d, y, delta=1e-3)

    def huber(v):
        pred = v[0] + np.exp(v[1] - v[2] * np.log(n)) + np.exp(v[3] - v[4] * np.log(d))
        r = np.abs(np.log(pred) - np.log(y))
        return np.where(r <= 1e-3, 0.5 * r * r, 1e-3 * (r - 5e-4)).sum()

    best = huber(fit.vector)
    steps = rng.normal(0, 1, (2000, 5)) * np.array([1e-3, 1e-3, 1e-4, 1e-3, 1e-4])
    near = fit.vector + steps
    near = near[(near[:, 0] >= 0) & (near[:, 0] < y.min()) & (near[:, 2] >= 0) & (near[:, 4] >= 0)]
    assert min(huber(v) for v in near) >= best * (1 - 1e-9)


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


def _scores(rows):
    """A scores table from (model, params, tokens, metric, value) rows of one family."""
    frame = pd.DataFrame(rows, columns=["model", "params", "tokens_trained", "metric", "value"])
    return frame.assign(task="quiz", family="toy")


def _one_budget_ladder(sizes, tokens, length=None):
    """Runs that all end at ``tokens``: ``ppl = exp(LAW at tokens)`` and, where ``length``
    is given, ``acc = exp(-length * CE)`` exactly (else the sigmoid)."""
    rows = []
    for n in sizes:
        ce = float(LAW.predict(n, tokens))
        acc = np.exp(-length * ce) if length else float(CURVE.predict(ce))
        rows += [(f"m{n:g}", n, tokens, "ppl", np.exp(ce)), (f"m{n:g}", n, tokens, "acc", acc)]
    return _scores(rows)


def test_runs_of_one_token_count_fit_the_law_in_n_and_speak_only_of_that_count():
    sizes = np.geomspace(1e7, 1e9, 4)
    fit = fit_loss(sizes, np.full(4, 2e10), LAW.predict(sizes, 2e10))
    assert fit.tokens == pytest.approx(2e10)
    # E + B / D**beta at that D is the constant; the N term is the law's own
    assert fit.predict(7e9, 2e10) == pytest.approx(float(LAW.predict(7e9, 2e10)), rel=1e-3)
    assert fit.covers(2e10) and not fit.covers(4e10)


def test_the_paper_route_chains_the_loss_law_into_p_to_the_l(tmp_path):
    from miragelab.scale_forecast import forecast_ladder

    table = _one_budget_ladder(np.geomspace(1e7, 1e9, 6), 2e10, length=3.0)
    targets = [Target("big", 7e9, 2e10), Target("longer", 7e9, 8e10)]
    for length in (3.0, "auto"):
        result = forecast_ladder(
            table, targets, harsh="acc", soft="ppl", length=length, settings=FAST
        )
        rows = result.table.set_index(["method", "target_name"])
        truth = np.exp(-3.0 * float(LAW.predict(7e9, 2e10)))
        assert rows.loc[("two_step_p**L", "big"), "predicted"] == pytest.approx(truth, rel=2e-3)
        # the ladder never changed D: a target trained longer gets no number, and says why
        longer = rows.loc[("two_step_p**L", "longer")]
        assert np.isnan(longer["predicted"]) and "not identified" in longer["note"]
    with pytest.raises(InputError, match="soft"):
        forecast_ladder(table, targets, harsh="acc", soft=None, length=3.0, settings=FAST)


def test_largest_models_are_the_targets_and_the_ladder_is_what_remains():
    from miragelab.scale_forecast import largest_models

    rows = []
    for n in (1e7, 2e7, 4e7, 8e7, 1.6e8):
        for d in (1e9, 2e9):  # two checkpoints: the target is the last
            rows.append((f"m{n:g}", n, d, "acc", 0.3))
    table = _scores(rows).assign(compute_flops=lambda f: 6 * f["params"] * f["tokens_trained"])
    assert largest_models(table, 2) == [
        Target("m8e+07", 8e7, 2e9, 6 * 8e7 * 2e9),
        Target("m1.6e+08", 1.6e8, 2e9, 6 * 1.6e8 * 2e9),
    ]
    with pytest.raises(InputError, match="holdout"):
        largest_models(table, 3)  # two sizes would be left to fit on


def test_without_a_continuous_metric_the_one_step_route_uses_six_n_d():
    from miragelab.scale_forecast import forecast_ladder

    sizes = np.geomspace(1e8, 1e10, 6)
    # accuracy a sigmoid of log C with C = 6 N D: the route recovers it at a larger model
    acc = lambda c: 0.25 + 0.7 / (1 + np.exp(-1.2 * (np.log(c) - np.log(1e21))))  # noqa: E731
    rows = [(f"m{n:g}", n, 20 * n, "acc", acc(6 * n * 20 * n)) for n in sizes]
    table = _scores(rows)
    target = Target("big", 3e10, 6e11)
    result = forecast_ladder(table, [target], harsh="acc", soft=None, settings=FAST)
    (row,) = result.table.itertuples()
    assert row.method == "one_step_compute" and row.target_flops == pytest.approx(6 * 3e10 * 6e11)
    assert row.predicted == pytest.approx(acc(6 * 3e10 * 6e11), abs=0.01)
    assert any("6 N D" in note for note in result.notes)


def test_a_ladder_is_one_family():
    from miragelab.scale_forecast import forecast_ladder

    table = _one_budget_ladder(np.geomspace(1e7, 1e9, 4), 2e10)
    both = pd.concat([table, table.assign(family="other")])
    with pytest.raises(InputError, match="2 families"):
        forecast_ladder(both, [Target("t", 7e9, 2e10)], harsh="acc", soft="ppl", settings=FAST)
    one = forecast_ladder(
        both, [Target("t", 7e9, 2e10)], harsh="acc", soft="ppl", family="other", settings=FAST
    )
    assert set(one.table["family"]) == {"other"}


def test_forecast_holds_out_the_largest_sizes_from_the_command_line(tmp_path, capsys):
    table = _one_budget_ladder(np.geomspace(1e7, 1e9, 5), 2e10)
    path = tmp_path / "scores.csv"
    table.assign(higher_is_better=table["metric"] == "acc").to_csv(path, index=False)
    out = tmp_path / "fc"
    code = mirage_code("forecast", path, "--harsh", "acc", "--soft", "ppl", "--holdout", 1,
                       "--length", "auto", "--n-boot", 20, "--out", out)  # fmt: skip
    assert code == 0, capsys.readouterr().err
    forecast = pd.read_csv(out / "forecast.csv")
    assert set(forecast["target_name"]) == {"m1e+09"}
    assert {"two_step", "two_step_p**L", "one_step_compute"} <= set(forecast["method"])
    # the held-out model's own last value is its observation
    observed = table[(table["model"] == "m1e+09") & (table["metric"] == "acc")]["value"]
    assert forecast["observed"].iloc[0] == pytest.approx(float(observed.iloc[0]))
    both = ("--holdout", 1, "--target", "x:params=1e10,tokens=2e10")
    code = mirage_code("forecast", path, "--harsh", "acc", *both, "--out", tmp_path / "no")
    assert code == 2 and not (tmp_path / "no").exists()


def test_a_loss_that_does_not_fall_and_runs_of_one_checkpoint_say_so():
    from miragelab.scale_forecast import forecast_ladder

    sizes = np.geomspace(1e7, 1e9, 5)
    table = _one_budget_ladder(sizes, 2e10)  # one checkpoint per run
    result = forecast_ladder(table, [Target("t", 7e9, 2e10)], harsh="acc", soft="ppl",
                             settings=FAST)  # fmt: skip
    assert result.table["note"].str.contains("checkpoint noise").all()
    # the loss rises with size while accuracy rises too: no two-step number
    ppl = table["metric"] == "ppl"
    rising = table.copy()
    rising.loc[ppl, "value"] = np.exp(1.0 + 0.1 * np.log(rising.loc[ppl, "params"]))
    result = forecast_ladder(rising, [Target("t", 7e9, 2e10)], harsh="acc", soft="ppl",
                             settings=FAST)  # fmt: skip
    row = result.table.set_index("method").loc["two_step"]
    assert np.isnan(row["predicted"]) and "not identified" in row["note"]


def test_forecast_settings_out_of_range_are_refused_before_anything_is_written(tmp_path):
    table = _one_budget_ladder(np.geomspace(1e7, 1e9, 5), 2e10)
    path = tmp_path / "scores.csv"
    table.assign(higher_is_better=table["metric"] == "acc").to_csv(path, index=False)
    for option in (("--skip", 1.0), ("--smooth", 0), ("--last", 0), ("--confidence", 1.5)):
        out = tmp_path / f"fc{option[0]}"
        code = mirage_code("forecast", path, "--harsh", "acc", "--holdout", 1, *option,
                           "--out", out)  # fmt: skip
        assert code == 2 and not out.exists()


def test_a_chance_level_for_a_task_not_forecast_is_refused():
    from miragelab.scale_forecast import forecast_ladder

    sizes = np.geomspace(1e8, 1e10, 4)
    rows = [(f"m{n:g}", n, 20 * n, "acc", 0.3 + 0.1 * i) for i, n in enumerate(sizes)]
    with pytest.raises(InputError, match="'nosuch' is not one of the tasks"):
        forecast_ladder(
            _scores(rows), [Target("big", 3e10, 6e11)], harsh="acc", soft=None,
            chance={"nosuch": 0.25}, settings=FAST,
        )  # fmt: skip
