"""How long a run's cases will take, said before they run (``bench run`` prints one line; ``--dry-run`` a
table). Each case gets seconds and a basis, the first that applies:

- **past runs**: the median ``duration_s`` of the same case in the newest ``MEDIAN_OF`` of up to
  ``RECENT_RUNS`` past run folders: those the history store lists for the suite
  (:func:`bench.history.list_runs`, which keeps each run's folder) and those under ``reports/<suite>/``.
  Only ok records measured in one process on the same device model (CPU model or GPU name) count; the
  same case is a record with the case's ``config_key`` (model entry, T, device, batch size, data, metrics
  and their options, seed), else one of the same label, registered name, T, batch size and metrics (a
  checkpoint trained by that run, other data or options). A record's duration covers its whole case, so
  work a model's cases share (the build, a causal model's one accuracy pass) is in the duration of
  whichever of them ran first in that run.
- **rough** (a lower bound): no past run: counted work at this machine's best measured speed. A forward of
  a batch ``[T, B]`` takes ``T*B*(MACs / MAC rate + bytes / bandwidth) + calls * call time``, with the dense
  conv/linear MACs, the bytes modules return (x3: two reads and a write) and the module calls counted by
  one forward on PyTorch's meta device (nothing is allocated; neuron modules are stepped T times on CPU;
  attention matmuls and other functional ops are not counted), and the speeds the device reaches at best
  on a 3x3 convolution, an elementwise add and a one-op module call (:func:`measure_speed`).
  Each metric declares its cost (``register_metric(cost=...)``: forwards and fixed seconds at their minimum,
  from a :class:`bench.metrics.base.CaseWork`). Model
  builds, data loading, training and compile times are left out, and small layers run far below the
  measured speed: on the development machine (a shared 2-core VM) cases of 1/8- and 1/4-width ResNets and a
  small Spikeformer on 8x8 digits took 3 to 8 times their rough figure in all.
- **none**: seconds None with the reason: a user model (its code runs only when its cases run), accuracy
  on a file dataset without ``data.max_samples`` (its size is known once loaded), a metric that declares no
  cost, no speed measured (``measure=False``: a real run does not disturb ``measured_energy``'s rest idle).
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import statistics
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn as nn

from bench.build import forward_with_hook
from bench.data import evaluated_samples
from bench.metrics.base import CaseWork, NotEstimated, get_metric
from bench.plan import CasePlan
from bench.results import RESULTS_FILE, RunFileError, device_name, read_records
from bench.runner import sample_shape_before_loading
from bench.suite import Case, Suite, declared_shape

RECENT_RUNS = 20  # past run folders read, newest first
MEDIAN_OF = 5  # past durations of a case whose median is its estimate, newest first
REPORTS_ROOT = Path("reports")  # where `bench run` puts runs by default (bench.runner.default_out_dir)
BENCH_S = 0.1  # seconds each speed measurement runs
NEURON_STEP_OPS = 4  # elementwise ops a neuron module runs per time step on CPU (charge, fire, reset, select)


# ---------------------------------------------------------------- machine speed and model work


@dataclass(frozen=True)
class Speed:
    """What one device did at best when measured: conv MACs/s, elementwise bytes/s, seconds per module call."""

    device: str
    macs_per_s: float
    bytes_per_s: float
    dispatch_s: float

    def describe(self) -> str:
        return (f"{self.device}: {self.macs_per_s / 1e9:.3g} GMAC/s (3x3 conv), {self.bytes_per_s / 1e9:.3g} GB/s "
                f"(elementwise add), {self.dispatch_s * 1e6:.3g} us per module call")


def _per_call(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds per call of ``fn``: the best of three rounds of ``BENCH_S / 3`` after a warm-up call (the best, as
    other processes only ever slow a round down; the device is synchronised at the end of each round)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda d=None: None)
    fn()
    sync(device)
    best = math.inf
    for _ in range(3):
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < BENCH_S / 3:
            for _ in range(4):
                fn()
            calls += 4
            sync(device)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


_SPEEDS: dict[str, Speed] = {}


def measure_speed(device: str) -> Speed:
    """This device's speeds (about ``3 * BENCH_S`` seconds; measured once per process)."""
    if device not in _SPEEDS:
        dev = torch.device(device)
        batch, channels, elements = (8, 32, 2**22) if dev.type == "cpu" else (64, 128, 2**25)
        conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False).to(dev)
        x = torch.randn(batch, channels, 32, 32, device=dev)
        a, b = torch.randn(elements, device=dev), torch.randn(elements, device=dev)
        tiny, one = nn.Linear(1, 1).to(dev), torch.ones(1, 1, device=dev)
        with torch.inference_mode():
            conv_s = _per_call(lambda: conv(x), dev)
            add_s = _per_call(lambda: a + b, dev)
            call_s = _per_call(lambda: tiny(one), dev)
        macs = batch * channels * 32 * 32 * channels * 9
        _SPEEDS[device] = Speed(device, macs / conv_s, 3 * 4 * elements / add_s, call_s)
    return _SPEEDS[device]


