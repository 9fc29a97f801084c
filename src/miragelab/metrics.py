"""Per-sample metrics over whole columns of the samples table, registered by name.

Each metric maps a samples table to one float per row and declares the columns
it needs, so a scorer can say which metric lacks which column. Everything is
vectorised: string normalisation runs in pyarrow compute kernels, edit
distances in rapidfuzz's C++ batch API (``process.cpdist``), and list columns
(per-token and per-choice log-probs) are reduced from their flat arrow buffers
with numpy, never one Python object per sample.

Normalisation (:class:`MetricOptions`) applies to every string metric alike,
so exact match and edit distance compare the same strings:

* ``strip`` -- drop leading and trailing whitespace (default on);
* ``case`` -- compare case-insensitively (Unicode lower-casing);
* ``punctuation`` -- delete Unicode punctuation characters (``\\p{P}``) first.

Tokens of the edit distances are ``"char"`` (Unicode code points),
``"word"`` (runs of non-whitespace), or any callable ``str -> Sequence`` (a
model tokenizer's ``tokenize``/``encode``). Word and tokenizer tokens are mapped
one-to-one onto code points, so the same C++ Levenshtein runs on them; the
distance is unchanged because the map is injective.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from miragelab.errors import InputError
from miragelab.metric_facts import FACTS, fact_of
from miragelab.schema import arrow_column

__all__ = [
    "REGISTRY",
    "Metric",
    "MetricOptions",
    "available_metrics",
    "compute_metrics",
    "get_metric",
    "iter_metrics",
    "parse_metric_list",
    "register",
]

Tokens = Literal["char", "word"] | Callable[[str], Sequence]


@dataclass(frozen=True)
class MetricOptions:
    """How strings are normalised and tokenised before they are compared."""

    strip: bool = True
    case: bool = False
    punctuation: bool = False
    #: HELM's own normalisation (:func:`quasi_text`) in place of the three above
    helm: bool = False
    tokens: Tokens = "char"


@dataclass(frozen=True)
class Metric:
    """A per-sample metric: ``fn(samples, options, cache) -> float64 array``, one value per row.

    ``cache`` is a dict shared by the metrics of one :func:`compute_metrics`
    call, so work common to several metrics (normalised strings, edit
    distances) is done once.
    """

    name: str
    needs: tuple[str, ...]
    binary: bool
    higher_is_better: bool
    doc: str
    fn: Callable[[pd.DataFrame, MetricOptions, dict], np.ndarray] = field(repr=False)

    def __call__(self, samples: pd.DataFrame, options: MetricOptions | None = None) -> np.ndarray:
        return self.fn(samples, options or MetricOptions(), {})


# --------------------------------------------------------------------------- column access


def _strings(samples: pd.DataFrame, column: str, options: MetricOptions, cache: dict) -> pa.Array:
    """A string column as arrow, normalised as the options say (once per call)."""
    key = ("strings", column)
    if key in cache:
        return cache[key]
    series = samples[column]
    if isinstance(series.dtype, pd.ArrowDtype | pd.StringDtype) and hasattr(
        series.array, "__arrow_array__"
    ):
        arr = pa.array(series.array).cast(pa.large_string())  # Arrow-backed: no copy per string
    else:
        arr = pa.array(series.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
    cache[key] = _normalise(arr, options)
    return cache[key]


def _whole(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _normalise(arr: pa.Array, options: MetricOptions) -> pa.Array:
    if options.helm:  # each distinct string once; nulls stay null
        texts = arr.to_pylist()
        done = {t: quasi_text(t) for t in set(texts) if t is not None}
        return pa.array([done.get(t) for t in texts], type=pa.large_string())
    if options.punctuation:
        arr = pc.replace_substring_regex(arr, pattern=r"\p{P}", replacement="")
    if options.case:
        arr = pc.utf8_lower(arr)
    if options.strip:
        arr = pc.utf8_trim_whitespace(arr)
    return arr


@dataclass(frozen=True)
class Pairs:
    """Prediction/answer pairs of a multi-reference table; ``rows[i]`` is pair i's row."""

    rows: np.ndarray
    pred: pa.Array
    answer: pa.Array
    n_rows: int

    def any(self, hit: np.ndarray) -> np.ndarray:
        return np.bincount(self.rows, weights=hit, minlength=self.n_rows) > 0

    def best(self, values: np.ndarray, ufunc: np.ufunc) -> np.ndarray:
        """``ufunc`` (np.minimum or np.maximum) of each row's pair values; NaN for no pair."""
        out = np.full(self.n_rows, np.nan)
        order = np.argsort(self.rows, kind="stable")
        rows, vals = self.rows[order], values[order]
        if rows.size:
            starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
            out[rows[starts]] = ufunc.reduceat(vals, starts)
        return out


