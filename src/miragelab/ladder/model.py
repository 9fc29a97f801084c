"""A nanoGPT-style decoder whose parameters are laid out exactly as GPT-2's.

Pre-LayerNorm blocks, learned position embeddings, GELU with the tanh
approximation (``gelu_new`` in transformers), tied input/output embeddings,
no dropout. Every projection stores its weight as ``(in, out)`` like GPT-2's
``Conv1D``, and the modules carry GPT-2's names
(``transformer.h.0.attn.c_attn.weight`` ...), so the state dict *is* a
``GPT2LMHeadModel`` state dict (minus the tied ``lm_head``).

Parameter count (``V`` vocabulary, ``T`` positions, ``d`` width, ``L`` layers)::

    N = V d + T d + L (12 d^2 + 13 d) + 2 d

per layer: two LayerNorms (4 d), ``c_attn`` (3 d^2 + 3 d), ``c_proj``
(d^2 + d), ``c_fc`` (4 d^2 + 4 d), ``mlp.c_proj`` (4 d^2 + d); then the final
LayerNorm (2 d). The output head is tied to ``wte`` and adds nothing.

Decoding: :func:`greedy_decode` runs batched greedy decoding with a
preallocated key/value cache; :func:`greedy_with_reference` gives the same
answers together with the teacher-forced log-probabilities of reference
answers, decoding step by step only where the model leaves its reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class GPTConfig:
    """Shape of one model; field names follow nanoGPT, values map onto GPT2Config."""

    n_layer: int
    n_head: int
    n_embd: int
    vocab_size: int = 16
    block_size: int = 32
    layer_norm_epsilon: float = 1e-5

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}")

    def to_dict(self) -> dict:
        return asdict(self)


def param_count(cfg: GPTConfig) -> int:
    """The closed form of the module docstring (tied head counted once)."""
    d, L = cfg.n_embd, cfg.n_layer
    return cfg.vocab_size * d + cfg.block_size * d + L * (12 * d * d + 13 * d) + 2 * d


class Conv1D(nn.Module):
    """``x @ W + b`` with ``W`` of shape ``(in, out)``: GPT-2's layout."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape[:-1] + (self.weight.shape[1],)
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(shape)


#: on a CPU, prompts of batches this large or larger are attended without the fused kernel
FUSED_PREFILL_BELOW = 16


