"""Command line: parses arguments, calls the library, maps errors to exit codes.

Exit codes: 0 all cases ok; 1 some case failed (or a comparison found a regression, or a report or derived
file could not be written); 2 bad input (suite, model, dataset, checkpoint, path): nothing ran; 3 (``bench
compare`` / ``bench diff``) no regression, but some cases were not comparable (another configuration);
130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import signal
import sys
import textwrap
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from bench.estimate import Estimate
    from bench.plan import CasePlan
    from bench.report.declared import Installed
    from bench.suite import Suite

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_NOT_COMPARABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

if TYPE_CHECKING:
    from bench.runner import RunOutcome


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Treat SIGTERM (schedulers, ``timeout``, ``kill``) as Ctrl-C for the block: the run stops after the cases
    already measured, keeps them and writes its partial report (exit 130)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from bench import distributed
    from bench.plan import plan_cases
    from bench.runner import default_out_dir, new_run_id, resolve_out_dir, run_suite
    from bench.suite import Selection, load_suite

    suite = load_suite(args.suite, allow_import=not args.no_import, import_code=not args.dry_run)
    selection = Selection(tuple(args.models or ()), tuple(args.T or ()), tuple(args.batch_size or ()))
    given = args.out or args.resume
    if args.dry_run:  # the folder a run would take (it joins no process group)
        out = given or default_out_dir(suite, new_run_id())
    else:
        out = resolve_out_dir(suite, given)
    # One plan of the cases (selection, per-model T, trained checkpoints, done set) for the listing, the
    # estimate and the runner; bad flags are bad input before anything runs.
    plan = plan_cases(suite, out, selection=selection, resume=args.resume is not None)
    if args.dry_run:
        return _dry_run(args, plan, console)
    if not distributed.launched():  # past durations are single-process figures
        _check_data(plan)  # a missing data root or too little memory is refused before any estimate
        _print_estimate(args, plan, console)
    with contextlib.ExitStack() as held:  # rank 0 keeps the folder locked until its report is written
        try:  # under torchrun every rank runs the cases; rank 0 alone prints and writes (bench.distributed)
            with sigterm_interrupts():
                outcome = run_suite(plan, allow_changes=args.allow_changes, show_progress=not args.quiet,
                                    console=console, isolate=args.isolate, hold=held)
            main = distributed.is_main()
        finally:
            distributed.shutdown()
        if not main:  # rank 0's exit code is the run's; a rank exiting 1 first would make torchrun stop rank 0
            return EXIT_OK
        reported = _report(outcome, console)
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    if outcome.write_error:
        console.print(f"[red]error:[/red] {escape(outcome.write_error)}", highlight=False)
        return EXIT_FAILED
    if outcome.failed:
        console.print(f"[red]{len(outcome.failed)} case(s) failed[/red]: see the report's Failures section")
        return EXIT_FAILED
    return EXIT_OK if reported else EXIT_FAILED


def _say_done(plan: CasePlan, console: Console) -> None:
    """Under ``--resume``, how many selected cases the folder already holds (they are not measured again)."""
    if done := len(plan.cases) - len(plan.todo):
        console.print(f"{done} of {len(plan.cases)} selected case(s) already done in {escape(str(plan.out))}",
                      highlight=False)


def _estimate(args: argparse.Namespace, plan: CasePlan, measure: bool) -> Estimate:
    from bench.estimate import estimate_cases
    from bench.history import history_path

    return estimate_cases(plan, measure=measure, isolate=args.isolate,
                          db=history_path(plan.out))  # the store the run will append to


def _print_estimate(args: argparse.Namespace, plan: CasePlan, console: Console) -> None:
    """One line before a run starts: the total and its basis. No speed benchmark when the suite measures energy
    (it would disturb the rest-idle reading)."""
    _say_done(plan, console)
    if plan.todo:
        estimate = _estimate(args, plan, measure="measured_energy" not in plan.suite.metrics)
        console.print(escape(estimate.summary()), highlight=False, soft_wrap=True)


def _dry_run(args: argparse.Namespace, plan: CasePlan, console: Console) -> int:
    """Validate what a run validates before anything runs, print the cases and the estimate; write nothing and
    import no import path (each is checked without importing, bench.static_imports)."""
    from bench.models.registry import import_paths_unrun

    with import_paths_unrun():
        return _check_and_list(args, plan, console)


def _unrun_import_paths(suite: Suite) -> list[str]:
    """The suite's import paths (models by import path, import paths in ``[metrics.*]`` options) checked without
    importing: one line each; SuiteError naming the field when one does not resolve."""
    from bench.checking import import_paths
    from bench.models.registry import is_import_path
    from bench.static_imports import ImportPathError, check_import_path
    from bench.suite import SuiteError

    found = [(f"models[{i}].name", m.name) for i, m in enumerate(suite.models) if is_import_path(m.name)]
    lines = []
    for field, path in found + import_paths(suite.metric_options, "metrics"):
        try:
            lines.append(f"{field} = {check_import_path(path).describe()}")
        except ImportPathError as exc:
            raise SuiteError(suite.path, field, f"{exc.problem} (checked without importing)", exc.fix) from exc
    return lines


def _check_data(plan: CasePlan) -> None:
    """What a run checks of its data before loading it: workers against CPUs, the memory of declared shapes,
    a missing data root (DatasetError) and the data's own size; raises the bad-input error."""
    from bench.data import dataset_kind, estimate_bytes, falls_back
    from bench.data.limits import ENV_VAR
    from bench.runner import check_before_loading

    if problem := check_before_loading(plan.suite, list(plan.cases)):
        raise problem
    data = plan.suite.data
    fix = ("lower data.image_size or data.fallback_samples (the synthetic stand-in's)" if falls_back(data)
           else dataset_kind(data.dataset).memory_fix())
    estimate_bytes(data).check(f"the {data.dataset} data", f"{fix}, or raise {ENV_VAR}")


