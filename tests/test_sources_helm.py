"""HELM run folders -> samples and scores tables.

The folders in ``tests/fixtures/helm/`` are hand-written from HELM's
documented schema (``RequestState``, ``Instance``, ``Request``,
``RequestResult``/``Sequence``/``Token``, ``Stat``), one per adapter method.
Every expected value below is read off (or summed by hand from) those files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from miragelab.errors import InputError
from miragelab.sources.helm import ingest_helm, read_helm_run
from miragelab.textio import line_of

HELM = Path(__file__).parent / "fixtures" / "helm"


def _rows(out: Path) -> dict[str, dict]:
    return {r["example_id"]: r for r in pq.read_table(out).to_pylist()}


def test_generation_run(tmp_path):
    out, scores_out = tmp_path / "s.parquet", tmp_path / "scores.csv"
    summary = ingest_helm([HELM / "generation"], out, scores_out=scores_out)
    rows = _rows(out)
    assert summary.rows == 3 and set(rows) == {"id0", "id1", "id2"}  # the perturbed copy is skipped
    first = rows["id0"]
    assert (first["task"], first["prompt"], first["target"], first["prediction"]) == (
        "synthetic_arith:task=add",  # the run name without model=
        "1+1=2\n2+2=",
        "4",
        " 4",
    )
    # model acme/tiny-gpt-1m: the size token 1m, the family the name without it
    assert (first["model"], first["family"], first["params"]) == (
        "acme/tiny-gpt-1m",
        "tiny-gpt",
        1e6,
    )
    assert rows["id2"]["task"] == "synthetic_arith:task=add[valid]"
    assert rows["id2"]["target"] == "5"  # the reference tagged correct, not the first one
    assert first["choice_logprobs"] is None and first["target_token_logprobs"] is None

    scores = pd.read_csv(scores_out)
    got = {(r.task, r.metric): (r.value, r.n) for r in scores.itertuples()}
    assert got == {
        ("synthetic_arith:task=add", "exact_match"): (0.5, 2),
        ("synthetic_arith:task=add[valid]", "exact_match"): (1.0, 1),
        ("synthetic_arith:task=add", "num_prompt_tokens"): (10.0, 2),
    }  # the perturbed stat and the empty (count 0) one are left out


def test_joint_multiple_choice_maps_letters_and_reads_top_logprobs(tmp_path):
    out, scores_out = tmp_path / "s.parquet", tmp_path / "scores.csv"
    ingest_helm([HELM / "joint"], out, scores_out=scores_out)
    rows = _rows(out)
    a, b = rows["id10"], rows["id11"]
    assert (a["prediction"], a["target"], a["correct_choice"]) == ("bone", "bone", 1)
    assert a["choice_logprobs"] == [-1.5, -0.5, -2.5]  # " A", " B", " C" of the first token
    assert (b["prediction"], b["target"], b["correct_choice"]) == ("muscle", "nerve", 0)
    assert b["choice_logprobs"] == [-1.0, -3.0, -0.75]
    assert (a["params"], a["family"]) == (124439808.0, "gpt2")  # GPT-2's published count
    # no stats.json: per-instance exact_match 1 and 0 averaged
    scores = pd.read_csv(scores_out)
    em = scores[scores["metric"] == "exact_match"].iloc[0]
    assert (em["value"], em["n"]) == (0.5, 2)


def test_separate_multiple_choice_sums_the_reference_span(tmp_path):
    out = tmp_path / "s.parquet"
    ingest_helm([HELM / "separate"], out)
    (row,) = pq.read_table(out).to_pylist()
    # " is" -0.5 + " red" -0.25 = -0.75; " is" -0.5 + " blue" -2.0 = -2.5
    assert row["choice_logprobs"] == [-0.75, -2.5]
    assert row["target_token_logprobs"] == [-0.5, -0.25]
    assert (row["correct_choice"], row["target"], row["prompt"]) == (0, "is red", "Apple colour: ")
    assert row["prediction"] is None
    assert row["params"] == 1011781632.0  # eleutherai/pythia-1b-v0


def test_language_modeling_concatenates_windows(tmp_path):
    out = tmp_path / "s.parquet"
    ingest_helm([HELM / "language_modeling"], out)
    (row,) = pq.read_table(out).to_pylist()
    # window 1: Hello -6, world -2; window 2 drops the empty token, then 1 conditioning token
    assert row["target_token_logprobs"] == [-6.0, -2.0, -1.5]
    assert (row["target"], row["prompt"]) == ("Hello world again", None)


def test_several_runs_and_mirage_score_on_the_result(tmp_path):
    out = tmp_path / "s.parquet"
    cmd = [sys.executable, "-m", "miragelab"]
    runs = [str(HELM / d) for d in ("generation", "joint", "separate", "language_modeling")]
    done = subprocess.run(
        [*cmd, "ingest", "helm", *runs, "--out", str(out), "--scores-out", str(tmp_path / "h.csv")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    scores = tmp_path / "scores.csv"
    metrics = "exact_match,multiple_choice_grade,target_logprob"
    done = subprocess.run(
        [*cmd, "score", str(out), "--metrics", metrics, "--out", str(scores)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    got = {(r.task, r.metric): r.value for r in pd.read_csv(scores).itertuples()}
    assert got[("synthetic_arith:task=add", "exact_match")] == 0.5  # " 4" = "4" stripped; 11 != 10
    assert got[("mmlu:subject=anatomy,method=multiple_choice_joint", "exact_match")] == 0.5
    # argmax of [-1.5, -0.5, -2.5] is 1 (correct); of [-1.0, -3.0, -0.75] is 2 (correct is 0)
    key = ("mmlu:subject=anatomy,method=multiple_choice_joint", "multiple_choice_grade")
    assert got[key] == 0.5
    assert got[("wikitext_mini", "target_logprob")] == -9.5
    sep = "fruit_colour:method=multiple_choice_separate_original"
    assert got[(sep, "target_logprob")] == -0.75


def test_line_of_finds_json_paths():
    text = '{\n  "a": [\n    {"b": 1},\n    {\n      "c": 2\n    }\n  ]\n}\n'
    assert line_of(text, ["a"]) == 2
    assert line_of(text, ["a", 0]) == 3
    assert line_of(text, ["a", 1, "c"]) == 5
    assert line_of(text, ["a", 1, "missing"]) == 4  # the object that lacks it


def test_overrides_and_missing_model_size(tmp_path):
    run = read_helm_run(HELM / "generation", model="x", family="fam", params="2b")
    assert (run.meta.model, run.meta.family, run.meta.params) == ("x", "fam", 2e9)
    with pytest.raises(InputError) as info:
        read_helm_run(HELM / "generation", model="mystery-model")
    assert info.value.field == "params"


def test_several_correct_references_become_references(tmp_path):
    import json
    import shutil

    from miragelab.metrics import compute_metrics
    from miragelab.tables import read_samples

    run = tmp_path / "run"
    shutil.copytree(HELM / "generation", run)
    state_path = run / "scenario_state.json"
    state = json.loads(state_path.read_text())
    # id0 answers " 4": give it a first correct reference that does not match and a second
    # that does; HELM's exact match takes the best gold, so the instance stays right
    state["request_states"][0]["instance"]["references"] = [
        {"output": {"text": "four"}, "tags": ["correct"]},
        {"output": {"text": "5"}, "tags": []},
        {"output": {"text": "4"}, "tags": ["correct"]},
    ]
    state_path.write_text(json.dumps(state))
    out = tmp_path / "s.parquet"
    ingest_helm([run], out)
    rows = _rows(out)
    assert (rows["id0"]["target"], rows["id0"]["references"]) == ("four", ["four", "4"])
    assert rows["id1"]["references"] is None  # one correct reference: the target says it all
    samples = read_samples(out).set_index("example_id")
    assert compute_metrics(samples, ["exact_match"])["exact_match"]["id0"] == 1.0


# --------------------------------------------------------------------------- perturbations

BASE = "synthetic_arith:task=add,data_augmentation=canonical"
TYPOS = {"name": "typos", "robustness": True, "fairness": False, "prob": 0.1}
DIALECT = {
    "name": "dialect",
    "robustness": False,
    "fairness": True,
    "prob": 1.0,
    "source_class": "SAE",
    "target_class": "AAVE",
    "mapping_file_path": None,
}
LOWER = {"name": "lowercase", "robustness": True, "fairness": False}


def _state(instance_id: str, text: str, target: str, answer: str, perturbation=None) -> dict:
    instance = {
        "input": {"text": text},
        "references": [{"output": {"text": target}, "tags": ["correct"]}],
        "split": "test",
        "id": instance_id,
    }
    if perturbation is not None:
        instance["perturbation"] = {"computed_on": "perturbed", "seed": None, **perturbation}
    return {
        "instance": instance,
        "train_trial_index": 0,
        "request": {"prompt": text, "max_tokens": 2},
        "result": {"success": True, "completions": [{"text": answer, "logprob": -1.0}]},
    }


def _stat(mean: float, count: int, perturbation=None) -> dict:
    name = {"name": "exact_match", "split": "test"}
    if perturbation is not None:
        name["perturbation"] = perturbation
    return {"name": name, "count": count, "sum": mean * count, "mean": mean}


def _perturbed_run(folder: Path, stats: list[dict] | None = None, per_instance=None) -> Path:
    """A generation run with HELM's robustness and fairness copies of its two instances."""
    import json

    folder.mkdir()
    states = [
        _state("id0", "2+2=", "4", " 4"),
        _state("id1", "7+3=", "10", " 11"),
        _state("id0", "2+2 =", "4", " 4", TYPOS),
        _state("id1", "7+3 =", "10", " 10", TYPOS),
        _state("id0", "2 +2=", "4", " 5", {**TYPOS, "seed": 1}),  # a second seed of typos
        _state("id0", "2+2=", "4", " 4", DIALECT),
        _state("id1", "7+3=", "10", " 11", LOWER),
    ]
    spec = {
        "name": f"{BASE},model=acme/tiny-gpt-1m",
        "adapter_spec": {"method": "generation", "model": "acme/tiny-gpt-1m"},
    }
    (folder / "run_spec.json").write_text(json.dumps(spec, indent=2))
    (folder / "scenario_state.json").write_text(json.dumps({"request_states": states}, indent=2))
    if stats is not None:
        (folder / "stats.json").write_text(json.dumps(stats, indent=2))
    if per_instance is not None:
        (folder / "per_instance_stats.json").write_text(json.dumps(per_instance, indent=2))
    return folder


