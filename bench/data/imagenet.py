"""ImageNet (or any ImageFolder-layout image set) from a local folder; nothing is downloaded.

Layout: ``<root>/<split>/<class>/<image>`` (``split = "val"`` for ImageNet's 50,000 validation
images sorted into one folder per class, as torchvision's ImageFolder expects). Classes are the
sorted folder names, so label ``i`` is the ``i``-th synset in sorted order (the convention of
torchvision, timm and spikingjelly checkpoints). Images are found recursively in each class folder.

Evaluation transform (the standard one, written with PIL and torch, no torchvision): resize the
shorter side to ``resize`` (default 256; bilinear), centre-crop ``image_size`` (default 224), scale
to [0, 1], normalise with the ImageNet mean/std. ``data.options``: ``num_classes`` (default 1000:
the folder count must equal it), ``resize``, ``mean``, ``std``.

A corrupt or unreadable image raises :class:`DatasetError` naming the file when it is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from bench.data.base import DataBundle, DatasetError, DatasetKind, DeclaredShape, samples_known_once_loaded
from bench.data.limits import ENV_VAR, MemoryEstimate, check_fits, float_bytes
from bench.data.options import check_options, normalize, option_int, option_triple

LAYOUT = ("<root>/<split>/<class>/<image> (ImageFolder: one folder per class, e.g. "
          "<root>/val/n01440764/ILSVRC2012_val_00000293.JPEG)")
EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OPTIONS = ("num_classes", "resize", "mean", "std")


def resize_shorter(image, size: int):
    """Resize a PIL image so its shorter side is ``size`` (the longer keeps the aspect ratio, floored)."""
    from PIL import Image

    w, h = image.size
    if min(w, h) == size:
        return image
    if w <= h:
        new = (size, int(size * h / w))
    else:
        new = (int(size * w / h), size)
    return image.resize(new, Image.BILINEAR)


def center_crop(image, size: int):
    """The central ``size`` x ``size`` crop (offsets rounded as torchvision does)."""
    w, h = image.size
    if w < size or h < size:
        raise ValueError(f"image of {w}x{h} is smaller than the {size}x{size} crop")
    left, top = int(round((w - size) / 2.0)), int(round((h - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def to_tensor(image) -> torch.Tensor:
    """An RGB PIL image as float ``[3, H, W]`` in [0, 1]."""
    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


class ImageFolderDataset(Dataset):
    """``(image [3, S, S], label)`` from a list of files, decoded lazily (DataLoader workers help)."""

    def __init__(self, samples: list[tuple[Path, int]], resize: int, crop: int,
                 mean: tuple[float, ...], std: tuple[float, ...]):
        self.samples = samples
        self.resize, self.crop, self.mean, self.std = resize, crop, mean, std

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        path, label = self.samples[index]
        try:
            with Image.open(path) as image:
                rgb = image.convert("RGB")  # decodes the whole file: truncated data fails here
            x = to_tensor(center_crop(resize_shorter(rgb, self.resize), self.crop))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise DatasetError(f"cannot read image {str(path)!r}: {exc}. Fix: replace or remove the "
                               f"corrupt file") from exc
        return normalize(x, self.mean, self.std), label


def find_samples(folder: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Sorted class names and ``(file, label)`` for every image under ``folder/<class>/``."""
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    if not classes:
        raise DatasetError(f"{str(folder)!r} holds no class folders. Expected layout: {LAYOUT}")
    samples: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        found = []
        for dirpath, dirnames, filenames in os.walk(folder / name, followlinks=True):
            dirnames.sort()
            found += [Path(dirpath) / f for f in sorted(filenames) if f.lower().endswith(EXTENSIONS)]
        if not found:
            raise DatasetError(f"class folder {str(folder / name)!r} holds no images ({', '.join(EXTENSIONS)}). "
                               f"Fix: remove the empty folder or restore its images")
        samples += [(p, label) for p in found]
    return classes, samples


def estimate(spec, root: Path | None = None) -> MemoryEstimate:
    """Images are decoded per item: nothing is held up front; one sample is ``3 x S x S`` float32."""
    crop = spec.image_size or 224
    return MemoryEstimate(0, float_bytes(3, crop, crop), f"images decoded per item, each served as 3x{crop}x{crop} "
                          "float32 (the decoded file and its resized copy come on top, briefly)")


def imagenet(spec, root: Path, seed: int = 0) -> DataBundle:
    """The ``spec.split`` folder of an ImageFolder tree at ``root``, with the evaluation transform."""
    options = dict(spec.options)
    check_options(options, OPTIONS, "imagenet")
    crop = spec.image_size or 224
    resize = option_int(options, "resize", int(round(crop * 256 / 224)))
    if resize < crop:
        raise DatasetError(f"data.options.resize = {resize} is smaller than the {crop}-px crop")
    num_classes = option_int(options, "num_classes", 1000)
    memory = estimate(spec)
    memory.check(f"data.image_size = {crop}: imagenet input", f"lower data.image_size, or raise {ENV_VAR}")
    check_fits(3 * resize * resize, f"data.options.resize = {resize}: each image resized to at least "
               f"{resize}x{resize} RGB", f"lower data.options.resize (default {crop} x 256 / 224), or raise {ENV_VAR}")
    mean = option_triple(options, "mean", IMAGENET_MEAN, 3)
    std = option_triple(options, "std", IMAGENET_STD, 3)
    folder = root / spec.split
    if not folder.is_dir():
        raise DatasetError(f"split folder {str(folder)!r} does not exist. Expected layout: {LAYOUT}. "
                           f"Fix: set data.split to the folder name (e.g. \"val\") or point data.root at the "
                           f"folder that contains it")
    classes, samples = find_samples(folder)
    if len(classes) != num_classes:
        raise DatasetError(f"{str(folder)!r} has {len(classes)} class folders but the dataset declares "
                           f"{num_classes} classes, so labels would not match the classifier. Fix: restore the "
                           f"missing class folders, or set data.options.num_classes = {len(classes)} for a "
                           f"subset with its own label order")
    return DataBundle(
        dataset=ImageFolderDataset(samples, resize, crop, mean, std),
        name="imagenet",
        num_classes=num_classes,
        in_channels=3,
        image_size=crop,
        description=f"ImageFolder {folder} ({len(samples)} images, {len(classes)} classes): resize {resize}, "
        f"centre crop {crop}, mean {list(mean)}, std {list(std)}",
        extra={"classes": len(classes)},
        memory=memory,
    )


KIND = DatasetKind(
    name="imagenet", options=OPTIONS, integer_options={"num_classes": (1, 1_000_000)},
    shape=DeclaredShape(in_channels=3, image_size=224, num_classes=1000), layout=LAYOUT, load=imagenet,
    estimate=estimate, samples=samples_known_once_loaded, labelled=True, shape_from_files=False,
    memory_field="data.image_size",
)
