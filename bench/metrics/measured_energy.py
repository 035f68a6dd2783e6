"""Energy measured by hardware counters while the model runs (plug-in ``measured_energy``).

Measurement-grade counters, read directly:

- GPU (CUDA cases): NVML's total-energy counter ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since
  driver load; Volta and newer) of the case's GPU, matched to torch's device by UUID. Whole board.
- CPU: RAPL package counters ``/sys/class/powercap/intel-rapl:N/energy_uj`` where present and
  readable (often root-only). Whole socket: every process on it counts.

Procedure: ``warmup`` forwards, then an **idle phase** of ``idle_s`` (default 0.5 s) with no work,
polling each counter every ``poll_s`` (default 5 ms): idle power is the mean of
``nvmlDeviceGetPowerUsage`` samples (GPU) or the counter's delta over the idle phase (RAPL),
and the counter's update period is estimated as the median time between changes of its value.
Since the GPU has just worked, this is a *warm* idle. Then the **window**: forwards of the fixed
sample batch back to back (state reset before each, no synchronisation between them) until at
least ``min_window_s`` (default 1 s) has passed, at least ``min_batches`` (default 10) have run,
and the window spans enough counter updates that the quantisation error, at most one update
period at each end, is below ``max_rel_error`` (default 1%): window >= 2 x period / max_rel_error,
capped at ``max_window_s`` (default 30 s). The device is synchronised before the first and after
the last counter read; the window's length is host wall-clock time between those reads.

Per counter: gross energy = counter delta; net energy = gross - idle power x window; both divided
by the samples run in the window (batches x batch size). ``*_energy_rel_error_bound`` is
2 x period / window. Net energy <= 0 (work not resolved above idle) is None with a reason.

Estimates (opt-in: ``codecarbon = true``): codecarbon's ``OfflineEmissionsTracker`` (no network;
``country_iso_code`` option, default "USA"; ``tracking_mode`` default "process") over its own
window of forwards. Its GPU figure comes from NVML; its CPU figure is measured only with RAPL and
otherwise an estimate from TDP and CPU load; its RAM figure is always a model estimate; CO2 is
always energy x the country's grid intensity. Estimates go to ``*_estimate_*`` fields only, and
each part's method is recorded in ``codecarbon_{cpu,gpu,ram}_method``.
"""

from __future__ import annotations

import inspect
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from spikingjelly.activation_based import functional as sj_functional

from bench.contract import Field, Option, Tolerance
from bench.devices import nvml, nvml_handle
from bench.metrics.base import CaseContext, register_metric
from bench.metrics.timing import inference_fn

RAPL_ROOT = Path("/sys/class/powercap")
KWH_TO_J = 3.6e6


class EnergyCounter(Protocol):
    """A cumulative energy counter: ``read_j`` in joules; ``power_w`` where the hardware reports power."""

    name: str
    method: str

    def read_j(self) -> float: ...

    def power_w(self) -> float | None: ...


class NvmlCounter:
    """NVML's total-energy counter (mJ) and power reading (mW) of one GPU."""

    name = "gpu"
    method = "NVML nvmlDeviceGetTotalEnergyConsumption (whole board)"

    def __init__(self, pynvml: Any, handle: Any):
        self.pynvml = pynvml
        self.handle = handle

    def read_j(self) -> float:
        return self.pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1e3

    def power_w(self) -> float | None:
        return self.pynvml.nvmlDeviceGetPowerUsage(self.handle) / 1e3


class RaplCounter:
    """Sum of RAPL package counters (µJ), unwrapped at each domain's ``max_energy_range_uj``.

    Reads must come less than one wrap period apart (minutes at full power), as they do here.
    """

    name = "cpu"
    method = "RAPL package counters (whole socket, all processes)"

    def __init__(self, domains: list[Path]):
        self.domains = domains
        self.ranges = [int((d / "max_energy_range_uj").read_text()) for d in domains]
        self.last = [self._raw(d) for d in domains]
        self.total_uj = 0

    @staticmethod
    def _raw(domain: Path) -> int:
        return int((domain / "energy_uj").read_text())

    def read_j(self) -> float:
        for i, domain in enumerate(self.domains):
            raw = self._raw(domain)
            step = raw - self.last[i]
            self.total_uj += step if step >= 0 else step + self.ranges[i]
            self.last[i] = raw
        return self.total_uj / 1e6

    def power_w(self) -> float | None:
        return None


