"""Event-camera data as pre-integrated frames, one ``.npy``/``.npz`` file per sample; nothing is downloaded.

Layout::

    <root>/<split>/labels.csv          header "file,label", then one line per sample
    <root>/<split>/<file>              e.g. "class3/sample_0001.npy"; paths relative to <root>/<split>

Each file holds one array ``[T, C, H, W]`` (C = 2 polarities; event counts or any float frames):
a ``.npy`` file, or a ``.npz`` whose array is named ``frames`` (or is its only array). Files are read
with ``allow_pickle=False``. Integrate events into frames with your own tool (e.g. spikingjelly's
``integrate_events_by_fixed_frames_number``) and save them this way. The runner cuts each sample to
the case's T (the first T frames), so files need at least ``max(T)`` frames.

Checks: every ``labels.csv`` line names an existing ``.npy``/``.npz`` file by a path inside the split
folder (absolute paths and ``..`` are refused: nothing is read from outside ``data.root``; symlinks the
user placed inside it are followed), no file is listed twice, every frame file under the split folder
is listed, and labels are integers in ``[0, num_classes)``. Each sample file's header is read before
its data: its type must be numeric (bool, int, float), its size within the data memory limit
(bench.data.limits) and its shape that of the first sample; after loading, float frames holding NaN
or infinities are refused. The first sample is checked when the dataset loads (bad input, exit 2);
the others when they are read (the case fails, naming the file). ``data.options.num_classes``
(default 10) declares the class count. Frames are square; ``data.image_size`` resizes them
(bilinear, antialiased), as the DSR and Spikeformer DVS pipelines resize 128-px frames. Values are
not normalised.
"""

from __future__ import annotations

import csv
import math
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.lib import format as npy_format
from torch.utils.data import Dataset

from bench.data.base import DataBundle, DatasetError, DatasetKind, DeclaredShape, samples_known_once_loaded
from bench.data.limits import ENV_VAR, FLOAT32_BYTES, MemoryEstimate, check_fits, float_bytes
from bench.data.options import check_labels, check_options, option_int

LABEL_FILE = "labels.csv"
SUFFIXES = (".npy", ".npz")
LAYOUT = (f"<root>/<split>/{LABEL_FILE} (header 'file,label') and one .npy/.npz file per sample holding "
          f"frames [T, 2, H, W], paths relative to <root>/<split>")
OPTIONS = ("num_classes",)
NUMERIC_KINDS = "biuf"  # numpy kinds: bool, signed, unsigned, float


def _header(f: Any) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from an open ``.npy`` stream's header, read without loading the array."""
    version = npy_format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = npy_format.read_array_header_1_0(f)
    elif version in ((2, 0), (3, 0)):  # 3.0 differs only in allowing utf-8 field names
        shape, _, dtype = npy_format.read_array_header_2_0(f)
    else:
        raise ValueError(f".npy format version {version} is not supported")
    return tuple(shape), dtype


def _npz_member(archive: zipfile.ZipFile, path: Path) -> str:
    """The member of a ``.npz`` holding the frames: ``frames.npy``, or the only array."""
    names = [n for n in archive.namelist() if n.endswith(".npy")]
    if "frames.npy" in names:
        return "frames.npy"
    if len(names) == 1:
        return names[0]
    raise DatasetError(f"{str(path)!r} holds arrays {[n[:-4] for n in names]}; name the frames 'frames'")


def read_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a sample file's frames, from its header alone; DatasetError naming the file."""
    try:
        if path.suffix == ".npz":
            with zipfile.ZipFile(path) as archive, archive.open(_npz_member(archive, path)) as f:
                return _header(f)
        with open(path, "rb") as f:
            return _header(f)
    except DatasetError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise DatasetError(f"cannot read frames {str(path)!r}: {exc}. Fix: re-save it with numpy.save") from exc


