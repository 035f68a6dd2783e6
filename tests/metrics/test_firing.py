"""Firing rates checked against rates recomputed from outputs recorded by separate forward hooks."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, neuron

from bench.metrics.firing import UNTRAINED_WARNING, calibrate_bn, firing_rates, untrained_warning
from bench.metrics.ops import profile
from bench.models.neurons import make_neuron

T, B = 3, 2


def recorded_outputs(net: nn.Module, x: torch.Tensor, types: tuple[type, ...]) -> dict[str, torch.Tensor]:
    """Neuron outputs of one eval forward, captured by the test's own hooks."""
    outs: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_hook(lambda m, a, o, n=n: outs.__setitem__(n, o.detach().clone()))
               for n, m in net.named_modules() if isinstance(m, types)]
    functional.reset_net(net)
    with torch.no_grad():
        net(x)
    functional.reset_net(net)
    for h in handles:
        h.remove()
    return outs


def test_rates_equal_recomputed_from_recorded_outputs(fired_net):
    net, x = fired_net
    report = firing_rates(net, x)
    assert 0.01 < report.mean_rate < 0.99  # the net really fires: the checks below can fail
    outs = recorded_outputs(net, x, (neuron.BaseNode,))
    assert [lay.name for lay in report.layers] == list(outs)
    events = neurons = 0
    for lay in report.layers:
        o = outs[lay.name]
        n = o[0].numel()
        per_t = [int((o[t] != 0).sum()) / n for t in range(T)]
        assert lay.rate_per_t == pytest.approx(per_t, abs=1e-12)
        fired_steps = (o != 0).sum(0)
        assert lay.silent_frac == pytest.approx(int((fired_steps == 0).sum()) / n, abs=1e-12)
        assert lay.saturated_frac == pytest.approx(int((fired_steps == T).sum()) / n, abs=1e-12)
        assert lay.n_neurons == o[0].numel() / B and lay.kind == "binary"
        events += int((o != 0).sum())
        neurons += o.numel()
    assert report.mean_rate == pytest.approx(events / neurons, abs=1e-12)
    df = report.to_dataframe()
    assert df.shape == (2, T) and list(df.columns) == [1, 2, 3]


class FixedSpikes(nn.Module):
    """A user 'neuron' class (not a spikingjelly node) that emits a fixed pattern over T=3 steps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pattern = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
        return pattern.view(T, 1, 4).expand(T, x.shape[1], 4).clone()


def test_user_neuron_class_silent_and_saturated():
    net = nn.Sequential(nn.Identity(), FixedSpikes())
    assert firing_rates(net, torch.zeros(T, B, 4)).layers == []  # unknown class: not a neuron
    report = firing_rates(net, torch.zeros(T, B, 4), neuron_types=(FixedSpikes,))
    (lay,) = report.layers
    assert lay.rate_per_t == [0.5, 0.5, 0.25]
    assert lay.silent_frac == 0.25  # neuron 1 never fires
    assert lay.saturated_frac == 0.25  # neuron 0 fires at every step
    assert lay.n_neurons == 4


def test_dsr_nodes_are_neurons_with_scaled_spikes():
    torch.manual_seed(0)
    node = make_neuron("dsr_if", T=4, v_threshold=0.6)
    assert not isinstance(node, neuron.BaseNode)
    x = torch.rand(4, B, 50) * 2
    report, ops = profile(nn.Sequential(node, nn.Linear(50, 3)), x)
    (lay,) = report.layers
    o = recorded_outputs(nn.Sequential(node), x, (type(node),))["0"]
    values = torch.unique(o)
    assert len(values) == 2 and values[0] == 0 and float(values[1]) == pytest.approx(0.6)
    assert lay.kind == "scaled"
    assert lay.rate == pytest.approx(int((o != 0).sum()) / o.numel(), abs=1e-12)
    fc = next(r for r in ops.layers if r.type == "Linear")
    assert fc.kinds == ("scaled",) and fc.acs * B == float((o != 0).sum()) * 3


def test_liaf_layers_are_flagged_analog_and_left_out_of_the_mean():
    torch.manual_seed(0)
    net = nn.Sequential(make_neuron("if", v_threshold=0.5), nn.Linear(6, 6), make_neuron("liaf", v_threshold=0.5))
    x = torch.rand(T, B, 6)
    report = firing_rates(net, x)
    spiking, analog = report.layers
    assert spiking.kind == "binary" and analog.kind == "analog" and analog.analog
    assert 0 < analog.rate <= 1
    assert report.mean_rate == pytest.approx(spiking.rate)  # the analog layer does not enter the mean
    assert report.to_dict()["layers"][1]["analog"] is True


def test_calibrate_bn_makes_a_fresh_net_fire_and_changes_only_bn_buffers(make_tiny_snn):
    torch.manual_seed(0)
    net = make_tiny_snn()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.mul_(0.2)  # small weights, BN at its default statistics: nearly silent
    x = torch.rand(T, B, 3, 8, 8)
    before = firing_rates(net, x).mean_rate
    state = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    net[1].eval()
    calibrate_bn(net, [x, torch.rand(T, B, 3, 8, 8)])
    after = firing_rates(net, x).mean_rate
    assert before < 0.01 and 0.01 < after < 0.99
    changed = {k for k in state if not torch.equal(state[k], net.state_dict()[k])}
    assert changed and all(k.split(".")[-1] in ("running_mean", "running_var", "num_batches_tracked") for k in changed)
    assert net.training and not net[1].training  # flags restored as they were
    assert net[0][1].momentum == 0.1


def test_single_step_neurons_are_rejected():
    net = nn.Sequential(neuron.IFNode(step_mode="s"))
    with pytest.raises(ValueError, match="multi-step"):
        firing_rates(net, torch.rand(T, B, 4))


def test_untrained_warning():
    assert untrained_warning(True) == UNTRAINED_WARNING
    assert untrained_warning(False) is None and untrained_warning(None) is None


def test_single_time_step_rates():
    """T = 1 is a real case (accuracy at T=1): one rate per layer, equal to the recorded spikes' mean."""
    from spikingjelly.activation_based import layer

    torch.manual_seed(0)
    net = nn.Sequential(layer.Linear(6, 5, step_mode="m"), neuron.IFNode(v_threshold=0.2, step_mode="m"))
    x = torch.rand(1, 4, 6)
    with torch.no_grad():
        expected = net(x).mean().item()
    functional.reset_net(net)
    (layer_report,) = firing_rates(net, x).to_dict()["layers"]
    assert layer_report["rate_per_t"] == [pytest.approx(expected)]
    assert 0 < expected < 1
