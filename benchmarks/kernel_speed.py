"""Eager latency per family with our fused neuron paths, with the torch reference path, and in spikingjelly.

Families at T=4: Spiking ResNet-18, SEW-ResNet-18 (ADD), MS-ResNet-18, DANet-a50 (the smallest registered
DANet), Spikeformer (ImageNet, ParametricLIAF), DSR PreAct-ResNet-18 (ImageNet, DSR-IF). Three variants:

- ``fused``: our model as the harness runs it (``inference_mode``): spikingjelly's fused op for IF/LIF/PLIF,
  with a stand-in surrogate where the configured one (MS-ResNet's Rect) has no kernel; our Triton kernels
  for ParametricLIAF and DSR nodes on CUDA (``bench.models.neurons``);
- ``reference``: the same model under ``bench.models.neurons.fused_kernels(False)``: the torch reference for
  those nodes (nodes whose surrogate has a kernel keep spikingjelly's choice);
- ``spikingjelly``: its zoo net where it has the same net (``spiking_resnet18``, ``sew_resnet18`` with IF +
  ATan; ``ms_resnet18`` given an ATan surrogate so that it may use its kernel: its best backend in
  inference, which it picks itself), weights copied from it into ours (``zoo_speed.copy_weights``).

Timing: ``bench.metrics.timing.measure`` (CUDA events on GPUs, ``perf_counter_ns`` on CPU) of
``reset_net`` + forward under ``inference_mode``, eval mode; p50 per round, median over rounds; the variants
take turns within each round. Checks (train-mode BN under ``no_grad``, so the nets fire; Spikeformer
without stochastic depth; DSR thresholds 1.0, not the 6.0 init, at which the untrained net is
silent): the fused output against the reference output, ours against spikingjelly's:
the largest difference is printed beside the largest output, and more than 1e-4 x max(1, |out|) is a miss.
Targets on CUDA: MS-ResNet-18 fused within ``--ms-ratio`` (1.15) of Spiking ResNet-18 fused, and ours
fused within ``--max-ratio`` (1.05, timing noise) of spikingjelly's for every net it has. On the CPU the
figures are printed and only the output checks count. Exit 1 on a miss.

Defaults: CUDA B=64, 224 px; CPU B=2, 64 px, 1 thread (``--batch``, ``--size``, ``--threads``,
``--rounds``, ``--min-runs``, ``--min-time``, ``--families``). Run: ``python benchmarks/kernel_speed.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, surrogate
from spikingjelly.activation_based.model import ms_resnet as sj_ms

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zoo_speed import copy_weights, pairs  # noqa: E402 - sibling script, found through the line above

from bench.metrics.timing import device_timer, inference_fn, measure, neuron_implementation  # noqa: E402
from bench.models.neurons import fused_kernels  # noqa: E402
from bench.models.registry import create_model  # noqa: E402

VARIANTS = ("fused", "reference", "spikingjelly")


@dataclass
class Family:
    """How to build our net and, where spikingjelly has the same net, theirs."""

    ours: Callable[[], nn.Module]
    theirs: Callable[[], nn.Module] | None = None
    theirs_mean: bool = False  # theirs returns the mean over T instead of [T, B, K]


def sj_ms_resnet18_atan() -> nn.Module:
    """spikingjelly's MS-ResNet-18 with ATan in place of Rect: with a kernel-capable surrogate it can use its
    fused kernel in inference (its best backend); the forward is the same."""
    return sj_ms.ms_resnet18(surrogate_function=surrogate.ATan())


def families(T: int, size: int) -> dict[str, Family]:
    zoo = pairs()
    return {
        "Spiking ResNet-18": Family(zoo["spiking_resnet18"][0], zoo["spiking_resnet18"][1]),
        "SEW-ResNet-18": Family(zoo["sew_resnet18 (ADD)"][0], zoo["sew_resnet18 (ADD)"][1]),
        "MS-ResNet-18": Family(zoo["ms_resnet18"][0], sj_ms_resnet18_atan, theirs_mean=True),
        "DANet-a50": Family(lambda: create_model("danet_a50")),
        "Spikeformer ImageNet": Family(lambda: create_model("spikeformer_imagenet", T=T, img_size=size,
                                                            drop_path_rate=0.0)),
        # Thresholds 1.0 instead of the 6.0 init: at 6.0 the untrained net does not fire, and the output check
        # would compare zeros. The time does not depend on the threshold's value.
        "DSR PreAct-ResNet-18 ImageNet": Family(lambda: create_model("dsr_preact_resnet18_imagenet", T=T,
                                                                     neuron_params={"v_threshold": 1.0})),
    }


def run_variant(variant: str, ours: nn.Module, theirs: nn.Module | None,
                fn: Callable[[nn.Module], object]) -> object:
    """``fn`` applied to the model of ``variant`` (the reference with our fused paths off)."""
    if variant == "spikingjelly":
        return fn(theirs)
    with fused_kernels(variant == "fused"):
        return fn(ours)


def p50_ms(model: nn.Module, x: torch.Tensor, device: torch.device, args: argparse.Namespace) -> float:
    with torch.inference_mode():
        stats = measure(inference_fn(model.eval(), x), warmup=args.warmup, min_runs=args.min_runs,
                        min_time_s=args.min_time, timer=device_timer(device)[0])
    return stats.p50 * 1e3


def forward_firing(model: nn.Module, x: torch.Tensor, mean: bool) -> torch.Tensor:
    """One forward in train mode (batch-statistics BN) without gradients, then back to eval."""
    torch.manual_seed(0)
    with torch.no_grad():
        functional.reset_net(model.train())
        out = model(x)
    model.eval()
    return out.mean(0) if mean else out


def cell(value: float | None, digits: int) -> str:
    """A 9-wide table cell; "-" where there is no value."""
    return f"{'-':>9}" if value is None else f"{value:9.{digits}f}"


def largest_diff(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    return (a - b).abs().max().item(), b.abs().max().item()


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--T", type=int, default=4)
    parser.add_argument("--batch", type=int, default=None, help="default 64 on CUDA, 2 on CPU")
    parser.add_argument("--size", type=int, default=None, help="default 224 on CUDA, 64 on CPU")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--min-runs", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=None,
                        help="seconds per measurement (default 1.0 on CUDA, 0.2 on CPU)")
    parser.add_argument("--ms-ratio", type=float, default=1.15)
    parser.add_argument("--max-ratio", type=float, default=1.05)
    parser.add_argument("--families", default="",
                        help="comma-separated substrings of family names (default: all)")
    # The nox `bench` session passes the same arguments to every benchmark script.
    args, ignored = parser.parse_known_args(argv)
    if ignored:
        print(f"ignoring arguments meant for other benchmarks: {ignored}")
    cuda = args.device.startswith("cuda")
    args.batch = args.batch or (64 if cuda else 2)
    args.size = args.size or (224 if cuda else 64)
    args.min_time = args.min_time if args.min_time is not None else (1.0 if cuda else 0.2)
    return args


def measure_family(family: Family, x: torch.Tensor, device: torch.device,
                   args: argparse.Namespace) -> tuple[dict[str, float], list[str], list[str]]:
    """Median p50 per variant, report lines (paths and output checks) and misses."""
    torch.manual_seed(0)
    ours = family.ours().to(device)
    theirs = family.theirs().to(device) if family.theirs else None
    lines, missed = [], []
    if theirs is not None:
        copy_weights(theirs, ours)
    fused_out = forward_firing(ours, x, family.theirs_mean)
    checks = {"reference": run_variant("reference", ours, theirs,
                                       lambda m: forward_firing(m, x, family.theirs_mean))}
    if theirs is not None:
        checks["spikingjelly"] = forward_firing(theirs, x, False)
    if not fused_out.abs().max() > 0:
        missed.append("the output is all zeros: the output check would be vacuous")
    for name, out in checks.items():
        diff, scale = largest_diff(fused_out, out)
        lines.append(f"  fused vs {name}: max|diff| {diff:.2e}, max|out| {scale:.2f}")
        if diff > 1e-4 * max(1.0, scale):
            missed.append(f"fused output differs from {name} by {diff:.2e}")
    variants = [v for v in VARIANTS if v != "spikingjelly" or theirs is not None]
    for v in variants[:2]:
        impl = run_variant(v, ours, theirs, lambda m: neuron_implementation(m, device))
        lines.append(f"  {v} neurons: {impl}")
    times: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(args.rounds):
        for v in variants[r % len(variants):] + variants[:r % len(variants)]:
            times[v].append(run_variant(v, ours, theirs, lambda m: p50_ms(m, x, device, args)))
    del ours, theirs
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {v: statistics.median(t) for v, t in times.items()}, lines, missed


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(args.batch, 3, args.size, args.size).unsqueeze(0).repeat(args.T, 1, 1, 1, 1).to(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"{name}: T={args.T} B={args.batch} 3x{args.size}x{args.size}, eager, inference_mode, "
          f"p50 per round, median of {args.rounds} rounds")
    print(f"{'family':<31} {'fused ms':>9} {'ref ms':>9} {'sj ms':>9} {'ref/fused':>9} {'fused/sj':>9}")
    wanted = [w.strip().lower() for w in args.families.split(",") if w.strip()]
    results: dict[str, dict[str, float]] = {}
    missed: list[str] = []
    for fam_name, family in families(args.T, args.size).items():
        if wanted and not any(w in fam_name.lower() for w in wanted):
            continue
        med, lines, fam_missed = measure_family(family, x, device, args)
        results[fam_name] = med
        sj = med.get("spikingjelly")
        print(f"{fam_name:<31} {med['fused']:9.2f} {med['reference']:9.2f} {cell(sj, 2)} "
              f"{med['reference'] / med['fused']:9.3f} {cell(med['fused'] / sj if sj else None, 3)}")
        for line in lines:
            print(line)
        missed += [f"{fam_name}: {m}" for m in fam_missed]
        if device.type == "cuda" and sj and med["fused"] / sj > args.max_ratio:
            missed.append(f"{fam_name}: fused / spikingjelly = {med['fused'] / sj:.3f} > {args.max_ratio}")
    ms, spiking = results.get("MS-ResNet-18"), results.get("Spiking ResNet-18")
    if ms and spiking:
        ratio = ms["fused"] / spiking["fused"]
        print(f"MS-ResNet-18 / Spiking ResNet-18 (fused): {ratio:.3f} (target on CUDA <= {args.ms_ratio})")
        if device.type == "cuda" and ratio > args.ms_ratio:
            missed.append(f"MS-ResNet-18 / Spiking ResNet-18 = {ratio:.3f} > {args.ms_ratio}")
    if device.type != "cuda":
        print("CPU: figures only; the speed targets apply on CUDA")
    for line in missed:
        print("MISSED", line)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
