"""The device path's tensor statistics and kind decision in two fused kernels, for CUDA tensors.

:func:`bench.metrics.kinds.eager_stats` needs several passes over a tensor (a nonzero mask, its sums, the
value sums, min/max, a count of ``x == max``, ``frac(x)``) and :func:`bench.metrics.kinds.decide` some
thirty tiny kernels; on a GPU the counting would then cost more than the layer it counts. Here:

1. ``_stats_kernel`` reads the tensor once. The tensor is ``A`` planes of ``N`` elements, each read as
   rows of ``P`` positions; each program takes ``RB`` rows by ``PB`` positions and walks the planes:

   - per ``(a, p)``: the count of nonzeros and the float32 sum of values over its ``RB`` rows (exact for
     integer values up to ``2^24 / RB``, above ``kinds.MULTISPIKE_MAX``), written as partial grids that
     torch adds up in float64 (``[2, R / RB, A, P]``, a small fraction of the tensor);
   - per program: min, max, the smallest nonzero (two-level is "smallest nonzero == max": every nonzero
     equals the max, the fact the eager path counts), whether a NaN or a non-integer was seen, the
     float64 totals of nonzeros and values, and with ``WINDOW`` the positions ``(r, p)`` with a nonzero
     at some / every ``a``.
2. ``_decide_kernel`` (one program) reduces the per-program values and takes the decision of
   :mod:`bench.metrics.kinds` (same order of tests), writing the kind code, the events and the window
   counts.

Everything stays on the device: no host read. Both kernels compute the same exact facts as the eager
path, so both give the same kinds and counts (tests compare them, on CPUs through Triton's interpreter,
and on GPUs directly).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from bench.metrics.kind_stats import MULTISPIKE_MAX, Grids, Stats

KernelError = triton.errors.TritonError  # compilation, PTX assembly, out of resources
_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_SLOTS = 7  # per program, float32: min, max, smallest nonzero, NaN seen, non-integer seen, active, saturated
_WIDE = 128  # positions per row when the caller needs no positions (P = 1): totals read in wide rows


def supports(x3: torch.Tensor) -> bool:
    """True for a contiguous non-empty ``[A, R, P]`` tensor of a dtype the kernel loads exactly."""
    return x3.dtype in _DTYPES and x3.is_contiguous() and x3.numel() > 0


@triton.jit
def _stats_kernel(x_ptr, grid_ptr, out_ptr, tot_ptr, A, N, P, GRID_PART,
                  RB: tl.constexpr, PB: tl.constexpr, WINDOW: tl.constexpr):
    rb = tl.program_id(0)
    pb = tl.program_id(1)
    rows = rb * RB + tl.arange(0, RB)
    cols = pb * PB + tl.arange(0, PB)
    plane = rows[:, None].to(tl.int64) * P + cols[None, :]  # offsets of this tile within a plane (int64)
    inside = (cols[None, :] < P) & (plane < N)
    plane_step = plane * 0 + N
    cols64 = cols.to(tl.int64)
    steps = tl.zeros([RB, PB], dtype=tl.int32)
    lo = tl.full([RB, PB], float("inf"), tl.float32)
    hi = tl.full([RB, PB], float("-inf"), tl.float32)
    lo_nz = tl.full([RB, PB], float("inf"), tl.float32)
    nan = tl.zeros([RB, PB], dtype=tl.int32)
    fractional = tl.zeros([RB, PB], dtype=tl.int32)
    total_nz = tl.zeros([PB], dtype=tl.float64)
    total_v = tl.zeros([PB], dtype=tl.float64)
    for a in range(A):
        v = tl.load(x_ptr + plane, mask=inside, other=0.0).to(tl.float32)
        plane += plane_step
        nz = inside & (v != 0.0)
        steps += nz.to(tl.int32)
        count, value = tl.sum(nz.to(tl.float32), axis=0), tl.sum(v, axis=0)  # exact: at most RB terms
        grid = (cols64 * 0 + rb * A + a) * P + cols64
        tl.store(grid_ptr + grid, count, mask=cols < P)
        tl.store(grid_ptr + GRID_PART + grid, value, mask=cols < P)
        total_nz += count.to(tl.float64)
        total_v += value.to(tl.float64)
        lo = tl.minimum(lo, tl.where(inside, v, float("inf")))
        hi = tl.maximum(hi, tl.where(inside, v, float("-inf")))
        lo_nz = tl.minimum(lo_nz, tl.where(nz, v, float("inf")))
        nan = tl.maximum(nan, (inside & (v != v)).to(tl.int32))
        fractional = tl.maximum(fractional, (inside & (v != tl.floor(v))).to(tl.int32))
    pid = rb * tl.num_programs(1) + pb
    out = out_ptr + pid * 7
    tl.store(out + 0, tl.min(tl.min(lo, axis=1), axis=0))
    tl.store(out + 1, tl.max(tl.max(hi, axis=1), axis=0))
    tl.store(out + 2, tl.min(tl.min(lo_nz, axis=1), axis=0))
    tl.store(out + 3, tl.max(tl.max(nan, axis=1), axis=0).to(tl.float32))
    tl.store(out + 4, tl.max(tl.max(fractional, axis=1), axis=0).to(tl.float32))
    if WINDOW:
        tl.store(out + 5, tl.sum(tl.sum((inside & (steps > 0)).to(tl.float32), axis=1), axis=0))
        tl.store(out + 6, tl.sum(tl.sum((inside & (steps == A)).to(tl.float32), axis=1), axis=0))
    tl.store(tot_ptr + pid * 2, tl.sum(total_nz, axis=0))
    tl.store(tot_ptr + pid * 2 + 1, tl.sum(total_v, axis=0))


@triton.jit
def _decide_kernel(out_ptr, tot_ptr, n, res_ptr, MULTI_MAX: tl.constexpr, BLOCK: tl.constexpr):
    """One program: reduce the per-program values, then the decision of ``bench.metrics.kinds``."""
    lo = tl.full([BLOCK], float("inf"), tl.float32)
    hi = tl.full([BLOCK], float("-inf"), tl.float32)
    lo_nz = tl.full([BLOCK], float("inf"), tl.float32)
    flags = tl.zeros([BLOCK], dtype=tl.float32)
    fractional = tl.zeros([BLOCK], dtype=tl.float32)
    active = tl.zeros([BLOCK], dtype=tl.float64)
    saturated = tl.zeros([BLOCK], dtype=tl.float64)
    nonzeros = tl.zeros([BLOCK], dtype=tl.float64)
    values = tl.zeros([BLOCK], dtype=tl.float64)
    for start in range(0, n, BLOCK):
        idx = start + tl.arange(0, BLOCK)
        m = idx < n
        row = out_ptr + idx * 7
        lo = tl.minimum(lo, tl.load(row + 0, mask=m, other=float("inf")))
        hi = tl.maximum(hi, tl.load(row + 1, mask=m, other=float("-inf")))
        lo_nz = tl.minimum(lo_nz, tl.load(row + 2, mask=m, other=float("inf")))
        flags = tl.maximum(flags, tl.load(row + 3, mask=m, other=0.0))
        fractional = tl.maximum(fractional, tl.load(row + 4, mask=m, other=0.0))
        active += tl.load(row + 5, mask=m, other=0.0).to(tl.float64)
        saturated += tl.load(row + 6, mask=m, other=0.0).to(tl.float64)
        nonzeros += tl.load(tot_ptr + idx * 2, mask=m, other=0.0)
        values += tl.load(tot_ptr + idx * 2 + 1, mask=m, other=0.0)
    mn, mx, smallest = tl.min(lo, axis=0), tl.max(hi, axis=0), tl.min(lo_nz, axis=0)
    nonzeros, values = tl.sum(nonzeros, axis=0), tl.sum(values, axis=0)
    analog = (mn < 0) | (tl.max(flags, axis=0) > 0) | (mx == float("inf")) | (mx != mx)
    multi = (mx > 1) & (mx == tl.floor(mx)) & (tl.max(fractional, axis=0) == 0)
    code = tl.where(smallest == mx, tl.where(mx == 1, 1, 2), tl.where(multi, tl.where(mx <= MULTI_MAX, 3, 5), 4))
    code = tl.where(analog, 4, tl.where(mx == 0, 0, code))
    events = tl.where((code == 1) | (code == 2), nonzeros, tl.where(code == 3, values, 0.0))
    tl.store(res_ptr + 0, code.to(tl.float64))
    tl.store(res_ptr + 1, events)
    tl.store(res_ptr + 2, tl.sum(active, axis=0))
    tl.store(res_ptr + 3, tl.sum(saturated, axis=0))


def _blocks(P: int) -> tuple[int, int]:
    """Tile shape: up to 128 positions wide, about 4096 elements, at most 64 rows (exact value sums)."""
    pb = min(triton.next_power_of_2(P), 128)
    return max(1, min(64, 4096 // pb)), pb


def stats(x3: torch.Tensor, window: bool = False) -> Stats:
    """:class:`bench.metrics.kinds.Stats` of a contiguous ``[A, R, P]`` tensor, decision included (see the
    module docstring). With ``P = 1`` each plane is read as rows of 128 (totals and window counts are the
    same; the grids then have 128 columns whose sum is the total)."""
    A, R, P = x3.shape
    N = R * P
    if P == 1:
        P = _WIDE
    rb, pb = _blocks(P)
    n_rb, n_pb = triton.cdiv(triton.cdiv(N, P), rb), triton.cdiv(P, pb)
    dev = x3.device
    parts = torch.empty((2, n_rb, A, P), dtype=torch.float32, device=dev)  # nonzero counts, value sums
    out = torch.zeros((n_rb * n_pb, _SLOTS), dtype=torch.float32, device=dev)
    totals = torch.empty((n_rb * n_pb, 2), dtype=torch.float64, device=dev)
    _stats_kernel[(n_rb, n_pb)](x3, parts, out, totals, A, N, P, n_rb * A * P, RB=rb, PB=pb, WINDOW=window)
    res = torch.empty(4, dtype=torch.float64, device=dev)
    _decide_kernel[(1,)](out, totals, out.shape[0], res, MULTI_MAX=MULTISPIKE_MAX, BLOCK=256)
    g = parts.sum(1, dtype=torch.float64)
    return Stats(Grids(g[0], g[1]), decided=(res[0], res[1]),
                 active=res[2] if window else None, saturated=res[3] if window else None)
