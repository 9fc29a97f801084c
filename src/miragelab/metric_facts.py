"""One table of facts about metrics: direction, kind, range, best value, relation to the loss.

Every part of miragelab that needs to know whether a metric is better high or
low, harsh or continuous, bounded, or a transform of the per-token
cross-entropy asks :func:`fact_of`. A metric that is in neither this table nor
the metric registry (:data:`miragelab.metrics.REGISTRY`) has no known
direction: the loaders leave its ``higher_is_better`` null and
:func:`resolve_directions` refuses it until the table or the user
(``--higher-is-better METRIC=true|false``) says which way it goes. The
direction is never guessed.

Names are matched after :func:`normalise_metric_name` (lower-case, without
lm-eval's ``,<filter>`` suffix or a ``[...]`` qualifier), so ``acc,none``,
``exact_match[strict-match]`` and HELM's ``exact_match[worst]`` have the facts
of ``acc`` and ``exact_match``. An entry written ``prefix*`` matches every name
that starts with ``prefix`` (the vision metrics ``reconstruction_c0.1``,
``subset_accuracy_k5``).

Fields (:class:`MetricFact`)
----------------------------
``kind``
    ``"harsh"``: discontinuous in the per-token probability (exact match,
    accuracy, multiple-choice grade: the paper's nonlinear/discontinuous
    metrics); ``"continuous"``: a smooth function of the model's output
    probabilities or of partial credit (log-probability, Brier score, edit
    distance, BLEU); ``"other"``: neither, or not a capability measure
    (calibration errors, bias scores, aggregates).
``lower`` / ``upper``
    The smallest / largest valid value (inclusive), None where unbounded or
    where sources use different scales (BLEU is 0-1 in some, 0-100 in others).
    Perplexities have ``lower=1.0`` (``exp`` of a cross-entropy >= 0).
``perfect``
    The best attainable value: 0 for losses, distances, errors; 1 for
    perplexities and for 0/1 proportions; 0 for log-probabilities
    (probability 1); None where the scale varies.
``to_loss``
    How the metric relates to a per-token cross-entropy ``CE``: ``"loss"`` (it
    is one, possibly in bits: see :data:`LOSSES_IN_BITS`), ``"log"``
    (``log(value)`` is one: perplexities), ``"neg_log"`` (``-log(value)`` is
    one: ``per_token_prob``), ``"neg"`` (``-value`` is a negative
    log-likelihood, per token or summed over the answer); None otherwise.
``preference``
    Order of preference as the continuous metric a verdict rests on (lower
    first): 0 the log-probability / cross-entropy family (``to_loss`` set), 1
    Brier scores, 2 edit distances and similarities, 3 everything else (BLEU,
    chrF, F1, ROUGE, MSE, ...). Harsh metrics have 0 (unused).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from miragelab.errors import InputError
from miragelab.frames import without_attrs

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CONTINUOUS_METRICS",
    "FACTS",
    "HARSH_METRICS",
    "LOSSES_IN_BITS",
    "MetricFact",
    "fact_of",
    "is_continuous",
    "is_harsh",
    "is_proportion",
    "metric_direction",
    "normalise_metric_name",
    "parse_direction_overrides",
    "resolve_directions",
]


@dataclass(frozen=True)
class MetricFact:
    """What is known about one metric (see the module docstring for each field)."""

    name: str
    higher_is_better: bool
    kind: str  # "harsh", "continuous" or "other"
    lower: float | None
    upper: float | None
    perfect: float | None
    to_loss: str | None  # "loss", "log", "neg_log", "neg" or None
    preference: int


KINDS = ("harsh", "continuous", "other")
TO_LOSS = ("loss", "log", "neg_log", "neg")


def _facts(
    names: Iterable[str],
    *,
    higher: bool,
    kind: str,
    lower: float | None = None,
    upper: float | None = None,
    perfect: float | None = None,
    to_loss: str | None = None,
    preference: int | None = None,
) -> tuple[MetricFact, ...]:
    if preference is None:
        preference = 0 if kind == "harsh" or to_loss is not None else 3
    return tuple(
        MetricFact(name, higher, kind, lower, upper, perfect, to_loss, preference) for name in names
    )


# --------------------------------------------------------------------------- the table

#: Harsh 0/1 proportions (share of examples exactly right). Higher is better by
#: definition: the share of correct answers. Names: our registry (``exact_match``,
#: ``multiple_choice_grade[_norm]``, ``greedy_match``), lm-eval (``acc``, ``acc_norm``,
#: ``acc_mutual_info``, ``exact_match``, ``em``, ``contains``, ``mc1``, ``pass@1``),
#: HELM (``exact_match``, ``quasi_exact_match``, ``prefix_exact_match``,
#: ``quasi_prefix_exact_match``, ``math_equiv``), BIG-bench (``multiple_choice_grade``,
#: ``exact_str_match``), the vision experiments (``accuracy``,
#: ``reconstruction_c<c>``, ``subset_accuracy_K<k>``).
_HARSH_PROPORTIONS = _facts(
    (
        "exact_match",
        "em",
        "multiple_choice_grade",
        "multiple_choice_grade_norm",
        "acc",
        "acc_norm",
        "acc_mutual_info",
        "accuracy",
        "exact_str_match",
        "quasi_exact_match",
        "prefix_exact_match",
        "quasi_prefix_exact_match",
        "math_equiv",
        "math_equiv_chain_of_thought",
        "greedy_match",
        "contains",
        "mc1",
        "pass@1",
        "reconstruction_c*",  # vision: share of images reconstructed within a threshold c
        "subset_accuracy*",  # vision: all K images of a sequence right
    ),
    higher=True,
    kind="harsh",
    lower=0.0,
    upper=1.0,
    perfect=1.0,
)

#: Harsh scores computed from hard (argmax) predictions on other scales: Matthews
#: correlation (lm-eval's CoLA ``mcc``, -1..1) and BIG-bench's ``macro_f1``. Higher
#: is better by definition (agreement of predictions with labels).
_HARSH_OTHER = _facts(("mcc",), higher=True, kind="harsh", lower=-1.0, upper=1.0, perfect=1.0)
_HARSH_OTHER += _facts(("macro_f1",), higher=True, kind="harsh", lower=0.0, upper=1.0, perfect=1.0)

#: Per-token cross-entropies and other log-losses, in nats (``cross_entropy`` of our
#: registry, ``loss``/``nll`` of training logs) or bits (:data:`LOSSES_IN_BITS`:
#: lm-eval's and HELM's ``bits_per_byte``, ``bpb``). Lower is better by definition
#: (a negative log-likelihood); 0 is a perfect model.
_LOSSES = _facts(
    ("cross_entropy", "loss", "nll", "bits_per_byte", "bpb", "bits_per_token"),
    higher=False,
    kind="continuous",
    lower=0.0,
    perfect=0.0,
    to_loss="loss",
)

#: Perplexities: ``exp`` of a cross-entropy, so at least 1 and perfect at 1.
#: Lower is better by definition. lm-eval ``ppl``/``perplexity``/``word_perplexity``/
#: ``byte_perplexity``, HELM ``perplexity``.
_PERPLEXITIES = _facts(
    ("ppl", "perplexity", "word_perplexity", "byte_perplexity", "token_perplexity"),
    higher=False,
    kind="continuous",
    lower=1.0,
    perfect=1.0,
    to_loss="log",
)

#: Log-likelihoods (per token or summed over the answer): at most 0, higher is
#: better by definition. Our registry (``target_logprob[_mean]``,
#: ``continuation_logprob``), lm-eval ``loglikelihood``, HELM ``logprob`` and
#: ``logprob_per_byte``, BIG-bench ``log_likelihood``, the OLMo ladder's ``soft_log``.
_LOGPROBS = _facts(
    (
        "target_logprob",
        "target_logprob_mean",
        "continuation_logprob",
        "loglikelihood",
        "log_likelihood",
        "logprob",
        "logprob_per_byte",
        "mean_logprob",
        "soft_log",
    ),
    higher=True,
    kind="continuous",
    upper=0.0,
    perfect=0.0,
    to_loss="neg",
)

#: ``exp(mean target token log-prob)`` (our registry) and the OLMo ladder's ``soft`` (the
#: probability of the correct choice, normalised over the choices): probabilities,
#: higher is better.
_PROBABILITIES = _facts(
    ("per_token_prob", "soft"),
    higher=True,
    kind="continuous",
    lower=0.0,
    upper=1.0,
    perfect=1.0,
    to_loss="neg_log",
)

#: Brier scores of the choice probabilities: a squared error, lower is better by
#: definition. Our registry and lm-eval ``brier_score``, BIG-bench
#: ``calibration_multiple_choice_brier_score``. At most 2 (the multi-class sum form;
#: the mean over choices is at most 1).
_BRIER = _facts(
    ("brier_score", "calibration_multiple_choice_brier_score"),
    higher=False,
    kind="continuous",
    lower=0.0,
    upper=2.0,
    perfect=0.0,
    preference=1,
)

#: Edit distances: lower is better by definition (our ``token_edit_distance``;
#: lm-eval/sacrebleu ``ter``, the translation edit rate, reported 0-100 and above).
_EDIT_DISTANCES = _facts(
    ("token_edit_distance", "ter"),
    higher=False,
    kind="continuous",
    lower=0.0,
    perfect=0.0,
    preference=2,
)

#: Edit similarity (our ``normalized_edit_similarity``, ``1 - distance / length``):
#: higher is better by definition.
_EDIT_SIMILARITIES = _facts(
    ("normalized_edit_similarity",),
    higher=True,
    kind="continuous",
    lower=0.0,
    upper=1.0,
    perfect=1.0,
    preference=2,
)

#: Overlap scores with partial credit: higher is better by definition (n-gram or
#: token overlap with the reference). lm-eval ``bleu``/``chrf``/``f1``/``rouge*``,
#: HELM ``bleu_1``/``bleu_4``/``f1_score``/``rouge_1``/``rouge_2``/``rouge_l``,
#: BIG-bench ``bleu``/``rouge1``/``rouge2``/``rougeLsum``/``bleurt``/``sequence_f1``.
#: Sources use 0-1 or 0-100 (BLEURT is unbounded), so no upper bound or best value.
_OVERLAPS = _facts(
    (
        "bleu",
        "bleu_1",
        "bleu_4",
        "sacrebleu",
        "chrf",
        "f1",
        "f1_score",
        "sequence_f1",
        "rouge1",
        "rouge2",
        "rougel",
        "rougelsum",
        "rouge_1",
        "rouge_2",
        "rouge_l",
    ),
    higher=True,
    kind="continuous",
    lower=0.0,
)
_OVERLAPS += _facts(("bleurt",), higher=True, kind="continuous")

#: Continuous metrics of the vision experiments: ``mse`` (lower is better by
#: definition, a squared error) and ``per_image_accuracy`` (the smooth counterpart of
#: ``subset_accuracy_K<k>``).
_VISION = _facts(("mse",), higher=False, kind="continuous", lower=0.0, perfect=0.0)
_VISION += _facts(
    ("per_image_accuracy",), higher=True, kind="continuous", lower=0.0, upper=1.0, perfect=1.0
)

#: Calibration errors: lower is better by definition (distance between confidence
#: and accuracy). BIG-bench ``expected_calibration_error``, HELM ``ece_10_bin``,
#: ``ece_1_bin``.
_CALIBRATION = _facts(
    ("expected_calibration_error", "ece_10_bin", "ece_1_bin"),
    higher=False,
    kind="other",
    lower=0.0,
    upper=1.0,
    perfect=0.0,
)

#: Bias and toxicity scores, lower is better as their sources declare:
#: lm-eval's CrowS-Pairs ``likelihood_difference`` and ``pct_stereotype``
#: (``crowspairs.py``: "For all metrics lower is better"), HELM's ``toxic_frac``.
_BIAS = _facts(("likelihood_difference",), higher=False, kind="other", lower=0.0, perfect=0.0)
_BIAS += _facts(("pct_stereotype", "toxic_frac"), higher=False, kind="other", lower=0.0, upper=1.0)

#: Aggregates and unnamed scores, higher is better as their sources define them:
#: BIG-bench's ``normalized_aggregate_score`` (0 = chance, 100 = best; below chance is
#: negative), ObsScaling's benchmark columns without a metric suffix (``score``:
#: MMLU, GSM8K, ... accuracies), TruthfulQA's ``mc2`` (probability mass on true answers).
_AGGREGATES = _facts(("normalized_aggregate_score", "score"), higher=True, kind="other")
_AGGREGATES += _facts(("mc2",), higher=True, kind="other", lower=0.0, upper=1.0, perfect=1.0)

_ALL = (
    _HARSH_PROPORTIONS
    + _HARSH_OTHER
    + _LOSSES
    + _PERPLEXITIES
    + _LOGPROBS
    + _PROBABILITIES
    + _BRIER
    + _EDIT_DISTANCES
    + _EDIT_SIMILARITIES
    + _OVERLAPS
    + _VISION
    + _CALIBRATION
    + _BIAS
    + _AGGREGATES
)

#: every fact, by (normalised) name; names ending in ``*`` are prefixes
FACTS: Mapping[str, MetricFact] = {f.name: f for f in _ALL}
if len(FACTS) != len(_ALL):  # pragma: no cover - a name listed twice above
    raise AssertionError("a metric is listed twice in the facts table")

_EXACT = {n: f for n, f in FACTS.items() if not n.endswith("*")}
_PREFIXES = tuple((n[:-1], f) for n, f in FACTS.items() if n.endswith("*"))

#: metrics read as harsh; a name ending in ``*`` matches every metric that starts with it
HARSH_METRICS: frozenset[str] = frozenset(n for n, f in FACTS.items() if f.kind == "harsh")
#: metrics read as continuous
CONTINUOUS_METRICS: frozenset[str] = frozenset(
    n for n, f in FACTS.items() if f.kind == "continuous"
)
#: losses (``to_loss == "loss"``) measured in bits, not nats: ``CE = value * log(2)``
LOSSES_IN_BITS: frozenset[str] = frozenset({"bits_per_byte", "bpb", "bits_per_token"})


# --------------------------------------------------------------------------- lookup

_BRACKETS = re.compile(r"\[[^\]]*\]")


def normalise_metric_name(metric: str) -> str:
    """The name facts are looked up by: lower-case, without lm-eval's ``,<filter>``
    suffix (``acc,none`` -> ``acc``) or a ``[...]`` qualifier
    (``exact_match[strict-match]`` -> ``exact_match``), stripped of whitespace."""
    name = str(metric).split(",", 1)[0]
    name = _BRACKETS.sub("", name)
    return name.strip().lower()


def _registered(name: str) -> MetricFact | None:
    """The direction of a metric in :data:`miragelab.metrics.REGISTRY` (user metrics).

    The registry is only consulted once :mod:`miragelab.metrics` is imported: until
    then nobody can have registered a metric, and its built-ins are all in the table.
    """
    module = sys.modules.get("miragelab.metrics")
    registry = getattr(module, "REGISTRY", None) if module is not None else None
    if not registry:
        return None
    for key, metric in list(registry.items()):
        if normalise_metric_name(key) == name:
            return MetricFact(
                name=str(key),
                higher_is_better=bool(metric.higher_is_better),
                kind="other",
                lower=None,
                upper=None,
                perfect=None,
                to_loss=None,
                preference=3,
            )
    return None


def fact_of(metric: str) -> MetricFact | None:
    """The facts of ``metric`` (after :func:`normalise_metric_name`), else those of a
    metric registered in :data:`miragelab.metrics.REGISTRY` (direction only, kind
    ``"other"``), else None."""
    name = normalise_metric_name(metric)
    fact = _EXACT.get(name)
    if fact is not None:
        return fact
    for prefix, prefixed in _PREFIXES:
        if name.startswith(prefix):
            return prefixed
    return _registered(name)


def is_proportion(metric: str) -> bool | None:
    """Whether ``metric`` is a share of examples (a mean of 0/1 values: accuracy, exact
    match), so that a binomial interval fits it; None for a metric not known here.

    Harsh metrics that are not shares of examples (``mcc``, ``macro_f1``) are not."""
    fact = fact_of(metric)
    if fact is None:
        return None
    not_shares = {f.name for f in _HARSH_OTHER}
    return (
        fact.kind == "harsh"
        and fact.name not in not_shares
        and (fact.lower, fact.upper)
        == (
            0.0,
            1.0,
        )
    )


def is_harsh(metric: str) -> bool:
    """Whether ``metric`` is harsh (discontinuous in the per-token probability)."""
    fact = fact_of(metric)
    return fact is not None and fact.kind == "harsh"


def is_continuous(metric: str) -> bool:
    """Whether ``metric`` is continuous in the model's output probabilities."""
    fact = fact_of(metric)
    return fact is not None and fact.kind == "continuous"