def _check_and_list(args: argparse.Namespace, plan: CasePlan, console: Console) -> int:
    """The dry run's checks and listing (under import_paths_unrun)."""
    from bench import distributed
    from bench.data import fallback_note
    from bench.estimate import duration
    from bench.rundir import RunFolderError
    from bench.runner import plan_segment, run_folder_problem
    from bench.suite import SuiteError

    suite = plan.suite
    if distributed.launched():
        raise SuiteError(suite.path, "--dry-run", "runs no case, so it takes no ranks", "run it without torchrun")
    if not plan.cases:
        raise SuiteError(suite.path, "suite.devices", f"no listed device is present on this machine "
                         f"({'; '.join(plan.notes)}): nothing would run",
                         'add "cpu" to suite.devices, or run the suite where its GPUs are')
    unrun = _unrun_import_paths(suite)
    _check_data(plan)
    notes = list(plan.notes)
    if note := fallback_note(suite.data):  # the note a run prints first
        notes = [note, *notes]
    if plan.out.is_dir():
        if problem := run_folder_problem(plan.out, plan.resume):
            raise RunFolderError(problem)
        if plan.resume:
            plan_segment(plan.out, suite, True, args.allow_changes)  # reads the folder only; a changed suite is refused
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    if unrun:
        console.print("import paths checked without importing (none of their code ran; the kwargs of models by "
                      "import path are checked when a run imports them):\n  " + escape("\n  ".join(unrun)),
                      highlight=False, soft_wrap=True)
    _say_done(plan, console)
    estimate = _estimate(args, plan, measure=True)
    table = Table(title=escape(f"{suite.name}: {len(plan.todo)} case(s) (dry run: nothing runs, nothing is written)"))
    for col in ("#", "model", "name", "T", "device", "batch", "estimate", "basis"):
        table.add_column(col, justify="right" if col in ("#", "T", "batch", "estimate") else "left", overflow="fold")
    for i, c in enumerate(estimate.cases, 1):
        seconds = "-" if c.seconds is None else duration(c.seconds)
        table.add_row(str(i), escape(c.case.model.label), escape(c.case.model.name), str(c.case.T), c.case.device,
                      str(c.case.batch_size), seconds, escape(c.detail))
    console.print(table)
    console.print(f"metrics (every case): {', '.join(suite.metrics)}", highlight=False)
    if plan.training:
        console.print(f"training first ({escape('[train]')}, not in the estimate): {escape(', '.join(plan.training))}",
                      highlight=False)
    for speed in estimate.speeds:
        console.print(f"rough figures use the speed measured on {escape(speed.describe())}", highlight=False)
    console.print(escape(estimate.summary()), highlight=False, soft_wrap=True)
    return EXIT_OK


