"""report.tex: the headline tables as LaTeX for a paper (``bench report --latex``), beside report.md.

A fragment to ``\\input`` (preamble: ``\\usepackage{booktabs}``): one ``table`` float per headline table
(efficiency, speed), booktabs rules (``\\toprule``, ``\\midrule``, ``\\bottomrule``) from pandas' Styler, units in
the headers as the report writes them (an energy column whose values share a unit carries it in its header),
the table's footnotes under it in small print. Every header, cell, caption and note is escaped (:func:`tex`):
LaTeX's special characters become their commands, and the few non-ASCII marks the report uses become LaTeX
(µ, †, ⚠ as a superscript !, ±, ×, ≤, ≥, ▶).
"""

from __future__ import annotations

import pandas as pd

from bench.report.content import ReportContent, TableBlock
from bench.report.formats import numeric_column

SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
           "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
           ">": r"\textgreater{}", "µ": r"\textmu{}", "†": r"\dag{}", "⚠": r"\textsuperscript{!}", "±": r"$\pm$",
           "×": r"$\times$", "≤": r"$\leq$", "≥": r"$\geq$", "▶": r"$\triangleright$", "—": "---", "–": "--"}
PREAMBLE = "% snnbench headline tables; preamble: \\usepackage{booktabs}\n"


def tex(text: object) -> str:
    """``text`` with every LaTeX special character (and the report's non-ASCII marks) escaped."""
    return "".join(SPECIAL.get(c, c) for c in str(text))


def latex_table(block: TableBlock, label: str) -> str:
    """One headline table as a booktabs ``table`` float with its caption, label and notes."""
    frame = block.frame.astype(str)
    align = "".join("r" if j and numeric_column(list(frame.iloc[:, j])) else "l" for j in range(frame.shape[1]))
    escaped = pd.DataFrame([[tex(v) for v in row] for row in frame.itertuples(index=False)],
                           columns=[tex(c) for c in frame.columns])
    body = escaped.style.hide(axis="index").to_latex(
        column_format=align, hrules=True, caption=tex(block.caption), label=label, position="htbp",
        position_float="centering")
    if block.notes:
        notes = "\n".join(f"\\par {tex(n)}" for n in block.notes)
        body = body.replace("\\end{table}", f"{{\\footnotesize\n{notes}\n}}\n\\end{{table}}")
    return body


def render_latex(content: ReportContent) -> str:
    """The headline tables of a report (see the module docstring)."""
    out = [PREAMBLE, f"% {tex(content.title)}\n"]
    for section in content.sections:
        for block in section.blocks:
            if isinstance(block, TableBlock) and block.ident in ("headline", "speed") and not block.frame.empty:
                out.append(latex_table(block, f"tab:snnbench-{block.ident}"))
    return "\n".join(out)
