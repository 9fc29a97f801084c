"""`mirage serve`: OpenAI-compatible answers, loopback by default, and lm-eval-harness agreement.

The agreement test evaluates one checkpoint three ways: `mirage eval --model
hf`, `mirage serve` + `mirage eval --model openai`, and lm-eval-harness's own
`local-completions` client against `mirage serve` (in a subprocess, offline,
a local JSONL task through `--include_path`, read back from `--log_samples`).
"""

from __future__ import annotations

import inspect
import json
import math
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from test_eval_hf import (
    GEN_ROWS,
    MC_ROWS,
    build_llama,
    mirage,
    reference_generate,
    reference_logprobs,
    train_tiny_gpt,
    write_jsonl,
    write_ladder,
)

from miragelab.cli.eval import serve_command
from miragelab.runners.hf import HFModel
from miragelab.runners.serve import DEFAULT_HOST, create_app, running
from miragelab.tables import SAMPLES, read_table

ADD_ROWS = [
    {"id": "a", "prompt": "12+34=", "target": "46"},
    {"id": "b", "prompt": "99+1=", "target": "100"},
    {"id": "c", "prompt": "5+5=", "target": "10"},
]
ADD_MC = [
    {"prompt": "12+34=", "choices": ["46", "47", "56"], "answer": 0},
    {"prompt": "50+50=", "choices": ["10", "100"], "answer": 1},
]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    root = tmp_path_factory.mktemp("models")
    return {"llama": build_llama(root / "llama"), "gpt": train_tiny_gpt(root / "gpt", steps=30)}


@pytest.fixture(scope="module")
def llama_url(models: dict[str, Path]) -> Iterator[str]:
    with running(create_app(HFModel(models["llama"]), "llama")) as url:
        yield url


def _post(url: str, **body: object) -> httpx.Response:
    return httpx.post(f"{url}/completions", json={"model": "llama", **body}, timeout=60)


# --------------------------------------------------------------------------- binding


