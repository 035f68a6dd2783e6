"""Report tables from a real run's records: columns and formats from the stored declarations, the
headline rule, gross vs net measured energy, per-device columns, published matching, absent metrics."""

from __future__ import annotations

import copy
import json

import pytest
from real_run import GPU_NAME, copy_run, gpu_like, real_run

from bench.contract import Field
from bench.palette import OKABE_ITO, model_styles
from bench.published import PUBLISHED, published_for
from bench.report import plots
from bench.report import tables as tb
from bench.report.declared import declarations
from bench.report.formats import energy_text, format_value, si
from bench.results import load_run

CPU_NAME_KEY = "device_name"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return real_run(tmp_path_factory)


@pytest.fixture(scope="module")
def cpu(run_dir):
    return load_run(run_dir)


@pytest.fixture(scope="module")
def gpu(run_dir, tmp_path_factory):
    return load_run(gpu_like(run_dir, tmp_path_factory.mktemp("gpu") / "run"))


def rows(frame):
    return {r["model"].rstrip(" †"): r for r in frame.to_dict("records")}


def record(run, label, T):
    return next(r for r in run.records if r["model"]["label"] == label and r["T"] == T)


def test_headline_one_row_per_model_at_main_T(cpu):
    frame, notes = tb.headline_table(cpu.records, declarations([cpu]))
    got = rows(frame)
    assert list(got) == ["tiny", "SEW w/16"]  # the failed model has no row
    assert got["tiny"]["main T"] == "1 (trained)"  # trained_T = 1 in the suite, and evaluated
    assert got["SEW w/16"]["main T"] == "2 (largest evaluated)"
    # tiny at T=1: Flatten -> Linear(64, 16) on analog pixels = 64 x 16 = 1024 MACs per sample.
    assert got["tiny"]["MACs"] == "1.02 k"
    # params: 64 x 16 + 16 + 16 x 10 + 10 = 1210 -> 0.001 M (format millions, 3 decimals).
    assert got["tiny"]["params (M)"] == "0.001"
    top1 = record(cpu, "tiny", 1)["metrics"]["accuracy"]["top1"]
    assert got["tiny"]["top-1 (%)"] == f"{top1:.2f}"
    assert any(n.startswith("† no checkpoint") for n in notes)


def test_headline_columns_are_the_declared_headline_fields(cpu):
    """Every column comes from a field the run's run.json declares headline, titled and ordered by it."""
    frame, notes = tb.headline_table(cpu.records, declarations([cpu]))
    stored = json.loads((cpu.path / "run.json").read_text())["metric_contracts"]
    expected = []
    for metric in stored.values():
        for f in metric["fields"]:
            if f["headline"] and not f["per_device"]:
                expected.append(f"{f['title']} ({f['unit']})" if f["unit"] else f["title"])
    for metric in stored.values():
        for f in metric["fields"]:
            if f["headline"] and f["per_device"] and f["device_kind"] in (None, "cpu"):
                expected.append((f"{f['title']} ({f['unit']})" if f["unit"] else f["title"]) + " [AMD EPYC]")
    device = record(cpu, "tiny", 1)["device_info"][CPU_NAME_KEY]
    expected = [c.replace("[AMD EPYC]", f"[{device}]") for c in expected]
    shown = [c for c in expected if c in frame.columns]
    assert list(frame.columns) == ["model", "main T", *shown]
    # A declared headline column this machine could not measure is left out, its reason noted.
    for missing in set(expected) - set(shown):
        assert any(n.startswith(f"{missing}: not available (") for n in notes), missing
    assert not any(c.startswith("measured GPU") for c in frame.columns)  # device_kind cuda: not on a CPU


