"""`mirage eval --model hf`: local checkpoints against an independent forward pass and `generate`.

Two architectures: our tiny GPT exported with ``export_hf`` (a character-level
tokenizer, briefly trained on 2-digit addition so it answers and stops at its
end token), and a 2-layer ``LlamaForCausalLM`` built here from ``LlamaConfig``
with a byte-level BPE tokenizer that adds a BOS token (words carry their
leading space, so lm-eval-harness's whitespace rule matters).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from miragelab.cli import main
from miragelab.ladder.hf import export_hf, load_hf
from miragelab.ladder.model import GPTConfig, TinyGPT
from miragelab.ladder.tasks import PAD_ID, encode_examples, get_task, heldout_pairs
from miragelab.tables import SAMPLES, read_table

BAD = Path(__file__).parent / "fixtures" / "bad" / "eval"

CORPUS = [
    "The capital of France is Paris.",
    "The capital of Italy is Rome.",
    "The capital of Spain is Madrid.",
    "Two plus two is four, and three plus three is six.",
    "Question: what colour is the sky? Answer: blue.",
]
GEN_ROWS = [
    {"id": "fr", "prompt": "The capital of France is", "target": " Paris"},
    {"id": "it", "prompt": "The capital of Italy is ", "target": "Rome."},  # space moves
    {"id": "sum", "prompt": "Two plus two is", "target": " four, and three"},
    {"id": "sky", "prompt": "Question: what colour is the sky? Answer:", "target": " blue."},
]
MC_ROWS = [
    {"prompt": "The capital of France is", "choices": [" Paris", " Rome", " Madrid"], "answer": 0},
    {"prompt": "The capital of Spain is", "choices": [" Rome", " Madrid"], "answer": 1},
    {"prompt": "Two plus two is", "choices": [" four", " six", " blue"], "answer": 0},
]


# --------------------------------------------------------------------------- models


def train_tiny_gpt(path: Path, steps: int = 60) -> Path:
    """A tiny GPT trained for a few steps on add2: it answers digits and ends with <eos>."""
    task = get_task("add2")
    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=64), seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        a, b = rng.integers(10, 100, 64), rng.integers(10, 100, 64)
        x = torch.from_numpy(encode_examples(task, a, b)[0])
        y = x[:, 1:].clone()
        y[:, : task.prompt_len - 1] = -100
        y[y == PAD_ID] = -100
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return export_hf(model.eval(), path)


def build_llama(path: Path) -> Path:
    """A 2-layer Llama with a byte-level BPE tokenizer (BOS added), written offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 10, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    fast.save_pretrained(path)
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # larger weights: peaked distributions, greedy far from ties
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(8.0)
    model.save_pretrained(path)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_ladder(path: Path, rows: list[tuple[str, str, str | None, float]]) -> Path:
    header = "family,model,params" + (",path" if rows[0][2] is not None else "")
    lines = [header]
    for family, model, folder, params in rows:
        lines.append(f"{family},{model},{params:g}" + (f",{folder}" if folder else ""))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    root = tmp_path_factory.mktemp("checkpoints")
    return {"gpt": train_tiny_gpt(root / "gpt"), "llama": build_llama(root / "llama")}


def mirage(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process (no second torch import); exit code, stdout, stderr."""
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --------------------------------------------------------------------------- independent numbers


def reference_logprobs(folder: Path, prompt: str, continuation: str) -> list[float]:
    """Target-token log-probs from a plain forward pass (float64 log-softmax).

    The target tokens are found from the tokenizer's character offsets (the
    tokens that start at or after the prompt without its trailing spaces), not
    by counting the prompt's tokens as the code under test does.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    enc = tok(prompt + continuation, return_offsets_mapping=True)
    ids = enc.input_ids
    boundary = len(prompt.rstrip())
    first = next(i for i, (s, e) in enumerate(enc.offset_mapping) if e > s and s >= boundary)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    return [logp[i - 1, ids[i]].item() for i in range(first, len(ids))]