def test_default_host_is_loopback() -> None:
    assert DEFAULT_HOST == "127.0.0.1"
    host = inspect.signature(serve_command).parameters["host"].default
    assert host == "127.0.0.1"
    from miragelab.runners.serve import serve

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as the kernel lists them) of TCP sockets listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.append(address)
    return found


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads Linux's socket table")
def test_serve_command_binds_loopback_only_by_default(models: dict[str, Path]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "miragelab", "serve", str(models["gpt"]), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        line = proc.stdout.readline().strip() if ready else ""
        if not line.startswith("serving gpt at http://127.0.0.1:"):
            proc.terminate()
            pytest.fail(f"no ready line: {line!r} {proc.communicate(timeout=30)[1][-2000:]}")
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        assert _listening(port) == ["0100007F"]  # 127.0.0.1, and no 0.0.0.0 or :: socket
        models_list = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=30).json()
        assert [m["id"] for m in models_list["data"]] == ["gpt"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_running_binds_loopback(models: dict[str, Path]) -> None:
    with running(create_app(HFModel(models["gpt"]), "gpt")) as url:
        assert url.startswith("http://127.0.0.1:")


# --------------------------------------------------------------------------- protocol


def test_echo_scores_every_prompt_token_against_a_forward_pass(
    llama_url: str, models: dict[str, Path]
) -> None:
    prompt, target = "The capital of France is", " Paris."
    answer = _post(llama_url, prompt=prompt + target, max_tokens=0, echo=True, logprobs=1)
    assert answer.status_code == 200, answer.text
    choice = answer.json()["choices"][0]
    lp = choice["logprobs"]
    assert choice["text"] == prompt + target and choice["finish_reason"] == "length"
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None  # the BOS
    # token strings laid end to end give the text; offsets are where each starts
    assert "".join(lp["tokens"]) == prompt + target
    assert lp["text_offset"] == [sum(map(len, lp["tokens"][:i])) for i in range(len(lp["tokens"]))]
    whole = reference_logprobs(models["llama"], "", prompt + target)  # every token after BOS
    np.testing.assert_allclose(lp["token_logprobs"][1:], whole, rtol=0, atol=1e-4)
    for value, top in zip(lp["token_logprobs"][1:], lp["top_logprobs"][1:], strict=True):
        assert max(top.values()) >= value - 1e-9


def test_all_prompt_shapes_give_the_same_numbers(llama_url: str, models: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(models["llama"], local_files_only=True)
    texts = ["The capital of Italy is Rome", "Two plus two is four"]
    ids = [tok(t).input_ids for t in texts]
    shapes = [texts, ids, texts[0], ids[0]]
    results = []
    for prompt in shapes:
        answer = _post(llama_url, prompt=prompt, max_tokens=0, echo=True, logprobs=1)
        assert answer.status_code == 200, answer.text
        results.append([c["logprobs"]["token_logprobs"] for c in answer.json()["choices"]])
    assert results[0] == results[1]
    assert results[2] == results[3] == results[0][:1]


def test_greedy_generation_with_stop_and_lm_eval_shape(
    llama_url: str, models: dict[str, Path]
) -> None:
    prompt = "The capital of Spain is"
    plain = _post(llama_url, prompt=prompt, max_tokens=8, temperature=0, seed=1234).json()
    text = plain["choices"][0]["text"]
    assert text == reference_generate(models["llama"], prompt, 8, [])
    cut = _post(llama_url, prompt=prompt, max_tokens=8, temperature=0, stop=[text[2:4]]).json()
    assert cut["choices"][0]["text"] == text.split(text[2:4])[0]
    assert cut["choices"][0]["finish_reason"] == "stop"
    # what lm-eval's local-completions sends for a log-likelihood: echo with one new token
    lm = _post(llama_url, prompt=[[0, 5, 6, 7]], max_tokens=1, echo=True, logprobs=1).json()
    lp = lm["choices"][0]["logprobs"]
    assert len(lp["token_logprobs"]) == 5 and lp["token_logprobs"][0] is None
    # the new token is the greedy one: its log-prob is the best of its position
    assert lp["token_logprobs"][-1] == pytest.approx(max(lp["top_logprobs"][-1].values()))
    assert lm["usage"] == {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}


def test_an_end_token_is_listed_in_the_logprobs_but_not_the_text(models: dict[str, Path]) -> None:
    # the trained GPT ends "12+34=46" (or another answer) with <eos>; lm-eval drops the
    # last listed token as the generated one, so it must be there even when it is <eos>
    with running(create_app(HFModel(models["gpt"]), "gpt")) as url:
        body = {"model": "gpt", "prompt": "12+34=46", "max_tokens": 1, "echo": True, "logprobs": 1}
        answer = httpx.post(f"{url}/completions", json=body, timeout=60).json()
        greedy = httpx.post(
            f"{url}/completions", json={"model": "gpt", "prompt": "12+34=", "max_tokens": 6}
        ).json()
    (choice,) = answer["choices"]
    assert len(choice["logprobs"]["token_logprobs"]) == len("12+34=46") + 1
    assert choice["finish_reason"] == "stop" and choice["text"] == "12+34=46"
    assert choice["logprobs"]["tokens"][-1] == ""  # <eos>: listed, no text
    assert "<eos>" in choice["logprobs"]["top_logprobs"][-1]
    assert greedy["choices"][0]["finish_reason"] == "stop"
    assert greedy["choices"][0]["text"].isdigit()


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"model": "other", "prompt": "x"}, 404, "does not exist"),
        ({"prompt": "x", "stream": True}, 400, "streaming"),
        ({"prompt": "x", "n": 2}, 400, "n = 1"),
        ({"prompt": [[0, 10**6]]}, 400, "token ids"),
        ({"prompt": ""}, 400, "empty prompt"),
        ({"prompt": "x", "max_tokens": -1}, 400, "max_tokens"),
        ({"prompt": "x", "logprobs": 99}, 400, "logprobs"),
        ({"prompt": "x " * 200, "echo": True, "logprobs": 1, "max_tokens": 0}, 400, "window"),
    ],
)
def test_bad_requests_get_openai_style_errors(
    llama_url: str, body: dict, status: int, words: str
) -> None:
    answer = httpx.post(f"{llama_url}/completions", json={"model": "llama", **body}, timeout=60)
    assert answer.status_code == status
    assert words in answer.json()["error"]["message"]


def test_models_endpoint(llama_url: str) -> None:
    data = httpx.get(f"{llama_url}/models", timeout=30).json()
    assert data["object"] == "list" and data["data"][0]["id"] == "llama"


# --------------------------------------------------------------------------- three paths agree