def test_energy_is_shown_in_its_declared_unit(cpu):
    """energy_mj is millijoules (declared fmt mj): 1024 MACs x 4.6 pJ + ACs x 0.9 pJ, shown in nJ."""
    frame, _ = tb.headline_table(cpu.records, declarations([cpu]))
    acs = record(cpu, "tiny", 1)["metrics"]["ops"]["acs"]
    picojoules = 1024 * 4.6 + acs * 0.9
    assert rows(frame)["tiny"]["est. energy / sample"] == energy_text(picojoules * 1e-12)
    assert rows(frame)["tiny"]["est. energy / sample"].endswith(" nJ")


def test_headline_shows_gross_measured_energy_and_the_cases_table_the_net(gpu):
    recs = copy.deepcopy(gpu.records)
    for r in recs:
        r["metrics"]["measured_energy"].update(gpu_energy_j_per_sample=0.0123, gpu_energy_net_j_per_sample=0.004)
    declared = declarations([gpu])
    frame, _ = tb.headline_table(recs, declared)
    assert rows(frame)["tiny"][f"measured GPU energy / sample [{GPU_NAME}]"] == "12.3 mJ"
    assert not any("above idle" in c for c in frame.columns)
    assert not any("CPU" in c for c in frame.columns)  # cpu-only fields are not produced on a GPU
    (energy,) = [t for t in tb.case_tables(recs, declared) if t.metric == "measured_energy"]
    assert set(energy.frame["measured GPU energy above idle / sample"]) == {"4 mJ"}
    (memory,) = [t for t in tb.case_tables(recs, declared) if t.metric == "memory"]
    assert "CPU RSS growth (MiB)" not in memory.frame.columns


def test_merged_runs_get_per_device_columns(cpu, gpu):
    records = cpu.records + gpu.records
    frame, notes = tb.headline_table(records, declarations([cpu, gpu]))
    cpu_name = record(cpu, "tiny", 1)["device_info"][CPU_NAME_KEY]
    for device in (cpu_name, GPU_NAME):
        assert f"latency p50 (ms) [{device}]" in frame.columns
        assert f"throughput (samples/s) [{device}]" in frame.columns
    p50 = record(gpu, "tiny", 1)["metrics"]["latency"]["latency_p50_ms"]
    assert rows(frame)["tiny"][f"latency p50 (ms) [{GPU_NAME}]"] == format_value(Field("x", "x", fmt="sig"), p50)
    # The GPU-like records hold no GPU counter value (made on a CPU): the column is left out, the reason noted.
    why = record(gpu, "tiny", 1)["metrics"]["measured_energy"]["gpu_energy_j_per_sample_why"]
    assert f"measured GPU energy / sample [{GPU_NAME}]: not available ({why})" in notes


def test_case_tables_hold_every_reported_scalar_field(cpu):
    declared = declarations([cpu])
    tables = {t.metric: t for t in tb.case_tables(cpu.records, declared)}
    assert list(tables) == list(declared.contracts)
    ops = tables["ops"]
    assert len(ops.frame) == 4 and "dense MACs" in ops.frame.columns
    # tiny at T=2: dense MACs = 2 x (64 x 16 + 16 x 10) = 2368.
    row = ops.frame[(ops.frame["model"] == "tiny") & (ops.frame["T"] == 2)].iloc[0]
    assert row["dense MACs"] == "2.37 k"
    assert any(c.startswith("convention = snnbench-ops-v1") for c in ops.constants)
    # firing's own "T" field does not overwrite the case's T column
    assert "firing.T" in tables["firing"].frame.columns


def test_tables_tolerate_absent_metrics(cpu):
    bare = copy.deepcopy(cpu.records)
    for r in bare:
        r["metrics"] = {k: v for k, v in r["metrics"].items() if k in ("accuracy",)}
    declared = declarations([cpu])
    frame, notes = tb.headline_table(bare, declared)
    assert list(frame.columns) == ["model", "main T", "top-1 (%)"]
    assert len(notes) == 1 and "no checkpoint" in notes[0]
    (cases,) = tb.case_tables(bare, declared)
    assert list(cases.frame.columns[:6]) == ["model", "T", "device", "batch", "top-1 (%)", "top-5 (%)"]
    styles = model_styles(tb.model_order(bare))
    assert plots.accuracy_vs_energy(bare, declared, styles) is None
    assert plots.throughput_per_device(bare, declared, styles) is None
    assert plots.accuracy_vs_T(bare, declared, styles) is not None


