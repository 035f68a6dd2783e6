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

import torch.nn as nn
from spikingjelly.activation_based import neuron, surrogate

SURROGATES: dict[str, type[surrogate.SurrogateFunctionBase]] = {
    "atan": surrogate.ATan,
    "sigmoid": surrogate.Sigmoid,
    "rect": surrogate.Rect,
    "erf": surrogate.Erf,
    "piecewise_quadratic": surrogate.PiecewiseQuadratic,
}

NEURON_KINDS = ("if", "lif", "plif", "liaf", "dsr_if", "dsr_lif")

# Kinds whose output is analog, not spikes (reports list them as not spike-driven).
ANALOG_KINDS = frozenset({"liaf"})


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
        node = neuron.LIAFNode(act=nn.ReLU(), threshold_related=params.pop("threshold_related", False),
                               **common, **params)
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
    but keeps threshold, reset and surrogate choices.
    """
    kind = neuron or default_kind
    shared = {"v_threshold", "v_reset", "detach_reset", "surrogate", "alpha"}
    base = default_params if kind == default_kind else {k: v for k, v in default_params.items() if k in shared}
    return NeuronFactory(kind, **{**base, **(neuron_params or {})})
