"""The estimated-vs-measured energy plot: point selection (main T, largest batch, per device), the log-log fit
against values worked out by hand, notes for models left out, rendering from plain records, no torch import."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import energy_plot as ep

GPU = {"device_name": "NVIDIA H100 80GB HBM3"}


def record(label: str, T: int, batch: int, est_mj: float | None, meas_j: float | None, *, device: str = "cuda:0",
           trained_T: int | None = None, status: str = "ok", why: str = "") -> dict:
    measured = {"gpu_energy_j_per_sample": meas_j}
    if meas_j is None:
        measured["gpu_energy_j_per_sample_why"] = why
    return {"model": {"name": label.lower(), "label": label}, "T": T, "trained_T": trained_T, "batch_size": batch,
            "device": device, "device_info": GPU if device.startswith("cuda") else {"device_name": "EPYC"},
            "status": status, "metrics": {"energy": {"energy_mj": est_mj}, "measured_energy": measured}}


def test_points_use_main_T_and_largest_batch_per_device():
    records = [
        record("A", 4, 1, 1.0, 9.0), record("A", 4, 64, 1.0, 0.5),  # largest batch: 64
        record("A", 2, 64, 0.5, 0.2),  # not the main T (largest evaluated is 4)
        record("B", 4, 64, 3.0, 7.0, trained_T=2), record("B", 2, 64, 2.0, 0.9, trained_T=2),  # trained T wins
        record("C", 4, 64, 5.0, None, why="NVML energy counter unavailable: MIG"),
        record("D", 4, 64, 5.0, 1.0, status="failed"),
        record("A", 4, 64, 1.0, None, device="cpu", why="device cpu is not a CUDA GPU"),
    ]
    points, notes = ep.energy_points(records)
    assert [(p.label, p.T, p.batch_size, p.estimated_mj, p.measured_j) for p in points] == [
        ("A", 4, 64, 1.0, 0.5), ("B", 2, 64, 2.0, 0.9)]
    assert points[0].device == "cuda:0 (NVIDIA H100 80GB HBM3)"
    assert notes == [
        "A on cpu (EPYC) (T=4, batch 64): measured_energy.gpu_energy_j_per_sample is null (device cpu is not a "
        "CUDA GPU)",
        "C on cuda:0 (NVIDIA H100 80GB HBM3) (T=4, batch 64): measured_energy.gpu_energy_j_per_sample is null "
        "(NVML energy counter unavailable: MIG)",
    ]


def point(x: float, y: float) -> ep.EnergyPoint:
    return ep.EnergyPoint("m", "cuda:0", 4, 64, x, y)


def test_log_fit_by_hand():
    # log10 x = 0, 1, 2 and log10 y = 0, 2, 3: means 1 and 5/3; Sxy = 3, Sxx = 2, Syy = 14/3.
    fit = ep.log_fit([point(1, 1), point(10, 100), point(100, 1000)])
    assert fit.n == 3
    assert fit.slope == pytest.approx(1.5)
    assert fit.intercept == pytest.approx(5 / 3 - 1.5)
    assert fit.r == pytest.approx(3 / math.sqrt(2 * 14 / 3))  # 0.98198
    # Exactly proportional: slope 1, r 1, 10 ** intercept = joules per estimated millijoule.
    fit = ep.log_fit([point(0.5, 1e-3), point(2.0, 4e-3), point(8.0, 16e-3)])
    assert (fit.slope, fit.r) == (pytest.approx(1.0), pytest.approx(1.0))
    assert 10 ** fit.intercept == pytest.approx(2e-3)
    assert ep.log_fit([point(1, 1)]) is None
    assert ep.log_fit([point(2, 1), point(2, 3)]) is None  # one estimate: no slope
    assert ep.log_fit([point(1, 3), point(2, 3)]).r is None  # equal measurements: r undefined


def test_renders_from_records(tmp_path: Path):
    records = [record(name, 4, 64, est, 2e-3 * est) for name, est in (("A", 0.5), ("B", 2.0), ("C", 8.0))]
    records.append(record("D", 4, 64, 4.0, None, why="work not resolved above rest idle"))
    out = tmp_path / "energy.png"
    plot = ep.estimated_vs_measured(records, out, colors={"A": "#123456"})
    assert plot is not None
    assert plot.png.startswith(b"\x89PNG") and out.read_bytes() == plot.png
    (fit,) = plot.fits.values()
    assert fit.slope == pytest.approx(1.0) and fit.r == pytest.approx(1.0)
    assert "slope 1, r = 1.000, n = 3" in plot.caption
    assert [p.label for p in plot.points] == ["A", "B", "C"]
    assert plot.notes and "D on cuda:0" in plot.notes[0]


def test_tick_labels_are_plain_numbers_at_1_2_3_5():
    assert [ep._tick(v) for v in (0.02, 0.03, 0.05, 0.07, 1.0, 10.0, 40.0, 300.0)] == \
        ["0.02", "0.03", "0.05", "", "1", "10", "", "300"]


def test_nothing_to_plot_is_none():
    assert ep.estimated_vs_measured([record("A", 4, 64, 1.0, None, why="no GPU")]) is None
    assert ep.estimated_vs_measured([]) is None


def test_module_imports_neither_torch_nor_metrics():
    path = Path(ep.__file__)
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('energy_plot', {str(path)!r})\n"
            "module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)\n"
            "spec.loader.exec_module(module)\n"
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith('bench.metrics')]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)
