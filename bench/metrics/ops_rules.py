"""Per-module counting rules: input-kind classification, exact reach maps, and one rule per module type.

The conventions these rules apply are written once, as data, in :mod:`bench.metrics.conventions`
(``OPS_RULES``). Every rule sees one call of its module through a forward hook (``module, args, output``)
and returns a :class:`Counts` of that call, totals over the whole batch and all T steps (the report divides
by the number of samples). Data-dependent counts stay 0-dim tensors until the report syncs them once.

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

from bench.models.common import MatMul

SPIKE_KINDS = frozenset({"binary", "scaled", "multispike", "zero"})


@dataclass(frozen=True)
class InputInfo:
    """What a tensor is, for counting: its kind, the magnitude of one event and its event total."""

    kind: str  # binary | scaled | multispike | zero | analog
    scale: float = 1.0  # magnitude of one event (v of {0, v}); 1 otherwise
    events: float = 0.0  # nonzeros (binary, scaled) or value sum (multispike); 0 for analog
    numel: int = 0
    max_value: float = 0.0

    @property
    def spikes(self) -> bool:
        return self.kind in SPIKE_KINDS

    @property
    def rate(self) -> float:
        return self.events / self.numel if self.numel else 0.0


EXACT_F32 = 2 ** 24  # integers up to this add exactly in float32


def exact_sum(x: torch.Tensor, max_value: float = 1.0, dim: int | tuple[int, ...] | None = None) -> torch.Tensor:
    """Sum of a non-negative integer-valued tensor, exact: float32 while every partial sum stays below 2^24
    (integers add exactly there, in any order), else float64 (which copies the input)."""
    dims = tuple(range(x.dim())) if dim is None else ((dim,) if isinstance(dim, int) else dim)
    if math.prod(x.shape[d] for d in dims) * max_value < EXACT_F32:
        return x.sum(dim=dims)
    return x.sum(dim=dims, dtype=torch.float64)


def _sums(y: torch.Tensor, need_s1: bool = True) -> tuple[float, float]:
    """``(sum(y), sum(y^2))`` from float32 partials over slices of 2^24 elements: both exact when ``y`` is
    binary (every partial is an integer below 2^24). ``sum(y)`` is 0.0 when not needed."""
    flat = y.reshape(-1)
    if flat.dtype != torch.float32:
        flat = flat.float()
    s1 = s2 = 0.0
    for i in range(0, flat.numel(), EXACT_F32):
        part = flat[i:i + EXACT_F32] if flat.numel() > EXACT_F32 else flat
        if need_s1:
            s1 += part.sum().item()
        s2 += torch.dot(part, part).item()
    return s1, s2


_SAMPLE_STEP = 61  # prime, so periodic layouts do not alias


def _sample(x: torch.Tensor) -> torch.Tensor:
    """A strided subset of ``x`` (a view, no copy): every 61st index along its longest dim."""
    d = max(range(x.dim()), key=lambda i: x.shape[i]) if x.dim() else 0
    if x.dim() == 0:
        return x
    return x[(slice(None),) * d + (slice(None, None, _SAMPLE_STEP),)]


_PRESCREEN_MIN = 4 * _SAMPLE_STEP


def _analog_witness(xs: torch.Tensor) -> bool:
    """True when the sample proves the tensor analog: a negative (or NaN) value, or a non-integer value
    other than 0 and the sample's max (a {0, v} tensor has only 0 and v; a multispike one only integers).

    Real-valued activations (LayerNorm outputs, attention probabilities) are rejected on 1/61 of their
    elements, without the full min/max pass; a tensor without a witness goes on to the exact tests."""
    odd = (xs != 0) & (xs != xs.amax()) & (torch.frac(xs) != 0)
    return bool(((xs < 0) | odd).any())


def classify(x: torch.Tensor, total: torch.Tensor | None = None,
             bounds: tuple[torch.Tensor, torch.Tensor] | None = None) -> InputInfo:
    """Classify a tensor as binary / scaled / multispike / zero / analog.

    A strided sample (1/61 of the elements) is first searched for a witness that the tensor is analog
    (``_analog_witness``). Then ``min``/``max`` (one pass, one host sync): any negative value means
    analog, all zeros "zero".
    With ``v = max``, a strided sample (1/61 of the elements) first looks for a witness against each
    candidate kind (a value outside {0, v}; a non-integer), which rejects analog tensors cheaply; a
    candidate without witness is then decided exactly on the whole tensor:

    - ``{0, v}`` (binary when ``v == 1``, scaled otherwise) iff ``sum(y) == sum(y^2)`` for ``y = x / v``
      (``y`` is exactly 1 where ``x == v``; ``y = x`` when ``v == 1``), i.e. ``sum(y (1 - y)) = 0`` with
      ``0 <= y <= 1``. Both sums are exact for binary ``y`` (float32 partials of integers below 2^24), so
      spikes always pass; another tensor passes only if its departure from {0, v} is below the float32
      rounding of these sums (its value-weighted counts then differ from event counts by less than that).
      ``total`` may pass a precomputed exact ``sum(x)`` (used when ``v == 1``), ``bounds`` a precomputed
      ``(min, max)``.
    - else, ``v`` an integer and ``frac(x) == 0`` everywhere (one pass): multispike.
    - anything else: analog.
    """
    n = x.numel()
    if x.dtype == torch.bool:
        return InputInfo("binary", events=float(torch.count_nonzero(x)), numel=n, max_value=1.0)
    if n == 0:
        return InputInfo("zero", numel=0)
    if bounds is None and n >= _PRESCREEN_MIN and _analog_witness(_sample(x)):
        return InputInfo("analog", numel=n)
    # aminmax copies a non-contiguous input; amin + amax read it in place.
    if bounds is not None:
        mn_t, mx_t = bounds
    else:
        mn_t, mx_t = torch.aminmax(x) if x.is_contiguous() else (x.amin(), x.amax())
    mn, mx = mn_t.item(), mx_t.item()
    if mn < 0 or math.isnan(mn) or math.isnan(mx) or math.isinf(mx):
        return InputInfo("analog", numel=n)
    if mx == 0:
        return InputInfo("zero", numel=n)
    xs = None if mx == 1 else _sample(x)  # {0, 1} is the common case: go straight to the exact test
    if xs is None or bool(((xs == 0) | (xs == mx)).all()):
        s1, s2 = _sums(x if mx == 1 else x / mx, need_s1=total is None or mx != 1)
        if mx == 1 and total is not None:
            s1 = float(total)
        if s1 == s2:
            return InputInfo("binary" if mx == 1 else "scaled", scale=mx, events=s1, numel=n, max_value=mx)
    if mx == round(mx) and mx > 1 and bool((xs == torch.round(xs)).all()) and torch.frac(x).max().item() == 0:
        return InputInfo("multispike", events=exact_sum(x, mx).item(), numel=n, max_value=mx)
    return InputInfo("analog", numel=n)


def event_values(x: torch.Tensor, info: InputInfo) -> torch.Tensor:
    """The events carried by each element: ``x`` (binary, multispike) or its nonzero indicator (scaled)."""
    return (x != 0) if info.kind == "scaled" else x


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


def reach_map(vectors: tuple[tuple[int, ...], ...], device: torch.device) -> torch.Tensor:
    """Outer product of 1-D reach vectors as a float64 tensor on ``device`` (cached)."""
    key = (vectors, str(device))
    cached = _REACH_MAPS.get(key)
    if cached is None:
        with torch.inference_mode(False), torch.no_grad():
            cached = torch.ones((), dtype=torch.float64, device=device)
            for v in vectors:
                cached = cached.unsqueeze(-1) * torch.tensor(v, dtype=torch.float64, device=device)
        _REACH_MAPS[key] = cached
    return cached


def event_profile(x: torch.Tensor, info: InputInfo, spatial_dims: int) -> torch.Tensor:
    """Events of ``x`` summed over every dim but the last ``spatial_dims``: exact while partials < 2^24."""
    ev = event_values(x, info)
    lead = tuple(range(ev.dim() - spatial_dims))
    return exact_sum(ev, 1.0 if info.kind == "scaled" else info.max_value, dim=lead)


def weighted_events(profile: torch.Tensor, vectors: tuple[tuple[int, ...], ...]) -> torch.Tensor:
    """``sum(profile * outer(vectors))`` in float64: the event x reach total, exact."""
    return torch.dot(profile.reshape(-1).double(), reach_map(vectors, profile.device).reshape(-1))


# ------------------------------------------------------------------------------------------------- counts

COUNT_FIELDS = ("macs", "acs", "sops", "dense_macs", "approx_sops", "neuron_updates", "cmps")


@dataclass
class Counts:
    """Counts of one call (totals over batch and time). Values are ints, floats or 0-dim tensors."""

    macs: Any = 0
    acs: Any = 0
    sops: Any = 0
    dense_macs: Any = 0
    approx_sops: Any = None  # None: not applicable (no spike input to a synaptic product)
    neuron_updates: Any = 0
    cmps: Any = 0
    kinds: tuple[str, ...] = ()
    note: str = ""


class ProbeState:
    """Per-forward bookkeeping the rules share: kinds of live tensors already classified, and which live
    tensor came out of which conv/linear (for BN folding).

    Entries are keyed by storage pointer and checked by weak reference (the tensor is still alive, so the
    memory was not reused) and by version counter (not modified in place since). Inference-mode tensors
    have no version counter, so under ``torch.inference_mode`` nothing is cached and every input is
    classified afresh.
    """

    def __init__(self, fold_bn: bool = True):
        self.fold_bn = fold_bn
        self.names: dict[nn.Module, str] = {}
        self._kinds: dict[int, tuple[weakref.ref, int, InputInfo, Any]] = {}
        self._producers: dict[int, tuple[weakref.ref, str]] = {}

    def remember(self, x: torch.Tensor, info: InputInfo, profile: torch.Tensor | None = None) -> None:
        """Cache ``x``'s kind, and optionally its event profile: event sums per position of its last
        ``profile.dim()`` dims over all other dims (what a conv reading ``x`` needs)."""
        if not x.is_inference():
            # Keep a weak reference to the base of a view: the view itself (e.g. a flatten(0, 1) made by
            # a container) dies with its call, the base lives on for the next reader.
            base = x if x._base is None else x._base
            layout = (tuple(x.shape[-profile.dim():]), tuple(x.stride()[-profile.dim():])) \
                if profile is not None and x.is_contiguous() else None
            self._kinds[x.data_ptr()] = (weakref.ref(base), x._version, info, (layout, profile))

    def _entry(self, x: torch.Tensor) -> tuple[InputInfo, Any] | None:
        entry = self._kinds.get(x.data_ptr())
        if entry is None or x.is_inference():
            return None
        ref, version, info, profile = entry
        if ref() is None or info.numel != x.numel() or x._version != version:
            return None
        return info, profile

    def classify(self, x: torch.Tensor) -> InputInfo:
        """:func:`classify`, reusing the result for a live, unmodified tensor (or view) seen before."""
        entry = self._entry(x)
        if entry is not None:
            return entry[0]
        info = classify(x)
        self.remember(x, info)
        return info

    def profile(self, x: torch.Tensor, spatial_dims: int) -> torch.Tensor | None:
        """The cached event profile of ``x`` over its last ``spatial_dims`` dims, when one matches."""
        entry = self._entry(x)
        if entry is None or entry[1][1] is None or not x.is_contiguous():
            return None
        layout, profile = entry[1]
        if profile.dim() != spatial_dims or layout != (tuple(x.shape[-spatial_dims:]),
                                                        tuple(x.stride()[-spatial_dims:])):
            return None
        return profile

    def produced(self, module: nn.Module, out: torch.Tensor) -> None:
        """Remember a conv/linear output so a BN reading it can be folded."""
        self._producers[out.data_ptr()] = (weakref.ref(out), self.names.get(module, "?"))

    def producer_of(self, x: torch.Tensor) -> str | None:
        """Name of the conv/linear whose (still live) output ``x`` is, or a view of it."""
        entry = self._producers.get(x.data_ptr())
        if entry is None:
            return None
        ref, name = entry
        src = ref()
        if src is None or src.numel() != x.numel():
            return None
        return name

    def clear(self) -> None:
        self._kinds.clear()
        self._producers.clear()


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


def _synaptic(info: InputInfo, dense: int, exact: Callable[[], Any], note: str = "") -> Counts:
    if not info.spikes:
        return Counts(macs=dense, dense_macs=dense, kinds=(info.kind,), note=note)
    acs = exact() if info.kind != "zero" else 0
    return Counts(acs=acs, sops=acs, dense_macs=dense, approx_sops=info.rate * dense, kinds=(info.kind,), note=note)


@register_op_rule(nn.Conv1d, nn.Conv2d, nn.Conv3d)
def conv_rule(m: nn.Module, args: tuple[Any, ...], out: torch.Tensor, state: ProbeState) -> Counts:
    """Conv: exact event x reach ACs on spikes, dense MACs on analog input."""
    assert isinstance(m, nn.modules.conv._ConvNd)
    x = args[0]
    state.produced(m, out)
    n = len(m.kernel_size)
    in_sp, out_sp = x.shape[-n:], out.shape[-n:]
    dense = out.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)
    info = state.classify(x)
    pads = m._reversed_padding_repeated_twice  # [lo_last, hi_last, lo_prev, hi_prev, ...]
    mode = m.padding_mode

    def exact() -> torch.Tensor:
        vectors = tuple(
            reach_1d(in_sp[d], out_sp[d], m.kernel_size[d], m.stride[d], pads[2 * (n - 1 - d)], m.dilation[d], mode)
            for d in range(n)
        )
        profile = state.profile(x, n)
        if profile is None:
            profile = event_profile(x, info, n)
        return weighted_events(profile, vectors) * (m.out_channels // m.groups)

    return _synaptic(info, dense, exact)


@register_op_rule(nn.Linear)
def linear_rule(m: nn.Module, args: tuple[Any, ...], out: torch.Tensor, state: ProbeState) -> Counts:
    """Linear: events x out_features ACs on spikes, dense MACs on analog input."""
    assert isinstance(m, nn.Linear)
    x = args[0]
    state.produced(m, out)
    info = state.classify(x)
    return _synaptic(info, out.numel() * m.in_features, lambda: info.events * m.out_features)


@register_op_rule(nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
def batchnorm_rule(m: nn.Module, args: tuple[Any, ...], out: torch.Tensor, state: ProbeState) -> Counts:
    """BN: folded (0 ops) after a conv/linear when fold_bn, else 1 MAC per element."""
    source = state.producer_of(args[0]) if state.fold_bn and not m.training else None
    if source is not None:
        return Counts(note=f"folded into {source}")
    n = args[0].numel()
    return Counts(macs=n, dense_macs=n, note="not folded")


@register_op_rule(nn.LayerNorm, nn.GroupNorm)
def norm_rule(m: nn.Module, args: tuple[Any, ...], out: torch.Tensor, state: ProbeState) -> Counts:
    """LayerNorm/GroupNorm: 3 MACs per element with affine, 2 without."""
    affine = getattr(m, "elementwise_affine", getattr(m, "affine", False))
    n = args[0].numel() * (3 if affine else 2)
    return Counts(macs=n, dense_macs=n)


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
    info = state.classify(x)
    if info.spikes:
        acs = weighted_events(event_profile(x, info, n), vectors) if info.kind != "zero" else 0
    else:
        acs = x.numel() // math.prod(x.shape[-n:]) * math.prod(sum(v) for v in vectors)
    return Counts(acs=acs, kinds=(info.kind,))


@register_op_rule(nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
                  nn.AdaptiveMaxPool3d)
def maxpool_rule(m: nn.Module, args: tuple[Any, ...], out: Any, state: ProbeState) -> Counts:
    """Max pooling: comparisons listed (input-window pairs minus outputs), not costed."""
    x = args[0]
    out = out[0] if isinstance(out, tuple) else out
    n = _pool_dims(m)
    vectors = _pool_geometry(m, x, out, n)
    pairs = x.numel() // math.prod(x.shape[-n:]) * math.prod(sum(v) for v in vectors)
    return Counts(cmps=pairs - out.numel())


@register_op_rule(MatMul)
def matmul_rule(m: nn.Module, args: tuple[Any, ...], out: torch.Tensor, state: ProbeState) -> Counts:
    """``a @ b``: nonzero products on spike x spike, events x free dim on spike x analog, MACs on analog."""
    a, b = args[0], args[1]
    a = a.unsqueeze(0) if a.dim() == 1 else a
    b = b.unsqueeze(-1) if b.dim() == 1 else b
    n_, k_, m_ = a.shape[-2], a.shape[-1], b.shape[-1]
    dense = out.numel() * k_
    ia, ib = state.classify(a), state.classify(b)
    kinds = (ia.kind, ib.kind)
    if not ia.spikes and not ib.spikes:
        return Counts(macs=dense, dense_macs=dense, kinds=kinds)
    batch = out.shape[:-2] if out.dim() >= 2 else ()
    if "zero" in kinds:
        acs: Any = 0
    elif ia.spikes and ib.spikes:
        ca = event_values(a, ia).sum(dim=-2, dtype=torch.float64)  # [..., k]
        rb = event_values(b, ib).sum(dim=-1, dtype=torch.float64)  # [..., k]
        acs = (ca * rb).sum()
    elif ia.spikes:
        ev = event_values(a, ia).sum(dim=(-2, -1), dtype=torch.float64)
        acs = torch.broadcast_to(ev, batch).sum() * m_
    else:
        ev = event_values(b, ib).sum(dim=(-2, -1), dtype=torch.float64)
        acs = torch.broadcast_to(ev, batch).sum() * n_
    # The literature's estimate: input firing rate (the spike operand's; the product of both) x dense.
    rate = (ia.rate if ia.spikes else 1.0) * (ib.rate if ib.spikes else 1.0)
    return Counts(acs=acs, sops=acs, dense_macs=dense, approx_sops=rate * dense, kinds=kinds)


# Modules present in a model that the conventions exclude on purpose (element-wise or free).
EXCLUDED_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Softmax, nn.LogSoftmax, nn.LeakyReLU,
    nn.ELU, nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.PReLU,
)
# Modules that do no arithmetic worth counting.
FREE_TYPES: tuple[type[nn.Module], ...] = (
    nn.Identity, nn.Flatten, nn.Unflatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
    nn.ZeroPad2d, nn.ConstantPad2d,
)
# Compute modules known to need a rule (listed as uncounted when none is registered).
KNOWN_COMPUTE: tuple[type[nn.Module], ...] = (
    nn.modules.conv._ConvNd, nn.modules.linear.Bilinear, nn.MultiheadAttention, nn.RNNBase, nn.RNNCellBase,
    nn.Embedding, nn.EmbeddingBag, nn.Upsample, nn.LPPool2d, nn.InstanceNorm2d, nn.LocalResponseNorm,
)
