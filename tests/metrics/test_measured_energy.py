"""Measured energy: NVML arithmetic on a simulated GPU (fake pynvml + fake clock), RAPL unwrapping on a
fake sysfs, codecarbon method labelling, the plug-in on CPU, and the real NVML path when a GPU is present."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import layer, neuron

import bench.metrics.measured_energy as me
from bench.metrics.base import CaseContext
from bench.models.registry import ModelInfo

INFO = ModelInfo(name="tiny", family="test", paper="", provenance="user model", default_T=2, neuron="if")


class SimulatedGpu:
    """A fake clock and GPU: idle at ``idle_w`` while sleeping, ``busy_w`` during a batch of ``batch_s``.

    The energy counter refreshes every ``period_s`` (its value is the true energy at the last
    refresh), like NVML's; it reads as integer millijoules, power as integer milliwatts.
    """

    def __init__(self, idle_w: float, busy_w: float, batch_s: float, period_s: float):
        self.idle_w, self.busy_w, self.batch_s, self.period_s = idle_w, busy_w, batch_s, period_s
        self.t = 0.0
        self.true_j = 0.0
        self.reported_j = 0.0
        self.power = idle_w

    def _advance(self, dt: float, power: float) -> None:
        end = self.t + dt
        tick = math.floor(end / self.period_s) * self.period_s
        if tick > self.t:  # at least one refresh inside (t, end]: the last one is at ``tick``
            self.reported_j = self.true_j + power * (tick - self.t)
        self.t, self.true_j, self.power = end, self.true_j + power * dt, power

    def clock(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self._advance(dt, self.idle_w)

    def run_batch(self) -> None:
        self._advance(self.batch_s, self.busy_w)

    # pynvml's API, as much of it as the counter uses
    def nvmlDeviceGetTotalEnergyConsumption(self, handle):  # noqa: N802
        assert handle == "h0"
        return round(self.reported_j * 1e3)

    def nvmlDeviceGetPowerUsage(self, handle):  # noqa: N802
        return round(self.idle_w * 1e3)  # only read during the idle phase


SETTINGS = {"idle_s": 0.5, "poll_s": 1 / 128, "min_window_s": 1.0, "min_batches": 8,
            "max_rel_error": 0.02, "max_window_s": 30.0}


def run_sim(gpu: SimulatedGpu, batch_size: int = 4, **overrides) -> dict:
    counter = me.NvmlCounter(gpu, "h0")
    return me.measure_counters(gpu.run_batch, [counter], sync=lambda: None, batch_size=batch_size,
                               settings={**SETTINGS, **overrides}, clock=gpu.clock, sleep=gpu.sleep)


def test_gross_net_and_per_sample_arithmetic():
    # Counter finer than the poll: period estimate = poll (1/128 s), need 2/128/0.02 = 0.78 s < 1 s.
    gpu = SimulatedGpu(idle_w=50.0, busy_w=150.0, batch_s=0.125, period_s=1 / 1024)
    out = run_sim(gpu)
    assert out["energy_batches"] == 8 and out["energy_samples"] == 32
    assert out["energy_window_s"] == pytest.approx(1.0)
    assert out["gpu_energy_j"] == pytest.approx(150.0)  # 150 W x 1 s
    assert out["gpu_energy_j_per_sample"] == pytest.approx(150.0 / 32)
    assert out["gpu_idle_power_w"] == pytest.approx(50.0)
    assert out["gpu_energy_net_j_per_sample"] == pytest.approx((150.0 - 50.0 * 1.0) / 32)
    assert out["gpu_avg_power_w"] == pytest.approx(150.0)
    assert out["gpu_counter_period_s"] == pytest.approx(1 / 128)
    assert out["gpu_energy_rel_error_bound"] == pytest.approx(2 / 128)
    assert "NVML" in out["gpu_energy_method"]


def test_min_batches_binds_when_batches_are_short():
    gpu = SimulatedGpu(idle_w=50.0, busy_w=150.0, batch_s=1.0, period_s=1 / 1024)
    out = run_sim(gpu, min_batches=3)
    assert out["energy_batches"] == 3 and out["energy_window_s"] == pytest.approx(3.0)
    assert out["gpu_energy_net_j_per_sample"] == pytest.approx((450.0 - 150.0) / 12)


def test_coarse_counter_extends_the_window():
    # Refresh every 50 ms and 1% allowed: window >= 2 x 0.05 / 0.01 = 10 s, not the 1 s minimum.
    gpu = SimulatedGpu(idle_w=50.0, busy_w=150.0, batch_s=0.125, period_s=0.05)
    out = run_sim(gpu, max_rel_error=0.01)
    period = out["gpu_counter_period_s"]
    assert period == pytest.approx(0.05, abs=1 / 128)  # polled every 1/128 s
    assert out["energy_required_window_s"] == pytest.approx(2 * period / 0.01)
    assert out["energy_window_s"] >= out["energy_required_window_s"]
    assert out["energy_batches"] == math.ceil(out["energy_required_window_s"] / 0.125)
    assert out["gpu_energy_rel_error_bound"] <= 0.01 + 1e-9
    # The quantised counter is off by at most one period of busy power at each end.
    true_gross = 150.0 * out["energy_window_s"]
    assert abs(out["gpu_energy_j"] - true_gross) <= 2 * 0.05 * 150.0 + 1e-3


def test_window_is_capped_and_the_bound_says_so():
    gpu = SimulatedGpu(idle_w=50.0, busy_w=150.0, batch_s=0.125, period_s=0.05)
    out = run_sim(gpu, max_rel_error=0.01, max_window_s=2.0)
    assert out["energy_window_s"] == pytest.approx(2.0)
    assert out["gpu_energy_rel_error_bound"] > 0.04  # 2 x ~0.05 / 2 s: reported, not hidden


def test_net_not_resolved_above_idle_is_none():
    gpu = SimulatedGpu(idle_w=50.0, busy_w=45.0, batch_s=0.125, period_s=1 / 1024)
    out = run_sim(gpu)
    assert out["gpu_energy_j_per_sample"] == pytest.approx(45.0 / 32)
    assert out["gpu_energy_net_j_per_sample"] is None
    assert "not resolved above idle" in out["gpu_energy_net_j_per_sample_why"]


def test_stuck_counter_gives_none_and_max_window():
    gpu = SimulatedGpu(idle_w=50.0, busy_w=150.0, batch_s=0.125, period_s=1e9)
    out = run_sim(gpu, max_window_s=1.5)
    assert out["energy_required_window_s"] == pytest.approx(1.5)
    assert out["gpu_energy_j_per_sample"] is None
    assert "did not advance" in out["gpu_energy_j_per_sample_why"]
    assert out["gpu_counter_period_s"] is None and out["gpu_counter_period_s_why"]


def test_update_period_is_the_median_gap_between_changes():
    times = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    energies = [0, 0, 1, 1, 1, 2, 3]  # changes at 0.2, 0.5, 0.6: gaps 0.3 and 0.1
    assert me.update_period(times, energies) == pytest.approx(0.2)
    assert me.update_period(times, [0, 0, 0, 1, 1, 1, 1]) is None


def write_domain(root: Path, name: str, dirname: str, energy: int, max_range: int) -> Path:
    d = root / dirname
    d.mkdir(parents=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{energy}\n")
    (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    return d


def test_rapl_sums_packages_and_unwraps(tmp_path):
    p0 = write_domain(tmp_path, "package-0", "intel-rapl:0", 900, 1000)
    write_domain(tmp_path, "package-1", "intel-rapl:1", 100, 1000)
    write_domain(tmp_path, "core", "intel-rapl:0:0", 5, 1000)  # sub-domain: inside package-0, not added
    write_domain(tmp_path, "psys", "intel-rapl:2", 7, 1000)  # platform domain: not a package
    counter, why = me.find_rapl(tmp_path)
    assert counter is not None and why == ""
    assert [d.name for d in counter.domains] == ["intel-rapl:0", "intel-rapl:1"]
    assert counter.read_j() == 0.0
    (p0 / "energy_uj").write_text("50\n")  # wrapped: 900 -> 1000 -> 50 is +150 uJ
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("130\n")  # +30 uJ
    assert counter.read_j() == pytest.approx(180e-6)
    assert counter.power_w() is None


def test_rapl_absent_or_unreadable(tmp_path):
    counter, why = me.find_rapl(tmp_path / "missing")
    assert counter is None and "no RAPL" in why
    d = write_domain(tmp_path, "package-0", "intel-rapl:0", 1, 10)
    (d / "energy_uj").unlink()
    counter, why = me.find_rapl(tmp_path)
    assert counter is None and "unreadable" in why


def test_rapl_idle_power_from_counter_delta():
    class FakeRapl:
        name, method = "cpu", "fake"

        def __init__(self, clock):
            self.clock = clock

        def read_j(self):
            return 20.0 * self.clock.t  # 20 W, refreshed continuously

        def power_w(self):
            return None

    gpu = SimulatedGpu(idle_w=0.0, busy_w=0.0, batch_s=0.125, period_s=1.0)
    idle = me.idle_phase([FakeRapl(gpu)], idle_s=0.5, poll_s=1 / 128, clock=gpu.clock, sleep=gpu.sleep)
    assert idle["cpu"].power_w == pytest.approx(20.0)
    assert idle["cpu"].method.startswith("counter delta")


def fake_hardware(name: str, **attrs) -> object:
    return type(name, (), attrs)()


def test_codecarbon_methods_label_estimates():
    tracker = type("T", (), {})()
    tracker._hardware = [fake_hardware("RAM", _force_ram_power=None), fake_hardware("CPU", _mode="cpu_load")]
    cpu, measured, gpu, ram = me.codecarbon_methods(tracker)
    assert (cpu, measured, gpu) == ("TDP x CPU load estimate (not measured)", False, None)
    assert "estimate" in ram
    tracker._hardware = [fake_hardware("CPU", _mode="intel_rapl"), fake_hardware("GPU")]
    cpu, measured, gpu, _ = me.codecarbon_methods(tracker)
    assert (cpu, measured) == ("RAPL (measured)", True)
    assert "NVML" in gpu
    tracker._hardware = [fake_hardware("CPU", _mode="something_new")]
    assert me.codecarbon_methods(tracker)[1] is False


def tiny_context(device: str = "cpu", **options) -> CaseContext:
    torch.manual_seed(0)
    model = nn.Sequential(layer.Linear(6, 8, step_mode="m"), neuron.IFNode(step_mode="m")).eval().to(device)
    x = torch.rand(2, 2, 6, device=device)
    y = torch.zeros(2, dtype=torch.long, device=device)
    return CaseContext(model=model, info=INFO, T=2, device=torch.device(device), batch_size=2,
                       batches=lambda T: iter([(x, y)]), num_classes=8,
                       options={"measured_energy": {"warmup": 1, **options}})


def test_plugin_cpu_without_counters_says_why(monkeypatch, tmp_path):
    monkeypatch.setattr(me, "RAPL_ROOT", tmp_path)  # no RAPL here, whatever the test machine has
    out = me.measured_energy(tiny_context())
    assert out["gpu_energy_j_per_sample"] is None
    assert "not a CUDA GPU" in out["gpu_energy_j_per_sample_why"]
    assert out["cpu_energy_j_per_sample"] is None
    assert "no RAPL" in out["cpu_energy_j_per_sample_why"]
    assert "energy_window_s" not in out  # no counter: no window was run
    assert not any(k.startswith("codecarbon") for k in out)  # opt-in


def test_plugin_runs_the_window_with_a_stuck_rapl(monkeypatch, tmp_path):
    write_domain(tmp_path, "package-0", "intel-rapl:0", 5, 1000)
    monkeypatch.setattr(me, "RAPL_ROOT", tmp_path)
    out = me.measured_energy(tiny_context(idle_s=0.02, max_window_s=0.1, min_batches=3))
    assert out["energy_batches"] >= 3
    assert 0.1 <= out["energy_window_s"] < 5
    assert out["cpu_energy_j_per_sample"] is None and "did not advance" in out["cpu_energy_j_per_sample_why"]


@pytest.mark.slow
def test_plugin_codecarbon_opt_in(monkeypatch, tmp_path):
    monkeypatch.setattr(me, "RAPL_ROOT", tmp_path)
    out = me.measured_energy(tiny_context(codecarbon=True, codecarbon_window_s=0.3, min_batches=3))
    assert out["codecarbon_country"] == "USA"
    measured = out["codecarbon_cpu_method"].endswith("(measured)")
    assert (out["codecarbon_cpu_energy_j_per_sample"] is not None) == measured
    assert (out["codecarbon_cpu_energy_estimate_j_per_sample"] is not None) == (not measured)
    assert out["codecarbon_gpu_energy_j_per_sample"] is None  # CPU case
    assert out["codecarbon_ram_energy_estimate_j_per_sample"] > 0
    assert out["codecarbon_co2_estimate_g_per_sample"] > 0
    assert out["codecarbon_samples"] >= 6


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_plugin_cuda_nvml():
    out = me.measured_energy(tiny_context("cuda:0", idle_s=0.2, min_window_s=0.5, max_window_s=5.0))
    if out["gpu_energy_j_per_sample"] is None:  # NVML energy counter unsupported (MIG, pre-Volta)
        assert "NVML" in out["gpu_energy_j_per_sample_why"] or "advance" in out["gpu_energy_j_per_sample_why"]
    else:
        assert out["gpu_energy_j_per_sample"] > 0
        assert out["gpu_idle_power_w"] > 0
        assert out["energy_window_s"] >= 0.5
