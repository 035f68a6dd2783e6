"""Checkpoint loading: trainer files load without options; wrong keys fail listing both key sets."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from bench.checkpoints import CheckpointError, load_into
from bench.train.checkpointing import checkpoint_name, checkpoint_paths, save_atomic


def net(hidden: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, hidden), nn.BatchNorm1d(hidden), nn.Linear(hidden, 2))


def test_trainer_checkpoint_loads_without_options_and_returns_meta(tmp_path):
    source = net()
    meta = {"trained_T": 4, "model": "toy", "kwargs": {"width": 0.5, "neuron_params": {"tau": 2.0}},
            "epoch": 3, "method": "bptt", "history": [{"epoch": 1, "loss": 1.5}]}
    path = tmp_path / "checkpoints" / "toy.pt"
    save_atomic({"model": source.state_dict(), "meta": meta}, path)
    target = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    assert load_into(target, path) == meta
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    assert not path.with_name("toy.pt.tmp").exists(), "the temporary file is renamed away"


def test_wrong_keys_fail_listing_missing_and_unexpected(tmp_path):
    path = tmp_path / "other.pt"
    state = net().state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["2.bias"]
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError) as info:
        load_into(net(), path)
    message = str(info.value)
    assert "missing keys (1): 2.bias" in message
    assert "unexpected keys (1): extra.weight" in message
    assert "Fix:" in message


def test_shape_mismatch_is_listed(tmp_path):
    path = tmp_path / "wide.pt"
    torch.save(net(hidden=5).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"0.weight: checkpoint \(5, 4\) vs model \(3, 4\)"):
        load_into(net(hidden=3), path)


def test_wrapper_prefix_is_stripped(tmp_path):
    path = tmp_path / "ddp.pt"
    torch.save({"net": {f"module.{k}": v for k, v in net().state_dict().items()}}, path)
    assert load_into(net(), path) == {}


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "module.pt"
    torch.save({"model": net()}, path)  # a whole module, not a state dict
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_into(net(), path)


def test_checkpoint_names_are_file_safe_and_distinct(tmp_path):
    assert checkpoint_name("plain-label_1") == "plain-label_1"
    a, b = checkpoint_name("Net (w=1/8)"), checkpoint_name("Net (w=1:8)")
    assert a.startswith("Net_w_1_8") and a != b and "/" not in a
    final, last = checkpoint_paths(tmp_path, "x")
    assert (final.name, last.name, final.parent.name) == ("x.pt", "x.last.pt", "checkpoints")


@pytest.mark.parametrize("content", [b"", b"this is a text file, not a checkpoint\n", b"PK\x03\x04garbage"])
def test_truncated_or_foreign_files_fail_naming_the_file(tmp_path, content):
    good = tmp_path / "good.pt"
    torch.save(net().state_dict(), good)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content or good.read_bytes()[: len(good.read_bytes()) // 2])  # empty -> half a real file
    with pytest.raises(CheckpointError, match="bad.pt") as info:
        load_into(net(), bad)
    assert "truncated or not a PyTorch checkpoint" in str(info.value)


def test_a_tensor_that_is_not_a_state_dict_is_refused(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(CheckpointError, match="not a state dict"):
        load_into(net(), path)
