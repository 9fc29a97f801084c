"""Train a ladder: every size of a preset on one task, with checkpoints and exact resume.

Layout of the output folder ``DIR``::

    DIR/ladder.json        plan (task, preset, seed) and the finished models
    DIR/ladder.csv         one row per finished model: family, model, path, params, tokens, flops
    DIR/models/NAME/       Hugging Face checkpoint folder of each finished model
    DIR/state.pt           training state of the model in progress (absent between models)
    DIR/state-NAME.pt      the same, per model, when models train in parallel (``--executor ray``)
    DIR/finished/          one one-row parquet part per finished model, written by the
                           worker that trained it (see "Parallel training" below)

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

Parallel training
-----------------
Each model is one unit of work (:mod:`miragelab.runners.units`), so the models of a
ladder can train at once on a Ray cluster (``executor=RayExecutor(...)``), one
per GPU. Workers never touch the manifest: a worker exports its model and
writes the model's record (``finished/task=T/model=M/part-00000.parquet``,
atomically); the driver alone adds each finished model to ``ladder.json`` as
its record arrives, in ladder order. A record on disk whose model is missing
from the manifest (the driver was killed in between) is recorded on resume.
Parallel models checkpoint to their own ``state-NAME.pt``, and a worker that
died is retried from its model's last checkpoint.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from miragelab.atomic import atomic_path, write_text_atomic
from miragelab.datasets import read_part
from miragelab.errors import InputError
from miragelab.ladder.hf import export_hf
from miragelab.ladder.model import GPTConfig, TinyGPT, param_count
from miragelab.ladder.presets import Preset, SizeSpec, get_preset
from miragelab.ladder.tasks import PAD_ID, Task, encode_examples, get_task, sample_train_pairs
from miragelab.runners.units import Executor, LocalExecutor, Unit, part_path, run_units, segment
from miragelab.scaling import training_flops
from miragelab.schema import ModelSizes
from miragelab.textio import decode_error, json_error

MANIFEST = "ladder.json"
MANIFEST_CSV = "ladder.csv"
STATE = "state.pt"
RECORDS = "finished"
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
    """The ladder's ``ladder.json``, checked: every problem is an InputError naming the
    line and the field (``models[2].path``), before any model is loaded."""
    out = Path(out)
    path = out / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no ladder here (ladder.json is missing)", path=out) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise decode_error(raw, path) from None
    _check_manifest(out, path, manifest)
    return manifest


def _positive_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _check_manifest(out: Path, path: Path, manifest: object) -> None:
    """What evaluation and resume rely on: a known task, an integer seed, and models
    with names, sizes and folders inside the ladder (no ``..``, no absolute path)."""
    if not isinstance(manifest, dict):
        raise json_error(f"expected a JSON object, got {type(manifest).__name__}", path, ())
    if not isinstance(manifest.get("task"), str):
        raise json_error("missing or not a task name", path, ("task",))
    try:
        get_task(manifest["task"])
    except InputError as exc:
        raise json_error(exc.message, path, ("task",)) from None
    seed = manifest.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise json_error(f"expected an integer seed, got {seed!r}", path, ("seed",))
    models = manifest.get("models")
    if not isinstance(models, list):
        raise json_error("expected a list of finished models", path, ("models",))
    names: dict[str, int] = {}
    sizes = ModelSizes()
    root = out.resolve()
    for i, entry in enumerate(models):
        where = ("models", i)
        if not isinstance(entry, dict):
            raise json_error("expected an object", path, where)
        for key in ("family", "model", "path"):
            value = entry.get(key)
            if not isinstance(value, str) or not value.strip():
                raise json_error("missing or not a name", path, (*where, key))
        for key in ("params", "tokens", "flops"):
            if not _positive_number(entry.get(key)):
                raise json_error(
                    f"expected a positive number, got {entry.get(key)!r}", path, (*where, key)
                )
        name = entry["model"]
        if name in names:
            raise json_error(
                f"model {name!r} is listed twice (first as models[{names[name]}])",
                path,
                (*where, "model"),
            )
        names[name] = i
        clash = sizes.add(entry["family"], name, None, float(entry["params"]), f"models[{i}]")
        if clash is not None:
            raise json_error(clash, path, (*where, "params"))
        rel = Path(entry["path"])
        if rel.is_absolute() or ".." in rel.parts or not (out / rel).resolve().is_relative_to(root):
            raise json_error(
                f"model folder {entry['path']!r} is outside the ladder folder; it must be a "
                "relative path inside it (e.g. models/NAME)",
                path,
                (*where, "path"),
            )
    for i, entry in enumerate(models):  # every entry is well-formed: now the folders
        if not (out / entry["path"]).is_dir():
            raise json_error(
                f"model folder {entry['path']!r} does not exist in the ladder folder",
                path,
                ("models", i, "path"),
            )


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
    executor: Executor | None = None,
    threads: int | None = None,
    on_done: Callable[[Unit], None] | None = None,
) -> dict:
    """Train every size of ``preset`` on ``task`` into ``out``; return the manifest.

    ``device`` is a torch device; bitwise-equal resume is guaranteed on the CPU
    (GPU kernels may be nondeterministic). ``executor`` decides where models
    train (default: one after another in this process); ``reporter`` shows
    per-step progress of models trained in this process, ``on_done`` is called
    as each model is recorded. ``threads`` sets torch's CPU threads where a
    model trains.
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
    fresh = not (out / MANIFEST).exists()
    manifest = _open_manifest(out, plan, resume)
    if fresh:  # no run to resume: state and records left by an abandoned run are stale
        shutil.rmtree(out / RECORDS, ignore_errors=True)
        for stale in out.glob("state*.pt"):
            stale.unlink()
    parallel = executor is not None and not isinstance(executor, LocalExecutor)
    done = {m["model"] for m in manifest["models"]}
    order = {model_name(the_task, size): i for i, size in enumerate(the_preset.sizes)}
    header = plan.header()
    units = []
    for index, size in enumerate(the_preset.sizes):
        name = model_name(the_task, size)
        if name in done:
            continue
        spec = {
            "out": str(out.resolve()),
            "header": header,
            "index": index,
            "checkpoint_seconds": checkpoint_seconds,
            "checkpoint_steps": checkpoint_steps,
            "device": device,
            "state": f"state-{segment(name)}.pt" if parallel else STATE,
            "threads": threads,
        }
        units.append(Unit(the_task.name, name, 0, spec))
    records = out / RECORDS

    def record(unit: Unit) -> None:
        entry = read_part(part_path(records, unit), records).to_pylist()[0]
        if unit.model not in {m["model"] for m in manifest["models"]}:
            manifest["models"].append(entry)
            manifest["models"].sort(key=lambda m: order.get(m["model"], len(order)))
            write_manifest(out, manifest)
        (out / unit.spec["state"]).unlink(missing_ok=True)
        if on_done is not None:
            on_done(unit)

    job = train_unit if parallel else functools.partial(train_unit, reporter=reporter)
    json_header = json.loads(json.dumps(header))  # tuples -> lists, as recorded
    run_units(units, job, records, json_header, executor=executor, on_done=record)
    return manifest


