"""Energy measured by hardware counters while the model runs (plug-in ``measured_energy``).

**Figures** (per sample; one set per counter: ``gpu_*`` for the case's GPU, ``cpu_*`` for the CPU packages):

- **Primary, gross:** ``<c>_energy_j_per_sample`` = the counter's increase over the timed window divided by
  the samples run in it. The whole board's energy while the model runs, its idle draw included: what Zeus
  and the ML.ENERGY leaderboard report as energy per request.
- **Secondary, net of rest idle:** ``<c>_energy_net_j_per_sample`` = (gross - rest idle power x window) /
  samples: what the work adds to a board that would otherwise sit at rest. ``None`` with a reason when the
  work is not resolved above rest idle (gross <= rest idle x window).

**Counters.** GPU (CUDA cases): NVML's total-energy counter ``nvmlDeviceGetTotalEnergyConsumption`` (mJ
since driver load; Volta and newer; whole board) of the case's GPU, matched to torch's device by UUID.
CPU: RAPL package counters ``/sys/class/powercap/intel-rapl:N/energy_uj`` where present and readable
(often root-only; whole sockets: every process on them counts; DRAM domains are not added).

**Rest idle, once per device and process.** At the first ``measured_energy`` case on a device (a GPU by
UUID; the CPU packages), before that case's warm-up, the plug-in synchronises the device and polls the
counter every ``poll_s`` in blocks of ``idle_block_s``; a block's power is its counter increase over its
length. The board has settled when at least ``idle_min_s`` has passed and ``idle_blocks`` consecutive
blocks show no fall of more than ``idle_tolerance`` (a fraction) from one block to the next; rest idle
power is then the counter increase over those blocks divided by their length (every block's power is kept
in ``<c>_rest_idle_blocks_w``, so the settling curve can be checked). Polling stops at ``idle_s`` (at least ``idle_blocks`` blocks
are always polled); a phase stopped by the cap is recorded with ``<c>_rest_idle_settled`` false. The
reading, how long settling took, when it was taken and the counter's update period (the median time
between changes of the polled value; at most ``poll_s`` is resolved) are cached in this process and reused
by every later case on the device (``<c>_rest_idle_reused``). Never a warm idle taken right after work:
the NVML power reading averages over about a second and a board that has just worked reads far above rest
(on one H200: 78 W at rest, 120-510 W in the half second after a warm-up). The metrics listed before
``measured_energy`` in a suite run first in each case, and the model is built and moved to the device
before any metric: list ``measured_energy`` first (suites/gpu_t4.toml does) so that the first case's rest
phase comes before any forward on the device; the settling poll covers the rest. Under ``--isolate``
each case's process measures its own rest idle.

**Window.** ``warmup`` forwards, then forwards of the fixed sample batch back to back (state reset before
each, no synchronisation between them) until at least ``min_window_s`` has passed, at least
``min_batches`` have run, and the window spans enough counter updates that the quantisation error (at most
one update period at each end) is below ``max_rel_error``: window >= 2 x period / max_rel_error, capped at
``max_window_s`` (``max_window_s`` when the period is unknown). The device is synchronised before the
window opens and before it closes; its length is host wall-clock time (``perf_counter``).
``<c>_energy_rel_error_bound`` is 2 x period / window. Samples are counted from the batch actually run
(its batch dimension), so a data set smaller than the batch size gives honest per-sample figures.

**Backends** (``backend`` option; the record's ``<c>_energy_backend`` says which ran and why). ``zeus``:
Zeus (``zeus`` on PyPI, the ML.ENERGY project's measurement library) reads the counters through its device
layer (NVML, AMD SMI, RAPL) and the window is a ``ZeusMonitor`` measurement window
(``begin_window``/``end_window``). ``builtin``: our own NVML and RAPL readers, with the same semantics.
``auto`` (default) uses Zeus where it is importable and has the counter, else builtin. Checked on the
development machine (2-core AMD EPYC VM, zeus 0.16.0): it imports in about 1.3 s (it pulls scikit-learn,
pandas, httpx and amdsmi, not pydantic or tyro); NVML's library is absent, amdsmi's too, and there is no
``/sys/class/powercap`` at all, so its monitor has no device and its windows return only a time; our
builtin RAPL reader finds nothing either and says so. Zeus is kept optional for three measured reasons:
the GPU machines this project is checked on have no package index (its wheels travel in ``.whl/``); Zeus
maps a torch device index to an NVML index through ``CUDA_VISIBLE_DEVICES`` alone, while torch orders GPUs
fastest-first unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` - the plug-in checks the UUID of Zeus's handle and
falls back to builtin when it is another board; and Zeus times windows with ``time.time()`` (a settable
clock), so the window length here always comes from ``perf_counter``. Zeus's RAPL reader starts one
wrap-around polling process per package at its first read; ours unwraps between reads (reads come less
than a wrap period apart). Pre-Volta GPUs have no total-energy counter: Zeus would integrate power samples
instead; here their fields are ``None`` with that reason.

**Estimates** (opt-in: ``codecarbon = true``): codecarbon's ``OfflineEmissionsTracker`` (no network;
``country_iso_code`` option, default "USA"; ``tracking_mode`` default "process") over its own window of
forwards. Its GPU figure comes from NVML; its CPU figure is measured only with RAPL and otherwise an
estimate from TDP and CPU load; its RAM figure is always a model estimate; CO2 is always energy x the
country's grid intensity. Estimates go to ``*_estimate_*`` fields only, and each part's method is recorded
in ``codecarbon_{cpu,gpu,ram}_method``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import torch
from spikingjelly.activation_based import functional as sj_functional

from bench.contract import Field, Option, Tolerance
from bench.devices import nvml, nvml_handle, nvml_uuid, torch_uuid
from bench.metrics.base import CaseContext, CaseWork, register_metric
from bench.metrics.timing import inference_fn

RAPL_ROOT = Path("/sys/class/powercap")
KWH_TO_J = 3.6e6
BACKENDS = ("auto", "zeus", "builtin")


class EnergyCounter(Protocol):
    """A cumulative energy counter of one device.

    ``name``: field prefix ("gpu" / "cpu"); ``key``: the device's identity for the rest-idle cache;
    ``read_j``: the counter now, in joules; ``begin_window``/``end_window``: joules used in between.
    """

    name: str
    key: str
    method: str
    backend: str

    def read_j(self) -> float: ...

    def begin_window(self) -> None: ...

    def end_window(self) -> float: ...


class DeltaWindow:
    """A window as two reads of the counter (the builtin backend)."""

    _start_j: float | None = None

    def read_j(self) -> float:
        raise NotImplementedError

    def begin_window(self) -> None:
        self._start_j = self.read_j()

    def end_window(self) -> float:
        if self._start_j is None:
            raise RuntimeError("end_window without begin_window")
        start, self._start_j = self._start_j, None
        return self.read_j() - start


class NvmlCounter(DeltaWindow):
    """NVML's total-energy counter (mJ) of one GPU, read directly."""

    name = "gpu"
    method = "NVML nvmlDeviceGetTotalEnergyConsumption (whole board)"

    def __init__(self, pynvml: Any, handle: Any, key: str, backend: str = "builtin"):
        self.pynvml, self.handle, self.key, self.backend = pynvml, handle, key, backend

    def read_j(self) -> float:
        return self.pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1e3


