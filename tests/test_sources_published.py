"""Loaders of published results into the scores table.

Every expected number is read here from the raw file (``json``, ``csv``) or
written by hand in a fixture, never computed by the loaders under test.
Real data comes from the package's copy (``shipped_data_dir()``).
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import re
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from miragelab.errors import InputError
from miragelab.sources import (
    KNOWN_FAMILIES,
    load_bigbench_scores,
    load_bigbench_task_list,
    load_lm_eval_results,
    load_scores,
    load_shipped,
    load_wide_csv,
    parse_size,
    read_size_sidecar,
    shipped_data_dir,
    size_from_name,
)
from miragelab.sources.sizes import family_from_name
from miragelab.sources.wide_csv import split_score_column
from miragelab.tables import SCORES, validate_frame

FIXTURES = Path(__file__).parent / "fixtures" / "published"
Z = 1.959963984540054


def data_dir() -> Path:
    return shipped_data_dir()


def pythia_file(size: str = "1.4b", step: int = 143000, shots: int = 0, deduped=False) -> Path:
    folder = f"pythia-{size}{'-deduped' if deduped else ''}"
    sub = "five-shot" if shots else "zero-shot"
    stem = f"{size}{'-deduped' if deduped else ''}{'-5shot' if shots else ''}_step{step}.json"
    return data_dir() / "pythia-evals" / folder / sub / stem


def readme_pythia_counts() -> dict[str, int]:
    """Pythia sizes as the data README states them ("70m 70,426,624 · 160m ...")."""
    text = (data_dir() / "README.md").read_text(encoding="utf-8")
    start = text.index("Pythia model sizes by name")
    block = text[start : text.index("total", start)]
    return {
        s: int(n.replace(",", "")) for s, n in re.findall(r"(\d+(?:\.\d+)?[mb]) ([\d,]+)", block)
    }


def row(frame: pd.DataFrame, **where) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for column, value in where.items():
        mask &= frame[column] == value
    hits = frame[mask]
    assert len(hits) == 1, (where, len(hits))
    return hits.iloc[0]


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.4b", 1_400_000_000),
        ("70m", 70_000_000),
        ("160M", 160_000_000),
        ("6.9B", 6_900_000_000),
        ("1T", 1_000_000_000_000),
        ("350k", 350_000),
        ("1414647808", 1_414_647_808),
        (1414647808, 1_414_647_808),
        ("70,426,624", 70_426_624),
        ("1b1", 1_100_000_000),
    ],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "big", "1.4x", "b", "1.4bb"])
def test_parse_size_rejects(text):
    with pytest.raises(InputError, match="not a model size"):
        parse_size(text)


def test_known_pythia_sizes_are_the_readme_counts():
    counts = readme_pythia_counts()
    assert len(counts) == 8 and counts["70m"] == 70_426_624
    assert KNOWN_FAMILIES["pythia"].params == counts
    for size, n in counts.items():
        assert size_from_name(f"EleutherAI/pythia-{size}-deduped") == n
        assert size_from_name(f"EleutherAI/pythia-v1.1-{size}") == n


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("llama-2-7b-hf", 7e9),
        ("meta-llama/Llama-2-70b-hf", 70e9),
        ("Qwen1.5-0.5B", 0.5e9),
        ("Qwen/Qwen1.5-1.8B", 1.8e9),
        ("gpt2-xl", 1_557_611_200),
        ("openai-community/gpt2", 124_439_808),
        ("bigscience/bloom-7b1", 7.1e9),
        ("stabilityai/stablelm-2-1_6b", 1.6e9),
        ("01-ai/Yi-6B-200K", 6e9),
        ("facebook/opt-350m", 350e6),
        ("mistralai/Mixtral-8x7B-v0.1", None),
        ("microsoft/phi-2", None),
        ("bigscience/bloom", None),
    ],
)
def test_size_from_name(name, expected):
    assert size_from_name(name) == expected


def test_family_from_name():
    assert family_from_name("EleutherAI/pythia-v1.1-1.4b-deduped") == "pythia-v1.1-deduped"
    assert family_from_name("meta-llama/Llama-2-7b-hf") == "Llama-2-hf"
    assert family_from_name("gpt2-medium") == "gpt2"


def test_size_sidecar_reads_numbers_and_size_strings():
    assert read_size_sidecar(FIXTURES / "sizes.csv") == {
        "acme-lab/mystery-model": 350e6,
        "other-model": 1_234_567,
    }


@pytest.mark.parametrize("name", ["sizes_bad.csv", "sizes_nonpositive.csv", "sizes_missing.csv"])
def test_size_sidecar_rejects_bad_rows(name):
    with pytest.raises(InputError) as info:
        read_size_sidecar(FIXTURES / name)
    text = str(info.value)
    assert name in text and "line 3" in text and "field 'params'" in text


def test_size_sidecar_needs_columns(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("name,size\na,1b\n")
    with pytest.raises(InputError, match="field 'model'"):
        read_size_sidecar(path)


# --------------------------------------------------------------------------- lm-eval 0.3


def test_real_pythia_file_matches_raw_json():
    path = pythia_file("1.4b", 143000)
    raw = json.loads(path.read_text())
    frame = load_lm_eval_results(path)
    validate_frame(frame, SCORES)

    expected = 0
    for task, metrics in raw["results"].items():
        for key, value in metrics.items():
            if key.endswith("_stderr"):
                continue
            expected += 1
            got = row(frame, task=task, metric=key)
            assert got["value"] == value
            err = metrics[f"{key}_stderr"]
            assert got["stderr"] == err
            assert got["ci_low"] == pytest.approx(value - Z * err, rel=1e-12)
            assert got["ci_high"] == pytest.approx(value + Z * err, rel=1e-12)
    assert len(frame) == expected

    lam = row(frame, task="lambada_openai", metric="acc")
    assert lam["value"] == raw["results"]["lambada_openai"]["acc"]
    assert lam["params"] == readme_pythia_counts()["1.4b"] == 1_414_647_808
    assert lam["step"] == 143000
    assert lam["tokens_trained"] == 143000 * 2_097_152
    pretrained = raw["config"]["model_args"].split("pretrained=")[1].split(",")[0]
    assert lam["model"] == pretrained
    assert lam["family"] == "pythia-v1.1"
    assert bool(lam["higher_is_better"]) is True
    assert bool(row(frame, task="lambada_openai", metric="ppl")["higher_is_better"]) is False
    assert lam["ci_method"] == "normal (published stderr)"


def test_real_pythia_five_shot_and_step_zero():
    five = load_lm_eval_results(pythia_file("160m", 3000, shots=5, deduped=True))
    raw = json.loads(pythia_file("160m", 3000, shots=5, deduped=True).read_text())
    assert raw["config"]["num_fewshot"] == 5
    got = row(five, task="lambada_openai@5shot", metric="acc")
    assert got["value"] == raw["results"]["lambada_openai"]["acc"]
    assert got["family"] == "pythia-v1.1-deduped"
    assert got["params"] == readme_pythia_counts()["160m"]

    zero = load_lm_eval_results(pythia_file("70m", 0))
    assert (zero["step"] == 0).all()
    assert zero["tokens_trained"].isna().all()  # nothing seen yet; the table needs > 0


# --------------------------------------------------------------------------- lm-eval 0.4


def test_lm_eval_04_format():
    path = FIXTURES / "lm_eval_v04_results.json"
    frame = load_lm_eval_results(path)
    assert set(zip(frame["task"], frame["metric"], strict=True)) == {
        ("lambada_openai", "acc"),
        ("lambada_openai", "perplexity"),
        ("gsm8k@5shot", "exact_match[strict-match]"),
        ("gsm8k@5shot", "exact_match[flexible-extract]"),
    }
    acc = row(frame, task="lambada_openai", metric="acc")
    assert acc["value"] == 0.3312
    assert acc["stderr"] == 0.0066
    assert acc["ci_low"] == pytest.approx(0.3312 - Z * 0.0066)
    assert acc["n"] == 5153
    assert acc["params"] == 123456789
    assert acc["model"] == "acme-lab/tinylm-base"
    assert pd.isna(acc["step"])
    ppl = row(frame, task="lambada_openai", metric="perplexity")
    assert bool(ppl["higher_is_better"]) is False and ppl["value"] == 24.83
    strict = row(frame, task="gsm8k@5shot", metric="exact_match[strict-match]")
    assert strict["n"] == 1000 and strict["stderr"] == 0.0034
    flexible = row(frame, task="gsm8k@5shot", metric="exact_match[flexible-extract]")
    assert flexible["value"] == 0.0265
    assert pd.isna(flexible["stderr"]) and pd.isna(flexible["ci_low"])  # "N/A" stderr


def test_params_argument_overrides_file():
    frame = load_lm_eval_results(FIXTURES / "lm_eval_v04_results.json", params="1b")
    assert (frame["params"] == 1e9).all()


# --------------------------------------------------------------------------- errors


def test_missing_params_names_file_and_field():
    path = FIXTURES / "lm_eval_v03_unknown_size.json"
    with pytest.raises(InputError) as info:
        load_lm_eval_results(path)
    text = str(info.value)
    assert "lm_eval_v03_unknown_size.json" in text and "field 'params'" in text
    assert "\n" not in text


def test_sidecar_supplies_missing_params():
    path = FIXTURES / "lm_eval_v03_unknown_size.json"
    frame = load_lm_eval_results(path, sizes=FIXTURES / "sizes.csv")
    assert (frame["params"] == 350e6).all()
    assert (frame["step"] == 2000).all()
    assert row(frame, task="piqa", metric="acc_norm")["value"] == 0.6
    via_load_scores = load_scores([path], sizes=FIXTURES / "sizes.csv")
    assert len(via_load_scores) == len(frame)


def test_malformed_json_names_file():
    with pytest.raises(InputError) as info:
        load_lm_eval_results(FIXTURES / "malformed_results.json")
    assert "malformed_results.json" in str(info.value)
    assert "malformed JSON" in str(info.value)
    with pytest.raises(InputError, match="malformed_results.json"):
        load_scores([FIXTURES / "malformed_results.json"])


def test_duplicate_models_across_files(tmp_path):
    src = pythia_file("410m", 143000)
    a = tmp_path / "a" / "410m_step143000.json"
    b = tmp_path / "b" / "copy_step143000.json"
    for target in (a, b):
        target.parent.mkdir()
        shutil.copy(src, target)
    with pytest.raises(InputError) as info:
        load_scores([tmp_path])
    text = str(info.value)
    assert "duplicate" in text and str(a) in text and str(b) in text


def test_obsscaling_sub10b_and_full_file_overlap():
    folder = data_dir() / "obsscaling"
    with pytest.raises(InputError, match="duplicate"):
        load_scores(
            [folder / "base_llm_benchmark_eval.csv", folder / "base_llm_benchmark_eval_sub_10b.csv"]
        )


def test_same_checkpoint_two_sizes_across_files(tmp_path):
    raw = json.loads((FIXTURES / "lm_eval_v04_results.json").read_text())
    first = tmp_path / "one.json"
    first.write_text(json.dumps(raw))
    raw["results"] = {"piqa": {"acc,none": 0.6}}
    raw["config"]["model_num_parameters"] = 999
    second = tmp_path / "two.json"
    second.write_text(json.dumps(raw))
    with pytest.raises(InputError) as info:
        load_scores([first, second])
    assert "field 'params'" in str(info.value)


def test_unrecognised_file_named_explicitly(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(InputError, match="not a recognised scores file"):
        load_scores([path])


# --------------------------------------------------------------------------- ObsScaling


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_obsscaling_emergent_values_equal_raw_cells():
    folder = data_dir() / "obsscaling"
    emergent = folder / "base_llm_emergent_capability_eval.csv"
    frame = load_wide_csv(emergent)
    cells = {r["Model"]: r for r in _csv_rows(emergent)}
    meta = {r["Model"]: r for r in _csv_rows(folder / "base_llm_benchmark_eval.csv")}

    name = "EleutherAI/pythia-12b-deduped"
    em = row(frame, model=name, task="ipa_transliterate@2shot", metric="exact_match")
    bleu = row(frame, model=name, task="ipa_transliterate@2shot", metric="bleu")
    assert em["value"] == float(cells[name]["ipa_transliterate_2_exact_match"])
    assert bleu["value"] == float(cells[name]["ipa_transliterate_2_bleu"])
    arith = row(frame, model=name, task="arithmetic_3ds@2shot", metric="acc")
    assert arith["value"] == float(cells[name]["arithmetic_3ds_2_acc"])
    assert em["family"] == meta[name]["Model Family"] == "Pythia"
    assert em["params"] == pytest.approx(float(meta[name]["Model Size (B)"]) * 1e9, rel=1e-15)
    assert em["compute_flops"] == pytest.approx(float(meta[name]["FLOPs (1E21)"]) * 1e21)
    assert em["tokens_trained"] == pytest.approx(
        float(meta[name]["Pretraining Data Size (T)"]) * 1e12
    )

    # an empty cell skips that metric only
    column = "ipa_transliterate_2_bleu"
    filled = sum(1 for r in cells.values() if r[column].strip())
    assert filled < len(cells)
    got = frame[(frame["task"] == "ipa_transliterate@2shot") & (frame["metric"] == "bleu")]
    assert len(got) == filled
    assert len(frame) == sum(
        1 for r in cells.values() for c, v in r.items() if c != "Model" and v.strip()
    )


def test_split_score_column():
    assert split_score_column("ipa_transliterate_2_exact_match") == (
        "ipa_transliterate@2shot",
        "exact_match",
    )
    assert split_score_column("arithmetic_2dm_2_acc") == ("arithmetic_2dm@2shot", "acc")
    assert split_score_column("toy_sum_0_acc") == ("toy_sum", "acc")
    assert split_score_column("MMLU") == ("MMLU", "score")


def test_wide_csv_units_missing_cells_and_dropped_rows(caplog):
    frame = load_wide_csv(FIXTURES / "wide_scores.csv")
    assert set(frame["model"]) == {"acme/toy-10m", "acme/toy-30m", "acme/toy-100m"}
    assert any("dropped 1 model" in note for note in frame.attrs["notes"])
    assert "acme/toy-mystery" in caplog.text
    small = row(frame, model="acme/toy-10m", task="toy_copy@3shot", metric="bleu")
    assert small["value"] == 12.5 and small["params"] == 10e6 and small["compute_flops"] == 2.5e18
    assert small["family"] == "toy"
    # empty toy_sum cell for the 30m model: only that metric is missing
    assert len(frame[frame["model"] == "acme/toy-30m"]) == 3
    assert row(frame, model="acme/toy-100m", task="MMLU", metric="score")["value"] == 0.27
    assert "notes" not in frame.columns  # the text column is not a score


def test_wide_csv_refuses_unitless_billions():
    with pytest.raises(InputError) as info:
        load_wide_csv(FIXTURES / "wide_params_no_unit.csv")
    assert "field 'params'" in str(info.value) and "unit" in str(info.value)


def test_wide_csv_size_clash(tmp_path):
    path = tmp_path / "clash.csv"
    path.write_text("model,family,params (B),a_0_acc\nx-7b,f,7,0.1\ny-7b,f,7,0.2\nz-1b,f,1,0.0\n")
    frame = load_wide_csv(path)
    assert row(frame, model="y-7b")["family"] == "f (y-7b)"
    assert row(frame, model="x-7b")["family"] == "f"
    with pytest.raises(InputError, match="line 3"):
        load_wide_csv(path, on_size_clash="error")


# --------------------------------------------------------------------------- BIG-bench


def test_bigbench_fixture():
    path = FIXTURES / "bigbench" / "scores_BIG-G_T_0_2m.json"
    raw = json.loads(path.read_text())
    frame = load_bigbench_scores(path)
    assert len(frame) == sum(len(s["score_dict"]) for s in raw["scores"]) == 13
    harms = row(frame, task="hhh_alignment:Harms", metric="multiple_choice_grade")
    assert harms["value"] == 0.4827586206896552
    assert harms["family"] == "BIG-G T=0" and harms["model"] == "2m"
    assert harms["params"] == 2281472
    one_shot = row(frame, task="hhh_alignment:Harms@1shot", metric="multiple_choice_grade")
    assert one_shot["value"] == 0.5172413793103449
    agg = row(frame, task="hhh_alignment", metric="normalized_aggregate_score")
    assert agg["value"] == -0.8766803
    ece = row(frame, task="hhh_alignment:Harms", metric="expected_calibration_error")
    assert bool(ece["higher_is_better"]) is False
    non_emb = load_bigbench_scores(path, params_field="non_embedding_params")
    assert (non_emb["params"] == 1572864).all()


def test_bigbench_missing_params():
    with pytest.raises(InputError) as info:
        load_bigbench_scores(FIXTURES / "bigbench_no_params.json")
    text = str(info.value)
    assert "bigbench_no_params.json" in text and "total_params" in text


def test_bigbench_task_list_is_metadata():
    tasks = load_bigbench_task_list()
    with gzip.open(data_dir() / "bigbench" / "tasks.csv.gz", "rt", encoding="utf-8") as handle:
        raw = list(csv.DictReader(handle))
    assert len(tasks) == len(raw) == 1083
    harms = tasks[(tasks["task"] == "hhh_alignment") & (tasks["subtask"] == "Harms")].iloc[0]
    raw_harms = next(r for r in raw if r["task"] == "hhh_alignment" and r["subtask"] == "Harms")
    assert harms["n_examples"] == int(raw_harms["n_examples"])
    assert harms["preferred_score"] == raw_harms["preferred_score"]


# --------------------------------------------------------------------------- dispatch


def test_load_scores_walks_a_folder_and_mixes_kinds(tmp_path):
    long_path = tmp_path / "long.csv"
    load_bigbench_scores(FIXTURES / "bigbench" / "scores_BIG-G_T_0_128b.json").to_csv(
        long_path, index=False
    )
    frame = load_scores(
        [FIXTURES / "bigbench" / "scores_BIG-G_T_0_2m.json", FIXTURES / "lm_eval_v04_results.json"]
    )
    assert set(frame["family"]) == {"BIG-G T=0", "tinylm-base"}
    both = load_scores([FIXTURES / "bigbench"])
    assert set(both["model"]) == {"2m", "128b"}
    assert both.attrs["sources"] == sorted(both.attrs["sources"])
    from_long = load_scores([long_path])
    assert (
        row(from_long, task="hhh_alignment:Harms", metric="multiple_choice_grade")["value"]
        == 0.6206896551724138
    )


def test_load_shipped_covers_every_raw_score():
    start = time.perf_counter()
    frame = load_shipped()
    elapsed = time.perf_counter() - start
    assert elapsed < 60  # a few seconds on a laptop; generous for a busy CI machine

    pythia = 0
    for path in sorted((data_dir() / "pythia-evals").rglob("*.json")):
        raw = json.loads(path.read_text())
        pythia += sum(
            1
            for metrics in raw["results"].values()
            for key, value in metrics.items()
            if not key.endswith("_stderr") and isinstance(value, float | int)
        )
    obs = 0
    for name in ("base_llm_emergent_capability_eval.csv", "base_llm_benchmark_eval.csv"):
        path = data_dir() / "obsscaling" / name
        skip = {"Model", "Model Family", "Model Size (B)", "Pretraining Data Size (T)"}
        skip.add("FLOPs (1E21)")
        obs += sum(1 for r in _csv_rows(path) for c, v in r.items() if c not in skip and v.strip())
    assert len(frame) == pythia + obs

    final = frame[
        (frame["task"] == "lambada_openai")
        & (frame["metric"] == "acc")
        & (frame["step"] == 143000)
        & (frame["family"] == "pythia-v1.1-deduped")
    ]
    assert sorted(final["params"]) == sorted(readme_pythia_counts().values())
    assert not math.isnan(final["value"].sum())


def test_a_hive_scores_dataset_keeps_its_keys_in_folder_names(tmp_path):
    """A partitioned scores dataset from another tool (task and model in folder names only)
    loads as the same table, beside other score files in the same folder."""
    import subprocess
    import sys

    import pyarrow.parquet as pq
    from conftest import make_noisy_theory_scores, write_hive

    from miragelab.tables import write_table

    scores = make_noisy_theory_scores()
    root = tmp_path / "runs"
    write_hive(scores, root / "scores")
    part = next((root / "scores").rglob("*.parquet"))
    assert not {"task", "model"} & set(pq.read_schema(part).names)
    extra = scores.iloc[:1].assign(task="other")
    write_table(extra, root / "other.jsonl")

    loaded = load_scores(root)
    key = list(SCORES.key)
    both = pd.concat([scores, extra], ignore_index=True)
    got = loaded.sort_values(key, ignore_index=True)
    want = both.sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)

    out = tmp_path / "meta"
    done = subprocess.run(
        [sys.executable, "-m", "miragelab", "meta", str(root / "scores"), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    verdicts = pd.read_csv(out / "meta_verdicts.csv")
    # the closed-form ladder, read through its folder names: exact match is a mirage
    assert set(verdicts["task"]) == set(scores["task"])
    soft = verdicts.set_index("soft_metric")["verdict"]
    assert soft["cross_entropy"] == "mirage"
