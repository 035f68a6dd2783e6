"""The shared neuron factory: kinds, parameter merging, analog nodes in multi-step mode."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import neuron

from bench.models.neurons import make_neuron, neuron_factory


def test_liaf_is_analog_in_multi_step_mode():
    # LIF tau 2, decay_input: h1 = 0.5; h2 = 0.5 + 0.5 (3 - 0.5) = 1.75 (fires, hard reset); h3 = 0.2.
    node = make_neuron("liaf", tau=2.0)
    x = torch.tensor([[1.0], [3.0], [0.4]])
    assert torch.allclose(node(x), torch.tensor([[0.5], [1.75], [0.2]]))


def test_if_node_spikes_with_hard_reset():
    node = make_neuron("if", v_threshold=1.0)
    out = node(torch.tensor([[0.6], [0.6], [0.6], [0.6]]))
    assert out.flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
    assert node.step_mode == "m" and isinstance(node, neuron.IFNode)


def test_kind_switch_keeps_only_shared_parameters():
    factory = neuron_factory("lif", {"tau": 4 / 3, "v_threshold": 0.5, "decay_input": False}, "if", None)
    assert factory.kind == "if" and factory.params == {"v_threshold": 0.5}
    dsr = neuron_factory("dsr_lif", {"v_threshold": 0.3, "alpha": 0.3}, "if", None)
    assert dsr.params == {}, "DSR parameters do not carry over to surrogate-gradient nodes"


def test_unknown_kind_names_the_choices():
    with pytest.raises(ValueError, match="choose one of"):
        make_neuron("izhikevich")
