"""The two induced-emergence ladders of the paper's Part IV, and their analysis.

:func:`run_autoencoder_ladder` trains shallow autoencoders of increasing width
and scores each on the test images with the smooth per-image MSE and the sharp
``Reconstruction_c`` for several thresholds ``c``;
:func:`run_classifier_ladder` trains MLP classifiers of increasing width and
scores each with the smooth per-image accuracy and the sharp subset accuracy
for several sequence lengths ``K`` (see :mod:`miragelab.vision.metrics`).

Both return the *runs*: one row per (model, training seed, metric).
:func:`summarise` turns runs into a validated scores table (one row per
(task, family, model, metric)):

* ``value`` is the mean over training seeds;
* ``ci_low``/``ci_high`` a 95% Student-t interval over seeds
  (``mean +- t_{0.975, s-1} * sd / sqrt(s)``), clipped to the metric's range
  ([0, 1] for shares, [0, inf) for the MSE); ``stderr = sd / sqrt(s)``;
  both null with one seed;
* ``n`` is the number of training seeds ``s`` (not the number of test
  images: the interval is over seeds; each seed's value is itself a mean over
  the same test images);
* ``params`` is the exact number of trainable parameters.

:func:`analyse` adds the emergence measures of every metric's curve
(:func:`miragelab.emergence.measures_table`) and the verdict of every (sharp,
smooth) pair (:func:`miragelab.verdict.verdict_table` with explicit pairs).
Everything returns data; :func:`miragelab.report.vision_figures.write_vision_outputs`
writes a ladder's tables and figure.

The default ladders
-------------------
Every model of a ladder gets the same training budget (epochs), chosen so
that the smooth metric keeps improving across the ladder rather than
saturating after its first few widths (a saturated tail of equal values is
itself read as a concentrated change by the emergence measures):

* autoencoder: 15 widths 1..192 (193 to 24,832 parameters on digits), 150
  epochs, Adam lr 3e-3, batch 64. MSE falls about linearly in log width up to
  h = 64, then stays near 0.
* classifier: 10 widths 1..512 (85 to 38,410 parameters), 5 epochs, Adam lr
  1e-3, batch 64: accuracy rises from about 0.15 to 0.94 across the whole
  ladder. With 15 epochs the accuracy saturates by h = 64 and its curve
  itself reads as emergent-looking (smoothness 0.39 on digits); the sharp
  metrics at K = 20 and 50 read as ``mirage`` under both budgets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from miragelab.emergence import measures_table
from miragelab.errors import InputError
from miragelab.meta import EMERGENT_SMOOTHNESS
from miragelab.stats import t_interval
from miragelab.tables import SCORES, validate_frame
from miragelab.verdict import verdict_table
from miragelab.vision.data import ImageData, train_test_split
from miragelab.vision.metrics import (
    make_sequences,
    per_image_correct,
    per_image_mse,
    squared_errors,
    subset_accuracy,
)

__all__ = [
    "AUTOENCODER",
    "AUTOENCODER_QUICK",
    "CLASSIFIER",
    "CLASSIFIER_QUICK",
    "LadderSpec",
    "VisionResult",
    "analyse",
    "default_thresholds",
    "reconstruction_metric",
    "run_autoencoder_ladder",
    "run_classifier_ladder",
    "metric_roles",
    "run_ladder",
    "subset_metric",
    "summarise",
]

#: per-image MSE thresholds of the digits defaults, as ``c / D`` (D = 64 values per image)
DIGITS_THRESHOLDS = (0.05, 0.25, 1.0)
DIGITS_FEATURES = 64

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LadderSpec:
    """One ladder: widths, seeds, training budget and the sharp metrics' settings.

    ``thresholds`` are the ``c`` of ``Reconstruction_c`` (summed squared error
    of one image); ``ks`` the sequence lengths of subset accuracy, each
    scored on ``n_sequences`` random sequences drawn with ``sequence_seed``.
    The train/test split is fixed by ``split_seed`` and ``test_fraction``.
    """

    widths: tuple[int, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    thresholds: tuple[float, ...] = DIGITS_THRESHOLDS
    ks: tuple[int, ...] = (1, 2, 3, 4, 5, 10, 20, 50)
    n_sequences: int = 10_000
    sequence_seed: int = 0
    split_seed: int = 0
    test_fraction: float = 0.3

    def __post_init__(self) -> None:
        if len(self.widths) < 3 or any(w < 1 for w in self.widths):
            raise InputError(
                f"need at least 3 widths (integers >= 1) for a curve, got {self.widths}",
                field="widths",
            )
        if len(set(self.widths)) != len(self.widths):
            raise InputError(f"widths must be distinct, got {self.widths}", field="widths")
        if len(self.seeds) < 1 or len(set(self.seeds)) != len(self.seeds):
            raise InputError(f"need distinct seeds, got {self.seeds}", field="seeds")
        if self.epochs < 1:
            raise InputError(f"must be >= 1, got {self.epochs}", field="epochs")
        if any(not c > 0 for c in self.thresholds):
            raise InputError(f"thresholds must be > 0, got {self.thresholds}", field="thresholds")
        if any(k < 1 for k in self.ks) or len(set(self.ks)) != len(self.ks):
            raise InputError(f"K values must be distinct integers >= 1, got {self.ks}", field="k")


#: the default autoencoder ladder: 15 widths, params 193 .. 24,832 on digits (2.1 decades)
AUTOENCODER = LadderSpec(
    widths=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192), epochs=150, lr=3e-3
)
#: a small autoencoder ladder for tests and quick reproduction
AUTOENCODER_QUICK = LadderSpec(widths=(1, 4, 16, 64), seeds=(0, 1), epochs=20, lr=3e-3)
#: the default classifier ladder: 10 widths, params 85 .. 38,410 on digits (2.7 decades)
CLASSIFIER = LadderSpec(widths=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), epochs=5, lr=1e-3)
#: a small classifier ladder for tests and quick reproduction
CLASSIFIER_QUICK = LadderSpec(
    widths=(1, 4, 16, 64), seeds=(0, 1), epochs=3, lr=1e-3, ks=(1, 2, 5, 20), n_sequences=2_000
)


def default_thresholds(n_features: int) -> tuple[float, ...]:
    """The digits thresholds scaled to ``n_features`` values per image (same per-value error)."""
    return tuple(t * n_features / DIGITS_FEATURES for t in DIGITS_THRESHOLDS)


def reconstruction_metric(c: float) -> str:
    return f"reconstruction_c{c:g}"


def subset_metric(k: int) -> str:
    return f"subset_accuracy_K{k}"


def _task(data: ImageData, what: str) -> str:
    return f"{data.name}/{what}"


def _split(data: ImageData, spec: LadderSpec) -> tuple[ImageData, ImageData]:
    train, test = train_test_split(data.n, spec.test_fraction, spec.split_seed)
    return data.subset(train), data.subset(test)


def _config(spec: LadderSpec):  # noqa: ANN202 - a TrainConfig (torch imported lazily)
    from miragelab.vision.train import TrainConfig

    return TrainConfig(epochs=spec.epochs, batch_size=spec.batch_size, lr=spec.lr)


def run_autoencoder_ladder(
    data: ImageData,
    spec: LadderSpec = AUTOENCODER,
    progress: Progress | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    """Train every (width, seed) autoencoder; one row per (model, seed, metric)."""
    from miragelab.vision.train import deterministic, train_autoencoder

    train, test = _split(data, spec)
    x_train, x_test = train.flat(), test.flat()
    config = _config(spec)
    task = _task(data, "reconstruction")
    rows = []
    with deterministic(threads):
        for width in spec.widths:
            for seed in spec.seeds:
                xhat, params = train_autoencoder(x_train, x_test, width, seed, config)
                errors = squared_errors(x_test, xhat)
                base = {"task": task, "family": "autoencoder", "model": f"ae-h{width}"}
                base |= {"width": width, "params": params, "seed": seed}
                mse = float(per_image_mse(x_test, xhat).mean())
                rows.append(base | {"metric": "mse", "value": mse, "higher_is_better": False})
                for c in spec.thresholds:
                    share = float(np.mean(errors < c))
                    rows.append(
                        base
                        | {
                            "metric": reconstruction_metric(c),
                            "value": share,
                            "higher_is_better": True,
                        }
                    )
                if progress is not None:
                    progress(f"autoencoder h={width} seed={seed}")
    return pd.DataFrame(rows)


def run_classifier_ladder(
    data: ImageData,
    spec: LadderSpec = CLASSIFIER,
    progress: Progress | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    """Train every (width, seed) classifier; one row per (model, seed, metric)."""
    from miragelab.vision.train import deterministic, train_classifier

    train, test = _split(data, spec)
    too_long = [k for k in spec.ks if k > test.n]
    if too_long:
        raise InputError(f"K={too_long[0]} is longer than the {test.n} test images", field="k")
    sequences = {
        k: make_sequences(test.n, k, spec.n_sequences, spec.sequence_seed) for k in spec.ks
    }
    n_classes = max(data.n_classes, 2)
    config = _config(spec)
    task = _task(data, "classification")
    rows = []
    with deterministic(threads):
        for width in spec.widths:
            for seed in spec.seeds:
                pred, params = train_classifier(
                    train.flat(), train.labels, test.flat(), width, n_classes, seed, config
                )
                correct = per_image_correct(pred, test.labels)
                base = {"task": task, "family": "mlp", "model": f"mlp-h{width}"}
                base |= {"width": width, "params": params, "seed": seed, "higher_is_better": True}
                rows.append(base | {"metric": "per_image_accuracy", "value": float(correct.mean())})
                for k, seqs in sequences.items():
                    value = subset_accuracy(correct, seqs)
                    rows.append(base | {"metric": subset_metric(k), "value": value})
                if progress is not None:
                    progress(f"classifier h={width} seed={seed}")
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Scores table from runs: mean over seeds, t-interval over seeds (see module docstring)."""
    keys = ["task", "family", "model", "params", "metric", "higher_is_better"]
    out = []
    for key, group in runs.groupby(keys, sort=False):
        values = group["value"].to_numpy(dtype=float)
        s = values.size
        mean = float(values.mean())
        row = dict(zip(keys, key, strict=True)) | {"value": mean, "n": s}
        if s >= 2:
            stderr = float(values.std(ddof=1) / np.sqrt(s))
            low, high = (float(v) for v in t_interval(mean, stderr, s, confidence))
            upper = np.inf if row["metric"] == "mse" else 1.0
            row |= {
                "ci_low": float(np.clip(low, 0.0, upper)),
                "ci_high": float(np.clip(high, 0.0, upper)),
                "stderr": stderr,
                "ci_method": f"t-interval over {s} seeds ({confidence:.0%}), clipped to range",
            }
        else:
            row |= {"ci_method": "none (one seed)"}
        out.append(row)
    frame = pd.DataFrame(out)
    frame["params"] = frame["params"].astype(float)
    return validate_frame(frame, SCORES)


