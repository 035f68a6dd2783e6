"""History store: every run's results appended to one SQLite file, to follow a metric over time.

Where the store is (:func:`history_path`): ``BENCH_HISTORY`` when set (a path; ``off`` turns the store
off); else ``history.sqlite`` in the **reports root** of the run folder, the folder that holds the suite
folders: ``reports/<suite>/<run-id>`` keeps its history in ``reports/history.sqlite`` (the run folder's
parent is named after its suite: the root is two levels up), and ``--out DIR`` in ``DIR/../history.sqlite``
(one level up). The store lives with the output, wherever the command was started. ``bench history``
finds it the same way (:func:`locate_store`): ``--db`` names a store file, a run folder (its store, by
the rule above) or a reports root (its ``history.sqlite``); without ``--db``, ``BENCH_HISTORY`` or
``reports/history.sqlite`` under the current folder (the default reports root of ``bench run``).

``bench run`` appends its run at the end; ``bench history`` lists runs and plots ``<metric>.<field>``
over time, one colour per series (model, T, device, batch size; a device model name that CPUs of more than
one identity share is split by identity). Re-adding a run folder (e.g. after
``--resume``) replaces its earlier rows. Tables:

- ``runs``: one row per run folder: run id, path, suite, creation time, git commit, machine, devices.
- ``cases``: one row per case: model label and registered name, T, device, device model, batch
  size, status, error message, and a CPU case's identity (:func:`bench.devices.cpu_identity`; a store made
  before it was recorded gains the column, empty for its earlier rows).
- ``results``: one row per finite numeric scalar field of a case (``metric`` = ``<metric>.<field>``).

Runs are read through :mod:`bench.results`; plots use the report's palette (:mod:`bench.palette`) without
importing the report.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.results import (
    RUN_FILE,
    ResultsWriteError,
    case_key,
    device_name,
    load_run,
    numeric_fields,
    recorded_cpu_identity,
    write_file,
)

STORE_NAME = "history.sqlite"
DEFAULT_PATH = Path("reports") / STORE_NAME
ENV_VAR = "BENCH_HISTORY"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_key TEXT PRIMARY KEY, run_id TEXT NOT NULL, path TEXT NOT NULL, suite TEXT, created TEXT,
    git_commit TEXT, machine TEXT, devices TEXT, n_cases INTEGER, n_failed INTEGER, added_at TEXT);
CREATE TABLE IF NOT EXISTS cases (
    run_key TEXT NOT NULL REFERENCES runs(run_key) ON DELETE CASCADE, case_id TEXT NOT NULL, model TEXT,
    model_name TEXT, T INTEGER, device TEXT, device_name TEXT, batch_size INTEGER, status TEXT, error TEXT,
    cpu_identity TEXT, PRIMARY KEY (run_key, case_id));
CREATE TABLE IF NOT EXISTS results (
    run_key TEXT NOT NULL, case_id TEXT NOT NULL, metric TEXT NOT NULL, value REAL,
    PRIMARY KEY (run_key, case_id, metric),
    FOREIGN KEY (run_key, case_id) REFERENCES cases(run_key, case_id) ON DELETE CASCADE);
CREATE INDEX IF NOT EXISTS results_metric ON results(metric);
"""


def reports_root(run_dir: str | Path) -> Path:
    """The folder holding a run folder's suite folders: two levels up when its parent is named after its
    suite (``reports/<suite>/<run-id>``), else its parent (``--out DIR``)."""
    run_dir = Path(run_dir).resolve()
    try:
        suite = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8")).get("suite")
    except (OSError, ValueError, AttributeError):
        suite = None
    return run_dir.parent.parent if suite and run_dir.parent.name == suite else run_dir.parent


def history_path(run_dir: str | Path | None = None) -> Path | None:
    """The store of a run folder (see the module docstring): ``BENCH_HISTORY``, else ``history.sqlite`` in its
    reports root (without a run folder: ``reports/history.sqlite``); None when turned off."""
    value = os.environ.get(ENV_VAR, "")
    if value.lower() in ("off", "none", "0", "false"):
        return None
    if value:
        return Path(value)
    return DEFAULT_PATH if run_dir is None else reports_root(run_dir) / STORE_NAME