@dataclass(frozen=True)
class Work:
    """What one forward of one sample at T=1 does (counted on the meta device): dense conv/linear MACs, bytes
    the modules return times 3, calls of leaf modules and of neuron modules (stateful: stepped over T)."""

    macs: int
    bytes: int
    calls: int
    neuron_calls: int

    def forward_s(self, speed: Speed, T: int, batch: int) -> float:
        """Seconds of one forward of a ``[T, batch]`` input (work scales with T x B; calls do not)."""
        steps = T * NEURON_STEP_OPS if speed.device == "cpu" else 1  # on CUDA the neurons run a fused kernel
        compute = self.macs / speed.macs_per_s + self.bytes / speed.bytes_per_s
        return T * batch * compute + (self.calls + self.neuron_calls * steps) * speed.dispatch_s


def _is_neuron(module: nn.Module) -> bool:
    from spikingjelly.activation_based.base import MemoryModule

    return isinstance(module, MemoryModule)


def count_work(model: nn.Module, x: torch.Tensor) -> Work:
    """The work of ``model(x)`` by forward hooks: MACs of Conv1d/2d/3d and Linear, output bytes x 3 and calls of
    leaf and neuron modules (a neuron's surrogate child makes it no leaf)."""
    totals = {"macs": 0, "bytes": 0, "calls": 0, "neuron_calls": 0}

    def hook(module: nn.Module, args: Any, out: Any) -> None:
        neuron = _is_neuron(module)
        if not isinstance(out, torch.Tensor) or (next(module.children(), None) is not None and not neuron):
            return
        totals["neuron_calls" if neuron else "calls"] += 1
        totals["bytes"] += 3 * out.numel() * out.element_size()
        if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
            totals["macs"] += out.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
        elif isinstance(module, nn.Linear):
            totals["macs"] += out.numel() * module.in_features

    forward_with_hook(model, x, hook)
    return Work(**totals)


_WORK: dict[str, Work | str] = {}


def model_work(name: str, kwargs_T1: dict[str, Any], sample_shape: tuple[int, ...]) -> Work | str:
    """The registered model's work per sample at T=1 (a meta-device build and forward; cached per process), or
    why it could not be counted."""
    import json

    from spikingjelly.activation_based import functional

    from bench.models.registry import build_on_meta

    key = json.dumps([name, kwargs_T1, sample_shape], sort_keys=True, default=str)
    if key not in _WORK:
        try:
            model = build_on_meta(name, **kwargs_T1)
            with torch.device("meta"):
                functional.reset_net(model)
                _WORK[key] = count_work(model, torch.zeros(1, 1, *sample_shape))
        except Exception as exc:  # noqa: BLE001 - an op without a meta kernel: no rough figure, and why
            _WORK[key] = f"its meta-device forward failed ({type(exc).__name__}: {str(exc)[:100]})"
    return _WORK[key]


# ---------------------------------------------------------------- past runs


