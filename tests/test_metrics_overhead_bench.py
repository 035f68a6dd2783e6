"""benchmarks/metrics_overhead.py's per-round ratio, against values worked out by hand."""

from __future__ import annotations

import importlib.util
import statistics
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "metrics_overhead.py"


@pytest.fixture(scope="module")
def overhead():
    spec = importlib.util.spec_from_file_location("metrics_overhead", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["metrics_overhead"] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules["metrics_overhead"]


def test_round_ratio_pairs_each_rounds_calls(overhead):
    # round 1: (110 + 90) / (100 + 100) = 1.0; round 2, on a machine twice as slow: (220 + 242) / (200 + 220) = 1.1
    ratios = overhead.round_ratios([110.0, 90.0, 220.0, 242.0], [100.0, 100.0, 200.0, 220.0])
    assert ratios == pytest.approx([1.0, 1.1])
    # the ratio of the medians mixes the two machine speeds: (90, 110, 220, 242) over (100, 100, 200, 220)
    assert statistics.median([110.0, 90.0, 220.0, 242.0]) / statistics.median([100.0, 100.0, 200.0, 220.0]) \
        == pytest.approx(165 / 150)


def test_round_ratio_refuses_unpaired_times(overhead):
    with pytest.raises(ValueError, match="two times per side per round"):
        overhead.round_ratios([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="two times per side per round"):
        overhead.round_ratios([1.0, 2.0], [1.0, 2.0, 3.0, 4.0])
