"""``mirage eval``, ``mirage serve`` and ``mirage task``: samples from checkpoints and endpoints."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from miragelab.atomic import check_outputs
from miragelab.cli._options import (
    CpusPerUnitOption,
    ExecutorOption,
    GpusPerUnitOption,
    RayAddressOption,
    SamplesOutOption,
    TaskSeedOption,
    check_count,
    check_threads,
    err,
    out,
)
from miragelab.errors import InputError
from miragelab.progress import unit_progress

__all__ = ["eval_command", "export_command", "register", "serve_command", "task_app"]

task_app = typer.Typer(help="Tasks for `mirage eval`: export a built-in task as JSONL.")
MODELS = ("hf", "openai")
#: the most requests in flight, and retries of one request, of `eval --model openai`
MAX_CONCURRENCY = 1_024
MAX_RETRIES = 100


def _unescape(text: str) -> str:
    """``\\n``, ``\\t`` and ``\\\\`` in a stop string typed on a shell line."""
    chars, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in "nt\\":
            chars.append({"n": "\n", "t": "\t", "\\": "\\"}[text[i + 1]])
            i += 2
        else:
            chars.append(text[i])
            i += 1
    return "".join(chars)


def eval_command(
    model: Annotated[str, typer.Option("--model", help="Where the models are: hf or openai.")],
    ladder: Annotated[
        Path,
        typer.Option(
            help="ladder.csv: family,model,path,params[,revision,tokens_trained,"
            "compute_flops,step]; for openai, model is the served name and path may be absent."
        ),
    ],
    task: Annotated[
        str, typer.Option(help="A built-in task name (add1..add5, mul2) or a task JSONL file.")
    ],
    out_path: SamplesOutOption,
    limit: Annotated[
        int | None,
        typer.Option(help="First N examples (built-in tasks: N held-out examples, default 1000)."),
    ] = None,
    seed: TaskSeedOption = 0,
    task_name: Annotated[
        str | None, typer.Option(help="Name of the task in the table (default: file stem).")
    ] = None,
    stop: Annotated[
        list[str] | None,
        typer.Option(help="Stop string of greedy answers (repeatable; \\n and \\t understood)."),
    ] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option(help="New tokens of a greedy answer (default: 32; built-in: answer + 1)."),
    ] = None,
    shard_size: Annotated[int, typer.Option(help="Examples per unit of work.")] = 500,
    device: Annotated[str, typer.Option(help="hf: torch device (cpu, cuda, auto ...).")] = "cpu",
    dtype: Annotated[str, typer.Option(help="hf: auto, float32, float16 or bfloat16.")] = "float32",
    batch_size: Annotated[
        str,
        typer.Option(
            help="hf: sequences per forward pass at most, or 'auto' (as many as "
            "half the free memory holds)."
        ),
    ] = "16",
    batch_tokens: Annotated[
        int,
        typer.Option(help="hf: padded tokens per forward pass at most (rows x longest row)."),
    ] = 8192,
    reuse: Annotated[
        bool,
        typer.Option(
            "--reuse/--no-reuse",
            help="hf: encode shared prefixes (k-shot preamble, a question's context) once.",
        ),
    ] = True,
    add_bos: Annotated[
        bool | None,
        typer.Option(
            "--add-bos/--no-add-bos", help="hf: add the BOS token (default: the tokenizer's own)."
        ),
    ] = None,
    threads: Annotated[int | None, typer.Option(help="hf: torch CPU threads.")] = None,
    base_url: Annotated[
        str | None, typer.Option(help="openai: the endpoint, e.g. http://127.0.0.1:8000/v1.")
    ] = None,
    api_key_env: Annotated[
        str, typer.Option(help="openai: environment variable holding the API key.")
    ] = "OPENAI_API_KEY",
    rps: Annotated[
        float | None,
        typer.Option(
            help="openai: at most this many requests per second, for the whole run "
            "(all Ray workers together)."
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="openai: requests in flight at once.")] = 4,
    max_retries: Annotated[
        int, typer.Option(help="openai: retries of a request on 429/5xx/connection errors.")
    ] = 6,
    timeout: Annotated[float, typer.Option(help="openai: seconds to wait for an answer.")] = 120.0,
    retry_backoff: Annotated[
        float, typer.Option(help="openai: seconds before the first retry (doubling after).")
    ] = 1.0,
    cache: Annotated[
        Path | None,
        typer.Option(
            help="openai: sqlite file of answered requests (default: in the work folder)."
        ),
    ] = None,
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    num_cpus_per_unit: CpusPerUnitOption = None,
    num_gpus_per_unit: GpusPerUnitOption = None,
) -> None:
    """Greedy answers and teacher-forced target log-probs of every model of a ladder -> samples.

    Each (model, shard of examples) is written as its own part as soon as it is
    done, so rerunning the same command after an interruption resumes; with
    --model openai every answered request is also cached, so none is paid twice.
    """
    from miragelab.runners.hf import check_dtype, eval_units, read_ladder
    from miragelab.runners.tasks import load_task
    from miragelab.runners.units import executor_from_options, work_dir_for

    if model not in MODELS:
        raise InputError(f"unknown model source {model!r}; use hf or openai", field="model")
    check_count(shard_size, "shard-size")
    check_outputs([ladder, task, cache], {"out": out_path})
    eval_task = load_task(
        task,
        limit=limit,
        seed=seed,
        stop=[_unescape(s) for s in stop or []],
        max_tokens=max_tokens,
        name=task_name,
    )
    entries, columns = read_ladder(ladder, require_path=model == "hf")
    work_dir, temporary = work_dir_for(out_path)
    backend: dict[str, Any]
    if model == "hf":
        import torch

        from miragelab.runners.hf import evaluate_unit, resolve_device

        check_dtype(dtype)
        rows = parse_batch_size(batch_size)
        check_count(batch_tokens, "batch-tokens", 1, MAX_BATCH_TOKENS)
        check_threads(threads)
        if threads is not None:
            torch.set_num_threads(threads)
        backend = {
            "kind": "hf",
            "device": resolve_device(device, local=executor == "local"),
            "dtype": dtype,
            "batch_size": rows,
            "batch_tokens": batch_tokens,
            "reuse": reuse,
            "add_bos": add_bos,
        }
        fingerprint = {"kind": "hf", "dtype": dtype, "add_bos": add_bos}
        job = evaluate_unit
    else:
        from miragelab.runners.openai_api import completions_url
        from miragelab.runners.openai_api import evaluate_unit as job

        if not base_url:
            raise InputError("--model openai needs the endpoint's URL", field="base-url")
        url = completions_url(base_url)
        if rps is not None and not rps > 0:
            raise InputError(f"must be > 0, got {rps}", field="rps")
        check_count(concurrency, "concurrency", 1, MAX_CONCURRENCY)
        check_count(max_retries, "max-retries", 0, MAX_RETRIES)
        if retry_backoff < 0:
            raise InputError(f"must be >= 0, got {retry_backoff}", field="retry-backoff")
        if not timeout > 0:
            raise InputError(f"must be > 0, got {timeout}", field="timeout")
        if api_key_env != "OPENAI_API_KEY" and not os.environ.get(api_key_env):
            raise InputError(f"environment variable {api_key_env} is not set", field="api-key-env")
        cache_path = cache if cache is not None else work_dir / "requests.sqlite"
        backend = {
            "kind": "openai",
            "base_url": url,
            "api_key_env": api_key_env,  # the name only: the key never leaves the environment
            "rps": rps,
            "concurrency": concurrency,
            "max_retries": max_retries,
            "backoff": retry_backoff,
            "timeout": timeout,
            "cache": str(Path(cache_path).resolve()),
        }
        fingerprint = {"kind": "openai", "base_url": url}
    units, settings = eval_units(
        eval_task, entries, columns, backend, fingerprint, shard_size=shard_size
    )
    runner = executor_from_options(executor, ray_address, num_cpus_per_unit, num_gpus_per_unit)
    samples = _run(
        units, settings, job, out_path, work_dir, temporary, label=f"eval {model}", executor=runner
    )
    _print_summary(samples)
    out.print(f"wrote {len(samples):,} samples to {out_path}")


#: bounds of --batch-size and --batch-tokens (so that no typo asks for a terabyte batch)
MAX_BATCH_ROWS = 1 << 16
MAX_BATCH_TOKENS = 1 << 24


def parse_batch_size(text: str) -> int | str:
    """``--batch-size``: ``auto`` or a whole number in 1..:data:`MAX_BATCH_ROWS`."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise InputError(
            f"expected a whole number or 'auto', got {text!r}", field="batch-size"
        ) from None
    check_count(value, "batch-size", 1, MAX_BATCH_ROWS)
    return value


