"""GPU runs at the runner level (``@pytest.mark.gpu``, skipped without CUDA), and what of them runs on a CPU.

On CUDA: one tiny model of every family (the CPU-smoke variants of scripts/gpu_check.py) through the runner
with firing, ops, energy, latency, memory and measured_energy on the CPU and on the GPU: every case ok, the
GPU's figures sane, op counts and firing rates of the GPU run equal to the CPU run's; a real CUDA
out-of-memory error recorded as a failed case while the next case runs; Zeus's counter against the builtin
one on the same board. Everywhere: a GPU index the machine does not have is skipped with a note, and
scripts/gpu_check.py runs end to end in its CPU mode.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from bench.cli import main
from bench.plan import plan_cases
from bench.results import read_records
from bench.runner import run_suite
from bench.suite import load_suite

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gpu_check.py"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def gpu_check_module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def family_suite(devices: str, batch: str = "[2]") -> str:
    """The CPU-smoke suite of every family on ``devices``, with short measured-energy settings."""
    text = gpu_check_module().SMOKE_SUITE
    return (text.replace('devices = ["cpu"]', f"devices = {devices}")
            .replace("batch_size = [1, 2]", f"batch_size = {batch}")
            .replace("idle_s = 0.5", "idle_s = 5.0").replace("idle_min_s = 0.0", "idle_min_s = 1.0")
            .replace("idle_block_s = 0.1", "idle_block_s = 0.25").replace("max_window_s = 0.2", "max_window_s = 1.0"))


@pytest.mark.gpu
@needs_cuda
def test_every_family_on_cuda_matches_the_cpu_run(write_suite, tmp_path):
    outcome = run_suite(plan_cases(load_suite(write_suite(family_suite('["cpu", "cuda:0"]'))), tmp_path / "r"),
                        show_progress=False)
    assert outcome.records and all(r["status"] == "ok" for r in outcome.records), \
        [r["error"] for r in outcome.records if r["status"] != "ok"]
    by = {(r["model"]["label"], r["device"]): r["metrics"] for r in outcome.records}
    labels = {label for label, _ in by}
    assert len(labels) == 6
    for label in labels:
        cpu, gpu = by[(label, "cpu")], by[(label, "cuda:0")]
        assert gpu["latency"]["latency_p50_ms"] > 0 and "CUDA events" in gpu["latency"]["timer"]
        assert gpu["memory"]["gpu_peak_allocated_mib"] > 0
        # Structural counts are exact; spike-driven counts may differ only where float reduction order flips
        # a membrane sitting on the threshold (none expected at this size; 0.1% allowed).
        for name in ("dense_macs", "neuron_updates"):
            assert gpu["ops"][name] == cpu["ops"][name], (label, name)
        for name in ("acs", "macs", "sops"):
            assert gpu["ops"][name] == pytest.approx(cpu["ops"][name], rel=1e-3, abs=1), (label, name)
        assert gpu["firing"]["mean_rate"] == pytest.approx(cpu["firing"]["mean_rate"], rel=1e-3, abs=1e-6)
        assert gpu["energy"]["energy_mj"] == pytest.approx(cpu["energy"]["energy_mj"], rel=1e-3)
        me = gpu["measured_energy"]
        if me["gpu_energy_j_per_sample"] is None:  # MIG slice or a board without the counter: said why
            assert "NVML" in me["gpu_energy_j_per_sample_why"]
        else:
            assert me["gpu_energy_j_per_sample"] > 0 and me["gpu_rest_idle_power_w"] > 0
            assert me["gpu_energy_backend"].startswith(("zeus", "builtin"))
            assert me["gpu_energy_net_j_per_sample"] is None or \
                0 < me["gpu_energy_net_j_per_sample"] < me["gpu_energy_j_per_sample"]
    reused = [by[(label, "cuda:0")]["measured_energy"].get("gpu_rest_idle_reused") for label in labels]
    if None not in reused:
        assert reused.count(False) == 1, "rest idle is measured once per GPU and process"


class _CudaHog(nn.Module):
    """Asks the input's device for a petabyte: a real allocator failure, not a raised stand-in."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.empty(2**50, device=x.device)


