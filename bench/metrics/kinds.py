"""What a tensor is, for counting (binary / scaled / multispike / zero / analog), decided on its own device.

Every statistic the decision needs is an exact integer count, an exact extreme or an exact flag, computed
with tensor operations on the tensor's device. Two evaluations of the one decision:

- :func:`classify` (device path, GPUs): every statistic is computed (:func:`stats`: one fused pass over
  the tensor on CUDA, torch operations elsewhere) and the decision is a chain of ``torch.where`` on 0-dim
  tensors. Nothing is read on the host: the kind is an integer-valued 0-dim tensor (an index into
  :data:`KINDS`), the event total a 0-dim float64 tensor, and the probe moves them to the host once, after
  the forward (:meth:`bench.metrics.probe.Probe.finish`). A GPU never waits between layers.
- :func:`classify_on_host` (host path, CPUs, where reading a value costs no device round-trip): the same
  decision taken step by step in Python, skipping what the answer no longer needs, with cheap first
  looks: the first 32 elements of the tensor's first row, read on the host (a negative, NaN or infinite
  value, or a non-integer beside another nonzero value, proves it analog), then its first block of 4096
  elements and (from 2^21 elements) a strided 1/61 sample (a negative or a non-integer value other than 0
  and the looked-at part's max proves a tensor analog; a value outside {0, max} in the head, or else in the
  strided sample (at any size), proves it is not two-level, a fractional head value that it is not
  multispike). Every shortcut is a proof, so both paths give
  the same kinds and events (tests compare them on every family).

The decision (its conventions text: ``bench.metrics.conventions``, ``INPUT_KINDS`` and "Input kind"):

1. bool tensors are binary (events = nonzeros); empty tensors are zero.
2. ``min < 0``, a NaN or an infinite max: analog.
3. ``max == 0``: zero.
4. every nonzero equals ``v = max`` (the count of ``x == v`` equals the count of nonzeros; the fused
   kernels test "smallest nonzero == v", the same fact): binary when ``v == 1``, scaled otherwise;
   events = nonzeros.
5. ``v`` an integer above 1 and every value an integer (``frac(x) == 0``): multispike; events = value sum.
6. anything else: analog (events 0).

Exactness: counts are exact integers whatever the dtype (half-precision inputs included). Sums of
integer-valued tensors are float32 sums over groups of at most :data:`GROUP` elements (exact while a
group's sum stays below 2^24, so no float64 copy of the tensor is made) added up in float64. A
multispike tensor whose max exceeds :data:`MULTISPIKE_MAX` would break that bound: it gets the code
:data:`UNSUPPORTED`, which the probe reports as an error after the forward.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from bench.metrics.kind_stats import GROUP, MULTISPIKE_MAX, Grids, Stats

KINDS = ("zero", "binary", "scaled", "multispike", "analog")  # index = code; most to least spike-like
ZERO, BINARY, SCALED, MULTISPIKE, ANALOG = range(len(KINDS))
UNSUPPORTED = len(KINDS)  # multispike values too large to sum exactly in float32 groups
SPIKE_KINDS = frozenset(KINDS[:ANALOG])

_CHUNK = 1 << 24  # elements per pass of the element-wise tests on GPUs (bounds their temporary memory)
_CHUNK_CPU = 1 << 20  # ... on CPUs


@dataclass(frozen=True)
class InputInfo:
    """A tensor's kind and event total (see the module docstring): 0-dim tensors on its device from
    :func:`classify`, plain numbers from :func:`classify_on_host`.

    ``code``: index into :data:`KINDS` (or :data:`UNSUPPORTED`), integer-valued; ``events``: nonzeros (binary, scaled),
    value sum (multispike) or 0 (zero, analog), float64; ``numel``: the element count.
    """

    code: torch.Tensor | int
    events: torch.Tensor | float
    numel: int
    max_value: float | None = None  # the max, when decided on the host

    @property
    def on_host(self) -> bool:
        """True when the kind was decided on the host (plain numbers), False for device tensors."""
        return not isinstance(self.code, torch.Tensor)

    @property
    def spikes(self) -> torch.Tensor | bool:
        """A spike kind (zero, binary, scaled, multispike): a bool, or a 0-dim bool tensor."""
        return self.code < ANALOG

    @property
    def multispike(self) -> torch.Tensor | bool:
        return self.code == MULTISPIKE

    @property
    def rate(self) -> torch.Tensor | float:
        """Events per element (float64): the mean firing rate of a spike tensor."""
        return self.events / self.numel if self.numel else self.events

    @property
    def kind(self) -> str:
        """The kind's name. Reads the code on the host: for callers and tests, never inside the probe."""
        return KINDS[int(self.code)]


