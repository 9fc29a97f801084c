"""The notebook API: ``import miragelab as ml``, in the style of scikit-learn.

Every function here is a thin, validated front to one library function; none
holds any math of its own:

=========================  =====================================================
``read_samples``           :func:`miragelab.tables.read_many` / ``validate_frame``
``read_scores``            :func:`miragelab.sources.published.load_scores`,
                           ``load_shipped`` / ``validate_frame``
``score``                  :func:`miragelab.scoring.score_samples`, or
                           :func:`miragelab.streaming.stream_score` (chosen by
                           :func:`miragelab.streaming.should_stream`)
``compare``                :func:`miragelab.paired.compare_samples`
``meta_analysis``          :func:`miragelab.meta.meta_analysis`
``verdicts``               :func:`miragelab.verdict.verdict_table`
``fit``                    :func:`miragelab.forecast.forecast_task`
``theory_curves``          :func:`miragelab.theory.curves`
``plan``                   :func:`miragelab.planner.examples_needed` /
                           :func:`miragelab.planner.resolvable_accuracy`
``list_metrics``,          :data:`miragelab.metrics.REGISTRY`,
``get_metric``,            :func:`miragelab.metrics.get_metric`,
``register``               :func:`miragelab.metrics.register`
=========================  =====================================================

Conventions, the same in every function:

* data first (a path, a list of paths, a folder or a pandas DataFrame; for
  scores also ``"shipped"``), every option keyword-only;
* ``random_state``: an int, a :class:`numpy.random.Generator` (or a legacy
  ``RandomState``), or None for fresh entropy, as in scikit-learn. It is turned
  into the integer seed the library takes: an int is used as it is, a generator
  gives one draw (so it advances, and two calls with one generator differ), None
  a draw from the operating system. The default ``0`` gives the CLI's results;
* ``n_resamples``: resamples of a *confidence interval* (BCa bootstrap of a
  score; the interval of an emergence score); ``n_boot``: replicates of the
  parametric bootstrap that calibrates the verdicts' break test;
* bad input raises :class:`miragelab.InputError` (a ``ValueError``) naming the
  file, the row and the field, as the command line reports it.

The library modules are imported inside the functions, so ``import miragelab``
stays cheap and a module moved elsewhere in the package breaks only the call
that needs it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from miragelab.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from miragelab.forecast import Forecast
    from miragelab.meta import MetaResult
    from miragelab.metrics import Metric
    from miragelab.scale_forecast import LadderForecast, Target
    from miragelab.tables import TableSpec
    from miragelab.verdict import VerdictResult

    RandomState = int | np.random.Generator | np.random.RandomState | None
    PathLike = str | os.PathLike[str]
    Source = PathLike | Sequence[PathLike] | pd.DataFrame

__all__ = [
    "SHIPPED",
    "compare",
    "fit",
    "forecast_ladder",
    "get_metric",
    "list_metrics",
    "meta_analysis",
    "plan",
    "read_samples",
    "read_scores",
    "register",
    "score",
    "theory_curves",
    "verdicts",
]

#: the ``source`` of :func:`read_scores` (and of the analysis functions) that means the
#: published results embedded in the package (Pythia and Observational Scaling Laws)
SHIPPED = "shipped"

#: options of the verdicts' break test, passed on to :func:`miragelab.verdict.classify`
_TEST_OPTIONS = ("alpha", "resolve_se", "exclude_confidence")


# --------------------------------------------------------------------------- checks


def _seed(random_state: RandomState) -> int:
    """The integer seed the library takes, from a scikit-learn style ``random_state``."""
    import numpy as np

    if random_state is None:
        return int(np.random.default_rng().integers(2**63))
    if isinstance(random_state, bool):
        raise InputError(
            f"expected an int, a numpy.random.Generator or None, got {random_state!r}",
            field="random_state",
        )
    if isinstance(random_state, int | np.integer):
        if random_state < 0:
            raise InputError(f"must be >= 0, got {random_state}", field="random_state")
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**63))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    raise InputError(
        f"expected an int, a numpy.random.Generator or None, got {type(random_state).__name__}",
        field="random_state",
    )


def _count(value: object, field: str, minimum: int) -> int:
    import numpy as np

    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"expected an integer, got {value!r}", field=field)
    if value < minimum:
        raise InputError(f"must be >= {minimum}, got {value}", field=field)
    return int(value)


def _check_confidence(confidence: object) -> float:
    try:
        value = float(confidence)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"expected a number, got {confidence!r}", field="confidence") from None
    if not 0 < value < 1:
        raise InputError(f"must be in (0, 1), got {confidence}", field="confidence")
    return value


def _is_frame(source: object) -> bool:
    import pandas as pd

    return isinstance(source, pd.DataFrame)


def _paths(source: object, what: str) -> list[PathLike]:
    """A path, or a list of paths, as a list; anything else is an :class:`InputError`."""
    if isinstance(source, str | os.PathLike):
        return [source]
    if isinstance(source, Iterable) and not isinstance(source, bytes | Mapping):
        paths = list(source)
        bad = [p for p in paths if not isinstance(p, str | os.PathLike)]
        if bad:
            raise InputError(
                f"expected paths to {what} tables, got {type(bad[0]).__name__} in the list",
                field=what,
            )
        if not paths:
            raise InputError(f"no {what} files given", field=what)
        return paths
    raise InputError(
        f"expected a path, a list of paths or a pandas DataFrame of {what}, "
        f"got {type(source).__name__}",
        field=what,
    )


def _validated(frame: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """``frame`` checked and typed by the table's rules: absent optional columns are
    added as nulls; ``notes`` and ``sources`` of a loader are kept."""
    from miragelab.tables import validate_frame

    table = validate_frame(frame, spec)
    for key in ("notes", "sources"):
        if key in frame.attrs:
            table.attrs[key] = frame.attrs[key]
    return table


def _directions(higher_is_better: Mapping[str, bool] | Iterable[str] | None) -> dict[str, bool]:
    """``{"metric": True}`` or the CLI's ``["metric=true"]`` -> overrides of directions."""
    from miragelab.metric_facts import parse_direction_overrides

    if higher_is_better is None:
        return {}
    if isinstance(higher_is_better, Mapping):
        import numpy as np

        out = {}
        for name, flag in higher_is_better.items():
            if not isinstance(name, str) or not isinstance(flag, bool | np.bool_):
                raise InputError(
                    f"expected metric name -> True/False, got {name!r}: {flag!r}",
                    field="higher_is_better",
                )
            out[name] = bool(flag)
        return out
    if isinstance(higher_is_better, str):
        higher_is_better = [higher_is_better]
    return parse_direction_overrides(higher_is_better)


