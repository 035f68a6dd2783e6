"""benchmarks/kernel_speed.py runs on the CPU at tiny settings: every family, all variants, output checks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "kernel_speed.py"


@pytest.mark.slow
def test_kernel_speed_runs_every_family_on_cpu(capsys, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts benchmarks/ on it (for zoo_speed)
    spec = importlib.util.spec_from_file_location("kernel_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "kernel_speed", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    code = module.main(["--device", "cpu", "--size", "32", "--batch", "1", "--rounds", "1", "--min-runs", "1",
                        "--warmup", "0", "--min-time", "0"])
    out = capsys.readouterr().out
    assert code == 0, out
    for family in module.families(4, 32):
        assert family in out
    assert out.count("fused vs reference: max|diff| 0.00e+00") == 6  # bit for bit on CPU
    assert out.count("fused vs spikingjelly: max|diff| 0.00e+00") == 3
    assert "MS-ResNet-18 / Spiking ResNet-18 (fused)" in out and "MISSED" not in out
