"""Baselines and regression verdicts: tolerances, directions, devices, injected regressions through the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.cli import main
from bench.compare import (
    DEFAULT_TOLERANCES,
    Tolerance,
    ToleranceError,
    compare_records,
    make_baseline,
    parse_tolerances,
    regressions,
    resolve,
)
from bench.suite import SuiteError, load_suite

FIXTURES = Path(__file__).parent / "report" / "fixtures"
SEW4 = "SEW ResNet-18|T=4|cpu|bs=32"


@pytest.fixture
def run(tmp_path):
    """A writable copy of the CPU fixture run without its failed case (a baseline refuses failures)."""
    folder = tmp_path / "run"
    shutil.copytree(FIXTURES / "run_cpu", folder)
    lines = (folder / "results.jsonl").read_text().splitlines()
    (folder / "results.jsonl").write_text("".join(x + "\n" for x in lines if '"status": "ok"' in x))
    return folder


def edit(folder: Path, case: str, metric: str, field: str, value) -> None:
    records = [json.loads(x) for x in (folder / "results.jsonl").read_text().splitlines()]
    for r in records:
        if r["case_id"] == case:
            r["metrics"][metric][field] = value
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def records(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "results.jsonl").read_text().splitlines()]


def test_tolerance_resolution_first_match_suite_first():
    suite = parse_tolerances({"accuracy.*": {"abs": 5.0, "better": "higher"}, "ops.sops": {"skip": True}})
    assert resolve("accuracy.top1", suite) == Tolerance(abs=5.0, better="higher")
    assert resolve("accuracy.top1") == DEFAULT_TOLERANCES["accuracy.top1"]
    assert resolve("ops.sops", suite) is None and resolve("ops.sops") == Tolerance()
    assert resolve("latency.latency_std_ms") is None  # not tracked by default


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


def test_baseline_keeps_tracked_fields_only(run):
    baseline = make_baseline(run, "b")
    values = baseline["cases"][SEW4]["values"]
    assert values["accuracy.top1"] == 63.02 and values["params.params"] == 11_689_512
    assert "ops.acs" in values and "latency.latency_p50_ms" in values
    assert "latency.latency_p90_ms" not in values and "accuracy.n_samples" not in values


def test_unchanged_run_has_no_regression(run):
    changes = compare_records(make_baseline(run, "b"), records(run))
    assert regressions(changes) == []
    assert {c.verdict for c in changes} == {"ok"}


@pytest.mark.parametrize(("metric", "field", "delta", "verdict"), [
    ("accuracy", "top1", -2.5, "regression"),  # beyond 2 points, lower: bad
    ("accuracy", "top1", -1.5, "ok"),  # within 2 points
    ("accuracy", "top1", +2.5, "improved"),
    ("ops", "acs", +1, "regression"),  # counts are exact, either direction
    ("ops", "acs", -1, "regression"),
    ("latency", "latency_p50_ms", +0.4 * 512.0, "ok"),  # wall clock: 50% allowed
    ("latency", "latency_p50_ms", +0.6 * 512.0, "regression"),
    ("latency", "latency_p50_ms", -0.6 * 512.0, "improved"),
])
def test_verdicts(run, metric, field, delta, verdict):
    baseline = make_baseline(run, "b")
    base = baseline["cases"][SEW4]["values"][f"{metric}.{field}"]
    edit(run, SEW4, metric, field, base + delta)
    change = next(c for c in compare_records(baseline, records(run)) if c.case == SEW4 and c.field == f"{metric}.{field}")
    assert change.verdict == verdict
    assert change.delta == pytest.approx(delta)


def test_wall_clock_compared_on_the_same_device_model_only(run):
    baseline = make_baseline(run, "b")
    recs = records(run)
    for r in recs:
        r["device_info"]["device_name"] = "Other CPU"
        r["metrics"]["latency"]["latency_p50_ms"] *= 10
    changes = compare_records(baseline, recs)
    latency = [c for c in changes if c.field == "latency.latency_p50_ms"]
    assert latency and {c.verdict for c in latency} == {"skipped"}
    assert regressions(changes) == []


def test_failed_missing_and_unmeasured_cases_are_regressions(run):
    baseline = make_baseline(run, "b")
    recs = records(run)
    recs[0].update(status="failed", error={"type": "RuntimeError", "message": "boom"})
    recs[2]["metrics"]["accuracy"]["top1"] = None  # SEW at T=4
    recs[2]["metrics"]["accuracy"]["top1_why"] = "synthetic data"
    del recs[1]
    notes = {c.case: c.note for c in regressions(compare_records(baseline, recs))}
    assert notes["SEW ResNet-18|T=1|cpu|bs=32"] == "case failed: boom"
    assert notes["SEW ResNet-18|T=2|cpu|bs=32"] == "case missing from the run"
    assert notes[SEW4] == "not measured: synthetic data"


def test_baseline_refuses_a_run_with_failures(tmp_path):
    assert main(["baseline", "save", str(FIXTURES / "run_cpu"), "x", "--file", str(tmp_path / "x.json")]) == 2
    assert not (tmp_path / "x.json").exists()


def test_cli_compare_fails_and_names_injected_regressions(run, tmp_path, capsys):
    path = tmp_path / "base.json"
    assert main(["baseline", "save", str(run), "base", "--file", str(path)]) == 0
    assert main(["compare", str(path), str(run)]) == 0
    capsys.readouterr()
    edit(run, SEW4, "ops", "macs", 472_000_001)  # one MAC more than the baseline count (472 M)
    edit(run, "DANet-A50 (w=1/4)|T=2|cpu|bs=32", "accuracy", "top1", 45.0)  # 51.25 -> 45.0
    assert main(["compare", str(path), str(run)]) == 1
    out = capsys.readouterr().err
    assert "2 regression(s)" in out
    assert f"REGRESSION {SEW4} ops.macs: 472000000 -> 472000001 (allowed: exact)" in out
    assert "REGRESSION DANet-A50 (w=1/4)|T=2|cpu|bs=32 accuracy.top1: 51.25 -> 45" in out


def test_committed_regression_baseline_is_valid():
    from bench.compare import load_baseline

    baseline = load_baseline(Path(__file__).parents[1] / "suites" / "baselines" / "regression.json")
    assert baseline["suite"] == "regression" and baseline["cases"]
    assert all(case["values"].get("params.params") for case in baseline["cases"].values())
