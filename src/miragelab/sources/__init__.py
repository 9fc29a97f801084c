"""Sources of scores and samples.

Published results load straight into the scores table:

* :func:`load_scores` - any mix of files and folders, dispatched by content;
* :func:`load_lm_eval_results` - lm-evaluation-harness results JSON (0.3 and 0.4);
* :func:`load_wide_csv` - one row per model, one column per score (ObsScaling);
* :func:`load_bigbench_scores` - BIG-bench ``scores_*.json``;
* :func:`load_shipped` - the real data shipped with the package (Pythia, ObsScaling).

Model sizes: :mod:`miragelab.sources.sizes`.
"""

from miragelab.sources.bigbench import load_bigbench_scores, load_bigbench_task_list
from miragelab.sources.lm_eval_results import load_lm_eval_results
from miragelab.sources.published import load_scores, load_shipped, shipped_data_dir
from miragelab.sources.sizes import (
    KNOWN_FAMILIES,
    parse_size,
    read_size_sidecar,
    size_from_name,
)
from miragelab.sources.wide_csv import load_wide_csv

__all__ = [
    "KNOWN_FAMILIES",
    "load_bigbench_scores",
    "load_bigbench_task_list",
    "load_lm_eval_results",
    "load_scores",
    "load_shipped",
    "load_wide_csv",
    "parse_size",
    "read_size_sidecar",
    "shipped_data_dir",
    "size_from_name",
]
