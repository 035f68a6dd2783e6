"""Event-camera data as pre-integrated frames, one ``.npy``/``.npz`` file per sample; nothing is downloaded.

Layout::

    <root>/<split>/labels.csv          header "file,label", then one line per sample
    <root>/<split>/<file>              e.g. "class3/sample_0001.npy"; paths relative to <root>/<split>

Each file holds one array ``[T, C, H, W]`` (C = 2 polarities; event counts or any float frames):
a ``.npy`` file, or a ``.npz`` whose array is named ``frames`` (or is its only array). Files are read
with ``allow_pickle=False``. Integrate events into frames with your own tool (e.g. spikingjelly's
``integrate_events_by_fixed_frames_number``) and save them this way. The runner cuts each sample to
the case's T (the first T frames), so files need at least ``max(T)`` frames.

Checks: every ``labels.csv`` line names an existing ``.npy``/``.npz`` file, no file is listed twice,
every frame file under the split folder is listed, labels are integers in ``[0, num_classes)``, and
every sample has the shape of the first (checked as it is loaded). ``data.options.num_classes``
(default 10) declares the class count. Frames are square; ``data.image_size`` resizes them
(bilinear, antialiased), as the DSR and Spikeformer DVS pipelines resize 128-px frames. Values are
not normalised.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from bench.data.base import DataBundle, DatasetError
from bench.data.options import check_labels, check_options, option_int

LABEL_FILE = "labels.csv"
SUFFIXES = (".npy", ".npz")
LAYOUT = (f"<root>/<split>/{LABEL_FILE} (header 'file,label') and one .npy/.npz file per sample holding "
          f"frames [T, 2, H, W], paths relative to <root>/<split>")
OPTIONS = ("num_classes",)


def read_frames(path: Path) -> np.ndarray:
    """The frame array of one sample file; DatasetError naming the file when it cannot be read."""
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.files)
                if "frames" in names:
                    return archive["frames"]
                if len(names) == 1:
                    return archive[names[0]]
                raise DatasetError(f"{str(path)!r} holds arrays {names}; name the frames 'frames'")
        return np.load(path, allow_pickle=False)
    except DatasetError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise DatasetError(f"cannot read frames {str(path)!r}: {exc}. Fix: re-save it with numpy.save") from exc


class FramesDataset(Dataset):
    """``(frames [T, C, S, S] float32, label)`` read lazily from per-sample files."""

    def __init__(self, files: list[Path], labels: list[int], shape: tuple[int, ...], size: int):
        self.files, self.labels, self.shape, self.size = files, labels, shape, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path = self.files[index]
        array = read_frames(path)
        if array.shape != self.shape:
            raise DatasetError(f"{str(path)!r} has frames of shape {array.shape}; the first sample has "
                               f"{self.shape} and every sample must match. Fix: re-integrate it with the same "
                               f"frame count and size")
        x = torch.from_numpy(np.ascontiguousarray(array)).float()
        if self.size != x.shape[-1]:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        return x, self.labels[index]


def read_labels(folder: Path) -> tuple[list[Path], list[int]]:
    """Files and labels of ``folder/labels.csv``, checked against the frame files present."""
    label_file = folder / LABEL_FILE
    if not label_file.is_file():
        raise DatasetError(f"{str(label_file)!r} does not exist. Expected layout: {LAYOUT}")
    with open(label_file, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip() for c in rows[0]] != ["file", "label"]:
        raise DatasetError(f"{str(label_file)!r}: the first line must be the header 'file,label'")
    files: list[Path] = []
    labels: list[int] = []
    seen: set[str] = set()
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        where = f"{str(label_file)!r} line {line}"
        if len(row) != 2:
            raise DatasetError(f"{where}: expected 'file,label', got {row!r}")
        name, label = row[0].strip(), row[1].strip()
        try:
            value = int(label)
        except ValueError:
            raise DatasetError(f"{where}: label {label!r} is not an integer") from None
        path = folder / name
        if Path(name).suffix not in SUFFIXES:
            raise DatasetError(f"{where}: {name!r} is not a .npy or .npz file")
        if name in seen:
            raise DatasetError(f"{where}: {name!r} is listed twice")
        if not path.is_file():
            raise DatasetError(f"{where}: file {str(path)!r} does not exist. Fix: correct the line or restore the file")
        seen.add(name)
        files.append(path)
        labels.append(value)
    if not files:
        raise DatasetError(f"{str(label_file)!r} lists no samples")
    listed = {p.resolve() for p in files}
    unlisted = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                      if p.suffix in SUFFIXES and p.is_file() and p.resolve() not in listed)
    if unlisted:
        raise DatasetError(f"{len(unlisted)} frame file(s) in {str(folder)!r} are not in {LABEL_FILE} "
                           f"(first: {unlisted[0]!r}): label file and files do not match. Fix: add a line for "
                           f"each sample or remove the files")
    return files, labels


def dvs_frames(spec, root: Path, seed: int = 0) -> DataBundle:
    """The ``spec.split`` folder of pre-integrated frames under ``root``."""
    options = dict(spec.options)
    check_options(options, OPTIONS, "dvs_frames")
    num_classes = option_int(options, "num_classes", 10)
    folder = root / spec.split
    if not folder.is_dir():
        raise DatasetError(f"split folder {str(folder)!r} does not exist. Expected layout: {LAYOUT}")
    files, labels = read_labels(folder)
    check_labels(labels, num_classes, f"{str(folder / LABEL_FILE)!r}")
    first = read_frames(files[0])
    if first.ndim != 4:
        raise DatasetError(f"{str(files[0])!r} has shape {first.shape}; expected frames [T, C, H, W]")
    T_data, channels, height, width = first.shape
    if height != width and not spec.image_size:
        raise DatasetError(f"frames are {height}x{width}; set data.image_size to resize them to a square")
    size = spec.image_size or height
    return DataBundle(
        dataset=FramesDataset(files, labels, tuple(first.shape), size),
        name="dvs_frames",
        num_classes=num_classes,
        in_channels=channels,
        image_size=size,
        kind="frames",
        description=f"pre-integrated event frames from {folder} ({len(files)} samples, {T_data} frames of "
        f"{channels}x{height}x{width}" + (f", resized to {size}x{size}" if size != height or size != width else "")
        + ")",
        extra={"frames": T_data},
    )
