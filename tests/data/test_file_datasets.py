"""File-based datasets built as tiny fakes in tmp_path: ImageFolder, CIFAR pickles, DVS frame files."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from bench.data import DatasetError, evenly_spaced, load_data
from bench.data.imagenet import IMAGENET_MEAN, IMAGENET_STD
from bench.runner import make_batches, sample_shape_before_loading
from bench.suite import DataSpec


def spec(dataset: str, root, **kw) -> DataSpec:
    return DataSpec(dataset=dataset, root=str(root), **kw)


# ---------------------------------------------------------------- ImageFolder (ImageNet layout)


@pytest.fixture
def image_folder(tmp_path):
    """val/a: two images, val/b: one image; sizes and modes differ (RGB, grey, RGBA)."""
    root = tmp_path / "imagenet"
    (root / "val" / "a").mkdir(parents=True)
    (root / "val" / "b" / "nested").mkdir(parents=True)
    Image.new("RGB", (40, 30), (255, 0, 51)).save(root / "val" / "a" / "x1.png")
    Image.new("L", (30, 50), 102).save(root / "val" / "a" / "x2.PNG")
    Image.new("RGBA", (20, 20), (0, 255, 0, 255)).save(root / "val" / "b" / "nested" / "y.png")
    (root / "val" / "b" / "notes.txt").write_text("not an image")
    return root


def test_image_folder_labels_shapes_and_normalised_values(image_folder):
    bundle = load_data(spec("imagenet", image_folder, split="val", image_size=16, options={"num_classes": 2}))
    assert (bundle.num_classes, bundle.in_channels, bundle.image_size, bundle.kind) == (2, 3, 16, "static")
    items = [bundle.dataset[i] for i in range(len(bundle.dataset))]
    assert [y for _, y in items] == [0, 0, 1], "sorted class folders give labels; the .txt file is skipped"
    assert all(x.shape == (3, 16, 16) for x, _ in items)
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    # constant images stay constant through resize and crop: value = (pixel/255 - mean) / std
    expected_red = (torch.tensor([255, 0, 51]) / 255.0 - mean) / std
    assert torch.allclose(items[0][0], expected_red.view(3, 1, 1).expand(3, 16, 16), atol=1e-6)
    expected_grey = (torch.full((3,), 102 / 255.0) - mean) / std
    assert torch.allclose(items[1][0], expected_grey.view(3, 1, 1).expand(3, 16, 16), atol=1e-6)


def test_image_resize_and_crop_geometry(tmp_path):
    root = tmp_path / "r"
    (root / "val" / "c").mkdir(parents=True)
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (37, 61, 3), dtype=np.uint8))  # 61 wide, 37 high
    image.save(root / "val" / "c" / "z.png")
    ours = load_data(spec("imagenet", root, split="val", image_size=24, options={"num_classes": 1})).dataset[0][0]
    # Worked out by hand: resize = round(24 * 256 / 224) = 27; shorter side 37 -> 27, longer
    # int(27 * 61 / 37) = 44; centre crop 24: left round(20 / 2) = 10, top round(3 / 2) = 2.
    crop = image.resize((44, 27), Image.BILINEAR).crop((10, 2, 34, 26))
    pixels = torch.from_numpy(np.asarray(crop, dtype=np.float32)).permute(2, 0, 1) / 255.0
    expected = (pixels - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
    assert ours.shape == (3, 24, 24)
    assert torch.allclose(ours, expected, atol=1e-6)


def test_corrupt_image_names_the_file(image_folder):
    bad = image_folder / "val" / "b" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a PNG body")
    bundle = load_data(spec("imagenet", image_folder, split="val", image_size=16, options={"num_classes": 2}))
    index = [str(p) for p, _ in bundle.dataset.samples].index(str(bad))
    with pytest.raises(DatasetError, match="broken.png"):
        bundle.dataset[index]


def test_class_count_must_match_the_declared_classes(image_folder):
    with pytest.raises(DatasetError, match=r"2 class folders .* 1000 classes.*num_classes = 2"):
        load_data(spec("imagenet", image_folder, split="val"))


def test_missing_split_folder_shows_the_layout(image_folder):
    with pytest.raises(DatasetError, match=r"train.*does not exist.*<root>/<split>/<class>/<image>"):
        load_data(spec("imagenet", image_folder, split="train", options={"num_classes": 2}))


@pytest.mark.parametrize("dataset", ["imagenet", "cifar10", "cifar100", "dvs_frames"])
def test_missing_root_names_path_and_layout(tmp_path, dataset):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError) as info:
        load_data(spec(dataset, missing))
    message = str(info.value)
    assert str(missing) in message and "Expected layout: <root>/" in message and "on_missing" in message


def test_missing_root_uses_declared_synthetic_fallback(tmp_path):
    bundle = load_data(spec("cifar100", tmp_path / "nowhere", on_missing="synthetic", max_samples=6))
    assert not bundle.labelled and "does not exist" in bundle.fallback_note
    assert (bundle.num_classes, bundle.in_channels, bundle.image_size, len(bundle.dataset)) == (100, 3, 32, 6)




def test_max_samples_keeps_an_evenly_spaced_subset(image_folder):
    assert evenly_spaced(10, 4) == [1, 3, 6, 8] and evenly_spaced(3, 5) == [0, 1, 2]
    bundle = load_data(spec("imagenet", image_folder, split="val", image_size=8, max_samples=2,
                            options={"num_classes": 2}))
    assert [bundle.dataset[i][1] for i in range(2)] == [0, 1], "both classes survive the cap"


def test_loader_workers_give_the_same_batches(image_folder):
    bundle = load_data(spec("imagenet", image_folder, split="val", image_size=8, options={"num_classes": 2}))
    serial = list(make_batches(bundle, 2, torch.device("cpu"), 0)(1))
    parallel = list(make_batches(bundle, 2, torch.device("cpu"), 2)(1))
    assert len(serial) == len(parallel) == 2
    for (xs, ys), (xp, yp) in zip(serial, parallel, strict=True):
        assert torch.equal(xs, xp) and torch.equal(ys, yp)


def test_unknown_option_is_refused(image_folder):
    with pytest.raises(DatasetError, match="data.options.num_clases"):
        load_data(spec("imagenet", image_folder, split="val", options={"num_clases": 2}))


# ---------------------------------------------------------------- CIFAR pickles


def write_batch(path, data: np.ndarray, labels: list[int], key: bytes = b"labels") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"testing batch 1 of 1", b"data": data, key: labels}, f, protocol=2)


def test_cifar10_test_batch_pixels_and_labels(tmp_path):
    data = np.random.default_rng(1).integers(0, 256, (3, 3072), dtype=np.uint8)
    write_batch(tmp_path / "cifar-10-batches-py" / "test_batch", data, [3, 0, 9])
    bundle = load_data(spec("cifar10", tmp_path, options={"normalize": False}))
    assert (len(bundle.dataset), bundle.num_classes, bundle.image_size) == (3, 10, 32)
    x, y = bundle.dataset[2]
    assert int(y) == 9 and x.shape == (3, 32, 32)
    # the row layout is 1024 red, then green, then blue values, each row-major 32x32
    c, i, j = 1, 5, 7
    assert x[c, i, j].item() == pytest.approx(data[2, c * 1024 + i * 32 + j] / 255.0)
    normed = load_data(spec("cifar10", tmp_path / "cifar-10-batches-py", options={"mean": [0.5, 0.5, 0.5],
                                                                                     "std": [0.25, 0.25, 0.25]}))
    assert normed.dataset[2][0][c, i, j].item() == pytest.approx((data[2, c * 1024 + i * 32 + j] / 255.0 - 0.5) / 0.25)


def test_cifar100_uses_fine_labels_and_checks_their_range(tmp_path):
    data = np.zeros((2, 3072), dtype=np.uint8)
    write_batch(tmp_path / "cifar-100-python" / "test", data, [99, 5], key=b"fine_labels")
    bundle = load_data(spec("cifar100", tmp_path, split="val"))
    assert bundle.num_classes == 100 and [int(bundle.dataset[i][1]) for i in range(2)] == [99, 5]
    write_batch(tmp_path / "c10" / "cifar-10-batches-py" / "test_batch", data, [10, 1])
    with pytest.raises(DatasetError, match=r"label 10 at index 0 is outside 0..9"):
        load_data(spec("cifar10", tmp_path / "c10"))


def test_cifar_label_count_must_match_images(tmp_path):
    write_batch(tmp_path / "cifar-10-batches-py" / "test_batch", np.zeros((3, 3072), np.uint8), [1, 2])
    with pytest.raises(DatasetError, match="3 images but 2 labels"):
        load_data(spec("cifar10", tmp_path))


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar_pickle_with_code_is_refused_not_run(tmp_path):
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps({b"data": _Exploit(), b"labels": []}, protocol=2))
    with pytest.raises(DatasetError, match=r"(posix|os)\.system is not allowed"):
        load_data(spec("cifar10", tmp_path))


def test_cifar_train_split_needs_all_five_batches(tmp_path):
    write_batch(tmp_path / "cifar-10-batches-py" / "data_batch_1", np.zeros((1, 3072), np.uint8), [0])
    with pytest.raises(DatasetError, match="data_batch_2.*does not exist"):
        load_data(spec("cifar10", tmp_path, split="train"))


# ---------------------------------------------------------------- DVS frames


@pytest.fixture
def frames_root(tmp_path):
    """test/: three samples of [T=5, 2, 6, 6] (two .npy, one .npz), labels 2, 0, 1."""
    folder = tmp_path / "dvs" / "test"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(2)
    arrays = [rng.integers(0, 4, (5, 2, 6, 6)).astype(np.float32) for _ in range(3)]
    np.save(folder / "a.npy", arrays[0])
    np.save(folder / "sub" / "b.npy", arrays[1])
    np.savez(folder / "c.npz", frames=arrays[2])
    (folder / "labels.csv").write_text("file,label\na.npy,2\nsub/b.npy,0\nc.npz,1\n")
    return tmp_path / "dvs", arrays


def test_frames_are_read_and_the_runner_cuts_them_to_T(frames_root):
    root, arrays = frames_root
    bundle = load_data(spec("dvs_frames", root, options={"num_classes": 3}))
    assert (bundle.kind, bundle.in_channels, bundle.image_size, bundle.num_classes) == ("frames", 2, 6, 3)
    x, y = bundle.dataset[2]
    assert y == 1 and torch.equal(x, torch.from_numpy(arrays[2]))
    (inputs, labels), = list(make_batches(bundle, 3, torch.device("cpu"))(4))
    assert inputs.shape == (4, 3, 2, 6, 6) and labels.tolist() == [2, 0, 1]
    assert torch.equal(inputs[:, 1], torch.from_numpy(arrays[1][:4])), "first T frames, time-major"
    with pytest.raises(ValueError, match="5 frames per sample; T=6"):
        next(make_batches(bundle, 3, torch.device("cpu"))(6))


def test_frames_shape_comes_from_the_files_unless_the_fallback_is_used(frames_root, tmp_path):
    """on_missing = "synthetic" with a root that exists reads the 2x6x6 frames: the memory check waits for
    them (the declared 2x128x128 was checked instead, and the real frames never were); only a missing root
    uses the declared shape, which is then the fallback's."""
    root, _ = frames_root
    present = spec("dvs_frames", root, on_missing="synthetic", options={"num_classes": 3})
    assert sample_shape_before_loading(present) is None
    assert tuple(load_data(present).dataset[0][0].shape[-3:]) == (2, 6, 6)
    missing = spec("dvs_frames", tmp_path / "nowhere", on_missing="synthetic", fallback_samples=2)
    assert sample_shape_before_loading(missing) == (2, 128, 128) == tuple(load_data(missing).dataset[0][0].shape)
    assert sample_shape_before_loading(spec("dvs_frames", tmp_path / "nowhere")) is None  # the load refuses it


