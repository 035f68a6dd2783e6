"""End to end through the runner: records, files, failure isolation, exit codes."""

from __future__ import annotations

import csv
import json

import pytest

from bench.cli import main
from bench.results import read_records
from bench.suite import load_suite

FAILING_MODELS = """
[[models]]
name = "toy_models:raising_model"
label = "raises"

[[models]]
name = "toy_models:nan_model"
label = "nan"

[[models]]
name = "toy_models:not_a_module"
label = "not-a-module"
"""


@pytest.fixture
def run_dir(tmp_path):
    return tmp_path / "run"


def test_run_writes_every_file(write_suite, tiny_suite_text, run_dir):
    code = main(["run", str(write_suite(tiny_suite_text)), "--out", str(run_dir), "-q"])
    assert code == 0
    for name in ("results.jsonl", "results.csv", "env.json", "run.json", "report.md", "report.html"):
        assert (run_dir / name).is_file(), name
    records = read_records(run_dir / "results.jsonl")
    assert [(r["model"]["label"], r["T"], r["status"]) for r in records] == [("tiny", 1, "ok"), ("tiny", 2, "ok")]
    acc = records[0]["metrics"]["accuracy"]
    assert acc["n_samples"] == 40
    assert 0.0 <= acc["top1"] <= 100.0 and acc["top1"] <= acc["top5"]
    # tiny_snn: 64*16+16 + 16*10+10 parameters
    assert records[0]["metrics"]["params"]["params"] == 64 * 16 + 16 + 16 * 10 + 10
    with open(run_dir / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and rows[1]["accuracy.top1"] == str(records[1]["metrics"]["accuracy"]["top1"])
    env = json.loads((run_dir / "env.json").read_text())
    assert env["packages"]["torch"] and env["packages"]["spikingjelly"] and env["seed"] == 0
    assert "cpu" in env and "python" in env


def test_failing_cases_are_recorded_and_the_rest_run(write_suite, tiny_suite_text, run_dir):
    code = main(["run", str(write_suite(tiny_suite_text + FAILING_MODELS)), "--out", str(run_dir), "-q"])
    assert code == 1, "a failed case makes the exit code non-zero"
    records = read_records(run_dir / "results.jsonl")
    status = {(r["model"]["label"], r["T"]): r["status"] for r in records}
    assert status == {("tiny", 1): "ok", ("tiny", 2): "ok", ("raises", 1): "failed", ("raises", 2): "failed",
                      ("nan", 1): "failed", ("nan", 2): "failed", ("not-a-module", 1): "failed",
                      ("not-a-module", 2): "failed"}
    errors = {r["model"]["label"]: r["error"] for r in records if r["status"] == "failed"}
    assert "deliberate failure" in errors["raises"]["message"]
    assert errors["nan"]["type"] == "NonFiniteOutputError"
    assert "not an nn.Module" in errors["not-a-module"]["message"]
    assert "Failures" in (run_dir / "report.md").read_text()


def test_synthetic_fallback_is_announced_first(write_suite, run_dir, monkeypatch):
    monkeypatch.delenv("SNNBENCH_NO_SUCH_ROOT", raising=False)
    text = """
    [suite]
    name = "fallback"
    time_steps = [1]
    metrics = ["accuracy", "params"]
    [data]
    dataset = "imagenet"
    root = "${SNNBENCH_NO_SUCH_ROOT}"
    on_missing = "synthetic"
    fallback_samples = 3
    image_size = 8
    batch_size = 4
    [[models]]
    name = "toy_models:tiny_snn"
    kwargs = { in_channels = 3 }
    """
    assert main(["run", str(write_suite(text)), "--out", str(run_dir), "-q"]) == 0
    record = read_records(run_dir / "results.jsonl")[0]
    assert record["metrics"]["accuracy"]["top1"] is None
    assert "synthetic" in record["metrics"]["accuracy"]["top1_why"]
    report = (run_dir / "report.md").read_text().splitlines()
    first_lines = "\n".join(report[:5])
    assert "accuracy was not measured" in first_lines and "SNNBENCH_NO_SUCH_ROOT" in first_lines
    assert "3 samples" in first_lines, "the fallback uses data.fallback_samples samples"


def test_missing_root_without_fallback_is_bad_input(write_suite, tiny_suite_text, run_dir, capsys):
    text = tiny_suite_text.replace('dataset = "digits"', 'dataset = "imagenet"\nroot = "/nonexistent/imagenet"')
    assert main(["run", str(write_suite(text)), "--out", str(run_dir), "-q"]) == 2
    err = capsys.readouterr().err
    assert "/nonexistent/imagenet" in err and "on_missing" in err
    assert not (run_dir / "results.jsonl").exists(), "nothing runs on bad input"


def test_bad_suite_exits_2_naming_file_and_field(write_suite, tiny_suite_text, run_dir, capsys):
    path = write_suite(tiny_suite_text.replace("time_steps = [1, 2]", "time_steps = [0]"))
    assert main(["run", str(path), "--out", str(run_dir), "-q"]) == 2
    err = capsys.readouterr().err
    assert str(path.name) in err and "suite.time_steps[0]" in err


def test_one_pass_accuracy_is_used_for_causal_models_only(write_suite, tiny_suite_text, run_dir):
    suite = load_suite(write_suite(tiny_suite_text))
    from bench.plan import plan_cases
    from bench.runner import run_suite

    outcome = run_suite(plan_cases(suite, run_dir), show_progress=False)
    methods = [r["metrics"]["accuracy"]["method"] for r in outcome.records]
    # user models are not known to be causal: separate passes
    assert all(m.startswith("separate pass") for m in methods)


def test_untrained_models_carry_the_firing_warning(write_suite, tiny_suite_text, run_dir):
    text = tiny_suite_text.replace('metrics = ["accuracy", "params"]', 'metrics = ["firing"]')
    assert main(["run", str(write_suite(text)), "--out", str(run_dir), "-q"]) == 0
    record = read_records(run_dir / "results.jsonl")[0]
    assert record["model"]["untrained"] is True
    assert "not representative" in record["metrics"]["firing"]["untrained_warning"]


def test_a_new_run_never_writes_into_an_earlier_runs_folder(write_suite, tiny_suite_text, run_dir, capsys):
    suite = str(write_suite(tiny_suite_text))
    assert main(["run", suite, "--out", str(run_dir), "-q"]) == 0
    before = (run_dir / "results.jsonl").read_bytes()
    assert main(["run", suite, "--out", str(run_dir), "-q"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert (run_dir / "results.jsonl").read_bytes() == before, "the earlier run's records are untouched"
    assert main(["run", suite, "--resume", str(run_dir.parent / "nothing-here"), "-q"]) == 2
    assert "no run to resume" in capsys.readouterr().err
