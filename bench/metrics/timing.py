"""Wall-clock latency and throughput of one inference batch (plug-in ``latency``).

Conventions (stated in every result through these docstrings and the returned fields):

- One *run* is one real inference of the case's fixed sample batch: ``reset_net(model)`` then
  ``model(inputs)``, under ``torch.inference_mode()``, model in eval mode. The reset is inside
  the timed region because a deployed SNN must clear its membrane state before every new input.
- Warm-up runs (default 3) are executed and discarded. Timed runs then continue until **both**
  ``min_runs`` runs are done **and** their summed time reaches ``min_time_s`` (or ``max_runs``
  is hit, recorded in ``stopped_by``). The time budget counts the timed runs only, not the
  harness's bookkeeping between them.
- CPU runs are timed with ``time.perf_counter_ns``. CUDA runs are timed with CUDA events
  recorded on the current stream around the run, then synchronised: the figure is the GPU-side
  time from the first to the last kernel boundary, host launch stalls included.
- Percentiles use numpy's ``linear`` method (Hyndman-Fan type 7, numpy's default): for sorted
  samples x and n runs, p = x[h] interpolated at h = (n - 1) q. ``std`` is the sample standard
  deviation (ddof=1); ``iqr`` is p75 - p25; ``rel_iqr`` is iqr / p50.
- Throughput is ``batch_size / p50`` (samples per second at the median batch latency), not total
  samples over total time, so one slow outlier run does not move it.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional as sj_functional

from bench.contract import Field, Option, Tolerance
from bench.devices import describe_device
from bench.metrics.base import CaseContext, CaseWork, register_metric
from bench.models.neurons import fused_implementation, runs_fused_on, stands_in_for_surrogate

RunTimer = Callable[[Callable[[], Any]], float]


@dataclass(frozen=True)
class TimingStats:
    """Per-run latency statistics in seconds (see the module docstring for the conventions)."""

    samples_s: tuple[float, ...]
    warmup: int
    stopped_by: str

    @property
    def runs(self) -> int:
        return len(self.samples_s)

    @property
    def total_s(self) -> float:
        return math.fsum(self.samples_s)

    def percentile(self, q: float) -> float:
        """q in [0, 100], numpy 'linear' interpolation."""
        return float(np.percentile(np.asarray(self.samples_s), q, method="linear"))

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p90(self) -> float:
        return self.percentile(90)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    @property
    def mean(self) -> float:
        return self.total_s / self.runs

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1); 0.0 for a single run."""
        return float(np.std(self.samples_s, ddof=1)) if self.runs > 1 else 0.0

    @property
    def min(self) -> float:
        return min(self.samples_s)

    @property
    def max(self) -> float:
        return max(self.samples_s)

    @property
    def iqr(self) -> float:
        return self.percentile(75) - self.percentile(25)

    def throughput(self, batch_size: int) -> float:
        """Samples per second at the median latency: ``batch_size / p50``."""
        return batch_size / self.p50

    def as_fields(self, prefix: str = "latency") -> dict[str, float | int | str | None]:
        """Milliseconds, rounded to ns resolution, under ``<prefix>_*`` names."""
        ms = {"p50": self.p50, "p90": self.p90, "p99": self.p99, "mean": self.mean, "std": self.std,
              "min": self.min, "max": self.max, "iqr": self.iqr}
        fields: dict[str, float | int | str | None] = {f"{prefix}_{k}_ms": round(v * 1e3, 6) for k, v in ms.items()}
        if self.p50 > 0:
            fields[f"{prefix}_rel_iqr"] = round(self.iqr / self.p50, 6)
        else:
            fields[f"{prefix}_rel_iqr"] = None
            fields[f"{prefix}_rel_iqr_why"] = "median latency is 0 (below the timer's resolution)"
        return fields


def host_timer(clock: Callable[[], int] = time.perf_counter_ns,
               sync: Callable[[], None] | None = None) -> RunTimer:
    """Time one call with a nanosecond ``clock``; ``sync`` (if any) runs before both clock reads."""

    def timer(fn: Callable[[], Any]) -> float:
        if sync is not None:
            sync()
        start = clock()
        fn()
        if sync is not None:
            sync()
        return (clock() - start) * 1e-9

    return timer


