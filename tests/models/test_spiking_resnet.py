"""Plain Spiking ResNet: parameter counts, shapes, reset, and binary conv inputs (neuron after the add)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, neuron

from bench.models import create_model, list_models, model_info
from bench.models.neurons import neuron_factory
from bench.models.resnet_parts import LIF_025_PARAMS
from bench.models.spiking_resnet import SpikingBlock, spiking_resnet

NAMES = [f"spiking_resnet{d}" for d in (18, 34, 50, 101, 152)]



def tiny(name: str, **kwargs) -> nn.Module:
    return create_model(name, num_classes=5, input_size="cifar", width=1 / 16, **kwargs)



def test_registered_names():
    assert list_models("spiking_resnet*") == sorted(NAMES)
    info = model_info("spiking_resnet18")
    assert info.non_spiking == ("analog first conv (direct encoding)",)
    assert info.causal_over_T


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_param_count_equals_torchvision(depth):
    tvm = pytest.importorskip("torchvision.models")
    with torch.device("meta"):  # shapes only: skips the random init of ~60M weights
        expected = sum(p.numel() for p in getattr(tvm, f"resnet{depth}")().parameters())
        got = sum(p.numel() for p in create_model(f"spiking_resnet{depth}").parameters())
    assert got == expected


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_shape(name):
    torch.manual_seed(0)
    model = tiny(name)
    out = model(torch.rand(2, 2, 3, 32, 32))
    assert out.shape == (2, 2, 5)
    out.sum().backward()
    assert model.stem.body[0].weight.grad is not None
    assert model.stem.body[0].weight.grad.abs().sum() > 0


def test_reset_net_makes_forwards_repeatable():
    torch.manual_seed(0)
    model = tiny("spiking_resnet18", zero_init_residual=False)  # train-mode BN: the net fires
    x = torch.rand(2, 2, 3, 32, 32)
    first = model(x)
    stale = model(x)  # membranes carried over from the first pass
    functional.reset_net(model)
    again = model(x)
    assert torch.equal(first, again)
    assert not torch.equal(first, stale)


@pytest.mark.parametrize("name", ["spiking_resnet18", "spiking_resnet50"])
def test_every_conv_after_the_stem_sees_binary_spikes(name, conv_inputs):
    torch.manual_seed(0)
    model = tiny(name, zero_init_residual=False)
    inputs = conv_inputs(model, torch.rand(3, 2, 3, 32, 32))
    stem = inputs.pop("stem.body.0")
    assert not torch.all((stem == 0) | (stem == 1))  # the analog first conv: direct encoding
    assert len(inputs) == sum(isinstance(m, nn.Conv2d) for m in model.modules()) - 1
    for n, x in inputs.items():
        assert torch.all((x == 0) | (x == 1)), n
    assert any(x.sum() > 0 for x in inputs.values())  # the net fires: the check is not vacuous


def test_zero_init_block_passes_binary_spikes_through():
    # Zero last BN: the branch is 0, so the block is SN(x); IF threshold 1 on binary x returns x.
    torch.manual_seed(0)
    block = SpikingBlock("basic", 4, 4, 1, neuron_factory("if", {"v_threshold": 1.0}))
    nn.init.zeros_(block.branch[-1][-1].weight)
    x = (torch.rand(3, 2, 4, 6, 6) > 0.5).float()
    assert torch.equal(block(x), x)


def test_zero_init_residual_default_follows_the_logged_runs():
    model = spiking_resnet(18, width=1 / 16)
    blocks = [m for m in model.modules() if isinstance(m, SpikingBlock)]
    assert len(blocks) == 8
    assert all(torch.all(b.branch[-1][-1].weight == 0) for b in blocks)
    assert torch.all(blocks[0].branch[0][1].weight == 1)


def test_default_neuron_and_tdbn_alternative():
    model = spiking_resnet(18, width=1 / 16)
    nodes = [m for m in model.modules() if isinstance(m, neuron.BaseNode)]
    assert len(nodes) == 1 + 8 * 2
    assert all(isinstance(m, neuron.IFNode) and m.v_threshold == 1.0 and m.v_reset == 0.0 and m.detach_reset
               for m in nodes)
    tdbn = spiking_resnet(18, width=1 / 16, neuron="lif", neuron_params=LIF_025_PARAMS)
    lifs = [m for m in tdbn.modules() if isinstance(m, neuron.LIFNode)]
    assert len(lifs) == 17 and all(m.v_threshold == 0.5 and not m.decay_input for m in lifs)


def test_stem_runs_once_on_static_input_by_default():
    torch.manual_seed(0)
    per_step = spiking_resnet(18, num_classes=5, width=1 / 16, input_size="cifar", stem_once=False).eval()
    default = spiking_resnet(18, num_classes=5, width=1 / 16, input_size="cifar").eval()
    default.load_state_dict(per_step.state_dict())
    x = torch.rand(2, 3, 32, 32).unsqueeze(0).repeat(4, 1, 1, 1, 1)  # static image, T=4
    batch = []
    default.stem.body[0].register_forward_pre_hook(lambda m, a: batch.append(a[0].shape[0]))
    assert torch.allclose(default(x), per_step(x), atol=1e-6)
    assert batch == [2]  # B images, not T*B: first-layer MACs divided by T


def test_imagenet_preset_stem_and_pool():
    model = spiking_resnet(18, width=1 / 16)
    conv = model.stem.body[0]
    assert conv.kernel_size == (7, 7) and conv.stride == (2, 2)
    assert isinstance(model.pre[1][0], nn.MaxPool2d)
    out = model(torch.rand(1, 1, 3, 64, 64))
    assert out.shape == (1, 1, 1000)


def test_matches_spikingjelly_reference_implementation():
    """Same weights as spikingjelly 2.0's spiking_resnet18 (IF, multi-step) give the same outputs."""
    sj = pytest.importorskip("spikingjelly.activation_based.model.spiking_resnet")
    from spikingjelly.activation_based import surrogate

    torch.manual_seed(0)
    theirs = sj.spiking_resnet18(spiking_neuron=neuron.IFNode, surrogate_function=surrogate.ATan(),
                                 detach_reset=True, num_classes=7)
    functional.set_step_mode(theirs, "m")
    ours = spiking_resnet(18, num_classes=7, zero_init_residual=False)
    src, dst = theirs.state_dict(), ours.state_dict()
    assert [v.shape for v in src.values()] == [v.shape for v in dst.values()]
    ours.load_state_dict(dict(zip(dst, src.values(), strict=True)))
    x = torch.rand(2, 1, 3, 64, 64)
    assert torch.allclose(ours.eval()(x), theirs.eval()(x), atol=1e-5)
