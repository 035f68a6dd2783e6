"""Counting edge cases an independent count once disagreed with: half precision, BN after an in-place add,
views of one storage, products computed by torch functions outside any counted module."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from spikingjelly.activation_based import layer, neuron

from bench.metrics import kinds, ops_rules
from bench.metrics.ops import count_ops, profile
from bench.metrics.ops_rules import ProbeState, classify
from bench.models import create_model

T, B = 2, 2


# ------------------------------------------------------------------------------------- half precision

def ternary_(w: torch.Tensor, gen: torch.Generator) -> None:
    """Weights in {-1, 0, 1}: every product and sum below stays an exactly representable small number."""
    with torch.no_grad():
        w.copy_(torch.randint(-1, 2, w.shape, generator=gen).to(w.dtype))


class ExactNet(nn.Module):
    """conv (analog input) -> BN -> IF -> conv -> BN -> IF; the two spike maps added (multi-spikes {0,1,2})
    -> conv s2 -> BN -> IF -> linear. Inputs are multiples of 1/4 below 1 and weights in {-1, 0, 1}, BN is
    the identity (mean 0, var 1, eps 0): every value the net computes is exact in float16 and bfloat16
    (integers below 256, quarters below 16), so all three dtypes fire the same spikes."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(0)

        def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Module:
            conv, bn = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout, eps=0.0)
            ternary_(conv.weight, gen)
            return layer.SeqToANNContainer(conv, bn)

        self.c1, self.c2, self.c3 = conv_bn(2, 8), conv_bn(8, 8), conv_bn(8, 4, stride=2)
        self.sn1, self.sn2, self.sn3 = (neuron.IFNode(v_threshold=0.5, step_mode="m") for _ in range(3))
        self.fc = nn.Linear(4 * 16 * 16, 10, bias=False)
        ternary_(self.fc.weight, gen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.sn1(self.c1(x))
        s2 = self.sn2(self.c2(s1))
        s3 = self.sn3(self.c3(s1 + s2))
        return self.fc(s3.flatten(2))


def exact_input(dtype: torch.dtype) -> torch.Tensor:
    return (torch.randint(0, 4, (T, B, 2, 32, 32), generator=torch.Generator().manual_seed(1)) / 4).to(dtype)


def neuron_outputs(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    outs: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda m, a, o: outs.append(o.float())) for m in (net.sn1, net.sn2, net.sn3)]
    with torch.no_grad():
        net(x)
    for h in handles:
        h.remove()
    return outs


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_counts_equal_float32_counts(dtype):
    """fp16/bf16 spikes count exactly as in fp32: same ACs, SOPs, MACs per layer, same firing, when the
    spikes are the same (checked: the half model's recorded neuron outputs equal the fp32 model's)."""
    net32 = ExactNet().eval()
    net16 = copy.deepcopy(net32).to(dtype)
    x32, x16 = exact_input(torch.float32), exact_input(dtype)
    outs32, outs16 = neuron_outputs(net32, x32), neuron_outputs(net16, x16)
    assert all(torch.equal(a, b) for a, b in zip(outs32, outs16, strict=True))
    assert outs32[0][0].sum() > 2048  # more events per step than fp16 (or bf16, 256) can sum exactly

    firing32, ops32 = profile(net32, x32)
    firing16, ops16 = profile(net16, x16)
    assert ops16.to_dict() == ops32.to_dict()
    assert firing16.to_dict() == firing32.to_dict()
    rows = {r.name: r for r in ops16.layers}
    assert rows["c1.0"].kinds == ("analog",) and rows["c1.0"].macs > 0 and rows["c1.0"].acs == 0
    assert rows["c2.0"].kinds == ("binary",) and rows["c2.0"].acs > 0 and rows["c2.0"].macs == 0
    assert rows["c3.0"].kinds == ("multispike",) and rows["c3.0"].acs > 0
    assert rows["fc"].kinds == ("binary",) and rows["fc"].acs > 0
    assert firing16.mean_rate is not None and 0 < firing16.mean_rate < 1


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_kinds_and_event_totals(dtype, spikes):
    s = spikes(4, 8, 32, 32, p=0.5, seed=3)  # 16k+ events: beyond exact half-precision sums
    two = s + spikes(4, 8, 32, 32, p=0.5, seed=4)
    info = classify(s.to(dtype))
    assert info.kind == "binary" and float(info.events) == float(s.sum())
    info = classify((0.5 * s).to(dtype))
    assert info.kind == "scaled" and float(info.events) == float(s.sum())
    info = classify(two.to(dtype))
    assert info.kind == "multispike" and float(info.events) == float(two.sum())


