"""Timing overhead of the latency harness against a bare loop of the same forwards (CPU).

Both loops run the same inference (``reset_net`` then the multi-step forward) of the same small
conv SNN on the same input, under ``torch.inference_mode()``, with the same thread count. Rounds
alternate bare / harness / harness / bare (ABBA) so drift on a shared machine hits both alike;
each side's figure is the median over rounds of wall time per forward, and the ratio held to the limit is the
median of each round's own ratio (its harness loop over its bare loop, run back to back: a shared VM's speed
drifts by several percent within seconds, which moves both sides of one round alike but not the two medians);
the ratio of the medians is printed beside it. The harness side is the
wall time of a whole :func:`bench.metrics.timing.measure` call (its per-run clock reads and
bookkeeping included) divided by its runs; its reported mean per run is printed too.

    python benchmarks/harness_overhead.py [--seconds 30] [--threads 1] [--limit 0.02]

Exit status 1 when the overhead exceeds ``--limit``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, layer, neuron

from bench.metrics.timing import inference_fn, measure


def small_snn(width: int = 16) -> nn.Module:
    """Two conv-BN-IF stages and a classifier: a few ms per forward on one core at 32 px, T=4, B=2."""
    return nn.Sequential(
        layer.Conv2d(3, width, 3, padding=1, bias=False), layer.BatchNorm2d(width), neuron.IFNode(),
        layer.Conv2d(width, width, 3, padding=1, bias=False), layer.BatchNorm2d(width), neuron.IFNode(),
        layer.AdaptiveAvgPool2d(1), layer.Flatten(), layer.Linear(width, 10),
    )


def bare_loop(run, n: int) -> float:
    """Seconds per forward of ``n`` back-to-back calls, one clock read at each end."""
    start = time.perf_counter_ns()
    for _ in range(n):
        run()
    return (time.perf_counter_ns() - start) * 1e-9 / n


def harness_loop(run, n: int) -> tuple[float, float]:
    """Wall seconds per forward of a ``measure`` call of exactly ``n`` runs, and its reported mean."""
    start = time.perf_counter_ns()
    stats = measure(run, warmup=0, min_runs=n, min_time_s=0.0, max_runs=n)
    wall = (time.perf_counter_ns() - start) * 1e-9 / n
    return wall, stats.mean


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="approximate total run time")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=12, help="ABBA rounds (even)")
    parser.add_argument("--limit", type=float, default=0.02, help="largest acceptable relative overhead")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model = small_snn().eval()
    functional.set_step_mode(model, "m")
    x = torch.rand(4, 2, 3, 32, 32)
    run = inference_fn(model, x)
    bare: list[float] = []
    harness: list[float] = []
    reported: list[float] = []
    with torch.inference_mode():
        bare_loop(run, 5)  # warm-up: the first call imports spikingjelly's op dispatch (seconds)
        per_forward = bare_loop(run, 20)  # calibration
        n = max(10, int(args.seconds / (2 * args.rounds * per_forward)))
        for r in range(args.rounds):
            order = ("bare", "harness") if r % 2 == 0 else ("harness", "bare")
            for side in order:
                if side == "bare":
                    bare.append(bare_loop(run, n))
                else:
                    wall, mean = harness_loop(run, n)
                    harness.append(wall)
                    reported.append(mean)
    b, h, m = statistics.median(bare), statistics.median(harness), statistics.median(reported)
    ratio = statistics.median(hr / br for hr, br in zip(harness, bare, strict=True))  # each round's own ratio
    print(f"forwards per side per round: {n}, rounds: {args.rounds}, threads: {args.threads}")
    print(f"bare loop        : {b * 1e3:.4f} ms/forward (median over rounds)")
    print(f"harness (wall)   : {h * 1e3:.4f} ms/forward")
    print(f"harness reported : {m * 1e3:.4f} ms/forward (mean of its per-run samples)")
    print(f"ratio harness/bare: {ratio:.4f} (overhead {100 * (ratio - 1):+.2f}%; median of the rounds' own ratios; "
          f"of the medians {h / b:.4f}), reported/bare: {m / b:.4f}")
    ok = ratio - 1 < args.limit
    print("PASS" if ok else f"FAIL: overhead above {100 * args.limit:.1f}%")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