def train_unit(unit: Unit, reporter: _Reporter | None = None) -> pd.DataFrame:
    """Train (or finish training) one model of a ladder: the job of one unit.

    Returns the model's manifest entry as one row; the driver records it.
    """
    spec = unit.spec
    header = spec["header"]
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    preset = _preset_from_dict(header["preset_spec"])
    plan = Plan(get_task(header["task"]), preset, int(header["seed"]))
    index = int(spec["index"])
    info = _train_one(
        Path(spec["out"]),
        plan,
        index,
        preset.sizes[index],
        True,
        float(spec["checkpoint_seconds"]),
        spec["checkpoint_steps"],
        reporter or _Reporter(),
        spec["device"],
        state_name=spec["state"],
    )
    return pd.DataFrame([info])


def _preset_from_dict(data: dict) -> Preset:
    """The preset a manifest header describes (so a worker needs no registry)."""
    sizes = tuple(
        SizeSpec(int(s["n_layer"]), int(s["n_head"]), int(s["n_embd"]), float(s["lr"]))
        for s in data["sizes"]
    )
    rest = {k: v for k, v in data.items() if k != "sizes"}
    rest["betas"] = tuple(rest["betas"])
    return Preset(sizes=sizes, **rest)


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
    state_name: str = STATE,
) -> dict:
    preset, task = plan.preset, plan.task
    name = model_name(task, size)
    cfg = model_config(preset, size)
    model = TinyGPT(cfg, seed=plan.seed * 1000 + index).to(device)
    opt = make_optimizer(model, preset, size.lr)
    start, losses = 0, []
    state_path = out / state_name
    # the model's own state, else the shared one (a run resumed with another executor)
    for candidate in dict.fromkeys((state_path, out / STATE)):
        if not (resume and candidate.exists()):
            continue
        state = load_state(candidate, device)
        if state["model_name"] == name:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optim"])
            torch.set_rng_state(state["torch_rng"].cpu())
            start = int(state["step"])
            losses = state["losses"].tolist()
            break
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
        "flops": float(training_flops(params, tokens)),
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
