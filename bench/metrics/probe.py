"""One forward pass that collects firing statistics and operation counts together (shared hooks).

:class:`Probe` hooks every neuron (firing) and every module with a counting rule (ops) of a multi-step
model, runs it in eval mode after ``functional.reset_net`` on each input, and keeps raw accumulators;
:mod:`bench.metrics.firing` and :mod:`bench.metrics.ops` turn them into reports. Data-dependent sums stay
tensors until :meth:`Probe.finish` syncs them all at once; the only per-call host syncs are the few scalars
that decide a tensor's kind (they pick which computation follows).

A neuron output's kind is remembered (see ``ops_rules.ProbeState``), so a conv reading it (or a view of it)
does not classify it again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, neuron
from spikingjelly.activation_based.neuron import BaseNode

from bench.metrics import ops_rules
from bench.metrics.ops_rules import COUNT_FIELDS, Counts, ProbeState

DEFAULT_NEURON_TYPES: tuple[type[nn.Module], ...] = (BaseNode, neuron.DSRIFNode, neuron.DSRLIFNode)


@dataclass
class NeuronAcc:
    """Raw firing accumulators of one neuron module over all calls and batches."""

    type: str
    kinds: set[str] = field(default_factory=set)
    events_t: list[torch.Tensor] = field(default_factory=list)  # [T] event counts per call
    active: list[Any] = field(default_factory=list)  # (sample, neuron) pairs with an event in the window
    saturated: list[Any] = field(default_factory=list)  # ... with an event at every step
    elems_per_t: int = 0  # neuron-instances per step, summed over calls (B x neurons)
    calls: int = 0


@dataclass
class LayerAcc:
    """Raw op counts of one module: one :class:`Counts` per call, over all batches."""

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


class Probe:
    """Hooks for firing statistics and/or op counts on a multi-step model; :meth:`run` then :meth:`finish`."""

    def __init__(self, model: nn.Module, *, firing: bool = True, ops: bool = True,
                 neuron_types: Iterable[type[nn.Module]] = (), fold_bn: bool = True, strict: bool = False):
        self.model = model
        self.firing, self.ops, self.strict = firing, ops, strict
        self.neuron_types = tuple(neuron_types)
        self.state = ProbeState(fold_bn=fold_bn)
        self.neurons: dict[str, NeuronAcc] = {}
        self.layers: dict[str, LayerAcc] = {}
        self.called: set[str] = set()
        self.uncounted: dict[str, str] = {}
        self.unverified: dict[str, str] = {}
        self.excluded: dict[str, str] = {}
        self.T = 0
        self.samples = 0
        self._plan()

    # ----------------------------------------------------------------------------------------- setup
    def _plan(self) -> None:
        """Decide what each module gets: firing/neuron-update hook, op rule, or a listing."""
        self._hooked: list[tuple[nn.Module, str, str]] = []
        inside_neuron: list[str] = []
        for name, m in self.model.named_modules():
            name = name or type(m).__name__
            self.state.names[m] = name
            if any(name.startswith(p + ".") for p in inside_neuron):
                continue
            if is_neuron(m, self.neuron_types):
                inside_neuron.append(name)
                self._hooked.append((m, name, "neuron"))
                continue
            leaf = next(iter(m.children()), None) is None
            has_params = next(iter(m.parameters(recurse=False)), None) is not None
            if ops_rules.rule_for(m) is not None:
                self._hooked.append((m, name, "rule"))
            elif isinstance(m, ops_rules.KNOWN_COMPUTE) or (leaf and has_params):
                self.uncounted[name] = type(m).__name__
                self._hooked.append((m, name, "mark"))
            elif isinstance(m, ops_rules.EXCLUDED_TYPES):
                self.excluded[name] = type(m).__name__
                self._hooked.append((m, name, "mark"))
            elif has_params:
                self.unverified[name] = type(m).__name__
                self._hooked.append((m, name, "mark"))

    @contextmanager
    def _hooks(self):
        handles = []
        for m, name, role in self._hooked:
            if role == "neuron":
                handles.append(m.register_forward_hook(self._neuron_hook(name)))
            elif role == "rule" and self.ops:
                handles.append(m.register_forward_hook(self._rule_hook(name)))
            elif role == "mark" and self.ops:
                handles.append(m.register_forward_hook(self._mark_hook(name)))
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    # ----------------------------------------------------------------------------------------- hooks
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
            counts = rule(m, args, out, self.state)
            self._add_counts(name, m, counts)

        return hook

    def _add_counts(self, name: str, m: nn.Module, counts: Counts) -> None:
        acc = self.layers.get(name)
        if acc is None:
            acc = self.layers[name] = LayerAcc(type(m).__name__)
        acc.calls.append(counts)

    def _neuron_hook(self, name: str):
        def hook(m: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            o = out[0] if isinstance(out, (tuple, list)) else out
            self.called.add(name)
            if self.firing:
                self._firing_stats(name, m, o)
            if self.ops:
                self._add_counts(name, m, Counts(neuron_updates=o.numel()))

        return hook

    def _firing_stats(self, name: str, m: nn.Module, o: torch.Tensor) -> None:
        T = self.T
        if getattr(m, "step_mode", "m") != "m" or o.dim() < 2 or o.shape[0] != T:
            raise ValueError(f"neuron {name!r} returned shape {tuple(o.shape)}; firing statistics need multi-step "
                             f"outputs [T={T}, ...] (step_mode='m')")
        flat = o.reshape(T, -1)
        if o.dtype == torch.bool:
            flat = flat.to(torch.uint8)
        n = flat.shape[1]
        # For a feature map [T, B, C, H, W], the per-step event sums per position (H, W) give both the
        # per-step counts and the event profile a 2-D conv reading o needs, in one pass.
        k = 2 if self.ops and o.dim() == 5 else 0
        if k:
            grid = ops_rules.exact_sum(flat.view(T, -1, math.prod(o.shape[-k:])), 1.0, dim=1)  # [T, positions]
            per_t = ops_rules.exact_sum(grid, n / grid.shape[1], dim=1)
        else:
            per_t = ops_rules.exact_sum(flat, 1.0, dim=1)
        # Per-neuron min / max over the window: the global range, and for spikes silent / saturated.
        lo, hi = flat.amin(0), flat.amax(0)  # (aminmax along dim 0 is several times slower on CPU)
        info = ops_rules.classify(o, total=per_t.sum(dtype=torch.float64), bounds=(lo.min(), hi.max()))
        acc = self.neurons.get(name)
        if acc is None:
            acc = self.neurons[name] = NeuronAcc(type(m).__name__)
        acc.kinds.add(info.kind)
        acc.calls += 1
        acc.elems_per_t += n
        profile = None
        if info.kind == "binary":
            acc.events_t.append(per_t)
            acc.active.append(ops_rules.exact_sum(hi))  # (sample, neuron) pairs with an event at some step
            acc.saturated.append(ops_rules.exact_sum(lo))  # ... at every step
            if k:
                profile = ops_rules.exact_sum(grid, n / grid.shape[1], dim=0).view(o.shape[-k:])
        elif info.kind == "zero":
            acc.events_t.append(torch.zeros(T))
        else:
            nz = flat != 0
            acc.events_t.append(nz.sum(1))
            acc.active.append(nz.any(0).sum())
            acc.saturated.append(nz.all(0).sum())
        self.state.remember(o, info, profile)

    # ------------------------------------------------------------------------------------------- run
    def run(self, inputs: Iterable[torch.Tensor]) -> Probe:
        """Forward every ``[T, B, ...]`` input once (eval mode, reset before each), accumulating."""
        was_training = [m for m in self.model.modules() if m.training]
        for m in was_training:
            m.training = False  # eval(), without its recursion per module
        try:
            with self._hooks(), torch.no_grad():
                for x in inputs:
                    if x.dim() < 2:
                        raise ValueError(f"inputs must be [T, B, ...], got shape {tuple(x.shape)}")
                    if self.T and x.shape[0] != self.T:
                        raise ValueError(f"all inputs must share T; got {x.shape[0]} after {self.T}")
                    self.T = x.shape[0]
                    functional.reset_net(self.model)
                    self.state.clear()
                    self.model(x)
                    self.samples += x.shape[1]
        finally:
            for m in was_training:
                m.training = True
            self.state.clear()
        if self.strict and self.ops:
            missing = sorted(n for n in self.uncounted if n in self.called)
            if missing:
                raise NotImplementedError(f"no counting rule for {', '.join(missing)}; register one with "
                                          "bench.metrics.ops_rules.register_op_rule or pass strict=False")
        return self

    # ---------------------------------------------------------------------------------------- finish
    def finish(self) -> ProbeResult:
        """Sync every accumulated tensor at once and return plain totals (over all samples)."""
        tensors: list[torch.Tensor] = []

        def defer(v: Any) -> Any:
            if isinstance(v, torch.Tensor):
                tensors.append(v.detach().reshape(-1).double())
                return _Pending(len(tensors) - 1)
            return v

        deferred_neurons = {
            name: (a, [defer(v) for v in a.events_t], [defer(v) for v in a.active], [defer(v) for v in a.saturated])
            for name, a in self.neurons.items()
        }
        deferred_layers = {
            name: (a, [{f: defer(getattr(c, f)) for f in COUNT_FIELDS} for c in a.calls])
            for name, a in self.layers.items()
        }
        flat = torch.cat(tensors).cpu().tolist() if tensors else []
        offsets = [0]
        for t in tensors:
            offsets.append(offsets[-1] + t.numel())

        def resolve(v: Any) -> Any:
            """A deferred scalar as a float."""
            if isinstance(v, _Pending):
                (value,) = flat[offsets[v.index]:offsets[v.index + 1]]
                return value
            return v

        def resolve_steps(v: Any) -> list[float]:
            """A deferred per-time-step vector as a list (also when T = 1)."""
            if isinstance(v, _Pending):
                return flat[offsets[v.index]:offsets[v.index + 1]]
            return list(v)

        neurons = {}
        for name, (a, events_t, active, saturated) in deferred_neurons.items():
            per_t = [0.0] * self.T
            for ev in events_t:
                per_t = [p + float(e) for p, e in zip(per_t, resolve_steps(ev), strict=True)]
            neurons[name] = {
                "type": a.type, "kinds": sorted(a.kinds), "calls": a.calls, "elems_per_t": a.elems_per_t,
                "events_t": per_t, "active": sum(float(resolve(v)) for v in active),
                "saturated": sum(float(resolve(v)) for v in saturated),
            }
        layers = {}
        for name, (a, calls) in deferred_layers.items():
            totals: dict[str, Any] = {}
            for f in COUNT_FIELDS:
                values = [resolve(c[f]) for c in calls if c[f] is not None]
                totals[f] = float(sum(values)) if values else None
            layers[name] = {
                "type": a.type, "calls": len(a.calls), "counts": totals,
                "kinds": sorted({k for c in a.calls for k in c.kinds}),
                "notes": sorted({c.note for c in a.calls if c.note}),
            }
        called = self.called
        return ProbeResult(
            T=self.T, samples=self.samples, neurons=neurons, layers=layers,
            uncounted=[{"module": n, "type": t} for n, t in self.uncounted.items() if n in called],
            unverified=[{"module": n, "type": t} for n, t in self.unverified.items() if n in called],
            excluded=sorted({t for n, t in self.excluded.items() if n in called}),
            fold_bn=self.state.fold_bn,
        )


@dataclass(frozen=True)
class _Pending:
    index: int


def probe(model: nn.Module, inputs: torch.Tensor | Iterable[torch.Tensor], **kwargs: Any) -> ProbeResult:
    """Run a :class:`Probe` over one input ``[T, B, ...]`` or an iterable of them and return its totals."""
    xs = [inputs] if isinstance(inputs, torch.Tensor) else inputs
    return Probe(model, **kwargs).run(xs).finish()
