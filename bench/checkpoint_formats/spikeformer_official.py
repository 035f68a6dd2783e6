"""``spikeformer-official``: Spikeformer authors' code (github.com/Loydian/Spikeformer).

Read from ``dvscifar10/spikeformer.py`` (it defines all three factories, the ImageNet
``PLIAF_spikeformer_7_3x2x4`` included; ``imagenet/spikeformer.py``, which ``imagenet/train.py`` imports,
is not in the stored copy of the repository) and ``dvscifar10/neuron.py``, with spikingjelly 0.0.0.0.10's
``SeqToANNContainer`` (one layer: ``module.<tensor>``; several: ``module.<i>.<tensor>``). Every key starts
with ``model.`` (the ``Spikeformer`` wrapper holds the net as ``self.model``):

- ``model.pos_embed`` ``[1, N, C]`` and ``model.time_embed`` ``[1, T, C]`` (ours ``[N, C]``, ``[T, C]``);
- tokenizer ``model.patch_embed.conv_layers.<i>.residual_function.{0,1}.0.module.{0,1}.*`` (conv, BN) and
  ``.residual_function.{0,1}.1.w`` (PLIF/PLIAF ``w``); shortcut ``.shortcut.0`` (AvgPool, even of kernel 1)
  then ``.shortcut.1.0.module.{0,1}.*`` and ``.shortcut.1.1.w``;
- blocks ``model.blocks.<i>.{norm1, attn.qkv, attn.proj, temporal_norm1, temporal_attn.qkv,
  temporal_attn.proj, temporal_fc, norm2}.*``, MLP ``mlp.mlp.0.module.*`` (fc1), ``mlp.mlp.1.w``,
  ``mlp.mlp.2.module.0.*`` (fc2, followed by dropout);
- ``model.norm.*``, ``model.attention_pool.*``, ``model.head.*``.

Only divided space-time attention exists there. ``imagenet/train.py`` saves ``{'model', 'optimizer',
'lr_scheduler', 'epoch', 'args', 'max_test_acc1', 'test_acc5_at_max_test_acc1'}``.
"""

from __future__ import annotations

import re
from collections.abc import Collection

import torch.nn as nn

from bench.checkpoint_formats.base import CheckpointFormat, Entry, Shapes, entries_from_modules
from bench.models.spikeformer import Spikeformer

_OWN = {"temporal_norm": "temporal_norm1", "temporal_attn.qkv": "temporal_attn.qkv",
        "temporal_attn.proj": "temporal_attn.proj", "temporal_fc": "temporal_fc", "norm1": "norm1",
        "attn.qkv": "attn.qkv", "attn.proj": "attn.proj", "norm2": "norm2", "mlp.fc1": "mlp.mlp.0.module",
        "mlp.neuron": "mlp.mlp.1", "mlp.fc2": "mlp.mlp.2.module.0"}


class SpikeformerOfficial(CheckpointFormat):
    name = "spikeformer-official"
    title = "Spikeformer (Li, Lei & Yang 2022), authors' code"
    source = "github.com/Loydian/Spikeformer: dvscifar10/spikeformer.py, dvscifar10/neuron.py, imagenet/train.py"
    families = "spikeformer_* with attention='divided'"
    container_key = "model"  # train.py resumes from checkpoint['model']

    def applies_to(self, model: nn.Module) -> bool:
        return isinstance(model, Spikeformer) and all(b.attention == "divided" for b in model.blocks)

    def signature(self, keys: Collection[str]) -> bool:
        return any(k.startswith("model.patch_embed.") for k in keys)

    def entries(self, model: nn.Module) -> list[Entry]:
        names = {"": "model", "norm": "model.norm", "pool.score": "model.attention_pool", "head": "model.head"}
        for i, block in enumerate(model.tokenizer.blocks):
            ours, theirs = f"tokenizer.blocks.{i}.", f"model.patch_embed.conv_layers.{i}."
            for k in range(2):
                names |= {f"{ours}residual.{2 * k}.0": f"{theirs}residual_function.{k}.0.module.0",
                          f"{ours}residual.{2 * k}.1": f"{theirs}residual_function.{k}.0.module.1",
                          f"{ours}residual.{2 * k + 1}": f"{theirs}residual_function.{k}.1"}
            if not isinstance(block.shortcut, nn.Identity):
                pooled = isinstance(block.shortcut[0][0], nn.AvgPool2d)  # no pool module at stride 1 here
                conv, neuron = (1, 2) if pooled else (0, 1)
                names |= {f"{ours}shortcut.{conv}.0": f"{theirs}shortcut.1.0.module.0",
                          f"{ours}shortcut.{conv}.1": f"{theirs}shortcut.1.0.module.1",
                          f"{ours}shortcut.{neuron}": f"{theirs}shortcut.1.1"}
        for i in range(len(model.blocks)):
            names |= {f"blocks.{i}.{o}": f"model.blocks.{i}.{t}" for o, t in _OWN.items()}
        return entries_from_modules(model, names, self.name,
                                    layouts={"pos_embed": "leading_one", "time_embed": "leading_one"})

    def describe(self, shapes: Shapes) -> str:
        layers = {m.group(1) for k in shapes if (m := re.match(r"model\.patch_embed\.conv_layers\.(\d+)\.", k))}
        blocks = {m.group(1) for k in shapes if (m := re.match(r"model\.blocks\.(\d+)\.", k))}
        parts = [f"{len(layers)} tokenizer blocks", f"{len(blocks)} transformer blocks"]
        if "model.pos_embed" in shapes and len(shapes["model.pos_embed"]) == 3:
            _, n, c = shapes["model.pos_embed"]
            parts.append(f"embed {c}, {n} tokens per step")
        if "model.time_embed" in shapes and len(shapes["model.time_embed"]) == 3:
            parts.append(f"time embedding for T={shapes['model.time_embed'][1]}")
        if "model.head.weight" in shapes:
            parts.append(f"classifier {tuple(shapes['model.head.weight'])}")
        return ", ".join(parts)


FORMAT = SpikeformerOfficial()
