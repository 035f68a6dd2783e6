"""Time estimates (bench/estimate.py): work counted on the meta device against hand counts and torchvision's
published figure, each metric's cost worked out by hand, past runs found through the reports folder and the
history store, and "no past run" said when there is none."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import neuron

import bench.estimate as estimate
from bench.estimate import (
    Estimate,
    Speed,
    Work,
    count_work,
    duration,
    estimate_cases,
    model_work,
)
from bench.history import append_run
from bench.metrics import available_metrics, get_metric
from bench.metrics.base import CaseWork, NotEstimated
from bench.plan import CasePlan, plan_cases
from bench.results import read_records
from bench.runner import run_suite
from bench.suite import Case, ModelSpec, Suite, expand_cases, load_suite

SUITE = """
[suite]
name = "est"
time_steps = [1, 2]
metrics = ["accuracy", "params"]

[data]
dataset = "digits"
max_samples = 16
batch_size = 8

[[models]]
name = "sew_resnet18"
label = "SEW w/16"
kwargs = { width = 0.0625, input_size = "cifar" }

[[models]]
name = "toy_models:tiny_snn"
label = "tiny"
"""


@pytest.fixture(autouse=True)
def quick_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(estimate, "BENCH_S", 0.003)
    monkeypatch.setattr(estimate, "_SPEEDS", {})


# ---------------------------------------------------------------- counted work


def test_count_work_matches_a_hand_count():
    """Conv 1->4 3x3 on 8x8 (pad 1): 4*8*8 outputs x 9 MACs; Linear 256->10: 10 x 256; IF counted as a neuron."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), neuron.IFNode(), nn.Flatten(),
                          nn.Linear(256, 10))
    with torch.device("meta"):
        work = count_work(model.to("meta"), torch.zeros(2, 1, 8, 8))
    assert work.macs == 2 * (4 * 8 * 8 * 9 + 10 * 256)
    assert work.calls == 4 and work.neuron_calls == 1  # the IF node's surrogate child does not hide it
    assert work.bytes == 3 * 4 * 2 * (4 * 256 + 10)  # conv, bn, IF, flatten: 256 each; linear: 10 (x 3, float32)


def test_count_work_of_spiking_resnet18_is_torchvisions_resnet18():
    """Spiking ResNet-18 has ResNet-18's convolutions: 1.814 GMACs at 224 px (torchvision lists 1.81 GFLOPS)."""
    import torchvision

    work = model_work("spiking_resnet18", {"num_classes": 1000, "in_channels": 3}, (3, 224, 224))
    assert isinstance(work, Work)
    with torch.device("meta"):
        reference = count_work(torchvision.models.resnet18(), torch.zeros(1, 3, 224, 224))
    assert work.macs == reference.macs
    assert work.macs == pytest.approx(1.81e9, rel=0.005)


@pytest.mark.parametrize("name", ["sew_resnet18", "ms_resnet18"])
def test_count_work_macs_equal_fvcore_on_a_real_forward(name):
    """fvcore counts one "flop" per MAC of conv and linear; on a real CPU forward at T=1, B=1 its conv and linear
    modules sum to the meta-device count."""
    from fvcore.nn import FlopCountAnalysis
    from spikingjelly.activation_based import functional

    from bench.models import create_model

    kwargs = {"width": 0.125, "input_size": "cifar", "num_classes": 10}
    work = model_work(name, kwargs, (3, 32, 32))
    assert isinstance(work, Work)
    model = create_model(name, **kwargs).eval()
    functional.reset_net(model)
    flops = FlopCountAnalysis(model, torch.rand(1, 1, 3, 32, 32))
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    by_module = flops.by_module()
    dense = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert work.macs == sum(by_module[n] for n in dense) > 0


def test_a_model_the_meta_device_cannot_run_says_why(monkeypatch):
    monkeypatch.setattr(estimate, "_WORK", {})
    why = model_work("sew_resnet18", {"width": 0.0625, "input_size": "cifar"}, (1, 8, 8, 8))  # one dimension too many
    assert isinstance(why, str) and why.startswith("its meta-device forward failed")


