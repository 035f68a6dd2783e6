"""report.md and report.html from run folders: order of contents, self-containment, figures, merging."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bench.cli import main
from bench.report import render_report

FIXTURES = Path(__file__).parent / "fixtures"
SECTIONS = ["What was run", "Headline", "Published numbers", "Plots", "All cases", "Conventions", "Failures"]


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    md, html = render_report([FIXTURES / "run_cpu", FIXTURES / "run_gpu"], out)
    return out, md.read_text(encoding="utf-8"), html.read_text(encoding="utf-8")


def test_sections_in_order(merged):
    _, md, html = merged
    md_titles = re.findall(r"^## (.+)$", md, flags=re.M)
    assert [t for t in md_titles if t in SECTIONS] == SECTIONS
    html_titles = re.findall(r'<h2 id="[^"]+">([^<]+)</h2>', html)
    assert html_titles == SECTIONS


def test_markdown_figures_are_files_beside_it(merged):
    out, md, _ = merged
    links = re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", md)
    assert len(links) == 9
    for link in links:
        data = (out / link).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_html_is_self_contained(merged):
    _, _, html = merged
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == 9
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script" not in html  # the failure message's <script> is escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<meta name="viewport"' in html and "@media print" in html


def test_merged_runs_grouped_by_device(merged):
    _, md, _ = merged
    header = next(line for line in md.splitlines() if line.startswith("| model | main T"))
    assert "[AMD EPYC 7763]" in header and "[NVIDIA H100 80GB HBM3]" in header
    assert "gpu-run" in md and "cpu-run" in md


def test_failures_and_conventions_rendered(merged):
    _, md, _ = merged
    failures = md.split("## Failures", 1)[1]
    assert "Spiking ResNet-18\\|T=8\\|cpu\\|bs=32" in failures and "RuntimeError" in failures
    assert "&lt;script&gt;" in failures and "<script>" not in failures
    conventions = md.split("## Conventions", 1)[1].split("## Failures", 1)[0]
    from bench.metrics.conventions import OPS_CONVENTION_ID, OPS_RULES

    assert OPS_CONVENTION_ID in conventions
    assert OPS_RULES[0][1] in conventions  # rendered from the module, not retyped
    assert "45nm-fp32" in conventions and "Timing method" in conventions


def test_fallback_note_comes_first(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "run_cpu", run)
    meta = json.loads((run / "run.json").read_text())
    meta["data"]["fallback_note"] = "accuracy was not measured: data.root is not set; synthetic input was used"
    (run / "run.json").write_text(json.dumps(meta))
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    for r in records:  # params only: no figures to draw, a fast render
        r["metrics"] = {k: v for k, v in r["metrics"].items() if k == "params"}
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    md, html = render_report([run])
    lines = [line for line in md.read_text().splitlines() if line.strip()]
    assert lines[1].startswith("> **Note:** DATA FALLBACK: accuracy was not measured")
    body = html.read_text()
    assert body.index("DATA FALLBACK") < body.index("What was run")


def test_bench_report_cli_merges_runs(tmp_path, capsys):
    assert main(["report", str(FIXTURES / "run_cpu"), str(FIXTURES / "run_gpu"), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "report.html").is_file() and (tmp_path / "figures" / "throughput_per_device.png").is_file()
    assert main(["report", str(tmp_path / "missing")]) == 2