def as_3d(x: torch.Tensor, lead: int, trail: int) -> torch.Tensor:
    """``x`` as ``[prod(first lead dims), rest, prod(last trail dims)]`` (a view when ``x`` is contiguous)."""
    a = p = 1
    for s in x.shape[:lead]:
        a *= s
    for s in x.shape[x.dim() - trail:] if trail else ():
        p *= s
    return x.reshape(a, x.numel() // (a * p) if a * p else 0, p)


def exact_sum(x: torch.Tensor, dim: int, max_value: float | None = None) -> torch.Tensor:
    """Sum along ``dim`` in float64, exact for integer values up to :data:`MULTISPIKE_MAX` (any count):
    float32 sums over groups of :data:`GROUP` elements (no float64 copy of ``x``), then float64. A known
    ``max_value`` (host path) allows one float32 sum whenever every partial sum stays below 2^24."""
    if x.dtype == torch.float64:
        return x.sum(dim)
    if x.dtype == torch.bool:
        x = x.view(torch.uint8)
    if not (x.is_floating_point() or x.dtype == torch.uint8):
        return x.sum(dim).double()  # integers: exact int64 sums
    n = x.shape[dim]
    if n <= GROUP or (max_value is not None and n * max_value <= 2 ** 24):
        if _by_matmul(x, dim, max_value):
            return torch.matmul(x.new_ones(1, n), x).squeeze(1).double()
        return x.sum(dim, dtype=torch.float32).double()
    dim = dim % x.dim()
    q = n // GROUP
    total = x.narrow(dim, 0, q * GROUP).unflatten(dim, (q, GROUP)).sum(dim + 1, dtype=torch.float32)
    total = total.sum(dim, dtype=torch.float64)
    if q * GROUP < n:
        total = total + x.narrow(dim, q * GROUP, n - q * GROUP).sum(dim, dtype=torch.float32)
    return total


_MATMUL_MIN_POSITIONS = 256  # from here a CPU sum over the middle dim is slower than a matrix product
_BF16_EXACT = 256.0  # integers up to this are exact in bfloat16 (a reduced-precision float32 matmul setting)


def _by_matmul(x: torch.Tensor, dim: int, max_value: float | None) -> bool:
    """Whether to sum ``[A, R, P]`` over ``R`` as ``ones @ x`` (CPU, float32, many positions): about twice as
    fast there as the strided sum, and as exact for integer values whose partial sums stay below 2^24 (every
    product is ``1 x value``; every partial sum an integer, whatever the order). Values up to
    :data:`_BF16_EXACT` only, so a user's reduced-precision matmul setting (bfloat16 or TF32 inputs, float32
    accumulation) cannot round them."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 3 and dim in (1, -2)
            and x.shape[2] >= _MATMUL_MIN_POSITIONS and max_value is not None and abs(max_value) <= _BF16_EXACT
            and x.is_contiguous())


def nonzero_mask(x: torch.Tensor) -> torch.Tensor:
    """``x != 0`` as uint8 (a cast to bool, viewed as bytes: the fastest form to sum on CPUs)."""
    return (x if x.dtype == torch.bool else x.bool()).view(torch.uint8)


def grids(x3: torch.Tensor, mask: torch.Tensor | None = None) -> Grids:
    """:class:`Grids` of a ``[A, R, P]`` view; ``mask`` may pass its :func:`nonzero_mask`."""
    mask = nonzero_mask(x3) if mask is None else mask
    counts = exact_sum(mask, 1)
    return Grids(counts, counts if x3.dtype == torch.bool else exact_sum(x3, 1))


def bounds(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(min, max)`` as 0-dim tensors (aminmax copies a non-contiguous input; amin and amax do not)."""
    return torch.aminmax(x) if x.is_contiguous() else (x.amin(), x.amax())


def _chunk_size(x: torch.Tensor) -> int:
    """Elements per pass of the element-wise tests: small on CPUs (the scratch buffer stays in cache and
    no large allocation is made per call), large on GPUs (fewer kernel launches; memory stays bounded)."""
    return _CHUNK_CPU if x.device.type == "cpu" else _CHUNK


def _scratch_passes(x: torch.Tensor, dtype: torch.dtype) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(piece, scratch)`` pairs covering ``x`` with one reused scratch buffer of ``dtype``: flat pieces of
    at most :func:`_chunk_size` elements (the whole tensor, once, when it is not contiguous)."""
    size = _chunk_size(x)
    if not x.is_contiguous() or x.numel() <= size:
        return [(x, torch.empty_like(x, dtype=dtype))]
    flat = x.reshape(-1)
    scratch = torch.empty(size, dtype=dtype, device=x.device)
    return [(flat[i:i + size], scratch[:min(size, flat.numel() - i)]) for i in range(0, flat.numel(), size)]


def _combine(parts: list[torch.Tensor], op: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    return parts[0] if len(parts) == 1 else op(torch.stack(parts))


def count_at(x: torch.Tensor, v: torch.Tensor | float) -> torch.Tensor:
    """Count of ``x == v`` (float64, exact), assuming ``0 <= x <= v`` (other tensors are analog anyway).

    On CPUs it is counted as ``sum(floor(x / v))``: arithmetic is several times faster there than a
    comparison, and for ``0 <= x < v`` the rounded quotient stays below 1, so both counts are equal.
    """
    arithmetic = x.device.type == "cpu" and x.is_floating_point()
    counts = []
    for part, scratch in _scratch_passes(x, x.dtype if arithmetic else torch.bool):
        if arithmetic:
            torch.div(part, v, out=scratch).floor_()
        else:
            torch.eq(part, v, out=scratch)
        counts.append(exact_sum(scratch.reshape(-1), 0))
    return _combine(counts, torch.sum)


def all_integer(x: torch.Tensor) -> torch.Tensor:
    """Whether every value of a non-negative ``x`` is an integer (0-dim bool; NaN and infinities are not).
    (Called only where ``min(x) >= 0``, or where a negative value makes the tensor analog anyway.)"""
    if not x.is_floating_point():
        return torch.ones((), dtype=torch.bool, device=x.device)
    if x.numel() <= _chunk_size(x):
        return torch.frac(x).amax() == 0
    fracs = [torch.frac(part, out=scratch).amax() for part, scratch in _scratch_passes(x, x.dtype)]
    return _combine(fracs, torch.amax) == 0


def _full(value: float | int, like: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return torch.full((), value, dtype=dtype, device=like.device)


# "auto": the fused Triton kernels for the CUDA tensors they support, the compiled CPU pass (numba) for
# float32 neuron outputs on the host path, torch operations otherwise; "eager": torch operations
# everywhere; "triton": the Triton kernels wherever they run (tests use Triton's interpreter).
STATS_BACKEND = os.environ.get("SNNBENCH_STATS_BACKEND", "auto")
_fused_failure: list[str] = []  # set once the kernels failed to build here: torch operations from then on


def stats(x3: torch.Tensor, window: bool = False) -> Stats:
    """:class:`Stats` of a ``[A, R, P]`` view: one fused pass (``bench.metrics.stats_triton``) on CUDA
    for float16/bfloat16/float32, else torch operations (:func:`eager_stats`, the reference)."""
    if not _fused_failure and (STATS_BACKEND == "triton" or (STATS_BACKEND == "auto" and x3.is_cuda)):
        fused = _fused()
        if fused is not None and fused.supports(x3):
            try:
                return fused.stats(x3, window)
            except fused.KernelError as e:  # a kernel that cannot be built for this GPU: slower, still exact
                _fused_failure.append(repr(e))
                warnings.warn(f"fused counting kernels unavailable ({e!r}); using torch operations", stacklevel=2)
    return eager_stats(x3, window)


@lru_cache(maxsize=1)
def _fused() -> Any:
    """``bench.metrics.stats_triton``, or None (with a warning) where Triton cannot be imported."""
    try:
        from bench.metrics import stats_triton
    except ImportError as e:  # e.g. a CUDA build of torch without Triton: correct, slower statistics
        warnings.warn(f"Triton unavailable ({e}); op counting on CUDA uses several passes per tensor", stacklevel=3)
        return None
    return stats_triton


def host_window_stats(x3: torch.Tensor) -> Any:
    """:func:`bench.metrics.stats_cpu.window_stats` of a neuron output's ``[T, R, P]`` view on the host path
    (one compiled pass), or None where it does not apply: another dtype or layout, numba missing (warned
    once), ``SNNBENCH_STATS_BACKEND`` other than ``auto``."""
    if STATS_BACKEND != "auto" or x3.device.type != "cpu":
        return None
    fused = _fused_cpu()
    if fused is None or not fused.supports(x3):
        return None
    return fused.window_stats(x3)


@lru_cache(maxsize=1)
def _fused_cpu() -> Any:
    """``bench.metrics.stats_cpu``, or None (with a warning) where numba cannot be imported."""
    try:
        from bench.metrics import stats_cpu
    except ImportError as e:  # correct, slower statistics from torch operations
        warnings.warn(f"numba unavailable ({e}); firing statistics on CPUs use several passes per tensor",
                      stacklevel=3)
        return None
    return stats_cpu


def eager_stats(x3: torch.Tensor, window: bool = False) -> Stats:
    """:class:`Stats` from torch operations (several passes); ``two_level`` as a count of ``x == max``."""
    mask = nonzero_mask(x3)
    g = grids(x3, mask)
    mn, mx = bounds(x3.view(torch.uint8) if x3.dtype == torch.bool else x3)
    two_level = count_at(x3, mx) == g.nonzero.sum()
    active = saturated = None
    if window:
        steps = mask.view(x3.shape[0], -1)
        active, saturated = exact_sum(steps.amax(0), 0), exact_sum(steps.amin(0), 0)
    mn, mx = mn.double(), mx.double()
    return Stats(g, mn, mx, torch.isnan(mn) | torch.isnan(mx), two_level, all_integer(x3), active, saturated)


def decide(s: Stats, numel: int, boolean: bool = False) -> InputInfo:
    """The decision of the module docstring on device :class:`Stats`, by ``torch.where`` (no host read)."""
    if boolean:
        return InputInfo(_full(BINARY, s.grids.nonzero, torch.int64), s.grids.nonzero.sum(), numel)
    if s.decided is not None:
        return InputInfo(*s.decided, numel)
    mn, mx = s.minimum, s.maximum
    nonzeros, value_sum = s.grids.nonzero.sum(), s.grids.values.sum()
    analog = (mn < 0) | s.nan | ~torch.isfinite(mx)
    multi = (mx > 1) & (mx == torch.round(mx)) & s.integral
    code = torch.where(s.two_level, torch.where(mx == 1, BINARY, SCALED),
                       torch.where(multi, torch.where(mx <= MULTISPIKE_MAX, MULTISPIKE, UNSUPPORTED), ANALOG))
    code = torch.where(analog, ANALOG, torch.where(mx == 0, ZERO, code))
    events = torch.where((code == BINARY) | (code == SCALED), nonzeros,
                         torch.where(code == MULTISPIKE, value_sum, 0.0))
    return InputInfo(code, events, numel)


def classify(x: torch.Tensor) -> InputInfo:
    """The :class:`InputInfo` of ``x`` (the decision in the module docstring), without a host read."""
    if x.numel() == 0:
        return InputInfo(_full(ZERO, x, torch.int64), _full(0.0, x, torch.float64), 0)
    return decide(stats(as_3d(x, 0, 0)), x.numel(), x.dtype == torch.bool)


_SAMPLE_STEP = 61  # prime, so periodic layouts do not alias
_PRESCREEN_MIN = 1 << 21  # below this a full min/max pass costs less than the sample's few small operations
_HEAD = 4096  # elements of the head block looked at first (a few small operations, whatever the tensor's size)


def _sample(x: torch.Tensor) -> torch.Tensor:
    """A strided subset of ``x`` (a view, no copy): every 61st index along its longest dim."""
    d = max(range(x.dim()), key=lambda i: x.shape[i])
    return x[(slice(None),) * d + (slice(None, None, _SAMPLE_STEP),)]


def _head(x: torch.Tensor) -> torch.Tensor:
    """The first block of ``x`` of about :data:`_HEAD` elements (a view, no copy): index 0 along leading
    dims while what is left keeps that many, then the first rows of the next dim (an attention map's or a
    normalised activation's first rows)."""
    while x.dim() > 1 and x.numel() // x.shape[0] >= _HEAD:
        x = x[0]
    rows = -(-_HEAD * x.shape[0] // x.numel()) if x.numel() else 0
    return x[:rows]


_ROW = 32  # elements of the first row read on the host by :func:`row_witness`


def row_witness(x: torch.Tensor) -> bool:
    """True when the first elements of ``x``'s first row (read on the host: two small operations, cheaper than
    :func:`_analog_witness`' reductions) prove it analog: a negative, NaN or infinite value, or a non-integer
    beside another nonzero value (a two-level tensor has one nonzero value, a multispike one only integers)."""
    if not x.is_floating_point():
        return False
    row = torch.as_strided(x, (min(_ROW, x.shape[-1]),), (x.stride(-1),), x.storage_offset()).tolist()
    fractional = False
    for v in row:
        if not 0 <= v < math.inf:
            return True
        fractional = fractional or v != int(v)
    return fractional and len({v for v in row if v}) > 1


def _analog_witness(xs: torch.Tensor) -> bool:
    """True when the sample proves the tensor analog: a negative (or NaN) value, or a non-integer value
    other than the sample's max (a two-level tensor has only 0 and its max; a multispike one only
    integers). Reads the bounds, then (no negative seen) one flag on the host."""
    mn, mx = torch.aminmax(xs)
    if not mn >= 0:  # a negative or a NaN (one small operation decides most analog tensors)
        return True
    return xs.is_floating_point() and bool(((torch.frac(xs) != 0) & (xs != mx)).any())


# Integers a floating dtype holds exactly, from 0 up: the bound under which a sum of non-negative integer
# tensors stays exact (and so integer-valued) in that dtype.
EXACT_INTEGERS = {torch.float64: 2.0 ** 53, torch.float32: 2.0 ** 24, torch.float16: 2.0 ** 11,
                  torch.bfloat16: 2.0 ** 8}


def _max_under(x: torch.Tensor, bound: float) -> float:
    """The max of ``x``, known to hold no value above ``bound``: ``bound`` itself when its head block (or, from
    2^21 elements, its strided sample) holds that value, which proves it with no full pass; else one max pass."""
    if x.dim():
        for part in (_head(x), _sample(x)) if x.numel() >= _PRESCREEN_MIN else (_head(x),):
            if float(part.amax()) == bound:
                return bound
    return float(x.amax())


def classify_on_host(x: torch.Tensor, minmax: list[float] | None = None,
                     nonzeros: Callable[[], float] | None = None, values: Callable[[float], float] | None = None,
                     prescreen: bool = True, integer_bound: float | None = None) -> InputInfo:
    """:func:`classify`'s decision taken on the host (plain-number :class:`InputInfo`), step by step.

    Reads a few scalars and skips every statistic the answer no longer needs: the CPU path, where a read
    costs no device round-trip. ``minmax`` may pass the bounds; ``nonzeros()`` and ``values(max)``
    functions giving the exact count of nonzeros and the exact value sum (so a caller that needs the
    grids anyway computes each once); ``prescreen=False`` skips the analog witness of the head block and the
    sample (for tensors that are usually spikes, e.g. neuron outputs, where it would find nothing).

    With ``max == 1`` (and ``min >= 0``) the two-level test is ``frac(x) == 0`` everywhere: values in
    [0, 1] are all in {0, 1} exactly when they are all integers, which is when the count of ones equals
    the count of nonzeros (the device path's test), so both paths agree; the value sum then counts them.

    ``integer_bound``: the caller has proved ``x`` holds only non-negative integers no larger than this (a
    sum of such tensors, exact in its dtype: ``ProbeState.note_sum``), so the sign and integrality passes are
    skipped, and the max is read off the head block when it holds the bound (:func:`_max_under`); the
    decision is the same.
    """
    integers = integer_bound is not None
    n = x.numel()
    if n == 0:
        return InputInfo(ZERO, 0.0, 0)
    if nonzeros is None:
        def nonzeros() -> float:
            return float(exact_sum(nonzero_mask(x).reshape(-1), 0, 1.0))
    if x.dtype == torch.bool:
        return InputInfo(BINARY, nonzeros(), n)
    if integers:  # non-negative integers: only the max is unknown, and nothing can witness analog
        minmax, prescreen = [0.0, _max_under(x, integer_bound)], False
    if prescreen and x.dim() and (row_witness(x) or _analog_witness(_head(x))
                                  or (n >= _PRESCREEN_MIN and _analog_witness(_sample(x)))):
        return InputInfo(ANALOG, 0.0, n)
    mn, mx = torch.stack(bounds(x)).double().tolist() if minmax is None else minmax
    if mn < 0 or math.isnan(mn) or math.isnan(mx) or math.isinf(mx):
        return InputInfo(ANALOG, 0.0, n, mx)
    if mx == 0:
        return InputInfo(ZERO, 0.0, n, mx)
    if values is None:
        def values(bound: float) -> float:
            return float(exact_sum(x.reshape(-1), 0, bound))
    if mx == 1:
        return InputInfo(BINARY, values(mx), n, mx) if integers or bool(all_integer(x)) else InputInfo(ANALOG, 0.0, n, mx)
    xs = _head(x) if x.dim() else x  # witnesses that skip a full pass (a value outside {0, max}, a fraction)
    looks = (xs, _sample(x)) if x.dim() and x.numel() > xs.numel() else (xs,)
    if all(bool(((part == 0) | (part == mx)).all()) for part in looks):  # the sample: after a two-level head
        count = nonzeros()
        if float(count_at(x, mx)) == count:
            return InputInfo(SCALED, count, n, mx)
    if integers or (mx == round(mx) and bool((xs == torch.round(xs)).all()) and bool(all_integer(x))):
        if mx > MULTISPIKE_MAX:
            return InputInfo(UNSUPPORTED, 0.0, n, mx)
        return InputInfo(MULTISPIKE, values(mx), n, mx)
    return InputInfo(ANALOG, 0.0, n, mx)

