"""What the "Energy with data movement" tables say about how each profile priced a case, from records the energy
plug-in itself writes (a Linear + IF net with known spikes, a user digital profile and a user neuromorphic one with
no spike cost): the SNN parts shown add up to its total (real-valued activation traffic included), a term the
profile counts inside another cost reads "in compute" and one it has no cost for "not priced" (never "0 pJ"), a
neuromorphic row names the digital profile its ANN is priced on, a user profile's constants are printed (no stored
convention holds them), and the headline names the profile of its data-movement columns."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import neuron

from bench.metrics.energy import hardware_record
from bench.metrics.ops import profile
from bench.report import energy_section as es
from bench.report.content import headline_section
from bench.report.declared import Declared
from bench.report.formats import format_value

MYCHIP = {"kind": "digital", "source": "my lab's SPICE runs", "add_pj": 0.05, "mult_pj": 0.3, "ref_bits": 8,
          "weight_read_pj": 50.0, "weight_access_bits": 64, "membrane_read_pj": 10.0, "membrane_write_pj": 12.0,
          "membrane_access_bits": 64, "act_read_pj": 10.0, "act_write_pj": 12.0, "act_access_bits": 64}
MYNEURO = {"kind": "neuromorphic", "source": "a vendor datasheet", "sop_pj": 5.0, "neuron_update_pj": 20.0,
           "spike_pj": 0.0, "reference": "mychip"}


def energy_record() -> dict:
    """Linear(4 -> 3) on an analog first step and spikes after (so it does MACs and ACs, reads real values), then
    IF; priced on 45nm-sram (primary), mychip and myneuro."""
    lin = nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 0.5]]))
    net = nn.Sequential(lin, neuron.IFNode(v_threshold=1.0, v_reset=0.0, step_mode="m")).eval()
    x = torch.tensor([[[1.0, 0.3, 0.7, 0]], [[0, 0, 0, 1.0]]])
    firing, ops = profile(net, x)
    energy = hardware_record(ops, firing, {"hw_evaluate": ["45nm-sram", "mychip", "myneuro"],
                                           "hardware_profiles": {"mychip": MYCHIP, "myneuro": MYNEURO}})
    energy |= {"energy_mj": 1e-9, "profile": "45nm-fp32", "profile_source": "Horowitz, ISSCC 2014"}
    return {"case_id": "A|T=2|cpu|bs=1", "status": "ok", "T": 2, "trained_T": 2, "batch_size": 1, "device": "cpu",
            "model": {"label": "A", "name": "a", "untrained": False, "checkpoint": "a.pth",
                      "checkpoint_format": "snnbench"}, "metrics": {"energy": energy}}


@pytest.fixture(scope="module")
def record() -> dict:
    return energy_record()


def table(record: dict) -> es.ModelTable:
    tables, _ = es.model_tables([copy.deepcopy(record)], Declared({}))
    return tables[0]


def test_the_parts_shown_add_up_to_the_snn_total(record):
    """The first step's real-valued input is read at 8 bits (activations > 0): the column the table lacked."""
    t = table(record)
    f = es.declared_field(Declared({}), "hw_energy_mj")
    for name, entry in record["metrics"]["energy"]["hardware"].items():
        row = next(r for r in t.frame.to_dict("records") if r["profile"] == name)
        snn = entry["snn_pj"]
        assert snn["activations"] > 0
        assert row["SNN activations"] == format_value(f, snn["activations"] / 1e9)
        parts = ("compute", "weights", "membrane", "spikes", "activations")
        assert sum(snn[p] for p in parts) == pytest.approx(snn["total"])
    assert "the parts add up to the SNN total" in t.caption


def test_terms_counted_elsewhere_or_not_priced_never_read_0_pj(record):
    rows = {r["profile"]: r for r in table(record).frame.to_dict("records")}
    hw = record["metrics"]["energy"]["hardware"]["myneuro"]
    assert hw["snn_pj"]["membrane"] == 0 and hw["snn_pj"]["spikes"] == 0 and hw["unpriced"] == ["spikes"]
    assert (rows["myneuro"]["SNN membrane"], rows["myneuro"]["SNN spikes"]) == ("in compute", "not priced")
    assert rows["mychip"]["SNN membrane"].endswith("pJ") and rows["mychip"]["SNN spikes"].endswith("pJ")
    assert "0 pJ" not in rows["myneuro"].values()


def test_a_neuromorphic_row_names_what_it_includes_and_its_reference(record):
    notes = table(record).notes
    note = next(n for n in notes if n.startswith("myneuro: "))
    assert "membrane reads and writes are in neuron_update_pj" in note
    assert "input event reads are in sop_pj" in note and "not priced: spikes (the profile's cost for them is 0)" in note
    assert "priced on the digital profile mychip" in note
    assert not any(n.startswith(("mychip: ", "45nm-sram: ")) for n in notes)  # digital rows price everything