# ------------------------------------------------------------------------- the two-level test is exact

def test_nearly_binary_tensors_are_analog():
    """One value a float32 ulp below 1 among ones: an aggregate test (sum(x) == sum(x^2) in float32) passed
    it as binary; counting the ones against the nonzeros does not."""
    assert classify(torch.tensor([1.0] * 100 + [1.0 - 2.0 ** -24])).kind == "analog"
    assert classify(torch.tensor([0.7] * 100 + [0.7 * (1 - 2.0 ** -23), 0.0])).kind == "analog"
    assert classify(torch.tensor([0.0, -0.0, 1.0])).kind == "binary"  # a negative zero is a zero


def test_host_and_device_decisions_agree_on_large_tensors():
    """Above 2^21 elements the host path first looks for an analog witness in a 1/61 sample; its verdicts
    (and every shortcut after it) must be the device decision's, witness or not."""
    gen = torch.Generator().manual_seed(0)
    spikes = (torch.rand(4, 8, 256, 257, generator=gen) < 0.3).float()
    assert spikes.numel() >= kinds._PRESCREEN_MIN
    hidden = spikes.clone().flatten()
    hidden[1] = 0.5  # not on the sample's stride: no witness, the exact tests must catch it
    tensors = {"binary": spikes, "scaled": 0.25 * spikes, "multispike": spikes + spikes.flip(0),
               "softmax": torch.softmax(torch.randn(4, 8, 256, 257, generator=gen), -1), "hidden": hidden}
    for name, x in tensors.items():
        host, device = kinds.classify_on_host(x), kinds.classify(x)
        assert host.kind == device.kind and host.events == float(device.events), name
    assert [kinds.classify_on_host(x).kind for x in tensors.values()] == \
        ["binary", "scaled", "multispike", "analog", "analog"]


def test_chunked_tests_equal_whole_tensor_tests(monkeypatch, spikes):
    tensors = [spikes(3, 50, p=0.3), 0.25 * spikes(3, 50), spikes(3, 50) + spikes(3, 50, seed=2), torch.rand(3, 50)]
    whole = [(classify(t).kind, float(classify(t).events)) for t in tensors]
    monkeypatch.setattr(kinds, "_CHUNK", 7)
    monkeypatch.setattr(kinds, "_CHUNK_CPU", 7)
    assert [(classify(t).kind, float(classify(t).events)) for t in tensors] == whole


def test_exact_sum_over_groups_is_exact_up_to_the_multispike_bound():
    x = torch.full((3, 1000, 5), float(kinds.MULTISPIKE_MAX))
    x[:, 7] = 1.0  # totals that float32 alone would round
    expected = x.double().sum(1)
    assert torch.equal(kinds.exact_sum(x, 1), expected)
    assert torch.equal(kinds.exact_sum(x.half()[:, :300], 1), x.half()[:, :300].double().sum(1))


def test_multispike_values_beyond_the_exact_bound_are_an_error():
    big = torch.tensor([0.0, 1.0, float(kinds.MULTISPIKE_MAX + 1)] * 4).view(1, 2, 6)
    with pytest.raises(ValueError, match="too large to count exactly"):
        count_ops(nn.Linear(6, 2), big)