def _unknown(metric: str) -> InputError:
    return InputError(
        f"metric {metric!r} has no known direction; give higher_is_better in the table "
        f"or --higher-is-better {metric}=true|false",
        field="higher_is_better",
    )


def _normalised(overrides: Mapping[str, bool] | None) -> dict[str, bool]:
    return {normalise_metric_name(k): bool(v) for k, v in (overrides or {}).items()}


def metric_direction(metric: str, overrides: Mapping[str, bool] | None = None) -> bool:
    """Whether higher is better for ``metric``: the user's ``overrides`` (keys matched
    after normalisation), else its fact; unknown -> :class:`InputError`."""
    name = normalise_metric_name(metric)
    given = _normalised(overrides)
    if name in given:
        return given[name]
    fact = fact_of(metric)
    if fact is None:
        raise _unknown(metric)
    return fact.higher_is_better


_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def parse_direction_overrides(items: Iterable[str]) -> dict[str, bool]:
    """``["METRIC=true", "other=false"]`` -> ``{"METRIC": True, "other": False}``.

    Values ``true``/``false``, ``1``/``0``, ``yes``/``no`` (any case). A malformed item
    or one metric given twice with different values -> :class:`InputError` for the
    field ``--higher-is-better``.
    """
    out: dict[str, bool] = {}
    seen: dict[str, str] = {}
    for item in items:
        name, sep, value = str(item).partition("=")
        name, flag = name.strip(), value.strip().lower()
        if not sep or not name or flag not in _TRUE + _FALSE:
            raise InputError(
                f"expected METRIC=true|false, got {item!r}", field="--higher-is-better"
            )
        higher = flag in _TRUE
        key = normalise_metric_name(name)
        if key in seen and out[seen[key]] != higher:
            raise InputError(
                f"metric {name!r} given as both true and false", field="--higher-is-better"
            )
        seen[key] = name
        out[name] = higher
    return out


