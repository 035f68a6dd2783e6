"""The Triton kernels of :mod:`bench.models.neuron_kernels`, in their own module so that Triton (about 0.1 s to
import) is imported only when a kernel first runs or its availability is asked, not when the models are."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def liaf_kernel(x_ptr, v_ptr, y_ptr, v_out_ptr, k_ptr, T, N, scale, rest, threshold,
                CHARGE: tl.constexpr, DECAY_INPUT: tl.constexpr, SOFT_RESET: tl.constexpr,
                THRESHOLD_RELATED: tl.constexpr, BLOCK: tl.constexpr):
    """LIF-family charge, analog output ReLU(h) (or ReLU(h - v_th)), fire at h >= v_th, reset; over T."""
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    if CHARGE == 0:
        f = tl.load(k_ptr)
    else:
        f = scale
    v = tl.load(v_ptr + n, mask=mask, other=0.0)
    x_ptrs = x_ptr + n
    y_ptrs = y_ptr + n
    for _ in range(T):
        x = tl.load(x_ptrs, mask=mask, other=0.0)
        if DECAY_INPUT:
            d = x - (v - rest)
        else:
            d = v - rest
        if CHARGE == 2:
            d = tl.math.div_rn(d, f)
        else:
            d = d * f
        if DECAY_INPUT:
            h = v + d
        else:
            h = v - d + x
        if THRESHOLD_RELATED:
            a = h - threshold
        else:
            a = h
        tl.store(y_ptrs, tl.where(a < 0.0, 0.0, a), mask=mask)  # ReLU; NaN stays NaN as in torch
        spike = tl.where(h - threshold >= 0.0, 1.0, 0.0)  # the surrogate's forward: Heaviside(h - v_th)
        if SOFT_RESET:
            v = h - spike * threshold
        else:
            v = spike * rest + (1.0 - spike) * h
        x_ptrs += N
        y_ptrs += N
    tl.store(v_out_ptr + n, v, mask=mask)

@triton.jit
def dsr_kernel(x_ptr, y_ptr, fire_at_ptr, v_th_ptr, out_ptr, T, N, decay, gain,
                LEAKY: tl.constexpr, BLOCK: tl.constexpr):
    """DSR node over T from a zero membrane: u = u + x (IF) or decay u + gain x (LIF); fire at
    u >= alpha v_th, emit ``out`` (v_th, or v_th/dt), subtract v_th."""
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    fire_at = tl.load(fire_at_ptr)
    v_th = tl.load(v_th_ptr)
    out = tl.load(out_ptr)
    u = tl.full([BLOCK], 0.0, tl.float32)
    x_ptrs = x_ptr + n
    y_ptrs = y_ptr + n
    for _ in range(T):
        x = tl.load(x_ptrs, mask=mask, other=0.0)
        if LEAKY:
            u = decay * u + gain * x
        else:
            u = u + x
        fired = u >= fire_at
        u = u - tl.where(fired, 1.0, 0.0) * v_th
        tl.store(y_ptrs, tl.where(fired, out, 0.0), mask=mask)
        x_ptrs += N
        y_ptrs += N
