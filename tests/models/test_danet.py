"""DANet (reconstruction): parameter counts, the densely additive wiring, domains, every registered name."""

from __future__ import annotations

import pytest
import torch
import torchvision
from spikingjelly.activation_based import functional, neuron

from bench.models import create_model, list_models, model_info
from bench.models.danet import DANet, danet
from bench.models.registry import RECONSTRUCTED

NAMES = [f"danet_{v}{d}" for v in "abcd" for d in (50, 101, 152)]

# Extra parameters of span="global" over torchvision, worked out by hand from the shapes: every
# non-adjacent (source, target) group pair gets a 1x1 conv (c_src * c_dst) and a BN (2 * c_dst).
# Basic blocks: groups 1..4 = 64, 128, 256, 512 channels (the stem joins group 1); pairs 1->3, 1->4, 2->4.
BASIC_EXTRA = (64 * 256 + 2 * 256) + (64 * 512 + 2 * 512) + (128 * 512 + 2 * 512)
# Bottlenecks: stem 64, groups 1..4 = 256, 512, 1024, 2048; pairs 0->2, 0->3, 0->4, 1->3, 1->4, 2->4.
BOTTLENECK_EXTRA = (
    (64 * 512 + 2 * 512)
    + (64 * 1024 + 2 * 1024)
    + (64 * 2048 + 2 * 2048)
    + (256 * 1024 + 2 * 1024)
    + (256 * 2048 + 2 * 2048)
    + (512 * 2048 + 2 * 2048)
)



def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def tiny(domain: str, span: str, block: str = "basic", layers=(1, 2, 1, 2), **kw) -> DANet:
    kw.setdefault("zero_init_last_bn", False)  # live unit outputs, so the sums are not trivially zero
    return DANet(
        block, layers, num_classes=5, input_size="cifar", width=1 / 16, domain=domain, span=span, **kw
    )


def test_documented_extra_parameters():
    assert BASIC_EXTRA == 117_248
    assert BOTTLENECK_EXTRA == 2_081_792


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_parameter_counts_against_torchvision(depth):
    with torch.device("meta"):
        reference = n_params(getattr(torchvision.models, f"resnet{depth}")())
        # IF neurons have no parameters, so only the synaptic part is counted
        stage = {v: n_params(danet(v, depth, neuron="if")) for v in "ab"}
        glob = {v: n_params(danet(v, depth, neuron="if")) for v in "cd"}
    extra = BASIC_EXTRA if depth < 50 else BOTTLENECK_EXTRA
    assert stage == {"a": reference, "b": reference}
    assert glob == {"c": reference + extra, "d": reference + extra}


def test_torchvision_reference_numbers():
    with torch.device("meta"):
        counts = [n_params(getattr(torchvision.models, f"resnet{d}")()) for d in (50, 101, 152)]
    assert counts == [25_557_032, 44_549_160, 60_192_808]


@pytest.mark.parametrize(
    "variant,depth,plif_nodes",
    [
        # spike: stem + 3 per bottleneck + one per projection; membrane: 3 per bottleneck + head
        ("a", 50, 1 + 3 * 16 + 4),
        ("c", 50, 1 + 3 * 16 + 10),
        ("b", 50, 3 * 16 + 1),
        ("d", 50, 3 * 16 + 1),
        ("a", 18, 1 + 2 * 8 + 3),
        ("c", 18, 1 + 2 * 8 + 6),
        ("d", 18, 2 * 8 + 1),
    ],
)
def test_plif_adds_one_parameter_per_node(variant, depth, plif_nodes):
    with torch.device("meta"):
        default, plain = danet(variant, depth), danet(variant, depth, neuron="if")
    nodes = [m for m in default.modules() if isinstance(m, neuron.ParametricLIFNode)]
    assert len(nodes) == plif_nodes
    assert n_params(default) - n_params(plain) == plif_nodes


def test_projection_pairs():
    with torch.device("meta"):
        basic_global, bottleneck_stage = danet("c", 18), danet("a", 50)
    assert sorted(basic_global.projections) == sorted(
        f"g{s}_to_g{d}" for s, d in [(1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)]
    )
    assert sorted(bottleneck_stage.projections) == ["g0_to_g1", "g1_to_g2", "g2_to_g3", "g3_to_g4"]


