"""Datasets refused before they exhaust memory, hostile label files and frames, worked-out memory estimates.

Every limit here is set through BENCH_DATA_MEMORY_GIB so that the tests behave the same on every machine
(a 128 GiB machine would otherwise accept what a 24 GiB one refuses).
"""

from __future__ import annotations

import pickle
import struct
import time

import numpy as np
import pytest
import torch

from bench import devices
from bench.cli import main
from bench.data import DatasetError, estimate_bytes, load_data
from bench.data import limits as limits_mod
from bench.data.cifar import read_batch
from bench.data.digits import digits_tensors
from bench.data.dvs_frames import escapes
from bench.data.limits import ENV_VAR, machine_memory, memory_limit
from bench.runner import check_before_loading
from bench.suite import DataSpec, expand_cases, load_suite

GIB = 2**30


def write_batch(path, data: np.ndarray, labels: list[int]) -> None:
    """A CIFAR-10 style batch file (protocol 2, as the official Python-2 pickles)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({b"batch_label": b"t", b"data": data, b"labels": labels}, protocol=2))


@pytest.fixture
def limit_8gib(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "8")


def spec(dataset: str, root=None, **kw) -> DataSpec:
    return DataSpec(dataset=dataset, root=None if root is None else str(root), **kw)


# ---------------------------------------------------------------- the limit itself


def test_limit_is_half_the_machine_memory_unless_set(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    total, _ = machine_memory()
    limit, source = memory_limit()
    assert total is not None and limit == int(total * 0.5) and "half of" in source
    monkeypatch.setenv(ENV_VAR, "1.5")
    assert memory_limit() == (int(1.5 * GIB), f"{ENV_VAR}=1.5")


@pytest.mark.parametrize("value", ["lots", "0", "-2", "nan", "inf"])
def test_a_bad_limit_setting_is_refused_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv(ENV_VAR, value)
    with pytest.raises(DatasetError, match=f"{ENV_VAR}=.*not a positive number"):
        memory_limit()


def test_a_container_limit_below_the_ram_is_the_machine_memory(monkeypatch, tmp_path):
    v2, v1 = tmp_path / "memory.max", tmp_path / "limit_in_bytes"
    monkeypatch.setattr(limits_mod, "CGROUP_LIMIT_FILES", (str(v2), str(v1)))
    v2.write_text("max\n")  # cgroup v2 without a limit
    v1.write_text(f"{GIB}\n")
    assert machine_memory() == (GIB, "the container's cgroup memory limit")
    v1.write_text("9223372036854771712\n")  # cgroup v1 without a limit: the RAM counts
    total, source = machine_memory()
    assert source == "this machine's RAM" and total > GIB


# ---------------------------------------------------------------- estimates, checked against real tensors


def test_digits_estimate_equals_the_tensors_loaded():
    x, y = digits_tensors("test", 12)
    assert estimate_bytes(spec("digits", image_size=12)).resident_bytes == x.nbytes + y.nbytes
    x, y = digits_tensors("train", None)
    memory = estimate_bytes(spec("digits", split="train"))
    assert memory.resident_bytes == x.nbytes + y.nbytes and memory.sample_bytes == x[0].nbytes


def test_synthetic_estimate_equals_the_tensors_generated():
    s = spec("synthetic", image_size=10, max_samples=7, options={"in_channels": 2})
    bundle = load_data(s)
    images, labels = bundle.dataset.tensors
    assert estimate_bytes(s).resident_bytes == images.nbytes + labels.nbytes == bundle.memory.resident_bytes
    assert bundle.summary()["memory"]["sample_bytes"] == 2 * 10 * 10 * 4


def test_cifar_estimate_from_file_sizes_matches_the_loaded_images(tmp_path):
    write_batch(tmp_path / "cifar-10-batches-py" / "test_batch", np.zeros((5, 3072), np.uint8), [0, 1, 2, 3, 4])
    s = spec("cifar10", tmp_path, image_size=20)
    bundle = load_data(s)
    held = bundle.dataset.images.nbytes + bundle.dataset.labels.nbytes
    assert estimate_bytes(s).resident_bytes == held == bundle.memory.resident_bytes
    assert bundle.memory.sample_bytes == bundle.dataset[0][0].nbytes == 3 * 20 * 20 * 4


CIFAR_SUITE = """
[suite]
name = "cifarmem"
time_steps = [1]
metrics = ["params"]

[data]
dataset = "cifar10"
root = "{root}"
split = "train"
batch_size = 2
image_size = 16

