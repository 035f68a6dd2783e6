"""DSR-trained nets (Meng et al., CVPR 2022, arXiv 2205.00459): PreAct-ResNet-18 and VGG-11.

DSR ("Differentiation on Spike Representation") is a training method: the forward pass runs real
spiking dynamics, the backward pass differentiates the mapping from input (weighted) firing rate
to output firing rate (no BPTT). spikingjelly 2.0 implements both nodes (``DSRIFNode``,
``DSRLIFNode``); this module builds the official networks around them.

Facts from the official code (github.com/qymeng94/DSR, ``cifar/modules/*.py``, ``imagenet/*.py``,
README commands):

- Nodes are built for a fixed T: the input must have exactly T steps (the model checks it).
- DSR spikes are scaled: IF nodes emit {0, v_th}, LIF nodes {0, v_th/dt} (dt = 0.05, so 20 v_th).
- One trainable threshold per neuron layer, kept above a lower bound. LIF: init 0.3, bound 5e-4,
  alpha 0.3, tau 1, dt 0.05. IF: init 6.0, bound 0.01, alpha 0.5 (spike when u >= alpha v_th).
  ImageNet IF additionally scales the threshold gradient by 0.001 and, in the paper, initialises
  the thresholds from the maximum activations of a pre-trained ANN (hybrid training). The paper
  has no ImageNet LIF net; ``neuron="dsr_lif"`` there uses the CIFAR LIF defaults.
- Output layer: FC -> BatchNorm1d -> neuron; the logits are that layer's firing rate over all T
  (IF: mean; LIF: weighted by ``exp(-(T - t) dt / tau)``). Our models return these logits
  repeated over T as ``[T, B, K]`` (registered with ``causal_over_T=False``).

The official code clamps each threshold in place before every forward; spikingjelly clamps it
functionally instead (same forward, but a raw value below the bound gets no gradient). Call
:func:`project_thresholds` after each optimizer step to reproduce the official behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn as nn
from spikingjelly.activation_based import layer
from spikingjelly.activation_based import neuron as sj_neuron

from bench.models.common import check_input_size, scaled
from bench.models.neurons import NeuronFactory, neuron_factory
from bench.models.registry import OFFICIAL, register_model

PAPER = "Meng et al., CVPR 2022 (arXiv 2205.00459): Differentiation on Spike Representation (DSR)"
FAMILY = "dsr"
DSR_KINDS = ("dsr_if", "dsr_lif")
DSR_NODES = (sj_neuron.DSRIFNode, sj_neuron.DSRLIFNode)

# Official hyperparameters: cifar/main_single_gpu.py defaults (LIF) and the README's IF commands
# (--Vth 6 --alpha 0.5 --Vth_bound 0.01), used unchanged for CIFAR-10/100 and DVS-CIFAR10.
NEURON_DEFAULTS: dict[str, dict[str, float]] = {
    "dsr_lif": {"v_threshold": 0.3, "alpha": 0.3, "tau": 1.0, "delta_t": 0.05,
                "v_threshold_lower_bound": 0.0005},
    "dsr_if": {"v_threshold": 6.0, "alpha": 0.5, "v_threshold_lower_bound": 0.01},
}
# imagenet/neuron.py multiplies the IF threshold gradient by 0.001.
IMAGENET_IF_GRAD_SCALING = 0.001

_FLOAT_PARAMS = ("v_threshold", "alpha", "tau", "delta_t", "v_threshold_lower_bound",
                 "v_threshold_grad_scaling")

NOTES = (
    "DSR spikes are scaled events: IF nodes emit {0, v_th}, LIF nodes {0, v_th/dt} (dt 0.05); "
    "count them as value-weighted events. DSR nodes are not spikingjelly BaseNode subclasses. "
    "Nodes are built for a fixed T (input T must equal it); logits are the output layer's "
    "(weighted) firing rate over all T, repeated over T. Train with DSR (no BPTT); call "
    "bench.models.dsr.project_thresholds after optimizer steps to match the official threshold clamp."
)


def dsr_neuron_factory(kind: str | None, T: int, neuron_params: dict[str, Any] | None = None,
                       *, default_kind: str = "dsr_lif", imagenet: bool = False) -> NeuronFactory:
    """A factory of DSR nodes for T steps with the official defaults of ``kind``, overridden by ``neuron_params``."""
    kind = kind or default_kind
    if kind not in DSR_KINDS:
        raise ValueError(f"DSR nets need a DSR neuron; neuron must be one of {DSR_KINDS}, got {kind!r}")
    if not isinstance(T, int) or isinstance(T, bool) or T < 1:
        raise ValueError(f"T must be a positive int (DSR nodes are built for a fixed T), got {T!r}")
    params = dict(neuron_params or {})
    if "T" in params:
        raise ValueError("pass the number of time steps as the model's T argument, not in neuron_params")
    defaults: dict[str, Any] = dict(NEURON_DEFAULTS[kind])
    if imagenet and kind == "dsr_if":
        defaults["v_threshold_grad_scaling"] = IMAGENET_IF_GRAD_SCALING
    # spikingjelly asserts float types; accept ints from users and TOML files.
    params = {k: float(v) if k in _FLOAT_PARAMS else v for k, v in params.items()}
    return neuron_factory(kind, {**defaults, "T": T}, None, params)


def dsr_nodes(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """``(name, node)`` for every DSR node in ``model``, in module order."""
    for name, module in model.named_modules():
        if isinstance(module, DSR_NODES):
            yield name, module


def dsr_thresholds(model: nn.Module) -> dict[str, float]:
    """Each DSR node's effective threshold (its parameter clamped to the lower bound), by module name."""
    return {name: float(node.v_threshold.detach().clamp(min=node.v_threshold_lower_bound))
            for name, node in dsr_nodes(model)}


