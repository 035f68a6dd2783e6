"""scikit-learn's bundled ``load_digits``: 1,797 real, labelled 8x8 grey images of the digits 0-9.

Pixels (0..16) are scaled to [0, 1]; ``image_size`` resizes bilinearly. The train/test split is
stratified with a fixed seed (25% test), so every run evaluates the same 450 test images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from bench.data.base import DataBundle, DatasetError, DatasetKind, DeclaredShape
from bench.data.limits import LABEL_BYTES, MemoryEstimate, float_bytes

TEST_FRACTION = 0.25
SPLIT_SEED = 0
NATIVE_SIZE = 8
TOTAL_SAMPLES = 1797  # load_digits


def split_size(split: str) -> int:
    """Images in a split: scikit-learn's train_test_split puts ceil(0.25 x 1797) = 450 in the test split."""
    test = math.ceil(TEST_FRACTION * TOTAL_SAMPLES)
    return TOTAL_SAMPLES - test if split == "train" else test


def estimate(split: str, image_size: int | None) -> MemoryEstimate:
    """Every image of the split is resized up front: N float32 images of 1 x S x S, and int64 labels."""
    size, n = image_size or NATIVE_SIZE, split_size(split)
    sample = float_bytes(1, size, size)
    return MemoryEstimate(n * (sample + LABEL_BYTES), sample, f"{n} images of 1x{size}x{size} float32")


def digits_tensors(split: str, image_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``[N, 1, S, S]`` in [0, 1] and labels ``[N]`` of one split (train or test/val)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if split not in ("train", "test", "val"):
        raise DatasetError(f"digits has splits 'train' and 'test' (alias 'val'), not {split!r}")
    estimate(split, image_size).check(f"data.image_size = {image_size}: the digits {split} split",
                                      f"lower data.image_size (the images are {NATIVE_SIZE}x{NATIVE_SIZE})")
    bunch = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        bunch.images, bunch.target, test_size=TEST_FRACTION, stratify=bunch.target, random_state=SPLIT_SEED
    )
    images, labels = (x_train, y_train) if split == "train" else (x_test, y_test)
    x = torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 16.0
    if image_size and image_size != x.shape[-1]:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return x, torch.tensor(labels, dtype=torch.long)


def digits(split: str = "test", image_size: int | None = None) -> DataBundle:
    """The digits split as a bundle; refused before resizing when it would exceed the memory limit."""
    x, y = digits_tensors(split, image_size)
    return DataBundle(
        dataset=TensorDataset(x, y),
        name="digits",
        num_classes=10,
        in_channels=1,
        image_size=x.shape[-1],
        description=f"scikit-learn load_digits, {split} split ({len(y)} images, stratified "
        f"{int(TEST_FRACTION * 100)}% test, seed {SPLIT_SEED}), 8x8 resized to {x.shape[-1]}x{x.shape[-1]}",
        memory=estimate(split, image_size),
    )


def _samples(spec) -> int:
    n = split_size(spec.split)
    return min(n, spec.max_samples) if spec.max_samples else n


KIND = DatasetKind(
    name="digits", options=(), integer_options={},
    shape=DeclaredShape(in_channels=1, image_size=NATIVE_SIZE, num_classes=10), layout=None,
    load=lambda spec, root, seed: digits(spec.split, spec.image_size),
    estimate=lambda spec, root: estimate(spec.split, spec.image_size),
    samples=_samples, labelled=True, shape_from_files=False, memory_field="data.image_size",
)
