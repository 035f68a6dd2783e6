"""Report tables from a real run's records: columns and formats from the stored declarations, the
headline rule, gross vs net measured energy, per-device columns, published matching, absent metrics."""

from __future__ import annotations

import copy
import json

import pytest
from real_run import GPU_NAME, copy_run, gpu_like, real_run
from weights import relabelled, with_weights

from bench.contract import Field
from bench.palette import OKABE_ITO, model_styles
from bench.published import PUBLISHED, published_for
from bench.report import plots
from bench.report import tables as tb
from bench.report.content import reading_notes
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


@pytest.fixture(scope="module")
def trained(run_dir, tmp_path_factory):
    return load_run(relabelled(run_dir, tmp_path_factory.mktemp("trained") / "run", "snnbench"))


def test_headline_one_row_per_model_at_main_T(cpu, trained):
    frame, notes = tb.headline_table(trained.records, declarations([trained]))
    got = rows(frame)
    assert list(got) == ["tiny", "SEW w/16"]  # the failed model has no row
    assert got["tiny"]["main T"] == "1 (trained)"  # trained_T = 1 in the suite, and evaluated
    assert got["SEW w/16"]["main T"] == "2 (largest evaluated)"
    assert got["tiny"]["weights"] == "snnbench"
    # tiny at T=1: Flatten -> Linear(64, 16) on analog pixels = 64 x 16 = 1024 MACs per sample.
    assert got["tiny"]["MACs"] == "1.02 k"
    # params: 64 x 16 + 16 + 16 x 10 + 10 = 1210 -> 0.001 M (format millions, 3 decimals).
    assert got["tiny"]["params (M)"] == "0.001"
    top1 = record(cpu, "tiny", 1)["metrics"]["accuracy"]["top1"]
    assert got["tiny"]["top-1 (%)"] == f"{top1:.2f}"
    assert not any(n.startswith("untrained") for n in notes)


def test_untrained_models_show_the_mark_instead_of_figures_of_merit(cpu):
    """Old records (no ``weights``): accuracy and the ANN/SNN ratio read '†'; costs and firing show."""
    old = copy.deepcopy(cpu.records)
    for r in old:
        r["model"].pop("weights", None)
        r["model"].pop("bn_calibration", None)
    frame, notes = tb.headline_table(old, declarations([cpu]))
    tiny = rows(frame)["tiny"]
    assert tiny["weights"] == "untrained"
    assert tiny["top-1 (%)"] == "†" and tiny["ANN / SNN compute-only energy"] == "†"
    assert tiny["MACs"] == "1.02 k" and tiny["firing rate (%)"] != "†"
    assert notes[0].startswith("† untrained (random weights): top-1 (%), ANN / SNN compute-only energy, ANN / SNN "
                               "energy with data movement not shown")
    tables = {t.metric: t for t in tb.case_tables(cpu.records, declarations([cpu]))}
    assert set(tables["accuracy"].frame["top-1 (%)"]) == {"†"}
    assert set(tables["accuracy"].frame["top-5 (%)"]) == {"†"}
    assert set(tables["energy"].frame["ANN / SNN compute-only energy"]) == {"†"}
    assert "†" not in set(tables["ops"].frame["ACs"])
    summary = tb.summary_table(cpu.records, declarations([cpu]))  # the terminal has no footnotes: the word
    assert set(summary[summary["status"] == "ok"]["top-1 (%)"]) == {"untrained"}


def test_untrained_new_form_names_its_weights_once(cpu):
    """Records from the runner's BN calibration carry model.weights: the reading note groups the models that share
    it and quotes it once; the models table keeps it per model."""
    recs = [with_weights(copy.deepcopy(r), None) for r in cpu.records]
    frame, _ = tb.headline_table(recs, declarations([cpu]))
    assert rows(frame)["tiny"]["top-1 (%)"] == "†"
    assert tb.untrained_weights(recs) == {"BN calibrated on 64 samples": ["tiny", "SEW w/16"]}
    assert tb.models_table(recs)["weights"].tolist()[0] == "untrained, BN calibrated on 64 samples"