# ---------------------------------------------------------------------------- BN after an in-place add

class ConvAddBN(nn.Module):
    """``y = conv(x); y += x; bn(y)`` (in place) or ``y = y + x`` (out of place) or no add (foldable)."""

    def __init__(self, mode: str):
        super().__init__()
        self.conv, self.bn, self.mode = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.flatten(0, 1)
        y = self.conv(z)
        if self.mode == "in_place":
            y += z
        elif self.mode == "out_of_place":
            y = y + z
        return self.bn(y)


@pytest.mark.parametrize("mode,macs,note", [("in_place", 288, "not folded"), ("out_of_place", 288, "not folded"),
                                            ("none", 0, "folded into conv")])
def test_bn_is_folded_only_into_an_unmodified_conv_output(mode, macs, note, spikes):
    x = spikes(2, 1, 4, 6, 6)  # per sample: T x C x H x W = 2 x 4 x 6 x 6 = 288 BN inputs
    bn = next(r for r in count_ops(ConvAddBN(mode).eval(), x).layers if r.name == "bn")
    assert bn.macs == macs and bn.note == note


def test_two_views_of_one_storage_keep_their_own_kinds():
    storage = torch.zeros(16)
    storage[[0, 2, 5]] = 1.0
    storage[8] = 0.5  # inside the strided view only
    head = storage[:8]  # elements 0..7: binary
    columns = storage.view(4, 4)[:, :2]  # elements 0, 1, 4, 5, 8, 9, 12, 13: same start, same count
    assert head.data_ptr() == columns.data_ptr() and head.numel() == columns.numel()
    state = ProbeState()
    assert state.classify(head).kind == "binary"
    assert state.classify(columns).kind == "analog"
    assert state.classify(head.view(2, 4)).kind == "binary"  # a view of the same elements may reuse it
    storage[1] = 0.25  # modified in place: the version counter tells the cache
    assert state.classify(head).kind == "analog"


