"""report.md: the same content as the HTML report, with figures as PNG files in ``figures/`` beside it; the
per-layer table of a chart follows it in a ``<details>`` block (folded where Markdown renders HTML blocks)."""

from __future__ import annotations

import re

import pandas as pd

from bench.report.content import MarkdownBlock, ReportContent, TableBlock, TextBlock
from bench.report.plots import FigureData

FIGURES_DIR = "figures"


def _cell(value: object) -> str:
    """Pipes escaped, one line, and no raw HTML (< > &) from error messages or labels."""
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\n", " ")


_TICKS = re.compile(r"`+")


def _no_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;")


def md_text(text: str) -> str:
    """Markdown from a run (notes, captions, labels in prose, stored conventions and declarations) with raw HTML
    made text: ``&`` and ``<`` become entities outside code spans, as the HTML report escapes them, so a label
    ``<img onerror=...>`` shows as written in any Markdown viewer. Code spans are found per line as CommonMark
    finds them (a run of n backticks, not backslash-escaped, closed by the next run of exactly n); inside them
    HTML is never markup, so they are left as written. Per line: a span CommonMark would not close on its line
    is escaped as text (safe; at worst an entity shows inside a multi-line span)."""
    return "\n".join(_line_no_html(line) for line in text.split("\n"))


def _line_no_html(line: str) -> str:
    out, pos = [], 0
    while (opener := _TICKS.search(line, pos)) is not None:
        before = len(line[:opener.start()]) - len(line[:opener.start()].rstrip("\\"))
        closer = next((m for m in _TICKS.finditer(line, opener.end()) if len(m.group()) == len(opener.group())), None)
        if before % 2 or closer is None:  # an escaped or unclosed run of backticks is text
            out.append(_no_html(line[pos:opener.end()]))
            pos = opener.end()
            continue
        out.append(_no_html(line[pos:opener.start()]) + line[opener.start():closer.end()])
        pos = closer.end()
    out.append(_no_html(line[pos:]))
    return "".join(out)


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
    """report.md; every text from a run goes through :func:`md_text` or ``_cell`` (no raw HTML from a run)."""
    out = [f"# {md_text(content.title)}\n"]
    out.extend(f"> **Note:** {md_text(note)}\n" for note in content.notes)
    for section in content.sections:
        out.append(f"## {section.title}\n")
        if section.title == "What was run":
            out.extend(f"- **{k}**: {_cell(v)}" for k, v in content.context)
            out.append("")
        for block in section.blocks:
            if isinstance(block, TextBlock):
                out.append(md_text(block.text) + "\n")
            elif isinstance(block, TableBlock):
                if block.caption:
                    out.append(f"_{md_text(block.caption)}_\n")
                out.append(frame_to_markdown(block.frame))
                out.extend(f"- {md_text(n)}" for n in block.notes)
                if block.notes:
                    out.append("")
            elif isinstance(block, MarkdownBlock):
                out.append(_shift_headings(md_text(block.markdown), 1) + "\n")
            elif isinstance(block, FigureData):
                alt = md_text(block.alt).replace("[", "\\[").replace("]", "\\]")
                out.append(f"![{alt}]({FIGURES_DIR}/{block.name}.png)\n\n_{md_text(block.caption)}_\n")
                if block.details is not None:
                    out.append(f"<details><summary>{_cell(block.details_summary)}: full table</summary>\n\n"
                               f"{frame_to_markdown(block.details)}\n</details>\n")
    return "\n".join(out)