def past_run_dirs(suite_name: str, reports_root: Path = REPORTS_ROOT, db: Path | None = None) -> list[Path]:
    """Run folders of the suite, newest results first (at most ``RECENT_RUNS``): the history store's and those
    under ``reports_root/<suite>/``. A store that cannot be read costs the estimate its runs, nothing more."""
    from bench.history import list_runs

    found: list[Path] = []
    if db is not None and db.is_file():  # list_runs would create a missing store
        with contextlib.suppress(sqlite3.Error, OSError):
            found += [Path(r["path"]) for r in list_runs(db, suite_name)]
    folder = reports_root / suite_name
    if folder.is_dir():
        found += sorted(folder.iterdir())
    unique: dict[Path, float] = {}
    for path in found:
        with contextlib.suppress(OSError):
            unique.setdefault(path.resolve(), (path / RESULTS_FILE).stat().st_mtime)
    return sorted(unique, key=unique.__getitem__, reverse=True)[:RECENT_RUNS]


def same_config(config_key: str, device: str) -> tuple[str, ...]:
    """Past-duration key of a case's exact configuration on a device model."""
    return ("config", config_key, device)


def same_case(label: str, name: str, T: int, device: str, batch_size: int, metrics: Iterable[str]) -> tuple[Any, ...]:
    """Past-duration key of the same model, T, device model, batch size and metrics under other settings (a
    checkpoint trained by another run, other data or metric options)."""
    return ("case", label, name, T, device, batch_size, tuple(sorted(metrics)))


def past_durations(run_dirs: list[Path]) -> dict[tuple[Any, ...], list[float]]:
    """Durations of ok single-process records by :func:`same_config` and :func:`same_case` keys, one per run and
    key, newest run first."""
    out: dict[tuple[Any, ...], list[float]] = {}
    for path in run_dirs:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a torn last line is skipped
                records = read_records(path / RESULTS_FILE)
        except (OSError, RunFileError):
            continue
        seen: set[tuple[Any, ...]] = set()
        for r in records:
            seconds = r.get("duration_s")
            if r["status"] != "ok" or r.get("world_size", 1) != 1 or not isinstance(seconds, int | float):
                continue
            device = device_name(r)
            for key in (same_config(r["config_key"], device),
                        same_case(r["model"]["label"], r["model"].get("name"), r["T"], device, r.get("batch_size"),
                                  r.get("metrics") or {})):
                if key not in seen:
                    seen.add(key)
                    out.setdefault(key, []).append(float(seconds))
    return out


@cache
def device_model(device: str) -> str:
    """The device model records name (``device_info.device_name``): CPU model, or the GPU's name."""
    from bench.devices import cpu_name

    return cpu_name() if device == "cpu" else torch.cuda.get_device_name(torch.device(device).index or 0)


# ---------------------------------------------------------------- the estimate


@dataclass(frozen=True)
class CaseEstimate:
    case: Case
    seconds: float | None
    basis: str  # "past runs" | "rough" | "none"
    detail: str  # "median of 3 past run(s) (...)", "rough lower bound: no past run", or why there is none


