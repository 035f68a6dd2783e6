"""Key names and shapes of the official codes' state dicts, written from reading their model files.

Independent of ``bench.checkpoint_formats`` (which maps our models' tensors) and of our models: each
generator re-derives the official ``state_dict`` from the official constructor logic. Keys come in the
official forward (data-flow) order, a module's own parameters first: the order our models register
the same tensors in, so tests pair the two by position (the way the architectures were first checked).

Sources (read, not copied):
- SEW / Spiking ResNet: github.com/fangwei123456/Spike-Element-Wise-ResNet ``imagenet/sew_resnet.py``,
  ``imagenet/spiking_resnet.py`` (spikingjelly 0.0.0.0.x ``SeqToANNContainer``: ``module.<i>``).
- MS-ResNet: github.com/Ariande1/MS-ResNet ``models/MS_ResNet.py``.
- Spikeformer: github.com/Loydian/Spikeformer ``dvscifar10/spikeformer.py``.
- DSR: github.com/qymeng94/DSR ``cifar/modules/preresnet.py``, ``cifar/modules/vgg.py``,
  ``imagenet/preresnet_snn.py``.
``base`` is the official width 64 (the official codes hard-code it; a smaller value gives the same names
at our ``width = base / 64``).
"""

from __future__ import annotations

Keys = list[tuple[str, tuple[int, ...]]]
RESNET_BLOCKS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3))}


def bn(name: str, n: int) -> Keys:
    return [(f"{name}.weight", (n,)), (f"{name}.bias", (n,)), (f"{name}.running_mean", (n,)),
            (f"{name}.running_var", (n,)), (f"{name}.num_batches_tracked", ())]


def conv(name: str, cout: int, cin: int, k: int, bias: bool = False) -> Keys:
    return [(f"{name}.weight", (cout, cin, k, k))] + ([(f"{name}.bias", (cout,))] if bias else [])


def sew_official(depth: int, base: int = 64, num_classes: int = 1000, sew: bool = True) -> Keys:
    """SEWResNet / SpikingResNet of the SEW repository (conv1 7x7/2, inplanes = base)."""
    kind, blocks = RESNET_BLOCKS[depth]
    exp = 4 if kind == "bottleneck" else 1
    keys = conv("conv1", base, 3, 7) + bn("bn1", base)
    inplanes = base
    for li, (planes, n) in enumerate(zip((base, 2 * base, 4 * base, 8 * base), blocks, strict=True), 1):
        for b in range(n):
            stride = 2 if li > 1 and b == 0 else 1
            p = f"layer{li}.{b}"
            if kind == "basic":
                shapes = [(planes, inplanes, 3), (planes, planes, 3)]
            else:
                shapes = [(planes, inplanes, 1), (planes, planes, 3), (planes * exp, planes, 1)]
            for c, (cout, cin, k) in enumerate(shapes, 1):
                keys += conv(f"{p}.conv{c}.module.0", cout, cin, k) + bn(f"{p}.conv{c}.module.1", cout)
            if stride != 1 or inplanes != planes * exp:
                ds = f"{p}.downsample.0.module" if sew else f"{p}.downsample.module"
                keys += conv(f"{ds}.0", planes * exp, inplanes, 1) + bn(f"{ds}.1", planes * exp)
            inplanes = planes * exp
    return keys + [("fc.weight", (num_classes, inplanes)), ("fc.bias", (num_classes,))]


