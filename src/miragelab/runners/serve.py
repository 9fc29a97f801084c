"""``mirage serve``: an OpenAI-compatible ``/v1/completions`` server over a local checkpoint.

What a request may hold and how it is answered is described in ``docs/eval.md``
("``mirage serve``"). The server binds ``127.0.0.1`` by default: it has no
authentication, so only this machine can reach it unless ``--host`` says otherwise.
"""

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from miragelab.runners.hf import Generated, HFModel

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
#: the most alternatives ``logprobs`` may ask for per position
MAX_LOGPROBS = 20


class RequestError(ValueError):
    """A request the server cannot answer (HTTP 400, or ``status``)."""

    def __init__(self, message: str, status: int = 400, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.param = param


def _prompts(prompt: Any, lm: HFModel) -> list[tuple[list[int], str | None]]:
    """Each prompt as token ids, with its text when it came as a string."""
    if isinstance(prompt, str):
        items: list[Any] = [prompt]
    elif isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
        items = [prompt]
    elif isinstance(prompt, list) and prompt:
        items = prompt
    else:
        raise RequestError("prompt must be a non-empty string, token list, or list of them")
    out = []
    for item in items:
        if isinstance(item, str):
            if not item:
                raise RequestError("empty prompt", param="prompt")
            try:
                ids = lm.encode(item)
            except Exception as exc:  # noqa: BLE001 - tokenizers raise bare Exception
                raise RequestError(f"cannot tokenize the prompt ({exc})", param="prompt") from None
            if not ids:
                raise RequestError("the prompt has no tokens", param="prompt")
            out.append((ids, item))
        elif isinstance(item, list) and item and all(isinstance(t, int) for t in item):
            if any(t < 0 or t >= lm.vocab_size for t in item):
                raise RequestError(f"token ids must be in [0, {lm.vocab_size})", param="prompt")
            out.append((list(item), None))
        else:
            raise RequestError("each prompt must be a non-empty string or token list")
    return out


def _offsets(lm: HFModel, ids: list[int]) -> tuple[str, list[int]]:
    """The decoded text of ``ids`` and each token's start in it (OpenAI's ``text_offset``)."""
    tok = lm.tokenizer
    whole = lm.decode(ids)
    singles = tok.batch_decode([[i] for i in ids], skip_special_tokens=True)
    if "".join(singles) == whole:
        offsets, at = [], 0
        for piece in singles:
            offsets.append(at)
            at += len(piece)
        return whole, offsets
    # tokenizers whose pieces change when joined (SentencePiece spaces, split UTF-8)
    prefixes = tok.batch_decode([ids[:k] for k in range(len(ids))], skip_special_tokens=True)
    offsets, high = [], 0
    for prefix in prefixes:
        common = 0
        for a, b in zip(prefix, whole, strict=False):
            if a != b:
                break
            common += 1
        high = max(high, common)
        offsets.append(high)
    return whole, offsets


def _token_key(lm: HFModel, token: int) -> str:
    """A token's text for ``top_logprobs`` (its id when the tokenizer has no text for it)."""
    return lm.tokenizer.decode([token]) or f"<|id:{token}|>"


def _logprobs_block(
    lm: HFModel, ids: list[int], scored: tuple, first: int, echo: bool
) -> dict[str, Any]:
    """OpenAI's ``logprobs`` object for tokens ``ids[first:]`` (``first`` 0 echoes a null)."""
    values, top_ids, top_vals = scored
    shown = ids[first:]
    whole, offsets = _offsets(lm, ids)
    base = 0 if echo else (offsets[first] if first < len(offsets) else len(whole))
    starts = offsets[first:]
    ends = offsets[first + 1 :] + [len(whole)]
    tokens = [whole[a:b] for a, b in zip(starts, ends, strict=True)]
    token_logprobs: list[float | None] = []
    top_logprobs: list[dict[str, float] | None] = []
    lead = len(shown) - len(values)  # 1 when the first echoed token has no log-prob
    for k in range(len(shown)):
        if k < lead:
            token_logprobs.append(None)
            top_logprobs.append(None)
            continue
        j = k - lead
        token_logprobs.append(float(values[j]))
        alternatives: dict[str, float] = {}
        for t, v in zip(top_ids[j].tolist(), top_vals[j].tolist(), strict=True):
            alternatives.setdefault(_token_key(lm, t), float(v))
        alternatives.setdefault(_token_key(lm, shown[k]), float(values[j]))
        top_logprobs.append(alternatives)
    return {
        "tokens": tokens,
        "token_logprobs": token_logprobs,
        "top_logprobs": top_logprobs,
        "text_offset": [o - base for o in starts],
    }


def complete(lm: HFModel, model_name: str, request: dict[str, Any]) -> dict[str, Any]:
    """Answer one completions request (already schema-checked) with OpenAI's layout."""
    if request.get("stream"):
        raise RequestError("streaming is not supported", param="stream")
    if request.get("n", 1) != 1:
        raise RequestError("only n = 1 is supported", param="n")
    asked = request.get("model")
    if asked and asked != model_name:
        raise RequestError(
            f"the model {asked!r} does not exist; this server has {model_name!r}", 404
        )
    prompts = _prompts(request["prompt"], lm)
    max_tokens = request.get("max_tokens")
    max_tokens = 16 if max_tokens is None else int(max_tokens)
    stop = request.get("stop") or []
    stop = [stop] if isinstance(stop, str) else [s for s in stop if s]
    echo = bool(request.get("echo"))
    want = request.get("logprobs")
    temperature = float(request.get("temperature") or 0.0)
    if max_tokens > 0:
        generated = lm.generate(
            [ids for ids, _ in prompts],
            max_tokens,
            stop,
            temperature=temperature,
            top_p=float(request.get("top_p") or 1.0),
            seed=request.get("seed"),
        )
    else:
        generated = [Generated([], "", "length") for _ in prompts]
    scored: list[Any] = [None] * len(prompts)
    if want is not None:
        seqs = [ids + g.ids for (ids, _), g in zip(prompts, generated, strict=True)]
        starts = [1 if echo else len(ids) for ids, _ in prompts]
        try:
            scored = lm.score(seqs, starts, top=max(1, int(want)))
        except ValueError as exc:
            raise RequestError(str(exc), param="prompt") from None
    choices = []
    for index, ((ids, text), gen) in enumerate(zip(prompts, generated, strict=True)):
        shown_prompt = lm.decode(ids) if text is None or echo else text
        body = (shown_prompt if echo else "") + gen.text
        logprobs = None
        if want is not None:
            first = 0 if echo else len(ids)
            logprobs = _logprobs_block(lm, ids + gen.ids, scored[index], first, echo)
        choices.append(
            {
                "index": index,
                "text": body,
                "logprobs": logprobs,
                "finish_reason": gen.finish_reason,
            }
        )
    n_prompt = sum(len(ids) for ids, _ in prompts)
    n_new = sum(len(g.ids) for g in generated)
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": choices,
        "usage": {
            "prompt_tokens": n_prompt,
            "completion_tokens": n_new,
            "total_tokens": n_prompt + n_new,
        },
    }


