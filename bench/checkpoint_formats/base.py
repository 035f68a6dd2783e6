"""What every checkpoint format provides: a name, a key signature, and a tensor-by-tensor map to our names.

A format maps each tensor of one of our models (a ``state_dict`` key) to the key and layout the official
code uses for the same tensor. The map is built from our model's structure (so it follows its depth,
width and block kinds); detection only looks at the checkpoint's keys. Layouts: ``same`` (identical
tensor) or ``leading_one`` (the official tensor has an extra leading dimension of size 1, e.g.
Spikeformer's ``pos_embed`` ``[1, N, C]`` against our ``[N, C]``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

LAYOUTS = ("same", "leading_one")
Shapes = Mapping[str, tuple[int, ...]]


class FormatError(ValueError):
    """A model this format cannot represent (wrong family, or a tensor the official code does not have)."""


@dataclass(frozen=True)
class Entry:
    """One tensor: our ``state_dict`` key, the official key, and how the official tensor is laid out."""

    ours: str
    theirs: str
    layout: str = "same"

    def to_theirs(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.unsqueeze(0) if self.layout == "leading_one" else tensor

    def to_ours(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.squeeze(0) if self.layout == "leading_one" else tensor

    def theirs_shape(self, ours_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (1, *ours_shape) if self.layout == "leading_one" else tuple(ours_shape)


class CheckpointFormat:
    """Base of the formats. Subclasses set the class attributes and implement the three methods."""

    name: str = ""
    title: str = ""  # which code writes it, e.g. "SEW / Spiking ResNet, authors' code"
    source: str = ""  # repository and files the names were read from
    families: str = ""  # our model families it applies to, for messages
    # How `bench export` stores the weights so the official code reads them: the state dict under this
    # key (None: the bare state dict), every key prefixed with `key_prefix` (DataParallel/DDP "module.").
    container_key: str | None = None
    key_prefix: str = ""

    def applies_to(self, model: nn.Module) -> bool:
        """Whether our ``model`` belongs to a family this format holds."""
        raise NotImplementedError

    def signature(self, keys: Collection[str]) -> bool:
        """Whether checkpoint ``keys`` (wrapper prefixes stripped) are in this format."""
        raise NotImplementedError

    def entries(self, model: nn.Module) -> list[Entry]:
        """Every tensor of ``model``'s state dict with its official key; FormatError if one has no name."""
        raise NotImplementedError

    def describe(self, shapes: Shapes) -> str:
        """A one-line architecture summary of a state dict in this format (depth, widths), or ''."""
        return ""

    def check_args(self, args: Mapping[str, Any], model: nn.Module) -> None:
        """Refuse a checkpoint whose saved training arguments name another model variant (FormatError)."""

    def wrap(self, state: dict[str, torch.Tensor]) -> dict[str, Any]:
        """The object `bench export` saves: what the official code's loader reads."""
        state = {self.key_prefix + k: v for k, v in state.items()}
        return state if self.container_key is None else {self.container_key: state}


def entries_from_modules(model: nn.Module, names: Mapping[str, str], fmt: str,
                         renames: Mapping[str, str] | None = None,
                         layouts: Mapping[str, str] | None = None) -> list[Entry]:
    """Entries from a module-path map: ``<our module>.<tensor>`` becomes ``<their module>.<tensor>``.

    ``renames`` renames tensors within a module (DSR's ``v_threshold`` is ``Vth``); ``layouts`` gives the
    layout of single keys. A module holding tensors but missing from ``names`` is a FormatError.
    """
    entries = []
    for key in model.state_dict():
        module, _, tensor = key.rpartition(".")
        if module not in names:
            owner = model.get_submodule(module) if module else model
            raise FormatError(f"{fmt} has no name for {key!r} ({type(owner).__name__}): the official code has no "
                              f"such tensor. Fix: build the model as the official one (default neuron and "
                              f"options), or keep our own format (snnbench)")
        prefix = names[module]
        tensor = (renames or {}).get(tensor, tensor)
        entries.append(Entry(key, f"{prefix}.{tensor}" if prefix else tensor, (layouts or {}).get(key, "same")))
    return entries


def blocks_per_stage(shapes: Shapes, pattern: str) -> tuple[int, ...]:
    """Blocks per stage from keys like ``layer1.0.*``: ``pattern`` captures (stage, block) numbers."""
    seen: dict[int, set[int]] = {}
    for key in shapes:
        m = re.match(pattern, key)
        if m:
            seen.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    return tuple(len(seen[s]) for s in sorted(seen))


def describe_resnet(shapes: Shapes, pattern: str, bottleneck_marker: str | None, stem: str, classifier: str,
                    depths: Mapping[tuple[str, tuple[int, ...]], int]) -> str:
    """``blocks per stage 2-2-2-2 (basic, depth 18), stem conv (64, 3, 7, 7), classifier (1000, 512)``."""
    blocks = blocks_per_stage(shapes, pattern)
    if not blocks:
        return ""
    kind = "bottleneck" if bottleneck_marker and any(bottleneck_marker in k for k in shapes) else "basic"
    depth = depths.get((kind, blocks))
    parts = [f"blocks per stage {'-'.join(map(str, blocks))} ({kind}"
             + (f", depth {depth})" if depth else ", no standard depth)")]
    if stem in shapes:
        parts.append(f"stem conv {tuple(shapes[stem])}")
    if classifier in shapes:
        parts.append(f"classifier {tuple(shapes[classifier])}")
    return ", ".join(parts)