def _report(outcome: RunOutcome, console: Console) -> bool:
    """Render the report, append the run to the history and print the summary (rank 0); False when the report
    could not be written (the run then exits 1)."""
    from bench.report import render_report
    from bench.results import ResultsWriteError

    try:
        md, html = render_report([outcome.out_dir])
    except (OSError, ResultsWriteError) as exc:  # a full disk: the results file is what counts, and it is intact
        console.print(f"[red]report not written:[/red] {escape(str(exc))}")
        return False
    _record_history(outcome.out_dir, console)
    _print_summary(outcome.out_dir, outcome.records, console)
    console.print(f"results: {outcome.out_dir}/results.jsonl\nreport:  {md}\n         {html}")
    return True


def _print_summary(run_dir: Path, records: list[dict], console: Console) -> None:
    """One row per case with the fields the run's declarations mark ``summary`` (read from its run.json), fitted
    to the console's width (see :func:`_fit_summary`)."""
    from bench.report.declared import declarations
    from bench.report.tables import summary_table
    from bench.results import load_run

    declared = declarations([load_run(run_dir)])
    for note in declared.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    table, left_out = _fit_summary(summary_table(records, declared), console.width)
    console.print(table)
    if left_out:
        console.print(escape(f"not shown at {console.width} columns: {', '.join(left_out)} (every field is in the "
                             "report)"))


def _summary_table(frame: pd.DataFrame, title: str) -> Table:
    """The summary as a rich table: light rules, no wrapping of values (headers wrap onto lines as wide as
    their values, at least 10 characters, at spaces and after hyphens: ``compute-only`` may take two lines)."""
    from rich import box

    table = Table(title=escape(title), box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for col in frame.columns:
        values = [len(str(v)) for v in frame[col]]
        width = max([*values, *(len(w) for w in re.split(r"\s+|(?<=-)", str(col))), min(len(str(col)), 10)])
        table.add_column(escape(textwrap.fill(str(col), width)), no_wrap=col != "model",
                         justify="left" if col in ("model", "device", "status") else "right")
    for _, row in frame.iterrows():
        table.add_row(*(escape(str(v)) for v in row), style=None if row["status"] == "ok" else "red")
    return table


def _fit_summary(frame: pd.DataFrame, width: int) -> tuple[Table, list[str]]:
    """The summary fitted to ``width`` terminal columns: a column with one value (device, batch) goes into the
    title, headers wrap, and trailing summary fields are left out (and listed) until the table's natural width
    fits."""
    import io

    title = ["summary"]
    for col in ("device", "batch"):
        if frame[col].nunique() == 1:
            title.append(f"{col} {frame[col].iloc[0]}")
            frame = frame.drop(columns=col)
    measure = Console(width=10_000, file=io.StringIO())
    left_out: list[str] = []
    while True:
        table = _summary_table(frame, ", ".join(title))
        droppable = [c for c in frame.columns if c not in ("model", "T", "status", "device", "batch")]
        if measure.measure(table).maximum <= width or not droppable:
            return table, left_out
        frame = frame.drop(columns=droppable[-1])
        left_out.insert(0, droppable[-1])


def cmd_train(args: argparse.Namespace, console: Console) -> int:
    from bench.results import RESULTS_FILE
    from bench.rundir import RunFolderError, folder_problem, run_lock
    from bench.runner import check_before_loading, default_out_dir, new_run_id
    from bench.suite import expand_cases, load_suite
    from bench.train import prepare_checkpoints, train_plan

    suite = load_suite(args.suite, allow_import=not args.no_import)
    train_plan(suite)  # a suite without [train] is bad input
    if problem := check_before_loading(suite, expand_cases(suite)[0]):
        raise problem
    out = args.out or default_out_dir(suite, new_run_id())
    if problem := folder_problem(out):
        raise RunFolderError(problem)
    with run_lock(out), sigterm_interrupts():
        trained = prepare_checkpoints(suite, out, console, show_progress=not args.quiet)
    for spec in trained.models:
        console.print(f"{escape(spec.label)}: {escape(str(spec.checkpoint or 'untrained'))} (trained_T={spec.trained_T})")
    # A folder with only checkpoints takes a new run; one that already holds results is resumed.
    where = "--resume" if (out / RESULTS_FILE).is_file() else "--out"
    flags = " --no-import" if args.no_import else ""
    console.print(f"evaluate with: bench run {shlex.quote(str(args.suite))} {where} {shlex.quote(str(out))}{flags}",
                  highlight=False, soft_wrap=True)
    return EXIT_OK


def _record_history(run_dir: Path, console: Console) -> None:
    """Append the run to the history store; a store that cannot be written is a warning, not a failure."""
    import sqlite3

    from bench.history import append_run, history_path

    db = history_path(run_dir)
    if db is None:
        return
    try:
        append_run(run_dir, db)
    except (sqlite3.Error, OSError) as exc:
        console.print(f"[yellow]warning:[/yellow] history not updated ({escape(str(db))}): {escape(str(exc))}")


def cmd_history(args: argparse.Namespace, console: Console) -> int:
    from bench.history import device_labels, history_path, list_runs, locate_store, metric_series, plot_series

    db = locate_store(args.db) if args.db else history_path()
    if db is None:
        raise FileNotFoundError("the history store is turned off (BENCH_HISTORY=off): name one with --db PATH")
    if not Path(db).is_file():
        raise FileNotFoundError(f"no history store at {db}: `bench run` creates one in the reports root of its "
                                "run folder (e.g. reports/history.sqlite); name it, a run folder or a reports "
                                "folder with --db PATH (BENCH_HISTORY sets the path)")
    if not args.metric:
        table = Table(title=f"runs in {db}")
        for col in ("run id", "created", "suite", "commit", "machine", "devices", "cases", "failed"):
            table.add_column(col, overflow="fold")
        for r in list_runs(db, args.suite, args.limit):
            table.add_row(r["run_id"], r["created"] or "?", r["suite"] or "?", (r["git_commit"] or "?")[:10],
                          r["machine"] or "?", r["devices"], str(r["n_cases"]), str(r["n_failed"]))
        console.print(table)
        return EXIT_OK
    points = metric_series(db, args.metric, args.model, args.T, args.device, args.suite)
    if not points:
        console.print(f"[red]no values of {escape(args.metric)}[/red] for the chosen models/T/device")
        return EXIT_BAD_INPUT
    table = Table(title=args.metric)
    for col in ("created", "run id", "commit", "model", "T", "device", "batch", "value"):
        table.add_column(col, justify="right" if col in ("T", "batch", "value") else "left", overflow="fold")
    for p, device in zip(points, device_labels(points), strict=True):
        table.add_row(p.created or "?", p.run_id, (p.git_commit or "?")[:10], p.model, str(p.T), device,
                      str(p.batch_size), f"{p.value:.6g}")
    console.print(table)
    if args.plot:
        console.print(f"plot: {plot_series(points, args.metric, args.plot)}")
    return EXIT_OK


def cmd_baseline(args: argparse.Namespace, console: Console) -> int:
    from bench.compare import baseline_path, make_baseline, save_baseline

    baseline = make_baseline(args.run_dir, args.name, args.suite)
    path = save_baseline(baseline, args.file or baseline_path(args.name))
    n = sum(len(c["values"]) for c in baseline["cases"].values())
    console.print(f"baseline {escape(args.name)}: {len(baseline['cases'])} case(s), {n} value(s), "
                  f"fields and tolerances chosen by {escape(baseline['tolerances_source'])}\nwritten: {path}")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace, console: Console) -> int:
    from bench.compare import baseline_path, compare_run

    changes, source, notes = compare_run(baseline_path(args.baseline), args.run_dir, args.suite)
    title = f"{args.run_dir} against {args.baseline} (tolerances: {source})"
    return _print_changes(changes, source, title, ("baseline", "current"), args.all, console, notes)


