"""Forward-pass speed of our ResNet zoo against spikingjelly 2.0's own implementations.

Pairs (same configuration, same weights copied from theirs into ours, multi-step mode):
- ``sew_resnet18`` (cnf ADD, IF threshold 1, hard reset, detach_reset, ATan) vs
  ``spikingjelly.activation_based.model.sew_resnet.sew_resnet18``;
- ``ms_resnet18`` (LIF tau 4/3 without input decay, threshold 0.5) vs spikingjelly's
  ``model.ms_resnet.ms_resnet18`` (spikingjelly 2.0 ships an MS-ResNet; it differs from ours only in
  the surrogate width, which a forward pass does not use);
- ``spiking_resnet18`` (IF, as above) vs ``model.spiking_resnet.spiking_resnet18``.

Ours run the stem at every step here (``stem_once=False``), as spikingjelly's zoo does, so the pair
does the same work (our default runs it once for static input, as the SEW authors' code did).
Each model runs under ``torch.inference_mode()`` in eval mode with ``reset_net`` before every
forward (not timed); ours and theirs alternate within each repeat so load changes hit both. The
medians over repeats after warm-up of wall time and of process CPU time are reported with the ratios
ours/theirs (target <= 1.05). Before timing, one train-mode forward of each (batch-statistics BN, so
the nets fire) gives the largest output difference beside the largest output: a configuration check,
the difference must be ~0.
Process CPU time is the steadier figure on a shared machine; with one thread it is the work done.
The script exits 1 when outputs differ or the CPU-time ratio exceeds ``--max-ratio`` after one
longer re-measurement (on a busy 2-core machine single runs scatter by about +-5 to 9 %).

Default setting (about 25 s of CPU time; 40-75 s wall on the busy shared 2-core machine): T=4, B=8,
3x64x64 input, ImageNet stem, 1 thread for both (on a loaded 2-core machine, 2 threads mostly
measure scheduling stalls), 2 warm-up and 11 timed runs. Run: ``python benchmarks/zoo_speed.py [--T 4 --batch 8 --size 64 --threads 1 ...]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, neuron, surrogate
from spikingjelly.activation_based.model import ms_resnet as sj_ms
from spikingjelly.activation_based.model import sew_resnet as sj_sew
from spikingjelly.activation_based.model import spiking_resnet as sj_spiking

from bench.models.ms_resnet import ms_resnet
from bench.models.sew_resnet import sew_resnet
from bench.models.spiking_resnet import spiking_resnet

IF_KWARGS = {"spiking_neuron": neuron.IFNode, "surrogate_function": surrogate.ATan(), "detach_reset": True}


def multi_step(model: nn.Module) -> nn.Module:
    functional.set_step_mode(model, "m")
    return model


def pairs() -> dict[str, tuple[Callable[[], nn.Module], Callable[[], nn.Module], bool]]:
    """name -> (build ours, build theirs, whether theirs returns the mean over T instead of [T, B, K])."""
    return {
        "sew_resnet18 (ADD)": (lambda: sew_resnet(18, cnf="ADD", stem_once=False),
                               lambda: multi_step(sj_sew.sew_resnet18(cnf="ADD", **IF_KWARGS)), False),
        "ms_resnet18": (lambda: ms_resnet(18), lambda: sj_ms.ms_resnet18(), True),
        "spiking_resnet18": (lambda: spiking_resnet(18, zero_init_residual=False, stem_once=False),
                             lambda: multi_step(sj_spiking.spiking_resnet18(**IF_KWARGS)), False),
    }


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Theirs -> ours by position: both state dicts list the same tensors in the same order."""
    s, d = src.state_dict(), dst.state_dict()
    if [v.shape for v in s.values()] != [v.shape for v in d.values()]:
        raise RuntimeError("the two implementations do not have the same layers")
    dst.load_state_dict(dict(zip(d, s.values(), strict=True)))


