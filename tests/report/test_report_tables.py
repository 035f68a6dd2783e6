"""Report tables from fixture records: headline rule, published matching, formatting, absent metrics."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from bench.report import plots
from bench.report import tables as tb
from bench.report.load import load_run
from bench.report.published import PUBLISHED, published_for

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def cpu_records():
    return load_run(FIXTURES / "run_cpu").records


@pytest.fixture(scope="module")
def merged_records(cpu_records):
    return cpu_records + load_run(FIXTURES / "run_gpu").records


def rows(frame):
    return {r["model"].rstrip(" †"): r for r in frame.to_dict("records")}


def test_headline_one_row_per_model_at_main_T(merged_records):
    frame, notes = tb.headline_table(merged_records)
    got = rows(frame)
    assert list(got) == ["SEW ResNet-18", "Spiking ResNet-18", "DANet-A50 (w=1/4)"]
    # trained_T = 4 recorded -> "trained"; the untrained model falls back to the largest T evaluated (4, not
    # the failed T=8 case).
    assert got["SEW ResNet-18"]["main T"] == "4 (trained)"
    assert got["Spiking ResNet-18"]["main T"] == "4 (largest evaluated)"
    assert got["SEW ResNet-18"]["top-1 (%)"] == "63.02"
    # ACs of the fixture at T=4: 115e6*4*r + 58e6*4*r + 7e6*4*r + 512000*4*r with r = 0.180134 (mean rate).
    assert got["SEW ResNet-18"]["ACs / sample"] == "130 M"
    assert got["SEW ResNet-18"]["MACs / sample"] == "472 M"
    # GPU columns use the largest batch (128): p50 = 0.05 ms x 4 x 128 = 25.6 ms; throughput 128 / 25.6 ms.
    assert got["SEW ResNet-18"]["latency p50 (ms) [NVIDIA H100 80GB HBM3]"] == "25.6"
    assert got["SEW ResNet-18"]["throughput (samples/s) [NVIDIA H100 80GB HBM3]"] == "5000"
    assert got["SEW ResNet-18"]["params (M)"] == "11.690"
    assert "†" in frame.iloc[1]["model"] and "†" not in frame.iloc[0]["model"]
    assert any("untrained" in n for n in notes)


def test_estimates_and_measurements_never_share_a_column(merged_records):
    frame, notes = tb.headline_table(merged_records)
    got = rows(frame)
    # Estimated: 472 M MACs x 4.6 pJ + 130 M ACs x 0.9 pJ = 2.29 mJ.
    assert got["SEW ResNet-18"]["estimated energy / sample"] == "2.29 mJ"
    # ANN-equivalent: 1194.048 M dense MACs x 4.6 pJ = 5.49 mJ; ratio 5.4926 / 2.2882 = 2.40.
    assert got["SEW ResNet-18"]["ANN-equivalent energy / sample"] == "5.49 mJ"
    assert got["SEW ResNet-18"]["ANN / SNN energy"] == "2.40"
    assert got["SEW ResNet-18"]["measured energy / sample [NVIDIA H100 80GB HBM3]"] == "8.1 mJ"
    # The CPU run has only codecarbon's estimate (0.5 J): no measured column for the CPU, a note says why.
    assert not any(c.startswith("measured energy") and "EPYC" in c for c in frame.columns)
    assert "0.5 J" not in frame.to_string()
    assert any("AMD EPYC 7763: not available (no readable RAPL counter" in n for n in notes)
    assert any("an estimate, not a measurement" in n for n in notes)


def test_tables_tolerate_absent_metrics(cpu_records):
    bare = copy.deepcopy(cpu_records)
    for r in bare:
        r["metrics"] = {k: v for k, v in r["metrics"].items() if k in ("accuracy",)}
    frame, notes = tb.headline_table(bare)
    assert list(frame.columns) == ["model", "main T", "top-1 (%)"]
    assert len(notes) == 1 and "untrained" in notes[0]
    cases = tb.cases_table(bare)
    assert list(cases.columns) == ["model", "T", "device", "batch", "top-1 (%)", "top-5 (%)"]
    styles = plots.model_styles(tb.model_order(bare))
    assert plots.accuracy_vs_energy(bare, styles) is None
    assert plots.throughput_per_device(bare, styles) is None
    assert plots.accuracy_vs_T(bare, styles) is not None


def test_unmeasured_value_shows_na_not_zero(cpu_records):
    recs = copy.deepcopy(cpu_records)
    recs[0]["metrics"]["accuracy"] = {"top1": None, "top1_why": "synthetic data", "top5": None}
    cases = tb.cases_table(recs)
    assert cases.iloc[0]["top-1 (%)"] == "n/a"


def test_published_matches_model_dataset_and_T(cpu_records):
    frame = tb.published_table(cpu_records)
    got = rows(frame)
    assert got["SEW ResNet-18"]["published top-1 (%)"] == "63.18"
    assert got["SEW ResNet-18"]["gap (points)"] == "-0.16"  # 63.02 - 63.18
    assert "[log]" in got["SEW ResNet-18"]["source [confidence]"]
    assert got["Spiking ResNet-18"]["status"] == "untrained weights"
    assert got["Spiking ResNet-18"]["gap (points)"] == "n/a"
    assert got["DANet-A50 (w=1/4)"]["status"].startswith("not comparable: modified (width=0.25)")
    # Another dataset: nothing matches.
    other = copy.deepcopy(cpu_records)
    for r in other:
        r["data"]["dataset"] = "digits"
    assert tb.published_table(other).empty


def test_published_table_transcribes_the_reference():
    assert published_for("sew_resnet50", "ImageNet", 4)[0].top1 == 67.78
    assert published_for("spikeformer_dvs_cifar10", "CIFAR10-DVS")[0].T == 4
    assert published_for("spiking_resnet152", "imagenet", 4)[0].top1 == 10.03
    assert {p.confidence for p in PUBLISHED} <= {"log", "code", "paper", "recalled", "paper/recalled"}


@pytest.mark.parametrize(("value", "text"), [(0.0, "0"), (999.0, "999"), (1234.0, "1.23 k"), (2.5e9, "2.5 G"),
                                             (None, "n/a")])
def test_si(value, text):
    assert tb.si(value) == text


@pytest.mark.parametrize(("joules", "text"), [(2.29e-3, "2.29 mJ"), (4.5e-7, "450 nJ"), (3e-12, "3 pJ"),
                                              (1.5, "1.5 J")])
def test_energy_text(joules, text):
    assert tb.energy_text(joules) == text


def test_pareto_front_keeps_only_undominated_points():
    points = [(1.0, 40.0), (2.0, 51.0), (3.0, 45.0), (4.0, 63.0), (4.0, 60.0), (0.5, 10.0)]
    assert plots.pareto_front(points) == [(0.5, 10.0), (1.0, 40.0), (2.0, 51.0), (4.0, 63.0)]


def test_model_colours_are_deterministic_and_colour_blind_safe():
    a = plots.model_styles(["b", "a", "c"])
    b = plots.model_styles(["c", "b", "a", "a"])
    assert a == b
    assert a["a"].color == "#0072B2" and a["b"].color == "#E69F00"
    many = plots.model_styles([f"m{i:02d}" for i in range(10)])
    assert many["m08"].color == many["m00"].color and many["m08"].linestyle != many["m00"].linestyle
    assert {s.color for s in many.values()} <= set(plots.OKABE_ITO)


def test_per_layer_tables_read_as_list_or_dict(cpu_records):
    rec = next(r for r in cpu_records if r["case_id"] == "SEW ResNet-18|T=4|cpu|bs=32")
    names, matrix, analog = plots.firing_matrix(rec)
    assert names == ["layer1.0.sn1", "layer1.0.sn2", "layer2.0.sn1", "layer2.0.sn2"] and matrix.shape == (4, 4)
    assert matrix[0, 0] == pytest.approx(0.18 * 0.7)  # base rate x (0.6 + 0.1 x layer index 1) at t = 0
    as_dict = copy.deepcopy(rec)
    as_dict["metrics"]["firing"]["layers"] = {row.pop("name"): row for row in as_dict["metrics"]["firing"]["layers"]}
    assert plots.firing_matrix(as_dict)[0] == names
    ops = plots.ops_layers(rec)
    assert ops[0] == ("conv1", 0.0, 472_000_000.0)  # analog first conv: MACs only
    assert sum(a for _, a, _ in ops) == rec["metrics"]["ops"]["acs"]


def test_repeatability_lists_each_metric_by_its_declaration():
    from bench.report.content import repeatability_markdown

    text = repeatability_markdown({"accuracy", "ops", "latency", "memory"})
    fixed, varying = text.splitlines()[2], text.splitlines()[3]
    assert "accuracy, ops" in fixed and "latency" not in fixed
    assert "latency, memory" in varying