class TwoViews(nn.Module):
    """Two linears reading two different views of one input with the same start and size."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 3), nn.Linear(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [T, B, 16]
        head = x[..., :8]  # elements 0..7 of each row
        columns = x.unflatten(-1, (4, 4))[..., :2]  # elements 0, 1, 4, 5, 8, 9, 12, 13
        return self.fc1(head).sum(-1) + self.fc2(columns).sum((-2, -1))


def test_views_in_a_model_get_their_own_kinds():
    x = torch.zeros(T, B, 16)
    x[..., [0, 2, 5]] = 1.0
    x[..., 8] = 0.5
    rows = {r.name: r for r in count_ops(TwoViews(), x).layers}
    assert rows["fc1"].kinds == ("binary",) and rows["fc1"].acs == T * 3 * 3
    assert rows["fc2"].kinds == ("analog",) and rows["fc2"].macs == T * 4 * 2 * 3


# ------------------------------------------------------ products computed by torch functions in a forward

class BareAttention(nn.Module):
    """Spike products as a bare ``q @ k.transpose(-2, -1)`` in forward (no MatMul module)."""

    def __init__(self):
        super().__init__()
        self.q_sn = neuron.IFNode(v_threshold=0.5, step_mode="m")
        self.k_sn = neuron.IFNode(v_threshold=0.5, step_mode="m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k = self.q_sn(x), self.k_sn(x.flip(-1))
        return q @ k.transpose(-2, -1)


def test_bare_matmul_of_spikes_is_counted():
    x = torch.rand(T, B, 5, 6, generator=torch.Generator().manual_seed(0))
    report = count_ops(BareAttention(), x)
    row = next(r for r in report.layers if r.name == "BareAttention:matmul")
    # independent count: nonzero products q[t,b,i,d] * k[t,b,j,d], from the neurons' recorded spikes
    net = BareAttention()
    spikes: dict[str, torch.Tensor] = {}
    for name in ("q_sn", "k_sn"):
        getattr(net, name).register_forward_hook(lambda m, a, o, n=name: spikes.__setitem__(n, o))
    with torch.no_grad():
        net(x)
    qs, ks = spikes["q_sn"], spikes["k_sn"]
    expected = sum(float(qs[t, b, i, d] != 0 and ks[t, b, j, d] != 0)
                   for t, b, i, j, d in itertools.product(range(T), range(B), range(5), range(5), range(6)))
    assert expected > 0
    assert row.acs * B == expected and row.sops == row.acs and row.macs == 0
    assert row.dense_macs * B == T * B * 5 * 5 * 6
    assert row.kinds == ("binary",) and report.complete


class ParentLinear(nn.Module):
    """``F.linear(s, w)`` on a parameter of the parent module, spikes from a child neuron."""

    def __init__(self):
        super().__init__()
        self.sn = neuron.IFNode(v_threshold=0.5, step_mode="m")
        self.w = nn.Parameter(torch.randn(3, 6, generator=torch.Generator().manual_seed(0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.sn(x), self.w)


def test_functional_linear_on_a_parent_parameter_is_counted():
    x = torch.rand(T, B, 6, generator=torch.Generator().manual_seed(2))
    net = ParentLinear()
    out: dict[str, torch.Tensor] = {}
    net.sn.register_forward_hook(lambda m, a, o: out.__setitem__("s", o))
    report = count_ops(net, x)
    with torch.no_grad():
        net(x)
    row = next(r for r in report.layers if r.name == "ParentLinear:linear")
    assert row.acs * B == float((out["s"] != 0).sum()) * 3  # each event adds one weight row (3 outputs)
    assert row.dense_macs * B == T * B * 6 * 3 and row.macs == 0
    assert report.complete and report.unverified == [{"module": "ParentLinear", "type": "ParentLinear"}]


class FunctionalConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.flatten(0, 1)
        return F.conv2d(z, self.conv.weight, None, 2, 1) + self.conv(z)


def test_functional_conv_counts_equal_the_module_rule(spikes):
    rows = {r.name: r for r in count_ops(FunctionalConv(), spikes(T, B, 3, 7, 7)).layers}
    fn, mod = rows["FunctionalConv:conv2d"], rows["conv"]
    assert (fn.acs, fn.sops, fn.macs, fn.dense_macs) == (mod.acs, mod.sops, mod.macs, mod.dense_macs)
    assert fn.acs > 0


class Einsum(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("tbi,tbj->tbij", x, x)


def test_products_without_a_rule_are_listed_and_strict_raises(spikes):
    report = count_ops(nn.Sequential(Einsum()), spikes(T, B, 4))
    assert report.uncounted == [{"module": "0", "type": "einsum (torch function call)"}]
    assert not report.complete
    with pytest.raises(NotImplementedError, match="einsum called in 0"):
        count_ops(nn.Sequential(Einsum()), spikes(T, B, 4), strict=True)


class RaisingLinear(nn.Linear):
    def forward(self, x):
        raise RuntimeError("boom")


class CatchesAndMultiplies(nn.Module):
    """A counted module whose forward raises (caught here), then a product outside every counted module."""

    def __init__(self):
        super().__init__()
        self.flaky = RaisingLinear(4, 4)

    def forward(self, x):
        try:
            self.flaky(x)
        except RuntimeError:
            pass
        return torch.matmul(x, x.transpose(-1, -2))


def test_a_counted_module_that_raises_leaves_the_counted_state(spikes):
    """The counted state is left when a counted module's forward raises: a product after it, outside every
    counted module, is still seen and counted, and no function mode is left behind."""
    report = count_ops(CatchesAndMultiplies(), spikes(T, B, 3, 4))
    assert [r.name for r in report.layers] == ["CatchesAndMultiplies:matmul"]
    assert report.layers[0].acs > 0
    assert torch._C._len_torch_function_stack() == 0


def test_calls_inside_counted_modules_are_not_counted_twice(spikes):
    """nn.Linear's own F.linear, MatMul's ``@``, and our Spikeformer's products: module rows only."""
    report = count_ops(nn.Sequential(nn.Linear(4, 3)), spikes(T, B, 4))
    assert [r.name for r in report.layers] == ["0"]
    torch.manual_seed(0)
    model = create_model("spikeformer_dvs_gesture", num_classes=5, width=0.25, input_size="cifar", T=T,
                         in_channels=3).eval()
    report = count_ops(model, torch.rand(T, 1, 3, 32, 32))
    assert report.complete and not [r.name for r in report.layers if ":" in r.name]


