"""The compiled CPU pass (bench.metrics.stats_cpu) against torch operations computed here, and the probe's
firing path with and without it."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import layer, neuron

from bench.metrics import kinds, stats_cpu
from bench.metrics.firing import firing_rates


def _reference(x3: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """Value sums per (a, p) in float64, positions with an event at some / every step (numpy-free torch)."""
    flat = (x3 != 0).reshape(x3.shape[0], -1)
    return x3.double().sum(1), int(flat.any(0).sum()), int(flat.all(0).sum())


@pytest.mark.parametrize("shape", [(4, 1024, 1024), (4, 8192, 16), (4, 3 * 2 ** 17, 1), (3, 7, 5), (4, 1000, 1),
                                   (1, 3, 1), (4, 99, 300), (2, 4097, 3), (5, 513, 129), (8, 300, 17), (6, 257, 33),
                                   (16, 40, 130), (12, 33, 257)])
def test_binary_tensors_give_exact_sums_and_window_counts(shape):
    torch.manual_seed(0)
    x3 = (torch.rand(shape) < 0.3).float()
    x3[:, 0] = 1.0  # a saturated row, so "every step" is not 0 by chance
    w = stats_cpu.window_stats(x3)
    values, active, every = _reference(x3)
    assert w.binary and not w.zero
    assert w.values.dtype == torch.float64 and w.values.shape == values.shape
    assert torch.equal(w.values, values)
    assert (w.active, w.every_step) == (active, every) and every > 0


def test_the_pass_is_split_across_threads_with_the_same_result(monkeypatch):
    torch.manual_seed(1)
    x3 = (torch.rand(4, 2048, 300) < 0.2).float()
    results = []
    for split in (1, 10 ** 12):  # always split, never split
        monkeypatch.setattr(stats_cpu, "_SPLIT_MIN", split)
        w = stats_cpu.window_stats(x3)
        results.append((w.values, w.active, w.every_step, w.binary))
    assert torch.equal(results[0][0], results[1][0]) and results[0][1:] == results[1][1:]


@pytest.mark.parametrize("row", [0, 1023, 2047])
def test_another_value_in_any_row_of_any_chunk_is_seen(monkeypatch, row):
    """The pass stops at the first row holding another value; every chunk of a split pass reports it."""
    x3 = (torch.rand(4, 2048, 300) < 0.2).float()
    x3[3, row, 299] = 0.5
    for split in (1, 10 ** 12):
        monkeypatch.setattr(stats_cpu, "_SPLIT_MIN", split)
        w = stats_cpu.window_stats(x3)
        assert w.other_values and not w.binary and not w.zero


@pytest.mark.parametrize("value, binary", [
    (0.5, False), (2.0, False), (-1.0, False), (-0.0, False), (math.nan, False), (-math.nan, False),
    (math.inf, False), (-math.inf, False), (1e-45, False), (1.0 - 2 ** -24, False), (1.0 + 2 ** -23, False),
    (1.0, True),
])
def test_only_zero_and_one_are_proved_binary(value, binary):
    x3 = torch.zeros(4, 64, 9)
    x3[1, 5, 3] = 1.0
    x3[2, 40, 7] = value
    w = stats_cpu.window_stats(x3)
    assert w.binary is binary and not w.zero


@pytest.mark.parametrize("value, zero", [(0.0, True), (-0.0, False), (1e-45, False), (math.nan, False)])
def test_only_positive_zeros_are_proved_zero(value, zero):
    x3 = torch.zeros(4, 64, 9)
    x3[3, 63, 8] = value
    w = stats_cpu.window_stats(x3)
    assert w.zero is zero and not w.binary


def test_only_contiguous_float32_cpu_tensors_are_taken():
    x = torch.zeros(4, 8, 6)
    assert stats_cpu.supports(x)
    assert not stats_cpu.supports(x.half()) and not stats_cpu.supports(x.double())
    assert not stats_cpu.supports(x.transpose(1, 2)) and not stats_cpu.supports(torch.zeros(4, 0, 6))
    assert kinds.host_window_stats(x.transpose(1, 2)) is None


def _net() -> nn.Module:
    return nn.Sequential(layer.Conv2d(2, 8, 3, padding=1), neuron.IFNode(v_threshold=0.5, step_mode="m"),
                         layer.Conv2d(8, 8, 3, padding=1), neuron.IFNode(step_mode="m"),
                         layer.Flatten(), layer.Linear(8 * 16 * 16, 5), neuron.LIFNode(step_mode="m"))


def test_firing_and_ops_reports_are_the_same_without_the_compiled_pass(monkeypatch):
    """The whole probe on a model: compiled pass (auto) and torch operations (eager) give equal reports, and
    the compiled pass is really taken for every neuron output."""
    from bench.metrics.ops import profile

    torch.manual_seed(0)
    model = _net()
    for m in model.modules():
        if hasattr(m, "step_mode"):
            m.step_mode = "m"
    x = torch.rand(4, 3, 2, 16, 16) * 2
    taken = []
    original = stats_cpu.window_stats

    def counted(x3: torch.Tensor) -> stats_cpu.WindowStats:
        taken.append(tuple(x3.shape))
        return original(x3)

    monkeypatch.setattr(stats_cpu, "window_stats", counted)
    fused = profile(model, x), firing_rates(model, x)
    assert len(taken) == 2 * 3  # three neurons, both calls
    monkeypatch.setattr(kinds, "STATS_BACKEND", "eager")
    eager = profile(model, x), firing_rates(model, x)
    assert len(taken) == 6
    assert fused == eager


def test_without_numba_the_torch_operations_run_with_one_warning(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_numba(name, *args, **kwargs):
        if name == "bench.metrics" and args and args[2] and "stats_cpu" in args[2]:
            raise ImportError("No module named 'numba'")
        return real_import(name, *args, **kwargs)

    kinds._fused_cpu.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_numba)
    try:
        with pytest.warns(UserWarning, match="numba unavailable"):
            assert kinds.host_window_stats(torch.zeros(4, 8, 6)) is None
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # cached: no second warning
            assert kinds.host_window_stats(torch.zeros(4, 8, 6)) is None
    finally:
        monkeypatch.undo()
        kinds._fused_cpu.cache_clear()
    assert kinds.host_window_stats(torch.zeros(4, 8, 6)) is not None


def test_without_a_writable_cache_folder_the_loops_compile_in_the_process():
    """Where numba finds no writable cache location (a read-only install without ``NUMBA_CACHE_DIR``),
    ``njit(cache=True)`` raises RuntimeError when the function is decorated (numba.core.caching); the module
    then compiles its loops without the disk cache and gives the same statistics. Run in a fresh process with
    that failure simulated, so this process's compiled loops stay as they are."""
    import subprocess
    import sys

    code = """
import numba
real = numba.njit
def njit(*args, **kwargs):
    if kwargs.get("cache"):
        raise RuntimeError("cannot cache function: no locator available")
    return real(*args, **kwargs)
numba.njit = njit
import torch
from bench.metrics import stats_cpu
x3 = torch.zeros(4, 600, 300)
x3[1, 5, 7] = 1.0
w = stats_cpu.window_stats(x3)
assert type(stats_cpu._rows_compiled._cache).__name__ == "NullCache"  # compiled here, no disk cache
print(w.binary, w.ones, w.active, w.every_step)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "1.0", "1", "0"]
