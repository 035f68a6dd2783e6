"""Timing core with a fake clock; the latency plug-in end to end on a tiny CPU model; CUDA paths when present."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import layer, neuron

from bench.metrics.base import CaseContext
from bench.metrics.timing import (
    TimingStats,
    host_timer,
    inference_fn,
    measure,
    neuron_implementation,
    to_channels_last,
)
from bench.metrics.timing import latency as latency_metric
from bench.models.neurons import make_neuron
from bench.models.registry import ModelInfo

INFO = ModelInfo(name="tiny", family="test", paper="", provenance="user model", default_T=2, neuron="if")


class FakeClock:
    """A nanosecond clock that only moves when a fake run advances it."""

    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


def runs_of(clock: FakeClock, durations_s: list[float]):
    """A ``fn`` whose i-th call takes ``durations_s[i]`` seconds of fake time."""
    it = iter(durations_s)

    def fn() -> None:
        clock.ns += round(next(it) * 1e9)

    return fn


def test_warmup_is_excluded_and_count_binds():
    clock = FakeClock()
    fn = runs_of(clock, [50.0, 60.0] + [3.0] * 10)
    stats = measure(fn, warmup=2, min_runs=5, min_time_s=10.0, clock=clock)
    # 5 runs of 3 s = 15 s >= 10 s: the count binds; the 50/60 s warm-ups never appear.
    assert stats.samples_s == (3.0,) * 5
    assert stats.warmup == 2
    assert stats.stopped_by == "min_runs and min_time_s reached"


def test_time_binds_after_min_runs():
    clock = FakeClock()
    stats = measure(runs_of(clock, [1.0] * 20), warmup=0, min_runs=3, min_time_s=7.5, clock=clock)
    assert stats.runs == 8  # 7 s < 7.5 s after 7 runs; 8 s after 8
    assert stats.total_s == pytest.approx(8.0)


def test_time_reached_exactly_stops():
    clock = FakeClock()
    stats = measure(runs_of(clock, [2.0] * 20), warmup=0, min_runs=1, min_time_s=10.0, clock=clock)
    assert stats.runs == 5


def test_max_runs_caps_before_min_time():
    clock = FakeClock()
    stats = measure(runs_of(clock, [1.0] * 20), warmup=1, min_runs=2, min_time_s=100.0, max_runs=7, clock=clock)
    assert stats.runs == 7
    assert stats.stopped_by == "max_runs"


def test_invalid_run_limits():
    with pytest.raises(ValueError):
        measure(lambda: None, warmup=0, min_runs=0, min_time_s=0.0)
    with pytest.raises(ValueError):
        measure(lambda: None, warmup=0, min_runs=5, min_time_s=0.0, max_runs=4)


def test_statistics_by_hand():
    stats = TimingStats((4.0, 1.0, 10.0, 3.0, 2.0), warmup=0, stopped_by="test")
    # sorted 1 2 3 4 10, linear: h = 4 q. p90: 4 + 0.6 * 6; p99: 4 + 0.96 * 6; p25 = 2, p75 = 4.
    assert stats.p50 == pytest.approx(3.0)
    assert stats.p90 == pytest.approx(7.6)
    assert stats.p99 == pytest.approx(9.76)
    assert stats.iqr == pytest.approx(2.0)
    assert stats.mean == pytest.approx(4.0)
    assert stats.std == pytest.approx(math.sqrt(50 / 4))  # deviations -3 -2 -1 0 6, ddof=1
    assert (stats.min, stats.max) == (1.0, 10.0)
    assert stats.throughput(4) == pytest.approx(4 / 3)
    fields = stats.as_fields()
    assert fields["latency_p90_ms"] == pytest.approx(7600.0)
    assert fields["latency_rel_iqr"] == pytest.approx(2 / 3, abs=1e-6)


def test_percentiles_match_numpy():
    rng = np.random.default_rng(0)
    samples = tuple(float(x) for x in rng.exponential(1.0, size=37))
    stats = TimingStats(samples, warmup=0, stopped_by="test")
    for q in (50, 90, 99):
        assert stats.percentile(q) == pytest.approx(float(np.quantile(samples, q / 100)))


def test_single_run_has_zero_std():
    assert TimingStats((0.5,), warmup=0, stopped_by="test").std == 0.0


def test_sync_brackets_each_timed_run_only():
    clock = FakeClock()
    calls: list[int] = []
    stats = measure(runs_of(clock, [1.0] * 5), warmup=2, min_runs=3, min_time_s=0.0,
                    timer=host_timer(clock, sync=lambda: calls.append(clock.ns)))
    assert stats.runs == 3
    assert len(calls) == 6  # before and after each of the 3 timed runs, none around warm-up


def tiny_model(conv: bool = False) -> nn.Module:
    torch.manual_seed(0)
    if conv:
        return nn.Sequential(layer.Conv2d(2, 3, 3, padding=1, step_mode="m"), neuron.IFNode(step_mode="m"),
                             layer.Flatten(step_mode="m"), layer.Linear(3 * 4 * 4, 5, step_mode="m")).eval()
    return nn.Sequential(layer.Linear(6, 8, step_mode="m"), neuron.IFNode(step_mode="m"),
                         layer.Linear(8, 5, step_mode="m")).eval()


def tiny_context(model: nn.Module, shape: tuple[int, ...], device: str = "cpu", **latency_options) -> CaseContext:
    torch.manual_seed(1)
    x = torch.rand(*shape, device=device)
    y = torch.zeros(shape[1], dtype=torch.long, device=device)
    return CaseContext(model=model.to(device), info=INFO, T=shape[0], device=torch.device(device),
                       batch_size=shape[1], batches=lambda T: iter([(x, y)]), num_classes=5,
                       options={"latency": {"min_runs": 5, "min_time_s": 0.02, "warmup": 1, **latency_options}})


def test_latency_plugin_cpu():
    out = latency_metric(tiny_context(tiny_model(), (2, 2, 6)))
    assert out["runs"] >= 5
    assert 0 < out["latency_p50_ms"] <= out["latency_p90_ms"] <= out["latency_p99_ms"] <= out["latency_max_ms"]
    assert out["throughput_sps"] == pytest.approx(2 / (out["latency_p50_ms"] / 1e3), rel=1e-4)
    assert out["timed_total_s"] >= 0.02
    assert out["timer"] == "time.perf_counter_ns"
    assert out["variant"] == "eager"
    assert out["threads"] == torch.get_num_threads()
    assert out["neuron_impl"] == "IFNode: if op -> torch-reference"
    assert "latency_compiled_p50_ms" not in out


def test_throughput_counts_the_samples_timed_not_the_suites_batch_size():
    """Data holding 3 samples with batch_size 64: the timed batch has 3, and throughput is 3 / p50."""
    ctx = tiny_context(tiny_model(), (2, 3, 6))
    ctx.batch_size = 64
    out = latency_metric(ctx)
    assert out["batch_size"] == 3
    assert out["throughput_sps"] == pytest.approx(3 / (out["latency_p50_ms"] / 1e3), rel=1e-4)


def test_latency_leaves_model_state_reset():
    model = tiny_model()
    latency_metric(tiny_context(model, (2, 2, 6)))
    assert model[1].v == 0.0  # reset after timing: a later metric starts from rest


def test_channels_last_variant_matches_eager_output():
    model = tiny_model(conv=True)
    ctx = tiny_context(model, (2, 2, 2, 4, 4), channels_last=True)
    out = latency_metric(ctx)
    assert out["variant"] == "eager+channels_last"
    assert model[0].weight.is_contiguous()  # the shared model is untouched (a copy was converted)
    copied, frames = to_channels_last(model, ctx.sample_batch()[0])
    assert copied[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert frames.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        expected = inference_fn(model, ctx.sample_batch()[0])()
        got = inference_fn(copied, frames)()
    torch.testing.assert_close(got, expected)


def test_compile_failure_is_none_with_reason(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    out = latency_metric(tiny_context(tiny_model(), (2, 2, 6), compile=True))
    assert out["latency_compiled_p50_ms"] is None
    assert "no compiler here" in out["latency_compiled_p50_ms_why"]
    assert out["latency_p50_ms"] > 0  # eager still measured


@pytest.mark.slow
def test_compile_variant_real_dynamo():
    out = latency_metric(tiny_context(tiny_model(), (2, 2, 6), compile=True, compile_backend="eager"))
    assert out["latency_compiled_p50_ms"] > 0
    assert out["runs_compiled"] >= 5
    assert out["compile_time_s"] > 0
    assert out["compiled_neuron_impl"] == "IFNode: if op -> torch-reference"


def test_neuron_implementation_reports_fallbacks():
    class MySurrogate(nn.Module):
        def forward(self, x):
            return (x >= 0).float()

    model = nn.Sequential(make_neuron("lif"), neuron.IFNode(step_mode="m", surrogate_function=MySurrogate()),
                          make_neuron("dsr_if", T=2), make_neuron("liaf"))
    got = neuron_implementation(model, torch.device("cpu"))
    assert got == ("DSRIFNode: own multi-step forward: torch ops; "
                   "IFNode: if op -> torch-reference (surrogate has no fused kernel); "
                   "LIAFNode: own multi-step forward: torch ops; LIFNode: lif op -> torch-reference")
    assert neuron_implementation(nn.Linear(2, 2), torch.device("cpu")).startswith("none")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_latency_plugin_cuda_events():
    out = latency_metric(tiny_context(tiny_model(), (2, 2, 6), device="cuda:0"))
    assert out["timer"] == "CUDA events (synchronised)"
    assert out["latency_p50_ms"] > 0
    assert out["device_name"] == torch.cuda.get_device_name(0)
    impl = out["neuron_impl"].split("-> ")[1]
    assert impl in ("cuda", "triton", "torch")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_event_timer_sees_gpu_work():
    from bench.metrics.timing import cuda_event_timer

    device = torch.device("cuda:0")
    a = torch.rand(2048, 2048, device=device)
    timer = cuda_event_timer(device)
    one = timer(lambda: a @ a)
    ten = timer(lambda: [a @ a for _ in range(10)])
    assert 0 < one < ten  # events enclose the queued kernels, not just their launch
