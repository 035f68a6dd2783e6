"""CIFAR-10 / CIFAR-100 from the official "python version" pickle batches; nothing is downloaded.

Layout (the extracted archives): ``<root>/cifar-10-batches-py/{data_batch_1..5, test_batch}`` and
``<root>/cifar-100-python/{train, test}``; ``data.root`` may also point at those folders themselves.
Split ``test`` (alias ``val``) or ``train``. Labels: CIFAR-10 ``labels``, CIFAR-100 ``fine_labels``.

Trust assumption: these batches are Python pickles. They are read only from the two fixed file names
in the folder the suite names, and with a restricted unpickler that builds only plain containers,
strings and numpy arrays (``numpy`` array reconstruction, ``ndarray``, ``dtype``, ``_codecs.encode``)
and refuses any other global, so a tampered file cannot run code. Nor can it exhaust memory: a file
larger than the data memory limit (bench.data.limits) is refused before it is read, and an array
declaring more bytes than the whole file holds is refused before numpy allocates it. Still, point
``data.root`` only at a copy of the official archive you trust.

Transform: scale to [0, 1], normalise with ``mean``/``std`` (defaults: the CIFAR-10 training-set
statistics below, used for CIFAR-100 too; set ``data.options.mean``/``std`` to what your checkpoint
was trained with, or ``normalize = false`` for [0, 1] input), bilinear resize when ``data.image_size``
is not 32.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from bench.data.base import DataBundle, DatasetError, DatasetKind, DeclaredShape, samples_known_once_loaded
from bench.data.limits import ENV_VAR, LABEL_BYTES, MemoryEstimate, check_fits, float_bytes
from bench.data.options import check_labels, check_options, normalize, option_bool, option_triple

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
OPTIONS = ("mean", "std", "normalize")
IMAGE_BYTES = 3 * 32 * 32  # one uint8 image

# dataset -> (folder, {split: files}, label key, classes). A split's images are held whole as 3x32x32 uint8
# (data.image_size resizes each item as it is served), so data.split, not data.image_size, sets the data held
# in memory (the kinds' memory_field).
VARIANTS: dict[str, tuple[str, dict[str, tuple[str, ...]], bytes, int]] = {
    "cifar10": ("cifar-10-batches-py", {"train": tuple(f"data_batch_{i}" for i in range(1, 6)),
                                         "test": ("test_batch",)}, b"labels", 10),
    "cifar100": ("cifar-100-python", {"train": ("train",), "test": ("test",)}, b"fine_labels", 100),
}


def layout(dataset: str) -> str:
    folder, files, _, _ = VARIANTS[dataset]
    return f"<root>/{folder}/{{{', '.join(files['train'] + files['test'])}}} (the extracted python-version archive)"


class _SafeUnpickler(pickle.Unpickler):
    """Builds plain containers and numpy arrays only; any other global is refused.

    Arrays are created through :meth:`_array` and :meth:`_reconstruct`, which refuse a declared size
    larger than the file itself before anything is allocated (the data of a real array is in the file;
    numpy pickles declare an empty array and fill it from the bytes that follow).
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def __init__(self, file: Any, path: Path, size: int):
        super().__init__(file, encoding="bytes")
        self.path, self.size = path, size

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        if name == "_reconstruct":
            return self._reconstruct
        if name == "ndarray":
            return self._array
        if module.startswith("numpy.core") and hasattr(np, "_core"):  # numpy 2 renamed numpy.core
            module = "numpy._core" + module[len("numpy.core"):]
        return super().find_class(module, name)

    def _check_size(self, shape: Any, dtype: Any) -> None:
        """Refuse an array declaring more bytes than the whole file holds (checked before allocation)."""
        try:
            dims = tuple(int(d) for d in (shape if isinstance(shape, tuple | list) else (shape,)))
            itemsize = np.dtype(dtype).itemsize
        except (TypeError, ValueError) as exc:
            raise pickle.UnpicklingError(f"invalid array shape {shape!r} or dtype {dtype!r}: {exc}") from exc
        nbytes = math.prod(dims) * itemsize
        if any(d < 0 for d in dims) or nbytes > self.size:
            raise DatasetError(f"CIFAR batch {str(self.path)!r} declares an array of shape {dims} ({nbytes:,} "
                               f"bytes), more than the whole file ({self.size:,} bytes): the file is corrupt or "
                               f"not a CIFAR batch. Fix: re-extract the official python-version archive")

    def _array(self, shape: Any, dtype: Any = float, *args: Any, **kwargs: Any) -> np.ndarray:
        """``numpy.ndarray(shape, dtype, ...)`` after the size check."""
        self._check_size(shape, dtype)
        return np.ndarray(shape, dtype, *args, **kwargs)

    def _reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        """numpy's ``_reconstruct`` (an ndarray of ``shape``; ``dtype`` is a placeholder code) after the check."""
        if subtype != self._array:  # bound methods: equal, not identical
            raise pickle.UnpicklingError(f"array subtype {subtype!r} is not allowed in a CIFAR batch")
        return self._array(shape, dtype)


