"""One forward pass that collects firing statistics and operation counts together (shared hooks).

:class:`Probe` hooks every neuron (firing) and every module with a counting rule (ops) of a multi-step
model, watches the torch functions that compute products outside those modules (a ``q @ k.T`` or an
``F.linear`` in a user's ``forward``), runs the model in eval mode after ``functional.reset_net`` on each
input, and keeps raw accumulators; :mod:`bench.metrics.firing` and :mod:`bench.metrics.ops` turn them
into reports.

Device: every accumulator is a tensor on the device of the model's tensors. On a GPU the input kinds are
device tensors too (:mod:`bench.metrics.kinds`): nothing is read on the host during the forward, so the
GPU never waits for the host between layers, and :meth:`Probe.finish` moves everything to the host in one
transfer per device and only then decides what each kind means for the report. On a CPU, where a read
costs no device round-trip, kinds are decided on the host as the forward goes (the same decision, with
shortcuts that skip work); ``host_decisions`` overrides the choice.

A neuron output's kind and event grids are remembered (``ops_rules.ProbeState``), so a conv reading it
(or a view of it) does not inspect it again.
"""

from __future__ import annotations

import importlib
import inspect
import operator
from collections.abc import Callable, Iterable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, neuron
from spikingjelly.activation_based.neuron import BaseNode
from torch.overrides import TorchFunctionMode

from bench.metrics import kinds, ops_rules
from bench.metrics.base import CaseContext, CaseWork
from bench.metrics.kinds import (
    Grids,
    InputInfo,
    as_3d,
    classify_on_host,
    decide,
    exact_sum,
    nonzero_mask,
    stats,
)
from bench.metrics.ops_rules import COUNT_FIELDS, Counts, ProbeState

DEFAULT_NEURON_TYPES: tuple[type[nn.Module], ...] = (BaseNode, neuron.DSRIFNode, neuron.DSRLIFNode)


@dataclass
class NeuronAcc:
    """Raw firing accumulators of one neuron module over all calls and batches (device tensors)."""

    type: str
    codes: list[torch.Tensor] = field(default_factory=list)  # kind code per call
    events_t: list[torch.Tensor] = field(default_factory=list)  # [T] event counts per call
    active: list[torch.Tensor] = field(default_factory=list)  # (sample, neuron) pairs with an event in the window
    saturated: list[torch.Tensor] = field(default_factory=list)  # ... with an event at every step
    elems_per_t: int = 0  # neuron-instances per step, summed over calls (B x neurons)
    calls: int = 0


@dataclass
class LayerAcc:
    """Raw op counts of one module (or of one torch function in one module): a :class:`Counts` per call."""

    type: str
    calls: list[Counts] = field(default_factory=list)


@dataclass
class ProbeResult:
    """Synced totals (over all samples, not yet per sample) and module lists from a :class:`Probe` run."""

    T: int
    samples: int
    neurons: dict[str, dict[str, Any]]
    layers: dict[str, dict[str, Any]]
    uncounted: list[dict[str, str]]
    unverified: list[dict[str, str]]
    excluded: list[str]
    fold_bn: bool


def is_neuron(m: nn.Module, neuron_types: tuple[type[nn.Module], ...]) -> bool:
    return isinstance(m, DEFAULT_NEURON_TYPES + tuple(neuron_types))


class _CallWatcher(TorchFunctionMode):
    """Sees the torch functions called outside every counted module and hands the ones computing products
    (``ops_rules.FUNCTION_RULES``) to the probe. The probe steps it aside while a counted module (or the
    probe's own code, in that module's hooks) runs, so ordinary layers pay nothing for it."""

    def __init__(self, probe: Probe):
        super().__init__()
        self.probe = probe

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        p = self.probe
        if not p._depth:
            if func in ops_rules.FUNCTION_RULES:
                p._function_call(func, args, kwargs, out)
            elif func in ops_rules.SUM_FUNCTIONS and p.state.on_host and not kwargs:
                p.state.note_sum(args, out)
        return out