def ms_resnet_official(depth: int, base: int = 64, num_classes: int = 1000) -> Keys:
    """ResNet_origin_18 (18, 34) / ResNet_104: every stage made with stride 2, TDBN under ``.bn``."""
    blocks = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 104: (3, 8, 32, 8)}[depth]
    if depth == 104:
        keys = (conv("conv1.0", base, 3, 3, True) + conv("conv1.1", base, base, 3, True)
                + conv("conv1.2", base, base, 3, True) + bn("conv1.3.bn", base))
    else:
        keys = conv("conv1.0", base, 3, 7) + bn("conv1.1.bn", base)
    inplanes = base
    for si, (out, n) in enumerate(zip((base, 2 * base, 4 * base, 8 * base), blocks, strict=True), 2):
        for b in range(n):
            stride = 2 if b == 0 else 1
            p = f"conv{si}_x.{b}"
            keys += conv(f"{p}.residual_function.1", out, inplanes, 3) + bn(f"{p}.residual_function.2.bn", out)
            keys += conv(f"{p}.residual_function.4", out, out, 3) + bn(f"{p}.residual_function.5.bn", out)
            if stride != 1 or inplanes != out:
                first = 1 if depth == 104 else 0  # 104: shortcut.0 is an AvgPool3d
                keys += conv(f"{p}.shortcut.{first}", out, inplanes, 1) + bn(f"{p}.shortcut.{first + 1}.bn", out)
            inplanes = out
    return keys + [("fc.weight", (num_classes, inplanes)), ("fc.bias", (num_classes,))]


