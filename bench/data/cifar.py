"""CIFAR-10 / CIFAR-100 from the official "python version" pickle batches; nothing is downloaded.

Layout (the extracted archives): ``<root>/cifar-10-batches-py/{data_batch_1..5, test_batch}`` and
``<root>/cifar-100-python/{train, test}``; ``data.root`` may also point at those folders themselves.
Split ``test`` (alias ``val``) or ``train``. Labels: CIFAR-10 ``labels``, CIFAR-100 ``fine_labels``.

Trust assumption: these batches are Python pickles. They are read only from the two fixed file names
in the folder the suite names, and with a restricted unpickler that builds only plain containers,
strings and numpy arrays (``numpy`` array reconstruction, ``ndarray``, ``dtype``, ``_codecs.encode``)
and refuses any other global, so a tampered file cannot run code; still, point ``data.root`` only
at a copy of the official archive you trust.

Transform: scale to [0, 1], normalise with ``mean``/``std`` (defaults: the CIFAR-10 training-set
statistics below, used for CIFAR-100 too; set ``data.options.mean``/``std`` to what your checkpoint
was trained with, or ``normalize = false`` for [0, 1] input), bilinear resize when ``data.image_size``
is not 32.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from bench.data.base import DataBundle, DatasetError
from bench.data.options import check_labels, check_options, normalize, option_bool, option_triple

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
OPTIONS = ("mean", "std", "normalize")

# dataset -> (folder, {split: files}, label key, classes)
VARIANTS: dict[str, tuple[str, dict[str, tuple[str, ...]], bytes, int]] = {
    "cifar10": ("cifar-10-batches-py", {"train": tuple(f"data_batch_{i}" for i in range(1, 6)),
                                         "test": ("test_batch",)}, b"labels", 10),
    "cifar100": ("cifar-100-python", {"train": ("train",), "test": ("test",)}, b"fine_labels", 100),
}


def layout(dataset: str) -> str:
    folder, files, _, _ = VARIANTS[dataset]
    return f"<root>/{folder}/{{{', '.join(files['train'] + files['test'])}}} (the extracted python-version archive)"


class _SafeUnpickler(pickle.Unpickler):
    """Builds plain containers and numpy arrays only; any other global is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        if module.startswith("numpy.core") and hasattr(np, "_core"):  # numpy 2 renamed numpy.core
            module = "numpy._core" + module[len("numpy.core"):]
        return super().find_class(module, name)


def read_batch(path: Path) -> dict[bytes, Any]:
    """One CIFAR batch file (``encoding="bytes"``: the official files are Python 2 pickles)."""
    try:
        with open(path, "rb") as f:
            obj = _SafeUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DatasetError(f"cannot read CIFAR batch {str(path)!r}: {exc}. Fix: re-extract the official "
                           f"python-version archive") from exc
    if not isinstance(obj, dict):
        raise DatasetError(f"CIFAR batch {str(path)!r} holds a {type(obj).__name__}, not a dict")
    return obj


class CifarDataset(Dataset):
    """``(image [3, S, S], label)`` from uint8 ``[N, 3, 32, 32]`` images, converted per item."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: tuple[float, ...] | None,
                 std: tuple[float, ...] | None, size: int):
        self.images, self.labels, self.mean, self.std, self.size = images, labels, mean, std, size

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.images[index].float() / 255.0
        if self.size != x.shape[-1]:
            x = F.interpolate(x.unsqueeze(0), size=(self.size, self.size), mode="bilinear",
                              align_corners=False).squeeze(0)
        return normalize(x, self.mean, self.std), self.labels[index]


def _folder(root: Path, name: str) -> Path:
    return root if root.name == name else root / name


def cifar(spec, root: Path, seed: int = 0) -> DataBundle:
    """CIFAR-10 or CIFAR-100 (``spec.dataset``) test or train split from the batches under ``root``."""
    options = dict(spec.options)
    check_options(options, OPTIONS, spec.dataset)
    folder_name, splits, label_key, num_classes = VARIANTS[spec.dataset]
    split = "test" if spec.split == "val" else spec.split
    if split not in splits:
        raise DatasetError(f"{spec.dataset} has splits 'train' and 'test' (alias 'val'), not {spec.split!r}")
    folder = _folder(root, folder_name)
    missing = [f for f in splits[split] if not (folder / f).is_file()]
    if missing:
        raise DatasetError(f"{str(folder / missing[0])!r} does not exist. Expected layout: {layout(spec.dataset)}. "
                           f"Fix: point data.root at the folder holding {folder_name}/")
    images, labels = [], []
    for name in splits[split]:
        path = folder / name
        batch = read_batch(path)
        if b"data" not in batch or label_key not in batch:
            raise DatasetError(f"CIFAR batch {str(path)!r} lacks 'data' or {label_key.decode()!r}: is it a "
                               f"{spec.dataset} file?")
        data = np.asarray(batch[b"data"])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise DatasetError(f"CIFAR batch {str(path)!r}: data is {data.dtype} {data.shape}, expected uint8 [N, 3072]")
        batch_labels = list(batch[label_key])
        if len(batch_labels) != data.shape[0]:
            raise DatasetError(f"CIFAR batch {str(path)!r} has {data.shape[0]} images but {len(batch_labels)} labels")
        check_labels(batch_labels, num_classes, f"CIFAR batch {str(path)!r}")
        images.append(torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()))
        labels += batch_labels
    use_norm = option_bool(options, "normalize", True)
    mean = option_triple(options, "mean", CIFAR_MEAN, 3) if use_norm else None
    std = option_triple(options, "std", CIFAR_STD, 3) if use_norm else None
    size = spec.image_size or 32
    norm = f"mean {list(mean)}, std {list(std)}" if mean and std else "no normalisation"
    return DataBundle(
        dataset=CifarDataset(torch.cat(images), torch.tensor(labels, dtype=torch.long), mean, std, size),
        name=spec.dataset,
        num_classes=num_classes,
        in_channels=3,
        image_size=size,
        description=f"{spec.dataset} {split} split from {folder} ({len(labels)} images), {norm}"
        + (f", resized to {size}x{size}" if size != 32 else ""),
    )
