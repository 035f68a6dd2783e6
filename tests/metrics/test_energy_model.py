"""The energy model with data movement, against hand counts on small nets with known spikes, the one-inference
ANN equivalent (the T-fold defect), profile validation, break-even rates, and published figures."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import neuron

from bench.contract import OptionError
from bench.metrics import get_metric
from bench.metrics.energy import estimate_energy, hardware_record
from bench.metrics.energy_model import BitWidths, ann_bits_for_T, estimate_hardware_energy, layer_kind
from bench.metrics.hardware import HARDWARE_PROFILES, HOROWITZ_45NM, hardware_profile_from_dict
from bench.metrics.ops import profile
from bench.models.resnet_parts import Stem

# A round-number digital profile so every term below is worked out by hand: adds 1 pJ and multiplies 4 pJ at
# 8 bits; weights 1 pJ/bit; membrane 0.25 pJ/bit read and write; activations 1 pJ/bit (8-bit accesses).
HAND = hardware_profile_from_dict("hand", {
    "kind": "digital", "source": "round numbers for hand-worked tests", "add_pj": 1.0, "mult_pj": 4.0,
    "ref_bits": 8, "weight_read_pj": 64.0, "weight_access_bits": 64, "membrane_read_pj": 8.0,
    "membrane_write_pj": 8.0, "membrane_access_bits": 32, "act_read_pj": 8.0, "act_write_pj": 8.0,
    "act_access_bits": 8})
BITS = BitWidths(weight=8, membrane=16, activation=8, ann_activation=8, address_bits=16, dense_reuse=16)


def linear_if_net() -> tuple[nn.Module, torch.Tensor]:
    """Linear(4 -> 3, no bias) then an IF neuron (threshold 1, hard reset) on known spikes, T = 2, B = 1.

    Input: t0 = [1, 0, 1, 0], t1 = [0, 0, 0, 1] (3 events). W = [[1,0,0,0], [0,0,1,0], [0,0,0,.5]]: currents
    t0 = [1, 1, 0] (two neurons reach 1 and spike), t1 = [0, 0, .5] (none). Output: 2 spikes in 6 neuron-steps.
    """
    lin = nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 0.5]]))
    net = nn.Sequential(lin, neuron.IFNode(v_threshold=1.0, v_reset=0.0, step_mode="m"))
    x = torch.tensor([[[1.0, 0, 1, 0]], [[0, 0, 0, 1.0]]])
    return net.eval(), x


def test_linear_counts_by_hand():
    net, x = linear_if_net()
    firing, ops = profile(net, x)
    lin, sn = ops.layers
    # SOPs: 3 events x 3 outputs; dense: T x B x 3 outputs x 4 inputs = 24, one inference 12.
    assert (lin.sops, lin.acs, lin.macs, lin.dense_macs, lin.ann_macs) == (9, 9, 0, 24, 12)
    assert (lin.in_events, lin.spike_in_elems, lin.analog_in_elems, lin.out_elems) == (3, 8, 0, 6)
    assert (lin.weight_passes, lin.ann_weight_passes, lin.ann_in_elems, lin.ann_out_elems) == (0, 12, 4, 3)
    assert (sn.neuron_updates, sn.out_elems, sn.out_events, sn.spike_out_elems) == (6, 6, 2, 6)
    assert firing.mean_rate == pytest.approx(2 / 6)


def test_linear_energy_terms_and_break_even_by_hand():
    net, x = linear_if_net()
    firing, ops = profile(net, x)
    est = estimate_hardware_energy(ops, firing, HAND, bits=BITS)
    # compute: 9 ACs x add(16 bit) = 9 x 2; 6 updates x 2 adds x 2 pJ
    # weights: 9 SOPs x 8 bits x 1 pJ/bit; membrane: 6 x 16 bits x (0.25 + 0.25)
    # spikes: (3 input events read + 2 output spikes written) x 16 address bits x 1 pJ/bit
    assert est.snn == pytest.approx({"compute": 18 + 24, "weights": 72, "membrane": 48, "spikes": 80,
                                     "activations": 0, "total": 242})
    # ANN: 12 MACs x (mult 8x8 = 4 + add(16) = 2); weights max(12 / 16, 12 weights) x 8 bits; acts (4 + 3) x 8
    assert est.ann == pytest.approx({"compute": 72, "weights": 96, "activations": 56, "total": 224})
    # event-driven part: 9 AC adds (18) + SOP weight reads (72) + address events (80) = 170 at r = 1/3
    assert est.snn_fixed == pytest.approx(72) and est.slope == pytest.approx(510)
    rate, why = est.break_even()
    assert why is None and rate == pytest.approx(152 / 510)  # (224 - 72) / 510
    assert est.ann_over_snn == pytest.approx(224 / 242)
    bitmap = estimate_hardware_energy(ops, firing, HAND, bits=BitWidths(**{**BITS.__dict__, "spike_format": "bitmap"}))
    assert bitmap.snn["spikes"] == pytest.approx(8 * 1 + 6 * 1)  # 1 bit per input element read, per neuron written
    assert bitmap.snn_fixed == pytest.approx(72 + 14)


def test_neuromorphic_profile_by_hand():
    """Loihi: ACs x 23.6 pJ, updates x 81 pJ, output spikes x 1.7 pJ; the ANN on 28nm-sata (16-bit datapath:
    add 0.0389 pJ, mult 0.239 pJ; weight GLB 28.6315 pJ per 256 bits, spike GLB 11.0295 / 12.772 pJ)."""
    net, x = linear_if_net()
    firing, ops = profile(net, x)
    est = estimate_hardware_energy(ops, firing, HARDWARE_PROFILES["loihi"], HARDWARE_PROFILES, BITS)
    assert est.snn == pytest.approx({"compute": 9 * 23.6 + 6 * 81.0, "weights": 0, "membrane": 0,
                                     "spikes": 2 * 1.7, "activations": 0, "total": 9 * 23.6 + 6 * 81.0 + 3.4})
    mac = 0.239 * 8 * 8 / 16 ** 2 + 0.0389 * 16 / 16
    ann = {"compute": 12 * mac, "weights": 12 * 8 * 28.6315 / 256,
           "activations": (4 * 11.0295 + 3 * 12.772) / 256 * 8}
    assert est.ann == pytest.approx({**ann, "total": sum(ann.values())})
    assert est.to_dict()["included"]["membrane"]


def conv_if_net() -> tuple[nn.Module, torch.Tensor]:
    """Conv2d(1 -> 2, 3x3, padding 1, no bias) on an analog 4x4 image repeated over T = 2 (B = 1), then IF."""
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
    from spikingjelly.activation_based import layer
    net = nn.Sequential(layer.SeqToANNContainer(conv), neuron.IFNode(step_mode="m"))
    x = torch.rand(1, 1, 1, 4, 4).repeat(2, 1, 1, 1, 1)
    return net.eval(), x


def test_dense_layer_weight_tiles_and_activations_by_hand():
    net, x = conv_if_net()
    out = {}

    def count_spikes(m: nn.Module, args: tuple, o: torch.Tensor) -> None:  # a second tool: the output itself
        out["spikes"] = float((o != 0).sum())

    net[1].register_forward_hook(count_spikes)
    firing, ops = profile(net, x)
    conv, sn = ops.layers
    # 2 steps x 2 channels x 16 positions x 9 taps = 576 MACs; one inference 288; 18 weights
    assert (conv.macs, conv.dense_macs, conv.ann_macs) == (576, 576, 288)
    assert (conv.weight_passes, conv.ann_weight_passes) == (18 * 2, 18)
    assert (conv.analog_in_elems, conv.ann_in_elems, conv.ann_out_elems) == (32, 16, 32)
    assert sn.out_events == out["spikes"]
    bits = BitWidths(**{**BITS.__dict__, "dense_reuse": 4})
    est = estimate_hardware_energy(ops, firing, HAND, bits=bits)
    spikes = out["spikes"]
    # SNN weights: max(576 MACs / 4, 36 passes) = 144 reads x 8 bits; activations: 32 pixels read x 8 bits
    assert est.snn["weights"] == pytest.approx(144 * 8)
    assert est.snn["activations"] == pytest.approx(32 * 8)
    assert est.snn["compute"] == pytest.approx(576 * (4 + 2) + 64 * 4)  # MACs; 64 updates x 2 adds of 2 pJ
    assert est.snn["spikes"] == pytest.approx(spikes * 16)  # only written: no layer reads them
    assert est.snn["membrane"] == pytest.approx(64 * 16 * 0.5)
    assert est.ann == pytest.approx({"compute": 288 * 6, "weights": 72 * 8, "activations": (16 + 32) * 8,
                                     "total": 288 * 6 + 72 * 8 + 48 * 8})
    assert est.snn_event == pytest.approx(spikes * 16)  # the only event-driven term here


def _ann_mj(net: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    firing, ops = profile(net, x)
    return estimate_energy(ops, "45nm-fp32").ann_energy_pj, ops.totals["dense_macs"]


def test_ann_equivalent_is_one_inference_whatever_T():
    """The defect: ann_energy_mj was dense MACs (a T-step total) x MAC cost, T inferences of the ANN."""
    net, x = conv_if_net()
    ann1, dense1 = _ann_mj(net, x[:1])
    ann4, dense4 = _ann_mj(net, x[:1].repeat(4, 1, 1, 1, 1))
    assert dense4 == 4 * dense1  # the SNN runs the conv at each step
    assert ann4 == pytest.approx(ann1) and ann1 == pytest.approx(288 * 4.6)  # 288 MACs, one inference


def test_stem_once_and_stem_every_step_have_the_same_ann_equivalent():
    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False))
    x = torch.rand(1, 1, 1, 4, 4).repeat(3, 1, 1, 1, 1)
    once = nn.Sequential(Stem(body, once=True), neuron.IFNode(step_mode="m")).eval()
    every = nn.Sequential(Stem(body, once=False), neuron.IFNode(step_mode="m")).eval()
    (a_once, d_once), (a_every, d_every) = _ann_mj(once, x), _ann_mj(every, x)
    assert d_once == 288 and d_every == 3 * 288  # the stem's dense MACs (2 x 16 x 9): once vs every step
    assert a_once == pytest.approx(a_every) == pytest.approx(288 * 4.6)


def test_no_spiking_layer_and_fixed_costs_give_none_with_why():
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    firing, ops = profile(net, torch.rand(2, 1, 4))
    rec = hardware_record(ops, firing, {"hw_evaluate": ["45nm-sram"]})
    assert rec["break_even_rate"] is None and "no spiking layer" in rec["break_even_rate_why"]
    assert rec["mean_rate"] is None and rec["mean_rate_why"]
    net, x = conv_if_net()  # an analog conv run at both steps: its fixed cost is twice the ANN's
    firing, ops = profile(net, x)
    est = estimate_hardware_energy(ops, firing, HAND, bits=BITS)
    rate, why = est.break_even()
    assert rate is None and "does not win at any rate" in why


def test_record_schema_for_the_report():
    net, x = linear_if_net()
    firing, ops = profile(net, x)
    rec = hardware_record(ops, firing, {})
    assert set(rec["hardware"]) == set(HARDWARE_PROFILES) and rec["hw_profile"] == "45nm-sram"
    entry = rec["hardware"]["45nm-sram"]
    assert set(entry["snn_pj"]) == {"compute", "weights", "membrane", "spikes", "activations", "total"}
    assert set(entry["ann_pj"]) == {"compute", "weights", "activations", "total"}
    assert entry["snn_fixed_pj"] + entry["snn_slope_pj"] * entry["rate"] == pytest.approx(entry["snn_pj"]["total"])
    assert rec["hw_energy_mj"] == pytest.approx(entry["snn_pj"]["total"] / 1e9)
    assert [lay["name"] for lay in rec["hw_layers"]] == ["0", "1"]
    assert [(lay["type"], lay["kind"]) for lay in rec["hw_layers"]] == [("Linear", "event-driven"), ("IFNode", "neuron")]
    # The layers' event-driven parts add up to the profile's rate-scaled part, slope x measured rate.
    assert sum(lay["event_pj"] for lay in rec["hw_layers"]) == pytest.approx(
        entry["snn_slope_pj"] * entry["rate"])
    declared = {f.name for f in get_metric("energy").contract.fields}
    assert {k for k, v in rec.items() if not isinstance(v, (dict, list))} <= declared | {
        "break_even_rate_why", "mean_rate_why", "hw_ann_over_snn_why"}


@pytest.mark.parametrize("bad, field", [
    ({"kind": "digital", "add_pj": 1.0}, "source"),
    ({"kind": "analog", "source": "x"}, "kind"),
    ({"kind": "neuromorphic", "source": "x", "sop_pj": 1.0, "neuron_update_pj": 1.0, "spike_pj": -1.0,
      "reference": "45nm-sram"}, "spike_pj"),
    ({"kind": "neuromorphic", "source": "x", "sop_pj": 1.0, "neuron_update_pj": 1.0, "spike_pj": 1.0,
      "reference": "loihi"}, "reference"),
    ({"kind": "neuromorphic", "source": "x", "sop_pj": 1.0}, "lacks"),
])
def test_bad_hardware_profile_is_refused_at_suite_load(bad, field):
    contract = get_metric("energy").contract
    with pytest.raises(OptionError, match=field) as exc:
        contract.validate_options({"hardware_profiles": {"mine": bad}})
    assert exc.value.key == "hardware_profiles" and "mine" in str(exc.value)
    with pytest.raises(OptionError, match="hw_primary"):
        contract.validate_options({"hw_primary": "nope"})


def test_suite_with_a_bad_profile_exits_2(tmp_path):
    import subprocess
    import sys

    suite = tmp_path / "s.toml"
    suite.write_text('[suite]\nname = "s"\ntime_steps = [1]\ndevices = ["cpu"]\nmetrics = ["energy"]\n'
                     '[data]\ndataset = "synthetic"\n[[models]]\nname = "sew_resnet18"\n'
                     '[metrics.energy]\nhardware_profiles = { chip = { kind = "digital", add_pj = 1.0 } }\n')
    r = subprocess.run([sys.executable, "-m", "bench.cli", "run", str(suite), "--dry-run"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "metrics.energy.hardware_profiles" in r.stderr + r.stdout
    assert "Traceback" not in r.stderr


def test_yan_et_al_bit_mapping():
    """Yan et al., arXiv 2409.08290 (abstract): a rate-coded SNN of T steps maps to a QNN of ceil(log2(T+1))
    bits (T = 5 -> 3 bits, their 'moderate time window'); worked out: T + 1 levels need that many bits."""
    assert [ann_bits_for_T(T) for T in (1, 2, 3, 4, 5, 7, 8, 15, 16)] == [1, 2, 2, 3, 3, 3, 4, 4, 5]
    rec = hardware_record(*reversed(profile(*linear_if_net())), {"ann_bits_from_T": True})
    assert rec["hw_bits"]["ann_activation"] == 2  # T = 2


def test_published_figures_within_their_rounding():
    """(1) The compute-only literature formula reproduces a published table: Frontiers in Neuroscience 17:1091097
    (2023), Table 3: 18.39 M ANN operations x 4.6 pJ = 845.94 x 1e-7 J. (2) The integer scaling of the digital
    profiles against Horowitz's ISSCC 2014 45 nm table: the int8 figures scaled to 32 bits give a 3.2 pJ
    multiply (table: 3.1 pJ) and a 0.12 pJ add (table: 0.1 pJ): the approximation's error, stated."""
    from bench.metrics.ops import LayerOps, OpsReport

    ops = OpsReport([LayerOps("fc", "Linear", ("analog",), 0.0, 0.0, 0.0, 18.39e6, None, 0.0, 0.0, 1,
                              ann_macs=18.39e6)], samples=1, T=1, fold_bn=True)
    assert estimate_energy(ops, "45nm-fp32").ann_energy_pj * 1e-12 / 1e-7 == pytest.approx(845.94, abs=0.005)
    p = HARDWARE_PROFILES["45nm-sram"]
    assert p.mult(32, 32) == pytest.approx(HOROWITZ_45NM["int32 mult"], rel=0.04)
    assert p.add(32) == pytest.approx(HOROWITZ_45NM["int32 add"], rel=0.21)
    assert p.mult(8, 8) == HOROWITZ_45NM["int8 mult"] and p.add(8) == HOROWITZ_45NM["int8 add"]
    sata = HARDWARE_PROFILES["28nm-sata"]  # SATA_Sim's CACTI figures: per 256-bit access
    assert (round(sata.weight_read_pj, 1), round(sata.act_read_pj, 1)) == (28.6, 11.0)
    assert math.isclose(sata.per_bit("weight") * 256, 28.6315)


