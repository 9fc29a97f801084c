"""`mirage eval --model hf` against `lm_eval --model hf` on real-sized checkpoints (issue 23).

    python benchmarks/bench_eval.py [--arch gpt2,llama] [--n 100] [--shots 5]
        [--batch-size 16] [--max-tokens 16] [--device cpu] [--out DIR] [--summary PATH]

Builds, in ``--out`` (a temporary folder by default), checkpoints of two
architectures with random weights: a GPT-2-small-shaped model (12 layers,
768 wide, 50,257 tokens: 124M parameters) and a Llama-shaped one (12 layers,
768 wide, grouped keys, 32,000 tokens), with a byte-level BPE tokenizer trained
here (its vocabulary filled to the model's with unused tokens). Two tasks of
``--n`` examples, each prompt a ``--shots``-shot preamble and a question:

* multiple choice, four answers of several tokens each (ARC-style: the
  continuation is the answer's text, so every choice costs a pass to lm-eval);
* generation, greedy up to ``--max-tokens`` new tokens or a newline, the same
  stop string and cap on both sides.

Each tool runs as its own process (start-up included) with the same batch
size on the same threads, one after the other, and the script prints the wall
times and their ratio, and checks the numbers: the largest difference between
the two tools' choice log-probs (lm-eval's ``--log_samples``), and the greedy
answers that differ, each with the smallest top-2 logit margin along a plain
``generate`` of that prompt (random weights make near-ties, where float rounding
may pick either token). ``mirage eval`` also computes the targets' log-probs on
the generation task, which lm-eval's ``generate_until`` does not; its time
includes them.

Not a test: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _summary import row, write_summary  # noqa: E402

NAME = "eval"
TARGETS = {"mc": 3.0, "gen": 1.5}
NOUNS = ("apples", "pears", "boats", "stones", "birds", "books", "cars", "coins")
COLOURS = ("red", "green", "blue", "yellow", "small", "old", "heavy", "bright")


def _answer(rng: random.Random, value: int) -> str:
    return f" {value} {rng.choice(COLOURS)} {rng.choice(NOUNS)}"


def _question(rng: random.Random) -> tuple[str, int]:
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    where = rng.choice(("in the garden", "on the table", "at the market", "in the old house"))
    return f"Question: There are {a} and then {b} more {where}. How many are there?", a + b


def make_tasks(n: int, shots: int, seed: int = 0) -> tuple[list[dict], list[dict], str]:
    """The multiple-choice and generation rows (one preamble shared by every prompt)."""
    rng = random.Random(seed)
    preamble = ""
    for _ in range(shots):
        text, value = _question(rng)
        preamble += f"{text}\nAnswer:{_answer(rng, value)}\n\n"
    mc, gen = [], []
    for i in range(n):
        text, value = _question(rng)
        right = _answer(rng, value)
        wrong = [_answer(rng, value + d) for d in rng.sample((-11, -2, -1, 1, 3, 10), 3)]
        choices = [right, *wrong]
        rng.shuffle(choices)
        prompt = f"{preamble}{text}\nAnswer:"
        mc.append({"id": i, "prompt": prompt, "choices": choices, "answer": choices.index(right)})
        gen.append({"id": i, "prompt": prompt, "target": right})
    corpus = preamble + "".join(r["prompt"] + r["target"] + "\n" for r in gen)
    return mc, gen, corpus


def build_tokenizer(corpus: str, vocab: int, folder: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([corpus], trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>"
    )
    # unused tokens up to the model's vocabulary, so that every id decodes
    fast.add_tokens([f"<unused{i}>" for i in range(vocab - len(fast))])
    fast.save_pretrained(folder)


def build_model(arch: str, corpus: str, folder: Path) -> int:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    if arch == "gpt2":
        config = GPT2Config(n_layer=12, n_head=12, n_embd=768, vocab_size=50257, n_positions=1024)
        model = GPT2LMHeadModel(config)
    else:
        config = LlamaConfig(
            vocab_size=32000,
            hidden_size=768,
            intermediate_size=2048,
            num_hidden_layers=12,
            num_attention_heads=12,
            num_key_value_heads=4,
            max_position_embeddings=2048,
            bos_token_id=0,
            eos_token_id=0,
        )
        model = LlamaForCausalLM(config)
    config.bos_token_id = config.eos_token_id = 0
    build_tokenizer(corpus, config.vocab_size, folder)
    model.eval().save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def write_lm_eval_task(folder: Path, name: str, data: Path, mc: bool, max_tokens: int) -> None:
    lines = [
        f"task: {name}",
        "dataset_path: json",
        "dataset_kwargs:",
        "  data_files:",
        f"    test: {json.dumps(str(data))}",
        "test_split: test",
        "doc_to_text: prompt",
        'target_delimiter: ""',
        "metadata:",
        "  version: 1.0",
    ]
    if mc:
        lines += [
            "output_type: multiple_choice",
            "doc_to_target: answer",
            "doc_to_choice: choices",
            "metric_list:",
            "  - metric: acc",
        ]
    else:
        lines += [
            "output_type: generate_until",
            "doc_to_target: target",
            "generation_kwargs:",
            '  until: ["\\n"]',
            f"  max_gen_toks: {max_tokens}",
            "  do_sample: false",
            "metric_list:",
            "  - metric: exact_match",
        ]
    (folder / f"{name}.yaml").write_text("\n".join(lines) + "\n")


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return wall


def lm_eval_samples(root: Path, name: str) -> dict[int, dict]:
    (log,) = root.rglob(f"samples_{name}_*.jsonl")
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return {int(r["doc"]["id"]): r for r in rows}


def min_margin(folder: Path, prompt: str, max_tokens: int) -> float:
    """The smallest top-2 logit gap along a plain greedy ``generate`` of ``prompt``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    ids = tok(prompt, return_tensors="pt").input_ids
    with torch.inference_mode():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_tokens,
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
            pad_token_id=0,
        )
    gaps = [float(s[0].topk(2).values.diff().abs()) for s in out.scores]
    return min(gaps)


