"""What a report says, built once from run folders and rendered to Markdown and HTML alike.

Order: notes that change how to read the numbers (data fallback first), what was run and on what,
the headline table, published numbers beside ours, plots, every case, conventions, failures.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench.report import plots
from bench.report import tables as tb
from bench.report.load import RunData
from bench.report.published import SOURCE_FILE


@dataclass
class TableBlock:
    frame: pd.DataFrame
    caption: str = ""
    notes: list[str] = field(default_factory=list)
    headline: bool = False


@dataclass
class TextBlock:
    text: str


@dataclass
class MarkdownBlock:
    """Trusted Markdown from the package (conventions, metric docstrings): headings, lists, tables."""

    markdown: str


Block = TableBlock | TextBlock | MarkdownBlock | plots.FigureData


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")


@dataclass
class ReportContent:
    title: str
    notes: list[str]
    context: list[tuple[str, str]]
    sections: list[Section] = field(default_factory=list)

    @property
    def figures(self) -> list[plots.FigureData]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, plots.FigureData)]


# ---------------------------------------------------------------- what was run


def _unique(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def reading_notes(runs: list[RunData], records: list[dict[str, Any]]) -> list[str]:
    """Notes a reader needs before any number: data fallbacks first, then skipped devices, weights, provenance."""
    fallbacks = _unique([(run.run.get("data") or {}).get("fallback_note") for run in runs])
    notes = [f"DATA FALLBACK: {n}" for n in fallbacks if n]
    for run in runs:
        notes.extend(n for n in run.run.get("notes", []) if n not in notes and f"DATA FALLBACK: {n}" not in notes)
    untrained = _unique([tb.model_label(r) for r in records if r["model"].get("untrained")])
    if untrained:
        notes.append("no checkpoint (untrained weights) for: " + ", ".join(untrained)
                     + "; their accuracy is chance level and their firing rates and event counts are not "
                       "representative of trained models")
    reconstructed = _unique([tb.model_label(r) for r in records
                             if "reconstructed" in str((r["model"].get("info") or {}).get("provenance", ""))])
    if reconstructed:
        notes.append("reconstructed from the paper (no official code): " + ", ".join(reconstructed))
    return notes


def _versions(env: dict[str, Any]) -> str:
    p = env.get("packages") or {}
    return (f"python {env.get('python', '?')}, torch {p.get('torch', '?')}, spikingjelly {p.get('spikingjelly', '?')}, "
            f"numpy {p.get('numpy', '?')}, snnbench {p.get('snnbench', '?')}")


def _per_run(runs: list[RunData], fn: Any) -> str:
    values = [(run.run.get("run_id") or run.path.name, fn(run)) for run in runs]
    distinct = _unique([v for _, v in values])
    if len(distinct) == 1:
        return str(distinct[0])
    return "; ".join(f"{rid}: {v}" for rid, v in values)


def run_context(runs: list[RunData], records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Key facts about the runs: suite, data, seeds, devices, machines, versions, commits, dates."""
    def git(run: RunData) -> str:
        g = run.env.get("git") or {}
        if not g:
            return "unknown"
        return g.get("commit", "?")[:12] + (" (suite file modified)" if g.get("suite_file_modified") else "")

    devices = _unique([f"{tb.device_label(r)} ({r.get('device')})" for r in records])
    return [
        ("suite", _per_run(runs, lambda r: f"{r.run.get('suite', '?')}: {r.run.get('description', '')}".rstrip(": "))),
        ("runs", ", ".join(f"{run.run.get('run_id') or run.path.name} ({run.env.get('created', '?')})" for run in runs)),
        ("data used", _per_run(runs, lambda r: (r.run.get("data") or {}).get("description", "?"))),
        ("seed", _per_run(runs, lambda r: r.run.get("seed"))),
        ("time steps", _per_run(runs, lambda r: ", ".join(map(str, r.run.get("time_steps", []))))),
        ("metrics", _per_run(runs, lambda r: ", ".join(r.run.get("metrics", [])))),
        ("devices", ", ".join(devices) or "none"),
        ("machines", _per_run(runs, lambda r: f"{r.env.get('hostname', '?')} ({(r.env.get('cpu') or {}).get('name', '?')}, "
                                              f"{(r.env.get('cpu') or {}).get('logical_cpus', '?')} logical CPUs)")),
        ("versions", _per_run(runs, lambda r: _versions(r.env))),
        ("CUDA", _per_run(runs, lambda r: f"{r.env.get('cuda_version')} (available: {r.env.get('cuda_available')})")),
        ("git commit", _per_run(runs, git)),
    ]


# ---------------------------------------------------------------- conventions


