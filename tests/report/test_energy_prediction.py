""""Do the estimates predict the measurement?": per device, the compute-only estimate and every hardware profile's
SNN total set against the GPU's measured gross energy (fits equal an independent numpy computation, a model left out
is named with its reason, NaN is never a point), the measured note beside each model's "Energy with data movement"
table, and nothing new for a CPU run. Records: a real CPU run made GPU-like (``gpu_like``) with measured values
written in by hand, plus copies of the tiny net under other labels with scaled estimates (more than two points)."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import numpy as np
import pytest
from real_run import GPU_NAME, gpu_like, read_jsonl, real_run, write_jsonl
from test_report_browser import CHROMIUM, fits, inspect_page

from bench.contract import energy_text
from bench.report import energy_plot as ep
from bench.report import render_report
from bench.report.content import build_content
from bench.results import load_run

DEVICE = f"cuda:0 ({GPU_NAME})"
MIG = "NVML energy counter unavailable: MIG"
# label -> (estimate scale against the tiny net, measured J per sample at each T); "unmeasured" has none.
MODELS = {"x3": (3.0, {1: 0.031, 2: 0.05}), "x9": (9.0, {1: 0.047, 2: 0.09}), "unmeasured": (5.0, None)}
SEW_J = {1: 0.2, 2: 0.35}
TINY_J = {1: 0.012, 2: 0.02}


def scaled(r: dict, label: str, factor: float, joules: dict[int, float] | None) -> dict:
    """A copy of the tiny net's record under ``label`` with every estimate x ``factor`` and the measured value."""
    out = copy.deepcopy(r)
    out["model"]["label"] = label
    out["case_id"] = out["case_id"].replace("tiny", label)
    energy = out["metrics"]["energy"]
    energy["energy_mj"] *= factor
    for p in energy["hardware"].values():
        p["snn_pj"]["total"] *= factor
    measured = out["metrics"]["measured_energy"]
    measured["gpu_energy_j_per_sample"] = None if joules is None else joules[out["T"]]
    measured["gpu_energy_j_per_sample_why"] = MIG if joules is None else None
    return out


@pytest.fixture(scope="module")
def gpu(tmp_path_factory) -> Path:
    run = gpu_like(real_run(tmp_path_factory), tmp_path_factory.mktemp("prediction") / "gpu")
    records = read_jsonl(run / "results.jsonl")
    for r in records:
        by_T = TINY_J if r["model"]["label"] == "tiny" else SEW_J
        r["metrics"]["measured_energy"] |= {"gpu_energy_j_per_sample": by_T[r["T"]],
                                             "gpu_energy_j_per_sample_why": None}
    tiny = [r for r in records if r["model"]["label"] == "tiny"]
    records += [scaled(r, label, f, j) for label, (f, j) in MODELS.items() for r in tiny]
    write_jsonl(run / "results.jsonl", records)
    return run


def main_cases(records: list[dict]) -> dict[str, dict]:
    """Each model's case by hand: the tiny nets at their trained T = 1, SEW at its largest T = 2 (one batch: 8)."""
    return {r["model"]["label"]: r for r in records
            if r["status"] == "ok" and r["T"] == (2 if r["model"]["label"] == "SEW w/16" else 1)}


def test_one_row_per_estimate_with_fits_equal_to_numpy(gpu):
    records = load_run(gpu).records
    (table,) = ep.prediction_tables(records)
    assert table.device == DEVICE
    cases = main_cases(records)
    profiles = list(cases["tiny"]["metrics"]["energy"]["hardware"])
    assert len(profiles) >= 2
    frame = table.frame.set_index("estimate")
    assert list(frame.index) == ["compute-only (energy.energy_mj)"] + [f"{p}: SNN total" for p in profiles]
    fitted = [label for label in cases if label != "unmeasured"]
    estimates = {"compute-only (energy.energy_mj)": lambda r: r["metrics"]["energy"]["energy_mj"]}
    estimates |= {f"{p}: SNN total": lambda r, p=p: r["metrics"]["energy"]["hardware"][p]["snn_pj"]["total"] / 1e9
                  for p in profiles}
    for name, estimate in estimates.items():
        x = np.log10([estimate(cases[m]) for m in fitted])
        y = np.log10([cases[m]["metrics"]["measured_energy"]["gpu_energy_j_per_sample"] for m in fitted])
        slope, intercept = np.polyfit(x, y, 1)
        row = frame.loc[name]
        assert row["models (n)"] == len(fitted) == 4
        assert row["Pearson r (log10)"] == f"{np.corrcoef(x, y)[0, 1]:.3f}"
        assert row["slope (log-log)"] == f"{slope:.3g}"
        assert row["measured J per estimated mJ"] == f"{10 ** intercept:.3g}"
        assert row["left out (why)"] == ("unmeasured (T=1, batch 8): measured_energy.gpu_energy_j_per_sample is "
                                         f"null ({MIG})")
    for said in ("gross", "idle draw included", "ranking and scaling, never an absolute check", DEVICE,
                 "tiny: T=1, batch 8", "SEW w/16: T=2, batch 8"):
        assert said in table.caption