def test_untrained_is_said_once_per_row_and_once_in_the_notes(cpu):
    """The word 'untrained' appears once per headline row (its weights column) and once in the headline's notes and
    in the reading notes, which name each untrained model once, grouped by how its weights were set."""
    samples = {"tiny": 16, "SEW w/16": 64}
    recs = [with_weights(copy.deepcopy(r), None, f"untrained, BN calibrated on {samples.get(r['model']['label'], 64)} samples")
            for r in cpu.records]
    frame, notes = tb.headline_table(recs, declarations([cpu]))
    for row in frame.to_dict("records"):
        assert " ".join(map(str, row.values())).count("untrained") == 1, row
    assert " ".join(notes).count("untrained") == 1
    reading = [n for n in reading_notes([cpu], recs, []) if "untrained" in n.lower()]
    assert len(reading) == 1 and reading[0].lower().count("untrained") == 1
    assert reading[0].startswith("UNTRAINED (random weights): tiny (BN calibrated on 16 samples); "
                                 "SEW w/16 (BN calibrated on 64 samples). ")
    for table in tb.case_tables(recs, declarations([cpu])):
        assert " ".join(table.notes).count("untrained") <= 1


def test_efficiency_and_speed_columns_are_the_declared_headline_fields(cpu):
    """Efficiency: the declared headline fields not per device; speed: the per-device ones the CPU produces."""
    frame, notes = tb.headline_table(cpu.records, declarations([cpu]))
    speed, speed_notes = tb.speed_table(cpu.records, declarations([cpu]))
    stored = json.loads((cpu.path / "run.json").read_text())["metric_contracts"]

    def title(f):
        return f"{f['title']} ({f['unit']})" if f["unit"] else f["title"]

    once = [title(f) for m in stored.values() for f in m["fields"] if f["headline"] and not f["per_device"]]
    shown = [c.removesuffix(" (nJ)") for c in frame.columns[3:]]  # energy columns share one unit: in the header
    assert list(frame.columns[:3]) == ["model", "weights", "main T"] and shown == once
    per_device = [title(f) for m in stored.values() for f in m["fields"]
                  if f["headline"] and f["per_device"] and f["device_kind"] in (None, "cpu")]
    assert list(speed.columns[:4]) == ["model", "device", "T", "batch"]
    assert list(speed.columns[4:]) == [c for c in per_device if c in speed.columns]
    # A declared headline column this machine could not measure is left out, its reason noted.
    for missing in set(per_device) - set(speed.columns):
        assert any(n.startswith(f"{missing}: not available (") for n in speed_notes), missing
    assert not any(c.startswith("measured GPU") for c in speed.columns)  # device_kind cuda: not on a CPU
    assert list(speed["device"]) == [record(cpu, "tiny", 1)["device_info"][CPU_NAME_KEY]] * 2


def test_energy_columns_share_one_unit_in_the_header(cpu):
    """energy_mj is millijoules (declared fmt mj): tiny at T=1 = 1024 MACs x 4.6 pJ + ACs x 0.9 pJ; the column's
    smallest value sets the unit (nJ), written in the header."""
    frame, _ = tb.headline_table(cpu.records, declarations([cpu]))
    acs = record(cpu, "tiny", 1)["metrics"]["ops"]["acs"]
    picojoules = 1024 * 4.6 + acs * 0.9
    assert rows(frame)["tiny"]["compute-only energy / sample (nJ)"] == f"{picojoules / 1000:.3g}"
    assert tb.energy_column(Field("e", "e", fmt="mj"), [2e-6, 3e-3]) == ("nJ", 1e-9)
    assert tb.energy_column(Field("e", "e", fmt="mj"), [2e-6, 30.0]) is None  # over four decades: per-cell units
    assert tb.energy_column(Field("e", "e", fmt="joules"), [0.5, 2.0]) == ("mJ", 1e-3)


def test_speed_table_shows_gross_measured_energy_and_the_cases_table_the_net(gpu):
    recs = copy.deepcopy(gpu.records)
    for r in recs:
        r["metrics"]["measured_energy"].update(gpu_energy_j_per_sample=0.0123, gpu_energy_net_j_per_sample=0.004)
    declared = declarations([gpu])
    speed, _ = tb.speed_table(recs, declared)
    assert set(speed["measured GPU energy / sample"]) == {"12.3 mJ"}
    assert not any("above idle" in c for c in speed.columns)
    assert not any("CPU" in c for c in speed.columns)  # cpu-only fields are not produced on a GPU
    (energy,) = [t for t in tb.case_tables(recs, declared) if t.metric == "measured_energy"]
    assert set(energy.frame["measured GPU energy above rest idle / sample"]) == {"4 mJ"}
    (memory,) = [t for t in tb.case_tables(recs, declared) if t.metric == "memory"]
    assert "CPU RSS growth (MiB)" not in memory.frame.columns