def _typos(on: str, seed=None) -> dict:
    return {**TYPOS, "computed_on": on, "seed": seed}


# the statistics HELM derives for the run above, worked by hand from its answers:
# originals id0 right, id1 wrong; typos (seed none) both right; typos seed 1 id0 wrong
HELM_STATS = [
    _stat(0.5, 2),
    _stat(1.0, 2, _typos("perturbed")),
    _stat(0.0, 1, _typos("perturbed", seed=1)),
    _stat(0.5, 2, _typos("original")),
    # worst over the original and every robustness copy: id0 min(1, 1, 0, -), id1 min(0, ...)
    _stat(0.0, 2, {"name": "robustness", "robustness": True, "computed_on": "worst"}),
    # fairness: id0 min(1 original, 1 dialect) = 1; id1 has only its original, 0
    _stat(0.5, 2, {"name": "fairness", "fairness": True, "computed_on": "worst"}),
]


def test_perturbations_are_skipped_by_default_and_counted(tmp_path):
    run = _perturbed_run(tmp_path / "run", HELM_STATS)
    out, scores_out = tmp_path / "s.parquet", tmp_path / "scores.csv"
    summary = ingest_helm([run], out, scores_out=scores_out)
    assert summary.skipped_perturbed == 5
    assert {(r["task"], r["example_id"]) for r in pq.read_table(out).to_pylist()} == {
        (BASE, "id0"),
        (BASE, "id1"),
    }
    scores = pd.read_csv(scores_out)
    assert [(r.task, r.metric, r.value, r.n) for r in scores.itertuples()] == [
        (BASE, "exact_match", 0.5, 2)
    ]


