"""spikingjelly 2.0's own zoo models are the official ``spikingjelly-zoo`` format: their state dicts load into
ours with the same outputs, and our exports load into them (strictly) with the same outputs."""

from __future__ import annotations

import argparse

import pytest
import torch
import torch.nn as nn
from ckpt_helpers import forward, random_state
from spikingjelly.activation_based import functional, neuron, surrogate
from spikingjelly.activation_based.model import sew_resnet as sj_sew
from spikingjelly.activation_based.model import spiking_resnet as sj_spiking

from bench.checkpoints import CheckpointError, export_state, load_checkpoint
from bench.models import create_model

NEURON = {"surrogate_function": surrogate.ATan(), "detach_reset": True}
ZOO = {
    # name: (zoo model, our model) at full width (the zoo fixes 64 channels), 10 classes
    "sew18-plif": (lambda: sj_sew.sew_resnet18(spiking_neuron=neuron.ParametricLIFNode, cnf="ADD", num_classes=10,
                                               **NEURON),
                   lambda: create_model("sew_resnet18", num_classes=10, neuron="plif")),
    "spiking50": (lambda: sj_spiking.spiking_resnet50(spiking_neuron=neuron.IFNode, num_classes=10, **NEURON),
                  lambda: create_model("spiking_resnet50", num_classes=10)),
}


def zoo_model(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(0)
    zoo = ZOO[name][0]()
    functional.set_step_mode(zoo, "m")
    zoo.load_state_dict(random_state([(k, tuple(v.shape)) for k, v in zoo.state_dict().items()], seed))
    return zoo


def image() -> torch.Tensor:
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)).unsqueeze(0).repeat(2, 1, 1, 1, 1)


@pytest.mark.parametrize("name", ZOO)
def test_zoo_state_dict_loads_with_the_zoo_models_outputs(name, tmp_path):
    zoo = zoo_model(name)
    path = tmp_path / "zoo.pt"
    torch.save(zoo.state_dict(), path)
    ours = ZOO[name][1]()
    loaded = load_checkpoint(ours, path)
    assert (loaded.format, loaded.tensors) == ("spikingjelly-zoo", len(zoo.state_dict()))
    expected = forward(zoo, image())
    assert expected.abs().sum() > 0
    assert torch.allclose(forward(ours, image()), expected, atol=1e-5)


@pytest.mark.parametrize("name", ZOO)
def test_our_export_loads_strictly_into_the_zoo_model(name):
    ours = ZOO[name][1]()
    ours.load_state_dict(random_state([(k, tuple(v.shape)) for k, v in ours.state_dict().items()], seed=5))
    zoo = zoo_model(name, seed=9)  # other weights, all replaced by the export
    zoo.load_state_dict(export_state(ours, "spikingjelly-zoo"), strict=True)
    assert torch.allclose(forward(zoo, image()), forward(ours, image()), atol=1e-5)


def test_saved_arguments_must_name_the_models_family(tmp_path):
    # The zoo's SEW and Spiking ResNet-18 name their tensors alike; only saved arguments tell them apart.
    state = zoo_model("sew18-plif").state_dict()
    path = tmp_path / "a.pth"
    torch.save({"model": state, "args": argparse.Namespace(model="spiking_resnet18", T=4)}, path)
    with pytest.raises(CheckpointError, match=r"model='spiking_resnet18' but the model is a SEW ResNet"):
        load_checkpoint(create_model("sew_resnet18", num_classes=10, neuron="plif"), path)
    torch.save({"model": state, "args": argparse.Namespace(model="sew_resnet18", cnf="AND")}, path)
    with pytest.raises(CheckpointError, match=r'connect_f=.AND. but the model has cnf=.ADD.*cnf = "AND"'):
        load_checkpoint(create_model("sew_resnet18", num_classes=10, neuron="plif"), path)