def locate_store(path: str | Path) -> Path:
    """``bench history --db PATH``: a store file, a run folder's store, or a reports root's store."""
    path = Path(path)
    if (path / RUN_FILE).is_file():
        return reports_root(path) / STORE_NAME
    return path / STORE_NAME if path.is_dir() else path


def connect(path: str | Path) -> sqlite3.Connection:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=30)
    con.execute("PRAGMA foreign_keys = ON")
    con.executescript(SCHEMA)
    if "cpu_identity" not in {row[1] for row in con.execute("PRAGMA table_info(cases)")}:
        try:  # a store made before the identity was recorded
            con.execute("ALTER TABLE cases ADD COLUMN cpu_identity TEXT")
        except sqlite3.OperationalError as exc:  # another process added it between the check and here
            if "duplicate column" not in str(exc):
                raise
    return con


def _run_key(run_id: str, machine: str | None, path: Path) -> str:
    return f"{run_id}@{machine or '?'}:{path}"


def append_run(run_dir: str | Path, db: str | Path) -> str:
    """Add (or replace) a run folder's records in the store; returns the run's key."""
    run = load_run(run_dir)
    path = run.path.resolve()
    run_id = run.run_id
    machine = run.env.get("hostname")
    key = _run_key(run_id, machine, path)
    records = run.records
    devices = sorted({device_name(r) for r in records})
    with connect(db) as con:
        con.execute("DELETE FROM runs WHERE run_key = ?", (key,))
        con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (
            key, run_id, str(path), run.run.get("suite"), run.env.get("created"),
            (run.env.get("git") or {}).get("commit"), machine, ", ".join(devices), len(records),
            sum(r.get("status") != "ok" for r in records), datetime.now(timezone.utc).isoformat(timespec="seconds")))
        for r in records:
            cid = case_key(r)
            con.execute("INSERT OR REPLACE INTO cases (run_key, case_id, model, model_name, T, device, device_name, "
                        "batch_size, status, error, cpu_identity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (
                key, cid, r["model"]["label"], r["model"].get("name"), r["T"], r.get("device"), device_name(r),
                r.get("batch_size"), r.get("status"), (r.get("error") or {}).get("message"),
                recorded_cpu_identity(r)))
            con.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)",
                            [(key, cid, m, v) for m, v in numeric_fields(r).items()])
    con.close()
    return key


