"""Op counts checked against counts worked out independently: explicit loops over output positions and
kernel taps, spikingjelly 2.0's SynOpCounter, and fvcore's per-module counts."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from spikingjelly.activation_based import functional, layer

from bench.metrics.firing import calibrate_bn
from bench.metrics.ops import count_ops, profile
from bench.metrics.ops_rules import classify, reach_1d
from bench.models.common import MatMul

T, B = 2, 2


def loop_conv2d_acs(x: torch.Tensor, conv: nn.Conv2d, weight_by_value: bool = False) -> float:
    """Accumulates of a conv on x [N, C, H, W], by walking every output position, output channel and tap."""
    N, C, H, W = x.shape
    kh, kw = conv.kernel_size
    sh, sw = conv.stride
    dh, dw = conv.dilation
    g = conv.groups
    cin_g, cout_g = C // g, conv.out_channels // g
    out = conv(x)
    OH, OW = out.shape[-2:]
    if conv.padding_mode == "zeros":
        ph, pw = conv._reversed_padding_repeated_twice[2], conv._reversed_padding_repeated_twice[0]
        xp, (oh0, ow0) = x, (-ph, -pw)
    else:  # explicit padded copy, indexed from 0
        xp = F.pad(x, conv._reversed_padding_repeated_twice, mode=conv.padding_mode)
        oh0 = ow0 = 0
    Hp, Wp = xp.shape[-2:]
    total = 0.0
    for n, oc, oh, ow in itertools.product(range(N), range(conv.out_channels), range(OH), range(OW)):
        grp = oc // cout_g
        for ci, i, j in itertools.product(range(cin_g), range(kh), range(kw)):
            h, w = oh0 + oh * sh + i * dh, ow0 + ow * sw + j * dw
            if 0 <= h < Hp and 0 <= w < Wp:
                v = float(xp[n, grp * cin_g + ci, h, w])
                total += v if weight_by_value else float(v != 0)
    return total


def single_layer(module: nn.Module) -> nn.Module:
    """A multi-step wrapper so the module sees [T*B, ...]."""
    return layer.SeqToANNContainer(module)


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=1, padding=2, dilation=2),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), groups=2),
    dict(kernel_size=3, padding=1, padding_mode="reflect"),
    dict(kernel_size=3, padding=1, padding_mode="circular", stride=2),
    dict(kernel_size=4, padding="same"),
])
def test_conv_acs_equal_explicit_loop(kwargs, spikes):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, bias=False, **kwargs)
    x = spikes(T, B, 4, 7, 6, p=0.4)
    report = count_ops(single_layer(conv), x)
    row = report.layers[0]
    expected = loop_conv2d_acs(x.flatten(0, 1), conv)
    assert row.kinds == ("binary",)
    assert row.acs * B == pytest.approx(expected, abs=0)
    assert row.sops == row.acs and row.macs == 0
    dense = conv(x.flatten(0, 1)).numel() * (4 // conv.groups) * conv.kernel_size[0] * conv.kernel_size[1]
    assert row.dense_macs * B == dense


def test_reach_1d_hand_values():
    # length 5, kernel 3, stride 2, pad 1 -> outputs read [-1..1], [1..3], [3..5]: index 1 and 3 twice
    assert reach_1d(5, 3, 3, 2, 1) == (1, 2, 1, 2, 1)
    # reflect padding: pad -1 reads index 1, pad 5 reads index 3
    assert reach_1d(5, 3, 3, 2, 1, mode="reflect") == (1, 3, 1, 3, 1)


def test_conv1d_and_multistep_layer(spikes):
    conv = layer.Conv1d(3, 5, 3, stride=2, padding=1, bias=False, step_mode="m")
    x = spikes(T, B, 3, 9)
    row = count_ops(conv, x).layers[0]
    # a 1-D conv as a 2-D conv with a height-1 kernel gives the same accumulates
    conv2d = nn.Conv2d(3, 5, (1, 3), stride=(1, 2), padding=(0, 1), bias=False)
    assert row.acs * B == loop_conv2d_acs(x.flatten(0, 1).unsqueeze(2), conv2d)


def test_multispike_counts_value_weighted(spikes):
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    x = spikes(T, B, 2, 5, 5, seed=1) + spikes(T, B, 2, 5, 5, seed=2)  # SEW ADD-like {0, 1, 2}
    assert x.max() == 2
    row = count_ops(single_layer(conv), x).layers[0]
    assert row.kinds == ("multispike",)
    assert row.acs * B == loop_conv2d_acs(x.flatten(0, 1), conv, weight_by_value=True)
    assert row.acs * B > loop_conv2d_acs(x.flatten(0, 1), conv)  # more than one AC per nonzero


def test_scaled_spikes_count_as_events(spikes):
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    s = spikes(T, B, 2, 5, 5)
    scaled = count_ops(single_layer(conv), 0.7 * s).layers[0]
    binary = count_ops(single_layer(conv), s).layers[0]
    assert scaled.kinds == ("scaled",)
    assert scaled.acs == binary.acs == loop_conv2d_acs(s.flatten(0, 1), conv) / B


def test_analog_first_layer_counts_dense_macs():
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False)
    x = torch.rand(T, B, 3, 8, 8)
    row = count_ops(single_layer(conv), x).layers[0]
    assert row.kinds == ("analog",)
    # 4 x 4 outputs x 4 channels x (3 x 3 x 3) taps x T steps, zeros and padding included
    assert row.macs == row.dense_macs == 4 * 4 * 4 * 27 * T
    assert row.acs == 0 and row.approx_sops is None


def test_linear_counts_events_times_out_features(spikes):
    fc = nn.Linear(10, 7)
    x = spikes(T, B, 10, p=0.5)
    row = count_ops(fc, x).layers[0]
    assert row.acs * B == float((x != 0).sum()) * 7
    assert row.dense_macs == T * 10 * 7


def test_bias_adds_are_not_counted(spikes):
    x = spikes(T, B, 3, 6, 6)
    torch.manual_seed(0)
    with_bias = count_ops(single_layer(nn.Conv2d(3, 4, 3, bias=True)), x).layers[0]
    without = count_ops(single_layer(nn.Conv2d(3, 4, 3, bias=False)), x).layers[0]
    assert (with_bias.acs, with_bias.macs, with_bias.dense_macs) == (without.acs, without.macs, without.dense_macs)


class AddThenBN(nn.Module):
    """conv -> BN (foldable) and (conv + conv) -> BN (not foldable: follows an add)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(2, 3, 1, bias=False), nn.BatchNorm2d(3)
        self.conv2, self.bn2 = nn.Conv2d(2, 3, 1, bias=False), nn.BatchNorm2d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(0, 1)
        a = self.bn1(self.conv1(x))
        return self.bn2(self.conv2(x) + a)


