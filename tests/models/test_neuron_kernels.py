"""Fused neuron paths in inference against the torch reference path, for every neuron kind of the families.

On the CPU (under ``fused_on_cpu``): the stand-in surrogate path (spikingjelly's op, its CPU loop) and our
Triton kernels (through Triton's interpreter) give the reference's outputs and membranes bit for bit,
over several steps with resets and across calls; training gradients are the configured surrogate's.
``gpu`` tests compare on CUDA.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from spikingjelly._ops.surrogate import _surrogate_spec
from spikingjelly.activation_based import functional, neuron

from bench.metrics.timing import neuron_implementation
from bench.models import neuron_kernels
from bench.models.ms_resnet import ms_resnet18
from bench.models.neurons import (
    INFERENCE_SURROGATE,
    SURROGATES,
    LIFNode,
    fused_kernels,
    fused_on_cpu,
    make_neuron,
    needs_grad,
)
from bench.models.registry import create_model
from bench.models.resnet_parts import LIF_025_PARAMS
from bench.models.spikeformer import PLIF_PARAMS

# Kinds with a surrogate lacking a fused kernel (rect): spikingjelly's op with the stand-in in inference.
STAND_IN_CASES = {
    "if": ("if", {"surrogate": "rect"}),
    "if_soft": ("if", {"surrogate": "rect", "v_reset": None, "v_threshold": 0.7}),
    "lif_ms": ("lif", dict(LIF_025_PARAMS)),
    "lif_decay_input": ("lif", {"tau": 2.0, "surrogate": "rect"}),
    "plif": ("plif", {**PLIF_PARAMS, "surrogate": "rect"}),
    "plif_soft": ("plif", {"surrogate": "rect", "v_reset": None, "decay_input": False}),
}
# Position of the surrogate among the arguments of spikingjelly's functional.<kind>_multi_step.
SURROGATE_ARG = {"if": 4, "lif": 6, "plif": 6}
# Kinds with our Triton kernel.
ANALOG_CASES = {
    "liaf": ("liaf", {"tau": 2.0}),
    "liaf_ms_soft_threshold_related": ("liaf", {"tau": 4 / 3, "decay_input": False, "v_reset": None,
                                                "v_threshold": 0.5, "threshold_related": True}),
    "pliaf": ("pliaf", dict(PLIF_PARAMS)),
    "pliaf_soft_no_decay_input": ("pliaf", {"decay_input": False, "v_reset": None, "v_threshold": 0.3}),
}
DSR_CASES = {
    "dsr_if": ("dsr_if", {"T": 5, "v_threshold": 1.0, "alpha": 0.5, "v_threshold_lower_bound": 0.01}),
    "dsr_lif": ("dsr_lif", {"T": 5, "v_threshold": 0.3, "alpha": 0.3, "tau": 1.0, "delta_t": 0.05,
                            "v_threshold_lower_bound": 0.0005}),
    "dsr_if_fixed_threshold": ("dsr_if", {"T": 5, "v_threshold": 0.8, "v_threshold_training": False}),
}


def drive(T: int = 5, shape: tuple[int, ...] = (3, 2, 4, 4), scale: float = 3.0,
          seed: int = 0) -> torch.Tensor:
    """Inputs that charge many neurons past threshold within a few steps (so resets happen), some below 0."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, *shape, generator=g) - 0.3) * scale