def check_header(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Refuse a sample of a non-numeric type, or one whose frames alone would exceed the memory limit."""
    if dtype.kind not in NUMERIC_KINDS:
        raise DatasetError(f"{str(path)!r} holds {dtype} values; frames must be booleans, integers or floats. "
                           f"Fix: re-save the frames as float32 or integer counts")
    n = math.prod(shape)
    check_fits(n * max(dtype.itemsize, FLOAT32_BYTES), f"frames file {str(path)!r} (shape {shape}, {dtype})",
               f"re-integrate it into fewer or smaller frames, or raise {ENV_VAR}")


def read_frames(path: Path, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The frame array of one sample file, checked from its header before it is loaded (type, size, and
    ``shape`` when given) and for NaN/Inf after; DatasetError naming the file when any check fails."""
    found, dtype = read_header(path)
    check_header(path, found, dtype)
    if shape is not None and found != shape:
        raise DatasetError(f"{str(path)!r} has frames of shape {found}; the first sample has {shape} and every "
                           f"sample must match. Fix: re-integrate it with the same frame count and size")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                array = archive[_npz_member(archive.zip, path)[:-4]]
        else:
            array = np.load(path, allow_pickle=False)
    except DatasetError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise DatasetError(f"cannot read frames {str(path)!r}: {exc}. Fix: re-save it with numpy.save") from exc
    if dtype.kind == "f" and not np.isfinite(array).all():
        bad = int(array.size - np.isfinite(array).sum())
        raise DatasetError(f"{str(path)!r} holds {bad} NaN or infinite value(s) in its frames, which would give "
                           f"meaningless results. Fix: re-integrate the sample, or remove it and its labels.csv line")
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


class FramesDataset(Dataset):
    """``(frames [T, C, S, S] float32, label)`` read lazily from per-sample files."""

    def __init__(self, files: list[Path], labels: list[int], shape: tuple[int, ...], size: int):
        self.files, self.labels, self.shape, self.size = files, labels, shape, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = torch.from_numpy(np.ascontiguousarray(read_frames(self.files[index], self.shape))).float()
        if self.size != x.shape[-1]:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        return x, self.labels[index]


def escapes(name: str) -> bool:
    """Whether a labels.csv path leaves the split folder: absolute (POSIX or Windows, drive letters too) or with ``..``."""
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    return (posix.is_absolute() or windows.is_absolute() or bool(windows.drive) or bool(windows.root)
            or ".." in posix.parts or ".." in windows.parts)


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
        if escapes(name):
            raise DatasetError(f"{where}: {name!r} is not a path inside {str(folder)!r} (absolute, or with '..'), so "
                               f"it would be read from outside data.root. Fix: write the path relative to the split "
                               f"folder, or move the file into it")
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


def _first_sample(spec, root: Path) -> tuple[Path, list[Path], list[int], tuple[int, ...], int]:
    """The split folder, its files and labels, the first sample's shape and the served size; checked."""
    folder = root / spec.split
    if not folder.is_dir():
        raise DatasetError(f"split folder {str(folder)!r} does not exist. Expected layout: {LAYOUT}")
    files, labels = read_labels(folder)
    shape, dtype = read_header(files[0])
    check_header(files[0], shape, dtype)
    if len(shape) != 4:
        raise DatasetError(f"{str(files[0])!r} has shape {shape}; expected frames [T, C, H, W]")
    height, width = shape[2:]
    if height != width and not spec.image_size:
        raise DatasetError(f"frames are {height}x{width}; set data.image_size to resize them to a square")
    return folder, files, labels, shape, spec.image_size or height


def estimate(spec, root: Path) -> MemoryEstimate:
    """Frames are read per item: nothing is held up front; one sample is ``T x C x S x S`` float32."""
    _, files, _, shape, size = _first_sample(spec, root)
    return _estimate(len(files), shape, size)


def _estimate(n_files: int, shape: tuple[int, ...], size: int) -> MemoryEstimate:
    T_data, channels = shape[:2]
    return MemoryEstimate(0, float_bytes(T_data, channels, size, size),
                          f"{n_files} frame files read per item, each {T_data}x{channels}x{size}x{size} float32 "
                          f"once served (shape from the first file's header)")


def dvs_frames(spec, root: Path, seed: int = 0) -> DataBundle:
    """The ``spec.split`` folder of pre-integrated frames under ``root``."""
    options = dict(spec.options)
    check_options(options, OPTIONS, "dvs_frames")
    num_classes = option_int(options, "num_classes", 10)
    folder, files, labels, shape, size = _first_sample(spec, root)
    check_labels(labels, num_classes, f"{str(folder / LABEL_FILE)!r}")
    memory = _estimate(len(files), shape, size)
    memory.check(f"the frames in {str(folder)!r}" + (f" at data.image_size = {size}" if spec.image_size else ""),
                 f"lower data.image_size, or raise {ENV_VAR}")
    read_frames(files[0], shape)  # a first sample that cannot be used stops the run before any case
    T_data, channels, height, width = shape
    return DataBundle(
        dataset=FramesDataset(files, labels, shape, size),
        name="dvs_frames",
        num_classes=num_classes,
        in_channels=channels,
        image_size=size,
        kind="frames",
        description=f"pre-integrated event frames from {folder} ({len(files)} samples, {T_data} frames of "
        f"{channels}x{height}x{width}" + (f", resized to {size}x{size}" if size != height or size != width else "")
        + ")",
        extra={"frames": T_data},
        memory=memory,
    )


# The declared shape (128-px DVS frames of 2 polarities) is the synthetic fallback's; a real run takes a
# sample's shape from the first file's header.
KIND = DatasetKind(
    name="dvs_frames", options=OPTIONS, integer_options={"num_classes": (1, 1_000_000)},
    shape=DeclaredShape(in_channels=2, image_size=128, num_classes=10), layout=LAYOUT, load=dvs_frames,
    estimate=estimate, samples=samples_known_once_loaded, labelled=True, shape_from_files=True,
    memory_field="data.image_size",
)
