"""Benchmark of the tiny-GPT ladder (issue 4): wall time, training and decoding throughput.

    python benchmarks/bench_ladder.py [--task add4] [--preset cpu] [--out DIR] [--n-test 10000]
        [--summary PATH]

1. Trains the preset's ladder and evaluates it (``--n-test`` examples per
   model), printing the wall time of each phase and every model's exact match.
2. Training throughput of the largest size: tokens/s and achieved FLOP/s
   (``6 N`` per token) beside this machine's measured matmul FLOP/s (a
   1024 x 1024 fp32 matmul, same threads, same run), as a ratio.
3. Decoding throughput: batched greedy decoding with our KV cache against
   transformers' ``generate`` on the same exported model and the same prompts
   (ratio, medians of alternating runs), with the share of identical answers
   and the ceiling on the ratio that the matrix products alone impose.

Not a test: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _summary import row, write_summary  # noqa: E402

NAME = "ladder"
TARGET_LADDER_S = 15 * 60.0
TARGET_FLOPS_SHARE = 0.40
TARGET_DECODE_SPEEDUP = 5.0


def matmul_flops(n: int = 1024, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times)


def train_throughput(task_name: str, preset_name: str, steps: int = 20) -> tuple[float, float, int]:
    from miragelab.ladder.model import TinyGPT, param_count
    from miragelab.ladder.presets import get_preset
    from miragelab.ladder.tasks import get_task
    from miragelab.ladder.train import batch_at, make_optimizer, model_config, train_step

    preset, task = get_preset(preset_name), get_task(task_name)
    size = preset.sizes[-1]
    cfg = model_config(preset, size)
    model = TinyGPT(cfg, seed=0)
    opt = make_optimizer(model, preset, size.lr)
    batches = [batch_at(task, s, preset.batch_size, 0) for s in range(steps + 3)]
    for x, y in batches[:3]:
        train_step(model, opt, x, y, preset.grad_clip)
    t = time.perf_counter()
    for x, y in batches[3:]:
        train_step(model, opt, x, y, preset.grad_clip)
    dt = time.perf_counter() - t
    tokens = steps * preset.batch_size * (task.seq_len - 1)
    return tokens / dt, 6 * param_count(cfg) * tokens / dt, param_count(cfg)


def matmul_floor(cfg, batch: int, prompt_len: int, steps: int, repeats: int = 3) -> float:
    """Seconds for just the matrix products our decoder runs on one batch, nothing else.

    The same ``torch.mm`` shapes, in the same order, on the same threads: the
    prefill's (with the last layer on one row per prompt), then ``steps``
    one-token steps. Attention, norms, GELU and every per-call overhead are
    left out, so no exact fp32 decoder doing this arithmetic with this BLAS
    can be faster; ``generate``'s time over this floor caps our speed-up.
    """
    d, L, V = cfg.n_embd, cfg.n_layer, cfg.vocab_size
    rows_prefill = batch * prompt_len

    def block(rows: int) -> list[tuple[int, int, int]]:
        return [(rows, d, d), (rows, d, 4 * d), (rows, 4 * d, d)]

    shapes = []
    for layer in range(L):
        shapes.append((rows_prefill, d, 3 * d))
        shapes += block(batch if layer == L - 1 else rows_prefill)
    shapes.append((batch, d, V))
    for _ in range(steps):
        for _ in range(L):
            shapes += [(batch, d, 3 * d), *block(batch)]
        shapes.append((batch, d, V))
    operands = [(torch.randn(m, k), torch.randn(k, n)) for m, k, n in shapes]
    times = []
    for _ in range(repeats + 1):
        t = time.perf_counter()
        for x, w in operands:
            torch.mm(x, w)
        times.append(time.perf_counter() - t)
    return min(times[1:])


def decode_throughput(
    model_dir: Path, task_name: str, n: int = 2000, repeats: int = 5
) -> list[tuple]:
    """Ours against ``generate`` at several batch sizes, same model, same prompts.

    Each batch size is timed ``repeats`` times, ours and ``generate``
    alternating, and the medians are compared, so a burst of load on the
    machine hits both sides rather than one. Returns ``(batch, prompts, ours
    answers/s, generate answers/s, share identical, ceiling)`` rows, where the
    ceiling is ``generate``'s time over :func:`matmul_floor`'s.
    """
    from transformers import AutoModelForCausalLM

    from miragelab.ladder.hf import load_hf
    from miragelab.ladder.model import greedy_decode
    from miragelab.ladder.tasks import EOS_ID, encode_examples, get_task, heldout_pairs

    task = get_task(task_name)
    a, b = heldout_pairs(task, n, seed=0)
    prompts = torch.from_numpy(encode_examples(task, a, b)[0][:, : task.prompt_len])
    new = task.max_answer_len + 1
    ours_model = load_hf(model_dir)
    hf = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    kwargs = dict(max_new_tokens=new, do_sample=False, eos_token_id=EOS_ID, pad_token_id=EOS_ID)

    def run_ours(batch: torch.Tensor) -> torch.Tensor:
        return greedy_decode(ours_model, batch, new, EOS_ID)

    def run_hf(batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            mask = torch.ones_like(batch)
            return hf.generate(batch, attention_mask=mask, **kwargs)[:, task.prompt_len :]

    print(
        f"decoding: {model_dir.name}, prompts of {task.prompt_len} tokens, <= {new} new tokens; "
        f"median of {repeats} alternating runs"
    )
    print(
        "  batch  prompts   ours answers/s   generate answers/s   speed-up   same answers"
        "   matmul floor   ceiling"
    )
    results = []
    for batch_size, count in ((1, 100), (16, 320), (128, 1024), (n, n)):
        chunks = [prompts[i : i + batch_size] for i in range(0, count, batch_size)]
        run_ours(chunks[0]), run_hf(chunks[0])  # warm up
        times: dict[str, list[float]] = {"ours": [], "hf": []}
        outs: dict[str, list[torch.Tensor]] = {}
        for _ in range(repeats):
            for name, fn in (("ours", run_ours), ("hf", run_hf)):
                t = time.perf_counter()
                outs[name] = [fn(c) for c in chunks]
                times[name].append(time.perf_counter() - t)
        ours_s, hf_s = statistics.median(times["ours"]), statistics.median(times["hf"])
        same = sum(
            int((o[:, : h.shape[1]] == h).all(dim=1).sum())
            for o, h in zip(outs["ours"], outs["hf"], strict=True)
        )
        # one-token steps each chunk took: new tokens up to the last row's end, less the prefill's
        steps = [int((o != EOS_ID).sum(dim=1).max()) for o in outs["ours"]]
        floor = sum(
            matmul_floor(ours_model.config, len(c), task.prompt_len, min(s, new - 1))
            for c, s in zip(chunks, steps, strict=True)
        )
        ceiling = hf_s / floor
        print(
            f"  {batch_size:5d} {count:8d} {count / ours_s:16,.0f} "
            f"{count / hf_s:20,.0f} {hf_s / ours_s:9.1f}x {same / count:13.1%}"
            f" {floor * 1e3:11.1f} ms {ceiling:8.1f}x"
        )
        results.append((batch_size, count, count / ours_s, count / hf_s, same / count, ceiling))
    print(
        "  ceiling: generate's time over the matmul floor (our decoder's matrix products alone);"
        " no exact fp32 decoder doing these products beats it"
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="add4")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--n-test", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-ladder", action="store_true", help="reuse --out, train nothing")
    parser.add_argument("--summary", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()
    rows: list[dict] = []
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    out = args.out or Path(tempfile.mkdtemp(prefix="ladder-"))

    from miragelab.ladder.evaluate import evaluate_ladder
    from miragelab.ladder.train import read_manifest, train_ladder
    from miragelab.tables import write_table

    if not args.skip_ladder:
        t0 = time.perf_counter()
        train_ladder(out, args.task, args.preset)
        t1 = time.perf_counter()
        samples = evaluate_ladder(out, args.n_test)
        write_table(samples, out / "samples.parquet")
        t2 = time.perf_counter()
        print(f"ladder {args.preset}/{args.task} in {out}")
        print(f"  train {t1 - t0:7.1f} s   eval ({args.n_test} examples/model) {t2 - t1:6.1f} s")
        print(f"  total {t2 - t0:7.1f} s  ({(t2 - t0) / 60:.1f} min; target <= 15 min)")
        rows.append(
            row(
                NAME,
                f"train + evaluate the {args.preset}/{args.task} ladder "
                f"({args.n_test:,} examples/model), wall time",
                t2 - t0,
                "s",
                target=f"<= {TARGET_LADDER_S:g} s",
                met=t2 - t0 <= TARGET_LADDER_S,
            )
        )
        hits = (samples["prediction"] == samples["target"]).groupby(samples["model"], sort=False)
        params = samples.groupby("model", sort=False)["params"].first()
        for name, acc in hits.mean().items():
            print(f"  {name:28s} {int(params[name]):>9,} params  exact match {acc:.4f}")
        manifest = read_manifest(out)
        flops = sum(m["flops"] for m in manifest["models"])
        print(
            f"  ladder training: {flops:.3g} FLOPs (6ND) in {t1 - t0:.0f} s "
            f"= {flops / (t1 - t0) / 1e9:.1f} GFLOP/s"
        )
    peak = matmul_flops()
    tps, fps, n = train_throughput(args.task, args.preset)
    print(f"matmul 1024^3 fp32: {peak / 1e9:.1f} GFLOP/s")
    print(
        f"training, largest size ({n:,} params): {tps:,.0f} tokens/s, {fps / 1e9:.1f} GFLOP/s "
        f"= {fps / peak:.1%} of matmul (target >= 40%)"
    )
    rows.append(
        row(
            NAME,
            f"training FLOP/s, largest size ({n:,} params)",
            fps / 1e9,
            "GFLOP/s",
            baseline=peak / 1e9,
            baseline_name="1024^3 fp32 matmul, same threads",
            ratio=fps / peak,
            target=f">= {TARGET_FLOPS_SHARE:.0%} of matmul",
            met=fps / peak >= TARGET_FLOPS_SHARE,
        )
    )
    manifest = read_manifest(out)
    if manifest["models"]:
        decoded = decode_throughput(out / manifest["models"][-1]["path"], manifest["task"])
        for batch_size, count, ours, hf, same, ceiling in decoded:
            rows.append(
                row(
                    NAME,
                    f"greedy decoding, batch {batch_size} ({count} prompts, {same:.0%} identical; "
                    f"matmul-floor ceiling {ceiling:.1f}x)",
                    ours,
                    "answers/s",
                    baseline=hf,
                    baseline_name="transformers generate, same model and prompts",
                    ratio=ours / hf,
                    target=f">= {TARGET_DECODE_SPEEDUP:g}x",
                    met=ours / hf >= TARGET_DECODE_SPEEDUP,
                )
            )
    write_summary(args.summary, rows)


if __name__ == "__main__":
    main()