def _scores_table(
    scores: Source, higher_is_better: Mapping[str, bool] | Iterable[str] | None
) -> pd.DataFrame:
    """The analysis functions' input: any source of :func:`read_scores`, with a
    direction on every row (overrides > the table's > the facts table's)."""
    from miragelab.metric_facts import resolve_directions

    overrides = _directions(higher_is_better)  # checked before anything is read
    return resolve_directions(read_scores(scores), overrides)


def _names(value: str | Iterable[str] | None, field: str) -> list[str] | None:
    """One metric name or several; a single string is one name, never its letters."""
    if value is None:
        return None
    names = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(n, str) for n in names):
        raise InputError(f"expected metric names, got {value!r}", field=field)
    return names


def _chosen_metrics(metrics: object) -> tuple[bool, list[Metric] | None]:
    """``(auto, metrics)`` from ``"auto"``, ``"all"``, ``"a,b"``, a name, a list of
    names or :class:`~miragelab.metrics.Metric` objects; ``metrics`` is None for auto."""
    from miragelab.metrics import Metric, get_metric, parse_metric_list

    if isinstance(metrics, str):
        if metrics.strip() == "auto":
            return True, None
        return False, parse_metric_list(metrics)
    if isinstance(metrics, Metric):
        return False, [metrics]
    if not isinstance(metrics, Iterable) or isinstance(metrics, bytes | Mapping):
        raise InputError(
            f"expected 'auto', a metric name or a list of them, got {type(metrics).__name__}",
            field="metrics",
        )
    chosen = []
    for item in metrics:
        if isinstance(item, Metric):
            chosen.append(item)
        elif isinstance(item, str):
            chosen.append(get_metric(item.strip()))
        else:
            raise InputError(
                f"expected metric names, got {type(item).__name__} in the list", field="metrics"
            )
    if not chosen:
        raise InputError("no metrics given", field="metrics")
    names = [m.name for m in chosen]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise InputError(f"metric {twice!r} listed twice", field="metrics")
    return False, chosen


# --------------------------------------------------------------------------- tables


def read_samples(source: Source) -> pd.DataFrame:
    """Read and validate a samples table (one row per task, model, step and example).

    Parameters
    ----------
    source : path, list of paths, folder, or pandas.DataFrame
        JSONL, CSV or parquet files (optionally gzipped), partitioned dataset
        folders, or a frame. A frame is checked by the same rules as a file
        (:func:`miragelab.tables.validate_frame`): optional columns it lacks
        (``step``, ``prompt``, log-probs, ...) are added as nulls.

    Returns
    -------
    pandas.DataFrame
        The samples table, with every column of the samples spec, typed.

    Raises
    ------
    InputError
        A missing file, a missing required column or value, a malformed value,
        a duplicate example; the message names the file, the line or row and
        the field.

    Examples
    --------
    >>> import pandas as pd
    >>> import miragelab as ml
    >>> frame = pd.DataFrame({"task": "add", "family": "toy", "model": "m1",
    ...                       "params": 1e6, "example_id": ["a", "b"],
    ...                       "prediction": ["4", "5"], "target": ["4", "6"]})
    >>> samples = ml.read_samples(frame)
    >>> bool(samples["step"].isna().all())
    True
    """
    from miragelab.tables import SAMPLES, read_many

    if _is_frame(source):
        return _validated(source, SAMPLES)  # type: ignore[arg-type]
    return read_many(_paths(source, "samples"), SAMPLES)


def read_scores(source: Source, **loader_options: Any) -> pd.DataFrame:
    """Read published results or scores tables into one validated scores table.

    Parameters
    ----------
    source : path, list of paths, folder, ``"shipped"``, or pandas.DataFrame
        Any file :func:`miragelab.sources.published.load_scores` reads:
        lm-eval-harness ``results_*.json``, BIG-bench ``scores_*.json``, wide
        CSVs with one row per model (Observational Scaling Laws), and scores
        tables (JSONL, CSV, parquet, as :func:`score` gives them); folders are
        walked. ``"shipped"`` (:data:`SHIPPED`) is the published Pythia and
        Observational Scaling Laws results embedded in the package. A frame is
        validated like a file (absent optional columns become nulls).
    **loader_options
        Passed to ``load_scores`` for files (``model``, ``family``, ``params``,
        ``sizes`` for lm-eval results; ``model_col``, ``params_col``, ... for
        wide CSVs; ``params_field`` for BIG-bench).

    Returns
    -------
    pandas.DataFrame
        One row per (task, family, model, step, metric): ``value``, its
        interval, ``n``, ``stderr``, ``higher_is_better`` ... Files skipped in a
        folder walk are listed in ``attrs["notes"]``, the files read in
        ``attrs["sources"]``.

    Raises
    ------
    InputError
        An unreadable or unrecognised file, a malformed row, the same score in
        two files, a model without a known size.

    Examples
    --------
    >>> import miragelab as ml
    >>> scores = ml.read_scores("shipped")
    >>> sorted(scores["family"].unique())[-2:]
    ['pythia-v1.1', 'pythia-v1.1-deduped']
    """
    from miragelab.sources.published import load_scores, load_shipped
    from miragelab.tables import SCORES

    if isinstance(source, str) and source == SHIPPED:
        if loader_options:
            raise TypeError("loader options apply to score files, not to the shipped results")
        return load_shipped()
    if _is_frame(source):
        if loader_options:
            raise TypeError("loader options apply to score files, not to a DataFrame")
        return _validated(source, SCORES)  # type: ignore[arg-type]
    paths = _paths(source, "scores")
    if len(paths) > 1 and any(isinstance(p, str) and p == SHIPPED for p in paths):
        raise InputError(f"give score files or {SHIPPED!r}, not both", field="scores")
    return load_scores(paths, **loader_options)


