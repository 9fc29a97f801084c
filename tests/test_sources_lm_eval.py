"""lm-eval-harness ``--log_samples`` files -> samples table -> ``mirage score``.

The fixtures in ``tests/fixtures/lm_eval/`` are hand-written in the formats of
lm-eval 0.4.3+ (JSONL, stringified leaves), 0.4.2 (``samples_*.json``, one
JSON array, numeric leaves) and 0.4.0 (``<model_args>_<task>.jsonl``, an
array, next to ``results.json``). Expected values are read off the fixture
lines by hand. The last test runs lm-eval-harness itself on a tiny exported
checkpoint and checks that rescoring reproduces lm-eval's own per-sample
values and means.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from miragelab.errors import InputError
from miragelab.scoring import score_samples
from miragelab.sources.lm_eval_samples import (
    CHOICE,
    GENERATION,
    LOGLIKELIHOOD,
    ROLLING,
    _Bad,
    ingest_lm_eval,
    parse_lm_eval_record,
)
from miragelab.tables import read_samples

FIXTURES = Path(__file__).parent / "fixtures" / "lm_eval"
PYTHIA_160M = 162322944.0  # config.model_num_parameters in the 0.4.13 results fixture
PYTHIA_70M = 70426624.0  # no size in the 0.4.2 results: the exact published Pythia count


def _rows(path: Path) -> dict[tuple[str, str], dict]:
    table = pq.read_table(path).to_pylist()
    return {(r["task"], r["example_id"]): r for r in table}


def test_current_format_maps_every_kind_of_request(tmp_path):
    out = tmp_path / "s.parquet"
    summary = ingest_lm_eval([FIXTURES / "v0.4.13"], out)
    assert summary.files == 4 and summary.rows == 7
    rows = _rows(out)
    # model columns from results_*.json: pretrained=, revision=step143000, model_num_parameters
    for r in rows.values():
        assert (r["model"], r["family"], r["params"], r["step"]) == (
            "EleutherAI/pythia-160m",
            "pythia",
            PYTHIA_160M,
            143000,
        )
        assert r["tokens_trained"] == 143000 * 2_097_152  # Pythia: 2M tokens per step

    gen = rows[("arith", "0")]
    assert (gen["prompt"], gen["target"], gen["prediction"]) == ("Q: 2+2\nA:", "4", " 4")
    assert gen["choice_logprobs"] is None and gen["continuation_logprob"] is None
    assert rows[("arith", "1")]["prediction"] == "10"

    mc = rows[("mcq", "0")]  # target "2": an index
    assert mc["choice_logprobs"] == [-3.5, -1.25, -0.75]
    assert (mc["correct_choice"], mc["target"], mc["prompt"]) == (2, "blue", "Sky colour?\nAnswer:")
    assert mc["prediction"] is None
    mc_text = rows[("mcq", "1")]  # target "green": the choice " green" (delimiter " ")
    assert (mc_text["correct_choice"], mc_text["choice_logprobs"]) == (1, [-2.0, -0.5, -4.0])
    # " red", " green", " blue" less the delimiter: what lm-eval's acc_norm divides by; line 1
    # takes the fast path (an index target), line 2 the careful one (a text target)
    assert mc["choice_lengths"] == mc_text["choice_lengths"] == [3.0, 5.0, 4.0]

    ll = rows[("lambada_mini", "0")]  # one loglikelihood request: a total, not per token
    assert ll["target_token_logprobs"] is None
    assert (ll["continuation_logprob"], ll["continuation_is_greedy"]) == (-2.5, True)
    assert (ll["prompt"], ll["target"]) == ("The cat chased the", " dog")

    # two filters of a 5-shot task: one task each, suffixed like the results' metric keys
    assert rows[("gsm_mini@5shot[strict-match]", "0")]["prediction"] == "[invalid]"
    assert rows[("gsm_mini@5shot[flexible-extract]", "0")]["prediction"] == "42"


def test_json_array_formats_of_older_versions(tmp_path):
    out = tmp_path / "s.parquet"
    ingest_lm_eval([FIXTURES / "v0.4.2"], out)
    rows = _rows(out)
    first, second = rows[("boolq_mini", "0")], rows[("boolq_mini", "1")]
    assert (first["choice_logprobs"], first["correct_choice"], first["target"]) == (
        [-1.75, -0.25],
        1,
        "yes",
    )
    assert (second["choice_logprobs"], second["correct_choice"]) == ([-1.5, -0.5], 0)
    assert (first["model"], first["params"]) == ("EleutherAI/pythia-70m", PYTHIA_70M)

    ingest_lm_eval([FIXTURES / "v0.4.0"], out)
    (row,) = pq.read_table(out).to_pylist()
    assert (row["task"], row["choice_logprobs"], row["correct_choice"]) == (
        "copa_mini",
        [-0.5, -3.0],
        0,
    )


def test_options_override_the_results_file(tmp_path):
    out = tmp_path / "s.parquet"
    ingest_lm_eval([FIXTURES / "v0.4.2"], out, model="my-model", family="mine", params="1.5b")
    row = pq.read_table(out).to_pylist()[0]
    assert (row["model"], row["family"], row["params"]) == ("my-model", "mine", 1.5e9)


def test_rescoring_the_fixture_gives_hand_computed_means(tmp_path):
    out = tmp_path / "s.parquet"
    ingest_lm_eval([FIXTURES / "v0.4.13"], out)
    samples = read_samples(out)
    scores = score_samples(samples, ["exact_match", "multiple_choice_grade"])
    got = {(r.task, r.metric): r.value for r in scores.itertuples()}
    # arith: " 4" vs "4" (equal once stripped) and "10" vs "10"
    assert got[("arith", "exact_match")] == 1.0
    assert got[("gsm_mini@5shot[flexible-extract]", "exact_match")] == 0.0  # "42" vs "#### 42"
    # mcq: argmax of [-3.5, -1.25, -0.75] is 2 (correct), of [-2, -0.5, -4] is 1 (correct)
    assert got[("mcq", "multiple_choice_grade")] == 1.0


# --------------------------------------------------------------------------- single records

STRINGIFIED_MC = {
    "doc_id": 3,
    "target": "1",
    "arguments": {
        "gen_args_0": {"arg_0": "Q", "arg_1": " a"},
        "gen_args_1": {"arg_0": "Q", "arg_1": " b"},
    },
    "resps": [[["-1.5", "False"]], [["-0.5", "True"]]],
    "filtered_resps": [["-1.5", "False"], ["-0.5", "True"]],
    "filter": "none",
}
PLAIN_MC = {
    "doc_id": 3,
    "target": 1,
    "arguments": [["Q", " a"], ["Q", " b"]],
    "resps": [[[-1.5, False]], [[-0.5, True]]],
    "filtered_resps": [[-1.5, False], [-0.5, True]],
}


def test_stringified_and_plain_leaves_give_the_same_row():
    a, b = parse_lm_eval_record(STRINGIFIED_MC), parse_lm_eval_record(PLAIN_MC)
    assert a.kind == b.kind == CHOICE
    for row in (a, b):
        assert (row.choice_logprobs, row.correct_choice, row.target) == ([-1.5, -0.5], 1, "b")
        assert (row.example_id, row.prompt) == ("3", "Q")

    gen_str = {
        "doc_id": 0,
        "target": "7",
        "arguments": {"gen_args_0": {"arg_0": "3+4=", "arg_1": {"until": ["\n"]}}},
        "resps": [["7"]],
        "filtered_resps": ["7"],
    }
    gen_plain = {
        "doc_id": 0,
        "target": 7,  # 0.4.0-0.4.2 kept the target's own type
        "arguments": [["3+4=", {"until": ["\n"]}]],
        "resps": [["7"]],
        "filtered_resps": ["7"],
    }
    for record in (gen_str, gen_plain):
        row = parse_lm_eval_record(record)
        assert (row.kind, row.prompt, row.target, row.prediction) == (GENERATION, "3+4=", "7", "7")

    ll_str = {
        "doc_id": 0,
        "target": " x",
        "arguments": {"gen_args_0": {"arg_0": "c", "arg_1": " x"}},
        "filtered_resps": [["-0.125", "False"]],
    }
    ll_plain = {**ll_str, "arguments": [["c", " x"]], "filtered_resps": [[-0.125, False]]}
    for record in (ll_str, ll_plain):
        row = parse_lm_eval_record(record)
        assert (row.kind, row.continuation_logprob, row.continuation_is_greedy) == (
            LOGLIKELIHOOD,
            -0.125,
            False,
        )

    rolling = {
        "doc_id": 0,
        "target": "some text",
        "arguments": {"gen_args_0": {"arg_0": "some text"}},
        "filtered_resps": ["-12.5"],
    }
    row = parse_lm_eval_record(rolling)
    assert (row.kind, row.continuation_logprob, row.target) == (ROLLING, -12.5, "some text")


def test_mutual_info_keeps_the_conditional_half_and_multiple_input_uses_acc():
    record = {
        "doc_id": 0,
        "target": "0",
        "arguments": [["Q", " a"], ["Q", " b"], ["", " a"], ["", " b"]],
        "filtered_resps": [[-1.0, True], [-2.0, False], [-3.0, False], [-0.5, True]],
        "acc_mutual_info": 1.0,
    }
    row = parse_lm_eval_record(record)
    assert (row.choice_logprobs, row.correct_choice) == ([-1.0, -2.0], 0)

    # Winogrande style: two contexts, one continuation; argmax is context 1, acc 0 -> correct 0
    wino = {
        "doc_id": 0,
        "target": " went home",
        "arguments": [["Anna helped Bea because Anna", " went home"], ["... Bea", " went home"]],
        "filtered_resps": [[-4.0, False], [-3.0, False]],
        "acc": 0.0,
    }
    row = parse_lm_eval_record(wino)
    assert (row.choice_logprobs, row.correct_choice) == ([-4.0, -3.0], 0)


def test_multi_target_choices_flag_every_gold():
    # lm-eval's multi-target multiple choice: right when the top choice is any gold; its log
    # gives the golds as a list, or (>= 0.4.3) as their str()
    for target in ([1, 0], ["1", "0"], "[1, 0]", [" b", "a"]):
        row = parse_lm_eval_record({**STRINGIFIED_MC, "target": target})
        assert (row.correct_choice, row.choice_is_correct, row.target) == (1, [1.0, 1.0], "b")
    row = parse_lm_eval_record({**STRINGIFIED_MC, "target": [1, 1]})  # one gold, twice
    assert (row.correct_choice, row.choice_is_correct) == (1, None)
    # a choice whose text looks like a list is a choice, not a list of golds
    odd = {**STRINGIFIED_MC, "target": "[0]"}
    odd["arguments"] = {
        "gen_args_0": {"arg_0": "Q", "arg_1": " [0]"},
        "gen_args_1": {"arg_0": "Q", "arg_1": " [1]"},
    }
    assert parse_lm_eval_record(odd).correct_choice == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"target": "5"}, "target"),  # index 5 of 2 choices, and no choice is "5"
        ({"target": ["0", "7"]}, "target[1]"),  # the second gold is no choice
        ({"target": "[1, 2]"}, "target[1]"),  # lm-eval's str() of the golds, one out of range
        ({"target": []}, "target"),
        ({"filtered_resps": [["-1.5", "False"], ["oops", "True"]]}, "filtered_resps[1][0]"),
        ({"filtered_resps": [["-1.5", "False"], ["0.5", "True"]]}, "filtered_resps[1][0]"),
        ({"filtered_resps": [["-1.5", "False"]]}, "filtered_resps"),
        ({"doc_id": None}, "doc_id"),
        ({"arguments": "Q"}, "arguments"),
    ],
)
def test_bad_records_name_the_field(change, field):
    with pytest.raises(_Bad) as info:
        parse_lm_eval_record({**STRINGIFIED_MC, **change})
    assert info.value.field == field


def test_missing_params_is_one_line_naming_the_results_file(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    date = "2024-01-01T00-00-00.000000"
    (folder / f"results_{date}.json").write_text(
        json.dumps(
            {"results": {"t": {"acc,none": 1.0}}, "config": {"model_args": "pretrained=acme/x"}}
        )
    )
    line = json.dumps({**STRINGIFIED_MC, "doc_id": 0})
    (folder / f"samples_t_{date}.jsonl").write_text(line + "\n")
    with pytest.raises(InputError) as info:
        ingest_lm_eval([folder], tmp_path / "o.parquet")
    assert info.value.field == "params" and info.value.path.endswith(f"results_{date}.json")
    assert "\n" not in str(info.value) and "--params" in str(info.value)
    assert not (tmp_path / "o.parquet").exists()
    ingest_lm_eval([folder], tmp_path / "o.parquet", params="2m")  # the option fills the gap
    assert pq.read_table(tmp_path / "o.parquet").column("params").to_pylist() == [2e6]


def test_chunks_and_duplicates_across_chunks(tmp_path):
    lines = [json.dumps({**STRINGIFIED_MC, "doc_id": i}) for i in range(10)]
    lines.append(json.dumps({**STRINGIFIED_MC, "doc_id": 4}))  # line 11 repeats doc 4
    path = tmp_path / "samples_t_2024-01-01T00-00-00.000000.jsonl"
    path.write_text("\n".join(lines[:10]) + "\n")
    out = tmp_path / "o.parquet"
    ingest_lm_eval([path], out, model="m", params=1e6, chunk_rows=3)
    table = pq.read_table(out)
    assert table.num_rows == 10 and pq.ParquetFile(out).num_row_groups == 4
    assert table.column("example_id").to_pylist() == [str(i) for i in range(10)]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        ingest_lm_eval([path], tmp_path / "o2.parquet", model="m", params=1e6, chunk_rows=3)
    assert (info.value.line, info.value.field) == (11, "doc_id")


# --------------------------------------------------------------------------- the real thing

GEN_YAML = """\
task: mirage_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{target}}}}"
target_delimiter: ""
generation_kwargs:
  until: ["="]
  max_gen_toks: 3
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""
# a multi-target task: lm-eval reads the rendered list back as a list of golds
MULTI_YAML = GEN_YAML.replace("mirage_gen", "mirage_multi").replace(
    "{{{{target}}}}", "{{{{golds}}}}"
)
# a generation task whose target is the index of a choice (as SuperGLUE's T5 prompts); it
# stops at "*", not "=", so the answers (and lm-eval's choices) are not empty
CHOICE_GEN_YAML = (
    GEN_YAML.replace("mirage_gen", "mirage_gen_choice")
    .replace('doc_to_target: "{{{{target}}}}"', 'doc_to_target: "{{{{label}}}}"')
    .replace("test_split: test", 'test_split: test\ndoc_to_choice: "{{{{options}}}}"')
    .replace('until: ["="]', 'until: ["*"]')
)
# LAMBADA style: one loglikelihood request per doc, scored by is_greedy (acc) and perplexity
LL_YAML = """\
task: mirage_ll
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: loglikelihood
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{target}}}}"
target_delimiter: ""
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: perplexity
    aggregation: perplexity
    higher_is_better: false
"""
MC_YAML = """\
task: mirage_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{prompt}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{label}}}}"
target_delimiter: ""
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""
# multi-target multiple choice: lm-eval counts the top choice right when it is any gold
MC_MULTI_YAML = MC_YAML.replace("mirage_mc", "mirage_mc_multi").replace(
    'doc_to_target: "{{{{label}}}}"', 'doc_to_target: "{{{{golds}}}}"'
)


def _greedy_answers(model_dir: Path, prompts: list[str], stop: str = "=") -> list[str]:
    """What greedy decoding with lm-eval's settings answers: 3 tokens, cut at ``stop`` or EOS."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    answers = []
    for prompt in prompts:
        ids = tok(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=3,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
                eos_token_id=None,
            )
        text = tok.decode(out[0, ids.shape[1] :])
        answers.append(text.split(stop)[0].split(tok.eos_token)[0])
    return answers


