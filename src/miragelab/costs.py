"""What evaluating a ladder costs: FLOPs per sample, GPU-hours, and local measurements.

The model is the usual one for a decoder-only transformer: a forward pass costs
about ``2 * N`` FLOPs per token processed (a multiply and an add per
parameter; attention over short contexts is left out, as in
:mod:`miragelab.ladder.presets`). Evaluating one sample processes
``tokens_per_sample`` tokens -- the prompt, the generated answer and, for
teacher-forced log-probs, the prompt and target once more -- so

    FLOPs(model, task) = 2 * N * tokens_per_sample * samples
    GPU-seconds        = FLOPs / (peak FLOP/s * utilisation)

``utilisation`` (achieved / peak) is the assumption that matters: prefill and
teacher forcing run large matrix products and reach 30-60% of peak on a
modern GPU, token-by-token decoding is bound by memory bandwidth and reaches
far less unless many sequences are batched (which vLLM does). Measure it:
:func:`measure_ladder` times ``mirage ladder eval`` units on a trained ladder
and reports samples/s and the achieved FLOP/s beside a measured matrix-product
FLOP/s of the same device.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from miragelab.errors import InputError

#: dense bf16 tensor-core peaks from the vendors' data sheets, FLOP/s
GPU_PEAK_FLOPS = {
    "H100-SXM": 989e12,
    "H100-PCIe": 756e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
}
#: memory per GPU, bytes
GPU_MEMORY = {
    "H100-SXM": 80e9,
    "H100-PCIe": 80e9,
    "A100": 80e9,
    "L40S": 48e9,
    "L4": 24e9,
}


@dataclass(frozen=True)
class Task:
    """An evaluation task as the cost model sees it: how many samples, how long each."""

    samples: int
    tokens_per_sample: float


def inference_flops(params: float | np.ndarray, tokens: float | np.ndarray) -> np.ndarray:
    """Forward-pass FLOPs for ``tokens`` tokens through a model of ``params`` parameters."""
    return 2.0 * np.asarray(params, dtype=float) * np.asarray(tokens, dtype=float)


def gpus_per_model(
    params: float, gpu_memory: float = 80e9, bytes_per_param: float = 2.0, overhead: float = 1.3
) -> int:
    """GPUs one copy of a model needs: weights (``bytes_per_param``, 2 for bf16) times
    ``overhead`` for the KV cache and activations, over the memory of one GPU."""
    return max(1, math.ceil(params * bytes_per_param * overhead / gpu_memory))


def plan_cost(
    params: Mapping[str, float],
    tasks: Mapping[str, Task],
    gpu_flops: float = GPU_PEAK_FLOPS["H100-SXM"],
    utilization: float = 0.3,
    gpu_memory: float = GPU_MEMORY["H100-SXM"],
    bytes_per_param: float = 2.0,
) -> pd.DataFrame:
    """GPU-hours of every (model, task) of an evaluation, one row each.

    Columns: ``model, params, task, samples, tokens_per_sample, flops,
    gpu_hours, gpus, wall_hours``; ``gpus`` is the GPUs one copy of the model
    needs (tensor parallel above one GPU's memory), ``wall_hours`` the time on
    that many GPUs. The total GPU-hours is ``frame["gpu_hours"].sum()``.
    """
    if not gpu_flops > 0:
        raise InputError(f"must be > 0, got {gpu_flops}", field="gpu-flops")
    if not 0 < utilization <= 1:
        raise InputError(f"must be in (0, 1], got {utilization}", field="utilization")
    if not params or not tasks:
        raise InputError("give at least one model and one task", field="params")
    rows = []
    for model, n in params.items():
        if not n > 0:
            raise InputError(f"model {model!r}: params must be > 0, got {n}", field="params")
        gpus = gpus_per_model(n, gpu_memory, bytes_per_param)
        for name, task in tasks.items():
            if task.samples < 0 or not task.tokens_per_sample > 0:
                raise InputError(f"task {name!r}: need samples >= 0 and tokens > 0", field="tasks")
            flops = float(inference_flops(n, task.tokens_per_sample)) * task.samples
            hours = flops / (gpu_flops * utilization) / 3600.0
            rows.append(
                {
                    "model": model,
                    "params": float(n),
                    "task": name,
                    "samples": task.samples,
                    "tokens_per_sample": float(task.tokens_per_sample),
                    "flops": flops,
                    "gpu_hours": hours,
                    "gpus": gpus,
                    "wall_hours": hours / gpus,
                }
            )
    return pd.DataFrame(rows)


def achieved_flops(params: float, tokens_per_sample: float, samples_per_s: float) -> float:
    """FLOP/s a measured evaluation rate stands for under the ``2 N`` model."""
    return float(inference_flops(params, tokens_per_sample)) * samples_per_s


def matmul_flops(device: str = "cpu", size: int = 1024, repeat: int = 5) -> float:
    """Measured float32 matrix-product FLOP/s of a torch device (best of ``repeat``)."""
    import torch

    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    best = float("inf")
    for _ in range(repeat + 1):  # the first run warms up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        (a @ b).sum().item()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best


def measure_ladder(
    ladder_dir: str | os.PathLike[str],
    n_test: int = 2048,
    device: str = "cpu",
    threads: int | None = None,
    repeat: int = 3,
) -> pd.DataFrame:
    """Time ``mirage ladder eval`` on every model of a trained ladder (best of ``repeat``).

    One row per model: ``model, params, samples, seconds, samples_per_s,
    tokens_per_sample, achieved_flops``. Tokens per sample count what the
    evaluation runs: the greedy decode (prompt, then up to ``max_answer_len + 1``
    new tokens) and the teacher-forced pass over prompt and answer. The first
    run of each model (which loads it) is not timed.
    """
    from miragelab.ladder.evaluate import evaluate_unit, ladder_units
    from miragelab.ladder.tasks import get_task

    units, _ = ladder_units(ladder_dir, n_test, device=device, shard_size=n_test, threads=threads)
    rows = []
    for unit in units:
        task = get_task(unit.spec["task"])
        frame = evaluate_unit(unit)  # load and warm up
        seconds = float("inf")
        for _ in range(max(1, repeat)):
            start = time.perf_counter()
            evaluate_unit(unit)
            seconds = min(seconds, time.perf_counter() - start)
        tokens = task.prompt_len + (task.max_answer_len + 1) + (task.seq_len - 1)
        rate = len(frame) / seconds
        rows.append(
            {
                "model": unit.model,
                "params": float(unit.spec["params"]),
                "samples": len(frame),
                "seconds": seconds,
                "samples_per_s": rate,
                "tokens_per_sample": float(tokens),
                "achieved_flops": achieved_flops(unit.spec["params"], tokens, rate),
            }
        )
    return pd.DataFrame(rows)


def ladder_hours(
    params: Sequence[float],
    samples: int,
    tokens_per_sample: float,
    n_tasks: int = 1,
    gpu_flops: float = GPU_PEAK_FLOPS["H100-SXM"],
    utilization: float = 0.3,
) -> float:
    """Total GPU-hours of ``n_tasks`` tasks of ``samples`` samples on every model (shortcut)."""
    tasks = {f"task{i}": Task(samples, tokens_per_sample) for i in range(n_tasks)}
    models = {f"model{i}": float(p) for i, p in enumerate(params)}
    return float(plan_cost(models, tasks, gpu_flops, utilization)["gpu_hours"].sum())