# --------------------------------------------------------------------------- scoring


def score(
    samples: Source,
    metrics: str | Metric | Iterable[str | Metric] = "auto",
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    random_state: RandomState = 0,
    stream: bool | None = None,
    batch_rows: int | None = None,
    strip: bool = True,
    ignore_case: bool = False,
    ignore_punctuation: bool = False,
    tokens: Literal["char", "word"] | Callable[[str], Sequence] = "char",
) -> pd.DataFrame:
    """Score a samples table: the mean of each metric per model, with an interval.

    The whole of ``mirage score`` is one call: ``ml.score(paths, metrics,
    stream=..., random_state=seed, ...)``.

    Parameters
    ----------
    samples : path, list of paths, folder, or pandas.DataFrame
        Samples files or dataset folders, or a samples frame (validated as by
        :func:`read_samples`). Files are streamed in bounded memory where the
        library's rule says so (:func:`miragelab.streaming.should_stream`: any
        dataset folder, parquet files of 256 MiB and more), else read whole;
        a frame is scored in memory.
    metrics : str, Metric, or list of them, default "auto"
        ``"auto"``: every registered metric that some sample has the columns
        for (a multiple-choice task gets the choice metrics, a generation task
        the string and log-prob metrics); ``"all"``: every registered metric;
        one name (``"exact_match"``), a comma-separated string
        (``"exact_match,token_edit_distance"``), or a list of names or
        :class:`~miragelab.metrics.Metric` objects. See :func:`list_metrics`.
    confidence : float, default 0.95
        Confidence level of the intervals, in (0, 1).
    n_resamples : int, default 1000
        Bootstrap resamples of the BCa interval of a continuous metric
        (at least 100). 0/1 metrics get a Wilson interval, groups of more than
        20,000 examples a t interval; ``ci_method`` says which.
    random_state : int, numpy.random.Generator or None, default 0
        Randomness of the bootstrap (see the module's conventions).
    stream : bool or None, default None
        Force streaming (True) or reading whole (False); None lets the library
        decide. Only for paths.
    batch_rows : int or None, default None
        Rows per record batch when streaming (None: the library's default).
    strip, ignore_case, ignore_punctuation : bool
        String normalisation before prediction and target are compared (by
        exact match and the edit distances alike): strip surrounding
        whitespace (default on), compare case-insensitively, drop punctuation.
    tokens : {"char", "word"} or callable, default "char"
        Tokens of the edit distances: code points, runs of non-whitespace, or
        a tokenizer ``str -> sequence``.

    Returns
    -------
    pandas.DataFrame
        The scores table: one row per (task, family, model, step, metric) with
        ``value`` (the mean), ``ci_low``, ``ci_high``, ``n``, ``ci_method`` and
        ``higher_is_better``.

    Raises
    ------
    InputError
        Bad samples, an unknown metric, a metric whose columns no sample has,
        a task with a metric's columns on some samples only, bad options.

    Examples
    --------
    >>> import pandas as pd
    >>> import miragelab as ml
    >>> samples = pd.DataFrame({"task": "add", "family": "toy", "model": "m1",
    ...                         "params": 1e6, "example_id": ["a", "b", "c"],
    ...                         "prediction": ["4", "5", "7"],
    ...                         "target": ["4", "5", "6"]})
    >>> scores = ml.score(samples, "exact_match")
    >>> scores[["metric", "value", "n", "ci_method"]]
           metric     value  n ci_method
    0  exact_match  0.666667  3    wilson
    """
    from miragelab.metrics import REGISTRY
    from miragelab.tables import SAMPLES, read_many

    confidence = _check_confidence(confidence)
    n_resamples = _count(n_resamples, "n_resamples", 100)
    options = _metric_options(strip, ignore_case, ignore_punctuation, tokens)
    if stream is not None and not isinstance(stream, bool):
        raise InputError(f"expected True, False or None, got {stream!r}", field="stream")
    if batch_rows is not None:
        batch_rows = _count(batch_rows, "batch_rows", 1)
    auto, chosen = _chosen_metrics(metrics)
    intervals = {"confidence": confidence, "n_resamples": n_resamples, "seed": _seed(random_state)}

    if _is_frame(samples):
        if stream:
            raise InputError("a DataFrame is scored in memory; stream needs paths", field="stream")
        table = _validated(samples, SAMPLES)  # type: ignore[arg-type]
    else:
        from miragelab.streaming import should_stream, stream_score

        paths = _paths(samples, "samples")
        if stream if stream is not None else should_stream(paths):
            batches = {} if batch_rows is None else {"batch_rows": batch_rows}
            return stream_score(
                paths,
                list(REGISTRY.values()) if auto else chosen,  # type: ignore[arg-type]
                options,
                skip_absent=auto,
                **batches,
                **intervals,
            )
        table = read_many(paths, SAMPLES)
    return _score_table(table, auto, chosen, options, intervals)


