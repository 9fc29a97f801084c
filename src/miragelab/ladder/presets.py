"""Ladders: the model sizes, the training budget and how compute is shared among sizes.

Compute allocation
------------------
Every size of a ladder is trained on the **same number of tokens, in the same
order**: the batch at step ``s`` is a pure function of ``(seed, s)``, shared
by all sizes. This is the design of the Pythia suite and the cleanest test of
the paper's claim: the models differ in parameters only, so any change of a
metric along the ladder is a function of size, not of data. (Tokens
proportional to parameters, Chinchilla-style, would confound size with data
and starve the small models; with a shared token budget the largest model
dominates the cost anyway.) Each size's learning rate is in its spec. In
the GPU ladder rates fall with width, as usual for Adam (smaller models
tolerate larger steps). The CPU sizes are narrow enough to share one rate,
3e-3, and it matters: trained at 1.5e-3 for the same 1500 steps, the two
largest reach 0.8% and 10.2% exact match on ``add4`` instead of about 98%
and 92%. Where the ladder's capability step falls depends on the recipe as
well as on size.

Accounting
----------
``params`` is the exact parameter count (tied head counted once; see
:func:`miragelab.ladder.model.param_count`). ``tokens`` is every position
processed in training: ``steps * batch_size * (seq_len - 1)``, prompt,
answer and padding included (the loss is computed on answer tokens only,
but the forward and backward passes run over all positions). ``flops`` is
the usual estimate ``6 N D`` (forward 2 N D, backward 4 N D), with ``N`` the
total parameter count above (embeddings included; the vocabulary is 16
tokens, so they are small). The attention-score FLOPs, about ``6 L T d`` per
training token (Kaplan et al. 2020), are left out: at ``T = 15`` positions
that is about 1% of ``6 N`` for the largest CPU model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from miragelab.errors import InputError


@dataclass(frozen=True)
class SizeSpec:
    """One model of a ladder."""

    n_layer: int
    n_head: int
    n_embd: int
    lr: float

    @property
    def name(self) -> str:
        return f"L{self.n_layer}-d{self.n_embd}"


@dataclass(frozen=True)
class Preset:
    """A ladder: its sizes and the training budget every size shares."""

    name: str
    sizes: tuple[SizeSpec, ...]
    steps: int
    batch_size: int
    warmup_frac: float = 0.05
    min_lr_frac: float = 0.1
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.98)
    grad_clip: float = 1.0
    block_size: int = 32
    vocab_size: int = 16

    def to_dict(self) -> dict:
        out = asdict(self)
        out["sizes"] = [asdict(s) | {"name": s.name} for s in self.sizes]
        return out


#: six sizes, 4.1k .. 0.34M parameters (1.9 decades); see the module docstring
CPU_SIZES = (
    SizeSpec(1, 2, 16, 3e-3),
    SizeSpec(1, 2, 32, 3e-3),
    SizeSpec(2, 2, 32, 3e-3),
    SizeSpec(2, 3, 48, 3e-3),
    SizeSpec(3, 4, 64, 3e-3),
    SizeSpec(3, 4, 96, 3e-3),
)

PRESETS: dict[str, Preset] = {
    # six sizes, 4.1k .. 0.34M parameters (1.9 decades); see the module docstring
    "cpu": Preset(
        name="cpu",
        sizes=CPU_SIZES,
        steps=1500,
        batch_size=256,
    ),
    # the cpu sizes on twice the budget, for the addmix ladder of prediction 3 (five tasks
    # in one mix): at 1500 steps no size learned 3-digit sums (3-digit exact match <= 8%);
    # at 3000 the largest reaches 87% on 3 digits, 52% on 4, 0.5% on 5 (one probe run)
    "cpu-long": Preset(
        name="cpu-long",
        sizes=CPU_SIZES,
        steps=3000,
        batch_size=256,
    ),
    # larger ladder for a GPU: 0.1M .. 85M parameters; on one H200 in fp32 about 57 min
    # (the 85M model alone 34 min, at 76% of the card's fp32 matmul rate)
    "gpu": Preset(
        name="gpu",
        sizes=(
            SizeSpec(2, 2, 64, 2e-3),
            SizeSpec(3, 4, 128, 2e-3),
            SizeSpec(4, 4, 256, 1e-3),
            SizeSpec(6, 8, 384, 6e-4),
            SizeSpec(8, 8, 512, 6e-4),
            SizeSpec(12, 12, 768, 3e-4),
        ),
        steps=20_000,
        batch_size=512,
    ),
    # the cpu sizes on a tenth of the budget: `mirage reproduce --quick` (about a minute);
    # coarser, and the largest model need not learn the task
    "cpu-quick": Preset(
        name="cpu-quick",
        sizes=CPU_SIZES,
        steps=300,
        batch_size=128,
    ),
    # two tiny sizes for tests and smoke runs (seconds on a CPU)
    "tiny": Preset(
        name="tiny",
        sizes=(SizeSpec(1, 2, 8, 3e-3), SizeSpec(1, 2, 16, 3e-3)),
        steps=40,
        batch_size=32,
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(
            f"unknown preset {name!r}; known: {', '.join(PRESETS)}", field="preset"
        ) from None
