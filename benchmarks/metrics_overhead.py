"""Cost of collecting firing rates + exact ACs + MACs in one pass, against the plain forward, on every device.

- CPU (always): SEW-ResNet-18 and Spikeformer (``spikeformer_dvs_cifar10`` with 3 input channels), CIFAR
  input size (32 x 32), T = 4, batch ``--batch`` (16), width ``--width`` (1.0), once per thread count of
  ``--threads`` (1 and 2, ``torch.set_num_threads``), beside spikingjelly 2.0's ``SynOpCounter`` (under its
  ``DispatchCounterMode``, no_grad, after ``reset_net``) as a reference point for what counting costs.
- CUDA (when available): SEW-ResNet-18 and Spikeformer in their ImageNet configurations
  (``spikeformer_imagenet``), 224 x 224, T = 4, batch ``--gpu-batch`` (32), width 1.0.

BN is calibrated on random inputs first so the neurons fire (a silent net would make the counting look
cheaper than it is). Same input, same threads for both sides.

- Time: rounds alternate plain / probe / probe / plain (ABBA; SynOpCounter after them, once per round) so drift on a shared machine hits both alike;
  each side's figure is the median wall time per forward over the rounds (on CUDA: synchronised before
  and after each call, timed with CUDA events), printed with its interquartile range over the rounds
  (as % of the median: the scatter within the process; between processes on a shared VM it is larger).
  The ratio the target applies to is the median over the rounds of each round's own ratio (its two probe
  calls over its two plain ones, run back to back): a shared VM's speed drifts by 10-20 % within a minute,
  which moves both sides of one round alike but not the two sides' medians, taken over different moments;
  the ratio of the medians is printed beside it. The plain forward is ``reset_net`` + ``model(x)`` under
  ``torch.inference_mode()`` in eval mode; the probe side is a whole ``bench.metrics.ops.profile`` call
  (fresh hooks, its own eval/reset/no_grad handling, the one host transfer and both reports). Process CPU
  time is printed beside it on the CPU.
- Memory: CPU: the peak of live CPU tensor memory above the level before the call, from the torch
  profiler's allocation records (``profile_memory=True``): each op's self-allocated bytes at its start,
  every free at its time, cumulated in time order (transient buffers freed inside a single op are not
  seen, both sides alike; tracemalloc would not see torch's allocations, RSS would include allocator
  caching). CUDA: ``torch.cuda.max_memory_allocated`` above the allocation before the call.

    python benchmarks/metrics_overhead.py [--threads 1 2] [--batch 16] [--width 1.0] [--rounds 6]
                                          [--devices cpu cuda] [--gpu-batch 32] [--gpu-rounds 5]

The CPU target applies to the models themselves (width 1.0). Narrower variants cost less per layer while
the counting keeps a fixed per-layer part, so their ratio is higher (width 0.5: about 1.25x on 2 threads).

Exit status 1 when a time ratio exceeds ``--time-limit`` (CPU, 1.10) or ``--gpu-time-limit`` (CUDA, 1.15),
or a memory ratio exceeds ``--mem-limit`` (1.10).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional
from torch.profiler import ProfilerActivity, profile

from bench.metrics.firing import calibrate_bn
from bench.metrics.ops import profile as profile_one_pass
from bench.models import create_model

T = 4


@dataclass(frozen=True)
class Setting:
    """One device's benchmark: models (name -> extra factory kwargs), input size, preset, batch, width, threads."""

    device: str
    models: dict[str, dict]
    size: int
    input_size: str
    batch: int
    width: float
    rounds: int
    time_limit: float
    threads: int


def cpu_peak_bytes(fn: Callable[[], object]) -> int:
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


def cuda_peak_bytes(fn: Callable[[], object]) -> int:
    """Peak CUDA memory allocated by ``fn`` above the allocation before it."""
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def timed(fn: Callable[[], object], device: str) -> tuple[float, float]:
    """Wall seconds (CUDA events on a GPU) and process CPU seconds of one call."""
    if device == "cuda":
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        cpu = time.process_time()
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1e3, time.process_time() - cpu
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _iqr(values: list[float]) -> float:
    """Interquartile range of per-round values, times or ratios (0 for fewer than two): the scatter within
    this process, printed beside each median so a ratio can be read against it."""
    if len(values) < 2:
        return 0.0
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q3 - q1


def round_ratios(probe: list[float], plain: list[float]) -> list[float]:
    """Each ABBA round's own ratio: its two probe times over its two plain times (``probe[2r]``, ``probe[2r + 1]``
    and ``plain[2r]``, ``plain[2r + 1]`` are round ``r``'s, in the order they ran)."""
    if len(probe) != len(plain) or len(probe) % 2:
        raise ValueError(f"need two times per side per round, got {len(probe)} probe and {len(plain)} plain")
    return [(probe[i] + probe[i + 1]) / (plain[i] + plain[i + 1]) for i in range(0, len(probe), 2)]


