"""Training end to end: loss falls, checkpoints round-trip, runs resume, suites train before evaluating."""

from __future__ import annotations

import pytest
import torch
from rich.console import Console
from spikingjelly.activation_based import functional
from torch.utils.data import DataLoader
from toy_models import tiny_snn

import bench.train as train_pkg
from bench.checkpoints import load_into
from bench.cli import main
from bench.data import load_data
from bench.results import read_records
from bench.suite import DataSpec, ModelSpec
from bench.train import torch_threads, train_model
from bench.train.checkpointing import save_atomic
from bench.train.config import TrainConfig
from bench.train.loop import encode, make_optimizer, make_scheduler, train_epoch

CPU = torch.device("cpu")
QUIET = Console(quiet=True)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: many times faster than two on a small, busy CPU (see bench.train.torch_threads)."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def digits_train():
    return load_data(DataSpec(dataset="digits", split="train", max_samples=320))


def test_loss_falls_and_checkpoint_round_trips_to_identical_outputs(digits_train, tmp_path):
    torch.manual_seed(0)
    model = tiny_snn()
    cfg = TrainConfig(epochs=3, lr=0.01, T=2, batch_size=32)
    loader = DataLoader(digits_train.dataset, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, 3 * len(loader))
    losses = [train_epoch(model, loader, optimizer, scheduler, cfg, "bptt", "static", CPU).loss for _ in range(3)]
    assert losses[2] < losses[0] - 0.3, losses

    path = tmp_path / "tiny.pt"
    save_atomic({"model": model.state_dict(), "meta": {"trained_T": 2, "method": "bptt"}}, path)
    torch.manual_seed(1)
    fresh = tiny_snn()
    assert load_into(fresh, path)["trained_T"] == 2
    x = encode(digits_train.dataset[0][0].unsqueeze(0).repeat(4, 1, 1, 1), "static", 3)
    outputs = []
    for net in (model.eval(), fresh.eval()):
        functional.reset_net(net)
        with torch.no_grad():
            outputs.append(net(x))
    assert outputs[0].abs().sum() > 0 and torch.equal(outputs[0], outputs[1])


def test_resumed_training_matches_an_uninterrupted_run(digits_train, tmp_path, monkeypatch):
    spec = ModelSpec(name="toy_models:tiny_snn", label="tiny")
    cfg = TrainConfig(epochs=2, lr=0.01, T=2, batch_size=64)
    whole, whole_meta = train_model(spec, cfg, digits_train, tmp_path / "a", console=QUIET)

    real_epoch, calls = train_pkg.train_epoch, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train_pkg, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_model(spec, cfg, digits_train, tmp_path / "b", console=QUIET)
    last = tmp_path / "b" / "checkpoints" / "tiny.last.pt"
    assert last.is_file() and not (tmp_path / "b" / "checkpoints" / "tiny.pt").exists()
    monkeypatch.setattr(train_pkg, "train_epoch", real_epoch)
    resumed, resumed_meta = train_model(spec, cfg, digits_train, tmp_path / "b", console=QUIET)

    assert not last.exists(), "the final checkpoint supersedes the per-epoch one"
    assert [h["epoch"] for h in resumed_meta["history"]] == [1, 2]
    assert resumed_meta["history"] == [h | {"seconds": r["seconds"]} for h, r in
                                       zip(whole_meta["history"], resumed_meta["history"], strict=True)]
    a, b = torch.load(whole, weights_only=True)["model"], torch.load(resumed, weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


SUITE = """
[suite]
name = "trained"
seed = 0
time_steps = [1, 2, 4]
devices = ["cpu"]
metrics = ["accuracy"]

[data]
dataset = "digits"
max_samples = 60
batch_size = 30

[train]
epochs = 2
lr = 0.01
T = 2
batch_size = 64
max_samples = 320
num_threads = 1

[[models]]
name = "toy_models:tiny_snn"
label = "tiny"
"""


def test_suite_with_train_table_trains_then_evaluates(write_suite, tmp_path):
    out = tmp_path / "run"
    assert main(["run", str(write_suite(SUITE)), "--out", str(out), "-q"]) == 0
    checkpoint = out / "checkpoints" / "tiny.pt"
    assert checkpoint.is_file() and not (out / "checkpoints" / "tiny.last.pt").exists()
    records = read_records(out / "results.jsonl")
    assert [(r["T"], r["trained_T"]) for r in records] == [(1, 2), (2, 2), (4, 2)]
    for r in records:
        assert r["model"]["checkpoint"] == str(checkpoint) and r["model"]["untrained"] is False
    assert records[2]["metrics"]["accuracy"]["top1"] > 30.0, "a trained net, far above chance"

    stamp = checkpoint.stat().st_mtime_ns
    assert main(["train", str(write_suite(SUITE)), "--out", str(out), "-q"]) == 0
    assert checkpoint.stat().st_mtime_ns == stamp, "a matching finished checkpoint is reused, not retrained"
    changed = write_suite(SUITE.replace("epochs = 2", "epochs = 3"), "changed.toml")
    assert main(["train", str(changed), "--out", str(out), "-q"]) == 2, "another configuration is refused"


def test_a_selection_trains_only_the_selected_models(write_suite, tmp_path):
    text = SUITE + '\n[[models]]\nname = "toy_models:tiny_snn"\nlabel = "other"\n'
    out = tmp_path / "run"
    assert main(["run", str(write_suite(text)), "--out", str(out), "--models", "other", "--T", "2", "-q"]) == 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["other.pt"]
    assert [(r["model"]["label"], r["T"]) for r in read_records(out / "results.jsonl")] == [("other", 2)]


def test_models_with_a_checkpoint_are_not_trained(write_suite, tmp_path):
    text = SUITE + '\n[[models]]\nname = "toy_models:tiny_snn"\nlabel = "given"\ncheckpoint = "given.pt"\n'
    path = write_suite(text)
    torch.save(tiny_snn().state_dict(), path.parent / "given.pt")
    assert main(["train", str(path), "--out", str(tmp_path / "run"), "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["tiny.pt"]


def test_train_needs_a_train_table_and_labelled_data(write_suite, tmp_path, tiny_suite_text):
    assert main(["train", str(write_suite(tiny_suite_text)), "--out", str(tmp_path / "x"), "-q"]) == 2
    synthetic = SUITE.replace('dataset = "digits"', 'dataset = "synthetic"')
    assert main(["train", str(write_suite(synthetic, "syn.toml")), "--out", str(tmp_path / "y"), "-q"]) == 0
    assert not (tmp_path / "y" / "checkpoints").exists(), "random labels: nothing is trained"