@dataclass
class Estimate:
    cases: list[CaseEstimate]
    speeds: list[Speed] = field(default_factory=list)  # the speeds rough figures used

    @property
    def total_s(self) -> float:
        return sum(c.seconds for c in self.cases if c.seconds is not None)

    def count(self, basis: str) -> int:
        return sum(c.basis == basis for c in self.cases)

    def summary(self) -> str:
        """One line: the total, then how many cases each basis gave and what it leaves out, e.g.
        ``estimate: at least 25 s for 6 case(s): 2 from past runs, 4 rough lower bounds (no past run: counted
        compute at this machine's measured speed; builds, data loading and start-up not included)``."""
        n = len(self.cases)
        parts = []
        if past := self.count("past runs"):
            parts.append(f"{past} from past runs")
        if rough := self.count("rough"):
            parts.append(f"{rough} rough lower bound{'s' if rough > 1 else ''} (no past run: counted compute at this "
                         "machine's measured speed; builds, data loading and start-up not included)")
        if none := [c for c in self.cases if c.basis == "none"]:
            parts.append(f"{len(none)} not estimated ({'; '.join(dict.fromkeys(c.detail for c in none))})")
        if len(none) == n:
            return f"estimate: none for {n} case(s): {', '.join(parts)}"
        bound = "at least " if none or rough else "about "
        return f"estimate: {bound}{duration(self.total_s)} for {n} case(s): {', '.join(parts)}"


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 20 s``, ``2 h 05 min``."""
    s = round(seconds)
    if s < 60:
        return f"{seconds:.2g} s" if seconds < 10 else f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def estimate_cases(plan: CasePlan, *, measure: bool = True, isolate: bool = False,
                   reports_root: Path = REPORTS_ROOT, db: Path | None = None) -> Estimate:
    """Seconds for each case the plan still has to measure (:attr:`bench.plan.CasePlan.todo`), from past runs
    where they hold the case, else rough (see the module docstring).

    ``measure=False``: no speed measurement (cases without past runs get none); ``isolate``: each case in
    its own process (no work shared between cases); ``db``: the history store (None: not read).
    """
    from bench.models.registry import model_info

    suite, cases = plan.suite, plan.todo
    durations = past_durations(past_run_dirs(suite.name, reports_root, db))
    out: list[CaseEstimate] = []
    models: set[tuple[str, str]] = set()  # a model's cases on one device share its build and accuracy pass
    devices: set[str] = set()
    for case in cases:
        first_model = isolate or (case.model.label, case.device) not in models
        first_device = isolate or case.device not in devices
        models.add((case.model.label, case.device))
        devices.add(case.device)
        device = device_model(case.device)
        exact = durations.get(same_config(plan.key(case), device))
        similar = durations.get(same_case(case.model.label, case.model.name, case.T, device, case.batch_size,
                                          suite.metrics))
        if exact or similar:
            past = (exact or similar or [])[:MEDIAN_OF]
            what = "same configuration" if exact else "same model, T, batch and metrics; other settings"
            out.append(CaseEstimate(case, statistics.median(past), "past runs",
                                    f"median of {len(past)} past run(s) ({what})"))
            continue
        if not measure:
            out.append(CaseEstimate(case, None, "none", "no past run, and no speed measured before a run (a "
                                    "benchmark then would disturb measured_energy's rest idle; see --dry-run)"))
            continue
        try:
            seconds = _rough(suite, case, model_info(case.model.name), first_model, first_device)
        except NotEstimated as exc:
            out.append(CaseEstimate(case, None, "none", str(exc)))
            continue
        out.append(CaseEstimate(case, seconds, "rough", "rough lower bound: no past run"))
    speeds = [_SPEEDS[d] for d in dict.fromkeys(c.case.device for c in out if c.basis == "rough")]
    return Estimate(out, speeds)


def _rough(suite: Suite, case: Case, info: Any, first_model: bool, first_device: bool) -> float:
    """Counted work over measured speed, summed over the suite's metrics; NotEstimated saying why not."""
    from bench.build import model_kwargs

    if info.is_user:
        raise NotEstimated("a user model (its code runs only when its cases run)")
    shape = sample_shape_before_loading(suite.data)
    if shape is None:
        raise NotEstimated(f"the sample shape of {suite.data.dataset} is known once loaded")
    data = declared_shape(suite.data)
    kwargs = model_kwargs(case.model.kwargs, info, SimpleNamespace(num_classes=data.num_classes, in_channels=shape[0],
                                                                   image_size=shape[-1]), 1)
    work = model_work(case.model.name, kwargs, shape)
    if isinstance(work, str):
        raise NotEstimated(work)
    speed = measure_speed(case.device)
    samples, labelled = evaluated_samples(suite.data)
    steps = suite.steps_of(case.model)
    one_pass = info.causal_over_T and not info.fixed_T  # bench.metrics.accuracy: one pass at the largest T
    accuracy_T = (max(steps) if first_model else None) if one_pass else case.T
    w = CaseWork(case, suite.metric_options, suite.metrics, lambda T: work.forward_s(speed, T, case.batch_size),
                 None if samples is None else math.ceil(samples / case.batch_size), labelled, accuracy_T,
                 first_device)
    total = 0.0
    for metric in suite.metrics:
        cost = get_metric(metric).contract.cost
        if cost is None:
            raise NotEstimated(f"metric {metric!r} declares no cost (register_metric(cost=...))")
        total += cost(w)
    return total
