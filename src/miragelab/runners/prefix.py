"""Forward passes of a causal LM that encode each shared prefix once.

lm-eval-harness scores a multiple-choice question by one forward pass of
``context + choice`` per choice, and a k-shot task re-encodes the same
k-shot preamble for every example. Here a batch of sequences that share
prefixes is run in three passes over one key/value cache:

1. the longest prefix common to the whole batch (a k-shot preamble), once,
   its cache repeated for every example;
2. the rest of each example's prefix, left-padded to the batch's longest, with
   explicit position ids so that padding in the middle of the cache changes
   nothing: its last position gives the first continuation token's
   distribution;
3. every continuation of every example (each choice, or the target), right-
   padded, over its example's cache.

Only the logits that are read are computed (``logits_to_keep`` where the model
has it). Greedy decoding (:func:`greedy`) continues from the cache of passes 1
and 2, which the target pass then reuses, so a generation task encodes each
prompt once.

A padding mask with holes and explicit positions is exact attention, so the
log-probs equal those of one plain forward pass per sequence up to float
rounding; :func:`agrees` checks that on each checkpoint before it is used.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Encoded", "agrees", "encode_prefixes", "greedy", "plan_batches", "score_groups"]

#: shorter common prefixes are not worth a pass of their own
MIN_SHARED = 8


@dataclass(frozen=True)
class _Names:
    """What this model's ``forward`` calls the cache and the logits to keep (None: it
    has no such argument), and whether it takes position ids."""

    cache: str | None
    keep: str | None
    positions: bool


def _names(model: Any) -> _Names:
    params = inspect.signature(model.forward).parameters
    cache = next((k for k in ("cache", "past_key_values") if k in params), None)
    keep = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
    return _Names(cache, keep, "position_ids" in params)


def supports_sharing(model: Any) -> bool:
    """Whether the model takes position ids and a key/value cache (every decoder LM of
    transformers does; a model that does not is scored one plain pass per sequence)."""
    names = _names(model)
    return names.positions and names.cache is not None


def _forward(
    model: Any, ids: Any, mask: Any, positions: Any, cache: Any, keep: int | None = None
) -> Any:
    names = _names(model)
    kwargs = {"input_ids": ids, "attention_mask": mask, "position_ids": positions}
    kwargs[names.cache or "past_key_values"] = cache
    kwargs["use_cache"] = True
    if keep is not None and names.keep is not None:
        kwargs[names.keep] = keep
    return model(**kwargs)


def _new_cache() -> Any:
    from transformers import DynamicCache

    return DynamicCache()


def _common_length(prefixes: Sequence[Sequence[int]]) -> int:
    """Length of the prefix common to all, leaving each at least one token of its own
    (its last position's logits come from pass 2)."""
    shortest = min(len(p) for p in prefixes) - 1
    first = prefixes[0]
    n = 0
    while n < shortest and all(p[n] == first[n] for p in prefixes):
        n += 1
    return n if n >= MIN_SHARED and len(prefixes) > 1 else 0


@dataclass
class Encoded:
    """Passes 1 and 2 of a batch: the cache, its padding mask, each example's next
    position and the log-softmax of the token after each prefix (float64 on the CPU
    only where read)."""

    cache: Any
    mask: Any  # (B, width) long
    next_pos: Any  # (B,) long
    last_logits: Any  # (B, V) float

    def select(self, rows: Sequence[int]) -> None:
        """Keep these rows only (in this order)."""
        import torch

        index = torch.tensor(list(rows), dtype=torch.long, device=self.mask.device)
        self.cache.reorder_cache(index)
        self.mask, self.next_pos = self.mask[index], self.next_pos[index]
        self.last_logits = self.last_logits[index]


def encode_prefixes(model: Any, prefixes: Sequence[Sequence[int]], device: str) -> Encoded:
    """Passes 1 and 2: the cache of every prefix, the shared part encoded once."""
    import torch

    b = len(prefixes)
    shared = _common_length(prefixes)
    cache = _new_cache()
    if shared:
        head = torch.tensor([list(prefixes[0][:shared])], dtype=torch.long, device=device)
        ones = torch.ones_like(head)
        positions = torch.arange(shared, device=device)[None]
        _forward(model, head, ones, positions, cache, keep=1)
        cache.batch_repeat_interleave(b)
    rest = [list(p[shared:]) for p in prefixes]
    width = max(len(r) for r in rest)
    ids = torch.zeros((b, width), dtype=torch.long)
    own = torch.zeros((b, width), dtype=torch.long)
    for i, r in enumerate(rest):
        ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
        own[i, width - len(r) :] = 1
    ids, own = ids.to(device), own.to(device)
    mask = torch.cat([torch.ones((b, shared), dtype=torch.long, device=device), own], dim=1)
    positions = (shared + own.cumsum(1) - 1).clamp(min=0)
    out = _forward(model, ids, mask, positions, cache, keep=1)
    lengths = torch.tensor([len(p) for p in prefixes], dtype=torch.long, device=device)
    return Encoded(cache, mask, lengths, out.logits[:, -1].float())


def score_groups(
    model: Any,
    groups: Sequence[tuple[Sequence[int], Sequence[Sequence[int]]]],
    device: str,
    top: int = 0,
    encoded: Encoded | None = None,
) -> list[list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]]:
    """``log p(token | everything before it)`` of each continuation of each
    ``(prefix, continuations)`` group, with the ``top`` most likely tokens at each
    position where ``top`` > 0. ``encoded``: passes 1 and 2 already run (by
    :func:`greedy`, whose decoding has been cropped off)."""
    import torch

    if encoded is None:
        encoded = encode_prefixes(model, [g[0] for g in groups], device)
    rows = [(g, list(c)) for g, (_, conts) in enumerate(groups) for c in conts]
    first = torch.log_softmax(encoded.last_logits, dim=-1)
    index = torch.tensor([g for g, _ in rows], dtype=torch.long, device=device)
    width = max(len(c) for _, c in rows) - 1
    rest = None
    if width > 0:
        cache = encoded.cache
        cache.reorder_cache(index)  # one copy of its example's cache per continuation
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        own = torch.zeros((len(rows), width), dtype=torch.long)
        for r, (_, c) in enumerate(rows):
            ids[r, : len(c) - 1] = torch.tensor(c[:-1], dtype=torch.long)
            own[r, : len(c) - 1] = 1
        ids, own = ids.to(device), own.to(device)
        mask = torch.cat([encoded.mask[index], own], dim=1)
        positions = encoded.next_pos[index, None] + torch.arange(width, device=device)[None]
        rest = _forward(model, ids, mask, positions, cache).logits
    out: list[list[Any]] = [[] for _ in groups]
    for r, (g, c) in enumerate(rows):
        logp = first[g][None]
        if len(c) > 1:
            assert rest is not None
            logp = torch.cat([logp, torch.log_softmax(rest[r, : len(c) - 1].float(), dim=-1)])
        target = torch.tensor(c, dtype=torch.long, device=logp.device)
        picked = logp.gather(1, target[:, None])[:, 0].double().cpu().numpy()
        if top:
            vals, idx = logp.topk(min(top, logp.shape[-1]), dim=-1)
            out[g].append((picked, idx.cpu().numpy(), vals.double().cpu().numpy()))
        else:
            out[g].append((picked, None, None))
    return out