def test_perturbations_become_tasks_of_their_own(tmp_path):
    run = _perturbed_run(tmp_path / "run", HELM_STATS)
    out, scores_out = tmp_path / "s.parquet", tmp_path / "scores.csv"
    summary = ingest_helm([run], out, scores_out=scores_out, perturbations=True)
    assert summary.skipped_perturbed == 0
    typos = f"{BASE}[perturbation=typos(prob=0.1)]"
    dialect = f"{BASE}[perturbation=dialect(prob=1.0,source_class=SAE,target_class=AAVE)]"
    lower = f"{BASE}[perturbation=lowercase]"
    got = {(r["task"], r["example_id"]): r for r in pq.read_table(out).to_pylist()}
    assert set(got) == {
        (BASE, "id0"),
        (BASE, "id1"),
        (typos, "id0"),
        (typos, "id1"),
        (typos, "id0@seed1"),
        (dialect, "id0"),
        (lower, "id1"),
    }
    assert (got[(typos, "id0@seed1")]["prompt"], got[(typos, "id0@seed1")]["prediction"]) == (
        "2 +2=",
        " 5",
    )

    scores = pd.read_csv(scores_out)
    stats = {(r.task, r.metric): (round(r.value, 6), r.n) for r in scores.itertuples()}
    assert stats == {
        (BASE, "exact_match"): (0.5, 2),
        # both seeds of typos pooled: (2 x 1.0 + 1 x 0.0) / 3, like the task's three samples
        (typos, "exact_match"): (round(2 / 3, 6), 3),
        (typos, "exact_match[original]"): (0.5, 2),
        (f"{BASE}[perturbation=robustness]", "exact_match[worst]"): (0.0, 2),
        (f"{BASE}[perturbation=fairness]", "exact_match[worst]"): (0.5, 2),
    }

    # the samples give the same perturbed exact match as HELM's pooled statistic
    from miragelab.scoring import score_samples
    from miragelab.tables import read_samples

    scored = score_samples(read_samples(out), ["exact_match"])
    mine = {r.task: r.value for r in scored.itertuples()}
    assert mine[typos] == pytest.approx(2 / 3)
    assert mine[BASE] == 0.5 and mine[dialect] == 1.0 and mine[lower] == 0.0