[[models]]
name = "toy_models:tiny_snn"
label = "tiny"
"""


def test_cifar_holds_its_split_whole_whatever_the_image_size(tmp_path, write_suite, monkeypatch, capsys):
    """data.image_size resizes each served item: the images held are the split's 32-px ones, so the setting
    named when they do not fit is data.split (train: 5 batches, here of 2 images; test: 1 of 1), not
    data.image_size, which the runner, the dry run and the loader named before."""
    folder = tmp_path / "cifar-10-batches-py"
    for i in range(1, 6):
        write_batch(folder / f"data_batch_{i}", np.zeros((2, 3072), np.uint8), [0, 1])
    write_batch(folder / "test_batch", np.zeros((1, 3072), np.uint8), [0])
    held = {(split, size): estimate_bytes(spec("cifar10", tmp_path, split=split, image_size=size)).resident_bytes
            for split in ("train", "test") for size in (8, 64)}
    assert held == {("train", 8): 10 * (3072 + 8), ("train", 64): 10 * (3072 + 8),
                    ("test", 8): 3072 + 8, ("test", 64): 3072 + 8}
    suite = load_suite(write_suite(CIFAR_SUITE.format(root=tmp_path)))
    monkeypatch.setattr(devices, "machine_memory", lambda device: (10_000, "a 10,000-byte test machine"))
    problem = check_before_loading(suite, expand_cases(suite)[0])  # 30,800 bytes held > 10,000
    assert problem is not None and problem.field == "data.split" and "change data.split" in problem.fix
    monkeypatch.undo()
    monkeypatch.setenv(ENV_VAR, str(20_000 / GIB))  # 30,800 held over the limit; one 3x16x16 sample under it
    assert main(["run", str(suite.path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "change data.split so that less data is held" in err and "data.max_samples" not in err
    with pytest.raises(DatasetError, match=r'use the smaller test split \(data.split = "test"'):
        load_data(suite.data)


def test_the_dry_run_names_the_fallback_samples_when_the_stand_in_is_too_large(tmp_path, write_suite, monkeypatch,
                                                                                capsys):
    """A missing imagenet root falls back to 16 synthetic 3x16x16 images (49,280 bytes): the fix is their count."""
    text = CIFAR_SUITE.format(root=tmp_path / "nowhere").replace('"cifar10"', '"imagenet"').replace(
        'split = "train"', 'split = "val"\non_missing = "synthetic"\nfallback_samples = 16')
    monkeypatch.setenv(ENV_VAR, str(40_000 / GIB))
    assert main(["run", str(write_suite(text)), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "49,280 bytes" in err and "lower data.image_size or data.fallback_samples" in err


def test_frames_estimate_reads_only_the_header(tmp_path):
    folder = tmp_path / "test"
    folder.mkdir()
    np.save(folder / "a.npy", np.ones((3, 2, 8, 8), np.uint8))
    (folder / "labels.csv").write_text("file,label\na.npy,1\n")
    s = spec("dvs_frames", tmp_path, image_size=4)
    memory = estimate_bytes(s)
    assert memory.resident_bytes == 0 and memory.sample_bytes == load_data(s).dataset[0][0].nbytes == 3 * 2 * 4 * 4 * 4


def test_fallback_estimate_is_the_synthetic_stand_in(tmp_path):
    s = spec("cifar100", tmp_path / "nowhere", on_missing="synthetic", fallback_samples=3)
    images, labels = load_data(s).dataset.tensors
    assert estimate_bytes(s).resident_bytes == images.nbytes + labels.nbytes


# ---------------------------------------------------------------- refused before allocation


def test_digits_at_4096_px_is_refused_before_its_28_gib_allocation(limit_8gib):
    started = time.perf_counter()
    with pytest.raises(DatasetError) as info:
        load_data(spec("digits", image_size=4096))
    message = str(info.value)
    # 450 test images x 4096 x 4096 x 4 bytes + 450 x 8 label bytes = 30,198,992,400 bytes = 28.1 GiB
    assert "data.image_size = 4096" in message and "30,198,992,400 bytes" in message and "28.1 GiB" in message
    assert "8.0 GiB" in message and "Fix: lower data.image_size" in message
    assert time.perf_counter() - started < 5, "refused from the arithmetic, not after trying"
    assert estimate_bytes(spec("digits", image_size=4096)).resident_bytes == 30_198_992_400


def test_synthetic_input_too_large_is_refused(limit_8gib):
    with pytest.raises(DatasetError, match=r"data.image_size = 100000 .*Fix: lower data.image_size"):
        load_data(spec("synthetic", image_size=100_000, max_samples=4))


def test_imagenet_crop_or_resize_too_large_is_refused(limit_8gib, tmp_path):
    (tmp_path / "val" / "a").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"one sample of data.image_size = 100000"):
        load_data(spec("imagenet", tmp_path, split="val", image_size=100_000, options={"num_classes": 1}))
    with pytest.raises(DatasetError, match=r"data.options.resize = 10000000"):
        load_data(spec("imagenet", tmp_path, split="val", image_size=224,
                       options={"num_classes": 1, "resize": 10_000_000}))


def _npy_with_header(path, shape, descr="<f4", body=b"\0" * 64) -> None:
    """A .npy file whose header declares ``shape`` but whose body is only a few bytes."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
        f.write(body)


