"""History store: every run's results appended to one SQLite file, to follow a metric over time.

``reports/history.sqlite`` by default (``BENCH_HISTORY`` overrides the path; ``BENCH_HISTORY=off``
turns the store off). ``bench run`` appends its run at the end; ``bench history`` lists runs
and plots ``<metric>.<field>`` over time per model. Re-adding a run folder (e.g. after ``--resume``)
replaces its earlier rows. Tables:

- ``runs``: one row per run folder: run id, path, suite, creation time, git commit, machine, devices.
- ``cases``: one row per case: model label and registered name, T, device, device model, batch
  size, status, error message.
- ``results``: one row per finite numeric scalar field of a case (``metric`` = ``<metric>.<field>``).

Runs are read through :mod:`bench.results`; plots use the report's palette (:mod:`bench.palette`) without
importing the report.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.results import case_key, device_name, load_run, numeric_fields

DEFAULT_PATH = Path("reports") / "history.sqlite"
ENV_VAR = "BENCH_HISTORY"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_key TEXT PRIMARY KEY, run_id TEXT NOT NULL, path TEXT NOT NULL, suite TEXT, created TEXT,
    git_commit TEXT, machine TEXT, devices TEXT, n_cases INTEGER, n_failed INTEGER, added_at TEXT);
CREATE TABLE IF NOT EXISTS cases (
    run_key TEXT NOT NULL REFERENCES runs(run_key) ON DELETE CASCADE, case_id TEXT NOT NULL, model TEXT,
    model_name TEXT, T INTEGER, device TEXT, device_name TEXT, batch_size INTEGER, status TEXT, error TEXT,
    PRIMARY KEY (run_key, case_id));
CREATE TABLE IF NOT EXISTS results (
    run_key TEXT NOT NULL, case_id TEXT NOT NULL, metric TEXT NOT NULL, value REAL,
    PRIMARY KEY (run_key, case_id, metric),
    FOREIGN KEY (run_key, case_id) REFERENCES cases(run_key, case_id) ON DELETE CASCADE);
CREATE INDEX IF NOT EXISTS results_metric ON results(metric);
"""


def history_path() -> Path | None:
    """The store's path (``BENCH_HISTORY`` or ``reports/history.sqlite``); None when turned off."""
    value = os.environ.get(ENV_VAR, "")
    if value.lower() in ("off", "none", "0", "false"):
        return None
    return Path(value) if value else DEFAULT_PATH


def connect(path: str | Path) -> sqlite3.Connection:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=30)
    con.execute("PRAGMA foreign_keys = ON")
    con.executescript(SCHEMA)
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
            con.execute("INSERT OR REPLACE INTO cases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (
                key, cid, r["model"]["label"], r["model"].get("name"), r["T"], r.get("device"), device_name(r),
                r.get("batch_size"), r.get("status"), (r.get("error") or {}).get("message")))
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


def metric_series(db: str | Path, metric: str, models: list[str] | None = None, T: int | None = None,
                  device: str | None = None, suite: str | None = None) -> list[Point]:
    """Values of ``metric`` (``<metric>.<field>``) over time, oldest first, for the chosen models/T/device."""
    sql = ("SELECT r.created, r.run_id, r.git_commit, c.model, c.T, c.device_name, c.batch_size, x.value "
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


def known_metrics(db: str | Path) -> list[str]:
    with connect(db) as con:
        names = [row[0] for row in con.execute("SELECT DISTINCT metric FROM results ORDER BY metric")]
    con.close()
    return names


def plot_series(points: list[Point], metric: str, out: str | Path) -> Path:
    """One line per (model, T, device model) of ``metric`` against run time, model colours as in reports."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    from bench.palette import STYLE, model_styles

    points = [p for p in points if p.created]  # a run folder without env.json has no time to plot at
    styles = model_styles(p.model for p in points)
    series: dict[tuple[str, int, str, int], list[Point]] = {}
    for p in points:
        series.setdefault((p.model, p.T, p.device_name, p.batch_size), []).append(p)
    devices = sorted({k[2] for k in series})
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7.5, 3.8), layout="constrained")
        for (model, T, dev, bs), pts in series.items():
            s = styles[model]
            label = f"{model}, T={T}" + (f", {dev}" if len(devices) > 1 else "") + f", bs={bs}"
            ax.plot([datetime.fromisoformat(p.created) for p in pts], [p.value for p in pts], color=s.color,
                    marker=s.marker, linestyle=s.linestyle, label=label)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
        ax.set_xlabel("run time (UTC)")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} over time" + (f" on {devices[0]}" if len(devices) == 1 else ""))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=120, bbox_inches="tight")
        plt.close(fig)
    return out
