"""The samples table of a trained ladder: greedy answers and exact target log-probs.

For every finished model of a ladder folder, on the first ``n_test`` test
pairs of its task (the same examples for every model):

* ``prediction``: greedy decoding (batched, key/value cache) until ``<eos>``
  or ``max_answer_len + 1`` new tokens;
* ``target_token_logprobs``: the teacher-forced natural-log probability of
  each *answer digit* given the prompt and the previous answer digits (the
  end token is not part of ``target``, so its probability is not listed).

``example_id`` is ``"a+b"`` (the operand pair), so rows of different models
join on it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from miragelab.errors import InputError
from miragelab.ladder.hf import load_hf
from miragelab.ladder.model import TinyGPT, greedy_decode, target_logprobs
from miragelab.ladder.tasks import (
    EOS_ID,
    Task,
    decode_tokens,
    encode_examples,
    get_task,
    heldout_pairs,
)
from miragelab.ladder.train import read_manifest
from miragelab.tables import SAMPLES, validate_frame

#: examples per forward pass
EVAL_BATCH = 2048


def predict(
    model: TinyGPT, task: Task, a: np.ndarray, b: np.ndarray, batch: int = EVAL_BATCH
) -> tuple[list[str], list[list[float]]]:
    """Greedy answers and per-digit target log-probs of ``model`` on pairs ``(a, b)``."""
    tokens_np, lengths = encode_examples(task, a, b)
    tokens = torch.from_numpy(tokens_np).to(model.transformer.wte.weight.device)
    p = task.prompt_len
    predictions: list[str] = []
    logprobs: list[list[float]] = []
    for lo in range(0, len(tokens), batch):
        chunk = tokens[lo : lo + batch]
        out = greedy_decode(model, chunk[:, :p], task.max_answer_len + 1, EOS_ID)
        predictions.extend(decode_tokens(row) for row in out.tolist())
        lp = target_logprobs(model, chunk, p).cpu().numpy()
        for row, n in zip(lp, lengths[lo : lo + batch], strict=True):
            logprobs.append(np.minimum(row[:n], 0.0).tolist())
    return predictions, logprobs


def evaluate_ladder(
    ladder_dir: str | os.PathLike[str], n_test: int, seed: int | None = None, device: str = "cpu"
) -> pd.DataFrame:
    """The validated samples table of every finished model in ``ladder_dir``."""
    folder = Path(ladder_dir)
    manifest = read_manifest(folder)
    if n_test < 1:
        raise InputError(f"must be >= 1, got {n_test}", field="n-test")
    if not manifest["models"]:
        raise InputError("the ladder has no finished model yet", path=folder / "ladder.json")
    task = get_task(manifest["task"])
    split_seed = manifest["seed"] if seed is None else seed
    a, b = heldout_pairs(task, n_test, split_seed)
    prompts = [task.prompt(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    targets = [task.answer(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    ids = [f"{x}{task.op}{y}" for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    frames = []
    for entry in manifest["models"]:
        model = load_hf(folder / entry["path"]).to(device)
        preds, logprobs = predict(model, task, a, b)
        frames.append(
            pd.DataFrame(
                {
                    "task": task.name,
                    "family": entry["family"],
                    "model": entry["model"],
                    "params": float(entry["params"]),
                    "compute_flops": float(entry["flops"]),
                    "tokens_trained": float(entry["tokens"]),
                    "example_id": ids,
                    "prompt": prompts,
                    "target": targets,
                    "prediction": preds,
                    "target_token_logprobs": logprobs,
                }
            )
        )
    return validate_frame(pd.concat(frames, ignore_index=True), SAMPLES, path=folder)