def test_npy_header_declaring_1e13_elements_is_refused_from_the_header(tmp_path, limit_8gib):
    folder = tmp_path / "test"
    folder.mkdir()
    _npy_with_header(folder / "huge.npy", (10**13 // (2 * 128 * 128), 2, 128, 128))
    (folder / "labels.csv").write_text("file,label\nhuge.npy,0\n")
    with pytest.raises(DatasetError) as info:
        load_data(spec("dvs_frames", tmp_path))
    message = str(info.value)
    assert "huge.npy" in message and "data memory limit of 8.0 GiB" in message and "Fix:" in message


def test_npz_member_declaring_1e13_elements_is_refused(tmp_path, limit_8gib):
    import zipfile

    folder = tmp_path / "test"
    folder.mkdir()
    _npy_with_header(tmp_path / "frames.npy", (10**13 // 4, 1, 2, 2))
    with zipfile.ZipFile(folder / "huge.npz", "w") as archive:
        archive.write(tmp_path / "frames.npy", "frames.npy")
    (folder / "labels.csv").write_text("file,label\nhuge.npz,0\n")
    with pytest.raises(DatasetError, match=r"huge.npz.*data memory limit"):
        load_data(spec("dvs_frames", tmp_path))


def test_a_later_sample_with_another_shape_is_refused_before_it_is_loaded(tmp_path):
    folder = tmp_path / "test"
    folder.mkdir()
    np.save(folder / "a.npy", np.zeros((2, 2, 4, 4), np.float32))
    _npy_with_header(folder / "b.npy", (2, 2, 4096, 4096))  # would need 256 MiB; its body is 64 bytes
    (folder / "labels.csv").write_text("file,label\na.npy,0\nb.npy,1\n")
    bundle = load_data(spec("dvs_frames", tmp_path))
    with pytest.raises(DatasetError, match=r"b.npy.*shape \(2, 2, 4096, 4096\).*first sample has \(2, 2, 4, 4\)"):
        bundle.dataset[1]


class _Reconstruct:
    """Pickles as numpy's own array constructor with a 10^13-element shape."""

    def __reduce__(self):
        return (np.ndarray.__reduce__(np.zeros(0, np.uint8))[0], (np.ndarray, (10**13,), b"b"))


class _NewArray:
    """Pickles as ``numpy.ndarray((10^13,), uint8)``."""

    def __reduce__(self):
        return (np.ndarray, ((10**13,), np.dtype("u1")))


@pytest.mark.parametrize("hostile", [_Reconstruct(), _NewArray()], ids=["_reconstruct", "ndarray"])
def test_cifar_pickle_declaring_1e13_elements_is_refused_before_allocation(tmp_path, hostile):
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps({b"data": hostile, b"labels": [0]}, protocol=2))
    with pytest.raises(DatasetError) as info:
        load_data(spec("cifar10", tmp_path))
    # our check, not a failed allocation: the declared size is compared with the file's before numpy runs
    assert f"declares an array of shape ({10**13},) ({10**13:,} bytes)" in str(info.value)
    assert str(path) in str(info.value) and "Fix: re-extract" in str(info.value)


def test_cifar_pickle_with_lying_sizes_fails_cleanly(tmp_path):
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.parent.mkdir(parents=True)
    # numpy's state tuple claims 10^13 / 3072 rows for 3 bytes of data
    path.write_bytes(pickle.dumps({b"data": _HugeState(), b"labels": [0]}, protocol=2))
    with pytest.raises(DatasetError, match=r"cannot read CIFAR batch .*test_batch"):
        load_data(spec("cifar10", tmp_path))
    # a byte string declaring 10^13 bytes (BINBYTES8) in a 20-byte file
    path.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 10**13) + b"abc")
    with pytest.raises(DatasetError, match=r"cannot read CIFAR batch .*test_batch"):
        load_data(spec("cifar10", tmp_path))


class _HugeState:
    """An empty array whose pickled state claims 10^13 / 3072 rows of 3072 bytes with 3 bytes of data."""

    def __reduce__(self):
        constructor, args, _ = np.zeros(0, np.uint8).__reduce__()
        return (constructor, args, (1, (10**13 // 3072, 3072), np.dtype("u1"), False, b"abc"))


def test_cifar_file_larger_than_the_limit_is_refused_before_reading(tmp_path, monkeypatch):
    write_batch(tmp_path / "cifar-10-batches-py" / "test_batch", np.zeros((400, 3072), np.uint8), [0] * 400)
    monkeypatch.setenv(ENV_VAR, str(1e6 / GIB))  # about 1 MB: below the 1.2 MB file
    with pytest.raises(DatasetError, match=r"cifar10 test split .*about 400 images.*1,232,000 bytes.*limit of 1.0 MiB"):
        load_data(spec("cifar10", tmp_path))
    with pytest.raises(DatasetError, match=r"CIFAR batch .*test_batch.* would take .*data memory limit"):
        read_batch(tmp_path / "cifar-10-batches-py" / "test_batch")  # each file is checked before it is read


# ---------------------------------------------------------------- hostile label files and frames


@pytest.fixture
def frames_folder(tmp_path):
    """root/test with a.npy (labelled 0) and a file outside the root that labels.csv must not reach."""
    root = tmp_path / "root"
    (root / "test").mkdir(parents=True)
    np.save(root / "test" / "a.npy", np.ones((2, 2, 4, 4), np.float32))
    np.save(tmp_path / "outside.npy", np.ones((2, 2, 4, 4), np.float32))
    return root


@pytest.mark.parametrize("entry", ["../../outside.npy", "{outside}", "sub/../../../outside.npy",
                                   "..\\..\\outside.npy", "C:\\data\\outside.npy", "C:outside.npy"])
def test_label_entries_outside_the_split_folder_are_refused(frames_folder, entry):
    entry = entry.format(outside=frames_folder.parent / "outside.npy")
    (frames_folder / "test" / "labels.csv").write_text(f"file,label\na.npy,0\n{entry},1\n")
    with pytest.raises(DatasetError) as info:
        load_data(spec("dvs_frames", frames_folder))
    message = str(info.value)
    assert "labels.csv' line 3" in message and "outside data.root" in message and "Fix: write the path relative" in message


def test_escape_rule_allows_plain_relative_paths():
    assert not any(escapes(p) for p in ("a.npy", "class3/s_0001.npy", "x..y.npy", "./a.npy"))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_the_first_sample_stops_the_run(frames_folder, bad):
    array = np.ones((2, 2, 4, 4), np.float32)
    array[1, 0, 2, 3] = bad
    np.save(frames_folder / "test" / "a.npy", array)
    (frames_folder / "test" / "labels.csv").write_text("file,label\na.npy,0\n")
    with pytest.raises(DatasetError, match=r"a.npy' holds 1 NaN or infinite value"):
        load_data(spec("dvs_frames", frames_folder))


def test_nan_in_a_later_sample_fails_when_it_is_read_naming_the_file(frames_folder):
    array = np.zeros((2, 2, 4, 4), np.float64)
    array[0, 0] = np.nan
    np.save(frames_folder / "test" / "b.npy", array.astype(np.float32))
    (frames_folder / "test" / "labels.csv").write_text("file,label\na.npy,0\nb.npy,1\n")
    bundle = load_data(spec("dvs_frames", frames_folder))
    assert torch.equal(bundle.dataset[0][0], torch.ones(2, 2, 4, 4))
    with pytest.raises(DatasetError, match=r"b.npy' holds 16 NaN or infinite value"):
        bundle.dataset[1]


def test_non_numeric_frames_and_broken_archives_name_the_file(frames_folder):
    folder = frames_folder / "test"
    np.save(folder / "a.npy", np.array([["x"] * 4] * 4))
    (folder / "labels.csv").write_text("file,label\na.npy,0\n")
    with pytest.raises(DatasetError, match=r"a.npy' holds <U1 values"):
        load_data(spec("dvs_frames", frames_folder))
    (folder / "a.npy").unlink()
    (folder / "b.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (folder / "labels.csv").write_text("file,label\nb.npz,0\n")
    with pytest.raises(DatasetError, match=r"cannot read frames .*b.npz"):
        load_data(spec("dvs_frames", frames_folder))


def test_big_endian_and_boolean_frames_load_as_their_values(frames_folder):
    folder = frames_folder / "test"
    values = np.arange(64, dtype=np.float32).reshape(2, 2, 4, 4)
    np.save(folder / "a.npy", values.astype(">f4"))
    np.save(folder / "b.npy", values > 30)
    (folder / "labels.csv").write_text("file,label\na.npy,0\nb.npy,1\n")
    bundle = load_data(spec("dvs_frames", frames_folder))
    assert torch.equal(bundle.dataset[0][0], torch.from_numpy(values))
    assert torch.equal(bundle.dataset[1][0], torch.from_numpy((values > 30).astype(np.float32)))
