"""Per-module counting rules: exact reach maps, one rule per module type, rules for torch functions.

The conventions these rules apply are written once, as data, in :mod:`bench.metrics.conventions`
(``OPS_RULES``). Every rule sees one call of its module through a forward hook (``module, args, output``)
and returns a :class:`Counts` of that call, totals over the whole batch and all T steps (the report divides
by the number of samples); the ``ann_*`` data-movement counts are instead one inference of the same-shape ANN
(the call's counts divided by the time steps it covers, :func:`call_steps`).

On the device path nothing here reads a tensor on the host: an input's kind (:mod:`bench.metrics.kinds`)
is a 0-dim tensor on the model's device, so a rule computes the count each kind would give and selects
with ``torch.where`` (:func:`pick`); ``Counts`` carries the kind codes, and the probe decides after its one
transfer which fields apply (an ``approx_sops`` of a call whose inputs are all analog is dropped). On the
host path (CPUs) the kind is a plain number and :func:`pick` computes only the branch it names: the same
formulas, so the same counts.

Exact event counts use *reach maps*: ``reach[c, *pos]`` = number of (output position, output channel)
pairs an input element feeds. For a convolution it factorises as ``(C_out / groups) * prod_d r_d[pos_d]``
(no dependence on the input channel), with ``r_d`` a 1-D vector per spatial dim computed once per
(layer geometry, input size) by walking output positions and kernel taps. So
``ACs = sum(events(x) * reach)`` costs one channel-sum of ``x`` and a dot product with a tiny map.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.metrics.kinds import (
    BINARY,
    EXACT_INTEGERS,
    MULTISPIKE,
    SPIKE_KINDS,
    ZERO,
    Grids,
    InputInfo,
    as_3d,
    classify,
    classify_on_host,
    decide,
    exact_sum,
    nonzero_mask,
    stats,
)
from bench.models.common import MatMul

__all__ = ["COUNT_FIELDS", "Counts", "DATA_FIELDS", "InputInfo", "OPS_FIELDS", "ProbeState", "SPIKE_KINDS",
           "call_steps", "classify", "neuron_counts", "reach_1d", "register_op_rule", "rule_for"]


# ---------------------------------------------------------------------------------------------- reach maps

def _source_index(p: int, length: int, mode: str) -> int | None:
    """Which input index padded position ``p`` reads (None for a zero pad)."""
    if 0 <= p < length:
        return p
    if mode == "zeros":
        return None
    if mode == "reflect":
        return -p if p < 0 else 2 * (length - 1) - p
    if mode == "replicate":
        return min(max(p, 0), length - 1)
    if mode == "circular":
        return p % length
    raise ValueError(f"unknown padding mode {mode!r}")


@lru_cache(maxsize=4096)
def reach_1d(length: int, out_length: int, kernel: int, stride: int, pad_lo: int, dilation: int = 1,
             mode: str = "zeros") -> tuple[int, ...]:
    """``r[i]`` = number of (output index, kernel tap) pairs that read input index ``i`` along one dim."""
    r = [0] * length
    for o in range(out_length):
        for k in range(kernel):
            src = _source_index(o * stride - pad_lo + k * dilation, length, mode)
            if src is not None:
                r[src] += 1
    return tuple(r)


@lru_cache(maxsize=4096)
def adaptive_reach_1d(length: int, out_length: int) -> tuple[int, ...]:
    """``r[i]`` = number of adaptive-pooling windows (PyTorch's floor/ceil bounds) covering input index ``i``."""
    r = [0] * length
    for o in range(out_length):
        start, end = (o * length) // out_length, -((-(o + 1) * length) // out_length)
        for i in range(start, end):
            r[i] += 1
    return tuple(r)


_REACH_MAPS: dict[tuple[Any, ...], torch.Tensor] = {}


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on ``device`` without a host sync (pinned memory, asynchronous copy, on CUDA)."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def reach_map(vectors: tuple[tuple[int, ...], ...], device: torch.device) -> torch.Tensor:
    """Outer product of 1-D reach vectors as a float64 tensor on ``device`` (built on the host, cached)."""
    key = (vectors, str(device))
    cached = _REACH_MAPS.get(key)
    if cached is None:
        with torch.inference_mode(False), torch.no_grad():
            host = torch.ones((), dtype=torch.float64, device="cpu")
            for v in vectors:
                host = host.unsqueeze(-1) * torch.tensor(v, dtype=torch.float64, device="cpu")
            cached = _REACH_MAPS[key] = to_device(host, device)
    return cached


def weighted_events(profile: torch.Tensor, vectors: tuple[tuple[int, ...], ...]) -> torch.Tensor:
    """``sum(profile * outer(vectors))`` in float64: the event x reach total, exact."""
    return torch.dot(profile.reshape(-1), reach_map(vectors, profile.device).reshape(-1))


# ------------------------------------------------------------------------------------------------- counts

OPS_FIELDS = ("macs", "acs", "sops", "dense_macs", "approx_sops", "neuron_updates", "cmps")
# Counts the hardware-aware energy model (bench.metrics.energy_model) prices; they never change the ones above.
# T-step totals like every count, except the ``ann_*`` ones: ONE inference of the same-shape ANN (see call_steps).
DATA_FIELDS = (
    "ann_macs",  # dense MACs of one inference: a call's dense MACs / the time steps it covers
    "in_events",  # events of the spike inputs read (analog inputs: 0)
    "spike_in_elems",  # elements of spike inputs (a bitmap reads each once)
    "analog_in_elems",  # elements of analog inputs (read as activations)
    "out_elems",  # output elements
    "out_events",  # events of neuron outputs (spike writes); 0 for other layers
    "spike_out_elems",  # elements of neuron outputs that are spikes (a bitmap writes each once)
    "weight_passes",  # weight elements x sample-steps of analog-input calls (dense weight reads, no reuse)
    "ann_weight_passes",  # weight elements x samples of one inference (every weighted call)
    "ann_in_elems",  # input elements of one inference
    "ann_out_elems",  # output elements of one inference
)
COUNT_FIELDS = OPS_FIELDS + DATA_FIELDS  # everything a rule returns and the probe accumulates


@dataclass
class Counts:
    """Counts of one call (totals over batch and time): ints, floats or 0-dim float64 tensors.

    ``kinds`` holds the kind codes of the call's inputs (0-dim tensors); ``approx_sops`` is None where the
    literature's estimate does not apply, and is dropped at the end for a call none of whose inputs is a
    spike kind.
    """

    macs: Any = 0
    acs: Any = 0
    sops: Any = 0
    dense_macs: Any = 0
    approx_sops: Any = None
    neuron_updates: Any = 0
    cmps: Any = 0
    ann_macs: Any = 0
    in_events: Any = 0
    spike_in_elems: Any = 0
    analog_in_elems: Any = 0
    out_elems: Any = 0
    out_events: Any = 0
    spike_out_elems: Any = 0
    weight_passes: Any = 0
    ann_weight_passes: Any = 0
    ann_in_elems: Any = 0
    ann_out_elems: Any = 0
    kinds: tuple[Any, ...] = ()
    note: str = ""


def _dense(shape: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    """True when a layout covers a gap-free block of memory (any dim order): views with the same start and
    element count that are both gap-free cover the same elements."""
    expected = 1
    for st, size in sorted((st, sz) for st, sz in zip(stride, shape, strict=True) if sz != 1):
        if st != expected:
            return False
        expected *= size
    return True


@dataclass(frozen=True)
class _Span:
    """Which elements a live tensor covers, and their state: start address, count, layout, version."""

    ref: weakref.ref
    ptr: int
    numel: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    version: int

    @classmethod
    def of(cls, x: torch.Tensor) -> _Span:
        base = x if x._base is None else x._base  # a view dies with its call; its base lives on
        return cls(weakref.ref(base), x.data_ptr(), x.numel(), tuple(x.shape), x.stride(), x._version)

    def covers(self, x: torch.Tensor) -> bool:
        """True when ``x`` holds the same elements, unmodified since: same start, count and layout (or both
        gap-free blocks), the memory still owned, the version counter unchanged."""
        if self.ref() is None or x.data_ptr() != self.ptr or x.numel() != self.numel or x._version != self.version:
            return False
        if tuple(x.shape) == self.shape and x.stride() == self.stride:
            return True
        return _dense(self.shape, self.stride) and _dense(tuple(x.shape), x.stride())


def _trailing_layout(x: torch.Tensor, trail: int) -> tuple[Any, ...] | None:
    """Shape and strides of the last ``trail`` dims when they form one contiguous block (else None): dense
    tensors with equal trailing blocks hold the same elements at each trailing position."""
    if trail == 0:
        return ()
    expected = 1
    for d in range(x.dim() - 1, x.dim() - 1 - trail, -1):
        if x.shape[d] != 1 and x.stride(d) != expected:
            return None
        expected *= x.shape[d]
    return tuple(x.shape[-trail:]), x.stride()[-trail:]


@dataclass(frozen=True)
class _Seen:
    span: _Span
    info: InputInfo
    grids: Grids | None
    trailing: tuple[Any, ...] | None


@dataclass(frozen=True)
class _Sum:
    """A live sum of non-negative integer tensors (:meth:`ProbeState.note_sum`): an upper bound on its values
    and, when both terms had one over the same positions, its value grid (their grids added: exact)."""

    span: _Span
    bound: float
    grids: Grids | None
    trailing: tuple[Any, ...] | None


def _trail(entry: _Seen | _Sum) -> int:
    """The number of trailing dims an entry's grids are over."""
    return len(entry.trailing[0]) if entry.trailing else 0


class ProbeState:
    """Per-forward bookkeeping the rules share: kinds (and event grids) of live tensors already classified,
    and which live tensor came out of which conv/linear (for BN folding).

    ``on_host`` picks the evaluation (:mod:`bench.metrics.kinds`): kinds decided on the host as the
    forward goes (CPUs) or on the device and read once at the end (GPUs).

    Entries are keyed by start address and hold a :class:`_Span`: a tensor matches only if it covers the
    same elements (same start, count and layout, or both gap-free blocks), its memory is still owned (weak
    reference) and it was not modified in place since (version counter). Inference tensors have no
    version counter and are never cached (the probe runs its forward outside inference mode).
    """

    def __init__(self, fold_bn: bool = True, on_host: bool = False):
        self.fold_bn = fold_bn
        self.on_host = on_host
        self.time_steps, self.batch = 1, 1  # T and B of the forward's input [T, B, ...] (set by the probe)
        self.names: dict[nn.Module, str] = {}
        self._seen: dict[int, _Seen] = {}
        self._producers: dict[int, tuple[_Span, str]] = {}
        self._integer_sums: dict[int, _Sum] = {}  # live sums of non-negative integer tensors

    def remember(self, x: torch.Tensor, info: InputInfo, g: Grids | None = None, trail: int = 0) -> None:
        """Cache ``x``'s kind and optionally its :class:`Grids` over its last ``trail`` dims."""
        if not x.is_inference():
            self._seen[x.data_ptr()] = _Seen(_Span.of(x), info, g, None if g is None else _trailing_layout(x, trail))

    def _entry(self, x: torch.Tensor) -> _Seen | None:
        entry = self._seen.get(x.data_ptr())
        if entry is None or x.is_inference() or not entry.span.covers(x):
            return None
        return entry

    def integer_bound(self, x: torch.Tensor) -> float | None:
        """An upper bound on ``x`` when it is known to hold only non-negative integers (a live, unmodified
        tensor classified zero, binary or multispike, or a sum noted by :meth:`note_sum`), else None."""
        entry = self._entry(x)
        if entry is not None:
            if entry.info.code not in (ZERO, BINARY, MULTISPIKE) or not entry.info.on_host:
                return None
            return 1.0 if entry.info.max_value is None else entry.info.max_value
        noted = self._noted_sum(x)
        return None if noted is None else noted.bound

    def _noted_sum(self, x: torch.Tensor) -> _Sum | None:
        noted = self._integer_sums.get(x.data_ptr())
        return noted if noted is not None and noted.span.covers(x) else None

    def _value_grid(self, x: torch.Tensor) -> tuple[torch.Tensor, int] | None:
        """The value grid of an integer tensor seen or noted before, and the trailing dims it is over (None
        when unknown). A binary or zero tensor's nonzero grid is its value grid."""
        entry = self._entry(x) or self._noted_sum(x)
        if entry is None:
            return None
        trail = _trail(entry)
        g = self._cached_grids(entry, x, trail)
        if g is None:
            return None
        values = g.values
        if values is None and isinstance(entry, _Seen) and entry.info.code in (BINARY, ZERO):
            values = g.nonzero
        return None if values is None else (values, trail)

    def note_sum(self, args: tuple[Any, ...], out: Any) -> None:
        """Remember that ``out = a + b`` holds only non-negative integers when ``a`` and ``b`` do and the sum of
        their bounds stays exact in ``out``'s dtype (a SEW ADD of spikes): its kind is then decided without
        the sign and integrality passes (same decision). When ``a``, ``b`` and ``out`` have one shape and
        the value grids of ``a`` and ``b`` are known over the same positions, ``out``'s is their sum (exact
        integers in float64), so no pass over ``out`` computes it. Anything else is left to the full decision."""
        if len(args) != 2 or not isinstance(out, torch.Tensor) or out.is_inference():
            return
        exact = EXACT_INTEGERS.get(out.dtype)
        a, b = args
        if exact is None or not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
            return
        bound_a = self.integer_bound(a)
        bound_b = None if bound_a is None else self.integer_bound(b)
        if bound_b is None or bound_a + bound_b > exact:
            return
        grids, trailing = None, None
        ga = self._value_grid(a) if a.shape == b.shape == out.shape else None
        gb = None if ga is None else self._value_grid(b)
        if gb is not None and ga[1] == gb[1] and (layout := _trailing_layout(out, ga[1])) is not None:
            va, vb = ga[0], gb[0]
            if va.shape != vb.shape:  # per-step grids beside whole-call ones: both summed over their steps
                va, vb = va.sum(0, keepdim=True), vb.sum(0, keepdim=True)
            grids, trailing = Grids(None, va + vb), layout
        self._integer_sums[out.data_ptr()] = _Sum(_Span.of(out), bound_a + bound_b, grids, trailing)

    def _cached_grids(self, entry: _Seen | _Sum | None, x: torch.Tensor, trail: int) -> Grids | None:
        if entry is None or entry.grids is None or entry.trailing is None:
            return None
        if trail == 0 or entry.trailing == _trailing_layout(x, trail):
            return entry.grids
        return None

    def inspect(self, x: torch.Tensor, trail: int) -> tuple[InputInfo, torch.Tensor | None]:
        """``x``'s kind and its events per position of its last ``trail`` dims, summed over the other dims
        (``trail = 0``: the event total). Reuses a live, unmodified tensor (or view) seen before. On the
        host path an analog input has no events (None): nothing is computed for it."""
        entry = self._entry(x)
        g = self._cached_grids(entry, x, trail)
        if self.on_host:
            # grids made once, if the decision or the events need them; the [A, R, P] view only then (it
            # copies a non-contiguous input, e.g. a permuted attention output that is analog anyway)
            made: dict[str, torch.Tensor] = {}

            def x3() -> torch.Tensor:
                if "x3" not in made:
                    made["x3"] = as_3d(x, 0, trail)
                return made["x3"]

            def nonzero_grid() -> torch.Tensor:
                if "nonzero" not in made:
                    made["nonzero"] = exact_sum(nonzero_mask(x3()), 1, 1.0)
                return made["nonzero"]

            def value_grid(mx: float) -> torch.Tensor:
                if "values" not in made:
                    made["values"] = exact_sum(x3(), 1, mx)
                return made["values"]

            if entry is None:
                noted = self._noted_sum(x)
                noted_grids = self._cached_grids(noted, x, trail)
                if noted_grids is not None:
                    made["values"] = noted_grids.values
                info = classify_on_host(x, nonzeros=lambda: float(nonzero_grid().sum()),
                                        values=lambda mx: float(value_grid(mx).sum()),
                                        integer_bound=None if noted is None else noted.bound)
                if not info.spikes:
                    self.remember(x, info)
                    return info, None
            else:
                info = entry.info
                if not info.spikes:
                    return info, None
            if g is None or g.events(info) is None:
                if info.multispike:
                    g = Grids(None, value_grid(info.max_value))
                elif info.code == BINARY:  # the values count the events
                    g = Grids(value_grid(1.0), None)
                else:
                    g = Grids(nonzero_grid(), None)
                self.remember(x, info, g, trail)  # a second reader (a shortcut conv) reuses them
        elif entry is not None:
            info = entry.info
            g = g if g is not None else stats(as_3d(x, 0, trail)).grids  # same kind, other positions
        else:
            s = stats(as_3d(x, 0, trail))
            info, g = decide(s, x.numel(), x.dtype == torch.bool), s.grids
            self.remember(x, info, g, trail)
        events = g.events(info)
        if trail == 0:
            return info, events.sum()
        return info, events.sum(0).view(x.shape[x.dim() - trail:])

    def classify(self, x: torch.Tensor) -> InputInfo:
        """The kind of ``x``, reusing the result for a live, unmodified tensor seen before."""
        entry = self._entry(x)
        if entry is not None:
            return entry.info
        if self.on_host:
            info = classify_on_host(x, integer_bound=self.integer_bound(x))
            self.remember(x, info)
            return info
        return self.inspect(x, 0)[0]

    def produced(self, module: nn.Module, out: torch.Tensor) -> None:
        """Remember a conv/linear output so a BN reading it (unmodified) can be folded."""
        if not out.is_inference():
            self._producers[out.data_ptr()] = (_Span.of(out), self.names.get(module, "?"))

    def producer_of(self, x: torch.Tensor) -> str | None:
        """Name of the conv/linear whose live output ``x`` is, unmodified (a view covering it counts)."""
        entry = self._producers.get(x.data_ptr())
        if entry is None or x.is_inference() or not entry[0].covers(x):
            return None
        return entry[1]

    def clear(self) -> None:
        self._seen.clear()
        self._producers.clear()
        self._integer_sums.clear()


def pick(cond: torch.Tensor | bool, yes: Callable[[], Any], no: Callable[[], Any]) -> Any:
    """``yes()`` where ``cond`` holds, else ``no()``. A plain bool (a kind decided on the host) runs one
    branch; a 0-dim tensor (decided on the device) runs both and selects with ``torch.where`` in float64."""
    if not isinstance(cond, torch.Tensor):
        return yes() if cond else no()
    a, b = yes(), no()
    if not isinstance(a, torch.Tensor):
        a = torch.full((), a, dtype=torch.float64, device=cond.device)
    return torch.where(cond, a, b)


Rule = Callable[[nn.Module, tuple[Any, ...], Any, ProbeState], Counts]
_RULES: dict[type[nn.Module], Rule] = {}


def register_op_rule(*types: type[nn.Module]) -> Callable[[Rule], Rule]:
    """Register ``rule(module, args, output, state) -> Counts`` for module types (users may add their own)."""

    def decorator(fn: Rule) -> Rule:
        for t in types:
            _RULES[t] = fn
        return fn

    return decorator


def rule_for(module: nn.Module) -> Rule | None:
    """The rule of the most specific registered class in the module's MRO."""
    for cls in type(module).__mro__:
        if cls in _RULES:
            return _RULES[cls]
    return None


def call_steps(out: Any, state: ProbeState) -> tuple[int, str]:
    """How many time steps one call covers, read from its output's leading dims, and a note when unsure.

    ``[T*B, ...]`` (SeqToANNContainer) and ``[T, B, ...]`` (multi-step layers): T; ``[B, ...]`` (a stem run
    once on the static image): 1. Any other layout (time folded into a token axis, as in temporal or joint
    space-time attention): 1, i.e. the call is counted whole in the ANN equivalent, with a note. The
    ANN-equivalent counts (``ann_*``) of a call are its counts divided by these steps.
    """
    T, B = state.time_steps, state.batch
    if T <= 1 or not isinstance(out, torch.Tensor) or out.dim() == 0:
        return 1, ""
    lead = out.shape[0]
    if lead == T * B or (out.dim() >= 2 and lead == T and out.shape[1] == B):
        return T, ""
    if lead == B:
        return 1, ""
    return 1, "ANN equivalent: time not in the leading dims, call counted whole"


def _per(n: Any, steps: int) -> Any:
    """``n / steps``, an exact integer where it divides (counts stay integers)."""
    if isinstance(n, int) and n % steps == 0:
        return n // steps
    return n / steps


def _reads(info: InputInfo, x: torch.Tensor) -> dict[str, Any]:
    """What reading input ``x`` costs in data: its events (0 when analog), its elements by kind."""
    n = x.numel()
    return {"in_events": info.events, "spike_in_elems": pick(info.spikes, lambda: n, lambda: 0),
            "analog_in_elems": pick(info.spikes, lambda: 0, lambda: n)}


def _moved(info: InputInfo, x: torch.Tensor, out: torch.Tensor, steps: int) -> dict[str, Any]:
    """The data counts of a one-input call: input read, output written, and one ANN inference of both."""
    return {**_reads(info, x), "out_elems": out.numel(), "ann_in_elems": _per(x.numel(), steps),
            "ann_out_elems": _per(out.numel(), steps)}


def _synaptic(info: InputInfo, dense: int, acs: Callable[[], Any], x: torch.Tensor, out: torch.Tensor,
              state: ProbeState, weights: int, leading: int) -> Counts:
    """Spike input: ``acs()`` accumulates (SOPs); analog input: ``dense`` MACs. ``weights``: elements of the
    weight; ``leading``: the call's batch rows (images of a conv, rows of a linear), for the weight passes
    (weights x sample-steps, at most one pass per row)."""
    spikes = info.spikes
    acs_ = pick(spikes, acs, lambda: 0)
    steps, note = call_steps(out, state)
    passes = weights * min(leading, state.batch * steps)
    return Counts(macs=pick(spikes, lambda: 0, lambda: dense), acs=acs_, sops=acs_, dense_macs=dense,
                  approx_sops=info.rate * dense, kinds=(info.code,), ann_macs=_per(dense, steps),
                  weight_passes=pick(spikes, lambda: 0, lambda: passes), ann_weight_passes=_per(passes, steps),
                  note=note, **_moved(info, x, out, steps))


def conv_counts(x: torch.Tensor, out: torch.Tensor, state: ProbeState, *, in_channels: int, out_channels: int,
                kernel_size: tuple[int, ...], stride: tuple[int, ...], pad_lo: tuple[int, ...],
                dilation: tuple[int, ...], groups: int, padding_mode: str = "zeros") -> Counts:
    """Counts of one N-d convolution: exact event x reach ACs on spikes, dense MACs on analog input."""
    n = len(kernel_size)
    in_sp, out_sp = x.shape[-n:], out.shape[-n:]
    dense = out.numel() * (in_channels // groups) * math.prod(kernel_size)
    info, profile = state.inspect(x, n)
    vectors = tuple(reach_1d(in_sp[d], out_sp[d], kernel_size[d], stride[d], pad_lo[d], dilation[d], padding_mode)
                    for d in range(n))
    weights = out_channels * (in_channels // groups) * math.prod(kernel_size)
    images = out.numel() // max(1, out_channels * math.prod(out_sp))
    return _synaptic(info, dense, lambda: weighted_events(profile, vectors) * (out_channels // groups), x, out,
                     state, weights, images)


@register_op_rule(nn.Conv1d, nn.Conv2d, nn.Conv3d)
def conv_rule(m: nn.Module, args: tuple[Any, ...], out: torch.Tensor, state: ProbeState) -> Counts:
    """Conv: exact event x reach ACs on spikes, dense MACs on analog input."""
    assert isinstance(m, nn.modules.conv._ConvNd)
    state.produced(m, out)
    n = len(m.kernel_size)
    pads = m._reversed_padding_repeated_twice  # [lo_last, hi_last, lo_prev, hi_prev, ...]
    return conv_counts(args[0], out, state, in_channels=m.in_channels, out_channels=m.out_channels,
                       kernel_size=m.kernel_size, stride=m.stride, pad_lo=tuple(pads[2 * (n - 1 - d)] for d in range(n)),
                       dilation=m.dilation, groups=m.groups, padding_mode=m.padding_mode)


@register_op_rule(nn.Linear)
def linear_rule(m: nn.Module, args: tuple[Any, ...], out: torch.Tensor, state: ProbeState) -> Counts:
    """Linear: events x out_features ACs on spikes, dense MACs on analog input."""
    assert isinstance(m, nn.Linear)
    state.produced(m, out)
    x = args[0]
    info, events = state.inspect(x, 0)
    return _synaptic(info, out.numel() * m.in_features, lambda: events * m.out_features, x, out, state,
                     m.in_features * m.out_features, out.numel() // max(1, m.out_features))


@register_op_rule(nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
def batchnorm_rule(m: nn.Module, args: tuple[Any, ...], out: torch.Tensor, state: ProbeState) -> Counts:
    """BN: folded (0 ops) after an unmodified conv/linear output when fold_bn, else 1 MAC per element."""
    source = state.producer_of(args[0]) if state.fold_bn and not m.training else None
    if source is not None:
        return Counts(note=f"folded into {source}")
    n = args[0].numel()
    return Counts(macs=n, dense_macs=n, **_dense_data(n, out, state, "not folded"))


def _dense_data(n: int, out: torch.Tensor, state: ProbeState, note: str = "") -> dict[str, Any]:
    """Data counts of an element-wise layer with dense MACs (unfolded BN, LayerNorm, GroupNorm): ``n`` MACs,
    its input read as activations whatever it holds (the MACs are dense), one ANN inference of all that."""
    steps, steps_note = call_steps(out, state)
    x_numel = out.numel()  # the same shape in and out
    return {"ann_macs": _per(n, steps), "analog_in_elems": x_numel, "out_elems": out.numel(),
            "ann_in_elems": _per(x_numel, steps), "ann_out_elems": _per(out.numel(), steps),
            "note": "; ".join(t for t in (note, steps_note) if t)}


@register_op_rule(nn.LayerNorm, nn.GroupNorm)
def norm_rule(m: nn.Module, args: tuple[Any, ...], out: torch.Tensor, state: ProbeState) -> Counts:
    """LayerNorm/GroupNorm: 3 MACs per element with affine, 2 without."""
    affine = getattr(m, "elementwise_affine", getattr(m, "affine", False))
    n = args[0].numel() * (3 if affine else 2)
    return Counts(macs=n, dense_macs=n, **_dense_data(n, out, state))


def _pool_geometry(m: nn.Module, x: torch.Tensor, out: torch.Tensor, n: int) -> tuple[tuple[int, ...], ...]:
    in_sp, out_sp = x.shape[-n:], out.shape[-n:]
    if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                      nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)):
        return tuple(adaptive_reach_1d(in_sp[d], out_sp[d]) for d in range(n))

    def per_dim(v: Any) -> tuple[int, ...]:
        return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n

    k, s, p = per_dim(m.kernel_size), per_dim(m.stride or m.kernel_size), per_dim(m.padding)
    dil = per_dim(getattr(m, "dilation", 1))
    return tuple(reach_1d(in_sp[d], out_sp[d], k[d], s[d], p[d], dil[d]) for d in range(n))


_POOL_DIMS = {
    nn.AvgPool1d: 1, nn.AvgPool2d: 2, nn.AvgPool3d: 3, nn.AdaptiveAvgPool1d: 1, nn.AdaptiveAvgPool2d: 2,
    nn.AdaptiveAvgPool3d: 3, nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3, nn.AdaptiveMaxPool1d: 1,
    nn.AdaptiveMaxPool2d: 2, nn.AdaptiveMaxPool3d: 3,
}


def _pool_dims(m: nn.Module) -> int:
    return next(n for cls, n in _POOL_DIMS.items() if isinstance(m, cls))


@register_op_rule(nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
                  nn.AdaptiveAvgPool3d)
def avgpool_rule(m: nn.Module, args: tuple[Any, ...], out: torch.Tensor, state: ProbeState) -> Counts:
    """Avg pooling: additions as ACs (events x windows on spikes, (element, window) pairs on analog)."""
    x = args[0]
    n = _pool_dims(m)
    vectors = _pool_geometry(m, x, out, n)
    info, profile = state.inspect(x, n)
    analog = x.numel() // math.prod(x.shape[-n:]) * math.prod(sum(v) for v in vectors)
    steps, note = call_steps(out, state)
    return Counts(acs=pick(info.spikes, lambda: weighted_events(profile, vectors), lambda: analog),
                  kinds=(info.code,), note=note, **_moved(info, x, out, steps))


@register_op_rule(nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
                  nn.AdaptiveMaxPool3d)
def maxpool_rule(m: nn.Module, args: tuple[Any, ...], out: Any, state: ProbeState) -> Counts:
    """Max pooling: comparisons listed (input-window pairs minus outputs), not costed."""
    x = args[0]
    out = out[0] if isinstance(out, tuple) else out
    n = _pool_dims(m)
    vectors = _pool_geometry(m, x, out, n)
    pairs = x.numel() // math.prod(x.shape[-n:]) * math.prod(sum(v) for v in vectors)
    steps, note = call_steps(out, state)
    return Counts(cmps=pairs - out.numel(), note=note, **_moved(state.classify(x), x, out, steps))


def _event_sums(x: torch.Tensor, info: InputInfo, dim: int) -> torch.Tensor:
    """Events of ``x`` summed along ``dim`` (float64, exact): values when multispike, else nonzeros."""
    return pick(info.multispike, lambda: exact_sum(x, dim), lambda: exact_sum(nonzero_mask(x), dim))


def matmul_counts(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, state: ProbeState) -> Counts:
    """``a @ b``: nonzero products on spike x spike, events x free dim on spike x analog, MACs on analog."""
    a = a.unsqueeze(0) if a.dim() == 1 else a
    b = b.unsqueeze(-1) if b.dim() == 1 else b
    n_, k_, m_ = a.shape[-2], a.shape[-1], b.shape[-1]
    dense = out.numel() * k_
    ia, ib = state.classify(a), state.classify(b)
    sa, sb = ia.spikes, ib.spikes
    batch = out.shape[:-2] if out.dim() >= 2 else ()

    def both() -> torch.Tensor:  # sum over (i, k, j) of events(a_ik) x events(b_kj) = sum_k colsum_k x rowsum_k
        return (_event_sums(a, ia, -2) * _event_sums(b, ib, -1)).sum()

    def a_only() -> torch.Tensor:  # each event of a adds one row of m real values
        return torch.broadcast_to(_event_sums(a, ia, -2).sum(-1), batch).sum() * m_

    def b_only() -> torch.Tensor:
        return torch.broadcast_to(_event_sums(b, ib, -1).sum(-1), batch).sum() * n_

    acs = pick(sa & sb, both, lambda: pick(sa, a_only, lambda: pick(sb, b_only, lambda: 0)))
    # The literature's estimate: input firing rate (the spike operand's; the product of both) x dense.
    rate = pick(sa, lambda: ia.rate, lambda: 1.0) * pick(sb, lambda: ib.rate, lambda: 1.0)
    steps, note = call_steps(out, state)
    ra, rb = _reads(ia, a), _reads(ib, b)
    return Counts(macs=pick(sa | sb, lambda: 0, lambda: dense), acs=acs, sops=acs, dense_macs=dense,
                  approx_sops=rate * dense, kinds=(ia.code, ib.code), ann_macs=_per(dense, steps),
                  **{k: ra[k] + rb[k] for k in ra}, out_elems=out.numel(),
                  ann_in_elems=_per(a.numel(), call_steps(a, state)[0]) + _per(b.numel(), call_steps(b, state)[0]),
                  ann_out_elems=_per(out.numel(), steps), note=note)


def neuron_counts(out: torch.Tensor, state: ProbeState) -> Counts:
    """A neuron module's call: one update per neuron per step, its output written (events when spikes;
    the kind and events reuse the firing statistics' classification of ``out`` when they ran)."""
    info = state.classify(out)
    n = out.numel()
    return Counts(neuron_updates=n, out_elems=n, out_events=info.events,
                  spike_out_elems=pick(info.spikes, lambda: n, lambda: 0))


@register_op_rule(MatMul)
def matmul_rule(m: nn.Module, args: tuple[Any, ...], out: torch.Tensor, state: ProbeState) -> Counts:
    """``a @ b`` through the MatMul module (see :func:`matmul_counts`)."""
    return matmul_counts(args[0], args[1], out, state)


# ------------------------------------------------------------------------------------ torch function calls

FunctionRule = Callable[[tuple[Any, ...], dict[str, Any], Any, ProbeState], Counts]


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, name: str, default: Any = None) -> Any:
    return args[i] if len(args) > i else kwargs.get(name, default)


def _matmul_call(first: int, names: tuple[str, str]) -> FunctionRule:
    """Rule for a product whose operands are positional ``first``, ``first + 1`` (e.g. addmm's mat1, mat2)."""

    def rule(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, state: ProbeState) -> Counts:
        a, b = _arg(args, kwargs, first, names[0]), _arg(args, kwargs, first + 1, names[1])
        return matmul_counts(a, b, out, state)

    return rule


def _rmatmul_call(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, state: ProbeState) -> Counts:
    return matmul_counts(args[1], args[0], out, state)


def _linear_call(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, state: ProbeState) -> Counts:
    """``F.linear(x, w)`` = ``x @ w.T`` (the bias add is not counted)."""
    return matmul_counts(_arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight").t(), out, state)


def _conv_call(n: int) -> FunctionRule:
    """Rule for ``torch.conv{n}d(input, weight, bias, stride, padding, dilation, groups)``."""

    def tup(v: Any) -> tuple[int, ...]:
        return tuple(v) if isinstance(v, (tuple, list)) else (int(v),) * n

    def rule(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, state: ProbeState) -> Counts:
        x, w = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight")
        stride, dilation = tup(_arg(args, kwargs, 3, "stride", 1)), tup(_arg(args, kwargs, 5, "dilation", 1))
        groups = int(_arg(args, kwargs, 6, "groups", 1))
        kernel = tuple(w.shape[2:])
        padding = _arg(args, kwargs, 4, "padding", 0)
        if padding == "valid":
            pad_lo = (0,) * n
        elif padding == "same":  # as torch: total dilation * (k - 1), the smaller half before
            pad_lo = tuple(dilation[d] * (kernel[d] - 1) // 2 for d in range(n))
        else:
            pad_lo = tup(padding)
        return conv_counts(x, out, state, in_channels=w.shape[1] * groups, out_channels=w.shape[0],
                           kernel_size=kernel, stride=stride, pad_lo=pad_lo, dilation=dilation, groups=groups)

    return rule


# Torch functions that compute products: the rule counting a call made outside every counted module, or
# None for functions without a clear rule (listed as uncounted). Calls inside a counted module (nn.Linear's
# own F.linear, MatMul's ``@``) are the module's and never seen here.
FUNCTION_RULES: dict[Callable[..., Any], tuple[str, FunctionRule | None]] = {
    torch.matmul: ("matmul", _matmul_call(0, ("input", "other"))),
    torch.Tensor.matmul: ("matmul", _matmul_call(0, ("input", "other"))),
    torch.Tensor.__matmul__: ("matmul", _matmul_call(0, ("input", "other"))),
    torch.Tensor.__rmatmul__: ("matmul", _rmatmul_call),
    torch.mm: ("mm", _matmul_call(0, ("input", "mat2"))),
    torch.Tensor.mm: ("mm", _matmul_call(0, ("input", "mat2"))),
    torch.bmm: ("bmm", _matmul_call(0, ("input", "mat2"))),
    torch.Tensor.bmm: ("bmm", _matmul_call(0, ("input", "mat2"))),
    torch.mv: ("mv", _matmul_call(0, ("input", "vec"))),
    torch.Tensor.mv: ("mv", _matmul_call(0, ("input", "vec"))),
    torch.addmm: ("addmm", _matmul_call(1, ("mat1", "mat2"))),
    torch.Tensor.addmm: ("addmm", _matmul_call(1, ("mat1", "mat2"))),
    torch.baddbmm: ("baddbmm", _matmul_call(1, ("batch1", "batch2"))),
    torch.Tensor.baddbmm: ("baddbmm", _matmul_call(1, ("batch1", "batch2"))),
    torch.addmv: ("addmv", _matmul_call(1, ("mat", "vec"))),
    torch.Tensor.addmv: ("addmv", _matmul_call(1, ("mat", "vec"))),
    F.linear: ("linear", _linear_call),
    torch.conv1d: ("conv1d", _conv_call(1)),
    torch.conv2d: ("conv2d", _conv_call(2)),
    torch.conv3d: ("conv3d", _conv_call(3)),
    torch.einsum: ("einsum", None),
    torch.tensordot: ("tensordot", None),
    torch.inner: ("inner", None),
    torch.outer: ("outer", None),
    torch.dot: ("dot", None),
    torch.vdot: ("vdot", None),
    torch.kron: ("kron", None),
    torch.addbmm: ("addbmm", None),
    torch.addr: ("addr", None),
    torch.chain_matmul: ("chain_matmul", None),
    torch.linalg.multi_dot: ("multi_dot", None),
    torch.conv_transpose1d: ("conv_transpose1d", None),
    torch.conv_transpose2d: ("conv_transpose2d", None),
    torch.conv_transpose3d: ("conv_transpose3d", None),
    F.bilinear: ("bilinear", None),
    F.scaled_dot_product_attention: ("scaled_dot_product_attention", None),
    F.multi_head_attention_forward: ("multi_head_attention_forward", None),
}


# Torch functions adding two tensors: a sum of non-negative integer tensors is noted (ProbeState.note_sum).
SUM_FUNCTIONS = frozenset({torch.add, torch.Tensor.add, torch.Tensor.__add__, torch.Tensor.__radd__})


# Modules present in a model that the conventions exclude on purpose (element-wise or free).
EXCLUDED_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Softmax, nn.LogSoftmax, nn.LeakyReLU,
    nn.ELU, nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.PReLU,
)
# Compute modules known to need a rule (listed as uncounted when none is registered).
KNOWN_COMPUTE: tuple[type[nn.Module], ...] = (
    nn.modules.conv._ConvNd, nn.modules.linear.Bilinear, nn.MultiheadAttention, nn.RNNBase, nn.RNNCellBase,
    nn.Embedding, nn.EmbeddingBag, nn.Upsample, nn.LPPool2d, nn.InstanceNorm2d, nn.LocalResponseNorm,
)
