"""Peak memory of one inference batch (plug-in ``memory``).

GPU (CUDA devices): ``torch.cuda.reset_peak_memory_stats`` then one forward, then
``max_memory_allocated``. ``gpu_peak_allocated_mib`` is the absolute peak of tensors held by
torch's caching allocator (weights, input and activations); ``gpu_peak_growth_mib`` is that peak
minus what was allocated just before the forward (the forward's own working memory);
``gpu_peak_reserved_mib`` adds the allocator's cached blocks. CUDA context and library workspaces
outside the allocator are not counted.

CPU RSS (every device, since host code runs there too): a background thread reads the resident
set size from ``/proc/self/statm`` every ``interval_s`` (default 0.5 ms) during ``repeats``
forwards (default 3), also once right before the forwards return their outputs.
``cpu_peak_rss_growth_mib`` is the highest sample minus the RSS just before. Limits: a peak shorter
than the sampling interval can be missed (the figure is a lower bound); memory that glibc's
allocator reuses from earlier freed blocks does not show as growth; other threads of this
process (data loading) count too. ``resource.getrusage``'s ru_maxrss is not used: it is a
process-lifetime peak and would only show growth above any earlier peak. tracemalloc is not
used: it does not see torch's allocations. One warm-up forward runs first so one-off lazy
initialisation (thread pools, op registration) is not counted.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import torch
from spikingjelly.activation_based import functional as sj_functional

from bench.contract import Field, Option, Tolerance
from bench.metrics.base import CaseContext, CaseWork, register_metric
from bench.metrics.timing import inference_fn

MIB = 2**20
STATM = "/proc/self/statm"


def read_rss_bytes(path: str = STATM) -> int:
    """Resident set size of this process: statm's second field (pages) times the page size."""
    with open(path, encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class RssSampler:
    """Samples RSS in a daemon thread between ``start()`` and ``stop()``; ``peak`` is the highest sample."""

    def __init__(self, interval_s: float = 5e-4, read: Callable[[], int] = read_rss_bytes):
        self.interval_s = interval_s
        self.read = read
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        self.peak = max(self.peak, self.read())
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def start(self) -> None:
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()


def cpu_rss_growth(run: Callable[[], Any], repeats: int = 3, interval_s: float = 5e-4,
                   read: Callable[[], int] = read_rss_bytes) -> tuple[int, int]:
    """Peak RSS growth in bytes over ``repeats`` calls of ``run`` (each output sampled before it is freed),
    and the number of RSS samples taken."""
    baseline = read()
    sampler = RssSampler(interval_s, read)
    sampler.start()
    try:
        for _ in range(repeats):
            out = run()
            sampler.sample()  # the outputs are still alive here
            del out
    finally:
        sampler.stop()
    return max(0, sampler.peak - baseline), sampler.samples


def gpu_peak(run: Callable[[], Any], device: torch.device) -> dict[str, float]:
    """Peak allocated / reserved CUDA memory of one call of ``run`` and the growth above the start."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    out = run()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    reserved = torch.cuda.max_memory_reserved(device)
    del out
    return {
        "gpu_peak_allocated_mib": round(peak / MIB, 3),
        "gpu_peak_growth_mib": round((peak - before) / MIB, 3),
        "gpu_peak_reserved_mib": round(reserved / MIB, 3),
        "gpu_allocated_before_mib": round(before / MIB, 3),
    }


GPU_FIELDS = ("gpu_peak_allocated_mib", "gpu_peak_growth_mib", "gpu_peak_reserved_mib", "gpu_allocated_before_mib")


FIELDS = (
    Field("gpu_peak_allocated_mib", "GPU peak allocated", "MiB", "fixed1", "lower",
          "torch.cuda.max_memory_allocated over one inference batch", per_device=True, device_kind="cuda",
          tolerance=Tolerance(rel=0.1, better="lower", same_device=True)),
    Field("gpu_peak_growth_mib", "GPU peak growth", "MiB", "fixed1", "lower", "peak minus allocated before",
          per_device=True, device_kind="cuda"),
    Field("gpu_peak_reserved_mib", "GPU peak reserved", "MiB", "fixed1", "lower", per_device=True,
          device_kind="cuda"),
    Field("gpu_allocated_before_mib", "GPU allocated before", "MiB", "fixed1", per_device=True, device_kind="cuda"),
    Field("cpu_peak_rss_growth_mib", "CPU RSS growth", "MiB", "fixed1", "lower",
          "peak resident-set growth during forwards (sampled: a lower bound)", per_device=True, device_kind="cpu"),
    Field("cpu_rss_samples", "RSS samples", fmt="int", per_device=True, device_kind="cpu"),
    Field("cpu_rss_method", "RSS method", fmt="text", per_device=True, device_kind="cpu"),
)
OPTIONS = (
    Option("repeats", int, 3, "forwards sampled for the CPU RSS peak", minimum=1, maximum=10_000),
    Option("interval_s", float, 5e-4, "RSS sampling interval (s)", minimum=1e-5, maximum=10.0),
)


def cost(w: CaseWork) -> float:
    """A warm-up forward, one more on CUDA (the peak), ``repeats`` sampled for the RSS peak."""
    return (1 + (w.case.device != "cpu") + w.option("memory", "repeats")) * w.forward_s(w.case.T)


@register_metric("memory", "peak GPU memory and peak CPU RSS growth of one inference batch", deterministic=False,
                 fields=FIELDS, options=OPTIONS, cost=cost)
def memory(ctx: CaseContext) -> dict[str, Any]:
    """Peak GPU memory (CUDA) and sampled CPU RSS growth; options: repeats, interval_s."""
    repeats = int(ctx.option("memory", "repeats", 3))
    interval_s = float(ctx.option("memory", "interval_s", 5e-4))
    model = ctx.model.eval()
    inputs, _ = ctx.sample_batch()
    run = inference_fn(model, inputs)
    out: dict[str, Any] = {}
    with torch.inference_mode():
        run()  # warm-up: lazy initialisation is not the model's memory
        if ctx.device.type == "cuda":
            out.update(gpu_peak(run, ctx.device))
        else:
            why = f"device {ctx.device} is not a CUDA GPU"
            out.update({k: v for f in GPU_FIELDS for k, v in ((f, None), (f"{f}_why", why))})
        if os.path.exists(STATM):
            growth, samples = cpu_rss_growth(run, repeats, interval_s)
            out["cpu_peak_rss_growth_mib"] = round(growth / MIB, 3)
            out["cpu_rss_samples"] = samples
        else:
            out["cpu_peak_rss_growth_mib"] = None
            out["cpu_peak_rss_growth_mib_why"] = f"{STATM} is not readable on this OS"
    sj_functional.reset_net(model)
    out["cpu_rss_method"] = f"/proc/self/statm sampled every {interval_s * 1e3:g} ms over {repeats} forwards (lower bound)"
    return out
