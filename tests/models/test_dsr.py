"""DSR nets: official structure and sizes, fixed-T nodes, scaled spikes, rate-decoded outputs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, neuron

from bench.models import create_model, list_models, model_info
from bench.models.dsr import (
    DSRVGG,
    PreActBlock,
    dsr_neuron_factory,
    dsr_nodes,
    dsr_thresholds,
    project_thresholds,
)
from bench.models.registry import OFFICIAL

NAMES = ["dsr_preact_resnet18", "dsr_preact_resnet18_if", "dsr_preact_resnet18_imagenet", "dsr_vgg11"]
TINY = {"width": 1 / 16, "T": 4}


def tiny(name: str, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, **{**TINY, **kwargs})


def tiny_input(name: str, T: int = 4) -> torch.Tensor:
    torch.manual_seed(1)
    channels = 2 if name == "dsr_vgg11" else 3
    return torch.randn(T, 2, channels, 32, 32)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registered_names():
    assert list_models("dsr*") == NAMES


def test_cifar_resnet18_param_count():
    def block(cin: int, cout: int, stride: int) -> int:
        n = 2 * cin + (9 * cin * cout + cout) + 2 * cout + (9 * cout * cout + cout)  # bn1 conv1 bn2 conv2
        if stride != 1 or cin != cout:
            n += cin * cout + cout  # 1x1 conv shortcut with bias, no BN
        return n

    stages = [(64, 64, 1), (64, 64, 1), (64, 128, 2), (128, 128, 1),
              (128, 256, 2), (256, 256, 1), (256, 512, 2), (512, 512, 1)]
    k = 10
    weights = 27 * 64 + sum(block(*s) for s in stages) + 2 * 512 + (512 * k + k) + 2 * k
    thresholds = 2 * 8 + 3  # two per block, head BN neuron, pooled neuron, output neuron
    for name in ("dsr_preact_resnet18", "dsr_preact_resnet18_if"):
        count = n_params(create_model(name))
        assert count == weights + thresholds == 11_176_945
        assert abs(count - 11.2e6) / 11.2e6 < 0.01


def test_imagenet_resnet18_param_count_against_torchvision():
    import torchvision

    tv = n_params(torchvision.models.resnet18())
    # Pre-activation moves the first BN of stages 2-4 onto the input width (64/128/256 instead of
    # 128/256/512: -896), adds a final BN2d(512) (+1024), a BatchNorm1d(1000) (+2000) and 20 thresholds.
    assert n_params(create_model("dsr_preact_resnet18_imagenet")) == tv - 896 + 1024 + 2000 + 20


def test_vgg11_param_count():
    convs = [(2, 64), (64, 128), (128, 256), (256, 256), (256, 512), (512, 512), (512, 512), (512, 512)]
    weights = sum(9 * a * b + b + 2 * b for a, b in convs) + (512 * 49 * 10 + 10) + 2 * 10
    count = n_params(create_model("dsr_vgg11"))
    assert count == weights + 9 == 9_476_327
    assert abs(count - 9.5e6) / 9.5e6 < 0.01


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_tiny(name: str):
    model = tiny(name, num_classes=7)
    out = model(tiny_input(name))
    assert out.shape == (4, 2, 7)
    assert torch.isfinite(out).all()
    for t in range(1, 4):
        assert torch.equal(out[t], out[0])
    out.square().sum().backward()
    assert model.out_bn.weight.grad is not None


@pytest.mark.parametrize("name", NAMES)
def test_metadata(name: str):
    info = model_info(name)
    assert info.family == "dsr"
    assert info.provenance == OFFICIAL
    assert info.causal_over_T is False
    assert info.default_T == (50 if name.endswith("imagenet") else 20)
    if name.startswith("dsr_preact"):
        assert "analog first conv (direct encoding)" in info.non_spiking


def test_default_neurons_follow_official_settings():
    lif = dict(dsr_nodes(create_model("dsr_preact_resnet18", width=1 / 16)))["out_neuron"]
    assert isinstance(lif, neuron.DSRLIFNode)
    assert (lif.T, float(lif.v_threshold.detach()), lif.alpha, lif.tau, lif.delta_t, lif.v_threshold_lower_bound) == (
        20, pytest.approx(0.3), 0.3, 1.0, 0.05, 0.0005)
    # Switching kind must not carry LIF's threshold/alpha over: IF gets its own official defaults.
    for model in (create_model("dsr_preact_resnet18", width=1 / 16, neuron="dsr_if"),
                  create_model("dsr_preact_resnet18_if", width=1 / 16)):
        node = dict(dsr_nodes(model))["out_neuron"]
        assert isinstance(node, neuron.DSRIFNode)
        assert (float(node.v_threshold.detach()), node.alpha, node.v_threshold_lower_bound) == (6.0, 0.5, 0.01)
        assert node.v_threshold_grad_scaling == 1.0
    imagenet = dict(dsr_nodes(create_model("dsr_preact_resnet18_imagenet", width=1 / 16)))["out_neuron"]
    assert isinstance(imagenet, neuron.DSRIFNode) and imagenet.T == 50
    assert imagenet.v_threshold_grad_scaling == 0.001


def test_neuron_arguments_are_validated():
    with pytest.raises(ValueError, match="DSR neuron"):
        create_model("dsr_vgg11", neuron="lif")
    with pytest.raises(ValueError, match="T argument"):
        create_model("dsr_vgg11", neuron_params={"T": 4})
    with pytest.raises(ValueError, match="input_size"):
        create_model("dsr_vgg11", input_size="dvs")
    node = dsr_neuron_factory("dsr_if", 3, {"v_threshold": 2})()  # ints accepted
    assert float(node.v_threshold.detach()) == 2.0 and node.T == 3


@pytest.mark.parametrize("name,low", [("dsr_preact_resnet18", 0.01), ("dsr_preact_resnet18_if", 0.05),
                                      ("dsr_vgg11", 0.01)])
def test_thresholds_are_trainable_and_get_gradients(name: str, low: float):
    # Low thresholds saturate many units, where the DSR threshold gradient is non-zero.
    model = tiny(name, neuron_params={"v_threshold": low})
    nodes = dict(dsr_nodes(model))
    params = {id(p) for p in model.parameters()}
    assert all(id(n.v_threshold) in params for n in nodes.values())
    model(tiny_input(name)).logsumexp(-1).sum().backward()
    grads = {k: n.v_threshold.grad for k, n in nodes.items()}
    assert all(g is not None for g in grads.values())
    # Not all: a neuron fed by average-pooled spikes of an equal threshold never exceeds it.
    assert sum(float(g) != 0.0 for g in grads.values()) >= len(grads) / 2


def test_threshold_gradient_follows_the_rate_mapping():
    # DSR-IF maps input rate r to output rate clamp(r, 0, v_th), so for L = sum of all spikes
    # (T * rate per unit) dL/dv_th = T * (number of units with r > v_th).
    node = dsr_neuron_factory("dsr_if", 5, {"v_threshold": 1.0})()
    rates = torch.tensor([0.5, 1.5, 2.0, -1.0, 3.0])
    out = node(rates.expand(5, 2, 5).clone())
    out.sum().backward()
    assert float(node.v_threshold.grad) == 5 * 2 * 3


@pytest.mark.parametrize("name", NAMES)
def test_dsr_node_outputs_are_scaled_spikes(name: str):
    model = tiny(name, neuron_params={"v_threshold": 0.05}).eval()
    seen: dict[str, tuple[torch.Tensor, float]] = {}

    def record(key: str):
        def hook(node, _inp, out):
            level = float(node.v_threshold.clamp(min=node.v_threshold_lower_bound))
            if isinstance(node, neuron.DSRLIFNode):
                level /= node.delta_t
            seen[key] = (out.detach(), level)
        return hook

    for key, node in dsr_nodes(model):
        node.register_forward_hook(record(key))
    with torch.no_grad():
        model(tiny_input(name))
    assert len(seen) == len(dict(dsr_nodes(model)))
    for out, level in seen.values():
        fired = out[out != 0]
        torch.testing.assert_close(fired, torch.full_like(fired, level))
    assert any((out > 0).any() for out, _ in seen.values())


@pytest.mark.parametrize("name", ["dsr_preact_resnet18", "dsr_preact_resnet18_if"])
def test_logits_are_the_output_layer_rate(name: str):
    model = tiny(name, neuron_params={"v_threshold": 0.05}).eval()
    captured = {}
    model.out_neuron.register_forward_hook(lambda m, i, o: captured.setdefault("s", o.detach()))
    with torch.no_grad():
        logits = model(tiny_input(name))[0]
    spikes = captured["s"]  # [T, B, K]
    assert (spikes > 0).any()
    if name.endswith("_if"):
        expected = spikes.mean(0)
    else:  # weighted rate, weights exp(-(T - t) dt / tau) for t = 1..T, tau 1, dt 0.05
        w = [math.exp(-(4 - t) * 0.05) for t in range(1, 5)]
        expected = sum(wt * spikes[t] for t, wt in enumerate(w)) / sum(w)
    torch.testing.assert_close(logits, expected)


@pytest.mark.parametrize("name", ["dsr_preact_resnet18", "dsr_vgg11"])
def test_reset_net_gives_identical_forwards(name: str):
    # Train-mode BN (batch statistics) keeps activity up in a fresh tiny net; dropout off for determinism.
    model = tiny(name, neuron_params={"v_threshold": 0.05}, dropout=0.0)
    x = tiny_input(name)
    with torch.no_grad():
        first = model(x)
        functional.reset_net(model)
        second = model(x)
    assert torch.equal(first, second)
    assert first.abs().sum() > 0


def test_wrong_T_raises_clear_error():
    model = tiny("dsr_preact_resnet18")  # built for T=4
    with pytest.raises(ValueError, match="built for T=4 but the input has 2 time steps"):
        model(tiny_input("dsr_preact_resnet18", T=2))


def test_preact_block_structure():
    torch.manual_seed(0)
    make = dsr_neuron_factory("dsr_if", 2, {"v_threshold": 0.5})
    block = PreActBlock(4, 6, 2, make).eval()
    x = torch.randn(2, 3, 4, 8, 8)
    with torch.no_grad():
        xs = block.sn1(block.bn1(x))
        expected = block.conv2(block.sn2(block.bn2(block.conv1(xs)))) + block.shortcut(xs)
        torch.testing.assert_close(block(x), expected)
    # CIFAR: bias convs and a bare 1x1 conv shortcut; ImageNet: no bias, 1x1 conv + BN shortcut.
    assert block.conv1.bias is not None and len(block.shortcut) == 1
    assert block.shortcut[0].kernel_size == (1, 1) and block.shortcut[0].stride == (2, 2)
    imagenet = PreActBlock(4, 6, 2, make, conv_bias=False, shortcut_bn=True)
    assert imagenet.conv1.bias is None and isinstance(imagenet.shortcut[1], nn.BatchNorm2d)
    assert isinstance(PreActBlock(4, 4, 1, make).shortcut, nn.Identity)


def test_vgg11_layout():
    model = create_model("dsr_vgg11")
    assert isinstance(model, DSRVGG)
    convs = [m for m in model.body if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 256, 512, 512, 512, 512]
    assert convs[0].in_channels == 2 and all(c.bias is not None for c in convs)
    assert sum(isinstance(m, nn.AvgPool2d) for m in model.body) == 5
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert [m.p for m in model.body if isinstance(m, nn.Dropout)] == [0.1] * 8
    assert model.fc.in_features == 512 * 49
    # No stem to swap: input_size leaves the layers unchanged (the net runs at any size >= 32 px).
    assert n_params(create_model("dsr_vgg11", input_size="imagenet")) == n_params(model)


def test_project_and_report_thresholds():
    model = tiny("dsr_preact_resnet18_if")
    node = model.out_neuron
    with torch.no_grad():
        node.v_threshold.fill_(-1.0)
    assert dsr_thresholds(model)["out_neuron"] == pytest.approx(0.01)  # effective (clamped) value
    assert float(node.v_threshold.detach()) == -1.0
    project_thresholds(model)
    assert float(node.v_threshold.detach()) == pytest.approx(0.01)
    assert dsr_thresholds(model)["blocks.0.sn1"] == 6.0
