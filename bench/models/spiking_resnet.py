"""Plain Spiking ResNet (Zheng et al. 2021, tdBN), as reimplemented by the SEW ResNet authors.

Block: ``SN(BN(conv(SN(BN(conv(x))))) + shortcut(x))`` (bottleneck: three conv-BN, two inner SNs).
The add comes before the last neuron, so every conv input after the stem is binary. Shortcut:
identity, or 1x1 conv (stride) + BN when shape changes. Stem: conv + BN + SN (+ 3x3/2 max-pool
for the ImageNet preset). Head: per-step global average pool and linear, output ``[T, B, K]``.
Stem as the SEW authors ran it (their ``imagenet/spiking_resnet.py`` applies conv1 + bn1 to the static
image once and repeats the result over T): with the default ``stem_once="auto"`` a static input runs
the stem conv once per sample (counted once, not T times); input that changes over time runs it
every step.

Defaults follow the SEW authors' ImageNet code and logs: IF neuron (threshold 1, hard reset to 0,
detach_reset, ATan surrogate alpha 2), torchvision init, last BN of every block zero-initialised
(``zero_init_residual=True``, as in their logged Spiking ResNet runs). The tdBN paper's own neuron
(LIF, decay 0.25, threshold 0.5, rectangular surrogate) is
``neuron="lif", neuron_params=LIF_025_PARAMS`` (from ``bench.models.resnet_parts``); its
threshold-dependent BN is not reproduced (plain BN over T*B*H*W).
"""

from __future__ import annotations

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


class SpikingBlock(nn.Module):
    """``SN(branch(x) + shortcut(x))``: membrane-input add, then the block's output neuron."""

    def __init__(self, kind: str, in_ch: int, planes: int, stride: int, neurons: NeuronFactory):
        super().__init__()
        out_ch = planes * EXPANSION[kind]
        self.branch = residual_branch(kind, in_ch, planes, stride, neurons)
        self.shortcut = conv_bn(in_ch, out_ch, 1, stride) if needs_projection(in_ch, out_ch, stride) else nn.Identity()
        self.sn = neurons()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sn(self.branch(x) + self.shortcut(x))


def spiking_resnet(
    depth: int,
    num_classes: int = 1000,
    in_channels: int = 3,
    input_size: str = "imagenet",
    width: float = 1.0,
    neuron: str | None = None,
    neuron_params: dict[str, Any] | None = None,
    stem_once: bool | str = "auto",
    zero_init_residual: bool = True,
) -> ResNetTrunk:
    """Spiking ResNet of ``depth`` in 18/34/50/101/152.

    ``stem_once``: ``"auto"`` (default) runs the stem conv+BN once and repeats it over T when the input is
    the same at every step (static images, as the SEW authors' code did; stem MACs drop by a factor T)
    and every step otherwise (event frames); ``True`` insists on once, ``False`` always runs every step
    (see :class:`bench.models.resnet_parts.Stem`).
    ``zero_init_residual``: zero the last BN of every residual branch.
    """
    kind, blocks = layout(depth)
    neurons = neuron_factory(DEFAULT_NEURON, DEFAULT_NEURON_PARAMS, neuron, neuron_params)
    stem_ch = scaled(64, width)
    stages, out_ch = build_stages(
        blocks, width, 1, stem_ch, EXPANSION[kind],
        lambda cin, planes, stride: SpikingBlock(kind, cin, planes, stride, neurons),
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
            if isinstance(m, SpikingBlock):
                nn.init.zeros_(last_bn(m.branch).weight)
    return model


_META = dict(
    family="spiking_resnet",
    paper="Zheng et al. 2021, Going Deeper With Directly-Trained Larger SNNs (tdBN); "
    "reimplementation by Fang et al. 2021 (SEW ResNet code)",
    provenance=OFFICIAL,
    default_T=4,
    neuron=NeuronFactory(DEFAULT_NEURON, **DEFAULT_NEURON_PARAMS).describe(),
    non_spiking=("analog first conv (direct encoding)",),
    notes="SEW authors' reimplementation (IF neuron); tdBN's LIF via neuron='lif', "
    "neuron_params=resnet_parts.LIF_025_PARAMS. Stem as the authors ran it: once per sample on static input, "
    "repeated over T (stem_once='auto'; every step when the input changes over time; stem_once=False: "
    "always every step).",
)


@register_model(**_META)
def spiking_resnet18(**kwargs: Any) -> ResNetTrunk:
    """Spiking ResNet-18 (basic blocks 2-2-2-2)."""
    return spiking_resnet(18, **kwargs)


@register_model(**_META)
def spiking_resnet34(**kwargs: Any) -> ResNetTrunk:
    """Spiking ResNet-34 (basic blocks 3-4-6-3)."""
    return spiking_resnet(34, **kwargs)


@register_model(**_META)
def spiking_resnet50(**kwargs: Any) -> ResNetTrunk:
    """Spiking ResNet-50 (bottlenecks 3-4-6-3)."""
    return spiking_resnet(50, **kwargs)


@register_model(**_META)
def spiking_resnet101(**kwargs: Any) -> ResNetTrunk:
    """Spiking ResNet-101 (bottlenecks 3-4-23-3)."""
    return spiking_resnet(101, **kwargs)


@register_model(**_META)
def spiking_resnet152(**kwargs: Any) -> ResNetTrunk:
    """Spiking ResNet-152 (bottlenecks 3-8-36-3)."""
    return spiking_resnet(152, **kwargs)
