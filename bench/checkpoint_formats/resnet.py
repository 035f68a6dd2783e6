"""Helpers shared by the ResNet formats: walking our ``ResNetTrunk`` and checking saved training arguments."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch.nn as nn

from bench.checkpoint_formats.base import FormatError
from bench.models.resnet_parts import LAYOUTS, ResNetTrunk
from bench.models.sew_resnet import SEWBlock
from bench.models.spiking_resnet import SpikingBlock

# (block kind, blocks per stage) -> depth, for messages naming a checkpoint's depth.
DEPTHS: dict[tuple[str, tuple[int, ...]], int] = {(kind, blocks): depth for depth, (kind, blocks) in LAYOUTS.items()}


def first_block(model: nn.Module) -> nn.Module | None:
    """The first residual block of a ResNetTrunk, or None for other models."""
    if isinstance(model, ResNetTrunk) and len(model.layers) and len(model.layers[0]):
        return model.layers[0][0]
    return None


def is_sew_or_spiking(model: nn.Module) -> bool:
    return isinstance(first_block(model), (SEWBlock, SpikingBlock))


def trunk_blocks(model: nn.Module) -> Iterator[tuple[str, int, int, nn.Module]]:
    """``(our path, stage index, block index, block)`` for every residual block, stages from 0."""
    assert isinstance(model, ResNetTrunk)
    for i, stage in enumerate(model.layers):
        for j, block in enumerate(stage):
            yield f"layers.{i}.{j}", i, j, block


def branch_convs(branch: nn.Sequential) -> int:
    """Conv+BN pairs in a residual branch (conv_bn, neuron, conv_bn, ...): 2 basic, 3 bottleneck."""
    return (len(branch) + 1) // 2


def check_sew_args(args: Mapping[str, Any], model: nn.Module, fmt: str) -> None:
    """The training arguments saved with a SEW/Spiking checkpoint (``model``, ``connect_f``/``cnf``) must
    name the model's family and connect function: spikingjelly's zoo names both families' tensors alike."""
    block = first_block(model)
    sew = isinstance(block, SEWBlock)
    ours = "SEW ResNet" if sew else "Spiking ResNet"
    name = args.get("model")
    if isinstance(name, str) and (name.startswith("sew_resnet") and not sew or name.startswith("spiking_resnet") and sew):
        raise FormatError(f"its saved training arguments say model={name!r} but the model is a {ours} ({fmt}). "
                          f"Fix: evaluate it with name = {name!r}")
    cnf = args.get("connect_f", args.get("cnf"))
    if sew and isinstance(cnf, str) and cnf.upper() != block.connect.cnf:  # type: ignore[union-attr]
        raise FormatError(f"its saved training arguments say connect_f={cnf!r} but the model has "
                          f"cnf={block.connect.cnf!r} ({fmt}). Fix: kwargs = {{ cnf = \"{cnf.upper()}\" }}")  # type: ignore[union-attr]
