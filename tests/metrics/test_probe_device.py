"""The probe on any device: no host read during the forward, no tensor made off the model's device, one
transfer at the end; CPU and CUDA counts equal for one model of every family (on a GPU machine)."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional
from torch.utils._python_dispatch import TorchDispatchMode

from bench.metrics import probe as probe_module
from bench.metrics.firing import calibrate_bn
from bench.metrics.ops import profile
from bench.metrics.probe import DEFAULT_NEURON_TYPES, Probe
from bench.models import create_model, dsr

# One model of every family at a tiny width; uncalibrated, so silent ("zero" kind) layers occur too.
FAMILIES = [
    ("spiking_resnet18", {}),
    ("sew_resnet18", {}),
    ("ms_resnet18", {}),
    ("danet_a50", {}),
    ("spikeformer_dvs_gesture", {"T": 2, "in_channels": 3}),
    ("dsr_preact_resnet18", {"T": 2}),
]
T, B, SIZE = 2, 2, 32

aten = torch.ops.aten
# Operators that read a device value on the host (or size an output by the data): each is a host sync.
SYNC_OPS = {aten._local_scalar_dense.default, aten.is_nonzero.default, aten.equal.default, aten.nonzero.default,
            aten.masked_select.default, aten._unique2.default, aten.unique_dim.default,
            aten.unique_consecutive.default}


def tiny(name: str, calibrated: bool = True, **kwargs) -> nn.Module:
    """A tiny model of the family; BN calibrated on random inputs so its neurons fire (else many are silent)."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, width=0.25, input_size="cifar", **kwargs)
    if calibrated:
        calibrate_bn(model, [torch.rand(T, 4, 3, SIZE, SIZE)])
    return model.eval()


def family_input() -> torch.Tensor:
    return torch.rand(T, B, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


class SyncCounter(TorchDispatchMode):
    """Counts host reads while active: sync operators at dispatch, and ``tolist``/``numpy`` calls (which
    read memory without dispatching)."""

    METHODS = ("tolist", "numpy")

    def __init__(self):
        super().__init__()
        self.ops: list[str] = []
        self._originals = {m: getattr(torch.Tensor, m) for m in self.METHODS}

    def __enter__(self):
        for method, original in self._originals.items():
            def counted(t, *args, _original=original, _method=method, **kwargs):
                self.ops.append(_method)
                return _original(t, *args, **kwargs)

            setattr(torch.Tensor, method, counted)
        return super().__enter__()

    def __exit__(self, *exc):
        for method, original in self._originals.items():
            setattr(torch.Tensor, method, original)
        return super().__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in SYNC_OPS:
            self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", ["sew_resnet18", "sew_resnet34"])
def test_no_host_sync_during_the_forward_and_one_transfer_at_the_end(name):
    """The device path (the default on GPUs, forced here on the CPU) reads nothing on the host until finish.

    The stem runs every step (``stem_once=False``): the default ``"auto"`` stem compares the input over T
    once per forward, a read of the model's own (one per forward, not per layer), not the probe's."""
    model, x = tiny(name, stem_once=False), torch.rand(T, B, 3, 16, 16)
    with SyncCounter() as plain, torch.no_grad():
        functional.reset_net(model)
        model(x)
    probe = Probe(model, host_decisions=False)
    with SyncCounter() as during:
        probe.run([x])
    with SyncCounter() as after:
        result = probe.finish()
    assert plain.ops == []  # the model itself reads nothing on the host
    assert during.ops == []  # so neither does the probe, whatever the depth (18 and 34 layers alike)
    assert after.ops == ["tolist"]  # one transfer, all devices' values in one list
    assert sum(rec["counts"]["acs"] or 0 for rec in result.layers.values()) > 0


@pytest.fixture
def dsr_decoding_on_the_spikes_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """spikingjelly's DSR rate decoding makes its weights on the default device, then moves them: under the
    guard below it runs with the spikes' device as the default (the model's quirk, not the probe's)."""
    decode = dsr.rate_decode

    def on_device(spikes: torch.Tensor, node: nn.Module) -> torch.Tensor:
        with torch.device(spikes.device):
            return decode(spikes, node)

    monkeypatch.setattr(dsr, "rate_decode", on_device)


def assert_same_reports_with_meta_default(model: nn.Module, x: torch.Tensor) -> tuple:
    """Profile ``model`` with ``meta`` as the default device, on both probe paths: a tensor made without an
    explicit device is then a meta tensor, and mixing it with the model's tensors raises."""
    firing, ops = profile(model, x)
    for host_decisions in (True, False):
        with torch.device("meta"):
            firing_meta, ops_meta = profile(model, x, host_decisions=host_decisions)
        assert ops_meta.to_dict() == ops.to_dict() and firing_meta.to_dict() == firing.to_dict()
    return firing, ops


@pytest.mark.usefixtures("dsr_decoding_on_the_spikes_device")
@pytest.mark.parametrize("name,kwargs", FAMILIES, ids=[f for f, _ in FAMILIES])
def test_probe_makes_no_tensor_off_the_models_device(name, kwargs):
    """Would have caught the CUDA crash (a CPU ``torch.zeros(T)`` for silent layers, mixed with CUDA tensors
    in finish): every tensor the probe creates must follow the model's device, not the default device."""
    firing, ops = assert_same_reports_with_meta_default(tiny(name, **kwargs), family_input())
    assert {"binary", "scaled"} & {lay.kind for lay in firing.layers}
    assert ops.totals["acs"] > 0 and ops.complete


@pytest.mark.parametrize("name", ["spiking_resnet18", "sew_resnet18", "ms_resnet18"])
def test_silent_layers_under_the_guard(name):
    """The path that crashed on CUDA for these three families: layers whose output is all zeros (their
    untrained, uncalibrated nets have many)."""
    firing, _ = assert_same_reports_with_meta_default(tiny(name, calibrated=False), family_input())
    assert "zero" in {lay.kind for lay in firing.layers}


@pytest.mark.parametrize("name,kwargs", FAMILIES, ids=[f for f, _ in FAMILIES])
def test_host_and_device_paths_give_the_same_reports(name, kwargs):
    """The CPU's host-decided kinds and the GPU's device-decided kinds (run here on the CPU) agree bit for bit."""
    model, x = tiny(name, **kwargs), family_input()
    host, device = profile(model, x, host_decisions=True), profile(model, x, host_decisions=False)
    assert device[1].to_dict() == host[1].to_dict() and device[0].to_dict() == host[0].to_dict()
    assert host[1].totals["acs"] > 0


def recorded_neuron_outputs(model: nn.Module) -> tuple[dict[str, list[torch.Tensor]], list]:
    """Hooks that record every neuron output of ``model`` (per module, in call order)."""
    outs: dict[str, list[torch.Tensor]] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, DEFAULT_NEURON_TYPES):
            handles.append(m.register_forward_hook(
                lambda m, a, o, n=name: outs.setdefault(n, []).append(o.detach().cpu())))
    return outs, handles