def test_a_user_profiles_constants_are_listed_from_the_record(record):
    tables, _ = es.model_tables([copy.deepcopy(record)], Declared({}))
    md = es.profiles_markdown(tables, Declared({}))
    mine = next(line for line in md.splitlines() if line.startswith("- **mychip**"))
    assert mine.startswith("- **mychip** (digital): my lab's SPICE runs (")
    for key, value in MYCHIP.items():
        if key not in ("kind", "source"):
            assert f"{key} = {value}" in mine
    neuro = next(line for line in md.splitlines() if line.startswith("- **myneuro**"))
    assert "sop_pj = 5.0" in neuro and "spike_pj = 0.0" in neuro and "reference = mychip" in neuro
    # A built-in reads as before: its notes, then its constants.
    sram = next(line for line in md.splitlines() if line.startswith("- **45nm-sram**"))
    assert "(notes = int8 datapath;" in sram and "weight_read_pj = 100.0" in sram


def test_the_headline_names_the_profile_of_its_data_movement_columns(record):
    from bench.report.content import ReportOptions

    section = headline_section([copy.deepcopy(record)], Declared({}), ReportOptions())
    notes = [n for block in section.blocks for n in (getattr(block, "notes", None) or [])]
    assert any(n.startswith("energy with data movement, its ANN / SNN ratio and the break-even firing rate: on "
                            "hardware profile 45nm-sram (energy.hw_profile)") for n in notes)


def test_a_neuromorphic_primary_names_its_reference_in_the_headline_and_the_plot_says_so(record):
    from bench.palette import model_styles
    from bench.report import energy_rate_plot as erp

    rec = copy.deepcopy(record)
    rec["metrics"]["energy"]["hw_profile"] = "myneuro"
    assert es.headline_note([rec]).startswith("energy with data movement, its ANN / SNN ratio and the break-even "
                                              "firing rate: on hardware profile myneuro (its ANN equivalent on mychip)")
    plot = erp.energy_vs_rate([rec], model_styles(["A"]))
    assert "ANN equivalent priced on the digital reference profile: myneuro on mychip." in plot.caption


def test_the_compute_only_figure_is_not_called_the_literatures_estimate_beside_another_one(record):
    """energy_mj (exact ACs) and literature_energy_mj (the papers' approximate SOPs) differ; the report's "All cases"
    calls the second "literature estimate", so the note must not call the first "the literature's" too."""
    rec = copy.deepcopy(record)
    rec["metrics"]["energy"] |= {"energy_mj": 2e-9, "literature_energy_mj": 3e-9}  # 2 pJ and 3 pJ
    note = next(n for n in table(rec).notes if "energy.energy_mj" in n)
    assert note.startswith("compute-only estimate (Horowitz 2014 arithmetic, exact op counts): 2 pJ per sample")
    assert "the papers' formula (approximate SOPs = rate x T x dense MACs): 3 pJ (energy.literature_energy_mj)" in note
    assert "literature's" not in note


def test_no_break_even_reason_quotes_energies_as_the_cells_show_them():
    """Linear(256 -> 64) on real values at both steps: its fixed cost (MACs and weight reads at every step) reaches
    the ANN's (one inference), so no break-even. The reason (verdict cell, plot caption, stored text) quotes both
    energies with a unit each, in the unit the table's cells use (0.41 uJ reads 410 nJ, never 4.1e+05 pJ)."""
    from bench.palette import model_styles
    from bench.report import energy_rate_plot as erp

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(256, 64, bias=False), neuron.IFNode(step_mode="m")).eval()
    firing, ops = profile(net, torch.rand(2, 1, 256))
    energy = hardware_record(ops, firing, {"hw_evaluate": ["45nm-sram"]})
    entry = energy["hardware"]["45nm-sram"]
    assert entry["break_even_rate"] is None and entry["snn_fixed_pj"] >= entry["ann_pj"]["total"] > 1e4
    rec = energy_record()
    rec["metrics"]["energy"] = energy | {"energy_mj": 1e-6, "profile": "45nm-fp32"}
    row = next(r for r in table(rec).frame.to_dict("records") if r["profile"] == "45nm-sram")
    unit = es.declared_field(Declared({}), "hw_energy_mj")
    fixed = format_value(unit, entry["snn_fixed_pj"] / es.PJ_PER_MJ)
    said = (f"the SNN's rate-independent costs ({fixed}) already reach the ANN's ({row['ANN-equivalent']}): it does "
            "not win at any rate")
    assert row["verdict"] == f"no break-even: {said}" and energy["break_even_rate_why"] == said
    assert fixed.endswith(" nJ") and "e+" not in said
    assert f"A on 45nm-sram: no break-even ({said})" in erp.energy_vs_rate([rec], model_styles(["A"])).caption