def create_app(lm: HFModel, model_name: str) -> Any:
    """The FastAPI app: ``POST /v1/completions``, ``GET /v1/models``."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field

    class CompletionRequest(BaseModel):
        model_config = ConfigDict(extra="ignore")

        model: str | None = None
        prompt: str | list[int] | list[list[int]] | list[str]
        max_tokens: int | None = Field(16, ge=0)
        temperature: float | None = Field(None, ge=0)
        top_p: float | None = Field(None, gt=0, le=1)
        logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS)
        echo: bool = False
        stop: str | list[str] | None = None
        seed: int | None = None
        n: int = 1
        stream: bool = False

    # (no ``from __future__ import annotations`` in this module: FastAPI reads the
    # annotations of these nested functions at run time)
    app = FastAPI(title="miragelab", docs_url=None, redoc_url=None, openapi_url=None)
    lock = threading.Lock()  # one model: requests take turns

    def error(status: int, message: str, param: str | None = None) -> JSONResponse:
        kind = "invalid_request_error" if status < 500 else "server_error"
        payload = {"error": {"message": message, "type": kind, "param": param, "code": None}}
        return JSONResponse(payload, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:2])
        return error(400, f"{where}: {first.get('msg', 'invalid request')}", where or None)

    @app.exception_handler(RequestError)
    async def _refused(request: Request, exc: RequestError) -> JSONResponse:
        return error(exc.status, str(exc), exc.param)

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": model_name, "object": "model", "created": 0, "owned_by": "miragelab"}],
        }

    @app.post("/v1/completions")
    def completions(request: CompletionRequest) -> dict[str, Any]:
        with lock:
            return complete(lm, model_name, request.model_dump())

    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    return sock


def _server(app: Any) -> Any:
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config)


@contextlib.contextmanager
def running(app: Any, host: str = DEFAULT_HOST, port: int = 0) -> Iterator[str]:
    """Serve ``app`` from a background thread; yields its base URL (``http://.../v1``)."""
    sock = bind(host, port)
    server = _server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    name, bound = sock.getsockname()[:2]
    try:
        yield f"http://{'[' + name + ']' if ':' in name else name}:{bound}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve(
    path: str,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    model_name: str | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    add_bos: bool | None = None,
    on_ready: Callable[[str], None] = print,
) -> None:
    """Load the checkpoint at ``path`` and serve it until interrupted."""
    from pathlib import Path

    lm = HFModel(path, device=device, dtype=dtype, add_bos=add_bos)
    name = model_name or Path(path).resolve().name
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    on_ready(f"serving {name} at http://{shown}:{bound_port}/v1")
    _server(create_app(lm, name)).run(sockets=[sock])
