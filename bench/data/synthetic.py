"""Synthetic data: seeded tensors of a declared shape, with random labels (accuracy is not measured)."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from bench.data.base import DataBundle, DatasetKind, DeclaredShape
from bench.data.limits import LABEL_BYTES, MemoryEstimate, float_bytes

DEFAULT_SAMPLES = 64  # dataset = "synthetic" without data.max_samples


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


def _samples(spec) -> int:
    return spec.max_samples or DEFAULT_SAMPLES


def _load(spec, root: None, seed: int) -> DataBundle:
    shape = KIND.declared_shape(spec)
    return synthetic(_samples(spec), shape.in_channels, shape.image_size, shape.num_classes, seed)


def _estimate(spec, root: None) -> MemoryEstimate:
    shape = KIND.declared_shape(spec)
    return estimate(_samples(spec), shape.in_channels, shape.image_size)


# data.options in_channels and num_classes and data.image_size set the shape; data.max_samples the count.
KIND = DatasetKind(
    name="synthetic", options=("in_channels", "num_classes"),
    integer_options={"in_channels": (1, 65_536), "num_classes": (1, 1_000_000)},
    shape=DeclaredShape(in_channels=3, image_size=32, num_classes=10), layout=None, load=_load,
    estimate=_estimate, samples=_samples, labelled=False, shape_from_files=False, memory_field="data.max_samples",
)
