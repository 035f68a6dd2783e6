"""SEW ResNet (Fang et al., NeurIPS 2021): spike-element-wise residual blocks.

Block: ``a = SN(BN(conv(SN(BN(conv(x))))))`` (bottleneck: three conv-BN-SN), ``s`` = identity or
``SN(BN(conv1x1_stride(x)))``, output ``g(a, s)`` with the connect function ``cnf``:
ADD ``a + s``, AND ``a * s``, IAND ``(1 - a) * s``, as in the authors' code (spikingjelly 2.0's
bottleneck swaps IAND's operands; we do not). ADD yields integer multi-spikes (0, 1, 2, ...) that the
next convs consume as value-weighted events; AND/IAND keep spikes binary.

Stem conv + BN + SN (+ 3x3/2 max-pool for the ImageNet preset); per-step global average pool and
linear head, output ``[T, B, K]``. Stem as the authors ran it (``imagenet/sew_resnet.py`` of their
repository applies conv1 + bn1 to the static image once and repeats the result over T): with the
default ``stem_once="auto"`` a static (repeated) input runs the stem conv once per sample, so the
op counter sees its MACs once, not T times; input that changes over time runs it every step. Defaults from the authors' ImageNet code and logs: IF neuron
(threshold 1, hard reset, detach_reset, ATan alpha 2), torchvision init, ``zero_init_residual=False``
(with it, the last BN of each branch gets weight 0, and bias 1 under AND, as their code does).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
import torch.nn as nn

from bench.models.common import scaled
from bench.models.neurons import NeuronFactory, neuron_factory
from bench.models.registry import OFFICIAL, register_model
from bench.models.resnet_parts import (
    EXPANSION,
    Head,
    ResNetTrunk,
    Stem,
    build_stages,
    classic_stem_body,
    conv_bn,
    init_weights,
    last_bn,
    layout,
    needs_projection,
    residual_branch,
    stem_pool,
)

DEFAULT_NEURON = "if"
DEFAULT_NEURON_PARAMS: dict[str, Any] = {
    "v_threshold": 1.0,
    "v_reset": 0.0,
    "detach_reset": True,
    "surrogate": "atan",
    "alpha": 2.0,
}
CONNECT_FUNCTIONS = ("ADD", "AND", "IAND")


class Connect(nn.Module):
    """Spike-element-wise connect function ``g(a, s)``; ``a`` = block output, ``s`` = shortcut."""

    def __init__(self, cnf: str = "ADD"):
        super().__init__()
        cnf = cnf.upper()
        if cnf not in CONNECT_FUNCTIONS:
            raise ValueError(f"cnf must be one of {CONNECT_FUNCTIONS}, got {cnf!r}")
        self.cnf = cnf

    def forward(self, a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        if self.cnf == "ADD":
            return a + s
        if self.cnf == "AND":
            return a * s
        return (1.0 - a) * s

    def extra_repr(self) -> str:
        return f"cnf={self.cnf}"


class SEWBlock(nn.Module):
    """``g(SN(branch(x)), shortcut(x))`` with a spiking downsample shortcut (conv1x1-BN-SN)."""

    def __init__(self, kind: str, in_ch: int, planes: int, stride: int, neurons: NeuronFactory, cnf: str):
        super().__init__()
        out_ch = planes * EXPANSION[kind]
        self.branch = residual_branch(kind, in_ch, planes, stride, neurons)
        self.sn = neurons()
        self.shortcut = (nn.Sequential(conv_bn(in_ch, out_ch, 1, stride), neurons())
                         if needs_projection(in_ch, out_ch, stride) else nn.Identity())
        self.connect = Connect(cnf)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.connect(self.sn(self.branch(x)), self.shortcut(x))


def sew_resnet(
    depth: int,
    num_classes: int = 1000,
    in_channels: int = 3,
    input_size: str = "imagenet",
    width: float = 1.0,
    neuron: str | None = None,
    neuron_params: dict[str, Any] | None = None,
    cnf: str = "ADD",
    stem_once: bool | str = "auto",
    zero_init_residual: bool = False,
) -> ResNetTrunk:
    """SEW ResNet of ``depth`` in 18/34/50/101/152 with connect function ``cnf`` (ADD, AND, IAND).

    ``stem_once``: ``"auto"`` (default) runs the stem conv+BN once and repeats it over T when the input is
    the same at every step (static images, as the authors' code did; stem MACs drop by a factor T) and
    every step otherwise (event frames); ``True`` insists on once, ``False`` always runs every step
    (see :class:`bench.models.resnet_parts.Stem`).
    ``zero_init_residual``: last BN of each branch weight 0 (and bias 1 under AND).
    """
    kind, blocks = layout(depth)
    cnf = Connect(cnf).cnf
    neurons = neuron_factory(DEFAULT_NEURON, DEFAULT_NEURON_PARAMS, neuron, neuron_params)
    stem_ch = scaled(64, width)
    stages, out_ch = build_stages(
        blocks, width, 1, stem_ch, EXPANSION[kind],
        lambda cin, planes, stride: SEWBlock(kind, cin, planes, stride, neurons, cnf),
    )
    model = ResNetTrunk(
        stem=Stem(classic_stem_body(in_channels, stem_ch, input_size), once=stem_once),
        pre=nn.Sequential(neurons(), stem_pool(input_size)),
        layers=stages,
        head=Head(out_ch, num_classes),
    )
    init_weights(model)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, SEWBlock):
                bn = last_bn(m.branch)
                nn.init.zeros_(bn.weight)
                if cnf == "AND":
                    nn.init.ones_(bn.bias)
    return model


_PAPER = "Fang et al. 2021, Deep Residual Learning in Spiking Neural Networks (NeurIPS)"
_NEURON = NeuronFactory(DEFAULT_NEURON, **DEFAULT_NEURON_PARAMS).describe()
_FIRST_CONV = "analog first conv (direct encoding)"
_STEM_NOTE = ("Stem as the authors ran it: once per sample on static input, repeated over T "
              "(stem_once='auto'; every step when the input changes over time; stem_once=False: always every step).")
_META = dict(
    family="sew_resnet",
    paper=_PAPER,
    provenance=OFFICIAL,
    default_T=4,
    neuron=_NEURON,
    non_spiking=(_FIRST_CONV, "integer multi-spikes after ADD (value-weighted ACs)"),
    notes="cnf='ADD' by default (metadata describes ADD; sew_resnet<depth>_and/_iand are the binary "
    f"variants). {_STEM_NOTE}",
)


@register_model(**_META)
def sew_resnet18(**kwargs: Any) -> ResNetTrunk:
    """SEW ResNet-18 (basic 2-2-2-2); options as :func:`sew_resnet`, ``cnf='ADD'`` by default."""
    return sew_resnet(18, **kwargs)


@register_model(**_META)
def sew_resnet34(**kwargs: Any) -> ResNetTrunk:
    """SEW ResNet-34 (basic 3-4-6-3); options as :func:`sew_resnet`, ``cnf='ADD'`` by default."""
    return sew_resnet(34, **kwargs)


@register_model(**_META)
def sew_resnet50(**kwargs: Any) -> ResNetTrunk:
    """SEW ResNet-50 (bottleneck 3-4-6-3); options as :func:`sew_resnet`, ``cnf='ADD'`` by default."""
    return sew_resnet(50, **kwargs)


@register_model(**_META)
def sew_resnet101(**kwargs: Any) -> ResNetTrunk:
    """SEW ResNet-101 (bottleneck 3-4-23-3); options as :func:`sew_resnet`, ``cnf='ADD'`` by default."""
    return sew_resnet(101, **kwargs)


@register_model(**_META)
def sew_resnet152(**kwargs: Any) -> ResNetTrunk:
    """SEW ResNet-152 (bottleneck 3-8-36-3); options as :func:`sew_resnet`, ``cnf='ADD'`` by default."""
    return sew_resnet(152, **kwargs)


def _fixed_cnf(depth: int, fixed: str, **kwargs: Any) -> ResNetTrunk:
    if kwargs.pop("cnf", fixed).upper() != fixed:
        raise ValueError(f"sew_resnet{depth}_{fixed.lower()} has cnf={fixed}; use sew_resnet{depth} to choose it")
    return sew_resnet(depth, cnf=fixed, **kwargs)


# Binary-spike variants, registered separately so their metadata does not claim multi-spikes.
for _depth in (18, 34, 50, 101, 152):
    for _cnf in ("AND", "IAND"):
        register_model(
            **{**_META, "non_spiking": (_FIRST_CONV,),
               "notes": f"cnf={_cnf} fixed (binary spikes after the stem). {_STEM_NOTE}"},
            name=f"sew_resnet{_depth}_{_cnf.lower()}",
        )(partial(_fixed_cnf, _depth, _cnf))
