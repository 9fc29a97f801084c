"""Inspect eval logs -> samples and scores tables.

The logs are real: Inspect itself writes them, offline, once per test module,
running two small tasks against its mock model (``mockllm/model``) whose answers,
right and wrong, and token log-probs are set below. A generation task is scored by
``match(location="exact")`` (strip, case-fold, punctuation at the ends), which
``mirage score --ignore-case --ignore-punctuation`` reproduces on answers without
inner punctuation; a multiple-choice task by ``choice()``. Every score that
``mirage score`` gives is compared with the accuracy Inspect wrote into its own
log, read back with ``inspect_ai.log.read_eval_log``.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import mirage_code

inspect_ai = pytest.importorskip("inspect_ai")

from inspect_ai import Task, task  # noqa: E402
from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.dataset import Sample  # noqa: E402
from inspect_ai.log import read_eval_log, write_eval_log  # noqa: E402
from inspect_ai.model import (  # noqa: E402
    ChatCompletionChoice,
    ChatMessageAssistant,
    Logprob,
    Logprobs,
    ModelOutput,
    ModelUsage,
    TopLogprob,
)
from inspect_ai.scorer import Score, choice, match, mean, scorer, std, stderr  # noqa: E402
from inspect_ai.solver import generate, multiple_choice  # noqa: E402

from miragelab.errors import InputError  # noqa: E402
from miragelab.sources.inspect_logs import ingest_inspect, parse_answer  # noqa: E402

# id, input, target(s), the model's answer at each call (epochs take them in turn)
GENERATION = [
    ("capital", "Capital of France?", "Paris", [" paris", " paris"]),
    ("sum", "2+2?", "4", ["4.", "4"]),
    ("double", "3+3?", "6", ["5", "6"]),
    ("planet", "Largest planet?", ["Jupiter", "Zeus star"], ["Zeus star", "Saturn"]),
    ("sky", "Colour of the sky?", "blue", ["Blue sky", "blue"]),
]
# id, question, choices, correct letter, the model's letter, whether its tokenizer
# writes the letter after a space (" B") or alone ("B")
CHOICE = [
    (1, "Which is a mammal?", ["Shark", "Whale", "Trout", "Eel"], "B", "B", True),
    (2, "Which is a prime?", ["2", "4", "6", "8"], "A", "C", True),
    (3, "Which is a colour?", ["Dog", "Sand", "Tree", "Red"], "D", "D", False),
    (4, "Which is a metal?", ["Wood", "Glass", "Iron", "Salt"], "C", "C", True),
]
LETTERS = "ABCD"


def _tokens(text: str) -> list[tuple[str, float]]:
    """A generated answer as tokens (a word with its leading space) and their log-probs."""
    return [(t, -0.125 * (k + 1)) for k, t in enumerate(re.findall(r"\s*\S+", text))]


def _top(answer: str, spaced: bool, drop: str | None = None) -> dict[str, float]:
    """Top log-probs at the answer token: the chosen letter most likely."""
    space = " " if spaced else ""
    return {
        space + letter: -0.0625 if letter == answer else -2.0 - i
        for i, letter in enumerate(LETTERS)
        if letter != drop
    }


def _output(tokens: list[tuple[str, float]], top: dict[str, float] | None = None) -> ModelOutput:
    """A mock model output whose last token carries ``top`` as its top log-probs."""
    text = "".join(t for t, _ in tokens)
    content = [
        Logprob(
            token=t,
            logprob=lp,
            top_logprobs=[TopLogprob(token=k, logprob=v) for k, v in top.items()]
            if top is not None and i == len(tokens) - 1
            else None,
        )
        for i, (t, lp) in enumerate(tokens)
    ]
    message = ChatMessageAssistant(content=text, model="mockllm/model", source="generate")
    generated = ChatCompletionChoice(
        message=message, stop_reason="stop", logprobs=Logprobs(content=content)
    )
    return ModelOutput(
        model="mockllm/model",
        choices=[generated],
        completion=text,
        usage=ModelUsage(input_tokens=10, output_tokens=len(tokens), total_tokens=10 + len(tokens)),
    )


def _choice_output(answer: str, spaced: bool, drop: str | None = None) -> ModelOutput:
    if spaced:
        tokens = [("ANSWER", -0.25), (":", -0.125), (" " + answer, -0.0625)]
    else:
        tokens = [("ANSWER:", -0.25), (" ", -0.125), (answer, -0.0625)]
    return _output(tokens, _top(answer, spaced, drop))


def _mock(outputs: dict[str, list[ModelOutput]]):
    """The mock model's answers: the next output listed for the question in the prompt."""
    calls: dict[str, int] = {}

    def generate_output(messages, tools, tool_choice, config):  # noqa: ANN001, ARG001
        prompt = messages[-1].text
        (question,) = [q for q in outputs if q in prompt]
        k = calls.get(question, 0)
        calls[question] = k + 1
        return outputs[question][k % len(outputs[question])]

    return generate_output


