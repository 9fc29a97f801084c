"""The models of one ingest whose names give no family: one family after their folder.

The readers that turn saved runs into samples and scores tables (HELM run
folders, Inspect logs) each read a list of runs, every one with its model
columns, the file or folder it came from and, where the source publishes
them, its scores. Models whose names carry no family (``models/w8``,
``models/w128``) are named one family by the rule of
:func:`~miragelab.sources.sizes.folder_family`, alike for every reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import pandas as pd

from miragelab.sources.lm_eval_samples import ModelMeta
from miragelab.sources.sizes import Unnamed, family_in_name, folder_family

__all__ = ["ReadRun", "name_folder_family"]


class ReadRun(Protocol):
    """A run a reader has read: its model, where it came from, its scores (or None)."""

    meta: ModelMeta
    scores: pd.DataFrame | None

    @property
    def source(self) -> Path:
        """The file or folder the run was read from."""
        ...


def name_folder_family(runs: Sequence[ReadRun]) -> list[str]:
    """Give the models whose names give no family the one family of
    :func:`~miragelab.sources.sizes.folder_family`, in place.

    Parameters
    ----------
    runs : sequence of ReadRun
        The runs of one ingest; the ``meta`` (and the ``family`` column of the
        ``scores``) of those whose model names give no family are replaced.

    Returns
    -------
    list of str
        The note saying which family was named, or no note when none was.
    """
    unnamed = [r for r in runs if family_in_name(r.meta.model) is None]
    grouped = folder_family(
        Unnamed(r.meta.model, r.meta.params, r.meta.step, r.source) for r in unnamed
    )
    if grouped is None:
        return []
    name, note = grouped
    for run in unnamed:
        run.meta = replace(run.meta, family=name)
        if run.scores is not None:
            run.scores["family"] = name
    return [note]