def measure(model: nn.Module, x: torch.Tensor, rounds: int, device: str) -> dict[str, float]:
    def plain() -> None:
        functional.reset_net(model)
        with torch.inference_mode():
            model(x)

    def probed() -> None:
        profile_one_pass(model, x)  # a fresh probe per call, reports included: what a user pays

    def synops() -> None:
        from spikingjelly.activation_based.op_counter import DispatchCounterMode, SynOpCounter

        functional.reset_net(model)
        with torch.no_grad(), DispatchCounterMode([SynOpCounter()]):
            model(x)

    for _ in range(2):  # warm-up (kernels, caches, reach maps)
        plain()
        probed()
    sides = (("plain", plain), ("probe", probed), ("probe", probed), ("plain", plain))
    if device == "cpu":
        sides += (("synops", synops),)
    walls: dict[str, list[float]] = {side: [] for side, _ in sides}
    cpus: dict[str, list[float]] = {side: [] for side, _ in sides}
    for _ in range(rounds):
        for side, fn in sides:
            w, c = timed(fn, device)
            walls[side].append(w)
            cpus[side].append(c)
    med = {k: statistics.median(v) for k, v in walls.items()}
    spread = {k: _iqr(v) / med[k] for k, v in walls.items()}
    paired = round_ratios(walls["probe"], walls["plain"])
    cpu = {k: statistics.median(v) for k, v in cpus.items()}
    peak = cuda_peak_bytes if device == "cuda" else cpu_peak_bytes
    mem = {}
    for side, fn in (("plain", plain), ("probe", probed)):
        functional.reset_net(model)  # free the previous call's neuron states before the window opens
        mem[side] = peak(fn)
    return {
        "plain_ms": med["plain"] * 1e3, "probe_ms": med["probe"] * 1e3, "time_ratio": statistics.median(paired),
        "time_ratio_iqr": _iqr(paired), "ratio_of_medians": med["probe"] / med["plain"],
        "plain_iqr": spread["plain"], "probe_iqr": spread["probe"],
        "cpu_ratio": cpu["probe"] / cpu["plain"],
        "synops_ratio": med["synops"] / med["plain"] if "synops" in med else None, "plain_peak_mib": mem["plain"] / 2**20,
        "probe_peak_mib": mem["probe"] / 2**20, "mem_ratio": mem["probe"] / mem["plain"],
    }


def run(setting: Setting, mem_limit: float, names: list[str] | None) -> bool:
    """Measure every model of ``setting``; print one line each; True when all are within the limits."""
    torch.set_num_threads(setting.threads)
    print(f"{setting.device}: T={T}, {setting.size}x{setting.size}, batch {setting.batch}, width {setting.width}, "
          f"{setting.rounds} ABBA rounds" + (f", {torch.get_num_threads()} threads" if setting.device == "cpu" else
                                             f", {torch.cuda.get_device_name()}"))
    ok_all = True
    for name, extra in setting.models.items():
        if names and name not in names:
            continue
        torch.manual_seed(0)
        model = create_model(name, num_classes=1000 if setting.input_size == "imagenet" else 10,
                             input_size=setting.input_size, width=setting.width, **extra).to(setting.device)
        shape = (T, setting.batch, 3, setting.size, setting.size)
        calibrate_bn(model, [torch.rand(shape, device=setting.device) for _ in range(2)])
        model.eval()
        x = torch.rand(shape, device=setting.device)
        r = measure(model, x, setting.rounds, setting.device)
        ok = r["time_ratio"] <= setting.time_limit and r["mem_ratio"] <= mem_limit
        ok_all &= ok
        cpu = (f" (cpu x{r['cpu_ratio']:.3f}; SynOpCounter x{r['synops_ratio']:.3f})"
               if setting.device == "cpu" else "")
        print(f"  {name:26s} plain {r['plain_ms']:8.1f} ms (IQR {100 * r['plain_iqr']:.1f}%)  "
              f"probe {r['probe_ms']:8.1f} ms (IQR {100 * r['probe_iqr']:.1f}%)  "
              f"time x{r['time_ratio']:.3f} (IQR {r['time_ratio_iqr']:.3f}; of the medians x{r['ratio_of_medians']:.3f}; "
              f"target x{setting.time_limit:.2f}){cpu}  peak {r['plain_peak_mib']:.1f} -> {r['probe_peak_mib']:.1f} MiB "
              f"x{r['mem_ratio']:.3f}  {'ok' if ok else 'OVER LIMIT'}")
        del model, x
        if setting.device == "cuda":
            torch.cuda.empty_cache()
    return ok_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--models", nargs="*", default=None, help="restrict to these model names")
    parser.add_argument("--devices", nargs="*", default=["cpu", "cuda"])
    parser.add_argument("--gpu-batch", type=int, default=32)
    parser.add_argument("--gpu-rounds", type=int, default=5)
    parser.add_argument("--time-limit", type=float, default=1.10)
    parser.add_argument("--gpu-time-limit", type=float, default=1.15)
    parser.add_argument("--mem-limit", type=float, default=1.10)
    args, _ = parser.parse_known_args(argv)  # nox passes the same extra arguments to every benchmark
    settings = []
    if "cpu" in args.devices:
        for threads in args.threads:
            settings.append(Setting("cpu", {"sew_resnet18": {}, "spikeformer_dvs_cifar10": {"T": T, "in_channels": 3}},
                                    32, "cifar", args.batch, args.width, args.rounds, args.time_limit, threads))
    if "cuda" in args.devices:
        if torch.cuda.is_available():
            settings.append(Setting("cuda", {"sew_resnet18": {}, "spikeformer_imagenet": {"T": T}}, 224, "imagenet",
                                    args.gpu_batch, 1.0, args.gpu_rounds, args.gpu_time_limit, args.threads[-1]))
        else:
            print("cuda: not available, skipped")
    ok = True
    for setting in settings:
        ok &= run(setting, args.mem_limit, args.models)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