@torch.no_grad()
def project_thresholds(model: nn.Module) -> None:
    """Clamp every trainable DSR threshold in place to its lower bound (the official code does this)."""
    for _, node in dsr_nodes(model):
        if isinstance(node.v_threshold, nn.Parameter):
            node.v_threshold.clamp_(min=node.v_threshold_lower_bound)


def rate_decode(spikes: torch.Tensor, node: nn.Module) -> torch.Tensor:
    """Output-layer decoding ``[T, B, K] -> [B, K]``: mean rate (IF) or weighted rate (LIF) over all T."""
    if isinstance(node, sj_neuron.DSRLIFNode):
        return sj_neuron.DSRLIFNode.weight_rate_spikes(spikes, node.tau, node.delta_t)
    return spikes.mean(0)


class DSRNet(nn.Module):
    """Base of the DSR nets: checks T, runs ``features``, rate-decodes ``out_neuron``, repeats over T."""

    def __init__(self, T: int):
        super().__init__()
        self.T = T

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"expected input [T, B, C, H, W], got shape {tuple(x.shape)}")
        if x.shape[0] != self.T:
            raise ValueError(
                f"{type(self).__name__} was built for T={self.T} but the input has {x.shape[0]} time "
                f"steps; DSR nodes simulate and differentiate over a fixed T, so build the model with "
                f"T={x.shape[0]} (a mismatch otherwise fails only in backward, with a shape error)"
            )
        logits = rate_decode(self.features(x), self.out_neuron)
        return logits.unsqueeze(0).repeat(self.T, 1, 1)


def _conv(cin: int, cout: int, k: int, stride: int = 1, bias: bool = True) -> layer.Conv2d:
    return layer.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=bias, step_mode="m")


