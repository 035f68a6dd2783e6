"""An independent check of the energy model with data movement: a conv -> IF -> linear -> IF net whose spikes are
counted by hand, priced by hand from the sources' own numbers (Horowitz ISSCC 2014 45 nm; Davies et al. 2018 Table 2
for Loihi, its ANN and MAC layers on SATA_Sim's 28 nm figures), with plain arithmetic: no constant is read from
the code under test. Per layer and per sample (a batch of two, one image too faint to spike), SNN and ANN equivalent, the
break-even rate, the record's millijoules, and what T and the batch do and do not change."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import layer, neuron

from bench.metrics.energy import hardware_record
from bench.metrics.ops import profile


def two_layer_net() -> nn.Module:
    """Conv2d(1 -> 2, 1x1, no bias; weights 1 and 0.5) -> IF -> flatten -> Linear(8 -> 2, no bias) -> IF (threshold 1,
    hard reset to 0). Linear row 0 reads input 0 (weight 1); row 1 reads inputs 1 and 4 (0.5, 0.25)."""
    conv, lin = nn.Conv2d(1, 2, 1, bias=False), nn.Linear(8, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 0.5]).reshape(2, 1, 1, 1))
        w = torch.zeros(2, 8)
        w[0, 0], w[1, 1], w[1, 4] = 1.0, 0.5, 0.25
        lin.weight.copy_(w)
    return nn.Sequential(layer.SeqToANNContainer(conv), neuron.IFNode(v_threshold=1.0, v_reset=0.0, step_mode="m"),
                         nn.Flatten(2), lin, neuron.IFNode(v_threshold=1.0, v_reset=0.0, step_mode="m")).eval()


def batch(T: int) -> torch.Tensor:
    """[T, B=2, 1, 2, 2]: sample 0 the image [[1, .6], [.2, 0]] at every step, sample 1 a faint image [[.4, .3],
    [.2, .1]] (real-valued, as sample 0: both analog, whether batched or alone) that never reaches the threshold."""
    img, faint = torch.tensor([[1.0, 0.6], [0.2, 0.0]]), torch.tensor([[0.4, 0.3], [0.2, 0.1]])
    return torch.stack([img, faint]).reshape(1, 2, 1, 2, 2).repeat(T, 1, 1, 1, 1)


# Spikes by hand, T = 2, sample 0 (sample 1's currents stay below 0.4 + 0.4: it never spikes). Conv currents each step: channel 0 (w 1) [1, .6, .2, 0],
# channel 1 (w .5) [.5, .3, .1, 0]. IF1: t0 channel 0 position 0 reaches 1 (spike, reset); t1 it spikes again,
# position 1 reaches 1.2 (spike), channel 1 position 0 reaches 1.0 (spike): 4 spikes, flattened inputs t0 {0},
# t1 {0, 1, 4}. Linear: neuron 0 gets 1 at t0 and t1 (2 spikes), neuron 1 gets .5 + .25 = .75 at t1 (none).
# Per sample (/ B = 2): conv 2 x 4 x 2 = 16 MACs (8 one inference, 2 weights, 4 pixels read per step);
# IF1 16 updates, 2 spikes; linear 4 events -> 4 x 2 fan-out / 2 = 4 SOPs (16 MACs one inference, 16 weights);
# IF2 4 updates, 1 spike. Mean rate (neuron-weighted): (4 + 2) / (2 x (16 + 4)) = 0.15.
RATE = 6 / 40

# Horowitz ISSCC 2014, 45 nm (pJ): int8 add 0.03, int8 mult 0.2; 64-bit reads: 1 MB SRAM 100, 32 KB SRAM 20.
# Widths: weights 8, membrane / accumulator 16, activations 8 (ANN too), address events 16; dense reuse 16.
ADD16, MULT8 = 0.03 * 16 / 8, 0.2  # an add scales with its width
W_BIT, M_BIT, A_BIT = 100 / 64, 20 / 64, 20 / 64  # pJ per bit; writes priced as reads
SRAM_SNN = {  # per layer: compute, weights, membrane, spikes, activations
    "conv": (16 * (MULT8 + ADD16), 4 * 8 * W_BIT, 0, 0, 8 * 8 * A_BIT),  # 4 weight passes > 16 MACs / 16
    "if1": (16 * 2 * ADD16, 0, 16 * 16 * 2 * M_BIT, 2 * 16 * A_BIT, 0),  # 2 spikes written as 16-bit addresses
    "linear": (4 * ADD16, 4 * 8 * W_BIT, 0, 2 * 16 * A_BIT, 0),  # one weight per SOP; 2 input events read
    "if2": (4 * 2 * ADD16, 0, 4 * 16 * 2 * M_BIT, 1 * 16 * A_BIT, 0),
}
SRAM_EVENT = 2 * 16 * A_BIT + (4 * ADD16 + 4 * 8 * W_BIT + 2 * 16 * A_BIT) + 1 * 16 * A_BIT
SRAM_ANN = {  # compute, weights, activations (one inference: inputs read and outputs written at 8 bits)
    "conv": (8 * (MULT8 + ADD16), 2 * 8 * W_BIT, (4 + 8) * 8 * A_BIT),
    "linear": (16 * (MULT8 + ADD16), 16 * 8 * W_BIT, (8 + 2) * 8 * A_BIT),
}

# Loihi, Davies et al. 2018 Table 2 (pJ): synaptic op 23.6, neuron update (active) 81, spike within tile 1.7.
# Its MAC layers, their weights and pixels, and the ANN on SATA_Sim's 28 nm figures: 16-bit mult 0.239 and
# accumulate 0.0389; per 256-bit access, weight GLB read 28.6315, spike GLB read 11.0295 and write 12.772.
SATA_MAC = 0.239 * 8 * 8 / 16 ** 2 + 0.0389
SW_BIT, SR_BIT, SWR_BIT = 28.6315 / 256, 11.0295 / 256, 12.772 / 256
LOIHI_SNN = {
    "conv": (16 * SATA_MAC, 4 * 8 * SW_BIT, 0, 0, 8 * 8 * SR_BIT),
    "if1": (16 * 81.0, 0, 0, 2 * 1.7, 0),
    "linear": (4 * 23.6, 0, 0, 0, 0),
    "if2": (4 * 81.0, 0, 0, 1 * 1.7, 0),
}
LOIHI_EVENT = 2 * 1.7 + 4 * 23.6 + 1.7
LOIHI_ANN = {
    "conv": (8 * SATA_MAC, 2 * 8 * SW_BIT, 4 * 8 * SR_BIT + 8 * 8 * SWR_BIT),
    "linear": (16 * SATA_MAC, 16 * 8 * SW_BIT, 8 * 8 * SR_BIT + 2 * 8 * SWR_BIT),
}
SNN_TERMS, ANN_TERMS = ("compute", "weights", "membrane", "spikes", "activations"), ("compute", "weights", "activations")


def totals(per_layer: dict[str, tuple[float, ...]], terms: tuple[str, ...]) -> dict[str, float]:
    out = {t: sum(row[i] for row in per_layer.values()) for i, t in enumerate(terms)}
    return out | {"total": sum(out.values())}


@pytest.fixture(scope="module")
def record() -> dict:
    firing, ops = profile(two_layer_net(), batch(2))
    return hardware_record(ops, firing, {"hw_evaluate": ["45nm-sram", "loihi"]})


@pytest.mark.parametrize("name, snn, ann, event", [("45nm-sram", SRAM_SNN, SRAM_ANN, SRAM_EVENT),
                                                   ("loihi", LOIHI_SNN, LOIHI_ANN, LOIHI_EVENT)])
def test_per_sample_energy_by_hand(record, name, snn, ann, event):
    entry = record["hardware"][name]
    assert entry["snn_pj"] == pytest.approx(totals(snn, SNN_TERMS), rel=1e-12)
    assert entry["ann_pj"] == pytest.approx(totals(ann, ANN_TERMS), rel=1e-12)
    assert entry["rate"] == pytest.approx(RATE)
    e_snn, e_ann = totals(snn, SNN_TERMS)["total"], totals(ann, ANN_TERMS)["total"]
    assert entry["snn_fixed_pj"] == pytest.approx(e_snn - event) and entry["snn_slope_pj"] == pytest.approx(event / RATE)
    assert entry["ann_over_snn"] == pytest.approx(e_ann / e_snn)  # ANN over SNN: below 1 here, the ANN is cheaper


def test_break_even_rates_by_hand(record):
    # 45 nm SRAM: E_snn = 351.8 pJ, event part 75.24 pJ, ANN 286.24 pJ: (286.24 - 276.56) / (75.24 / 0.15) = 1.93 %.
    sram = record["hardware"]["45nm-sram"]
    e_snn, e_ann = totals(SRAM_SNN, SNN_TERMS)["total"], totals(SRAM_ANN, ANN_TERMS)["total"]
    assert (e_snn, e_ann) == pytest.approx((351.8, 286.24))
    assert sram["break_even_rate"] == pytest.approx((e_ann - (e_snn - SRAM_EVENT)) / (SRAM_EVENT / RATE))
    assert sram["break_even_rate"] == pytest.approx(0.0193, abs=5e-5) and sram["break_even_why"] is None
    # Loihi: 20 neuron updates x 81 pJ alone (1620 pJ) exceed the ANN on 28 nm (26.6 pJ): no break-even.
    loihi = record["hardware"]["loihi"]
    assert totals(LOIHI_ANN, ANN_TERMS)["total"] == pytest.approx(26.60013125)
    assert loihi["break_even_rate"] is None and "does not win at any rate" in loihi["break_even_why"]
    assert record["break_even_rate"] == sram["break_even_rate"]  # the headline field: the primary profile's


def test_layers_and_millijoules(record):
    rows = {lay["name"]: lay for lay in record["hw_layers"]}  # the primary profile, 45nm-sram
    assert [(r["type"], r["kind"]) for r in rows.values()] == [("Conv2d", "dense"), ("IFNode", "neuron"),
                                                               ("Linear", "event-driven"), ("IFNode", "neuron")]
    for row, (mine, ann) in zip(rows.values(), [("conv", "conv"), ("if1", None), ("linear", "linear"), ("if2", None)],
                                strict=True):
        assert [row["snn_pj"][t] for t in SNN_TERMS] == pytest.approx(SRAM_SNN[mine])
        assert [row["ann_pj"][t] for t in ANN_TERMS] == pytest.approx(SRAM_ANN[ann] if ann else (0, 0, 0))
    snn = totals(SRAM_SNN, SNN_TERMS)
    assert record["hw_energy_mj"] == pytest.approx(snn["total"] * 1e-12 / 1e-3)  # pJ -> mJ: x 1e-9
    assert record["hw_ann_energy_mj"] == pytest.approx(totals(SRAM_ANN, ANN_TERMS)["total"] * 1e-9)
    assert (record["hw_weight_mj"], record["hw_activation_mj"]) == pytest.approx((snn["weights"] * 1e-9,
                                                                                 snn["activations"] * 1e-9))


def test_per_sample_is_the_mean_of_the_samples_and_the_ann_one_inference_whatever_T():
    """Per sample, not per batch: the [image, faint] batch is the mean of the image alone and the faint one alone (the
    faint one still costs its MACs, updates and weight passes). The ANN equivalent is one inference: T = 2 and T = 4
    price it the same, while the SNN's terms grow with T."""
    net = two_layer_net()

    def entry(x: torch.Tensor) -> dict:
        firing, ops = profile(net, x)
        return hardware_record(ops, firing, {"hw_evaluate": ["45nm-sram"]})["hardware"]["45nm-sram"]

    both, image, faint = entry(batch(2)), entry(batch(2)[:, :1]), entry(batch(2)[:, 1:])
    for term in SNN_TERMS:
        assert both["snn_pj"][term] == pytest.approx((image["snn_pj"][term] + faint["snn_pj"][term]) / 2)
    assert both["ann_pj"] == pytest.approx(image["ann_pj"]) and both["ann_pj"] == pytest.approx(faint["ann_pj"])
    four = entry(batch(4))
    assert four["ann_pj"] == pytest.approx(both["ann_pj"])
    assert four["snn_pj"]["membrane"] == pytest.approx(2 * both["snn_pj"]["membrane"])  # an update per step


