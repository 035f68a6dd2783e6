"""Datasets, one file per kind. ``load_data(spec, seed)`` is the one entry point the runner uses.

Datasets with a root are read from local files only (nothing is downloaded); a missing root fails
with the path and the expected layout, or falls back to synthetic input of the declared shape when
the suite sets ``data.on_missing = "synthetic"``. ``data.max_samples`` keeps an evenly spaced subset
(the middle sample of each of max_samples equal bins), so class-sorted data (ImageFolder) keeps every class.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch.utils.data import Subset

from bench.data import cifar as _cifar
from bench.data import dvs_frames as _dvs
from bench.data import imagenet as _imagenet
from bench.data.base import DataBundle, DatasetError
from bench.data.digits import digits
from bench.data.synthetic import DECLARED_SHAPES, synthetic

# Datasets a suite may name. Those with a loader read from data.root: loader(spec, root, seed).
DATASETS: dict[str, dict[str, object]] = {
    "synthetic": {"needs_root": False},
    "digits": {"needs_root": False},
    "imagenet": {"needs_root": True, "loader": _imagenet.imagenet, "layout": _imagenet.LAYOUT},
    "cifar10": {"needs_root": True, "loader": _cifar.cifar, "layout": _cifar.layout("cifar10")},
    "cifar100": {"needs_root": True, "loader": _cifar.cifar, "layout": _cifar.layout("cifar100")},
    "dvs_frames": {"needs_root": True, "loader": _dvs.dvs_frames, "layout": _dvs.LAYOUT},
}


def _fallback(spec, seed: int, reason: str) -> DataBundle:
    shape = dict(DECLARED_SHAPES.get(spec.dataset, DECLARED_SHAPES["synthetic"]))
    if spec.image_size:
        shape["image_size"] = spec.image_size
    n = min(spec.fallback_samples, spec.max_samples) if spec.max_samples else spec.fallback_samples
    note = (f"accuracy was not measured: {reason}; synthetic {spec.dataset}-shaped input "
            f"({shape['in_channels']}x{shape['image_size']}x{shape['image_size']}, {n} samples) was used instead")
    return synthetic(n, shape["in_channels"], shape["image_size"], shape["num_classes"], seed,
                     name=f"synthetic ({spec.dataset} fallback)", fallback_note=note)


def resolve_root(spec) -> tuple[Path | None, str | None]:
    """The dataset root after ${VAR} expansion, or None and the reason it is missing."""
    from bench.suite import expand_env

    if not spec.root:
        return None, f"data.root is not set for dataset {spec.dataset!r}"
    expanded, missing = expand_env(spec.root)
    if missing:
        return None, f"environment variable {missing[0]} (in data.root {spec.root!r}) is not set"
    path = Path(expanded)
    if not path.exists():
        return None, f"data.root {str(path)!r} does not exist"
    return path, None


def evenly_spaced(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)``: the middles of k equal bins (all of them when k >= n)."""
    if k >= n:
        return list(range(n))
    return [(2 * i + 1) * n // (2 * k) for i in range(k)]


def load_data(spec, seed: int = 0) -> DataBundle:
    """Load the suite's evaluation data, applying the declared fallback when its root is missing."""
    if spec.dataset == "synthetic":
        shape = dict(DECLARED_SHAPES["synthetic"])
        shape.update({k: v for k, v in spec.options.items() if k in shape})
        if spec.image_size:
            shape["image_size"] = spec.image_size
        bundle = synthetic(spec.max_samples or 64, shape["in_channels"], shape["image_size"],
                           shape["num_classes"], seed)
    elif spec.dataset == "digits":
        bundle = digits(spec.split, spec.image_size)
    else:
        entry = DATASETS.get(spec.dataset)
        if entry is None:
            raise DatasetError(f"unknown dataset {spec.dataset!r}; known: {', '.join(sorted(DATASETS))}")
        root, reason = resolve_root(spec)
        if root is None:
            if spec.on_missing == "synthetic":
                return _fallback(spec, seed, reason)
            raise DatasetError(f"{reason}. Expected layout: {entry['layout']}. Fix: point data.root at the "
                               f"dataset, or set data.on_missing = \"synthetic\" to run on synthetic input")
        loader: Callable[..., DataBundle] = entry["loader"]  # type: ignore[assignment]
        bundle = loader(spec, root, seed)
    if spec.max_samples and spec.max_samples < len(bundle.dataset):
        bundle.dataset = Subset(bundle.dataset, evenly_spaced(len(bundle.dataset), spec.max_samples))
    return bundle


__all__ = ["DATASETS", "DataBundle", "DatasetError", "evenly_spaced", "load_data"]