def _metric_options(
    strip: bool, ignore_case: bool, ignore_punctuation: bool, tokens: object
) -> Any:
    """The string options of the metrics (checked)."""
    from miragelab.metrics import MetricOptions

    if tokens not in ("char", "word") and not callable(tokens):
        raise InputError(f"expected 'char', 'word' or a callable, got {tokens!r}", field="tokens")
    return MetricOptions(
        strip=bool(strip),
        case=bool(ignore_case),
        punctuation=bool(ignore_punctuation),
        tokens=tokens,  # type: ignore[arg-type]
    )


def compare(
    samples: Source,
    metrics: str | Metric | Iterable[str | Metric],
    *,
    a: str | None = None,
    b: str | None = None,
    adjacent: bool = False,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    random_state: RandomState = 0,
    strip: bool = True,
    ignore_case: bool = False,
    ignore_punctuation: bool = False,
    tokens: Literal["char", "word"] | Callable[[str], Sequence] = "char",
) -> pd.DataFrame:
    """Paired differences of a metric between two models on the examples both saw.

    The whole of ``mirage compare`` is one call. McNemar's exact test (with
    Newcombe's paired interval) for 0/1 metrics, a paired BCa bootstrap
    otherwise, and cluster-robust t intervals when the samples have a
    ``cluster`` column (:mod:`miragelab.paired`).

    Parameters
    ----------
    samples : path, list of paths, folder, or pandas.DataFrame
        Samples tables (as :func:`read_samples` reads them).
    metrics : str, Metric, or list of them
        The metrics to compare (a comma-separated string, names or objects).
    a, b : str, optional
        The two models (``diff`` is ``b`` minus ``a``); or
    adjacent : bool, default False
        every adjacent pair of each family's ladder: consecutive sizes (each model
        at its last step) and consecutive steps of a model that has several.
    confidence : float, default 0.95
        Confidence level of the intervals.
    n_resamples : int, default 2000
        Resamples of the paired bootstrap (at least 100).
    random_state : int, numpy.random.Generator or None, default 0
        Randomness of the bootstrap; each (task, pair, metric) gets its own
        stream, independent of the others.
    strip, ignore_case, ignore_punctuation, tokens
        String options of the metrics, as in :func:`score`.

    Returns
    -------
    pandas.DataFrame
        One row per (task, pair of models, metric): ``task, family, model_a,
        model_b, metric, n, diff, ci_low, ci_high, p_value, method, clusters,
        step_a, step_b``. ``attrs["notes"]`` names pairs that share no example.

    Raises
    ------
    InputError
        Bad samples, an unknown metric or model, neither or both of
        ``a``/``b`` and ``adjacent``, examples whose cluster differs between
        the two models.

    Examples
    --------
    >>> import pandas as pd
    >>> import miragelab as ml
    >>> samples = pd.DataFrame({"task": "add", "family": "toy",
    ...                         "model": ["s"] * 4 + ["l"] * 4,
    ...                         "params": [1e6] * 4 + [1e7] * 4,
    ...                         "example_id": [1, 2, 3, 4] * 2,
    ...                         "prediction": ["4", "0", "0", "0", "4", "5", "6", "0"],
    ...                         "target": ["4", "5", "6", "7"] * 2})
    >>> row = ml.compare(samples, "exact_match", adjacent=True).iloc[0]
    >>> row["model_a"], row["model_b"], float(row["diff"]), row["method"], float(row["p_value"])
    ('s', 'l', 0.5, 'mcnemar_exact', 0.5)
    """
    from miragelab.paired import compare_samples

    confidence = _check_confidence(confidence)
    n_resamples = _count(n_resamples, "n_resamples", 100)
    options = _metric_options(strip, ignore_case, ignore_punctuation, tokens)
    auto, chosen = _chosen_metrics(metrics)
    if auto or not chosen:
        raise InputError("name the metrics to compare", field="metrics")
    for name, value in (("a", a), ("b", b)):
        if value is not None and not isinstance(value, str):
            raise InputError(f"expected a model name, got {value!r}", field=name)
    table = read_samples(samples)
    return compare_samples(
        table,
        chosen,
        a=a,
        b=b,
        adjacent=bool(adjacent),
        options=options,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=_seed(random_state),
    )


def _score_table(
    table: pd.DataFrame,
    auto: bool,
    chosen: list[Metric] | None,
    options: Any,
    intervals: dict[str, Any],
) -> pd.DataFrame:
    from miragelab.scoring import applicable_metrics, score_samples

    if auto:
        chosen = applicable_metrics(table)
    return score_samples(table, chosen, options, **intervals)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- analysis


