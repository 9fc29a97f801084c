"""`mirage eval --model openai` against `mirage serve`'s app: agreement, retries, cache, limits.

The endpoint is the real server app over a real checkpoint, run in a thread;
an ASGI wrapper in front of it records each request (time, headers) and can
answer chosen requests with an error instead, like a busy or failing API.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_eval_hf import GEN_ROWS, MC_ROWS, build_llama, mirage, write_jsonl, write_ladder

from miragelab.runners.hf import HFModel
from miragelab.runners.openai_api import ApiError, CompletionsClient, continuation_logprobs
from miragelab.runners.serve import create_app, running
from miragelab.tables import SAMPLES, read_table

SECRET = "sk-test-0123456789-do-not-store"


class Gate:
    """ASGI wrapper: logs every completions request; answers chosen ones with an error."""

    def __init__(self, app: object) -> None:
        self.app = app
        self.log: list[tuple[float, dict[str, str]]] = []
        self.fail: dict[int, int] = {}  # request number (from 1) -> HTTP status

    async def __call__(self, scope: dict, receive: object, send: object) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/completions":
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            self.log.append((time.monotonic(), headers))
            status = self.fail.get(len(self.log))
            if status is not None:
                body = json.dumps({"error": {"message": f"status {status} from the gate"}})
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [(b"content-type", b"application/json"), (b"retry-after", b"0")],
                    }
                )
                await send({"type": "http.response.body", "body": body.encode()})
                return
        await self.app(scope, receive, send)

    @property
    def count(self) -> int:
        return len(self.log)


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    return build_llama(tmp_path_factory.mktemp("ck") / "llama")


@pytest.fixture(scope="module")
def endpoint(llama: Path) -> Iterator[tuple[str, Gate]]:
    gate = Gate(create_app(HFModel(llama), "llama"))
    with running(gate) as url:
        yield url, gate


@pytest.fixture()
def gate(endpoint: tuple[str, Gate]) -> Gate:
    endpoint[1].fail.clear()
    return endpoint[1]


def _eval(capsys, url: str, ladder: Path, task: Path, out: Path, *extra: str):  # noqa: ANN001, ANN202
    return mirage(
        capsys, "eval", "--model", "openai", "--base-url", url, "--ladder", ladder,
        "--task", task, "--out", out, *extra,
    )  # fmt: skip


@pytest.fixture()
def files(tmp_path: Path, llama: Path) -> dict[str, Path]:
    return {
        "gen": write_jsonl(tmp_path / "gen.jsonl", GEN_ROWS),
        "mc": write_jsonl(tmp_path / "mc.jsonl", MC_ROWS),
        "api": write_ladder(tmp_path / "api.csv", [("toy", "llama", None, 1e5)]),
        "hf": write_ladder(tmp_path / "hf.csv", [("toy", "llama", str(llama), 1e5)]),
    }


@pytest.mark.parametrize("kind", ["gen", "mc"])
def test_openai_path_gives_the_hf_numbers(
    kind: str, endpoint, files, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = endpoint
    extra = ("--max-tokens", "5", "--stop", ".")
    code, _, err = _eval(capsys, url, files["api"], files[kind], tmp_path / "api.parquet", *extra)
    assert code == 0, err
    code, _, err = mirage(
        capsys, "eval", "--model", "hf", "--ladder", files["hf"], "--task", files[kind],
        "--out", tmp_path / "hf.parquet", *extra,
    )  # fmt: skip
    assert code == 0, err
    api = read_table(tmp_path / "api.parquet", SAMPLES)
    hf = read_table(tmp_path / "hf.parquet", SAMPLES)
    assert api["example_id"].tolist() == hf["example_id"].tolist()
    assert api["prediction"].tolist() == hf["prediction"].tolist()
    for a, b in zip(api["target_token_logprobs"], hf["target_token_logprobs"], strict=True):
        assert len(a) == len(b)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
    if kind == "mc":
        for a, b in zip(api["choice_logprobs"], hf["choice_logprobs"], strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)


def test_target_tokens_are_found_from_text_offsets() -> None:
    # "The cat" + " sat": tokens "The", " c", "at s", "at" -> the straddling "at s"
    # holds the first target characters, so it and "at" are the target's tokens
    answer = {
        "choices": [
            {
                "text": "The cat sat",
                "logprobs": {
                    "tokens": ["The", " c", "at s", "at"],
                    "token_logprobs": [None, -1.0, -2.0, -3.0],
                    "text_offset": [0, 3, 5, 9],
                },
            }
        ]
    }
    assert continuation_logprobs(answer, "The cat", " sat") == [-2.0, -3.0]
    # a server that prefixes its echo (say "<s>") shifts every offset alike
    answer["choices"][0]["text"] = "<s>The cat sat"
    answer["choices"][0]["logprobs"]["text_offset"] = [3, 6, 8, 12]
    assert continuation_logprobs(answer, "The cat", " sat") == [-2.0, -3.0]
    # a boundary on a token edge takes exactly the tokens after it
    answer["choices"][0]["logprobs"]["text_offset"] = [3, 6, 7, 10]
    answer["choices"][0]["logprobs"]["tokens"] = ["The", " c", "at", " sat"]
    assert continuation_logprobs(answer, "The cat", " sat") == [-3.0]


def test_retries_after_503_and_429_then_answers(
    endpoint, gate: Gate, files, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = endpoint
    start = gate.count
    gate.fail = {start + 1: 503, start + 2: 429}
    out = tmp_path / "s.parquet"
    code, _, err = _eval(
        capsys,
        url,
        files["api"],
        files["gen"],
        out,
        "--concurrency",
        "1",
        "--retry-backoff",
        "0.01",
    )
    assert code == 0, err
    # 4 examples x (log-prob + greedy) = 8 answered requests, after 2 refused tries
    assert gate.count - start == 10
    assert read_table(out, SAMPLES)["target_token_logprobs"].map(len).min() >= 1


def test_gives_up_after_max_retries_and_refuses_4xx_at_once(
    endpoint, gate: Gate, files, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = endpoint
    start = gate.count
    gate.fail = {start + k: 503 for k in range(1, 10)}
    out = tmp_path / "s.parquet"
    args = ("--concurrency", "1", "--retry-backoff", "0.01", "--max-retries", "2")
    code, _, err = _eval(capsys, url, files["api"], files["gen"], out, *args)
    assert code == 1 and "failed 3 times" in err and "HTTP 503" in err
    assert gate.count - start == 3 and not out.exists()
    start = gate.count
    gate.fail = {start + 1: 400}
    code, _, err = _eval(capsys, url, files["api"], files["gen"], out, *args)
    assert code == 1 and "HTTP 400" in err and gate.count - start == 1
    # connection errors are retried too, then reported
    client = CompletionsClient("http://127.0.0.1:9/v1", max_retries=1, backoff=0.01)
    with pytest.raises(ApiError, match="failed 2 times; last: ConnectError"):
        client.post({"model": "m", "prompt": "x", "max_tokens": 1})


def test_a_rerun_sends_no_request_again(
    endpoint, gate: Gate, files, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = endpoint
    cache = tmp_path / "requests.sqlite"
    start = gate.count
    code, _, err = _eval(
        capsys, url, files["api"], files["gen"], tmp_path / "a.parquet", "--cache", cache
    )
    assert code == 0, err
    assert gate.count - start == 8
    start = gate.count
    code, _, err = _eval(
        capsys, url, files["api"], files["gen"], tmp_path / "b.parquet", "--cache", cache
    )
    assert code == 0, err
    assert gate.count - start == 0
    a = read_table(tmp_path / "a.parquet", SAMPLES)
    b = read_table(tmp_path / "b.parquet", SAMPLES)
    assert a.equals(b)


def test_an_interrupted_run_resumes_without_repeating_answered_requests(
    endpoint, gate: Gate, files, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = endpoint
    task = write_jsonl(
        tmp_path / "eight.jsonl",
        [
            dict(r, id=f"{r['id']}-{k}", prompt="Yes. " * k + r["prompt"])
            for k in range(2)
            for r in GEN_ROWS
        ],
    )  # 8 distinct examples, shards of 3: units of 6, 6 and 4 requests
    out = tmp_path / "s.parquet"
    args = ("--concurrency", "1", "--shard-size", "3", "--max-tokens", "3")
    start = gate.count
    gate.fail = {start + 8: 400}  # the 2nd request of the 2nd unit is refused: the run stops
    code, _, err = _eval(capsys, url, files["api"], task, out, *args)
    assert code == 1 and "rerun the same command to resume" in err
    assert gate.count - start == 8 and not out.exists()
    start = gate.count
    code, _, err = _eval(capsys, url, files["api"], task, out, *args)
    assert code == 0, err
    # 16 requests in all; 7 were answered before the stop (unit 1's 6, unit 2's first)
    assert gate.count - start == 16 - 7
    assert len(read_table(out, SAMPLES)) == 8
    assert not (tmp_path / ".s.parquet.parts").exists()  # work folder and cache cleaned up


def test_rate_limit_spaces_requests(
    endpoint, gate: Gate, files, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = endpoint
    start = gate.count
    rps = 5.0
    code, _, err = _eval(
        capsys, url, files["api"], files["gen"], tmp_path / "s.parquet",
        "--rps", str(rps), "--concurrency", "4",
    )  # fmt: skip
    assert code == 0, err
    times = sorted(t for t, _ in gate.log[start:])
    assert len(times) == 8
    gaps = np.diff(times)
    assert gaps.min() >= 0.8 / rps, gaps  # arrival jitter only
    assert times[-1] - times[0] >= 7 / rps * 0.95


def test_api_key_is_sent_but_never_written(
    endpoint, gate: Gate, files, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    url, _ = endpoint
    monkeypatch.setenv("MY_ENDPOINT_KEY", SECRET)
    start = gate.count
    dataset = tmp_path / "dataset"  # a folder output keeps its run record and cache
    code, stdout, err = _eval(
        capsys, url, files["api"], files["gen"], dataset, "--api-key-env", "MY_ENDPOINT_KEY"
    )
    assert code == 0, err
    assert {h.get("authorization") for _, h in gate.log[start:]} == {f"Bearer {SECRET}"}
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "requests.sqlite" for p in written)
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in stdout + err
    # an unset key variable named on the command line is bad input
    code, _, err = _eval(
        capsys, url, files["api"], files["gen"], tmp_path / "x.parquet", "--api-key-env", "NOPE_KEY"
    )
    assert code == 2 and "field 'api-key-env'" in err