def test_older_helm_perturbation_forms(tmp_path):
    """``includes_perturbed``/``includes_identity`` and per-instance stats of perturbed entries."""
    old_typos = {**TYPOS, "includes_perturbed": True, "includes_identity": False}
    both = {"name": "robustness", "robustness": True}
    both |= {"includes_perturbed": True, "includes_identity": True}
    run = _perturbed_run(tmp_path / "stats", [_stat(0.5, 2), _stat(0.0, 2, both)])
    scores_out = tmp_path / "a.csv"
    ingest_helm([run], tmp_path / "a.parquet", scores_out=scores_out, perturbations=True)
    got = {(r.task, r.metric) for r in pd.read_csv(scores_out).itertuples()}
    assert got == {
        (BASE, "exact_match"),
        (f"{BASE}[perturbation=robustness]", "exact_match[worst]"),
    }

    def entry(instance_id: str, mean: float, own=None, in_name=None) -> dict:
        e = {"instance_id": instance_id, "train_trial_index": 0, "stats": [_stat(mean, 1, in_name)]}
        if own is not None:
            e["perturbation"] = own
        return e

    per = [
        entry("id0", 1.0),
        entry("id1", 0.0),
        entry("id0", 1.0, own=old_typos),  # the perturbation beside the stats only
        entry("id1", 0.0, own=old_typos, in_name=old_typos),  # and in the stat's name too
    ]
    run = _perturbed_run(tmp_path / "per", per_instance=per)
    scores_out = tmp_path / "b.csv"
    ingest_helm([run], tmp_path / "b.parquet", scores_out=scores_out, perturbations=True)
    got = {(r.task, r.metric): (r.value, r.n) for r in pd.read_csv(scores_out).itertuples()}
    assert got == {
        (BASE, "exact_match"): (0.5, 2),
        (f"{BASE}[perturbation=typos(prob=0.1)]", "exact_match"): (0.5, 2),
    }
    scores_out = tmp_path / "c.csv"
    ingest_helm([run], tmp_path / "c.parquet", scores_out=scores_out)  # skipped by default
    assert len(pd.read_csv(scores_out)) == 1