class RaplCounter(DeltaWindow):
    """Sum of RAPL package counters (µJ), unwrapped at each domain's ``max_energy_range_uj``.

    Reads must come less than one wrap period apart (minutes at full power), as they do here.
    """

    name = "cpu"
    key = "cpu:rapl"
    method = "RAPL package counters (whole socket, all processes)"

    def __init__(self, domains: list[Path], backend: str = "builtin"):
        self.domains = domains
        self.backend = backend
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


def find_rapl(root: Path | None = None, backend: str = "builtin") -> tuple[RaplCounter | None, str]:
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
        return RaplCounter(packages, backend), ""
    except (OSError, ValueError) as err:
        return None, f"RAPL present but unreadable ({type(err).__name__}: {err}); energy_uj is root-only on recent kernels"


class ZeusWindow:
    """Counters read through a ``ZeusMonitor``; the window is a Zeus measurement window.

    Device synchronisation is ours (``sync_execution=False``), so both backends open and close their
    windows at the same points.
    """

    name: str
    key: str
    method: str
    backend: str

    def __init__(self, monitor: Any, window_key: str):
        self.monitor = monitor
        self.window_key = window_key

    def begin_window(self) -> None:
        self.monitor.begin_window(self.window_key, sync_execution=False)

    def end_window(self) -> float:
        return self._joules(self.monitor.end_window(self.window_key, sync_execution=False))

    def _joules(self, measurement: Any) -> float:
        raise NotImplementedError