def _lm_eval(url: str, folder: Path, tasks: dict[str, Path], out: Path, add_bos: bool) -> dict:
    """Run lm-eval-harness's local-completions client; per task, doc id -> response log-probs."""
    include = out / "tasks"
    include.mkdir(parents=True)
    for name, data in tasks.items():
        mc = name.endswith("mc")
        lines = [
            f"task: {name}",
            "dataset_path: json",
            "dataset_kwargs:",
            "  data_files:",
            f"    test: {json.dumps(str(data))}",
            "test_split: test",
            f"output_type: {'multiple_choice' if mc else 'loglikelihood'}",
            "doc_to_text: prompt",
            f"doc_to_target: {'answer' if mc else 'target'}",
            *(["doc_to_choice: choices"] if mc else []),
            'target_delimiter: ""',
            "metric_list:",
            "  - metric: acc",
            "metadata:",
            "  version: 1.0",
        ]
        (include / f"{name}.yaml").write_text("\n".join(lines) + "\n")
    model_args = ",".join(
        [
            "model=served",
            f"base_url={url}/completions",
            f"tokenizer={folder}",
            "tokenizer_backend=huggingface",
            "tokenized_requests=True",
            "max_length=64",
            f"add_bos_token={add_bos}",
        ]
    )
    env = {
        **os.environ,
        "HF_HOME": str(out / "hf-home"),
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    command = [
        sys.executable, "-m", "lm_eval", "run", "--model", "local-completions",
        "--model_args", model_args, "--tasks", ",".join(tasks), "--include_path", str(include),
        "--log_samples", "--output_path", str(out / "results"),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found: dict[str, dict[int, list[float]]] = {}
    for name in tasks:
        (log,) = (out / "results").rglob(f"samples_{name}_*.jsonl")
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        found[name] = {r["doc_id"]: [float(resp[0][0]) for resp in r["resps"]] for r in rows}
    return found


@pytest.mark.parametrize(
    ("model", "gen_rows", "mc_rows", "add_bos"),
    [("llama", GEN_ROWS, MC_ROWS, True), ("gpt", ADD_ROWS, ADD_MC, False)],
)
def test_hf_openai_and_lm_eval_agree_on_target_logprobs(
    model: str,
    gen_rows: list[dict],
    mc_rows: list[dict],
    add_bos: bool,
    models: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = models[model]
    gen = write_jsonl(tmp_path / "gen.jsonl", gen_rows)
    mc = write_jsonl(tmp_path / "mc.jsonl", mc_rows)
    hf_ladder = write_ladder(tmp_path / "hf.csv", [("toy", "served", str(folder), 1e5)])
    api_ladder = write_ladder(tmp_path / "api.csv", [("toy", "served", None, 1e5)])
    tables: dict[str, dict[str, object]] = {"hf": {}, "openai": {}}
    with running(create_app(HFModel(folder), "served")) as url:
        for name, task in (("gen", gen), ("mc", mc)):
            for source, ladder in (("hf", hf_ladder), ("openai", api_ladder)):
                out = tmp_path / f"{source}-{name}.parquet"
                extra = ["--base-url", url] if source == "openai" else []
                code, _, err = mirage(
                    capsys, "eval", "--model", source, "--ladder", ladder, "--task", task,
                    "--out", out, "--max-tokens", "2", *extra,
                )  # fmt: skip
                assert code == 0, err
                tables[source][name] = read_table(out, SAMPLES)
        started = time.monotonic()
        harness = _lm_eval(url, folder, {"mirage_gen": gen, "mirage_mc": mc}, tmp_path, add_bos)
        took = time.monotonic() - started
    hf_gen, api_gen = tables["hf"]["gen"], tables["openai"]["gen"]
    ref_gap = 0.0
    for i, row in enumerate(gen_rows):
        ours = hf_gen["target_token_logprobs"].iloc[i]
        # per token: hf against a plain forward pass, and against the served path
        expected = reference_logprobs(folder, row["prompt"], row["target"])
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-4)
        ref_gap = max(ref_gap, float(np.abs(np.subtract(ours, expected)).max()))
        np.testing.assert_allclose(api_gen["target_token_logprobs"].iloc[i], ours, atol=1e-4)
        # lm-eval reports the sum over the target's tokens
        (total,) = harness["mirage_gen"][i]
        assert total == pytest.approx(math.fsum(ours), abs=1e-4)
    hf_mc, api_mc = tables["hf"]["mc"], tables["openai"]["mc"]
    for i, _ in enumerate(mc_rows):
        ours = hf_mc["choice_logprobs"].iloc[i]
        np.testing.assert_allclose(api_mc["choice_logprobs"].iloc[i], ours, rtol=0, atol=1e-4)
        np.testing.assert_allclose(harness["mirage_mc"][i], ours, rtol=0, atol=1e-4)
    assert hf_gen["prediction"].tolist() == api_gen["prediction"].tolist()
    gaps = {
        "hf-reference": ref_gap,
        "hf-openai": max(
            np.abs(np.subtract(a, b)).max()
            for a, b in zip(
                hf_gen["target_token_logprobs"], api_gen["target_token_logprobs"], strict=True
            )
        ),
        "hf-lm_eval (sums)": max(
            abs(math.fsum(hf_gen["target_token_logprobs"].iloc[i]) - harness["mirage_gen"][i][0])
            for i in range(len(gen_rows))
        ),
        "hf-lm_eval (choices)": max(
            np.abs(np.subtract(hf_mc["choice_logprobs"].iloc[i], harness["mirage_mc"][i])).max()
            for i in range(len(mc_rows))
        ),
    }
    print(f"\n{model}: lm-eval-harness run {took:.1f} s; largest differences {gaps}")
