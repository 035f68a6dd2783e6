"""Pieces shared by the ResNet families (Spiking ResNet, SEW ResNet, MS-ResNet).

Tensors are multi-step ``[T, B, C, H, W]``. Synaptic layers are plain ``nn.Conv2d``/``nn.BatchNorm2d``
inside ``layer.SeqToANNContainer`` (time folded into the batch once per conv+BN pair), so op counters
see real ``nn.Conv2d`` modules. Channel counts follow torchvision ResNets (so parameter counts match
at width 1.0); ``width`` scales every channel count for tiny CPU variants.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
from spikingjelly.activation_based import layer

from bench.models.common import check_input_size, scaled

# depth -> (block kind, blocks per stage), as torchvision (basic) / ResNet v1.5 (bottleneck).
LAYOUTS: dict[int, tuple[str, tuple[int, ...]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
EXPANSION = {"basic": 1, "bottleneck": 4}
STAGE_PLANES = (64, 128, 256, 512)

# LIF of tdBN / MS-ResNet official code: v <- 0.25 v (1 - s) + x, spike when v > 0.5, rectangular
# surrogate of width 1 and height 1 around the threshold (lens = 0.5). spikingjelly's LIFNode with
# decay_input=False computes v <- (1 - 1/tau) v + x, so decay 0.25 is tau = 4/3; Rect(alpha=1) has
# gradient 1 on |v - v_th| < 0.5. (spikingjelly fires on v >= v_th, the official code on v > v_th.)
LIF_025_PARAMS: dict[str, object] = {
    "tau": 4.0 / 3.0,
    "decay_input": False,
    "v_threshold": 0.5,
    "v_reset": 0.0,
    "detach_reset": True,
    "surrogate": "rect",
    "alpha": 1.0,
}

NeuronMaker = Callable[[], nn.Module]


def layout(depth: int, allowed: tuple[int, ...] = tuple(LAYOUTS)) -> tuple[str, tuple[int, ...]]:
    """Block kind and blocks per stage of a ResNet depth; ``allowed`` restricts a family's depths."""
    if depth not in allowed or depth not in LAYOUTS:
        raise ValueError(f"depth must be one of {allowed}, got {depth}")
    return LAYOUTS[depth]


def conv_bn(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, bias: bool = False) -> nn.Module:
    """Multi-step conv (padding k//2) followed by BN, time folded into the batch once for both."""
    return layer.SeqToANNContainer(
        nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias),
        nn.BatchNorm2d(out_ch),
    )


def residual_branch(kind: str, in_ch: int, planes: int, stride: int, make_neuron: NeuronMaker) -> nn.Sequential:
    """The conv path of a block, ending in BN (no neuron at either end; families add their own).

    basic:      conv3x3(stride)-BN-SN-conv3x3-BN
    bottleneck: conv1x1-BN-SN-conv3x3(stride)-BN-SN-conv1x1(4x)-BN (stride on the 3x3, as torchvision)
    """
    if kind == "basic":
        return nn.Sequential(conv_bn(in_ch, planes, 3, stride), make_neuron(), conv_bn(planes, planes, 3))
    if kind == "bottleneck":
        return nn.Sequential(
            conv_bn(in_ch, planes, 1), make_neuron(),
            conv_bn(planes, planes, 3, stride), make_neuron(),
            conv_bn(planes, planes * EXPANSION["bottleneck"], 1),
        )
    raise ValueError(f"unknown block kind {kind!r}")


def last_bn(branch: nn.Sequential) -> nn.BatchNorm2d:
    """The BN closing a residual branch (zero-initialised by families that start blocks as identity)."""
    bn = branch[-1][-1]
    assert isinstance(bn, nn.BatchNorm2d)
    return bn


def needs_projection(in_ch: int, out_ch: int, stride: int) -> bool:
    return stride != 1 or in_ch != out_ch


STEM_ONCE_MODES = ("auto", True, False)


def is_static(x: torch.Tensor) -> bool:
    """True when every step of ``x`` (``[T, B, ...]``) equals the first: a directly encoded static image."""
    return x.shape[0] == 1 or torch.equal(x[1:], x[:1].expand_as(x[1:]))


