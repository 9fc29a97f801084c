"""The ladder on a CUDA device: the GPU preset's sizes train, export and evaluate there.

Run with ``pytest -m gpu`` on a machine with a CUDA device; skipped elsewhere.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from miragelab.ladder.evaluate import evaluate_ladder
from miragelab.ladder.model import GPTConfig, TinyGPT, greedy_decode, greedy_with_reference
from miragelab.ladder.presets import get_preset
from miragelab.ladder.tasks import EOS_ID, encode_examples, get_task, heldout_pairs
from miragelab.ladder.train import read_manifest, train_ladder

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _sharp_cuda_model(seed: int) -> TinyGPT:
    """A random model on the GPU with large weights, so greedy choices are far from ties."""
    model = TinyGPT(GPTConfig(n_layer=2, n_head=2, n_embd=32), seed=seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(10.0)
    return model.to("cuda").eval()


def test_the_gpu_preset_trains_on_cuda_and_evaluates_as_on_the_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM

    # every size of the GPU preset, on a short budget: the path, not the accuracy
    preset = replace(get_preset("gpu"), name="gpu-short", steps=60)
    manifest = train_ladder(tmp_path, "add3", preset, device="cuda")
    assert [m["model"] for m in manifest["models"]] == [
        m["model"] for m in read_manifest(tmp_path)["models"]
    ]
    assert len(manifest["models"]) == len(preset.sizes)
    for m in manifest["models"]:
        assert np.isfinite(m["final_loss"]) and m["final_loss"] < np.log(16)
    cpu = evaluate_ladder(tmp_path, 300, device="cpu")
    cuda = evaluate_ladder(tmp_path, 300, device="cuda")
    assert cpu["example_id"].tolist() == cuda["example_id"].tolist()
    # fp32 on both; greedy choices may flip only at near-ties
    assert (cpu["prediction"] == cuda["prediction"]).mean() >= 0.99
    for a, b in zip(cpu["target_token_logprobs"], cuda["target_token_logprobs"], strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
    # the largest exported model loads with transformers on the device
    largest = tmp_path / manifest["models"][-1]["path"]
    hf = AutoModelForCausalLM.from_pretrained(largest).to("cuda").eval()
    task = get_task("add3")
    a, b = heldout_pairs(task, 300, seed=0)
    tokens = torch.from_numpy(encode_examples(task, a, b)[0]).to("cuda")
    p = task.prompt_len
    with torch.no_grad():
        logp = torch.log_softmax(hf(tokens[:, :-1]).logits[:, p - 1 :].double(), dim=-1)
    expected = logp.gather(-1, tokens[:, p:, None])[..., 0].cpu().numpy()
    rows = cuda[cuda["model"] == manifest["models"][-1]["model"]]
    targets = rows["target"].str.len()
    for lp, ref, n in zip(rows["target_token_logprobs"], expected, targets, strict=True):
        np.testing.assert_allclose(lp, ref[:n], rtol=0, atol=1e-4)


def test_the_reference_pass_equals_plain_greedy_decoding_on_cuda() -> None:
    model = _sharp_cuda_model(seed=5)
    prompts = torch.randint(2, 15, (256, 6), generator=torch.Generator().manual_seed(2))
    prompts = prompts.to("cuda")
    plain = greedy_decode(model, prompts, 5, EOS_ID, use_cache=False)
    # references: the greedy answer's first k tokens, then the end token; each k replays
    # the captured pass on new references, and 100 rows replay it padded to 128
    for k in range(5):
        ref = torch.zeros_like(plain)
        ref[:, :k], ref[:, k] = plain[:, :k], EOS_ID
        tokens = torch.cat([prompts, ref], dim=1)
        for rows in (slice(None), slice(0, 100)):
            out, logprobs = greedy_with_reference(model, tokens[rows], 6, EOS_ID)
            assert torch.equal(out, plain[rows])
            eager_out, eager_logprobs = greedy_with_reference(
                model, tokens[rows], 6, EOS_ID, graph=False
            )
            assert torch.equal(eager_out, out)
            torch.testing.assert_close(logprobs, eager_logprobs, rtol=0, atol=1e-6)
    assert torch.equal(greedy_decode(model, prompts, 5, EOS_ID), plain)


def test_graph_replays_give_the_eager_answers_for_every_batch_and_follow_moved_weights() -> None:
    model = _sharp_cuda_model(seed=7)
    gen = torch.Generator().manual_seed(3)
    for batch in (1, 16, 16, 128, 1, 16):  # repeated shapes replay a captured graph
        prompts = torch.randint(2, 15, (batch, 8), generator=gen).to("cuda")
        eager = greedy_decode(model, prompts, 6, EOS_ID, graph=False)
        assert torch.equal(greedy_decode(model, prompts, 6, EOS_ID, graph=True), eager)
        assert torch.equal(greedy_decode(model, prompts, 6, EOS_ID, use_cache=False), eager)
    assert len(model.__dict__["_graphs"]) == 3
    # weights moved to new memory: the old graphs would read freed memory; new ones are made
    before = greedy_decode(model, prompts, 6, EOS_ID)
    model = model.cpu()
    with torch.no_grad():
        model.transformer.wte.weight.mul_(-1.0)
    model = model.to("cuda")
    after = greedy_decode(model, prompts, 6, EOS_ID)
    assert torch.equal(after, greedy_decode(model, prompts, 6, EOS_ID, graph=False))
    assert not torch.equal(after, before)
