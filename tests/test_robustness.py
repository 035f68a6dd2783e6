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


def _children(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return {int(p) for p in f.read().split()}


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"  # a zombie waits only for its reaper
    except FileNotFoundError:
        return True


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_isolating_parent_alone_kills_the_case_and_keeps_the_records(write_suite, tmp_path, sig):
    """SIGINT/SIGTERM sent to the parent only (kill, timeout -s INT, a scheduler): the parent kills the hung
    case's process, records the run as interrupted (exit 130) and keeps what was measured."""
    text = (BASE.format(suite_extra="case_timeout_s = 600") + GOOD.format(label="first")
            + model("sleepy_model", "hangs", "seconds = 600.0") + GOOD.format(label="never"))
    run_dir = tmp_path / "r"
    proc = _bench("run", str(write_suite(text)), "--out", str(run_dir), "-q", "--isolate", cwd=tmp_path)
    _wait_for_records(run_dir / "results.jsonl", 1, timeout=180)
    deadline = time.monotonic() + 120
    while not (children := _children(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # the hanging case's process is up (spawned, importing torch, then sleeping)
    children = _children(proc.pid)
    assert children, "the case runs in a child process"
    os.kill(proc.pid, sig)  # the parent alone, not its process group
    assert proc.wait(60) == 130, proc.stderr.read().decode()
    deadline = time.monotonic() + 10  # multiprocessing's resource tracker leaves once the parent's pipe closes
    while not all(_gone(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(_gone(pid) for pid in children), "no case process outlives the run"
    assert statuses(run_dir) == {"first": "ok"}
    assert (run_dir / "report.md").exists()


NAN_SUITE = """
[suite]
name = "nan"
time_steps = [1, 2]
metrics = [{metrics}]

[data]
dataset = "digits"
max_samples = 8
batch_size = 8
""" + model("nan_model", "nan") + GOOD.format(label="fine")


@pytest.mark.parametrize("metrics", ['"params"', '"firing"', '"params", "ops"'])
def test_nan_outputs_fail_the_case_without_the_accuracy_metric(write_suite, tmp_path, metrics):
    text = NAN_SUITE.format(metrics=metrics)
    assert main(["run", str(write_suite(text)), "--out", str(tmp_path / "r"), "-q"]) == 1
    records = read_records(tmp_path / "r" / "results.jsonl")
    assert [(r["model"]["label"], r["T"], r["status"]) for r in records] == [
        ("nan", 1, "failed"), ("nan", 2, "failed"), ("fine", 1, "ok"), ("fine", 2, "ok")]
    assert {r["error"]["type"] for r in records if r["error"]} == {"NonFiniteOutputError"}


def test_the_output_check_reuses_a_metrics_forward(monkeypatch):
    """One forward per case at most is added, and none when a metric already ran one."""
    import torch
    from toy_models import tiny_snn

    from bench.metrics.base import CaseContext
    from bench.models.registry import model_info
    from bench.runner import OutputWatch

    model = tiny_snn()
    calls = []
    model.register_forward_pre_hook(lambda m, a: calls.append(1))
    x = torch.rand(2, 3, 1, 8, 8)
    ctx = CaseContext(model=model, info=model_info("toy_models:tiny_snn"), T=2, device=torch.device("cpu"),
                      batch_size=3, batches=lambda T: iter([(x, torch.zeros(3))]), num_classes=10)
    watch = OutputWatch(model)
    model(x)  # a metric's forward
    model(x)
    watch.finish(ctx)
    assert len(calls) == 2, "the metric's forward was checked; no extra one"
    watch = OutputWatch(model)
    watch.finish(ctx)
    assert len(calls) == 3, "no metric ran a forward: one on the sample batch"
