"""The "Energy with data movement" section and the energy-vs-firing-rate plot, from ``energy.hardware`` records:
cells equal the recorded values formatted by hand, the three verdicts, the untrained rule, the drawn lines
against hand-computed energies (through the measured point, meeting the ANN line at the break-even rate),
layout, nothing drawn or shown without ``hardware``, and a real run's report with and without it."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest
from real_run import copy_run, edit_json, read_jsonl, real_run, write_jsonl
from test_report_browser import CHROMIUM, fits, inspect_page
from weights import relabelled

from bench.palette import model_styles
from bench.report import energy_rate_plot as erp
from bench.report import energy_section as es
from bench.report import plots, render_report
from bench.report.content import build_content
from bench.report.declared import Declared, declarations
from bench.results import load_run

PARTS = ("compute", "weights", "membrane", "spikes", "activations")
RATIO = "ANN / SNN energy with data movement"  # the section's ratio column (fallback declaration)


def profile(kind: str, parts: tuple[float, ...], ann: float | None, fixed: float, slope: float, rate: float,
            break_even: float | None, why: str | None = None) -> dict:
    """One profile entry of the schema; the SNN total is the line at the measured rate, as the plug-in records."""
    total = fixed + slope * rate
    return {"kind": kind, "source": f"source of the {kind} profile",
            "snn_pj": dict(zip(PARTS, parts, strict=True)) | {"total": total},
            "ann_pj": None if ann is None else {"compute": ann / 2, "weights": ann / 4, "activations": ann / 4,
                                                 "total": ann},
            "ann_why": None if ann is not None else "the net has no dense equivalent",
            "ann_over_snn": None if ann is None else ann / total, "rate": rate, "snn_fixed_pj": fixed,
            "snn_slope_pj": slope, "break_even_rate": break_even, "break_even_why": why}


# Worked out by hand, rate 0.15 everywhere:
#   gpu:   E(r) = 5000 + 20000 r -> E(0.15) = 8000 pJ; ANN 12000 -> ratio 1.5; break-even (12000-5000)/20000 = 0.35
#   loihi: E(r) = 200 + 4000 r   -> E(0.15) = 800 pJ;  ANN 500   -> ratio 0.625; break-even (500-200)/4000 = 0.075
#   sram:  E(r) = 9000 + 1000 r  -> E(0.15) = 9150 pJ; ANN 6000 < E(0): no break-even; ratio 6000/9150
HARDWARE = {
    "gpu": profile("digital", (1000, 4000, 2500, 400, 100), 12000, 5000, 20000, 0.15, 0.35),
    "loihi": profile("neuromorphic", (300, 100, 250, 150, 0), 500, 200, 4000, 0.15, 0.075),
    "sram": profile("digital", (6000, 2000, 1000, 150, 0), 6000, 9000, 1000, 0.15, None,
                    "the SNN's fixed cost alone exceeds the ANN's energy"),
}


def record(label: str = "A", *, untrained: bool = False, hardware: dict | None = None, T: int = 4) -> dict:
    model = ({"label": label, "name": label.lower(), "untrained": True, "checkpoint": None,
              "weights": "untrained, BN calibrated on 64 samples"} if untrained else
             {"label": label, "name": label.lower(), "untrained": False, "checkpoint": "a.pth",
              "checkpoint_format": "snnbench"})
    energy = {"energy_mj": 3e-6, "profile": "45nm-fp32", "profile_source": "Horowitz, ISSCC 2014"}
    if hardware is not False:
        energy["hardware"] = copy.deepcopy(HARDWARE if hardware is None else hardware)
    return {"case_id": f"{label}|T={T}|cpu|bs=8", "status": "ok", "T": T, "trained_T": 4, "batch_size": 8,
            "device": "cpu", "model": model, "metrics": {"energy": energy}}


def table_of(records: list[dict], label: str = "A") -> es.ModelTable:
    tables, _ = es.model_tables(records, Declared({}))
    return next(t for t in tables if t.label == label)


def test_cells_are_the_recorded_values_formatted():
    t = table_of([record()])
    rows = {r["profile"]: r for r in t.frame.to_dict("records")}
    assert rows["gpu"] == {"profile": "gpu", "kind": "digital", "SNN compute": "1 nJ", "SNN weights": "4 nJ",
                           "SNN membrane": "2.5 nJ", "SNN spikes": "400 pJ", "SNN activations": "100 pJ",
                           "SNN total": "8 nJ",
                           "ANN-equivalent": "12 nJ", RATIO: "1.50",
                           "measured firing rate (%)": "15.00",
                           "break-even rate (%)": "35.00", "verdict": "SNN cheaper"}
    assert (rows["loihi"]["SNN total"], rows["loihi"]["ANN-equivalent"], rows["loihi"][RATIO],
            rows["loihi"]["break-even rate (%)"]) == ("800 pJ", "500 pJ", "0.62", "7.50")  # 0.625 -> 0.62 (half-even)
    assert (rows["sram"]["SNN total"], rows["sram"][RATIO], rows["sram"]["break-even rate (%)"]) == (
        "9.15 nJ", "0.66", "n/a")  # 6000 / 9150 = 0.6557
    assert "T=4 (trained; weights: snnbench)" in t.caption
    assert any(n.startswith("compute-only estimate (Horowitz 2014 arithmetic, exact op counts): 3 nJ per sample")
               for n in t.notes)  # energy_mj 3e-6 mJ = 3 nJ


def test_three_verdicts():
    rows = {r["profile"]: r["verdict"] for r in table_of([record()]).frame.to_dict("records")}
    assert rows == {"gpu": "SNN cheaper", "loihi": "ANN cheaper",
                    "sram": "no break-even: the SNN's fixed cost alone exceeds the ANN's energy"}
    # The verdict agrees with the recorded ratio on every profile that has a break-even.
    for name, p in HARDWARE.items():
        if p["break_even_rate"] is not None:
            assert (rows[name] == "SNN cheaper") == (p["ann_over_snn"] > 1)


def test_untrained_ratio_and_verdict_withheld_break_even_shown():
    t = table_of([record("U", untrained=True)], "U")
    rows = {r["profile"]: r for r in t.frame.to_dict("records")}
    assert {r[RATIO] for r in rows.values()} == {"†"}
    assert rows["gpu"]["verdict"] == rows["loihi"]["verdict"] == "†"
    assert rows["sram"]["verdict"].startswith("no break-even: ")  # a property of the cost model: shown
    assert (rows["gpu"]["break-even rate (%)"], rows["gpu"]["SNN total"], rows["gpu"]["measured firing rate (%)"]) == (
        "35.00", "8 nJ", "15.00")
    assert not any("untrained" in n for n in t.notes)  # said once for the section, not under every table
    _, section_notes = es.model_tables([record("U", untrained=True), record("V", untrained=True)], Declared({}))
    untrained_notes = [n for n in section_notes if "untrained" in n]
    assert len(untrained_notes) == 1 and untrained_notes[0].startswith("† untrained (random weights): ")
    assert "break-even rate is a property of the cost model" in untrained_notes[0]


def test_missing_ann_reads_na_with_its_reason():
    hw = {"chip": profile("neuromorphic", (1, 2, 3, 4, 0), None, 10, 20, 0.1, None, "no ANN equivalent")}
    t = table_of([record(hardware=hw)])
    row = t.frame.to_dict("records")[0]
    assert (row["ANN-equivalent"], row[RATIO]) == ("n/a", "n/a")
    assert "ANN-equivalent, chip: n/a (the net has no dense equivalent)" in t.notes


def test_table_at_main_T_and_profiles_listed_with_sources():
    other = record(T=2)
    other["metrics"]["energy"]["hardware"]["gpu"]["rate"] = 0.9  # not the main T (trained_T = 4): not shown
    tables, _ = es.model_tables([other, record()], Declared({}))
    assert [t.record["T"] for t in tables] == [4]
    md = es.profiles_markdown(tables, Declared({}))
    assert "- **loihi** (neuromorphic): source of the neuromorphic profile" in md
    stored = Declared({}, conventions={"r": {"hardware_profiles": {"gpu": {"kind": "digital", "source": "HBM paper",
                                                                           "dram_pj_per_byte": 7.0}}}})
    assert "- **gpu** (digital): HBM paper (dram_pj_per_byte = 7.0)" in es.profiles_markdown(tables, stored)


# Per-layer split worked out by hand (pJ): dense stem 3000 compute + 1000 memory (500 weights, 500 activations);
# two event-driven convs 300 compute + 1200 memory (900 weights, 300 spikes); a neuron 400 compute + 600 memory
# (500 membrane, 100 spikes). Total 6500: dense 4000 (61.5 %), event-driven 1500 (23.1 %), neuron 1000 (15.4 %);
# compute 3700 (56.9 %), memory 2800 (43.1 %).
def hw_layer(name: str, kind: str, compute: float, weights: float, membrane: float, spikes: float, acts: float,
             ann: float) -> dict:
    snn = {"compute": compute, "weights": weights, "membrane": membrane, "spikes": spikes, "activations": acts}
    return {"name": name, "type": "Conv2d", "kind": kind, "snn_pj": snn | {"total": sum(snn.values())},
            "event_pj": 0.0, "ann_pj": {"compute": ann, "weights": 0.0, "activations": 0.0, "total": ann}}


HW_LAYERS = [hw_layer("stem.conv", "dense", 3000, 500, 0, 0, 500, 1000),
             hw_layer("l1.conv", "event-driven", 200, 600, 0, 200, 0, 2000),
             hw_layer("l2.conv", "event-driven", 100, 300, 0, 100, 0, 1500),
             hw_layer("sn1", "neuron", 400, 0, 500, 100, 0, 0)]


def test_layer_split_by_hand():
    rec = record()
    rec["metrics"]["energy"] |= {"hw_layers": copy.deepcopy(HW_LAYERS), "hw_profile": "sram"}
    split = table_of([rec]).split
    rows = split.frame.to_dict("records")
    assert rows == [
        {"layer kind": "event-driven", "layers": "2: l1.conv, l2.conv", "compute": "300 pJ", "memory traffic": "1.2 nJ",
         "SNN total": "1.5 nJ", "share (%)": "23.1", "ANN-equivalent": "3.5 nJ"},
        {"layer kind": "dense", "layers": "1: stem.conv", "compute": "3 nJ", "memory traffic": "1 nJ",
         "SNN total": "4 nJ", "share (%)": "61.5", "ANN-equivalent": "1 nJ"},
        {"layer kind": "neuron", "layers": "1: sn1", "compute": "400 pJ", "memory traffic": "600 pJ",
         "SNN total": "1 nJ", "share (%)": "15.4", "ANN-equivalent": "0 pJ"}]
    assert split.notes == ["SNN total 6.5 nJ: compute 3.7 nJ (56.9 %), memory traffic 2.8 nJ (43.1 %); event-driven "
                           "part 1.5 nJ (23.1 %), dense part 4 nJ (61.5 %)."]
    assert "A at T=4: the SNN's layers on sram" in split.caption
    many = record()
    many["metrics"]["energy"]["hw_layers"] = [hw_layer(f"c{i}", "event-driven", 1, 1, 0, 0, 0, 1) for i in range(5)]
    assert table_of([many]).split.frame.iloc[0]["layers"] == "5: c0, c1, c2 +2 more"


@pytest.mark.parametrize("bad", [None, float("nan"), "12 pJ", True, "missing"])
def test_layer_split_refused_when_a_term_is_missing_or_not_a_number(bad):
    """A partial or malformed hw_layers entry (l2.conv's weights): no split whose totals silently leave the term out,
    but a note naming the model, the layer and the field; a recorded 0.0 is a term of 0 and the split is drawn."""
    rec = record()
    rec["metrics"]["energy"] |= {"hw_layers": copy.deepcopy(HW_LAYERS), "hw_profile": "sram"}
    snn = rec["metrics"]["energy"]["hw_layers"][2]["snn_pj"]
    if bad == "missing":
        del snn["weights"]
    else:
        snn["weights"] = bad
    t = table_of([rec])
    assert t.split is None
    assert [n for n in t.notes if "layer split" in n] == [
        "No layer split for A: its energy.hw_layers lack a number for layer 'l2.conv': snn_pj.weights (missing, NaN "
        "or not numeric); the split is not drawn rather than summed with that term read as 0."]
    snn["weights"] = 0.0
    rows = {r["layer kind"]: r for r in table_of([rec]).split.frame.to_dict("records")}
    assert rows["event-driven"]["memory traffic"] == "900 pJ"  # 1200 - l2.conv's 300 pJ of weights


def test_layer_split_names_every_malformed_field_up_to_three():
    rec = record()
    rec["metrics"]["energy"] |= {"hw_layers": copy.deepcopy(HW_LAYERS), "hw_profile": "sram"}
    layers = rec["metrics"]["energy"]["hw_layers"]
    layers[0]["ann_pj"] = None
    layers[3]["snn_pj"] = {"compute": 400.0}
    (note,) = [n for n in table_of([rec]).notes if "layer split" in n]
    assert note.startswith("No layer split for A: its energy.hw_layers lack a number for layer 'stem.conv': "
                           "ann_pj.total; layer 'sn1': snn_pj.weights; layer 'sn1': snn_pj.membrane (+2 more) ")


def test_layer_split_absent_for_records_without_kinds():
    rec = record()
    rec["metrics"]["energy"]["hw_layers"] = [{k: v for k, v in lay.items() if k != "kind"} for lay in HW_LAYERS]
    t = table_of([rec])
    assert t.split is None and any(n.startswith("No layer split: ") for n in t.notes)


def test_no_hardware_no_section_no_plot():
    records = [record(hardware=False)]
    assert es.model_tables(records, Declared({})) == ([], [])
    assert erp.energy_vs_rate(records, model_styles(["A"])) is None


@pytest.fixture
def drawn(monkeypatch):
    figures = []
    render = erp.finish

    def keep(fig):
        figures.append(fig)
        return render(fig)

    monkeypatch.setattr(erp, "finish", keep)
    return figures


def artists(fig, gid: str):
    return [line for ax in fig.axes for line in ax.get_lines() if line.get_gid() == gid]


def test_lines_pass_through_the_measured_point_and_meet_the_ann_at_break_even(drawn):
    plot = erp.energy_vs_rate([record()], model_styles(["A"]))
    assert plot is not None and plot.problems == []
    (fig,) = drawn
    gpu, loihi, sram = fig.axes[:3]
    # gpu panel: rates up to 0.5 (1.2 x 0.35 = 0.42), energies in nJ.
    (snn,) = [ln for ln in gpu.get_lines() if ln.get_gid() == "snn|A"]
    x, y = snn.get_xdata(), snn.get_ydata()
    assert (x[0], x[-1]) == (0.0, 0.5)
    assert (y[0], y[-1]) == (pytest.approx(5.0), pytest.approx(15.0))  # 5000 pJ and 5000 + 20000 x 0.5 pJ
    (measured,) = [ln for ln in gpu.get_lines() if ln.get_gid() == "measured|A"]
    assert (measured.get_xdata()[0], measured.get_ydata()[0]) == (0.15, pytest.approx(8.0))
    assert np.interp(0.15, x, y) == pytest.approx(8.0)  # the point lies on the line
    (ann,) = [ln for ln in gpu.get_lines() if ln.get_gid() == "ann|A"]
    assert list(ann.get_ydata()) == [pytest.approx(12.0)] * 2
    (even,) = [ln for ln in gpu.get_lines() if ln.get_gid() == "break_even|A"]
    assert (even.get_xdata()[0], even.get_ydata()[0]) == (0.35, pytest.approx(12.0))
    assert np.interp(0.35, x, y) == pytest.approx(12.0)  # the line meets the ANN's energy there
    # loihi panel: rates up to 0.2 (1.2 x 0.15), energies in pJ; break-even 0.075 at 500 pJ.
    (even,) = [ln for ln in loihi.get_lines() if ln.get_gid() == "break_even|A"]
    assert (even.get_xdata()[0], even.get_ydata()[0]) == (0.075, pytest.approx(500.0))
    assert loihi.get_xlim() == (0.0, 0.2) and "(pJ, log)" in loihi.get_ylabel()
    # sram: no break-even drawn, the caption says why.
    assert not [ln for ln in sram.get_lines() if ln.get_gid() == "break_even|A"]
    assert "A on sram: no break-even (the SNN's fixed cost alone exceeds the ANN's energy)" in plot.caption
    assert all(ax.get_yscale() == "log" for ax in fig.axes[:3])


def test_curve_function_by_hand():
    (gpu,) = erp.curves([record()])[0]["gpu"]
    assert list(gpu.energy(np.array([0.0, 0.15, 0.35, 1.0]))) == [5000.0, 8000.0, 12000.0, 25000.0]
    assert erp.rate_end(erp.curves([record()])[0]["gpu"]) == 0.5


def test_colours_follow_the_report_palette_and_untrained_markers_are_hollow(drawn):
    styles = model_styles(["A", "U"])
    erp.energy_vs_rate([record("A"), record("U", untrained=True)], styles)
    (fig,) = drawn
    (a,) = [ln for ln in fig.axes[0].get_lines() if ln.get_gid() == "snn|A"]
    assert a.get_color() == styles["A"].color
    (u,) = [ln for ln in fig.axes[0].get_lines() if ln.get_gid() == "measured|U"]
    assert u.get_markerfacecolor() == "white" and u.get_marker() == styles["U"].marker


@pytest.mark.parametrize("n_profiles", [1, 2, 5])
@pytest.mark.parametrize("n_models", [1, 8])
def test_layout_has_no_clipped_or_overlapping_text(n_profiles, n_models):
    names = list(HARDWARE)
    hw = {f"{names[i % 3]}-{i}": HARDWARE[names[i % 3]] for i in range(n_profiles)}
    labels = [f"model number {i}" for i in range(n_models)]
    records = []
    for i, label in enumerate(labels):
        scaled = copy.deepcopy(hw)
        for p in scaled.values():  # models spread over two decades
            p["snn_fixed_pj"] *= 1 + 10 * i
            p["snn_slope_pj"] *= 1 + 10 * i
        records.append(record(label, hardware=scaled))
    plot = erp.energy_vs_rate(records, model_styles(labels))
    assert plot is not None and plot.problems == []


# ---------------------------------------------------------------- a real run's report


def with_hardware(run: Path, dst: Path) -> Path:
    """A copy of the run whose energy records also hold ``hardware`` (the schema's fields, scaled from the record's
    own compute-only figure so every model differs)."""
    copy_run(run, dst)
    records = read_jsonl(dst / "results.jsonl")
    for r in records:
        energy = (r.get("metrics") or {}).get("energy")
        if r["status"] != "ok" or not energy:
            continue
        base = energy["energy_mj"] * 1e9  # pJ
        energy["hardware"] = {
            "gpu": profile("digital", (base, 4 * base, 2 * base, base, 0.0), 12 * base, 5 * base, 20 * base, 0.15, 0.35),
            "loihi": profile("neuromorphic", (base / 10, base / 20, base / 5, base / 8, 0.325 * base),
                             base / 2, base / 5,
                             4 * base, 0.15, 0.075),
        }
    write_jsonl(dst / "results.jsonl", records)
    return dst


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    plain = relabelled(real_run(tmp_path_factory), tmp_path_factory.mktemp("plain") / "run", "snnbench")
    return plain, with_hardware(plain, tmp_path_factory.mktemp("hw") / "run")


def md_section(md: str, title: str) -> str:
    return md.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_report_shows_the_section_and_the_plot(runs, tmp_path):
    _, hw = runs
    md_path, html_path = render_report([hw], tmp_path)
    md, html = md_path.read_text(encoding="utf-8"), html_path.read_text(encoding="utf-8")
    titles = re.findall(r"^## (.+)$", md, flags=re.M)
    assert titles.index("Energy with data movement") == titles.index("Published numbers") + 1
    section = md_section(md, "Energy with data movement")
    records = [r for r in read_jsonl(hw / "results.jsonl") if r["status"] == "ok"]
    tiny = next(r for r in records if r["model"]["label"] == "tiny" and r["T"] == 1)  # tiny's main T: trained_T 1
    base = tiny["metrics"]["energy"]["energy_mj"] * 1e9
    row = next(line for line in section.splitlines() if line.startswith("| gpu |"))
    # SNN total 8 x base pJ, ANN 12 x base; formatted by hand in the unit that keeps 3 significant digits.
    unit = next((u, f) for u, f in (("nJ", 1e3), ("pJ", 1.0)) if 8 * base >= f)
    assert f"| {8 * base / unit[1]:.3g} {unit[0]} | {12 * base / unit[1]:.3g} " in row
    assert row.endswith("| 1.50 | 15.00 | 35.00 | SNN cheaper |")
    assert "compute-only estimate (Horowitz 2014 arithmetic, exact op counts)" in section
    # The real plug-in's layer split: tiny's first conv reads the analog image (dense), the rest are spikes.
    assert "the SNN's layers on 45nm-sram" in section
    split_rows = [line for line in section.splitlines() if line.startswith(("| event-driven |", "| dense |"))]
    assert len(split_rows) >= 2 and "memory traffic" in section and 'id="energy-hw-1-layers"' in html
    assert "- **loihi** (neuromorphic): " in section  # the source: run.json's stored profile, else the record's
    assert "![" in md and "figures/energy_vs_rate.png" in md and (tmp_path / "figures/energy_vs_rate.png").exists()
    assert '<h2 id="energy-with-data-movement">Energy with data movement</h2>' in html
    assert 'id="fig-energy_vs_rate"' in html
    links = re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", md)
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == len(links)  # every figure inline
    assert not re.search(r'(src|href)="(https?:)?//', html) and "<script" not in html


def test_old_run_renders_as_before(runs):
    plain, hw = runs
    old_run = load_run(plain)
    for rec in old_run.records:  # a run made before the plug-in wrote the hardware figures
        rec.get("metrics", {}).get("energy", {}).pop("hardware", None)
    old = build_content([old_run])
    assert es.TITLE not in [s.title for s in old.sections]
    assert "energy_vs_rate" not in [f.name for f in old.figures]
    new = build_content([load_run(hw)])
    assert [s.title for s in new.sections if s.title != es.TITLE] == [s.title for s in old.sections]
    assert [f.name for f in new.figures] == [f.name for f in old.figures] + ["energy_vs_rate"]


def test_registered_in_report_figures(runs):
    _, hw = runs
    run = load_run(hw)
    declared = declarations([run])
    figures = plots.report_figures(run.records, declared, model_styles(["tiny", "SEW w/16"]))
    (fig,) = [f for f in figures if f.name == "energy_vs_rate"]
    assert fig.problems == [] and fig.png.startswith(b"\x89PNG")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
@pytest.mark.parametrize("width", [1400, 390])
def test_tables_fit_the_screen_in_a_browser(runs, tmp_path, width):
    """At 1400 px the section's tables are tables that fit their box; on a 390 px phone each row is a card."""
    _, hw = runs
    html = render_report([hw], tmp_path / "report")[1]
    page = inspect_page(html, tmp_path / "profile", width=width, height=900)
    assert page["errors"] == [] and page["pageWidth"] <= page["viewportWidth"]
    mine = [t for t in page["compact"] if t["id"].startswith("energy-hw-")]
    assert [t["id"] for t in mine] == ["energy-hw-1", "energy-hw-1-layers", "energy-hw-2", "energy-hw-2-layers"]
    for table in mine:
        assert fits(table["wrap"]) and fits(table["table"]), table
        assert {r["display"] for r in table["rows"]} == {"table-row" if width > 640 else "block"}
        assert all(fits(r) for r in table["rows"]), table


def reuse4(run: Path, dst: Path) -> Path:
    """The run as if priced again with event_weight_reuse = 4 (hw_bits and the gpu weight term changed, run id)."""
    copy_run(run, dst)
    records = read_jsonl(dst / "results.jsonl")
    for r in records:
        r["run_id"] = "reuse4"
        energy = (r.get("metrics") or {}).get("energy") or {}
        if energy.get("hardware"):
            energy["hw_bits"] = (energy.get("hw_bits") or {}) | {"event_weight_reuse": 4}
            energy["hardware"]["gpu"]["snn_pj"]["weights"] /= 4
    write_jsonl(dst / "results.jsonl", records)
    edit_json(dst / "run.json", run_id="reuse4")
    return dst


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_merged_report_of_two_energy_configurations_in_a_browser(runs, tmp_path):
    """bench report RUN_A RUN_B of one run and the same priced with event_weight_reuse = 4: both configurations of
    each model in the section (captions naming them), tables that fit 1400 px with no word split."""
    _, hw = runs
    md_path, html = render_report([hw, reuse4(hw, tmp_path / "reuse4")], tmp_path / "report")
    section = md_section(md_path.read_text(encoding="utf-8"), "Energy with data movement")
    for label in ("tiny", "SEW w/16"):
        for event in (1, 4):
            assert re.search(rf"{re.escape(label)} at T=\d with event_weight_reuse = {event} \(", section), label
    (tmp_path / "section.md").write_text(section, encoding="utf-8")
    page = inspect_page(html, tmp_path / "profile", width=1400, height=900)
    mine = [t for t in page["compact"] if t["id"].startswith("energy-hw-")]
    assert [t["id"] for t in mine] == [f"energy-hw-{n}{part}" for n in range(1, 5) for part in ("", "-layers")]
    assert page["errors"] == [] and page["splitWords"] == [] and page["pageWidth"] <= page["viewportWidth"]
    assert all(fits(t["wrap"]) and fits(t["table"]) for t in mine), mine


def test_stored_hardware_profiles_print_as_pairs_in_the_conventions():
    from bench.report.conventions import conventions_markdown

    md = conventions_markdown({"id": "c1", "hardware_profiles": {"gpu": {"kind": "digital", "source": "HBM paper"}}})
    row = next(line for line in md.splitlines() if line.startswith("| gpu |"))
    assert "| digital |" in row and "HBM paper" in row and "{" not in row


def test_the_report_lists_the_energy_models_layer_kinds():
    """The report may not import bench.metrics, so it keeps its own copy of the layer kinds: the same ones."""
    from bench.metrics.energy_model import LAYER_KINDS

    assert es.LAYER_KINDS == LAYER_KINDS


def test_the_section_states_the_bit_widths_and_weight_reuse_the_tables_were_priced_with():
    """A run with ``event_weight_reuse = 4`` moves every figure while the printed rules state the default: the
    section says which values priced the tables (the records' energy.hw_bits), once when shared, else per model."""
    def with_bits(label: str, event: int) -> dict:
        rec = record(label)
        rec["metrics"]["energy"]["hw_bits"] = {"weight": 8, "dense_weight_reuse": 16, "event_weight_reuse": event}
        return rec

    _, notes = es.model_tables([with_bits("A", 4), with_bits("B", 4)], Declared({}))
    assert [n for n in notes if "hw_bits" in n] == [
        "priced with (energy.hw_bits): weight = 8, dense_weight_reuse = 16, event_weight_reuse = 4"]
    _, notes = es.model_tables([with_bits("A", 4), with_bits("B", 1)], Declared({}))
    assert [n for n in notes if "hw_bits" in n] == [
        "A priced with (energy.hw_bits): weight = 8, dense_weight_reuse = 16, event_weight_reuse = 4",
        "B priced with (energy.hw_bits): weight = 8, dense_weight_reuse = 16, event_weight_reuse = 1"]


def test_merged_runs_with_other_energy_options_show_every_configuration():
    """Two runs priced model A at the same T with event_weight_reuse 1 and 4 (records that differ only in hw_bits
    and the figures it moves): one table per configuration, each caption naming what differs, the hw_bits note per
    table, the headline note and the plot caption saying which one they show."""
    def priced(event: int, weights: float) -> dict:
        rec = record()
        rec["metrics"]["energy"]["hw_bits"] = {"weight": 8, "dense_weight_reuse": 16, "event_weight_reuse": event}
        rec["metrics"]["energy"]["hw_profile"] = "gpu"
        rec["metrics"]["energy"]["hw_energy_mj"] = 8e-6
        rec["metrics"]["energy"]["hardware"]["gpu"]["snn_pj"]["weights"] = weights
        return rec

    records = [priced(1, 4000.0), priced(4, 1000.0), priced(1, 4000.0)]  # the third: run A's again (another device)
    tables, notes = es.model_tables(records, Declared({}))
    assert [(t.label, t.differs) for t in tables] == [("A", "event_weight_reuse = 1"), ("A", "event_weight_reuse = 4")]
    assert [t.caption.split(" (")[0] for t in tables] == ["A at T=4 with event_weight_reuse = 1",
                                                          "A at T=4 with event_weight_reuse = 4"]
    assert [t.frame.iloc[0]["SNN weights"] for t in tables] == ["4 nJ", "1 nJ"]
    assert [n for n in notes if "hw_bits" in n] == [
        "A (event_weight_reuse = 1) priced with (energy.hw_bits): weight = 8, dense_weight_reuse = 16, "
        "event_weight_reuse = 1",
        "A (event_weight_reuse = 4) priced with (energy.hw_bits): weight = 8, dense_weight_reuse = 16, "
        "event_weight_reuse = 4"]
    assert es.headline_note(records).endswith(
        " A: the headline shows the case with event_weight_reuse = 1; \"Energy with data movement\" also shows "
        "event_weight_reuse = 4.")
    plot = erp.energy_vs_rate(records, model_styles(["A"]))
    assert ("A: drawn with event_weight_reuse = 1; priced also with event_weight_reuse = 4 (in the \"Energy with "
            "data movement\" tables).") in plot.caption
    only_bits = es.model_tables([priced(1, 4000.0), priced(4, 4000.0)], Declared({}))[0]  # nothing else differs
    assert [t.differs for t in only_bits] == ["event_weight_reuse = 1", "event_weight_reuse = 4"]
    # Another primary profile is a configuration too; one configuration keeps the caption as before.
    other = priced(1, 4000.0)
    other["metrics"]["energy"]["hw_profile"] = "sram"
    assert [t.differs for t in es.model_tables([records[0], other], Declared({}))[0]] == [
        "hw_primary = gpu", "hw_primary = sram"]
    (single,), _ = es.model_tables(records[:1], Declared({}))
    assert single.differs == "" and single.caption.startswith("A at T=4 (trained; ")
    assert es.headline_note(records[:1]).endswith("is in \"Energy with data movement\".")


def _energy_axis(lo: float, hi: float):
    """A log axis spanning lo..hi with the energy-vs-rate panels' ticks, drawn (tick labels are set on draw)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.set_yscale("log")
    ax.set_ylim(lo, hi)
    erp._log_ticks(ax)
    fig.canvas.draw()
    visible = [(t.get_loc(), t.label1.get_text()) for t in ax.yaxis.get_minor_ticks()
               if lo <= t.get_loc() <= hi]
    major = [(t.get_loc(), t.label1.get_text()) for t in ax.yaxis.get_major_ticks() if lo <= t.get_loc() <= hi]
    plt.close(fig)
    return major, visible


def test_energy_axis_over_decades_keeps_minor_ticks_at_2_and_5_unlabelled():
    major, minor = _energy_axis(1.0, 1000.0)  # three decades: powers of ten labelled, minor ticks bare
    assert major == [(1.0, "1"), (10.0, "10"), (100.0, "100"), (1000.0, "1,000")]
    assert [loc for loc, _ in minor] == pytest.approx([2, 5, 20, 50, 200, 500])
    assert {text for _, text in minor} == {""}


def test_energy_axis_under_two_decades_labels_2_and_5_among_every_minor_tick():
    major, minor = _energy_axis(1.0, 30.0)  # 1.5 decades: every integer multiple ticked, 2 and 5 labelled
    assert [loc for loc, _ in major] == [1.0, 10.0]
    assert [loc for loc, _ in minor] == pytest.approx([2, 3, 4, 5, 6, 7, 8, 9, 20, 30])
    assert [text for _, text in minor] == ["2", "", "", "5", "", "", "", "", "20", ""]


def test_energy_axis_labels_are_plain_numbers_at_every_size():
    """Whole numbers in full with thousands separators, never 100000 beside 1e+06 on one axis."""
    assert [erp._plain(v) for v in (0.5, 2.0, 1000.0, 1e5, 1e6, 2e7, 0.0)] == \
        ["0.5", "2", "1,000", "100,000", "1,000,000", "20,000,000", ""]
    major, _ = _energy_axis(100.0, 1e7)
    assert [text for _, text in major] == ["100", "1,000", "10,000", "100,000", "1,000,000", "10,000,000"]
