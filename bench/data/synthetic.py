"""Synthetic data: seeded tensors of a declared shape, with random labels (accuracy is not measured)."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from bench.data.base import DataBundle
from bench.data.limits import LABEL_BYTES, MemoryEstimate, float_bytes

# Shapes of the real datasets, used when a suite falls back to synthetic input.
DECLARED_SHAPES: dict[str, dict[str, int]] = {
    "synthetic": {"in_channels": 3, "image_size": 32, "num_classes": 10},
    "digits": {"in_channels": 1, "image_size": 8, "num_classes": 10},
    "imagenet": {"in_channels": 3, "image_size": 224, "num_classes": 1000},
    "cifar10": {"in_channels": 3, "image_size": 32, "num_classes": 10},
    "cifar100": {"in_channels": 3, "image_size": 32, "num_classes": 100},
    "dvs_frames": {"in_channels": 2, "image_size": 128, "num_classes": 10},
}


def estimate(num_samples: int, in_channels: int, image_size: int) -> MemoryEstimate:
    """Every image is generated up front: ``num_samples`` float32 images and int64 labels."""
    sample = float_bytes(in_channels, image_size, image_size)
    return MemoryEstimate(num_samples * (sample + LABEL_BYTES), sample,
                          f"{num_samples} synthetic images of {in_channels}x{image_size}x{image_size} float32")


def synthetic(num_samples: int, in_channels: int, image_size: int, num_classes: int, seed: int,
              name: str = "synthetic", fallback_note: str | None = None) -> DataBundle:
    """``num_samples`` images uniform in [0, 1) and uniform labels, from a seeded generator.

    Refused before generation when they would exceed the data memory limit (bench.data.limits).
    """
    memory = estimate(num_samples, in_channels, image_size)
    memory.check(f"data.image_size = {image_size} with {num_samples} samples: {name} input",
                 "lower data.image_size or data.max_samples (data.fallback_samples for a fallback)")
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(num_samples, in_channels, image_size, image_size, generator=gen)
    labels = torch.randint(0, num_classes, (num_samples,), generator=gen)
    return DataBundle(
        dataset=TensorDataset(images, labels),
        name=name,
        num_classes=num_classes,
        in_channels=in_channels,
        image_size=image_size,
        labelled=False,
        description=f"synthetic uniform [0,1) images {in_channels}x{image_size}x{image_size}, "
        f"random labels, seed {seed}",
        fallback_note=fallback_note,
        memory=memory,
    )
