"""Samples from an OpenAI-compatible ``/v1/completions`` endpoint.

The requests per example, the rate limit, the retries and the request cache
are described in ``docs/eval.md`` ("How the numbers are computed", "Resuming,
retries, the request cache"); every request goes through :class:`CompletionsClient`.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import random
import sqlite3
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from miragelab.errors import InputError
from miragelab.runners.ray_slots import shared_slots
from miragelab.runners.tasks import (
    EvalTask,
    Example,
    continuations,
    gather_scores,
    load_task_ref,
    samples_frame,
)
from miragelab.runners.units import Unit

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
RETRY_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))
#: the longest wait between two tries, in seconds
MAX_BACKOFF = 60.0


class ApiError(RuntimeError):
    """The endpoint refused a request, or kept failing after every retry."""


def completions_url(base_url: str) -> str:
    """``http://host/v1`` -> ``http://host/v1/completions`` (a full URL is kept)."""
    url = base_url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise InputError(f"expected an http(s) URL, got {base_url!r}", field="base-url")
    return url if url.endswith("/completions") else f"{url}/completions"


def request_key(url: str, body: dict[str, Any]) -> str:
    """The cache key of a request: base URL, model and the canonical JSON body."""
    canonical = json.dumps(
        {"url": url, "model": body.get("model"), "body": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class RequestCache:
    """Answered requests in a sqlite file (safe across threads and processes)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses ("
                "key TEXT PRIMARY KEY, body TEXT NOT NULL, response TEXT NOT NULL, "
                "created REAL NOT NULL)"
            )
            self._db.commit()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT response FROM responses WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, body: dict[str, Any], response: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                (key, json.dumps(body, sort_keys=True), json.dumps(response), time.time()),
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class RateLimiter:
    """At most ``rps`` request starts per second, spaced evenly (thread-safe)."""

    def __init__(self, rps: float | None) -> None:
        self.interval = 0.0 if not rps else 1.0 / rps
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


class SharedRateLimiter:
    """At most ``rps`` request starts per second across all the processes of a Ray job.

    Under ``--executor ray`` each unit runs in a worker process of its own, so a
    per-process limit would let ``k`` workers send ``k`` times the rate. The
    budget lives in one small named actor that hands out evenly spaced send
    times; a worker sleeps until its slot. Should the actor be lost, the next
    request makes a new one and no slot comes before the last one this process
    was given.
    """

    def __init__(self, ray: Any, key: str, rps: float) -> None:
        self.ray, self.key, self.interval = ray, key, 1.0 / rps
        self._actor = shared_slots(ray)
        self._last = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        floor = self._last + self.interval if self._last else 0.0
        try:
            slot = self.ray.get(self._actor.take.remote(self.key, self.interval, floor))
        except self.ray.exceptions.RayActorError:
            self._actor = shared_slots(self.ray)
            slot = self.ray.get(self._actor.take.remote(self.key, self.interval, floor))
        with self._lock:
            self._last = max(self._last, slot)
        delay = slot - time.time()
        if delay > 0:
            time.sleep(delay)


def _ray_job() -> tuple[Any, str] | None:
    """Ray and this process's job id when the process is part of a Ray job, else None."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    return ray, ray.get_runtime_context().get_job_id()


_LIMITERS: dict[tuple[str, float | None, str | None], RateLimiter | SharedRateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def _limiter(url: str, rps: float | None) -> RateLimiter | SharedRateLimiter:
    """One limiter per endpoint and process, so consecutive units share the budget; in a
    Ray job (the workers of ``--executor ray``), one per endpoint for the whole job."""
    job = _ray_job() if rps else None
    key = (url, rps, None if job is None else job[1])
    with _LIMITERS_LOCK:
        if key not in _LIMITERS:
            if job is None:
                _LIMITERS[key] = RateLimiter(rps)
            else:
                ray = job[0]
                _LIMITERS[key] = SharedRateLimiter(ray, f"{url}|{rps:g}", rps)
        return _LIMITERS[key]


class CompletionsClient:
    """POSTs completion requests with a rate limit, retries and a response cache."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        rps: float | None = None,
        concurrency: int = 4,
        max_retries: int = 6,
        backoff: float = 1.0,
        timeout: float = 120.0,
        cache: RequestCache | None = None,
    ) -> None:
        import httpx

        self.url = completions_url(base_url)
        self.limiter = _limiter(self.url, rps)
        self.concurrency = max(1, concurrency)
        self.max_retries = max_retries
        self.backoff = backoff
        self.cache = cache
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(headers=headers, timeout=timeout)
        self.sent = 0  # requests that reached the network (tries included)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CompletionsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """The endpoint's answer to ``body``: from the cache, or sent (with retries)."""
        key = request_key(self.url, body)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        answer = self._send(body)
        if self.cache is not None:
            self.cache.put(key, body, answer)
        return answer

    def post_many(self, bodies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Answers in the order of ``bodies``, at most ``concurrency`` in flight."""
        if self.concurrency == 1 or len(bodies) <= 1:
            return [self.post(b) for b in bodies]
        with concurrent.futures.ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(self.post, bodies))

    def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        last = ""
        for attempt in range(self.max_retries + 1):
            self.limiter.wait()
            wait = None
            try:
                self.sent += 1
                response = self._http.post(self.url, json=body)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    try:
                        answer = response.json()
                    except ValueError:
                        last = "an answer that is not JSON"
                    else:
                        if isinstance(answer, dict) and isinstance(answer.get("choices"), list):
                            return answer
                        last = "an answer without 'choices'"
                    raise ApiError(f"{self.url} sent {last}")
                last = f"HTTP {response.status_code}: {_error_text(response)}"
                if response.status_code not in RETRY_STATUS:
                    hint = ""
                    if response.status_code in (401, 403):
                        hint = " (check the API key's environment variable)"
                    raise ApiError(f"{self.url} refused the request: {last}{hint}")
                wait = _retry_after(response)
            if attempt == self.max_retries:
                break
            delay = min(MAX_BACKOFF, self.backoff * 2**attempt) * (0.5 + random.random() / 2)
            time.sleep(max(delay, wait or 0.0))
        raise ApiError(f"{self.url} failed {self.max_retries + 1} times; last: {last}")


def _error_text(response: Any) -> str:
    try:
        data = response.json()
        message = data.get("error", data) if isinstance(data, dict) else data
        if isinstance(message, dict):
            message = message.get("message", message)
        text = str(message)
    except ValueError:
        text = response.text
    text = " ".join(text.split())
    return text[:200] or response.reason_phrase


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return None if value is None else min(MAX_BACKOFF, max(0.0, float(value)))
    except ValueError:
        return None


# --------------------------------------------------------------------------- requests


def split_pair(prompt: str, continuation: str) -> tuple[str, str]:
    """The prompt's trailing whitespace moved to the continuation (lm-eval-harness)."""
    n_spaces = len(prompt) - len(prompt.rstrip())
    if n_spaces:
        return prompt[:-n_spaces], prompt[-n_spaces:] + continuation
    return prompt, continuation


def logprob_body(model: str, prompt: str, continuation: str) -> dict[str, Any]:
    return {
        "model": model,
        "prompt": prompt + continuation,
        "max_tokens": 0,
        "echo": True,
        "logprobs": 1,
        "temperature": 0,
    }


def generate_body(model: str, prompt: str, max_tokens: int, stop: Sequence[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    if stop:
        body["stop"] = list(stop)
    return body


def continuation_logprobs(answer: dict[str, Any], context: str, continuation: str) -> list[float]:
    """Log-probs of the continuation's tokens in an echoed ``max_tokens=0`` answer."""
    try:
        choice = answer["choices"][0]
        logprobs = choice["logprobs"]
        offsets = [int(o) for o in logprobs["text_offset"]]
        values = list(logprobs["token_logprobs"])
    except (KeyError, IndexError, TypeError, ValueError):
        raise ApiError(
            "the answer has no echoed log-probs (does the endpoint support "
            "echo=True with logprobs and max_tokens=0?)"
        ) from None
    text = choice.get("text")
    if isinstance(text, str) and text.endswith(continuation):
        boundary = len(text) - len(continuation)
        end = len(text)
    else:  # offsets count from the start of what was sent
        boundary, end = len(context), len(context) + len(continuation)
    first = next((i for i, o in enumerate(offsets) if o >= boundary), len(offsets))
    if first > 0 and (first == len(offsets) or offsets[first] > boundary):
        first -= 1  # a token straddles the boundary: it carries the first target characters
    picked = [v for v, o in zip(values[first:], offsets[first:], strict=True) if o < end]
    if not picked or any(v is None for v in picked):
        raise ApiError("the answer gives no log-prob for a target token")
    return [float(v) for v in picked]


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    hits = [text.find(s) for s in stop if s in text]
    return text[: min(hits)] if hits else text


def score_examples(
    client: CompletionsClient, model: str, task: EvalTask, examples: Sequence[Example]
) -> tuple[list[str | None], list[list[float]], list[list[float]] | None]:
    """Predictions, target-token log-probs and (multiple choice) choice log-probs."""
    pairs: list[tuple[int, str, str]] = []
    for k, ex in enumerate(examples):
        for cont in continuations(ex):
            context, tail = split_pair(ex.prompt, cont)
            pairs.append((k, context, tail))
    bodies = [logprob_body(model, ex.prompt, c) for ex in examples for c in continuations(ex)]
    if task.kind == "generate":
        bodies += [generate_body(model, ex.prompt, task.max_tokens, task.stop) for ex in examples]
    answers = client.post_many(bodies)
    by_pair = [
        (k, continuation_logprobs(answer, context, tail))
        for (k, context, tail), answer in zip(pairs, answers, strict=False)
    ]
    predictions, target_lps, choice_lps = gather_scores(examples, by_pair, task.kind)
    if predictions is not None:
        return predictions, target_lps, choice_lps
    texts = []
    for answer in answers[len(pairs) :]:
        try:
            text = answer["choices"][0]["text"]
        except (KeyError, IndexError, TypeError):
            raise ApiError("a generation answer has no choices[0].text") from None
        texts.append(cut_at_stop(str(text), task.stop))
    return texts, target_lps, None


def evaluate_unit(unit: Unit) -> pd.DataFrame:
    """The samples rows of one served model on one shard of a task (a unit's job)."""
    spec = unit.spec
    backend = spec["backend"]
    task = load_task_ref(spec["task"])
    examples = task.examples[spec["lo"] : spec["hi"]]
    cache = RequestCache(backend["cache"]) if backend.get("cache") else None
    api_key = os.environ.get(backend.get("api_key_env") or DEFAULT_KEY_ENV) or None
    try:
        with CompletionsClient(
            backend["base_url"],
            api_key=api_key,
            rps=backend.get("rps"),
            concurrency=backend.get("concurrency", 4),
            max_retries=backend.get("max_retries", 6),
            backoff=backend.get("backoff", 1.0),
            timeout=backend.get("timeout", 120.0),
            cache=cache,
        ) as client:
            predictions, target_lps, choice_lps = score_examples(
                client, spec["entry"]["model"], task, examples
            )
    finally:
        if cache is not None:
            cache.close()
    return samples_frame(task, examples, spec["entry"], predictions, target_lps, choice_lps)