def test_merged_runs_get_one_speed_row_per_model_and_device(cpu, gpu):
    records = cpu.records + gpu.records
    speed, notes = tb.speed_table(records, declarations([cpu, gpu]))
    cpu_name = record(cpu, "tiny", 1)["device_info"][CPU_NAME_KEY]
    assert [(r["model"], r["device"]) for r in speed.to_dict("records")] == [
        ("tiny", cpu_name), ("tiny", GPU_NAME), ("SEW w/16", cpu_name), ("SEW w/16", GPU_NAME)]
    p50 = record(gpu, "tiny", 1)["metrics"]["latency"]["latency_p50_ms"]
    gpu_tiny = speed[(speed["model"] == "tiny") & (speed["device"] == GPU_NAME)].iloc[0]
    assert gpu_tiny["latency p50 (ms)"].removesuffix(" ⚠") == format_value(Field("x", "x", fmt="sig"), p50)
    # The GPU-like records hold no GPU counter value (made on a CPU): n/a with its reason; "-" on the CPU rows.
    why = record(gpu, "tiny", 1)["metrics"]["measured_energy"]["gpu_energy_j_per_sample_why"]
    assert f"measured GPU energy / sample: not available ({why})" in notes


def test_unstable_latency_is_flagged_with_the_reason(cpu):
    """A relative IQR above the threshold, or a latency that falls as T grows, flags the speed cells."""
    recs = copy.deepcopy(cpu.records)
    by_case = {r["case_id"]: r for r in recs}
    for T, p50, iqr in ((1, 5.0, 0.01), (2, 9.0, 0.01)):  # tiny: monotonic, tight
        by_case[f"tiny|T={T}|cpu|bs=8"]["metrics"]["latency"].update(latency_p50_ms=p50, latency_rel_iqr=iqr)
    for T, p50, iqr in ((1, 7.0, 0.01), (2, 6.0, 0.35)):  # SEW: falls with T, and scattered at T=2
        by_case[f"SEW w/16|T={T}|cpu|bs=8"]["metrics"]["latency"].update(latency_p50_ms=p50, latency_rel_iqr=iqr)
    declared = declarations([cpu])
    speed, notes = tb.speed_table(recs, declared)
    got = {r["model"]: r for r in speed.to_dict("records")}
    assert got["tiny"]["latency p50 (ms)"] == "5" and "⚠" not in got["tiny"]["throughput (samples/s)"]
    assert got["SEW w/16"]["latency p50 (ms)"] == "6 ⚠" and got["SEW w/16"]["throughput (samples/s)"].endswith(" ⚠")
    sew = next(n for n in notes if n.startswith("⚠ SEW w/16 T=2"))
    assert "latency IQR / p50 = 0.35 > 0.1" in sew and "latency p50 (ms) falls from 7 at T=1 to 6 at T=2" in sew
    assert not any("tiny" in n for n in notes if n.startswith("⚠"))
    speed, _ = tb.speed_table(recs, declared, threshold=0.5)  # a looser threshold: the fall alone remains
    assert rows(speed)["SEW w/16"]["latency p50 (ms)"] == "6 ⚠"
    (latency,) = [t for t in tb.case_tables(recs, declared) if t.metric == "latency"]
    flagged = latency.frame[latency.frame["latency p50 (ms)"].str.endswith("⚠")]
    assert sorted(zip(flagged["model"], flagged["T"], strict=True)) == [("SEW w/16", 1), ("SEW w/16", 2)]


def test_case_tables_hold_every_reported_scalar_field(cpu):
    declared = declarations([cpu])
    tables = {t.metric: t for t in tb.case_tables(cpu.records, declared)}
    assert list(tables) == list(declared.contracts)
    ops = tables["ops"]
    assert len(ops.frame) == 4 and "dense MACs" in ops.frame.columns
    # tiny at T=2: dense MACs = 2 x (64 x 16 + 16 x 10) = 2368.
    row = ops.frame[(ops.frame["model"] == "tiny") & (ops.frame["T"] == 2)].iloc[0]
    assert row["dense MACs"] == "2.37 k"
    assert any(c.startswith("convention = snnbench-ops-v3") for c in ops.constants)
    # firing's own "T" field does not overwrite the case's T column
    assert "firing.T" in tables["firing"].frame.columns