def _run(units, settings, job, out_path, work_dir, temporary, label, executor=None):  # noqa: ANN001, ANN202
    """Run the pending units (resuming from parts on disk) and write the output."""
    from miragelab.runners.hf import counting_tokens
    from miragelab.runners.openai_api import ApiError
    from miragelab.runners.units import collect, finish_output, run_units
    from miragelab.tables import SAMPLES

    try:
        with (
            unit_progress(len(units), label, tokens=True) as bar,
            counting_tokens(bar.add_tokens),  # hf models in this process count them
        ):
            run_units(units, job, work_dir, settings, executor=executor, on_done=bar)
    except ApiError as exc:
        err.print(f"error: {exc}", soft_wrap=True)
        err.print(
            "finished units and answered requests are kept: rerun the same command to resume",
        )
        raise typer.Exit(1) from None
    samples = collect(units, work_dir, SAMPLES)
    finish_output(samples, out_path, work_dir, temporary)
    if bar.tokens:
        out.print(f"{bar.tokens:,} tokens at {bar.rate:,.0f} tokens/s")
    return samples


def _print_summary(samples: Any) -> None:
    """One line per model: exact match (accuracy for multiple choice), mean target log-prob."""
    from miragelab.runners.summary import model_summary

    for row in model_summary(samples).itertuples(index=False):
        what = f"{'accuracy' if row.choice else 'exact match'} {row.exact_match:.3f}"
        out.print(
            f"{row.family} / {row.model}: {what}, mean target log-prob "
            f"{row.target_logprob:.4f} ({row.n:,} examples)",
        )


