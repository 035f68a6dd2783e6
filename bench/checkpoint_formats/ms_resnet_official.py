"""``ms-resnet-official``: MS-ResNet authors' code (github.com/Ariande1/MS-ResNet, ``models/MS_ResNet.py``).

Names: stem ``conv1.0.weight`` (``Snn_Conv2d``) and ``conv1.1.bn.*`` (TDBN: a ``BatchNorm3d`` under
``.bn``, same tensor shapes as our BatchNorm2d); the 104-layer stem is ``conv1.{0,1,2}.{weight,bias}`` +
``conv1.3.bn.*``. Stages ``conv2_x`` .. ``conv5_x``; block ``residual_function.{1,4}.weight`` (convs),
``residual_function.{2,5}.bn.*`` (BNs; 0 and 3 are the LIF nodes, no tensors); shortcut
``shortcut.0.weight`` + ``shortcut.1.bn.*`` (104: ``shortcut.0`` is an AvgPool3d, ``shortcut.1.weight``
+ ``shortcut.2.bn.*``); ``fc.*``. 128 tensors for depth 18. ``train_amp.py`` saves and loads the
``state_dict()`` of the DDP-wrapped net (keys prefixed ``module.``), no container.
"""

from __future__ import annotations

from collections.abc import Collection

import torch.nn as nn

from bench.checkpoint_formats.base import (
    CheckpointFormat,
    Entry,
    Shapes,
    describe_resnet,
    entries_from_modules,
)
from bench.checkpoint_formats.resnet import first_block, trunk_blocks
from bench.models.ms_resnet import MS_LAYOUTS, MSBlock

DEPTHS = {("basic", blocks): depth for depth, blocks in MS_LAYOUTS.items()}


def _numbered(ours: str, theirs: str, modules: nn.Module) -> dict[str, str]:
    """``ours.i`` -> ``theirs.i`` for each child, with ``.bn`` after BatchNorms (the official TDBN wrapper)."""
    return {f"{ours}.{i}": f"{theirs}.{i}" + (".bn" if isinstance(m, nn.BatchNorm2d) else "")
            for i, m in enumerate(modules.children())}


class MSResNetOfficial(CheckpointFormat):
    name = "ms-resnet-official"
    title = "MS-ResNet, authors' code"
    source = "github.com/Ariande1/MS-ResNet: models/MS_ResNet.py, train_amp.py"
    families = "ms_resnet18/34/104"
    container_key = None
    key_prefix = "module."  # train_amp.py saves the DDP-wrapped net's state_dict and loads it back into one

    def applies_to(self, model: nn.Module) -> bool:
        return isinstance(first_block(model), MSBlock)

    def signature(self, keys: Collection[str]) -> bool:
        return any(k.startswith("conv2_x.") and ".residual_function." in k for k in keys)

    def entries(self, model: nn.Module) -> list[Entry]:
        names = _numbered("stem.body", "conv1", model.stem.body) | {"post": "mem_update", "head.fc": "fc"}
        for path, i, j, block in trunk_blocks(model):
            theirs = f"conv{i + 2}_x.{j}"
            names |= {f"{path}.sn": f"{theirs}.residual_function.0",
                      f"{path}.branch.0.0": f"{theirs}.residual_function.1",
                      f"{path}.branch.0.1": f"{theirs}.residual_function.2.bn",
                      f"{path}.branch.1": f"{theirs}.residual_function.3",
                      f"{path}.branch.2.0": f"{theirs}.residual_function.4",
                      f"{path}.branch.2.1": f"{theirs}.residual_function.5.bn"}
            if not isinstance(block.shortcut, nn.Identity):
                names |= _numbered(f"{path}.shortcut", f"{theirs}.shortcut", block.shortcut)
        return entries_from_modules(model, names, self.name)

    def describe(self, shapes: Shapes) -> str:
        return describe_resnet(shapes, r"conv(\d+)_x\.(\d+)\.", None, "conv1.0.weight", "fc.weight", DEPTHS)


FORMAT = MSResNetOfficial()
