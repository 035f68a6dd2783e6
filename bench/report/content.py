"""What a report says, built once from records and rendered to Markdown and HTML alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench.report.load import RunData
from bench.report.tables import summary_table


@dataclass
class Section:
    title: str
    text: str = ""
    table: pd.DataFrame | None = None
    preformatted: bool = False

    @property
    def anchor(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.title.lower())


@dataclass
class ReportContent:
    title: str
    notes: list[str]
    context: dict[str, Any]
    sections: list[Section] = field(default_factory=list)


def build_content(runs: list[RunData]) -> ReportContent:
    records = [r for run in runs for r in run.records]
    first = runs[0]
    suites = sorted({run.run.get("suite") or "?" for run in runs})
    notes: list[str] = []
    for run in runs:
        notes.extend(n for n in run.run.get("notes", []) if n not in notes)
    untrained = sorted({r["model"]["label"] for r in records if r["model"].get("untrained")})
    if untrained:
        notes.append("no checkpoint (untrained weights) for: " + ", ".join(untrained)
                     + "; their accuracy is chance level and firing rates are not representative")
    data = first.run.get("data", {})
    packages = first.env.get("packages", {})
    context = {
        "suite": ", ".join(suites),
        "runs": ", ".join(run.run.get("run_id", run.path.name) for run in runs),
        "date": first.env.get("created", "?"),
        "data": data.get("description", "?"),
        "seed": first.run.get("seed"),
        "versions": f"python {first.env.get('python')}, torch {packages.get('torch')}, "
                    f"spikingjelly {packages.get('spikingjelly')}",
        "CPU": first.env.get("cpu", {}).get("name"),
        "GPUs": ", ".join(g.get("device_name", "?") for g in first.env.get("gpus", [])) or "none",
    }
    sections = [Section("Results", table=summary_table(records))]
    failed = [r for r in records if r.get("status") != "ok"]
    if failed:
        rows = [{"case": r["case_id"], "error": f"{r['error']['type']}: {r['error']['message']}"} for r in failed]
        sections.append(Section("Failures", table=pd.DataFrame(rows)))
    return ReportContent(title=f"snnbench report: {', '.join(suites)}", notes=notes, context=context,
                         sections=sections)
