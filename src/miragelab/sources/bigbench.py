"""BIG-bench ``scores_*.json`` files -> the scores table; the shipped BIG-bench task list.

The schema (``data/bigbench/README.md``, from the ``bigbench`` package's
``ResultsFileData``/``ModelData``/``ScoreData`` dataclasses)::

    {"model": {"model_family": "BIG-G T=0", "model_name": "128b",
               "total_params": ..., "non_embedding_params": ...,
               "flop_matched_non_embedding_params": ..., ...},
     "task": {"task_name": "hhh_alignment"},
     "scores": [{"score_dict": {"multiple_choice_grade": 0.6, ...},
                 "preferred_score": "multiple_choice_grade",
                 "number_of_shots": 0, "low_score": 0.25, "high_score": 1.0,
                 "subtask_description": "hhh_alignment:Harms"}, ...]}

Mapping
-------
* ``task``: ``subtask_description`` (``"<task>:<subtask>"``, or ``"<task>"``
  for the aggregate over subtasks), with ``@<K>shot`` appended when
  ``number_of_shots`` > 0, as in the other loaders.
* ``metric``: each key of ``score_dict``; ``value`` is stored raw (0-1 for
  multiple_choice_grade, exact_str_match, brier, ECE, macro_f1; 0-100 for bleu,
  rouge and ``normalized_aggregate_score``).
* ``family`` = ``model_family``, ``model`` = ``model_name``.
* ``params`` = ``total_params`` by default (the scores table's convention is
  total parameters); ``params_field="non_embedding_params"`` or
  ``"flop_matched_non_embedding_params"`` picks BIG-bench's own x-axes instead.
* ``higher_is_better``: the files do not state it, so it is the metric's direction
  in :mod:`miragelab.metric_facts` (false for ``expected_calibration_error`` and
  ``calibration_multiple_choice_brier_score``, true for ``multiple_choice_grade``,
  ``exact_str_match``, ``bleu``, ...); null for a metric not known there.
* ``n``, ``stderr`` and intervals are null: score files hold aggregates only.

``tasks.csv.gz`` is task metadata, not scores; :func:`load_bigbench_task_list` reads it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from miragelab.errors import InputError
from miragelab.metric_facts import fact_of
from miragelab.schema import SCORES, validate_frame
from miragelab.sources.lm_eval_results import read_json
from miragelab.sources.shipped import shipped_data_dir
from miragelab.textio import json_error, regular_file

__all__ = [
    "PARAMS_FIELDS",
    "bigbench_records",
    "is_bigbench_scores",
    "load_bigbench_scores",
    "load_bigbench_task_list",
]

PARAMS_FIELDS = ("total_params", "non_embedding_params", "flop_matched_non_embedding_params")


def is_bigbench_scores(data: Any) -> bool:
    """Whether parsed JSON looks like a BIG-bench ``scores_*.json`` file."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("model"), dict)
        and isinstance(data.get("scores"), list)
        and "model_family" in data["model"]
    )