class ZeusGpuCounter(ZeusWindow):
    """One GPU's NVML energy counter through Zeus (``monitor.gpus``, indices as torch's)."""

    name = "gpu"
    method = "NVML nvmlDeviceGetTotalEnergyConsumption via Zeus (whole board)"

    def __init__(self, monitor: Any, index: int, key: str, backend: str):
        super().__init__(monitor, f"snnbench-gpu{index}")
        self.index, self.key, self.backend = index, key, backend

    def read_j(self) -> float:
        return self.monitor.gpus.get_total_energy_consumption(self.index) / 1e3

    def _joules(self, measurement: Any) -> float:
        return float(measurement.gpu_energy[self.index])


class ZeusCpuCounter(ZeusWindow):
    """The sum of Zeus's RAPL package counters (``monitor.cpus``; DRAM not added)."""

    name = "cpu"
    key = "cpu:rapl"
    method = "RAPL package counters via Zeus (whole socket, all processes)"

    def __init__(self, monitor: Any, backend: str):
        super().__init__(monitor, "snnbench-cpu")
        self.backend = backend

    def read_j(self) -> float:
        return sum(self.monitor.cpus.get_total_energy_consumption(i).cpu_mj for i in self.monitor.cpu_indices) / 1e3

    def _joules(self, measurement: Any) -> float:
        return float(sum((measurement.cpu_energy or {}).values()))


def zeus_monitor_class() -> tuple[Any, str]:
    """Zeus's ``ZeusMonitor`` and a backend label; raises ImportError when Zeus is not importable."""
    import zeus
    from zeus.monitor import ZeusMonitor

    logging.getLogger("zeus").setLevel(logging.ERROR)  # it logs every device it does not find
    return ZeusMonitor, f"zeus {getattr(zeus, '__version__', '?')} (ZeusMonitor window)"


def _zeus_or_why(choice: str) -> tuple[Any | None, str, str]:
    """(ZeusMonitor class or None, Zeus's label, why Zeus is not used); ``backend = "zeus"`` demands it."""
    if choice == "builtin":
        return None, "", "backend = 'builtin'"
    try:
        cls, label = zeus_monitor_class()
    except ImportError as err:
        if choice == "zeus":
            raise RuntimeError(f"[metrics.measured_energy] backend = 'zeus' but Zeus is not importable ({err}). "
                               "Fix: pip install zeus, or set backend = 'auto' to fall back to builtin") from err
        return None, "", f"zeus not importable ({err})"
    return cls, label, ""


def _builtin_label(why_not_zeus: str) -> str:
    return f"builtin (Zeus not used: {why_not_zeus})"


