"""``data.num_workers`` (and ``[train] num_workers``) against the CPUs of the machine that runs the suite: a suite
loads whatever the machine reading it (it may be written for a larger one), and a run or dry run on this
machine refuses more workers than its usable CPUs (exit 2, naming the file, the field, the count and the fix)
before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

import bench.devices
import bench.estimate as estimate
from bench.cli import main
from bench.suite import MAX_NUM_WORKERS, SuiteError, load_suite, workers_problem

SUITE = """
[suite]
name = "workers"
time_steps = [1]
metrics = ["params"]

[data]
dataset = "digits"
max_samples = 16
batch_size = 8
num_workers = {workers}

[[models]]
name = "sew_resnet18"
kwargs = {{ width = 0.0625, input_size = "cifar" }}
"""

TRAIN = """
[train]
epochs = 1
num_workers = {workers}
"""


@pytest.fixture(autouse=True)
def two_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine has 2 usable CPUs (whatever runs the tests), and speed measurements are brief."""
    monkeypatch.setattr(bench.devices, "usable_cpus", lambda: 2)
    monkeypatch.setattr(estimate, "BENCH_S", 0.003)
    monkeypatch.setattr(estimate, "_SPEEDS", {})


def test_a_suite_for_a_larger_machine_loads():
    """Loading (for a dry run elsewhere, reading its settings) is not where the CPU count is known."""
    assert workers_problem("s.toml", "data.num_workers", 2) is None
    problem = workers_problem("s.toml", "data.num_workers", 3)
    assert isinstance(problem, SuiteError)
    assert str(problem) == ("s.toml: data.num_workers: 3 DataLoader workers, more than the 2 CPU(s) this process "
                            "may use on this machine\n  fix: set data.num_workers to at most 2 (0 loads in the main "
                            "process), or run the suite on a machine with more CPUs")


def test_load_accepts_more_workers_than_cpus_within_the_sanity_range(write_suite):
    assert load_suite(write_suite(SUITE.format(workers=100))).data.num_workers == 100
    with pytest.raises(SuiteError, match=rf"data.num_workers: {MAX_NUM_WORKERS + 1} is out of range"):
        load_suite(write_suite(SUITE.format(workers=MAX_NUM_WORKERS + 1)))


def test_unknown_cpu_count_is_not_checked(monkeypatch):
    monkeypatch.setattr(bench.devices, "usable_cpus", lambda: None)
    assert workers_problem("s.toml", "data.num_workers", 64) is None


@pytest.mark.parametrize("dry", [True, False])
def test_run_refuses_more_workers_than_cpus(write_suite, tmp_path: Path, capsys, dry):
    path = write_suite(SUITE.format(workers=3))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), *(["--dry-run"] if dry else [])]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{path}: data.num_workers: 3 DataLoader workers, more than the 2 CPU(s)" in err
    assert "fix: set data.num_workers to at most 2" in err
    assert not out.exists()  # refused before anything ran or was written


def test_dry_run_takes_as_many_workers_as_cpus(write_suite):
    assert main(["run", str(write_suite(SUITE.format(workers=2))), "--dry-run"]) == 0


def test_train_workers_are_checked_too(write_suite, tmp_path: Path, capsys):
    path = write_suite(SUITE.format(workers=0) + TRAIN.format(workers=5))
    assert main(["train", str(path), "--out", str(tmp_path / "out")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{path}: train.num_workers: 5 DataLoader workers, more than the 2 CPU(s)" in err
    assert not (tmp_path / "out").exists()