def _print_changes(changes: list[Any], source: str, title: str, sides: tuple[str, str], show_all: bool,
                   console: Console, notes: Sequence[str] = ()) -> int:
    """The changes of ``bench compare`` / ``bench diff`` as a table (unchanged values only with ``--all``), the
    count line and one line per regression and per case not comparable; exit 1 on a regression, else 3 when
    cases were not comparable."""
    from bench.compare import not_comparable, regressions

    for note in notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False, soft_wrap=True)
    bad, odd = regressions(changes), not_comparable(changes)
    table = Table(title=escape(title))
    for col in ("case", "field", *sides, "change", "tolerance", "verdict", "note"):
        table.add_column(col, justify="right" if col in (*sides, "change") else "left", overflow="fold")
    for c in changes:
        if c.verdict == "ok" and not show_all and not c.delta:
            continue
        style = {"regression": "red", "improved": "green", "fixed": "green", "skipped": "dim",
                 "not comparable": "yellow"}.get(c.verdict)
        table.add_row(*(escape(v) for v in c.cells()), style=style)
    if table.row_count:
        console.print(table)
    compared = sum(c.verdict in ("ok", "regression", "improved") for c in changes)
    skipped = sum(c.verdict == "skipped" for c in changes)
    console.print(f"{compared} value(s) compared, " + (f"{skipped} skipped (see the table), " if skipped else "")
                  + f"{len(bad)} regression(s), {len(odd)} case(s) not comparable; tolerances: {escape(source)}")
    for c in bad:
        console.print(f"[red]REGRESSION[/red] {escape(c.summary())}", soft_wrap=True)
    for c in odd:
        console.print(f"[yellow]NOT COMPARABLE[/yellow] {escape(c.summary())}", soft_wrap=True)
    return EXIT_FAILED if bad else EXIT_NOT_COMPARABLE if odd else EXIT_OK


