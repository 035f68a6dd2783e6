"""Reports: Markdown (figures as PNG files beside it) and one self-contained HTML file, rendered
from run folders alone (records, env.json, run.json with the metric declarations and conventions), so
any past run, or several runs merged, can be re-rendered. Rendering never imports torch or the metric
plug-ins; ``bench report`` alone may pass the installed declarations for runs made before run.json
stored them (:class:`~bench.report.declared.Installed`)."""

from __future__ import annotations

from pathlib import Path

from bench.report.content import ReportOptions, build_content
from bench.report.declared import Installed
from bench.report.html import render_html
from bench.report.latex import render_latex
from bench.report.markdown import FIGURES_DIR, render_markdown
from bench.results import load_run

LATEX_FILE = "report.tex"


def render_report(run_dirs: list[str | Path], out_dir: str | Path | None = None,
                  installed: Installed | None = None, options: ReportOptions | None = None,
                  latex: bool = False) -> tuple[Path, Path]:
    """Write report.md (+ figures/*.png) and report.html for one or more run folders (merged), and with
    ``latex`` the headline tables as report.tex beside them; returns the Markdown and HTML paths."""
    runs = [load_run(d) for d in run_dirs]
    out = Path(out_dir) if out_dir else runs[0].path
    out.mkdir(parents=True, exist_ok=True)
    content = build_content(runs, installed, options)
    figures = out / FIGURES_DIR
    if content.figures:
        figures.mkdir(exist_ok=True)
        for old in figures.glob("*.png"):
            old.unlink()
        for fig in content.figures:
            (figures / f"{fig.name}.png").write_bytes(fig.png)
    md, html = out / "report.md", out / "report.html"
    md.write_text(render_markdown(content), encoding="utf-8")
    html.write_text(render_html(content), encoding="utf-8")
    if latex:
        (out / LATEX_FILE).write_text(render_latex(content), encoding="utf-8")
    return md, html


__all__ = ["LATEX_FILE", "Installed", "ReportOptions", "render_report"]
