"""Samples of a ladder of local Hugging Face checkpoints: greedy answers and target log-probs.

``ladder.csv`` and the tokenization (lm-eval-harness's ``hf`` model) are
described in ``docs/eval.md`` ("The ladder", "How the numbers are computed");
nothing is ever downloaded (``local_files_only=True``).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from miragelab.errors import InputError
from miragelab.runners.prefix import agrees, greedy, plan_batches, score_groups
from miragelab.runners.tasks import (
    EvalTask,
    Example,
    continuations,
    gather_scores,
    load_task_ref,
    samples_frame,
)
from miragelab.runners.units import Unit, shards
from miragelab.schema import ModelSizes
from miragelab.textio import iter_csv_rows

REQUIRED = ("family", "model", "params")
OPTIONAL = ("path", "revision", "tokens_trained", "compute_flops", "step")
#: examples per unit of work: a killed run loses at most one shard per worker
SHARD_SIZE = 500
DTYPES = ("auto", "float32", "float16", "bfloat16")
#: padded tokens per forward pass (rows x the longest row), unless set
BATCH_TOKENS = 8192


# --------------------------------------------------------------------------- ladder.csv


@dataclass(frozen=True)
class LadderEntry:
    """One checkpoint of a ladder (one line of ``ladder.csv``)."""

    family: str
    model: str
    params: float
    path: str | None = None
    revision: str | None = None
    tokens_trained: float | None = None
    compute_flops: float | None = None
    step: int | None = None
    line: int = 0

    @property
    def unit_name(self) -> str:
        """The name a unit's part is filed under (distinct per checkpoint of a model)."""
        return self.model if self.step is None else f"{self.model}@step{self.step}"

    def meta(self, columns: Sequence[str]) -> dict[str, Any]:
        """The model columns of the samples table (the optional ones the CSV has)."""
        data = asdict(self)
        out = {k: data[k] for k in REQUIRED}
        for col in ("tokens_trained", "compute_flops", "step"):
            if col in columns:
                out[col] = data[col]
        return out


def _number(text: str, path: Path, line: int, field: str, integer: bool = False) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"not a number: {text!r}", path=path, line=line, field=field) from None
    if not math.isfinite(value):
        raise InputError(f"must be finite, got {text!r}", path=path, line=line, field=field)
    if integer:
        if value != int(value) or value < 0:
            raise InputError(
                f"must be an integer >= 0, got {text!r}", path=path, line=line, field=field
            )
        return int(value)
    if value <= 0:
        raise InputError(f"must be > 0, got {text!r}", path=path, line=line, field=field)
    return value


def _checkpoint_dir(text: str, csv_path: Path, line: int) -> str:
    folder = Path(text).expanduser()
    if not folder.is_absolute():
        folder = csv_path.parent / folder
    if not folder.exists():
        raise InputError(
            f"{text!r} does not exist (paths are local folders; nothing is downloaded)",
            path=csv_path,
            line=line,
            field="path",
        )
    if not (folder / "config.json").is_file():
        raise InputError(
            f"{text!r} is not a Hugging Face checkpoint folder (no config.json)",
            path=csv_path,
            line=line,
            field="path",
        )
    return str(folder.resolve())