def test_frames_resize_to_image_size(frames_root):
    root, _ = frames_root
    bundle = load_data(spec("dvs_frames", root, image_size=3, options={"num_classes": 3}))
    assert bundle.image_size == 3 and bundle.dataset[0][0].shape == (5, 2, 3, 3)


@pytest.mark.parametrize("text, match", [
    ("file,label\na.npy,2\nsub/b.npy,0\n", r"1 frame file\(s\) .* not in labels.csv .*c.npz"),
    ("file,label\na.npy,2\nsub/b.npy,0\nc.npz,1\nd.npy,1\n", r"line 5: file .*d.npy.* does not exist"),
    ("file,label\na.npy,2\nsub/b.npy,0\nc.npz,3\n", r"label 3 at index 2 is outside 0..2"),
    ("file,label\na.npy,2\na.npy,0\nsub/b.npy,0\nc.npz,1\n", "listed twice"),
    ("name,class\na.npy,2\n", "header 'file,label'"),
    ("file,label\na.npy,two\n", "'two' is not an integer"),
])
def test_label_file_problems_fail_clearly(frames_root, text, match):
    root, _ = frames_root
    (root / "test" / "labels.csv").write_text(text)
    with pytest.raises(DatasetError, match=match):
        load_data(spec("dvs_frames", root, options={"num_classes": 3}))


def test_frame_shape_mismatch_names_the_file(frames_root):
    root, _ = frames_root
    np.save(root / "test" / "sub" / "b.npy", np.zeros((4, 2, 6, 6), np.float32))
    bundle = load_data(spec("dvs_frames", root, options={"num_classes": 3}))
    with pytest.raises(DatasetError, match=r"b.npy.*shape \(4, 2, 6, 6\)"):
        bundle.dataset[1]