@task
def trivia() -> Task:
    samples = [Sample(input=q, target=t, id=i) for i, q, t, _ in GENERATION]
    return Task(dataset=samples, solver=generate(), scorer=match(location="exact"))


@scorer(metrics=[mean(), std(), stderr()])
def completion_length():
    """A numeric score with Inspect's mean, std and stderr metrics."""

    async def score(state, target):  # noqa: ANN001, ANN202, ARG001
        return Score(value=float(len(state.output.completion)))

    return score


@task
def lengths() -> Task:
    samples = [Sample(input=q, target=t, id=i) for i, q, t, _ in GENERATION]
    return Task(dataset=samples, solver=generate(), scorer=completion_length())


@task
def quiz() -> Task:
    samples = [Sample(input=q, choices=c, target=t, id=i) for i, q, c, t, _, _ in CHOICE]
    return Task(dataset=samples, solver=multiple_choice(), scorer=choice())


def _run(made: Task, outputs: dict, folder: Path, **options) -> Path:
    (log,) = inspect_eval(
        made,
        model="mockllm/model",
        model_args={"custom_outputs": _mock(outputs)},
        log_dir=str(folder),
        display="none",
        **options,
    )
    assert log.status == "success", log.error
    return Path(log.location)


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> dict[str, Path]:
    """Real Inspect logs, each written once for the module."""
    root = tmp_path_factory.mktemp("inspect")
    generation = {q: [_output(_tokens(a)) for a in answers] for _, q, _, answers in GENERATION}
    chosen = {q: [_choice_output(a, s)] for _, q, _, _, a, s in CHOICE}
    # every answer right, but the second question's answer token lacks the letter D
    gap = {q: [_choice_output(t, s, "D" if i == 2 else None)] for i, q, _, t, _, s in CHOICE}
    with pytest.MonkeyPatch.context() as env:  # Inspect's own files go to the tmp folder
        env.setenv("XDG_DATA_HOME", str(root / "data"))
        env.setenv("XDG_CACHE_HOME", str(root / "cache"))
        env.setenv("INSPECT_DISPLAY", "none")
        return {
            "generation": _run(trivia(), generation, root / "generation"),
            "choice": _run(quiz(), chosen, root / "choice"),
            "epochs": _run(trivia(), generation, root / "epochs", epochs=2, log_format="json"),
            "gap": _run(quiz(), gap, root / "gap", log_format="json"),
            "lengths": _run(lengths(), generation, root / "lengths"),
        }


def _ingest(*args: object) -> int:
    return mirage_code("ingest", "inspect", *args)


def _rows(path: Path) -> dict[tuple[str, int], dict]:
    return {(r["example_id"], r["epoch"]): r for r in pq.read_table(path).to_pylist()}


def _score(samples: Path, out: Path, metrics: str) -> dict[tuple[str, str], pd.Series]:
    assert mirage_code("score", samples, "--out", out, "--metrics", metrics,
                       "--ignore-case", "--ignore-punctuation") == 0  # fmt: skip
    return {(r["task"], r["metric"]): r for _, r in pd.read_csv(out).iterrows()}


def _inspect_metric(log: Path, scorer: str, metric: str = "accuracy") -> float:
    """The value Inspect itself wrote for ``metric`` of ``scorer``."""
    (score,) = [s for s in read_eval_log(str(log)).results.scores if s.name == scorer]
    return score.metrics[metric].value


