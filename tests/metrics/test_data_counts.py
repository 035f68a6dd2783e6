"""Data-movement counts per layer (ops_rules.DATA_FIELDS) against hand counts on a two-layer net."""

import torch
import torch.nn as nn
from spikingjelly.activation_based import layer, neuron

from bench.metrics import count_ops


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(layer.Linear(4, 3, bias=False), neuron.IFNode(step_mode="m", v_threshold=0.5),
                         layer.Linear(3, 2, bias=False))


def test_data_counts_equal_hand_counts_and_ann_is_one_inference():
    net = _net()
    T, B = 2, 1
    x = torch.tensor([[[0.9, 0.2, 0.7, 0.3]], [[0.1, 0.8, 0.6, 0.4]]])  # analog, [T, B, 4]
    with torch.no_grad():
        h = net[0](x)
    # IF neuron by hand: v accumulates, spike at v >= 0.5, hard reset to 0.
    v, spikes = torch.zeros(B, 3), []
    for t in range(T):
        v = v + h[t]
        s = (v >= 0.5).float()
        v = v * (1 - s)
        spikes.append(s)
    n_spikes = float(torch.stack(spikes).sum())
    rows = {lay.name: lay for lay in count_ops(net, x).layers}
    first, last = rows["0"], rows["2"]
    assert first.dense_macs == T * 4 * 3 and first.ann_macs == 4 * 3  # one inference, not T
    assert first.analog_in_elems == T * 4 and first.in_events == 0
    assert first.out_elems == T * 3 and first.weight_passes == 12 * T and first.ann_weight_passes == 12
    assert first.ann_in_elems == 4 and first.ann_out_elems == 3
    assert last.in_events == n_spikes and last.spike_in_elems == T * 3 and last.ann_macs == 3 * 2
    assert last.sops == 2 * n_spikes and last.weight_passes == 0  # event-driven: no dense weight pass


def test_ann_macs_do_not_grow_with_T():
    net = _net()
    x1 = torch.rand(1, 2, 4)
    ann = [sum(lay.ann_macs or 0 for lay in count_ops(net, x1.repeat(T, 1, 1)).layers) for T in (1, 4)]
    assert ann[0] == ann[1] == 4 * 3 + 3 * 2
