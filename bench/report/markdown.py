"""report.md: the same content as the HTML report, with figures as PNG files in ``figures/`` beside it; the
per-layer table of a chart follows it in a ``<details>`` block (folded where Markdown renders HTML blocks)."""

from __future__ import annotations

import pandas as pd

from bench.report.content import MarkdownBlock, ReportContent, TableBlock, TextBlock
from bench.report.plots import FigureData

FIGURES_DIR = "figures"


def _cell(value: object) -> str:
    """Pipes escaped, one line, and no raw HTML (< > &) from error messages or labels."""
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\n", " ")


def frame_to_markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_(none)_\n"
    cols = [_cell(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines.extend("| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False))
    return "\n".join(lines) + "\n"


def _shift_headings(markdown: str, by: int) -> str:
    return "\n".join("#" * by + line if line.startswith("#") else line for line in markdown.splitlines())


def render_markdown(content: ReportContent) -> str:
    out = [f"# {content.title}\n"]
    out.extend(f"> **Note:** {note}\n" for note in content.notes)
    for section in content.sections:
        out.append(f"## {section.title}\n")
        if section.title == "What was run":
            out.extend(f"- **{k}**: {_cell(v)}" for k, v in content.context)
            out.append("")
        for block in section.blocks:
            if isinstance(block, TextBlock):
                out.append(block.text + "\n")
            elif isinstance(block, TableBlock):
                if block.caption:
                    out.append(f"_{block.caption}_\n")
                out.append(frame_to_markdown(block.frame))
                out.extend(f"- {n}" for n in block.notes)
                if block.notes:
                    out.append("")
            elif isinstance(block, MarkdownBlock):
                out.append(_shift_headings(block.markdown, 1) + "\n")
            elif isinstance(block, FigureData):
                out.append(f"![{block.alt}]({FIGURES_DIR}/{block.name}.png)\n\n_{block.caption}_\n")
                if block.details is not None:
                    out.append(f"<details><summary>{_cell(block.details_summary)}: full table</summary>\n\n"
                               f"{frame_to_markdown(block.details)}\n</details>\n")
    return "\n".join(out)
