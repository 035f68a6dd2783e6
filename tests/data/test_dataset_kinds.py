"""The dataset-kind registry (bench.data.DATASETS): every kind declares every field, its declaration agrees
with what it loads, and a kind registered without any other code edit reaches suite validation, the memory
checks before loading, the dry-run estimate and loading."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from bench.cli import main
from bench.data import (
    DATASETS,
    DataBundle,
    DatasetError,
    DatasetKind,
    DeclaredShape,
    MemoryEstimate,
    estimate_bytes,
    fallback_note,
    load_data,
)
from bench.estimate import evaluated_samples
from bench.runner import check_before_loading, sample_shape_before_loading
from bench.suite import DataSpec, SuiteError, declared_shape, expand_cases, load_suite

# ---------------------------------------------------------------- every registered kind


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_registered_kind_declares_every_field(name):
    kind = DATASETS[name]
    assert isinstance(kind, DatasetKind) and kind.name == name
    missing = [f.name for f in fields(kind) if getattr(kind, f.name) is None and f.name != "layout"]
    assert missing == [], f"{name} leaves {missing} undeclared"
    assert kind.needs_root == (kind.layout is not None)
    assert kind.layout is None or (isinstance(kind.layout, str) and kind.layout.startswith("<root>"))
    assert isinstance(kind.options, tuple) and all(isinstance(k, str) for k in kind.options)
    assert set(kind.integer_options) <= set(kind.options)
    assert all(1 <= low <= high for low, high in kind.integer_options.values())
    shape = [kind.shape.in_channels, kind.shape.image_size, kind.shape.num_classes]
    assert all(isinstance(v, int) and v >= 1 for v in shape), shape
    assert all(callable(f) for f in (kind.load, kind.estimate, kind.samples))
    assert isinstance(kind.labelled, bool) and isinstance(kind.shape_from_files, bool)
    setting = kind.memory_field.removeprefix("data.")
    assert kind.memory_field.startswith("data.") and setting in {f.name for f in fields(DataSpec)}


@pytest.mark.parametrize("name", [n for n, k in sorted(DATASETS.items()) if not k.needs_root])
def test_a_kind_without_a_root_loads_what_it_declares(name):
    spec = DataSpec(dataset=name, max_samples=5, image_size=12)
    kind, bundle = DATASETS[name], load_data(spec)
    assert (bundle.in_channels, bundle.image_size, bundle.num_classes) == (
        kind.shape.in_channels, 12, kind.shape.num_classes)
    assert tuple(bundle.dataset[0][0].shape) == sample_shape_before_loading(spec) == (kind.shape.in_channels, 12, 12)
    assert (len(bundle.dataset), bundle.labelled) == evaluated_samples(spec) == (5, kind.labelled)


@pytest.mark.parametrize("name", [n for n, k in sorted(DATASETS.items()) if k.needs_root])
def test_a_kind_with_a_root_falls_back_to_its_declared_shape(name, tmp_path):
    spec = DataSpec(dataset=name, root=str(tmp_path / "nowhere"), on_missing="synthetic", fallback_samples=3)
    shape, bundle = DATASETS[name].shape, load_data(spec)
    assert (bundle.in_channels, bundle.image_size, bundle.num_classes) == (
        shape.in_channels, shape.image_size, shape.num_classes)
    assert (len(bundle.dataset), bundle.labelled) == evaluated_samples(spec) == (3, False)
    assert bundle.fallback_note == fallback_note(spec)


@pytest.mark.parametrize("name", [n for n, k in sorted(DATASETS.items()) if k.needs_root and "num_classes" in k.options])
def test_the_fallback_keeps_the_suites_num_classes(name, tmp_path):
    """A suite declaring data.options.num_classes = 2 for a missing root runs a 2-class model on labels in
    {0, 1}: the fallback took the kind's default (1000 for imagenet) before."""
    spec = DataSpec(dataset=name, root=str(tmp_path / "nowhere"), on_missing="synthetic", fallback_samples=40,
                    options={"num_classes": 2})
    bundle = load_data(spec)
    labels = torch.stack([bundle.dataset[i][1] for i in range(len(bundle.dataset))])
    assert bundle.num_classes == declared_shape(spec).num_classes == 2
    assert set(labels.tolist()) == {0, 1}  # 40 uniform draws from 2 classes: both appear (p of not: 2**-39)


@pytest.mark.parametrize("name", [n for n, k in sorted(DATASETS.items()) if k.needs_root and "num_classes" in k.options])
def test_a_bad_num_classes_is_refused_before_a_fallback(name, write_suite, tmp_path):
    """The fallback reads data.options.num_classes without loading, so the suite checks it (exit 2)."""
    path = write_suite(TOY_SUITE.replace('"toy"', f'"{name}"').format(
        data=f'root = "{tmp_path / "nowhere"}"\non_missing = "synthetic"\noptions = {{ num_classes = 0 }}'))
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert info.value.field == "data.options.num_classes" and ">= 1" in info.value.fix