def serve_command(
    path: Annotated[Path, typer.Argument(help="A local Hugging Face checkpoint folder.")],
    host: Annotated[
        str, typer.Option(help="Address to bind; the default lets only this machine in.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0: any free port).")] = 8000,
    model_name: Annotated[
        str | None, typer.Option(help="Name clients use for the model (default: folder name).")
    ] = None,
    device: Annotated[str, typer.Option(help="Torch device (cpu, cuda, auto ...).")] = "cpu",
    dtype: Annotated[str, typer.Option(help="auto, float32, float16 or bfloat16.")] = "float32",
    add_bos: Annotated[
        bool | None,
        typer.Option(
            "--add-bos/--no-add-bos",
            help="Add the BOS token to string prompts (default: the tokenizer's own).",
        ),
    ] = None,
) -> None:
    """An OpenAI-compatible /v1/completions (and /v1/models) server over a local checkpoint."""
    from miragelab.runners.serve import serve

    if not (path / "config.json").is_file():
        raise InputError("not a Hugging Face checkpoint folder (no config.json)", path=path)
    if not 0 <= port < 65536:
        raise InputError(f"must be in 0..65535, got {port}", field="port")
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(
            f"warning: listening on {host}: the server has no authentication, so anyone who "
            "can reach this address can use the model",
        )

    def ready(line: str) -> None:
        print(line, flush=True)

    serve(
        str(path),
        host=host,
        port=port,
        model_name=model_name,
        device=device,
        dtype=dtype,
        add_bos=add_bos,
        on_ready=ready,
    )


@task_app.command("export")
def export_command(
    task: Annotated[
        str, typer.Argument(help="A built-in task (add1..add5, mul2) or a JSONL file.")
    ],
    out_path: Annotated[Path, typer.Option("--out", help="Task JSONL file to write.")],
    n: Annotated[int | None, typer.Option(help="Examples (built-in: held-out pairs).")] = None,
    seed: TaskSeedOption = 0,
) -> None:
    """Write a task in the JSONL format `mirage eval --task FILE` reads."""
    from miragelab.runners.tasks import export_task, load_task

    check_outputs([task], {"out": out_path})
    loaded = load_task(task, limit=n, seed=seed)
    export_task(loaded, out_path)
    out.print(f"wrote {len(loaded.examples):,} examples to {out_path}")


def register(app: typer.Typer) -> None:
    """Add ``eval``, ``serve`` and ``task`` to the ``mirage`` app."""
    app.command("eval")(eval_command)
    app.command("serve")(serve_command)
    app.add_typer(task_app, name="task")