def _flag(value: object, metric: object) -> bool:
    import numpy as np

    if isinstance(value, bool | np.bool_) or (
        isinstance(value, int | float | np.integer | np.floating) and value in (0, 1)
    ):
        return bool(value)
    raise InputError(
        f"metric {str(metric)!r}: higher_is_better should be true or false, got {value!r}",
        field="higher_is_better",
    )


def resolve_directions(
    scores: pd.DataFrame, overrides: Mapping[str, bool] | None = None
) -> pd.DataFrame:
    """A copy of a scores table with a (numpy) boolean ``higher_is_better`` on every row.

    Per metric, the first that applies: the user's ``overrides`` (keys matched after
    :func:`normalise_metric_name`); the table's own non-null values (which then also
    fill that metric's null rows); the metric's fact (:func:`fact_of`). A metric with
    none of them, or whose rows disagree (and that is not overridden), is an
    :class:`InputError` naming it. The copy is shallow and keeps ``scores.attrs``
    (provenance, notes), as the loaders set them.
    """
    import pandas as pd

    if "metric" not in scores.columns:
        raise InputError("scores table lacks column metric", field="metric")
    table = without_attrs(scores)
    metric = table["metric"]
    if metric.isna().any():
        raise InputError("a score has no metric", field="metric")
    given = _normalised(overrides)
    present = {normalise_metric_name(str(name)) for name in pd.unique(metric)}
    unknown = sorted(set(given) - present)
    if unknown:  # a typo would otherwise leave the metric's direction as it was
        raise InputError(
            f"no metric {unknown[0]!r} in the scores (an override names a metric of the table)",
            field="higher-is-better",
        )
    stated: dict[object, set[bool]] = {}
    if "higher_is_better" in table.columns:
        pairs = pd.DataFrame({"metric": metric, "higher": table["higher_is_better"]})
        pairs = pairs[pairs["higher"].notna()].drop_duplicates()
        for name, higher in zip(pairs["metric"], pairs["higher"], strict=True):
            stated.setdefault(name, set()).add(_flag(higher, name))
    directions: dict[object, bool] = {}
    for name in pd.unique(metric):
        key = normalise_metric_name(str(name))
        if key in given:
            directions[name] = given[key]
        elif name in stated:
            if len(stated[name]) > 1:
                raise InputError(
                    f"rows of metric {str(name)!r} disagree on higher_is_better",
                    field="higher_is_better",
                )
            directions[name] = next(iter(stated[name]))
        else:
            directions[name] = metric_direction(str(name))
    values = metric.map(directions).to_numpy(dtype=bool) if len(table) else []
    table["higher_is_better"] = pd.Series(values, index=table.index, dtype=bool)
    table.attrs = dict(scores.attrs)
    return table
