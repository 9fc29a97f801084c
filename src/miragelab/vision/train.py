"""The networks of the vision ladders and their training (torch, CPU).

Two families, one hidden layer each, so that size is one number, the width
``h``:

* :func:`autoencoder` -- ``D -> h -> D``: ``Linear(D, h)``, ``tanh``,
  ``Linear(h, D)``; ``params = 2 D h + h + D``. A shallow nonlinear
  autoencoder as in the paper's CIFAR-100 experiment.
* :func:`mlp_classifier` -- ``D -> h -> classes``: ``Linear(D, h)``,
  ``tanh``, ``Linear(h, classes)``; ``params = (D + 1) h + (h + 1) classes``.

Training (:func:`fit`): Adam on mini-batches, the same number of epochs for
every width (a fixed training budget, as an LLM ladder trained on a fixed
number of tokens). Determinism: the initial weights and the order of the
mini-batches come from ``torch.manual_seed`` / a ``torch.Generator`` seeded
with :func:`model_seed` of the (ladder seed, width), and training runs under
``torch.use_deterministic_algorithms(True)``; the same seed, width, data and
thread count give bit-identical weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

__all__ = [
    "TrainConfig",
    "autoencoder",
    "deterministic",
    "fit",
    "mlp_classifier",
    "model_seed",
    "n_params",
    "train_autoencoder",
    "train_classifier",
]


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser settings shared by every model of a ladder."""

    epochs: int
    batch_size: int = 64
    lr: float = 1e-3


def model_seed(seed: int, width: int) -> int:
    """The torch seed of one model: a fixed function of the ladder seed and the width.

    Each model can be retrained alone, in any order, and get the same weights.
    """
    return int(seed) * 1_000_003 + int(width)


@contextlib.contextmanager
def deterministic(threads: int | None = None) -> Iterator[None]:
    """Deterministic torch algorithms (and optionally a thread count) inside the block."""
    before = torch.are_deterministic_algorithms_enabled()
    before_threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)
        torch.set_num_threads(before_threads)


def autoencoder(n_features: int, width: int) -> nn.Sequential:
    """``Linear(D, h) -> tanh -> Linear(h, D)``."""
    return nn.Sequential(nn.Linear(n_features, width), nn.Tanh(), nn.Linear(width, n_features))


def mlp_classifier(n_features: int, width: int, n_classes: int) -> nn.Sequential:
    """``Linear(D, h) -> tanh -> Linear(h, classes)`` (logits)."""
    return nn.Sequential(nn.Linear(n_features, width), nn.Tanh(), nn.Linear(width, n_classes))


def n_params(model: nn.Module) -> int:
    """Exact number of trainable parameters."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def fit(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    config: TrainConfig,
    generator: torch.Generator,
) -> nn.Module:
    """Adam on shuffled mini-batches for ``config.epochs`` epochs (order from ``generator``)."""
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    n = inputs.shape[0]
    model.train()
    for _ in range(config.epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, config.batch_size):
            batch = order[start : start + config.batch_size]
            loss = loss_fn(model(inputs[batch]), targets[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    model.eval()
    return model


def _mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.mean(torch.square(out - target))


def train_autoencoder(
    x_train: NDArray[np.float32],
    x_test: NDArray[np.float32],
    width: int,
    seed: int,
    config: TrainConfig,
) -> tuple[NDArray[np.float32], int]:
    """Train one autoencoder on ``x_train`` (rows); return its test reconstructions and params."""
    torch.manual_seed(model_seed(seed, width))
    generator = torch.Generator().manual_seed(model_seed(seed, width))
    train = torch.as_tensor(np.ascontiguousarray(x_train, dtype=np.float32))
    model = autoencoder(train.shape[1], width)
    fit(model, _mse, train, train, config, generator)
    with torch.no_grad():
        xhat = model(torch.as_tensor(np.ascontiguousarray(x_test, dtype=np.float32)))
    return xhat.numpy(), n_params(model)


def train_classifier(
    x_train: NDArray[np.float32],
    y_train: NDArray[np.int64],
    x_test: NDArray[np.float32],
    width: int,
    n_classes: int,
    seed: int,
    config: TrainConfig,
) -> tuple[NDArray[np.int64], int]:
    """Train one MLP classifier; return its test predictions (argmax) and params."""
    torch.manual_seed(model_seed(seed, width))
    generator = torch.Generator().manual_seed(model_seed(seed, width))
    train = torch.as_tensor(np.ascontiguousarray(x_train, dtype=np.float32))
    labels = torch.as_tensor(np.asarray(y_train, dtype=np.int64))
    model = mlp_classifier(train.shape[1], width, n_classes)
    fit(model, nn.functional.cross_entropy, train, labels, config, generator)
    with torch.no_grad():
        logits = model(torch.as_tensor(np.ascontiguousarray(x_test, dtype=np.float32)))
    return logits.argmax(dim=1).numpy().astype(np.int64), n_params(model)