def test_a_kind_without_a_root_announces_no_fallback():
    """on_missing = "synthetic" only applies to a root; bundled digits are read as they are (the dry run
    printed a fallback note for them, which the run then did not use)."""
    spec = DataSpec(dataset="digits", on_missing="synthetic", max_samples=4)
    assert fallback_note(spec) is None and load_data(spec).fallback_note is None


# ---------------------------------------------------------------- a new kind, registered and nothing else


def _toy_estimate(spec, root: Path | None) -> MemoryEstimate:
    return MemoryEstimate(spec.options.get("levels", 2) * 2**60, 4 * 5 * 6 * 6, "toy: 2**60 bytes per level")


def _toy_load(spec, root: Path | None, seed: int) -> DataBundle:
    images = torch.zeros(30, 5, 6, 6)
    return DataBundle(TensorDataset(images, torch.arange(30) % 7), "toy", 7, 5, 6, memory=_toy_estimate(spec, root))


TOY = DatasetKind(
    name="toy", options=("gain", "levels"), integer_options={"levels": (2, 9)},
    shape=DeclaredShape(in_channels=5, image_size=6, num_classes=7), layout=None, load=_toy_load,
    estimate=_toy_estimate, samples=lambda spec: 30, labelled=True, shape_from_files=False,
    memory_field="data.options.levels",
)

TOY_SUITE = """
[suite]
name = "toykind"
time_steps = [1]
metrics = ["params"]

[data]
dataset = "toy"
batch_size = 2
{data}

[[models]]
name = "toy_models:tiny_snn"
label = "tiny"
"""


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> DatasetKind:
    monkeypatch.setitem(DATASETS, "toy", TOY)
    return TOY


def test_a_registered_kind_reaches_suite_validation(toy, write_suite):
    suite = load_suite(write_suite(TOY_SUITE.format(data="options = { gain = 1.5, levels = 3 }")))
    assert suite.data.options == {"gain": 1.5, "levels": 3}
    with pytest.raises(SuiteError) as info:
        load_suite(write_suite(TOY_SUITE.format(data="options = { gian = 1.5 }")))
    assert info.value.field == "data.options.gian" and "gain, levels" in info.value.fix
    with pytest.raises(SuiteError) as info:  # its integer option, checked against its declared range
        load_suite(write_suite(TOY_SUITE.format(data="options = { levels = 1 }")))
    assert info.value.field == "data.options.levels"


def test_a_registered_kind_reaches_the_estimate_and_the_memory_check(toy, write_suite, monkeypatch):
    suite = load_suite(write_suite(TOY_SUITE.format(data="options = { levels = 2 }")))
    assert declared_shape(suite.data) == DeclaredShape(in_channels=5, image_size=6, num_classes=7)
    assert sample_shape_before_loading(suite.data) == (5, 6, 6)
    assert evaluated_samples(suite.data) == (30, True)  # the dry-run estimate's accuracy batches
    problem = check_before_loading(suite, expand_cases(suite)[0])  # 2 x 2**60 bytes held: more than any RAM
    assert problem is not None and problem.field == "data.options.levels" and "in memory once loaded" in problem.problem
    monkeypatch.setitem(DATASETS, "toy", replace(toy, shape_from_files=True))
    assert sample_shape_before_loading(suite.data) is None  # checked once its files are read


def test_the_dry_run_refuses_a_registered_kind_that_cannot_fit(toy, write_suite, capsys):
    path = write_suite(TOY_SUITE.format(data="options = { levels = 2 }"))
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "data.options.levels" in err and "Traceback" not in err


def test_a_registered_kind_loads_and_falls_back_by_its_declaration(toy, monkeypatch, tmp_path):
    spec = DataSpec(dataset="toy", options={"levels": 2}, max_samples=4)
    bundle = load_data(spec)
    assert (bundle.name, len(bundle.dataset)) == ("toy", 4)  # data.max_samples applies to every kind
    assert estimate_bytes(spec).resident_bytes == 2 * 2**60
    monkeypatch.setitem(DATASETS, "toy", replace(toy, layout="<root>/toy.bin"))
    missing = replace(spec, root=str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="Expected layout: <root>/toy.bin"):
        load_data(missing)
    fallback = replace(missing, on_missing="synthetic", fallback_samples=3)
    bundle = load_data(fallback)
    assert (bundle.in_channels, bundle.image_size, bundle.num_classes, len(bundle.dataset)) == (5, 6, 7, 3)
    assert evaluated_samples(fallback) == (3, False) and "toy-shaped input (5x6x6, 3 samples)" in fallback_note(fallback)
