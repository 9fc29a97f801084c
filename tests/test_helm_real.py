"""`mirage ingest helm` on run folders that `helm-run` itself wrote, checked against HELM's stats.

Slow, and only where HELM is installed: crfm-helm pins its own torch and
transformers, so it lives in a venv of its own, named by ``MIRAGE_HELM_RUN``::

    python3.11 -m venv helm-venv
    helm-venv/bin/pip install torch==2.13.0 && helm-venv/bin/pip install crfm-helm==0.5.16
    MIRAGE_HELM_RUN=helm-venv/bin/helm-run python -m pytest -m slow tests/test_helm_real.py

The test builds a GPT-2-shaped model of about 100k parameters with a byte-level
BPE tokenizer (trained here on generated text; context 2048, enough for HELM's
few-shot prompts), runs ``helm-run`` offline on HELM's own offline scenarios
``simple_mcqa`` and ``simple_classification`` (``simple1`` hard-codes the
deployment ``simple/model1`` and refuses a local model), tunes the model for a
few steps on the instances HELM asked so that its answers vary (some right,
some wrong), runs ``helm-run`` again, ingests the run folders into files named
after them (``simple_mcqa:model=....parquet``) and compares ``mirage score``'s
exact match with HELM's ``per_instance_stats.json`` instance by instance and
with ``stats.json`` in the mean.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import string
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import mirage_code

pytestmark = pytest.mark.slow

HELM_RUN = os.environ.get("MIRAGE_HELM_RUN") or shutil.which("helm-run")
RUNS = ("simple_mcqa", "simple_classification")
MODEL = "tinygpt2"
#: HELM's statistics that mirage computes alike. (HELM's ``logprob`` is not compared: its
#: Hugging Face client logs 0.0 for every generated token, so it is 0 whatever the model.)
METRICS = ("exact_match", "quasi_exact_match")


def _tiny_model(folder: Path) -> None:
    """A GPT-2 of about 100k parameters with a 400-token byte-level BPE tokenizer."""
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    import torch

    rng = random.Random(0)
    words = "the a answer is question yes no even odd positive negative A B C D".split()
    corpus = [" ".join(rng.choice(words) for _ in range(20)) for _ in range(2000)]
    corpus += ["".join(rng.choice(string.printable) for _ in range(200)) for _ in range(200)]
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=400, min_frequency=2, special_tokens=["<|eot|>"])
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token="<|eot|>", eos_token="<|eot|>",
        unk_token="<|eot|>", model_max_length=2048,
    )  # fmt: skip
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=len(tok), n_positions=2048, n_embd=32, n_layer=2, n_head=2,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
    )  # fmt: skip
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)


def _tune(folder: Path, runs: Path, steps: int = 150) -> None:
    """A few steps on the instances HELM asked, the answer flipped 30% of the time, so
    that the tuned model's answers vary, some right and some wrong."""
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    pairs = []
    for state_file in sorted(runs.glob("*/scenario_state.json")):
        for state in json.loads(state_file.read_text())["request_states"]:
            refs = state["instance"]["references"]
            right = next(r["output"]["text"] for r in refs if "correct" in r["tags"])
            wrong = [r["output"]["text"] for r in refs if "correct" not in r["tags"]]
            letters = {v: k for k, v in (state.get("output_mapping") or {}).items()}
            pairs.append((state["request"]["prompt"], right, wrong, letters))
    rng = random.Random(0)
    torch.manual_seed(0)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        prompt, right, wrong, letters = rng.choice(pairs)
        text = rng.choice(wrong) if wrong and rng.random() < 0.3 else right
        answer = " " + letters.get(text, text)
        ids = tok(prompt + answer + tok.eos_token, return_tensors="pt").input_ids[:, -1024:]
        labels = ids.clone()
        labels[:, : -len(tok(answer + tok.eos_token).input_ids)] = -100
        model(ids, labels=labels).loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)


def _helm_run(work: Path, model_dir: Path, n: int) -> Path:
    shutil.rmtree(work / "benchmark_output", ignore_errors=True)
    shutil.rmtree(work / "prod_env", ignore_errors=True)
    entries = [f"{run}:model=huggingface/{MODEL}" for run in RUNS]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = subprocess.run(
        [HELM_RUN, "--run-entries", *entries, "--enable-local-huggingface-models",
         str(model_dir), "--suite", "t", "--max-eval-instances", str(n)],
        cwd=work, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work / "benchmark_output" / "runs" / "t"


def _helm_stat(run: Path, metric: str) -> tuple[dict[str, float], float]:
    """HELM's ``metric`` per instance (unperturbed) and its mean on the test split."""
    per = {}
    for row in json.loads((run / "per_instance_stats.json").read_text()):
        for stat in row["stats"]:
            name = stat["name"]
            if name["name"] == metric and not name.get("perturbation"):
                per[row["instance_id"]] = stat["sum"] / stat["count"]
    (mean,) = [
        s for s in json.loads((run / "stats.json").read_text())
        if s["name"]["name"] == metric and s["name"].get("split") == "test"
        and not s["name"].get("perturbation")
    ]  # fmt: skip
    return per, float(mean["mean"])


@pytest.mark.skipif(HELM_RUN is None, reason="set MIRAGE_HELM_RUN to a helm-run (crfm-helm)")
def test_mirage_score_equals_helms_own_stats_on_a_real_run(tmp_path: Path, monkeypatch) -> None:
    model_dir = tmp_path / MODEL
    _tiny_model(model_dir)
    _tune(model_dir, _helm_run(tmp_path, model_dir, 40))
    runs = _helm_run(tmp_path, model_dir, 40)
    monkeypatch.chdir(tmp_path)
    from miragelab.metrics import compute_metrics

    report = {}
    for run in RUNS:
        folder = runs / f"{run}:model=huggingface_{MODEL}"
        name = folder.name  # the run's own name, colon and all
        assert mirage_code("ingest", "helm", folder, "--out", f"{name}.parquet",
                           "--params", "100000") == 0  # fmt: skip
        assert mirage_code("score", f"{name}.parquet", "--metrics", ",".join(METRICS),
                           "--out", f"{name}.scores.csv") == 0  # fmt: skip
        samples = pd.read_parquet(Path(f"{name}.parquet"))
        scored = pd.read_csv(f"{name}.scores.csv").set_index("metric")["value"]
        mine_all = compute_metrics(samples, list(METRICS))
        for metric in METRICS:
            mine = mine_all[metric].to_numpy()
            per, mean = _helm_stat(folder, metric)
            theirs = np.array([per[str(i)] for i in samples["example_id"]])
            report[(run, metric)] = (int((mine == theirs).sum()), len(mine),
                                     abs(float(scored[metric]) - mean))  # fmt: skip
            np.testing.assert_array_equal(mine, theirs)
            assert float(scored[metric]) == pytest.approx(mean, abs=1e-12)
            assert len(per) == len(samples)
        assert 0 < _helm_stat(folder, "exact_match")[1] < 1  # answers vary: not 0 = 0
    print(report)