def find_rapl(root: Path | None = None) -> tuple[RaplCounter | None, str]:
    """The RAPL package counter under ``root`` (default ``RAPL_ROOT``), or None and why not."""
    root = RAPL_ROOT if root is None else root
    domains = sorted(d for d in root.glob("intel-rapl:*") if d.name.count(":") == 1) if root.is_dir() else []
    packages = []
    for domain in domains:
        try:
            name = (domain / "name").read_text().strip()
        except OSError:
            continue
        if name.startswith("package"):
            packages.append(domain)
    if not packages:
        return None, f"no RAPL package domain at {root}/intel-rapl:* (no CPU energy counter on this machine)"
    try:
        return RaplCounter(packages), ""
    except (OSError, ValueError) as err:
        return None, f"RAPL present but unreadable ({type(err).__name__}: {err}); energy_uj is root-only on recent kernels"


@dataclass
class IdleReading:
    """One counter's idle phase: mean idle power, how it was obtained, the counter's update period."""

    power_w: float | None
    method: str
    period_s: float | None
    times: list[float] = field(default_factory=list, repr=False)
    energies: list[float] = field(default_factory=list, repr=False)


def update_period(times: list[float], energies: list[float]) -> float | None:
    """Median time between changes of a polled counter; None with fewer than two changes.

    Polling every ``poll_s`` cannot resolve periods shorter than ``poll_s``: the estimate is then
    ``poll_s``, an upper bound, which only makes the window longer.
    """
    changes = [t for t, e, prev in zip(times[1:], energies[1:], energies, strict=False) if e != prev]
    if len(changes) < 2:
        return None
    return statistics.median(b - a for a, b in zip(changes, changes[1:], strict=False))


def idle_phase(counters: list[EnergyCounter], *, idle_s: float, poll_s: float,
               clock: Callable[[], float], sleep: Callable[[float], None]) -> dict[str, IdleReading]:
    """Poll every counter for ``idle_s`` while nothing runs (see the module docstring)."""
    polls: dict[str, IdleReading] = {c.name: IdleReading(None, "", None) for c in counters}
    powers: dict[str, list[float]] = {c.name: [] for c in counters}
    start = clock()
    while True:
        now = clock()
        for c in counters:
            polls[c.name].times.append(now)
            polls[c.name].energies.append(c.read_j())
            p = c.power_w()
            if p is not None:
                powers[c.name].append(p)
        if now - start >= idle_s:
            break
        sleep(poll_s)
    for c in counters:
        r = polls[c.name]
        r.period_s = update_period(r.times, r.energies)
        if powers[c.name]:
            r.power_w = statistics.fmean(powers[c.name])
            r.method = f"mean of {len(powers[c.name])} power readings over {idle_s:g} s idle"
        elif r.times[-1] > r.times[0] and r.energies[-1] > r.energies[0]:
            r.power_w = (r.energies[-1] - r.energies[0]) / (r.times[-1] - r.times[0])
            r.method = f"counter delta over {r.times[-1] - r.times[0]:.3g} s idle"
        else:
            r.method = "counter did not advance during the idle phase"
    return polls


def required_window(idle: dict[str, IdleReading], *, min_window_s: float, max_rel_error: float,
                    max_window_s: float) -> float:
    """Window length: at least ``min_window_s`` and 2 x period / max_rel_error; ``max_window_s``
    when a counter's period is unknown (it did not change twice while idle); never above ``max_window_s``."""
    need = min_window_s
    for r in idle.values():
        need = max(need, max_window_s if r.period_s is None else 2 * r.period_s / max_rel_error)
    return min(need, max_window_s)


@dataclass
class Window:
    seconds: float
    batches: int
    deltas_j: dict[str, float]


