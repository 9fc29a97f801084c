"""Benchmark of the tiny-GPT ladder (issue 4): wall time, training and decoding throughput.

    python benchmarks/bench_ladder.py [--task add4] [--preset cpu] [--out DIR] [--n-test 10000]
        [--device cpu] [--all-sizes] [--summary PATH]

1. Trains the preset's ladder and evaluates it (``--n-test`` examples per
   model), printing the wall time of each phase and every model's exact match.
2. Training throughput of the largest size: tokens/s and achieved FLOP/s
   (``6 N`` per token) beside this machine's measured matmul FLOP/s (a
   1024 x 1024 fp32 matmul, same threads, same run), as a ratio.
3. Decoding throughput: batched greedy decoding with our KV cache against
   transformers' ``generate`` on the same exported model and the same prompts
   (ratio, medians of alternating runs), with the share of identical answers
   and the ceiling on the ratio that the matrix products alone impose.
4. The work of ``ladder eval``: greedy answers *and* the targets' log-probs.
   Ours finds both in one teacher-forced pass and decodes step by step only
   the rows that leave their target
   (:func:`~miragelab.ladder.model.greedy_with_reference`); transformers does
   the same work the plain way, ``generate`` plus one forward pass. Its
   ``generate`` alone is printed too: our answers-and-log-probs against its
   answers only.

``--device cuda`` times steps 2-4 on a GPU (synchronised clocks); with
``--all-sizes`` step 2 runs for every size and projects the preset's
training time from it.

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

from miragelab.costs import matmul_flops  # noqa: E402

NAME = "ladder"
TARGET_LADDER_S = 15 * 60.0
TARGET_FLOPS_SHARE = 0.40
TARGET_DECODE_SPEEDUP = 5.0


DEVICE = "cpu"


def clock() -> float:
    """Wall time after every queued kernel has run (a GPU runs asynchronously)."""
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter()


def train_throughput(
    task_name: str, preset_name: str, size_index: int = -1, steps: int = 20
) -> tuple[float, float, int, float]:
    """Tokens/s, FLOP/s (6 N per token), parameters and steps/s of one size's training."""
    from miragelab.ladder.model import TinyGPT, param_count
    from miragelab.ladder.presets import get_preset
    from miragelab.ladder.tasks import get_task
    from miragelab.ladder.train import batch_at, make_optimizer, model_config, train_step

    preset, task = get_preset(preset_name), get_task(task_name)
    size = preset.sizes[size_index]
    cfg = model_config(preset, size)
    model = TinyGPT(cfg, seed=0).to(DEVICE)
    opt = make_optimizer(model, preset, size.lr)
    batches = [
        tuple(t.to(DEVICE) for t in batch_at(task, s, preset.batch_size, 0))
        for s in range(steps + 3)
    ]
    for x, y in batches[:3]:
        train_step(model, opt, x, y, preset.grad_clip)
    t = clock()
    for x, y in batches[3:]:
        train_step(model, opt, x, y, preset.grad_clip)
    dt = clock() - t
    tokens = steps * preset.batch_size * (task.seq_len - 1)
    return tokens / dt, 6 * param_count(cfg) * tokens / dt, param_count(cfg), steps / dt


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
    operands = [
        (torch.randn(m, k, device=DEVICE), torch.randn(k, n, device=DEVICE)) for m, k, n in shapes
    ]
    times = []
    for _ in range(repeats + 1):
        t = clock()
        for x, w in operands:
            torch.mm(x, w)
        times.append(clock() - t)
    return min(times[1:])


#: (batch size, prompts) of each row of the decoding tables
BATCHES = ((1, 100), (16, 320), (128, 1024))


def _batchings(rows: torch.Tensor) -> list[tuple[int, int, list[torch.Tensor]]]:
    """``(batch size, rows used, chunks)`` for each of :data:`BATCHES`, then all rows at once."""
    n = len(rows)
    return [
        (size, count, [rows[i : i + size] for i in range(0, count, size)])
        for size, count in (*BATCHES, (n, n))
    ]


