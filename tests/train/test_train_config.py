"""The [train] table: defaults, per-model overrides, and file/field/fix errors."""

from __future__ import annotations

import pytest

from bench.suite import SuiteError, load_suite
from bench.train.config import TrainConfig, parse_train, train_plan

LABELS = ("net-a", "net-b")


def test_defaults_take_seed_and_workers_from_the_suite():
    plan = parse_train({}, "s.toml", LABELS, seed=7, num_workers=3)
    assert plan.default == TrainConfig(seed=7, num_workers=3)
    assert plan.for_model("net-a") is plan.default


def test_values_and_per_model_overrides():
    raw = {"epochs": 3, "optimizer": "sgd", "lr": 0.1, "T": 2, "label_smoothing": 0.1,
           "models": {"net-b": {"lr": 0.01, "epochs": 5, "method": "dsr"}}}
    plan = parse_train(raw, "s.toml", LABELS)
    assert (plan.default.epochs, plan.default.optimizer, plan.default.lr, plan.default.T) == (3, "sgd", 0.1, 2)
    b = plan.for_model("net-b")
    assert (b.epochs, b.lr, b.method, b.optimizer, b.T, b.label_smoothing) == (5, 0.01, "dsr", "sgd", 2, 0.1)
    assert plan.for_model("net-a") == plan.default


@pytest.mark.parametrize("raw, field, fix", [
    ({"epoch": 3}, "train.epoch", "did you mean 'epochs'?"),
    ({"optimizer": "rmsprop"}, "train.optimizer", "use one of sgd, adam, adamw"),
    ({"lr": 0}, "train.lr", "use a number > 0.0"),
    ({"lr": "fast"}, "train.lr", "write a number"),
    ({"T": 0}, "train.T", "use an integer >= 1"),
    ({"method": "ann"}, "train.method", "use one of auto, bptt, dsr"),
    ({"device": "tpu"}, "train.device", '"cpu" or "cuda:N"'),
    ({"models": {"net-bb": {"lr": 1.0}}}, "train.models.'net-bb'", "did you mean 'net-b'?"),
    ({"models": {"net-a": {"split": "val"}}}, "train.models.'net-a'.split", "set split in [train] instead"),
    ({"models": {"net-a": {"lr": True}}}, "train.models.'net-a'.lr", "write a number"),
])
def test_errors_name_the_field_and_the_fix(raw, field, fix):
    with pytest.raises(SuiteError) as info:
        parse_train(raw, "suite.toml", LABELS)
    assert info.value.field == field and fix in info.value.fix and info.value.file == "suite.toml"


def test_a_suite_file_with_train_validates(write_suite, tiny_suite_text):
    path = write_suite(tiny_suite_text + "\n[train]\nepochs = 2\nlr = 0.5\n[train.models.tiny]\nT = 3\n")
    plan = train_plan(load_suite(path))
    assert (plan.default.epochs, plan.default.lr, plan.for_model("tiny").T) == (2, 0.5, 3)
    with pytest.raises(SuiteError, match="no \\[train\\] table"):
        train_plan(load_suite(write_suite(tiny_suite_text, "plain.toml")))
