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

BLOCK = 1024
NUM_WARPS = 4

# LIAF charge: how d = (x - (v - rest)) or (v - rest) is scaled.
CHARGE_TIMES_TENSOR = 0  # d * k, k a 0-d tensor (ParametricLIAF: sigmoid(w))
CHARGE_TIMES_SCALAR = 1  # d * scale (LIAF on CUDA: scale = float32 reciprocal of tau)
CHARGE_DIVIDE = 2  # d / scale, correctly rounded (LIAF on CPU: scale = tau)


@functools.cache
def _kernels() -> tuple[Any, str]:
    """(:mod:`bench.models.triton_kernels`, "") or (None, why Triton cannot be imported), imported on first use."""
    try:
        from bench.models import triton_kernels
    except ImportError as err:  # a CPU-only torch build without Triton: the reference path runs everywhere
        return None, f"triton is not importable ({err})"
    return triton_kernels, ""


def unavailable_reason() -> str | None:
    """None when the kernels can be compiled here, else why not."""
    return _kernels()[1] or None


@functools.cache
def _interpreted(kernel: Any) -> Any:
    from triton.runtime.interpreter import InterpretedFunction

    return InterpretedFunction(kernel.fn)


def _launch(kernel: Any, x: torch.Tensor, tensors: tuple[torch.Tensor, ...], scalars: tuple[float, ...],
            constexprs: dict[str, Any]) -> None:
    """Run ``kernel(*tensors, T, N, *scalars, **constexprs)`` over the N neurons of ``x`` [T, ...]:
    compiled on CUDA (on ``x``'s device), interpreted on CPU."""
    n = x[0].numel()
    grid = (-(-n // BLOCK),)  # ceil(n / BLOCK) blocks
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
    _launch(_kernels()[0].liaf_kernel, x, (x, _like_frame(v, x[0]), y, v_out, k_arg),
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
    _launch(_kernels()[0].dsr_kernel, x, (x, y, *scalars), leak, {"LEAKY": leaky})
    return y