def gpu_counter(device: torch.device, choice: str = "auto") -> tuple[EnergyCounter | None, int | None, str]:
    """The case GPU's counter, its NVML index and, when there is none, why not.

    The board's NVML energy counter is read once first: a board without one (pre-Volta, a MIG slice) gets
    no counter from either backend, and no Zeus monitor (which would start a power-polling process).
    """
    if device.type != "cuda":
        return None, None, f"device {device} is not a CUDA GPU: no GPU energy counter"
    try:
        pynvml = nvml()
        handle = nvml_handle(device, pynvml)
        key = f"gpu:{torch_uuid(device)}"
        index = pynvml.nvmlDeviceGetIndex(handle)
    except Exception as err:  # missing driver or library, no matching UUID, ...
        return None, None, f"NVML unavailable: {type(err).__name__}: {err}"
    builtin = NvmlCounter(pynvml, handle, key)
    try:
        builtin.read_j()
    except Exception as err:  # NVMLError_NotSupported: pre-Volta boards, MIG slices
        return None, index, f"NVML energy counter unavailable: {type(err).__name__}: {err}"
    monitor_cls, label, why = _zeus_or_why(choice)
    if monitor_cls is not None:
        counter, why = _zeus_gpu(monitor_cls, label, device, key, pynvml)
        if counter is not None:
            return counter, index, ""
        if choice == "zeus":
            return None, index, f"backend = 'zeus': {why}"
    builtin.backend = _builtin_label(why)
    return builtin, index, ""


def _zeus_gpu(monitor_cls: Any, label: str, device: torch.device, key: str,
              pynvml: Any) -> tuple[ZeusGpuCounter | None, str]:
    """A Zeus counter for ``device`` when Zeus sees that very board (same UUID) with an energy counter."""
    index = device.index or 0
    try:
        monitor = monitor_cls(gpu_indices=[index], cpu_indices=[])
        board = monitor.gpus.gpus[index]
    except Exception as err:  # no NVML for Zeus, index out of its range, ...
        return None, f"Zeus has no GPU {index} ({type(err).__name__}: {err})"
    theirs, ours = nvml_uuid(board.handle, pynvml), key.split(":", 1)[1]
    if theirs != ours:
        return None, (f"Zeus's GPU {index} is another board (UUID {theirs}, torch's is {ours}): set "
                      "CUDA_DEVICE_ORDER=PCI_BUS_ID")
    if not monitor.gpus.supports_get_total_energy_consumption(index):
        return None, "Zeus reports no total-energy counter on this GPU (pre-Volta)"
    return ZeusGpuCounter(monitor, index, key, label), ""


def cpu_counter(choice: str = "auto", root: Path | None = None) -> tuple[EnergyCounter | None, str]:
    """The CPU packages' RAPL counter (Zeus's where it reads RAPL, else ours), or None and why not."""
    monitor_cls, label, why = _zeus_or_why(choice)
    if monitor_cls is not None:
        try:
            monitor = monitor_cls(gpu_indices=[], cpu_indices=None)
            if monitor.cpu_indices:
                return ZeusCpuCounter(monitor, label), ""
            why = "Zeus found no readable RAPL package"
        except Exception as err:  # RAPL permission errors and the like
            why = f"Zeus cannot read RAPL ({type(err).__name__}: {err})"
        if choice == "zeus":
            return None, f"backend = 'zeus': {why}"
    counter, builtin_why = find_rapl(root, _builtin_label(why))
    return counter, builtin_why + (f"; {why}" if counter is None and monitor_cls is not None else "")


@dataclass
class RestIdle:
    """One device's rest-idle phase (see the module docstring), cached per process by counter key."""

    power_w: float | None
    settled: bool
    settle_s: float
    blocks_w: list[float]
    period_s: float | None
    measured_at: str
    method: str
    why: str = ""


_REST_IDLE: dict[str, RestIdle] = {}


def update_period(times: list[float], energies: list[float]) -> float | None:
    """Median time between changes of a polled counter; None with fewer than two changes.

    Polling every ``poll_s`` cannot resolve periods shorter than ``poll_s``: the estimate is then
    ``poll_s``, an upper bound, which only makes the window longer.
    """
    changes = [t for t, e, prev in zip(times[1:], energies[1:], energies, strict=False) if e != prev]
    if len(changes) < 2:
        return None
    return statistics.median(b - a for a, b in zip(changes, changes[1:], strict=False))