def two_calls(node: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Outputs and membranes of two calls in a row from a reset node (the second starts from the first v)."""
    functional.reset_net(node)
    got = []
    for _ in range(2):
        got.append(node(x).detach())
        v = getattr(node, "v", None)
        if isinstance(v, torch.Tensor):
            got.append(v.detach().clone())
    return got


def reference(node: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    with fused_kernels(False), torch.no_grad():
        return two_calls(node, x)


def count_launches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    launched: list[str] = []
    real = neuron_kernels._launch

    def spy(kernel, *args, **kwargs):
        launched.append(kernel.__name__ if hasattr(kernel, "__name__") else str(kernel))
        return real(kernel, *args, **kwargs)

    monkeypatch.setattr(neuron_kernels, "_launch", spy)
    return launched


# ---- the stand-in surrogate -----------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_factory_surrogates_fire_by_heaviside_in_the_forward(name):
    """The premise of the stand-in: every surrogate the factory builds outputs (x >= 0) in spiking mode."""
    x = torch.cat([torch.linspace(-3, 3, 101), torch.tensor([0.0, -0.0, 1e-30, -1e-30, 1e-45])])
    sg = SURROGATES[name]()
    assert torch.equal(sg(x), (x >= 0).float())


def test_only_kernel_less_surrogates_get_our_subclass():
    assert _surrogate_spec(INFERENCE_SURROGATE) is not None, "the stand-in must have a fused kernel"
    assert type(make_neuron("lif", **LIF_025_PARAMS)) is LIFNode
    assert type(make_neuron("lif")) is neuron.LIFNode  # ATan has a kernel: spikingjelly's class unchanged
    assert type(make_neuron("plif", surrogate="sigmoid")) is neuron.ParametricLIFNode
    assert isinstance(make_neuron("if", surrogate="rect"), neuron.IFNode)
    lifs = [m for m in ms_resnet18(width=1 / 16).modules() if isinstance(m, neuron.LIFNode)]
    assert lifs and all(isinstance(m, LIFNode) for m in lifs)


@pytest.mark.parametrize("case", sorted(STAND_IN_CASES))
def test_stand_in_path_equals_reference(case, monkeypatch):
    kind, params = STAND_IN_CASES[case]
    node = make_neuron(kind, **params)
    if kind == "plif":
        with torch.no_grad():
            node.w.fill_(0.3)  # a learned tau, not the initial one
    x = drive()
    expected = reference(node, x)
    seen = []
    op = f"{kind}_multi_step"
    real = getattr(functional, op)

    def spy(*args, **kwargs):
        seen.append(args[SURROGATE_ARG[kind]])
        return real(*args, **kwargs)

    monkeypatch.setattr(functional, op, spy)
    with torch.no_grad():
        two_calls(node, x)
    assert seen and all(sg is node.surrogate_function for sg in seen), "CPU keeps the (faster) torch loop"
    seen.clear()
    with fused_on_cpu(), torch.no_grad():
        got = two_calls(node, x)
    assert seen and all(sg is INFERENCE_SURROGATE for sg in seen), "inference must take the stand-in path"
    spikes = expected[0]
    assert 0 < spikes.mean() < 1, "the input must make some neurons fire and others not"
    for e, g in zip(expected, got, strict=True):
        assert torch.equal(e, g)


def test_stand_in_path_also_without_no_grad_when_nothing_requires_grad():
    node = make_neuron("lif", **LIF_025_PARAMS)
    assert not needs_grad(node, drive())  # no parameters, input without grad: autograd records nothing
    plif = make_neuron("plif", surrogate="rect")
    assert needs_grad(plif, drive()), "a learnable w is recorded by autograd"
    with torch.no_grad():
        assert not needs_grad(plif, drive().requires_grad_())


def test_ms_resnet_lif_gradients_are_the_rect_surrogates():
    """Training: the MS-ResNet node (LIF v <- 0.25 v + x, threshold 0.5, hard reset, detached) differentiates
    through Rect(alpha=1): sg(u) = 1 for |u| < 0.5, else 0. Two steps, loss = sum of spikes:
    dL/dx2 = sg(h2 - 0.5); dL/dx1 = sg(h1 - 0.5) + sg(h2 - 0.5) * 0.25 * (1 - s1)."""
    node = ms_resnet18(width=1 / 16).train().post
    assert isinstance(node, LIFNode)
    x1 = torch.tensor([0.3, 0.7, 1.2, 0.05, -0.2])  # h1 = x1
    x2 = torch.tensor([0.4, 0.2, 0.6, 0.95, 0.3])
    # h2 = 0.25 v1 + x2 with v1 = 0 after a spike: 0.475, 0.2, 0.6, 0.9625, 0.25 -> sg2 = 1 for all.
    # sg1: |h1 - 0.5| < 0.5 for 0.3, 0.7, 0.05 (1), not for 1.2 or -0.2 (0); s1 = 1 for 0.7 and 1.2.
    expected_x1 = torch.tensor([1.25, 1.0, 0.0, 1.25, 0.25])
    x = torch.stack([x1, x2]).unsqueeze(-1).requires_grad_()
    functional.reset_net(node)
    node(x).sum().backward()
    assert torch.allclose(x.grad[0, :, 0], expected_x1, atol=1e-6)
    assert torch.allclose(x.grad[1, :, 0], torch.ones(5), atol=1e-6)


# ---- our Triton kernels, through the interpreter --------------------------------------------

@pytest.mark.parametrize("case", sorted(ANALOG_CASES) + sorted(DSR_CASES))
def test_triton_kernel_equals_reference(case, monkeypatch):
    kind, params = {**ANALOG_CASES, **DSR_CASES}[case]
    node = make_neuron(kind, **params)
    with torch.no_grad():
        if kind == "pliaf":
            node.w.fill_(-0.4)
        elif kind.startswith("dsr") and isinstance(node.v_threshold, nn.Parameter):
            node.v_threshold.mul_(0.9)
    x = drive()
    expected = reference(node, x)
    launched = count_launches(monkeypatch)
    with fused_on_cpu(), torch.no_grad():
        got = two_calls(node, x)
    assert len(launched) == 2, "the fused kernel must run in both calls"
    if kind.startswith("dsr"):
        assert 0 < (expected[0] > 0).float().mean() < 1, "some neurons must fire"
    else:
        threshold = node.v_threshold
        assert (expected[0] >= threshold).any() and (expected[0] == 0).any(), "resets and ReLU zeros occur"
    for e, g in zip(expected, got, strict=True):
        assert torch.equal(e, g)


@pytest.mark.parametrize("kind", ["liaf", "dsr_lif"])
def test_triton_kernel_keeps_channels_last_and_strided_inputs_equal(kind, monkeypatch):
    kind_, params = {**ANALOG_CASES, **DSR_CASES}[kind]
    node = make_neuron(kind_, **params)
    x = drive(shape=(2, 3, 4, 5))
    nhwc = x.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, x.shape[:2])
    time_inner = x.permute(1, 2, 3, 4, 0).contiguous().permute(4, 0, 1, 2, 3)  # T is the fastest axis
    expected = reference(node, x)
    for variant in (nhwc, time_inner):
        with fused_on_cpu(), torch.no_grad():
            got = two_calls(node, variant)
        for e, g in zip(expected, got, strict=True):
            assert torch.equal(e, g)


def test_reference_path_where_the_kernel_does_not_apply(monkeypatch):
    launched = count_launches(monkeypatch)
    node = make_neuron("pliaf")
    x = drive()
    node(x)  # CPU without the interpreter: the torch reference
    with fused_on_cpu():
        functional.reset_net(node)
        node(x)  # gradients needed (w requires grad)
        functional.reset_net(node)
        with torch.no_grad():
            node(x.double())  # not float32
            with fused_kernels(False):
                node(x)
    assert launched == []
    assert node.fused_blocker(x) == "on cpu"
    with fused_on_cpu():
        assert node.fused_blocker(x) == "gradients needed"
        with torch.no_grad():
            assert node.fused_blocker(x) is None
            liaf = make_neuron("liaf")
            liaf.act = nn.Sigmoid()
            assert "activation Sigmoid" in liaf.fused_blocker(x)


def test_training_through_analog_and_dsr_nodes_uses_the_reference(monkeypatch):
    launched = count_launches(monkeypatch)
    for kind, params in (ANALOG_CASES["pliaf"], DSR_CASES["dsr_lif"]):
        node = make_neuron(kind, **params)
        x = drive().requires_grad_()
        with fused_on_cpu():
            node(x).sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
    assert launched == []


# ---- which implementation the reports name ---------------------------------------------------

LIF_STAND_IN = ("LIFNode: lif op -> torch-reference in inference (surrogate not used); "
                "torch-reference with gradients (surrogate has no fused kernel)")
FAMILIES = {
    "spiking_resnet18": ({"width": 1 / 16}, "IFNode: if op -> torch-reference"),
    "sew_resnet18": ({"width": 1 / 16}, "IFNode: if op -> torch-reference"),
    "ms_resnet18": ({"width": 1 / 16}, "LIFNode: lif op -> torch-reference (surrogate has no fused kernel)"),
    "danet_a50": ({"width": 1 / 16}, "ParametricLIFNode: plif op -> torch-reference"),
    "spikeformer_imagenet": ({"width": 1 / 16, "depth": 1, "img_size": 32, "T": 2},
                             "ParametricLIAFNode: own multi-step forward: torch ops"),
    "spikeformer_dvs_cifar10": ({"width": 1 / 8, "depth": 1, "img_size": 32, "T": 2},
                                "ParametricLIFNode: plif op -> torch-reference"),
    "dsr_preact_resnet18_imagenet": ({"width": 1 / 16, "T": 2},
                                     "DSRIFNode: own multi-step forward: torch ops"),
    "dsr_preact_resnet18": ({"width": 1 / 16, "T": 2}, "DSRLIFNode: own multi-step forward: torch ops"),
}
FUSED = "own multi-step forward: fused Triton kernel (bench) in inference; torch ops with gradients"


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_neuron_implementation_per_family_on_cpu(name):
    kwargs, expected = FAMILIES[name]
    model = create_model(name, **kwargs)
    cpu = torch.device("cpu")
    assert neuron_implementation(model, cpu) == expected
    with fused_kernels(False):
        off = neuron_implementation(model, cpu)
    if name == "ms_resnet18":
        assert off == expected
        with fused_on_cpu():
            assert neuron_implementation(model, cpu) == LIF_STAND_IN
            with fused_kernels(False):
                assert neuron_implementation(model, cpu) == expected
    elif "own multi-step" in expected:
        assert off == expected.split(":")[0] + ": own multi-step forward: torch ops (fused kernels disabled)"
        compiled = neuron_implementation(model, cpu, execution="compile")
        assert compiled.endswith("torch ops (traced by torch.compile)")
        with fused_on_cpu():
            assert neuron_implementation(model, cpu) == expected.split(":")[0] + ": " + FUSED
    else:
        assert off == expected  # spikingjelly's own choice is not ours to switch


def test_neuron_implementation_keeps_distinct_paths_of_one_class_name():
    model = nn.Sequential(make_neuron("lif"), make_neuron("lif", **LIF_025_PARAMS))
    with fused_on_cpu():
        assert neuron_implementation(model, torch.device("cpu")) == (
            "LIFNode: lif op -> torch-reference | " + LIF_STAND_IN.removeprefix("LIFNode: "))


# ---- CUDA: the fused path against the reference path on the GPU ------------------------------

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("case", sorted(ANALOG_CASES) + sorted(DSR_CASES))
def test_cuda_triton_kernel_equals_cuda_reference(case, monkeypatch):
    """Bit for bit: the kernel repeats eager CUDA's float32 operations (reciprocal for ``/ tau``, no FMA)."""
    kind, params = {**ANALOG_CASES, **DSR_CASES}[case]
    node = make_neuron(kind, **params).cuda()
    x = drive(shape=(64, 8, 16, 16)).cuda()
    expected = reference(node, x)
    launched = count_launches(monkeypatch)
    with torch.no_grad():
        got = two_calls(node, x)
    assert len(launched) == 2
    for e, g in zip(expected, got, strict=True):
        assert torch.equal(e, g), f"{case}: {(e != g).sum().item()} of {e.numel()} values differ"


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("case", sorted(STAND_IN_CASES))
def test_cuda_stand_in_path_matches_cuda_reference(case):
    """spikingjelly's kernels divide by tau with correct rounding (eager CUDA multiplies by a reciprocal) and
    contract PLIF's multiply-add into an FMA: membranes may differ by an ulp, and a membrane within an ulp of
    the threshold may fire on one path and not the other. Allowed: at most 1e-4 of the spikes differ, and at
    most 1e-4 of the membranes differ by more than 1e-5 relative (those that fired differently)."""
    from spikingjelly.activation_based.functional import neuron_implementation as sj_impl

    kind, params = STAND_IN_CASES[case]
    node = make_neuron(kind, **params).cuda()
    x = drive(shape=(64, 8, 16, 16)).cuda()
    expected = reference(node, x)
    with torch.no_grad():
        got = two_calls(node, x)
    assert sj_impl(kind, x.device)["implementation"] in ("cuda", "triton")
    for spikes_ref, spikes in zip(expected[::2], got[::2], strict=True):
        assert (spikes_ref != spikes).float().mean() <= 1e-4
    for v_ref, v in zip(expected[1::2], got[1::2], strict=True):
        assert (~torch.isclose(v_ref, v, rtol=1e-5, atol=1e-6)).float().mean() <= 1e-4


@pytest.mark.gpu
@needs_cuda
def test_cuda_reports_name_the_fused_paths():
    device = torch.device("cuda:0")
    ms = neuron_implementation(ms_resnet18(width=1 / 16).to(device), device)
    assert ms.startswith("LIFNode: lif op -> ") and " in inference (surrogate not used)" in ms
    assert "torch-reference in inference" not in ms
    spikeformer = create_model("spikeformer_imagenet", width=1 / 16, depth=1, img_size=32, T=2).to(device)
    assert neuron_implementation(spikeformer, device) == "ParametricLIAFNode: " + FUSED


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("name", ["ms_resnet18", "spikeformer_imagenet", "dsr_preact_resnet18_imagenet"])
def test_cuda_whole_family_fused_equals_reference(name):
    kwargs = {k: v for k, v in FAMILIES[name][0].items() if k != "width"}
    if name.startswith("dsr"):
        kwargs["neuron_params"] = {"v_threshold": 1.0}  # the 6.0 init leaves an untrained net silent
    if name.startswith("spikeformer"):
        kwargs["drop_path_rate"] = 0.0  # stochastic depth in train mode would differ between the two passes
    model = create_model(name, width=0.25, **kwargs).cuda().train()  # batch-statistics BN: the nets fire
    size = 32 if name == "spikeformer_imagenet" else 64
    x = torch.rand(kwargs.get("T", 4), 4, 3, size, size, generator=torch.Generator().manual_seed(0)).cuda()
    with torch.no_grad():
        functional.reset_net(model)
        fused = model(x)
        with fused_kernels(False):
            functional.reset_net(model)
            ref = model(x)
    assert ref.abs().max() > 0, "a silent net would make the comparison vacuous"
    if name == "ms_resnet18":
        # spikingjelly's kernel vs its torch path: see test_cuda_stand_in_path_matches_cuda_reference
        assert torch.allclose(fused, ref, atol=1e-4 * max(1.0, ref.abs().max().item()))
    else:
        assert torch.equal(fused, ref)


def test_triton_is_imported_only_when_a_kernel_is_asked_for():
    """Importing the models and running a net of fused-kernel neurons (DSR) on CPU imports no Triton (about 0.1 s
    of start-up; a dry run or ``bench models`` never needs it); asking whether the kernels are available does.
    (spikingjelly's own LIF-family ops import Triton on their first call, which this module cannot change.)"""
    import subprocess
    import sys

    code = """
import sys, torch
from spikingjelly.activation_based import functional
from bench.models.neurons import DSRIFNode
from bench.models.registry import create_model
net = create_model("dsr_preact_resnet18", num_classes=10, in_channels=1, width=0.125, T=2).eval()
with torch.no_grad():
    net(torch.rand(2, 1, 1, 8, 8))
    DSRIFNode(step_mode="m")(torch.rand(2, 3, 4))
functional.reset_net(net)
assert "triton" not in sys.modules, "triton imported"
from bench.models import neuron_kernels
reason = neuron_kernels.unavailable_reason()
print("imported" if "triton" in sys.modules else reason)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "imported" or done.stdout.startswith("triton is not importable"), done.stdout
