"""MS-ResNet (Hu et al., "Advancing Spiking Neural Networks towards Deep Residual Learning").

Pre-activation block with membrane shortcut: ``BN(conv(SN(BN(conv(SN(x)))))) + shortcut(x)``. The
stream between blocks is real-valued (membrane-like): no neuron after the add, and the projection
shortcut (1x1 conv (stride) + BN; the 104-layer net uses 2x2 AvgPool + 1x1 conv + BN) works on that
real-valued stream, so its MACs are not spike-driven.

Facts from the official code (github.com/Ariande1/MS-ResNet, models/MS_ResNet.py):
- neuron ``v <- 0.25 v (1 - s) + x``, spike ``v > 0.5``, detached reset, rectangular surrogate of
  width 1 and height 1; here spikingjelly LIFNode(tau=4/3, decay_input=False, v_th=0.5, hard reset,
  Rect(alpha=1)) = ``resnet_parts.LIF_025_PARAMS`` (fires on ``v >= 0.5``: differs only at equality);
- stem: 7x7/2 conv + BN (18/34); 104: three 3x3 convs (stride 2, 1, 1, with bias, nothing between)
  + BN. No neuron after the stem; the max-pool is built but never used, stage 1 is strided instead;
- BNs initialised to weight 0.5 (the threshold), the last BN of each residual branch to 0; convs
  keep PyTorch's default init;
- head: a neuron on the final stream, then global average pool, (dropout 0.2 for 104), linear;
- stages 2-2-2-2 (18), 3-4-6-3 (34), 3-8-32-8 (104), basic blocks, channels 64..512; time window 6.

The CIFAR preset uses a 3x3/1 conv + BN stem for every depth and an unstrided first stage.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from spikingjelly.activation_based import layer

from bench.models.common import check_input_size, scaled
from bench.models.neurons import NeuronFactory, neuron_factory
from bench.models.registry import OFFICIAL, register_model
from bench.models.resnet_parts import (
    LAYOUTS,
    LIF_025_PARAMS,
    Head,
    ResNetTrunk,
    Stem,
    build_stages,
    classic_stem_body,
    conv_bn,
    init_weights,
    last_bn,
    needs_projection,
    residual_branch,
)

DEFAULT_NEURON = "lif"
DEFAULT_NEURON_PARAMS: dict[str, Any] = dict(LIF_025_PARAMS)
MS_LAYOUTS = {18: LAYOUTS[18][1], 34: LAYOUTS[34][1], 104: (3, 8, 32, 8)}
BN_WEIGHT = 0.5


def avg_down(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    """2x2 average pool (when strided) + 1x1 conv + BN: the 104-layer net's projection shortcut."""
    pool = [nn.AvgPool2d(stride, stride)] if stride > 1 else []
    return layer.SeqToANNContainer(*pool, nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch))


class MSBlock(nn.Module):
    """``branch(SN(x)) + shortcut(x)``: spikes feed the convs, the add stays in the membrane domain."""

    def __init__(self, in_ch: int, planes: int, stride: int, neurons: NeuronFactory, pool_shortcut: bool):
        super().__init__()
        self.sn = neurons()
        self.branch = residual_branch("basic", in_ch, planes, stride, neurons)
        if not needs_projection(in_ch, planes, stride):
            self.shortcut: nn.Module = nn.Identity()
        elif pool_shortcut:
            self.shortcut = avg_down(in_ch, planes, stride)
        else:
            self.shortcut = conv_bn(in_ch, planes, 1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.branch(self.sn(x)) + self.shortcut(x)


def deep_stem_body(in_channels: int, out_channels: int) -> nn.Sequential:
    """The 104-layer net's stem: 3x3/2, 3x3, 3x3 convs (with bias, nothing between them) + BN."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels),
    )


def ms_resnet(
    depth: int,
    num_classes: int = 1000,
    in_channels: int = 3,
    input_size: str = "imagenet",
    width: float = 1.0,
    neuron: str | None = None,
    neuron_params: dict[str, Any] | None = None,
    drop_rate: float | None = None,
) -> ResNetTrunk:
    """MS-ResNet of ``depth`` in 18/34/104.

    ``drop_rate``: dropout before the classifier; None gives the official 0.2 for 104 and 0 otherwise.
    """
    if depth not in MS_LAYOUTS:
        raise ValueError(f"depth must be one of {tuple(MS_LAYOUTS)}, got {depth}")
    imagenet = check_input_size(input_size) == "imagenet"
    neurons = neuron_factory(DEFAULT_NEURON, DEFAULT_NEURON_PARAMS, neuron, neuron_params)
    stem_ch = scaled(64, width)
    body = (deep_stem_body(in_channels, stem_ch) if depth == 104 and imagenet
            else classic_stem_body(in_channels, stem_ch, input_size))
    stages, out_ch = build_stages(
        MS_LAYOUTS[depth], width, 2 if imagenet else 1, stem_ch, 1,
        lambda cin, planes, stride: MSBlock(cin, planes, stride, neurons, pool_shortcut=depth == 104),
    )
    if drop_rate is None:
        drop_rate = 0.2 if depth == 104 else 0.0
    model = ResNetTrunk(stem=Stem(body), layers=stages, post=neurons(), head=Head(out_ch, num_classes, drop_rate))
    init_weights(model, kaiming_convs=False, bn_weight=BN_WEIGHT)
    for m in model.modules():
        if isinstance(m, MSBlock):
            nn.init.zeros_(last_bn(m.branch).weight)
    return model


_META = dict(
    family="ms_resnet",
    paper="Hu et al. 2021/2024, Advancing Spiking Neural Networks towards Deep Residual Learning",
    provenance=OFFICIAL,
    default_T=6,
    neuron=NeuronFactory(DEFAULT_NEURON, **DEFAULT_NEURON_PARAMS).describe(),
    non_spiking=(
        "analog first conv (direct encoding)",
        "membrane-domain shortcut adds",
        "real-valued downsample convs (1x1 on the membrane stream)",
    ),
)


@register_model(**_META)
def ms_resnet18(**kwargs: Any) -> ResNetTrunk:
    """MS-ResNet-18 (basic 2-2-2-2); options as :func:`ms_resnet`."""
    return ms_resnet(18, **kwargs)


@register_model(**_META)
def ms_resnet34(**kwargs: Any) -> ResNetTrunk:
    """MS-ResNet-34 (basic 3-4-6-3); options as :func:`ms_resnet`."""
    return ms_resnet(34, **kwargs)


@register_model(**{**_META, "non_spiking": (
    "analog first convs (direct encoding; three-conv stem)",
    "membrane-domain shortcut adds",
    "real-valued downsample convs (avgpool + 1x1 on the membrane stream)",
), "notes": "layout 3-8-32-8 and deep stem from the official code; the paper's 74.21 top-1 is "
            "reported at T=5 [recalled]"})
def ms_resnet104(**kwargs: Any) -> ResNetTrunk:
    """MS-ResNet-104 (basic 3-8-32-8, deep stem, avg-pool shortcuts); options as :func:`ms_resnet`."""
    return ms_resnet(104, **kwargs)
