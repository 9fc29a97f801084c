"""Shared-prefix reuse in `mirage eval --model hf`: the numbers of plain forward passes.

A k-shot task's preamble, a question's context and a generation prompt are each
encoded once (``miragelab.runners.prefix``). These tests set that against the
same checkpoint scored with no reuse at all, on both architectures of
``test_eval_hf`` (a GPT-2 with learned positions and a Llama with rotary ones
and grouped keys), with prefixes of different lengths in one batch (left
padding inside the cache) and continuations of different lengths (right
padding).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from test_eval_hf import build_llama, train_tiny_gpt

from miragelab.runners import prefix
from miragelab.runners.hf import HFModel, score_examples
from miragelab.runners.tasks import load_task

SHOTS = "Q: what colour is the sky? A: blue.\nQ: the capital of Italy? A: Rome.\n" * 2
MC = [
    (SHOTS + "Q: the capital of France? A:", [" Paris", " Rome", " Madrid and more"], 0),
    (SHOTS + "Q: two plus two? A:", [" four", " six"], 0),
    (SHOTS + "Q: the capital of Spain, the largest city? A:", [" Madrid", " blue", " x"], 0),
    ("Q: sky? A:", [" blue", " red"], 0),  # shares no preamble with the others
]
GEN = [
    (SHOTS + "Q: the capital of France? A:", " Paris."),
    (SHOTS + "Q: two plus two is? A:", " four."),
    (SHOTS + "Q: what is it? A: ", "Rome."),  # trailing space: the target moves it
    ("Two plus two is", " four, and three"),
]
# the tiny GPT reads digits, + * = only, in a window of 64
DIGIT_SHOTS = "12+34=46*21+21=42*"
DIGIT_MC = [
    (DIGIT_SHOTS + "45+12=", ["57", "58", "6"], 0),
    (DIGIT_SHOTS + "3+4=", ["7", "77"], 0),
    (DIGIT_SHOTS + "99+99=", ["198", "1", "2", "19"], 0),
    ("5+5=", ["10", "11"], 0),
]
DIGIT_GEN = [
    (DIGIT_SHOTS + "45+12=", "57"),
    (DIGIT_SHOTS + "3+4=", "7"),
    (DIGIT_SHOTS + "1+1=", "2"),
    ("5+5=", "10"),
]
ROWS = {"gpt": (DIGIT_MC, DIGIT_GEN), "llama": (MC, GEN)}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    root = tmp_path_factory.mktemp("reuse")
    return {"gpt": train_tiny_gpt(root / "gpt"), "llama": build_llama(root / "llama")}


def _task(tmp_path: Path, rows: list[tuple], name: str):  # noqa: ANN202 - an EvalTask
    import json

    path = tmp_path / f"{name}.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            if len(row) == 3:
                fh.write(json.dumps({"prompt": row[0], "choices": row[1], "answer": row[2]}) + "\n")
            else:
                fh.write(json.dumps({"prompt": row[0], "target": row[1]}) + "\n")
    return load_task(str(path), max_tokens=4, stop=["\n"])


@pytest.mark.parametrize("arch", ["gpt", "llama"])
@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_reuse_gives_the_log_probs_and_answers_of_plain_passes(
    checkpoints: dict[str, Path], tmp_path: Path, arch: str, batch_size: int
) -> None:
    shared = HFModel(checkpoints[arch])
    plain = HFModel(checkpoints[arch], reuse=False)
    assert shared.reuse and not plain.reuse  # else this test compares plain with plain
    for rows, name in zip(ROWS[arch], ("mc", "gen"), strict=True):
        task = _task(tmp_path, rows, name)
        got = score_examples(shared, task, task.examples, batch_size)
        want = score_examples(plain, task, task.examples, batch_size)
        assert got[0] == want[0]  # predictions: the best choice, or the greedy answer
        for a, b in zip(got[1], want[1], strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
        assert (got[2] is None) == (want[2] is None) == (name == "gen")
        for a, b in zip(got[2] or [], want[2] or [], strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_the_shared_preamble_and_contexts_are_encoded_once(checkpoints: dict[str, Path]) -> None:
    lm = HFModel(checkpoints["llama"])
    fed: list[int] = []
    hook = lm.model.register_forward_pre_hook(
        lambda _m, args, kwargs: fed.append(int(kwargs["input_ids"].numel())), with_kwargs=True
    )
    try:
        pairs = []
        for prompt, choices, _ in MC[:3]:
            for choice in choices:
                ctx, tail = lm.encode_pair(prompt, choice)
                pairs.append((ctx + tail, len(ctx)))
        lm.score([p[0] for p in pairs], [p[1] for p in pairs], batch_size=16)
    finally:
        hook.remove()
    whole = sum(len(seq) for seq, _ in pairs)  # what one pass per choice feeds
    preamble = len(lm.encode(SHOTS)) - 2
    # the preamble once, each question once, each choice's tokens but its first once
    assert len(fed) == 3
    assert sum(fed) < whole - 2 * preamble


def test_a_model_that_ignores_positions_is_scored_plainly(checkpoints: dict[str, Path]) -> None:
    # a model whose forward drops position ids gives other numbers with padding inside
    # the cache: the check at load sees it and the model is scored one pass per sequence
    lm = HFModel(checkpoints["gpt"])
    forward = lm.model.forward

    def no_positions(*args, position_ids=None, **kwargs):  # noqa: ANN002, ANN003, ANN202
        return forward(*args, **kwargs)

    no_positions.__signature__ = __import__("inspect").signature(forward)  # type: ignore[attr-defined]
    lm.model.forward = no_positions
    assert not prefix.agrees(lm.model, "cpu", lm.vocab_size)


def test_batches_hold_every_item_once_within_the_budget() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        costs = rng.integers(1, 300, rng.integers(1, 40)).tolist()
        rows = rng.integers(1, 5, len(costs)).tolist()
        budget, cap = int(rng.integers(50, 2000)), int(rng.integers(1, 12))
        batches = prefix.plan_batches(costs, rows, budget, cap)
        assert sorted(i for b in batches for i in b) == list(range(len(costs)))
        for b in batches:
            n = sum(rows[i] for i in b)
            if len(b) > 1:
                assert n <= cap and n * max(costs[i] for i in b) <= budget
        # longest first: a batch never holds an item longer than any of an earlier batch
        firsts = [max(costs[i] for i in b) for b in batches]
        assert firsts == sorted(firsts, reverse=True)


def test_greedy_from_the_cache_equals_generate(checkpoints: dict[str, Path]) -> None:
    lm = HFModel(checkpoints["llama"])
    prompts = [lm.encode(p) for p, _ in GEN]
    shared = lm.generate(prompts, 6, ["\n"], batch_size=4)
    with torch.inference_mode():
        plain = HFModel(checkpoints["llama"], reuse=False).generate(prompts, 6, ["\n"], 4)
    assert [g.text for g in shared] == [g.text for g in plain]
    assert [g.finish_reason for g in shared] == [g.finish_reason for g in plain]


AUTO_CHILD = """
import resource, sys
from miragelab.runners import hf
limit = int(sys.argv[2])
hf.free_memory = lambda device: limit  # the memory 'measured'
lm = hf.HFModel(sys.argv[1])
rows, tokens = hf.batch_limits(lm, {"batch_size": "auto"})
assert tokens * hf.bytes_per_token(lm.model) <= hf.MEMORY_SHARE * limit, tokens
width = lm.max_length
seqs = [[(7 * i + j) % 300 + 3 for j in range(width)] for i in range(tokens // width)]
lm.score(seqs[:2], [width // 2] * 2, rows, 0, tokens)  # the first pass's own allocations
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
for reuse in (True, False):  # one batch of the whole budget, with and without reuse
    lm.reuse = reuse
    lm.score(seqs, [width // 2] * len(seqs), rows, 0, tokens)
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
print(tokens, grown)
"""


def test_batch_size_auto_stays_within_the_memory_it_measures(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    import subprocess
    import sys

    limit = 96 * 2**20
    script = tmp_path / "auto.py"
    script.write_text(AUTO_CHILD)
    done = subprocess.run(
        [sys.executable, str(script), str(checkpoints["llama"]), str(limit)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    tokens, grown = map(int, done.stdout.split())
    assert tokens >= 10 * 128  # the budget is a real batch, not a floor of one window
    assert grown <= limit  # the batch of the whole budget fit what was measured


def test_the_command_line_gives_the_same_samples_every_way(
    checkpoints: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_eval_hf import mirage, write_ladder

    from miragelab.tables import SAMPLES, read_table

    ladder = write_ladder(tmp_path / "l.csv", [("toy", "llama", str(checkpoints["llama"]), 1e5)])
    task = _task(tmp_path, MC, "mc")
    tables = {}
    for name, extra in (
        ("default", []),
        ("auto", ["--batch-size", "auto"]),
        ("plain", ["--no-reuse", "--batch-size", "2", "--batch-tokens", "64"]),
    ):
        out = tmp_path / f"{name}.parquet"
        code, stdout, err = mirage(
            capsys, "eval", "--model", "hf", "--ladder", ladder, "--task", task.ref["path"],
            "--out", out, *extra,
        )  # fmt: skip
        assert code == 0, err
        assert "tokens at" in stdout
        tables[name] = read_table(out, SAMPLES)
    for name in ("auto", "plain"):
        assert tables[name]["prediction"].tolist() == tables["default"]["prediction"].tolist()
        base = tables["default"]["choice_logprobs"]
        for a, b in zip(tables[name]["choice_logprobs"], base, strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    assert set(tables["default"]["dtype"]) == {"float32"}
    for bad, message in (("0", "must be >= 1"), ("lots", "'auto'"), ("70000", "<= 65,536")):
        code, _, err = mirage(
            capsys, "eval", "--model", "hf", "--ladder", ladder, "--task", task.ref["path"],
            "--out", tmp_path / "x.parquet", "--batch-size", bad,
        )  # fmt: skip
        assert code == 2 and "batch-size" in err and message in err, err
        assert len(err.strip().splitlines()) == 1
        assert not (tmp_path / "x.parquet").exists()