def test_unmeasured_value_shows_na_and_its_reason(cpu):
    recs = copy.deepcopy(cpu.records)
    recs[0]["metrics"]["accuracy"].update(top1=None, top1_why="synthetic data")
    (acc,) = [t for t in tb.case_tables(recs, declarations([cpu])) if t.metric == "accuracy"]
    assert acc.frame.iloc[0]["top-1 (%)"] == "n/a"
    assert "top-1 (%): n/a for tiny T=1" in acc.notes[0] and acc.notes[0].endswith("(synthetic data)")


def test_summary_shows_the_declared_summary_fields(cpu):
    frame = tb.summary_table(cpu.records, declarations([cpu]))
    assert len(frame) == 6 and list(frame["status"]).count("failed") == 2
    assert {"top-1 (%)", "firing rate (%)", "SOPs", "est. energy / sample", "params (M)"} <= set(frame.columns)
    assert "top-5 (%)" not in frame.columns  # not declared summary
    failed = frame[frame["status"] == "failed"].iloc[0]
    assert failed["top-1 (%)"] == ""


def test_published_matches_model_dataset_and_T(cpu):
    recs = copy.deepcopy([r for r in cpu.records if r["model"]["label"] == "SEW w/16"])
    for r in recs:
        r["data"]["dataset"] = "imagenet"
    assert rows(tb.published_table(recs))["SEW w/16"]["status"].startswith("not comparable: modified (width=")
    for r in recs:
        r["model"].update(kwargs={}, untrained=False)
    assert rows(tb.published_table(recs))["SEW w/16"]["status"] == "T=4 not evaluated"
    recs[1]["T"] = 4
    got = rows(tb.published_table(recs))["SEW w/16"]
    ours = recs[1]["metrics"]["accuracy"]["top1"]
    assert got["published top-1 (%)"] == "63.18"
    assert got["gap (points)"] == f"{ours - 63.18:+.2f}"
    assert "[log]" in got["source [confidence]"]
    assert tb.published_table(cpu.records).empty  # digits: nothing published


def test_published_table_transcribes_the_reference():
    assert published_for("sew_resnet50", "ImageNet", 4)[0].top1 == 67.78
    assert published_for("spikeformer_dvs_cifar10", "CIFAR10-DVS")[0].T == 4
    assert published_for("spiking_resnet152", "imagenet", 4)[0].top1 == 10.03
    assert {p.confidence for p in PUBLISHED} <= {"log", "code", "paper", "recalled", "paper/recalled"}


@pytest.mark.parametrize(("value", "text"), [(0.0, "0"), (999.0, "999"), (1234.0, "1.23 k"), (2.5e9, "2.5 G"),
                                             (None, "n/a")])
def test_si(value, text):
    assert si(value) == text


@pytest.mark.parametrize(("joules", "text"), [(2.29e-3, "2.29 mJ"), (4.5e-7, "450 nJ"), (3e-12, "3 pJ"),
                                              (1.5, "1.5 J")])
def test_energy_text(joules, text):
    assert energy_text(joules) == text


@pytest.mark.parametrize(("fmt", "value", "text"), [
    ("percent", 0.1234, "12.34"), ("mj", 2.29, "2.29 mJ"), ("mj", 4.5e-4, "450 nJ"), ("joules", 4.5e-7, "450 nJ"),
    ("millions", 11_689_512, "11.690"), ("count", 472_000_000, "472 M"), ("fixed1", 95.25, "95.2"),
    ("fixed3", 0.5, "0.500"), ("int", 16.0, "16"), ("sig", 0.012345, "0.01235"), ("text", "one pass", "one pass"),
    ("sig", None, "n/a"), ("sig", float("nan"), "n/a"), ("percent", True, "True"),
])
def test_format_value_by_declared_format(fmt, value, text):
    assert format_value(Field("x", "x", fmt=fmt), value) == text