def run_arch(arch: str, args: argparse.Namespace, root: Path) -> list[dict]:
    import pandas as pd

    folder = root / arch
    mc, gen, corpus = make_tasks(args.n, args.shots)
    params = build_model(arch, corpus, folder)
    data = root / "data"
    data.mkdir(exist_ok=True)
    include = root / "lm_eval_tasks"
    include.mkdir(exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env["TRANSFORMERS_OFFLINE"] = "1"
    ladder = root / f"ladder_{arch}.csv"
    ladder.write_text(f"family,model,params,path\nbench,{arch},{params},{folder}\n")
    print(f"\n{arch}: {params / 1e6:.0f}M parameters, {args.n} examples, {args.shots}-shot",
          file=sys.stderr)  # fmt: skip
    rows = []
    for kind, items in (("mc", mc), ("gen", gen)):
        name = f"bench_{kind}"
        path = data / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in items))
        write_lm_eval_task(include, name, path, kind == "mc", args.max_tokens)
        out = root / f"lm_eval_{arch}_{kind}"
        lm_eval = [
            sys.executable, "-m", "lm_eval", "run", "--model", "hf",
            "--model_args", f"pretrained={folder},dtype=float32", "--device", args.device,
            "--tasks", name, "--include_path", str(include), "--batch_size",
            str(args.batch_size), "--log_samples", "--output_path", str(out),
        ]  # fmt: skip
        samples = root / f"mirage_{arch}_{kind}.parquet"
        mirage = [
            sys.executable, "-m", "miragelab", "eval", "--model", "hf", "--ladder", str(ladder),
            "--task", str(path), "--out", str(samples), "--batch-size", str(args.batch_size),
            "--device", args.device, "--max-tokens", str(args.max_tokens), "--stop", "\\n",
        ]  # fmt: skip
        t_lm = timed(lm_eval, env)
        t_ours = timed(mirage, env)
        ours = pd.read_parquet(samples).set_index("example_id")
        theirs = lm_eval_samples(out, name)
        ratio = t_lm / t_ours
        print(f"  {kind}: lm_eval {t_lm:.1f} s, mirage eval {t_ours:.1f} s: {ratio:.2f}x "
              f"(target >= {TARGETS[kind]}x)", file=sys.stderr)  # fmt: skip
        rows.append(
            row(
                NAME,
                f"{arch} {kind}: mirage eval vs lm_eval",
                t_ours,
                "s",
                baseline=t_lm,
                baseline_name="lm_eval --model hf",
                ratio=ratio,
                target=f">= {TARGETS[kind]}x",
                met=ratio >= TARGETS[kind],
            )  # fmt: skip
        )
        if kind == "mc":
            worst = 0.0
            for i, sample in theirs.items():
                lm_lps = [float(r[0][0]) for r in sample["resps"]]
                mine = list(ours.loc[str(i), "choice_logprobs"])
                worst = max(worst, max(abs(a - b) for a, b in zip(lm_lps, mine, strict=True)))
            print(f"  mc: largest |choice log-prob difference| {worst:.2e}", file=sys.stderr)
            rows.append(row(NAME, f"{arch} mc: max |log-prob difference|", worst, "nats",
                            target="<= 1e-4", met=worst <= 1e-4))  # fmt: skip
        else:
            differ = []
            for i, sample in theirs.items():
                answer = sample["resps"][0][0]
                mine = ours.loc[str(i), "prediction"]
                if answer.split("\n")[0] != mine:
                    differ.append(i)
            margins = [min_margin(folder, gen[i]["prompt"], args.max_tokens) for i in differ]
            ties = sum(m < 1e-3 for m in margins)
            print(f"  gen: {len(theirs) - len(differ)} of {len(theirs)} answers identical; "
                  f"{len(differ)} differ, {ties} of them at a near-tie (top-2 margin < 1e-3)",
                  file=sys.stderr)  # fmt: skip
            rows.append(row(NAME, f"{arch} gen: answers differing off a near-tie",
                            len(differ) - ties, "answers", target="0",
                            met=len(differ) == ties))  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="gpt2,llama", help="gpt2, llama or both")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--summary", type=Path, default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        for arch in args.arch.split(","):
            if arch not in ("gpt2", "llama"):
                sys.exit(f"unknown --arch {arch!r}: use gpt2 and/or llama")
            rows += run_arch(arch, args, root)
    wall = time.perf_counter() - start
    print(f"\nbench_eval: {wall:.0f} s in all", file=sys.stderr)
    rows.append(row(NAME, "benchmark wall time", wall, "s"))
    write_summary(args.summary, rows)


if __name__ == "__main__":
    main()
