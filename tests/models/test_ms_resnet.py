"""MS-ResNet: neuron mapping, membrane (real-valued) stream between blocks, layout of 18/34/104."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, neuron

from bench.models import create_model, list_models, model_info
from bench.models.ms_resnet import MSBlock, ms_resnet
from bench.models.neurons import make_neuron, neuron_factory
from bench.models.resnet_parts import LIF_025_PARAMS

NAMES = ["ms_resnet18", "ms_resnet34", "ms_resnet104"]



def expected_params(blocks: tuple[int, ...], stem: int, num_classes: int = 1000) -> int:
    """Worked out by hand: basic blocks, every stage's first block projected (stage 1 is strided)."""
    total, cin = stem, 64
    for c, n in zip((64, 128, 256, 512), blocks, strict=True):
        for i in range(n):
            total += 9 * cin * c + 2 * c + 9 * c * c + 2 * c  # two 3x3 convs + two BNs
            if i == 0:
                total += cin * c + 2 * c  # 1x1 projection + BN
            cin = c
    return total + 512 * num_classes + num_classes


def test_registered_names_and_metadata():
    assert list_models("ms_resnet*") == sorted(NAMES)
    info = model_info("ms_resnet18")
    assert info.default_T == 6
    assert "membrane-domain shortcut adds" in info.non_spiking


def test_param_counts():
    stem7 = 7 * 7 * 3 * 64 + 2 * 64
    stem104 = (27 * 64 + 64) + 2 * (9 * 64 * 64 + 64) + 2 * 64  # three biased 3x3 convs, one BN
    with torch.device("meta"):
        counts = {n: sum(p.numel() for p in create_model(n).parameters()) for n in NAMES}
    assert counts["ms_resnet18"] == expected_params((2, 2, 2, 2), stem7) == 11_693_736
    assert counts["ms_resnet34"] == expected_params((3, 4, 6, 3), stem7) == 21_801_896
    assert counts["ms_resnet104"] == expected_params((3, 8, 32, 8), stem104) == 77_350_504
    # torchvision resnet18 has 11,689,512: the strided stage 1 adds one 64->64 projection + BN.
    assert counts["ms_resnet18"] - 11_689_512 == 64 * 64 + 2 * 64


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("input_size", ["cifar", "imagenet"])
def test_forward_backward_shape(name, input_size):
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, input_size=input_size, width=1 / 16)
    out = model(torch.rand(2, 2, 3, 32, 32))
    assert out.shape == (2, 2, 5)
    out.sum().backward()
    assert model.stem.body[0].weight.grad.abs().sum() > 0


def test_reset_net_makes_forwards_repeatable():
    torch.manual_seed(0)
    model = ms_resnet(18, num_classes=5, input_size="cifar", width=1 / 16)
    x = torch.rand(3, 2, 3, 32, 32)
    first = model(x)
    stale = model(x)
    functional.reset_net(model)
    assert torch.equal(first, model(x))
    assert not torch.equal(first, stale)


def test_lif_matches_official_update_rule():
    """v <- 0.25 v (1 - s) + x, s = [v > 0.5], against spikingjelly LIFNode(tau=4/3, decay_input=False)."""
    torch.manual_seed(0)
    node = make_neuron("lif", **LIF_025_PARAMS)
    x = 0.6 * torch.rand(8, 500)
    v, s, spikes = torch.zeros(500), torch.zeros(500), []
    for xt in x:
        v = 0.25 * v * (1 - s) + xt
        s = (v > 0.5).float()
        spikes.append(s)
    out = node(x)
    assert torch.equal(out, torch.stack(spikes))
    assert 0.05 < out.mean() < 0.5
    assert torch.allclose(node.v, v * (1 - s), atol=1e-6)  # membrane after the hard reset


def test_rect_surrogate_has_width_one_and_height_one():
    node = make_neuron("lif", **LIF_025_PARAMS)
    x = torch.tensor([[-0.05, 0.2, 0.7, 0.95, 1.2]], requires_grad=True)
    node(x).sum().backward()
    assert torch.equal(x.grad, torch.tensor([[0.0, 1.0, 1.0, 1.0, 0.0]]))  # 1 on |v - 0.5| < 0.5