def test_an_analog_witness_in_the_head_block_decides_without_a_full_pass(monkeypatch):
    """A negative or fractional value in the first 4096 elements proves a tensor analog: no full min/max
    pass is made (the host path's cheap first look); without a witness there, the exact tests still decide."""
    gen = torch.Generator().manual_seed(0)
    normalised = torch.randn(64, 4, 256, generator=gen)  # a LayerNorm output: negatives everywhere
    attention = torch.softmax(torch.randn(64, 4, 64, 64, generator=gen), -1).transpose(-1, -2)  # a strided view
    late = (torch.rand(64, 4, 256, generator=gen) < 0.3).float()
    late[-1, -1, -1] = 0.5  # far from the head block: only the exact tests can see it
    integers = torch.randint(0, 3, (64, 4, 256), generator=gen)  # an integer dtype has no fractional witness
    expected = {id(normalised): "analog", id(attention): "analog", id(late): "analog", id(integers): "multispike"}
    exact = {id(x): kinds.classify(x).kind for x in (normalised, attention, late, integers)}
    assert exact == expected

    def no_full_pass(x):
        raise AssertionError("a full min/max pass was made")

    monkeypatch.setattr(kinds, "bounds", no_full_pass)
    assert kinds.classify_on_host(normalised).kind == "analog"
    assert kinds.classify_on_host(attention).kind == "analog"
    monkeypatch.undo()
    assert kinds.classify_on_host(late).kind == "analog"
    assert kinds.classify_on_host(integers).kind == "multispike"
    assert kinds.classify_on_host(integers).events == float(integers.sum())


def test_a_value_in_the_sample_proves_not_two_level_without_the_count_passes(monkeypatch):
    """A multispike tensor whose head block holds only {0, max}: a third value in its strided sample decides it
    is not two-level, with no nonzero count or count of the max over the whole tensor; where the sample holds
    none either, the full count decides (same kinds and events as the device path in both cases)."""
    gen = torch.Generator().manual_seed(0)
    doubled = (torch.rand(4, 8, 32, 32, generator=gen) < 0.3).float() * 2  # a sum of two equal spike maps
    in_sample, late = doubled.clone(), doubled.clone()
    in_sample[3, 7, 0, 5] = 1.0  # in the sample (index 0 of the longest dim), not in the head block (step 0)
    late[3, 7, 31, 31] = 1.0  # in neither: only the full count can see it
    assert kinds._head(in_sample).amax() == 2 and not ((kinds._head(in_sample) == 1).any())
    assert (kinds._sample(in_sample) == 1).any() and not (kinds._sample(late) == 1).any()
    for x in (in_sample, late):
        exact = kinds.classify(x)
        assert (exact.kind, float(exact.events)) == ("multispike", float(x.sum()))

    def no_count(*args):
        raise AssertionError("a count over the whole tensor was made")

    with monkeypatch.context() as m:
        m.setattr(kinds, "count_at", no_count)
        host = kinds.classify_on_host(in_sample, nonzeros=lambda: no_count())
    assert (host.kind, host.events) == ("multispike", float(in_sample.sum()))
    host = kinds.classify_on_host(late)
    assert (host.kind, host.events) == ("multispike", float(late.sum()))


