"""Neuron factory: every family builds its neurons here, from spikingjelly 2.0 nodes in multi-step mode.

A neuron is described by a kind and parameters, e.g. ``("lif", {"tau": 4.0, "v_threshold": 0.5})``.
Families pass their paper's defaults; users override kind and parameters through the model's
``neuron`` and ``neuron_params`` keyword arguments.

Kinds:
- ``if``   : IFNode            ``v += x``
- ``lif``  : LIFNode           ``v += (x - (v - v_reset)) / tau`` (decay_input=True) or the MS form below
- ``plif`` : ParametricLIFNode (learned tau)
- ``liaf`` : LIAFNode with ReLU of the membrane as output (analog: not spikes)
- ``dsr_if`` / ``dsr_lif``: DSRIFNode / DSRLIFNode (need ``T``; output {0, v_th} or {0, v_th/dt})
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, neuron, surrogate

SURROGATES: dict[str, type[surrogate.SurrogateFunctionBase]] = {
    "atan": surrogate.ATan,
    "sigmoid": surrogate.Sigmoid,
    "rect": surrogate.Rect,
    "erf": surrogate.Erf,
    "piecewise_quadratic": surrogate.PiecewiseQuadratic,
}

NEURON_KINDS = ("if", "lif", "plif", "liaf", "pliaf", "dsr_if", "dsr_lif")

# Kinds whose output is analog, not spikes (reports list them as not spike-driven).
ANALOG_KINDS = frozenset({"liaf", "pliaf"})


class StepwiseMultiStep:
    """Mixin: multi-step mode loops ``single_step_functional_forward`` over T.

    spikingjelly 2.0's LIF/PLIF nodes run multi-step input through a fused spiking kernel even in
    subclasses that redefine the single step (its ``LIAFNode`` thus emits binary spikes in multi-step
    mode); analog subclasses need this loop instead.
    """

    def multi_step_functional_forward(
        self, inputs: tuple[torch.Tensor, ...], states: tuple[object, ...], **kwargs: object
    ) -> tuple[tuple[torch.Tensor, ...], tuple[object, ...]]:
        outputs = []
        for t in range(inputs[0].shape[0]):
            (y,), states = self.single_step_functional_forward(tuple(x[t] for x in inputs), states, **kwargs)
            outputs.append(y)
        return (torch.stack(outputs),), states


class LIAFNode(StepwiseMultiStep, neuron.LIAFNode):
    """spikingjelly's LIAF node (LIF dynamics, output ``act(h)``) with analog output in multi-step mode too."""


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


def make_surrogate(name: str = "atan", alpha: float | None = None) -> surrogate.SurrogateFunctionBase:
    """A spikingjelly surrogate by name, with its default alpha unless one is given."""
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r}; choose one of {sorted(SURROGATES)}")
    cls = SURROGATES[name]
    return cls() if alpha is None else cls(alpha=alpha)


def make_neuron(kind: str = "if", **params: Any) -> nn.Module:
    """A multi-step spikingjelly neuron of ``kind`` with ``params``.

    Common parameters: ``v_threshold``, ``v_reset`` (None = soft reset), ``detach_reset``,
    ``surrogate`` (name), ``alpha`` (surrogate sharpness). LIF: ``tau``, ``decay_input``.
    PLIF: ``init_tau``. DSR: ``T`` and the DSR node's own arguments.
    """
    params = dict(params)
    if kind in ("dsr_if", "dsr_lif"):
        if "T" not in params:
            raise ValueError(f"neuron {kind!r} needs T (DSR nodes are built for a fixed number of steps)")
        cls = neuron.DSRIFNode if kind == "dsr_if" else neuron.DSRLIFNode
        return cls(step_mode="m", **params)
    sg = make_surrogate(params.pop("surrogate", "atan"), params.pop("alpha", None))
    common = {
        "v_threshold": params.pop("v_threshold", 1.0),
        "v_reset": params.pop("v_reset", 0.0),
        "detach_reset": params.pop("detach_reset", True),
        "surrogate_function": sg,
        "step_mode": "m",
    }
    if kind == "if":
        node: nn.Module = neuron.IFNode(**common, **params)
    elif kind == "lif":
        node = neuron.LIFNode(**common, **params)
    elif kind == "plif":
        node = neuron.ParametricLIFNode(**common, **params)
    elif kind == "liaf":
        node = LIAFNode(act=nn.ReLU(), threshold_related=params.pop("threshold_related", False), **common, **params)
    elif kind == "pliaf":
        node = ParametricLIAFNode(**common, **params)
    else:
        raise ValueError(f"unknown neuron kind {kind!r}; choose one of {list(NEURON_KINDS)}")
    return node


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