def test_stream_between_blocks_is_real_valued_and_branch_convs_see_spikes():
    torch.manual_seed(0)
    model = ms_resnet(18, num_classes=5, input_size="cifar", width=1 / 8)
    for m in model.modules():  # leave the zero init: random last BNs so the branches contribute
        if isinstance(m, MSBlock):
            nn.init.normal_(m.branch[-1][-1].weight)
    streams, convs = [], {}
    for n, m in model.named_modules():
        if isinstance(m, MSBlock):
            m.register_forward_hook(lambda mod, args, out: streams.append(out.detach()))
        if isinstance(m, nn.Conv2d):
            m.register_forward_pre_hook(lambda mod, args, n=n: convs.__setitem__(n, args[0].detach()))
    model(torch.rand(2, 2, 3, 32, 32))
    assert len(streams) == 8
    for out in streams:
        assert not torch.equal(out, out.round())  # membrane values, not spike counts
    branch = {n: x for n, x in convs.items() if ".branch." in n}
    shortcut = {n: x for n, x in convs.items() if ".shortcut." in n}
    assert len(branch) == 16 and len(shortcut) == 3
    for n, x in branch.items():
        assert torch.all((x == 0) | (x == 1)), n
    assert any(x.sum() > 0 for x in branch.values())
    for n, x in shortcut.items():
        assert not torch.all((x == 0) | (x == 1)), n  # downsample convs run on the real stream


def test_zero_init_makes_blocks_identity():
    torch.manual_seed(0)
    block = MSBlock(6, 6, 1, neuron_factory("lif", LIF_025_PARAMS), pool_shortcut=False)
    nn.init.zeros_(block.branch[-1][-1].weight)
    x = torch.randn(2, 2, 6, 5, 5)
    assert torch.equal(block(x), x)


def test_official_layout_18():
    model = ms_resnet(18, width=1 / 16)
    conv = model.stem.body[0]
    assert conv.kernel_size == (7, 7) and conv.stride == (2, 2)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert model.layers[0][0].branch[0][0].stride == (2, 2)  # stage 1 strided instead of a max-pool
    assert isinstance(model.post, neuron.LIFNode)  # a neuron before the average pool, as the official head
    blocks = [m for m in model.modules() if isinstance(m, MSBlock)]
    assert all(torch.all(b.branch[-1][-1].weight == 0) for b in blocks)
    assert torch.all(blocks[0].branch[0][1].weight == 0.5) and torch.all(model.stem.body[1].weight == 0.5)
    assert isinstance(model.head.drop, nn.Identity)


def test_official_layout_104():
    model = ms_resnet(104, width=1 / 16)
    convs = [m for m in model.stem.body if isinstance(m, nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2), (1, 1), (1, 1)] and all(c.bias is not None for c in convs)
    assert [len(stage) for stage in model.layers] == [3, 8, 32, 8]
    shortcut = model.layers[1][0].shortcut
    assert isinstance(shortcut[0], nn.AvgPool2d) and shortcut[1].stride == (1, 1)
    assert model.head.drop.p == 0.2


def test_matches_spikingjelly_ms_resnet18():
    """spikingjelly 2.0's MSResNet (same update rule; it returns the mean over T) with our weights."""
    sj = pytest.importorskip("spikingjelly.activation_based.model.ms_resnet")
    torch.manual_seed(0)
    theirs = sj.ms_resnet18(num_classes=7)
    ours = ms_resnet(18, num_classes=7)
    src, dst = theirs.state_dict(), ours.state_dict()
    assert [v.shape for v in src.values()] == [v.shape for v in dst.values()]
    ours.load_state_dict(dict(zip(dst, src.values(), strict=True)))
    for m in ours.modules():  # make the branches non-zero so the comparison covers them
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
    theirs.load_state_dict(dict(zip(src, ours.state_dict().values(), strict=True)))
    x = torch.rand(3, 2, 3, 64, 64)
    assert torch.allclose(ours(x).mean(0), theirs(x), atol=1e-5)