def record(model: DANet, x: torch.Tensor):
    """Run ``model`` on ``x``; return the stem output, each unit's (input, output) and the head input.

    Tests run in train mode: BN then uses batch statistics, so untrained tiny nets still spike
    (with fresh running statistics in eval mode most units stay silent).
    """
    seen: dict[str, list] = {"units": [], "stem": [], "head": []}
    hooks = [
        model.stem.register_forward_hook(lambda m, i, o: seen["stem"].append(o)),
        model.head.register_forward_pre_hook(lambda m, i: seen["head"].append(i[0])),
    ]
    for unit in model.units():
        hooks.append(unit.register_forward_hook(lambda m, i, o: seen["units"].append((i[0], o))))
    functional.reset_net(model)
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen["stem"][0], seen["units"], seen["head"][0]


def expected_inputs(model: DANet, x0, units, layers, span, scale):
    """The DA sums every unit (and the head) should read, rebuilt from the recorded outputs alone."""
    stage_of = [s for s, n in enumerate(layers, start=1) for _ in range(n)]
    # shape groups by the documented rule: stages 1..4, stem 0 unless it has stage 1's shape
    outs = [(1 if x0.shape == units[0][1].shape else 0, x0)] + [
        (g, o) for g, (_, o) in zip(stage_of, units, strict=True)
    ]

    def project(src, dst, t):
        p = model.projections[f"g{src}_to_g{dst}"]
        functional.reset_net(p)
        with torch.no_grad():
            return p(t)

    expected = []
    stage_input = None
    for idx in range(len(units) + 1):  # idx == len(units): the head
        earlier = outs[: idx + 1]  # stem and units before this one
        if idx < len(units):
            first = idx == 0 or stage_of[idx] != stage_of[idx - 1]
            target = outs[idx][0] if first else stage_of[idx]
        else:
            first, target = False, 4
        if span == "global":
            total, n = 0, len(earlier)
            for g in sorted({g for g, _ in earlier}):
                group_sum = sum(o for gg, o in earlier if gg == g)
                total = total + (group_sum if g == target else project(g, target, group_sum))
        else:
            same = [o for g, o in earlier if g == target]
            if target == outs[0][0]:  # stage 1 with the stem in its group: plain sum
                total, n = sum(same), len(same)
            else:
                total, n = project(target - 1, target, stage_input) + sum(same), 1 + len(same)
        s = total / n if scale == "mean" else total
        if first:
            stage_input = s
        expected.append(s)
    return expected