def test_lm_eval_harness_samples_rescore_to_its_own_values(tmp_path, monkeypatch):
    pytest.importorskip("lm_eval")
    import torch

    from miragelab.ladder.hf import export_hf
    from miragelab.ladder.model import GPTConfig, TinyGPT
    from miragelab.ladder.tasks import EOS_ID, PAD_ID

    torch.manual_seed(3)
    model = TinyGPT(GPTConfig(n_layer=1, n_head=2, n_embd=16))
    with torch.no_grad():  # the tied head then never prefers <eos>/<pad>: answers are not empty
        model.transformer["wte"].weight[[EOS_ID, PAD_ID]] = 0.0
    model_dir = export_hf(model, tmp_path / "tiny-model")

    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf-home"),
    }
    prompts = [f"{a}+{b}=" for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (9, 1), (2, 2)]]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    answers = _greedy_answers(model_dir, prompts)
    # half the targets are the model's own answers, half are not: exact match is 1 and 0
    targets = [ans if i % 2 == 0 else ans + "9" for i, ans in enumerate(answers)]
    gen = tmp_path / "gen.jsonl"
    gen.write_text(
        "".join(
            json.dumps({"prompt": p, "target": t}) + "\n"
            for p, t in zip(prompts, targets, strict=True)
        )
    )
    # golds of row i: the model's answer second (even i, so only "any gold" counts it right)
    # or not at all (odd i)
    multi = tmp_path / "multi.jsonl"
    multi.write_text(
        "".join(
            json.dumps({"prompt": p, "golds": [a + "9", a if i % 2 == 0 else a + "8"]}) + "\n"
            for i, (p, a) in enumerate(zip(prompts, answers, strict=True))
        )
    )
    # options of row i: a wrong answer and the model's; the label picks the model's on even i
    gen_choice = tmp_path / "gen_choice.jsonl"
    long_answers = _greedy_answers(model_dir, prompts, stop="*")
    assert all(long_answers)
    options = {str(i): [a + "9", a] for i, a in enumerate(long_answers)}
    gen_choice.write_text(
        "".join(
            json.dumps({"prompt": p, "options": options[str(i)], "label": 1 - i % 2}) + "\n"
            for i, p in enumerate(prompts)
        )
    )
    # continuations: the greedy first token on even rows, another digit on odd rows
    ll = tmp_path / "ll.jsonl"
    ll_targets = [
        a[0] if i % 2 == 0 else ("7" if a[0] != "7" else "8") for i, a in enumerate(long_answers)
    ]
    ll.write_text(
        "".join(
            json.dumps({"prompt": p, "target": t}) + "\n"
            for p, t in zip(prompts, ll_targets, strict=True)
        )
    )
    mc = tmp_path / "mc.jsonl"
    mc.write_text(
        "".join(
            json.dumps(
                {
                    "prompt": f"{i}*3=",
                    "choices": [str(3 * i), str(3 * i + 1), "0", "7" * (i + 2)],
                    "label": i % 4,
                }
            )
            + "\n"
            for i in range(8)
        )
    )
    # the same questions with two golds each: the labelled choice and the next one
    mc_multi = tmp_path / "mc_multi.jsonl"
    mc_multi.write_text(
        "".join(
            json.dumps({**json.loads(line), "golds": [i % 4, (i + 1) % 4]}) + "\n"
            for i, line in enumerate(mc.read_text().splitlines())
        )
    )
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "mc_multi.yaml").write_text(MC_MULTI_YAML.format(data=mc_multi))
    (tasks / "gen.yaml").write_text(GEN_YAML.format(data=gen))
    (tasks / "mc.yaml").write_text(MC_YAML.format(data=mc))
    (tasks / "multi.yaml").write_text(MULTI_YAML.format(data=multi))
    (tasks / "gen_choice.yaml").write_text(CHOICE_GEN_YAML.format(data=gen_choice))
    (tasks / "ll.yaml").write_text(LL_YAML.format(data=ll))
    runs = tmp_path / "runs"
    cmd = [
        sys.executable, "-m", "lm_eval",
        "--model", "hf",
        "--model_args", f"pretrained={model_dir},dtype=float32",
        "--tasks", "mirage_gen,mirage_mc,mirage_multi,mirage_gen_choice,mirage_ll,mirage_mc_multi",
        "--include_path", str(tasks),
        "--output_path", str(runs),
        "--log_samples",
        "--device", "cpu",
        "--batch_size", "4",
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (results_file,) = runs.rglob("results_*.json")
    results = json.loads(results_file.read_text())
    # the date follows the task name: "samples_mirage_mc_*" would also match mirage_mc_multi's
    logged = {
        task: [json.loads(line) for line in next(runs.rglob(f"samples_{task}_[0-9]*.jsonl")).open()]
        for task in (
            "mirage_gen",
            "mirage_mc",
            "mirage_multi",
            "mirage_gen_choice",
            "mirage_ll",
            "mirage_mc_multi",
        )
    }
    # lm-eval logs the choice index as the target of a doc_to_choice generation task
    assert {s["target"] for s in logged["mirage_gen_choice"]} == {"0", "1"}
    # lm-eval >= 0.4.3 logs the golds through str(): "['x9', 'x']"
    golds = {str(i): [a + "9", a if i % 2 == 0 else a + "8"] for i, a in enumerate(answers)}
    assert {str(s["doc_id"]): s["target"] for s in logged["mirage_multi"]} == {
        i: str(g) for i, g in golds.items()
    }

    out = tmp_path / "samples.parquet"
    mirage = [sys.executable, "-m", "miragelab"]
    done = subprocess.run(
        [*mirage, "ingest", "lm-eval", str(runs), "--out", str(out), "--family", "tiny"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    scores_path = tmp_path / "scores.csv"
    done = subprocess.run(
        [
            *mirage, "score", str(out),
            "--metrics", "auto",
            "--no-strip",  # lm-eval compares the raw strings
            "--out", str(scores_path),
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    samples = read_samples(out)
    n_params = results["config"]["model_num_parameters"]
    assert (samples["params"] == n_params).all() and (samples["family"] == "tiny").all()
    from miragelab.metrics import MetricOptions, compute_metrics

    multi = samples[samples["task"] == "mirage_multi"]
    columns = (multi["example_id"], multi["target"], multi["references"])
    for eid, target, refs in zip(*columns, strict=True):
        assert (target, list(refs)) == (golds[eid][0], golds[eid])
    gen_choice = samples[samples["task"] == "mirage_gen_choice"]
    for eid, target in zip(gen_choice["example_id"], gen_choice["target"], strict=True):
        assert target == options[eid][1 - int(eid) % 2]  # the chosen option's text
    for task, ours, theirs in (
        ("mirage_gen_choice", "exact_match", "exact_match"),
        ("mirage_ll", "greedy_match", "acc"),
        ("mirage_gen", "exact_match", "exact_match"),
        ("mirage_mc", "multiple_choice_grade", "acc"),
        ("mirage_mc", "multiple_choice_grade_norm", "acc_norm"),
        ("mirage_multi", "exact_match", "exact_match"),
        ("mirage_mc_multi", "multiple_choice_grade", "acc"),
        ("mirage_mc_multi", "multiple_choice_grade_norm", "acc_norm"),
    ):
        part = samples[samples["task"] == task].reset_index(drop=True)
        values = compute_metrics(part, [ours], MetricOptions(strip=False))[ours].to_numpy()
        by_doc = {str(s["doc_id"]): float(s[theirs]) for s in logged[task]}
        expected = np.array([by_doc[i] for i in part["example_id"]])
        np.testing.assert_array_equal(values, expected)
        assert 0 < expected.sum() < len(expected)  # both outcomes occur: the check has teeth

    multi_mc = samples[samples["task"] == "mirage_mc_multi"]
    assert multi_mc["choice_is_correct"].notna().all()
    first_gold_only = compute_metrics(
        multi_mc.drop(columns="choice_is_correct"), ["multiple_choice_grade"]
    )
    with_all = compute_metrics(multi_mc, ["multiple_choice_grade"])
    # the second gold is the top choice somewhere: the flags, not the first gold, match lm-eval
    assert (first_gold_only["multiple_choice_grade"] < with_all["multiple_choice_grade"]).any()
    mc_part = samples[samples["task"] == "mirage_mc"]
    graded = compute_metrics(mc_part, ["multiple_choice_grade", "multiple_choice_grade_norm"])
    # the long "77..." choice makes per-character scores pick differently on some rows
    assert (graded["multiple_choice_grade"] != graded["multiple_choice_grade_norm"]).any()
    import pandas as pd

    scores = pd.read_csv(scores_path)
    got = {(r.task, r.metric): r.value for r in scores.itertuples()}
    assert got[("mirage_gen", "exact_match")] == pytest.approx(
        results["results"]["mirage_gen"]["exact_match,none"], abs=1e-12
    )
    assert got[("mirage_mc", "multiple_choice_grade")] == pytest.approx(
        results["results"]["mirage_mc"]["acc,none"], abs=1e-12
    )
    assert got[("mirage_mc", "multiple_choice_grade_norm")] == pytest.approx(
        results["results"]["mirage_mc"]["acc_norm,none"], abs=1e-12
    )
    assert got[("mirage_multi", "exact_match")] == pytest.approx(
        results["results"]["mirage_multi"]["exact_match,none"], abs=1e-12
    )
    ll_results = results["results"]["mirage_ll"]
    assert got[("mirage_ll", "greedy_match")] == pytest.approx(ll_results["acc,none"], abs=1e-12)
    # lm-eval's perplexity of a loglikelihood task is exp(-mean log-likelihood)
    assert got[("mirage_ll", "continuation_logprob")] == pytest.approx(
        -math.log(ll_results["perplexity,none"]), abs=1e-9
    )


def test_samples_read_the_model_size_as_the_results_loader_does(tmp_path):
    """A size lm-eval did not write as a number is refused, not replaced by the name's."""
    from miragelab.sources.lm_eval_samples import model_meta

    path = tmp_path / "results_x.json"
    config = {"model_args": "pretrained=acme/tiny-70m", "model_num_parameters": "124M"}
    data = {"config": config}
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as info:
        model_meta(data, path)
    assert info.value.field == "config.model_num_parameters"
    # lm-eval's -1 (could not count) falls back to the size in the name
    data["config"]["model_num_parameters"] = -1
    assert model_meta(data, path).params == 70e6


def test_an_integer_beyond_any_float_is_no_log_probability(tmp_path):
    """A log-probability logged as an integer too large for a float: one error naming the
    file, the line and the field, never an OverflowError (found by the fuzz test)."""
    import json

    from miragelab.errors import InputError
    from miragelab.sources.lm_eval_samples import ingest_lm_eval

    record = {
        "doc_id": 0, "doc": {}, "target": "1",
        "arguments": {
            f"gen_args_{i}": {"arg_0": "Q:", "arg_1": f" {c}"} for i, c in enumerate("ab")
        },
        "resps": [[[-1.0, False]], [[-0.5, True]]],
        "filtered_resps": [[10**400, False], [-0.5, True]],
        "filter": "none", "metrics": ["acc"], "acc": 1.0,
    }  # fmt: skip
    path = tmp_path / "samples_mcq_2024-05-01T10-00-00.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(InputError) as caught:
        ingest_lm_eval([path], tmp_path / "out.parquet", model="org/m-1b", params="1b")
    assert caught.value.line == 1 and "log-probability" in str(caught.value)
    assert not (tmp_path / "out.parquet").exists()
