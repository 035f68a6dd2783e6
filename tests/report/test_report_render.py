"""report.md and report.html from real run folders: order of contents, self-containment, figures, merging,
conventions and declarations read from run.json, old runs, and rendering without torch."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from real_run import GPU_NAME, copy_run, edit_json, gpu_like, read_jsonl, real_run, write_jsonl
from weights import relabelled

from bench.cli import main
from bench.report import render_report
from bench.report.html import breakable

SECTIONS = ["What was run", "Headline", "Published numbers", "Plots", "All cases", "Conventions", "Failures"]
ROOT = Path(__file__).parents[2]
N_FIGURES = 7  # accuracy vs T, vs energy, 2 firing heatmaps, 2 ops charts, throughput (+ energy vs rate, below)
ENERGY_HW = "Energy with data movement"  # section (and energy-vs-rate plot) of runs whose energy priced hardware


def priced_hardware(run: Path) -> bool:
    """Whether the run's energy records hold hardware profiles (``energy.hardware``, newer plug-in)."""
    return any(((r.get("metrics") or {}).get("energy") or {}).get("hardware") for r in read_jsonl(run / "results.jsonl"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return real_run(tmp_path_factory)


@pytest.fixture(scope="module")
def trained_dir(run_dir, tmp_path_factory):
    """The real run as if its models were loaded from snnbench checkpoints (failed cases kept)."""
    return relabelled(run_dir, tmp_path_factory.mktemp("trained") / "run", "snnbench", ok_only=False)


@pytest.fixture(scope="module")
def gpu_dir(trained_dir, tmp_path_factory):
    return gpu_like(trained_dir, tmp_path_factory.mktemp("gpu") / "run")


@pytest.fixture(scope="module")
def merged(trained_dir, gpu_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    md, html = render_report([trained_dir, gpu_dir], out)
    return out, md.read_text(encoding="utf-8"), html.read_text(encoding="utf-8")


def section(md: str, title: str) -> str:
    return md.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_sections_in_order(merged, trained_dir):
    _, md, html = merged
    expected = SECTIONS[:3] + [ENERGY_HW] * priced_hardware(trained_dir) + SECTIONS[3:]
    md_titles = re.findall(r"^## (.+)$", md, flags=re.M)
    assert [t for t in md_titles if t in expected] == expected
    html_titles = re.findall(r'<h2 id="[^"]+">([^<]+)</h2>', html)
    assert html_titles == expected


def test_markdown_figures_are_files_beside_it(merged, trained_dir):
    out, md, _ = merged
    links = re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", md)
    assert len(links) == N_FIGURES + priced_hardware(trained_dir)
    for link in links:
        assert (out / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_html_is_self_contained(merged, trained_dir):
    _, _, html = merged
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == N_FIGURES + priced_hardware(trained_dir)
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script" not in html
    assert '<meta name="viewport"' in html and "@media print" in html
    assert "shared/reference" not in html  # the report cites nothing outside the repository


def test_error_messages_are_escaped(run_dir, tmp_path):
    run = copy_run(run_dir, tmp_path / "run")
    records = read_jsonl(run / "results.jsonl")
    failed = next(r for r in records if r["status"] == "failed")
    failed["error"]["message"] = "deliberate failure <script>alert(1)</script>"
    write_jsonl(run / "results.jsonl", records)
    md, html = render_report([run])
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html.read_text() and "<script" not in html.read_text()
    assert "&lt;script&gt;" in md.read_text() and "<script>" not in md.read_text()


HOSTILE = "<img src=x onerror=alert(1)>"


def test_text_from_a_run_is_escaped_in_markdown_too(run_dir, tmp_path):
    """Labels, kwargs, notes, messages and stored declarations are text in report.md as in report.html: a
    Markdown viewer that renders raw HTML must not see a tag from a run."""
    run = copy_run(run_dir, tmp_path / "run")
    records = read_jsonl(run / "results.jsonl")
    for r in records:
        if r["model"]["label"] == "tiny":
            r["model"]["label"] = HOSTILE  # also in the UNTRAINED note and the figures' captions
            r["model"]["kwargs"] = {"note": "<iframe src=x>"}
        if r["status"] == "failed":
            r["error"]["message"] = "boom <b onmouseover=alert(2)>x</b>"
    write_jsonl(run / "results.jsonl", records)
    meta = json.loads((run / "run.json").read_text())
    meta["notes"] = ["a note <svg onload=alert(3)>"]
    meta["description"] = "<a href=javascript:alert(4)>suite</a>"
    meta["metric_contracts"]["params"]["fields"][0]["title"] = "params <video src=x onerror=alert(5)>"
    (run / "run.json").write_text(json.dumps(meta))
    md, html = render_report([run])
    text = md.read_text()
    for tag in ("<img", "<iframe", "<b ", "<svg", "<a ", "<video"):
        assert tag not in text, (tag, text[max(0, text.find(tag) - 200):text.find(tag) + 80])
    page = html.read_text()
    for raw in (HOSTILE, "<iframe src=x>", "<b onmouseover", "<svg onload", "<a href=javascript", "<video src"):
        assert raw not in page, raw
    assert "&lt;img src=x onerror=alert(1)" in text and "&lt;svg onload=alert(3)" in text
    assert "<details><summary>" in text  # the report's own markup stays


def test_merged_runs_grouped_by_device(merged, run_dir):
    _, md, _ = merged
    speed = section(md, "Headline").split("_Speed:", 1)[1]
    cpu_name = read_jsonl(run_dir / "results.jsonl")[0]["device_info"]["device_name"]
    assert [line.split(" | ")[:2] for line in speed.splitlines() if line.startswith("| tiny |")] == [
        ["| tiny", cpu_name], ["| tiny", GPU_NAME]]
    assert "gpu-like" in md


def test_failures_rendered(merged):
    _, md, _ = merged
    failures = section(md, "Failures")
    assert "broken\\|T=1\\|cpu\\|bs=8" in failures and "deliberate failure inside forward" in failures


def test_conventions_are_the_stored_ones(merged):
    """The text printed is run.json's copy, rendered the same as the installed module renders it."""
    from bench.metrics.conventions import conventions_markdown
    from bench.report.markdown import md_text

    _, md, _ = merged
    conventions = section(md, "Conventions")
    expected = "\n".join("#" + line if line.startswith("#") else line
                         for line in md_text(conventions_markdown()).splitlines())  # 'folded into &lt;layer>'
    assert "folded into &lt;layer>" in expected
    assert expected in conventions
    assert "#### top-1 (%)" not in conventions and "- **top-1 (%)** (`top1`" in conventions
    assert "Vary from run to run (measurements of the machine): latency, memory, measured_energy" in conventions


def test_report_prints_the_conventions_each_run_used(run_dir, tmp_path):
    """A past run under other rules: its stored text is printed, each id with the runs that used it."""
    old = copy_run(run_dir, tmp_path / "old", ok_only=True)
    meta = json.loads((old / "run.json").read_text())
    meta["run_id"] = "old-rules"
    meta["conventions"] = meta["conventions"] | {"id": "snnbench-ops-v0",
                                                 "ops": {"Unit": "counted the old way (a test's text)"}}
    (old / "run.json").write_text(json.dumps(meta))
    records = read_jsonl(old / "results.jsonl")
    for r in records:
        for metric in ("ops", "energy"):
            r["metrics"][metric]["convention"] = "snnbench-ops-v0"
    write_jsonl(old / "results.jsonl", records)
    md = render_report([run_dir, old], tmp_path / "out")[0].read_text()
    conventions = section(md, "Conventions")
    assert "### Counting conventions (snnbench-ops-v0)\n\nUsed by run(s): old-rules." in conventions
    assert "counted the old way (a test's text)" in conventions
    assert "### Counting conventions (snnbench-ops-v3)\n\nUsed by run(s): " in conventions


def test_fallback_note_comes_first(run_dir, tmp_path):
    run = copy_run(run_dir, tmp_path / "run")
    meta = json.loads((run / "run.json").read_text())
    meta["data"]["fallback_note"] = "accuracy was not measured: data.root is not set; synthetic input was used"
    (run / "run.json").write_text(json.dumps(meta))
    records = read_jsonl(run / "results.jsonl")
    for r in records:  # params only: no figures to draw, a fast render
        r["metrics"] = {k: v for k, v in r["metrics"].items() if k == "params"}
    write_jsonl(run / "results.jsonl", records)
    md, html = render_report([run])
    lines = [line for line in md.read_text().splitlines() if line.strip()]
    assert lines[1].startswith("> **Note:** DATA FALLBACK: accuracy was not measured")
    body = html.read_text()
    assert body.index("DATA FALLBACK") < body.index("What was run")


def test_bench_report_cli_merges_runs(run_dir, gpu_dir, tmp_path):
    assert main(["report", str(run_dir), str(gpu_dir), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "report.html").is_file() and (tmp_path / "figures" / "throughput_per_device.png").is_file()
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_merging_runs_needs_out_so_no_runs_own_report_is_replaced(run_dir, tmp_path, capsys):
    a, b = copy_run(run_dir, tmp_path / "a", ok_only=True), copy_run(run_dir, tmp_path / "b", ok_only=True)
    (a / "report.md").write_text("a's own report")
    assert main(["report", str(a), str(b)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--out" in err and "2 run folders" in err and "Traceback" not in err
    assert (a / "report.md").read_text() == "a's own report" and not (b / "report.md").exists()


def test_bench_report_says_where_it_writes_and_what_it_replaces(run_dir, tmp_path, capsys):
    a = copy_run(run_dir, tmp_path / "a", ok_only=True)
    (a / "report.md").write_text("a's own report")
    assert main(["report", str(a)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"replaced the run's own report in {a} (--out DIR writes elsewhere) report: {a / 'report.md'}" in err
    out = tmp_path / "elsewhere"
    assert main(["report", str(a), "--out", str(out)]) == 0  # a new folder: nothing replaced
    err = " ".join(capsys.readouterr().err.split())
    assert "replaced" not in err and f"report: {out / 'report.md'}" in err
    assert main(["report", str(a), "--out", str(out)]) == 0
    assert f"replaced the report that was there in {out} report:" in " ".join(capsys.readouterr().err.split())


def test_old_run_renders_with_the_installed_declarations_only_through_bench_report(run_dir, tmp_path):
    old = copy_run(run_dir, tmp_path / "old")
    meta = json.loads((old / "run.json").read_text())
    del meta["metric_contracts"], meta["conventions"]
    (old / "run.json").write_text(json.dumps(meta))
    plain = render_report([old], tmp_path / "plain")[0].read_text()
    assert "its metric values are not shown" in plain and "| top-1 (%)" not in plain
    assert main(["report", str(old), "--out", str(tmp_path / "cli")]) == 0
    cli = (tmp_path / "cli" / "report.md").read_text()
    assert "rendered with the declarations and conventions of the installed version" in cli
    assert "| top-1 (%)" in cli and "### Counting conventions (snnbench-ops-v3)" in cli


def test_csv_header_follows_the_declarations(run_dir):
    header = (run_dir / "results.csv").read_text().splitlines()[0].split(",")
    contracts = json.loads((run_dir / "run.json").read_text())["metric_contracts"]
    declared = [f"{m}.{f['name']}" for m, c in contracts.items() for f in c["fields"]]
    metric_columns = [c for c in header if "." in c and not c.endswith("_why")]
    assert metric_columns == [c for c in declared if c in metric_columns]
    assert header.index("measured_energy.cpu_energy_j_per_sample_why") == \
        header.index("measured_energy.cpu_energy_j_per_sample") + 1


RENDER_WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None  # any import of torch now raises ImportError
from bench.report import render_report
from bench.compare import compare_run, make_baseline, save_baseline
from bench.history import append_run
run, out = sys.argv[1], sys.argv[2]
render_report([run], out)
path = save_baseline(make_baseline(run, "b"), out + "/b.json")
changes, _, _ = compare_run(path, run)
append_run(run, out + "/h.sqlite")
loaded = sorted(m for m in sys.modules if m.startswith("bench"))
assert not any(m.startswith(("bench.metrics", "bench.runner", "bench.suite")) for m in loaded), loaded
print(len(changes), "changes")
"""


def test_report_compare_and_history_run_where_torch_cannot_be_imported(run_dir, tmp_path):
    ok = copy_run(run_dir, tmp_path / "ok", ok_only=True)
    done = subprocess.run([sys.executable, "-c", RENDER_WITHOUT_TORCH, str(ok), str(tmp_path)], cwd=tmp_path,
                          capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                                               "BENCH_HISTORY": "off"})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "report.html").is_file() and "changes" in done.stdout


def test_run_json_edits_reach_the_report(run_dir, tmp_path):
    """Titles come from run.json, not from the installed plug-ins."""
    run = copy_run(run_dir, tmp_path / "run")
    meta = json.loads((run / "run.json").read_text())
    meta["metric_contracts"]["ops"]["fields"][0]["title"] = "accumulates (renamed in run.json)"
    edit_json(run / "run.json", metric_contracts=meta["metric_contracts"])
    md = render_report([run], tmp_path / "out")[0].read_text()
    assert "| accumulates (renamed in run.json) |" in section(md, "Headline")


def test_reproduction_section_shows_the_gap_and_the_suites_verdict(run_dir, tmp_path):
    """SEW w/16 at T=2 relabelled as an unmodified sew_resnet18 on ImageNet at T=4 from the SEW authors' weights
    (published 63.18): ours 62.90 is -0.28 points away; the suite's tolerance 0.1 makes it a regression."""
    run = copy_run(run_dir, tmp_path / "run", ok_only=True)
    records = read_jsonl(run / "results.jsonl")
    for r in records:
        if r["case_id"] == "SEW w/16|T=2|cpu|bs=8":
            r.update(T=4, case_id="SEW w/16|T=4|cpu|bs=8")
            r["model"].update(kwargs={}, checkpoint="sew18.pth", checkpoint_format="sew-official", untrained=False)
            r["data"]["dataset"] = "imagenet"
            r["metrics"]["accuracy"]["top1"] = 62.90
    write_jsonl(run / "results.jsonl", records)
    md = render_report([run], tmp_path / "plain")[0].read_text()
    reproduction = section(md, "Reproduction")
    row = next(line for line in reproduction.splitlines() if line.startswith("| SEW w/16 |"))
    assert "| 4 |" in row and "| official (sew-official) | 62.90 | 63.18 | -0.28 |" in row
    assert "add \"published_gap.top1\" = { abs = 0.5 }" in reproduction
    suite = tmp_path / "gap.toml"
    suite.write_text('[tolerances]\n"published_gap.top1" = { abs = 0.1 }\n')
    edit_json(run / "run.json", suite_file=str(suite))
    md = render_report([run], tmp_path / "strict")[0].read_text()
    row = next(line for line in section(md, "Reproduction").splitlines() if line.startswith("| SEW w/16 |"))
    assert "| -0.28 | \\|gap\\| ≤ 0.1 | regression |" in row
    assert "Reproduction" not in render_report([run_dir], tmp_path / "none")[0].read_text()


def test_latex_headline_is_booktabs_escaped_with_units_in_headers(trained_dir, tmp_path):
    run = copy_run(trained_dir, tmp_path / "run")
    records = read_jsonl(run / "results.jsonl")
    for r in records:
        r["model"]["label"] = r["model"]["label"].replace("tiny", "tiny & 50% {of} $x_1$ #2 ~^\\")
    write_jsonl(run / "results.jsonl", records)
    assert main(["report", str(run), "--out", str(tmp_path / "out"), "--latex"]) == 0
    tex = (tmp_path / "out" / "report.tex").read_text()
    assert tex.count("\\begin{table}") == 2 and "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    label = r"tiny \& 50\% \{of\} \$x\_1\$ \#2 \textasciitilde{}\textasciicircum{}\textbackslash{}"
    assert f"\n{label} & snnbench & 1 (trained) & " in tex
    assert "top-1 (\\%)" in tex and "compute-only energy / sample (nJ)" in tex and "latency p50 (ms)" in tex
    assert "\\label{tab:snnbench-headline}" in tex and "\\label{tab:snnbench-speed}" in tex
    assert "µ" not in tex and "⚠" not in tex


def test_terminal_summary_fits_80_columns(run_dir, trained_dir):
    """Every line within 80 columns, no value folded; fields that do not fit are named, the rest shown whole."""
    import io

    from rich.console import Console

    from bench.cli import _print_summary

    for folder in (run_dir, trained_dir):
        records = read_jsonl(folder / "results.jsonl")
        console = Console(width=80, file=io.StringIO(), record=True, color_system=None)
        _print_summary(folder, records, console)
        text = console.export_text()
        assert max(len(line) for line in text.splitlines()) <= 80, text
        table, _, note = text.partition("not shown at 80 columns: ")
        assert "summary, device cpu, batch 8" in " ".join(table.split())
        rows = [line for line in table.splitlines() if line.startswith(("tiny ", "SEW w/16 ", "broken "))]
        assert len(rows) == 6, text
        tiny = next(r for r in records if r["case_id"] == "tiny|T=1|cpu|bs=8")
        sops = f"{tiny['metrics']['ops']['sops']:.3g}"
        assert any(sops in line.split() for line in rows if line.startswith("tiny ")), text
        assert note.startswith("throughput (samples/s) (every field"), text  # named, not in the table
        assert "samples/s" not in table and "latency" in table


def test_markdown_from_run_json_stays_text(run_dir, tmp_path):
    """run.json's conventions are rendered by markdown-it with raw HTML off: a tag in them is text, not markup."""
    run = copy_run(run_dir, tmp_path / "run", ok_only=True)
    meta = json.loads((run / "run.json").read_text())
    meta["conventions"]["ops"] = meta["conventions"]["ops"] | {"Unit": "counted <img src=x onerror=alert(1)> here"}
    (run / "run.json").write_text(json.dumps(meta))
    html = render_report([run], tmp_path / "out")[1].read_text()
    assert "counted &lt;img src=x onerror=alert(1)&gt; here" in html and "<img src=x" not in html
    assert '<div class="table-wrap"><table>' in html  # the profiles table scrolls in its own box


def test_bench_report_options(trained_dir, tmp_path):
    """--max-layers 10 charts SEW w/16's 20 neuron layers in stages (pre, layers.0 .. layers.3); an IQR
    threshold of 0 flags every timed case; bad values are refused by the parser (exit 2)."""
    assert main(["report", str(trained_dir), "--out", str(tmp_path), "--max-layers", "10",
                 "--unstable-rel-iqr", "0"]) == 0
    md = (tmp_path / "report.md").read_text()
    assert "SEW w/16: firing rate (% of neurons firing) per stage (20 layers in 5 stages" in md
    speed = section(md, "Headline").split("_Speed:", 1)[1].split("\n- ")[0]
    assert all(line.rstrip(" |").endswith("⚠") for line in speed.splitlines() if line.startswith(("| tiny", "| SEW")))
    for bad in (["--max-layers", "0"], ["--unstable-rel-iqr", "-1"]):
        with pytest.raises(SystemExit) as stop:
            main(["report", str(trained_dir), "--out", str(tmp_path), *bad])
        assert stop.value.code == 2


@pytest.mark.parametrize(("text", "expected"), [
    ("a <b> & c", "a &lt;b> &amp; c"),
    ("keep `x < y` as code", "keep `x < y` as code"),
    ("``a ` <b>`` then <i>", "``a ` <b>`` then &lt;i>"),
    ("\\`<img src=x>`", "\\`&lt;img src=x>`"),  # an escaped backtick opens no code span
    ("`open <img src=x>", "`open &lt;img src=x>"),  # an unclosed span is text
    ("`a\n<img>`", "`a\n&lt;img>`"),  # per line: a span across lines is escaped (safe)
])
def test_md_text_escapes_html_outside_code_spans(text, expected):
    from bench.report.markdown import md_text

    assert md_text(text) == expected


def test_table_cells_may_break_only_after_slashes_and_underscores_and_stay_escaped():
    """Cells carry a <wbr> after each / and _ inside a word (the only places a word may wrap) and are still
    escaped text."""
    assert breakable("sew_resnet18 github.com/a/b") == "sew_<wbr>resnet18 github.com/<wbr>a/<wbr>b"
    assert breakable(HOSTILE + " x_") == "&lt;img src=x onerror=alert(1)&gt; x_"
    assert breakable("a/ _b") == "a/ _b"  # no break opportunity where a word does not continue