def test_an_analog_input_is_not_copied_into_its_counting_view(monkeypatch):
    """A permuted (non-contiguous) analog input, e.g. a temporal-attention output read by a linear, is decided
    analog by its first-row witness; the [A, R, P] view that would copy it is made only for spike inputs."""
    permuted = torch.randn(4, 16, 64, 256, generator=torch.Generator().manual_seed(0)).permute(1, 2, 0, 3)
    spikes = (permuted > 0).float()

    def no_view(*args):
        raise AssertionError("the counting view was made")

    state = ops_rules.ProbeState(on_host=True)
    with monkeypatch.context() as m:
        m.setattr(ops_rules, "as_3d", no_view)
        info, events = state.inspect(permuted, 0)
    assert (info.kind, events) == ("analog", None)
    info, events = state.inspect(spikes, 0)
    assert (info.kind, float(events)) == ("binary", float(spikes.sum()))


@pytest.mark.parametrize("precision", ["highest", "medium"])
def test_sums_by_matrix_product_are_exact(precision):
    """A grid summed as ``ones @ x`` (CPU, float32, from 256 positions) equals the float64 sum bit for bit for
    integer values up to 256 with partial sums up to 2^24, also under a reduced-precision (bfloat16) float32
    matmul setting; larger values, few positions or an unknown bound take the plain sum."""
    gen = torch.Generator().manual_seed(0)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        for top, rows in ((1, 1 << 14), (3, 4096), (256, 1 << 16)):
            x = torch.randint(0, top + 1, (4, rows, 256), generator=gen).float()
            x[0, :, 0] = top  # the largest partial sum: rows x top, up to 2^24
            assert kinds._by_matmul(x, 1, float(top))
            assert torch.equal(kinds.exact_sum(x, 1, float(top)), x.double().sum(1))
    finally:
        torch.set_float32_matmul_precision(before)
    x = torch.randint(0, 3, (4, 64, 255), generator=gen).float()
    assert not kinds._by_matmul(x, 1, 2.0) and not kinds._by_matmul(torch.zeros(4, 8, 256), 1, 257.0)
    assert not kinds._by_matmul(torch.zeros(4, 8, 256), 1, None)


def test_the_first_row_witness_proves_only_analog_tensors(monkeypatch):
    """The host's first look (32 elements of the first row) claims analog only where the device decision says
    analog, on spike kinds whose first row holds fractions, zeros, -0.0 or one repeated value; it decides the
    LayerNorm and attention outputs without any reduction."""
    gen = torch.Generator().manual_seed(0)
    spikes = (torch.rand(8, 4, 64, generator=gen) < 0.5).float()
    tensors = [spikes, spikes * 0.25, spikes * 3.5, spikes * -0.0, spikes + spikes.roll(1, -1),
               torch.zeros(8, 4, 64), torch.full((8, 4, 64), 0.5), spikes.half() * 0.5, spikes.bfloat16(),
               torch.randn(8, 4, 64, generator=gen), torch.rand(8, 4, 64, generator=gen),
               spikes * 0.25 + spikes.roll(1, -1) * 0.5, spikes.masked_fill(spikes == 1, float("inf")),
               spikes.masked_fill(spikes == 1, float("nan")), spikes.transpose(0, 2), torch.randint(0, 3, (8, 4, 64))]
    claimed = [kinds.row_witness(x) for x in tensors]
    assert all(kinds.classify(x).kind == "analog" for x, c in zip(tensors, claimed, strict=True) if c)
    assert claimed == [False] * 9 + [True] * 5 + [False] * 2

    def no_reduction(x):
        raise AssertionError("a reduction was made")

    monkeypatch.setattr(kinds, "_analog_witness", no_reduction)
    assert kinds.classify_on_host(torch.randn(64, 4, 256, generator=gen)).kind == "analog"
    attention = torch.softmax(torch.randn(64, 4, 64, 64, generator=gen), -1).transpose(-1, -2)
    assert kinds.classify_on_host(attention).kind == "analog"