def test_the_printed_compute_only_ann_rule_is_the_one_applied():
    """Every report prints ``conventions.ENERGY_RULES``: its ANN-equivalent rule must be the one the code applies,
    one inference (conv 8 + linear 16 = 24 MACs per sample here), not the T-step dense total (2 x 24 = 48)."""
    from bench.metrics.conventions import ENERGY_RULES
    from bench.metrics.energy import estimate_energy

    firing, ops = profile(two_layer_net(), batch(2))
    assert ops.totals["dense_macs"] == 48
    assert estimate_energy(ops, "45nm-fp32").ann_energy_pj == pytest.approx(24 * 4.6)
    rule = dict(ENERGY_RULES)["ANN-equivalent"]
    assert "ONE inference" in rule and "E_ANN = ann MACs x mac_pj" in rule and "E_ANN = dense MACs" not in rule


def test_a_synaptic_layer_without_input_events_is_event_driven_not_data():
    """The linear layer of the net on the faint image alone: IF1 never fires, so the layer does 0 ACs, but it is a
    synaptic layer on spikes (16 one-inference ANN MACs), not memory traffic: an untrained Spikeformer's silent
    MLP read as "data" in the report's layer split."""
    firing, ops = profile(two_layer_net(), batch(2)[:, 1:])
    lin = next(lay for lay in ops.layers if lay.type == "Linear")
    assert (lin.acs, lin.macs, lin.ann_macs) == (0, 0, 16)
    rows = hardware_record(ops, firing, {"hw_evaluate": ["45nm-sram"]})["hw_layers"]
    assert next(r for r in rows if r["type"] == "Linear")["kind"] == "event-driven"


