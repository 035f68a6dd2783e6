"""report.html: one self-contained file (figures inline as base64 PNG, no external resources, no
scripts), readable on a phone (fluid layout, tables scroll sideways inside their box, figures scale
to the screen) and printable (tables unwrap, figures do not split across pages)."""

from __future__ import annotations

import base64
import html
import re

import pandas as pd

from bench.report.content import MarkdownBlock, ReportContent, TableBlock, TextBlock
from bench.report.plots import FigureData

STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:1rem;color:#1b1b1b;line-height:1.45;font-size:16px}
h1{font-size:1.5rem;margin:.2rem 0 .6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}
h3{font-size:1.05rem;margin-top:1.4rem}h4{font-size:.95rem}
nav{font-size:.9rem;margin:.5rem 0;display:flex;flex-wrap:wrap;gap:.2rem .9rem}nav a{white-space:nowrap}
.note{background:#fff4d6;border-left:4px solid #e69f00;padding:.45rem .8rem;margin:.4rem 0}
.note.fallback{background:#fde4dc;border-left-color:#d55e00;font-weight:600}
dl.context{display:grid;grid-template-columns:max-content 1fr;gap:.15rem .9rem;margin:.5rem 0}
dl.context dt{font-weight:600}dl.context dd{margin:0;overflow-wrap:anywhere}
.table-wrap{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:.4rem 0 .2rem;max-width:100%}
table{border-collapse:collapse;font-size:.85em;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d0d0d0;padding:.25rem .5rem;text-align:left;white-space:nowrap}
td.num,th.num{text-align:right}
th{background:#f0f2f5;position:sticky;top:0}
th:first-child,td:first-child{text-align:left;position:sticky;left:0;background:#fff;z-index:1}
th:first-child{background:#f0f2f5;z-index:2}
tbody tr:nth-child(even) td{background:#fafafa}tbody tr:nth-child(even) td:first-child{background:#fafafa}
td.wrap{white-space:normal;text-align:left;min-width:16rem}
caption{caption-side:top;text-align:left;font-style:italic;color:#444;padding:.2rem 0}
ul.table-notes{font-size:.85rem;color:#333;margin:.2rem 0 1rem}
figure{margin:1.2rem 0;break-inside:avoid}figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:.85rem;color:#333;margin-top:.3rem}
code{background:#f3f3f3;padding:0 .2rem;border-radius:3px;font-size:.9em}
.md li{margin:.15rem 0}.md table td{white-space:normal;text-align:left}
@media (max-width:600px){body{padding:.6rem;font-size:15px}dl.context{grid-template-columns:1fr}
dl.context dd{margin-bottom:.4rem}h1{font-size:1.25rem}}
@media print{body{max-width:none;padding:0;font-size:10pt}.table-wrap{overflow:visible}nav{display:none}
table{font-size:7pt;width:100%}th,td{white-space:normal;overflow-wrap:anywhere;padding:.1em .25em}
td.wrap{min-width:0}td.num{white-space:nowrap;overflow-wrap:normal}th:first-child,td:first-child,th{position:static}h2{break-after:avoid}tr{break-inside:avoid}
figure img{max-height:24cm;width:auto}}
"""

_INLINE_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")


def inline(text: str) -> str:
    """Escape, then **bold** and `code`."""
    out = html.escape(text)
    out = _INLINE_CODE.sub(lambda m: f"<code>{m.group(1)}</code>", out)
    return _BOLD.sub(lambda m: f"<strong>{m.group(1)}</strong>", out)


def markdown_to_html(markdown: str, shift: int = 1) -> str:
    """The Markdown subset the package writes: # headings, - lists (indented continuations), | tables, paragraphs."""
    out: list[str] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + shift, 6)
            out.append(f"<h{level}>{inline(line.lstrip('#').strip())}</h{level}>")
            i += 1
        elif line.startswith("- "):
            items: list[str] = []
            while i < len(lines) and (lines[i].startswith("- ") or (lines[i].startswith(" ") and lines[i].strip())):
                if lines[i].startswith("- "):
                    items.append(lines[i][2:].strip())
                else:
                    items[-1] += " " + lines[i].strip()
                i += 1
            out.append("<ul>" + "".join(f"<li>{inline(t)}</li>" for t in items) + "</ul>")
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in re.split(r"(?<!\\)\|", lines[i].strip())[1:-1]]
                if not all(set(c) <= set("-: ") for c in cells):
                    rows.append(cells)
                i += 1
            head = "".join(f"<th>{inline(c)}</th>" for c in rows[0])
            body = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
            out.append(f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>')
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "- ", "|")):
                para.append(lines[i].strip())
                i += 1
            out.append(f"<p>{inline(' '.join(para))}</p>")
    return '<div class="md">' + "\n".join(out) + "</div>"


WRAP_COLUMNS = ("message", "status", "source [confidence]", "not spike-driven", "kwargs")
_NUMBER = re.compile(r"^[-+]?\d[\d.,]*(e[-+]?\d+)?( ?[kMGTµnpm]?J?)?$|^n/a$")


def _numeric(values: list[str]) -> bool:
    """A column of numbers (with an SI prefix or energy unit, or n/a): right-aligned."""
    return any(v != "n/a" for v in values) and all(_NUMBER.match(v) for v in values)


def table_html(frame: pd.DataFrame, caption: str = "", table_id: str = "") -> str:
    e = html.escape
    classes = []
    for j, c in enumerate(frame.columns):
        values = [str(v) for v in frame.iloc[:, j]]
        classes.append("wrap" if str(c) in WRAP_COLUMNS else "num" if j and _numeric(values) else "")
    head = "".join(f'<th scope="col"{f" class={classes[j]}" if classes[j] == "num" else ""}>{e(str(c))}</th>'
                   for j, c in enumerate(frame.columns))
    body = []
    for row in frame.itertuples(index=False):
        cells = "".join(f'<td{f" class={classes[j]}" if classes[j] else ""}>{e(str(v))}</td>' for j, v in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    ident = f' id="{e(table_id)}"' if table_id else ""
    cap = f"<caption>{e(caption)}</caption>" if caption else ""
    return (f'<div class="table-wrap"><table{ident}>{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def figure_html(fig: FigureData) -> str:
    e = html.escape
    data = base64.b64encode(fig.png).decode("ascii")
    width = f' width="{fig.width_px}"' if fig.width_px else ""
    return (f'<figure id="fig-{e(fig.name)}"><img src="data:image/png;base64,{data}" alt="{e(fig.alt)}"{width}>'
            f"<figcaption>{e(fig.caption)}</figcaption></figure>")


def render_html(content: ReportContent) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(content.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{e(content.title)}</h1>",
    ]
    for note in content.notes:
        kind = "note fallback" if note.startswith("DATA FALLBACK") else "note"
        parts.append(f'<p class="{kind}"><strong>Note:</strong> {e(note)}</p>')
    parts.append("<nav>" + "".join(f'<a href="#{s.anchor}">{e(s.title)}</a>' for s in content.sections) + "</nav>")
    for section in content.sections:
        parts.append(f'<section><h2 id="{e(section.anchor)}">{e(section.title)}</h2>')
        if section.title == "What was run":
            parts.append('<dl class="context">' + "".join(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>"
                                                         for k, v in content.context) + "</dl>")
        for block in section.blocks:
            if isinstance(block, TextBlock):
                parts.append(f"<p>{e(block.text)}</p>")
            elif isinstance(block, TableBlock):
                parts.append(table_html(block.frame, block.caption, "headline" if block.headline else ""))
                if block.notes:
                    parts.append('<ul class="table-notes">' + "".join(f"<li>{e(n)}</li>" for n in block.notes)
                                 + "</ul>")
            elif isinstance(block, MarkdownBlock):
                parts.append(markdown_to_html(block.markdown))
            elif isinstance(block, FigureData):
                parts.append(figure_html(block))
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