class Stem(nn.Module):
    """Analog first layers on the encoded input (conv... + BN), no neuron.

    ``once`` says when the body runs on ``x[0]`` alone, its output repeated over T (what the SEW authors'
    ImageNet code does: the same output as running every step, at 1/T of the stem's MACs):

    - ``"auto"``: when the input is the same at every step (static images; checked exactly on every
      forward, one comparison of the input, which on CUDA waits for the input to be ready), else per step;
    - ``True``: always; an input that changes over time (event frames) is a ValueError;
    - ``False``: never (every step runs the body, as a per-step implementation would).
    """

    def __init__(self, body: nn.Sequential, once: bool | str = False):
        super().__init__()
        if once not in STEM_ONCE_MODES:
            raise ValueError(f"stem_once must be one of {STEM_ONCE_MODES}, got {once!r}")
        self.body = body
        self.once = once if isinstance(once, str) else bool(once)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        if self.once is not False:
            static = is_static(x)
            if self.once is True and not static:
                raise ValueError("stem_once=True needs the same input at every step (a static image); this input "
                                 "changes over time (event frames?): use stem_once='auto' or False")
            if static:
                y = self.body(x[0])
                return y.unsqueeze(0).repeat(T, *([1] * y.dim()))
        return self.body(x.flatten(0, 1)).unflatten(0, (T, B))

    def extra_repr(self) -> str:
        return f"once={self.once!r}"


def classic_stem_body(in_channels: int, out_channels: int, input_size: str) -> nn.Sequential:
    """ImageNet 7x7/2 conv + BN, or CIFAR 3x3/1 conv + BN."""
    k, s = (7, 2) if check_input_size(input_size) == "imagenet" else (3, 1)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, k, stride=s, padding=k // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    )


def stem_pool(input_size: str) -> nn.Module:
    """3x3/2 max-pool after the ImageNet stem; nothing for the CIFAR preset."""
    if check_input_size(input_size) == "imagenet":
        return layer.SeqToANNContainer(nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    return nn.Identity()


class Head(nn.Module):
    """Global average pool over space at every time step, flatten, (dropout,) linear: ``[T, B, K]``."""

    def __init__(self, in_features: int, num_classes: int, drop_rate: float = 0.0):
        super().__init__()
        self.pool = layer.SeqToANNContainer(nn.AdaptiveAvgPool2d(1))
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.pool(x).flatten(2)))


def build_stages(blocks: tuple[int, ...], width: float, first_stride: int, in_ch: int, expansion: int,
                 make_block: Callable[[int, int, int], nn.Module]) -> tuple[nn.Sequential, int]:
    """Four stages of ``make_block(in_ch, planes, stride)``; planes 64..512 scaled by ``width``, the
    first block of each stage strided (stage 1 by ``first_stride``, the others by 2).

    Returns the stages and the output channel count.
    """
    stages = []
    for i, (planes, n) in enumerate(zip(STAGE_PLANES, blocks, strict=True)):
        planes = scaled(planes, width)
        stage = []
        for j in range(n):
            stage.append(make_block(in_ch, planes, (first_stride if i == 0 else 2) if j == 0 else 1))
            in_ch = planes * expansion
        stages.append(nn.Sequential(*stage))
    return nn.Sequential(*stages), in_ch


class ResNetTrunk(nn.Module):
    """``head(post(layers(pre(stem(x)))))`` on ``[T, B, C, H, W]``, giving ``[T, B, num_classes]``.

    ``pre`` holds what sits between stem and stages (stem neuron, max-pool), ``post`` what sits
    between the last stage and the pool (MS-ResNet's final neuron).
    """

    def __init__(self, stem: nn.Module, layers: nn.Sequential, head: Head,
                 pre: nn.Module | None = None, post: nn.Module | None = None):
        super().__init__()
        self.stem = stem
        self.pre = pre if pre is not None else nn.Identity()
        self.layers = layers
        self.post = post if post is not None else nn.Identity()
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"expected input [T, B, C, H, W], got shape {tuple(x.shape)}")
        return self.head(self.post(self.layers(self.pre(self.stem(x)))))


def init_weights(model: nn.Module, kaiming_convs: bool = True, bn_weight: float = 1.0) -> None:
    """torchvision ResNet init: Kaiming-normal (fan_out) convs, BN weight ``bn_weight`` and bias 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and kaiming_convs:
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, bn_weight)
            nn.init.zeros_(m.bias)