def cmd_models(args: argparse.Namespace, console: Console) -> int:
    from bench.models import create_model, list_models, model_info

    names = list_models(args.pattern)
    if not names:
        console.print(f"no registered model matches {args.pattern!r}")
        return EXIT_BAD_INPUT
    table = Table(title=f"models matching {args.pattern!r}")
    for col in ("name", "family", "params", "provenance", "T", "neuron"):
        table.add_column(col, justify="right" if col in ("params", "T") else "left", overflow="fold")
    if args.details:
        for col in ("paper", "not spike-driven", "notes"):
            table.add_column(col, overflow="fold")
    for name in names:
        info = model_info(name)
        params = "-" if args.no_params else f"{sum(p.numel() for p in create_model(name).parameters()) / 1e6:.2f}M"
        row = [name, info.family, params, info.provenance, str(info.default_T), info.neuron]
        if args.details:
            row += [info.paper, "; ".join(info.non_spiking) or "-", info.notes or "-"]
        table.add_row(*row)
    Console(width=max(console.width, 200 if args.details else 140)).print(table)
    return EXIT_OK


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from bench.report import LATEX_FILE, ReportOptions, render_report
    from bench.results import load_run
    from bench.rundir import RunFolderError

    if len(args.run_dirs) > 1 and args.out is None:  # the default, the first run's folder, holds its own report
        raise RunFolderError(f"{len(args.run_dirs)} run folders merge into one report: name its folder with --out DIR "
                             f"(without it the merged report would replace the report of {args.run_dirs[0]})")
    target = args.out or args.run_dirs[0]
    replacing = (target / "report.md").is_file()  # said, so no report is replaced silently
    old = [d for d in args.run_dirs if load_run(d).contracts is None]
    chosen = {"unstable_rel_iqr": args.unstable_rel_iqr, "max_layers": args.max_layers}
    options = ReportOptions(**{k: v for k, v in chosen.items() if v is not None})
    md, html = render_report(args.run_dirs, args.out, _installed_declarations() if old else None, options,
                             latex=args.latex)
    if old:
        console.print("[yellow]note:[/yellow] run.json of " + escape(", ".join(map(str, old)))
                      + " has no metric declarations: rendered with the declarations of the installed version")
    if replacing:
        whose = "the run's own report" if args.out is None else "the report that was there"
        console.print(f"replaced {whose} in {escape(str(target))}"
                      + (" (--out DIR writes elsewhere)" if args.out is None else ""), highlight=False)
    console.print(f"report: {escape(str(md))}\n        {escape(str(html))}")
    if args.latex:
        console.print(f"        {escape(str(md.parent / LATEX_FILE))}")
    return EXIT_OK


def cmd_diff(args: argparse.Namespace, console: Console) -> int:
    from bench.compare import diff_runs

    changes, source, notes = diff_runs(args.run_a, args.run_b, args.suite)
    return _print_changes(changes, source, f"B = {args.run_b} against A = {args.run_a}", ("A", "B"), args.all,
                          console, notes)


def _installed_declarations() -> Installed:
    """The installed plug-ins' declarations and conventions (imports the metrics, so torch): only for
    re-rendering runs made before run.json stored them."""
    from bench.metrics import available_metrics, get_metric
    from bench.metrics.conventions import conventions_dict
    from bench.report.declared import Installed

    return Installed({m: get_metric(m).contract for m in available_metrics()}, conventions_dict())