def injected_neuron_outputs(model: nn.Module, outs: dict[str, list[torch.Tensor]]) -> list:
    """Hooks that replace every neuron output of ``model`` by the recorded one (same names, same order)."""
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, DEFAULT_NEURON_TYPES):
            queue = iter(outs[name])
            handles.append(m.register_forward_hook(lambda m, a, o, q=queue: next(q).to(o.device)))
    return handles


def counts_on(device: str, name: str, kwargs: dict) -> tuple[dict, dict, dict]:
    """Firing and ops on ``device``, and the same on the CPU fed the neuron outputs ``device`` produced
    (so the comparison is of the counting, not of float differences between the devices' convolutions)."""
    model, x = tiny(name, **kwargs), family_input()
    outs, handles = recorded_neuron_outputs(model.to(device))
    firing, ops = profile(model, x.to(device))
    for h in handles:
        h.remove()
    cpu_model = copy.deepcopy(model).cpu()
    handles = injected_neuron_outputs(cpu_model, outs)
    cpu_firing, cpu_ops = profile(cpu_model, x)
    for h in handles:
        h.remove()
    return ops.to_dict(), cpu_ops.to_dict(), {"device": firing.to_dict(), "cpu": cpu_firing.to_dict()}


def assert_same_counts(name: str, kwargs: dict, device: str) -> None:
    ops, cpu_ops, firing = counts_on(device, name, kwargs)
    assert ops == cpu_ops  # every count, per layer and in total, exactly
    assert ops["acs"] > 0
    dev, cpu = firing["device"], firing["cpu"]
    assert dev["mean_rate"] == cpu["mean_rate"]  # event counts are exact integers: equal, not close
    assert [lay["rate_per_t"] for lay in dev["layers"]] == [lay["rate_per_t"] for lay in cpu["layers"]]
    assert [(lay["silent_frac"], lay["saturated_frac"], lay["kind"]) for lay in dev["layers"]] == \
        [(lay["silent_frac"], lay["saturated_frac"], lay["kind"]) for lay in cpu["layers"]]


def test_recorded_outputs_harness_on_the_cpu():
    """The CPU-vs-CUDA comparison's harness, run CPU against CPU (so it is itself tested without a GPU)."""
    assert_same_counts("sew_resnet18", {}, "cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name,kwargs", FAMILIES, ids=[f for f, _ in FAMILIES])
def test_cuda_counts_equal_cpu_counts(name, kwargs):
    assert_same_counts(name, kwargs, "cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_no_cuda_sync_during_the_forward():
    """CUDA's own sync detector: the probe's forward adds no synchronising call to the model's."""
    model, x = tiny("sew_resnet18"), family_input().cuda()
    model.cuda()
    Probe(model).run([x]).finish()  # warm-up: reach maps and pinned host buffers are made once
    functional.reset_net(model)

    def syncs(fn) -> int:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                fn()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in caught)

    def plain():
        with torch.no_grad():
            functional.reset_net(model)
            model(x)

    probe = Probe(model)
    assert syncs(lambda: probe.run([x])) == syncs(plain)
    assert probe.finish().layers


def test_finish_groups_the_transfer_by_device():
    """Values are gathered per device and moved in one copy each; host numbers pass through untouched."""
    transfer = probe_module._Transfer()
    a = transfer.add(torch.tensor([1.0, 2.0]))
    b = transfer.add(torch.tensor(3, dtype=torch.int64))
    c = transfer.add(7)
    transfer.fetch()
    assert transfer.steps(a) == [1.0, 2.0] and transfer.value(b) == 3.0 and transfer.value(c) == 7
