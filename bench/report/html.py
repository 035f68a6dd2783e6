"""report.html: one self-contained file (no external resources), readable on a phone, printable."""

from __future__ import annotations

import html

from bench.report.content import ReportContent

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1100px;padding:1rem;
color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ccc}
.note{background:#fff4d6;border-left:4px solid #e69f00;padding:.5rem .8rem;margin:.5rem 0}
.table-wrap{overflow-x:auto}table{border-collapse:collapse;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}
pre{white-space:pre-wrap;background:#f6f6f6;padding:.5rem;font-size:.8rem}
@media print{.table-wrap{overflow:visible}body{max-width:none}}
"""


def render_html(content: ReportContent) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(content.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{e(content.title)}</h1>",
    ]
    parts.extend(f'<p class="note"><strong>Note:</strong> {e(n)}</p>' for n in content.notes)
    parts.append("<h2>What was run</h2><ul>")
    parts.extend(f"<li><strong>{e(k)}</strong>: {e(str(v))}</li>" for k, v in content.context.items())
    parts.append("</ul>")
    for section in content.sections:
        parts.append(f'<h2 id="{e(section.anchor)}">{e(section.title)}</h2>')
        if section.text:
            parts.append(f"<pre>{e(section.text)}</pre>" if section.preformatted else f"<p>{e(section.text)}</p>")
        if section.table is not None:
            table_html = section.table.to_html(index=False, escape=True, border=0, na_rep="n/a")
            parts.append(f'<div class="table-wrap">{table_html}</div>')
    parts.append("</body></html>")
    return "\n".join(parts)
