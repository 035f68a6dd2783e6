"""Fused multi-step forward kernels (Triton) for the neurons spikingjelly 2.0 has no kernel for.

LIAF / ParametricLIAF (analog output: ReLU of the charged membrane) and DSR-IF / DSR-LIF run step by step
in torch: several elementwise kernels per step, each reading and writing whole tensors. Here one kernel
reads each input once, keeps the membrane in registers over the T steps and writes each output once.
:mod:`bench.models.neurons` calls them on CUDA when autograd does not record the call (inference); the
torch code there stays the reference path (CPU, training, ``torch.compile``).

Equal to the reference by construction, operation for operation in float32: the same expressions in the
same order, each rounded once (launched with ``enable_fp_fusion=False``, so no multiply-add becomes an
FMA: eager PyTorch runs each op as its own kernel and never contracts them). Where the reference divides
a tensor by a Python float (LIAF's ``/ tau``), eager CUDA multiplies by the float32 reciprocal
(``div_true_kernel_cuda``) while eager CPU divides; the kernel does what the device's eager code does.
Small tensors of the reference (``sigmoid(w)``, ``alpha * v_th``, ``v_th / dt``) are computed by the same
torch ops on the same device and read by the kernel, so they match bit for bit too.

On CPU tensors the kernels run through Triton's interpreter: slow, for tests without a GPU
(``bench.models.neurons.fused_on_cpu``).
"""

from __future__ import annotations

import functools
from typing import Any

import torch

try:
    import triton
    import triton.language as tl
except ImportError as err:  # a CPU-only torch build without Triton: the reference path runs everywhere
    triton = None
    _TRITON_MISSING = f"triton is not importable ({err})"
else:
    _TRITON_MISSING = ""

BLOCK = 1024
NUM_WARPS = 4

# LIAF charge: how d = (x - (v - rest)) or (v - rest) is scaled.
CHARGE_TIMES_TENSOR = 0  # d * k, k a 0-d tensor (ParametricLIAF: sigmoid(w))
CHARGE_TIMES_SCALAR = 1  # d * scale (LIAF on CUDA: scale = float32 reciprocal of tau)
CHARGE_DIVIDE = 2  # d / scale, correctly rounded (LIAF on CPU: scale = tau)


def unavailable_reason() -> str | None:
    """None when the kernels can be compiled here, else why not."""
    return _TRITON_MISSING or None