# --------------------------------------------------------------------------- samples


def test_generation_rows_and_exact_match_is_inspects_accuracy(logs, tmp_path):
    out = tmp_path / "s.parquet"
    assert _ingest(logs["generation"], "--out", out, "--params", "160m") == 0
    rows = _rows(out)
    assert set(rows) == {(i, 1) for i, *_ in GENERATION}
    for example, question, target, answers in GENERATION:
        row = rows[(example, 1)]
        golds = [target] if isinstance(target, str) else target
        assert (row["task"], row["model"], row["family"], row["params"]) == (
            "trivia",
            "mockllm/model",
            "model",  # the name without its provider: it gives no family
            160e6,
        )
        assert (row["prompt"], row["target"], row["prediction"]) == (question, golds[0], answers[0])
        assert row["references"] == (golds if len(golds) > 1 else None)
        assert row["prediction_token_logprobs"] == [lp for _, lp in _tokens(answers[0])]
        assert row["choices"] is None and row["choice_logprobs"] is None
    scores = _score(out, tmp_path / "scores.csv", "exact_match")
    inspect_accuracy = _inspect_metric(logs["generation"], "match")
    assert inspect_accuracy == pytest.approx(3 / 5)  # paris, 4 (4. stripped), Zeus star
    assert scores[("trivia", "exact_match")]["value"] == pytest.approx(inspect_accuracy, abs=1e-12)


def test_multiple_choice_rows_and_grades_are_inspects_accuracy(logs, tmp_path):
    out = tmp_path / "s.parquet"
    assert _ingest(logs["choice"], "--out", out, "--params", "1b") == 0
    rows = _rows(out)
    for example, question, choices, target, answer, spaced in CHOICE:
        row = rows[(str(example), 1)]
        assert (row["task"], row["prompt"], row["choices"]) == ("quiz", question, choices)
        assert (row["target"], row["correct_choice"]) == (target, LETTERS.index(target))
        assert row["prediction"] == answer
        top = _top(answer, spaced)
        assert row["choice_logprobs"] == [top[(" " if spaced else "") + x] for x in LETTERS]
        assert row["prediction_token_logprobs"] == [-0.25, -0.125, -0.0625]
        assert row["choice_is_correct"] is None and row["references"] is None
    scores = _score(out, tmp_path / "scores.csv", "exact_match,multiple_choice_grade")
    inspect_accuracy = _inspect_metric(logs["choice"], "choice")
    assert inspect_accuracy == pytest.approx(3 / 4)
    for metric in ("exact_match", "multiple_choice_grade"):
        assert scores[("quiz", metric)]["value"] == pytest.approx(inspect_accuracy, abs=1e-12)


def test_epochs_are_rows_of_their_own_and_the_score_averages_them(logs, tmp_path):
    out = tmp_path / "s.parquet"
    assert logs["epochs"].suffix == ".json"
    assert _ingest(logs["epochs"], "--out", out, "--params", "160m") == 0
    rows = _rows(out)
    assert set(rows) == {(i, e) for i, *_ in GENERATION for e in (1, 2)}
    for example, _, _, answers in GENERATION:  # each epoch got one of the two answers
        assert sorted(rows[(example, e)]["prediction"] for e in (1, 2)) == sorted(answers)
    scores = _score(out, tmp_path / "scores.csv", "exact_match")
    inspect_accuracy = _inspect_metric(logs["epochs"], "match")  # mean over epochs, per sample
    assert inspect_accuracy == pytest.approx((1 + 1 + 0.5 + 0.5 + 0.5) / 5)
    got = scores[("trivia", "exact_match")]
    assert got["value"] == pytest.approx(inspect_accuracy, abs=1e-12)
    assert got["n"] == len(GENERATION)  # examples, not rows


def test_a_missing_letter_drops_choice_logprobs_for_the_whole_task(logs, tmp_path, capsys):
    out = tmp_path / "s.parquet"
    assert _ingest(logs["gap"], "--out", out, "--params", "1b") == 0
    err = capsys.readouterr().err
    assert "task 'quiz': 1 of 4 samples have no log-prob for every answer letter" in err
    rows = _rows(out)
    assert all(r["choice_logprobs"] is None and r["correct_choice"] is None for r in rows.values())
    assert all(r["prediction_token_logprobs"] is not None for r in rows.values())
    scores = _score(out, tmp_path / "scores.csv", "auto")
    assert ("quiz", "multiple_choice_grade") not in scores
    assert scores[("quiz", "exact_match")]["value"] == _inspect_metric(logs["gap"], "choice") == 1