def settled(blocks_w: list[float], n: int, tolerance: float) -> bool:
    """True when the last ``n`` block powers show no fall of more than ``tolerance`` (a fraction) between
    neighbours: the board has stopped cooling down."""
    if len(blocks_w) < n:
        return False
    last = blocks_w[-n:]
    return all(b >= a * (1 - tolerance) for a, b in zip(last, last[1:], strict=False))


@dataclass
class _Poll:
    """Polls of one counter during the rest phase: every sample, and block boundaries (sample indices)."""

    times: list[float] = field(default_factory=list)
    energies: list[float] = field(default_factory=list)
    bounds: list[int] = field(default_factory=list)
    blocks_w: list[float] = field(default_factory=list)
    done: bool = False


def rest_idle_phase(counters: list[EnergyCounter], *, settings: dict[str, Any], clock: Callable[[], float],
                    sleep: Callable[[float], None]) -> dict[str, RestIdle]:
    """Poll every counter until each has settled or ``idle_s`` has passed (see the module docstring)."""
    block_s, n, tol = settings["idle_block_s"], settings["idle_blocks"], settings["idle_tolerance"]
    polls = {c.key: _Poll() for c in counters}
    start = clock()
    block_start = start
    while True:
        now = clock()
        for c in counters:
            p = polls[c.key]
            p.times.append(now)
            p.energies.append(c.read_j())
            if not p.bounds:
                p.bounds.append(0)
        if now - block_start >= block_s:
            block_start = now
            for c in counters:
                p = polls[c.key]
                if p.done:
                    continue
                i, j = p.bounds[-1], len(p.times) - 1
                p.blocks_w.append((p.energies[j] - p.energies[i]) / (p.times[j] - p.times[i]))
                p.bounds.append(j)
                p.done = now - start >= settings["idle_min_s"] and settled(p.blocks_w, n, tol)
            capped = now - start >= settings["idle_s"] and all(len(p.blocks_w) >= n for p in polls.values())
            if capped or all(p.done for p in polls.values()):
                break
        sleep(settings["poll_s"])
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {key: _rest_reading(p, n, stamp) for key, p in polls.items()}


def _rest_reading(p: _Poll, n: int, stamp: str) -> RestIdle:
    """Rest power over the last ``n`` blocks of one counter's polls."""
    i, j = p.bounds[-n - 1], p.bounds[-1]
    settle_s = p.times[j] - p.times[0]
    period = update_period(p.times, p.energies)
    blocks = [round(w, 4) for w in p.blocks_w]
    how = (f"counter increase over the last {n} of {len(p.blocks_w)} blocks "
           f"({p.times[j] - p.times[i]:.3g} s){'' if p.done else ', not settled by the idle_s cap'}")
    if p.energies[-1] == p.energies[0]:
        why = f"the counter did not advance in {settle_s:.3g} s of rest polling"
        return RestIdle(None, p.done, settle_s, blocks, period, stamp, how, why)
    power = (p.energies[j] - p.energies[i]) / (p.times[j] - p.times[i])
    return RestIdle(power, p.done, settle_s, blocks, period, stamp, how)


def rest_idle(counters: list[EnergyCounter], *, sync: Callable[[], None], settings: dict[str, Any],
              clock: Callable[[], float], sleep: Callable[[float], None]) -> tuple[dict[str, RestIdle], set[str]]:
    """Each counter's rest idle: the process's cached reading, else measured now; and the keys measured now."""
    todo = [c for c in counters if c.key not in _REST_IDLE]
    if todo:
        sync()
        _REST_IDLE.update(rest_idle_phase(todo, settings=settings, clock=clock, sleep=sleep))
    return {c.key: _REST_IDLE[c.key] for c in counters}, {c.key for c in todo}