def test_tables_tolerate_absent_metrics(trained):
    bare = copy.deepcopy(trained.records)
    for r in bare:
        r["metrics"] = {k: v for k, v in r["metrics"].items() if k in ("accuracy",)}
    declared = declarations([trained])
    frame, notes = tb.headline_table(bare, declared)
    assert list(frame.columns) == ["model", "weights", "main T", "top-1 (%)"]
    assert notes == []
    assert tb.speed_table(bare, declared)[0].empty
    (cases,) = tb.case_tables(bare, declared)
    assert list(cases.frame.columns[:6]) == ["model", "T", "device", "batch", "top-1 (%)", "top-5 (%)"]
    styles = model_styles(tb.model_order(bare))
    assert plots.accuracy_vs_energy(bare, declared, styles) is None
    assert plots.throughput_per_device(bare, declared, styles) is None
    assert plots.accuracy_vs_T(bare, declared, styles) is not None


def test_unmeasured_value_shows_na_and_its_reason(trained):
    recs = copy.deepcopy(trained.records)
    recs[0]["metrics"]["accuracy"].update(top1=None, top1_why="synthetic data")
    (acc,) = [t for t in tb.case_tables(recs, declarations([trained])) if t.metric == "accuracy"]
    assert acc.frame.iloc[0]["top-1 (%)"] == "n/a"
    assert "top-1 (%): n/a for tiny T=1" in acc.notes[0] and acc.notes[0].endswith("(synthetic data)")


def test_summary_shows_the_declared_summary_fields(cpu):
    frame = tb.summary_table(cpu.records, declarations([cpu]))
    assert len(frame) == 6 and list(frame["status"]).count("failed") == 2
    assert {"top-1 (%)", "firing rate (%)", "SOPs", "compute-only energy / sample", "params (M)"} <= set(frame.columns)
    assert "top-5 (%)" not in frame.columns  # not declared summary
    failed = frame[frame["status"] == "failed"].iloc[0]
    assert failed["top-1 (%)"] == ""


def test_published_matches_model_dataset_and_T(cpu):
    recs = copy.deepcopy([r for r in cpu.records if r["model"]["label"] == "SEW w/16"])
    for r in recs:
        r["data"]["dataset"] = "imagenet"
    assert rows(tb.published_table(recs))["SEW w/16"]["status"].startswith("not comparable: modified (width=")
    for r in recs:
        r["model"].update(kwargs={})
    assert rows(tb.published_table(recs))["SEW w/16"]["status"] == "T=4 not evaluated"
    recs[1]["T"] = 4
    assert rows(tb.published_table(recs))["SEW w/16"]["status"] == "untrained"
    for r in recs:
        with_weights(r, "snnbench")
    got = rows(tb.published_table(recs))["SEW w/16"]
    ours = recs[1]["metrics"]["accuracy"]["top1"]
    assert got["published top-1 (%)"] == "63.18"
    assert got["gap (points)"] == f"{ours - 63.18:+.2f}"
    assert got["status"] == "compared (weights trained here, not the authors')"
    assert "[log]" in got["source [confidence]"] and "spiking_resnet18_b32_lr0.1_T4" in got["source [confidence]"]
    assert got["conditions"].startswith("T=4; 224 px")
    for r in recs:
        with_weights(r, "sew-official")
    assert rows(tb.published_table(recs))["SEW w/16"]["status"] == "reproduction (official weights)"
    assert tb.published_table(cpu.records).empty  # digits: nothing published


def test_published_entries_say_what_they_are():
    """Each entry names its source, confidence and conditions; no file outside the repository is cited."""
    assert published_for("sew_resnet50", "ImageNet", 4)[0].top1 == 67.78
    assert published_for("spikeformer_dvs_cifar10", "CIFAR10-DVS")[0].T == 4
    assert published_for("spiking_resnet152", "imagenet", 4)[0].top1 == 10.03
    assert {p.confidence for p in PUBLISHED} == {"log", "abstract", "unverified"}
    assert all(p.source and p.conditions() for p in PUBLISHED)
    assert not any("shared/reference" in p.source for p in PUBLISHED)
    # MS-ResNet: unverified, at the T of the official code; the abstract's 104 number has no T and binds nothing.
    ms = [p for p in PUBLISHED if "ms_resnet" in "".join(p.models) or p.shown_for.startswith("ms_resnet")]
    assert {(p.models, p.T, p.top1, p.confidence) for p in ms} == {
        (("ms_resnet18",), 6, 63.10, "unverified"), (("ms_resnet34",), 6, 69.42, "unverified"),
        (("ms_resnet104",), 6, 74.21, "unverified"), ((), None, 76.02, "abstract")}
    # DANet: references for every variant of a depth, never bound (the variant is not identified).
    danet = published_for("danet_c101", "imagenet", 4)
    assert [(p.top1, p.reference) for p in danet] == [(76.13, True)]
    assert "variant not identified" in danet[0].architecture and "its body was not checked" in danet[0].source
    assert "only the abstract" not in danet[0].source
    # DSR ImageNet: hybrid training, our own weights not comparable.
    (dsr,) = published_for("dsr_preact_resnet18_imagenet", "imagenet", 50)
    assert dsr.recipe.startswith("hybrid training") and dsr.not_comparable
    # SEW DVS numbers: official logs, custom nets, shown beside SEW models as references.
    dvs = {p.dataset: p for p in published_for("sew_resnet18", "dvs_gesture") + published_for("sew_resnet18",
                                                                                             "CIFAR10-DVS")}
    assert {(d, p.T, p.top1, p.confidence, p.reference) for d, p in dvs.items()} == {
        ("dvs_gesture", 16, 97.92, "log", True), ("dvs_cifar10", 16, 74.4, "log", True)}


