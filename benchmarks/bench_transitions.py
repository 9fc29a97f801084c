"""Benchmark of the transitions part (issue 7): induction training time and detector speed.

    python benchmarks/bench_transitions.py [--quick] [--threads 1] [--n-smooth 400]
        [--summary PATH]

1. Trains the induction transformer with the default config (``--quick``: the
   short one), printing the training wall time (the budget is 10 minutes on
   2 CPU cores), the step of the repeated-part loss transition with its span,
   and the step where the prefix-matching score rises.
2. Times the detector on one 64-point curve (499 bootstrap replicates).
3. Runs :func:`miragelab.transitions.detect.error_rates` and prints the
   false-positive rate on smooth theory curves and the power on planted steps.

Not a test: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _summary import row as summary_row  # noqa: E402
from _summary import write_summary  # noqa: E402

NAME = "transitions"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the short induction run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--n-smooth", type=int, default=400, help="smooth curves simulated")
    parser.add_argument("--summary", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()
    rows: list[dict] = []

    from miragelab.transitions.apply import induction_transitions
    from miragelab.transitions.detect import detect_transition, error_rates
    from miragelab.transitions.induction import InductionConfig, train_induction, with_overrides

    print(f"cpu cores visible: {os.cpu_count()}, torch threads: {args.threads}")
    cfg = with_overrides(
        InductionConfig.quick() if args.quick else InductionConfig(), threads=args.threads
    )
    run = train_induction(cfg)
    verdict = "within" if run.seconds <= 600 else "OVER"
    print(
        f"induction training: {cfg.steps} steps, {run.params:,} parameters, "
        f"{run.seconds:.1f} s ({verdict} the 10-minute budget)"
    )
    rows.append(
        summary_row(
            NAME,
            f"induction training{' (--quick)' if args.quick else ''}, {cfg.steps} steps",
            run.seconds,
            "s",
            target="<= 600 s",
            met=run.seconds <= 600,
        )
    )
    found = induction_transitions(run.checkpoints)
    loss = found.results["loss_repeated"]
    print(
        f"repeated-part loss: detected={loss.detected} p={loss.p_value:.3g} "
        f"change at step {loss.x_change:.0f}, interval [{loss.x_low:.0f}, {loss.x_high:.0f}], "
        f"span [{loss.span_low:.0f}, {loss.span_high:.0f}]"
    )
    print(
        f"prefix-matching score rises at step {found.attention_rise:.0f}: "
        f"in span {found.rise_in_span}, in interval {found.rise_in_interval}"
    )

    x = run.checkpoints["step"].to_numpy(dtype=float)
    y = run.checkpoints["loss_repeated"].to_numpy(dtype=float)
    t = time.perf_counter()
    for _ in range(5):
        detect_transition(x, y, n_boot=499)
    per_curve = (time.perf_counter() - t) / 5
    print(f"detector: {per_curve * 1e3:.1f} ms per {x.size}-point curve")
    rows.append(
        summary_row(NAME, f"detector, one {x.size}-point curve (499 replicates)", per_curve, "s")
    )

    t = time.perf_counter()
    rates = error_rates(n_smooth=args.n_smooth)
    print(f"error rates: {time.perf_counter() - t:.1f} s")
    smooth = rates[(rates["case"] == "smooth") & (rates["metric"] == "all")].iloc[0]
    print(
        f"false positives on {smooth.curves} smooth theory curves: {smooth.rate:.1%} "
        f"(p <= 0.05 alone: {smooth.significant_rate:.1%})"
    )
    rows.append(
        summary_row(
            NAME,
            f"false-positive rate on {smooth.curves} smooth theory curves",
            smooth.rate,
            "fraction",
            target="<= 0.05",
            met=smooth.rate <= 0.05,
        )
    )
    steps = rates[(rates["case"] == "step") & (rates["metric"] == "all")]
    for row in steps.itertuples(index=False):
        print(f"power, loss drop {row.drop:.0%}, ramp width {row.width:g}: {row.rate:.1%}")
    for step in steps.itertuples(index=False):
        rows.append(
            summary_row(
                NAME,
                f"power, loss drop {step.drop:.0%}, ramp width {step.width:g}",
                step.rate,
                "fraction",
            )
        )
    write_summary(args.summary, rows)


if __name__ == "__main__":
    main()