def energy_window(run_batch: Callable[[], Any], counters: list[EnergyCounter], *, sync: Callable[[], None],
                  required_s: float, min_batches: int, clock: Callable[[], float]) -> Window:
    """Run batches back to back until ``required_s`` and ``min_batches`` are both reached; counter deltas."""
    sync()
    start = clock()
    first = {c.name: c.read_j() for c in counters}
    batches = 0
    while True:
        run_batch()
        batches += 1
        if batches >= min_batches and clock() - start >= required_s:
            break
    sync()
    last = {c.name: c.read_j() for c in counters}
    seconds = clock() - start
    return Window(seconds, batches, {name: last[name] - first[name] for name in first})


def counter_fields(prefix: str, counter: EnergyCounter, idle: IdleReading, window: Window,
                   batch_size: int) -> dict[str, Any]:
    """Gross and net-of-idle joules per sample for one counter, with the figures they come from."""
    samples = window.batches * batch_size
    gross = window.deltas_j[counter.name]
    out: dict[str, Any] = {
        f"{prefix}_energy_method": counter.method,
        f"{prefix}_energy_j": round(gross, 6),
        f"{prefix}_avg_power_w": round(gross / window.seconds, 4),
        f"{prefix}_idle_power_w": None if idle.power_w is None else round(idle.power_w, 4),
        f"{prefix}_idle_method": idle.method,
        f"{prefix}_counter_period_s": idle.period_s,
        f"{prefix}_energy_rel_error_bound": None if idle.period_s is None else 2 * idle.period_s / window.seconds,
    }
    if idle.period_s is None:
        out[f"{prefix}_counter_period_s_why"] = "the counter did not change twice during the idle phase"
        out[f"{prefix}_energy_rel_error_bound_why"] = out[f"{prefix}_counter_period_s_why"]
    if gross <= 0:
        why = f"the counter did not advance over the {window.seconds:.3g} s window"
        return {**out, **_none(why, f"{prefix}_energy_j_per_sample", f"{prefix}_energy_net_j_per_sample")}
    out[f"{prefix}_energy_j_per_sample"] = gross / samples
    if idle.power_w is None:
        out.update(_none(f"idle power unknown ({idle.method})", f"{prefix}_energy_net_j_per_sample"))
        return out
    net = gross - idle.power_w * window.seconds
    if net <= 0:
        why = (f"work not resolved above idle: gross {gross:.4g} J <= idle {idle.power_w:.4g} W x "
               f"{window.seconds:.4g} s")
        out.update(_none(why, f"{prefix}_energy_net_j_per_sample"))
    else:
        out[f"{prefix}_energy_net_j_per_sample"] = net / samples
    return out


def _none(why: str, *names: str) -> dict[str, Any]:
    return {k: v for n in names for k, v in ((n, None), (f"{n}_why", why))}


COUNTER_FIELDS = ("energy_j_per_sample", "energy_net_j_per_sample", "idle_power_w", "avg_power_w")