def meta_analysis(
    scores: Source,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    n_boot: int = 499,
    random_state: RandomState = 0,
    higher_is_better: Mapping[str, bool] | Iterable[str] | None = None,
    samples: Source | None = None,
) -> MetaResult:
    """Emergence of every curve, the share of emergent-looking curves per metric, verdicts.

    What ``mirage meta`` computes, without the figures
    (:func:`miragelab.meta.meta_analysis`). A curve is one (task, family,
    metric) over model size, or over the training steps of one model.

    Parameters
    ----------
    scores : path, list of paths, folder, ``"shipped"``, or pandas.DataFrame
        Anything :func:`read_scores` reads. The full shipped data has thousands
        of curves and takes minutes; a few tasks take a second.
    confidence : float, default 0.95
        Confidence level of the intervals.
    n_resamples : int, default 1000
        Redraws of each curve from its points' noise, for the interval of its
        emergence score (at least 100).
    n_boot : int, default 499
        Parametric bootstrap replicates calibrating each verdict's break test.
    random_state : int, numpy.random.Generator or None, default 0
        Randomness of both (see the module's conventions).
    higher_is_better : mapping or list of "METRIC=true|false", optional
        Directions of metrics, over the table's and the built-in facts; a
        metric with no direction anywhere is an :class:`InputError`.
    samples : path, list of paths, folder, or pandas.DataFrame, optional
        The samples the scores came from: the verdicts then test a harsh
        curve's differences as paired where every point saw the same examples
        (as :func:`verdicts`).

    Returns
    -------
    miragelab.meta.MetaResult
        ``measures`` (one row per curve: emergence score with ``score_ci_low``
        and ``score_ci_high``, smoothness, ``emergent_looking``, ...),
        ``shares`` (per metric, over size curves), ``verdicts`` (as
        :func:`verdicts`), ``evidence`` (per curve and continuous metric) and
        ``notes``.

    Examples
    --------
    >>> import miragelab as ml
    >>> scores = ml.read_scores("shipped")
    >>> lambada = scores[scores["task"] == "lambada_openai"]
    >>> result = ml.meta_analysis(lambada, n_resamples=200, n_boot=99)
    >>> sorted(result.shares["metric"])
    ['acc', 'ppl']
    """
    from miragelab.meta import meta_analysis as run

    confidence = _check_confidence(confidence)
    n_resamples = _count(n_resamples, "n_resamples", 100)
    n_boot = _count(n_boot, "n_boot", 1)
    seed = _seed(random_state)
    table = _scores_table(scores, higher_is_better)
    given = None if samples is None else read_samples(samples)
    return run(
        table,
        confidence=confidence,
        n_resamples=n_resamples,
        n_boot=n_boot,
        seed=seed,
        samples=given,
    )


def verdicts(
    scores: Source,
    *,
    harsh_metrics: str | Iterable[str] | None = None,
    continuous_metrics: str | Iterable[str] | None = None,
    pairs: Iterable[tuple[str, str]] | None = None,
    confidence: float = 0.95,
    n_boot: int = 499,
    random_state: RandomState = 0,
    higher_is_better: Mapping[str, bool] | Iterable[str] | None = None,
    samples: Source | None = None,
    full: bool = False,
    **test_options: float,
) -> pd.DataFrame | VerdictResult:
    """Mirage, genuine, smooth or inconclusive: one verdict per curve.

    A curve is one harsh metric (exact match, accuracy, ...) of one family on
    one task, over size or over one model's training steps; its verdict tests
    the continuous metrics of the same outputs for a break where the harsh
    metric jumps (:func:`miragelab.verdict.verdict_table`).

    Parameters
    ----------
    scores : path, list of paths, folder, ``"shipped"``, or pandas.DataFrame
        Anything :func:`read_scores` reads.
    harsh_metrics, continuous_metrics : str or list of str, optional
        The metrics to treat as harsh and as continuous (default: as the
        package's table of metric facts says).
    pairs : list of (harsh, continuous), optional
        Explicit pairs instead.
    confidence : float, default 0.95
        Confidence level behind each point's standard error.
    n_boot : int, default 499
        Parametric bootstrap replicates calibrating the break test.
    random_state : int, numpy.random.Generator or None, default 0
        Randomness of the bootstrap; each curve gets its own stream from it,
        independent of the table's order.
    higher_is_better : mapping or list of "METRIC=true|false", optional
        Directions of metrics, over the table's and the built-in facts.
    samples : path, list of paths, folder, or pandas.DataFrame, optional
        The samples the scores came from: where a harsh curve's points were
        scored on the same examples, its differences are tested as paired
        (:func:`miragelab.paired.curve_paired_se`), which finds a real jump
        between neighbouring sizes with fewer examples.
    full : bool, default False
        Return the :class:`~miragelab.verdict.VerdictResult` (verdicts, the
        evidence per continuous metric, and the test behind each verdict)
        instead of the verdict table alone.
    **test_options
        ``alpha`` (test level), ``resolve_se``, ``exclude_confidence``: the
        thresholds of :func:`miragelab.verdict.classify`.

    Returns
    -------
    pandas.DataFrame or miragelab.verdict.VerdictResult
        One row per (task, family, axis, model, harsh_metric): ``verdict``,
        ``shape``, ``soft_metric``, ``p_value``, where the break is and its
        size, ``jump_from``/``jump_to`` and ``reason``.

    Examples
    --------
    >>> import miragelab as ml
    >>> scores = ml.read_scores("shipped")
    >>> lambada = scores[scores["task"] == "lambada_openai"]
    >>> table = ml.verdicts(lambada, n_boot=99)
    >>> set(table["verdict"]) <= {"smooth", "mirage", "genuine", "inconclusive"}
    True
    """
    from miragelab.verdict import verdict_table

    unknown = sorted(set(test_options) - set(_TEST_OPTIONS))
    if unknown:
        raise TypeError(
            f"verdicts() got unexpected keyword(s) {', '.join(unknown)}; "
            f"the test's options are {', '.join(_TEST_OPTIONS)}"
        )
    confidence = _check_confidence(confidence)
    n_boot = _count(n_boot, "n_boot", 1)
    seed = _seed(random_state)
    if pairs is not None:
        pairs = [tuple(p) for p in pairs]  # type: ignore[misc]
        if not all(len(p) == 2 and all(isinstance(m, str) for m in p) for p in pairs):
            raise InputError(
                f"expected (harsh, continuous) name pairs, got {pairs!r}", field="pairs"
            )
    table = _scores_table(scores, higher_is_better)
    result = verdict_table(
        table,
        harsh_metrics=_names(harsh_metrics, "harsh_metrics"),
        continuous_metrics=_names(continuous_metrics, "continuous_metrics"),
        pairs=pairs,
        confidence=confidence,
        n_boot=n_boot,
        seed=seed,
        samples=None if samples is None else read_samples(samples),
        **test_options,
    )
    return result if full else result.verdicts