if triton is not None:

    @triton.jit
    def _liaf_kernel(x_ptr, v_ptr, y_ptr, v_out_ptr, k_ptr, T, N, scale, rest, threshold,
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
    def _dsr_kernel(x_ptr, y_ptr, fire_at_ptr, v_th_ptr, out_ptr, T, N, decay, gain,
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


@functools.cache
def _interpreted(kernel: Any) -> Any:
    from triton.runtime.interpreter import InterpretedFunction

    return InterpretedFunction(kernel.fn)


def _launch(kernel: Any, x: torch.Tensor, tensors: tuple[torch.Tensor, ...], scalars: tuple[float, ...],
            constexprs: dict[str, Any]) -> None:
    """Run ``kernel(*tensors, T, N, *scalars, **constexprs)`` over the N neurons of ``x`` [T, ...]:
    compiled on CUDA (on ``x``'s device), interpreted on CPU."""
    n = x[0].numel()
    grid = (triton.cdiv(n, BLOCK),)
    options = {**constexprs, "BLOCK": BLOCK, "num_warps": NUM_WARPS, "enable_fp_fusion": False}
    if x.device.type == "cuda":
        with torch.cuda.device(x.device):
            kernel[grid](*tensors, x.shape[0], n, *scalars, **options)
    else:
        _interpreted(kernel)[grid](*tensors, x.shape[0], n, *scalars, **options)


def _frames_dense(x: torch.Tensor) -> torch.Tensor:
    """``x`` when it is T dense frames one after another (contiguous or channels-last frames), else a copy.

    The kernels index the storage linearly; outputs made by ``empty_like`` keep the same layout.
    """
    frame = x[0]
    formats = {4: torch.channels_last, 5: torch.channels_last_3d}
    dense_frame = frame.is_contiguous() or (
        frame.dim() in formats and frame.is_contiguous(memory_format=formats[frame.dim()]))
    return x if dense_frame and (x.shape[0] == 1 or x.stride(0) == frame.numel()) else x.contiguous()


def _like_frame(state: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
    """``state`` laid out as ``frame`` (same strides), copied only when it is not."""
    return state if state.stride() == frame.stride() else torch.empty_like(frame).copy_(state)


def _f32(value: float) -> float:
    """``value`` rounded to float32, as eager PyTorch casts a Python scalar operand of a float32 op."""
    return torch.tensor(value, dtype=torch.float32).item()


def _reciprocal_f32(value: float) -> float:
    """``1.0f / float(value)`` in float32: the factor eager CUDA multiplies by for ``tensor / value``."""
    return (torch.tensor(1.0, dtype=torch.float32) / torch.tensor(value, dtype=torch.float32)).item()


def analog_lif_multi_step(x: torch.Tensor, v: torch.Tensor, *, decay_input: bool, v_threshold: float,
                          v_reset: float | None, k: torch.Tensor | None = None, tau: float | None = None,
                          threshold_related: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """LIAF-family forward over ``x`` [T, ...] from membrane ``v``: ``(ReLU outputs, final membrane)``.

    Charge ``h = v + (x - (v - rest)) c`` (``decay_input``) or ``h = v - (v - rest) c + x`` with
    ``c = k`` (a 0-d tensor: ParametricLIAF's ``sigmoid(w)``) or ``c = 1 / tau`` (LIAF); ``rest`` =
    v_reset, 0 for soft reset; output ``ReLU(h)`` (``ReLU(h - v_th)`` if ``threshold_related``); spike
    ``h - v_th >= 0``; hard reset to v_reset or soft reset by v_th. float32 tensors only.
    """
    if (k is None) == (tau is None):
        raise ValueError("give exactly one of k (ParametricLIAF) and tau (LIAF)")
    x = _frames_dense(x)
    y, v_out = torch.empty_like(x), torch.empty_like(x[0])
    if k is not None:
        mode, scale, k_arg = CHARGE_TIMES_TENSOR, 0.0, k.detach().to(x.device, torch.float32).reshape(())
    elif x.device.type == "cuda":  # eager CUDA: x / tau is x * (1.0f / float(tau))
        mode, scale, k_arg = CHARGE_TIMES_SCALAR, _reciprocal_f32(tau), x
    else:
        mode, scale, k_arg = CHARGE_DIVIDE, _f32(tau), x
    rest = 0.0 if v_reset is None else v_reset
    _launch(_liaf_kernel, x, (x, _like_frame(v, x[0]), y, v_out, k_arg),
            (scale, _f32(rest), _f32(v_threshold)),
            {"CHARGE": mode, "DECAY_INPUT": decay_input, "SOFT_RESET": v_reset is None,
             "THRESHOLD_RELATED": threshold_related})
    return y, v_out


def dsr_multi_step(x: torch.Tensor, *, fire_at: torch.Tensor, v_threshold: torch.Tensor,
                   spike_value: torch.Tensor, decay: float | None = None,
                   gain: float | None = None) -> torch.Tensor:
    """DSR forward over ``x`` [T, ...] from a zero membrane; 0-d tensors ``fire_at`` (alpha v_th),
    ``v_threshold`` (subtracted on a spike) and ``spike_value`` (the emitted value); ``decay``/``gain``
    (beta and 1 - beta as Python floats, used in float32 as eager does) give the LIF node, None the IF
    node."""
    x = _frames_dense(x)
    y = torch.empty_like(x)
    scalars = [t.detach().to(x.device, torch.float32).reshape(())
               for t in (fire_at, v_threshold, spike_value)]
    leaky = decay is not None
    leak = (_f32(decay), _f32(gain)) if leaky else (0.0, 0.0)
    _launch(_dsr_kernel, x, (x, y, *scalars), leak, {"LEAKY": leaky})
    return y
