"""SEW ResNet: connect functions (operand order), multi-spikes under ADD, binary spikes under AND/IAND."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, neuron

from bench.models import create_model, list_models, model_info
from bench.models.neurons import neuron_factory
from bench.models.sew_resnet import Connect, SEWBlock, sew_resnet

DEPTHS = (18, 34, 50, 101, 152)
NAMES = [f"sew_resnet{d}{s}" for d in DEPTHS for s in ("", "_and", "_iand")]




def test_registered_names_and_metadata():
    assert list_models("sew_resnet*") == sorted(NAMES)
    assert "integer multi-spikes after ADD (value-weighted ACs)" in model_info("sew_resnet50").non_spiking
    assert model_info("sew_resnet50_iand").non_spiking == ("analog first conv (direct encoding)",)


@pytest.mark.parametrize("depth", DEPTHS)
def test_param_count_equals_torchvision(depth):
    tvm = pytest.importorskip("torchvision.models")
    with torch.device("meta"):  # shapes only: skips the random init of ~60M weights
        expected = sum(p.numel() for p in getattr(tvm, f"resnet{depth}")().parameters())
        got = sum(p.numel() for p in create_model(f"sew_resnet{depth}").parameters())
    assert got == expected


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_shape(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, input_size="cifar", width=1 / 16)
    out = model(torch.rand(2, 2, 3, 32, 32))
    assert out.shape == (2, 2, 5)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    if not name.endswith("_and"):  # AND at default init is almost silent: products of rare spikes
        assert model.stem.body[0].weight.grad.abs().sum() > 0


def test_reset_net_makes_forwards_repeatable():
    torch.manual_seed(0)
    model = sew_resnet(18, num_classes=5, input_size="cifar", width=1 / 16)  # train-mode BN: fires
    x = torch.rand(2, 2, 3, 32, 32)
    first = model(x)
    stale = model(x)
    functional.reset_net(model)
    assert torch.equal(first, model(x))
    assert not torch.equal(first, stale)


def test_connect_functions_and_operand_order():
    a = torch.tensor([0.0, 0.0, 1.0, 1.0])  # block output
    s = torch.tensor([0.0, 1.0, 0.0, 1.0])  # shortcut
    assert torch.equal(Connect("ADD")(a, s), torch.tensor([0.0, 1.0, 1.0, 2.0]))
    assert torch.equal(Connect("AND")(a, s), torch.tensor([0.0, 0.0, 0.0, 1.0]))
    # IAND = (1 - a) * s: passes the shortcut where the block is silent. The swapped form a * (1 - s)
    # (spikingjelly 2.0's bottleneck) would give [0, 0, 1, 0].
    assert torch.equal(Connect("IAND")(a, s), torch.tensor([0.0, 1.0, 0.0, 0.0]))
    assert torch.equal(Connect("iand")(a, s), Connect("IAND")(a, s))
    with pytest.raises(ValueError):
        Connect("OR")


@pytest.mark.parametrize("kind", ["basic", "bottleneck"])
def test_block_feeds_branch_spikes_as_a_and_shortcut_as_s(kind):
    torch.manual_seed(0)
    neurons = neuron_factory("if", {"v_threshold": 0.5})
    block = SEWBlock(kind, 8, 2 if kind == "bottleneck" else 8, 1, neurons, "IAND")
    assert isinstance(block.shortcut, nn.Identity)
    captured = {}
    block.sn.register_forward_hook(lambda m, args, out: captured.__setitem__("a", out))
    x = (torch.rand(3, 2, 8, 5, 5) > 0.5).float()
    y = block(x)
    a = captured["a"]
    assert 0 < a.mean() < 1 and not torch.equal(a, x)  # both operands non-trivial: order matters
    assert torch.equal(y, (1 - a) * x)
    assert not torch.equal(y, a * (1 - x))


def test_downsample_shortcut_is_conv_bn_sn():
    block = SEWBlock("basic", 4, 8, 2, neuron_factory("if", {}), "ADD")
    conv, sn = block.shortcut[0][0], block.shortcut[1]
    assert conv.kernel_size == (1, 1) and conv.stride == (2, 2)
    assert isinstance(block.shortcut[0][1], nn.BatchNorm2d) and isinstance(sn, neuron.IFNode)


def test_add_makes_integer_multi_spikes():
    torch.manual_seed(0)
    model = sew_resnet(18, num_classes=5, input_size="cifar", width=1 / 16, neuron_params={"v_threshold": 0.2})
    outputs = []
    for m in model.modules():
        if isinstance(m, SEWBlock):
            m.register_forward_hook(lambda mod, args, out: outputs.append(out.detach()))
    model(3 * torch.rand(2, 2, 3, 32, 32))
    values = torch.cat([o.flatten() for o in outputs])
    assert torch.equal(values, values.round()) and values.min() >= 0
    assert values.max() >= 2  # more than one spike per site: counted as value-weighted events


@pytest.mark.parametrize("cnf", ["AND", "IAND"])
def test_and_iand_keep_every_conv_input_binary(cnf, conv_inputs):
    torch.manual_seed(0)
    model = sew_resnet(18, num_classes=5, input_size="cifar", width=1 / 16, cnf=cnf,
                       neuron_params={"v_threshold": 0.2})
    inputs = conv_inputs(model, 3 * torch.rand(2, 2, 3, 32, 32))
    del inputs["stem.body.0"]
    for n, x in inputs.items():
        assert torch.all((x == 0) | (x == 1)), n
    assert any(x.sum() > 0 for x in inputs.values())


def test_zero_init_residual_under_and_sets_bias_one():
    model = sew_resnet(18, width=1 / 16, cnf="AND", zero_init_residual=True)
    bn = model.layers[0][0].branch[-1][-1]
    assert torch.all(bn.weight == 0) and torch.all(bn.bias == 1)
    bn_add = sew_resnet(18, width=1 / 16, zero_init_residual=True).layers[0][0].branch[-1][-1]
    assert torch.all(bn_add.weight == 0) and torch.all(bn_add.bias == 0)


def test_fixed_cnf_variants_reject_a_conflicting_cnf():
    assert create_model("sew_resnet18_iand", width=1 / 16).layers[0][0].connect.cnf == "IAND"
    with pytest.raises(ValueError):
        create_model("sew_resnet18_and", width=1 / 16, cnf="ADD")


def test_stem_runs_once_on_static_input_by_default():
    # The authors' code applies conv1 + bn1 to the image once and repeats it over T; our default does too.
    torch.manual_seed(0)
    per_step = sew_resnet(18, num_classes=5, width=1 / 16, input_size="cifar", stem_once=False).eval()
    default = sew_resnet(18, num_classes=5, width=1 / 16, input_size="cifar").eval()
    default.load_state_dict(per_step.state_dict())
    x = torch.rand(2, 3, 32, 32).unsqueeze(0).repeat(3, 1, 1, 1, 1)
    batch = []
    default.stem.body[0].register_forward_pre_hook(lambda m, a: batch.append(a[0].shape[0]))
    assert torch.allclose(default(x), per_step(x), atol=1e-6)
    assert batch == [2]


@pytest.mark.parametrize("cnf", ["ADD", "IAND"])
def test_matches_spikingjelly_basic_block_model(cnf):
    """spikingjelly 2.0's sew_resnet18 (basic blocks, where its IAND order is right) with our weights."""
    sj = pytest.importorskip("spikingjelly.activation_based.model.sew_resnet")
    from spikingjelly.activation_based import surrogate

    torch.manual_seed(0)
    theirs = sj.sew_resnet18(spiking_neuron=neuron.IFNode, surrogate_function=surrogate.ATan(),
                             detach_reset=True, cnf=cnf, num_classes=7)
    functional.set_step_mode(theirs, "m")
    ours = sew_resnet(18, num_classes=7, cnf=cnf)
    src, dst = theirs.state_dict(), ours.state_dict()
    assert [v.shape for v in src.values()] == [v.shape for v in dst.values()]
    ours.load_state_dict(dict(zip(dst, src.values(), strict=True)))
    x = torch.rand(2, 1, 3, 64, 64)
    assert torch.allclose(ours(x), theirs(x), atol=1e-5)  # train-mode BN: the nets fire