def _export_source(source: Path, label: str | None) -> Path:
    """The checkpoint file: ``source`` itself, or ``<run>/checkpoints/<label>.pt`` of a run folder."""
    from bench.checkpoints import CheckpointError
    from bench.train.checkpointing import CHECKPOINT_DIR, checkpoint_paths

    if not source.is_dir():
        if label is not None:
            raise CheckpointError(f"--label {label!r} needs a run folder, and {str(source)!r} is not one")
        if not source.is_file():
            raise CheckpointError(f"checkpoint {str(source)!r} does not exist")
        return source
    finals = sorted(p for p in (source / CHECKPOINT_DIR).glob("*.pt") if not p.name.endswith(".last.pt"))
    names = ", ".join(p.stem for p in finals) or "none"
    if label is not None:
        path = checkpoint_paths(source, label)[0]
        if not path.is_file():
            raise CheckpointError(f"run folder {str(source)!r} has no trained checkpoint labelled {label!r} "
                                  f"(it has: {names})")
        return path
    if len(finals) != 1:
        raise CheckpointError(f"run folder {str(source)!r} has {len(finals)} trained checkpoints ({names}); "
                              f"choose one with --label LABEL")
    return finals[0]


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    import json

    from bench.checkpoint_formats import FormatError, get_format
    from bench.checkpoints import (
        CheckpointError,
        checkpoint_meta,
        export_state,
        load_checkpoint,
        read_checkpoint,
    )
    from bench.models import create_model
    from bench.train.checkpointing import save_atomic

    if args.format != "nir":
        try:
            get_format(args.format)
        except FormatError as exc:
            raise CheckpointError(f"--format: {exc}; or nir") from exc
    if args.image_size is not None and args.format != "nir":
        raise CheckpointError(f"--image-size goes with --format nir, not {args.format}")
    path = _export_source(args.source, args.label)
    meta = checkpoint_meta(read_checkpoint(path))
    name = args.model or meta.get("model")
    if not isinstance(name, str):
        raise CheckpointError(f"checkpoint {str(path)!r} does not name its model; give it with --model NAME")
    try:
        kwargs = (meta.get("kwargs", {}) if name == meta.get("model") else {}) | json.loads(args.kwargs or "{}")
        model = create_model(name, **kwargs)
    except (ValueError, TypeError) as exc:  # bad JSON or kwargs the factory refuses
        raise CheckpointError(f"cannot build {name!r} from --kwargs {args.kwargs!r}: {exc}") from exc
    loaded = load_checkpoint(model, path, args.source_format, name)
    if args.format == "nir":
        _export_nir(model, name, kwargs, args.image_size, args.out)
        console.print(f"{escape(str(path))} ({loaded.format}, {loaded.tensors} tensors) -> {escape(str(args.out))} "
                      f"(nir)")
        return EXIT_OK
    try:
        state = export_state(model, args.format)
    except FormatError as exc:
        raise CheckpointError(f"cannot export {name!r} as {args.format}: {exc}") from exc
    if args.format == "snnbench":
        state["meta"] = {**loaded.meta, "model": name, "kwargs": kwargs}
    try:
        save_atomic(state, args.out)
    except OSError as exc:  # a read-only folder, a file where a folder belongs, --out naming a folder
        raise CheckpointError(f"cannot write --out {str(args.out)!r}: {exc.strerror or exc}. Fix: name a file in a "
                              f"folder you can write (nothing was written there)") from exc
    console.print(f"{escape(str(path))} ({loaded.format}, {loaded.tensors} tensors) -> {escape(str(args.out))} "
                  f"({args.format})")
    return EXIT_OK


def _export_nir(model: torch.nn.Module, name: str, kwargs: dict[str, object], image_size: tuple[int, int] | None,
                out: Path) -> None:
    """``bench export --format nir``: the graph of :mod:`bench.nir_export` for ``image_size`` inputs (default: the
    model's ``input_size`` preset, 32 px for cifar, 224 for imagenet), written to ``out`` (HDF5)."""
    from bench.checkpoints import CheckpointError
    from bench.nir_export import PRESET_IMAGE_SIZES, NIRExportError, write_nir
    from bench.results import ResultsWriteError

    if image_size is None:
        side = PRESET_IMAGE_SIZES.get(str(kwargs.get("input_size", "imagenet")), PRESET_IMAGE_SIZES["imagenet"])
        image_size = (side, side)
    try:
        write_nir(model, name, image_size, out)
    except NIRExportError as exc:
        raise CheckpointError(str(exc)) from exc
    except (OSError, ResultsWriteError) as exc:  # a missing or read-only folder, --out naming a folder
        reason = os.strerror(exc.errno) if exc.errno else exc
        raise CheckpointError(f"cannot write --out {str(out)!r}: {reason}. Fix: name a file in a folder you can "
                              "write (nothing was written there)") from exc