def required_window(periods: list[float | None], *, min_window_s: float, max_rel_error: float,
                    max_window_s: float) -> float:
    """Window length: at least ``min_window_s`` and 2 x period / max_rel_error; ``max_window_s``
    when a counter's period is unknown (it did not change twice while polled); never above ``max_window_s``."""
    need = min_window_s
    for period in periods:
        need = max(need, max_window_s if period is None else 2 * period / max_rel_error)
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
    for c in counters:
        c.begin_window()
    batches = 0
    while True:
        run_batch()
        batches += 1
        if batches >= min_batches and clock() - start >= required_s:
            break
    sync()
    deltas = {c.name: c.end_window() for c in counters}
    return Window(clock() - start, batches, deltas)


def counter_fields(counter: EnergyCounter, rest: RestIdle, measured_here: bool, window: Window,
                   batch_size: int) -> dict[str, Any]:
    """Gross and net-of-rest-idle joules per sample for one counter, with the figures they come from."""
    prefix = counter.name
    samples = window.batches * batch_size
    gross = window.deltas_j[counter.name]
    period = rest.period_s
    out: dict[str, Any] = {
        f"{prefix}_energy_method": counter.method,
        f"{prefix}_energy_backend": counter.backend,
        f"{prefix}_energy_j": round(gross, 6),
        f"{prefix}_avg_power_w": round(gross / window.seconds, 4),
        f"{prefix}_rest_idle_power_w": None if rest.power_w is None else round(rest.power_w, 4),
        f"{prefix}_rest_idle_settled": rest.settled,
        f"{prefix}_rest_idle_settle_s": round(rest.settle_s, 3),
        f"{prefix}_rest_idle_blocks_w": rest.blocks_w,
        f"{prefix}_rest_idle_method": rest.method,
        f"{prefix}_rest_idle_measured_at": rest.measured_at,
        f"{prefix}_rest_idle_reused": not measured_here,
        f"{prefix}_counter_period_s": period,
        f"{prefix}_energy_rel_error_bound": None if period is None else 2 * period / window.seconds,
    }
    if rest.power_w is None:
        out[f"{prefix}_rest_idle_power_w_why"] = rest.why
    if period is None:
        out[f"{prefix}_counter_period_s_why"] = "the counter did not change twice during the rest-idle polling"
        out[f"{prefix}_energy_rel_error_bound_why"] = out[f"{prefix}_counter_period_s_why"]
    if gross <= 0:
        why = f"the counter did not advance over the {window.seconds:.3g} s window"
        return {**out, **_none(why, f"{prefix}_energy_j_per_sample", f"{prefix}_energy_net_j_per_sample")}
    out[f"{prefix}_energy_j_per_sample"] = gross / samples
    if rest.power_w is None:
        out.update(_none(f"rest idle power unknown: {rest.why}", f"{prefix}_energy_net_j_per_sample"))
        return out
    net = gross - rest.power_w * window.seconds
    if net <= 0:
        why = (f"work not resolved above rest idle: gross {gross:.4g} J <= rest idle {rest.power_w:.4g} W x "
               f"{window.seconds:.4g} s")
        out.update(_none(why, f"{prefix}_energy_net_j_per_sample"))
    else:
        out[f"{prefix}_energy_net_j_per_sample"] = net / samples
    return out


def _none(why: str, *names: str) -> dict[str, Any]:
    return {k: v for n in names for k, v in ((n, None), (f"{n}_why", why))}


COUNTER_FIELDS = ("energy_j_per_sample", "energy_net_j_per_sample", "rest_idle_power_w", "avg_power_w")


