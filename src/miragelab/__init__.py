"""miragelab: is an emergent ability real, or an artefact of the metric?

The pipeline is ``sources -> samples -> metrics -> scores -> analysis -> report``;
see the README for the quick start and ``miragelab.tables`` for the data model.

In a notebook::

    import miragelab as ml

    scores = ml.score("samples.jsonl")            # samples table -> scores table
    published = ml.read_scores("shipped")         # the embedded Pythia / ObsScaling results
    result = ml.meta_analysis(published[published["task"] == "lambada_openai"])
    ml.verdicts(scores)                           # mirage, genuine, smooth, inconclusive
    ml.forecast_ladder(runs, harsh="acc", soft="bpb", holdout=1)  # a larger model's accuracy

The functions live in :mod:`miragelab.api` (see ``docs/api.md``) and are loaded
on first use, so ``import miragelab`` itself imports nothing heavy.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

from miragelab.errors import InputError

if TYPE_CHECKING:
    from miragelab.api import (
        SHIPPED,
        compare,
        fit,
        forecast_ladder,
        get_metric,
        list_metrics,
        meta_analysis,
        plan,
        read_samples,
        read_scores,
        register,
        score,
        theory_curves,
        verdicts,
    )
    from miragelab.metrics import Metric

__version__ = "0.1.0"

__all__ = [
    "InputError",
    "Metric",
    "SHIPPED",
    "__version__",
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

#: the public names loaded on first access (PEP 562): all of miragelab.api's, and Metric
_LAZY = {name: "api" for name in __all__ if name not in ("InputError", "__version__", "Metric")}
_LAZY["Metric"] = "metrics"


def __getattr__(name: str) -> Any:
    """Load a public name of the API on first access, then keep it in the module."""
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if where == "api":
        from miragelab import api as module
    else:
        from miragelab import metrics as module
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, the dunders and the submodules loaded so far."""
    loaded = {k for k, v in globals().items() if isinstance(v, ModuleType)}
    return sorted(set(__all__) | {k for k in globals() if k.startswith("__")} | loaded)