def test_neuromorphic_profiles_against_their_sources():
    """Loihi: Davies et al., IEEE Micro 2018, Table 2 as two transcriptions give it (SANA-FE's sim.h constants and a
    research note quoting the rows; see bench.metrics.hardware): "Energy per synaptic spike op (min) | 23.6 pJ",
    "Energy per neuron update (active / inactive) | 81 pJ / 52 pJ", "Within-tile spike energy | 1.7 pJ", "Energy per
    tile hop (E-W / N-S) | 3.0 pJ / 4.0 pJ"; typed here from those quotes. The profile takes the minimum synaptic op,
    the active update and a within-tile delivery; no row of the table is 3.5 pJ (3.5 ns is its time per synaptic
    op), the per-spike cost the profile had before. SpiNNaker 2: KerasSpiking's device table (keras_spiking/
    model_energy.py: energy_per_synop=450e-12, energy_per_neuron=2.19e-9), the only source found for the figures.
    A published table checks one and contradicts the other: Tang et al., "SENECA", Front. Neurosci. 17:1187252
    (2023), Table 3, column "Energy per SOp (pJ)" (pmc.ncbi.nlm.nih.gov/articles/PMC10326429/table/T3): "Loihi | Low |
    Low | Medium | Low | Medium | 23.6 | (Davies et al., 2018)" and "SpiNNaker2 | High | Medium | High | High | High |
    10 | (Höppner et al., 2021)"; typed here from that page. The Loihi profile's synaptic op equals the first; the
    SpiNNaker 2 profile is 45 times the second, and its source must say so."""
    from bench.metrics.hardware import DAVIES_2018_TABLE2

    quoted = {"synaptic spike op (min)": 23.6, "neuron update (active)": 81.0, "neuron update (inactive)": 52.0,
              "within-tile spike": 1.7, "tile hop (E-W)": 3.0, "tile hop (N-S)": 4.0}
    assert {k: DAVIES_2018_TABLE2[k] for k in quoted} == quoted
    loihi = HARDWARE_PROFILES["loihi"]
    assert (loihi.sop_pj, loihi.neuron_update_pj, loihi.spike_pj) == (23.6, 81.0, 1.7)
    assert 3.5 not in DAVIES_2018_TABLE2.values() and "Table 2" in loihi.source
    spinnaker2 = HARDWARE_PROFILES["spinnaker2"]
    assert (spinnaker2.sop_pj * 1e-12, spinnaker2.neuron_update_pj * 1e-12) == pytest.approx((450e-12, 2.19e-9))
    assert "keras_spiking/model_energy.py" in spinnaker2.source and "not found" in spinnaker2.source
    tang_2023_table3_pj_per_sop = {"Loihi": 23.6, "SpiNNaker2": 10.0}
    assert loihi.sop_pj == tang_2023_table3_pj_per_sop["Loihi"] and "1187252" in loihi.source
    assert spinnaker2.sop_pj / tang_2023_table3_pj_per_sop["SpiNNaker2"] == pytest.approx(45)
    assert "disagrees by 45x" in spinnaker2.source and "1187252" in spinnaker2.source


