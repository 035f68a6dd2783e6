"""Datasets, one file per kind. ``load_data(spec, seed)`` is the one entry point the runner uses.

Datasets with a root are read from local files only (nothing is downloaded); a missing root fails
with the path and the expected layout, or falls back to synthetic input of the declared shape when
the suite sets ``data.on_missing = "synthetic"``. ``data.max_samples`` keeps an evenly spaced subset
(the middle sample of each of max_samples equal bins), so class-sorted data (ImageFolder) keeps every class.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Subset

from bench.data import cifar, digits, dvs_frames, imagenet, synthetic
from bench.data.base import DataBundle, DatasetError, DatasetKind, DeclaredShape
from bench.data.limits import MemoryEstimate

# The datasets a suite may name, one declaration each (bench.data.base.DatasetKind, in the kind's own file);
# a new kind is one file and one entry here.
DATASETS: dict[str, DatasetKind] = {
    kind.name: kind for kind in (synthetic.KIND, digits.KIND, imagenet.KIND, *cifar.KINDS, dvs_frames.KIND)
}


def dataset_kind(name: str) -> DatasetKind:
    """The registered kind ``name``; DatasetError listing the known ones when there is none."""
    kind = DATASETS.get(name)
    if kind is None:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return kind


def _fallback_shape(spec) -> tuple[DeclaredShape, int]:
    """The declared shape (with the suite's data.options num_classes / in_channels and data.image_size,
    :meth:`DatasetKind.declared_shape`, so the model's classifier and the synthetic labels agree with the
    suite) and sample count of the synthetic stand-in for a missing dataset."""
    shape = dataset_kind(spec.dataset).declared_shape(spec)
    n = min(spec.fallback_samples, spec.max_samples) if spec.max_samples else spec.fallback_samples
    return shape, n


def _fallback_note(spec, reason: str | None) -> str:
    shape, n = _fallback_shape(spec)
    return (f"accuracy was not measured: {reason}; synthetic {spec.dataset}-shaped input "
            f"({shape.in_channels}x{shape.image_size}x{shape.image_size}, {n} samples) was used instead")


def _fallback(spec, seed: int, reason: str | None) -> DataBundle:
    shape, n = _fallback_shape(spec)
    return synthetic.synthetic(n, shape.in_channels, shape.image_size, shape.num_classes, seed,
                               name=f"synthetic ({spec.dataset} fallback)", fallback_note=_fallback_note(spec, reason))


def falls_back(spec) -> bool:
    """Whether :func:`load_data` will use the synthetic fallback: ``data.on_missing = "synthetic"`` and the
    kind reads a root that is missing (False when the real data will be read, or a missing root stops the run)."""
    kind = DATASETS.get(spec.dataset)
    return (spec.on_missing == "synthetic" and kind is not None and kind.needs_root
            and resolve_root(spec)[0] is None)


def fallback_note(spec) -> str | None:
    """The note :func:`load_data` will attach when it falls back (:func:`falls_back`; a dry run prints it
    as the run does); None when the real data will be read."""
    return _fallback_note(spec, resolve_root(spec)[1]) if falls_back(spec) else None


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


def _root(spec, kind: DatasetKind) -> tuple[Path | None, str | None]:
    """The resolved root of a kind that reads one (None and the reason when it is missing), or (None, None)."""
    return resolve_root(spec) if kind.needs_root else (None, None)


def _missing(kind: DatasetKind, reason: str | None) -> DatasetError:
    return DatasetError(f"{reason}. Expected layout: {kind.layout}. Fix: point data.root at the "
                        f"dataset, or set data.on_missing = \"synthetic\" to run on synthetic input")


def evaluated_samples(spec) -> tuple[int | None, bool]:
    """(samples accuracy evaluates, whether they are labelled) as declared, before loading: the kind's
    (samples None when known once loaded), or the synthetic fallback's for a missing root."""
    kind = dataset_kind(spec.dataset)
    root, _ = _root(spec, kind)
    if kind.needs_root and root is None:  # the synthetic fallback (load_data refuses a missing root otherwise)
        return _fallback_shape(spec)[1], False
    return kind.samples(spec), kind.labelled


def estimate_bytes(spec) -> MemoryEstimate:
    """The memory ``load_data(spec)`` will take (data held up front, one served sample), worked out
    without loading: from the suite's settings, file sizes and file headers. Bad input raises
    DatasetError as load_data would. The runner multiplies ``sample_bytes`` by batch and T per case."""
    kind = dataset_kind(spec.dataset)
    root, reason = _root(spec, kind)
    if kind.needs_root and root is None:
        if spec.on_missing == "synthetic":
            shape, n = _fallback_shape(spec)
            return synthetic.estimate(n, shape.in_channels, shape.image_size)
        raise _missing(kind, reason)
    return kind.estimate(spec, root)


def load_data(spec, seed: int = 0) -> DataBundle:
    """Load the suite's evaluation data, applying the declared fallback when its root is missing."""
    kind = dataset_kind(spec.dataset)
    root, reason = _root(spec, kind)
    if kind.needs_root and root is None:
        if spec.on_missing == "synthetic":
            return _fallback(spec, seed, reason)
        raise _missing(kind, reason)
    bundle = kind.load(spec, root, seed)
    if spec.max_samples and spec.max_samples < len(bundle.dataset):
        bundle.dataset = Subset(bundle.dataset, evenly_spaced(len(bundle.dataset), spec.max_samples))
    return bundle


__all__ = ["DATASETS", "DataBundle", "DatasetError", "DatasetKind", "DeclaredShape", "MemoryEstimate",
           "dataset_kind", "estimate_bytes", "evaluated_samples", "evenly_spaced", "falls_back", "fallback_note", "load_data",
           "resolve_root"]