@dataclass
class VisionResult:
    """Everything one ladder produced."""

    kind: str  # "autoencoder" or "classifier"
    runs: pd.DataFrame
    scores: pd.DataFrame
    measures: pd.DataFrame
    verdicts: pd.DataFrame
    smooth_metrics: tuple[str, ...]
    sharp_metrics: tuple[str, ...]
    notes: list[str] = field(default_factory=list)


def analyse(
    kind: str,
    runs: pd.DataFrame,
    smooth: Sequence[str],
    sharp: Sequence[str],
    confidence: float = 0.95,
) -> VisionResult:
    """Scores, emergence measures per metric and verdicts per (sharp, smooth) pair.

    ``measures`` gains ``role`` ('smooth' or 'sharp': how the metric is built)
    and ``looks_emergent``: the meta-analysis' reading (smoothness below
    :data:`miragelab.meta.EMERGENT_SMOOTHNESS` and an improving curve). The
    verdicts are :func:`miragelab.verdict.verdict_table`'s, one per sharp metric,
    resting on the smooth ones.
    """
    scores = summarise(runs, confidence)
    measures = measures_table(scores)
    measures["role"] = np.where(measures["metric"].isin(list(smooth)), "smooth", "sharp")
    measures["looks_emergent"] = (measures["smoothness"] < EMERGENT_SMOOTHNESS) & (
        measures["emergence_score"] > 0
    )
    pairs = [(h, s) for h in sharp for s in smooth]
    verdicts = verdict_table(scores, pairs=pairs).verdicts
    return VisionResult(kind, runs, scores, measures, verdicts, tuple(smooth), tuple(sharp))


def metric_roles(kind: str, spec: LadderSpec) -> tuple[list[str], list[str]]:
    """The smooth and the sharp metrics of a ladder kind: what its verdicts compare."""
    if kind == "autoencoder":
        return ["mse"], [reconstruction_metric(c) for c in spec.thresholds]
    if kind == "classifier":
        return ["per_image_accuracy"], [subset_metric(k) for k in spec.ks]
    raise InputError(f"expected 'autoencoder' or 'classifier', got {kind!r}", field="kind")


def run_ladder(
    kind: str,
    data: ImageData,
    spec: LadderSpec,
    progress: Progress | None = None,
    threads: int | None = None,
) -> VisionResult:
    """Train one ladder kind and analyse it: scores, emergence measures, verdicts."""
    run = run_autoencoder_ladder if kind == "autoencoder" else run_classifier_ladder
    smooth, sharp = metric_roles(kind, spec)
    return analyse(kind, run(data, spec, progress, threads), smooth, sharp)
