"""Datasets, one file per kind. ``load_data(spec, seed)`` is the one entry point the runner uses."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Subset

from bench.data.base import DataBundle, DatasetError
from bench.data.digits import digits
from bench.data.synthetic import DECLARED_SHAPES, synthetic

# Datasets a suite may name. Those with needs_root read from data.root (nothing is downloaded).
DATASETS: dict[str, dict[str, object]] = {
    "synthetic": {"needs_root": False},
    "digits": {"needs_root": False},
    "imagenet": {"needs_root": True},
}


def _fallback(spec, seed: int, reason: str) -> DataBundle:
    shape = dict(DECLARED_SHAPES.get(spec.dataset, DECLARED_SHAPES["synthetic"]))
    if spec.image_size:
        shape["image_size"] = spec.image_size
    n = spec.fallback_samples
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
        root, reason = resolve_root(spec)
        if root is None:
            if spec.on_missing == "synthetic":
                return _fallback(spec, seed, reason)
            raise DatasetError(f"{reason}. Fix: point data.root at the dataset, or set "
                               f"data.on_missing = \"synthetic\" to run on synthetic input")
        raise DatasetError(f"dataset {spec.dataset!r} has no loader yet")
    if spec.max_samples and spec.max_samples < len(bundle.dataset):
        bundle.dataset = Subset(bundle.dataset, range(spec.max_samples))
    return bundle


__all__ = ["DATASETS", "DataBundle", "DatasetError", "load_data"]
