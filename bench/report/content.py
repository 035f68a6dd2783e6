"""What a report says, built once from run folders and rendered to Markdown and HTML alike.

Order: notes that change how to read the numbers (data fallback first), what was run and on what,
the headline (efficiency and speed tables), published numbers beside ours, the reproductions of published
numbers (official checkpoints; only when there are some), energy with data movement (when the runs priced
hardware profiles or measured GPU energy: then with the estimates set against the measurement), plots, every
case (one table per metric), conventions and the metric declarations, failures. Everything is read from the
run folders (records, env.json, run.json with the declarations and conventions): rendering never imports torch
or the metric plug-ins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench.compare import BaselineError, gap_change, layered, resolve, suite_tolerances
from bench.contract import Field
from bench.palette import model_styles
from bench.published import CONFIDENCE, GAP_KEY, published_gaps
from bench.report import energy_plot, energy_section, plots
from bench.report import tables as tb
from bench.report.conventions import conventions_sections
from bench.report.declared import Declared, Installed, declarations
from bench.results import RunData, case_key, recorded_cpu_identity


@dataclass(frozen=True)
class ReportOptions:
    """Choices a reader may change (``bench report`` flags): when a measurement is flagged unstable, and how
    many layers a per-layer chart shows before it shows stages."""

    unstable_rel_iqr: float = tb.UNSTABLE_REL_IQR
    max_layers: int = plots.MAX_LAYERS


@dataclass
class TableBlock:
    """A table; ``cards``: a compact table that turns into one card per row on a narrow screen; ``ident``: its
    HTML id."""

    frame: pd.DataFrame
    caption: str = ""
    notes: list[str] = field(default_factory=list)
    cards: bool = False
    ident: str = ""


@dataclass
class TextBlock:
    text: str


@dataclass
class MarkdownBlock:
    """Trusted Markdown from the package or the run's own declarations: headings, lists, tables."""

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


