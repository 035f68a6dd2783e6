"""report.html: one self-contained file (figures inline as base64 PNG, no external resources, no scripts).

The page is a Jinja2 template (``templates/report.html.j2`` with ``report.css`` inlined) rendered with
autoescaping on, so every label, error message and cell from a run is text, never markup; the package's own
Markdown (conventions, declarations) is rendered by markdown-it-py with raw HTML off. Layout: compact tables
(``TableBlock.cards``: the headline, published numbers, reproductions, models) fit a 1400 px window without
sideways scrolling (headers and text cells wrap at spaces, hyphens and the ``<wbr>`` of :func:`breakable`, never
inside a word) and turn into one card per row below 640 px; wide per-case
tables scroll inside their own box; figures scale to the screen; per-layer tables sit in ``<details>`` under
their chart; printing unwraps everything.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

from bench.report.content import MarkdownBlock, ReportContent, TableBlock, TextBlock
from bench.report.formats import numeric_column
from bench.report.plots import FigureData

WRAP_COLUMNS = ("message", "status", "source [confidence]", "not spike-driven", "kwargs", "conditions")
_ENV = Environment(loader=PackageLoader("bench.report", "templates"), autoescape=select_autoescape(default=True),
                   keep_trailing_newline=True)
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
# Markdown tables scroll inside their own box, like the report's other wide tables.
_MARKDOWN.add_render_rule("table_open", lambda *_: '<div class="table-wrap"><table>\n')
_MARKDOWN.add_render_rule("table_close", lambda *_: "</table></div>\n")


_BREAK_AFTER = re.compile(r"(?<=\w)([/_])(?=\w)")


def breakable(text: str) -> Markup:
    """A cell's text, escaped, with a line-break opportunity (``<wbr>``) after each ``/`` and ``_`` inside a word:
    a long path or registered name (``sew_resnet18``, a log's URL) may wrap there, and nowhere else inside a word
    (the stylesheet does not break words anywhere)."""
    return Markup(_BREAK_AFTER.sub(r"\1<wbr>", str(escape(text))))


def table_view(frame: pd.DataFrame, caption: str = "", notes: list[str] | None = None, cards: bool = False,
               ident: str = "") -> dict[str, Any]:
    """A table as the template reads it: columns with their alignment class, rows of cells."""
    columns = []
    for j, c in enumerate(frame.columns):
        values = [str(v) for v in frame.iloc[:, j]]
        columns.append((str(c), "wrap" if str(c) in WRAP_COLUMNS else "num" if j and numeric_column(values) else ""))
    rows = [[{"text": breakable(str(v)), "cls": cls, "label": name} for (name, cls), v in zip(columns, row, strict=True)]
            for row in frame.itertuples(index=False)]
    return {"kind": "table", "caption": caption, "columns": columns, "rows": rows, "notes": notes or [],
            "cards": cards, "ident": ident}


def markdown_html(markdown: str, shift: int = 1) -> Markup:
    """The package's Markdown as HTML (raw HTML in it stays text), headings shifted down by ``shift`` levels."""
    tokens = _MARKDOWN.parse(markdown)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + shift, 6)}"
    return Markup(_MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {}))  # raw HTML off: markdown-it escaped it


def _figure_view(fig: FigureData) -> dict[str, Any]:
    details = None if fig.details is None else table_view(fig.details)
    return {"kind": "figure", "name": fig.name, "data": base64.b64encode(fig.png).decode("ascii"), "alt": fig.alt,
            "caption": fig.caption, "width": fig.width_px, "details": details, "details_summary": fig.details_summary}


def _block_view(block: Any) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"kind": "text", "text": block.text}
    if isinstance(block, TableBlock):
        return table_view(block.frame, block.caption, block.notes, block.cards, block.ident)
    if isinstance(block, MarkdownBlock):
        return {"kind": "markdown", "html": markdown_html(block.markdown)}
    if isinstance(block, FigureData):
        return _figure_view(block)
    raise TypeError(f"unknown report block {type(block).__name__}")


def render_html(content: ReportContent) -> str:
    sections = [{"title": s.title, "anchor": s.anchor, "blocks": [_block_view(b) for b in s.blocks],
                 "context": content.context if s.title == "What was run" else None} for s in content.sections]
    return _ENV.get_template("report.html.j2").render(title=content.title, notes=content.notes, sections=sections)