class PreActBlock(nn.Module):
    """Pre-activation basic block: ``x' = N(BN(x)); out = conv2(N(BN(conv1(x')))) + shortcut(x')``.

    Both convs and the 1x1 projection shortcut see spikes; the add is on the real-valued stream
    (the next block's BN + neuron follow). CIFAR: convs with bias, shortcut a bare 1x1 conv with bias.
    ImageNet: convs without bias, shortcut 1x1 conv + BN.
    """

    def __init__(self, cin: int, cout: int, stride: int, make_neuron: NeuronFactory,
                 conv_bias: bool = True, shortcut_bn: bool = False, dropout: float = 0.0):
        super().__init__()
        self.bn1 = layer.BatchNorm2d(cin, step_mode="m")
        self.sn1 = make_neuron()
        self.conv1 = _conv(cin, cout, 3, stride, conv_bias)
        self.bn2 = layer.BatchNorm2d(cout, step_mode="m")
        self.sn2 = make_neuron()
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _conv(cout, cout, 3, 1, conv_bias)
        if stride != 1 or cin != cout:
            proj: list[nn.Module] = [_conv(cin, cout, 1, stride, conv_bias)]
            if shortcut_bn:
                proj.append(layer.BatchNorm2d(cout, step_mode="m"))
            self.shortcut: nn.Module = nn.Sequential(*proj)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.sn1(self.bn1(x))
        out = self.conv2(self.dropout(self.sn2(self.bn2(self.conv1(x)))))
        return out + self.shortcut(x)


class DSRPreActResNet(DSRNet):
    """PreAct-ResNet of the DSR code.

    ``input_size="cifar"`` (cifar/modules/preresnet.py): 3x3/1 stem conv without bias, BN or neuron;
    convs with bias. ``"imagenet"`` (imagenet/preresnet_snn.py): 7x7/2 conv + BN + neuron + AvgPool
    3x3/2 stem; convs without bias. Head (both): BN -> N -> global AvgPool -> N -> (dropout) -> FC ->
    BatchNorm1d -> N. The CIFAR code's AvgPool2d(4) is written as a global average pool (the same
    at 32 px, and valid at other sizes).
    """

    def __init__(self, layers: tuple[int, ...], num_classes: int, in_channels: int, input_size: str,
                 width: float, make_neuron: NeuronFactory, T: int, dropout: float = 0.0):
        super().__init__(T)
        imagenet = check_input_size(input_size) == "imagenet"
        widths = [scaled(c, width) for c in (64, 128, 256, 512)]
        if imagenet:
            self.stem: nn.Module = nn.Sequential(
                _conv(in_channels, widths[0], 7, 2, bias=False),
                layer.BatchNorm2d(widths[0], step_mode="m"),
                make_neuron(),
                layer.AvgPool2d(3, 2, 1, step_mode="m"),
            )
        else:
            self.stem = _conv(in_channels, widths[0], 3, 1, bias=False)
        blocks: list[nn.Module] = []
        cin = widths[0]
        for i, (cout, n) in enumerate(zip(widths, layers, strict=True)):
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(PreActBlock(cin, cout, stride, make_neuron, conv_bias=not imagenet,
                                          shortcut_bn=imagenet, dropout=dropout))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.bn = layer.BatchNorm2d(cin, step_mode="m")
        self.sn = make_neuron()
        self.pool = layer.AdaptiveAvgPool2d(1, step_mode="m")
        self.pool_neuron = make_neuron()
        self.flatten = layer.Flatten(step_mode="m")
        self.dropout = nn.Dropout(dropout)
        self.fc = layer.Linear(cin, num_classes, step_mode="m")
        self.out_bn = layer.BatchNorm1d(num_classes, step_mode="m")
        self.out_neuron = make_neuron()
        _init_weights(self, zero_conv_bias=False, linear_std=None)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        x = self.pool_neuron(self.pool(self.sn(self.bn(x))))
        x = self.fc(self.dropout(self.flatten(x)))
        return self.out_neuron(self.out_bn(x))


VGG11_CFG: tuple[int | str, ...] = (64, "A", 128, "A", 256, 256, "A", 512, 512, "A", 512, 512, "A")