def cuda_hog_model(num_classes: int = 10) -> nn.Module:
    return _CudaHog()


HOG_SUITE = """
[suite]
name = "oom"
time_steps = [1]
devices = ["cuda:0"]
metrics = ["latency"]

[data]
dataset = "synthetic"
image_size = 8
fallback_samples = 2
batch_size = 2

[metrics.latency]
min_runs = 1
min_time_s = 0.0

[[models]]
name = "test_gpu:cuda_hog_model"
label = "hog"

[[models]]
name = "toy_models:tiny_snn"
label = "after"
kwargs = { in_channels = 3 }
"""


@pytest.mark.gpu
@needs_cuda
def test_real_cuda_oom_fails_its_case_and_the_next_runs(write_suite, tmp_path):
    assert main(["run", str(write_suite(HOG_SUITE)), "--out", str(tmp_path / "r"), "-q"]) == 1
    records = {r["model"]["label"]: r for r in read_records(tmp_path / "r" / "results.jsonl")}
    assert records["hog"]["status"] == "failed" and records["hog"]["error"]["type"] == "OutOfMemoryError"
    assert records["after"]["status"] == "ok"
    assert torch.cuda.memory_allocated(0) < 2**30, "the failed case's memory was released"


@pytest.mark.gpu
@needs_cuda
def test_zeus_and_builtin_read_the_same_board():
    pytest.importorskip("zeus")
    import bench.metrics.measured_energy as me

    zeus, _, why = me.gpu_counter(torch.device("cuda:0"), "zeus")
    builtin, _, _ = me.gpu_counter(torch.device("cuda:0"), "builtin")
    if zeus is None:
        pytest.skip(f"Zeus cannot measure this GPU: {why}")
    assert zeus.key == builtin.key and zeus.backend.startswith("zeus")
    x = torch.randn(4096, 4096, device="cuda:0")
    zeus.begin_window()
    builtin.begin_window()
    for _ in range(200):
        x = torch.tanh(x @ x)
    torch.cuda.synchronize()
    a, b = zeus.end_window(), builtin.end_window()
    assert a > 0 and b == pytest.approx(a, rel=0.05, abs=0.5)  # same counter, read a few microseconds apart


def test_absent_gpu_index_is_skipped_with_a_note(write_suite, tmp_path):
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    text = family_suite(f'["cpu", "cuda:{n}"]').split("[[models]]")
    suite = load_suite(write_suite(text[0] + "[[models]]" + text[1]))  # one model is enough
    outcome = run_suite(plan_cases(suite, tmp_path / "r"), show_progress=False)
    assert f"cuda:{n} skipped: {n} CUDA device(s) visible" in outcome.notes
    assert {r["device"] for r in outcome.records} == {"cpu"} and all(r["status"] == "ok" for r in outcome.records)
    assert f"cuda:{n} skipped" in " ".join(json.loads((tmp_path / "r" / "run.json").read_text())["notes"])


@pytest.mark.slow
def test_gpu_check_script_runs_in_cpu_mode(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OUT=str(tmp_path / "out"))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--cpu-smoke", "--site", str(tmp_path / "site")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert summary["failures"] == []
    assert summary["device"]["mode"] == "cpu-smoke"
    steps = summary["steps"]
    assert {"wheels", "device", "pytest -m gpu", "suite run", "every case ok", "metrics_overhead"} <= set(steps)
    assert steps["suite run"]["cases"] == 12  # 6 families x batch 1 and 2
    assert {row["model"].split(" (")[0] for row in summary["figures"]} == {
        "Spiking ResNet-18", "SEW ResNet-18", "MS-ResNet-18", "DANet-A-50", "Spikeformer", "DSR PreAct-ResNet-18"}
    assert all(row["p50_ms_small"] > 0 and row["estimated_mj"] > 0 for row in summary["figures"])
    assert steps["metrics_overhead"]["ratios"]["sew_resnet18"]["time_ratio"] > 0
    assert sorted(p.name for p in (tmp_path / "out" / "suite").iterdir()) == sorted(gpu_check_module().KEPT)
    assert "GPU CHECK PASSED" in proc.stdout