def test_bn_folding_convention(spikes):
    x = spikes(T, B, 2, 4, 4)
    folded = {r.name: r for r in count_ops(AddThenBN(), x).layers}
    assert folded["bn1"].macs == 0 and folded["bn1"].note == "folded into conv1"
    per_sample_elems = T * 3 * 4 * 4
    assert folded["bn2"].macs == folded["bn2"].dense_macs == per_sample_elems  # after an add: 1 MAC/element
    unfolded = {r.name: r for r in count_ops(AddThenBN(), x, fold_bn=False).layers}
    assert unfolded["bn1"].macs == per_sample_elems


def test_layernorm_and_pooling(spikes):
    net = nn.Sequential(nn.LayerNorm(4), nn.LayerNorm(4, elementwise_affine=False))
    rows = count_ops(net, torch.randn(T, B, 5, 4)).layers
    assert [r.macs for r in rows] == [3 * T * 5 * 4, 2 * T * 5 * 4]

    x = spikes(T, B, 2, 5, 5, p=0.5)
    avg = count_ops(single_layer(nn.AvgPool2d(3, stride=2, padding=1)), x).layers[0]
    # event-driven additions: each nonzero input is added into every window that covers it
    conv_like = nn.Conv2d(1, 1, 3, stride=2, padding=1, bias=False)
    assert avg.acs * B == loop_conv2d_acs(x.flatten(0, 2).unsqueeze(1), conv_like)
    assert avg.sops == 0 and avg.dense_macs == 0

    mx = count_ops(single_layer(nn.MaxPool2d(2)), x).layers[0]
    assert mx.cmps == T * 2 * 2 * 2 * 3 and mx.acs == 0  # 2x2 outputs x 2 channels x 3 comparisons

    ada = count_ops(single_layer(nn.AdaptiveAvgPool2d(1)), torch.rand(T, B, 2, 3, 3)).layers[0]
    assert ada.acs == T * 2 * 9  # analog input: every element accumulated once