def test_forward_seconds_by_hand():
    work = Work(macs=1000, bytes=400, calls=5, neuron_calls=2)
    cpu = Speed("cpu", macs_per_s=1e6, bytes_per_s=1e5, dispatch_s=1e-5)
    # T*B*(1000/1e6 + 400/1e5) + (5 + 2 neurons x T=3 steps x 4 ops) x 1e-5
    assert work.forward_s(cpu, 3, 2) == pytest.approx(6 * (1e-3 + 4e-3) + (5 + 2 * 3 * 4) * 1e-5)
    gpu = replace(cpu, device="cuda:0")
    assert work.forward_s(gpu, 3, 2) == pytest.approx(6 * 5e-3 + 7 * 1e-5)  # fused neurons: one call each


def test_measure_speed_gives_positive_finite_speeds():
    speed = estimate.measure_speed("cpu")
    assert all(math.isfinite(v) and v > 0 for v in (speed.macs_per_s, speed.bytes_per_s, speed.dispatch_s))
    assert estimate.measure_speed("cpu") is speed  # measured once per process
    from bench.devices import describe_device

    assert estimate.device_model("cpu") == describe_device("cpu")["device_name"]  # what records name


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_speed_and_device_model():
    """On CUDA: synchronised timings give finite speeds, and the device model is what records name."""
    from bench.devices import describe_device

    speed = estimate.measure_speed("cuda:0")
    assert all(math.isfinite(v) and v > 0 for v in (speed.macs_per_s, speed.bytes_per_s, speed.dispatch_s))
    assert speed.macs_per_s > estimate.measure_speed("cpu").macs_per_s
    assert estimate.device_model("cuda:0") == describe_device("cuda:0")["device_name"]


# ---------------------------------------------------------------- what each metric costs


def work(metrics=("accuracy",), options=None, device="cpu", T=2, forward=0.01, **kw) -> CaseWork:
    case = Case(ModelSpec("m", "m"), T, device, 8)
    fields = {"batches": 3, "labelled": True, "accuracy_T": T, "first_on_device": True} | kw
    return CaseWork(case, options or {}, tuple(metrics), lambda t: forward * t, **fields)


class _DeclaredCosts:
    """``COST[metric](work)``: the cost each plug-in declares with register_metric(cost=...)."""

    def __getitem__(self, metric: str):
        return get_metric(metric).contract.cost


COST = _DeclaredCosts()


def test_every_metric_plug_in_declares_a_cost():
    assert [m for m in available_metrics() if get_metric(m).contract.cost is None] == []


def test_a_metric_without_a_declared_cost_is_not_estimated(suite, tmp_path, monkeypatch):
    contract = get_metric("params").contract
    monkeypatch.setattr(get_metric("params"), "contract", replace(contract, cost=None))
    sew = [c for c in expand_cases(suite)[0] if c.model.label == "SEW w/16"][:1]
    result = estimate_cases(planned(replace(suite, metrics=("params",)), sew), reports_root=tmp_path)
    assert result.cases[0].basis == "none" and "'params' declares no cost" in result.cases[0].detail


def test_accuracy_cost():
    assert COST["accuracy"](work(T=2)) == pytest.approx(3 * 0.02)  # 3 batches at T=2
    assert COST["accuracy"](work(T=1, accuracy_T=4)) == pytest.approx(3 * 0.04)  # one pass at the largest T
    assert COST["accuracy"](work(accuracy_T=None)) == 0  # an earlier case of the model made the pass
    assert COST["accuracy"](work(labelled=False)) == 0  # synthetic labels: accuracy is not measured
    with pytest.raises(NotEstimated, match="data.max_samples"):
        COST["accuracy"](work(batches=None))


def test_latency_cost():
    # defaults: 3 warm-up runs, at least 10 runs and 1 s: 100 runs of 0.01 s
    assert COST["latency"](work(T=1)) == pytest.approx((3 + 100) * 0.01)
    capped = {"latency": {"max_runs": 20, "warmup": 1}}
    assert COST["latency"](work(T=1, options=capped)) == pytest.approx((1 + 20) * 0.01)
    slow = {"latency": {"min_time_s": 0.0, "compile": True}}
    assert COST["latency"](work(T=1, options=slow)) == pytest.approx(2 * (3 + 10) * 0.01)