def _positive(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and value > 0 else None


def bigbench_records(
    data: Any, path: str | os.PathLike[str], *, params_field: str = "total_params"
) -> list[dict[str, Any]]:
    """Score records of one parsed BIG-bench score file, unvalidated."""
    p = Path(path)
    if params_field not in PARAMS_FIELDS:
        raise ValueError(f"params_field must be one of {', '.join(PARAMS_FIELDS)}")
    if not is_bigbench_scores(data):
        bad = (
            "scores" if isinstance(data, dict) and isinstance(data.get("model"), dict) else "model"
        )
        raise json_error(
            "not a BIG-bench score file (expected 'model' with 'model_family' and a 'scores' list)",
            p,
            (bad,),
        )
    model_info = data["model"]
    family = model_info.get("model_family")
    name = model_info.get("model_name")
    for key, value in (("model_family", family), ("model_name", name)):
        if not isinstance(value, str) or not value.strip():
            raise json_error("missing or not a string", p, ("model", key))
    params = _positive(model_info.get(params_field))
    if params is None:
        raise json_error(
            f"model size must be a positive number, got {model_info.get(params_field)!r}",
            p,
            ("model", params_field),
        )
    task_info = data.get("task") if isinstance(data.get("task"), dict) else {}
    task_name = task_info.get("task_name")

    records: list[dict[str, Any]] = []
    for i, entry in enumerate(data["scores"]):
        if not isinstance(entry, dict):
            raise json_error("expected an object", p, ("scores", i))
        scores = entry.get("score_dict")
        if not isinstance(scores, dict):
            raise json_error("missing or not an object", p, ("scores", i, "score_dict"))
        task = entry.get("subtask_description") or task_name
        if not isinstance(task, str) or not task:
            raise json_error(
                "no subtask_description and no task.task_name",
                p,
                ("scores", i, "subtask_description"),
            )
        shots = entry.get("number_of_shots", 0)
        if shots is None:
            shots = 0
        if isinstance(shots, bool) or not isinstance(shots, int) or shots < 0:
            raise json_error(
                f"expected a non-negative integer, got {shots!r}",
                p,
                ("scores", i, "number_of_shots"),
            )
        label = f"{task}@{shots}shot" if shots > 0 else task
        for metric, value in scores.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise json_error(
                    f"expected a number, got {value!r}", p, ("scores", i, "score_dict", metric)
                )
            if not math.isfinite(value):
                continue  # BIG-bench writes NaN for metrics it could not compute
            fact = fact_of(metric)
            records.append(
                {
                    "task": label,
                    "family": family,
                    "model": name,
                    "params": params,
                    "compute_flops": None,
                    "tokens_trained": None,
                    "step": None,
                    "metric": metric,
                    "value": float(value),
                    "ci_low": None,
                    "ci_high": None,
                    "n": None,
                    "ci_method": None,
                    "stderr": None,
                    "higher_is_better": None if fact is None else fact.higher_is_better,
                }
            )
    if not records:
        raise json_error("no scores in the file", p, ("scores",))
    return records


def load_bigbench_scores(
    path: str | os.PathLike[str], *, params_field: str = "total_params"
) -> pd.DataFrame:
    """Load one BIG-bench ``scores_*.json`` file as a validated scores table."""
    p = Path(path)
    records = bigbench_records(read_json(p), p, params_field=params_field)
    return validate_frame(pd.DataFrame.from_records(records), SCORES, path=p)


_TASK_LIST_INTS = (
    "n_subtasks",
    "n_examples",
    "n_multiple_choice_examples",
    "n_generative_examples",
)
_TASK_LIST_FLOATS = (
    "mean_n_choices",
    "chance_multiple_choice_grade",
    "low_score_override",
    "high_score_override",
)


def load_bigbench_task_list(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """BIG-bench task metadata (``tasks.csv.gz``; the shipped copy by default).

    One row per task or subtask; counts as nullable integers, chance levels
    and score overrides as floats, ``metrics`` and ``keywords`` as
    ``;``-joined strings. Columns are described in ``data/bigbench/README.md``.
    """
    if path is None:
        path = shipped_data_dir() / "bigbench" / "tasks.csv.gz"
    p = regular_file(path)
    try:
        frame = pd.read_csv(p, dtype=str, keep_default_na=False, compression="infer")
    except FileNotFoundError:
        raise InputError("no such file", path=p) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"malformed CSV ({' '.join(str(exc).split())})", path=p) from None
    if "task" not in frame.columns:
        raise InputError("not a BIG-bench task list (no 'task' column)", path=p, line=1)
    for column in _TASK_LIST_INTS:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column].replace("", None)).astype("Int64")
    for column in _TASK_LIST_FLOATS:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column].replace("", None)).astype(float)
    return frame