def cuda_event_timer(device: torch.device) -> RunTimer:
    """Time one call with a pair of CUDA events on ``device``'s current stream (seconds)."""
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize(device)

    def timer(fn: Callable[[], Any]) -> float:
        with torch.cuda.device(device):
            start.record()
            fn()
            end.record()
        end.synchronize()
        return start.elapsed_time(end) * 1e-3  # elapsed_time is in milliseconds

    return timer


def measure(fn: Callable[[], Any], *, warmup: int, min_runs: int, min_time_s: float,
            max_runs: int | None = None, clock: Callable[[], int] = time.perf_counter_ns,
            sync: Callable[[], None] | None = None, timer: RunTimer | None = None) -> TimingStats:
    """Warm up, then time ``fn`` until ``min_runs`` runs AND ``min_time_s`` of timed runs are reached.

    ``timer`` times one call (default: :func:`host_timer` over ``clock``/``sync``; CUDA passes
    :func:`cuda_event_timer`). ``max_runs`` caps the runs even when ``min_time_s`` is not reached.
    """
    if min_runs < 1:
        raise ValueError("min_runs must be at least 1")
    if max_runs is not None and max_runs < min_runs:
        raise ValueError(f"max_runs={max_runs} is below min_runs={min_runs}")
    timer = timer or host_timer(clock, sync)
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    total = 0.0
    while True:
        elapsed = timer(fn)
        samples.append(elapsed)
        total += elapsed
        if len(samples) >= min_runs and total >= min_time_s:
            stopped_by = "min_runs and min_time_s reached"
            break
        if max_runs is not None and len(samples) >= max_runs:
            stopped_by = "max_runs"
            break
    return TimingStats(tuple(samples), warmup, stopped_by)


def inference_fn(model: nn.Module, inputs: torch.Tensor) -> Callable[[], torch.Tensor]:
    """One real SNN inference: reset the membrane state, then run the multi-step forward.

    Call it inside ``torch.inference_mode()``.
    """

    def run() -> torch.Tensor:
        sj_functional.reset_net(model)
        return model(inputs)

    return run


def device_timer(device: torch.device) -> tuple[RunTimer, str]:
    """The timer for a device and its description."""
    if device.type == "cuda":
        return cuda_event_timer(device), "CUDA events (synchronised)"
    return host_timer(), "time.perf_counter_ns"


# spikingjelly 2.0 neuron classes whose multi-step forward calls a registered, device-dispatched op.
def _registered_ops() -> dict[Callable[..., Any], str]:
    from spikingjelly.activation_based import neuron

    return {
        neuron.IFNode.multi_step_functional_forward: "if",
        neuron.LIFNode.multi_step_functional_forward: "lif",
        neuron.ParametricLIFNode.multi_step_functional_forward: "plif",
    }


def _is_neuron(module: nn.Module) -> bool:
    """A spikingjelly stateful module that is a neuron (defined in its ``neuron`` package or named *Node)."""
    from spikingjelly.activation_based import base

    cls = type(module)
    return isinstance(module, base.MemoryModule) and (
        cls.__module__.startswith("spikingjelly.activation_based.neuron") or cls.__name__.endswith("Node"))


def _surrogate_has_kernel(node: nn.Module) -> bool:
    """spikingjelly's own test: fused kernels exist only for its built-in fixed-alpha surrogates."""
    from spikingjelly._ops.surrogate import _surrogate_spec

    return _surrogate_spec(getattr(node, "surrogate_function", None)) is not None