class Attn(nn.Module):
    def __init__(self):
        super().__init__()
        self.mm = MatMul()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.mm(a, b)


def test_matmul_conventions(spikes):
    a, b = spikes(T, B, 4, 5, seed=1), spikes(T, B, 5, 3, seed=2)
    model = Attn()
    both = count_ops(_Pair(model, b), a).layers[0]
    nonzero_products = sum(float(a[t, n, i, k] != 0 and b[t, n, k, j] != 0) for t, n, i, k, j in
                           itertools.product(range(T), range(B), range(4), range(5), range(3)))
    assert both.acs * B == nonzero_products
    assert both.dense_macs == T * 4 * 5 * 3

    real_b = torch.randn(T, B, 5, 3)
    one = count_ops(_Pair(model, real_b), a).layers[0]
    assert one.acs * B == float((a != 0).sum()) * 3  # each event adds one row of 3 real values
    analog = count_ops(_Pair(model, real_b), torch.randn(T, B, 4, 5)).layers[0]
    assert analog.macs == analog.dense_macs == T * 4 * 5 * 3 and analog.acs == 0


class _Pair(nn.Module):
    """Feeds a fixed second operand, so count_ops can drive a two-input module."""

    def __init__(self, inner: nn.Module, other: torch.Tensor):
        super().__init__()
        self.inner, self.other = inner, other

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x, self.other)


def test_approx_sops_formula(spikes):
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    x = spikes(T, B, 2, 5, 5, p=0.25)
    row = count_ops(single_layer(conv), x).layers[0]
    rate = int((x != 0).sum()) / x.numel()
    assert row.approx_sops == pytest.approx(rate * row.dense_macs, rel=1e-12)
    report = count_ops(single_layer(conv), x)
    assert report.approx_sops_error == pytest.approx(row.approx_sops / row.sops - 1)


def test_counts_are_per_sample(spikes):
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    x = spikes(T, 1, 2, 5, 5)
    one = count_ops(single_layer(conv), x).layers[0]
    four = count_ops(single_layer(conv), x.repeat(1, 4, 1, 1, 1)).layers[0]
    assert four.acs == one.acs and four.dense_macs == one.dense_macs
    two_batches = count_ops(single_layer(conv), [x, x])
    assert two_batches.samples == 2 and two_batches.layers[0].acs == one.acs