def fit(
    scores: Source,
    *,
    task: str,
    family: str,
    harsh: str = "acc",
    soft: str = "ppl",
    length: float | Literal["auto"] = "auto",
    holdout: int = 2,
    axis: str = "params",
    higher_is_better: Mapping[str, bool] | Iterable[str] | None = None,
) -> Forecast:
    """Back-test: forecast the largest models' accuracy from the smaller models' loss.

    What ``mirage fit`` computes (:func:`miragelab.forecast.forecast_task`):
    the continuous metric is turned into a per-token cross-entropy, a power
    law is fitted to it on all but the ``holdout`` largest models, and their
    accuracy is forecast as ``p ** L``, beside a sigmoid fitted to accuracy.

    Parameters
    ----------
    scores : path, list of paths, folder, ``"shipped"``, or pandas.DataFrame
        Anything :func:`read_scores` reads.
    task, family : str
        The task and the model family (one size ladder).
    harsh : str, default "acc"
        The accuracy-like metric to forecast.
    soft : str, default "ppl"
        The continuous metric turned into a cross-entropy (a loss, a
        perplexity, a log-probability, a per-token probability).
    length : float or "auto", default "auto"
        Answer length ``L`` in the loss's tokens; ``"auto"`` fits it on the
        training models only.
    holdout : int, default 2
        Largest models held out (at least 1; at least 3 models must remain).
    axis : str, default "params"
        The scale column.
    higher_is_better : mapping or list of "METRIC=true|false", optional
        Directions of metrics, over the table's and the built-in facts.

    Returns
    -------
    miragelab.forecast.Forecast
        ``table`` (one row per held-out model: observed accuracy, the power
        law's and the sigmoid's forecasts and their errors), ``fit`` (the power
        law), ``length`` (``L``) and ``curve`` (every model).

    Examples
    --------
    >>> import miragelab as ml
    >>> forecast = ml.fit("shipped", task="lambada_openai", family="pythia-v1.1")
    >>> len(forecast.table), forecast.fit.n_points
    (2, 5)
    """
    from miragelab.forecast import forecast_task

    holdout = _count(holdout, "holdout", 1)
    if not (isinstance(length, str) and length == "auto"):
        try:
            if isinstance(length, bool):
                raise TypeError
            length = float(length)
        except (TypeError, ValueError):
            raise InputError(
                f"expected a number or 'auto', got {length!r}", field="length"
            ) from None
    table = _scores_table(scores, higher_is_better)
    return forecast_task(table, task, family, harsh, soft, length, holdout, axis=axis)


def forecast_ladder(
    scores: Source,
    *,
    harsh: str,
    soft: str | None = None,
    targets: Sequence[str | Target] | None = None,
    holdout: int | None = None,
    family: str | None = None,
    tasks: str | Sequence[str] | None = None,
    soft_task: str | None = None,
    length: float | Literal["auto"] | None = None,
    chance: Mapping[str, float] | None = None,
    last: int = 1,
    skip: float = 0.1,
    smooth: int = 5,
    n_boot: int = 200,
    confidence: float = 0.9,
    random_state: RandomState = 0,
    higher_is_better: Mapping[str, bool] | Iterable[str] | None = None,
) -> LadderForecast:
    """Forecast larger models' accuracy from a ladder over parameters and tokens.

    What ``mirage forecast`` computes (:func:`miragelab.scale_forecast.forecast_ladder`):
    step 1 fits the continuous metric as ``E + A/N**alpha + B/D**beta``, step 2 the
    harsh metric as a sigmoid of it; beside it, accuracy as a sigmoid of compute,
    and with ``length`` the paper's ``exp(-L CE)``. Every method is back-tested on
    the ladder's largest size and the best is the ``default``; every forecast has a
    prediction interval.

    Parameters
    ----------
    scores : path, list of paths, folder, ``"shipped"``, or pandas.DataFrame
        Anything :func:`read_scores` reads, with ``params`` and ``tokens_trained``.
    harsh : str
        The metric to forecast (accuracy).
    soft : str, optional
        The continuous metric of step 1 (a loss, bits per byte, a perplexity, a
        log-probability); None: the one-step route only.
    targets : list of str or Target, optional
        Models to forecast, as ``"NAME:params=N,tokens=D[,flops=C]"`` or
        :class:`miragelab.scale_forecast.Target`.
    holdout : int, optional
        Instead of ``targets``: the models of the ``holdout`` largest sizes are the
        targets, each forecast from the smaller ones (a back-test).
    family : str, optional
        The ladder's family, where the scores hold several.
    tasks : str or list of str, optional
        Tasks to forecast (default: every task with the metrics).
    soft_task : str, optional
        A task whose loss is a further intermediate (C4 cross-entropy).
    length : float or "auto", optional
        The answer's length in the loss's tokens: adds the ``p**L`` route.
    chance : mapping, optional
        Chance accuracy by task: the floor of step 2.
    last : int, default 1
        Step 1 anchors each run on the mean of its last ``last`` checkpoints.
    skip : float, default 0.1
        Share of each run's first checkpoints left out of step 2.
    smooth : int, default 5
        Step 2 smooths each run by a moving average of ``smooth`` evaluations.
    n_boot : int, default 200
        Bootstrap draws of each interval (>= 20).
    confidence : float, default 0.9
        Level of the intervals.
    random_state : int, numpy.random.Generator or None, default 0
        Seed of the bootstrap.
    higher_is_better : mapping or list of "METRIC=true|false", optional
        Directions of metrics, over the table's and the built-in facts.

    Returns
    -------
    miragelab.scale_forecast.LadderForecast
        ``table`` (one row per task, target and method: prediction, interval,
        observed value where the scores hold the target, error, the dominant
        source of error), ``backtest`` and the fits behind each figure.

    Examples
    --------
    >>> import miragelab as ml
    >>> result = ml.forecast_ladder(
    ...     "shipped", family="pythia-v1.1", tasks="lambada_openai", harsh="acc",
    ...     soft="ppl", holdout=2, n_boot=20)
    >>> sorted(set(result.table["target_name"]))
    ['EleutherAI/pythia-v1.1-12b', 'EleutherAI/pythia-v1.1-6.9b']
    """
    from miragelab.scale_forecast import Settings, Target, largest_models, parse_target
    from miragelab.scale_forecast import forecast_ladder as forecast

    if (targets is None) == (holdout is None):
        raise InputError("give targets or holdout, one of the two", field="targets")
    n_boot = _count(n_boot, "n_boot", 20)
    settings = Settings(
        skip=skip,
        smooth=_count(smooth, "smooth", 1),
        last=_count(last, "last", 1),
        n_boot=n_boot,
        confidence=_check_confidence(confidence),
    )
    seed = _seed(random_state)
    table = _scores_table(scores, higher_is_better)
    if holdout is not None:
        chosen = largest_models(table, _count(holdout, "holdout", 1), family=family)
    else:
        if isinstance(targets, str | Target):
            targets = [targets]
        chosen = [t if isinstance(t, Target) else parse_target(t) for t in targets]
    return forecast(
        table,
        chosen,
        harsh=harsh,
        soft=soft,
        family=family,
        tasks=_names(tasks, "tasks"),
        soft_task=soft_task,
        length=length,
        chance=chance,
        settings=settings,
        random_state=seed,
    )