def test_every_builtin_constant_is_a_number_its_source_string_cites():
    """The report prints each profile's constants beside its source string: each constant must be one the string
    states, in the string's unit (SATA_Sim's nJ per 32-byte access, Horowitz's pJ and nJ per 64-bit access)."""
    from bench.metrics.hardware import HARDWARE_PROFILES

    sram, dram, sata = (HARDWARE_PROFILES[n] for n in ("45nm-sram", "45nm-dram", "28nm-sata"))
    for p in (sram, dram):
        assert f"int8 add {p.add_pj:g} pJ" in p.source and f"int8 mult {p.mult_pj:g} pJ" in p.source
        assert p.ref_bits == 8 and p.weight_access_bits == p.membrane_access_bits == p.act_access_bits == 64
        assert f"32 KB {p.membrane_read_pj:g} pJ" in p.source and p.act_read_pj == p.membrane_read_pj
        assert p.membrane_write_pj == p.membrane_read_pj and p.act_write_pj == p.act_read_pj  # "writes as reads"
    assert f"1 MB {sram.weight_read_pj:g} pJ" in sram.source
    assert f"DRAM {dram.weight_read_pj / 1000:g}-2.6 nJ" in dram.source  # the low end
    assert f"16-bit multiplier {sata.mult_pj:g}" in sata.source and f"accumulator {sata.add_pj:g}" in sata.source
    assert sata.ref_bits == 16 and sata.weight_access_bits == 256  # "32-byte blocks"
    assert f"GLB-weight 144 KiB read {sata.weight_read_pj / 1000:g} nJ" in sata.source
    assert f"GLB-spike 32 KiB read {sata.act_read_pj / 1000:g} nJ, write {sata.act_write_pj / 1000:g} nJ" in sata.source
    assert (sata.membrane_read_pj, sata.membrane_write_pj) == (sata.act_read_pj, sata.act_write_pj)
    loihi = HARDWARE_PROFILES["loihi"]
    assert f"synaptic spike op (min) {loihi.sop_pj:g} pJ" in loihi.source
    assert f"(active / inactive) {loihi.neuron_update_pj:g} / 52 pJ" in loihi.source
    assert f"within-tile spike energy {loihi.spike_pj:g} pJ" in loihi.source
    spinnaker2 = HARDWARE_PROFILES["spinnaker2"]
    assert spinnaker2.source.startswith(f"{spinnaker2.sop_pj:g} pJ per synaptic operation and "
                                        f"{spinnaker2.neuron_update_pj / 1000:g} nJ per neuron update")