class Probe:
    """Hooks for firing statistics and/or op counts on a multi-step model; :meth:`run` then :meth:`finish`."""

    def __init__(self, model: nn.Module, *, firing: bool = True, ops: bool = True,
                 neuron_types: Iterable[type[nn.Module]] = (), fold_bn: bool = True, strict: bool = False,
                 host_decisions: bool | None = None):
        """``host_decisions``: decide input kinds on the host as the forward goes (True), or on the device
        with no host read until :meth:`finish` (False); None: on the host for CPU inputs only."""
        self.model = model
        self.host_decisions = host_decisions
        self.firing, self.ops, self.strict = firing, ops, strict
        self.neuron_types = tuple(neuron_types)
        self.state = ProbeState(fold_bn=fold_bn)
        self.neurons: dict[str, NeuronAcc] = {}
        self.layers: dict[str, LayerAcc] = {}
        self.called: set[str] = set()
        self.uncounted: dict[str, str] = {}
        self.uncounted_calls: dict[tuple[str, str], None] = {}  # (module, function) without a rule
        self.unverified: dict[str, str] = {}
        self.excluded: dict[str, str] = {}
        self.T = 0
        self.samples = 0
        self._depth = 0  # counted modules (rules, neurons, listed ones) whose forward is running
        self._watcher: _CallWatcher | None = None
        self._paused = False  # the watcher is stepped aside while _depth > 0
        self._plan()

    # ----------------------------------------------------------------------------------------- setup
    def _plan(self) -> None:
        """Decide what each module gets: firing/neuron-update hook, op rule, or a listing."""
        self._hooked: list[tuple[nn.Module, str, str]] = []
        inside_neuron = None  # "name." of the neuron whose submodules come next (pre-order: all of them at once)
        for name, m in self.model.named_modules():
            name = name or type(m).__name__
            self.state.names[m] = name
            if inside_neuron is not None and name.startswith(inside_neuron):
                continue
            role = self._role(m, name)
            if role == "neuron":
                inside_neuron = name + "."
            if role is not None:
                self._hooked.append((m, name, role))

    def _role(self, m: nn.Module, name: str) -> str | None:
        """``neuron``, ``rule`` or ``mark`` (a listed module), or None for containers and free modules."""
        if is_neuron(m, self.neuron_types):
            return "neuron"
        if ops_rules.rule_for(m) is not None:
            return "rule"
        leaf = next(iter(m.children()), None) is None
        has_params = next(iter(m.parameters(recurse=False)), None) is not None
        if isinstance(m, ops_rules.KNOWN_COMPUTE) or (leaf and has_params):
            self.uncounted[name] = type(m).__name__
        elif isinstance(m, ops_rules.EXCLUDED_TYPES):
            self.excluded[name] = type(m).__name__
        elif has_params:
            self.unverified[name] = type(m).__name__
        else:
            return None
        return "mark"

    @contextmanager
    def _hooks(self):
        """Register the hooks; with ops, counted modules (all but the unverified ones) also mark their
        forward as counted, and their one forward hook does the module's work, then leaves the counted
        state (the probe's code in it runs counted too; one hook, not two: every hook a module has costs a
        call per forward)."""
        handles = []
        for m, name, role in self._hooked:
            work = {"neuron": self._neuron_hook, "rule": self._rule_hook, "mark": self._mark_hook}[role](name) \
                if role == "neuron" or self.ops else None
            if self.ops and name not in self.unverified:
                handles.append(m.register_forward_pre_hook(self._enter_counted))
                handles.append(m.register_forward_hook(self._counted(work, role != "mark"), always_call=True))
            elif work is not None:
                handles.append(m.register_forward_hook(work))
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    # ----------------------------------------------------------------------------------------- hooks
    def _enter_counted(self, m: nn.Module, args: tuple[Any, ...]) -> None:
        if self._depth == 0 and self._watcher is not None and _top_function_mode() is self._watcher:
            self._watcher.__exit__(None, None, None)
            self._paused = True
        self._depth += 1

    def _counted(self, work: Callable[[nn.Module, tuple[Any, ...], Any], None], needs_output: bool):
        """A counted module's forward hook: ``work`` on its output, then leave the counted state. Always
        called (``always_call``), also when the forward raised, so the depth and the watcher are restored
        whatever happens; a rule or neuron hook (``needs_output``) is skipped then (no output: None)."""

        def hook(m: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            try:
                if out is not None or not needs_output:
                    work(m, args, out)
            finally:
                self._depth -= 1
                if self._depth == 0 and self._paused:
                    self._watcher.__enter__()
                    self._paused = False

        return hook

    def _mark_hook(self, name: str):
        def hook(m: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            self.called.add(name)

        return hook

    def _rule_hook(self, name: str):
        rule = None

        def hook(m: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            nonlocal rule
            rule = rule or ops_rules.rule_for(m)
            self.called.add(name)
            self._add_counts(name, type(m).__name__, rule(m, args, out, self.state))

        return hook

    def _function_call(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                       out: Any) -> None:
        """A product-computing torch function called outside every counted module: count it or list it."""
        label, rule = ops_rules.FUNCTION_RULES[func]
        scope = self._caller()
        if rule is None or not isinstance(out, torch.Tensor):
            self.uncounted_calls[(scope, label)] = None
            return
        # (inside the watcher's handler the watcher is off: the rule's own tensor calls are not seen)
        self._add_counts(f"{scope}:{label}", f"{label} (torch function)", rule(args, kwargs, out, self.state))

    def _caller(self) -> str:
        """Name of the innermost module of the model whose code is running (read from the call stack, only
        for the rare torch-function calls outside counted modules)."""
        frame = inspect.currentframe()
        while frame is not None:
            owner = frame.f_locals.get("self")
            if isinstance(owner, nn.Module) and owner in self.state.names:
                return self.state.names[owner]
            frame = frame.f_back
        return type(self.model).__name__

    def _add_counts(self, name: str, type_name: str, counts: Counts) -> None:
        acc = self.layers.get(name)
        if acc is None:
            acc = self.layers[name] = LayerAcc(type_name)
        acc.calls.append(counts)

    def _neuron_hook(self, name: str):
        def hook(m: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            o = out[0] if isinstance(out, (tuple, list)) else out
            self.called.add(name)
            if self.firing:
                self._firing_stats(name, m, o)
            if self.ops:
                self._add_counts(name, type(m).__name__, ops_rules.neuron_counts(o, self.state))

        return hook

    def _firing_stats(self, name: str, m: nn.Module, o: torch.Tensor) -> None:
        """Per-step event counts, silent/saturated counts and the kind of one neuron output, on its device.

        For a feature map ``[T, B, C, H, W]`` the per-step, per-position counts (its :class:`Grids`) give
        both the per-step counts and the event profile a 2-D conv reading ``o`` needs, in one pass.
        """
        T = self.T
        if getattr(m, "step_mode", "m") != "m" or o.dim() < 2 or o.shape[0] != T:
            raise ValueError(f"neuron {name!r} returned shape {tuple(o.shape)}; firing statistics need multi-step "
                             f"outputs [T={T}, ...] (step_mode='m')")
        k = 2 if self.ops and o.dim() == 5 else 0
        x3 = as_3d(o, 1, k)  # [T, rest, positions]
        if self.state.on_host:
            info, g, active, saturated = self._firing_on_host(o, x3)
        else:
            s = stats(x3, window=True)  # per (sample, neuron): an event at any step, at every step
            info, g, active, saturated = decide(s, o.numel(), o.dtype == torch.bool), s.grids, s.active, s.saturated
        acc = self.neurons.get(name)
        if acc is None:
            acc = self.neurons[name] = NeuronAcc(type(m).__name__)
        acc.calls += 1
        acc.elems_per_t += x3.numel() // T
        acc.codes.append(info.code)
        acc.events_t.append(g.nonzero.sum(1))
        acc.active.append(active)
        acc.saturated.append(saturated)
        self.state.remember(o, info, g, k)

    def _firing_on_host(self, o: torch.Tensor, x3: torch.Tensor) -> tuple[InputInfo, Grids, Any, Any]:
        """The host path of :meth:`_firing_stats`. Binary and silent float32 outputs (the common case): one
        compiled pass (:func:`kinds.host_window_stats`). Otherwise torch operations: binary outputs need
        only per-neuron min/max over the window and value sums per step and position; other kinds count
        nonzeros."""
        T = x3.shape[0]
        if (w := kinds.host_window_stats(x3)) is not None and (w.binary or w.zero):
            # one compiled pass proved the common kinds (it stops at the first row of an analog output)
            zero = w.zero
            info = InputInfo(kinds.ZERO if zero else kinds.BINARY, w.ones,
                             o.numel(), 0.0 if zero else 1.0)
            return info, Grids(w.values, w.values), float(w.active), float(w.every_step)
        flat = x3.reshape(T, -1)
        if flat.dtype == torch.bool:
            flat = flat.view(torch.uint8)
        lo, hi = flat.amin(0), flat.amax(0)  # (aminmax along dim 0 is several times slower on CPUs)
        mn, mx = float(lo.min()), float(hi.max())  # (host reads: this is the CPU path)
        if mn == mx == 0 and o.dtype != torch.bool:  # a silent layer: every count is 0, no further pass
            grid = x3.new_zeros((T, x3.shape[2]), dtype=torch.float64)
            none = x3.new_zeros((), dtype=torch.float64)
            return InputInfo(kinds.ZERO, 0.0, o.numel(), 0.0), Grids(grid, grid), none, none
        values = exact_sum(x3, 1, mx)
        info = classify_on_host(o, [mn, mx], values=lambda _: float(values.sum()), prescreen=False)
        if info.code in (kinds.BINARY, kinds.ZERO):  # the values are the events; lo and hi are 0 or 1
            return info, Grids(values, values), exact_sum(hi, 0, 1.0), exact_sum(lo, 0, 1.0)
        mask = nonzero_mask(x3)
        steps = mask.view(T, -1)  # per (sample, neuron): an event at any step, at every step
        return info, Grids(exact_sum(mask, 1, 1.0), values), exact_sum(steps.amax(0), 0, 1.0), \
            exact_sum(steps.amin(0), 0, 1.0)

    # ------------------------------------------------------------------------------------------- run
    def run(self, inputs: Iterable[torch.Tensor]) -> Probe:
        """Forward every ``[T, B, ...]`` input once (eval mode, reset before each), accumulating.

        The forward runs outside inference mode (under ``no_grad``), so every tensor has a version counter
        and an in-place change is seen."""
        was_training = [m for m in self.model.modules() if m.training]
        for m in was_training:
            m.training = False  # eval(), without its recursion per module
        try:
            with ExitStack() as stack:
                stack.enter_context(self._hooks())
                stack.enter_context(torch.inference_mode(False))
                stack.enter_context(torch.no_grad())
                if self.ops:
                    self._watcher = stack.enter_context(_CallWatcher(self))
                for x in inputs:
                    self._forward(x)
        finally:
            self._watcher = None
            self._paused = False
            self._depth = 0
            for m in was_training:
                m.training = True
            self.state.clear()
        if self.strict and self.ops:
            missing = sorted(n for n in self.uncounted if n in self.called)
            missing += [f"{fn} called in {mod}" for mod, fn in self.uncounted_calls]
            if missing:
                raise NotImplementedError(f"no counting rule for {', '.join(missing)}; register one with "
                                          "bench.metrics.ops_rules.register_op_rule or pass strict=False")
        return self

    def _forward(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"inputs must be [T, B, ...], got shape {tuple(x.shape)}")
        if self.T and x.shape[0] != self.T:
            raise ValueError(f"all inputs must share T; got {x.shape[0]} after {self.T}")
        self.T = x.shape[0]
        self.state.on_host = x.device.type == "cpu" if self.host_decisions is None else self.host_decisions
        self.state.time_steps, self.state.batch = x.shape[0], x.shape[1]
        functional.reset_net(self.model)
        self.state.clear()
        self.model(x)
        self.samples += x.shape[1]

    # ---------------------------------------------------------------------------------------- finish
    def finish(self) -> ProbeResult:
        """Move every accumulated tensor to the host (one transfer per device) and return plain totals."""
        host = _Transfer()
        neurons_d = {name: (a, [host.add(v) for v in a.codes], [host.add(v) for v in a.events_t],
                            [host.add(v) for v in a.active], [host.add(v) for v in a.saturated])
                     for name, a in self.neurons.items()}
        layers_d = {name: (a, [([v if not isinstance(v, torch.Tensor) else host.add(v) for v in _count_values(c)],
                                [host.add(k) for k in c.kinds]) for c in a.calls])
                    for name, a in self.layers.items()}
        host.fetch()
        neurons = {}
        for name, (a, codes, events_t, active, saturated) in neurons_d.items():
            per_t = [0.0] * self.T
            for ev in events_t:
                per_t = [p + float(e) for p, e in zip(per_t, host.steps(ev), strict=True)]
            neurons[name] = {
                "type": a.type, "kinds": sorted({_kind(name, host.value(c)) for c in codes}), "calls": a.calls,
                "elems_per_t": a.elems_per_t, "events_t": per_t,
                "active": sum(float(host.value(v)) for v in active),
                "saturated": sum(float(host.value(v)) for v in saturated),
            }
        layers = {name: self._layer_totals(name, a, calls, host) for name, (a, calls) in layers_d.items()}
        called = self.called
        uncounted = [{"module": n, "type": t} for n, t in self.uncounted.items() if n in called]
        uncounted += [{"module": mod, "type": f"{fn} (torch function call)"} for mod, fn in self.uncounted_calls]
        return ProbeResult(
            T=self.T, samples=self.samples, neurons=neurons, layers=layers, uncounted=uncounted,
            unverified=[{"module": n, "type": t} for n, t in self.unverified.items() if n in called],
            excluded=sorted({t for n, t in self.excluded.items() if n in called}),
            fold_bn=self.state.fold_bn,
        )

    @staticmethod
    def _layer_totals(name: str, a: LayerAcc, calls: list[tuple[list[Any], list[Any]]],
                      host: _Transfer) -> dict[str, Any]:
        """One layer's totals over its calls (values in :data:`COUNT_FIELDS` order); ``approx_sops`` only from
        calls with a spike input."""
        kinds_per_call = [[_kind(name, host.value(k)) for k in ks] for _, ks in calls]
        with_spikes = [not kinds.SPIKE_KINDS.isdisjoint(names) for names in kinds_per_call]
        totals: dict[str, Any] = {}
        if len(calls) == 1:  # the common case (a module called once per forward): no columns to add up
            for f, v in zip(COUNT_FIELDS, calls[0][0], strict=True):
                v = host.value(v)
                totals[f] = None if v is None or (f == "approx_sops" and not with_spikes[0]) else float(v)
            return Probe._layer_record(a, totals, kinds_per_call)
        for f, column in zip(COUNT_FIELDS, zip(*(fields for fields, _ in calls), strict=True), strict=True):
            if f == "approx_sops":
                column = [v for v, spikes in zip(column, with_spikes, strict=True) if spikes]
            values = [host.value(v) if isinstance(v, _Pending) else v for v in column]
            values = [v for v in values if v is not None]
            totals[f] = float(sum(values)) if values else None
        return Probe._layer_record(a, totals, kinds_per_call)

    @staticmethod
    def _layer_record(a: LayerAcc, totals: dict[str, Any], kinds_per_call: list[list[str]]) -> dict[str, Any]:
        """A layer's plain record: its totals, calls, input kinds and notes."""
        return {
            "type": a.type, "calls": len(a.calls), "counts": totals,
            "kinds": sorted({k for ks in kinds_per_call for k in ks}),
            "notes": sorted({c.note for c in a.calls if c.note}),
        }


_count_values = operator.attrgetter(*COUNT_FIELDS)  # a Counts' values in COUNT_FIELDS order (one C call)


def _top_function_mode() -> Any:
    """The innermost active torch-function mode (None when none is active)."""
    n = torch._C._len_torch_function_stack()
    return torch._C._get_function_stack_at(n - 1) if n else None


def _kind(layer: str, code: float) -> str:
    """A decoded kind code's name; the one code without a name is an error to report."""
    if int(code) == kinds.UNSUPPORTED:
        raise ValueError(f"{layer}: input holds integer values above {kinds.MULTISPIKE_MAX}, too large to count "
                         "exactly as multi-spikes on the device; scale the input or register a rule for this layer")
    return kinds.KINDS[int(code)]


@dataclass(frozen=True)
class _Pending:
    device: str
    start: int
    stop: int


class _Transfer:
    """Collects device tensors, moves them to the host in one copy per device, then resolves them."""

    def __init__(self):
        self._parts: dict[str, list[torch.Tensor]] = {}
        self._sizes: dict[str, int] = {}
        self._host: dict[str, list[float]] = {}

    def add(self, v: Any) -> Any:
        """A tensor becomes a placeholder for its values; anything else stays as it is."""
        if not isinstance(v, torch.Tensor):
            return v
        key = str(v.device)
        flat = v.detach().reshape(-1)
        start = self._sizes.get(key, 0)
        self._parts.setdefault(key, []).append(flat)
        self._sizes[key] = start + flat.numel()
        return _Pending(key, start, start + flat.numel())

    def fetch(self) -> None:
        """The one transfer per device (float64 holds every count and code exactly)."""
        for key, parts in self._parts.items():
            self._host[key] = torch.cat(parts).double().cpu().tolist()

    def steps(self, v: Any) -> list[float]:
        """A per-time-step vector as a list (also when T = 1)."""
        if isinstance(v, _Pending):
            return self._host[v.device][v.start:v.stop]
        return list(v)

    def value(self, v: Any) -> Any:
        """A scalar as a float (a placeholder resolved), or the value as it was."""
        if isinstance(v, _Pending):
            (value,) = self._host[v.device][v.start:v.stop]
            return value
        return v


def probe(model: nn.Module, inputs: torch.Tensor | Iterable[torch.Tensor], **kwargs: Any) -> ProbeResult:
    """Run a :class:`Probe` over one input ``[T, B, ...]`` or an iterable of them and return its totals."""
    xs = [inputs] if isinstance(inputs, torch.Tensor) else inputs
    return Probe(model, **kwargs).run(xs).finish()


def resolve_neuron_types(spec: Iterable[str | type[nn.Module]] | None) -> tuple[type[nn.Module], ...]:
    """Neuron classes from classes or ``"package.module:Class"`` strings (suite options)."""
    out = []
    for item in spec or ():
        if isinstance(item, str):
            module, _, attr = item.partition(":")
            if not module or not attr:
                raise ValueError(f"neuron type {item!r} must look like 'package.module:Class'")
            item = getattr(importlib.import_module(module), attr)
        if not (isinstance(item, type) and issubclass(item, nn.Module)):
            raise ValueError(f"neuron type {item!r} is not an nn.Module class")
        out.append(item)
    return tuple(out)


def _case_inputs(ctx: CaseContext) -> list[torch.Tensor]:
    n = int(ctx.option("firing", "num_batches", ctx.option("ops", "num_batches", 1)))
    if n <= 1:
        return [ctx.sample_batch()[0]]
    xs = []
    for x, _ in ctx.batches(ctx.T):
        xs.append(x)
        if len(xs) == n:
            break
    return xs


PROBED = ("firing", "ops", "energy")  # the metrics that read case_probe's one shared pass


def probe_cost(metric: str) -> Callable[[CaseWork], float]:
    """The declared cost of a metric in :data:`PROBED`: one forward of the sample batch at the case's T, paid
    by the first of them the suite lists (the others read the same pass)."""

    def cost(w: CaseWork) -> float:
        return w.forward_s(w.case.T) if next(m for m in w.metrics if m in PROBED) == metric else 0.0

    return cost


def case_probe(ctx: CaseContext) -> ProbeResult:
    """The case's probe totals, from ONE pass over its sample batch shared by firing, ops and energy (cached
    in ``ctx.cache``).

    Options: ``[metrics.ops] fold_bn`` (default true), ``strict`` (default false); ``num_batches`` (in
    ``[metrics.firing]`` or ``[metrics.ops]``, default 1: the fixed sample batch); ``neuron_types``
    (``"package.module:Class"`` strings) in ``[metrics.firing]``.
    """
    if "probe_result" not in ctx.cache:
        ctx.cache["probe_result"] = probe(
            ctx.model, _case_inputs(ctx), fold_bn=bool(ctx.option("ops", "fold_bn", True)),
            strict=bool(ctx.option("ops", "strict", False)),
            neuron_types=resolve_neuron_types(ctx.option("firing", "neuron_types")))
    return ctx.cache["probe_result"]