def theory_curves(
    *,
    c: float = 2e9,
    alpha: float = -0.5,
    lengths: float | Sequence[float] = (1, 2, 3, 4, 5),
    k: int = 4,
    n_min: float = 1e7,
    n_max: float = 1e12,
    points: int = 200,
) -> pd.DataFrame:
    """The paper's closed-form model: one smooth loss, metrics sharp and smooth.

    The curves of ``mirage theory`` (:func:`miragelab.theory.curves`): a
    per-token cross-entropy ``(N / c) ** alpha`` falling as a power law in the
    size ``N``, and what it gives under exact match (``p ** L``), token edit
    distance (``L (1 - p)``), multiple-choice grade and Brier score, for
    answers of each length ``L``.

    Parameters
    ----------
    c : float, default 2e9
        Scale constant of the loss (> 0).
    alpha : float, default -0.5
        Power-law exponent (< 0: the loss falls with scale).
    lengths : float or list of float, default (1, 2, 3, 4, 5)
        Answer lengths ``L`` in tokens (> 0, distinct).
    k : int, default 4
        Number of choices of the multiple-choice grade (>= 2).
    n_min, n_max : float, default 1e7, 1e12
        Smallest and largest model size of the grid.
    points : int, default 200
        Sizes on the log-spaced grid (>= 2).

    Returns
    -------
    pandas.DataFrame
        One row per (length, size): ``params``, ``length``, ``cross_entropy``,
        ``per_token_prob``, ``exact_match``, ``token_edit_distance``,
        ``multiple_choice_grade``, ``brier_score``.

    Examples
    --------
    >>> import miragelab as ml
    >>> curves = ml.theory_curves(lengths=[1, 5], points=3, n_min=1e8, n_max=1e10)
    >>> curves[["params", "length", "exact_match"]].round(4)
             params  length  exact_match
    0  1.000000e+08       1       0.0114
    1  1.000000e+09       1       0.2431
    2  1.000000e+10       1       0.6394
    3  1.000000e+08       5       0.0000
    4  1.000000e+09       5       0.0008
    5  1.000000e+10       5       0.1069
    """
    import numpy as np

    from miragelab.theory import curves

    values = [lengths] if np.ndim(lengths) == 0 else list(lengths)  # type: ignore[arg-type]
    if len(set(values)) != len(values):
        raise InputError(f"lengths must be distinct, got {lengths!r}", field="lengths")
    try:
        return curves(c, alpha, values, k=k, n_min=n_min, n_max=n_max, points=points)
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc)) from None


def plan(
    *,
    accuracy: float | None = None,
    n: int | None = None,
    confidence: float = 0.95,
    chance: float = 0.0,
    power: float | None = None,
) -> int | float:
    """How many test examples tell an accuracy from zero (or chance), or the converse.

    What ``mirage plan`` computes: with ``accuracy``, the smallest test set on
    which it is distinguishable from ``chance``
    (:func:`miragelab.planner.examples_needed`); with ``n``, the smallest
    accuracy ``n`` examples tell from ``chance``
    (:func:`miragelab.planner.resolvable_accuracy`). The test is a one-sided
    exact binomial test at level ``1 - confidence``.

    Parameters
    ----------
    accuracy : float, optional
        A true accuracy in ``(chance, 1]``. Give exactly one of ``accuracy``
        and ``n``.
    n : int, optional
        A test-set size (>= 1).
    confidence : float, default 0.95
        One minus the level of the test.
    chance : float, default 0.0
        The accuracy to tell it from, in [0, 1).
    power : float, optional
        Power required of the test (default: ``confidence``).

    Returns
    -------
    int or float
        The number of examples (given ``accuracy``), or the smallest
        resolvable accuracy (given ``n``; NaN if even a perfect model could
        not be told from chance on ``n`` examples).

    Examples
    --------
    >>> import miragelab as ml
    >>> ml.plan(accuracy=1e-3)
    2995
    >>> round(ml.plan(n=2995), 6)
    0.001
    """
    from miragelab.planner import examples_needed, resolvable_accuracy

    if (accuracy is None) == (n is None):
        raise InputError("give exactly one of accuracy or n", field="accuracy")
    try:
        if accuracy is not None:
            return examples_needed(accuracy, confidence, chance, power)
        return resolvable_accuracy(_count(n, "n", 1), confidence, chance, power)
    except InputError:
        raise
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc), field="accuracy" if accuracy is not None else "n") from None


