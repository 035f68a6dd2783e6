"""Memory plug-in: RSS sampling arithmetic, real RSS growth, GPU fields None on CPU, CUDA peaks when present."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import layer, neuron

from bench.metrics.base import CaseContext
from bench.metrics.memory import MIB, RssSampler, cpu_rss_growth, gpu_peak, read_rss_bytes
from bench.metrics.memory import memory as memory_metric
from bench.models.registry import ModelInfo

INFO = ModelInfo(name="tiny", family="test", paper="", provenance="user model", default_T=2, neuron="if")
needs_statm = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")


def test_sampler_keeps_the_highest_sample():
    values = iter([10, 30, 20])
    sampler = RssSampler(read=lambda: next(values))
    for _ in range(3):
        sampler.sample()
    assert (sampler.peak, sampler.samples) == (30, 3)


def test_growth_is_peak_minus_baseline_with_fake_reader():
    # Baseline 100; RSS is 160 only while the run's output is alive (its finaliser frees it).
    state = {"rss": 100}

    class Output:
        def __del__(self):
            state["rss"] = 100

    def run():
        state["rss"] = 160
        return Output()

    growth, samples = cpu_rss_growth(run, repeats=2, interval_s=1e-3, read=lambda: state["rss"])
    assert growth == 60
    assert state["rss"] == 100
    assert samples >= 4  # start, one per run while its output lives, stop


@needs_statm
def test_real_rss_growth_sees_a_64_mib_tensor():
    def run():
        return torch.ones(16 * 2**20)  # 64 MiB, every page written

    growth, _ = cpu_rss_growth(run, repeats=1)
    assert 60 * MIB <= growth <= 200 * MIB
    assert read_rss_bytes() > 0


def tiny_context(device: str = "cpu") -> CaseContext:
    torch.manual_seed(0)
    model = nn.Sequential(layer.Linear(6, 8, step_mode="m"), neuron.IFNode(step_mode="m")).eval().to(device)
    x = torch.rand(2, 2, 6, device=device)
    y = torch.zeros(2, dtype=torch.long, device=device)
    return CaseContext(model=model, info=INFO, T=2, device=torch.device(device), batch_size=2,
                       batches=lambda T: iter([(x, y)]), num_classes=8)


@needs_statm
def test_memory_plugin_cpu_marks_gpu_fields_unavailable():
    out = memory_metric(tiny_context())
    assert out["gpu_peak_allocated_mib"] is None
    assert "not a CUDA GPU" in out["gpu_peak_allocated_mib_why"]
    assert out["cpu_peak_rss_growth_mib"] >= 0
    assert out["cpu_rss_samples"] >= 3
    assert "statm" in out["cpu_rss_method"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_peak_sees_a_known_allocation():
    device = torch.device("cuda:0")

    def run():
        a = torch.empty(8 * 2**20, dtype=torch.uint8, device=device)  # 8 MiB, freed on return
        return a.sum()

    got = gpu_peak(run, device)
    assert got["gpu_peak_growth_mib"] >= 8.0
    assert got["gpu_peak_allocated_mib"] >= got["gpu_peak_growth_mib"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_memory_plugin_cuda():
    out = memory_metric(tiny_context("cuda:0"))
    assert out["gpu_peak_allocated_mib"] > 0
    assert "gpu_peak_allocated_mib_why" not in out