def test_without_the_choice_score_the_letter_is_read_from_the_completion(logs, tmp_path):
    data = json.loads(logs["gap"].read_text())
    for sample in data["samples"]:
        del sample["scores"]
    (path := tmp_path / "unscored.json").write_text(json.dumps(data))
    out = tmp_path / "s.parquet"
    assert _ingest(path, "--out", out, "--params", "1b") == 0
    got = {k: r["prediction"] for (k, _), r in _rows(out).items()}
    assert got == {str(i): t for i, _, _, t, _, _ in CHOICE}  # "ANSWER: B" -> "B"


def test_folders_are_searched_and_other_json_files_skipped(logs, tmp_path, capsys):
    folder = tmp_path / "logs"
    (folder / "nested").mkdir(parents=True)
    shutil.copy(logs["generation"], folder / logs["generation"].name)
    shutil.copy(logs["choice"], folder / "nested" / logs["choice"].name)
    (folder / "logs.json").write_text('{"listing": {}}')  # Inspect's listing: no log
    out = tmp_path / "s.parquet"
    assert _ingest(folder, "--out", out, "--params", "1b") == 0
    assert "wrote 9 samples from 2 log(s)" in capsys.readouterr().out
    assert {r["task"] for r in _rows(out).values()} == {"trivia", "quiz"}
    # named on its own, a JSON file that is no log is refused
    assert _ingest(folder / "logs.json", "--out", tmp_path / "t.parquet", "--params", "1b") == 2
    assert "not an Inspect log" in capsys.readouterr().err


# --------------------------------------------------------------------------- scores


def test_scores_out_holds_inspects_own_scores(logs, tmp_path):
    out, scores_out = tmp_path / "s.parquet", tmp_path / "scores.csv"
    args = ["--out", out, "--scores-out", scores_out, "--params", "1b"]
    assert _ingest(logs["generation"], logs["choice"], *args) == 0
    table = pd.read_csv(scores_out)
    assert set(table["metric"]) == {"accuracy[match]", "accuracy[choice]"}  # stderr: no row
    for log, name, n in ((logs["generation"], "match", 5), (logs["choice"], "choice", 4)):
        row = table[table["metric"] == f"accuracy[{name}]"].iloc[0]
        value, stderr = _inspect_metric(log, name), _inspect_metric(log, name, "stderr")
        assert (row["value"], row["stderr"], row["n"]) == (value, stderr, n)
        assert row["higher_is_better"] and row["ci_method"] == "normal (published stderr)"
        assert row["ci_low"] == pytest.approx(value - 1.959963984540054 * stderr)
        assert row["ci_high"] == pytest.approx(value + 1.959963984540054 * stderr)
    # all right (accuracy 1, Inspect's stderr 0): the Wilson interval of n = 4, no stderr
    alone = tmp_path / "gap.csv"
    assert _ingest(logs["gap"], "--out", tmp_path / "g.parquet", "--scores-out", alone,
                   "--params", "1b") == 0  # fmt: skip
    assert _inspect_metric(logs["gap"], "choice", "stderr") == 0
    (row,) = pd.read_csv(alone).to_dict("records")
    z, n = 1.959963984540054, 4
    wilson_low = (1 + z * z / (2 * n) - z * math.sqrt(z * z / (4 * n * n))) / (1 + z * z / n)
    assert row["value"] == 1 and math.isnan(row["stderr"])
    assert row["ci_low"] == pytest.approx(wilson_low) and row["ci_high"] == pytest.approx(1)