# event_weight_reuse = E: the linear layer's 4 SOPs read 4 / E weights (8 bits each); nothing else moves.
@pytest.mark.parametrize("reuse", [2, 4, 16])
def test_event_weight_reuse_divides_the_snn_event_weight_reads_by_hand(reuse):
    """On 45nm-sram the linear layer's weight term is 4 SOPs / E x 8 bits x 100/64 pJ (E = 4: 12.5 pJ, not 50); the
    conv's dense weight passes, compute, membrane, spikes, activations and the ANN stay; the event part loses the
    same amount, so the break-even rate is (E_ann - fixed) / (event' / r): 1.93 % at E = 1, 3.85 % at E = 4."""
    firing, ops = profile(two_layer_net(), batch(2))
    rec = hardware_record(ops, firing, {"hw_evaluate": ["45nm-sram", "loihi"], "event_weight_reuse": reuse})
    sram = rec["hardware"]["45nm-sram"]
    snn = dict(SRAM_SNN)
    c, _, m, s, a = snn["linear"]
    snn["linear"] = (c, 4 / reuse * 8 * W_BIT, m, s, a)
    expected = totals(snn, SNN_TERMS)
    assert sram["snn_pj"] == pytest.approx(expected, rel=1e-12)
    assert sram["snn_pj"]["weights"] == pytest.approx(4 * 8 * W_BIT + 4 / reuse * 8 * W_BIT)  # conv + linear
    default = totals(SRAM_SNN, SNN_TERMS)
    for term in ("compute", "membrane", "spikes", "activations"):
        assert sram["snn_pj"][term] == pytest.approx(default[term], rel=1e-12)
    assert sram["ann_pj"] == pytest.approx(totals(SRAM_ANN, ANN_TERMS), rel=1e-12)
    event = SRAM_EVENT - 4 * 8 * W_BIT + 4 / reuse * 8 * W_BIT
    fixed, e_ann = default["total"] - SRAM_EVENT, totals(SRAM_ANN, ANN_TERMS)["total"]
    assert sram["snn_fixed_pj"] == pytest.approx(fixed) and sram["snn_slope_pj"] == pytest.approx(event / RATE)
    assert sram["break_even_rate"] == pytest.approx((e_ann - fixed) / (event / RATE))
    if reuse == 4:  # 9.68 pJ / (37.74 pJ / 0.15)
        assert (fixed, event, e_ann) == pytest.approx((276.56, 37.74, 286.24))
        assert sram["break_even_rate"] == pytest.approx(0.03847, abs=5e-6)
    # Loihi's sop_pj includes the weight read: the neuromorphic profile is unaffected.
    assert rec["hardware"]["loihi"]["snn_pj"] == pytest.approx(totals(LOIHI_SNN, SNN_TERMS), rel=1e-12)
    assert rec["hardware"]["loihi"]["snn_slope_pj"] == pytest.approx(LOIHI_EVENT / RATE)
    assert rec["hw_bits"]["event_weight_reuse"] == reuse and rec["hw_bits"]["dense_weight_reuse"] == 16


