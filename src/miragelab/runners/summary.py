"""Per-model summary of a samples table just produced: what ``mirage eval`` and
``mirage ladder eval`` print. The numbers come from the metric registry
(:mod:`miragelab.metrics`), so they are the ones ``mirage score`` gives.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from miragelab.metrics import compute_metrics, get_metric

__all__ = ["model_summary"]


def model_summary(samples: pd.DataFrame, keys: Sequence[str] = ("family", "model")) -> pd.DataFrame:
    """One row per model: exact match, mean target log-prob and the number of examples.

    Parameters
    ----------
    samples
        A samples table.
    keys
        The columns that name a model, in the order of first appearance.

    Returns
    -------
    pandas.DataFrame
        ``keys``, then ``exact_match`` (mean of the registry's ``exact_match``,
        default normalisation), ``target_logprob`` (mean of the summed target
        token log-probs; NaN without that column), ``n`` (examples) and
        ``choice`` (every example is multiple choice, so exact match is the
        accuracy).
    """
    metrics = [get_metric("exact_match")]
    if "target_token_logprobs" in samples.columns:
        metrics.append(get_metric("target_logprob"))
    values = compute_metrics(samples, metrics)
    if "target_logprob" not in values.columns:
        values["target_logprob"] = float("nan")
    choice = (
        samples["correct_choice"].notna()
        if "correct_choice" in samples.columns
        else pd.Series(False, index=samples.index)
    )
    frame = values.assign(choice=choice, **{k: samples[k] for k in keys})
    grouped = frame.groupby(list(keys), sort=False, dropna=False)
    table = grouped.agg(
        exact_match=("exact_match", "mean"),
        target_logprob=("target_logprob", "mean"),
        n=("exact_match", "size"),
        choice=("choice", "all"),
    )
    return table.reset_index()