def neuron_implementation(model: nn.Module, device: torch.device, execution: str = "eager") -> str:
    """Which neuron implementation runs for each neuron class of ``model`` on ``device`` in inference.

    spikingjelly 2.0 has no ``backend`` argument: IF/LIF/PLIF multi-step forwards call registered
    ops that dispatch on the input's device (``functional.neuron_implementation``): CPU always
    runs the torch reference; CUDA picks the first importable of native CUDA extension, Triton,
    torch (``SJ_<OP>_CUDA_IMPLEMENTATION`` overrides; compile prefers Triton). A surrogate
    without a fused kernel, ``store_v_seq=True`` or a class overriding the forward falls back to
    torch ops, except in our subclasses (``bench.models.neurons.KernelInInference``), which keep the
    op in inference on CUDA by handing it a kernel-capable surrogate (the forward does not use it). Our
    LIAF/ParametricLIAF/DSR nodes run our Triton kernel on CUDA in inference
    (``bench.models.neurons.FusedInInference``); other classes run their own torch code.
    "In inference" = autograd does not record the call (the ``latency`` metric runs under
    ``inference_mode``). Returns e.g. ``"IFNode: if op -> torch-reference"``; entries by class
    name joined by "; " (distinct descriptions under one name joined by " | ").
    """
    ops = _registered_ops()
    entries: dict[str, list[str]] = {}
    for module in model.modules():
        if _is_neuron(module):
            descriptions = entries.setdefault(type(module).__name__, [])
            text = _describe_neuron(module, ops, device, execution)
            if text not in descriptions:
                descriptions.append(text)
    if not entries:
        return "none (no spikingjelly neurons found)"
    return "; ".join(f"{k}: {' | '.join(v)}" for k, v in sorted(entries.items()))


def _describe_neuron(module: nn.Module, ops: dict[Callable[..., Any], str], device: torch.device,
                     execution: str) -> str:
    """One neuron module's implementation on ``device`` (see :func:`neuron_implementation`)."""
    op = ops.get(getattr(type(module), "multi_step_functional_forward", None))
    if getattr(module, "step_mode", "m") != "m":
        return "single-step mode: torch ops per step"
    fused = fused_implementation(module, device, execution)
    if fused is not None:
        return fused
    if op is None:
        return "own multi-step forward: torch ops"
    if getattr(module, "store_v_seq", False):
        return f"{op} op bypassed (store_v_seq): torch ops per step"
    if stands_in_for_surrogate(module) and runs_fused_on(device):
        return (f"{op} op -> {_sj_implementation(op, device, execution)} in inference (surrogate not used); "
                "torch-reference with gradients (surrogate has no fused kernel)")
    if not _surrogate_has_kernel(module):
        return f"{op} op -> torch-reference (surrogate has no fused kernel)"
    return f"{op} op -> {_sj_implementation(op, device, execution)}"


def _sj_implementation(op: str, device: torch.device, execution: str) -> str:
    """spikingjelly's choice for its registered ``op`` on ``device`` (e.g. "triton", "torch-reference")."""
    from spikingjelly.activation_based.functional import neuron_implementation as sj_impl

    try:
        return str(sj_impl(op, device, execution=execution)["implementation"])
    except (RuntimeError, ValueError) as err:
        return f"unknown ({err})"