def list_runs(db: str | Path, suite: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Runs in the store, newest first."""
    with connect(db) as con:
        con.row_factory = sqlite3.Row
        sql = "SELECT * FROM runs" + (" WHERE suite = ?" if suite else "") + " ORDER BY created DESC, run_id DESC"
        params: tuple = (suite,) if suite else ()
        if limit:
            sql += " LIMIT ?"
            params += (limit,)
        rows = [dict(r) for r in con.execute(sql, params)]
    con.close()
    return rows


@dataclass(frozen=True)
class Point:
    created: str
    run_id: str
    git_commit: str | None
    model: str
    T: int
    device_name: str
    batch_size: int
    value: float
    cpu_identity: str | None = None  # a CPU case's identity (bench.devices.cpu_identity), where recorded


def metric_series(db: str | Path, metric: str, models: list[str] | None = None, T: int | None = None,
                  device: str | None = None, suite: str | None = None) -> list[Point]:
    """Values of ``metric`` (``<metric>.<field>``) over time, oldest first, for the chosen models/T/device."""
    sql = ("SELECT r.created, r.run_id, r.git_commit, c.model, c.T, c.device_name, c.batch_size, x.value, "
           "c.cpu_identity "
           "FROM results x JOIN cases c USING (run_key, case_id) JOIN runs r USING (run_key) "
           "WHERE x.metric = ? AND c.status = 'ok'")
    params: list[Any] = [metric]
    if models:
        sql += f" AND c.model IN ({', '.join('?' for _ in models)})"
        params += models
    if T is not None:
        sql += " AND c.T = ?"
        params.append(T)
    if device:
        sql += " AND (c.device_name = ? OR c.device = ?)"
        params += [device, device]
    if suite:
        sql += " AND r.suite = ?"
        params.append(suite)
    sql += " ORDER BY r.created, r.run_id"
    with connect(db) as con:
        points = [Point(*row) for row in con.execute(sql, params)]
    con.close()
    return points


def device_labels(points: list[Point]) -> list[str]:
    """Each point's device as its series tells it: the model name, and where points of that name come from CPUs
    of more than one identity (a VM may name generations alike; their kernels round differently), the identity
    too ("CPU not identified" for runs made before it was recorded)."""
    identities: dict[str, set[str | None]] = {}
    for p in points:
        identities.setdefault(p.device_name, set()).add(p.cpu_identity)
    return [p.device_name if len(identities[p.device_name]) < 2 else
            f"{p.device_name} [{p.cpu_identity or 'CPU not identified'}]" for p in points]


def series_figure(points: list[Point], metric: str) -> Any:
    """The matplotlib figure of :func:`plot_series` (one line per (model, T, device, batch size), each
    series its own colour: Okabe-Ito in order, then again with another line style; each model its own marker;
    a single run time shown with a day either side). Laid out as the report's figures (:mod:`bench.figure_layout`:
    ``FixedLayout``, the legend below the plot in as many columns as fit, the figure growing to hold it)."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    from bench.figure_layout import figure, fit_legend
    from bench.palette import LINESTYLES, MARKERS, OKABE_ITO, STYLE

    points = [p for p in points if p.created]  # a run folder without env.json has no time to plot at
    series: dict[tuple[str, int, str, int], list[Point]] = {}
    for p, device in zip(points, device_labels(points), strict=True):
        series.setdefault((p.model, p.T, device, p.batch_size), []).append(p)
    devices = sorted({k[2] for k in series})
    models = sorted({k[0] for k in series})
    times = [datetime.fromisoformat(p.created) for p in points]
    with plt.rc_context(STYLE):
        fig, ax = figure(7.5, 3.8)
        for i, ((model, T, dev, bs), pts) in enumerate(series.items()):
            label = f"{model}, T={T}" + (f", {dev}" if len(devices) > 1 else "") + f", bs={bs}"
            ax.plot([datetime.fromisoformat(p.created) for p in pts], [p.value for p in pts],
                    color=OKABE_ITO[i % len(OKABE_ITO)], linestyle=LINESTYLES[i // len(OKABE_ITO) % len(LINESTYLES)],
                    marker=MARKERS[models.index(model) % len(MARKERS)], label=label)
        if times and max(times) - min(times) < timedelta(days=1):
            ax.set_xlim(min(times) - timedelta(days=1), max(times) + timedelta(days=1))
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.set_xlabel("run time (UTC)")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} over time" + (f" on {devices[0]}" if len(devices) == 1 else ""))
        fit_legend(ax, len(series))
    return fig


def plot_series(points: list[Point], metric: str, out: str | Path) -> Path:
    """A PNG of ``metric`` over time (:func:`series_figure`, drawn once at :data:`bench.palette.DPI` by
    :func:`bench.figure_layout.finish`), written whole or not at all (:func:`bench.results.write_file`:
    ResultsWriteError when it cannot be written)."""
    import matplotlib.pyplot as plt

    from bench.figure_layout import finish
    from bench.palette import STYLE

    with plt.rc_context(STYLE):  # drawn in the style it was made in, as the report's figures are
        png, _, _ = finish(series_figure(points, metric))
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_file(out, png)
    except (OSError, ResultsWriteError) as exc:
        reason = os.strerror(exc.errno) if exc.errno else exc
        raise ResultsWriteError(f"could not write the plot {out} ({reason}); any earlier file there is unchanged. "
                                "Fix: free space or give --plot a path in a writable folder", exc.errno) from exc
    return out