def test_event_weight_reuse_1_is_the_default_and_todays_figures_exactly():
    """Absent or 1: the same record, bit for bit, and the hand-computed one-read-per-SOP figures."""
    firing, ops = profile(two_layer_net(), batch(2))
    absent = hardware_record(ops, firing, {"hw_evaluate": ["45nm-sram", "28nm-sata", "loihi"]})
    one = hardware_record(ops, firing, {"hw_evaluate": ["45nm-sram", "28nm-sata", "loihi"], "event_weight_reuse": 1})
    assert absent == one and absent["hw_bits"]["event_weight_reuse"] == 1
    assert absent["hardware"]["45nm-sram"]["snn_pj"]["weights"] == pytest.approx(4 * 8 * W_BIT + 4 * 8 * W_BIT)


def test_the_printed_weight_rule_states_event_weight_reuse_and_its_limits():
    """Every report prints ``conventions.ENERGY_MODEL_RULES``: the weight rule must name the option, say it is linear
    (reads may fall below one per weight: an optimistic bound) and that neuromorphic profiles ignore it."""
    from bench.metrics.conventions import ENERGY_MODEL_RULES

    rule = dict(ENERGY_MODEL_RULES)["SNN weights"]
    assert "SOPs / event_weight_reuse" in rule and "default 1" in rule
    assert "below one per weight" in rule and "optimistic bound" in rule
    assert "Neuromorphic profiles are unaffected" in rule and "dense_weight_reuse" in rule
