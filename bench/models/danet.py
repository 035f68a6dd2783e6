"""DANet: spiking ResNets with densely additive (DA) connections (Li, Lei & Yang 2023).

Paper: "Rethinking Residual Connection in Training Large-Scale Spiking Neural Networks",
arXiv 2311.05171 (2023); Neurocomputing 616, 128950 (2025). No official code exists and only the
abstract is public, so **this module is a reconstruction from the paper's abstract**. The abstract
says: the best-performing residual connections are abstracted into a *densely additive* connection,
the concept is extended to other topologies and four architectures ("DANet") are proposed;
"ResNet-50/101/152 with DA" reach 73.71 / 76.13 / 77.22 % top-1 on ImageNet at T=4 (which of the
four architectures that is, is not stated). Those numbers are the paper's, not ours.

What is fixed (the meaning of DA) and what is guessed
-----------------------------------------------------
Fixed: every unit receives the **sum** (not a concatenation) of the outputs of **all** earlier
units, outputs at another resolution/width being projected first, so additive paths cross stage
boundaries. Everything else is a guess, exposed as an option:

- ``domain``: what is summed. ``"spike"``: units emit spikes and the sums are integer
  "multi-spikes" (SEW-ADD extended); ``"membrane"``: units emit real BN outputs and the sums are
  real (MS-ResNet extended). [guess; both are the "best-performing connections" the abstract
  most plausibly means]
- ``span``: ``"global"`` sums all earlier units, across stages; ``"stage"`` sums only the units
  of the current stage plus the projected stage input (then DA is exactly a SEW-ADD / MS-style
  identity-shortcut chain, kept as the within-stage ablation). [guess]
- ``proj``: ``"pool"`` (default) avg-pool (ceil mode) + 1x1 conv + BN, as the downsampling
  shortcut of the authors' earlier Spikeformer code (and a strided 1x1 conv over the 4x/8x skips
  would read only 1/16 or 1/64 of the positions); ``"conv"``: strided 1x1 conv + BN (SEW/MS).
  In the spike domain a neuron follows (so the sums stay integer). [guess]
- ``scale``: ``"none"`` (default) plain sum; ``"mean"`` divides each sum by the number of unit
  outputs in it (then spike-domain sums are no longer integers). [guess]
- Unit bodies: spike domain ``conv-BN-SN`` per conv (SEW order), membrane domain ``SN-conv-BN``
  per conv (MS pre-activation order); basic blocks for depths 18/34, torchvision v1.5 bottlenecks
  (stride on the 3x3) for 50/101/152. Head: global average pool + linear, with a neuron first in
  the membrane domain (as MS-ResNet). ``zero_init_last_bn`` defaults to True in the membrane
  domain (MS-ResNet does this), False in the spike domain (SEW default). [guess]
- Neuron: ParametricLIF (init tau 2, threshold 1, hard reset to 0, detach_reset, sigmoid
  surrogate alpha 4), from the first author's Spikeformer code. [code of the earlier paper]

The four named architectures (``danet_a``..``danet_d``; the paper's own four are unknown):
``a`` spike/stage, ``b`` membrane/stage, ``c`` spike/global, ``d`` membrane/global. Registered at
depths 50/101/152 (``danet_c50`` ...); ``danet(variant, depth)`` also builds depth 18/34.

Not implemented, for a user holding the paper: a third-party snnTorch model inspired by the
Neurocomputing version (github.com/AndreaLolli2912/Spiking-ResNet, not the authors' code) applies
DA between *stage outputs* (stem and every earlier stage output, each through strided 1x1 conv +
BN + neuron, averaged, added to the stage output) and uses a pre-activation block it calls "PA-B"
after the paper. If the paper's unit is the stage rather than the block, these sums differ from
ours (they would project whole stage streams, which already contain the earlier terms).

Equations
---------
Units ``u_1..u_L`` are residual branches ``F_l`` (a block without its shortcut); ``x_0 = stem(x)``.
Each output ``x_j`` belongs to a *shape group* ``g(j)``: 1..4 for the stages, 0 for the stem when
its shape differs from stage 1 (bottlenecks; with basic blocks the stem joins group 1). Unit ``l``
reads at group ``h(l)``: the previous group for the first unit of a stage (which carries the stride
and channel change, as in torchvision), its own stage's group otherwise; the head reads at group 4.
With ``A_g = sum_{j<l, g(j)=g} x_j`` (same-shape outputs add through identity paths)::

    global:  S_l = sum_{g < h(l)} P_{g->h(l)}(A_g)  +  A_{h(l)}          n_l = l
    stage:   S_l = P_{h-1->h}(S_first(h))           +  A_h,  h = h(l)    n_l = 1 + #{j<l : g(j)=h}
    x_l = F_l(S_l)          (F_l(S_l / n_l) with scale="mean")
    y   = head(S_{L+1})

(in both spans, when ``h(l)`` is the stem's group there is no projected term: ``S_l = A_{h(l)}``.)

where ``S_first(h)`` is the input of the first unit of stage ``h`` (the stage input, exactly a
ResNet downsampling shortcut). ``P_{g->h}`` is one module per (source, target) group pair, applied
once to the source group's sum: pooling and conv are linear, so this equals projecting every
``x_j`` with shared weights and adding; BN (and the neuron, in the spike domain) then acts once on
the group's projected sum.

Cost
----
``span="stage"`` has exactly torchvision's projections (its ``downsample`` layers); ``"global"``
adds the non-adjacent pairs (1->3, 1->4, 2->4 for basic blocks; 0->2, 0->3, 0->4, 1->3, 1->4,
2->4 for bottlenecks), each ``c_src * c_dst`` conv weights + ``2 c_dst`` BN: +117,248 parameters
at depth 18/34 and +2,081,792 at depth 50/101/152 (width 1). Every ParametricLIF node adds one
parameter (its decay): spike domain ``1 + k * sum(layers) + #projections`` nodes, membrane domain
``k * sum(layers) + 1`` (k = 2 basic, 3 bottleneck). Extra compute of "global" over "stage" at
224 px: the extra 1x1 convs, ``sum c_src * c_dst * H_dst * W_dst`` = 173.4M MACs per time step at
depth 50/101/152 (about 4 % of ResNet-50's 4.1G) and 8.0M at depth 18/34, plus the pooling and the
additions of the sums.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn
from spikingjelly.activation_based import layer

from bench.models.common import check_input_size, scaled
from bench.models.neurons import NeuronFactory, neuron_factory
from bench.models.registry import RECONSTRUCTED, register_model

PAPER = (
    "Li, Lei & Yang, Rethinking Residual Connection in Training Large-Scale Spiking Neural Networks, "
    "arXiv 2311.05171 (2023); Neurocomputing 616:128950 (2025)"
)
DEFAULT_NEURON = "plif"
DEFAULT_NEURON_PARAMS: dict[str, Any] = {
    "init_tau": 2.0,
    "v_threshold": 1.0,
    "v_reset": 0.0,
    "detach_reset": True,
    "surrogate": "sigmoid",
    "alpha": 4.0,
}
NEURON_DESC = "ParametricLIF (init tau 2, threshold 1, hard reset, detach_reset, sigmoid surrogate alpha 4)"

DOMAINS = ("spike", "membrane")
SPANS = ("global", "stage")
PROJS = ("pool", "conv")
SCALES = ("none", "mean")
# variant -> (domain, span); the paper's own four architectures are not public.
VARIANTS: dict[str, tuple[str, str]] = {
    "a": ("spike", "stage"),
    "b": ("membrane", "stage"),
    "c": ("spike", "global"),
    "d": ("membrane", "global"),
}
DEPTHS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
# The paper's "ResNet with DA" ImageNet top-1 at T=4 (abstract; which variant is not stated).
PAPER_TOP1 = {50: 73.71, 101: 76.13, 152: 77.22}
EXPANSION = {"basic": 1, "bottleneck": 4}


def _choice(name: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value


def _branch_convs(block: str, cin: int, planes: int, stride: int) -> list[nn.Conv2d]:
    """The convs of a basic block or a torchvision v1.5 bottleneck (stride on the 3x3)."""
    if block == "basic":
        return [
            nn.Conv2d(cin, planes, 3, stride, 1, bias=False),
            nn.Conv2d(planes, planes, 3, 1, 1, bias=False),
        ]
    return [
        nn.Conv2d(cin, planes, 1, bias=False),
        nn.Conv2d(planes, planes, 3, stride, 1, bias=False),
        nn.Conv2d(planes, planes * 4, 1, bias=False),
    ]


class DAUnit(nn.Module):
    """``F_l``: a residual branch, ``conv-BN-SN`` per conv (spike) or ``SN-conv-BN`` (membrane)."""

    def __init__(self, convs: list[nn.Conv2d], domain: str, make_sn: NeuronFactory):
        super().__init__()
        body: list[nn.Module] = []
        for conv in convs:
            if domain == "membrane":
                body.append(make_sn())
            body.append(layer.SeqToANNContainer(conv, nn.BatchNorm2d(conv.out_channels)))
            if domain == "spike":
                body.append(make_sn())
        self.body = nn.Sequential(*body)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return [m for m in self.body.modules() if isinstance(m, nn.BatchNorm2d)][-1]

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.body(s)


class Projection(nn.Sequential):
    """``P_{g->h}``: [avg-pool] + 1x1 conv (strided for proj="conv") + BN [+ SN in the spike domain]."""

    def __init__(self, cin: int, cout: int, stride: int, proj: str, domain: str, make_sn: NeuronFactory):
        if proj == "pool" and stride > 1:
            ops: list[nn.Module] = [
                nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False),
                nn.Conv2d(cin, cout, 1, bias=False),
            ]
        else:
            ops = [nn.Conv2d(cin, cout, 1, stride, bias=False)]
        mods: list[nn.Module] = [layer.SeqToANNContainer(*ops, nn.BatchNorm2d(cout))]
        if domain == "spike":
            mods.append(make_sn())
        super().__init__(*mods)


def _stem(in_channels: int, c0: int, input_size: str, domain: str, make_sn: NeuronFactory) -> nn.Sequential:
    """7x7/2 conv + BN [+ SN] + 3x3/2 max-pool (imagenet) or 3x3/1 conv + BN [+ SN] (cifar)."""
    if input_size == "imagenet":
        conv = nn.Conv2d(in_channels, c0, 7, 2, 3, bias=False)
    else:
        conv = nn.Conv2d(in_channels, c0, 3, 1, 1, bias=False)
    mods: list[nn.Module] = [layer.SeqToANNContainer(conv, nn.BatchNorm2d(c0))]
    if domain == "spike":
        mods.append(make_sn())
    if input_size == "imagenet":
        mods.append(layer.SeqToANNContainer(nn.MaxPool2d(3, 2, 1)))
    return nn.Sequential(*mods)


def proj_key(src: int, dst: int) -> str:
    """Name of the projection from shape group ``src`` to ``dst`` in ``DANet.projections``."""
    return f"g{src}_to_g{dst}"


class DANet(nn.Module):
    """A four-stage spiking ResNet whose units are wired by densely additive connections.

    ``block`` "basic" | "bottleneck", ``layers`` units per stage; see the module docstring for
    the equations and the options ``domain``, ``span``, ``proj``, ``scale``.
    Input ``[T, B, C, H, W]``, output ``[T, B, num_classes]``.
    """

    def __init__(
        self,
        block: str = "basic",
        layers: Sequence[int] = (2, 2, 2, 2),
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        input_size: str = "imagenet",
        width: float = 1.0,
        domain: str = "spike",
        span: str = "global",
        proj: str = "pool",
        scale: str = "none",
        zero_init_last_bn: bool | None = None,
        make_sn: NeuronFactory | None = None,
    ):
        super().__init__()
        _choice("block", block, tuple(EXPANSION))
        self.domain = _choice("domain", domain, DOMAINS)
        self.span = _choice("span", span, SPANS)
        self.proj = _choice("proj", proj, PROJS)
        self.scale = _choice("scale", scale, SCALES)
        check_input_size(input_size)
        if len(layers) != 4 or min(layers) < 1:
            raise ValueError(f"layers must be four positive unit counts, got {tuple(layers)}")
        make_sn = make_sn or neuron_factory(DEFAULT_NEURON, DEFAULT_NEURON_PARAMS)
        self.neuron = make_sn.describe()

        c0 = scaled(64, width)
        # channels of each shape group: 0 = stem output, 1..4 = stage outputs
        self.group_channels = [c0] + [scaled(64 * 2**i, width) * EXPANSION[block] for i in range(4)]
        # stage 1 does not stride, so the stem shares its shape when the channels agree
        self.stem_group = 1 if self.group_channels[1] == c0 else 0
        self.groups = list(range(self.stem_group, 5))

        self.stem = _stem(in_channels, c0, input_size, domain, make_sn)
        self.stages = nn.ModuleList()
        cin = c0
        for i, n in enumerate(layers):
            planes = scaled(64 * 2**i, width)
            units = [
                DAUnit(
                    _branch_convs(
                        block,
                        cin if k == 0 else self.group_channels[i + 1],
                        planes,
                        2 if (i > 0 and k == 0) else 1,
                    ),
                    domain,
                    make_sn,
                )
                for k in range(n)
            ]
            self.stages.append(nn.ModuleList(units))
            cin = self.group_channels[i + 1]

        self.projections = nn.ModuleDict()
        for dst in range(1, 5):
            sources = [g for g in self.groups if g < dst]
            if span == "stage":
                sources = sources[-1:]
            for src in sources:
                stride = 2 ** (max(dst - 1, 0) - max(src - 1, 0))
                self.projections[proj_key(src, dst)] = Projection(
                    self.group_channels[src], self.group_channels[dst], stride, proj, domain, make_sn
                )

        head: list[nn.Module] = [make_sn()] if domain == "membrane" else []
        head.append(
            layer.SeqToANNContainer(
                nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(self.group_channels[4], num_classes)
            )
        )
        self.head = nn.Sequential(*head)
        self._init_weights(domain == "membrane" if zero_init_last_bn is None else zero_init_last_bn)

    def _init_weights(self, zero_init_last_bn: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_last_bn:
            for m in self.modules():
                if isinstance(m, DAUnit):
                    nn.init.zeros_(m.last_bn.weight)

    def units(self) -> list[DAUnit]:
        """All units in order ``u_1..u_L``."""
        return [u for stage in self.stages for u in stage]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = self.stem(x)
        sums: dict[int, torch.Tensor] = {self.stem_group: x0}  # A_g
        counts: dict[int, int] = {self.stem_group: 1}
        # per group: (sum of the projected terms, number of unit outputs they carry)
        cross: dict[int, tuple[torch.Tensor | None, int]] = {self.stem_group: (None, 0)}

        def gather(g: int) -> torch.Tensor:
            c, n_c = cross[g]
            s = sums[g] if c is None else sums[g] + c
            return s / (counts[g] + n_c) if self.scale == "mean" else s

        g_in = self.stem_group  # the group unit l reads at: h(l)
        for g, stage in enumerate(self.stages, start=1):
            for k, unit in enumerate(stage):
                s_in = gather(g_in)
                y = unit(s_in)
                sums[g] = y if g not in sums else sums[g] + y
                counts[g] = counts.get(g, 0) + 1
                if k == 0 and g not in cross:  # sources of group g are complete: project them once
                    cross[g] = self._cross(g, s_in, sums, counts)
                g_in = g
        return self.head(gather(4))

    def _cross(
        self, dst: int, stage_input: torch.Tensor, sums: dict[int, torch.Tensor], counts: dict[int, int]
    ) -> tuple[torch.Tensor | None, int]:
        """The projected terms of every sum read at group ``dst`` (computed once per stage)."""
        if self.span == "stage":
            return self.projections[proj_key(dst - 1, dst)](stage_input), 1
        terms = [self.projections[proj_key(g, dst)](sums[g]) for g in self.groups if g < dst]
        return functools.reduce(operator.add, terms), sum(counts[g] for g in self.groups if g < dst)


def danet(
    variant: str = "c",
    depth: int = 18,
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    input_size: str = "imagenet",
    width: float = 1.0,
    neuron: str | None = None,
    neuron_params: dict[str, Any] | None = None,
    proj: str = "pool",
    scale: str = "none",
    zero_init_last_bn: bool | None = None,
) -> DANet:
    """DANet variant ``a``..``d`` (see ``VARIANTS``) at depth 18/34 (basic) or 50/101/152 (bottleneck)."""
    _choice("variant", variant, tuple(VARIANTS))
    if depth not in DEPTHS:
        raise ValueError(f"depth must be one of {tuple(DEPTHS)}, got {depth!r}")
    domain, span = VARIANTS[variant]
    block, layers = DEPTHS[depth]
    return DANet(
        block,
        layers,
        num_classes=num_classes,
        in_channels=in_channels,
        input_size=input_size,
        width=width,
        domain=domain,
        span=span,
        proj=proj,
        scale=scale,
        zero_init_last_bn=zero_init_last_bn,
        make_sn=neuron_factory(DEFAULT_NEURON, DEFAULT_NEURON_PARAMS, neuron, neuron_params),
    )


_NON_SPIKING = {
    "spike": (
        "analog first conv (direct encoding)",
        "avg-pooled (fractional) spike counts into projection convs",
    ),
    "membrane": (
        "analog first conv (direct encoding)",
        "membrane-domain shortcut adds",
        "projection convs on the real-valued stream",
    ),
}


def _register(variant: str, depth: int) -> Callable[..., DANet]:
    domain, span = VARIANTS[variant]
    reach = "all earlier units across stages" if span == "global" else "earlier units of the same stage"
    notes = (
        f"reconstructed from the paper's abstract (no official code): DA sums of {reach} in the {domain} "
        f"domain; the paper reports 'ResNet-{depth} with DA' at {PAPER_TOP1[depth]}% ImageNet top-1 (T=4) "
        "without saying which of its four architectures"
    )

    def factory(**kwargs: Any) -> DANet:
        return danet(variant, depth, **kwargs)

    factory.__name__ = f"danet_{variant}{depth}"
    factory.__doc__ = (
        f"DANet-{variant.upper()} (domain={domain!r}, span={span!r}) at depth {depth}; see danet()."
    )
    return register_model(
        family="danet",
        paper=PAPER,
        provenance=RECONSTRUCTED,
        default_T=4,
        neuron=NEURON_DESC,
        non_spiking=_NON_SPIKING[domain],
        input_size="imagenet",
        causal_over_T=True,
        notes=notes,
        name=factory.__name__,
    )(factory)


for _variant in VARIANTS:
    for _depth in PAPER_TOP1:
        _register(_variant, _depth)