def test_published_section_of_untrained_and_from_scratch_models(cpu):
    """Untrained: no number dressed as a result; DSR from scratch against a hybrid-trained number: not comparable."""
    recs = copy.deepcopy([r for r in cpu.records if r["model"]["label"] == "SEW w/16"])
    for r in recs:
        r["data"]["dataset"] = "imagenet"
        r["model"].update(name="dsr_preact_resnet18_imagenet", kwargs={})
        r["T"] = 50 if r["T"] == 2 else r["T"]
    got = rows(tb.published_table(recs))["SEW w/16"]
    assert (got["status"], got["ours top-1 (%)"], got["gap (points)"]) == ("untrained", "n/a", "n/a")
    for r in recs:
        with_weights(r, "snnbench")
    got = rows(tb.published_table(recs))["SEW w/16"]
    assert got["status"].startswith("not comparable: the published number used hybrid training")
    assert got["gap (points)"] == "n/a" and got["ours top-1 (%)"] != "n/a"
    for r in recs:
        with_weights(r, "dsr-official")
    assert rows(tb.published_table(recs))["SEW w/16"]["gap (points)"] != "n/a"


@pytest.mark.parametrize(("value", "text"), [(0.0, "0"), (999.0, "999"), (1234.0, "1.23 k"), (2.5e9, "2.5 G"),
                                             (999.6, "1 k"), (999_600.0, "1 M"), (-999.6, "-1 k"), (None, "n/a"),
                                             (1e15, "1 P"), (999.6e12, "1 P"), (2.5e18, "2.5 E"), (1.234e21, "1.23e+21"),
                                             (float("nan"), "nan")])
def test_si(value, text):
    """Counts with a prefix; a value that rounds up to the next prefix reads '1 k' (or '1 P' beyond the
    tera range), never '1e+03 T'."""
    assert si(value) == text


@pytest.mark.parametrize(("joules", "text"), [(2.29e-3, "2.29 mJ"), (4.5e-7, "450 nJ"), (3e-12, "3 pJ"),
                                              (1.5, "1.5 J"), (9.9996e-10, "1 nJ"), (0.0, "0 pJ"),
                                              (-2.5e-6, "-2.5 µJ")])
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
    layers = plots.firing_matrix(rec)
    assert len(layers.names) == 1 and layers.rates.shape == (1, 2) and layers.analog == [False]  # one IF, T = 2
    assert layers.neurons == [16.0]
    assert layers.rates.mean() == pytest.approx(rec["metrics"]["firing"]["mean_rate"])
    as_dict = copy.deepcopy(rec)
    as_dict["metrics"]["firing"]["layers"] = {row.pop("name"): row for row in as_dict["metrics"]["firing"]["layers"]}
    assert plots.firing_matrix(as_dict).names == layers.names
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
    assert list(frame.columns) == ["model", "weights", "main T"]


def test_the_run_context_names_each_cpu_by_its_identity_too(cpu, gpu):
    """A VM may name every generation of a vendor's CPUs alike: the report's devices line adds the recorded
    identity (bench.devices.cpu_identity) to a CPU's model name; a GPU keeps its name."""
    from bench.devices import cpu_identity, cpu_name
    from bench.report.content import run_context

    devices = dict(run_context([cpu, gpu], cpu.records + gpu.records))["devices"]
    assert f"{cpu_name()} (cpu; {cpu_identity()})" in devices
    assert f"{GPU_NAME} (cuda:0)" in devices
