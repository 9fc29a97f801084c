"""The samples table of a trained ladder: greedy answers and exact target log-probs.

For every finished model of a ladder folder, on the first ``n_test`` test
pairs of its task (the same examples for every model):

* ``prediction``: greedy decoding (batched, key/value cache) until ``<eos>``
  or ``max_answer_len + 1`` new tokens; the teacher-forced pass below tells
  where greedy decoding would follow the target, so only what departs from
  it is decoded step by step (:func:`~miragelab.ladder.model.greedy_with_reference`);
* ``target_token_logprobs``: the teacher-forced natural-log probability of
  each *answer digit* given the prompt and the previous answer digits (the
  end token is not part of ``target``, so its probability is not listed).

``example_id`` is ``"a+b"`` (the operand pair), so rows of different models
join on it. A mix (``addmix``) is evaluated on each part's held-out pairs
(:func:`~miragelab.ladder.tasks.heldout_part`), ``n_test`` of each where there
are so many; its rows have the part's task, ``addmix-len<L>``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from miragelab.errors import InputError
from miragelab.ladder.hf import WEIGHTS, load_hf
from miragelab.ladder.model import TinyGPT, greedy_with_reference
from miragelab.ladder.tasks import (
    EOS_ID,
    Task,
    decode_tokens,
    encode_examples,
    get_task,
    heldout_pairs,
    heldout_part,
)
from miragelab.ladder.train import read_manifest
from miragelab.runners.units import Executor, Unit, collect, run_units, shards
from miragelab.tables import SAMPLES, validate_frame

#: examples per forward pass
EVAL_BATCH = 2048
#: examples per unit of work (a whole number of batches, so sharding never changes a batch)
SHARD_SIZE = 2 * EVAL_BATCH


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
        out, lp = greedy_with_reference(model, tokens[lo : lo + batch], p, EOS_ID)
        predictions.extend(decode_tokens(row) for row in out.tolist())
        lp = lp.cpu().numpy()
        for row, n in zip(lp, lengths[lo : lo + batch], strict=True):
            logprobs.append(np.minimum(row[:n], 0.0).tolist())
    return predictions, logprobs


def evaluate_unit(unit: Unit) -> pd.DataFrame:
    """The samples rows of one model on one shard of the held-out examples (a unit's job)."""
    spec = unit.spec
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    task = get_task(spec["task"])
    lo, hi = spec["lo"], spec["hi"]
    if task.mix:  # each part's held-out pairs in turn, the shard's slice of each
        pairs = [heldout_part(task, n, spec["n_test"], spec["seed"]) for n in task.mix]
        a = np.concatenate([pa[lo:hi] for pa, _ in pairs])
        b = np.concatenate([pb[lo:hi] for _, pb in pairs])
        names = [task.part(n) for n, (pa, _) in zip(task.mix, pairs, strict=True)
                 for _ in range(len(pa[lo:hi]))]  # fmt: skip
    else:
        a, b = heldout_pairs(task, spec["n_test"], spec["seed"])
        a, b = a[lo:hi], b[lo:hi]
        names = [task.name] * len(a)
    model = _load_model(spec["model_dir"], spec["device"])
    preds, logprobs = predict(model, task, a, b)
    xs, ys = a.tolist(), b.tolist()
    return pd.DataFrame(
        {
            "task": names,
            "family": spec["family"],
            "model": spec["model"],
            "params": float(spec["params"]),
            "compute_flops": float(spec["flops"]),
            "tokens_trained": float(spec["tokens"]),
            "example_id": [f"{x}{task.op}{y}" for x, y in zip(xs, ys, strict=True)],
            "prompt": [task.prompt(x, y) for x, y in zip(xs, ys, strict=True)],
            "target": [task.answer(x, y) for x, y in zip(xs, ys, strict=True)],
            "prediction": preds,
            "target_token_logprobs": logprobs,
        }
    )


@functools.lru_cache(maxsize=2)
def _load_model(model_dir: str, device: str) -> TinyGPT:
    # units of one model follow each other, so a worker loads each model once
    return load_hf(model_dir).to(device)


def ladder_units(
    ladder_dir: str | os.PathLike[str],
    n_test: int,
    seed: int | None = None,
    device: str = "cpu",
    shard_size: int = SHARD_SIZE,
    threads: int | None = None,
) -> tuple[list[Unit], dict]:
    """One unit per (model, shard of ``n_test`` examples), and the settings they share.

    ``threads``: torch CPU threads wherever a unit runs (default: the worker's).
    """
    folder = Path(ladder_dir)
    manifest = read_manifest(folder)
    if n_test < 1:
        raise InputError(f"must be >= 1, got {n_test}", field="n-test")
    if not manifest["models"]:
        raise InputError("the ladder has no finished model yet", path=folder / "ladder.json")
    task = get_task(manifest["task"])
    split_seed = manifest["seed"] if seed is None else seed
    units = []
    for entry in manifest["models"]:
        model_dir = (folder / entry["path"]).resolve()
        for shard, (lo, hi) in enumerate(shards(n_test, shard_size)):
            spec = {
                "task": task.name,
                "n_test": n_test,
                "seed": split_seed,
                "lo": lo,
                "hi": hi,
                "device": device,
                "threads": threads,
                "model_dir": str(model_dir),
                **{k: entry[k] for k in ("family", "model", "params", "flops", "tokens")},
            }
            units.append(Unit(task.name, entry["model"], shard, spec))
    settings = {
        "source": "ladder",
        "task": task.name,
        "n_test": n_test,
        "seed": split_seed,
        "shard_size": shard_size,
        # a retrained model is a different model: its weights' size and time identify it
        "models": [[u.model, _weights_stamp(u.spec["model_dir"])] for u in units if u.shard == 0],
    }
    return units, settings


def _weights_stamp(model_dir: str) -> list:
    stat = (Path(model_dir) / WEIGHTS).stat()
    return [stat.st_size, stat.st_mtime_ns]


def evaluate_ladder(
    ladder_dir: str | os.PathLike[str],
    n_test: int,
    seed: int | None = None,
    device: str = "cpu",
    parts_dir: str | os.PathLike[str] | None = None,
    executor: Executor | None = None,
    on_done: Callable[[Unit], None] | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    """The validated samples table of every finished model in ``ladder_dir``.

    With ``parts_dir``, every (model, shard) unit writes its parquet part there
    and a rerun skips finished parts (resume after a kill); the table is the
    same either way, in model then example order.
    """
    units, settings = ladder_units(ladder_dir, n_test, seed, device, threads=threads)
    if parts_dir is None:
        frames = []
        for u in units:
            frames.append(evaluate_unit(u))
            if on_done:
                on_done(u)
        return validate_frame(pd.concat(frames, ignore_index=True), SAMPLES, path=ladder_dir)
    run_units(units, evaluate_unit, parts_dir, settings, executor=executor, on_done=on_done)
    return collect(units, parts_dir, SAMPLES)