def test_memory_and_probe_costs():
    assert COST["memory"](work(T=1)) == pytest.approx((1 + 3) * 0.01)  # warm-up + 3 repeats
    assert COST["memory"](work(T=1, device="cuda:0")) == pytest.approx((1 + 1 + 3) * 0.01)
    metrics = ("params", "ops", "firing", "energy")
    assert [COST[m](work(metrics, T=1)) for m in metrics] == [0, 0.01, 0, 0]  # one shared probed pass


def test_measured_energy_cost(monkeypatch):
    import bench.metrics.measured_energy as me

    monkeypatch.setattr(me, "rapl_readable", lambda: False)
    assert COST["measured_energy"](work(T=1)) == 0  # CPU without RAPL: no window runs
    # GPU: 5 s idle (first case), 3 warm-up forwards, a window of max(1 s, 10 batches)
    assert COST["measured_energy"](work(T=1, device="cuda:0")) == pytest.approx(5 + 3 * 0.01 + 1)
    later = work(T=1, device="cuda:0", first_on_device=False, options={"measured_energy": {"min_batches": 500}})
    assert COST["measured_energy"](later) == pytest.approx(3 * 0.01 + 5)
    carbon = {"measured_energy": {"codecarbon": True, "codecarbon_window_s": 2.0}}
    monkeypatch.setattr(me, "rapl_readable", lambda: True)  # the plug-in asks the machine itself
    assert COST["measured_energy"](work(T=1, options=carbon, first_on_device=False)) == \
        pytest.approx(2 + 3 * 0.01 + 1)


# ---------------------------------------------------------------- the estimate: past runs, rough, none


def planned(suite: Suite, cases: list[Case]) -> CasePlan:
    """A plan of exactly these cases (nothing done, no training) in a folder no test reads."""
    return CasePlan(suite, Path("not-read"), tuple(cases))


@pytest.fixture
def suite(write_suite):
    return load_suite(write_suite(SUITE))


@pytest.fixture(scope="module")
def past_run(tmp_path_factory) -> Path:
    """A tiny real run of SUITE (made once for this module)."""
    root = tmp_path_factory.mktemp("past")
    (root / "suite.toml").write_text(SUITE, encoding="utf-8")
    run_suite(plan_cases(load_suite(root / "suite.toml"), root / "run"), show_progress=False)
    return root / "run"


def test_no_past_run_gives_rough_lower_bounds_and_says_so(suite, tmp_path):
    cases = expand_cases(suite)[0]
    result = estimate_cases(planned(suite, cases), reports_root=tmp_path / "reports")
    by_label = {c.case.case_id: c for c in result.cases}
    sew = by_label["SEW w/16|T=1|cpu|bs=8"]
    assert sew.basis == "rough" and sew.detail == "rough lower bound: no past run" and sew.seconds > 0
    assert by_label["tiny|T=1|cpu|bs=8"].basis == "none"
    assert "a user model" in by_label["tiny|T=1|cpu|bs=8"].detail
    assert result.summary().startswith("estimate: at least ")
    line = result.summary()
    assert "2 rough lower bounds (no past run: counted compute" in line and "2 not estimated (a user model" in line
    assert "(s)" not in line.partition("case(s)")[2], "one readable line: no 'bound(s)'"
    assert [s.device for s in result.speeds] == ["cpu"]


def test_rough_accuracy_pass_is_counted_once_per_model(suite, tmp_path):
    """A causal model's accuracy is one pass at the largest T, made by its first case (unless isolated)."""
    sew = [c for c in expand_cases(suite)[0] if c.model.label == "SEW w/16"]
    plain = estimate_cases(planned(replace(suite, metrics=("params",)), sew), reports_root=tmp_path)
    with_acc = estimate_cases(planned(suite, sew), reports_root=tmp_path)
    extra = [a.seconds - p.seconds for a, p in zip(with_acc.cases, plain.cases, strict=True)]
    assert extra[0] > 0 and extra[1] == pytest.approx(0, abs=1e-12)
    isolated = estimate_cases(planned(suite, sew), reports_root=tmp_path, isolate=True)
    assert isolated.cases[1].seconds - plain.cases[1].seconds == pytest.approx(extra[0])


