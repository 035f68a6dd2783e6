"""``spikingjelly-zoo``: spikingjelly 2.0's ``activation_based.model.sew_resnet`` / ``spiking_resnet``.

The names are torchvision's ResNet names without wrappers (the zoo's ``pretrained=True`` even loads
torchvision's ANN weights): ``conv1.weight``, ``bn1.*``, ``layer1.0.conv1.weight``, ``layer1.0.bn1.*``,
``layer1.0.sn1.*`` (tensors only for parametric neurons), ``layer2.0.downsample.{0,1}.*`` (SEW adds a
``downsample_sn`` node), ``fc.*``. Checked against the installed spikingjelly zoo models themselves (tests
build them). The SEW and Spiking ResNet zoo models name their tensors alike: only saved training
arguments (``args.model``) tell them apart, and they are checked when present.
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

_PLAIN_CONV = re.compile(r"layer\d+\.\d+\.conv1\.weight$")


class SpikingjellyZoo(CheckpointFormat):
    name = "spikingjelly-zoo"
    title = "SEW ResNet / Spiking ResNet of spikingjelly 2.0's model zoo"
    source = ("spikingjelly 2.0.0 (installed): spikingjelly/activation_based/model/sew_resnet.py, "
              "spikingjelly/activation_based/model/spiking_resnet.py")
    families = "sew_resnet*, spiking_resnet*"
    container_key = None  # the zoo model's own state dict: net.load_state_dict(torch.load(file))

    def applies_to(self, model: nn.Module) -> bool:
        return is_sew_or_spiking(model)

    def signature(self, keys: Collection[str]) -> bool:
        # DSR's ImageNet PreAct-ResNet uses the same torchvision names; its thresholds (".Vth") set it apart.
        return ("conv1.weight" in keys and any(_PLAIN_CONV.match(k) for k in keys)
                and not any(k.endswith(".Vth") for k in keys))

    def entries(self, model: nn.Module) -> list[Entry]:
        names = {"stem.body.0": "conv1", "stem.body.1": "bn1", "pre.0": "sn1", "head.fc": "fc"}
        for path, i, j, block in trunk_blocks(model):
            ours, theirs = f"{path}.", f"layer{i + 1}.{j}."
            n = branch_convs(block.branch)
            for k in range(n):
                names[f"{ours}branch.{2 * k}.0"] = f"{theirs}conv{k + 1}"
                names[f"{ours}branch.{2 * k}.1"] = f"{theirs}bn{k + 1}"
                names[f"{ours}branch.{2 * k + 1}"] = f"{theirs}sn{k + 1}"
            names[f"{ours}sn"] = f"{theirs}sn{n}"
            if isinstance(block, SEWBlock):
                names |= {f"{ours}shortcut.0.0": f"{theirs}downsample.0", f"{ours}shortcut.0.1": f"{theirs}downsample.1",
                          f"{ours}shortcut.1": f"{theirs}downsample_sn"}
            else:
                names |= {f"{ours}shortcut.0": f"{theirs}downsample.0", f"{ours}shortcut.1": f"{theirs}downsample.1"}
        return entries_from_modules(model, names, self.name)

    def describe(self, shapes: Shapes) -> str:
        return describe_resnet(shapes, r"layer(\d+)\.(\d+)\.", ".conv3.", "conv1.weight", "fc.weight", DEPTHS)

    def check_args(self, args: Mapping[str, Any], model: nn.Module) -> None:
        check_sew_args(args, model, self.name)


FORMAT = SpikingjellyZoo()
