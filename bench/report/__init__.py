"""Reports: Markdown (figures as PNG files beside it) and one self-contained HTML file, rendered
from run folders alone (records, env.json, run.json with the metric declarations and conventions), so
any past run, or several runs merged, can be re-rendered. Rendering never imports torch or the metric
plug-ins; ``bench report`` alone may pass the installed declarations for runs made before run.json
stored them (:class:`~bench.report.declared.Installed`)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from bench.report.content import ReportOptions, build_content
from bench.report.declared import Installed
from bench.report.html import render_html
from bench.report.latex import render_latex
from bench.report.markdown import FIGURES_DIR, render_markdown
from bench.results import ResultsWriteError, load_run, write_file

LATEX_FILE = "report.tex"


def render_report(run_dirs: list[str | Path], out_dir: str | Path | None = None,
                  installed: Installed | None = None, options: ReportOptions | None = None,
                  latex: bool = False) -> tuple[Path, Path]:
    """Write report.md (+ figures/*.png) and report.html for one or more run folders (merged), and with
    ``latex`` the headline tables as report.tex beside them; returns the Markdown and HTML paths. Each file is
    written whole or not at all (a full disk leaves the previous file): ResultsWriteError names the file."""
    runs = [load_run(d) for d in run_dirs]
    out = Path(out_dir) if out_dir else runs[0].path
    content = build_content(runs, installed, options)
    figures = out / FIGURES_DIR
    try:
        (figures if content.figures else out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsWriteError(f"cannot create the report folder {figures if content.figures else out}: "
                                f"{exc.strerror or exc}. Fix: choose a writable --out", exc.errno) from exc
    # Each file is replaced whole (bench.results.write_file); figures of an earlier render are removed last.
    for fig in content.figures:
        write_file(figures / f"{fig.name}.png", fig.png)
    md, html = out / "report.md", out / "report.html"
    write_file(md, render_markdown(content))
    write_file(html, render_html(content))
    if latex:
        write_file(out / LATEX_FILE, render_latex(content))
    current = {f"{fig.name}.png" for fig in content.figures}
    for stale in figures.glob("*.png") if figures.is_dir() else ():
        if stale.name not in current:
            with contextlib.suppress(OSError):  # a stale figure left behind is named by no report
                stale.unlink()
    return md, html


__all__ = ["LATEX_FILE", "Installed", "ReportOptions", "render_report"]
