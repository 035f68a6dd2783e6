"""Same seed, input and device: every metric registered as deterministic repeats bit for bit."""

from __future__ import annotations

from bench.metrics import available_metrics, get_metric
from bench.plan import plan_cases
from bench.results import read_records
from bench.runner import run_suite
from bench.suite import load_suite

SUITE = """
[suite]
name = "determinism"
seed = 3
time_steps = [2, 4]
metrics = [{metrics}]

[data]
dataset = "digits"
image_size = 16
max_samples = 24
batch_size = 12

[[models]]
name = "sew_resnet18"
kwargs = {{ width = 0.125, input_size = "cifar", neuron_params = {{ v_threshold = 0.2 }} }}
"""


def test_deterministic_metrics_repeat_exactly(write_suite, tmp_path):
    names = [m for m in available_metrics() if get_metric(m).deterministic]
    assert {"accuracy", "params"} <= set(names)
    suite = load_suite(write_suite(SUITE.format(metrics=", ".join(f'"{m}"' for m in names))))
    first = run_suite(plan_cases(suite, tmp_path / "a"), show_progress=False).records
    second = run_suite(plan_cases(suite, tmp_path / "b"), show_progress=False).records
    assert all(r["status"] == "ok" for r in first + second), [r["error"] for r in first + second]
    assert [r["metrics"] for r in first] == [r["metrics"] for r in second]
    assert read_records(tmp_path / "a" / "results.jsonl")[0]["metrics"] == first[0]["metrics"]