def reference_generate(folder: Path, prompt: str, max_new: int, stop: list[str]) -> str:
    """``model.generate(do_sample=False)`` on one prompt, cut at the end token and stop strings."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    ids = tok(prompt, return_tensors="pt").input_ids
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_new,
        do_sample=False,
        pad_token_id=tok.pad_token_id,
    )[0, ids.shape[1] :].tolist()
    if tok.eos_token_id in out:
        out = out[: out.index(tok.eos_token_id)]
    text = tok.decode(out, skip_special_tokens=True)
    for s in stop:
        text = text.split(s)[0]
    return text


# --------------------------------------------------------------------------- agreement


def test_hf_logprobs_equal_an_independent_forward_pass(
    checkpoints: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task = write_jsonl(tmp_path / "capitals.jsonl", GEN_ROWS)
    ladder = write_ladder(
        tmp_path / "ladder.csv", [("toy", "llama", str(checkpoints["llama"]), 1e5)]
    )
    out = tmp_path / "samples.parquet"
    code, stdout, err = mirage(
        capsys, "eval", "--model", "hf", "--ladder", ladder, "--task", task, "--out", out,
        "--batch-size", "3", "--max-tokens", "4",
    )  # fmt: skip
    assert code == 0, err
    samples = read_table(out, SAMPLES).set_index("example_id")
    for row in GEN_ROWS:
        expected = reference_logprobs(checkpoints["llama"], row["prompt"], row["target"])
        got = samples.loc[row["id"], "target_token_logprobs"]
        assert len(got) == len(expected) >= 1
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    assert "wrote 4 samples" in stdout


def test_hf_choice_logprobs_are_sums_over_each_choice(
    checkpoints: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task = write_jsonl(tmp_path / "mc.jsonl", MC_ROWS)
    ladder = write_ladder(
        tmp_path / "ladder.csv", [("toy", "llama", str(checkpoints["llama"]), 1e5)]
    )
    out = tmp_path / "mc.jsonl.out.jsonl"
    code, _, err = mirage(
        capsys, "eval", "--model", "hf", "--ladder", ladder, "--task", task, "--out", out
    )
    assert code == 0, err
    samples = read_table(out, SAMPLES)
    for row, got in zip(MC_ROWS, samples.itertuples(), strict=True):
        sums = [
            math.fsum(reference_logprobs(checkpoints["llama"], row["prompt"], c))
            for c in row["choices"]
        ]
        np.testing.assert_allclose(got.choice_logprobs, sums, rtol=0, atol=1e-4)
        assert got.correct_choice == row["answer"]
        assert got.target == row["choices"][row["answer"]]
        assert got.prediction == row["choices"][int(np.argmax(sums))]


def test_hf_greedy_answers_equal_generate_one_prompt_at_a_time(
    checkpoints: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the GPT on add2 (answers end at <eos>); batches of 4 so left padding is exercised
    ladder = write_ladder(tmp_path / "ladder.csv", [("toy", "gpt", str(checkpoints["gpt"]), 3e4)])
    out = tmp_path / "gpt.parquet"
    code, _, err = mirage(
        capsys, "eval", "--model", "hf", "--ladder", ladder, "--task", "add2", "--limit", "10",
        "--out", out, "--batch-size", "4",
    )  # fmt: skip
    assert code == 0, err
    samples = read_table(out, SAMPLES)
    expected = [reference_generate(checkpoints["gpt"], p, 4, []) for p in samples["prompt"]]
    assert samples["prediction"].tolist() == expected
    assert any(len(t) < 4 for t in expected)  # some answers stopped at the end token
    # prompts of different lengths in one batch: left padding under learned positions
    mixed = [{"prompt": p, "target": "0"} for p in ("1+2=", "12+34=", "5+17=", "99+99=", "7+7=")]
    task = write_jsonl(tmp_path / "mixed.jsonl", mixed)
    code, _, err = mirage(
        capsys, "eval", "--model", "hf", "--ladder", ladder, "--task", task, "--out", out,
        "--batch-size", "5", "--max-tokens", "4",
    )  # fmt: skip
    assert code == 0, err
    expected = [reference_generate(checkpoints["gpt"], r["prompt"], 4, []) for r in mixed]
    assert read_table(out, SAMPLES)["prediction"].tolist() == expected
    # and the Llama with a stop string, prompts of different lengths in one batch
    ladder = write_ladder(tmp_path / "l.csv", [("toy", "llama", str(checkpoints["llama"]), 1e5)])
    task = write_jsonl(tmp_path / "capitals.jsonl", GEN_ROWS)
    code, _, err = mirage(
        capsys, "eval", "--model", "hf", "--ladder", ladder, "--task", task, "--out", out,
        "--max-tokens", "6", "--stop", " ", "--batch-size", "4",
    )  # fmt: skip
    assert code == 0, err
    samples = read_table(out, SAMPLES)
    expected = [reference_generate(checkpoints["llama"], r["prompt"], 6, [" "]) for r in GEN_ROWS]
    assert samples["prediction"].tolist() == expected


def test_builtin_task_gives_the_numbers_of_ladder_eval(
    checkpoints: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from miragelab.ladder.evaluate import predict

    ladder = write_ladder(tmp_path / "ladder.csv", [("toy", "gpt", str(checkpoints["gpt"]), 3e4)])
    out = tmp_path / "s.parquet"
    code, _, err = mirage(
        capsys, "eval", "--model", "hf", "--ladder", ladder, "--task", "add2", "--limit", "40",
        "--out", out,
    )  # fmt: skip
    assert code == 0, err
    samples = read_table(out, SAMPLES)
    task = get_task("add2")
    a, b = heldout_pairs(task, 40, 0)
    predictions, logprobs = predict(load_hf(checkpoints["gpt"]), task, a, b)
    assert samples["example_id"].tolist() == [f"{x}+{y}" for x, y in zip(a, b, strict=True)]
    assert samples["prediction"].tolist() == predictions
    for got, want in zip(samples["target_token_logprobs"], logprobs, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


# --------------------------------------------------------------------------- resume


def test_a_killed_run_resumes_from_its_parts(
    checkpoints: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ladder = write_ladder(
        tmp_path / "ladder.csv",
        [
            ("toy", "gpt", str(checkpoints["gpt"]), 3e4),
            ("toy", "llama", str(checkpoints["llama"]), 1e5),
        ],
    )
    dataset = tmp_path / "dataset"
    # both tokenizers read digits; 8 examples in shards of 3
    args = ["eval", "--model", "hf", "--ladder", ladder, "--task", "add2", "--limit", "8",
            "--out", dataset, "--shard-size", "3", "--max-tokens", "3"]  # fmt: skip
    code, _, err = mirage(capsys, *args)
    assert code == 0, err
    parts = sorted(dataset.rglob("part-*.parquet"))
    assert len(parts) == 6  # 2 models x 3 shards of 8 examples
    first = read_table(parts[0], SAMPLES)
    stamps = {p: p.stat().st_mtime_ns for p in parts}
    lost = parts[4]
    lost.unlink()  # as if the run was killed before this unit finished
    code, _, err = mirage(capsys, *args)
    assert code == 0, err
    assert lost.exists()
    assert all(p.stat().st_mtime_ns == stamps[p] for p in parts if p != lost)
    assert read_table(parts[0], SAMPLES).equals(first)
    # other settings cannot reuse these parts
    code, _, err = mirage(capsys, *args[:-1], "4")
    assert code == 2 and "different run" in err


def test_units_are_json_and_a_shipped_unit_computes_the_same_rows(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    from miragelab.runners.hf import eval_units, evaluate_unit, read_ladder
    from miragelab.runners.tasks import load_task
    from miragelab.runners.units import Unit

    ladder = write_ladder(tmp_path / "ladder.csv", [("toy", "gpt", str(checkpoints["gpt"]), 3e4)])
    entries, columns = read_ladder(ladder)
    backend = {"kind": "hf", "device": "cpu", "dtype": "float32", "batch_size": 4, "add_bos": None}
    units, settings = eval_units(load_task("add2", limit=5), entries, columns, backend, {}, 2)
    assert [u.key for u in units] == [f"task=add2/model=gpt/part-{i:05d}.parquet" for i in range(3)]
    json.dumps(settings)
    shipped = Unit(units[1].task, units[1].model, 1, json.loads(json.dumps(units[1].spec)))
    assert evaluate_unit(shipped).equals(evaluate_unit(units[1]))


# --------------------------------------------------------------------------- bad input

BAD_CASES = {
    "ladder_path_missing.csv": (2, "path"),
    "ladder_path_not_checkpoint.csv": (2, "path"),
    "ladder_params_not_number.csv": (2, "params"),
    "ladder_params_negative.csv": (2, "params"),
    "ladder_unknown_column.csv": (1, "size"),
    "ladder_params_column_missing.csv": (1, "params"),
    "ladder_model_twice.csv": (3, "model"),
    "ladder_same_params.csv": (3, "params"),
    "ladder_step_negative.csv": (2, "step"),
    "ladder_extra_field.csv": (2, None),
    "task_malformed_json.jsonl": (2, None),
    "task_prompt_missing.jsonl": (2, "prompt"),
    "task_prompt_blank.jsonl": (1, "prompt"),
    "task_target_empty.jsonl": (2, "target"),
    "task_target_not_string.jsonl": (1, "target"),
    "task_target_and_choices.jsonl": (1, "target"),
    "task_answer_out_of_range.jsonl": (2, "answer"),
    "task_answer_bool.jsonl": (1, "answer"),
    "task_choices_one.jsonl": (1, "choices"),
    "task_mixed_kinds.jsonl": (3, "choices"),
    "task_id_twice.jsonl": (3, "id"),
    "task_id_float.jsonl": (1, "id"),
    "task_not_object.jsonl": (2, None),
    "task_not_utf8.jsonl": (2, None),
    "task_no_examples.jsonl": (None, None),
}


def test_every_bad_fixture_has_a_case() -> None:
    on_disk = {p.name for p in BAD.iterdir() if p.suffix in (".csv", ".jsonl")}
    assert on_disk == set(BAD_CASES)


def _bad_args(name: str, tmp_path: Path) -> tuple[list[str], Path]:
    bad = BAD / name
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    if name.startswith("ladder_"):
        with_path = "path" in bad.read_text().splitlines()[0].split(",")
        if with_path:
            args = ["--model", "hf", "--ladder", bad, "--task", "add2"]
        else:
            args = ["--model", "openai", "--base-url", "http://127.0.0.1:9/v1", "--ladder", bad]
            args += ["--task", "add2"]
    else:
        ladder = write_ladder(tmp_path / "ladder.csv", [("toy", "m", None, 1e5)])
        args = ["--model", "openai", "--base-url", "http://127.0.0.1:9/v1", "--ladder", ladder]
        args += ["--task", bad]
    return ["eval", *map(str, args), "--out", str(out_dir / "samples.parquet")], out_dir


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_input_is_one_line_exit_2_and_no_output(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line, field = BAD_CASES[name]
    args, out_dir = _bad_args(name, tmp_path)
    code, stdout, err = mirage(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    prefix = f"error: {BAD / name}"
    if line is not None:
        prefix += f", line {line}"
    if field is not None:
        prefix += f", field '{field}'"
    assert lines[0].startswith(prefix + ": "), lines[0]
    assert list(out_dir.iterdir()) == []


def test_bad_input_from_a_real_process(tmp_path: Path) -> None:
    args, out_dir = _bad_args("ladder_path_missing.csv", tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "miragelab", *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {BAD / 'ladder_path_missing.csv'}, line 2, field 'path': 'no-such-checkpoint' "
        "does not exist (paths are local folders; nothing is downloaded)"
    )
    assert "Traceback" not in result.stderr and list(out_dir.iterdir()) == []


def test_a_prompt_the_tokenizer_cannot_encode_names_the_example(
    checkpoints: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task = write_jsonl(
        tmp_path / "t.jsonl", [{"prompt": "1+1=", "target": "2"}, {"prompt": "x+1=", "target": "2"}]
    )
    ladder = write_ladder(tmp_path / "ladder.csv", [("toy", "gpt", str(checkpoints["gpt"]), 3e4)])
    out = tmp_path / "o" / "s.parquet"
    code, _, err = mirage(
        capsys, "eval", "--model", "hf", "--ladder", ladder, "--task", task, "--out", out
    )
    assert code == 2
    assert err.startswith(
        f"error: {task}, line 2, field 'prompt': example '1': cannot be tokenized"
    )
    assert not out.exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_cpu_numbers(
    checkpoints: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ladder = write_ladder(
        tmp_path / "ladder.csv", [("toy", "llama", str(checkpoints["llama"]), 1e5)]
    )
    task = write_jsonl(tmp_path / "t.jsonl", GEN_ROWS)
    frames = []
    for device in ("cpu", "cuda"):
        out = tmp_path / f"{device}.parquet"
        code, _, err = mirage(
            capsys, "eval", "--model", "hf", "--ladder", ladder, "--task", task, "--out", out,
            "--device", device,
        )  # fmt: skip
        assert code == 0, err
        frames.append(read_table(out, SAMPLES))
    for a, b in zip(
        frames[0]["target_token_logprobs"], frames[1]["target_token_logprobs"], strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