def reading_notes(runs: list[RunData], records: list[dict[str, Any]], extra: list[str]) -> list[str]:
    """Notes a reader needs before any number: data fallbacks first, then skipped devices, declarations,
    weights, provenance."""
    fallbacks = _unique([(run.run.get("data") or {}).get("fallback_note") for run in runs])
    notes = [f"DATA FALLBACK: {n}" for n in fallbacks if n]
    for run in runs:
        notes.extend(n for n in run.run.get("notes", []) if n not in notes and f"DATA FALLBACK: {n}" not in notes)
    notes.extend(n for n in extra if n not in notes)
    untrained = tb.untrained_weights(records)
    if untrained:
        notes.append("UNTRAINED (random weights): " + "; ".join(f"{', '.join(labels)} ({how})"
                                                               for how, labels in untrained.items())
                     + f". Their accuracy is chance level: the report shows {tb.UNTRAINED_MARK} in place of it and of "
                     "the ANN / SNN energy ratio; their firing rates, operation counts and energy estimates are those "
                     "of random weights")
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
    values = [(run.run_id, fn(run)) for run in runs]
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

    def device(r: dict[str, Any]) -> str:  # a CPU's identity beside its model name: a VM may name generations alike
        ident = recorded_cpu_identity(r)
        return f"{tb.device_label(r)} ({r.get('device')}{f'; {ident}' if ident else ''})"

    devices = _unique([device(r) for r in records])
    return [
        ("suite", _per_run(runs, lambda r: f"{r.run.get('suite', '?')}: {r.run.get('description', '')}".rstrip(": "))),
        ("runs", ", ".join(f"{run.run_id} ({run.env.get('created', '?')})" for run in runs)),
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


# ---------------------------------------------------------------- declarations and conventions


def repeatability_markdown(declared: Declared, measured: set[str]) -> str | None:
    """Which of the run's metrics repeat bit for bit, from each plug-in's declaration."""
    known = [m for m in declared.contracts if m in measured]
    if not known:
        return None
    fixed = [m for m in known if declared.contracts[m].deterministic]
    varying = [m for m in known if not declared.contracts[m].deterministic]
    lines = ["## Repeatability", ""]
    if fixed:
        lines.append(f"- Repeat bit for bit with the same seed, input and device: {', '.join(fixed)} "
                     "(on GPUs, accuracy can vary where nondeterministic cuDNN kernels are used).")
    if varying:
        lines.append(f"- Vary from run to run (measurements of the machine): {', '.join(varying)}.")
    return "\n".join(lines) + "\n"


def _field_line(f: Field) -> str:
    where = ", one value per device" if f.per_device else ""
    where += f", only on {f.device_kind} devices" if f.device_kind else ""
    better = f", {f.better} is better" if f.better != "none" else ""
    desc = f": {f.description}" if f.description else ""
    return f"- **{f.column}** (`{f.name}`, format {f.fmt}{where}{better}){desc}"


def declarations_markdown(declared: Declared, records: list[dict[str, Any]]) -> str | None:
    """Each measured metric's declaration: what it is and the fields its records hold."""
    lines = []
    for metric, contract in declared.contracts.items():
        recs = [r for r in records if metric in (r.get("metrics") or {})]
        if not recs:
            continue
        fields = [f for f in contract.fields if any(tb.produced_on(f, r) and tb.reported(r, metric, f.name)
                                                    for r in recs)]
        lines += [f"### {metric}", "", f"{contract.description}.", ""] + [_field_line(f) for f in fields] + [""]
    return "\n".join(["## Metric declarations", "", *lines]) if lines else None


def conventions_blocks(runs: list[RunData], declared: Declared, ok: list[dict[str, Any]]) -> tuple[list[Block], list[str]]:
    """The stored counting conventions, the metric declarations and repeatability, with notes."""
    texts, notes = conventions_sections(runs, declared)
    blocks: list[Block] = [MarkdownBlock(t) for t in texts]
    measured = {m for r in ok for m in (r.get("metrics") or {})}
    for md in (declarations_markdown(declared, ok), repeatability_markdown(declared, measured)):
        if md:
            blocks.append(MarkdownBlock(md))
    return blocks, notes


# ---------------------------------------------------------------- the report


def headline_section(records: list[dict[str, Any]], declared: Declared, options: ReportOptions) -> Section:
    efficiency, notes = tb.headline_table(records, declared)
    if (hw_note := energy_section.headline_note(records)) is not None:
        notes = [*notes, hw_note]
    speed, speed_notes = tb.speed_table(records, declared, options.unstable_rel_iqr)
    blocks: list[Block] = [
        TextBlock(tb.MAIN_T_RULE),
        TableBlock(efficiency, "Efficiency: one row per model at its main T (properties of the net and its input).",
                   notes + tb.field_definitions(efficiency, declared, skip=3), cards=True, ident="headline"),
    ]
    if not speed.empty:
        blocks.append(TableBlock(speed, "Speed: one row per model and device (measurements of the machine).",
                                 speed_notes + tb.field_definitions(speed, declared, skip=4), cards=True, ident="speed"))
    return Section("Headline", blocks)


PUBLISHED_TEXT = ("Published top-1 with its source and conditions, matched on the registered model and dataset "
                  "(a reference row stands beside a model it does not bind to: no gap). Confidence: "
                  + "; ".join(f"{k} = {v}" for k, v in CONFIDENCE.items())
                  + ". Gap = ours - published (percentage points), for an unmodified model with trained weights at "
                    "the published T; a reproduction uses the authors' weights (an official checkpoint).")


def published_section(records: list[dict[str, Any]]) -> Section:
    published = tb.published_table(records)
    datasets = ", ".join(_unique([(r.get("data") or {}).get("dataset", "?") for r in tb.ok_records(records)])) or "?"
    return Section("Published numbers", [
        TextBlock(PUBLISHED_TEXT),
        TableBlock(published, cards=True) if not published.empty else
        TextBlock(f"No published number matches this setting (dataset: {datasets})."),
    ])


def gap_tolerances(runs: list[RunData]) -> tuple[Any, list[str]]:
    """The suites' ``[tolerances]`` (each run's suite file, first match wins) and notes on unreadable ones."""
    tables, notes = [], []
    for run in runs:
        try:
            tables.append(suite_tolerances(run.run.get("suite_file"))[0])
        except BaselineError as exc:
            notes.append(f"published-gap tolerance not read: {exc}")
    return layered(*tables), notes


def reproduction_section(runs: list[RunData], records: list[dict[str, Any]]) -> Section | None:
    """Cases from official checkpoints beside the published number they reproduce, with the gap and, when the
    suite sets a ``published_gap.top1`` tolerance, the verdict ``bench compare`` gives."""
    tolerances, notes = gap_tolerances(runs)
    tol = resolve(GAP_KEY, tolerances)
    rows = []
    for r in tb.ok_records(records):
        for _, (ours, published, entry) in published_gaps(r).items():
            row = {"model": tb.model_label(r), "T": r["T"], "device": tb.device_label(r),
                   "weights": tb.weights_short(r), "ours top-1 (%)": f"{ours:.2f}",
                   "published top-1 (%)": f"{published:.2f}", "gap (points)": f"{ours - published:+.2f}"}
            if tol is not None:
                change = gap_change(case_key(r), ours, published, entry.cite(), tol)
                row |= {"tolerance": change.tolerance, "verdict": change.verdict}
            rows.append(row | {"conditions": entry.conditions(), "source [confidence]": entry.cite()})
    if not rows:
        return None
    rule = (f"A suite tolerance {GAP_KEY!r} = {tol.describe()} applies to |gap|: `bench compare` and `bench diff` "
            "fail beyond it." if tol is not None else
            f"No tolerance is set: add \"{GAP_KEY}\" = {{ abs = 0.5 }} to the suite's [tolerances] to make "
            "`bench compare` fail when |gap| exceeds it.")
    return Section("Reproduction", [
        TextBlock("Cases evaluated from the authors' weights (official checkpoint formats) on the dataset and T of "
                  f"a published number. {rule}"),
        TableBlock(pd.DataFrame(rows), notes=notes, cards=True, ident="reproduction"),
    ])


def _hw_blocks(t: energy_section.ModelTable, i: int) -> list[Block]:
    """One model's profile table and, where recorded, its layer split."""
    blocks: list[Block] = [TableBlock(t.frame, t.caption, t.notes, cards=True, ident=f"energy-hw-{i}")]
    if t.split is not None:
        blocks.append(TableBlock(t.split.frame, t.split.caption, t.split.notes, cards=True,
                                 ident=f"energy-hw-{i}-layers"))
    return blocks


NO_PROFILES = ("No hardware profiles were recorded (runs made before the energy plug-in priced them): only the "
               "compute-only estimate is set against the measured GPU energy.")


def prediction_blocks(records: list[dict[str, Any]]) -> list[Block]:
    """Per device with measured GPU energy, "Do the estimates predict the measurement?" (one row per estimate:
    compute-only, then every hardware profile); nothing for runs without a measured value."""
    return [TableBlock(t.frame, t.caption, cards=True, ident=f"energy-prediction-{i}")
            for i, t in enumerate(energy_plot.prediction_tables(records), 1)]


def energy_section_of(records: list[dict[str, Any]], declared: Declared) -> Section | None:
    """"Energy with data movement" (:mod:`bench.report.energy_section`), when some run priced hardware profiles,
    followed by the estimates set against the measured GPU energy where some was measured."""
    tables, notes = energy_section.model_tables(records, declared)
    predictions = prediction_blocks(records)
    if not tables and not predictions:
        return None
    blocks: list[Block] = [TextBlock(energy_section.INTRO + (" " + "; ".join(notes) if notes else "") if tables else
                                     NO_PROFILES)]
    blocks += [block for i, t in enumerate(tables, 1) for block in _hw_blocks(t, i)] + predictions
    if tables:
        blocks.append(MarkdownBlock(energy_section.profiles_markdown(tables, declared)))
    return Section(energy_section.TITLE, blocks)


def cases_section(records: list[dict[str, Any]], declared: Declared, options: ReportOptions) -> Section:
    blocks: list[Block] = [TextBlock("Every case that ran, at every T, device and batch size: one table per "
                                     "metric, every field its records hold.")]
    for t in tb.case_tables(records, declared, options.unstable_rel_iqr):
        caption = f"{t.metric}: {declared.contracts[t.metric].description}"
        if t.constants:
            caption += ". Same for every case: " + "; ".join(t.constants)
        blocks.append(TableBlock(t.frame, caption, t.notes))
    return Section("All cases", blocks)


def build_content(runs: list[RunData], installed: Installed | None = None,
                  options: ReportOptions | None = None) -> ReportContent:
    """The report of one or more runs (merged), from their folders alone (see the module docstring)."""
    options = options or ReportOptions()
    records = [r for run in runs for r in run.records]
    ok = tb.ok_records(records)
    declared = declarations(runs, installed)
    styles = model_styles(tb.model_order(records))
    figures = plots.report_figures(records, declared, styles, options.max_layers)
    conventions, conventions_notes = conventions_blocks(runs, declared, ok)
    failures = tb.failures_table(records)
    reproduction = reproduction_section(runs, records)
    energy = energy_section_of(records, declared)
    sections = [
        Section("What was run", [TableBlock(tb.models_table(records), "Models", cards=True)]),
        headline_section(records, declared, options),
        published_section(records),
        *([reproduction] if reproduction else []),
        *([energy] if energy else []),
        Section("Plots", list(figures) or [TextBlock("No plottable metric was measured.")]),
        cases_section(records, declared, options),
        Section("Conventions", conventions or [TextBlock("No conventions or declarations are stored with the runs.")]),
        Section("Failures", [TableBlock(failures, f"{len(failures)} failed case(s).")]
                if not failures.empty else [TextBlock("None: every case ran.")]),
    ]
    suites = _unique([run.run.get("suite") or "?" for run in runs])
    return ReportContent(title=f"snnbench report: {', '.join(suites)}",
                         notes=reading_notes(runs, records, declared.notes + conventions_notes),
                         context=run_context(runs, records), sections=sections)