def measure_counters(run_batch: Callable[[], Any], counters: list[EnergyCounter], *, sync: Callable[[], None],
                     batch_size: int, settings: dict[str, Any], clock: Callable[[], float] = time.perf_counter,
                     sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Idle phase, then the window, then per-counter fields ``<name>_*`` and shared ``energy_*`` fields."""
    sync()
    idle = idle_phase(counters, idle_s=settings["idle_s"], poll_s=settings["poll_s"], clock=clock, sleep=sleep)
    required = required_window(idle, min_window_s=settings["min_window_s"],
                               max_rel_error=settings["max_rel_error"], max_window_s=settings["max_window_s"])
    window = energy_window(run_batch, counters, sync=sync, required_s=required,
                           min_batches=settings["min_batches"], clock=clock)
    out: dict[str, Any] = {
        "energy_window_s": round(window.seconds, 6),
        "energy_required_window_s": round(required, 6),
        "energy_batches": window.batches,
        "energy_samples": window.batches * batch_size,
    }
    for c in counters:
        out.update(counter_fields(c.name, c, idle[c.name], window, batch_size))
    return out


CPU_METHODS = {
    "intel_rapl": ("RAPL (measured)", True),
    "intel_power_gadget": ("Intel Power Gadget (measured)", True),
    "windows_emi": ("Windows Energy Meter Interface / RAPL (measured)", True),
    "cpu_load": ("TDP x CPU load estimate (not measured)", False),
    "constant": ("TDP constant estimate (not measured)", False),
}


def codecarbon_methods(tracker: Any) -> tuple[str, bool, str | None, str]:
    """(cpu method, cpu measured?, gpu method or None, ram method) from codecarbon 3.x's tracker.

    Reads the hardware objects the tracker set up (``tracker._hardware``: CPU has ``_mode``,
    GPU is NVML/AMDSMI, RAM is codecarbon's power model or a user constant).
    """
    cpu_method, cpu_measured, gpu_method = "no CPU tracked", False, None
    ram_method = "RAM power model estimate (not measured)"
    for hw in getattr(tracker, "_hardware", []):
        kind = type(hw).__name__
        if kind == "CPU":
            mode = getattr(hw, "_mode", "unknown")
            cpu_method, cpu_measured = CPU_METHODS.get(mode, (f"{mode} (unclassified: treated as estimate)", False))
        elif kind == "GPU":
            gpu_method = "NVML via codecarbon (measured)"
        elif kind == "RAM" and getattr(hw, "_force_ram_power", None) is not None:
            ram_method = "user constant (not measured)"
    return cpu_method, cpu_measured, gpu_method, ram_method


CODECARBON_FIELDS = ("codecarbon_cpu_energy_j_per_sample", "codecarbon_cpu_energy_estimate_j_per_sample",
                     "codecarbon_gpu_energy_j_per_sample", "codecarbon_ram_energy_estimate_j_per_sample",
                     "codecarbon_co2_estimate_g_per_sample")


def codecarbon_fields(run_batch: Callable[[], Any], sync: Callable[[], None], batch_size: int, *,
                      gpu_nvml_index: int | None, settings: dict[str, Any]) -> dict[str, Any]:
    """codecarbon over its own window of forwards; measured and estimated parts in distinct fields."""
    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    from codecarbon import OfflineEmissionsTracker
    from codecarbon.emissions_tracker import BaseEmissionsTracker

    # codecarbon 3.x deprecates save_to_file in favour of output_methods (empty: write nothing).
    no_output = ({"output_methods": []} if "output_methods" in inspect.signature(BaseEmissionsTracker).parameters
                 else {"save_to_file": False})
    kwargs: dict[str, Any] = {"country_iso_code": settings["country_iso_code"], **no_output,
                              "log_level": "error", "measure_power_secs": settings["measure_power_secs"],
                              "tracking_mode": settings["tracking_mode"]}
    if gpu_nvml_index is not None:
        kwargs["gpu_ids"] = [gpu_nvml_index]
    setup_start = time.perf_counter()
    tracker = OfflineEmissionsTracker(**kwargs)
    tracker.start()
    setup_s = time.perf_counter() - setup_start
    sync()
    start, batches = time.perf_counter(), 0
    try:
        while batches < settings["min_batches"] or time.perf_counter() - start < settings["codecarbon_window_s"]:
            run_batch()
            batches += 1
        sync()
    finally:
        tracker.stop()
    data = tracker.final_emissions_data
    samples = batches * batch_size
    cpu_method, cpu_measured, gpu_method, ram_method = codecarbon_methods(tracker)
    per_sample = {part: getattr(data, f"{part}_energy") * KWH_TO_J / samples for part in ("cpu", "gpu", "ram")}
    out: dict[str, Any] = {
        "codecarbon_setup_s": round(setup_s, 3),
        "codecarbon_window_s": round(time.perf_counter() - start, 3),
        "codecarbon_samples": samples,
        "codecarbon_country": settings["country_iso_code"],
        "codecarbon_tracking_mode": settings["tracking_mode"],
        "codecarbon_cpu_method": cpu_method,
        "codecarbon_gpu_method": gpu_method or "none (no GPU tracked)",
        "codecarbon_ram_method": ram_method,
        "codecarbon_ram_energy_estimate_j_per_sample": per_sample["ram"],
        "codecarbon_co2_estimate_g_per_sample": data.emissions * 1e3 / samples,
    }
    if cpu_measured:
        out["codecarbon_cpu_energy_j_per_sample"] = per_sample["cpu"]
        out.update(_none(f"CPU energy is measured ({cpu_method})", "codecarbon_cpu_energy_estimate_j_per_sample"))
    else:
        out["codecarbon_cpu_energy_estimate_j_per_sample"] = per_sample["cpu"]
        out.update(_none(f"codecarbon has no CPU counter here: {cpu_method}", "codecarbon_cpu_energy_j_per_sample"))
    if gpu_method is not None and gpu_nvml_index is not None:
        out["codecarbon_gpu_energy_j_per_sample"] = per_sample["gpu"]
    else:
        out.update(_none("not a GPU case, or codecarbon found no NVIDIA GPU", "codecarbon_gpu_energy_j_per_sample"))
    return out


def _settings(ctx: CaseContext) -> dict[str, Any]:
    opt = ctx.option
    return {
        "warmup": int(opt("measured_energy", "warmup", 3)),
        "idle_s": float(opt("measured_energy", "idle_s", 0.5)),
        "poll_s": float(opt("measured_energy", "poll_s", 0.005)),
        "min_window_s": float(opt("measured_energy", "min_window_s", 1.0)),
        "min_batches": int(opt("measured_energy", "min_batches", 10)),
        "max_rel_error": float(opt("measured_energy", "max_rel_error", 0.01)),
        "max_window_s": float(opt("measured_energy", "max_window_s", 30.0)),
        "codecarbon": bool(opt("measured_energy", "codecarbon", False)),
        "codecarbon_window_s": float(opt("measured_energy", "codecarbon_window_s", 5.0)),
        "country_iso_code": str(opt("measured_energy", "country_iso_code", "USA")),
        "tracking_mode": str(opt("measured_energy", "tracking_mode", "process")),
        "measure_power_secs": float(opt("measured_energy", "measure_power_secs", 1.0)),
    }


def _gpu_counter(device: torch.device) -> tuple[NvmlCounter | None, int | None, str]:
    """The case GPU's NVML counter and NVML index, or None and why not."""
    if device.type != "cuda":
        return None, None, f"device {device} is not a CUDA GPU: no GPU energy counter"
    try:
        pynvml = nvml()
        handle = nvml_handle(device, pynvml)
        counter = NvmlCounter(pynvml, handle)
        counter.read_j()
        counter.power_w()
        return counter, pynvml.nvmlDeviceGetIndex(handle), ""
    except Exception as err:  # NVMLError_NotSupported (pre-Volta, MIG), missing driver, ...
        return None, None, f"NVML energy counter unavailable: {type(err).__name__}: {err}"


def _counter_fields(prefix: str, what: str, kind: str) -> tuple[Field, ...]:
    """The fields one hardware counter produces (``gpu_*`` from NVML, ``cpu_*`` from RAPL)."""
    return (
        Field(f"{prefix}_energy_j_per_sample", f"measured {what} energy / sample", "", "joules", "lower",
              f"gross {what} energy per sample from the hardware counter over the timed window", headline=True,
              per_device=True, device_kind=kind, tolerance=Tolerance(rel=0.3, better="lower", same_device=True)),
        Field(f"{prefix}_energy_net_j_per_sample", f"measured {what} energy above idle / sample", "", "joules",
              "lower", "gross minus idle power x window, per sample", per_device=True, device_kind=kind),
        Field(f"{prefix}_energy_j", f"{what} energy over the window", "J", "sig", per_device=True, device_kind=kind),
        Field(f"{prefix}_avg_power_w", f"{what} average power", "W", "sig", per_device=True, device_kind=kind),
        Field(f"{prefix}_idle_power_w", f"{what} idle power", "W", "sig", per_device=True, device_kind=kind),
        Field(f"{prefix}_idle_method", f"{what} idle method", fmt="text", per_device=True, device_kind=kind),
        Field(f"{prefix}_energy_method", f"{what} energy method", fmt="text", per_device=True, device_kind=kind),
        Field(f"{prefix}_counter_period_s", f"{what} counter period", "s", "sig", per_device=True, device_kind=kind),
        Field(f"{prefix}_energy_rel_error_bound", f"{what} energy error bound", "", "percent", per_device=True,
              device_kind=kind),
    )


FIELDS = (
    *_counter_fields("gpu", "GPU", "cuda"),
    *_counter_fields("cpu", "CPU", "cpu"),
    Field("energy_window_s", "energy window", "s", "sig", per_device=True),
    Field("energy_required_window_s", "required window", "s", "sig", per_device=True),
    Field("energy_batches", "energy batches", fmt="int", per_device=True),
    Field("energy_samples", "energy samples", fmt="int", per_device=True),
    *(Field(name, name.replace("_", " "), "", "joules" if name.endswith("_j_per_sample") else "sig",
            description="codecarbon: an estimate unless its method is a hardware counter", per_device=True)
      for name in CODECARBON_FIELDS),
    *(Field(name, name.replace("_", " "), fmt="text", per_device=True) for name in (
        "codecarbon_cpu_method", "codecarbon_gpu_method", "codecarbon_ram_method", "codecarbon_country",
        "codecarbon_tracking_mode")),
    Field("codecarbon_setup_s", "codecarbon setup", "s", "sig", per_device=True),
    Field("codecarbon_window_s", "codecarbon window", "s", "sig", per_device=True),
    Field("codecarbon_samples", "codecarbon samples", fmt="int", per_device=True),
)
OPTIONS = (
    Option("warmup", int, 3, "untimed batches before measuring", minimum=0, maximum=10_000),
    Option("idle_s", float, 0.5, "idle phase before the window (s)", minimum=0.0, maximum=3600.0),
    Option("poll_s", float, 0.005, "counter polling interval (s)", minimum=1e-4, maximum=10.0),
    Option("min_window_s", float, 1.0, "shortest measurement window (s)", minimum=0.0, maximum=3600.0),
    Option("min_batches", int, 10, "fewest batches in the window", minimum=1, maximum=1_000_000),
    Option("max_rel_error", float, 0.01, "counter resolution / window at most", minimum=1e-6, maximum=1.0),
    Option("max_window_s", float, 30.0, "longest measurement window (s)", minimum=0.01, maximum=86_400.0),
    Option("codecarbon", bool, False, "add codecarbon's figures (estimates unless its method is a counter)"),
    Option("codecarbon_window_s", float, 5.0, "codecarbon window (s)", minimum=0.1, maximum=86_400.0),
    Option("country_iso_code", str, "USA", "codecarbon's country (carbon intensity)"),
    Option("tracking_mode", str, "process", "codecarbon tracking mode", choices=("process", "machine")),
    Option("measure_power_secs", float, 1.0, "codecarbon power sampling interval (s)", minimum=0.01, maximum=3600.0),
)


@register_metric("measured_energy", "GPU (NVML) and CPU (RAPL) energy counters over a timed window; "
                                    "optional codecarbon estimates", deterministic=False,
                 fields=FIELDS, options=OPTIONS)
def measured_energy(ctx: CaseContext) -> dict[str, Any]:
    """Joules per sample from hardware energy counters, gross and net of idle (see the module docstring)."""
    settings = _settings(ctx)
    model = ctx.model.eval()
    inputs, _ = ctx.sample_batch()
    run = inference_fn(model, inputs)

    def sync() -> None:
        if ctx.device.type == "cuda":
            torch.cuda.synchronize(ctx.device)

    gpu, gpu_index, gpu_why = _gpu_counter(ctx.device)
    cpu, cpu_why = find_rapl()
    counters: list[EnergyCounter] = [c for c in (gpu, cpu) if c is not None]
    out: dict[str, Any] = {}
    with torch.inference_mode():
        for _ in range(settings["warmup"]):
            run()
        if counters:
            out.update(measure_counters(run, counters, sync=sync, batch_size=ctx.batch_size, settings=settings))
        if gpu is None:
            out.update(_none(gpu_why, *(f"gpu_{f}" for f in COUNTER_FIELDS)))
        if cpu is None:
            out.update(_none(cpu_why, *(f"cpu_{f}" for f in COUNTER_FIELDS)))
        if settings["codecarbon"]:
            try:
                out.update(codecarbon_fields(run, sync, ctx.batch_size, gpu_nvml_index=gpu_index, settings=settings))
            except Exception as err:  # codecarbon setup touches many system interfaces
                out.update(_none(f"codecarbon failed: {type(err).__name__}: {err}", *CODECARBON_FIELDS))
    sj_functional.reset_net(model)
    return out
