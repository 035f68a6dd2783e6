"""The host path's statistics of a float32 CPU neuron output in one pass, compiled by numba.

The torch operations of :meth:`bench.metrics.probe.Probe._firing_on_host` read a binary neuron output
``[T, rest, positions]`` five times (per-neuron min and max over ``T``, the per-step, per-position value
sums, the integrality pass, the window counts): each pass is memory-bound, so the counting cost about as
many milliseconds on two threads as on one while the model's own forward halved. :func:`window_stats`
reads it once and returns everything the common case needs:

- per ``(a, p)`` the value sums over the rows (float32 over at most :data:`GROUP` rows, then float64:
  exact for the 0/1 values the result is used for);
- the smallest and the largest bit pattern of the float32 values read as int32, and the smallest positive
  one. Read as int32, non-negative floats keep their order, and every value with its sign bit set
  (a negative number, ``-0.0``, a negative NaN) is negative, while a positive NaN or ``+inf`` lies above
  every finite float. So "smallest >= 0, largest == smallest positive == bits of 1.0" states exactly
  "every value is +0.0 or 1.0, and some are 1.0": a binary tensor (:mod:`bench.metrics.kinds`, rule 4),
  and "largest == 0" states "every value is +0.0": a zero tensor;
- the positions ``(r, p)`` whose values over the ``A`` planes (time steps) sum above 0 (an event at some
  step, for non-negative values) and to exactly ``A`` (an event at every step, for 0/1 values).

Anything else (a sign bit anywhere, a NaN, other values) is left to the torch operations, which take the
full decision: this pass only proves the two common kinds, so both paths give the same kinds and counts
(tests compare them). From 2^18 elements the rows are split into ``torch.get_num_threads()`` chunks
run in parallel by numba's ``prange`` (its threading layer: TBB, OpenMP or its own workqueue, whichever
this machine has, in that order); short rows (conv outputs of 4 x 4 positions, linear outputs of one) are
read several at a time, so the inner loop stays long.

numba compiles the loops on first use (seconds; cached on disk beside this file, or under
``NUMBA_CACHE_DIR``, after which a process loads them in about 0.4 s). Without numba, or with
``SNNBENCH_STATS_BACKEND=eager``, the torch operations run (same results, slower).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import torch

from bench.metrics.kind_stats import GROUP

ONE_BITS = 0x3F800000  # float32 1.0 read as int32
_INT_MIN, _INT_MAX = np.int32(-2 ** 31), np.int32(2 ** 31 - 1)
_BLOCK_ELEMENTS = 1 << 14  # rows per block: about this many elements per plane (the step sums stay in cache)
_SPLIT_MIN = 1 << 18  # from this many elements the rows are split across threads
_WIDE = 128  # rows shorter than this are read several at a time (:func:`_regrouped`)


def _rows(x: Any, xi: Any, r0: int, r1: int, block: int, values: Any, out: Any) -> None:  # pragma: no cover
    """Rows ``r0:r1`` of ``x`` ``[A, R, P]`` (float32; ``xi`` the same memory as int32): adds the value sums
    to ``values[a, p]`` (float64) and writes ``out``: smallest, largest and smallest positive bit pattern,
    positions with a step sum above 0 and equal to ``A``. (Compiled by numba: ``_rows_compiled``.)"""
    A, _, P = x.shape
    lo, hi, lo_positive = _INT_MAX, _INT_MIN, _INT_MAX
    active = 0
    every = 0
    part = np.zeros((A, P), np.float32)
    steps = np.zeros((block, P), np.float32)
    for b0 in range(r0, r1, block):
        b1 = min(r1, b0 + block)
        steps[:b1 - b0] = 0
        for a in range(A):
            for r in range(b0, b1):
                for p in range(P):
                    bits = xi[a, r, p]
                    f = x[a, r, p]
                    part[a, p] += f
                    steps[r - b0, p] += f
                    lo = min(lo, bits)
                    hi = max(hi, bits)
                    lo_positive = min(lo_positive, bits if bits > 0 else _INT_MAX)
        for i in range(b1 - b0):
            for p in range(P):
                s = steps[i, p]
                active += s > 0
                every += s == A
        for a in range(A):  # at most GROUP rows per float32 partial sum
            for p in range(P):
                values[a, p] += part[a, p]
                part[a, p] = 0
    out[0] = lo
    out[1] = hi
    out[2] = lo_positive
    out[3] = active
    out[4] = every


def _chunks(x: Any, xi: Any, starts: Any, stops: Any, block: int, values: Any, out: Any) -> None:  # pragma: no cover
    """:func:`_rows` over row ranges ``starts[c]:stops[c]`` in parallel (numba's ``prange``), into
    ``values[c]`` and ``out[c]``."""
    for c in numba.prange(starts.shape[0]):
        _rows_compiled(x, xi, starts[c], stops[c], block, values[c], out[c])


_lock = threading.Lock()  # one compiled pass at a time (numba's workqueue layer must not be entered twice)


def _jit(fn: Any, **options: Any) -> Any:
    """``numba.njit`` with its on-disk cache where a cache folder is writable, else without."""
    try:
        return numba.njit(cache=True, nogil=True, boundscheck=False, **options)(fn)
    except RuntimeError:  # no writable cache location: compiled again in every process
        return numba.njit(nogil=True, boundscheck=False, **options)(fn)


_rows_compiled = _jit(_rows)
_chunks_compiled = _jit(_chunks, parallel=True)


@dataclass(frozen=True)
class WindowStats:
    """What one pass over ``[A, R, P]`` proves (see the module docstring); ``values``: ``[A, P]`` float64."""

    values: torch.Tensor
    lowest_bits: int
    highest_bits: int
    lowest_positive_bits: int
    active: int  # positions with a step sum above 0
    every_step: int  # positions with a step sum equal to A

    @property
    def binary(self) -> bool:
        """Every value is +0.0 or 1.0 and some are 1.0."""
        return self.lowest_bits >= 0 and self.highest_bits == self.lowest_positive_bits == ONE_BITS

    @property
    def zero(self) -> bool:
        """Every value is +0.0."""
        return self.lowest_bits >= 0 and self.highest_bits == 0


def supports(x3: torch.Tensor) -> bool:
    """A contiguous, non-empty float32 CPU ``[A, R, P]`` tensor."""
    return (x3.device.type == "cpu" and x3.dtype == torch.float32 and x3.dim() == 3 and x3.numel() > 0
            and x3.is_contiguous())


def _regrouped(P: int, R: int) -> int:
    """Rows of ``P`` positions read ``k`` at a time (one row of ``k * P``) so that the inner loop is long:
    the smallest power of two ``k`` with ``k * P >= _WIDE`` that divides ``R``, else the largest that does."""
    k = 1
    while k * P < _WIDE and R % (2 * k) == 0:
        k *= 2
    return k


def window_stats(x3: torch.Tensor) -> WindowStats:
    """One pass over a tensor :func:`supports` accepts (see the module docstring)."""
    A, R, P = x3.shape
    k = _regrouped(P, R)  # positions p of a row of k * P: its columns j * P + p, added up at the end
    x = x3.detach().numpy().reshape(A, R // k, k * P)
    rows, width = x.shape[1], x.shape[2]
    block = max(1, min(GROUP, _BLOCK_ELEMENTS // width))
    threads = min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS) if x3.numel() >= _SPLIT_MIN else 1
    per = -(-rows // (threads * block)) * block  # rows per chunk, whole blocks
    starts = np.arange(0, rows, per, dtype=np.int64)
    stops = np.minimum(starts + per, rows)
    values = np.zeros((len(starts), A, width), np.float64)
    out = np.empty((len(starts), 5), np.int64)
    with _lock:
        if len(starts) == 1:
            _rows_compiled(x, x.view(np.int32), 0, rows, block, values[0], out[0])
        else:
            numba.set_num_threads(len(starts))
            _chunks_compiled(x, x.view(np.int32), starts, stops, block, values, out)
    total = torch.from_numpy(values).sum(0)
    if k > 1:
        total = total.view(A, k, P).sum(1)
    return WindowStats(total, int(out[:, 0].min()), int(out[:, 1].max()), int(out[:, 2].min()),
                       int(out[:, 3].sum()), int(out[:, 4].sum()))