def test_perturbations_cli_and_a_nameless_perturbation(tmp_path):
    import json

    run = _perturbed_run(tmp_path / "run", HELM_STATS)
    cmd = [sys.executable, "-m", "miragelab", "ingest", "helm", str(run)]
    done = subprocess.run(
        [*cmd, "--out", str(tmp_path / "a.parquet")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "skipped 5 request(s) of perturbed instances" in done.stderr
    done = subprocess.run(
        [*cmd, "--out", str(tmp_path / "b.parquet"), "--perturbations"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "skipped" not in done.stderr
    assert len(pq.read_table(tmp_path / "b.parquet")) == 7

    state_path = run / "scenario_state.json"
    state = json.loads(state_path.read_text())
    del state["request_states"][3]["instance"]["perturbation"]["name"]
    text = json.dumps(state, indent=2)
    state_path.write_text(text)
    # the object that lacks the name: the second "perturbation" of the file (state 3)
    starts = [i for i, line in enumerate(text.splitlines(), 1) if '"perturbation": {' in line]
    out = tmp_path / "c.parquet"
    done = subprocess.run(
        [*cmd, "--out", str(out), "--perturbations"], capture_output=True, text=True
    )
    assert done.returncode == 2
    field = "request_states[3].instance.perturbation.name"
    assert done.stderr.startswith(f"error: {state_path}, line {starts[1]}, field '{field}': ")
    assert len(done.stderr.splitlines()) == 1 and not out.exists()


def test_several_correct_choices_are_flagged(tmp_path):
    """HELM counts the best correct reference: letters and spans flag every correct choice."""
    import json
    import shutil

    from miragelab.metrics import compute_metrics
    from miragelab.tables import read_samples

    joint = tmp_path / "joint"
    shutil.copytree(HELM / "joint", joint)
    state_path = joint / "scenario_state.json"
    state = json.loads(state_path.read_text())
    # id10 answers B (bone) with top log-prob on B; make nerve (A) correct too, and first
    state["request_states"][0]["instance"]["references"][0]["tags"] = ["correct"]
    state_path.write_text(json.dumps(state))
    separate = tmp_path / "separate"
    shutil.copytree(HELM / "separate", separate)
    state_path = separate / "scenario_state.json"
    state = json.loads(state_path.read_text())
    for request in state["request_states"]:  # "is blue" (-2.5) correct too
        request["instance"]["references"][1]["tags"] = ["correct"]
    state_path.write_text(json.dumps(state))

    out = tmp_path / "s.parquet"
    ingest_helm([joint, separate], out)
    rows = _rows(out)
    a = rows["id10"]
    assert (a["correct_choice"], a["choice_is_correct"]) == (0, [1.0, 1.0, 0.0])
    assert (a["target"], a["references"], a["prediction"]) == ("nerve", ["nerve", "bone"], "bone")
    assert rows["id11"]["choice_is_correct"] is None  # one correct reference
    assert rows["id7"]["choice_is_correct"] == [1.0, 1.0]
    samples = read_samples(out).set_index("example_id")
    values = compute_metrics(samples, ["exact_match", "multiple_choice_grade"])
    # bone is right both ways: as an answer text among the golds, and as the top choice
    assert values.loc["id10"].tolist() == [1.0, 1.0]
    assert values.loc["id7", "multiple_choice_grade"] == 1.0  # top choice "is red" is correct


def test_letter_logprobs_add_both_spellings():
    """A letter's probability is that of "A" plus that of " A": here the model prefers
    B (0.50 + 0.0067) to A (0.41 + 0.05), though "A" alone beats "B" alone."""
    import math

    from miragelab.sources.letters import letter_logprobs

    top = {" B": -0.7, " A": -0.9, "A": -3.0, "B": -5.0}
    a, b = letter_logprobs(top, "AB")
    assert a == pytest.approx(math.log(math.exp(-0.9) + math.exp(-3.0)))
    assert b == pytest.approx(math.log(math.exp(-0.7) + math.exp(-5.0)))
    assert b > a
    assert letter_logprobs({"A": -1.0}, "AB") is None  # B unseen: no row of letters
