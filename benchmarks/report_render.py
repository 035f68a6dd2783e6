"""Time to render the report of a digits run: wall time of ``bench report RUN --out DIR`` in a fresh interpreter
(imports, reading the run, tables, figures, Markdown and HTML), and, in this process, how much of it the figures
take (:func:`bench.report.plots.report_figures`).

The run is suites/regression_counts.toml (one untrained, BN-calibrated tiny net of every family on digits: six
models, a firing heatmap and an operations chart each, and the energy-vs-rate panels), run once into a temporary folder unless ``--run DIR`` names one.

    python benchmarks/report_render.py [--run DIR] [--repeats 3] [--target 3.0]

Prints every render's wall time, their median and the figures' share; exit status 1 when the median exceeds
``--target`` seconds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "suites" / "regression_counts.toml"


def cli(*argv: str) -> float:
    """Seconds one ``python -m bench.cli *argv`` takes, from the repository root."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench.cli", *argv], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def figures_s(run: Path) -> tuple[float, int]:
    """Seconds :func:`bench.report.plots.report_figures` takes on the run here, and how many figures it draws."""
    from bench.palette import model_styles
    from bench.report import plots
    from bench.report import tables as tb
    from bench.report.declared import declarations
    from bench.results import load_run

    data = load_run(run)
    declared = declarations([data])
    styles = model_styles(tb.model_order(data.records))
    start = time.perf_counter()
    figures = plots.report_figures(data.records, declared, styles)
    return time.perf_counter() - start, len(figures)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, help="a run folder to render (default: run suites/regression_counts.toml)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--target", type=float, default=3.0, help="largest acceptable median, seconds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="snnbench-report-speed-") as tmp:
        run = args.run
        if run is None:
            run = Path(tmp) / "run"
            print(f"running {SUITE.relative_to(ROOT)} into {run} ...", flush=True)
            cli("run", str(SUITE), "--out", str(run), "-q")
        times = [cli("report", str(run), "--out", str(Path(tmp) / f"report{i}")) for i in range(args.repeats)]
        figures, count = figures_s(run)
    median = statistics.median(times)
    print("bench report wall time (s): " + ", ".join(f"{t:.2f}" for t in times))
    print(f"median {median:.2f} s, target <= {args.target:.2f} s; figures: {figures:.2f} s for {count} figures "
          "(in this process, imports done)")
    ok = median <= args.target
    print("PASS" if ok else f"FAIL: rendering the report takes more than {args.target:.2f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