def test_past_runs_under_the_reports_folder_give_the_estimate(suite, past_run, tmp_path):
    reports = tmp_path / "reports"
    shutil.copytree(past_run, reports / "est" / "run-1")
    recorded = {r["case_id"]: r["duration_s"] for r in read_records(past_run / "results.jsonl")}
    result = estimate_cases(planned(suite, expand_cases(suite)[0]), reports_root=reports, measure=False)
    assert {c.case.case_id: c.seconds for c in result.cases} == recorded
    assert all(c.detail == "median of 1 past run(s) (same configuration)" for c in result.cases)
    assert result.summary() == f"estimate: about {duration(sum(recorded.values()))} for 4 case(s): 4 from past runs"


def test_past_runs_listed_by_the_history_store_give_the_estimate(suite, past_run, tmp_path):
    elsewhere = shutil.copytree(past_run, tmp_path / "anywhere" / "r")
    db = tmp_path / "history.sqlite"
    append_run(elsewhere, db)
    result = estimate_cases(planned(suite, expand_cases(suite)[0]), reports_root=tmp_path / "reports", db=db, measure=False)
    assert all(c.basis == "past runs" for c in result.cases)
    missing = estimate_cases(planned(suite, expand_cases(suite)[0]), reports_root=tmp_path / "reports", db=tmp_path / "no.db",
                             measure=False)
    assert all(c.basis == "none" for c in missing.cases) and not (tmp_path / "no.db").exists()


def test_the_median_of_the_newest_runs_is_taken(suite, past_run, tmp_path):
    reports = tmp_path / "reports" / "est"
    for i, seconds in enumerate([1.0, 2.0, 9.0]):
        folder = shutil.copytree(past_run, reports / f"run-{i}")
        lines = [json.loads(x) | {"duration_s": seconds} for x in (folder / "results.jsonl").read_text().splitlines()]
        (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    result = estimate_cases(planned(suite, expand_cases(suite)[0]), reports_root=tmp_path / "reports", measure=False)
    assert {c.seconds for c in result.cases} == {2.0}
    assert all(c.detail.startswith("median of 3 past run(s)") for c in result.cases)


def test_records_of_another_device_model_or_failed_are_not_used(suite, past_run, tmp_path):
    folder = shutil.copytree(past_run, tmp_path / "reports" / "est" / "r")
    records = [json.loads(x) for x in (folder / "results.jsonl").read_text().splitlines()]
    records[0]["device_info"]["device_name"] = "Another CPU"
    records[1]["status"] = "failed"
    records[2]["world_size"] = 2
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    result = estimate_cases(planned(suite, expand_cases(suite)[0]), reports_root=tmp_path / "reports", measure=False)
    assert [c.basis for c in result.cases] == ["none", "none", "none", "past runs"]


def test_the_same_case_under_other_settings_is_used_and_said(suite, past_run, tmp_path):
    """A [train] suite's checkpoint is another file in every run (its config_key differs): the same label, name,
    T, device model, batch size and metrics still give an estimate, marked as such."""
    folder = shutil.copytree(past_run, tmp_path / "reports" / "est" / "r")
    records = [json.loads(x) | {"config_key": "other"} for x in (folder / "results.jsonl").read_text().splitlines()]
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    result = estimate_cases(planned(suite, expand_cases(suite)[0]), reports_root=tmp_path / "reports", measure=False)
    assert all(c.detail.endswith("(same model, T, batch and metrics; other settings)") for c in result.cases)
    fewer = estimate_cases(planned(replace(suite, metrics=("params",)), expand_cases(suite)[0]),
                           reports_root=tmp_path / "reports", measure=False)
    assert all(c.basis == "none" for c in fewer.cases)  # other metrics: another amount of work


def test_summary_and_durations():
    assert Estimate([]).total_s == 0
    assert [duration(s) for s in (0.5, 42, 200, 7300)] == ["0.5 s", "42 s", "3 min 20 s", "2 h 01 min"]