def _references(samples: pd.DataFrame, options: MetricOptions, cache: dict) -> Pairs | None:
    """The (prediction, answer) pairs of a multi-reference table, or None when it has none.

    Each row pairs its prediction with its target and with each of its
    ``references`` (normalised alike); a row's score is the best over its pairs,
    as lm-eval-harness and BIG-bench score several gold answers. Null answers
    make no pair.
    """
    if "pairs" in cache:
        return cache["pairs"]
    pairs = None
    if "references" in samples.columns and samples["references"].notna().any():
        refs = _list_column(samples, "references", pa.string())
        pred = _whole(_strings(samples, "prediction", options, cache))
        target = _whole(_strings(samples, "target", options, cache))
        parents = pc.list_parent_indices(refs).to_numpy(zero_copy_only=False).astype(np.int64)
        answers = pa.concat_arrays([target, _normalise(pc.list_flatten(refs), options)])
        rows = np.concatenate([np.arange(len(target), dtype=np.int64), parents])
        keep = answers.is_valid().to_numpy(zero_copy_only=False).astype(bool)
        rows, answers = rows[keep], answers.filter(pa.array(keep))
        pairs = Pairs(rows, pred.take(pa.array(rows)), answers, len(target))
    cache["pairs"] = pairs
    return pairs


def _list_column(samples: pd.DataFrame, column: str, item: pa.DataType) -> pa.Array:
    """A list column as one Arrow ``large_list<item>`` array (Arrow-backed: no copy per row)."""
    series = samples[column]
    if isinstance(series.dtype, pd.ArrowDtype):
        arr = arrow_column(series)
    else:
        arr = pa.array(series.to_numpy(dtype=object), type=pa.list_(item), from_pandas=True)
    large = pa.large_string() if pa.types.is_string(item) else item
    return _whole(arr).cast(pa.large_list(large))