def spikeformer_official(*, kernel: int, n_layers: int, stride: int | list[int], embed: int, depth: int,
                         mlp_ratio: float, in_ch: int, num_classes: int, img: int, frames: int,
                         first_stride: int | None = None) -> Keys:
    """``spikeformer`` inside the ``Spikeformer`` wrapper (every key under ``model.``).

    ``first_stride`` overrides the first tokenizer block's stride (our ``input_size="cifar"`` preset); the
    official Tokenizer still builds a shortcut (AvgPool of that kernel at ``shortcut.0``) when channels change.
    """
    if isinstance(stride, int):
        filters = [in_ch] + [embed // 2 ** (n_layers - i - 1) for i in range(n_layers - 1)] + [embed]
        strides = [stride] * n_layers
    else:
        filters = [in_ch]
        for f in (embed // 2 ** ((n_layers // 2) - i - 1) for i in range(n_layers // 2 - 1)):
            filters += [f, f]
        filters += [embed, embed]
        strides = list(stride)
    if first_stride is not None:
        strides[0] = first_stride
    size, keys = img, []
    for i in range(n_layers):
        cin, cout, s = filters[i], filters[i + 1], strides[i]
        p = f"model.patch_embed.conv_layers.{i}"
        for r, c in enumerate((cin, cout)):
            keys += conv(f"{p}.residual_function.{r}.0.module.0", cout, c, kernel)
            keys += bn(f"{p}.residual_function.{r}.0.module.1", cout) + [(f"{p}.residual_function.{r}.1.w", ())]
        if s != 1 or cin != cout:
            keys += conv(f"{p}.shortcut.1.0.module.0", cout, cin, 1) + bn(f"{p}.shortcut.1.0.module.1", cout)
            keys += [(f"{p}.shortcut.1.1.w", ())]
        size //= s
    hidden = int(embed * mlp_ratio)
    keys = [("model.pos_embed", (1, size * size, embed)), ("model.time_embed", (1, frames, embed))] + keys
    for b in range(depth):
        p = f"model.blocks.{b}"
        keys += [(f"{p}.temporal_norm1.weight", (embed,)), (f"{p}.temporal_norm1.bias", (embed,)),
                 (f"{p}.temporal_attn.qkv.weight", (3 * embed, embed)),
                 (f"{p}.temporal_attn.proj.weight", (embed, embed)), (f"{p}.temporal_attn.proj.bias", (embed,)),
                 (f"{p}.temporal_fc.weight", (embed, embed)), (f"{p}.temporal_fc.bias", (embed,)),
                 (f"{p}.norm1.weight", (embed,)), (f"{p}.norm1.bias", (embed,)),
                 (f"{p}.attn.qkv.weight", (3 * embed, embed)),
                 (f"{p}.attn.proj.weight", (embed, embed)), (f"{p}.attn.proj.bias", (embed,)),
                 (f"{p}.norm2.weight", (embed,)), (f"{p}.norm2.bias", (embed,)),
                 (f"{p}.mlp.mlp.0.module.weight", (hidden, embed)), (f"{p}.mlp.mlp.0.module.bias", (hidden,)),
                 (f"{p}.mlp.mlp.1.w", ()),
                 (f"{p}.mlp.mlp.2.module.0.weight", (embed, hidden)), (f"{p}.mlp.mlp.2.module.0.bias", (embed,))]
    return keys + [("model.norm.weight", (embed,)), ("model.norm.bias", (embed,)),
                   ("model.attention_pool.weight", (1, embed)), ("model.attention_pool.bias", (1,)),
                   ("model.head.weight", (num_classes, embed)), ("model.head.bias", (num_classes,))]


def dsr_preresnet_cifar(base: int = 64, num_classes: int = 10) -> Keys:
    """cifar/modules/preresnet.py resnet18_if / resnet18_lif: biased block convs, bare-conv shortcuts."""
    keys = conv("conv1", base, 3, 3)
    inplanes = base
    for li, planes in enumerate((base, 2 * base, 4 * base, 8 * base), 1):
        for b in range(2):
            stride = 2 if li > 1 and b == 0 else 1
            p = f"layer{li}.{b}"
            keys += bn(f"{p}.bn1", inplanes) + [(f"{p}.relu1.Vth", ())] + conv(f"{p}.conv1", planes, inplanes, 3, True)
            keys += bn(f"{p}.bn2", planes) + [(f"{p}.relu2.Vth", ())] + conv(f"{p}.conv2", planes, planes, 3, True)
            if stride != 1 or inplanes != planes:
                keys += conv(f"{p}.shortcut", planes, inplanes, 1, True)
            inplanes = planes
    return (keys + bn("bn1", inplanes) + [("relu1.Vth", ()), ("relu2.Vth", ())]
            + [("linear.weight", (num_classes, inplanes)), ("linear.bias", (num_classes,))]
            + bn("bn2", num_classes) + [("relu3.Vth", ())])


def dsr_preresnet_imagenet(base: int = 64, num_classes: int = 1000) -> Keys:
    """imagenet/preresnet_snn.py resnet18_if: 7x7/2 conv + BN + IF stem, bias-free convs, conv+BN downsample."""
    keys = conv("conv1", base, 3, 7) + bn("bn1", base) + [("relu1.Vth", ())]
    inplanes = base
    for li, planes in enumerate((base, 2 * base, 4 * base, 8 * base), 1):
        for b in range(2):
            stride = 2 if li > 1 and b == 0 else 1
            p = f"layer{li}.{b}"
            keys += bn(f"{p}.bn1", inplanes) + [(f"{p}.relu1.Vth", ())] + conv(f"{p}.conv1", planes, inplanes, 3)
            keys += bn(f"{p}.bn2", planes) + [(f"{p}.relu2.Vth", ())] + conv(f"{p}.conv2", planes, planes, 3)
            if stride != 1 or inplanes != planes:
                keys += conv(f"{p}.downsample.0", planes, inplanes, 1) + bn(f"{p}.downsample.1", planes)
            inplanes = planes
    return (keys + bn("bn2", inplanes) + [("relu2.Vth", ()), ("relu3.Vth", ())]
            + [("fc.weight", (num_classes, inplanes)), ("fc.bias", (num_classes,))]
            + bn("bn3", num_classes) + [("relu4.Vth", ())])


def dsr_vgg11(base: int = 64, num_classes: int = 10) -> Keys:
    """cifar/modules/vgg.py vgg11: groups [64,M] [128,M] [256,256,M] [512,512,M] [512,512,M], 2 input channels."""
    groups = ([base], [2 * base], [4 * base] * 2, [8 * base] * 2, [8 * base] * 2)
    keys, cin = [], 2
    for g, widths in enumerate(groups, 1):
        i = 0
        for w in widths:  # conv, BN, neuron, dropout
            keys += conv(f"layer{g}.{i}", w, cin, 3, True) + bn(f"layer{g}.{i + 1}", w) + [(f"layer{g}.{i + 2}.Vth", ())]
            i, cin = i + 4, w
    return (keys + [("classifier.1.weight", (num_classes, cin * 49)), ("classifier.1.bias", (num_classes,))]
            + bn("classifier.2", num_classes) + [("classifier.3.Vth", ())])