def measure_counters(run_batch: Callable[[], Any], counters: list[EnergyCounter], *, sync: Callable[[], None],
                     batch_size: int, settings: dict[str, Any], warmup: Callable[[], None] = lambda: None,
                     clock: Callable[[], float] = time.perf_counter,
                     sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Rest idle (cached per device), the warm-up, the window; per-counter ``<name>_*`` and ``energy_*`` fields."""
    rest, measured_now = rest_idle(counters, sync=sync, settings=settings, clock=clock, sleep=sleep)
    warmup()
    required = required_window([rest[c.key].period_s for c in counters], min_window_s=settings["min_window_s"],
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
        out.update(counter_fields(c, rest[c.key], c.key in measured_now, window, batch_size))
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


def _counter_fields(prefix: str, what: str, kind: str) -> tuple[Field, ...]:
    """The fields one hardware counter produces (``gpu_*`` from NVML, ``cpu_*`` from RAPL)."""
    dev = {"per_device": True, "device_kind": kind}
    return (
        Field(f"{prefix}_energy_j_per_sample", f"measured {what} energy / sample", "", "joules", "lower",
              f"PRIMARY figure: gross {what} energy per sample, the hardware counter's increase over the timed "
              "window / samples (whole board, idle draw included; as Zeus and the ML.ENERGY leaderboard report)",
              headline=True, tolerance=Tolerance(rel=0.3, better="lower", same_device=True), **dev),
        Field(f"{prefix}_energy_net_j_per_sample", f"measured {what} energy above rest idle / sample", "", "joules",
              "lower", "SECONDARY figure: (gross - rest idle power x window) / samples; rest idle measured once per "
              "device and process after the board settled, before the first case's warm-up", **dev),
        Field(f"{prefix}_energy_j", f"{what} energy over the window", "J", "sig", **dev),
        Field(f"{prefix}_avg_power_w", f"{what} average power", "W", "sig", "none",
              "counter increase / window length", **dev),
        Field(f"{prefix}_rest_idle_power_w", f"{what} rest idle power", "W", "sig", "none",
              "power of the settled, unloaded board (counter increase over the last settled blocks)", **dev),
        Field(f"{prefix}_rest_idle_settled", f"{what} rest idle settled", fmt="text",
              description="false: the idle_s cap stopped the settling poll first", **dev),
        Field(f"{prefix}_rest_idle_settle_s", f"{what} rest idle polling", "s", "sig",
              description="time the rest-idle poll ran until the board settled (or the cap)", **dev),
        Field(f"{prefix}_rest_idle_method", f"{what} rest idle method", fmt="text", **dev),
        Field(f"{prefix}_rest_idle_measured_at", f"{what} rest idle measured at", fmt="text", **dev),
        Field(f"{prefix}_rest_idle_reused", f"{what} rest idle reused", fmt="text",
              description="true: measured at an earlier case on this device in this process", **dev),
        Field(f"{prefix}_energy_method", f"{what} energy method", fmt="text", **dev),
        Field(f"{prefix}_energy_backend", f"{what} energy backend", fmt="text",
              description="zeus (a ZeusMonitor window) or builtin, and why Zeus was not used", **dev),
        Field(f"{prefix}_counter_period_s", f"{what} counter period", "s", "sig", **dev),
        Field(f"{prefix}_energy_rel_error_bound", f"{what} energy error bound", "", "percent",
              description="2 x counter period / window: the counter's quantisation, at most", **dev),
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
    Option("warmup", int, 3, "untimed batches before the window", minimum=0, maximum=10_000),
    Option("backend", str, "auto", "counter reader: zeus (ZeusMonitor), builtin (our NVML/RAPL), auto (zeus "
           "where importable)", choices=BACKENDS),
    Option("idle_s", float, 60.0, "longest rest-idle settling poll (s), once per device and process; at least "
           "idle_blocks blocks are polled", minimum=0.0, maximum=3600.0),
    Option("idle_min_s", float, 5.0, "shortest rest-idle poll (s): a board that holds its power for a while "
           "after work before it drops is not taken as settled sooner", minimum=0.0, maximum=3600.0),
    Option("idle_block_s", float, 1.0, "rest-idle block length (s): one power figure per block",
           minimum=0.01, maximum=600.0),
    Option("idle_blocks", int, 3, "consecutive non-falling blocks that make the board settled", minimum=2,
           maximum=1000),
    Option("idle_tolerance", float, 0.02, "a block falls when its power is below the previous block's by more "
           "than this fraction", minimum=0.0, maximum=1.0),
    Option("poll_s", float, 0.005, "counter polling interval during the rest-idle phase (s)", minimum=1e-4,
           maximum=10.0),
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


def _settings(ctx: CaseContext) -> dict[str, Any]:
    """Every option's value: the suite's (validated when it loaded), else the declared default."""
    return {o.name: ctx.option("measured_energy", o.name, o.default) for o in OPTIONS}


@functools.cache
def rapl_readable() -> bool:
    """Whether this machine has a readable CPU energy counter (RAPL), once per process (the estimate's question)."""
    return find_rapl()[0] is not None


def cost(w: CaseWork) -> float:
    """Rest idle (at least idle_min_s, first case on a device), warm-up, then a window of at least min_window_s
    and min_batches (at most max_window_s; a coarse counter lengthens it); codecarbon's window when asked. On
    CPU the window runs only where RAPL is readable."""
    f = w.forward_s(w.case.T)
    seconds = w.option("measured_energy", "codecarbon_window_s") if w.option("measured_energy", "codecarbon") else 0
    if w.case.device != "cpu" or rapl_readable():  # NVML counts energy on every GPU since Volta
        window = max(w.option("measured_energy", "min_window_s"), w.option("measured_energy", "min_batches") * f)
        seconds += min(window, w.option("measured_energy", "max_window_s")) + w.option("measured_energy", "warmup") * f
        if w.first_on_device:
            seconds += min(w.option("measured_energy", "idle_min_s"), w.option("measured_energy", "idle_s"))
    return seconds


@register_metric("measured_energy", "GPU (NVML) and CPU (RAPL) energy counters over a timed window, through Zeus "
                                    "or our own readers: gross and net of rest idle; optional codecarbon estimates",
                 deterministic=False, fields=FIELDS, options=OPTIONS, cost=cost)
def measured_energy(ctx: CaseContext) -> dict[str, Any]:
    """Joules per sample from hardware energy counters, gross and net of rest idle (see the module docstring)."""
    settings = _settings(ctx)
    model = ctx.model.eval()
    inputs, _ = ctx.sample_batch()
    samples_per_batch = int(inputs.shape[1])  # [T, B, ...]: the batch actually run, even if the data is short
    run = inference_fn(model, inputs)

    def sync() -> None:
        if ctx.device.type == "cuda":
            torch.cuda.synchronize(ctx.device)

    def warmup() -> None:
        for _ in range(settings["warmup"]):
            run()

    gpu, gpu_index, gpu_why = gpu_counter(ctx.device, settings["backend"])
    cpu, cpu_why = cpu_counter(settings["backend"])
    counters: list[EnergyCounter] = [c for c in (gpu, cpu) if c is not None]
    out: dict[str, Any] = {}
    with torch.inference_mode():
        if counters:
            out.update(measure_counters(run, counters, sync=sync, batch_size=samples_per_batch, settings=settings,
                                        warmup=warmup))
        elif settings["codecarbon"]:
            warmup()
        if gpu is None:
            out.update(_none(gpu_why, *(f"gpu_{f}" for f in COUNTER_FIELDS)))
        if cpu is None:
            out.update(_none(cpu_why, *(f"cpu_{f}" for f in COUNTER_FIELDS)))
        if settings["codecarbon"]:
            try:
                out.update(codecarbon_fields(run, sync, samples_per_batch, gpu_nvml_index=gpu_index,
                                             settings=settings))
            except Exception as err:  # codecarbon setup touches many system interfaces
                out.update(_none(f"codecarbon failed: {type(err).__name__}: {err}", *CODECARBON_FIELDS))
    sj_functional.reset_net(model)
    return out
