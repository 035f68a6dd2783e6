"""Neuron factory: every family builds its neurons here, from spikingjelly 2.0 nodes in multi-step mode.

A neuron is described by a kind and parameters, e.g. ``("lif", {"tau": 4.0, "v_threshold": 0.5})``.
Families pass their paper's defaults; users override kind and parameters through the model's
``neuron`` and ``neuron_params`` keyword arguments.

Kinds:
- ``if``   : IFNode            ``v += x``
- ``lif``  : LIFNode           ``v += (x - (v - v_reset)) / tau`` (decay_input=True) or
  ``v = v - (v - v_reset) / tau + x``
- ``plif`` : ParametricLIFNode (learned tau)
- ``liaf`` / ``pliaf``: LIAFNode / ParametricLIAFNode, ReLU of the charged membrane as output (analog)
- ``dsr_if`` / ``dsr_lif``: DSRIFNode / DSRLIFNode (need ``T``; output {0, v_th} or {0, v_th/dt})

Kernels (inference = autograd does not record the call, see :func:`needs_grad`): IF/LIF/PLIF run
spikingjelly's fused multi-step op; when their surrogate has no fused kernel (Rect), the subclasses here
hand the op a kernel-capable stand-in in inference, since the forward pass does not use the surrogate
(:class:`KernelInInference`). LIAF, ParametricLIAF and the DSR nodes run our Triton kernel on CUDA in
inference (:class:`FusedInInference`, :mod:`bench.models.neuron_kernels`). Outputs equal the torch
reference path; training runs exactly the configured surrogate.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn as nn
from spikingjelly._ops.surrogate import _surrogate_spec
from spikingjelly.activation_based import functional, neuron, surrogate

from bench.models import neuron_kernels

SURROGATES: dict[str, type[surrogate.SurrogateFunctionBase]] = {
    "atan": surrogate.ATan,
    "sigmoid": surrogate.Sigmoid,
    "rect": surrogate.Rect,
    "erf": surrogate.Erf,
    "piecewise_quadratic": surrogate.PiecewiseQuadratic,
}
# In spiking mode each of these outputs Heaviside(x) = (x >= 0) in the forward pass (a test checks it).
HEAVISIDE_SURROGATES = frozenset(SURROGATES.values())
# Handed to spikingjelly's fused ops in inference instead of a surrogate without a kernel (KernelInInference).
INFERENCE_SURROGATE = surrogate.ATan()

NEURON_KINDS = ("if", "lif", "plif", "liaf", "pliaf", "dsr_if", "dsr_lif")

# Kinds whose output is analog, not spikes (reports list them as not spike-driven).
ANALOG_KINDS = frozenset({"liaf", "pliaf"})


_fused_enabled = True
_fused_cpu = False


@contextmanager
def fused_kernels(enabled: bool) -> Iterator[None]:
    """Turn every fused path of this module on or off (off: the torch reference path everywhere, e.g. to
    time it; spikingjelly's own choice for nodes whose surrogate has a kernel is not changed)."""
    global _fused_enabled
    previous, _fused_enabled = _fused_enabled, enabled
    try:
        yield
    finally:
        _fused_enabled = previous


@contextmanager
def fused_on_cpu() -> Iterator[None]:
    """Let the fused paths run on CPU tensors too, for tests without a GPU: our kernels through Triton's
    interpreter, the stand-in surrogate through spikingjelly's CPU loop (both slower than the reference
    on CPU, which is why CPU runs the reference otherwise)."""
    global _fused_cpu
    previous, _fused_cpu = _fused_cpu, True
    try:
        yield
    finally:
        _fused_cpu = previous


def runs_fused_on(device: torch.device) -> bool:
    """Whether the fused paths apply to tensors on ``device``: CUDA, or CPU under :func:`fused_on_cpu`."""
    return device.type == "cuda" or (device.type == "cpu" and _fused_cpu)


def needs_grad(module: nn.Module, *tensors: object) -> bool:
    """Whether autograd records a call of ``module`` on ``tensors``: grad mode is on and an input, a state or
    a parameter requires grad. Otherwise only the forward values matter and the fused paths below apply
    (``torch.no_grad``, ``torch.inference_mode``, or a frozen module on inputs without grad)."""
    if not torch.is_grad_enabled():
        return False
    return any(isinstance(t, torch.Tensor) and t.requires_grad for t in (*tensors, *module.parameters()))


def surrogate_needs_stand_in(sg: object) -> bool:
    """A surrogate of this factory, in spiking mode, for which spikingjelly has no fused kernel (Rect)."""
    return type(sg) in HEAVISIDE_SURROGATES and getattr(sg, "spiking", False) and _surrogate_spec(sg) is None


def stands_in_for_surrogate(node: nn.Module) -> bool:
    """Whether ``node`` hands spikingjelly's op :data:`INFERENCE_SURROGATE` in inference: its surrogate needs
    a stand-in and it neither stores the voltage sequence nor uses an explicit neuron precision."""
    return (_fused_enabled and isinstance(node, KernelInInference)
            and surrogate_needs_stand_in(node.surrogate_function)
            and not node.store_v_seq and node._neuron_precision is None)


OpResult = tuple[torch.Tensor, torch.Tensor, "torch.Tensor | None"]


class KernelInInference:
    """Mixin for IF/LIF/PLIF nodes whose surrogate has no fused kernel (Rect): the fused op in inference.

    spikingjelly 2.0 runs its registered multi-step op (Triton or CUDA kernel on GPUs, its own loop on CPU)
    only when the surrogate has a fused backward; otherwise torch ops step by step. The forward pass never
    uses the surrogate: every surrogate of :data:`SURROGATES` in spiking mode outputs Heaviside(h - v_th).
    So on CUDA, when autograd does not record the call (:func:`needs_grad`), the op is handed
    :data:`INFERENCE_SURROGATE` instead: the same spikes and membranes, from the fused kernel. With
    gradients the configured surrogate runs exactly as in spikingjelly. On CPU the torch loop stays
    (spikingjelly's CPU op is slower than it there; :func:`fused_on_cpu` overrides, for tests).
    """

    def _op(self, x_seq: torch.Tensor, v: torch.Tensor, sg: surrogate.SurrogateFunctionBase) -> OpResult:
        """spikingjelly's multi-step op of this node with surrogate ``sg``: ``(spikes, final v, None)``."""
        raise NotImplementedError

    def multi_step_forward(self, x_seq: torch.Tensor, *args: torch.Tensor, **kwargs: object) -> Any:
        if (args or kwargs or not stands_in_for_surrogate(self) or not runs_fused_on(x_seq.device)
                or needs_grad(self, x_seq, *self._memories.values())):
            return super().multi_step_forward(x_seq, *args, **kwargs)
        states = self.materialize_states((x_seq,), tuple(self._memories.values()), "m")
        spikes, v, _ = self._op(x_seq, states[0], INFERENCE_SURROGATE)
        self._memories["v"] = v
        self.v_seq = None
        return spikes


class IFNode(KernelInInference, neuron.IFNode):
    """spikingjelly's IFNode; with a surrogate lacking a kernel, the fused op still runs in inference."""

    def _op(self, x_seq: torch.Tensor, v: torch.Tensor, sg: surrogate.SurrogateFunctionBase) -> OpResult:
        return functional.if_multi_step(x_seq, v, self.v_threshold, self.v_reset, sg, self.detach_reset,
                                        False)


class LIFNode(KernelInInference, neuron.LIFNode):
    """spikingjelly's LIFNode; with a surrogate lacking a kernel, the fused op still runs in inference."""

    def _op(self, x_seq: torch.Tensor, v: torch.Tensor, sg: surrogate.SurrogateFunctionBase) -> OpResult:
        return functional.lif_multi_step(x_seq, v, self.tau, self.decay_input, self.v_threshold, self.v_reset,
                                         sg, self.detach_reset, False)


class ParametricLIFNode(KernelInInference, neuron.ParametricLIFNode):
    """spikingjelly's ParametricLIFNode; with a surrogate lacking a kernel, the fused op still runs in
    inference."""

    def _op(self, x_seq: torch.Tensor, v: torch.Tensor, sg: surrogate.SurrogateFunctionBase) -> OpResult:
        return functional.plif_multi_step(x_seq, v, self.w, self.decay_input, self.v_threshold, self.v_reset,
                                          sg, self.detach_reset, False)


class FusedInInference:
    """Mixin for the nodes spikingjelly has no kernel for (LIAF, ParametricLIAF, DSR): our fused kernel
    (:mod:`bench.models.neuron_kernels`) runs their multi-step forward on CUDA when autograd does not record
    the call and the model is not being traced by ``torch.compile``; the torch code is the reference path
    (CPU, gradients, compile) and the kernel's outputs equal it bit for bit."""

    def fused_unsupported(self) -> str | None:
        """Why this node's configuration is outside the kernel, or None."""
        return None

    def fused_blocker(self, x: torch.Tensor, *states: object) -> str | None:
        """Why this call takes the reference path, or None when the fused kernel runs."""
        if not _fused_enabled:
            return "fused kernels disabled"
        if not runs_fused_on(x.device):
            return f"on {x.device.type}"
        if needs_grad(self, x, *states):
            return "gradients needed"
        if torch.compiler.is_compiling():
            return "traced by torch.compile"
        tensors = (x, *(t for t in states if isinstance(t, torch.Tensor)))
        if x.numel() == 0 or any(t.dtype != torch.float32 for t in tensors):
            return "not float32"
        return self.fused_unsupported() or neuron_kernels.unavailable_reason()


class StepwiseMultiStep(FusedInInference):
    """Mixin for the analog nodes: the fused kernel where it applies, else ``single_step_functional_forward``
    looped over T (the reference).

    spikingjelly 2.0's LIF/PLIF nodes run multi-step input through a fused spiking kernel even in
    subclasses that redefine the single step (its ``LIAFNode`` thus emits binary spikes in multi-step
    mode); analog subclasses need this override instead.
    """

    def _fused_multi_step(self, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def multi_step_functional_forward(
        self, inputs: tuple[torch.Tensor, ...], states: tuple[object, ...], **kwargs: object
    ) -> tuple[tuple[torch.Tensor, ...], tuple[object, ...]]:
        if len(inputs) == 1 and not kwargs and self.fused_blocker(inputs[0], *states) is None:
            y, v = self._fused_multi_step(inputs[0], states[0])
            return (y,), (v, *states[1:])
        outputs = []
        for t in range(inputs[0].shape[0]):
            (y,), states = self.single_step_functional_forward(tuple(x[t] for x in inputs), states, **kwargs)
            outputs.append(y)
        return (torch.stack(outputs),), states


class LIAFNode(StepwiseMultiStep, neuron.LIAFNode):
    """spikingjelly's LIAF node (LIF dynamics, output ``act(h)``), analog in multi-step mode too."""

    def fused_unsupported(self) -> str | None:
        if type(self.act) is nn.ReLU:
            return None
        return f"activation {type(self.act).__name__} (the kernel has ReLU)"

    def _fused_multi_step(self, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return neuron_kernels.analog_lif_multi_step(
            x, v, decay_input=self.decay_input, v_threshold=self.v_threshold, v_reset=self.v_reset,
            tau=self.tau, threshold_related=self.threshold_related)


class ParametricLIAFNode(StepwiseMultiStep, neuron.ParametricLIFNode):
    """Parametric LIAF: PLIF dynamics whose output is ``ReLU`` of the charged membrane (analog, not spikes).

    As the official Spikeformer ``ParametricLIAFNode`` (a PLIF subclass). Per step, with
    ``k = sigmoid(w)`` (``w`` learned, ``k = 1/init_tau`` at start):

    - charge: ``h = v + k (x - (v - v_reset))`` (``decay_input=True``; else ``h = v - k (v - v_reset) + x``)
    - output: ``y = ReLU(h)``, taken before the reset
    - reset:  ``s = H(h - v_threshold)``; ``v = s v_reset + (1 - s) h`` (hard), or ``v = h - s v_threshold``
      when ``v_reset`` is None. With ``detach_reset`` (the official setting) ``s`` is detached, so the
      surrogate never enters the gradient; gradients flow through ``ReLU(h)`` and the membrane.
    """

    def single_step_functional_forward(
        self, inputs: tuple[torch.Tensor, ...], states: tuple[object, ...], **kwargs: object
    ) -> tuple[tuple[torch.Tensor, ...], tuple[object, ...]]:
        x, v = inputs[0], states[0]
        k = self.w.sigmoid()
        rest = 0.0 if self.v_reset is None else self.v_reset
        h = v + (x - (v - rest)) * k if self.decay_input else v - (v - rest) * k + x
        spike = self.surrogate_function(h - self.v_threshold)
        v_next = functional.voltage_reset(h, spike, self.v_threshold, self.v_reset, self.detach_reset)
        return (torch.relu(h),), (v_next, *states[1:])

    def fused_unsupported(self) -> str | None:
        return None if self.w.dim() == 0 and self.w.dtype == torch.float32 else "w is not a float32 scalar"

    def _fused_multi_step(self, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return neuron_kernels.analog_lif_multi_step(
            x, v, decay_input=self.decay_input, v_threshold=self.v_threshold, v_reset=self.v_reset,
            k=self.w.sigmoid())


class DSRIFNode(FusedInInference, neuron.DSRIFNode):
    """spikingjelly's DSR-IF node; its forward (``DSRIFFunction.forward``) runs fused in inference."""

    def multi_step_functional_forward(
        self, inputs: tuple[torch.Tensor, ...], states: tuple[object, ...], **kwargs: object
    ) -> tuple[tuple[torch.Tensor, ...], tuple[object, ...]]:
        if len(inputs) != 1 or kwargs or self.fused_blocker(inputs[0]) is not None:
            return super().multi_step_functional_forward(inputs, states, **kwargs)
        v_th = self.v_threshold.clamp(min=self.v_threshold_lower_bound).to(inputs[0].device)
        y = neuron_kernels.dsr_multi_step(inputs[0], fire_at=self.alpha * v_th, v_threshold=v_th,
                                          spike_value=v_th)
        return (y,), states


class DSRLIFNode(FusedInInference, neuron.DSRLIFNode):
    """spikingjelly's DSR-LIF node; its forward (``DSRLIFFunction.forward``) runs fused in inference."""

    def multi_step_functional_forward(
        self, inputs: tuple[torch.Tensor, ...], states: tuple[object, ...], **kwargs: object
    ) -> tuple[tuple[torch.Tensor, ...], tuple[object, ...]]:
        if len(inputs) != 1 or kwargs or self.fused_blocker(inputs[0]) is not None:
            return super().multi_step_functional_forward(inputs, states, **kwargs)
        v_th = self.v_threshold.clamp(min=self.v_threshold_lower_bound).to(inputs[0].device)
        beta = math.exp(-self.delta_t / self.tau)
        y = neuron_kernels.dsr_multi_step(inputs[0], fire_at=self.alpha * v_th, v_threshold=v_th,
                                          spike_value=v_th / self.delta_t, decay=beta, gain=1 - beta)
        return (y,), states


def fused_implementation(node: nn.Module, device: torch.device, execution: str = "eager") -> str | None:
    """What runs the multi-step forward of a :class:`FusedInInference` node on ``device`` (None for others).

    ``execution="compile"``: inside ``torch.compile`` the torch reference is traced (Inductor fuses it).
    """
    if not isinstance(node, FusedInInference):
        return None
    blocker = ("fused kernels disabled" if not _fused_enabled
               else "traced by torch.compile" if execution == "compile"
               else f"on {device.type}" if not runs_fused_on(device)
               else node.fused_unsupported() or neuron_kernels.unavailable_reason())
    if blocker is None:
        return "own multi-step forward: fused Triton kernel (bench) in inference; torch ops with gradients"
    if blocker == "on cpu":
        return "own multi-step forward: torch ops"
    return f"own multi-step forward: torch ops ({blocker})"


def make_surrogate(name: str = "atan", alpha: float | None = None) -> surrogate.SurrogateFunctionBase:
    """A spikingjelly surrogate by name, with its default alpha unless one is given."""
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r}; choose one of {sorted(SURROGATES)}")
    cls = SURROGATES[name]
    return cls() if alpha is None else cls(alpha=alpha)


def make_neuron(kind: str = "if", **params: Any) -> nn.Module:
    """A multi-step spikingjelly neuron of ``kind`` with ``params``.

    IF/LIF/PLIF are spikingjelly's classes, or this module's subclasses of them when the surrogate has no
    fused kernel (they still run the fused op in inference). Common parameters: ``v_threshold``,
    ``v_reset`` (None = soft reset), ``detach_reset``,
    ``surrogate`` (name), ``alpha`` (surrogate sharpness). LIF: ``tau``, ``decay_input``.
    PLIF: ``init_tau``. DSR: ``T`` and the DSR node's own arguments.
    """
    params = dict(params)
    if kind in ("dsr_if", "dsr_lif"):
        if "T" not in params:
            raise ValueError(f"neuron {kind!r} needs T (DSR nodes are built for a fixed number of steps)")
        return (DSRIFNode if kind == "dsr_if" else DSRLIFNode)(step_mode="m", **params)
    sg = make_surrogate(params.pop("surrogate", "atan"), params.pop("alpha", None))
    common = {
        "v_threshold": params.pop("v_threshold", 1.0),
        "v_reset": params.pop("v_reset", 0.0),
        "detach_reset": params.pop("detach_reset", True),
        "surrogate_function": sg,
        "step_mode": "m",
    }
    if kind in _SPIKING:
        theirs, ours = _SPIKING[kind]
        return (ours if surrogate_needs_stand_in(sg) else theirs)(**common, **params)
    if kind == "liaf":
        related = params.pop("threshold_related", False)
        return LIAFNode(act=nn.ReLU(), threshold_related=related, **common, **params)
    if kind == "pliaf":
        return ParametricLIAFNode(**common, **params)
    raise ValueError(f"unknown neuron kind {kind!r}; choose one of {list(NEURON_KINDS)}")


# kind -> (spikingjelly's class, ours for surrogates without a fused kernel)
_SPIKING: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "if": (neuron.IFNode, IFNode),
    "lif": (neuron.LIFNode, LIFNode),
    "plif": (neuron.ParametricLIFNode, ParametricLIFNode),
}


class NeuronFactory:
    """Callable that builds one neuron kind with fixed parameters; families hold one of these."""

    def __init__(self, kind: str, **params: Any):
        if kind not in NEURON_KINDS:
            raise ValueError(f"unknown neuron kind {kind!r}; choose one of {list(NEURON_KINDS)}")
        self.kind = kind
        self.params = params

    def __call__(self, **overrides: Any) -> nn.Module:
        return make_neuron(self.kind, **{**self.params, **overrides})

    @property
    def analog(self) -> bool:
        return self.kind in ANALOG_KINDS

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.kind}({args})"


def neuron_factory(default_kind: str, default_params: dict[str, Any],
                   neuron: str | None = None, neuron_params: dict[str, Any] | None = None) -> NeuronFactory:
    """Merge a family's defaults with a user's ``neuron``/``neuron_params`` overrides.

    Changing the kind drops the family's kind-specific defaults (tau of LIF makes no sense for IF)
    but keeps threshold, reset and surrogate choices; a switch to or from a DSR kind keeps nothing.
    """
    kind = neuron or default_kind
    shared = {"v_threshold", "v_reset", "detach_reset", "surrogate", "alpha"}
    if kind == default_kind:
        base = default_params
    elif kind.startswith("dsr_") or default_kind.startswith("dsr_"):
        base = {}  # DSR nodes share no parameter meaning with surrogate-gradient nodes (alpha differs)
    else:
        base = {k: v for k, v in default_params.items() if k in shared}
    return NeuronFactory(kind, **{**base, **(neuron_params or {})})
