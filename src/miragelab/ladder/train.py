"""Train a ladder: every size of a preset on one task, with checkpoints and exact resume.

Layout of the output folder ``DIR``::

    DIR/ladder.json        plan (task, preset, seed) and the finished models
    DIR/ladder.csv         one row per finished model: family, model, path, params, tokens, flops
    DIR/models/NAME/       Hugging Face checkpoint folder of each finished model
    DIR/state.pt           training state of the model in progress (absent between models)

Determinism and resume
----------------------
A model's initial weights come from its own generator (seed ``seed * 1000 +
index``); the batch at step ``s`` is drawn from a generator seeded with
``(seed, s)``, so the data stream needs no state and every size sees the same
batches. Nothing else is random (no dropout). ``state.pt`` holds the weights,
the AdamW state, the step, the loss history and torch's global RNG state; it
is written to a temporary file and moved into place with ``os.replace``,
every ``checkpoint_seconds`` of wall time, every ``checkpoint_steps`` steps
when given, and before a model is exported. A finished model is exported
(atomically), then recorded in the manifest (atomically), then its state is
dropped, so after a kill at any point ``--resume`` redoes no finished model
and continues the current one from its last checkpoint; the result equals an
uninterrupted run bit for bit on the same machine and thread count.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from miragelab.atomic import atomic_path, write_text_atomic
from miragelab.errors import InputError
from miragelab.ladder.hf import export_hf
from miragelab.ladder.model import GPTConfig, TinyGPT, param_count
from miragelab.ladder.presets import Preset, SizeSpec, get_preset
from miragelab.ladder.tasks import PAD_ID, Task, encode_examples, get_task, sample_train_pairs

MANIFEST = "ladder.json"
MANIFEST_CSV = "ladder.csv"
STATE = "state.pt"
FORMAT = 1
IGNORE = -1


def family_name(task: Task) -> str:
    return f"tinygpt-{task.name}"


def model_name(task: Task, size: SizeSpec) -> str:
    return f"tinygpt-{task.name}-{size.name}"


def model_config(preset: Preset, size: SizeSpec) -> GPTConfig:
    return GPTConfig(
        n_layer=size.n_layer,
        n_head=size.n_head,
        n_embd=size.n_embd,
        vocab_size=preset.vocab_size,
        block_size=preset.block_size,
    )


def tokens_per_model(preset: Preset, task: Task) -> int:
    return preset.steps * preset.batch_size * (task.seq_len - 1)


def lr_at(step: int, preset: Preset, peak: float) -> float:
    """Linear warmup over ``warmup_frac`` of the steps, then cosine down to ``min_lr_frac``."""
    warmup = max(1, int(preset.warmup_frac * preset.steps))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, preset.steps - warmup)
    floor = preset.min_lr_frac
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def batch_at(
    task: Task, step: int, batch_size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets of training step ``step``: a pure function of ``(seed, step)``.

    Targets are ``IGNORE`` except on answer tokens and the end token, so the
    loss is the answer's negative log-likelihood.
    """
    rng = np.random.default_rng([seed, step])
    a, b = sample_train_pairs(task, batch_size, rng, seed)
    tokens = torch.from_numpy(encode_examples(task, a, b)[0])
    x, y = tokens[:, :-1], tokens[:, 1:].clone()
    y[:, : task.prompt_len - 1] = IGNORE
    y[y == PAD_ID] = IGNORE
    return x, y


def make_optimizer(model: TinyGPT, preset: Preset, lr: float) -> torch.optim.AdamW:
    decay = [p for _, p in model.named_parameters() if p.dim() >= 2]
    rest = [p for _, p in model.named_parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": preset.weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=preset.betas)


def train_step(
    model: TinyGPT, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, clip: float
) -> float:
    logits = model(x)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return float(loss.detach())


# --------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class Plan:
    task: Task
    preset: Preset
    seed: int

    def header(self) -> dict:
        return {
            "format": FORMAT,
            "task": self.task.name,
            "family": family_name(self.task),
            "preset": self.preset.name,
            "seed": self.seed,
            "preset_spec": self.preset.to_dict(),
            "allocation": "equal tokens for every size, same batches in the same order",
            "flops_formula": "6 * params * tokens",
        }


def read_manifest(out: Path) -> dict:
    path = out / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no ladder here (ladder.json is missing)", path=out) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", path=path, line=exc.lineno) from None


def write_manifest(out: Path, manifest: dict) -> None:
    write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    columns = ["family", "model", "path", "params", "tokens", "flops", "n_layer", "n_head"]
    columns += ["n_embd", "lr", "steps", "batch_size", "final_loss"]
    frame = pd.DataFrame(manifest["models"], columns=columns)
    with atomic_path(out / MANIFEST_CSV) as tmp:
        frame.to_csv(tmp, index=False)


def _open_manifest(out: Path, plan: Plan, resume: bool) -> dict:
    header = json.loads(json.dumps(plan.header()))  # tuples -> lists, as read back
    if (out / MANIFEST).exists():
        if not resume:
            raise InputError(
                "already holds a ladder; pass --resume to continue it or choose another --out",
                path=out,
            )
        manifest = read_manifest(out)
        for key in ("task", "preset", "seed", "preset_spec"):
            if manifest.get(key) != header[key]:
                what = (
                    "settings differ from"
                    if key == "preset_spec"
                    else f"is {header[key]!r}, not {manifest.get(key)!r} as in"
                )
                raise InputError(
                    f"--resume: the {key} {what} the run that started this ladder",
                    path=out / MANIFEST,
                    field=key,
                )
        return manifest
    manifest = header | {"models": []}
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out, manifest)
    return manifest