class DSRVGG(DSRNet):
    """VGG of the DSR code (cifar/modules/vgg.py): [conv3x3 (bias) -> BN -> N -> dropout] stacks,
    AvgPool 2x2 instead of MaxPool, AdaptiveAvgPool to 7x7, FC -> BatchNorm1d -> N.

    The pools average spikes, so the next conv (and the classifier) sees fractions of v_th. At the
    paper's 48 px the last map is 1x1 and the 7x7 adaptive pool copies it 49 times: the FC has
    512*49 inputs holding 512 distinct values (kept as in the official code, it shapes the counts).
    """

    def __init__(self, cfg: tuple[int | str, ...], num_classes: int, in_channels: int, width: float,
                 make_neuron: NeuronFactory, T: int, dropout: float = 0.1):
        super().__init__(T)
        feats: list[nn.Module] = []
        cin = in_channels
        for v in cfg:
            if v == "A":
                feats.append(layer.AvgPool2d(2, 2, step_mode="m"))
                continue
            cout = scaled(int(v), width)
            feats += [_conv(cin, cout, 3), layer.BatchNorm2d(cout, step_mode="m"), make_neuron(),
                      nn.Dropout(dropout)]
            cin = cout
        self.body = nn.Sequential(*feats)
        self.pool = layer.AdaptiveAvgPool2d((7, 7), step_mode="m")
        self.flatten = layer.Flatten(step_mode="m")
        self.fc = layer.Linear(cin * 49, num_classes, step_mode="m")
        self.out_bn = layer.BatchNorm1d(num_classes, step_mode="m")
        self.out_neuron = make_neuron()
        _init_weights(self, zero_conv_bias=True, linear_std=0.01)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(self.pool(self.body(x)))
        return self.out_neuron(self.out_bn(self.fc(x)))


