"""Checkpoint formats: the names (and layouts) official code gives a model's tensors, mapped to ours.

One module per format, each defining ``FORMAT`` (a :class:`~bench.checkpoint_formats.base.CheckpointFormat`):

- ``snnbench``: our own state dict names;
- ``sew-official``: the SEW ResNet authors' ImageNet code (SEW and Spiking ResNet);
- ``spikingjelly-zoo``: spikingjelly 2.0's ``sew_resnet`` / ``spiking_resnet`` zoo models;
- ``ms-resnet-official``, ``spikeformer-official``, ``dsr-official``: those authors' repositories.

:func:`detect` names the official formats whose key signature a checkpoint matches; the loader
(:mod:`bench.checkpoints`) translates and loads, and ``bench export`` writes our weights back out.
"""

from __future__ import annotations

from collections.abc import Collection

from bench.checkpoint_formats import (
    dsr_official,
    ms_resnet_official,
    sew_official,
    snnbench,
    spikeformer_official,
    spikingjelly_zoo,
)
from bench.checkpoint_formats.base import CheckpointFormat, Entry, FormatError

FORMATS: dict[str, CheckpointFormat] = {m.FORMAT.name: m.FORMAT for m in (
    snnbench, sew_official, spikingjelly_zoo, ms_resnet_official, spikeformer_official, dsr_official)}
FORMAT_NAMES: tuple[str, ...] = tuple(FORMATS)
OWN = snnbench.FORMAT


def get_format(name: str) -> CheckpointFormat:
    """The format called ``name``; FormatError listing the known names otherwise."""
    if name not in FORMATS:
        raise FormatError(f"unknown checkpoint format {name!r}; known: {', '.join(FORMAT_NAMES)}")
    return FORMATS[name]


def detect(keys: Collection[str]) -> list[CheckpointFormat]:
    """The official formats whose key signature ``keys`` match (disjoint by construction: at most one)."""
    return [f for f in FORMATS.values() if f.signature(keys)]


__all__ = ["FORMATS", "FORMAT_NAMES", "OWN", "CheckpointFormat", "Entry", "FormatError", "detect", "get_format"]