def timed_forward(model: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """Wall and process-CPU seconds of one forward from a reset state."""
    functional.reset_net(model)
    wall, cpu = time.perf_counter(), time.process_time()
    model(x)
    return time.perf_counter() - wall, time.process_time() - cpu


def same_outputs(ours: nn.Module, theirs: nn.Module, x: torch.Tensor, theirs_mean: bool) -> tuple[float, float]:
    """Largest output difference and largest output, in train mode (batch-stat BN: the nets fire;
    at fresh eval-mode BN they barely do, and a check there would be vacuous)."""
    outs = []
    with torch.no_grad():
        for model in (ours, theirs):
            functional.reset_net(model.train())
            outs.append(model(x))
            model.eval()
    mine = outs[0].mean(0) if theirs_mean else outs[0]  # spikingjelly's MSResNet averages over T
    return (mine - outs[1]).abs().max().item(), outs[1].abs().max().item()


def measure(ours: nn.Module, theirs: nn.Module, x: torch.Tensor, warmup: int, repeats: int) -> list[float]:
    """Median wall and CPU ms of ours and theirs, runs interleaved."""
    wall: dict[str, list[float]] = {"ours": [], "theirs": []}
    cpu: dict[str, list[float]] = {"ours": [], "theirs": []}
    with torch.inference_mode():
        for i in range(warmup + repeats):
            order = (("ours", ours), ("theirs", theirs)) if i % 2 == 0 else (("theirs", theirs), ("ours", ours))
            for who, model in order:
                dt_wall, dt_cpu = timed_forward(model, x)
                if i >= warmup:
                    wall[who].append(dt_wall)
                    cpu[who].append(dt_cpu)
    return [statistics.median(d[k]) * 1e3 for d in (wall, cpu) for k in ("ours", "theirs")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--T", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--max-ratio", type=float, default=1.05, help="target for the CPU-time ratio ours/theirs")
    # The nox `bench` session passes the same arguments to every benchmark script.
    args, ignored = parser.parse_known_args()
    if ignored:
        print(f"ignoring arguments meant for other benchmarks: {ignored}")

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(args.batch, 3, args.size, args.size).unsqueeze(0).repeat(args.T, 1, 1, 1, 1)
    print(f"T={args.T} B={args.batch} input 3x{args.size}x{args.size} (ImageNet stem), "
          f"{args.threads} thread(s), median of {args.repeats} after {args.warmup} warm-up, inference_mode, eval; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'':<20} {'wall ms (median)':^24} {'process CPU ms (median)':^24}")
    print(f"{'model':<20} {'ours':>8} {'theirs':>8} {'ratio':>6} {'ours':>8} {'theirs':>8} {'ratio':>6} "
          f"{'max|diff|':>10} {'max|out|':>8}")
    missed = []
    for name, (build_ours, build_theirs, theirs_mean) in pairs().items():
        theirs = build_theirs()
        ours = build_ours()
        copy_weights(theirs, ours)
        diff, scale = same_outputs(ours, theirs, x, theirs_mean)
        repeats = args.repeats
        for attempt in range(2):  # a miss is measured once more, twice as long, before it counts
            w_ours, w_theirs, c_ours, c_theirs = measure(ours, theirs, x, args.warmup, repeats)
            label = name if attempt == 0 else f"  (re-measured x{repeats})"
            print(f"{label:<20} {w_ours:8.1f} {w_theirs:8.1f} {w_ours / w_theirs:6.3f} "
                  f"{c_ours:8.1f} {c_theirs:8.1f} {c_ours / c_theirs:6.3f} {diff:10.2e} {scale:8.2f}")
            if c_ours / c_theirs <= args.max_ratio:
                break
            repeats *= 2
        if diff > 1e-4 * max(1.0, scale):
            missed.append(f"{name}: outputs differ by {diff:.2e} (not the same configuration)")
        if c_ours / c_theirs > args.max_ratio:
            missed.append(f"{name}: CPU-time ratio {c_ours / c_theirs:.3f} > {args.max_ratio}")
    for line in missed:
        print("MISSED", line)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