def _init_weights(model: nn.Module, zero_conv_bias: bool, linear_std: float | None) -> None:
    """Official init: Kaiming-normal (fan_out) convs, BN 1/0, zero FC bias (VGG: FC weight N(0, 0.01))."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if zero_conv_bias and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            if linear_std is not None:
                nn.init.normal_(m.weight, 0.0, linear_std)
            nn.init.zeros_(m.bias)


def _resnet18(default_kind: str, num_classes: int, in_channels: int, input_size: str, width: float,
              neuron: str | None, neuron_params: dict | None, T: int, dropout: float) -> DSRPreActResNet:
    imagenet = check_input_size(input_size) == "imagenet"
    make = dsr_neuron_factory(neuron, T, neuron_params, default_kind=default_kind, imagenet=imagenet)
    return DSRPreActResNet((2, 2, 2, 2), num_classes, in_channels, input_size, width, make, T, dropout)


_LIF_DESC = ("DSR-LIF (spikingjelly DSRLIFNode): u = b u + (1 - b) x, b = exp(-dt/tau), tau 1, dt 0.05; "
             "emits v_th/dt when u >= 0.3 v_th, soft reset by v_th; trainable v_th per layer "
             "(init 0.3, lower bound 5e-4)")
_IF_DESC = ("DSR-IF (spikingjelly DSRIFNode): u += x; emits v_th when u >= 0.5 v_th, soft reset by v_th; "
            "trainable v_th per layer (init 6.0, lower bound 0.01)")
_RESNET_NON_SPIKING = ("analog first conv (direct encoding)", "membrane-domain shortcut adds")


@register_model(family=FAMILY, paper=PAPER, provenance=OFFICIAL, default_T=20, neuron=_LIF_DESC,
                non_spiking=_RESNET_NON_SPIKING, input_size="cifar", causal_over_T=False, notes=NOTES)
def dsr_preact_resnet18(num_classes: int = 10, in_channels: int = 3, input_size: str = "cifar",
                        width: float = 1.0, neuron: str | None = None, neuron_params: dict | None = None,
                        T: int = 20, dropout: float = 0.0) -> DSRPreActResNet:
    """CIFAR PreAct-ResNet-18 trained with DSR, LIF by default (the paper's best CIFAR result).

    ``neuron="dsr_if"`` gives the IF net with the IF defaults (see ``dsr_preact_resnet18_if``);
    ``dropout`` (official default 0) drops before each block's conv2 and before the FC.
    Params: 11,176,945 at 10 classes (11,176,926 weights + 19 thresholds).
    Published top-1 at T=20 (recalled from the paper, not checked against it here): CIFAR-10 95.40,
    CIFAR-100 78.50 (LIF); IF: 95.24 / 78.20.
    """
    return _resnet18("dsr_lif", num_classes, in_channels, input_size, width, neuron, neuron_params, T, dropout)


@register_model(family=FAMILY, paper=PAPER, provenance=OFFICIAL, default_T=20, neuron=_IF_DESC,
                non_spiking=_RESNET_NON_SPIKING, input_size="cifar", causal_over_T=False, notes=NOTES)
def dsr_preact_resnet18_if(num_classes: int = 10, in_channels: int = 3, input_size: str = "cifar",
                           width: float = 1.0, neuron: str | None = None, neuron_params: dict | None = None,
                           T: int = 20, dropout: float = 0.0) -> DSRPreActResNet:
    """CIFAR PreAct-ResNet-18 with DSR-IF nodes (README: --Vth 6 --alpha 0.5 --Vth_bound 0.01).

    Published top-1 at T=20 (recalled, unverified here): CIFAR-10 95.24, CIFAR-100 78.20.
    """
    return _resnet18("dsr_if", num_classes, in_channels, input_size, width, neuron, neuron_params, T, dropout)


@register_model(family=FAMILY, paper=PAPER, provenance=OFFICIAL, default_T=50,
                neuron=_IF_DESC + "; threshold gradient x0.001; paper initialises v_th from ANN max activations",
                non_spiking=_RESNET_NON_SPIKING, input_size="imagenet", causal_over_T=False, notes=NOTES)
def dsr_preact_resnet18_imagenet(num_classes: int = 1000, in_channels: int = 3, input_size: str = "imagenet",
                                 width: float = 1.0, neuron: str | None = None,
                                 neuron_params: dict | None = None, T: int = 50,
                                 dropout: float = 0.0) -> DSRPreActResNet:
    """ImageNet PreAct-ResNet-18 with DSR-IF (imagenet/preresnet_snn.py): 7x7/2 conv + BN + IF + AvgPool stem.

    The paper trains it hybrid: an ANN first, thresholds from its maximum activations, then DSR
    fine-tuning at T=50. Params: 11,691,660 at 1000 classes (20 of them thresholds).
    Published top-1 (recalled, unverified here): 67.74 at T=50.
    """
    return _resnet18("dsr_if", num_classes, in_channels, input_size, width, neuron, neuron_params, T, dropout)


@register_model(family=FAMILY, paper=PAPER, provenance=OFFICIAL, default_T=20, neuron=_LIF_DESC,
                non_spiking=("analog first conv (event-count frames or pixels)",
                             "average-pooled spikes (fractions of v_th) feed convs and the classifier"),
                input_size="cifar", causal_over_T=False,
                notes=NOTES + " DVS-CIFAR10 at 48 px, 20 frames, 2 polarity channels.")
def dsr_vgg11(num_classes: int = 10, in_channels: int = 2, input_size: str = "cifar", width: float = 1.0,
              neuron: str | None = None, neuron_params: dict | None = None, T: int = 20,
              dropout: float = 0.1) -> DSRVGG:
    """VGG-11 for DVS-CIFAR10 (48 px, T=20 frames), LIF by default; ``neuron="dsr_if"`` for the IF net.

    Channels 64-A-128-A-256-256-A-512-512-A-512-512-A (A = AvgPool 2x2), dropout 0.1 after every
    neuron, FC 512*7*7 -> K. Params: 9,476,327 at 10 classes (9 of them thresholds).
    ``input_size`` is validated but changes nothing: the official net has no stem to swap, and its
    adaptive 7x7 pool lets the same layers run at any size >= 32 px (e.g. 128-px DVS frames).
    Published top-1 (recalled, unverified here; neuron not recorded): 77.27.
    """
    check_input_size(input_size)
    make = dsr_neuron_factory(neuron, T, neuron_params, default_kind="dsr_lif")
    return DSRVGG(VGG11_CFG, num_classes, in_channels, width, make, T, dropout)
