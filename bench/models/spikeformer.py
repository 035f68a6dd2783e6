"""Spikeformer (Li, Lei & Yang 2022, arXiv 2211.10686): convolutional tokenizer + space-time transformer.

Not Zhou et al.'s Spikformer. Built from the official code (its ``spikeformer.py`` and ``neuron.py``,
factories ``PLIF_spikeformer_7_3x2x3`` / ``PLIF_spikeformer_7_5x3x1`` / ``PLIAF_spikeformer_7_3x2x4``; read
for facts, written anew here):

- Convolutional tokenizer (CT): SEW-ADD blocks ``N(BN(conv(N(BN(conv_s(x)))))) + shortcut(x)``, shortcut
  identity or ``N(BN(conv1x1(AvgPool_s(x))))``; the output map is flattened to N tokens per time step.
  CT channels come from ``embed_dim`` as in the official code (``paired``: 64,64,128,128,...,512,512;
  ``ramp``: 64,128,256). Convs are bias-free, Kaiming-normal initialised.
- Tokens get a learned positional embedding (``[N, C]``, truncated normal std 0.02) and a learned,
  zero-initialised time embedding (``[T, C]``): T is fixed when the model is built.
- Pre-LayerNorm blocks (eps 1e-6). ``attention="divided"`` (default, the official code's TimeSformer-style
  divided space-time attention): ``x += temporal_fc(MHSA_t(LN(x)))`` over the T tokens of each position,
  then ``x += MHSA_s(LN(x))`` over the N tokens of each step. ``attention="joint"``: one
  ``x += MHSA(LN(x))`` over all N*T tokens (offered because the paper's wording is not confirmed
  against the code). Then ``x += FC2(neuron(FC1(LN(x))))``, the neuron running over T.
- MHSA is standard softmax attention on real values (qkv without bias, scale head_dim**-0.5 applied to
  ``q @ k^T``); both products go through ``MatMul`` modules so op counters see their operands.
- Head: LayerNorm, CCT-style attention pooling over all N*T tokens (``softmax`` of a linear score,
  weighted sum through ``MatMul``), linear classifier. One decision per sample, returned repeated over T.

Spike-driven synaptic layers are only the CT convs after the first and FC2 of each MLP (and with LIAF
neurons not even those): Q/K/V, proj, temporal_fc and FC1 act on LayerNorm outputs of a real-valued
token stream. Inside the CT, SEW-ADD sums are integer multi-spikes (0, 1, 2), and a shortcut's 1x1 conv
sees AvgPool-averaged multi-spikes (equivalent to an s x s stride-s conv on them).

temporal_fc initialisation: the official code (copied from TimeSformer) intends to zero ``temporal_fc``
of every block after the first, but its loop over ``blocks.modules()`` matches the ``ModuleList`` itself
first (its repr contains "Block"), so in effect *every* block's temporal_fc starts at zero. The default
``temporal_fc_init="all"`` reproduces that effect; ``"after_first"`` gives the written intent.

Stochastic depth (``drop_path_rate``, 0.1 in the official code, linear over depth) drops a residual per
sample (batch element). The official code's masks follow its reshapes instead (per batch-position row
in temporal attention, per batch-step in spatial attention, per time step in the MLP).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn
from spikingjelly.activation_based import layer

from bench.models.common import MatMul, check_input_size, scaled
from bench.models.neurons import NeuronFactory, neuron_factory
from bench.models.registry import OFFICIAL, register_model

PAPER = "Li, Lei & Yang 2022, Spikeformer: a novel architecture for training high-performance low-latency SNN"
PLIF_PARAMS: dict[str, Any] = {
    "init_tau": 2.0, "v_threshold": 1.0, "v_reset": 0.0, "detach_reset": True, "surrogate": "sigmoid", "alpha": 4.0,
}
ATTENTION_KINDS = ("divided", "joint")
TEMPORAL_FC_INITS = ("all", "after_first")
REAL_VALUED = (
    "real-valued token stream (Q/K/V, proj, temporal_fc and FC1 act on LayerNorm outputs)",
    "softmax attention on real values",
    "LayerNorm and attention pooling on real values",
)


def make_neurons(default_kind: str, neuron_kind: str | None,
                 neuron_params: dict[str, Any] | None) -> tuple[str, Callable[[], nn.Module]]:
    """``(kind, builder)`` for this family from ``bench.models.neurons``.

    The PLIF-family kinds (``pliaf``, the ImageNet default, and ``plif``, its spiking variant) share the
    official PLIF parameters, so overriding one with the other keeps them; other kinds keep only the
    threshold, reset and surrogate choices (``neuron_factory``'s rule).
    """
    kind = neuron_kind or default_kind
    if kind in ("pliaf", "plif"):
        return kind, NeuronFactory(kind, **{**PLIF_PARAMS, **(neuron_params or {})})
    return kind, neuron_factory("plif", PLIF_PARAMS, kind, neuron_params)


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, padding: int) -> layer.SeqToANNContainer:
    return layer.SeqToANNContainer(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False), nn.BatchNorm2d(cout)
    )


class SEWTokenizerBlock(nn.Module):
    """SEW-ADD block of the tokenizer: ``N(BN(conv(N(BN(conv_s(x)))))) + shortcut(x)`` on ``[T, B, C, H, W]``.

    Shortcut: identity when shape is kept, else ``N(BN(conv1x1(AvgPool_s(x))))`` (the pool only when
    ``stride > 1``: the official AvgPool of kernel 1 is an identity). The sum of two spike trains is an
    integer-valued multi-spike map.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, make_neuron: Callable[[], nn.Module]):
        super().__init__()
        pad = kernel // 2
        self.kernel, self.stride = kernel, stride
        self.residual = nn.Sequential(
            _conv_bn(cin, cout, kernel, stride, pad), make_neuron(),
            _conv_bn(cout, cout, kernel, 1, pad), make_neuron(),
        )
        if stride == 1 and cin == cout:
            self.shortcut: nn.Module = nn.Identity()
        else:
            pool = [layer.SeqToANNContainer(nn.AvgPool2d(stride, stride))] if stride > 1 else []
            self.shortcut = nn.Sequential(*pool, _conv_bn(cin, cout, 1, 1, 0), make_neuron())

    def output_size(self, size: int) -> int:
        """Spatial size after the block; both branches must agree (the official code needs it too)."""
        residual = (size + 2 * (self.kernel // 2) - self.kernel) // self.stride + 1
        if residual != size // self.stride:
            raise ValueError(f"map of size {size} gives {residual} on the conv path but "
                             f"{size // self.stride} on the pooled shortcut; use a size divisible by the strides")
        return residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


def tokenizer_channels(embed_dim: int, n_layers: int, layout: str) -> list[int]:
    """Output channels of the CT blocks, as the official code derives them from ``embed_dim``.

    ``paired``: ``n_layers`` even, widths ``embed/2^(n/2-1), ...`` each used twice (8 layers, 512:
    64,64,128,128,256,256,512,512). ``ramp``: ``embed/2^(n-1), ..., embed`` (3 layers, 256: 64,128,256).
    """
    if layout == "paired":
        if n_layers % 2:
            raise ValueError("a paired tokenizer needs an even number of layers")
        half = n_layers // 2
        return [max(1, embed_dim // 2 ** (half - 1 - i)) for i in range(half) for _ in range(2)]
    if layout == "ramp":
        return [max(1, embed_dim // 2 ** (n_layers - 1 - i)) for i in range(n_layers)]
    raise ValueError(f"unknown tokenizer layout {layout!r}; choose 'paired' or 'ramp'")


class ConvTokenizer(nn.Module):
    """Stack of SEW blocks; ``[T, B, C, H, W]`` to tokens ``[T, B, N, embed_dim]``."""

    def __init__(self, in_channels: int, channels: Sequence[int], strides: Sequence[int], kernel: int,
                 make_neuron: Callable[[], nn.Module]):
        super().__init__()
        if len(channels) != len(strides):
            raise ValueError("one stride per tokenizer layer")
        cins = [in_channels, *channels[:-1]]
        self.blocks = nn.Sequential(*[
            SEWTokenizerBlock(cin, cout, kernel, s, make_neuron) for cin, cout, s in zip(cins, channels, strides, strict=True)
        ])
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)

    def num_tokens(self, img_size: int) -> int:
        size = img_size
        for block in self.blocks:
            size = block.output_size(size)
        return size * size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(x)
        return x.flatten(3).transpose(2, 3)


class MultiHeadSelfAttention(nn.Module):
    """Softmax MHSA over the middle axis of ``[S, L, C]`` (S independent sequences of L tokens)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"embed dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.qk = MatMul()
        self.softmax = nn.Softmax(dim=-1)
        self.av = MatMul()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        S, L, C = x.shape
        q, k, v = self.qkv(x).reshape(S, L, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        attn = self.softmax(self.qk(q, k.transpose(-2, -1)) * self.scale)
        return self.proj(self.av(attn, v).transpose(1, 2).reshape(S, L, C))


class DropPath(nn.Module):
    """Stochastic depth: zero a residual branch per sample (dim 1 of ``[T, B, ...]``) while training."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty(1, x.shape[1], *([1] * (x.dim() - 2))).bernoulli_(keep)
        return x * mask / keep


class Mlp(nn.Module):
    """``FC2(neuron(FC1(x)))`` on ``[T, B, N, C]``; the neuron integrates over T."""

    def __init__(self, dim: int, hidden: int, make_neuron: Callable[[], nn.Module]):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.neuron = make_neuron()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.neuron(self.fc1(x)))


class SpaceTimeBlock(nn.Module):
    """Pre-LN transformer block on ``[T, B, N, C]`` with divided (temporal, then spatial) or joint MHSA."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, make_neuron: Callable[[], nn.Module],
                 attention: str = "divided", drop_path: float = 0.0):
        super().__init__()
        if attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {attention!r}")
        self.attention = attention
        if attention == "divided":
            self.temporal_norm = nn.LayerNorm(dim, eps=1e-6)
            self.temporal_attn = MultiHeadSelfAttention(dim, heads)
            self.temporal_fc = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = MultiHeadSelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), make_neuron)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, N, C = x.shape
        if self.attention == "divided":
            xt = x.permute(1, 2, 0, 3).reshape(B * N, T, C)
            res = self.temporal_attn(self.temporal_norm(xt)).reshape(B, N, T, C).permute(2, 0, 1, 3)
            x = x + self.temporal_fc(self.drop_path(res))
            res = self.attn(self.norm1(x.reshape(T * B, N, C))).reshape(T, B, N, C)
        else:
            xj = x.transpose(0, 1).reshape(B, T * N, C)
            res = self.attn(self.norm1(xj)).reshape(B, T, N, C).transpose(0, 1)
        x = x + self.drop_path(res)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class AttentionPool(nn.Module):
    """CCT sequence pooling: ``softmax_tokens(Linear(x))^T @ x`` on ``[B, L, C]`` gives ``[B, C]``."""

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Linear(dim, 1)
        self.softmax = nn.Softmax(dim=1)
        self.matmul = MatMul()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.softmax(self.score(x)).transpose(1, 2)
        return self.matmul(weights, x).squeeze(1)


class Spikeformer(nn.Module):
    """Spikeformer on ``[T, B, C, H, W]`` with a fixed T; returns ``[T, B, num_classes]`` (one decision repeated)."""

    def __init__(self, *, num_classes: int, in_channels: int, img_size: int, T: int, embed_dim: int, depth: int,
                 heads: int, mlp_ratio: float, tokenizer_kernel: int, tokenizer_strides: Sequence[int],
                 tokenizer_layout: str, make_neuron: Callable[[], nn.Module], attention: str = "divided",
                 drop_path_rate: float = 0.1, temporal_fc_init: str = "all"):
        super().__init__()
        if temporal_fc_init not in TEMPORAL_FC_INITS:
            raise ValueError(f"temporal_fc_init must be one of {TEMPORAL_FC_INITS}, got {temporal_fc_init!r}")
        if T < 1:
            raise ValueError(f"T must be positive, got {T}")
        self.T = T
        channels = tokenizer_channels(embed_dim, len(tokenizer_strides), tokenizer_layout)
        self.tokenizer = ConvTokenizer(in_channels, channels, tokenizer_strides, tokenizer_kernel, make_neuron)
        self.num_tokens = self.tokenizer.num_tokens(img_size)
        self.pos_embed = nn.Parameter(torch.zeros(self.num_tokens, embed_dim))
        self.time_embed = nn.Parameter(torch.zeros(T, embed_dim))
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # linear, as the official
        self.blocks = nn.ModuleList([
            SpaceTimeBlock(embed_dim, heads, mlp_ratio, make_neuron, attention, rate) for rate in rates
        ])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.pool = AttentionPool(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)
        self._init_weights(temporal_fc_init)

    def _init_weights(self, temporal_fc_init: str) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        first = 1 if temporal_fc_init == "after_first" else 0
        for block in list(self.blocks)[first:]:
            if block.attention == "divided":
                nn.init.zeros_(block.temporal_fc.weight)
                nn.init.zeros_(block.temporal_fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[0] != self.T:
            raise ValueError(f"expected [T={self.T}, B, C, H, W] (T is fixed by the time embedding), "
                             f"got {tuple(x.shape)}")
        x = self.tokenizer(x)
        if x.shape[2] != self.num_tokens:
            raise ValueError(f"input gives {x.shape[2]} tokens per step; the model was built for "
                             f"{self.num_tokens} (set img_size)")
        x = x + self.pos_embed + self.time_embed[:, None, None, :]
        for block in self.blocks:
            x = block(x)
        T, B, N, C = x.shape
        feat = self.pool(self.norm(x).transpose(0, 1).reshape(B, T * N, C))
        return self.head(feat).unsqueeze(0).expand(T, -1, -1)


def _build(*, num_classes: int, in_channels: int, input_size: str, width: float, neuron: str | None,
           neuron_params: dict[str, Any] | None, T: int, img_size: int | None, default_img_size: int,
           default_neuron: str, embed_dim: int | None, default_embed: int, depth: int, heads: int,
           mlp_ratio: float, kernel: int, strides: Sequence[int], layout: str, attention: str,
           drop_path_rate: float, temporal_fc_init: str) -> Spikeformer:
    # "cifar": first CT block at stride 1 (no stem downsampling) and 32 px by default.
    if check_input_size(input_size) == "cifar":
        strides = [1, *strides[1:]]
        default_img_size = 32
    kind, make_neuron = make_neurons(default_neuron, neuron, neuron_params)
    model = Spikeformer(
        num_classes=num_classes, in_channels=in_channels, img_size=img_size or default_img_size, T=T,
        embed_dim=embed_dim or scaled(default_embed, width), depth=depth, heads=heads, mlp_ratio=mlp_ratio,
        tokenizer_kernel=kernel, tokenizer_strides=strides, tokenizer_layout=layout, make_neuron=make_neuron,
        attention=attention, drop_path_rate=drop_path_rate, temporal_fc_init=temporal_fc_init,
    )
    model.neuron_kind = kind
    return model


_COMMON_DOC = """
    Common arguments: ``num_classes``, ``in_channels``, ``input_size`` ("imagenet": the official strided
    tokenizer; "cifar": first tokenizer block at stride 1, 32 px by default), ``width`` (scales
    ``embed_dim``, from which the tokenizer widths derive), ``neuron``/``neuron_params`` (kinds of
    ``bench.models.neurons`` or ``"pliaf"``), ``T`` (fixed: sizes the time embedding). Family options:
    ``img_size`` (sizes the positional embedding from the tokenizer output), ``embed_dim``, ``depth``,
    ``heads``, ``mlp_ratio``, ``attention`` ("divided" or "joint"), ``drop_path_rate``,
    ``temporal_fc_init`` ("all" as the official code does in effect, or "after_first").
"""


@register_model(
    family="spikeformer", paper=PAPER, provenance=OFFICIAL, default_T=4,
    neuron="ParametricLIAF (ReLU of PLIF membrane; init tau 2, threshold 1, hard reset)",
    non_spiking=("analog first conv (direct encoding)", "LIAF analog outputs", *REAL_VALUED),
    input_size="imagenet", causal_over_T=False,
    notes="CT 8 SEW blocks 3x3 (64..512), 196 tokens/frame at 224 px, embed 512, depth 7, heads 8, MLP 3; "
          "official log 78.31 top-1 (T=4). Output is one decision repeated over T.",
)
def spikeformer_imagenet(num_classes: int = 1000, in_channels: int = 3, input_size: str = "imagenet",
                         width: float = 1.0, neuron: str | None = None, neuron_params: dict[str, Any] | None = None,
                         T: int = 4, img_size: int | None = None, embed_dim: int | None = None, depth: int = 7,
                         heads: int = 8, mlp_ratio: float = 3.0, attention: str = "divided",
                         drop_path_rate: float = 0.1, temporal_fc_init: str = "all") -> Spikeformer:
    """ImageNet Spikeformer (official ``PLIAF_spikeformer_7_3x2x4``): ParametricLIAF neurons by default;
    ``neuron="plif"`` gives the spiking variant, ``neuron="liaf"`` spikingjelly's (non-parametric) LIAF.
    """
    return _build(num_classes=num_classes, in_channels=in_channels, input_size=input_size, width=width,
                  neuron=neuron, neuron_params=neuron_params, T=T, img_size=img_size, default_img_size=224,
                  default_neuron="pliaf", embed_dim=embed_dim, default_embed=512, depth=depth, heads=heads,
                  mlp_ratio=mlp_ratio, kernel=3, strides=[2, 1, 2, 1, 2, 1, 2, 1], layout="paired",
                  attention=attention, drop_path_rate=drop_path_rate, temporal_fc_init=temporal_fc_init)


@register_model(
    family="spikeformer", paper=PAPER, provenance=OFFICIAL, default_T=4,
    neuron="ParametricLIF (init tau 2, threshold 1, hard reset, detach_reset, sigmoid surrogate alpha 4)",
    non_spiking=REAL_VALUED, input_size="imagenet", causal_over_T=False,
    notes="DVS-CIFAR10, 128 px, 2 polarity channels (event-count frames reach the first conv); CT 6 SEW "
          "blocks 3x3 (64..256), embed 256, depth 7, heads 4, MLP 2; official log 81.4 (T=4).",
)
def spikeformer_dvs_cifar10(num_classes: int = 10, in_channels: int = 2, input_size: str = "imagenet",
                            width: float = 1.0, neuron: str | None = None,
                            neuron_params: dict[str, Any] | None = None, T: int = 4, img_size: int | None = None,
                            embed_dim: int | None = None, depth: int = 7, heads: int = 4, mlp_ratio: float = 2.0,
                            attention: str = "divided", drop_path_rate: float = 0.1,
                            temporal_fc_init: str = "all") -> Spikeformer:
    """DVS-CIFAR10 Spikeformer (official ``PLIF_spikeformer_7_3x2x3``)."""
    return _build(num_classes=num_classes, in_channels=in_channels, input_size=input_size, width=width,
                  neuron=neuron, neuron_params=neuron_params, T=T, img_size=img_size, default_img_size=128,
                  default_neuron="plif", embed_dim=embed_dim, default_embed=256, depth=depth, heads=heads,
                  mlp_ratio=mlp_ratio, kernel=3, strides=[2, 1, 2, 1, 2, 1], layout="paired",
                  attention=attention, drop_path_rate=drop_path_rate, temporal_fc_init=temporal_fc_init)


@register_model(
    family="spikeformer", paper=PAPER, provenance=OFFICIAL, default_T=16,
    neuron="ParametricLIF (init tau 2, threshold 1, hard reset, detach_reset, sigmoid surrogate alpha 4)",
    non_spiking=REAL_VALUED, input_size="imagenet", causal_over_T=False,
    notes="DVS128-Gesture, 128 px, 2 polarity channels (event-count frames reach the first conv); CT 3 SEW "
          "blocks 5x5 stride 2 (64, 128, 256), embed 256, depth 7, heads 4, MLP 2; official log 98.96 (T=16).",
)
def spikeformer_dvs_gesture(num_classes: int = 11, in_channels: int = 2, input_size: str = "imagenet",
                            width: float = 1.0, neuron: str | None = None,
                            neuron_params: dict[str, Any] | None = None, T: int = 16, img_size: int | None = None,
                            embed_dim: int | None = None, depth: int = 7, heads: int = 4, mlp_ratio: float = 2.0,
                            attention: str = "divided", drop_path_rate: float = 0.1,
                            temporal_fc_init: str = "all") -> Spikeformer:
    """DVS-Gesture Spikeformer (official ``PLIF_spikeformer_7_5x3x1``)."""
    return _build(num_classes=num_classes, in_channels=in_channels, input_size=input_size, width=width,
                  neuron=neuron, neuron_params=neuron_params, T=T, img_size=img_size, default_img_size=128,
                  default_neuron="plif", embed_dim=embed_dim, default_embed=256, depth=depth, heads=heads,
                  mlp_ratio=mlp_ratio, kernel=5, strides=[2, 2, 2], layout="ramp",
                  attention=attention, drop_path_rate=drop_path_rate, temporal_fc_init=temporal_fc_init)


for _factory in (spikeformer_imagenet, spikeformer_dvs_cifar10, spikeformer_dvs_gesture):
    _factory.__doc__ = (_factory.__doc__ or "") + _COMMON_DOC
