"""Baselines and regression verdicts from a real run: declared default tolerances, suite overrides,
stored tolerances, directions, devices, injected regressions through the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from real_run import copy_run, read_jsonl, real_run, write_jsonl

from bench.cli import main
from bench.compare import (
    BaselineError,
    Tolerance,
    ToleranceError,
    compare_records,
    compare_run,
    declared_tolerances,
    layered,
    load_baseline,
    make_baseline,
    other_device,
    parse_tolerances,
    regressions,
    resolve,
    save_baseline,
    suite_tolerances,
)
from bench.devices import cpu_identity, cpu_name
from bench.results import load_run
from bench.suite import SuiteError, load_suite

TINY2 = "tiny|T=2|cpu|bs=8"


@pytest.fixture
def run(tmp_path, tmp_path_factory):
    """A writable copy of the real run without its failed cases (a baseline refuses failures)."""
    return copy_run(real_run(tmp_path_factory), tmp_path / "run", ok_only=True)


def edit(folder: Path, case: str, metric: str, field: str, value) -> None:
    records = read_jsonl(folder / "results.jsonl")
    for r in records:
        if r["case_id"] == case:
            r["metrics"][metric][field] = value
    write_jsonl(folder / "results.jsonl", records)


def test_default_tolerances_are_the_declared_ones(run):
    declared = declared_tolerances(load_run(run).contracts)
    stored = json.loads((run / "run.json").read_text())["metric_contracts"]
    expected = {f"{m}.{f['name']}": Tolerance(**f["tolerance"]) for m, c in stored.items() for f in c["fields"]
                if f["tolerance"] is not None}
    assert declared == expected
    assert declared["accuracy.top1"] == Tolerance(abs=2.0, better="higher")
    assert declared["ops.acs"] == Tolerance()  # counts: exact
    assert declared["measured_energy.gpu_energy_j_per_sample"].same_device  # the gross figure is tracked
    assert "measured_energy.gpu_energy_net_j_per_sample" not in declared
    assert "latency.latency_std_ms" not in declared  # not tracked by default


def test_tolerance_resolution_first_match_suite_first(run):
    declared = declared_tolerances(load_run(run).contracts)
    suite = parse_tolerances({"accuracy.*": {"abs": 5.0, "better": "higher"}, "ops.sops": {"skip": True}})
    assert resolve("accuracy.top1", suite, declared) == Tolerance(abs=5.0, better="higher")
    assert resolve("accuracy.top1", declared) == Tolerance(abs=2.0, better="higher")
    assert resolve("ops.sops", suite, declared) is None and resolve("ops.sops", declared) == Tolerance()
    assert resolve("ops.sops", layered(suite, declared)) is None


@pytest.mark.parametrize(("entry", "key"), [
    ({"abs": -1}, "accuracy.top1.abs"), ({"better": "up"}, "accuracy.top1.better"),
    ({"rell": 0.1}, "accuracy.top1.rell"), ({"same_device": "yes"}, "accuracy.top1.same_device"),
])
def test_bad_tolerances_name_the_key(entry, key):
    with pytest.raises(ToleranceError) as err:
        parse_tolerances({"accuracy.top1": entry})
    assert err.value.key == key


def test_suite_accepts_and_validates_tolerances(write_suite, tiny_suite_text):
    good = load_suite(write_suite(tiny_suite_text + '\n[tolerances]\n"accuracy.top1" = { abs = 4.0 }\n'))
    assert good.tolerances == {"accuracy.top1": Tolerance(abs=4.0)}
    with pytest.raises(SuiteError) as err:
        load_suite(write_suite(tiny_suite_text + '\n[tolerances]\n"accuracy.top1" = { better = "up" }\n'))
    assert err.value.field == "tolerances.accuracy.top1.better"


@pytest.mark.parametrize(("key", "words"), [
    ("accuracy.top9", ["accuracy.top9", "top1", "top5", "did you mean 'top"]),
    ("acuracy.top1", ["acuracy", "unknown metric", "did you mean 'accuracy'?"]),
    ("latency.*_sec", ["latency.*_sec", "matches no declared field", "latency_p50_ms"]),
    ("nosuch*.x", ["nosuch*.x", "matches no declared field"]),
])
def test_suite_refuses_tolerances_on_undeclared_fields(write_suite, tiny_suite_text, key, words):
    with pytest.raises(SuiteError) as err:
        load_suite(write_suite(tiny_suite_text + f'\n[tolerances]\n"{key}" = {{ abs = 1 }}\n'))
    assert err.value.field == f"tolerances.{key}"
    text = str(err.value)
    assert all(w in text for w in words), text


def test_suite_accepts_tolerance_patterns_that_match_declared_fields(write_suite, tiny_suite_text):
    keys = ["accuracy.top1", "latency.*_ms", "*.top5", "published_gap.top1", "memory.*"]
    table = "".join(f'"{k}" = {{ abs = 1 }}\n' for k in keys)
    assert list(load_suite(write_suite(tiny_suite_text + "\n[tolerances]\n" + table)).tolerances) == keys


def test_baseline_keeps_tracked_fields_and_stores_its_tolerances(run):
    baseline = make_baseline(run, "b")
    values = baseline["cases"][TINY2]["values"]
    record = next(r for r in read_jsonl(run / "results.jsonl") if r["case_id"] == TINY2)
    assert values["accuracy.top1"] == record["metrics"]["accuracy"]["top1"]
    assert values["params.params"] == 1210 and values["ops.macs"] == 2048
    assert "ops.acs" in values and "latency.latency_p50_ms" in values
    assert "latency.latency_p90_ms" not in values and "accuracy.n_samples" not in values
    # The suite's [tolerances] (top-5 within 5 points) comes first, then the declared defaults.
    assert list(baseline["tolerances"])[0] == "accuracy.top5"
    assert baseline["tolerances"]["accuracy.top5"]["abs"] == 5.0
    assert baseline["tolerances"]["accuracy.top1"]["abs"] == 2.0
    assert baseline["tolerances_source"].startswith("[tolerances] of ")


def test_unchanged_run_has_no_regression(run):
    baseline = make_baseline(run, "b")
    changes, _, _ = compare_run(save_baseline(baseline, run / "b.json"), run)
    assert regressions(changes) == []
    assert {c.verdict for c in changes} == {"ok"}


@pytest.mark.parametrize(("metric", "field", "delta", "verdict"), [
    ("accuracy", "top1", -2.5, "regression"),  # beyond 2 points, lower: bad
    ("accuracy", "top1", -1.5, "ok"),  # within 2 points
    ("accuracy", "top1", +2.5, "improved"),
    ("accuracy", "top5", -4.0, "ok"),  # the suite allows 5 points on top-5
    ("ops", "acs", +1, "regression"),  # counts are exact, either direction
    ("ops", "acs", -1, "regression"),
    ("latency", "latency_p50_ms", +0.4, "ok"),  # wall clock: 50% allowed (delta x baseline)
    ("latency", "latency_p50_ms", +0.6, "regression"),
    ("latency", "latency_p50_ms", -0.6, "improved"),
])
def test_verdicts(run, metric, field, delta, verdict):
    baseline = make_baseline(run, "b")
    base = baseline["cases"][TINY2]["values"][f"{metric}.{field}"]
    delta = delta * base if metric == "latency" else delta
    edit(run, TINY2, metric, field, base + delta)
    path = save_baseline(baseline, run / "b.json")
    change = next(c for c in compare_run(path, run)[0] if c.case == TINY2 and c.field == f"{metric}.{field}")
    assert change.verdict == verdict
    assert change.delta == pytest.approx(delta)


def test_wall_clock_compared_on_the_same_device_model_only(run):
    baseline = make_baseline(run, "b")
    tolerances = {k: Tolerance(**v) for k, v in baseline["tolerances"].items()}
    recs = read_jsonl(run / "results.jsonl")
    for r in recs:
        r["device_info"]["device_name"] = "Other CPU"
        r["metrics"]["latency"]["latency_p50_ms"] *= 10
    changes = compare_records(baseline, recs, tolerances)
    latency = [c for c in changes if c.field == "latency.latency_p50_ms"]
    assert latency and {c.verdict for c in latency} == {"skipped"}
    assert regressions(changes) == []


def test_the_trained_regression_suite_compares_accuracy_on_its_processor_model_only(run, capsys):
    """suites/regression.toml: training repeats bit for bit on one processor model only, so accuracy measured
    on another is skipped (said per field, and counted in the CLI's summary), never a regression; on the
    same model a 10-point drop is one. Parameters are compared everywhere."""
    suite, source = suite_tolerances(Path(__file__).parents[1] / "suites" / "regression.toml")
    assert "regression.toml" in source
    baseline = make_baseline(run, "b")
    tolerances = layered(suite, {k: Tolerance(**v) for k, v in baseline["tolerances"].items()})
    recs = read_jsonl(run / "results.jsonl")
    for r in recs:
        r["metrics"]["accuracy"]["top1"] -= 10
    top1 = [c for c in compare_records(baseline, recs, tolerances) if c.field == "accuracy.top1"]
    assert top1 and {c.verdict for c in top1} == {"regression"}
    for r in recs:
        r["device_info"]["device_name"] = "Other CPU"
    changes = compare_records(baseline, recs, tolerances)
    top1 = [c for c in changes if c.field == "accuracy.top1"]
    assert top1 and {c.verdict for c in top1} == {"skipped"} and all("other device" in c.note for c in top1)
    assert regressions(changes) == []
    assert {c.verdict for c in changes if c.field == "params.params"} == {"ok"}
    path = save_baseline(baseline, run / "b.json")
    write_jsonl(run / "results.jsonl", recs)
    suite_file = Path(__file__).parents[1] / "suites" / "regression.toml"
    capsys.readouterr()
    assert main(["compare", str(path), str(run), "--suite", str(suite_file)]) == 0
    out = " ".join(capsys.readouterr().err.split())
    skipped = re.search(r"(\d+) skipped \(see the table\), 0 regression\(s\)", out)
    assert skipped and int(skipped.group(1)) >= len(top1)


def test_same_model_name_on_another_cpu_generation_is_skipped_not_a_regression(run):
    """A VM may name every generation of a vendor's CPUs alike ('AMD EPYC'): trained accuracy on one of another
    family or model, or whose torch kernels use another instruction set, differs with unchanged code, so a
    same_device field is compared only where the recorded CPU identity matches too, and skipped (with the
    reason) where either side lacks it."""
    suite, _ = suite_tolerances(Path(__file__).parents[1] / "suites" / "regression.toml")
    baseline = make_baseline(run, "b")
    tolerances = layered(suite, {k: Tolerance(**v) for k, v in baseline["tolerances"].items()})
    recs = read_jsonl(run / "results.jsonl")
    assert all(case["cpu_identity"] == cpu_identity() for case in baseline["cases"].values())
    for r in recs:
        r["metrics"]["accuracy"]["top1"] -= 10

    def top1(records, cases=None):
        base = {**baseline, "cases": cases or baseline["cases"]}
        return [c for c in compare_records(base, records, tolerances) if c.field == "accuracy.top1"]

    assert {c.verdict for c in top1(recs)} == {"regression"}  # same name, same identity: compared
    for r in recs:
        r["device_info"]["cpu_identity"] = "AuthenticAMD family 25 model 17 stepping 1; torch kernels AVX512"
    other = top1(recs)
    assert other and {c.verdict for c in other} == {"skipped"}
    assert all(c.note.startswith("other CPU: AuthenticAMD family 25 model 17") for c in other)
    for r in recs:
        del r["device_info"]["cpu_identity"]  # a run made before the identity was recorded
    assert {c.note for c in top1(recs)} == {
        f"CPU not identified: this run records only the model name {cpu_name()!r} (run the suite again)"}
    recs = read_jsonl(run / "results.jsonl")
    for r in recs:
        r["metrics"]["accuracy"]["top1"] -= 10
    old = {k: {f: v for f, v in case.items() if f != "cpu_identity"} for k, case in baseline["cases"].items()}
    assert {c.verdict for c in top1(recs, old)} == {"skipped"}
    assert {c.note for c in top1(recs, old)} == {
        f"CPU not identified: the baseline records only the model name {cpu_name()!r} (save it again)"}


def test_gpu_cases_compare_by_model_name_alone():
    record = {"device": "cuda:0", "device_info": {"device_name": "NVIDIA H100 80GB HBM3"}}
    assert other_device(record, {"device_name": "NVIDIA H100 80GB HBM3"}) == ""
    assert other_device(record, {"device_name": "NVIDIA H200"}) == "other device: NVIDIA H100 80GB HBM3 vs NVIDIA H200"


def test_failed_missing_and_unmeasured_cases_are_regressions(run):
    baseline = make_baseline(run, "b")
    tolerances = {k: Tolerance(**v) for k, v in baseline["tolerances"].items()}
    recs = read_jsonl(run / "results.jsonl")
    recs[0].update(status="failed", error={"type": "RuntimeError", "message": "boom"})
    recs[2]["metrics"]["accuracy"].update(top1=None, top1_why="synthetic data")  # SEW at T=1
    del recs[1]
    notes = {c.case: c.note for c in regressions(compare_records(baseline, recs, tolerances))}
    assert notes["tiny|T=1|cpu|bs=8"] == "case failed: boom"
    assert notes["tiny|T=2|cpu|bs=8"] == "case missing from the run"
    assert notes["SEW w/16|T=1|cpu|bs=8"] == "not measured: synthetic data"


def test_baseline_refuses_a_run_with_failures(tmp_path, tmp_path_factory):
    assert main(["baseline", "save", str(real_run(tmp_path_factory)), "x", "--file", str(tmp_path / "x.json")]) == 2
    assert not (tmp_path / "x.json").exists()


def test_cli_compare_fails_and_names_injected_regressions(run, tmp_path, capsys):
    path = tmp_path / "base.json"
    assert main(["baseline", "save", str(run), "base", "--file", str(path)]) == 0
    assert main(["compare", str(path), str(run)]) == 0
    assert "0 regression(s), 0 case(s) not comparable; tolerances: [tolerances] of " in capsys.readouterr().err  # markup escaped
    edit(run, TINY2, "ops", "macs", 2049)  # one MAC more than the baseline's 2 x 64 x 16
    top1 = json.loads(path.read_text())["cases"]["SEW w/16|T=2|cpu|bs=8"]["values"]["accuracy.top1"]
    edit(run, "SEW w/16|T=2|cpu|bs=8", "accuracy", "top1", top1 - 10)
    assert main(["compare", str(path), str(run)]) == 1
    out = capsys.readouterr().err
    assert "2 regression(s)" in out
    assert f"REGRESSION {TINY2} ops.macs: 2048 -> 2049 (allowed: exact)" in out
    assert "REGRESSION SEW w/16|T=2|cpu|bs=8 accuracy.top1: " in out


def test_compare_works_without_the_suite_and_a_suite_overrides(run, tmp_path):
    path = save_baseline(make_baseline(run, "b"), tmp_path / "b.json")
    suite_file = Path(json.loads((run / "run.json").read_text())["suite_file"])
    base = json.loads(path.read_text())["cases"][TINY2]["values"]["accuracy.top5"]
    edit(run, TINY2, "accuracy", "top5", base - 4)  # within the suite's 5 points, stored in the baseline
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps(meta | {"suite_file": str(tmp_path / "gone.toml")}))
    changes, source, _ = compare_run(path, run)
    assert source == "the baseline's stored tolerances" and regressions(changes) == []
    strict = tmp_path / "strict.toml"
    strict.write_text('[tolerances]\n"accuracy.top5" = { abs = 1.0, better = "higher" }\n')
    changes, source, _ = compare_run(path, run, strict)
    assert source == f"[tolerances] of {strict} over the baseline's stored tolerances"
    assert [c.field for c in regressions(changes)] == ["accuracy.top5"]
    assert suite_file.is_file()


def test_bad_suite_tolerances_at_compare_are_bad_input(run, tmp_path):
    path = save_baseline(make_baseline(run, "b"), tmp_path / "b.json")
    bad = tmp_path / "bad.toml"
    bad.write_text('[tolerances]\n"accuracy.top1" = { better = "up" }\n')
    with pytest.raises(BaselineError, match="tolerances.accuracy.top1.better"):
        compare_run(path, run, bad)
    assert main(["compare", str(path), str(run), "--suite", str(bad)]) == 2


def test_format_1_baseline_uses_the_runs_declarations(run, tmp_path):
    baseline = make_baseline(run, "b")
    del baseline["tolerances"], baseline["tolerances_source"]
    baseline["format"] = "snnbench-baseline-1"
    path = save_baseline(baseline, tmp_path / "old.json")
    changes, source, _ = compare_run(path, run)
    assert source.endswith("the run's declared defaults (the baseline stores no tolerances)")
    assert regressions(changes) == [] and changes


def test_old_run_without_declarations_cannot_make_a_baseline(run):
    meta = json.loads((run / "run.json").read_text())
    del meta["metric_contracts"]
    (run / "run.json").write_text(json.dumps(meta))
    with pytest.raises(BaselineError, match="no metric declarations"):
        make_baseline(run, "b")


def test_committed_regression_baseline_is_valid():
    baseline = load_baseline(Path(__file__).parents[1] / "suites" / "baselines" / "regression.json")
    assert baseline["suite"] == "regression" and baseline["cases"]
    assert all(case["values"].get("params.params") for case in baseline["cases"].values())


# ---------------------------------------------------------------- configurations: only like with like

SEW = "SEW w/16"


def reconfigure(folder: Path, label: str, width: float | None = None, suite: str | None = None,
                checkpoint: str | None = None, train: dict | None = None) -> Path:
    """The run as if ``label`` had been measured with other settings: its records and run.json's settings say so,
    as bench run writes them (a new config_key; the metric values are left as they were)."""
    records = read_jsonl(folder / "results.jsonl")
    meta = json.loads((folder / "run.json").read_text())
    settings = meta["segments"][0]["settings"]
    for r in records:
        if r["model"]["label"] == label:
            r["config_key"] = "0" * 16
            if width is not None:
                r["model"]["kwargs"]["width"] = width
            if checkpoint is not None:
                r["model"]["checkpoint"] = checkpoint
        if suite is not None:
            r["suite"] = suite
    if width is not None:
        settings["models"][label]["kwargs"]["width"] = width
    if suite is not None:
        settings["name"] = meta["suite"] = suite
    if train is not None:
        settings["train"] = train
    write_jsonl(folder / "results.jsonl", records)
    (folder / "run.json").write_text(json.dumps(meta))
    return folder


def test_another_width_is_not_comparable_never_a_regression(run, tmp_path, capsys):
    path = save_baseline(make_baseline(run, "b"), tmp_path / "b.json")
    reconfigure(run, SEW, width=0.125)
    for case in ("SEW w/16|T=1|cpu|bs=8", "SEW w/16|T=2|cpu|bs=8"):
        edit(run, case, "params", "params", 99)  # what a wider net changes: would be a regression
    changes, _, _ = compare_run(path, run)
    assert regressions(changes) == []
    odd = {c.case: c.note for c in changes if c.verdict == "not comparable"}
    assert odd == {f"{SEW}|T=1|cpu|bs=8": "model.kwargs.width: 0.0625 -> 0.125",
                   f"{SEW}|T=2|cpu|bs=8": "model.kwargs.width: 0.0625 -> 0.125"}
    assert {c.case for c in changes if c.verdict == "ok"} == {"tiny|T=1|cpu|bs=8", TINY2}  # still compared
    assert main(["compare", str(path), str(run)]) == 3
    err = " ".join(capsys.readouterr().err.split())
    assert "0 regression(s), 2 case(s) not comparable" in err
    assert f"NOT COMPARABLE {SEW}|T=1|cpu|bs=8 (case): model.kwargs.width: 0.0625 -> 0.125" in err


def test_a_regression_beside_incomparable_cases_still_exits_1(run, tmp_path):
    path = save_baseline(make_baseline(run, "b"), tmp_path / "b.json")
    reconfigure(run, SEW, width=0.125)
    edit(run, TINY2, "ops", "macs", 2049)
    assert main(["compare", str(path), str(run)]) == 1


def test_diff_of_another_suite_is_not_comparable(run, tmp_path, capsys):
    from bench.compare import diff_runs

    b = reconfigure(copy_run(run, tmp_path / "b"), SEW, suite="other")
    changes, _, _ = diff_runs(run, b)
    assert {c.verdict for c in changes} == {"not comparable"}
    assert {c.note for c in changes} == {'suite: "realrun" -> "other"'}
    assert main(["diff", str(run), str(b)]) == 3


def test_a_checkpoint_trained_in_each_run_is_comparable_unless_training_changed(run, tmp_path):
    """[train] writes each run's checkpoint inside its own folder: the path differs, the settings do not."""
    from bench.compare import diff_runs

    b = reconfigure(copy_run(run, tmp_path / "b"), SEW, checkpoint=str(tmp_path / "b/checkpoints/SEW.pt"))
    changes, _, _ = diff_runs(run, b)
    assert "not comparable" not in {c.verdict for c in changes} and regressions(changes) == []
    c = reconfigure(copy_run(run, tmp_path / "c"), SEW, train={"epochs": 3})
    changes, _, _ = diff_runs(run, c)
    assert {c.note for c in changes if c.verdict == "not comparable"} == {
        "train: null -> (absent); train.epochs: (absent) -> 3"}


def test_metric_options_of_metrics_one_run_lacks_do_not_matter(run, tmp_path):
    from bench.compare import diff_runs

    b = copy_run(run, tmp_path / "b")
    meta = json.loads((b / "run.json").read_text())
    meta["segments"][0]["settings"]["metric_options"]["latency"]["min_runs"] = 7
    (b / "run.json").write_text(json.dumps(meta))
    changes, _, _ = diff_runs(run, b)
    assert {c.note for c in changes if c.verdict == "not comparable"} == {"metric_options.latency.min_runs: 2 -> 7"}
    meta["segments"][0]["settings"]["metrics"].remove("latency")
    (b / "run.json").write_text(json.dumps(meta))
    changes, _, _ = diff_runs(run, b)
    assert "not comparable" not in {c.verdict for c in changes}


def test_a_baseline_without_configurations_still_compares_and_says_so(run, tmp_path):
    baseline = make_baseline(run, "b")
    baseline["format"] = "snnbench-baseline-2"
    for case in baseline["cases"].values():
        del case["config"], case["config_key"]
    path = save_baseline(baseline, tmp_path / "old.json")
    reconfigure(run, SEW, width=0.125)
    changes, _, notes = compare_run(path, run)
    assert "not comparable" not in {c.verdict for c in changes} and regressions(changes) == []
    assert notes == [f"{path} stores no configurations (saved before format snnbench-baseline-3): its 4 case(s) "
                     "are matched by model label, T, device and batch size only, whatever their settings. Fix: save "
                     "it again with `bench baseline save RUN_DIR NAME`"]


def test_baseline_stores_each_cases_configuration(run):
    case = make_baseline(run, "b")["cases"][f"{SEW}|T=2|cpu|bs=8"]
    record = next(r for r in read_jsonl(run / "results.jsonl") if r["case_id"] == f"{SEW}|T=2|cpu|bs=8")
    assert case["config_key"] == record["config_key"]
    assert case["config"]["model"]["kwargs"] == {"width": 0.0625, "input_size": "cifar"}
    assert case["config"]["suite"] == "realrun" and case["config"]["seed"] == 0


# ---------------------------------------------------------------- where tolerances came from


def test_tolerance_source_names_only_a_table_that_exists(run, tmp_path, capsys):
    from bench.compare import diff_runs

    bare = tmp_path / "bare.toml"
    bare.write_text('[suite]\nname = "x"\n')
    _, source, _ = diff_runs(run, run, bare)
    assert source == "the metrics' declared defaults"
    assert main(["baseline", "save", str(run), "b", "--suite", str(bare), "--file", str(tmp_path / "b.json")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "fields and tolerances chosen by the metrics' declared defaults" in err and "[tolerances] of" not in err
    _, source, _ = compare_run(tmp_path / "b.json", run, bare)
    assert source == "the baseline's stored tolerances"


# ---------------------------------------------------------------- published gaps


SEW_OFFICIAL = "SEW w/16|T=4|cpu|bs=8"


def as_reproduction(folder: Path, top1: float, fmt: str = "sew-official") -> None:
    """SEW w/16 at T=2 relabelled as an unmodified sew_resnet18 evaluated on ImageNet at T=4 from ``fmt``
    weights (the SEW authors' log gives 63.18 at T=4)."""
    records = read_jsonl(folder / "results.jsonl")
    for r in records:
        if r["case_id"] == "SEW w/16|T=2|cpu|bs=8":
            r.update(T=4, case_id=SEW_OFFICIAL)
            r["model"].update(kwargs={}, checkpoint="sew18.pth", checkpoint_format=fmt, untrained=False)
            r["data"]["dataset"] = "imagenet"
            r["metrics"]["accuracy"]["top1"] = top1
    write_jsonl(folder / "results.jsonl", records)


def gap_suite(tmp_path: Path, allowed: float) -> Path:
    suite = tmp_path / f"gap{allowed}.toml"
    suite.write_text(f'[tolerances]\n"published_gap.top1" = {{ abs = {allowed} }}\n')
    return suite


@pytest.mark.parametrize(("allowed", "verdict"), [(0.5, "ok"), (0.1, "regression")])
def test_published_gap_of_a_reproduction_is_checked_against_the_suite(run, tmp_path, allowed, verdict):
    """62.90 against 63.18: gap -0.28 points, within 0.5, beyond 0.1 (the tolerance applies to |gap|)."""
    as_reproduction(run, 62.90)
    path = save_baseline(make_baseline(run, "b"), tmp_path / "b.json")
    changes, _, _ = compare_run(path, run, gap_suite(tmp_path, allowed))
    (gap,) = [c for c in changes if c.field == "published_gap.top1"]
    assert (gap.case, gap.baseline, gap.current, gap.verdict) == (SEW_OFFICIAL, 63.18, 62.90, verdict)
    assert gap.delta == pytest.approx(-0.28) and gap.tolerance == f"|gap| ≤ {allowed:g}"
    assert "spiking_resnet18_b32_lr0.1_T4_coslr320_sgd_cnf_add_logs [log]" in gap.note
    assert [c.field for c in regressions(changes)] == ([] if verdict == "ok" else ["published_gap.top1"])


def test_published_gap_needs_official_weights_and_a_tolerance(run, tmp_path):
    as_reproduction(run, 50.0, fmt="snnbench")  # our own weights: not a reproduction
    path = save_baseline(make_baseline(run, "b"), tmp_path / "b.json")
    assert not [c for c in compare_run(path, run, gap_suite(tmp_path, 0.1))[0] if c.field.startswith("published")]
    as_reproduction(run, 50.0)
    assert not [c for c in compare_run(path, run)[0] if c.field.startswith("published")]  # no tolerance given


# ---------------------------------------------------------------- bench diff


def test_diff_of_a_run_with_itself_is_clean(run, capsys):
    from bench.compare import diff_runs

    changes, source, _ = diff_runs(run, run)
    assert regressions(changes) == [] and {c.verdict for c in changes} == {"ok"}
    assert source.startswith("[tolerances] of ") and source.endswith("over the metrics' declared defaults")
    assert main(["diff", str(run), str(run)]) == 0
    assert "0 regression(s)" in capsys.readouterr().err


def test_diff_side_by_side_with_the_same_tolerances_as_compare(run, tmp_path, capsys):
    b = copy_run(run, tmp_path / "b")
    edit(b, TINY2, "ops", "macs", 2049)  # exact: a regression
    top5 = next(r for r in read_jsonl(run / "results.jsonl") if r["case_id"] == TINY2)["metrics"]["accuracy"]["top5"]
    edit(b, TINY2, "accuracy", "top5", top5 - 4)  # the suite allows 5 points on top-5
    assert main(["diff", str(run), str(b)]) == 1
    out = capsys.readouterr().err
    assert f"REGRESSION {TINY2} ops.macs: 2048 -> 2049 (allowed: exact)" in out and "1 regression(s)" in out
    strict = tmp_path / "strict.toml"
    strict.write_text('[tolerances]\n"accuracy.top5" = { abs = 1.0, better = "higher" }\n"ops.*" = { skip = true }\n')
    assert main(["diff", str(run), str(b), "--suite", str(strict)]) == 1
    out = capsys.readouterr().err
    assert "accuracy.top5" in out and "ops.macs" not in out.split("regression(s)")[1]


def test_diff_names_failed_fixed_and_missing_cases(run, tmp_path, tmp_path_factory):
    from bench.compare import diff_runs

    with_failures = real_run(tmp_path_factory)  # the same cases plus the failing model's two
    changes, _, _ = diff_runs(with_failures, run)
    verdicts = {c.case: (c.verdict, c.note) for c in changes if c.field == "(case)"}
    assert verdicts["broken|T=1|cpu|bs=8"][0] == "regression"  # in A (failed), missing from B
    changes, _, _ = diff_runs(run, with_failures)
    verdicts = {c.case: (c.verdict, c.note) for c in changes if c.field == "(case)"}
    assert verdicts["broken|T=1|cpu|bs=8"] == ("regression", "case failed: metric 'accuracy' failed: RuntimeError: "
                                                           "deliberate failure inside forward")
    fixed = copy_run(with_failures, tmp_path / "fixed")
    records = read_jsonl(fixed / "results.jsonl")
    ok = next(r for r in records if r["status"] == "ok")
    for r in records:
        if r["status"] != "ok":
            r.update(status="ok", error=None, metrics=ok["metrics"])
    write_jsonl(fixed / "results.jsonl", records)
    changes, _, _ = diff_runs(with_failures, fixed)
    assert {c.case: c.verdict for c in changes if c.field == "(case)"} == {
        "broken|T=1|cpu|bs=8": "fixed", "broken|T=2|cpu|bs=8": "fixed"}


def test_diff_checks_the_published_gap_of_run_b(run, tmp_path):
    from bench.compare import diff_runs

    b = copy_run(run, tmp_path / "b")
    as_reproduction(run, 63.0)
    as_reproduction(b, 60.0)
    changes, _, _ = diff_runs(run, b, gap_suite(tmp_path, 0.5))
    (gap,) = [c for c in changes if c.field == "published_gap.top1"]
    assert gap.verdict == "regression" and gap.current == 60.0