class Mystery(nn.Module):
    """A leaf with parameters and no counting rule."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w


class Embedded(nn.Module):
    """A non-leaf module with its own parameter used in its forward."""

    def __init__(self):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(3))
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x + self.pos)


def test_uncounted_and_unverified_modules_are_listed():
    x = torch.rand(T, B, 3)
    report = count_ops(nn.Sequential(Mystery(), Embedded()), x)
    assert report.uncounted == [{"module": "0", "type": "Mystery"}]
    assert not report.complete
    row = next(r for r in report.layers if r.name == "0")
    assert not row.counted and row.macs is None and row.acs is None  # never a 0 for something uncounted
    assert report.unverified == [{"module": "1", "type": "Embedded"}]
    with pytest.raises(NotImplementedError, match="no counting rule for 0"):
        count_ops(nn.Sequential(Mystery(), Embedded()), x, strict=True)
    assert count_ops(Embedded(), x, strict=True).complete  # unverified alone does not raise


def test_classify_kinds():
    assert classify(torch.tensor([0.0, 1.0, 1.0, 0.0])).kind == "binary"
    assert classify(torch.tensor([0.0, 0.3, 0.3])).kind == "scaled"
    assert classify(torch.tensor([0.0, 1.0, 2.0, 3.0])).kind == "multispike"
    assert classify(torch.tensor([0.0, 2.0, 2.0])).kind == "scaled"  # one magnitude: events, not values
    assert classify(torch.zeros(4)).kind == "zero"
    assert classify(torch.tensor([0.0, 0.5, 1.0])).kind == "analog"  # pixels with an exact 1.0
    assert classify(torch.tensor([0.0, 1.5, 3.0])).kind == "analog"
    assert classify(torch.tensor([-1.0, 0.0, 1.0])).kind == "analog"
    assert classify(torch.tensor([True, False])).kind == "binary"
    big = torch.zeros(1 << 20)
    big[::3] = 1.0
    big[5] = 0.5  # one analog value among many spikes (not on the sampling stride)
    assert classify(big).kind == "analog"
    info = classify(big.clamp(max=0) + (torch.arange(1 << 20) % 3 == 0).float())
    assert info.kind == "binary" and info.events == float(len(range(0, 1 << 20, 3)))


def test_classify_large_tensors_with_and_without_a_sampled_witness():
    """Large tensors go through the sample pre-screen first; its verdicts must agree with the exact tests."""
    gen = torch.Generator().manual_seed(0)
    spikes = (torch.rand(4, 8, 16, 16, generator=gen) < 0.3).float()
    assert classify(spikes).kind == "binary"
    assert classify(spikes * 0.25).kind == "scaled"
    assert classify(spikes + (torch.rand(spikes.shape, generator=gen) < 0.3).float()).kind == "multispike"
    assert classify(torch.softmax(torch.randn(4, 8, 64, generator=gen), -1)).kind == "analog"  # witness
    hidden = spikes.clone().flatten()
    hidden[1] = 0.5  # index 1 is not on the 61-stride sample: no witness, the exact test must catch it
    assert classify(hidden.view_as(spikes)).kind == "analog"


def test_counts_under_inference_mode(fired_net):
    net, x = fired_net
    plain = count_ops(net, x)
    with torch.inference_mode():
        inferred = count_ops(net, x)
    assert [r.acs for r in plain.layers] == [r.acs for r in inferred.layers]
    assert plain.totals["acs"] > 0


# ------------------------------------------------------------------ cross-checks on the zoo's own models

def _sj_synops_per_module(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    from spikingjelly.activation_based.op_counter import DispatchCounterMode, SynOpCounter

    counter = SynOpCounter()
    functional.reset_net(model)
    with torch.no_grad(), DispatchCounterMode([counter]):
        model(x)
    functional.reset_net(model)
    root = type(model).__name__
    return {scope[len(root) + 1:]: float(sum(v.values())) for scope, v in counter.get_counts().items()
            if scope.startswith(root + ".")}


def _zoo(name: str, **kwargs) -> nn.Module:
    from bench.models import create_model, list_models

    if name not in list_models():
        pytest.skip(f"model {name!r} is not registered (bench/models module missing)")
    return create_model(name, num_classes=10, input_size="cifar", width=0.25, **kwargs).eval()


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs", [("sew_resnet18", {}), ("spikeformer_dvs_cifar10", {"T": 2, "in_channels": 3})])
def test_zoo_acs_equal_spikingjelly_synops_and_dense_equal_fvcore(name, kwargs):
    from fvcore.nn import FlopCountAnalysis

    torch.manual_seed(0)
    model = _zoo(name, **kwargs)
    x = torch.rand(2, 1, 3, 32, 32)
    calibrate_bn(model, [torch.rand(2, 4, 3, 32, 32)])  # so that the spiking layers fire
    firing, ops = profile(model, x)
    assert 0.01 < firing.mean_rate < 0.99
    sj = _sj_synops_per_module(model, x)
    binary = [r for r in ops.layers if r.type in ("Conv2d", "Linear") and r.kinds == ("binary",)]
    assert len(binary) >= 3 and sum(r.acs for r in binary) > 0, "too few spiking layers to compare"
    for r in binary:
        assert r.acs == sj[r.name], r.name  # batch 1: per sample == total

    # fvcore on the multi-step model: one "flop" per MAC for conv and linear, per module
    functional.reset_net(model)
    flops = FlopCountAnalysis(model, x)
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    by_module = flops.by_module()
    functional.reset_net(model)
    for r in ops.layers:
        if r.type in ("Conv2d", "Linear"):
            assert r.dense_macs == by_module[r.name], r.name