def _ragged(samples: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Flat float values and row offsets of a list<float> column (null rows are empty)."""
    arr = _list_column(samples, column, pa.float64())
    arr = pc.fill_null(arr, pa.scalar([], type=arr.type)) if arr.null_count else arr
    offsets = arr.offsets.to_numpy()
    base = offsets[0]
    values = arr.values.to_numpy(zero_copy_only=False)[base : offsets[-1]]
    return values.astype(np.float64, copy=False), offsets - base


def _segment_ids(offsets: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(offsets.size - 1), np.diff(offsets))


def _segment_sum(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum of each row's slice ``values[offsets[i]:offsets[i+1]]`` (0 for an empty row)."""
    counts = np.diff(offsets)
    if counts.size == 0:
        return np.zeros(0)
    # a trailing 0 makes every start a valid index, so empty rows at the end work too
    sums = np.add.reduceat(np.append(values, 0.0), offsets[:-1])
    return np.where(counts > 0, sums, 0.0)


# --------------------------------------------------------------------------- string metrics


def _same(left: pa.Array, right: pa.Array) -> np.ndarray:
    return pc.equal(left, right).fill_null(False).to_numpy(zero_copy_only=False).astype(bool)


def _equal(samples: pd.DataFrame, options: MetricOptions, cache: dict) -> np.ndarray:
    """Whether each normalised prediction equals its target or a reference (once per call)."""
    if "equal" not in cache:
        pairs = _references(samples, options, cache)
        if pairs is None:
            pred = _strings(samples, "prediction", options, cache)
            cache["equal"] = _same(pred, _strings(samples, "target", options, cache))
        else:
            cache["equal"] = pairs.any(_same(pairs.pred, pairs.answer))
    return cache["equal"]


def exact_match(samples: pd.DataFrame, options: MetricOptions, cache: dict) -> np.ndarray:
    return _equal(samples, options, cache).astype(np.float64)


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ASCII_PUNCTUATION = str.maketrans("", "", string.punctuation)


def quasi_text(text: str) -> str:
    """HELM's (and QuAC's) ``normalize_text``: lower-case, ASCII punctuation removed, the
    articles *a*, *an*, *the* removed, runs of whitespace made one space, ends trimmed."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_ASCII_PUNCTUATION)).split())


def quasi_exact_match(samples: pd.DataFrame, options: MetricOptions, cache: dict) -> np.ndarray:
    """HELM's ``quasi_exact_match``: :func:`exact_match` (target or any reference) after
    :func:`quasi_text`; 0 for an empty or missing prediction, as in HELM. The
    normalisation is HELM's own, so the options (case, punctuation, strip) do not apply."""
    helm = cache.setdefault("helm", {})  # its own normalised strings, beside the options'
    equal = _equal(samples, MetricOptions(strip=False, helm=True), helm)
    raw = _strings(samples, "prediction", MetricOptions(strip=False), cache.setdefault("raw", {}))
    given = pc.greater(pc.utf8_length(raw), 0).fill_null(False).to_numpy(zero_copy_only=False)
    return (equal & given.astype(bool)).astype(np.float64)


_SURROGATES = 0xE000 - 0xD800
_MAX_VOCAB = 0x110000 - _SURROGATES


def _encode_ids(ids: np.ndarray, offsets: np.ndarray) -> list[str]:
    """Token ids -> one string per row, one code point per token (surrogates skipped)."""
    if ids.size and int(ids.max()) >= _MAX_VOCAB:
        raise InputError(f"more than {_MAX_VOCAB:,} distinct tokens; cannot encode", field="tokens")
    codes = ids.astype(np.uint32) + np.where(ids >= 0xD800, _SURROGATES, 0).astype(np.uint32)
    text = codes.astype("<u4").tobytes().decode("utf-32-le")
    return [text[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)]


def _token_strings(
    pred: pa.Array, target: pa.Array, tokens: Tokens
) -> tuple[list[str], list[str], np.ndarray]:
    """Both columns as strings whose characters are the tokens, and the longer token count."""
    if tokens == "char":
        longest = pc.max_element_wise(pc.utf8_length(pred), pc.utf8_length(target))
        return pred.to_pylist(), target.to_pylist(), longest.to_numpy(zero_copy_only=False)
    if tokens == "word":
        split = [pc.utf8_split_whitespace(a) for a in (pred, target)]
        flat = [s.flatten().to_numpy(zero_copy_only=False) for s in split]
        offsets = [s.offsets.to_numpy() for s in split]
    elif callable(tokens):
        lists = [[list(tokens(t)) for t in a.to_pylist()] for a in (pred, target)]
        offsets = [np.concatenate([[0], np.cumsum([len(x) for x in lst])]) for lst in lists]
        flat = [np.array([t for x in lst for t in x], dtype=object) for lst in lists]
    else:
        raise InputError(f"expected 'char', 'word' or a tokenizer, got {tokens!r}", field="tokens")
    n_pred = flat[0].size
    ids, _ = pd.factorize(np.concatenate([flat[0], flat[1]]) if n_pred or flat[1].size else flat[0])
    longest = np.maximum(np.diff(offsets[0]), np.diff(offsets[1]))
    return (
        _encode_ids(ids[:n_pred], offsets[0] - offsets[0][0]),
        _encode_ids(ids[n_pred:], offsets[1] - offsets[1][0]),
        longest,
    )


def _pair_distances(
    pred: pa.Array, answer: pa.Array, equal: np.ndarray, tokens: Tokens
) -> tuple[np.ndarray, np.ndarray]:
    """Levenshtein distance over tokens of each pair, and the longer token length.

    Pairs whose normalised strings are equal have distance 0 whatever the
    tokens, so only the others are tokenised and compared; on real outputs,
    where larger models mostly answer right, that is most of the work saved.
    The length of an equal pair is reported as 1 (its similarity is 1 either way).
    """
    differ = np.flatnonzero(~equal)
    dist = np.zeros(len(pred))
    longest = np.ones(len(pred), dtype=np.int64)
    if differ.size:
        indices = pa.array(differ)
        left, right, lengths = _token_strings(pred.take(indices), answer.take(indices), tokens)
        dist[differ] = process.cpdist(
            left, right, scorer=Levenshtein.distance, dtype=np.int64, workers=-1
        )
        longest[differ] = lengths
    return dist, longest


def _similarity(dist: np.ndarray, longest: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(longest > 0, 1.0 - dist / np.maximum(longest, 1), 1.0)


def _distances(
    samples: pd.DataFrame, options: MetricOptions, cache: dict
) -> tuple[np.ndarray, np.ndarray]:
    """Token edit distance and normalised similarity of each row, computed once per call.

    With several acceptable answers a row keeps its smallest distance and,
    separately, its largest similarity: the closest answer in edits need not be
    the closest relative to its length.
    """
    if "distances" not in cache:
        pairs = _references(samples, options, cache)
        if pairs is None:
            pred = _strings(samples, "prediction", options, cache)
            target = _strings(samples, "target", options, cache)
            equal = _equal(samples, options, cache)
            dist, longest = _pair_distances(pred, target, equal, options.tokens)
            cache["distances"] = (dist, _similarity(dist, longest))
        else:
            equal = _same(pairs.pred, pairs.answer)
            dist, longest = _pair_distances(pairs.pred, pairs.answer, equal, options.tokens)
            cache["distances"] = (
                pairs.best(dist, np.minimum),
                pairs.best(_similarity(dist, longest), np.maximum),
            )
    return cache["distances"]


def token_edit_distance(samples: pd.DataFrame, options: MetricOptions, cache: dict) -> np.ndarray:
    return _distances(samples, options, cache)[0]


def normalized_edit_similarity(
    samples: pd.DataFrame, options: MetricOptions, cache: dict
) -> np.ndarray:
    return _distances(samples, options, cache)[1]


# --------------------------------------------------------------------------- choice metrics


def _choices(samples: pd.DataFrame, cache: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Choice log-probs as (flat values, offsets), the correct index, once per call."""
    if "choices" not in cache:
        values, offsets = _ragged(samples, "choice_logprobs")
        correct = samples["correct_choice"].to_numpy(dtype=np.float64, na_value=np.nan)
        cache["choices"] = (values, offsets, correct)
    return cache["choices"]


def _one_hot(offsets: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """A flat 0/1 array aligned with the choice log-probs: 1 at each ``correct_choice``."""
    seg = _segment_ids(offsets)
    return ((np.arange(offsets[-1]) - offsets[seg]) == correct[seg]).astype(np.float64)


def _correct_flags(samples: pd.DataFrame, cache: dict) -> np.ndarray | None:
    """Where some examples have several correct choices: a flat 0/1 array aligned with
    the choice log-probs, 1 at every correct choice (``choice_is_correct`` where given,
    ``correct_choice`` elsewhere). None when every example has one correct choice."""
    if "flags" not in cache:
        flags = None
        column = samples.get("choice_is_correct")
        if column is not None and column.notna().any():
            _, offsets, correct = _choices(samples, cache)
            flags = _one_hot(offsets, correct)
            given, given_offsets = _ragged(samples, "choice_is_correct")
            # rows with flags have one per choice (validated on input), in the same order
            flags[np.repeat(np.diff(given_offsets) > 0, np.diff(offsets))] = given
        cache["flags"] = flags
    return cache["flags"]


def _by_choice(values: np.ndarray, offsets: np.ndarray, cache: dict) -> np.ndarray | None:
    """A (k, n) array, one contiguous row per choice, when every example has k choices.

    Reductions over the k choices then run across whole rows, which is much
    faster than reducing the short, strided rows of an (n, k) array.
    """
    if "by_choice" not in cache:
        counts = np.diff(offsets)
        fixed = counts.size and (counts == counts[0]).all() and counts[0] > 0
        cache["by_choice"] = (
            np.ascontiguousarray(values.reshape(counts.size, int(counts[0])).T) if fixed else None
        )
    return cache["by_choice"]


def _first_argmax(
    values: np.ndarray, offsets: np.ndarray, columns: np.ndarray | None
) -> np.ndarray:
    """Each example's index of its highest score; ties go to the first maximum."""
    if columns is not None:  # np.argmax returns the first maximum
        return np.argmax(columns, axis=0)
    n = offsets.size - 1
    seg = _segment_ids(offsets)
    local = np.arange(values.size) - offsets[seg]
    top = np.full(n, -np.inf)
    np.maximum.at(top, seg, values)
    never = np.iinfo(np.int64).max
    first = np.full(n, never)
    np.minimum.at(first, seg, np.where(values == top[seg], local, never))
    return first


def _grade(
    samples: pd.DataFrame, scores: np.ndarray, columns: np.ndarray | None, cache: dict
) -> np.ndarray:
    """1 where the top-scoring choice is a correct one (lm-eval: ``pred in gold``)."""
    _, offsets, correct = _choices(samples, cache)
    top = _first_argmax(scores, offsets, columns)
    flags = _correct_flags(samples, cache)
    if flags is None:
        return (top == correct).astype(np.float64)
    valid = top < np.diff(offsets)  # an example with no choices has no top choice
    out = np.full(top.size, np.nan)
    out[valid] = flags[offsets[:-1][valid] + top[valid]]
    return out


def multiple_choice_grade(samples: pd.DataFrame, options: MetricOptions, cache: dict) -> np.ndarray:
    """1 when a correct choice has the highest log-prob; ties go to the first maximum."""
    values, offsets, _ = _choices(samples, cache)
    return _grade(samples, values, _by_choice(values, offsets, cache), cache)


def multiple_choice_grade_norm(
    samples: pd.DataFrame, options: MetricOptions, cache: dict
) -> np.ndarray:
    """lm-eval's ``acc_norm``: the argmax of log-prob / choice length (ties go to the first)."""
    values, offsets, _ = _choices(samples, cache)
    lengths, _ = _ragged(samples, "choice_lengths")  # one per choice: validated on input
    per_char = values / lengths
    return _grade(samples, per_char, _by_choice(per_char, offsets, {}), cache)


def brier_score(samples: pd.DataFrame, options: MetricOptions, cache: dict) -> np.ndarray:
    """Mean over the k choices of (softmax(choice log-probs) - target)**2.

    The target is 1 at the correct choice (at every correct one, where several
    are) and 0 elsewhere. This is BIG-bench's
    ``calibration_multiple_choice_brier_score``: it feeds every (example,
    choice) pair to ``sklearn.metrics.brier_score_loss``, so its task score is
    the mean of these per-example values whenever all examples have the same
    number of choices.
    """
    values, offsets, correct = _choices(samples, cache)
    columns = _by_choice(values, offsets, cache)
    flags = _correct_flags(samples, cache)
    if columns is not None and flags is None:
        # sum_j (p_j - [j = c])**2 = sum_j p_j**2 - 2 p_c + 1, without a one-hot array
        probs = np.subtract(columns, columns.max(axis=0))
        np.exp(probs, out=probs)
        probs /= probs.sum(axis=0)
        right = probs[correct.astype(np.int64), np.arange(probs.shape[1])]
        return ((probs * probs).sum(axis=0) - 2.0 * right + 1.0) / probs.shape[0]
    seg = _segment_ids(offsets)
    top = np.full(offsets.size - 1, -np.inf)
    np.maximum.at(top, seg, values)
    weights = np.exp(values - top[seg])
    probs = weights / _segment_sum(weights, offsets)[seg]
    if flags is None:
        flags = _one_hot(offsets, correct)
    return _segment_sum((probs - flags) ** 2, offsets) / np.maximum(np.diff(offsets), 1)


# --------------------------------------------------------------------------- log-prob metrics


def _token_logprobs(samples: pd.DataFrame, cache: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per-example sum of target token log-probs and token count, once per call."""
    if "token_logprobs" not in cache:
        values, offsets = _ragged(samples, "target_token_logprobs")
        cache["token_logprobs"] = (_segment_sum(values, offsets), np.diff(offsets))
    return cache["token_logprobs"]


def target_logprob(samples: pd.DataFrame, options: MetricOptions, cache: dict) -> np.ndarray:
    return _token_logprobs(samples, cache)[0]


def target_logprob_mean(samples: pd.DataFrame, options: MetricOptions, cache: dict) -> np.ndarray:
    total, count = _token_logprobs(samples, cache)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def per_token_prob(samples: pd.DataFrame, options: MetricOptions, cache: dict) -> np.ndarray:
    return np.exp(target_logprob_mean(samples, options, cache))


def greedy_match(samples: pd.DataFrame, options: MetricOptions, cache: dict) -> np.ndarray:
    return samples["continuation_is_greedy"].to_numpy(dtype=np.float64, na_value=np.nan)


def continuation_logprob(samples: pd.DataFrame, options: MetricOptions, cache: dict) -> np.ndarray:
    return samples["continuation_logprob"].to_numpy(dtype=np.float64, na_value=np.nan)


def cross_entropy(samples: pd.DataFrame, options: MetricOptions, cache: dict) -> np.ndarray:
    return -target_logprob_mean(samples, options, cache)


# --------------------------------------------------------------------------- registry

_TEXT = ("prediction", "target")
_CHOICE = ("choice_logprobs", "correct_choice")
_LOGP = ("target_token_logprobs",)


def _builtin(
    name: str,
    needs: tuple[str, ...],
    binary: bool,
    doc: str,
    fn: Callable[[pd.DataFrame, MetricOptions, dict], np.ndarray],
) -> Metric:
    """A built-in metric, its direction from :mod:`miragelab.metric_facts`."""
    fact = FACTS[name]
    return Metric(name, needs, binary, fact.higher_is_better, doc, fn)


REGISTRY: dict[str, Metric] = {
    m.name: m
    for m in (
        _builtin(
            "exact_match",
            _TEXT,
            True,
            "1 if prediction == target (or any reference) after normalisation",
            exact_match,
        ),
        _builtin(
            "quasi_exact_match",
            _TEXT,
            True,
            "HELM's quasi exact match: equal after lower-casing and removing punctuation, "
            "articles and extra whitespace",
            quasi_exact_match,
        ),
        _builtin(
            "token_edit_distance",
            _TEXT,
            False,
            "Levenshtein distance over tokens (to the closest reference)",
            token_edit_distance,
        ),
        _builtin(
            "normalized_edit_similarity",
            _TEXT,
            False,
            "partial credit: 1 - distance / longer token length",
            normalized_edit_similarity,
        ),
        _builtin(
            "multiple_choice_grade",
            _CHOICE,
            True,
            "1 if a correct choice has the top log-prob",
            multiple_choice_grade,
        ),
        _builtin(
            "multiple_choice_grade_norm",
            ("choice_logprobs", "choice_lengths", "correct_choice"),
            True,
            "1 if a correct choice has the top log-prob per character (lm-eval's acc_norm)",
            multiple_choice_grade_norm,
        ),
        _builtin(
            "brier_score",
            _CHOICE,
            False,
            "BIG-bench multi-class Brier score of softmax(choice log-probs)",
            brier_score,
        ),
        _builtin("target_logprob", _LOGP, False, "sum of target token log-probs", target_logprob),
        _builtin(
            "target_logprob_mean", _LOGP, False, "mean target token log-prob", target_logprob_mean
        ),
        _builtin("per_token_prob", _LOGP, False, "exp(mean target token log-prob)", per_token_prob),
        _builtin(
            "cross_entropy", _LOGP, False, "-mean target token log-prob (nats/token)", cross_entropy
        ),
        _builtin(
            "greedy_match",
            ("continuation_is_greedy",),
            True,
            "1 if greedy decoding gives the whole target (lm-eval's acc on LAMBADA-style tasks)",
            greedy_match,
        ),
        _builtin(
            "continuation_logprob",
            ("continuation_logprob",),
            False,
            "log-prob of the whole target where only the total is logged (lm-eval loglikelihood)",
            continuation_logprob,
        ),
    )
}


def register(metric: Metric, *, replace: bool = False) -> Metric:
    """Add a user metric to :data:`REGISTRY`, so ``mirage score``-style code can use it
    and :func:`miragelab.metric_facts.fact_of` knows its direction.

    A name already registered needs ``replace=True``; a metric whose direction
    contradicts the facts table (:data:`miragelab.metric_facts.FACTS`) is refused.
    """
    if metric.name in REGISTRY and not replace:
        raise ValueError(f"metric {metric.name!r} is already registered")
    known = fact_of(metric.name)
    if (
        known is not None
        and known.name in FACTS
        and known.higher_is_better != (metric.higher_is_better)
    ):
        raise ValueError(
            f"metric {metric.name!r}: higher_is_better={metric.higher_is_better} contradicts "
            f"the facts table ({known.higher_is_better})"
        )
    REGISTRY[metric.name] = metric
    return metric


def available_metrics() -> list[str]:
    return list(REGISTRY)


def get_metric(name: str) -> Metric:
    try:
        return REGISTRY[name]
    except KeyError:
        raise InputError(
            f"unknown metric {name!r}; known: {', '.join(REGISTRY)}", field="metrics"
        ) from None


def parse_metric_list(text: str) -> list[Metric]:
    """``"a,b"`` or ``"all"`` -> metrics, rejecting unknown names and repeats."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["all"]:
        return list(REGISTRY.values())
    if not names:
        raise InputError("no metrics given", field="metrics")
    if len(set(names)) != len(names):
        raise InputError(f"metric listed twice in {text!r}", field="metrics")
    return [get_metric(n) for n in names]


def compute_metrics(
    samples: pd.DataFrame,
    metrics: Sequence[str | Metric],
    options: MetricOptions | None = None,
) -> pd.DataFrame:
    """One float column per metric, aligned with ``samples`` rows.

    Rows lacking a metric's columns get NaN (the scorer decides whether that is
    allowed); the metric runs only on the rows that have them.
    """
    out = dict(iter_metrics(samples, metrics, options))
    return pd.DataFrame(out, index=samples.index, copy=False)  # one block per metric, no copy


def iter_metrics(
    samples: pd.DataFrame,
    metrics: Sequence[str | Metric],
    options: MetricOptions | None = None,
) -> Iterator[tuple[str, np.ndarray]]:
    """:func:`compute_metrics` one metric at a time: ``(name, values)`` as each is done
    (so a caller can work on one metric while the next is computed)."""
    options = options or MetricOptions()
    caches: dict[object, dict] = {}  # one cache per row subset, shared across metrics
    notna: dict[str, np.ndarray] = {}
    for m in metrics:
        metric = m if isinstance(m, Metric) else get_metric(m)
        missing = [c for c in metric.needs if c not in samples.columns]
        if missing:
            raise InputError(
                f"metric {metric.name!r} needs column {missing[0]!r}, which the samples lack",
                path=samples.attrs.get("path"),
                field=missing[0],
            )
        for column in metric.needs:
            if column not in notna:
                notna[column] = samples[column].notna().to_numpy(dtype=bool)
        present = np.logical_and.reduce([notna[c] for c in metric.needs])
        key = tuple(metric.needs) if present.all() else np.packbits(present).tobytes()
        cache = caches.setdefault(key, {})
        if present.all():
            values = np.asarray(metric.fn(samples, options, cache), dtype=np.float64)
        else:
            values = np.full(len(samples), np.nan)
            if present.any():
                values[present] = metric.fn(samples.loc[present], options, cache)
        yield metric.name, values
