"""A training-time ladder with a genuine transition: induction heads in a tiny transformer.

Olsson et al. (2022) found that transformers with two or more layers form
*induction heads* abruptly during training: heads that look back to the token
after the previous occurrence of the current token and copy it
(``[A][B] ... [A] -> [B]``). The loss on text that repeats earlier text drops
suddenly when they form, while the loss on text that does not repeat does not.

The task
--------
Each sequence holds ``seq_len`` tokens drawn uniformly from ``vocab`` symbols.
A segment of ``seg_len`` tokens starting at ``s1`` (uniform in
``[0, seq_len // 2 - seg_len]``) is copied to ``s2`` (uniform in
``[s1 + seg_len, seq_len - seg_len]``). Positions are random per sequence, so
the copy cannot be learnt from absolute positions: the second occurrence is
predictable only by matching the current token with its earlier occurrence
and copying the token that followed it. Every other token is uniform noise, so
its best possible loss is ``log(vocab)``.

The *repeated part* are the targets ``s2 + 1 .. s2 + seg_len - 1`` (the first
token of the copy is not predictable); everything else is the *non-repeated
part*.

Per checkpoint (log-spaced steps), on a fixed evaluation set:

``loss_repeated`` / ``loss_nonrepeated``
    mean cross-entropy (nats) over the repeated / non-repeated targets;
``icl_score``
    Olsson et al.'s in-context learning score: mean loss at the late target
    positions ``[seq_len - 1 - icl_window, seq_len - 1)`` minus mean loss at
    the early ones ``[icl_window, 2 * icl_window)``. The late positions mostly
    lie in copies, the early ones never do, so it falls below zero once the
    model uses its context;
``prefix_matching``
    for every query in the copy (positions ``s2 + k``, ``k = 0 .. seg_len - 2``)
    the attention weight on the key right after the token's earlier occurrence
    (``s1 + k + 1``), averaged over queries and sequences, per head; the
    maximum over the heads of all layers. Uniform attention gives about
    ``1 / position`` (a few percent); an induction head approaches 1.

The pure-numpy pieces (:func:`repeat_mask`, :func:`split_losses`,
:func:`icl_score`, :func:`prefix_matching_scores`) are tested on hand-built
arrays; torch is imported inside :func:`train_induction` and the model code.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = [
    "CHECKPOINT_COLUMNS",
    "InductionConfig",
    "InductionRun",
    "checkpoint_steps",
    "icl_score",
    "make_sequences",
    "prefix_matching_scores",
    "repeat_mask",
    "run_to_scores",
    "split_losses",
    "train_induction",
]

#: columns of the per-checkpoint table of :func:`train_induction`, in order
CHECKPOINT_COLUMNS = (
    "step",
    "seconds",
    "train_loss",
    "loss_repeated",
    "loss_nonrepeated",
    "icl_score",
    "prefix_matching",
    "prefix_matching_head",
)


@dataclass(frozen=True)
class InductionConfig:
    """Everything that defines a run; the defaults train in a few minutes on 2 CPU cores."""

    vocab: int = 32
    seq_len: int = 48
    seg_len: int = 12
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    mlp: bool = False
    batch: int = 32
    steps: int = 4000
    lr: float = 1e-3
    warmup: int = 50
    weight_decay: float = 0.0
    n_checkpoints: int = 64
    first_checkpoint: int = 10
    eval_sequences: int = 256
    icl_window: int = 8
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        if not 2 <= self.seg_len <= self.seq_len // 2:
            raise ValueError(
                f"need 2 <= seg_len <= seq_len // 2 so both occurrences fit "
                f"(got seg_len={self.seg_len}, seq_len={self.seq_len})"
            )
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must divide by n_heads ({self.n_heads})")
        if not 1 <= self.first_checkpoint <= self.steps:
            raise ValueError("need 1 <= first_checkpoint <= steps")
        if 3 * self.icl_window > self.seq_len - 1:
            raise ValueError("icl_window too large for seq_len")

    @classmethod
    def quick(cls) -> InductionConfig:
        """A shorter run (tests, a quick look): fewer steps and checkpoints."""
        return cls(steps=2000, n_checkpoints=40, first_checkpoint=20, eval_sequences=128)


@dataclass(frozen=True)
class InductionRun:
    """A finished run: one row per checkpoint, the config, the training time, model size."""

    checkpoints: pd.DataFrame
    config: InductionConfig
    seconds: float
    params: int


# --------------------------------------------------------------------------- data and metrics


def make_sequences(
    rng: np.random.Generator, n: int, cfg: InductionConfig
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """``n`` sequences with one copied segment: tokens ``(n, seq_len)``, starts ``s1``, ``s2``."""
    tokens = rng.integers(0, cfg.vocab, size=(n, cfg.seq_len), dtype=np.int64)
    s1 = rng.integers(0, cfg.seq_len // 2 - cfg.seg_len + 1, size=n)
    low = s1 + cfg.seg_len
    s2 = low + np.floor(rng.random(n) * (cfg.seq_len - cfg.seg_len - low + 1)).astype(np.int64)
    offsets = np.arange(cfg.seg_len)
    rows = np.arange(n)[:, None]
    tokens[rows, s2[:, None] + offsets] = tokens[rows, s1[:, None] + offsets]
    return tokens, s1.astype(np.int64), s2.astype(np.int64)


def repeat_mask(s2: NDArray[np.int64], seg_len: int, seq_len: int) -> NDArray[np.bool_]:
    """Which *targets* are predictable by copying: shape ``(n, seq_len - 1)``.

    Target ``j`` is token ``j + 1`` (predicted at position ``j``); the repeated
    targets are tokens ``s2 + 1 .. s2 + seg_len - 1``, i.e. ``j`` in
    ``[s2, s2 + seg_len - 1)``.
    """
    j = np.arange(seq_len - 1)[None, :]
    start = np.asarray(s2)[:, None]
    return (j >= start) & (j < start + seg_len - 1)


def split_losses(token_losses: NDArray[np.float64], mask: NDArray[np.bool_]) -> tuple[float, float]:
    """Mean loss over the masked (repeated) targets and over the others."""
    losses = np.asarray(token_losses, dtype=float)
    m = np.asarray(mask, dtype=bool)
    return float(losses[m].mean()), float(losses[~m].mean())


def icl_score(token_losses: NDArray[np.float64], window: int) -> float:
    """Mean loss over the last ``window`` targets minus over targets ``[window, 2 window)``.

    ``token_losses`` has shape ``(n, seq_len - 1)``; negative when the model
    predicts late tokens better than early ones (it learns from its context).
    """
    losses = np.asarray(token_losses, dtype=float)
    late = losses[:, -window:].mean()
    early = losses[:, window : 2 * window].mean()
    return float(late - early)


def prefix_matching_scores(
    attention: NDArray[np.float64], s1: NDArray[np.int64], s2: NDArray[np.int64], seg_len: int
) -> NDArray[np.float64]:
    """Per-head prefix-matching score from attention weights ``(n, heads, T, T)``.

    For query ``s2 + k`` (``k = 0 .. seg_len - 2``), whose token equals the
    token at ``s1 + k``, the weight on key ``s1 + k + 1``; the mean over
    queries and sequences, one value per head (shape ``(heads,)``).
    """
    attn = np.asarray(attention, dtype=float)
    k = np.arange(seg_len - 1)[None, :]
    queries = np.asarray(s2)[:, None] + k
    keys = np.asarray(s1)[:, None] + k + 1
    rows = np.arange(attn.shape[0])[:, None]
    picked = attn[rows, :, queries, keys]  # (n, seg_len - 1, heads)
    return picked.mean(axis=(0, 1))


def checkpoint_steps(cfg: InductionConfig) -> NDArray[np.int64]:
    """Log-spaced, distinct checkpoint steps from ``first_checkpoint`` to ``steps``."""
    grid = np.geomspace(cfg.first_checkpoint, cfg.steps, cfg.n_checkpoints)
    return np.unique(np.round(grid).astype(np.int64))


# --------------------------------------------------------------------------- the model (torch)


def _build_model(cfg: InductionConfig) -> Any:
    import torch
    from torch import nn

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
            self.proj = nn.Linear(cfg.d_model, cfg.d_model)
            mask = torch.ones(cfg.seq_len, cfg.seq_len, dtype=torch.bool).tril()
            self.register_buffer("causal", mask, persistent=False)

        def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            b, t, d = h.shape
            q, k, v = self.qkv(h).split(d, dim=-1)
            shape = (b, t, cfg.n_heads, d // cfg.n_heads)
            q, k, v = (z.view(shape).transpose(1, 2) for z in (q, k, v))
            scores = q @ k.transpose(-1, -2) / math.sqrt(d // cfg.n_heads)
            scores = scores.masked_fill(~self.causal[:t, :t], float("-inf"))
            weights = scores.softmax(dim=-1)
            mixed = (weights @ v).transpose(1, 2).reshape(b, t, d)
            return self.proj(mixed), weights

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln = nn.LayerNorm(cfg.d_model)
            self.attn = Attention()
            self.mlp = (
                nn.Sequential(
                    nn.LayerNorm(cfg.d_model),
                    nn.Linear(cfg.d_model, 4 * cfg.d_model),
                    nn.GELU(),
                    nn.Linear(4 * cfg.d_model, cfg.d_model),
                )
                if cfg.mlp
                else None
            )

        def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            mixed, weights = self.attn(self.ln(h))
            h = h + mixed
            if self.mlp is not None:
                h = h + self.mlp(h)
            return h, weights

    class TinyGPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok = nn.Embedding(cfg.vocab, cfg.d_model)
            self.pos = nn.Embedding(cfg.seq_len, cfg.d_model)
            self.blocks = nn.ModuleList(Block() for _ in range(cfg.n_layers))
            self.ln = nn.LayerNorm(cfg.d_model)
            self.head = nn.Linear(cfg.d_model, cfg.vocab, bias=False)
            for module in self.modules():
                if isinstance(module, nn.Linear | nn.Embedding):
                    nn.init.normal_(module.weight, std=0.02)
                    if getattr(module, "bias", None) is not None:
                        nn.init.zeros_(module.bias)

        def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
            t = tokens.shape[1]
            h = self.tok(tokens) + self.pos(torch.arange(t, device=tokens.device))
            weights = []
            for block in self.blocks:
                h, w = block(h)
                weights.append(w)
            return self.head(self.ln(h)), weights

    return TinyGPT()


def _evaluate(model: Any, data: tuple[Any, ...], cfg: InductionConfig) -> dict[str, float]:
    import torch

    tokens, s1, s2, mask = data
    with torch.no_grad():
        logits, weights = model(torch.from_numpy(tokens))
        losses = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, cfg.vocab),
            torch.from_numpy(tokens[:, 1:]).reshape(-1),
            reduction="none",
        )
    token_losses = losses.view(tokens.shape[0], -1).numpy().astype(float)
    rep, nonrep = split_losses(token_losses, mask)
    per_head = np.concatenate(
        [prefix_matching_scores(w.numpy(), s1, s2, cfg.seg_len) for w in weights]
    )
    return {
        "loss_repeated": rep,
        "loss_nonrepeated": nonrep,
        "icl_score": icl_score(token_losses, cfg.icl_window),
        "prefix_matching": float(per_head.max()),
        "prefix_matching_head": int(per_head.argmax()),
    }


def train_induction(
    cfg: InductionConfig | None = None,
    on_checkpoint: Callable[[dict[str, float]], None] | None = None,
) -> InductionRun:
    """Train the tiny transformer and measure every checkpoint (see the module docstring).

    Deterministic for a given config on one machine: the data come from
    ``numpy.random.default_rng(seed)`` and the weights from
    ``torch.manual_seed(seed)``. ``on_checkpoint`` is called with each row.
    ``prefix_matching_head`` numbers heads ``layer * n_heads + head``.
    """
    import torch

    cfg = cfg or InductionConfig()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = _build_model(cfg)
    params = int(sum(p.numel() for p in model.parameters()))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(cfg.warmup, 1))
    )
    data_rng = np.random.default_rng(cfg.seed)
    eval_rng = np.random.default_rng([cfg.seed, 1])
    tokens, s1, s2 = make_sequences(eval_rng, cfg.eval_sequences, cfg)
    eval_data = (tokens, s1, s2, repeat_mask(s2, cfg.seg_len, cfg.seq_len))
    wanted = set(checkpoint_steps(cfg).tolist())
    rows: list[dict[str, float]] = []
    start = time.perf_counter()
    running = float("nan")
    for step in range(1, cfg.steps + 1):
        batch, _, _ = make_sequences(data_rng, cfg.batch, cfg)
        x = torch.from_numpy(batch)
        logits, _ = model(x)
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, cfg.vocab), x[:, 1:].reshape(-1)
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        value = loss.item()
        running = value if math.isnan(running) else 0.9 * running + 0.1 * value
        if step in wanted:
            model.eval()
            row = {"step": step, "seconds": time.perf_counter() - start, "train_loss": running}
            row.update(_evaluate(model, eval_data, cfg))
            model.train()
            rows.append(row)
            if on_checkpoint is not None:
                on_checkpoint(row)
    seconds = time.perf_counter() - start
    table = pd.DataFrame(rows, columns=list(CHECKPOINT_COLUMNS))
    return InductionRun(table, cfg, seconds, params)


def run_to_scores(run: InductionRun, model_name: str = "induction-2L") -> pd.DataFrame:
    """The run as a scores table (task ``induction``, one curve per metric over ``step``).

    ``loss_*`` and ``icl_score`` are lower-is-better; ``prefix_matching`` is
    higher-is-better. The table validates against :data:`miragelab.tables.SCORES`
    and can be fed back to ``mirage transitions detect``.
    """
    from miragelab.tables import SCORES, validate_frame

    metrics = {
        "loss_repeated": False,
        "loss_nonrepeated": False,
        "icl_score": False,
        "prefix_matching": True,
    }
    rows = []
    for record in run.checkpoints.itertuples(index=False):
        for metric, higher in metrics.items():
            rows.append(
                {
                    "task": "induction",
                    "family": "induction-gpt",
                    "model": model_name,
                    "params": float(run.params),
                    "step": int(record.step),
                    "metric": metric,
                    "value": float(getattr(record, metric)),
                    "n": run.config.eval_sequences,
                    "higher_is_better": higher,
                }
            )
    frame = pd.DataFrame(rows)
    for column in SCORES.columns:
        if column not in frame.columns:
            frame[column] = None
    return validate_frame(frame[SCORES.columns], SCORES)


def config_dict(cfg: InductionConfig) -> dict[str, Any]:
    """The config as a plain dict (for JSON)."""
    return asdict(cfg)


def with_overrides(cfg: InductionConfig, **changes: Any) -> InductionConfig:
    """A copy of ``cfg`` with the given (non-None) fields changed."""
    return replace(cfg, **{k: v for k, v in changes.items() if v is not None})