def _image_size(text: str) -> tuple[int, int]:
    """An argparse type: ``N`` (square) or ``H,W`` positive pixel counts."""
    parts = text.split(",")
    if len(parts) not in (1, 2) or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected N or H,W (positive integers), got {text!r}")
    sides = [int(p) for p in parts]
    return (sides[0], sides[-1])


def _positive_int(text: str) -> int:
    """An argparse type: a positive integer (anything else is a usage error, exit 2)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description="snnbench: benchmark spiking neural networks")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a suite and write results and reports")
    run.add_argument("suite", help="suite file (TOML), e.g. suites/digits.toml")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, help="output folder (default reports/<suite>/<run-id>)")
    where.add_argument("--resume", type=Path, metavar="RUN_DIR",
                       help="continue a run in RUN_DIR: cases already completed with the same configuration are kept; "
                       "a suite whose settings changed is refused")
    run.add_argument("--allow-changes", action="store_true",
                     help="with --resume: measure a changed suite as a new segment of the run, kept apart from the "
                     "earlier records")
    run.add_argument("--isolate", action="store_true",
                     help="run each case in its own process: crashes (segfault, OOM kill) and hangs are recorded too")
    run.add_argument("--no-import", action="store_true",
                     help="refuse a suite that names Python code to import (models by import path, import paths in "
                     "metric options): for suites you did not write")
    run.add_argument("--models", action="append", metavar="PATTERN",
                     help="run only the models whose label or registered name matches (shell-style, case-insensitive; "
                     "repeatable); a case's record is the same as in a full run, so --resume may continue with "
                     "another selection")
    run.add_argument("--T", type=_positive_int, action="append", metavar="N",
                     help="run only this T (repeatable; one the suite evaluates)")
    run.add_argument("--batch-size", type=_positive_int, action="append", metavar="N",
                     help="run only this batch size (repeatable; one of data.batch_size)")
    run.add_argument("--dry-run", action="store_true",
                     help="check the suite and the selection as a run would, list the cases with a time estimate, "
                     "run and write nothing (import paths are checked without importing them)")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    run.set_defaults(func=cmd_run)

    train = sub.add_parser("train", help="train the suite's models lacking a checkpoint ([train] table)")
    train.add_argument("suite", help="suite file (TOML) with a [train] table")
    train.add_argument("--out", type=Path, help="run folder; checkpoints go to <out>/checkpoints/ "
                       "(default reports/<suite>/<run-id>); rerunning into it resumes")
    train.add_argument("--no-import", action="store_true",
                       help="refuse a suite that names Python code to import (see bench run --no-import)")
    train.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=cmd_train)

    models = sub.add_parser("models", help="list registered models")
    models.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. 'sew*'")
    models.add_argument("--no-params", action="store_true", help="skip building each model to count parameters")
    models.add_argument("--details", action="store_true",
                        help="also show the paper, what is not spike-driven, and notes")
    models.set_defaults(func=cmd_models)

    report = sub.add_parser("report", help="render a report from one or more run folders (merged)")
    report.add_argument("run_dirs", nargs="+", type=Path)
    report.add_argument("--out", type=Path, help="output folder (default, for one run: its own folder, replacing "
                        "its report; required when several runs are merged)")
    report.add_argument("--latex", action="store_true",
                        help="also write the headline tables as report.tex (booktabs) beside report.md")
    report.add_argument("--unstable-rel-iqr", type=_non_negative, metavar="X",
                        help="flag a timed measurement whose IQR / median exceeds X (default 0.10)")
    report.add_argument("--max-layers", type=_positive_int, metavar="N",
                        help="per-layer charts of more than N layers show stages (default 40)")
    report.set_defaults(func=cmd_report)

    diff = sub.add_parser("diff", help="compare two run folders side by side; exit 1 on a regression, 3 when "
                          "cases are not comparable (another configuration)")
    diff.add_argument("run_a", type=Path, help="the reference run folder")
    diff.add_argument("run_b", type=Path, help="the run folder checked against it")
    diff.add_argument("--suite", type=Path, help="suite whose [tolerances] apply (default: run B's)")
    diff.add_argument("--all", action="store_true", help="also list unchanged values")
    diff.set_defaults(func=cmd_diff)

    history = sub.add_parser("history", help="list runs in the history store, or follow a metric over time")
    history.add_argument("--db", type=Path, help="history file, or a run folder or reports folder whose store to "
                         "read (default $BENCH_HISTORY, else reports/history.sqlite)")
    history.add_argument("--metric", help="<metric>.<field>, e.g. accuracy.top1")
    history.add_argument("--model", action="append", help="model label (repeatable; default all)")
    history.add_argument("--T", type=int, help="only this T")
    history.add_argument("--device", help="only this device model or torch device")
    history.add_argument("--suite", help="only runs of this suite")
    history.add_argument("--limit", type=int, help="list at most this many runs")
    history.add_argument("--plot", type=Path, help="write a PNG of the metric over time")
    history.set_defaults(func=cmd_history)

    baseline = sub.add_parser("baseline", help="regression baselines")
    baseline_sub = baseline.add_subparsers(dest="baseline_command", required=True)
    save = baseline_sub.add_parser("save", help="save a run's tracked values as suites/baselines/NAME.json")
    save.add_argument("run_dir", type=Path)
    save.add_argument("name")
    save.add_argument("--suite", type=Path, help="suite whose [tolerances] choose the fields (default: the run's)")
    save.add_argument("--file", type=Path, help="write here instead of suites/baselines/NAME.json")
    save.set_defaults(func=cmd_baseline)

    compare = sub.add_parser("compare", help="compare a run with a baseline; exit 1 on a regression, 3 when "
                             "cases are not comparable (another configuration)")
    compare.add_argument("baseline", help="baseline name (suites/baselines/NAME.json) or file")
    compare.add_argument("run_dir", type=Path)
    compare.add_argument("--suite", type=Path, help="suite whose [tolerances] apply (default: the run's)")
    compare.add_argument("--all", action="store_true", help="also list unchanged values")
    compare.set_defaults(func=cmd_compare)

    # Format names written out so that `bench --help` does not import torch (a test keeps them in sync).
    formats = "snnbench, sew-official, spikingjelly-zoo, ms-resnet-official, spikeformer-official, dsr-official"
    export = sub.add_parser("export", help="write a checkpoint's weights in an official code's layout, or as a "
                            "NIR graph")
    export.add_argument("source", type=Path, help="checkpoint file, or a run folder (with --label: its "
                        "checkpoints/<label>.pt; without: its only trained checkpoint)")
    export.add_argument("--format", required=True, help=f"layout to write: {formats}; or nir (a NIR graph, "
                        "HDF5: Spiking ResNet and SEW-ADD ResNet with IF/LIF/PLIF hard reset, no max pool)")
    export.add_argument("--image-size", type=_image_size, help="--format nir: input size N or H,W in pixels "
                        "(default: 32 for input_size cifar, 224 for imagenet)")
    export.add_argument("--out", required=True, type=Path, help="file to write")
    export.add_argument("--label", help="model label in the run folder")
    export.add_argument("--model", help="registered model name (default: the one the checkpoint's meta names)")
    export.add_argument("--kwargs", help="JSON model arguments, over those in the checkpoint's meta, "
                        "e.g. '{\"width\": 0.5}'")
    export.add_argument("--source-format", help=f"format of the source (default: detected from its keys): {formats}")
    export.set_defaults(func=cmd_export)
    return parser


def bad_input_errors() -> tuple[type[BaseException], ...]:
    from bench.checkpoints import CheckpointError
    from bench.compare import BaselineError
    from bench.data import DatasetError
    from bench.distributed import DistributedError
    from bench.models.registry import UnknownModelError
    from bench.results import RunFileError
    from bench.rundir import RunFolderError
    from bench.suite import SuiteError
    from bench.train.checkpointing import UnreadableCheckpointError
    from bench.train.loop import TrainingError

    return (SuiteError, DatasetError, CheckpointError, UnknownModelError, FileNotFoundError, TrainingError,
            BaselineError, DistributedError, RunFolderError, RunFileError, UnreadableCheckpointError)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from bench.results import ResultsWriteError  # after parsing: ``bench --help`` imports no pandas

    if getattr(args, "allow_changes", False) and args.resume is None:
        parser.error("--allow-changes goes with --resume RUN_DIR")
    console = Console(stderr=True)
    if not console.is_terminal:  # logs and CI: wide enough that tables do not fold every cell
        console.width = 160
    try:
        return args.func(args, console)
    except bad_input_errors() as exc:
        console.print("[red]error:[/red] " + escape(str(exc)), highlight=False)
        return EXIT_BAD_INPUT
    except ResultsWriteError as exc:  # disk full, read-only folder: the records already written are whole
        console.print("[red]error:[/red] " + escape(str(exc)), highlight=False)
        return EXIT_FAILED
    except KeyboardInterrupt:
        console.print("[red]interrupted[/red]")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