def to_channels_last(model: nn.Module, inputs: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
    """A channels-last copy of the model and 5-D ``[T, B, C, H, W]`` inputs whose frames are NHWC.

    The copy keeps the caller's model untouched (other metrics share it). The input's frames are
    made NHWC so spikingjelly's ``flatten(0, 1)`` gives NHWC ``[T*B, C, H, W]`` to the convolutions.
    """
    if inputs.dim() != 5:
        raise ValueError(f"channels_last needs [T, B, C, H, W] inputs, got {inputs.dim()}-D")
    copied = copy.deepcopy(model).to(memory_format=torch.channels_last)
    frames = inputs.flatten(0, 1).contiguous(memory_format=torch.channels_last)
    return copied, frames.unflatten(0, inputs.shape[:2])


def _time_variant(model: nn.Module, inputs: torch.Tensor, device: torch.device,
                  settings: dict[str, Any]) -> TimingStats:
    timer = device_timer(device)[0]
    with torch.inference_mode():
        stats = measure(inference_fn(model, inputs), warmup=settings["warmup"], min_runs=settings["min_runs"],
                        min_time_s=settings["min_time_s"], max_runs=settings["max_runs"], timer=timer)
    sj_functional.reset_net(model)
    return stats


def _compiled_fields(model: nn.Module, inputs: torch.Tensor, ctx: CaseContext,
                     settings: dict[str, Any]) -> dict[str, Any]:
    """The ``torch.compile`` variant, timed like eager; compile time = first call (traced and built)."""
    names = ["latency_compiled_p50_ms", "latency_compiled_p90_ms", "latency_compiled_p99_ms",
             "latency_compiled_mean_ms", "latency_compiled_std_ms", "runs_compiled",
             "throughput_compiled_sps", "compile_time_s"]
    try:
        compiled = torch.compile(model, backend=settings["compile_backend"])
        start = time.perf_counter()
        with torch.inference_mode():
            inference_fn(compiled, inputs)()
        if ctx.device.type == "cuda":
            torch.cuda.synchronize(ctx.device)
        compile_s = time.perf_counter() - start
        stats = _time_variant(compiled, inputs, ctx.device, settings)
    except Exception as err:  # compile failures come from many layers (dynamo, inductor, compilers)
        why = f"torch.compile failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        sj_functional.reset_net(model)
        return {k: v for n in names for k, v in ((n, None), (f"{n}_why", why))}
    fields = {k.replace("latency_", "latency_compiled_"): v for k, v in stats.as_fields().items()
              if k in ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_mean_ms", "latency_std_ms")}
    return {
        **fields,
        "runs_compiled": stats.runs,
        "throughput_compiled_sps": round(stats.throughput(inputs.shape[1]), 6),
        "compile_time_s": round(compile_s, 3),
        "compile_backend": settings["compile_backend"],
        "compiled_neuron_impl": neuron_implementation(model, ctx.device, execution="compile"),
    }


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


_LATENCY_TOL = Tolerance(rel=0.5, better="lower", same_device=True)


def _ms(name: str, title: str, **kw: Any) -> Field:
    return Field(name, title, "ms", "sig", "lower", **kw)


FIELDS = (
    _ms("latency_p50_ms", "latency p50", description="median wall-clock time of one batch (reset + forward)",
        headline=True, summary=True, per_device=True, tolerance=_LATENCY_TOL),
    _ms("latency_p90_ms", "latency p90", per_device=True),
    _ms("latency_p99_ms", "latency p99", per_device=True),
    _ms("latency_mean_ms", "latency mean", per_device=True),
    _ms("latency_std_ms", "latency std", per_device=True),
    _ms("latency_min_ms", "latency min", per_device=True),
    _ms("latency_max_ms", "latency max", per_device=True),
    _ms("latency_iqr_ms", "latency IQR", per_device=True),
    Field("latency_rel_iqr", "latency IQR / p50", "", "fixed3", "lower", "scatter of the timed runs",
          per_device=True, scatter=True),
    Field("throughput_sps", "throughput", "samples/s", "sig", "higher", "batch size / p50 latency", headline=True,
          summary=True, per_device=True, tolerance=Tolerance(rel=0.5, better="higher", same_device=True)),
    Field("runs", "timed runs", fmt="int", per_device=True),
    Field("warmup", "warm-up runs", fmt="int", per_device=True),
    Field("stopped_by", "stopped by", fmt="text", per_device=True),
    Field("timed_total_s", "timed total", "s", "sig", per_device=True),
    Field("batch_size", "timed batch", fmt="int", description="samples in the timed batch (fewer than the suite's "
          "batch size when the data holds fewer)"),
    Field("threads", "CPU threads", fmt="int", per_device=True),
    Field("device_name", "device", fmt="text", per_device=True),
    Field("timer", "timer", fmt="text", per_device=True),
    Field("variant", "variant", fmt="text", per_device=True),
    Field("reset_in_timed_region", "reset timed", fmt="text", per_device=True),
    Field("neuron_impl", "neuron implementation", fmt="text", per_device=True),
    _ms("latency_compiled_p50_ms", "compiled latency p50", per_device=True),
    _ms("latency_compiled_p90_ms", "compiled latency p90", per_device=True),
    _ms("latency_compiled_p99_ms", "compiled latency p99", per_device=True),
    _ms("latency_compiled_mean_ms", "compiled latency mean", per_device=True),
    _ms("latency_compiled_std_ms", "compiled latency std", per_device=True),
    Field("runs_compiled", "compiled timed runs", fmt="int", per_device=True),
    Field("throughput_compiled_sps", "compiled throughput", "samples/s", "sig", "higher", per_device=True),
    Field("compile_time_s", "compile time", "s", "sig", "lower", per_device=True),
    Field("compile_backend", "compile backend", fmt="text", per_device=True),
    Field("compiled_neuron_impl", "compiled neuron implementation", fmt="text", per_device=True),
)
OPTIONS = (
    Option("warmup", int, 3, "untimed runs before timing", minimum=0, maximum=10_000),
    Option("min_runs", int, 10, "timed runs at least", minimum=1, maximum=1_000_000),
    Option("min_time_s", float, 1.0, "timed seconds at least", minimum=0.0, maximum=86_400.0),
    Option("max_runs", int, None, "stop after this many timed runs (default: no cap)", minimum=1),
    Option("compile", bool, False, "also time a torch.compile variant"),
    Option("compile_backend", str, "inductor", "torch.compile backend"),
    Option("channels_last", bool, False, "time the model in channels-last memory format"),
)


def cost(w: CaseWork) -> float:
    """Warm-up runs, then at least min_runs and min_time_s of timed runs (at most max_runs); again if compiled
    (the compile time itself is not counted)."""
    f = w.forward_s(w.case.T)
    runs = max(w.option("latency", "min_runs"), math.ceil(w.option("latency", "min_time_s") / f) if f else 0)
    if w.option("latency", "max_runs"):
        runs = min(runs, w.option("latency", "max_runs"))
    once = (w.option("latency", "warmup") + runs) * f
    return once * (2 if w.option("latency", "compile") else 1)


@register_metric("latency", "wall-clock latency per batch (p50/p90/p99) and throughput", deterministic=False,
                 fields=FIELDS, options=OPTIONS, cost=cost)
def latency(ctx: CaseContext) -> dict[str, Any]:
    """Latency percentiles per batch and samples/s; options: warmup, min_runs, min_time_s, max_runs,
    compile (adds a torch.compile variant), compile_backend, channels_last."""
    settings = {
        "warmup": int(ctx.option("latency", "warmup", 3)),
        "min_runs": int(ctx.option("latency", "min_runs", 10)),
        "min_time_s": float(ctx.option("latency", "min_time_s", 1.0)),
        "max_runs": _optional_int(ctx.option("latency", "max_runs", None)),
        "compile_backend": str(ctx.option("latency", "compile_backend", "inductor")),
    }
    model = ctx.model.eval()
    inputs, _ = ctx.sample_batch()
    variant = "eager"
    if ctx.option("latency", "channels_last", False):
        model, inputs = to_channels_last(model, inputs)
        variant = "eager+channels_last"
    stats = _time_variant(model, inputs, ctx.device, settings)
    _, timer_name = device_timer(ctx.device)
    out: dict[str, Any] = {
        **stats.as_fields(),
        "runs": stats.runs,
        "warmup": stats.warmup,
        "stopped_by": stats.stopped_by,
        "timed_total_s": round(stats.total_s, 6),
        # The batch actually timed: the data may hold fewer samples than the suite's batch size.
        "throughput_sps": round(stats.throughput(inputs.shape[1]), 6),
        "batch_size": inputs.shape[1],
        "threads": torch.get_num_threads(),
        "device_name": describe_device(str(ctx.device))["device_name"],
        "timer": timer_name,
        "variant": variant,
        "reset_in_timed_region": True,
        "neuron_impl": neuron_implementation(model, ctx.device),
    }
    if ctx.option("latency", "compile", False):
        out.update(_compiled_fields(model, inputs, ctx, settings))
    return out
