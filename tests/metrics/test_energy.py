"""Energy profiles, a hand-computed estimate, user profiles, and the three plug-ins sharing one pass."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from bench.metrics.base import CaseContext
from bench.metrics.conventions import ENERGY_PROFILES, OPS_CONVENTION_ID, OPS_RULES, conventions_markdown
from bench.metrics.energy import energy_metric, estimate_energy, get_profile, profile_from_dict
from bench.metrics.firing import firing_metric
from bench.metrics.ops import LayerOps, OpsReport, ops_metric
from bench.models.registry import ModelInfo


def test_builtin_profiles_numbers_and_source():
    expected = {"45nm-fp32": (4.6, 0.9), "45nm-fp16": (1.5, 0.4), "45nm-int8": (0.23, 0.03)}
    assert {k: (p.mac_pj, p.ac_pj) for k, p in ENERGY_PROFILES.items()} == expected
    assert all("Horowitz" in p.source and "ISSCC 2014" in p.source for p in ENERGY_PROFILES.values())


def _report(macs: float, acs: float, dense: float, approx: float, updates: float) -> OpsReport:
    """Two convs run every step of T = 4: one ANN inference has a quarter of their dense MACs."""
    rows = [
        LayerOps("conv1", "Conv2d", ("analog",), macs, 0.0, 0.0, macs, None, 0.0, 0.0, 1, ann_macs=macs / 4),
        LayerOps("conv2", "Conv2d", ("binary",), 0.0, acs, acs, dense - macs, approx, 0.0, 0.0, 1,
                 ann_macs=(dense - macs) / 4),
        LayerOps("sn", "IFNode", (), 0.0, 0.0, 0.0, 0.0, None, updates, 0.0, 1, ann_macs=0.0),
    ]
    return OpsReport(rows, samples=1, T=4, fold_bn=True)


def test_hand_computed_estimate_and_ratio():
    ops = _report(macs=1e6, acs=2e6, dense=1e8, approx=2.5e6, updates=3e5)
    est = estimate_energy(ops, "45nm-fp32")
    assert est.energy_pj == pytest.approx(1e6 * 4.6 + 2e6 * 0.9)  # 6.4e6 pJ
    assert est.ann_energy_pj == pytest.approx(1e8 / 4 * 4.6)  # one inference, not T = 4 of them
    assert est.ann_over_snn == pytest.approx(1.15e8 / 6.4e6)
    assert est.literature_energy_pj == pytest.approx(1e6 * 4.6 + 2.5e6 * 0.9)
    assert est.neuron_energy_pj is None
    d = est.to_dict()
    assert d["energy_mj"] == pytest.approx(6.4e-3) and "neuron_energy_mj_why" in d
    int8 = estimate_energy(ops, "45nm-int8")
    assert int8.energy_pj == pytest.approx(1e6 * 0.23 + 2e6 * 0.03)


def test_user_profiles_are_validated_and_priced():
    user = {"name": "chip", "mac_pj": 2.0, "ac_pj": 0.5, "neuron_update_pj": 0.1, "source": "our silicon, 2025"}
    ops = _report(macs=10.0, acs=100.0, dense=1000.0, approx=90.0, updates=40.0)
    est = estimate_energy(ops, "chip", user_profiles=[user])
    assert est.energy_pj == pytest.approx(10 * 2.0 + 100 * 0.5 + 40 * 0.1)
    assert est.neuron_energy_pj == pytest.approx(4.0)
    assert get_profile(user).source == "our silicon, 2025"
    with pytest.raises(ValueError, match="lacks \\['source'\\]"):
        profile_from_dict({"name": "x", "mac_pj": 1.0, "ac_pj": 0.1})
    with pytest.raises(ValueError, match="ac_pj must be a finite number >= 0"):
        profile_from_dict({"name": "x", "mac_pj": 1.0, "ac_pj": -1, "source": "s"})
    with pytest.raises(ValueError, match="unknown field"):
        profile_from_dict({"name": "x", "mac_pj": 1.0, "ac_pj": 0.1, "source": "s", "sram_pj": 3})
    with pytest.raises(ValueError, match="unknown energy profile 'nope'"):
        get_profile("nope")


def test_conventions_render_every_rule_and_profile():
    md = conventions_markdown()
    assert OPS_CONVENTION_ID in md
    assert all(f"**{topic}**" in md for topic, _ in OPS_RULES)
    assert all(f"| {name} | {p.mac_pj:g} | {p.ac_pj:g} |" in md for name, p in ENERGY_PROFILES.items())


def _ctx(net: nn.Module, x: torch.Tensor, options: dict | None = None, untrained: bool | None = None) -> CaseContext:
    info = ModelInfo(name="tiny", family="test", paper="", provenance="user model", default_T=x.shape[0], neuron="if")
    ctx = CaseContext(model=net, info=info, T=x.shape[0], device=torch.device("cpu"), batch_size=x.shape[1],
                      batches=lambda T: iter([(x, torch.zeros(x.shape[1], dtype=torch.long))]), num_classes=5,
                      options=options or {})
    if untrained is not None:
        ctx.model_cache["untrained"] = untrained
    return ctx


def test_plugins_share_one_forward_and_return_json(fired_net):
    net, x = fired_net
    calls = []
    net.register_forward_hook(lambda *a: calls.append(1))
    ctx = _ctx(net, x, {"energy": {"profile": "45nm-fp16"}}, untrained=True)
    firing, ops, energy = firing_metric(ctx), ops_metric(ctx), energy_metric(ctx)
    assert len(calls) == 1  # one pass for all three
    for out in (firing, ops, energy):
        json.dumps(out)
    assert 0.01 < firing["mean_rate"] < 0.99
    assert firing["untrained_warning"] and len(firing["layers"]) == 2
    assert ops["convention"] == OPS_CONVENTION_ID and ops["complete"] and ops["acs"] > 0 and ops["macs"] > 0
    assert energy["profile"] == "45nm-fp16"
    assert energy["energy_mj"] == pytest.approx((ops["macs"] * 1.5 + ops["acs"] * 0.4) / 1e9)
    # tiny_snn runs every layer at each of its T steps: one ANN inference is dense MACs / T
    assert energy["ann_energy_mj"] == pytest.approx(ops["dense_macs"] / x.shape[0] * 1.5 / 1e9)
    assert energy["hw_profile"] == "45nm-sram" and set(energy["hardware"]) >= {"45nm-sram", "loihi"}


def test_plugin_options_fold_bn_and_batches(fired_net):
    net, x = fired_net
    folded = ops_metric(_ctx(net, x))
    unfolded = ops_metric(_ctx(net, x, {"ops": {"fold_bn": False}}))
    assert unfolded["macs"] > folded["macs"]
    two = ops_metric(_ctx(net, x, {"ops": {"num_batches": 2}}))  # the batches iterator holds one batch
    assert two["samples"] == x.shape[1] and two["acs"] == folded["acs"]


def test_memory_aware_figure_is_per_sample_and_prices_analog_macs_at_4_6_pj():
    """spikingjelly's SimpleEnergyProfiler as a second figure: an analog 4 -> 3 linear layer is 12 MACs per
    sample (12 x 4.6 pJ of compute), and the per-sample figures do not change when the batch is doubled."""
    from spikingjelly.activation_based import layer

    from bench.metrics.energy import spikingjelly_simple_energy

    torch.manual_seed(0)
    model = nn.Sequential(layer.Linear(4, 3, bias=False, step_mode="m"))
    x = torch.rand(1, 2, 4)
    one = spikingjelly_simple_energy(model, x)
    assert one["sj_simple_compute_mj"] == pytest.approx(12 * 4.6e-9)
    two = spikingjelly_simple_energy(model, torch.cat([x, x], dim=1))
    assert {k: v for k, v in two.items() if k.endswith("_mj")} == pytest.approx(
        {k: v for k, v in one.items() if k.endswith("_mj")})


def test_headline_energy_columns_say_compute_only_or_with_data_movement():
    """The headline shows the compute-only figures beside the data-movement ones: each energy column's name alone
    says which it is (the field names, which records and baselines key on, stay)."""
    from bench.metrics.energy import FIELDS

    shown = {f.name: f.title for f in FIELDS if f.headline and "energy" in f.title}
    assert {"energy_mj", "ann_energy_mj", "ann_over_snn", "hw_energy_mj", "hw_ann_over_snn"} <= set(shown)
    for name, label in shown.items():
        assert ("data movement" in label) == name.startswith("hw_"), (name, label)
        assert ("compute-only" in label) != name.startswith("hw_"), (name, label)