def read_batch(path: Path) -> dict[bytes, Any]:
    """One CIFAR batch file (``encoding="bytes"``: the official files are Python 2 pickles).

    Refused before reading when the file alone exceeds the data memory limit (bench.data.limits).
    """
    size = path.stat().st_size
    check_fits(size, f"CIFAR batch {str(path)!r}", "check that data.root points at the official CIFAR archive "
               f"(each batch is about 30 MiB), or raise {ENV_VAR}")
    try:
        with open(path, "rb") as f:
            obj = _SafeUnpickler(f, path, size).load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, MemoryError,
            OverflowError, IndexError, KeyError, RecursionError) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"cannot read CIFAR batch {str(path)!r}: {type(exc).__name__}: {exc}. Fix: re-extract "
                           f"the official python-version archive") from exc
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


def _labels(value: Any, path: Path, key: bytes) -> list[int]:
    """A batch's labels as Python integers; DatasetError naming the file when they are not a list of integers."""
    values = value.tolist() if isinstance(value, np.ndarray) else value
    if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise DatasetError(f"CIFAR batch {str(path)!r}: {key.decode()!r} is not a list of integers. Fix: re-extract "
                           f"the official python-version archive")
    return values


def _folder(root: Path, name: str) -> Path:
    return root if root.name == name else root / name


def _batch_files(spec, root: Path) -> tuple[str, Path, list[Path]]:
    """The split's name, folder and batch files; DatasetError when the split is unknown or a file is missing."""
    folder_name, splits, _, _ = VARIANTS[spec.dataset]
    split = "test" if spec.split == "val" else spec.split
    if split not in splits:
        raise DatasetError(f"{spec.dataset} has splits 'train' and 'test' (alias 'val'), not {spec.split!r}")
    folder = _folder(root, folder_name)
    missing = [f for f in splits[split] if not (folder / f).is_file()]
    if missing:
        raise DatasetError(f"{str(folder / missing[0])!r} does not exist. Expected layout: {layout(spec.dataset)}. "
                           f"Fix: point data.root at the folder holding {folder_name}/")
    return split, folder, [folder / f for f in splits[split]]


def estimate(spec, root: Path) -> MemoryEstimate:
    """Images are held as uint8 ``[N, 3, 32, 32]`` with int64 labels; N is judged from the file sizes."""
    _, _, files = _batch_files(spec, root)
    n = sum(p.stat().st_size for p in files) // IMAGE_BYTES
    size = spec.image_size or 32
    return MemoryEstimate(n * (IMAGE_BYTES + LABEL_BYTES), float_bytes(3, size, size),
                          f"about {n} images of 3x32x32 uint8 (judged from the file sizes), served as "
                          f"3x{size}x{size} float32")


def cifar(spec, root: Path, seed: int = 0) -> DataBundle:
    """CIFAR-10 or CIFAR-100 (``spec.dataset``) test or train split from the batches under ``root``."""
    options = dict(spec.options)
    check_options(options, OPTIONS, spec.dataset)
    _, _, label_key, num_classes = VARIANTS[spec.dataset]
    split, folder, files = _batch_files(spec, root)
    estimate(spec, root).check(f"the {spec.dataset} {split} split in {str(folder)!r}"
                               + (f" at data.image_size = {spec.image_size}" if spec.image_size else ""),
                               f"lower data.image_size (one sample's size) or use the smaller test split "
                               f"(data.split = \"test\": the split's 3x32x32 images are held whole, whatever "
                               f"data.image_size), or raise {ENV_VAR}")
    images, labels = [], []
    for path in files:
        batch = read_batch(path)
        if b"data" not in batch or label_key not in batch:
            raise DatasetError(f"CIFAR batch {str(path)!r} lacks 'data' or {label_key.decode()!r}: is it a "
                               f"{spec.dataset} file?")
        data = np.asarray(batch[b"data"])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != IMAGE_BYTES:
            raise DatasetError(f"CIFAR batch {str(path)!r}: data is {data.dtype} {data.shape}, expected uint8 [N, 3072]")
        batch_labels = _labels(batch[label_key], path, label_key)
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
        memory=MemoryEstimate(len(labels) * (IMAGE_BYTES + LABEL_BYTES), float_bytes(3, size, size),
                              f"{len(labels)} images of 3x32x32 uint8, served as 3x{size}x{size} float32"),
    )


KINDS = tuple(
    DatasetKind(name=name, options=OPTIONS, integer_options={},
                shape=DeclaredShape(in_channels=3, image_size=32, num_classes=classes), layout=layout(name),
                load=cifar, estimate=estimate, samples=samples_known_once_loaded, labelled=True,
                shape_from_files=False, memory_field="data.split")
    for name, (_, _, _, classes) in VARIANTS.items()
)