# --------------------------------------------------------------------------- state


def save_state(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: Path, device: str = "cpu") -> dict:
    return torch.load(path, weights_only=True, map_location=device)


class _Reporter:
    """Progress sink; the CLI passes a rich progress bar, tests pass nothing."""

    def start(self, name: str, total: int, done: int) -> None: ...

    def advance(self, name: str, step: int, loss: float, tokens_per_s: float) -> None: ...

    def finish(self, name: str) -> None: ...


def train_ladder(
    out: str | os.PathLike[str],
    task: str,
    preset: str | Preset = "cpu",
    seed: int = 0,
    resume: bool = False,
    checkpoint_seconds: float = 180.0,
    checkpoint_steps: int | None = None,
    reporter: _Reporter | None = None,
    device: str = "cpu",
) -> dict:
    """Train every size of ``preset`` on ``task`` into ``out``; return the manifest.

    ``device`` is a torch device; bitwise-equal resume is guaranteed on the CPU
    (GPU kernels may be nondeterministic).
    """
    out = Path(out)
    the_task = get_task(task)
    the_preset = get_preset(preset) if isinstance(preset, str) else preset
    if checkpoint_steps is not None and checkpoint_steps < 1:
        raise InputError(f"must be >= 1, got {checkpoint_steps}", field="checkpoint-steps")
    plan = Plan(the_task, the_preset, seed)
    if the_task.seq_len - 1 > the_preset.block_size:
        raise InputError(
            f"task {task} needs {the_task.seq_len - 1} positions; preset {the_preset.name} "
            f"has {the_preset.block_size}",
            field="task",
        )
    manifest = _open_manifest(out, plan, resume)
    reporter = reporter or _Reporter()
    done = {m["model"] for m in manifest["models"]}
    for index, size in enumerate(the_preset.sizes):
        name = model_name(the_task, size)
        if name in done:
            continue
        entry = _train_one(
            out, plan, index, size, resume, checkpoint_seconds, checkpoint_steps, reporter, device
        )
        manifest["models"].append(entry)
        write_manifest(out, manifest)
        (out / STATE).unlink(missing_ok=True)
    return manifest


def _train_one(
    out: Path,
    plan: Plan,
    index: int,
    size: SizeSpec,
    resume: bool,
    checkpoint_seconds: float,
    checkpoint_steps: int | None,
    reporter: _Reporter,
    device: str = "cpu",
) -> dict:
    preset, task = plan.preset, plan.task
    name = model_name(task, size)
    cfg = model_config(preset, size)
    model = TinyGPT(cfg, seed=plan.seed * 1000 + index).to(device)
    opt = make_optimizer(model, preset, size.lr)
    start, losses = 0, []
    state_path = out / STATE
    if resume and state_path.exists():
        state = load_state(state_path, device)
        if state["model_name"] == name:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optim"])
            torch.set_rng_state(state["torch_rng"].cpu())
            start = int(state["step"])
            losses = state["losses"].tolist()
    model.train()

    def checkpoint(step: int) -> None:
        save_state(
            state_path,
            {
                "model_name": name,
                "step": step,
                "model": model.state_dict(),
                "optim": opt.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "losses": torch.tensor(losses, dtype=torch.float64),
            },
        )

    reporter.start(name, preset.steps, start)
    last_save = time.monotonic()
    tick = time.perf_counter()
    tokens_per_step = preset.batch_size * (task.seq_len - 1)
    for step in range(start, preset.steps):
        lr = lr_at(step, preset, size.lr)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = batch_at(task, step, preset.batch_size, plan.seed)
        x, y = x.to(device), y.to(device)
        losses.append(train_step(model, opt, x, y, preset.grad_clip))
        now = time.perf_counter()
        reporter.advance(name, step + 1, losses[-1], tokens_per_step / max(now - tick, 1e-9))
        tick = now
        finished = step + 1
        due_steps = checkpoint_steps is not None and finished % checkpoint_steps == 0
        due_time = time.monotonic() - last_save >= checkpoint_seconds
        if (due_steps or due_time) and finished < preset.steps:
            checkpoint(finished)
            last_save = time.monotonic()
    checkpoint(preset.steps)
    model.eval()
    params = param_count(cfg)
    tokens = tokens_per_model(preset, task)
    rel = f"models/{name}"
    info = {
        "family": family_name(task),
        "model": name,
        "path": rel,
        "params": params,
        "tokens": tokens,
        "flops": 6.0 * params * tokens,
        "n_layer": size.n_layer,
        "n_head": size.n_head,
        "n_embd": size.n_embd,
        "lr": size.lr,
        "steps": preset.steps,
        "batch_size": preset.batch_size,
        "final_loss": float(np.mean(losses[-max(1, len(losses) // 20) :])),
    }
    export_hf(model, out / rel, extra={"task": task.name, "seed": plan.seed, **info})
    reporter.finish(name)
    return info