def read_ladder(
    path: str | os.PathLike[str], require_path: bool = True
) -> tuple[list[LadderEntry], list[str]]:
    """Validated checkpoints of ``ladder.csv``, and the CSV's columns.

    Line numbers count physical lines from 1 (the header).
    """
    file = Path(path)
    if file.is_dir():
        raise InputError("is a folder; expected a ladder CSV file", path=file)
    rows = iter_csv_rows(file)
    _, raw_header = next(rows)
    header = [h.strip() for h in raw_header]
    known = REQUIRED + OPTIONAL
    for i, name in enumerate(header):
        if name not in known:
            raise InputError(
                f"unknown column {name!r}; known: {', '.join(known)}",
                path=file,
                line=1,
                field=name,
            )
        if name in header[:i]:
            raise InputError("column appears twice", path=file, line=1, field=name)
    for name in REQUIRED + (("path",) if require_path else ()):
        if name not in header:
            raise InputError("required column is missing", path=file, line=1, field=name)
    entries: list[LadderEntry] = []
    seen: dict[tuple, int] = {}
    sizes = ModelSizes()
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        cells = {h: c.strip() for h, c in zip(header, row, strict=True)}
        for name in REQUIRED:
            if not cells[name]:
                raise InputError("is empty", path=file, line=line, field=name)
        values: dict[str, Any] = {
            "family": cells["family"],
            "model": cells["model"],
            "params": _number(cells["params"], file, line, "params"),
            "line": line,
        }
        for name in ("tokens_trained", "compute_flops"):
            if cells.get(name):
                values[name] = _number(cells[name], file, line, name)
        if cells.get("step"):
            values["step"] = _number(cells["step"], file, line, "step", integer=True)
        if cells.get("revision"):
            values["revision"] = cells["revision"]
        if require_path:
            if not cells.get("path"):
                raise InputError("is empty", path=file, line=line, field="path")
            values["path"] = _checkpoint_dir(cells["path"], file, line)
        elif cells.get("path"):
            values["path"] = cells["path"]
        entry = LadderEntry(**values)
        key = (entry.family, entry.model, entry.step)
        if key in seen:
            raise InputError(
                f"model {entry.model!r} is listed twice (first on line {seen[key]})",
                path=file,
                line=line,
                field="model",
            )
        seen[key] = line
        clash = sizes.add(entry.family, entry.model, entry.step, entry.params, f"line {line}")
        if clash is not None:
            raise InputError(clash, path=file, line=line, field="params")
        entries.append(entry)
    if not entries:
        raise InputError("lists no models", path=file)
    return entries, header


# --------------------------------------------------------------------------- batches

#: rows of a batch where ``--batch-size auto`` leaves the token budget alone to bound it
MAX_ROWS = 1 << 16
#: share of the free memory measured that ``--batch-size auto`` plans to use
MEMORY_SHARE = 0.5
_listeners: list[Callable[[int], None]] = []


@contextlib.contextmanager
def counting_tokens(callback: Callable[[int], None]) -> Iterator[None]:
    """Call ``callback(n)`` as each batch of ``n`` tokens is done (prompts and answers
    as a plain evaluation would feed them: the progress of ``mirage eval``)."""
    _listeners.append(callback)
    try:
        yield
    finally:
        _listeners.remove(callback)


def _count(n: int) -> None:
    for listener in _listeners:
        listener(n)


