"""Command line: parses arguments, calls the library, maps errors to exit codes.

Exit codes: 0 all cases ok; 1 some case failed (or a comparison found a regression);
2 bad input (suite, model, dataset, checkpoint, path): nothing ran; 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

Command = Callable[[argparse.Namespace, Console], int]


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from bench.report import render_report
    from bench.runner import run_suite
    from bench.suite import load_suite

    suite = load_suite(args.suite)
    outcome = run_suite(suite, args.out or args.resume, resume=args.resume is not None,
                        show_progress=not args.quiet, console=console)
    md, html = render_report([outcome.out_dir])
    _print_summary(outcome.records, console)
    console.print(f"results: {outcome.out_dir}/results.jsonl\nreport:  {md}\n         {html}")
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    if outcome.failed:
        console.print(f"[red]{len(outcome.failed)} case(s) failed[/red]: see the report's Failures section")
        return EXIT_FAILED
    return EXIT_OK


def _print_summary(records: list[dict], console: Console) -> None:
    from bench.report.tables import summary_table

    frame = summary_table(records)
    table = Table(title="summary")
    for col in frame.columns:
        table.add_column(str(col), justify="left" if col in ("model", "device", "status") else "right")
    for _, row in frame.iterrows():
        style = None if row["status"] == "ok" else "red"
        table.add_row(*(str(v) for v in row), style=style)
    console.print(table)


def cmd_models(args: argparse.Namespace, console: Console) -> int:
    from bench.models import create_model, list_models, model_info

    table = Table(title=f"models matching {args.pattern!r}")
    for col in ("name", "family", "params", "provenance", "T", "neuron", "not spike-driven"):
        table.add_column(col, justify="right" if col in ("params", "T") else "left", overflow="fold")
    for name in list_models(args.pattern):
        info = model_info(name)
        if args.no_params:
            params = "-"
        else:
            model = create_model(name)
            params = f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M"
            del model
        table.add_row(name, info.family, params, info.provenance, str(info.default_T), info.neuron,
                      "; ".join(info.non_spiking) or "-")
    console.print(table)
    return EXIT_OK


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from bench.report import render_report

    md, html = render_report(args.run_dirs, args.out)
    console.print(f"report: {md}\n        {html}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description="snnbench: benchmark spiking neural networks")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a suite and write results and reports")
    run.add_argument("suite", help="suite file (TOML), e.g. suites/digits.toml")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, help="output folder (default reports/<suite>/<run-id>)")
    where.add_argument("--resume", type=Path, metavar="RUN_DIR",
                       help="continue a run in RUN_DIR: cases already completed with the same configuration are kept")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    run.set_defaults(func=cmd_run)

    models = sub.add_parser("models", help="list registered models")
    models.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. 'sew*'")
    models.add_argument("--no-params", action="store_true", help="skip building each model to count parameters")
    models.set_defaults(func=cmd_models)

    report = sub.add_parser("report", help="render a report from one or more run folders (merged)")
    report.add_argument("run_dirs", nargs="+", type=Path)
    report.add_argument("--out", type=Path, help="output folder (default: the first run folder)")
    report.set_defaults(func=cmd_report)
    return parser


def bad_input_errors() -> tuple[type[BaseException], ...]:
    from bench.checkpoints import CheckpointError
    from bench.data import DatasetError
    from bench.models.registry import UnknownModelError
    from bench.suite import SuiteError

    return (SuiteError, DatasetError, CheckpointError, UnknownModelError, FileNotFoundError)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    if not console.is_terminal:  # logs and CI: wide enough that tables do not fold every cell
        console.width = 160
    try:
        return args.func(args, console)
    except bad_input_errors() as exc:
        console.print("[red]error:[/red] " + escape(str(exc)), highlight=False)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        console.print("[red]interrupted[/red]")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