def test_logs_that_state_no_scored_count_count_the_scored_samples(logs, tmp_path):
    data = json.loads(logs["epochs"].read_text())
    for score in data["results"]["scores"]:
        del score["scored_samples"]  # as inspect_ai before 0.3.113 wrote them
    (path := tmp_path / "older.json").write_text(json.dumps(data))
    scores_out = tmp_path / "scores.csv"
    assert _ingest(path, "--out", tmp_path / "s.parquet", "--scores-out", scores_out,
                   "--params", "1b") == 0  # fmt: skip
    (row,) = pd.read_csv(scores_out).to_dict("records")
    assert (row["metric"], row["n"]) == ("accuracy[match]", len(GENERATION))  # not 10 rows


def test_a_sample_in_two_logs_of_one_task_and_model_is_refused(logs, tmp_path, capsys):
    out, scores_out = tmp_path / "s.parquet", tmp_path / "scores.csv"
    # the gap run asks the quiz's samples again, of the same model
    assert _ingest(logs["choice"], logs["gap"], "--out", out, "--scores-out", scores_out,
                   "--params", "1b") == 2  # fmt: skip
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {logs['gap']}, field 'samples[0].id': sample '1' (epoch 1)")
    assert f"is also samples[0] of {logs['choice']}" in line
    assert not out.exists() and not scores_out.exists()
    # told apart by model name, both are read
    assert _ingest(logs["choice"], "--out", out, "--params", "1b", "--model", "a-1b") == 0


def test_sizes_sidecar(logs, tmp_path, capsys):
    sizes = tmp_path / "sizes.csv"
    sizes.write_text("model,params\nmockllm/model,410m\n")
    out = tmp_path / "s.parquet"
    assert _ingest(logs["generation"], "--out", out, "--sizes", sizes) == 0
    assert {r["params"] for r in _rows(out).values()} == {410e6}
    sizes.write_text("model,params\nother/model-x,1b\n")
    out = tmp_path / "t.parquet"
    assert _ingest(logs["generation"], "--out", out, "--sizes", sizes) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {logs['generation']}, field 'params': ")
    assert "mockllm/model" in line and "--sizes" in line and not out.exists()


# --------------------------------------------------------------------------- bad logs


def _json(log: Path) -> dict:
    return json.loads(log.read_text())


