"""Cost of collecting firing rates + exact ACs + MACs in one pass, against the plain forward (CPU).

Models: SEW-ResNet-18 and Spikeformer (``spikeformer_dvs_cifar10`` with 3 input channels), CIFAR input size
(32 x 32), T = 4, BN calibrated on random inputs first so the neurons fire (a silent net would make the
counting look cheaper than it is). Same input, same thread count for both sides.

- Time: rounds alternate plain / probe / probe / plain (ABBA) so drift on a shared machine hits both alike;
  each side's figure is the median wall time per forward over the rounds. The plain forward is
  ``reset_net`` + ``model(x)`` under ``torch.inference_mode()`` in eval mode; the probe side is a whole
  ``bench.metrics.ops.profile`` call (fresh hooks, its own eval/reset/no_grad handling, the one host sync
  and both reports). Process CPU time is printed beside it.
- Memory: the peak of live CPU tensor memory above the level before the call, from the torch profiler's
  allocation records (``profile_memory=True``): each op's self-allocated bytes at its start, every free
  at its time, cumulated in time order. Transient buffers freed inside a single op are not seen
  (both sides alike). tracemalloc would not see torch's allocations; RSS would include allocator caching.

    python benchmarks/metrics_overhead.py [--threads 2] [--batch 8] [--width 1.0] [--rounds 6]

The target applies to the models themselves (width 1.0). Narrower variants cost less per layer while
the counting keeps a fixed per-layer part, so their ratio is higher (width 0.5: about 1.25x on 2 threads).

Exit status 1 when the time ratio exceeds ``--time-limit`` (1.15) or the memory ratio ``--mem-limit`` (1.10).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional
from torch.profiler import ProfilerActivity, profile

from bench.metrics.firing import calibrate_bn
from bench.metrics.ops import profile as profile_one_pass
from bench.models import create_model

T, SIZE = 4, 32
MODELS = {
    "sew_resnet18": {},
    "spikeformer_dvs_cifar10": {"T": T, "in_channels": 3},
}


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak live CPU tensor bytes allocated by ``fn`` above the level before it (see the module docstring)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    deltas = []
    for e in prof.events():
        if e.name == "[memory]":
            deltas.append((e.time_range.start, e.cpu_memory_usage))
        elif e.self_cpu_memory_usage:
            deltas.append((e.time_range.start, e.self_cpu_memory_usage))
    deltas.sort(key=lambda d: d[0])
    level = peak = 0
    for _, d in deltas:
        level += d
        peak = max(peak, level)
    return peak


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(name: str, model: nn.Module, x: torch.Tensor, rounds: int) -> dict[str, float]:
    def plain() -> None:
        functional.reset_net(model)
        with torch.inference_mode():
            model(x)

    def probed() -> None:
        profile_one_pass(model, x)  # a fresh probe per call, reports included: what a user pays

    for _ in range(2):  # warm-up
        plain()
        probed()
    walls: dict[str, list[float]] = {"plain": [], "probe": []}
    cpus: dict[str, list[float]] = {"plain": [], "probe": []}
    for _ in range(rounds):
        for side, fn in (("plain", plain), ("probe", probed), ("probe", probed), ("plain", plain)):
            w, c = timed(fn)
            walls[side].append(w)
            cpus[side].append(c)
    med = {k: statistics.median(v) for k, v in walls.items()}
    cpu = {k: statistics.median(v) for k, v in cpus.items()}
    mem = {}
    for side, fn in (("plain", plain), ("probe", probed)):
        functional.reset_net(model)  # free the previous call's neuron states before the window opens
        mem[side] = peak_bytes(fn)
    return {
        "plain_ms": med["plain"] * 1e3, "probe_ms": med["probe"] * 1e3, "time_ratio": med["probe"] / med["plain"],
        "cpu_ratio": cpu["probe"] / cpu["plain"], "plain_peak_mib": mem["plain"] / 2**20,
        "probe_peak_mib": mem["probe"] / 2**20, "mem_ratio": mem["probe"] / mem["plain"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--time-limit", type=float, default=1.15)
    parser.add_argument("--mem-limit", type=float, default=1.10)
    args, _ = parser.parse_known_args(argv)  # nox passes the same extra arguments to every benchmark
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"metrics overhead: T={T}, {SIZE}x{SIZE}, batch {args.batch}, width {args.width}, "
          f"{args.threads} threads, {args.rounds} ABBA rounds")
    failed = False
    for name in args.models:
        model = create_model(name, num_classes=10, input_size="cifar", width=args.width, **MODELS.get(name, {}))
        calibrate_bn(model, [torch.rand(T, args.batch, 3, SIZE, SIZE) for _ in range(2)])
        model.eval()
        x = torch.rand(T, args.batch, 3, SIZE, SIZE)
        r = measure(name, model, x, args.rounds)
        ok = r["time_ratio"] <= args.time_limit and r["mem_ratio"] <= args.mem_limit
        failed |= not ok
        print(f"  {name:26s} plain {r['plain_ms']:8.1f} ms  probe {r['probe_ms']:8.1f} ms  "
              f"time x{r['time_ratio']:.3f} (cpu x{r['cpu_ratio']:.3f})  peak {r['plain_peak_mib']:.1f} -> "
              f"{r['probe_peak_mib']:.1f} MiB x{r['mem_ratio']:.3f}  {'ok' if ok else 'OVER LIMIT'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