def test_nan_or_missing_measurement_is_left_out_and_named_never_a_point():
    """A NaN measured value was a point (log10(nan) in the fit): now the model is left out and named."""
    def rec(label: str, est: float, meas: float | None) -> dict:
        return {"model": {"label": label, "name": label}, "T": 4, "batch_size": 8, "device": "cuda:0",
                "device_info": {"device_name": GPU_NAME}, "status": "ok",
                "metrics": {"energy": {"energy_mj": est}, "measured_energy": {"gpu_energy_j_per_sample": meas}}}
    records = [rec("A", 1.0, 0.1), rec("B", 10.0, 0.5), rec("C", 100.0, 2.0), rec("N", 5.0, math.nan),
               rec("Z", 5.0, None)]
    points, notes = ep.energy_points(records)
    assert [p.label for p in points] == ["A", "B", "C"]
    assert notes == [f"N on {DEVICE} (T=4, batch 8): measured_energy.gpu_energy_j_per_sample = nan is not a "
                     "finite number",
                     f"Z on {DEVICE} (T=4, batch 8): measured_energy.gpu_energy_j_per_sample is null (not recorded)"]
    (table,) = ep.prediction_tables(records)
    row = table.frame.iloc[0]
    assert list(table.frame["estimate"]) == ["compute-only (energy.energy_mj)"]  # no hardware profiles recorded
    assert row["models (n)"] == 3 and "N (T=4, batch 8)" in row["left out (why)"] and "Z (T=4" in row["left out (why)"]
    x, y = np.log10([1.0, 10.0, 100.0]), np.log10([0.1, 0.5, 2.0])
    assert row["slope (log-log)"] == f"{np.polyfit(x, y, 1)[0]:.3g}"


def test_each_model_table_quotes_its_measured_energy(gpu):
    records = load_run(gpu).records
    content = build_content([load_run(gpu)])
    (section,) = [s for s in content.sections if s.title == "Energy with data movement"]
    cases = main_cases(records)
    hw = [b for b in section.blocks if getattr(b, "ident", "").startswith("energy-hw-")
          and not b.ident.endswith("-layers")]
    labels = [re.match(r"(.+) at T=", b.caption).group(1) for b in hw]
    assert labels == ["tiny", "SEW w/16", "x3", "x9", "unmeasured"]
    for label, block in zip(labels, hw, strict=True):
        said = [n for n in block.notes if n.startswith("measured on ")]
        if label == "unmeasured":
            assert said == []  # null measurement: no note, never "0 J"
            continue
        joules = cases[label]["metrics"]["measured_energy"]["gpu_energy_j_per_sample"]
        assert said == [n for n in said if n.startswith(f"measured on {GPU_NAME}, batch 8: {energy_text(joules)} "
                                                         "per sample, gross")] and len(said) == 1
    ids = [b.ident for b in section.blocks if getattr(b, "ident", "").startswith("energy-prediction-")]
    assert ids == ["energy-prediction-1"]


def test_report_markdown_and_html_show_the_table(gpu, tmp_path):
    md_path, html_path = render_report([gpu], tmp_path)
    md, html = md_path.read_text(encoding="utf-8"), html_path.read_text(encoding="utf-8")
    assert f"Do the estimates predict the measurement? {DEVICE}." in md
    assert md.count("| compute-only (energy.energy_mj) |") == 1
    assert 'id="energy-prediction-1"' in html and "Do the estimates predict the measurement?" in html
    assert f"measured on {GPU_NAME}, batch 8:" in md and f"measured on {GPU_NAME}, batch 8:" in html


def test_cpu_run_shows_nothing_new(tmp_path_factory, tmp_path):
    run = real_run(tmp_path_factory)
    records = [r for r in load_run(run).records if r["status"] == "ok"]
    assert all(r["metrics"]["measured_energy"]["gpu_energy_j_per_sample"] is None for r in records)
    assert ep.prediction_tables(records) == []
    md = render_report([run], tmp_path)[0].read_text(encoding="utf-8")
    assert "Do the estimates predict" not in md and "measured on " not in md


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
@pytest.mark.parametrize("width", [1400, 390])
def test_table_fits_the_screen_in_a_browser(gpu, tmp_path, width):
    html = render_report([gpu], tmp_path / "report")[1]
    page = inspect_page(html, tmp_path / "profile", width=width, height=900)
    assert page["errors"] == [] and page["pageWidth"] <= page["viewportWidth"] and page["splitWords"] == []
    (table,) = [t for t in page["compact"] if t["id"] == "energy-prediction-1"]
    assert fits(table["wrap"]) and fits(table["table"]), table
    assert {r["display"] for r in table["rows"]} == {"table-row" if width > 640 else "block"}


def test_without_hardware_profiles_only_the_compute_only_row_with_a_note(gpu, tmp_path):
    """Runs made before the plug-in priced profiles, with measured GPU energy: the compute-only row alone."""
    run = tmp_path / "old"
    run.mkdir()
    for f in gpu.iterdir():
        if f.is_file():
            (run / f.name).write_bytes(f.read_bytes())
    records = read_jsonl(run / "results.jsonl")
    for r in records:
        r["metrics"]["energy"].pop("hardware", None)
        r["metrics"]["energy"].pop("hw_layers", None)
    write_jsonl(run / "results.jsonl", records)
    (section,) = [s for s in build_content([load_run(run)]).sections if s.title == "Energy with data movement"]
    assert section.blocks[0].text.startswith("No hardware profiles were recorded")
    (table,) = section.blocks[1:]
    assert list(table.frame["estimate"]) == ["compute-only (energy.energy_mj)"]