def test_pareto_front_keeps_only_undominated_points():
    points = [(1.0, 40.0), (2.0, 51.0), (3.0, 45.0), (4.0, 63.0), (4.0, 60.0), (0.5, 10.0)]
    assert plots.pareto_front(points) == [(0.5, 10.0), (1.0, 40.0), (2.0, 51.0), (4.0, 63.0)]


def test_model_colours_are_deterministic_and_colour_blind_safe():
    a = model_styles(["b", "a", "c"])
    b = model_styles(["c", "b", "a", "a"])
    assert a == b
    assert a["a"].color == "#0072B2" and a["b"].color == "#E69F00"
    many = model_styles([f"m{i:02d}" for i in range(10)])
    assert many["m08"].color == many["m00"].color and many["m08"].linestyle != many["m00"].linestyle
    assert {s.color for s in many.values()} <= set(OKABE_ITO)


def test_per_layer_tables_read_as_list_or_dict(cpu):
    rec = record(cpu, "tiny", 2)
    names, matrix, analog = plots.firing_matrix(rec)
    assert len(names) == 1 and matrix.shape == (1, 2) and analog == [False]  # one IF layer, T = 2
    assert matrix.mean() == pytest.approx(rec["metrics"]["firing"]["mean_rate"])
    as_dict = copy.deepcopy(rec)
    as_dict["metrics"]["firing"]["layers"] = {row.pop("name"): row for row in as_dict["metrics"]["firing"]["layers"]}
    assert plots.firing_matrix(as_dict)[0] == names
    ops = plots.ops_layers(rec)
    assert ops[0][1:] == (0.0, 2048.0)  # first Linear on analog pixels: MACs only, 2 x 1024
    assert sum(a for _, a, _ in ops) == rec["metrics"]["ops"]["acs"]


def test_repeatability_lists_each_metric_by_its_declaration(cpu):
    from bench.report.content import repeatability_markdown

    text = repeatability_markdown(declarations([cpu]), {"accuracy", "ops", "latency", "memory"})
    fixed, varying = text.splitlines()[2], text.splitlines()[3]
    assert "accuracy, ops" in fixed and "latency" not in fixed
    assert "latency, memory" in varying


def test_merge_takes_the_newer_declaration_and_says_so(run_dir, tmp_path):
    old, new = copy_run(run_dir, tmp_path / "old"), copy_run(run_dir, tmp_path / "new")
    for folder, run_id, created, title in ((old, "old", "2020-01-01", "top-1"), (new, "new", "2030-01-01", "TOP1")):
        meta = json.loads((folder / "run.json").read_text())
        meta["run_id"] = run_id
        meta["metric_contracts"]["accuracy"]["fields"][0]["title"] = title
        (folder / "run.json").write_text(json.dumps(meta))
        env = json.loads((folder / "env.json").read_text())
        (folder / "env.json").write_text(json.dumps(env | {"created": created}))
    for order in ([old, new], [new, old]):
        declared = declarations([load_run(d) for d in order])
        assert declared.field("accuracy", "top1").title == "TOP1"
        assert declared.notes == ["metric 'accuracy' is declared differently in runs old and new: the "
                                  "declarations of the newer run (new) are used"]


def test_run_without_declarations_shows_no_metric_values(run_dir, tmp_path):
    folder = copy_run(run_dir, tmp_path / "old")
    meta = json.loads((folder / "run.json").read_text())
    del meta["metric_contracts"]
    (folder / "run.json").write_text(json.dumps(meta))
    run = load_run(folder)
    declared = declarations([run])
    assert declared.contracts == {} and "bench report" in declared.notes[0]
    frame, _ = tb.headline_table(run.records, declared)
    assert list(frame.columns) == ["model", "main T"]
