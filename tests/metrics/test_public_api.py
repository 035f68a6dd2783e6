"""The README's public counting API imports from bench.metrics and gives the module functions' numbers."""

import torch
import torch.nn as nn
from spikingjelly.activation_based import layer, neuron


def test_documented_imports_work_and_count():
    from bench.metrics import count_ops, estimate_energy, firing_rates, profile

    torch.manual_seed(0)
    net = nn.Sequential(layer.Linear(4, 3, bias=False), neuron.IFNode(step_mode="m", v_threshold=0.5),
                        layer.Linear(3, 2, bias=False))
    # One step, one sample: x = [1, 0, 1, 0] -> spikes s of the first layer -> the second layer's ACs are
    # 2 (out_features) per spike, worked out from the spikes themselves.
    x = torch.tensor([[[1.0, 0.0, 1.0, 0.0]]])
    s = (net[0](x) >= 0.5).float()
    rep = count_ops(net, x)
    assert rep.totals["sops"] == 2 * 3 + 2 * float(s.sum())  # binary input: 2 events x 3 outputs, then spikes x 2
    fr, ops2 = profile(net, x)
    assert ops2.totals == rep.totals
    assert firing_rates(net, x).mean_rate == fr.mean_rate == float(s.mean())
    assert estimate_energy(rep).ac_energy_pj == rep.totals["acs"] * 0.9