def alternate(runners: list, chunks: list, repeats: int) -> tuple[dict, dict]:
    """Median seconds and last outputs of each ``(name, fn)`` over ``chunks``.

    After one warm-up call each (which also captures a CUDA graph of the
    shape), the runners take turns ``repeats`` times, so a burst of load on
    the machine hits all of them rather than one.
    """
    for _, fn in runners:
        fn(chunks[0])
    times: dict[str, list[float]] = {name: [] for name, _ in runners}
    outs: dict[str, list] = {}
    for _ in range(repeats):
        for name, fn in runners:
            t = clock()
            outs[name] = [fn(c) for c in chunks]
            times[name].append(clock() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}, outs


def _models_and_examples(model_dir: Path, task_name: str, n: int) -> tuple:
    """What both decoding tables start from, on ``DEVICE``.

    The task, its first ``n`` held-out examples as ``(n, seq_len)`` ids
    (prompt, target, end token, padding), our model and transformers' loaded
    from the same export, and ``generate`` on a batch of prompts (greedy,
    the same maximum of new tokens as ours) returning the new tokens only.
    """
    from transformers import AutoModelForCausalLM

    from miragelab.ladder.hf import load_hf
    from miragelab.ladder.tasks import EOS_ID, encode_examples, get_task, heldout_pairs

    task = get_task(task_name)
    a, b = heldout_pairs(task, n, seed=0)
    tokens = torch.from_numpy(encode_examples(task, a, b)[0]).to(DEVICE)
    ours = load_hf(model_dir).to(DEVICE)
    hf = AutoModelForCausalLM.from_pretrained(model_dir).eval().to(DEVICE)
    kwargs = dict(
        max_new_tokens=task.max_answer_len + 1,
        do_sample=False,
        eos_token_id=EOS_ID,
        pad_token_id=EOS_ID,
    )

    def generate(prompts: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            out = hf.generate(prompts, attention_mask=torch.ones_like(prompts), **kwargs)
        return out[:, task.prompt_len :]

    return task, tokens, ours, hf, generate


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
    from miragelab.ladder.model import greedy_decode
    from miragelab.ladder.tasks import EOS_ID

    task, tokens, ours_model, _, run_hf = _models_and_examples(model_dir, task_name, n)
    prompts = tokens[:, : task.prompt_len]
    new = task.max_answer_len + 1

    def run_ours(batch: torch.Tensor) -> torch.Tensor:
        return greedy_decode(ours_model, batch, new, EOS_ID)

    def run_eager(batch: torch.Tensor) -> torch.Tensor:
        return greedy_decode(ours_model, batch, new, EOS_ID, graph=False)

    print(
        f"decoding: {model_dir.name}, prompts of {task.prompt_len} tokens, <= {new} new tokens; "
        f"median of {repeats} alternating runs"
    )
    print(
        "  batch  prompts   ours answers/s   generate answers/s   speed-up   same answers"
        "   matmul floor   ceiling"
    )
    results = []
    for batch_size, count, chunks in _batchings(prompts):
        runners = [("ours", run_ours), ("hf", run_hf)]
        if DEVICE.startswith("cuda"):  # ours without CUDA graphs, for the record
            runners.append(("eager", run_eager))
        medians, outs = alternate(runners, chunks, repeats)
        ours_s, hf_s = medians["ours"], medians["hf"]
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
        eager = ""
        if "eager" in medians:
            eager_s = medians["eager"]
            eager = f"   without graph {count / eager_s:,.0f}/s ({hf_s / eager_s:.1f}x)"
        print(
            f"  {batch_size:5d} {count:8d} {count / ours_s:16,.0f} "
            f"{count / hf_s:20,.0f} {hf_s / ours_s:9.1f}x {same / count:13.1%}"
            f" {floor * 1e3:11.1f} ms {ceiling:8.1f}x{eager}"
        )
        results.append((batch_size, count, count / ours_s, count / hf_s, same / count, ceiling))
    print(
        "  ceiling: generate's time over the matmul floor (our decoder's matrix products alone);"
        " no exact fp32 decoder doing these products beats it"
        + (
            " one launch at a time (a CUDA graph, which launches them all at once, can)"
            if DEVICE.startswith("cuda")
            else ""
        )
    )
    return results


def eval_throughput(
    model_dir: Path, task_name: str, n: int = 2000, repeats: int = 5
) -> list[tuple]:
    """The work of ``ladder eval`` (answers and target log-probs), ours against transformers.

    Ours: :func:`~miragelab.ladder.model.greedy_with_reference`. Transformers:
    ``generate`` for the answers, then one forward pass over prompt and
    target for the log-probs; ``generate`` alone is timed as well. Medians of
    alternating runs. Returns ``(batch, prompts, exact match, ours answers/s,
    transformers answers/s, generate-alone answers/s, share identical, largest
    log-prob difference)`` rows.
    """
    from miragelab.ladder.model import greedy_with_reference
    from miragelab.ladder.tasks import EOS_ID

    task, tokens, ours_model, hf, generate = _models_and_examples(model_dir, task_name, n)
    p = task.prompt_len

    def run_ours(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return greedy_with_reference(ours_model, batch, p, EOS_ID)

    def run_generate(batch: torch.Tensor) -> torch.Tensor:
        return generate(batch[:, :p])

    def run_hf(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        answers = run_generate(batch)
        with torch.inference_mode():
            logits = hf(batch[:, :-1]).logits[:, p - 1 :]
            logp = torch.log_softmax(logits.double(), dim=-1)
        return answers, logp.gather(-1, batch[:, p:, None])[..., 0]

    print(
        f"answers and target log-probs (the work of `ladder eval`): {model_dir.name}; "
        f"median of {repeats} alternating runs"
    )
    print(
        "  batch  prompts  exact match   ours answers/s   transformers answers/s   speed-up"
        "   generate alone   speed-up   same answers   max |d logp|"
    )
    results = []
    for batch_size, count, chunks in _batchings(tokens):
        runners = [("ours", run_ours), ("hf", run_hf), ("generate", run_generate)]
        medians, outs = alternate(runners, chunks, repeats)
        ours_s, hf_s, gen_s = (medians[k] for k in ("ours", "hf", "generate"))
        same, exact, gap = 0, 0, 0.0
        for (o, olp), (h, hlp), c in zip(outs["ours"], outs["hf"], chunks, strict=True):
            same += int((o[:, : h.shape[1]] == h).all(dim=1).sum())
            target = torch.where(c[:, p:] == 0, EOS_ID, c[:, p:])  # padding after <eos>
            exact += int((o == target).all(dim=1).sum())
            ends = c[:, p:] == EOS_ID
            digits = ends.cumsum(dim=1) == 0
            gap = max(gap, float((olp - hlp).abs()[digits].max()))
        print(
            f"  {batch_size:5d} {count:8d} {exact / count:12.1%} {count / ours_s:16,.0f}"
            f" {count / hf_s:24,.0f} {hf_s / ours_s:9.1f}x {count / gen_s:16,.0f}"
            f" {gen_s / ours_s:9.1f}x {same / count:13.1%} {gap:14.1e}"
        )
        results.append(
            (batch_size, count, exact / count, count / ours_s, count / hf_s, count / gen_s,
             same / count, gap)
        )  # fmt: skip
    print(
        "  the model's own exact match sets how much is left to decode step by step: "
        "a row that follows its target costs no decoding step"
    )
    return results


def _speedup_row(label: str, ours: float, baseline: float, baseline_name: str) -> dict:
    """A summary row of answers/s against a transformers baseline, judged on the 5x target."""
    return row(
        NAME,
        label,
        ours,
        "answers/s",
        baseline=baseline,
        baseline_name=baseline_name,
        ratio=ours / baseline,
        target=f">= {TARGET_DECODE_SPEEDUP:g}x",
        met=ours / baseline >= TARGET_DECODE_SPEEDUP,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="add4")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--n-test", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-ladder", action="store_true", help="reuse --out, train nothing")
    parser.add_argument("--device", default="cpu", help="torch device of steps 2-4")
    parser.add_argument(
        "--all-sizes", action="store_true", help="training throughput of every size of the preset"
    )
    parser.add_argument("--summary", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    rows: list[dict] = []
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {DEVICE}")
    if DEVICE.startswith("cuda"):
        print(f"  {torch.cuda.get_device_name(DEVICE)}")
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
    where = "" if DEVICE == "cpu" else f", {DEVICE}"
    # a GPU needs a large product to reach its rate: at 1024^3 an H200 idles between launches
    side = 8192 if DEVICE.startswith("cuda") else 1024
    peak = matmul_flops(DEVICE, side)
    tps, fps, n, _ = train_throughput(args.task, args.preset)
    print(f"matmul {side}^3 fp32: {peak / 1e9:.1f} GFLOP/s")
    print(
        f"training, largest size ({n:,} params): {tps:,.0f} tokens/s, {fps / 1e9:.1f} GFLOP/s "
        f"= {fps / peak:.1%} of matmul (target >= 40%)"
    )
    rows.append(
        row(
            NAME,
            f"training FLOP/s, largest size ({n:,} params){where}",
            fps / 1e9,
            "GFLOP/s",
            baseline=peak / 1e9,
            baseline_name=f"{side}^3 fp32 matmul, same threads",
            ratio=fps / peak,
            target=f">= {TARGET_FLOPS_SHARE:.0%} of matmul",
            met=fps / peak >= TARGET_FLOPS_SHARE,
        )
    )
    if args.all_sizes:
        from miragelab.ladder.presets import get_preset

        preset = get_preset(args.preset)
        total = 0.0
        print(f"training throughput of every size of {args.preset} ({preset.steps:,} steps each)")
        for i, size in enumerate(preset.sizes):
            tps, fps, n, steps_per_s = train_throughput(args.task, args.preset, i)
            total += preset.steps / steps_per_s
            print(
                f"  {size.name:10s} {n:>12,} params {tps:>14,.0f} tokens/s "
                f"{fps / 1e12:8.2f} TFLOP/s ({fps / peak:6.1%} of matmul) "
                f"{preset.steps / steps_per_s:8.1f} s"
            )
        print(f"  projected training time of the preset: {total:.0f} s ({total / 60:.1f} min)")
        rows.append(
            row(NAME, f"projected training time of the {args.preset} preset{where}", total, "s")
        )
    manifest = read_manifest(out)
    if manifest["models"]:
        model_dir = out / manifest["models"][-1]["path"]
        decoded = decode_throughput(model_dir, manifest["task"])
        for batch_size, count, ours, hf, same, ceiling in decoded:
            rows.append(
                _speedup_row(
                    f"greedy decoding, batch {batch_size} ({count} prompts, {same:.0%} identical; "
                    f"matmul-floor ceiling {ceiling:.1f}x){where}",
                    ours,
                    hf,
                    "transformers generate, same model and prompts",
                )
            )
        for batch_size, count, exact, ours, hf, gen, same, gap in eval_throughput(
            model_dir, manifest["task"]
        ):
            rows.append(
                _speedup_row(
                    f"answers + target log-probs (ladder eval), batch {batch_size} "
                    f"({count} prompts, exact match {exact:.0%}, {same:.0%} identical, "
                    f"log-probs within {gap:.0e}){where}",
                    ours,
                    hf,
                    "transformers generate + one forward pass",
                )
            )
            rows.append(
                row(
                    NAME,
                    f"answers + target log-probs (ladder eval) against generate's answers alone, "
                    f"batch {batch_size}{where}",
                    ours,
                    "answers/s",
                    baseline=gen,
                    baseline_name="transformers generate alone",
                    ratio=ours / gen,
                )
            )
    write_summary(args.summary, rows)


if __name__ == "__main__":
    main()