def _truncated_eval(logs, folder):
    data = logs["generation"].read_bytes()
    (path := folder / "cut.eval").write_bytes(data[: len(data) // 2])
    return path


def _truncated_json(logs, folder):
    text = logs["epochs"].read_text()
    (path := folder / "cut.json").write_text(text[: len(text) // 2])
    return path


def _header_only_json(logs, folder):
    path = folder / "header.json"
    write_eval_log(read_eval_log(str(logs["epochs"]), header_only=True), str(path))
    return path


def _header_only_eval(logs, folder):
    path = folder / "header.eval"
    write_eval_log(read_eval_log(str(logs["generation"]), header_only=True), str(path))
    return path


def _samples_removed(logs, folder):
    path = folder / "no-samples.eval"
    with zipfile.ZipFile(logs["generation"]) as old, zipfile.ZipFile(path, "w") as new:
        for name in old.namelist():
            if not name.startswith("samples/"):
                new.writestr(name, old.read(name))
    return path


def _future_version(logs, folder):
    data = _json(logs["epochs"])
    data["version"] = 99
    (path := folder / "future.json").write_text(json.dumps(data))
    return path


def _not_a_log(logs, folder):
    (path := folder / "results.json").write_text('{"results": {"acc": 0.5}}')
    return path


def _text_as_eval(logs, folder):
    (path := folder / "notes.eval").write_text("not a zip archive")
    return path


def _sample_error(logs, folder):
    data = _json(logs["epochs"])
    data["samples"][1]["error"] = {"message": "RuntimeError: boom", "traceback": "",
                                   "traceback_ansi": ""}  # fmt: skip
    (path := folder / "failed.json").write_text(json.dumps(data))
    return path


def _no_output(logs, folder):
    data = _json(logs["epochs"])
    data["samples"][2]["output"] = {"model": "mockllm/model", "choices": [], "completion": ""}
    (path := folder / "silent.json").write_text(json.dumps(data))
    return path


def _chained_name(logs, folder):
    path = folder / "run::1.json"  # fsspec would read a chain of file systems
    shutil.copy(logs["epochs"], path)
    return path


def _empty_folder(logs, folder):
    (path := folder / "empty").mkdir()
    return path


@pytest.mark.parametrize(
    ("make", "field", "says"),
    [
        (_truncated_eval, None, "not a readable .eval archive (cut short"),
        (_truncated_json, None, "the log is cut short"),
        (_header_only_json, "samples", "the log holds no samples (its results count 10)"),
        (_header_only_eval, "samples", "header-only"),
        (_samples_removed, "samples", "the log holds no samples"),
        (_future_version, "version", "log format version 99 is newer"),
        (_not_a_log, "eval", "not an Inspect log"),
        (_text_as_eval, None, "not a readable .eval archive"),
        (_sample_error, "samples[1].error", "failed: RuntimeError: boom"),
        (_no_output, "samples[2].output", "has no model output"),
        (_chained_name, None, "rename the log"),
        (_empty_folder, None, "no Inspect logs"),
    ],
)
def test_bad_logs_are_refused_in_one_line(logs, tmp_path, capsys, make, field, says):
    path = make(logs, tmp_path)
    out = tmp_path / "out" / "s.parquet"
    assert _ingest(path, "--out", out, "--params", "1b") == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {path}")
    assert (f"field '{field}'" in line) == (field is not None), line
    assert says in line, line
    assert not out.exists()


def test_json_cut_short_names_the_line_where_it_ends(logs, tmp_path, capsys):
    path = _truncated_json(logs, tmp_path)
    assert _ingest(path, "--out", tmp_path / "s.parquet", "--params", "1b") == 2
    line = capsys.readouterr().err
    assert f"error: {path}, line {path.read_text().count(chr(10)) + 1}: " in line


def test_a_log_that_did_not_finish_is_read_with_a_note(logs, tmp_path, capsys):
    data = _json(logs["epochs"])
    data["status"] = "cancelled"
    (path := tmp_path / "cancelled.json").write_text(json.dumps(data))
    assert _ingest(path, "--out", tmp_path / "s.parquet", "--params", "1b") == 0
    assert "status is 'cancelled'; its 10 logged sample(s) are read" in capsys.readouterr().err


def test_without_inspect_ai_the_error_says_what_to_install(logs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "inspect_ai.log", None)
    with pytest.raises(InputError, match=re.escape('pip install "miragelab[inspect]"')):
        ingest_inspect([logs["generation"]], tmp_path / "s.parquet", params="1b")
    assert not (tmp_path / "s.parquet").exists()


def test_parse_answer_reads_answers_as_inspect_does():
    assert parse_answer("I think so.\nANSWER: B", 4) == [1]
    assert parse_answer("ANSWER: **c**", 4) == [2]
    assert parse_answer("ANSWER: (D).", 4) == [3]
    assert parse_answer("ANSWER: E", 4) == []  # no such choice
    assert parse_answer("ANSWER: A, C", 4) == []  # one letter asked for
    assert parse_answer("ANSWER: A, C", 4, multiple=True) == [0, 2]
    assert parse_answer("ANSWER: AC", 4, multiple=True) == [0, 2]
    assert parse_answer("no answer", 4) == []


def test_the_scorers_stderr_is_its_means_not_its_stds(logs, tmp_path):
    """Inspect's stderr of a scorer is the standard error of its mean: it gives the mean
    its interval, and std none."""
    scores_out = tmp_path / "scores.csv"
    args = ["--out", tmp_path / "s.parquet", "--scores-out", scores_out, "--params", "1b"]
    assert _ingest(logs["lengths"], *args) == 0
    table = pd.read_csv(scores_out).set_index("metric")
    value = _inspect_metric(logs["lengths"], "completion_length", "mean")
    se = _inspect_metric(logs["lengths"], "completion_length", "stderr")
    lengths = [len(answers[0]) for *_, answers in GENERATION]
    assert value == pytest.approx(sum(lengths) / len(lengths)) and se > 0
    row = table.loc["mean[completion_length]"]
    assert row["value"] == pytest.approx(value) and row["stderr"] == pytest.approx(se)
    assert row["ci_low"] == pytest.approx(value - 1.959963984540054 * se)
    spread = table.loc["std[completion_length]"]
    assert pd.isna(spread["stderr"]) and pd.isna(spread["ci_low"]) and pd.isna(spread["ci_method"])
