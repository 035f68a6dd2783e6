"""report.md: the same content as the HTML report, as Markdown."""

from __future__ import annotations

import pandas as pd

from bench.report.content import ReportContent


def frame_to_markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_(none)_\n"
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(str(v).replace("|", "\\|").replace("\n", " ") for v in row) + " |")
    return "\n".join(lines) + "\n"


def render_markdown(content: ReportContent) -> str:
    out = [f"# {content.title}\n"]
    for note in content.notes:
        out.append(f"> **Note:** {note}\n")
    out.append("## What was run\n")
    out.extend(f"- **{k}**: {v}" for k, v in content.context.items())
    out.append("")
    for section in content.sections:
        out.append(f"## {section.title}\n")
        if section.text:
            out.append(section.text + "\n")
        if section.table is not None:
            out.append(frame_to_markdown(section.table))
    return "\n".join(out)