def greedy(
    model: Any,
    prompts: Sequence[Sequence[int]],
    device: str,
    budget: int,
    done: Callable[[int, list[int]], bool],
) -> tuple[list[list[int]], Encoded]:
    """Greedy continuations of ``prompts`` (``budget`` new tokens at most; a row ends
    when ``done(row, its_new_ids)``), and the prompts' cache as it was before decoding,
    for :func:`score_groups`.

    As ``generate`` does, every row is fed until the last one ends (a finished row's
    extra tokens are dropped), so the cache is cropped back to the prompts after."""
    import torch

    enc = encode_prefixes(model, prompts, device)
    base = enc.mask.shape[1]
    new: list[list[int]] = [[] for _ in prompts]
    finished = [False] * len(prompts)
    logits, mask, pos = enc.last_logits, enc.mask, enc.next_pos
    ones = torch.ones((len(prompts), 1), dtype=torch.long, device=device)
    for step in range(budget):
        token = logits.argmax(dim=-1)
        for i, t in enumerate(token.tolist()):
            if not finished[i]:
                new[i].append(int(t))
                finished[i] = done(i, new[i])
        if all(finished) or step == budget - 1:
            break
        mask = torch.cat([mask, ones], dim=1)
        out = _forward(model, token[:, None], mask, pos[:, None], enc.cache, keep=1)
        logits, pos = out.logits[:, -1].float(), pos + 1
    extra = enc.cache.get_seq_length() - base
    if extra > 0:
        enc.cache.crop(-extra)  # a negative length removes tokens (transformers 4 and 5)
    return new, enc


def plan_batches(
    costs: Sequence[int], rows: Sequence[int], budget: int, max_rows: int
) -> list[list[int]]:
    """Indices in batches, longest first: a batch holds items while its rows times its
    longest item's tokens stay within ``budget`` and its rows within ``max_rows`` (an
    item alone in a batch may exceed both)."""
    order = sorted(range(len(costs)), key=lambda i: -costs[i])
    batches: list[list[int]] = []
    current: list[int] = []
    width = n = 0
    for i in order:
        w, r = max(width, costs[i]), n + rows[i]
        if current and (w * r > budget or r > max_rows):
            batches.append(current)
            current, width, n = [], 0, 0
            w, r = costs[i], rows[i]
        current.append(i)
        width, n = w, r
    if current:
        batches.append(current)
    return batches


def agrees(model: Any, device: str, vocab: int, tolerance: float = 1e-4) -> bool:
    """Whether the shared passes give this model's plain log-probs (within ``tolerance``)
    on random sequences with a shared head, ragged prefixes and ragged continuations."""
    import torch

    if not supports_sharing(model):
        return False
    rng = np.random.default_rng(0)
    head = rng.integers(0, vocab, MIN_SHARED + 2).tolist()
    groups = [
        (
            head + rng.integers(0, vocab, k).tolist(),
            [rng.integers(0, vocab, m).tolist() for m in ms],
        )
        for k, ms in ((1, (1, 3)), (4, (2,)), (2, (1, 1, 4)))
    ]
    try:
        with torch.inference_mode():
            shared = score_groups(model, groups, device)
            for (prefix, conts), got in zip(groups, shared, strict=True):
                for cont, (lp, _, _) in zip(conts, got, strict=True):
                    seq = torch.tensor([prefix + cont], dtype=torch.long, device=device)
                    logits = (
                        model(input_ids=seq, attention_mask=torch.ones_like(seq))
                        .logits[0, len(prefix) - 1 : -1]
                        .float()
                    )
                    want = torch.log_softmax(logits, -1).gather(
                        1, torch.tensor(cont, device=device)[:, None]
                    )
                    if np.max(np.abs(lp - want[:, 0].double().cpu().numpy())) > tolerance:
                        return False
    except (
        TypeError,
        ValueError,
        RuntimeError,
        AttributeError,
    ):  # RuntimeError: not implemented too
        return False
    return True