# ------------------------------------------------------------------------- sums of spike tensors (SEW ADD)

def integer_tensors() -> list[torch.Tensor]:
    """Non-negative integer tensors of every kind the decision tells apart, in each dtype that holds them exactly."""
    gen = torch.Generator().manual_seed(3)
    spikes = (torch.rand(4, 8, 32, 32, generator=gen) < 0.3).float()
    two_level = spikes * 2  # scaled {0, 2}
    late_one = two_level.clone()
    late_one[-1, -1, -1, -1] = 1.0  # the head block is {0, 2}; one 1 at the end makes it multispike
    multi = torch.randint(0, 4, (4, 8, 32, 32), generator=gen).float()
    big_two_level = spikes * (kinds.MULTISPIKE_MAX + 2)
    big_multi = multi * (kinds.MULTISPIKE_MAX // 2)
    out = []
    for x in (torch.zeros(4, 8, 32, 32), spikes, two_level, late_one, multi, big_two_level, big_multi):
        out += [x.to(dtype) for dtype in (torch.float16, torch.bfloat16) if torch.equal(x.to(dtype).float(), x)]
        out += [x, x.transpose(1, 3)]
    return out


def test_the_integer_decision_equals_the_full_one():
    """``integer_bound`` (the sign and integrality passes skipped) gives the full decision's kind, events and max,
    with the bound equal to the max (read off the head block when it holds it) or above it (a max pass)."""
    for x in integer_tensors():
        full = kinds.classify_on_host(x)
        for bound in (float(x.amax()), float(x.amax()) + 1):
            fast = kinds.classify_on_host(x, integer_bound=bound)
            assert (fast.code, fast.events, fast.max_value) == (full.code, full.events, full.max_value), x.dtype
    codes = {kinds.classify_on_host(x).code for x in integer_tensors()}
    assert codes == {kinds.ZERO, kinds.BINARY, kinds.SCALED, kinds.MULTISPIKE, kinds.UNSUPPORTED}


class AddedSpikes(nn.Module):
    """Two IF spike maps added (multi-spikes 0..2), then ``after`` (in place or not), then a conv."""

    def __init__(self, after):
        super().__init__()
        self.sn1 = neuron.IFNode(step_mode="m")
        self.sn2 = neuron.IFNode(v_threshold=0.5, step_mode="m")
        self.conv = layer.SeqToANNContainer(nn.Conv2d(2, 3, 3, padding=1))
        self.after = after

    def forward(self, x):
        return self.conv(self.after(self.sn1(x) + self.sn2(x), x))


AFTER = {
    "unchanged": (lambda s, x: s, "multispike"),
    "halved in place": (lambda s, x: s.mul_(0.5), "analog"),  # {0, 0.5, 1}: the noted sum is stale
    "plus the analog input": (lambda s, x: s + x, "analog"),
    "plus unclassified spikes": (lambda s, x: s + (x > 1).float(), "multispike"),  # no note: the full decision
    "one spike map doubled": (lambda s, x: s + s, "multispike"),
}


def conv_counted_as_on_the_device(build):
    """Profile ``build()`` (seeded) on the host and the device path; assert equal reports; return its one conv row."""
    torch.manual_seed(0)
    model = build().eval()
    x = torch.rand(T, B, 2, 8, 8, generator=torch.Generator().manual_seed(1)) * 2
    host, device = profile(model, x, host_decisions=True), profile(model, x, host_decisions=False)
    assert host[1].to_dict() == device[1].to_dict()
    (conv,) = [lay for lay in host[1].layers if lay.type == "Conv2d"]
    return conv


@pytest.mark.parametrize("case", list(AFTER))
def test_a_sum_of_spike_tensors_is_decided_as_without_the_shortcut(case):
    """The host path notes ``a + b`` of spike tensors as integers (fewer passes); the kinds and counts equal
    the device path's, which never takes the shortcut, also when the sum is changed in place before use."""
    after, kind = AFTER[case]
    conv = conv_counted_as_on_the_device(lambda: AddedSpikes(after))
    assert conv.kinds == (kind,)


def test_the_max_under_a_bound_is_the_max():
    """``_max_under`` returns the bound only when some element holds it (the head block, the strided sample,
    or the full pass): a max present only at the last element, or below the bound, is still found."""
    x = torch.zeros(4, 16, 64, 32, 32)
    assert kinds._max_under(x, 2.0) == 0.0
    x[-1, -1, -1, -1, -1] = 2.0
    assert kinds._max_under(x, 2.0) == 2.0
    assert kinds._max_under(x, 3.0) == 2.0
    x[0, 0, 0, 0, 0] = 1.0
    assert kinds._max_under(x[:, :, :1], 2.0) == 1.0  # a view whose head holds a value below the bound


class DisjointSpikes(nn.Module):
    """Two IF maps firing on disjoint positions (a checkerboard mask), so their sum's max (1) is below the
    noted bound (2); then a conv reads ``sum + third``, a sum of a sum; ``broadcast`` adds one channel instead."""

    def __init__(self, broadcast: bool = False):
        super().__init__()
        self.sn1, self.sn2 = (neuron.IFNode(step_mode="m") for _ in range(2))
        self.sn3 = neuron.IFNode(v_threshold=0.5, step_mode="m")
        self.conv = layer.SeqToANNContainer(nn.Conv2d(2, 3, 3, padding=1))
        self.broadcast = broadcast

    def forward(self, x):
        mask = (torch.arange(x.shape[-1]) % 2 == 0).to(x.dtype)
        s = self.sn1(x * mask) + self.sn2(x * (1 - mask))
        third = self.sn3(x[:, :, :1] if self.broadcast else x)
        return self.conv(s + third)


@pytest.mark.parametrize("broadcast", [False, True], ids=["same shape", "broadcast"])
def test_sums_of_spike_sums_count_as_on_the_device(broadcast):
    """Grids of sums (added from their terms' grids) and a bound the sum never reaches give the device path's
    kinds and counts; a broadcast term gives no grid, and the full passes decide."""
    conv = conv_counted_as_on_the_device(lambda: DisjointSpikes(broadcast))
    assert conv.kinds == ("multispike",) and conv.acs > 0


class _FullPasses(torch.overrides.TorchFunctionMode):
    """Counts torch calls reading a tensor of ``numel`` elements (full passes over it)."""

    def __init__(self, numel: int):
        super().__init__()
        self.numel, self.calls = numel, []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if args and isinstance(args[0], torch.Tensor) and args[0].numel() == self.numel and \
                getattr(func, "__name__", "") not in ("data_ptr", "numel", "dim", "stride", "is_inference",
                                                      "__get__", "__getitem__", "storage_offset", "reshape", "view",
                                                      "flatten"):
            self.calls.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def test_a_conv_reading_a_sum_of_spike_maps_makes_no_full_pass_over_it(monkeypatch):
    """The SEW ADD shortcut: the sum's value grid is its terms' grids added and its max is read off its head
    block, so the conv reading it makes no pass over all its elements (host path)."""
    model = AddedSpikes(AFTER["unchanged"][0]).eval()
    x = torch.rand(T, B, 2, 32, 32, generator=torch.Generator().manual_seed(1)) * 2  # 2 head blocks
    seen: list[list[str]] = []
    inspect = ops_rules.ProbeState.inspect

    def counted(self, t, trail):
        with _FullPasses(t.numel()) as mode:
            out = inspect(self, t, trail)
        seen.append(mode.calls)
        return out

    monkeypatch.setattr(ops_rules.ProbeState, "inspect", counted)
    profile(model, x, host_decisions=True)
    assert seen == [[]]
