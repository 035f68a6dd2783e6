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
from bench.data import synthetic as _synthetic
from bench.data.base import DataBundle, DatasetError
from bench.data.digits import digits
from bench.data.digits import estimate as _digits_estimate
from bench.data.limits import MemoryEstimate
from bench.data.synthetic import DECLARED_SHAPES, synthetic

# Datasets a suite may name. Those with a loader read from data.root: loader(spec, root, seed), and
# estimate(spec, root) works out the memory they will take without loading them.
DATASETS: dict[str, dict[str, object]] = {
    "synthetic": {"needs_root": False},
    "digits": {"needs_root": False},
    "imagenet": {"needs_root": True, "loader": _imagenet.imagenet, "layout": _imagenet.LAYOUT,
                 "estimate": _imagenet.estimate},
    "cifar10": {"needs_root": True, "loader": _cifar.cifar, "layout": _cifar.layout("cifar10"),
                "estimate": _cifar.estimate},
    "cifar100": {"needs_root": True, "loader": _cifar.cifar, "layout": _cifar.layout("cifar100"),
                 "estimate": _cifar.estimate},
    "dvs_frames": {"needs_root": True, "loader": _dvs.dvs_frames, "layout": _dvs.LAYOUT,
                   "estimate": _dvs.estimate},
}


def _fallback_shape(spec) -> tuple[dict[str, int], int]:
    """The declared shape and sample count of the synthetic stand-in for a missing dataset."""
    shape = dict(DECLARED_SHAPES.get(spec.dataset, DECLARED_SHAPES["synthetic"]))
    if spec.image_size:
        shape["image_size"] = spec.image_size
    n = min(spec.fallback_samples, spec.max_samples) if spec.max_samples else spec.fallback_samples
    return shape, n


def _synthetic_shape(spec) -> tuple[dict[str, int], int]:
    """The shape (data.options, image_size) and sample count of ``dataset = "synthetic"``."""
    shape = dict(DECLARED_SHAPES["synthetic"])
    shape.update({k: v for k, v in spec.options.items() if k in shape})
    if spec.image_size:
        shape["image_size"] = spec.image_size
    return shape, spec.max_samples or 64


def _fallback_note(spec, reason: str | None) -> str:
    shape, n = _fallback_shape(spec)
    return (f"accuracy was not measured: {reason}; synthetic {spec.dataset}-shaped input "
            f"({shape['in_channels']}x{shape['image_size']}x{shape['image_size']}, {n} samples) was used instead")


def _fallback(spec, seed: int, reason: str | None) -> DataBundle:
    shape, n = _fallback_shape(spec)
    return synthetic(n, shape["in_channels"], shape["image_size"], shape["num_classes"], seed,
                     name=f"synthetic ({spec.dataset} fallback)", fallback_note=_fallback_note(spec, reason))


def fallback_note(spec) -> str | None:
    """The note :func:`load_data` will attach when the dataset's root is missing and ``data.on_missing =
    "synthetic"`` (a dry run prints it as the run does); None when the real data will be read."""
    if spec.on_missing != "synthetic" or spec.dataset not in DATASETS:
        return None
    root, reason = resolve_root(spec)
    return None if root is not None else _fallback_note(spec, reason)


def resolve_root(spec) -> tuple[Path | None, str | None]:
    """The dataset root after ${VAR} expansion, or None and the reason it is missing."""
    from bench.checking import expand_env

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


def _missing(entry: dict[str, object], reason: str | None) -> DatasetError:
    return DatasetError(f"{reason}. Expected layout: {entry['layout']}. Fix: point data.root at the "
                        f"dataset, or set data.on_missing = \"synthetic\" to run on synthetic input")


def estimate_bytes(spec) -> MemoryEstimate:
    """The memory ``load_data(spec)`` will take (data held up front, one served sample), worked out
    without loading: from the suite's settings, file sizes and file headers. Bad input raises
    DatasetError as load_data would. The runner multiplies ``sample_bytes`` by batch and T per case."""
    if spec.dataset == "synthetic":
        shape, n = _synthetic_shape(spec)
        return _synthetic.estimate(n, shape["in_channels"], shape["image_size"])
    if spec.dataset == "digits":
        return _digits_estimate(spec.split, spec.image_size)
    entry = DATASETS.get(spec.dataset)
    if entry is None:
        raise DatasetError(f"unknown dataset {spec.dataset!r}; known: {', '.join(sorted(DATASETS))}")
    root, reason = resolve_root(spec)
    if root is None:
        if spec.on_missing == "synthetic":
            shape, n = _fallback_shape(spec)
            return _synthetic.estimate(n, shape["in_channels"], shape["image_size"])
        raise _missing(entry, reason)
    estimate: Callable[..., MemoryEstimate] = entry["estimate"]  # type: ignore[assignment]
    return estimate(spec, root)


def load_data(spec, seed: int = 0) -> DataBundle:
    """Load the suite's evaluation data, applying the declared fallback when its root is missing."""
    if spec.dataset == "synthetic":
        shape, n = _synthetic_shape(spec)
        bundle = synthetic(n, shape["in_channels"], shape["image_size"], shape["num_classes"], seed)
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
            raise _missing(entry, reason)
        loader: Callable[..., DataBundle] = entry["loader"]  # type: ignore[assignment]
        bundle = loader(spec, root, seed)
    if spec.max_samples and spec.max_samples < len(bundle.dataset):
        bundle.dataset = Subset(bundle.dataset, evenly_spaced(len(bundle.dataset), spec.max_samples))
    return bundle


__all__ = ["DATASETS", "DataBundle", "DatasetError", "MemoryEstimate", "estimate_bytes", "evenly_spaced",
           "fallback_note", "load_data"]