def _attention(q: Tensor, k: Tensor, v: Tensor, causal: bool) -> Tensor:
    """Attention of the cached decoder: ``softmax(q k^T / sqrt(d)) v``, causal or not.

    ``k`` and ``v`` are ``(batch, heads, length, head_dim)`` slices of the
    cache, whose layout lets batch and heads merge into one dimension without
    a copy. Which form is faster depends on the device and the shape:

    - On a CUDA device it is always written out as two batched products:
      decoding asks for one query (or a prompt's few) per row, and the fused
      kernels behind ``scaled_dot_product_attention`` tile 64 queries,
      wasting most of each tile (on an H200 they took two thirds of a
      decoding step at batch 2000).
    - On a CPU the fused kernel is the faster one for one query per row (a
      decoding step) and for the prompts of a small batch, but the written-out
      form is twice as fast on the prompts of a large batch (10-token prompts,
      batch 2000, 2 cores: 13.5 against 24.4 ms per layer).
    """
    batch, heads, t, hd = q.shape
    if not q.is_cuda and (not causal or batch < FUSED_PREFILL_BELOW):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    # scaling q also gathers it from the fused projection's layout
    q3 = q.mul(1.0 / math.sqrt(hd)).reshape(batch * heads, t, hd)
    length = k.shape[-2]
    scores = torch.bmm(q3, k.reshape(batch * heads, length, hd).transpose(1, 2))
    if causal:
        future = torch.ones(t, length, dtype=torch.bool, device=q.device).triu_(1)
        scores.masked_fill_(future, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    return torch.bmm(probs, v.reshape(batch * heads, length, hd)).view(batch, heads, t, hd)


def _add_projection(x: Tensor, y: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """``x + y @ weight + bias``, a residual connection, in the fewest passes per device.

    On a CPU the residual is the product's accumulator (``addmm`` with
    ``beta=1``) and the bias follows in place: two passes instead of three.
    On a CUDA device the bias rides in the product's epilogue (cuBLASLt), so
    a product and one add make it: two kernels instead of three.
    """
    if y.is_cuda:
        return x + torch.addmm(bias, y, weight)
    return torch.addmm(x, y, weight).add_(bias)


class Attention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = Conv1D(cfg.n_embd, 3 * cfg.n_embd)
        self.c_proj = Conv1D(cfg.n_embd, cfg.n_embd)

    def _heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        shape = (b, t, self.n_head, c // self.n_head)
        return tuple(z.view(shape).transpose(1, 2) for z in (q, k, v))  # type: ignore[return-value]

    def _merge(self, y: Tensor) -> Tensor:
        b, h, t, hd = y.shape
        return self.c_proj(y.transpose(1, 2).reshape(b, t, h * hd))

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self._heads(x)
        return self._merge(F.scaled_dot_product_attention(q, k, v, is_causal=True))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.c_fc = Conv1D(cfg.n_embd, 4 * cfg.n_embd)
        self.c_proj = Conv1D(4 * cfg.n_embd, cfg.n_embd)

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.attn = Attention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.mlp = MLP(cfg)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class TinyGPT(nn.Module):
    """Decoder-only transformer; ``state_dict()`` keys are GPT2LMHeadModel's."""

    def __init__(self, cfg: GPTConfig, seed: int | None = None) -> None:
        super().__init__()
        self.config = cfg
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(cfg.vocab_size, cfg.n_embd),
                "wpe": nn.Embedding(cfg.block_size, cfg.n_embd),
                "h": nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer)),
                "ln_f": nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon),
            }
        )
        self.reset_parameters(seed)

    @torch.no_grad()
    def reset_parameters(self, seed: int | None = None) -> None:
        """GPT-2 initialisation: N(0, 0.02), residual projections N(0, 0.02 / sqrt(2 L))."""
        gen = torch.Generator().manual_seed(0 if seed is None else seed)
        resid_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif ".ln_" in name or "ln_f" in name:
                p.fill_(1.0)
            else:
                std = resid_std if name.endswith("c_proj.weight") else 0.02
                p.copy_(torch.randn(p.shape, generator=gen) * std)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _embed(self, idx: Tensor, pos: int = 0) -> Tensor:
        positions = torch.arange(pos, pos + idx.shape[1], device=idx.device)
        return self.transformer.wte(idx) + self.transformer.wpe(positions)

    def _head(self, x: Tensor) -> Tensor:
        return self.transformer.ln_f(x) @ self.transformer.wte.weight.T

    def forward(self, idx: Tensor) -> Tensor:
        """Logits of shape ``(batch, time, vocab)``."""
        x = self._embed(idx)
        for block in self.transformer.h:
            x = block(x)
        return self._head(x)

    def new_cache(self, batch: int, length: int) -> list[Tensor]:
        """One ``(2, batch, heads, length, head_dim)`` key/value buffer per layer.

        Keys and values of a layer share one buffer, so a decoding step stores
        both with a single copy straight out of the fused ``c_attn`` output;
        keys and values each stay ``(batch, heads, ...)``-contiguous, so
        attention reads them as one batch of ``batch * heads`` matrices.
        """
        cfg = self.config
        w = self.transformer.wte.weight
        shape = (2, batch, cfg.n_head, length, cfg.n_embd // cfg.n_head)
        return [torch.empty(shape, dtype=w.dtype, device=w.device) for _ in range(cfg.n_layer)]

    def forward_cached(
        self,
        idx: Tensor,
        cache: list[Tensor],
        pos: int,
        weights: tuple | None = None,
    ) -> Tensor:
        """Logits of the last position of ``idx``, placed at ``pos..``; updates ``cache``.

        Either a prefill (``pos == 0``, any length) or one decoding step (one
        token per row). The same computation as :meth:`forward`, written with
        functional ops on the weights: at decoding batch sizes the cost of a
        step is mostly per-call overhead, and skipping ``nn.Module.__call__``
        halves it.
        """
        batch, t = idx.shape
        if t > 1 and pos != 0:
            raise ValueError(f"a prefill of {t} tokens must start at position 0, not {pos}")
        wte, wpe, layers, (lnf_w, lnf_b) = weights or self.flat_weights()
        x = F.embedding(idx, wte) + wpe[pos : pos + t]
        if t == 1:
            x = self._step(x.view(batch, -1), layers, cache, pos)
        else:
            x = self._prefill(x.view(batch * t, -1), layers, cache, batch, t)
        return F.layer_norm(x, x.shape[-1:], lnf_w, lnf_b, self.config.layer_norm_epsilon) @ wte.T

    def _prefill(self, x: Tensor, layers: tuple, cache: list[Tensor], batch: int, t: int) -> Tensor:
        """Fill the cache with the prompt's keys and values; the last position's hidden state.

        The last layer's keys and values need every position, but its output
        is needed only at the last one, so there attention, ``c_proj`` and the
        MLP (three quarters of the layer's FLOPs) run on one row per prompt.
        """
        cfg = self.config
        d, h, eps = cfg.n_embd, cfg.n_head, cfg.layer_norm_epsilon
        last_layer = len(layers) - 1
        for i, (
            ln1_w,
            ln1_b,
            qkv_b,
            qkv_w,
            o_b,
            o_w,
            ln2_w,
            ln2_b,
            fc_b,
            fc_w,
            p_b,
            p_w,
        ) in enumerate(layers):
            kv = cache[i]
            a = F.layer_norm(x, (d,), ln1_w, ln1_b, eps)
            # (3, batch, heads, t, head_dim)
            qkv = torch.addmm(qkv_b, a, qkv_w).view(batch, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
            kv[:, :, :, :t] = qkv[1:]
            keys, values = kv[0, :, :, :t], kv[1, :, :, :t]
            if i == last_layer:
                y = _attention(qkv[0, :, :, -1:], keys, values, causal=False)
                x = x.view(batch, t, d)[:, -1]
                y = y.reshape(batch, d)
            else:
                y = _attention(qkv[0], keys, values, causal=True)
                y = y.transpose(1, 2).reshape(-1, d)
            x = _add_projection(x, y, o_w, o_b)
            m = F.layer_norm(x, (d,), ln2_w, ln2_b, eps)
            x = _add_projection(x, F.gelu(torch.addmm(fc_b, m, fc_w), approximate="tanh"), p_w, p_b)
        return x

    def _step(self, x: Tensor, layers: tuple, cache: list[Tensor], pos: int) -> Tensor:
        """One new token per row at position ``pos``: the hidden states ``(batch, d)``.

        Written for few ops: one token's ``(batch, 3 d)`` projection is already
        ``(batch, 3, heads, 1, head_dim)``, so keys and values go to the cache
        in one copy, and every projection is one ``addmm``
        (:func:`_add_projection` for the two on the residual stream).
        """
        cfg = self.config
        d, h, eps = cfg.n_embd, cfg.n_head, cfg.layer_norm_epsilon
        batch, end = x.shape[0], pos + 1
        for (ln1_w, ln1_b, qkv_b, qkv_w, o_b, o_w, ln2_w, ln2_b, fc_b, fc_w, p_b, p_w), kv in zip(
            layers, cache, strict=True
        ):
            a = F.layer_norm(x, (d,), ln1_w, ln1_b, eps)
            qkv = torch.addmm(qkv_b, a, qkv_w).view(batch, 3, h, 1, d // h)
            kv.narrow(3, pos, 1).copy_(qkv.narrow(1, 1, 2).transpose(0, 1))
            seen = kv.narrow(3, 0, end)
            y = _attention(qkv.select(1, 0), seen[0], seen[1], causal=False)
            x = _add_projection(x, y.view(batch, d), o_w, o_b)
            m = F.layer_norm(x, (d,), ln2_w, ln2_b, eps)
            m = F.gelu(torch.addmm(fc_b, m, fc_w), approximate="tanh")
            x = _add_projection(x, m, p_w, p_b)
        return x

    def flat_weights(self) -> tuple:
        """The parameters as plain tuples, in the order :meth:`forward_cached` uses them.

        Looking a parameter up through ``nn.Module.__getattr__`` costs more than
        a small decoding step's arithmetic, so a decoding loop fetches them once.
        """
        # plain dictionary reads: ``module.attr`` goes through ``nn.Module.__getattr__``,
        # and this model's 40 parameters took 70 us that way, a twentieth of a batch-1 decode
        tr = self.transformer._modules

        def params(module: nn.Module) -> tuple[Tensor, Tensor]:
            return module._parameters["bias"], module._parameters["weight"]

        layers = []
        for block in tr["h"]._modules.values():
            sub = block._modules
            attn, mlp = sub["attn"]._modules, sub["mlp"]._modules
            ln1_b, ln1_w = params(sub["ln_1"])
            ln2_b, ln2_w = params(sub["ln_2"])
            layers.append(
                (ln1_w, ln1_b, *params(attn["c_attn"]), *params(attn["c_proj"]), ln2_w, ln2_b)
                + params(mlp["c_fc"])
                + params(mlp["c_proj"])
            )
        lnf_b, lnf_w = params(tr["ln_f"])
        wte, wpe = (tr[k]._parameters["weight"] for k in ("wte", "wpe"))
        return (wte, wpe, tuple(layers), (lnf_w, lnf_b))


@torch.inference_mode()
def greedy_decode(
    model: TinyGPT,
    prompts: Tensor,
    max_new_tokens: int,
    eos_id: int,
    use_cache: bool = True,
    graph: bool | None = None,
) -> Tensor:
    """Greedy continuation of equal-length ``prompts`` (``(batch, P)`` ids).

    Returns ``(batch, max_new_tokens)`` ids; after a row's ``eos_id`` the row
    repeats ``eos_id``. Decoding stops early when every row has ended. With
    ``use_cache=False`` every step reruns the full prefix (the reference the
    cache is tested against).

    ``graph`` (default: on a CUDA device) replays the whole cached decoding
    as one CUDA graph, captured once per model and shape (batch rounded up to
    a power of two): a tiny model's step is a few dozen kernels of
    microseconds each, so launching them one by one costs more than running
    them. A graph has no early stop; it runs every step, and the answers are
    the same.
    """
    batch, length = prompts.shape
    if length + max_new_tokens > model.config.block_size + 1:
        raise ValueError(
            f"prompt {length} + {max_new_tokens} new tokens exceed block size "
            f"{model.config.block_size}"
        )
    if batch == 0:
        return torch.empty((0, max_new_tokens), dtype=torch.long, device=prompts.device)
    if graph is None:
        graph = prompts.device.type == "cuda"
    if use_cache and graph:

        def decode(rows: Tensor) -> tuple[Tensor]:
            return (_decode(model, rows, max_new_tokens, eos_id, use_cache=True, stop_early=False),)

        (out,) = _replay(model, ("decode", max_new_tokens, eos_id), decode, prompts)
        return out
    return _decode(model, prompts, max_new_tokens, eos_id, use_cache, stop_early=True)


def _decode(
    model: TinyGPT, prompts: Tensor, new: int, eos_id: int, use_cache: bool, stop_early: bool
) -> Tensor:
    """The decoding loop of :func:`greedy_decode`; a CUDA graph captures it without
    ``stop_early`` (checking whether every row has ended waits for the device)."""
    batch, length = prompts.shape
    done = torch.zeros(batch, dtype=torch.bool, device=prompts.device)
    if use_cache:
        cache = model.new_cache(batch, length + new)
        weights = model.flat_weights()
        logits = model.forward_cached(prompts, cache, 0, weights)
    else:
        seq = prompts
        logits = model(seq)[:, -1]
    steps = []
    for step in range(new):
        nxt = logits.argmax(dim=-1)
        steps.append(nxt)
        if step + 1 == new:
            break
        if stop_early:
            done |= nxt == eos_id
            if bool(done.all()):
                break
        if use_cache:
            logits = model.forward_cached(nxt[:, None], cache, length + step, weights)
        else:
            seq = torch.cat([seq, nxt[:, None]], dim=1)
            logits = model(seq)[:, -1]
    out = torch.full((batch, new), eos_id, dtype=torch.long, device=prompts.device)
    out[:, : len(steps)] = torch.stack(steps, dim=1)
    # rows are independent, so a finished row's later tokens were computed and are dropped
    # here, in one pass, instead of being masked at every step
    return _end_at_first_eos(out, eos_id)


def _end_at_first_eos(out: Tensor, eos_id: int) -> Tensor:
    """``out`` (in place) with every token after a row's first ``eos_id`` set to ``eos_id``."""
    return out.masked_fill_((out == eos_id).cumsum(dim=1) > 0, eos_id)


#: captured graphs kept per model (each holds its own buffers)
GRAPHS_PER_MODEL = 8


class _Graphed:
    """A function of one fixed-shape tensor, captured as a CUDA graph and replayed."""

    def __init__(self, fn: Callable[[Tensor], tuple[Tensor, ...]], example: Tensor) -> None:
        device = example.device
        self.input = example.clone()
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):  # warm-up: kernels picked, workspaces allocated
            fn(self.input)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = fn(self.input)

    def __call__(self, x: Tensor) -> tuple[Tensor, ...]:
        self.input.copy_(x)
        self.graph.replay()
        return tuple(o.clone() for o in self.out)


def _replay(
    model: TinyGPT, kind: tuple, fn: Callable[[Tensor], tuple[Tensor, ...]], rows: Tensor
) -> tuple[Tensor, ...]:
    """``fn(rows)``, a tuple of tensors, as a replayed CUDA graph captured on first use for
    ``kind`` and the shape.

    The batch is rounded up to a power of two (padded with copies of the first
    row, whose results are dropped), so a few graphs serve any batch size.
    """
    batch = rows.shape[0]
    if batch == 0:  # nothing to capture
        return fn(rows)
    padded = 1 << (batch - 1).bit_length()
    rows = torch.cat([rows, rows[:1].expand(padded - batch, *rows.shape[1:])])
    # a graph reads the weights from where they were at capture: moved weights need a new one
    wte, wpe, layers, final = model.flat_weights()
    where = tuple(w.data_ptr() for w in (wte, wpe, *final, *(w for ws in layers for w in ws)))
    graphs: dict = model.__dict__.setdefault("_graphs", {})
    key = (kind, tuple(rows.shape), str(rows.device), where)
    if key not in graphs:
        if len(graphs) >= GRAPHS_PER_MODEL:
            graphs.pop(next(iter(graphs)))
        graphs[key] = _Graphed(fn, rows)
    return tuple(o[:batch] for o in graphs[key](rows))


@torch.inference_mode()
def greedy_with_reference(
    model: TinyGPT, tokens: Tensor, prompt_len: int, eos_id: int, graph: bool | None = None
) -> tuple[Tensor, Tensor]:
    """Greedy continuations and teacher-forced reference log-probs, from one shared pass.

    ``tokens`` is ``(batch, T)``: prompt, reference answer, ``eos_id``, any
    padding; a continuation has up to ``T - prompt_len`` tokens. Returns the
    answers :func:`greedy_decode` gives (``T - prompt_len`` new tokens) and
    the natural-log probability of every reference token given all before it
    (``(batch, T - prompt_len)``, in float64).

    Why one pass serves both: greedy decoding follows the reference for as
    long as the teacher-forced argmax equals the reference token (the check
    behind lm-eval's ``is_greedy``; the reference is the draft of speculative
    decoding). So the pass that gives the log-probs also gives, per row, the
    first position where greedy decoding leaves the reference and the token it
    takes there. Only rows that leave it for a token other than the end token
    are decoded step by step, all together from the prompt (the answers of
    :func:`greedy_decode` itself). A model that answers most examples right is
    then decoded almost for free.

    ``graph`` (default: on a CUDA device) replays the teacher-forced pass as a
    CUDA graph too, captured once per model and shape like
    :func:`greedy_decode`'s: at a tiny model's sizes, launching its hundred
    kernels one by one takes longer than running them.
    """
    new = tokens.shape[1] - prompt_len
    if not bool((tokens[:, prompt_len:] == eos_id).any(dim=1).all()):
        raise ValueError("every reference must end with the end token within the sequence")
    if graph is None:
        graph = tokens.device.type == "cuda"

    def follow(rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return _follow_reference(model, rows, prompt_len, eos_id)

    if graph:
        out, logprobs, redo = _replay(model, ("reference", prompt_len, eos_id), follow, tokens)
    else:
        out, logprobs, redo = follow(tokens)
    # rows that leave the reference for a token other than the end token are decoded
    # again from the prompt, all in one call (one shape: a CUDA graph serves it)
    going = redo.nonzero()[:, 0]
    out[going] = greedy_decode(model, tokens[going, :prompt_len], new, eos_id, graph=graph)
    return _end_at_first_eos(out, eos_id), logprobs


def _follow_reference(
    model: TinyGPT, tokens: Tensor, prompt_len: int, eos_id: int
) -> tuple[Tensor, Tensor, Tensor]:
    """The one teacher-forced pass of :func:`greedy_with_reference`, with no host sync.

    Returns the answers up to each row's first departure from its reference
    (the model's token there, then end tokens), the reference log-probs, and
    which rows must be decoded again (they left for a token other than the end).
    """
    batch, length = tokens.shape
    new = length - prompt_len
    logits = model(tokens[:, :-1])[:, prompt_len - 1 :]
    logp = torch.log_softmax(logits.double(), dim=-1)
    reference = tokens[:, prompt_len:]
    logprobs = logp.gather(-1, reference[..., None])[..., 0]
    guess = logits.argmax(dim=-1)
    ends = reference == eos_id
    # positions up to and including the reference's first end token
    inside = ends.cumsum(dim=1).sub_(ends.long()) == 0
    differs = (guess != reference) & inside
    steps = torch.arange(new, device=tokens.device).expand(batch, new)
    first = torch.where(differs, steps, new).amin(dim=1)  # == new: follows to the end token
    # the reference up to the first departure, the model's token there, then nothing
    after = torch.where(steps == first[:, None], guess, eos_id)
    out = torch.where(steps < first[:, None], reference, after)
    taken = out.gather(1, first.clamp(max=new - 1)[:, None])[:, 0]
    return out, logprobs, (first < new) & (taken != eos_id)