# --------------------------------------------------------------------------- metrics


def list_metrics() -> pd.DataFrame:
    """The metric registry: what :func:`score` can compute, and from which columns.

    Returns
    -------
    pandas.DataFrame
        One row per registered metric (built-in and :func:`register`-ed):
        ``metric``, ``needs`` (the samples columns it reads), ``binary``
        (0/1 per sample: Wilson intervals), ``higher_is_better``, ``doc``.

    Examples
    --------
    >>> import miragelab as ml
    >>> table = ml.list_metrics()
    >>> table.set_index("metric").loc["exact_match", "needs"]
    ('prediction', 'target')
    """
    import pandas as pd

    from miragelab.metrics import REGISTRY

    return pd.DataFrame(
        [
            {
                "metric": m.name,
                "needs": tuple(m.needs),
                "binary": m.binary,
                "higher_is_better": m.higher_is_better,
                "doc": m.doc,
            }
            for m in REGISTRY.values()
        ],
        columns=["metric", "needs", "binary", "higher_is_better", "doc"],
    )


def get_metric(name: str) -> Metric:
    """One registered metric by name.

    Parameters
    ----------
    name : str
        A name of :func:`list_metrics`.

    Returns
    -------
    miragelab.metrics.Metric
        The metric: ``name``, ``needs``, ``binary``, ``higher_is_better``,
        ``doc``; calling it on a samples table gives one value per row.

    Raises
    ------
    InputError
        An unknown name (the message lists the known ones).

    Examples
    --------
    >>> import miragelab as ml
    >>> ml.get_metric("token_edit_distance").higher_is_better
    False
    """
    from miragelab.metrics import get_metric as lookup

    if not isinstance(name, str):
        raise InputError(f"expected a metric name, got {name!r}", field="metrics")
    return lookup(name)


def register(
    metric: Metric | Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    needs: Sequence[str] | None = None,
    binary: bool = False,
    higher_is_better: bool | None = None,
    doc: str | None = None,
    replace: bool = False,
) -> Any:
    """Add a metric to the registry, so :func:`score` (and ``"auto"``) can use it.

    Works on a :class:`~miragelab.metrics.Metric`, on a function, or as a
    decorator. The function has the built-in metrics' signature
    ``fn(samples, options, cache) -> array``: one float per row of
    ``samples`` (only rows that have every column in ``needs`` are passed),
    ``options`` the :class:`~miragelab.metrics.MetricOptions` of the call,
    ``cache`` a dict shared by the metrics of one call.

    Parameters
    ----------
    metric : Metric or callable, optional
        The metric, or its function; omitted, ``register`` returns a decorator.
    name : str, optional
        Its name (default: the function's name).
    needs : list of str
        Samples columns it reads (required for a function).
    binary : bool, default False
        Whether its values are 0/1 (Wilson intervals instead of the bootstrap).
    higher_is_better : bool
        Its direction (required for a function); a name the package's facts
        table knows must agree with it.
    doc : str, optional
        One line for :func:`list_metrics` (default: the docstring's first line).
    replace : bool, default False
        Replace a metric of the same name.

    Returns
    -------
    miragelab.metrics.Metric
        The registered metric (or, without ``metric``, a decorator giving it).

    Raises
    ------
    InputError
        A name already registered (without ``replace``), a direction that
        contradicts the facts table, missing ``needs`` or ``higher_is_better``.

    Examples
    --------
    >>> import numpy as np
    >>> import miragelab as ml
    >>> @ml.register(needs=("prediction", "target"), binary=True, higher_is_better=True)
    ... def first_char_match(samples, options, cache):
    ...     '''1 if the first characters agree'''
    ...     p = samples["prediction"].astype(str).str[:1]
    ...     t = samples["target"].astype(str).str[:1]
    ...     return (p == t).to_numpy(dtype=float)
    >>> first_char_match.name, first_char_match.binary
    ('first_char_match', True)
    """
    from miragelab.metrics import Metric
    from miragelab.metrics import register as add

    if metric is None:

        def decorator(fn: Callable[..., Any]) -> Metric:
            return register(
                fn,
                name=name,
                needs=needs,
                binary=binary,
                higher_is_better=higher_is_better,
                doc=doc,
                replace=replace,
            )

        return decorator
    if isinstance(metric, Metric):
        given = {"name": name, "needs": needs, "higher_is_better": higher_is_better, "doc": doc}
        extra = [k for k, v in given.items() if v is not None] + (["binary"] if binary else [])
        if extra:
            raise TypeError(f"register() of a Metric takes no {', '.join(extra)}")
        built = metric
    elif callable(metric):
        label = name if name is not None else getattr(metric, "__name__", None)
        if not isinstance(label, str) or not label or label == "<lambda>":
            raise InputError("a metric needs a name", field="name")
        if needs is None or isinstance(needs, str) or not all(isinstance(c, str) for c in needs):
            raise InputError(
                f"metric {label!r}: needs must be a list of samples columns", field="needs"
            )
        if not isinstance(higher_is_better, bool):
            raise InputError(
                f"metric {label!r}: higher_is_better must be True or False",
                field="higher_is_better",
            )
        lines = (getattr(metric, "__doc__", None) or "").strip().splitlines()
        built = Metric(
            name=label,
            needs=tuple(needs),
            binary=bool(binary),
            higher_is_better=higher_is_better,
            doc=doc if doc is not None else (lines[0].strip() if lines else ""),
            fn=metric,
        )
    else:
        raise InputError(
            f"expected a Metric or a function, got {type(metric).__name__}", field="metric"
        )
    try:
        return add(built, replace=replace)
    except InputError:
        raise
    except ValueError as exc:
        raise InputError(str(exc), field="name") from None
