"""What the loader refuses, and how: wrong depth, width or family, unknown formats, forced formats that do
not fit, foreign objects; and what it tolerates on purpose (thop counters, absent num_batches_tracked)."""

from __future__ import annotations

import argparse

import official_keys as ok
import pytest
import torch
import torch.nn as nn
from ckpt_helpers import random_state

from bench.checkpoints import CheckpointError, load_checkpoint
from bench.models import create_model


def sew18() -> nn.Module:
    return create_model("sew_resnet18", num_classes=10, width=1 / 16)


def save(tmp_path, obj, name: str = "ckpt.pth"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


def test_wrong_depth_names_both_architectures_and_their_shapes(tmp_path):
    path = save(tmp_path, {"model": random_state(ok.sew_official(34, 4, 10))})
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(sew18(), path)
    message = str(info.value)
    assert "ckpt.pth" in message and "sew-official" in message and "detected from its keys" in message
    assert "unexpected keys (96): layer1.2.conv1.module.0.weight" in message  # 8 more basic blocks, 12 each
    assert ("checkpoint: SEW ResNet layout (spiking downsample), blocks per stage 3-4-6-3 (basic, depth 34), "
            "stem conv (4, 3, 7, 7), classifier (10, 32)") in message
    assert "model expects: SEW ResNet layout (spiking downsample), blocks per stage 2-2-2-2 (basic, depth 18)" in message
    assert "Fix:" in message


def test_bottleneck_checkpoint_into_a_basic_model_lists_shape_conflicts(tmp_path):
    path = save(tmp_path, random_state(ok.sew_official(50, 4, 10)))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(sew18(), path)
    message = str(info.value)
    assert "layer1.0.conv1.module.0.weight: checkpoint (4, 4, 1, 1) vs model (4, 4, 3, 3)" in message
    assert "(bottleneck, depth 50)" in message and "(basic, depth 18)" in message


def test_wrong_width_lists_the_expected_and_found_shapes(tmp_path):
    path = save(tmp_path, random_state(ok.sew_official(18, 8, 10)))  # width 1/8, model 1/16
    with pytest.raises(CheckpointError, match=r"conv1\.weight: checkpoint \(8, 3, 7, 7\) vs model \(4, 3, 7, 7\)"):
        load_checkpoint(sew18(), path)


def test_unknown_format_names_the_formats_tried_and_the_foreign_keys(tmp_path):
    path = save(tmp_path, {"features.0.weight": torch.zeros(4, 3, 3, 3), "classifier.weight": torch.zeros(10, 4)})
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(sew18(), path)
    message = str(info.value)
    assert "is in no format known for the model" in message
    assert ("tried: snnbench, sew-official, spikingjelly-zoo, ms-resnet-official, spikeformer-official, "
            "dsr-official") in message
    assert "features.0.weight (4, 3, 3, 3), classifier.weight (10, 4)" in message
    assert 'checkpoint_format = "<name>"' in message


def test_another_familys_official_checkpoint_is_refused_naming_both(tmp_path):
    path = save(tmp_path, {f"module.{k}": v for k, v in random_state(ok.ms_resnet_official(18, 4, 10)).items()})
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(sew18(), path, model_name="sew_resnet18")
    message = str(info.value)
    assert "format ms-resnet-official" in message and "holds ms_resnet18/34/104 models" in message
    assert "the model 'sew_resnet18' is not one of them" in message


def test_sew_layout_into_a_spiking_resnet_shows_the_layouts(tmp_path):
    path = save(tmp_path, random_state(ok.sew_official(18, 4, 10, sew=True)))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(create_model("spiking_resnet18", num_classes=10, width=1 / 16), path)
    message = str(info.value)
    assert "missing keys (15): layer2.0.downsample.module.0.weight" in message
    assert "checkpoint: SEW ResNet layout" in message and "model expects: Spiking ResNet layout" in message


def test_a_forced_format_that_does_not_fit_says_it_was_forced(tmp_path):
    path = save(tmp_path, random_state(ok.sew_official(18, 4, 10)))
    with pytest.raises(CheckpointError, match="spikingjelly-zoo .*set by checkpoint_format") as info:
        load_checkpoint(sew18(), path, checkpoint_format="spikingjelly-zoo")
    assert "missing keys (62): conv1.weight" not in str(info.value)  # conv1/bn1/fc share the names
    assert "layer1.0.conv1.weight" in str(info.value)
    with pytest.raises(CheckpointError, match="unknown checkpoint format 'sew'; known: snnbench, sew-official"):
        load_checkpoint(sew18(), path, checkpoint_format="sew")


def test_thop_counters_are_dropped_and_absent_batch_counters_filled(tmp_path):
    state = random_state(ok.sew_official(18, 4, 10))
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}  # older PyTorch
    state |= {"conv1.total_ops": torch.zeros(1, dtype=torch.float64), "conv1.total_params": torch.zeros(1),
              "fc.total_ops": torch.zeros(1, dtype=torch.float64)}
    loaded = load_checkpoint(sew18(), save(tmp_path, state))
    mapping = loaded.mapping()
    assert mapping["dropped"] == [
        {"keys": 2, "what": "thop profiler counters (*.total_ops)", "examples": ["conv1.total_ops", "fc.total_ops"],
         "why": "added by thop.profile, not model weights"},
        {"keys": 1, "what": "thop profiler counters (*.total_params)", "examples": ["conv1.total_params"],
         "why": "added by thop.profile, not model weights"}]
    assert mapping["filled"][0]["keys"] == 20 and mapping["filled"][0]["examples"][0] == "stem.body.1.num_batches_tracked"
    assert loaded.tensors == 122


def test_only_argparse_namespace_is_allowed_besides_tensors(tmp_path):
    path = save(tmp_path, {"model": sew18().state_dict(), "args": argparse.Namespace(T=2),
                           "scaler": torch.nn.Identity()})  # a module object: code to run on unpickling
    with pytest.raises(CheckpointError, match="only loaded with weights_only=True"):
        load_checkpoint(sew18(), path)


def test_our_own_format_is_detected_and_recorded(tmp_path):
    model = sew18()
    loaded = load_checkpoint(sew18(), save(tmp_path, {"model": model.state_dict(), "meta": {"trained_T": 2}}))
    assert (loaded.format, loaded.renamed, loaded.meta) == ("snnbench", 0, {"trained_T": 2})
