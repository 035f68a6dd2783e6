"""Measured energy: gross, net-of-rest-idle and rest-idle settling arithmetic on a simulated GPU (fake pynvml +
fake clock), the Zeus backend against the builtin one on the same simulation (a fake ZeusMonitor), backend
selection, RAPL unwrapping on a fake sysfs, codecarbon method labelling, the plug-in on CPU, the real Zeus
where installed and the real NVML path when a GPU is present."""

from __future__ import annotations

import math
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import layer, neuron

import bench.metrics.measured_energy as me
from bench.metrics.base import CaseContext
from bench.models.registry import ModelInfo

INFO = ModelInfo(name="tiny", family="test", paper="", provenance="user model", default_T=2, neuron="if")


class SimulatedGpu:
    """A fake clock and GPU: idle while sleeping, ``busy_w`` during a batch of ``batch_s``.

    Idle power is ``hot_w`` until ``cool_at_s`` (a board that has just worked), then ``rest_w``. The energy
    counter refreshes every ``period_s`` (its value is the true energy at the last refresh), like NVML's,
    and reads as integer millijoules.
    """

    def __init__(self, rest_w: float, busy_w: float, batch_s: float, period_s: float, hot_w: float | None = None,
                 cool_at_s: float = 0.0):
        self.rest_w, self.busy_w, self.batch_s, self.period_s = rest_w, busy_w, batch_s, period_s
        self.hot_w, self.cool_at_s = rest_w if hot_w is None else hot_w, cool_at_s
        self.t = 0.0
        self.true_j = 0.0
        self.reported_j = 0.0

    def _advance(self, dt: float, power: float) -> None:
        end = self.t + dt
        tick = math.floor(end / self.period_s) * self.period_s
        if tick > self.t:  # at least one refresh inside (t, end]: the last one is at ``tick``
            self.reported_j = self.true_j + power * (tick - self.t)
        self.t, self.true_j = end, self.true_j + power * dt

    def clock(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        if self.t < self.cool_at_s < self.t + dt:  # split at the drop from hot to rest
            hot = self.cool_at_s - self.t
            self._advance(hot, self.hot_w)
            dt -= hot
        self._advance(dt, self.hot_w if self.t < self.cool_at_s else self.rest_w)

    def run_batch(self) -> None:
        self._advance(self.batch_s, self.busy_w)

    # pynvml's API, as much of it as the counter uses
    def nvmlDeviceGetTotalEnergyConsumption(self, handle):  # noqa: N802
        assert handle == "h0"
        return round(self.reported_j * 1e3)


SETTINGS = {"idle_s": 20.0, "idle_min_s": 0.0, "idle_block_s": 0.25, "idle_blocks": 3, "idle_tolerance": 0.02,
            "poll_s": 1 / 128, "min_window_s": 1.0, "min_batches": 8, "max_rel_error": 0.02, "max_window_s": 30.0}


@pytest.fixture(autouse=True)
def fresh_rest_idle_cache(monkeypatch):
    """Each test starts as a fresh process would: no device's rest idle measured yet."""
    monkeypatch.setattr(me, "_REST_IDLE", {})


def run_sim(gpu: SimulatedGpu, batch_size: int = 4, key: str = "gpu:sim", **overrides) -> dict:
    counter = me.NvmlCounter(gpu, "h0", key)
    return me.measure_counters(gpu.run_batch, [counter], sync=lambda: None, batch_size=batch_size,
                               settings={**SETTINGS, **overrides}, clock=gpu.clock, sleep=gpu.sleep)


def test_gross_net_and_per_sample_arithmetic():
    # Rest idle: 3 blocks of 0.25 s at a steady 50 W settle at once. Counter finer than the poll: period
    # estimate = poll (1/128 s), need 2/128/0.02 = 0.78 s < 1 s: 8 batches of 0.125 s.
    gpu = SimulatedGpu(rest_w=50.0, busy_w=150.0, batch_s=0.125, period_s=1 / 1024)
    out = run_sim(gpu)
    assert out["gpu_rest_idle_power_w"] == pytest.approx(50.0, rel=1e-3)
    assert out["gpu_rest_idle_settled"] is True and out["gpu_rest_idle_reused"] is False
    assert out["gpu_rest_idle_settle_s"] == pytest.approx(0.75, abs=1 / 128)
    assert out["energy_batches"] == 8 and out["energy_samples"] == 32
    assert out["energy_window_s"] == pytest.approx(1.0)
    assert out["gpu_energy_j"] == pytest.approx(150.0, abs=1e-3)  # 150 W x 1 s
    assert out["gpu_energy_j_per_sample"] == pytest.approx(150.0 / 32, rel=1e-5)
    assert out["gpu_energy_net_j_per_sample"] == pytest.approx((150.0 - 50.0 * 1.0) / 32, rel=1e-3)
    assert out["gpu_avg_power_w"] == pytest.approx(150.0, rel=1e-5)
    assert out["gpu_counter_period_s"] == pytest.approx(1 / 128)
    assert out["gpu_energy_rel_error_bound"] == pytest.approx(2 / 128)
    assert "NVML" in out["gpu_energy_method"] and out["gpu_energy_backend"] == "builtin"


def test_rest_idle_waits_for_the_board_to_cool_then_is_reused():
    # Hot at 200 W until 2.1 s, then 50 W; 0.5 s blocks: 200 x4, 80, 50, 50, 50. The plateau at 200 W is not
    # taken for rest because of idle_min_s = 3; the first three non-falling blocks end at 4.0 s.
    gpu = SimulatedGpu(rest_w=50.0, busy_w=150.0, batch_s=0.125, period_s=1 / 1024, hot_w=200.0, cool_at_s=2.1)
    out = run_sim(gpu, idle_block_s=0.5, idle_min_s=3.0)
    assert out["gpu_rest_idle_settled"] is True
    assert out["gpu_rest_idle_settle_s"] == pytest.approx(4.0, abs=2 / 128)
    assert out["gpu_rest_idle_power_w"] == pytest.approx(50.0, rel=1e-3)
    assert out["gpu_rest_idle_blocks_w"][:4] == pytest.approx([200.0] * 4, rel=1e-2)
    assert out["gpu_rest_idle_blocks_w"][4] == pytest.approx(80.0, rel=2e-2)
    assert out["gpu_energy_net_j_per_sample"] == pytest.approx((150.0 - 50.0) / 32, rel=1e-3)
    # The next case on the same board reuses the reading: no polling, the window starts at once.
    before = gpu.t
    again = run_sim(gpu)
    assert again["gpu_rest_idle_reused"] is True
    assert again["gpu_rest_idle_power_w"] == out["gpu_rest_idle_power_w"]
    assert again["gpu_rest_idle_measured_at"] == out["gpu_rest_idle_measured_at"]
    assert gpu.t - before == pytest.approx(again["energy_window_s"])
    # Another board is measured for itself.
    assert run_sim(gpu, key="gpu:other")["gpu_rest_idle_reused"] is False


def test_a_warm_idle_would_have_lost_batch_1_but_rest_idle_resolves_it():
    # Batch 1 on a board whose power right after work (120 W) exceeds its draw while working (100 W):
    # net above that warm idle would be negative. The rest idle (measured once, settled) is 40 W.
    gpu = SimulatedGpu(rest_w=40.0, busy_w=100.0, batch_s=0.01, period_s=1 / 1024, hot_w=120.0, cool_at_s=1.0)
    out = run_sim(gpu, batch_size=1, idle_min_s=1.5)
    assert out["gpu_rest_idle_power_w"] == pytest.approx(40.0, rel=1e-3)
    assert out["gpu_energy_net_j_per_sample"] == pytest.approx((100.0 - 40.0) * 0.01, rel=1e-2)
    assert out["gpu_energy_j_per_sample"] == pytest.approx(100.0 * 0.01, rel=1e-2)


def test_settling_capped_by_idle_s_is_recorded():
    # Still hot when the 2 s cap is reached: the reading is kept and flagged, not passed off as settled.
    gpu = SimulatedGpu(rest_w=50.0, busy_w=150.0, batch_s=0.125, period_s=1 / 1024, hot_w=200.0, cool_at_s=100.0)
    out = run_sim(gpu, idle_s=2.0, idle_min_s=10.0)
    assert out["gpu_rest_idle_settled"] is False
    assert out["gpu_rest_idle_settle_s"] == pytest.approx(2.0, abs=2 / 128)
    assert "not settled" in out["gpu_rest_idle_method"]
    assert out["gpu_energy_net_j_per_sample"] is None  # 150 W work under a 200 W "rest": not resolved
    assert "not resolved above rest idle" in out["gpu_energy_net_j_per_sample_why"]


def test_settled_needs_consecutive_non_falling_blocks():
    assert me.settled([100.0, 90.0, 89.0, 89.5], 3, 0.02) is True  # 89 >= 90 x 0.98; 89.5 >= 89 x 0.98
    assert me.settled([100.0, 90.0, 80.0], 3, 0.02) is False
    assert me.settled([90.0, 90.0], 3, 0.02) is False  # too few blocks


def test_min_batches_binds_when_batches_are_short():
    gpu = SimulatedGpu(rest_w=50.0, busy_w=150.0, batch_s=1.0, period_s=1 / 1024)
    out = run_sim(gpu, min_batches=3)
    assert out["energy_batches"] == 3 and out["energy_window_s"] == pytest.approx(3.0)
    assert out["gpu_energy_net_j_per_sample"] == pytest.approx((450.0 - 150.0) / 12, rel=1e-3)


def test_coarse_counter_extends_the_window():
    # Refresh every 50 ms and 1% allowed: window >= 2 x 0.05 / 0.01 = 10 s, not the 1 s minimum.
    gpu = SimulatedGpu(rest_w=50.0, busy_w=150.0, batch_s=0.125, period_s=0.05)
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
    gpu = SimulatedGpu(rest_w=50.0, busy_w=150.0, batch_s=0.125, period_s=0.05)
    out = run_sim(gpu, max_rel_error=0.01, max_window_s=2.0)
    assert out["energy_window_s"] == pytest.approx(2.0)
    assert out["gpu_energy_rel_error_bound"] > 0.04  # 2 x ~0.05 / 2 s: reported, not hidden


def test_net_not_resolved_above_rest_idle_is_none():
    gpu = SimulatedGpu(rest_w=50.0, busy_w=45.0, batch_s=0.125, period_s=1 / 1024)
    out = run_sim(gpu)
    assert out["gpu_energy_j_per_sample"] == pytest.approx(45.0 / 32, rel=1e-4)
    assert out["gpu_energy_net_j_per_sample"] is None
    assert "not resolved above rest idle" in out["gpu_energy_net_j_per_sample_why"]


def test_stuck_counter_gives_none_and_max_window():
    gpu = SimulatedGpu(rest_w=50.0, busy_w=150.0, batch_s=0.125, period_s=1e9)
    out = run_sim(gpu, max_window_s=1.5)
    assert out["energy_required_window_s"] == pytest.approx(1.5)
    assert out["gpu_energy_j_per_sample"] is None
    assert "did not advance" in out["gpu_energy_j_per_sample_why"]
    assert out["gpu_rest_idle_power_w"] is None and "did not advance" in out["gpu_rest_idle_power_w_why"]
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
    counter.begin_window()
    (p0 / "energy_uj").write_text("80\n")
    assert counter.end_window() == pytest.approx(30e-6)


def test_rapl_absent_or_unreadable(tmp_path):
    counter, why = me.find_rapl(tmp_path / "missing")
    assert counter is None and "no RAPL" in why
    d = write_domain(tmp_path, "package-0", "intel-rapl:0", 1, 10)
    (d / "energy_uj").unlink()
    counter, why = me.find_rapl(tmp_path)
    assert counter is None and "unreadable" in why


class FakeZeusMonitor:
    """ZeusMonitor's API as the plug-in uses it, over simulated boards (its window: counter reads at both ends)."""

    def __init__(self, boards: dict[int, SimulatedGpu], uuids: dict[int, str], rapl: list | None = None):
        self.boards, self.uuids, self.rapl = boards, uuids, rapl or []
        self.calls: list[tuple] = []

    def __call__(self, gpu_indices=None, cpu_indices=None):  # the class's constructor
        self.gpu_indices = list(self.boards) if gpu_indices is None else gpu_indices
        self.cpu_indices = list(range(len(self.rapl))) if cpu_indices is None else cpu_indices
        self.gpus = SimpleNamespace(
            gpus={i: SimpleNamespace(handle=f"zh{i}") for i in self.boards},
            get_total_energy_consumption=lambda i: self.boards[i].nvmlDeviceGetTotalEnergyConsumption("h0"),
            supports_get_total_energy_consumption=lambda i: True)
        self.cpus = SimpleNamespace(get_total_energy_consumption=lambda i: SimpleNamespace(cpu_mj=self.rapl[i]()))
        return self

    def _read(self):
        return ({i: self.gpus.get_total_energy_consumption(i) / 1e3 for i in self.gpu_indices},
                {i: self.rapl[i]() / 1e3 for i in self.cpu_indices})

    def begin_window(self, key, sync_execution=True):
        self.calls.append(("begin", key, sync_execution))
        self.start = self._read()

    def end_window(self, key, sync_execution=True):
        self.calls.append(("end", key, sync_execution))
        (g0, c0), (g1, c1) = self.start, self._read()
        return SimpleNamespace(gpu_energy={i: g1[i] - g0[i] for i in g0}, cpu_energy={i: c1[i] - c0[i] for i in c0})


def test_zeus_window_gives_the_builtin_figures():
    def sim():
        return SimulatedGpu(rest_w=50.0, busy_w=150.0, batch_s=0.125, period_s=1 / 1024, hot_w=90.0, cool_at_s=1.0)

    builtin = run_sim(sim())
    me._REST_IDLE.clear()
    gpu = sim()
    monitor = FakeZeusMonitor({0: gpu}, {0: "u0"})(gpu_indices=[0], cpu_indices=[])
    counter = me.ZeusGpuCounter(monitor, 0, "gpu:sim", "zeus 9.9 (ZeusMonitor window)")
    zeus = me.measure_counters(gpu.run_batch, [counter], sync=lambda: None, batch_size=4, settings=SETTINGS,
                               clock=gpu.clock, sleep=gpu.sleep)
    assert monitor.calls == [("begin", "snnbench-gpu0", False), ("end", "snnbench-gpu0", False)]
    assert zeus["gpu_energy_backend"] == "zeus 9.9 (ZeusMonitor window)" and "Zeus" in zeus["gpu_energy_method"]
    different = {"gpu_energy_backend", "gpu_energy_method", "gpu_rest_idle_measured_at"}
    assert {k: v for k, v in zeus.items() if k not in different} == \
        {k: v for k, v in builtin.items() if k not in different}


def test_zeus_cpu_counter_sums_packages():
    energy = {"j": 0.0}
    rapl = [lambda: energy["j"] * 1e3, lambda: 2 * energy["j"] * 1e3]  # mJ, two packages
    monitor = FakeZeusMonitor({}, {}, rapl)(gpu_indices=[], cpu_indices=None)
    counter = me.ZeusCpuCounter(monitor, "zeus")
    counter.begin_window()
    energy["j"] = 1.5
    assert counter.end_window() == pytest.approx(4.5)
    assert counter.read_j() == pytest.approx(4.5)


@pytest.fixture
def one_fake_gpu(monkeypatch):
    """torch's cuda:0 is the NVML board with UUID "u0" (no CUDA needed: the lookups are faked)."""
    gpu = SimulatedGpu(rest_w=50.0, busy_w=150.0, batch_s=0.125, period_s=1 / 1024)
    monkeypatch.setattr(me, "nvml", lambda: SimpleNamespace(nvmlDeviceGetIndex=lambda h: 0,
                                                            nvmlDeviceGetTotalEnergyConsumption=gpu.nvmlDeviceGetTotalEnergyConsumption))
    monkeypatch.setattr(me, "nvml_handle", lambda device, pynvml: "h0")
    monkeypatch.setattr(me, "torch_uuid", lambda device: "u0")
    monkeypatch.setattr(me, "nvml_uuid", lambda handle, pynvml: {"zh0": "u0", "zh1": "u1"}[handle])
    return gpu


def use_zeus(monkeypatch, monitor_cls) -> None:
    monkeypatch.setattr(me, "zeus_monitor_class", lambda: (monitor_cls, "zeus 9.9 (ZeusMonitor window)"))


def no_zeus(monkeypatch) -> None:
    def missing():
        raise ModuleNotFoundError("No module named 'zeus'")

    monkeypatch.setattr(me, "zeus_monitor_class", missing)


def test_gpu_backend_auto_prefers_zeus_on_the_same_board(monkeypatch, one_fake_gpu):
    use_zeus(monkeypatch, FakeZeusMonitor({0: one_fake_gpu}, {0: "u0"}))
    counter, index, why = me.gpu_counter(torch.device("cuda:0"))
    assert isinstance(counter, me.ZeusGpuCounter) and index == 0 and why == ""
    assert counter.key == "gpu:u0" and counter.backend.startswith("zeus")


def test_gpu_backend_falls_back_when_zeus_sees_another_board(monkeypatch, one_fake_gpu):
    monitor = FakeZeusMonitor({0: one_fake_gpu}, {0: "u1"})
    monitor_init = monitor.__call__

    def other_board(gpu_indices=None, cpu_indices=None):  # Zeus's index 0 is NVML's board "u1"
        m = monitor_init(gpu_indices, cpu_indices)
        m.gpus.gpus[0].handle = "zh1"
        return m

    use_zeus(monkeypatch, other_board)
    counter, _, _ = me.gpu_counter(torch.device("cuda:0"))
    assert isinstance(counter, me.NvmlCounter)
    assert counter.backend.startswith("builtin (Zeus not used: Zeus's GPU 0 is another board")
    assert "CUDA_DEVICE_ORDER=PCI_BUS_ID" in counter.backend
    assert me.gpu_counter(torch.device("cuda:0"), "zeus")[0] is None  # zeus demanded: no builtin stand-in


def test_gpu_backend_without_zeus(monkeypatch, one_fake_gpu):
    no_zeus(monkeypatch)
    counter, _, _ = me.gpu_counter(torch.device("cuda:0"))
    assert isinstance(counter, me.NvmlCounter)
    assert counter.backend == "builtin (Zeus not used: zeus not importable (No module named 'zeus'))"
    assert me.gpu_counter(torch.device("cuda:0"), "builtin")[0].backend == "builtin (Zeus not used: backend = 'builtin')"
    with pytest.raises(RuntimeError, match="backend = 'zeus' but Zeus is not importable.*Fix"):
        me.gpu_counter(torch.device("cuda:0"), "zeus")


def test_gpu_without_an_energy_counter_builds_no_zeus_monitor(monkeypatch, one_fake_gpu):
    def not_supported(handle):
        raise RuntimeError("NVMLError_NotSupported")

    monkeypatch.setattr(me, "nvml", lambda: SimpleNamespace(nvmlDeviceGetIndex=lambda h: 0,
                                                            nvmlDeviceGetTotalEnergyConsumption=not_supported))

    def monitor(**kwargs):
        raise AssertionError("no Zeus monitor for a board without the counter")

    use_zeus(monkeypatch, monitor)
    counter, index, why = me.gpu_counter(torch.device("cuda:0"))
    assert counter is None and index == 0 and why.startswith("NVML energy counter unavailable")


def test_cpu_backend_choice(monkeypatch, tmp_path):
    write_domain(tmp_path, "package-0", "intel-rapl:0", 5, 1000)
    use_zeus(monkeypatch, FakeZeusMonitor({}, {}, [lambda: 1.0]))
    assert isinstance(me.cpu_counter("auto", tmp_path)[0], me.ZeusCpuCounter)
    use_zeus(monkeypatch, FakeZeusMonitor({}, {}, []))  # Zeus reads no RAPL here: ours does
    counter, _ = me.cpu_counter("auto", tmp_path)
    assert isinstance(counter, me.RaplCounter)
    assert counter.backend == "builtin (Zeus not used: Zeus found no readable RAPL package)"
    counter, why = me.cpu_counter("zeus", tmp_path)
    assert counter is None and why == "backend = 'zeus': Zeus found no readable RAPL package"


def test_real_zeus_on_this_machine():
    """Where zeus is installed: its monitor runs, and what it cannot read is None with its reason."""
    pytest.importorskip("zeus")
    cls, label = me.zeus_monitor_class()
    assert label.startswith("zeus ") and "ZeusMonitor" in label
    counter, why = me.cpu_counter("auto")
    if counter is None:  # no RAPL (as on the development VM): both backends looked
        assert "RAPL" in why and "Zeus" in why
    else:
        assert counter.read_j() >= 0


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


def tiny_context(device: str = "cpu", batch_size: int = 2, **options) -> CaseContext:
    torch.manual_seed(0)
    model = nn.Sequential(layer.Linear(6, 8, step_mode="m"), neuron.IFNode(step_mode="m")).eval().to(device)
    x = torch.rand(2, 2, 6, device=device)
    y = torch.zeros(2, dtype=torch.long, device=device)
    return CaseContext(model=model, info=INFO, T=2, device=torch.device(device), batch_size=batch_size,
                       batches=lambda T: iter([(x, y)]), num_classes=8,
                       options={"measured_energy": {"warmup": 1, **options}})


FAST_REST = {"idle_s": 0.05, "idle_min_s": 0.0, "idle_block_s": 0.01, "idle_blocks": 2, "poll_s": 0.001}


def test_plugin_cpu_without_counters_says_why(monkeypatch, tmp_path):
    monkeypatch.setattr(me, "RAPL_ROOT", tmp_path)  # no RAPL here, whatever the test machine has
    out = me.measured_energy(tiny_context(backend="builtin"))
    assert out["gpu_energy_j_per_sample"] is None
    assert "not a CUDA GPU" in out["gpu_energy_j_per_sample_why"]
    assert out["cpu_energy_j_per_sample"] is None
    assert "no RAPL" in out["cpu_energy_j_per_sample_why"]
    assert "energy_window_s" not in out  # no counter: no window was run
    assert not any(k.startswith("codecarbon") for k in out)  # opt-in


def test_plugin_runs_the_window_with_a_stuck_rapl(monkeypatch, tmp_path):
    write_domain(tmp_path, "package-0", "intel-rapl:0", 5, 1000)
    monkeypatch.setattr(me, "RAPL_ROOT", tmp_path)
    out = me.measured_energy(tiny_context(backend="builtin", max_window_s=0.1, min_batches=3, **FAST_REST))
    assert out["energy_batches"] >= 3
    assert 0.1 <= out["energy_window_s"] < 5
    assert out["cpu_energy_j_per_sample"] is None and "did not advance" in out["cpu_energy_j_per_sample_why"]
    assert out["cpu_rest_idle_power_w"] is None and "did not advance" in out["cpu_rest_idle_power_w_why"]
    assert out["cpu_energy_backend"] == "builtin (Zeus not used: backend = 'builtin')"


class SteadyCounter(me.DeltaWindow):
    """A counter drawing 10 W on the real clock, whatever runs."""

    name, key, method, backend = "cpu", "cpu:steady", "fake", "builtin"

    def read_j(self) -> float:
        return 10.0 * time.perf_counter()


def test_plugin_counts_the_samples_actually_run(monkeypatch):
    # The suite asks for batches of 8 but the data holds 2 samples: per-sample figures divide by 2 a batch.
    monkeypatch.setattr(me, "cpu_counter", lambda choice: (SteadyCounter(), ""))
    out = me.measured_energy(tiny_context(batch_size=8, min_window_s=0.05, min_batches=3, **FAST_REST))
    assert out["energy_samples"] == 2 * out["energy_batches"]
    # (the counter and the plugin's clock are read in separate calls: over FAST_REST's 10 ms blocks a
    # scheduling gap of 50 us on a busy machine is 0.5 %, so 1e-3 failed about one run in six)
    assert out["cpu_rest_idle_power_w"] == pytest.approx(10.0, rel=2e-2)
    assert out["cpu_energy_j_per_sample"] == pytest.approx(10.0 * out["energy_window_s"] / out["energy_samples"],
                                                           rel=1e-2)
    # Nothing above a steady draw: net is either unresolved (None with a reason) or a sliver of gross.
    net = out["cpu_energy_net_j_per_sample"]
    assert (net is None and "not resolved" in out["cpu_energy_net_j_per_sample_why"]) or \
        net < 0.01 * out["cpu_energy_j_per_sample"]


@pytest.mark.slow
def test_plugin_codecarbon_opt_in(monkeypatch, tmp_path):
    monkeypatch.setattr(me, "RAPL_ROOT", tmp_path)
    out = me.measured_energy(tiny_context(backend="builtin", codecarbon=True, codecarbon_window_s=0.3,
                                          min_batches=3))
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
    out = me.measured_energy(tiny_context("cuda:0", idle_s=10.0, idle_min_s=2.0, min_window_s=0.5,
                                          max_window_s=5.0))
    if out["gpu_energy_j_per_sample"] is None:  # NVML energy counter unsupported (MIG, pre-Volta)
        assert "NVML" in out["gpu_energy_j_per_sample_why"] or "advance" in out["gpu_energy_j_per_sample_why"]
    else:
        assert out["gpu_energy_j_per_sample"] > 0
        assert out["gpu_rest_idle_power_w"] > 0 and out["gpu_rest_idle_settle_s"] >= 2.0
        assert out["energy_window_s"] >= 0.5
        assert out["gpu_energy_backend"]