def _doc_markdown(module: str, title: str) -> str | None:
    """A metric module's docstring (its stated method) as Markdown under a heading."""
    try:
        doc = importlib.import_module(module).__doc__
    except ImportError:
        return None
    if not doc:
        return None
    return f"## {title}\n\n" + doc.strip().replace("``", "`") + "\n"


def conventions_blocks(records: list[dict[str, Any]]) -> list[Block]:
    """Counting rules, energy profiles and timing/memory/energy-counter methods, from the metric modules."""
    measured = {m for r in records for m in (r.get("metrics") or {})}
    blocks: list[Block] = []
    if measured & {"ops", "firing", "energy"}:
        from bench.metrics.conventions import conventions_markdown

        blocks.append(MarkdownBlock(conventions_markdown()))
    for metric, module, title in (("latency", "bench.metrics.timing", "Timing method (latency, throughput)"),
                                  ("memory", "bench.metrics.memory", "Memory method"),
                                  ("measured_energy", "bench.metrics.measured_energy", "Measured energy method")):
        if metric in measured and (md := _doc_markdown(module, title)):
            blocks.append(MarkdownBlock(md))
    accuracy = _doc_markdown("bench.metrics.accuracy", "Accuracy method") if "accuracy" in measured else None
    if accuracy:
        blocks.insert(0, MarkdownBlock(accuracy))
    if repeatability := repeatability_markdown(measured):
        blocks.append(MarkdownBlock(repeatability))
    return blocks


def repeatability_markdown(measured: set[str]) -> str | None:
    """Which of the run's metrics repeat bit for bit, from each plug-in's declaration."""
    from bench.metrics import available_metrics, get_metric

    known = [m for m in sorted(measured) if m in available_metrics()]
    if not known:
        return None
    fixed = [m for m in known if get_metric(m).deterministic]
    varying = [m for m in known if not get_metric(m).deterministic]
    lines = ["## Repeatability", ""]
    if fixed:
        lines.append(f"- Repeat bit for bit with the same seed, input and device: {', '.join(fixed)} "
                     "(on GPUs, accuracy can vary where nondeterministic cuDNN kernels are used).")
    if varying:
        lines.append(f"- Vary from run to run (measurements of the machine): {', '.join(varying)}.")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the report


def build_content(runs: list[RunData]) -> ReportContent:
    records = [r for run in runs for r in run.records]
    ok = tb.ok_records(records)
    suites = _unique([run.run.get("suite") or "?" for run in runs])
    styles = plots.model_styles(tb.model_order(records))

    run_section = Section("What was run", [TableBlock(tb.models_table(records), "Models")])
    headline, headline_notes = tb.headline_table(records)
    sections = [run_section, Section("Headline", [
        TextBlock(tb.MAIN_T_RULE),
        TableBlock(headline, "One row per model at its main T.", headline_notes, headline=True),
    ])]

    published = tb.published_table(records)
    datasets = ", ".join(_unique([(r.get("data") or {}).get("dataset", "?") for r in ok])) or "?"
    sections.append(Section("Published numbers", [
        TextBlock(f"Published top-1 from {SOURCE_FILE}, matched on model, dataset and T; confidence tags: "
                  "log = official training logs, code = official code, paper = paper or abstract, "
                  "recalled = not checked against a source. Gap = ours - published (percentage points)."),
        TableBlock(published) if not published.empty else
        TextBlock(f"No published number matches this setting (dataset: {datasets})."),
    ]))

    figures: list[Block] = [f for f in (plots.accuracy_vs_T(records, styles),
                                        plots.accuracy_vs_energy(records, styles)) if f]
    groups = tb.by_model(records)
    for label, recs in groups.items():
        main = [r for r in recs if r["T"] == tb.main_T(recs).T]
        if fig := next((f for r in main if (f := plots.firing_heatmap(label, r, styles[label]))), None):
            figures.append(fig)
    for label, recs in groups.items():
        main = [r for r in recs if r["T"] == tb.main_T(recs).T]
        if fig := next((f for r in main if (f := plots.ops_per_layer(label, r, styles[label]))), None):
            figures.append(fig)
    if fig := plots.throughput_per_device(records, styles):
        figures.append(fig)
    sections.append(Section("Plots", figures or [TextBlock("No plottable metric was measured.")]))

    sections.append(Section("All cases", [TableBlock(tb.cases_table(records),
                                                     "Every case that ran, at every T, device and batch size.")]))
    sections.append(Section("Conventions", conventions_blocks(ok) or [TextBlock("No metric with stated conventions.")]))
    failures = tb.failures_table(records)
    sections.append(Section("Failures", [TableBlock(failures, f"{len(failures)} failed case(s).")]
                            if not failures.empty else [TextBlock("None: every case ran.")]))
    return ReportContent(title=f"snnbench report: {', '.join(suites)}", notes=reading_notes(runs, records),
                         context=run_context(runs, records), sections=sections)
