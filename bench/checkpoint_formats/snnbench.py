"""``snnbench``: our own names (``model.state_dict()`` of the snnbench model), as the trainer saves them."""

from __future__ import annotations

from collections.abc import Collection

import torch.nn as nn

from bench.checkpoint_formats.base import CheckpointFormat, Entry, Shapes, describe_resnet
from bench.checkpoint_formats.resnet import DEPTHS


class Snnbench(CheckpointFormat):
    name = "snnbench"
    title = "snnbench's own names (bench train, or torch.save(model.state_dict()))"
    source = "this project: bench/models/*.py"
    families = "every model, user models included"
    container_key = "model"  # as bench train writes: {"model": state_dict, "meta": {...}}

    def applies_to(self, model: nn.Module) -> bool:
        return True

    def signature(self, keys: Collection[str]) -> bool:
        """Not detectable from keys alone: the loader matches them against the model instead."""
        return False

    def entries(self, model: nn.Module) -> list[Entry]:
        return [Entry(k, k) for k in model.state_dict()]

    def describe(self, shapes: Shapes) -> str:
        return describe_resnet(shapes, r"layers\.(\d+)\.(\d+)\.", ".branch.4.", "stem.body.0.weight",
                               "head.fc.weight", DEPTHS)


FORMAT = Snnbench()
