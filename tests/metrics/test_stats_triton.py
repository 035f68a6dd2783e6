"""The fused Triton statistics (the device path on CUDA) against the eager ones they replace.

Without a GPU the kernels run in Triton's interpreter: the outer test starts pytest on this file in a
subprocess with ``TRITON_INTERPRET=1`` (it must be set before Triton is imported), which runs the
``interpreted`` tests. On a GPU machine the ``gpu`` test compares them on CUDA tensors directly.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from bench.metrics import kinds
from bench.metrics.kinds import as_3d, decide, eager_stats

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
interpreted = pytest.mark.skipif(not INTERPRETED, reason="runs in a subprocess under Triton's interpreter")


def cases() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)

    def sp(*shape: int, p: float = 0.3) -> torch.Tensor:
        return (torch.rand(*shape, generator=g) < p).float()

    return {
        "binary": sp(3, 5, 7, 9), "scaled": 0.7 * sp(3, 5, 7, 9), "multispike": sp(2, 40, 13) + sp(2, 40, 13),
        "analog": torch.rand(3, 5, 7, 9, generator=g), "negative": torch.randn(2, 30, 5, generator=g),
        "zero": torch.zeros(2, 3, 4), "nan": torch.tensor([[[0.0, 1.0, float("nan")]]]),
        "inf": torch.tensor([[[0.0, 1.0, float("inf")]]]), "negative zero": torch.tensor([[[0.0, -0.0, 1.0, 1.0]]]),
        "half": sp(4, 70, 33).half(), "bfloat16 multi": (sp(4, 70, 33) * 3).bfloat16(), "many rows": sp(2, 300, 100),
        "nearly binary": torch.tensor([[[1.0] * 100 + [1.0 - 2 ** -24]]]),
        "too large": torch.tensor([[[0.0, 1.0, 70000.0]]]), "two values": torch.tensor([[[0.0, 2.0, 2.0, 0.5]]]),
    }


def assert_same(x3: torch.Tensor, window: bool, fused_stats) -> None:
    """Same kind, events, window counts and event grids (totals over positions when P was refactored)."""
    e, t = eager_stats(x3, window), fused_stats(x3, window)
    ie, it = decide(e, x3.numel()), decide(t, x3.numel())
    assert (int(ie.code), float(ie.events)) == (int(it.code), float(it.events))
    if window:
        assert (float(e.active), float(e.saturated)) == (float(t.active), float(t.saturated))
    if x3.shape[2] > 1:
        assert torch.equal(e.grids.nonzero, t.grids.nonzero.cpu())
    assert torch.equal(e.grids.nonzero.sum(-1), t.grids.nonzero.sum(-1).cpu())
    if int(ie.code) in (kinds.ZERO, kinds.BINARY, kinds.MULTISPIKE):  # value sums exact for integers
        assert torch.equal(e.grids.values.sum(-1), t.grids.values.sum(-1).cpu())


LAYOUTS = [(0, 0, False), (1, 0, True), (1, 1, True), (0, 1, False)]  # (lead, trail, window)


def test_under_the_interpreter():
    if INTERPRETED:
        pytest.skip("already inside the interpreter run")
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", "interpreted"],
                         env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "passed" in run.stdout and "skipped" not in run.stdout.split("\n")[-2]


@interpreted
@pytest.mark.parametrize("name", list(cases()))
def test_interpreted_kernels_equal_eager_statistics(name):
    from bench.metrics import stats_triton

    x = cases()[name]
    for lead, trail, window in LAYOUTS:
        assert_same(as_3d(x, lead, trail), window, stats_triton.stats)


@interpreted
@pytest.mark.parametrize("name,kwargs,size", [("sew_resnet18", {}, 16), ("ms_resnet18", {}, 16),
                                              ("dsr_preact_resnet18", {"T": 2}, 16)])
def test_interpreted_probe_equals_the_host_path(name, kwargs, size, monkeypatch):
    """The whole device path through the kernels gives the host path's reports, bit for bit."""
    from bench.metrics.firing import calibrate_bn
    from bench.metrics.ops import profile
    from bench.models import create_model

    monkeypatch.setattr(kinds, "STATS_BACKEND", "triton")
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, width=0.25, input_size="cifar", **kwargs)
    calibrate_bn(model, [torch.rand(2, 2, 3, size, size)])
    model.eval()
    x = torch.rand(2, 2, 3, size, size)
    host = profile(model, x, host_decisions=True)
    device = profile(model, x, host_decisions=False)
    assert device[1].to_dict() == host[1].to_dict() and device[0].to_dict() == host[0].to_dict()
    assert host[1].totals["acs"] > 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", list(cases()))
def test_cuda_kernels_equal_eager_statistics(name):
    from bench.metrics import stats_triton

    x = cases()[name]
    for lead, trail, window in LAYOUTS:
        x3 = as_3d(x, lead, trail)
        assert_same(x3, window, lambda t, w: stats_triton.stats(t.cuda(), w))
    assert kinds.stats(as_3d(x.cuda(), 0, 0)).decided is not None  # the default for CUDA tensors


def test_a_kernel_that_cannot_be_built_falls_back_to_torch_operations(monkeypatch):
    """Exact either way: a kernel failing to build for a GPU warns once, then torch operations count."""
    stats_triton = pytest.importorskip("bench.metrics.stats_triton")
    calls = []

    def broken(x3, window=False):
        calls.append(1)
        raise stats_triton.KernelError("no kernel for this GPU")

    monkeypatch.setattr(stats_triton, "stats", broken)
    monkeypatch.setattr(kinds, "STATS_BACKEND", "triton")
    monkeypatch.setattr(kinds, "_fused_failure", [])
    x = cases()["multispike"]
    with pytest.warns(UserWarning, match="fused counting kernels unavailable"):
        first = kinds.classify(x)
    second = kinds.classify(x)
    assert calls == [1]  # not retried
    assert first.kind == second.kind == "multispike" and float(first.events) == float(x.sum())
