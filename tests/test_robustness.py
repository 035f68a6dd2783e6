"""Fault isolation, durability and resume: a failing case never takes the run or its records down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cli import main
from bench.results import read_records

TESTS = Path(__file__).parent

BASE = """
[suite]
name = "robust"
time_steps = [1]
metrics = ["accuracy", "params"]
{suite_extra}

[data]
dataset = "digits"
max_samples = 8
batch_size = 8
"""

GOOD = '\n[[models]]\nname = "toy_models:tiny_snn"\nlabel = "{label}"\n'


def model(name: str, label: str, kwargs: str = "") -> str:
    extra = f"kwargs = {{ {kwargs} }}\n" if kwargs else ""
    return f'\n[[models]]\nname = "toy_models:{name}"\nlabel = "{label}"\n{extra}'


def statuses(run_dir: Path) -> dict[str, str]:
    return {r["model"]["label"]: r["status"] for r in read_records(run_dir / "results.jsonl")}


def errors(run_dir: Path) -> dict[str, dict]:
    return {r["model"]["label"]: r["error"] for r in read_records(run_dir / "results.jsonl") if r["error"]}


def test_simulated_cuda_oom_is_recorded_and_the_run_goes_on(write_suite, tmp_path):
    text = BASE.format(suite_extra="") + model("cuda_oom_model", "oom") + GOOD.format(label="after")
    assert main(["run", str(write_suite(text)), "--out", str(tmp_path / "r"), "-q"]) == 1
    assert statuses(tmp_path / "r") == {"oom": "failed", "after": "ok"}
    assert errors(tmp_path / "r")["oom"]["type"] == "OutOfMemoryError"


def test_case_time_limit(write_suite, tmp_path):
    text = (BASE.format(suite_extra="case_timeout_s = 1") + model("sleepy_model", "slow", "seconds = 30.0")
            + GOOD.format(label="after"))
    started = time.monotonic()
    assert main(["run", str(write_suite(text)), "--out", str(tmp_path / "r"), "-q"]) == 1
    assert time.monotonic() - started < 25, "the sleeping case must be cut off, not waited for"
    assert statuses(tmp_path / "r") == {"slow": "failed", "after": "ok"}
    assert errors(tmp_path / "r")["slow"]["type"] == "CaseTimeoutError"


@pytest.mark.slow
def test_isolated_crash_memory_cap_and_hang_are_recorded(write_suite, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    text = (BASE.format(suite_extra="case_timeout_s = 60\nmemory_limit_gib = 1")
            + model("crashing_model", "segfault") + model("memory_hog_model", "hog") + GOOD.format(label="after"))
    assert main(["run", str(write_suite(text)), "--out", str(tmp_path / "r"), "-q", "--isolate"]) == 1
    assert statuses(tmp_path / "r") == {"segfault": "failed", "hog": "failed", "after": "ok"}
    errs = errors(tmp_path / "r")
    assert errs["segfault"]["type"] == "ProcessDied" and "SIGSEGV" in errs["segfault"]["message"]
    assert "alloc" in errs["hog"]["message"].lower() or errs["hog"]["type"] == "MemoryError"
    assert not list((tmp_path / "r").glob("case-*.json")), "temporary case files are cleaned up"


def _bench(*args: str, cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, "-m", "bench.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_records(path: Path, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} did not reach {n} records")


SLOW_SUITE = BASE.format(suite_extra="").replace("time_steps = [1]", "time_steps = [1, 2, 3, 4]") + model(
    "sleepy_model", "slow", "seconds = 0.7")


@pytest.mark.slow
def test_sigkill_then_resume_loses_and_duplicates_nothing(write_suite, tmp_path):
    suite, run_dir = write_suite(SLOW_SUITE), tmp_path / "r"
    proc = _bench("run", str(suite), "--out", str(run_dir), "-q", cwd=tmp_path)
    _wait_for_records(run_dir / "results.jsonl", 1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    assert 1 <= len(lines) < 4
    for line in lines:
        json.loads(line)  # every line is complete
    done_before = [json.loads(line)["T"] for line in lines]
    proc = _bench("run", str(suite), "--resume", str(run_dir), "-q", cwd=tmp_path)
    assert proc.wait(120) == 0, proc.stderr.read().decode()
    records = read_records(run_dir / "results.jsonl")
    assert sorted(r["T"] for r in records) == [1, 2, 3, 4], "no case lost, none duplicated"
    assert [r["T"] for r in records][: len(done_before)] == done_before, "earlier records untouched"


@pytest.mark.slow
def test_sigint_stops_cleanly_with_a_partial_report(write_suite, tmp_path):
    suite, run_dir = write_suite(SLOW_SUITE), tmp_path / "r"
    proc = _bench("run", str(suite), "--out", str(run_dir), "-q", cwd=tmp_path)
    _wait_for_records(run_dir / "results.jsonl", 1)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 130
    records = read_records(run_dir / "results.jsonl")
    assert 1 <= len(records) < 4 and all(r["status"] == "ok" for r in records)
    assert (run_dir / "report.md").exists() and (run_dir / "results.csv").exists()


def test_missing_checkpoint_is_bad_input(write_suite, tmp_path, tiny_suite_text, capsys):
    text = tiny_suite_text + 'checkpoint = "nope.pt"\n'
    assert main(["run", str(write_suite(text)), "--out", str(tmp_path / "r"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "models[0].checkpoint" in err and "nope.pt" in err


def test_corrupt_checkpoint_fails_its_case_and_keeps_the_others(write_suite, tmp_path):
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    text = (BASE.format(suite_extra="") + GOOD.format(label="first")
            + '\n[[models]]\nname = "toy_models:tiny_snn"\nlabel = "corrupt"\ncheckpoint = "broken.pt"\n'
            + GOOD.format(label="last"))
    assert main(["run", str(write_suite(text)), "--out", str(tmp_path / "r"), "-q"]) == 1
    assert statuses(tmp_path / "r") == {"first": "ok", "corrupt": "failed", "last": "ok"}
    error = errors(tmp_path / "r")["corrupt"]
    assert error["type"] == "CheckpointError" and "broken.pt" in error["message"]
