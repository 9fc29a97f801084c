"""``mirage ingest`` on malformed lm-eval and HELM outputs: one error line, exit 2, no output.

The cases are the folders of ``tests/fixtures/bad/lm_eval/`` and
``tests/fixtures/bad/helm/`` (see their READMEs). The file, line and field
expected below come from how each fixture was written, not from running the code.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BAD = Path(__file__).parent / "fixtures" / "bad"
SAMPLES = "samples_{task}_2024-06-01T12-00-00.000000.jsonl"
RESULTS = "results_2024-06-01T12-00-00.000000.json"

# folder: (file it names, line or None, field or None)
LM_EVAL = {
    "truncated_json": (SAMPLES.format(task="mcq"), 2, None),
    "missing_resps": (SAMPLES.format(task="mcq"), 2, "resps"),
    "logprob_not_number": (SAMPLES.format(task="mcq"), 2, "filtered_resps[1][0]"),
    "logprob_positive": (SAMPLES.format(task="mcq"), 3, "filtered_resps[0][0]"),
    "doc_id_wrong_type": (SAMPLES.format(task="arith"), 2, "doc_id"),
    "prediction_not_text": (SAMPLES.format(task="arith"), 1, "filtered_resps[0]"),
    "not_utf8": (SAMPLES.format(task="arith"), 2, None),
    "empty": (SAMPLES.format(task="arith"), None, None),
    "missing_params": (RESULTS, None, "params"),
    "doc_id_repeated": (SAMPLES.format(task="arith"), 3, "doc_id"),
    "target_out_of_range": (SAMPLES.format(task="mcq"), 1, "target"),
    "kind_changes": (SAMPLES.format(task="arith"), 2, "arguments"),
    "choice_function": (RESULTS, None, "configs.boolq.doc_to_choice"),
    "choice_index_out_of_range": (SAMPLES.format(task="boolq"), 2, "target"),
}
STATE = "scenario_state.json"
HELM = {
    "completion_no_logprob": (STATE, 35, "request_states[1].result.completions[0].logprob"),
    "token_logprob_string": (
        STATE,
        16,
        "request_states[0].result.completions[0].tokens[0].logprob",
    ),
    "token_positive_logprob": (
        STATE,
        35,
        "request_states[1].result.completions[0].tokens[1].logprob",
    ),
    "request_failed": (STATE, 52, "request_states[2].result.success"),
    "missing_request_states": (STATE, 1, "request_states"),
    "truncated": (STATE, 20, None),
    "not_utf8": (STATE, 6, None),
    "empty_state": (STATE, None, None),
    "stats_mean_not_number": ("stats.json", 2, "[0].mean"),
}


def _run(source: str, folder: Path, out_dir: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "miragelab", "ingest", source, str(folder)]
    cmd += ["--out", str(out_dir / "samples.parquet")]
    if source == "helm":
        cmd += ["--scores-out", str(out_dir / "scores.csv")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _check(done: subprocess.CompletedProcess, path: Path, line, field, out_dir: Path) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    (message,) = lines
    where = str(path)
    if line is not None:
        where += f", line {line}"
    if field is not None:
        where += f", field '{field}'"
    assert message.startswith(f"error: {where}: "), message
    if line is None:
        assert ", line " not in message.split(": ", 2)[1]
    assert "Traceback" not in done.stderr
    assert not out_dir.exists() or not any(out_dir.iterdir())


@pytest.mark.parametrize("case", sorted(LM_EVAL))
def test_bad_lm_eval_samples(case, tmp_path):
    name, line, field = LM_EVAL[case]
    folder = BAD / "lm_eval" / case
    out_dir = tmp_path / "out"
    _check(_run("lm-eval", folder, out_dir), folder.resolve() / name, line, field, out_dir)


@pytest.mark.parametrize("case", sorted(HELM))
def test_bad_helm_runs(case, tmp_path):
    name, line, field = HELM[case]
    folder = BAD / "helm" / case
    out_dir = tmp_path / "out"
    _check(_run("helm", folder, out_dir), folder / name, line, field, out_dir)


def test_every_fixture_folder_is_tested():
    for source, cases in (("lm_eval", LM_EVAL), ("helm", HELM)):
        folders = {p.name for p in (BAD / source).iterdir() if p.is_dir()}
        assert folders == set(cases)