@pytest.mark.parametrize("domain", ["spike", "membrane"])
@pytest.mark.parametrize("span", ["global", "stage"])
@pytest.mark.parametrize(
    "block,scale,proj,size",
    [
        ("basic", "none", "pool", 32),
        ("bottleneck", "none", "conv", 28),
        ("bottleneck", "mean", "pool", 30),
    ],
)
def test_every_unit_reads_the_da_sum(domain, span, block, scale, proj, size):
    layers = (1, 2, 1, 2)
    model = tiny(domain, span, block, layers, scale=scale, proj=proj)
    torch.manual_seed(0)
    x0, units, head_in = record(model, 3 * torch.rand(2, 2, 3, size, size))
    assert all(out.abs().sum() > 0 for _, out in units)  # every unit contributes to the sums
    expected = expected_inputs(model, x0, units, layers, span, scale)
    for (got, _), want in zip(units, expected[:-1], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(head_in, expected[-1], rtol=1e-5, atol=1e-5)


def test_global_sum_differs_from_stage_chain():
    # Same weights, only the wiring differs: from stage 3 on the global sum carries direct
    # projections of stage 1 (and the stem) that the stage chain does not.
    torch.manual_seed(0)
    glob, chain = tiny("membrane", "global"), tiny("membrane", "stage")
    chain.load_state_dict(glob.state_dict(), strict=False)
    x = 3 * torch.rand(2, 2, 3, 32, 32)
    (_, g_units, _), (_, c_units, _) = record(glob, x), record(chain, x)
    # units: stage 1 = [0], stage 2 = [1, 2], stage 3 = [3], stage 4 = [4, 5]; unit 3 reads group 2
    for k in range(4):
        torch.testing.assert_close(g_units[k][0], c_units[k][0])
    for k in (4, 5):
        assert not torch.allclose(g_units[k][0], c_units[k][0])


def test_spike_domain_sums_are_multispikes():
    torch.manual_seed(0)
    model = tiny("spike", "global", "bottleneck")
    x0, units, head_in = record(model, 4 * torch.rand(2, 2, 3, 32, 32))
    inputs = [i for i, _ in units[1:]] + [head_in]
    for t in inputs:
        assert torch.equal(t, t.round()) and t.min() >= 0
    assert max(t.max().item() for t in inputs) >= 2  # sums of several spikes, not binary
    for _, out in units:
        assert set(out.unique().tolist()) <= {0.0, 1.0}


def test_membrane_domain_sums_are_real():
    torch.manual_seed(0)
    model = tiny("membrane", "global", "bottleneck")
    _, units, head_in = record(model, 4 * torch.rand(2, 2, 3, 32, 32))
    for t in [i for i, _ in units[1:]] + [head_in]:
        assert not torch.equal(t, t.round())
        assert t.min() < 0


def test_zero_init_last_bn_defaults():
    membrane, spike = danet("d", 18, width=1 / 16), danet("c", 18, width=1 / 16)
    assert all(u.last_bn.weight.abs().sum() == 0 for u in membrane.units())
    assert all(u.last_bn.weight.abs().sum() > 0 for u in spike.units())
    assert all(
        u.last_bn.weight.abs().sum() == 0
        for u in danet("c", 18, width=1 / 16, zero_init_last_bn=True).units()
    )


def test_registered_names_and_metadata():
    assert list_models("danet*") == sorted(NAMES)
    for name in NAMES:
        info = model_info(name)
        assert info.family == "danet" and info.provenance == RECONSTRUCTED and info.default_T == 4
        assert "reconstructed from the paper's abstract" in info.notes
        assert "analog first conv (direct encoding)" in info.non_spiking
    assert "membrane-domain shortcut adds" in model_info("danet_d50").non_spiking
    assert "membrane-domain shortcut adds" not in model_info("danet_c50").non_spiking
    assert "77.22" in model_info("danet_c152").notes


@pytest.mark.parametrize(
    "variant,domain,span",
    [
        ("a", "spike", "stage"),
        ("b", "membrane", "stage"),
        ("c", "spike", "global"),
        ("d", "membrane", "global"),
    ],
)
def test_variants(variant, domain, span):
    model = create_model(f"danet_{variant}50", width=1 / 16)
    assert (model.domain, model.span, model.proj, model.scale) == (domain, span, "pool", "none")


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_tiny(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, input_size="cifar", width=1 / 16)
    x = 3 * torch.rand(2, 2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 2, 10)
    out.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    stem_conv = model.stem[0][0]
    assert stem_conv.weight.grad.abs().sum() > 0  # the loss reaches the first layer


def test_imagenet_stem_shape():
    model = danet("c", 18, width=1 / 16, num_classes=7)
    assert model(torch.rand(1, 1, 3, 64, 64)).shape == (1, 1, 7)


def test_reset_net_makes_forwards_identical():
    torch.manual_seed(0)
    # train mode (batch statistics): an untrained net in eval mode is silent, see record()
    model = danet("c", 18, num_classes=10, input_size="cifar", width=1 / 16)
    x = 4 * torch.rand(2, 2, 3, 32, 32)
    with torch.no_grad():
        first = model(x)
        carried = model(x)  # membrane state carried over from the first pass
        functional.reset_net(model)
        again = model(x)
    assert not torch.equal(first, carried)
    torch.testing.assert_close(first, again, rtol=0, atol=0)


@pytest.mark.parametrize(
    "kwargs", [{"variant": "e"}, {"depth": 20}, {"proj": "max"}, {"scale": "sum"}, {"input_size": "mnist"}]
)
def test_invalid_options(kwargs):
    with pytest.raises(ValueError):
        danet(**kwargs)