def free_memory(device: str) -> int:
    """Bytes free for activations on ``device``: the GPU's free memory, or the
    memory the system reports available (``MemAvailable``) on the CPU."""
    import torch

    if device.startswith("cuda"):
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def bytes_per_token(model: Any) -> int:
    """An upper bound on the memory one token of a batch holds during a forward pass:
    its keys and values in every layer, its widest activations (the MLP's, attention
    and residual copies), a row of attention weights as wide as the window, and a
    float32 row of logits with its log-softmax."""
    cfg = model.config
    cfg = getattr(cfg, "text_config", cfg)
    hidden = int(getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", 0))
    layers = int(getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", 0))
    inner = int(
        getattr(cfg, "intermediate_size", None) or getattr(cfg, "n_inner", None) or 4 * hidden
    )
    vocab = int(model.get_input_embeddings().num_embeddings)
    element = next(model.parameters()).element_size()
    heads = int(getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_head", 1))
    window = int(getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", 2048))
    keys_values = 2 * layers * hidden * element
    activations = (4 * hidden + 2 * inner) * max(element, 4)
    attention = heads * window * 4  # one row of attention weights where they are materialised
    return keys_values + activations + attention + 2 * vocab * 4


def auto_batch_tokens(lm: HFModel) -> int:
    """The token budget of ``--batch-size auto``: :data:`MEMORY_SHARE` of the memory
    :func:`free_memory` measures, over :func:`bytes_per_token`, at least one window."""
    budget = int(MEMORY_SHARE * free_memory(lm.device) / bytes_per_token(lm.model))
    return max(budget, lm.max_length)


# --------------------------------------------------------------------------- the model


@dataclass
class Generated:
    """One greedy answer: its token ids, its text and why it ended (``stop`` or ``length``)."""

    ids: list[int]
    text: str
    finish_reason: str


def resolve_device(device: str, local: bool = True) -> str:
    """``auto`` -> ``cuda`` when present else ``cpu``; anything torch cannot use is an error.

    ``local=False``: the work runs on other machines (``--executor ray``), whose
    GPUs this one need not have, so only the name is checked.
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise InputError(f"not a torch device: {device!r}", field="device") from None
    if local and dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("CUDA is not available on this machine", field="device")
    return device


def check_dtype(dtype: str) -> None:
    """Refuse a torch dtype name that is not one of :data:`DTYPES`.

    Raises
    ------
    InputError
        For an unknown name (field ``dtype``).
    """
    if dtype not in DTYPES:
        raise InputError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}", field="dtype")


class HFModel:
    """A local causal LM and its tokenizer, with batched scoring and greedy generation."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        device: str = "cpu",
        dtype: str = "float32",
        revision: str | None = None,
        add_bos: bool | None = None,
        reuse: bool = True,
    ) -> None:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        check_dtype(dtype)
        transformers.utils.logging.disable_progress_bar()
        self.path = str(path)
        self.device = resolve_device(device)
        self.add_bos = add_bos
        kwargs: dict[str, Any] = {"local_files_only": True}
        if revision:
            kwargs["revision"] = revision
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        version = tuple(int(p) for p in transformers.__version__.split(".")[:2] if p.isdigit())
        dtype_key = "dtype" if version >= (4, 56) else "torch_dtype"
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(
                self.path, **kwargs, **{dtype_key: torch_dtype}
            )
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"cannot load the checkpoint ({exc})", path=self.path) from None
        self.model = model.to(self.device).eval()
        tok = self.tokenizer
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        eos = [gen_eos] if isinstance(gen_eos, int) else list(gen_eos or [])
        if tok.eos_token_id is not None:
            eos.append(tok.eos_token_id)
        self.eos_ids = sorted(set(eos))
        pad = tok.pad_token_id
        self.pad_id = pad if pad is not None else (self.eos_ids[0] if self.eos_ids else 0)
        self.max_length = self._max_length()
        self.vocab_size = int(self.model.get_input_embeddings().num_embeddings)
        self.dtype = str(next(self.model.parameters()).dtype).removeprefix("torch.")
        #: shared prefixes encoded once (:mod:`miragelab.runners.prefix`), where this
        #: checkpoint gives its plain log-probs that way
        tolerance = 1e-4 if self.dtype == "float32" else 5e-2
        self.reuse = reuse and agrees(self.model, self.device, self.vocab_size, tolerance)

    def _max_length(self) -> int:
        cfg = self.model.config
        for attr in ("n_positions", "max_position_embeddings", "n_ctx", "seq_length"):
            value = getattr(cfg, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        limit = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(limit, int) and 0 < limit < 1 << 30:
            return limit
        return 2048  # lm-eval-harness's default

    # ------------------------------------------------------------------ tokens

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` with the special tokens lm-eval's ``hf`` model adds."""
        tok = self.tokenizer
        if self.add_bos is not None:
            return tok(text, add_special_tokens=self.add_bos).input_ids
        bos = tok.bos_token
        if bos and text.startswith(bos):  # already there: do not add a second one
            return tok(text, add_special_tokens=False).input_ids
        return tok(text).input_ids

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval-harness's ``_encode_pair``: encode the whole string, split at the context."""
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces > 0:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = self.encode(context + continuation)
        ctx = self.encode(context)
        return ctx, whole[len(ctx) :]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    # ------------------------------------------------------------------ scoring

    def score(
        self,
        seqs: Sequence[Sequence[int]],
        starts: Sequence[int],
        batch_size: int = 16,
        top: int = 0,
        batch_tokens: int = BATCH_TOKENS,
    ) -> list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
        """``log p(seq[i] | seq[:i])`` for ``start <= i < len(seq)``, for every sequence.

        Returns per sequence ``(logprobs, top_ids, top_logprobs)`` (the last two
        ``None`` unless ``top``). Sequences longer than the context window are
        cut from the left, as lm-eval-harness does; a start that falls off is a
        ``ValueError``. Sequences that share ``seq[:start]`` (the choices of a
        question) and the head common to a batch (a k-shot preamble) are encoded
        once (:func:`miragelab.runners.prefix.score_groups`); batches hold at most
        ``batch_size`` sequences and ``batch_tokens`` padded tokens.
        """
        import torch

        work = []
        for seq, start in zip(seqs, starts, strict=True):
            seq = list(seq)
            drop = max(0, len(seq) - self.max_length)
            if start - drop < 1:
                raise ValueError(
                    f"{len(seq)} tokens do not fit the context window of {self.max_length}"
                )
            work.append((seq[drop:], start - drop, drop))
        results: list[Any] = [None] * len(work)
        plain = [i for i, w in enumerate(work) if not self.reuse or w[2] > 0]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (seq, start, drop) in enumerate(work):
            if self.reuse and drop == 0:
                groups.setdefault(tuple(seq[:start]), []).append(i)
        keys = list(groups)
        costs = [len(k) + max(len(work[i][0]) - len(k) for i in groups[k]) for k in keys]
        rows = [len(groups[k]) for k in keys]
        with torch.inference_mode():
            for batch in plan_batches(costs, rows, batch_tokens, batch_size):
                members = [
                    (list(keys[b]), [work[i][0][len(keys[b]) :] for i in groups[keys[b]]])
                    for b in batch
                ]
                scored = score_groups(self.model, members, self.device, top)
                _count(sum(len(work[i][0]) for b in batch for i in groups[keys[b]]))
                for b, got in zip(batch, scored, strict=True):
                    for i, value in zip(groups[keys[b]], got, strict=True):
                        results[i] = value
            lengths = [len(work[i][0]) for i in plain]
            for chunk in plan_batches(lengths, [1] * len(plain), batch_tokens, batch_size):
                picked = [plain[c] for c in chunk]
                for i, value in zip(
                    picked, self._score_plain([work[i][:2] for i in picked], top), strict=True
                ):
                    results[i] = value
                _count(sum(len(work[i][0]) for i in picked))
        return results

    def _score_plain(
        self, work: Sequence[tuple[list[int], int]], top: int
    ) -> list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
        """One right-padded forward pass of whole sequences (no reuse)."""
        import torch

        width = max(len(seq) for seq, _ in work)
        ids = torch.full((len(work), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(work), width), dtype=torch.long)
        for r, (seq, _) in enumerate(work):
            ids[r, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[r, : len(seq)] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        logits = self.model(input_ids=ids, attention_mask=mask).logits
        out = []
        for r, (seq, start) in enumerate(work):
            rows = torch.log_softmax(logits[r, start - 1 : len(seq) - 1].float(), dim=-1)
            picked = rows.gather(1, ids[r, start : len(seq), None])[:, 0]
            if top:
                vals, idx = rows.topk(min(top, rows.shape[-1]), dim=-1)
                out.append(
                    (picked.double().cpu().numpy(), idx.cpu().numpy(), vals.double().cpu().numpy())
                )
            else:
                out.append((picked.double().cpu().numpy(), None, None))
        return out

    # ------------------------------------------------------------------ generation

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        max_tokens: int,
        stop: Sequence[str] = (),
        batch_size: int = 16,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> list[Generated]:
        """Greedy (or, with ``temperature > 0``, sampled) continuations of token-id prompts.

        Batched with left padding. A prompt is cut from the left so that it and
        its ``max_tokens`` new tokens fit the context window (lm-eval-harness
        does the same); the budget itself is capped at the window less one.
        """
        import torch
        from transformers import GenerationConfig, StoppingCriteriaList

        budget, cut = self._cut_prompts(prompts, max_tokens)
        if self.reuse and temperature <= 0:
            return self.generate_and_score(cut, [None] * len(cut), max_tokens, stop, batch_size)[0]
        config = GenerationConfig(
            max_new_tokens=budget,
            do_sample=temperature > 0,
            num_beams=1,
            eos_token_id=self.eos_ids or None,
            pad_token_id=self.pad_id,
            **({"temperature": temperature, "top_p": top_p} if temperature > 0 else {}),
        )
        order = sorted(range(len(cut)), key=lambda i: -len(cut[i]))
        results: list[Any] = [None] * len(cut)
        with torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            for lo in range(0, len(order), batch_size):
                chunk = order[lo : lo + batch_size]
                width = max(len(cut[i]) for i in chunk)
                ids = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for r, i in enumerate(chunk):
                    seq = cut[i]
                    ids[r, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
                    mask[r, width - len(seq) :] = 1
                criteria = StoppingCriteriaList(
                    [_StopStrings(self.tokenizer, stop, width)] if stop else []
                )
                out = self.model.generate(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    generation_config=config,
                    stopping_criteria=criteria,
                )
                for r, i in enumerate(chunk):
                    results[i] = self._finish(out[r, width:].tolist(), stop)
        return results

    def _cut_prompts(
        self, prompts: Sequence[Sequence[int]], max_tokens: int
    ) -> tuple[int, list[list[int]]]:
        """The new-token budget (capped at the window less one) and the prompts cut from
        the left to leave room for it, as lm-eval-harness does."""
        budget = max(1, min(max_tokens, self.max_length - 1))
        keep = self.max_length - budget
        cut = [list(p)[-keep:] for p in prompts]
        if any(not p for p in cut):
            raise ValueError("an empty prompt cannot be continued")
        return budget, cut

    def generate_and_score(
        self,
        prompts: Sequence[Sequence[int]],
        targets: Sequence[Sequence[int] | None],
        max_tokens: int,
        stop: Sequence[str] = (),
        batch_size: int = 16,
        batch_tokens: int = BATCH_TOKENS,
    ) -> tuple[list[Generated], list[np.ndarray | None]]:
        """Greedy answers of ``prompts`` and, where ``targets[i]`` is given, the
        teacher-forced log-probs of those tokens after prompt ``i``, both from one
        encoding of each prompt (:func:`miragelab.runners.prefix.greedy`, then
        :func:`~miragelab.runners.prefix.score_groups` on its cache).

        A target is scored here only where its prompt fits the window uncut with it;
        the others are None (score them with :meth:`score`)."""
        import torch

        budget, cut = self._cut_prompts(prompts, max_tokens)
        eos = set(self.eos_ids)
        stops = tuple(stop)

        def done(_: int, new: list[int]) -> bool:
            if new[-1] in eos:
                return True
            return bool(stops) and any(s in self.decode(new) for s in stops)

        answers: list[Any] = [None] * len(cut)
        target_lps: list[np.ndarray | None] = [None] * len(cut)
        lengths = [len(c) + budget for c in cut]
        with torch.inference_mode():
            for batch in plan_batches(lengths, [1] * len(cut), batch_tokens, batch_size):
                new, encoded = greedy(
                    self.model, [cut[i] for i in batch], self.device, budget, done
                )
                for i, ids in zip(batch, new, strict=True):
                    answers[i] = self._finish(ids, stops)
                _count(sum(len(cut[i]) + len(ids) for i, ids in zip(batch, new, strict=True)))
                scored = [
                    k
                    for k, i in enumerate(batch)
                    if targets[i]
                    and len(cut[i]) == len(prompts[i])
                    and len(cut[i]) + len(targets[i]) <= self.max_length  # type: ignore[arg-type]
                ]
                if not scored:
                    continue
                if len(scored) < len(batch):
                    encoded.select(scored)
                groups = [(cut[batch[k]], [list(targets[batch[k]])]) for k in scored]  # type: ignore[arg-type]
                got = score_groups(self.model, groups, self.device, encoded=encoded)
                for k, value in zip(scored, got, strict=True):
                    target_lps[batch[k]] = value[0][0]
        return answers, target_lps

    def _finish(self, new: list[int], stop: Sequence[str]) -> Generated:
        """Cut at the first end token (kept in ``ids``, as OpenAI-style servers list it,
        but not in ``text``) or stop string (dropped from both)."""
        eos = set(self.eos_ids)
        end = next((k for k, t in enumerate(new) if t in eos), None)
        kept = new if end is None else new[:end]
        text = self.decode(kept)
        hits = [text.find(s) for s in stop if s in text]
        if hits:
            at = min(hits)
            k = 0
            while k < len(kept) and len(self.decode(kept[:k])) < at:
                k += 1
            return Generated(kept[:k], text[:at], "stop")
        if end is not None:
            return Generated(new[: end + 1], text, "stop")
        return Generated(new, text, "length")


class _StopStrings:
    """Stops a row once its new text holds a stop string (a ``StoppingCriteria``)."""

    def __init__(self, tokenizer: Any, stop: Sequence[str], prompt_width: int) -> None:
        self.tokenizer = tokenizer
        self.stop = tuple(stop)
        self.width = prompt_width

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        texts = self.tokenizer.batch_decode(input_ids[:, self.width :], skip_special_tokens=True)
        done = [any(s in t for s in self.stop) for t in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


# --------------------------------------------------------------------------- examples


def _example_error(task: EvalTask, ex: Example, message: str, field: str) -> InputError:
    where = task.ref.get("path")
    return InputError(
        f"example {ex.example_id!r}: {message}",
        path=where,
        line=ex.line if where else None,
        field=field,
    )


def score_examples(
    lm: HFModel,
    task: EvalTask,
    examples: Sequence[Example],
    batch_size: int = 16,
    batch_tokens: int = BATCH_TOKENS,
) -> tuple[list[str | None], list[list[float]], list[list[float]] | None]:
    """Predictions, target-token log-probs and (multiple choice) choice log-probs.

    Batches hold at most ``batch_size`` sequences and ``batch_tokens`` padded tokens."""
    pairs: list[tuple[int, list[int], int]] = []  # (example, sequence, start)
    conts: list[str] = []
    for k, ex in enumerate(examples):
        for cont in continuations(ex):
            try:
                ctx, tail = lm.encode_pair(ex.prompt, cont)
            except Exception as exc:  # noqa: BLE001 - tokenizers raise bare Exception
                raise _example_error(task, ex, f"cannot be tokenized ({exc})", "prompt") from None
            if not tail:
                raise _example_error(
                    task, ex, f"{cont!r} adds no token after the prompt's tokens", "target"
                )
            pairs.append((k, ctx + tail, len(ctx)))
            conts.append(cont)
    try:
        if task.kind == "generate" and lm.reuse:
            # one encoding of each prompt serves its answer and its target's log-probs
            prompts = [lm.encode(ex.prompt) for ex in examples]
            shared = [seq[:n] == list(p) for (_, seq, n), p in zip(pairs, prompts, strict=True)]
            tails = [
                seq[n:] if same else None for (_, seq, n), same in zip(pairs, shared, strict=True)
            ]
            generated, lps = lm.generate_and_score(
                prompts, tails, task.max_tokens, task.stop, batch_size, batch_tokens
            )
            rest = [k for k, lp in enumerate(lps) if lp is None]
            if rest:
                more = lm.score(
                    [pairs[k][1] for k in rest], [pairs[k][2] for k in rest], batch_size
                )
                for k, (lp, _, _) in zip(rest, more, strict=True):
                    lps[k] = lp
            return [g.text for g in generated], [lp.tolist() for lp in lps], None  # type: ignore[union-attr]
        scored = lm.score([p[1] for p in pairs], [p[2] for p in pairs], batch_size, 0, batch_tokens)
    except ValueError as exc:
        raise InputError(f"{exc}", path=task.ref.get("path"), field="prompt") from None
    by_pair = [(k, lp.tolist()) for (k, _, _), (lp, _, _) in zip(pairs, scored, strict=True)]
    predictions, target_lps, choice_lps = gather_scores(examples, by_pair, task.kind)
    if predictions is not None:
        return predictions, target_lps, choice_lps
    prompts = [lm.encode(ex.prompt) for ex in examples]
    generated = lm.generate(prompts, task.max_tokens, task.stop, batch_size)
    return [g.text for g in generated], target_lps, None


# --------------------------------------------------------------------------- units


def eval_units(
    task: EvalTask,
    entries: Sequence[LadderEntry],
    columns: Sequence[str],
    backend: dict[str, Any],
    fingerprint_backend: dict[str, Any],
    shard_size: int = SHARD_SIZE,
) -> tuple[list[Unit], dict[str, Any]]:
    """One unit per (checkpoint, shard of the task's examples), and the run's settings.

    ``backend`` is what a job needs (JSON-able); ``fingerprint_backend`` the part
    of it that changes the numbers (device and batch size do not).
    """
    units = []
    models = []
    for entry in entries:
        meta = entry.meta(columns)
        for shard, (lo, hi) in enumerate(shards(len(task.examples), shard_size)):
            spec = {
                "task": task.ref,
                "lo": lo,
                "hi": hi,
                "entry": meta,
                "path": entry.path,
                "revision": entry.revision,
                "backend": backend,
            }
            units.append(Unit(task.name, entry.unit_name, shard, spec))
        stamp = _checkpoint_stamp(entry.path) if backend["kind"] == "hf" else None
        models.append([meta, entry.path, entry.revision, stamp])
    settings = {
        "source": "eval",
        "backend": fingerprint_backend,
        "task": {k: v for k, v in task.ref.items()},
        "shard_size": shard_size,
        "models": models,
    }
    return units, settings


def _checkpoint_stamp(path: str | None) -> list:
    """Size and time of a checkpoint's files: a retrained model is a different run."""
    if path is None:
        return []
    folder = Path(path)
    return sorted(
        [p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in folder.iterdir() if p.is_file()
    )


@functools.lru_cache(maxsize=1)
def _load_model(
    path: str,
    device: str,
    dtype: str,
    revision: str | None,
    add_bos: bool | None,
    reuse: bool = True,
) -> HFModel:
    # units of one model follow each other, so a worker loads each checkpoint once
    return HFModel(
        path, device=device, dtype=dtype, revision=revision, add_bos=add_bos, reuse=reuse
    )


def batch_limits(lm: HFModel, backend: dict[str, Any]) -> tuple[int, int]:
    """``(rows, tokens)`` per batch: ``--batch-size`` and ``--batch-tokens``, or with
    ``--batch-size auto`` the budget of :func:`auto_batch_tokens` (measured where the
    unit runs) and no bound on rows but that."""
    if backend.get("batch_size") == "auto":
        return MAX_ROWS, auto_batch_tokens(lm)
    return int(backend["batch_size"]), int(backend.get("batch_tokens") or BATCH_TOKENS)


def evaluate_unit(unit: Unit) -> pd.DataFrame:
    """The samples rows of one checkpoint on one shard of a task (the job of ``mirage eval``)."""
    spec = unit.spec
    backend = spec["backend"]
    task = load_task_ref(spec["task"])
    examples = task.examples[spec["lo"] : spec["hi"]]
    lm = _load_model(
        spec["path"],
        backend["device"],
        backend["dtype"],
        spec["revision"],
        backend["add_bos"],
        backend.get("reuse", True),
    )
    rows, tokens = batch_limits(lm, backend)
    predictions, target_lps, choice_lps = score_examples(lm, task, examples, rows, tokens)
    frame = samples_frame(task, examples, spec["entry"], predictions, target_lps, choice_lps)
    frame["dtype"] = lm.dtype  # float32 unless --dtype chose another
    return frame
