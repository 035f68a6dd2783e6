"""The host path's statistics of a float32 CPU neuron output in one pass, compiled by numba.

The torch operations of :meth:`bench.metrics.probe.Probe._firing_on_host` read a binary neuron output
``[T, rest, positions]`` five times (per-neuron min and max over ``T``, the per-step, per-position value
sums, the integrality pass, the window counts): each pass is memory-bound, so the counting cost about as
many milliseconds on two threads as on one while the model's own forward halved. :func:`window_stats`
reads it once and returns everything the common case needs:

- per ``(a, p)`` the count of values equal to 1.0 over the rows (float32 over at most :data:`GROUP` rows,
  then float64: exact), which for a 0/1 tensor are its value sums;
- whether any value's bit pattern (the float32 read as int32) differs from those of +0.0 and 1.0. None
  does exactly when "every value is +0.0 or 1.0": then the tensor is binary when some value is 1.0 and
  zero otherwise (:mod:`bench.metrics.kinds`, rules 3 and 4). ``-0.0``, a NaN of either sign, ``inf`` and
  every other value have other patterns;
- the positions ``(r, p)`` with a 1.0 at some of the ``A`` planes (time steps) and at every one of them
  (an event at some step and at every step, for 0/1 values).

Anything else (a pattern of another value anywhere; the pass stops after the first row holding one,
so an analog output whose first rows show it costs little here) is left to the torch operations, which
take the full decision: this pass only proves the two common kinds, so both paths give the same kinds
and counts (tests compare them). From 2^18 elements the rows are split into ``torch.get_num_threads()`` chunks
run in parallel by numba's ``prange`` (its threading layer: TBB, OpenMP or its own workqueue, whichever
this machine has, in that order); short rows (conv outputs of 4 x 4 positions, linear outputs of one) are
read several at a time, so the inner loop stays long.

numba compiles the loops on first use (seconds; cached on disk beside this file, or under
``NUMBA_CACHE_DIR``, after which a process loads them in 0.4 to 1 s). Without numba, or with
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

ONE_BITS = np.int32(0x3F800000)  # float32 1.0 read as int32 (an int32 constant in the compiled loop)
_SPLIT_MIN = 1 << 18  # from this many elements the rows are split across threads
_WIDE = 128  # rows shorter than this are read several at a time (:func:`_regrouped`)


def _four_steps(xi: Any, a: int, r: int, part: Any, steps: Any) -> bool:  # pragma: no cover
    """Steps ``a:a + 4`` of row ``r`` of ``xi``: adds the 1.0 counts to ``part[a:a + 4]`` and ``steps``; True when
    a pattern other than those of +0.0 and 1.0 occurs. (A function of its own: written out inside
    :func:`_rows`' loop over the steps, this loop ran three times slower from eight steps on.)"""
    other = False
    for p in range(steps.shape[0]):
        b0, b1, b2, b3 = xi[a, r, p], xi[a + 1, r, p], xi[a + 2, r, p], xi[a + 3, r, p]
        f0, f1 = np.float32(b0 == ONE_BITS), np.float32(b1 == ONE_BITS)
        f2, f3 = np.float32(b2 == ONE_BITS), np.float32(b3 == ONE_BITS)
        part[a, p] += f0
        part[a + 1, p] += f1
        part[a + 2, p] += f2
        part[a + 3, p] += f3
        steps[p] += (f0 + f1) + (f2 + f3)
        other |= (((b0 != 0) & (b0 != ONE_BITS)) | ((b1 != 0) & (b1 != ONE_BITS))
                  | ((b2 != 0) & (b2 != ONE_BITS)) | ((b3 != 0) & (b3 != ONE_BITS)))
    return other


def _rows(xi: Any, r0: int, r1: int, values: Any, out: Any) -> None:  # pragma: no cover
    """Rows ``r0:r1`` of ``xi`` ``[A, R, P]`` (float32 bit patterns read as int32): adds the counts of 1.0 per
    ``(a, p)`` to ``values[a, p]`` (float64) and writes ``out``: whether a pattern other than those of +0.0
    and 1.0 occurs, positions with a 1.0 at some step and at every step. It stops after the first row holding
    another value (the counts are then unused: not a binary tensor). (Compiled by numba: ``_rows_compiled``.)

    The time steps are read four at a time, so a position's step count is added up in registers and each
    value is read once: about 1.5 times a torch ``sum`` of the same tensor (a loop over one step at a time,
    with a step sum per position in memory and three extremes instead of the flag, took 2 to 10 times)."""
    A, _, P = xi.shape
    part = np.zeros((A, P), np.float32)  # counts over at most GROUP rows (exact), then added to values
    steps = np.zeros(P, np.float32)  # one row's step counts per position
    other = False
    active = 0
    every = 0
    rows = 0
    steps_all = np.float32(A)
    A4 = A - A % 4
    for r in range(r0, r1):
        for a in range(0, A4, 4):
            other |= _four_steps_compiled(xi, a, r, part, steps)
        for a in range(A4, A):
            for p in range(P):
                b = xi[a, r, p]
                f = np.float32(b == ONE_BITS)
                part[a, p] += f
                steps[p] += f
                other |= (b != 0) & (b != ONE_BITS)
        for p in range(P):
            s = steps[p]
            active += s > 0
            every += s == steps_all
            steps[p] = 0
        if other:  # not binary: the torch operations decide (an analog output costs one row here)
            break
        rows += 1
        if rows == GROUP or r == r1 - 1:
            for a in range(A):
                for p in range(P):
                    values[a, p] += part[a, p]
                    part[a, p] = 0
            rows = 0
    out[0] = other
    out[1] = active
    out[2] = every


def _chunks(xi: Any, starts: Any, stops: Any, values: Any, out: Any) -> None:  # pragma: no cover
    """:func:`_rows` over row ranges ``starts[c]:stops[c]`` in parallel (numba's ``prange``), into
    ``values[c]`` and ``out[c]``."""
    for c in numba.prange(starts.shape[0]):
        _rows_compiled(xi, starts[c], stops[c], values[c], out[c])


_lock = threading.Lock()  # one compiled pass at a time (numba's workqueue layer must not be entered twice)


def _jit(fn: Any, **options: Any) -> Any:
    """``numba.njit`` with its on-disk cache where a cache folder is writable, else without."""
    try:
        return numba.njit(cache=True, nogil=True, boundscheck=False, **options)(fn)
    except RuntimeError:  # no writable cache location: compiled again in every process
        return numba.njit(nogil=True, boundscheck=False, **options)(fn)


_four_steps_compiled = _jit(_four_steps)
_rows_compiled = _jit(_rows)
_chunks_compiled = _jit(_chunks, parallel=True)


@dataclass(frozen=True)
class WindowStats:
    """What one pass over ``[A, R, P]`` proves (see the module docstring); ``values``: ``[A, P]`` float64."""

    values: torch.Tensor  # counts of 1.0 per (a, p): the value sums when ``other_values`` is False
    ones: float  # values equal to 1.0 (the sum of ``values``)
    other_values: bool  # some value is neither +0.0 nor 1.0 (the counts are then partial, and unused)
    active: int  # positions with a 1.0 at some step
    every_step: int  # positions with a 1.0 at every step

    @property
    def binary(self) -> bool:
        """Every value is +0.0 or 1.0 and some are 1.0."""
        return not self.other_values and self.ones > 0

    @property
    def zero(self) -> bool:
        """Every value is +0.0."""
        return not self.other_values and self.ones == 0


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
    xi = x3.detach().numpy().reshape(A, R // k, k * P).view(np.int32)
    rows, width = xi.shape[1], xi.shape[2]
    threads = min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS) if x3.numel() >= _SPLIT_MIN else 1
    per = -(-rows // threads)  # rows per chunk
    starts = np.arange(0, rows, per, dtype=np.int64)
    stops = np.minimum(starts + per, rows)
    values = np.zeros((len(starts), A, width), np.float64)
    out = np.empty((len(starts), 3), np.int64)
    with _lock:
        if len(starts) == 1:
            _rows_compiled(xi, 0, rows, values[0], out[0])
        else:
            numba.set_num_threads(len(starts))
            _chunks_compiled(xi, starts, stops, values, out)
    total = torch.from_numpy(values).sum(0)
    if k > 1:
        total = total.view(A, k, P).sum(1)
    return WindowStats(total, float(values.sum()), bool(out[:, 0].any()), int(out[:, 1].sum()), int(out[:, 2].sum()))
