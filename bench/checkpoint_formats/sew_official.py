"""``sew-official``: the SEW ResNet authors' ImageNet code (SEW ResNet and their Spiking ResNet).

Read from github.com/fangwei123456/Spike-Element-Wise-ResNet, ``imagenet/sew_resnet.py``,
``imagenet/spiking_resnet.py`` and ``imagenet/train.py``. torchvision-like names with spikingjelly's old
``SeqToANNContainer`` wrapper (``module.0`` conv, ``module.1`` BN): ``conv1.weight``, ``bn1.*``,
``layer1.0.conv1.module.0.weight``, ``layer1.0.conv1.module.1.*``, ..., ``fc.*``. Downsample: SEW
``downsample.0.module.{0,1}`` (conv+BN, then an IF node at ``downsample.1``); Spiking ResNet
``downsample.module.{0,1}``. IF nodes hold no tensors. ``train.py`` saves ``{'model', 'optimizer',
'lr_scheduler', 'epoch', 'args' (argparse.Namespace), 'max_test_acc1', 'test_acc5_at_max_test_acc1'}``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

import torch.nn as nn

from bench.checkpoint_formats.base import (
    CheckpointFormat,
    Entry,
    Shapes,
    describe_resnet,
    entries_from_modules,
)
from bench.checkpoint_formats.resnet import (
    DEPTHS,
    branch_convs,
    check_sew_args,
    is_sew_or_spiking,
    trunk_blocks,
)
from bench.models.sew_resnet import SEWBlock

_WRAPPED_CONV = re.compile(r"layer\d+\.\d+\.conv1\.module\.0\.weight$")


class SEWOfficial(CheckpointFormat):
    name = "sew-official"
    title = "SEW ResNet / Spiking ResNet, the SEW authors' code"
    source = ("github.com/fangwei123456/Spike-Element-Wise-ResNet: imagenet/sew_resnet.py, "
              "imagenet/spiking_resnet.py, imagenet/train.py")
    families = "sew_resnet*, spiking_resnet*"
    container_key = "model"  # train.py resumes from checkpoint['model']

    def applies_to(self, model: nn.Module) -> bool:
        return is_sew_or_spiking(model)

    def signature(self, keys: Collection[str]) -> bool:
        return "conv1.weight" in keys and any(_WRAPPED_CONV.match(k) for k in keys)

    def entries(self, model: nn.Module) -> list[Entry]:
        names = {"stem.body.0": "conv1", "stem.body.1": "bn1", "pre.0": "sn1", "head.fc": "fc"}
        for path, i, j, block in trunk_blocks(model):
            ours, theirs = f"{path}.", f"layer{i + 1}.{j}."
            n = branch_convs(block.branch)
            for k in range(n):
                names[f"{ours}branch.{2 * k}.0"] = f"{theirs}conv{k + 1}.module.0"
                names[f"{ours}branch.{2 * k}.1"] = f"{theirs}conv{k + 1}.module.1"
                names[f"{ours}branch.{2 * k + 1}"] = f"{theirs}sn{k + 1}"
            names[f"{ours}sn"] = f"{theirs}sn{n}"
            if isinstance(block, SEWBlock):
                names |= {f"{ours}shortcut.0.0": f"{theirs}downsample.0.module.0",
                          f"{ours}shortcut.0.1": f"{theirs}downsample.0.module.1",
                          f"{ours}shortcut.1": f"{theirs}downsample.1"}
            else:
                names |= {f"{ours}shortcut.0": f"{theirs}downsample.module.0",
                          f"{ours}shortcut.1": f"{theirs}downsample.module.1"}
        return entries_from_modules(model, names, self.name)

    def describe(self, shapes: Shapes) -> str:
        text = describe_resnet(shapes, r"layer(\d+)\.(\d+)\.", ".conv3.", "conv1.weight", "fc.weight", DEPTHS)
        if any(".downsample.0.module." in k for k in shapes):
            return f"SEW ResNet layout (spiking downsample), {text}"
        if any(".downsample.module." in k for k in shapes):
            return f"Spiking ResNet layout (conv+BN downsample), {text}"
        return text

    def check_args(self, args: Mapping[str, Any], model: nn.Module) -> None:
        check_sew_args(args, model, self.name)


FORMAT = SEWOfficial()