class Mixed(nn.Module):
    """One of each remaining rule on [T, B, 16] spikes: avg pool, MatMul (spikes x parameter), a torch-function
    product (``x @ w``), LayerNorm and max pool on real values."""

    def __init__(self):
        super().__init__()
        from bench.models.common import MatMul

        self.mm, self.avg, self.max, self.ln = MatMul(), nn.AvgPool2d(2), nn.MaxPool2d(2), nn.LayerNorm(4)
        self.b = nn.Parameter(torch.randn(3, 4))
        self.w = nn.Parameter(torch.randn(3, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        img = x.reshape(T * B, 1, 4, 4)
        outs = [self.avg(img), self.mm(x[..., :6].reshape(T * B, 2, 3), self.b), x[..., :3] @ self.w,
                self.ln(x[..., :4] * 0.5 - 0.1), self.max(img * 0.3 - 0.1)]
        return torch.cat([o.reshape(T, B, -1) for o in outs], -1)


@pytest.mark.parametrize("host", [True, False])
def test_data_counts_of_every_other_rule_by_hand(host):
    """T = 2, B = 2, per sample (/ B). Events are summed from the input itself; the parameter operands b [3, 4]
    and w [3, 2] carry no time steps, so one ANN inference reads them whole once per call."""
    from bench.metrics.ops import count_ops

    T, B = 2, 2
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(T, B, 16, generator=g) < 0.4).float()
    rows = {lay.type: lay for lay in count_ops(Mixed().eval(), x, host_decisions=host).layers}
    avg, mm, fn = rows["AvgPool2d"], rows["MatMul"], rows["matmul (torch function)"]
    ln, mx = rows["LayerNorm"], rows["MaxPool2d"]
    assert (avg.in_events, avg.spike_in_elems, avg.out_elems) == (x.sum() / B, T * 16, T * 4)
    assert (avg.ann_macs, avg.ann_in_elems, avg.ann_out_elems) == (0, 16, 4)
    assert (mm.in_events, mm.spike_in_elems, mm.analog_in_elems) == (x[..., :6].sum() / B, T * 6, 12 / B)
    assert (mm.dense_macs, mm.ann_macs, mm.ann_in_elems, mm.ann_out_elems) == (T * 24, 24, 6 + 12 / B, 8)
    assert (fn.in_events, fn.spike_in_elems, fn.analog_in_elems) == (x[..., :3].sum() / B, T * 3, 6 / B)
    assert (fn.dense_macs, fn.ann_macs, fn.ann_in_elems, fn.ann_out_elems) == (T * 6, 6, 3 + 6 / B, 2)
    assert (ln.macs, ln.ann_macs, ln.analog_in_elems, ln.ann_in_elems, ln.ann_out_elems) == (T * 12, 12, T * 4, 4, 4)
    assert (mx.in_events, mx.analog_in_elems, mx.out_elems, mx.ann_in_elems, mx.ann_out_elems) == (0, T * 16, T * 4,
                                                                                                  16, 4)
    assert all(lay.weight_passes == 0 and lay.ann_weight_passes == 0 for lay in (avg, mm, fn, ln, mx))


def test_sew_resnet_stem_once_or_every_step_is_one_ann_inference():
    """The real family: SEW ResNet-18 with its stem run once (static input) or at every step: the dense MACs
    differ by (T - 1) stem convs, the one-inference ANN MACs (and compute-only ANN energy) do not, and they
    equal the T = 1 net's."""
    from bench.models.registry import create_model

    x1 = torch.rand(1, 2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    x = x1.repeat(3, 1, 1, 1, 1)
    totals = {}
    for once in (True, False):
        torch.manual_seed(0)
        net = create_model("sew_resnet18", width=0.0625, input_size="cifar", stem_once=once).eval()
        _, ops = profile(net, x)
        stem = next(lay for lay in ops.layers if lay.type == "Conv2d")
        totals[once] = (ops.totals["dense_macs"], ops.total("ann_macs"), stem.dense_macs)
        if once:
            _, ops1 = profile(net, x1)
            assert ops1.total("ann_macs") == ops.total("ann_macs")
    (d_once, a_once, stem_once), (d_every, a_every, stem_every) = totals[True], totals[False]
    assert stem_every == 3 * stem_once and d_every - d_once == 2 * stem_once
    assert a_once == a_every


def test_layer_kinds_and_event_parts_by_hand():
    """The encoding conv on an analog image is dense, a linear layer on spikes event-driven, a neuron a neuron;
    each layer's event_pj is its rate-scaled part (HAND profile, worked out as in the tests above)."""
    net, x = linear_if_net()
    firing, ops = profile(net, x)
    est = estimate_hardware_energy(ops, firing, HAND, bits=BITS)
    lin, sn = est.layers
    assert (lin["kind"], sn["kind"]) == ("event-driven", "neuron")
    # Linear: 9 AC adds x 2 pJ + 9 SOP weight reads x 8 bits x 1 pJ + 3 input events x 16 bits x 1 pJ
    assert lin["event_pj"] == pytest.approx(18 + 72 + 48)
    assert sn["event_pj"] == pytest.approx(2 * 16)  # 2 output spikes written as 16-bit address events
    net, x = conv_if_net()
    firing, ops = profile(net, x)
    conv, neuron_row = estimate_hardware_energy(ops, firing, HAND, bits=BITS).layers
    assert (conv["kind"], conv["type"], neuron_row["kind"]) == ("dense", "Conv2d", "neuron")
    assert conv["event_pj"] == 0  # MACs on the image: nothing scales with the firing rate
    from bench.metrics.ops import LayerOps

    def row(**counts: float) -> LayerOps:
        return LayerOps("x", "X", (), counts.get("macs", 0.0), counts.get("acs", 0.0), 0.0, 0.0, 0.0,
                        counts.get("neuron_updates", 0.0), 0.0, 1)

    assert [layer_kind(row(macs=4, acs=2)), layer_kind(row()), layer_kind(row(neuron_updates=3))] == [
        "mixed", "data", "neuron"]


# Lemaire et al., "An analytical estimation of spiking neural networks energy efficiency", ICONIP 2022 (LNCS 13623,
# pp. 574-587, doi 10.1007/978-3-031-30105-6_48, arXiv 2210.13107). The equation numbers below are those the
# paper's group gives in its reference implementation (github.com/LEAT-EDGE/qualia-plugin-snn,
# src/qualia_plugin_snn/postprocessing/EnergyEstimationMetric.py); we could not read the paper's own text, so no
# published number is reproduced: a worked example of its formulas, by hand. Its costs: Horowitz's 45 nm int32 add
# 0.1 pJ and mult 3.1 pJ; one access to a memory of n elements of b bits E_ram(n, b) = 1.09e-5 x n x b + 13.2 pJ.
def lemaire_ram(n: int, bits: int = 32) -> float:
    return 1.09e-5 * n * bits + 13.2


def test_lemaire_memory_cost_is_a_least_squares_fit_of_horowitz_sram():
    """The reference implementation derives its memory cost from Horowitz's 45 nm SRAM reads (8 KB 10 pJ, 32 KB
    20 pJ, 1 MB 100 pJ per 64-bit access) by least squares: 0.000082816 pJ per byte + 13.2563 pJ (its commented
    fit); a second tool (numpy) reproduces both constants from our copy of Horowitz's table."""
    import numpy as np

    sizes = [8 * 1024, 32 * 1024, 1024 * 1024]
    reads = [HOROWITZ_45NM[f"SRAM {k} read (64 bit)"] for k in ("8KB", "32KB", "1MB")]
    slope, intercept = np.polyfit(sizes, reads, 1)
    assert (round(slope, 9), round(intercept, 4)) == (0.000082816, 13.2563)
    assert lemaire_ram(0) == 13.2  # the constant the implementation uses (rounded from its notebook's fit)


def test_lemaire_et_al_worked_example():
    """Linear(4 -> 4) + IF on the known spikes of ``linear_if_net`` (theta_in = 3 input spikes, theta_out = 2 output
    spikes over T = 2; W's fourth row is 0), priced with Lemaire et al.'s costs at 32 bits (weights, potentials and
    activations; one weight read per use: dense_weight_reuse = 1; the event FIFO sized as the 4-element activation
    memory). Where our rules and theirs coincide the terms are equal; where they differ, by exactly the stated
    amounts (our model keeps the membrane potential in an accumulator during a step; it counts a threshold test per
    neuron and step where they count a reset per spike; it prices neither bias reads, nor address computation)."""
    lin = nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 0.5], [0, 0, 0, 0]]))
    net = nn.Sequential(lin, neuron.IFNode(v_threshold=1.0, v_reset=0.0, step_mode="m")).eval()
    x = torch.tensor([[[1.0, 0, 1, 0]], [[0, 0, 0, 1.0]]])
    n, T, theta_in, theta_out, add, mult = 4, 2, 3, 2, 0.1, 3.1
    e_w, e_a = lemaire_ram(n * n), lemaire_ram(n)  # 13.2055808 and 13.2013952 pJ per 32-bit access
    chip = hardware_profile_from_dict("lemaire-45nm", {
        "kind": "digital", "source": "Lemaire et al., ICONIP 2022 (45 nm, Horowitz int32; E_ram fit)",
        "add_pj": add, "mult_pj": mult, "ref_bits": 32, "weight_read_pj": e_w, "weight_access_bits": 32,
        "membrane_read_pj": e_a, "membrane_write_pj": e_a, "membrane_access_bits": 32, "act_read_pj": e_a,
        "act_write_pj": e_a, "act_access_bits": 32})
    bits = BitWidths(weight=32, membrane=32, activation=32, ann_activation=32, address_bits=32, dense_reuse=1)
    firing, ops = profile(net, x)
    assert ops.layers[0].in_events == theta_in and ops.layers[1].out_events == theta_out
    est = estimate_hardware_energy(ops, firing, chip, bits=bits)
    # FNN (their ANN): Eq. 2.1 Nin x Nout = 16 MACs x (3.1 + 0.1) = 51.2, Eq. 2.2 Nout = 4 bias adds x 0.1 = 0.4;
    # Eq. 6.2f 16 weight reads x E_w; Eq. 4 Nin = 4 input reads + Eq. 12 Nout = 4 output writes, x E_a.
    lemaire_fnn = {"ops": 16 * (mult + add) + 4 * add, "weights": 16 * e_w, "io": (4 + 4) * e_a}
    assert est.ann["compute"] == pytest.approx(lemaire_fnn["ops"] - 4 * add)  # bias adds are not counted here
    assert est.ann["weights"] == pytest.approx(lemaire_fnn["weights"]) == pytest.approx(211.2892928)
    assert est.ann["activations"] == pytest.approx(lemaire_fnn["io"]) == pytest.approx(105.6111616)
    # SNN: Eq. 8f theta_in x Nout = 12 weight reads; Eq. 5 theta_in FIFO reads + Eq. 13 theta_out FIFO writes;
    # Eq. 2.4 (the implementation's corrected form: the printed one counts theta_in x Nin x Nout and no reset)
    # theta_in x Nout + T x Nout + theta_out = 22 adds; Eq. 10 + Eq. 15 potential reads and writes,
    # (theta_in x Nout + T x Nout) each = 40 accesses.
    lemaire_snn = {"weights": theta_in * n * e_w, "io": (theta_in + theta_out) * e_a,
                   "ops": (theta_in * n + T * n + theta_out) * add, "potentials": 2 * (theta_in * n + T * n) * e_a}
    assert est.snn["weights"] == pytest.approx(lemaire_snn["weights"]) == pytest.approx(158.4669696)
    assert est.snn["spikes"] == pytest.approx(lemaire_snn["io"]) == pytest.approx(66.006976)
    # ours: 12 ACs + T x Nout = 8 updates x 2 adds = 28 adds; theirs 22: 2 x 8 - (8 + 2) = 6 adds more
    assert est.snn["compute"] == pytest.approx(28 * add) == pytest.approx(lemaire_snn["ops"] + 6 * add)
    # ours: 8 updates x (1 read + 1 write) = 16 accesses; theirs 40: 2 x theta_in x Nout = 24 per-event accesses more
    assert est.snn["membrane"] == pytest.approx(16 * e_a) == pytest.approx(lemaire_snn["potentials"] - 24 * e_a)
    assert est.snn["activations"] == 0
