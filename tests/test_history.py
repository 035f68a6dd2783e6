"""History store: runs appended to SQLite, replaced on re-adding, metric series over time, plots, CLI."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from bench.cli import main
from bench.history import append_run, history_path, list_runs, metric_series, plot_series

FIXTURES = Path(__file__).parent / "report" / "fixtures"


@pytest.fixture
def runs(tmp_path):
    """The two fixture runs plus a later CPU run whose SEW top-1 dropped to 60.0 (at a later date)."""
    later = tmp_path / "later"
    shutil.copytree(FIXTURES / "run_cpu", later)
    env = json.loads((later / "env.json").read_text())
    env["created"] = "2026-11-21T09:00:00+00:00"
    env["git"]["commit"] = "fedcba9876543210fedcba9876543210fedcba98"
    (later / "env.json").write_text(json.dumps(env))
    meta = json.loads((later / "run.json").read_text())
    meta["run_id"] = "later-run"
    (later / "run.json").write_text(json.dumps(meta))
    records = [json.loads(x) for x in (later / "results.jsonl").read_text().splitlines()]
    for r in records:
        r["run_id"] = "later-run"
        if r["case_id"] == "SEW ResNet-18|T=4|cpu|bs=32":
            r["metrics"]["accuracy"]["top1"] = 60.0
    (later / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return [FIXTURES / "run_cpu", FIXTURES / "run_gpu", later]


def test_append_and_list(tmp_path, runs):
    db = tmp_path / "h.sqlite"
    for run in runs:
        append_run(run, db)
    listed = list_runs(db)
    assert [r["run_id"] for r in listed] == ["later-run", "gpu-run", "cpu-run"]  # newest first
    cpu = listed[2]
    assert (cpu["n_cases"], cpu["n_failed"], cpu["machine"]) == (10, 1, "workstation")
    assert cpu["git_commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert listed[1]["devices"] == "NVIDIA H100 80GB HBM3"
    # Re-adding a run replaces its rows instead of duplicating them.
    append_run(runs[0], db)
    assert len(list_runs(db)) == 3
    with sqlite3.connect(db) as con:
        n = con.execute("SELECT COUNT(*) FROM results WHERE metric = 'accuracy.top1'").fetchone()[0]
    assert n == 9 + 6 + 9  # ok cases only carry values; the failed case has none


def test_metric_series_filters_and_orders_by_time(tmp_path, runs):
    db = tmp_path / "h.sqlite"
    for run in reversed(runs):
        append_run(run, db)
    points = metric_series(db, "accuracy.top1", ["SEW ResNet-18"], T=4, device="cpu")
    assert [(p.run_id, p.value) for p in points] == [("cpu-run", 63.02), ("later-run", 60.0)]
    gpu = metric_series(db, "latency.throughput_sps", ["DANet-A50 (w=1/4)"], device="NVIDIA H100 80GB HBM3")
    assert sorted(p.batch_size for p in gpu) == [32, 128]
    assert metric_series(db, "accuracy.top1", ["no such model"]) == []


def test_plot_series_writes_png(tmp_path, runs):
    db = tmp_path / "h.sqlite"
    for run in runs:
        append_run(run, db)
    out = plot_series(metric_series(db, "accuracy.top1", T=4, device="cpu"), "accuracy.top1", tmp_path / "a.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_history_cli(tmp_path, runs, capsys):
    db = tmp_path / "h.sqlite"
    for run in runs:
        append_run(run, db)
    assert main(["history", "--db", str(db)]) == 0
    assert "later-run" in capsys.readouterr().err
    plot = tmp_path / "p.png"
    assert main(["history", "--db", str(db), "--metric", "accuracy.top1", "--model", "SEW ResNet-18", "--T", "4",
                 "--plot", str(plot)]) == 0
    assert plot.is_file()
    assert main(["history", "--db", str(db), "--metric", "accuracy.nope"]) == 2
    assert main(["history", "--db", str(tmp_path / "none.sqlite")]) == 2


def test_history_path_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_HISTORY", str(tmp_path / "x.sqlite"))
    assert history_path() == tmp_path / "x.sqlite"
    monkeypatch.setenv("BENCH_HISTORY", "off")
    assert history_path() is None
    monkeypatch.delenv("BENCH_HISTORY")
    assert history_path() == Path("reports") / "history.sqlite"


def test_bench_run_appends_to_history(monkeypatch, tmp_path, write_suite, tiny_suite_text):
    """`bench run` ends by appending its run folder (the run itself is replaced by a copy of a fixture run)."""
    from bench.results import read_records
    from bench.runner import RunOutcome

    def fake_run_suite(suite, out_dir, **kwargs):
        shutil.copytree(FIXTURES / "run_cpu", out_dir)
        records = [r for r in read_records(out_dir / "results.jsonl") if r["status"] == "ok"]
        for r in records:  # params only: a fast report
            r["metrics"] = {"params": r["metrics"]["params"]}
        (out_dir / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        return RunOutcome(out_dir, records)

    monkeypatch.setattr("bench.runner.run_suite", fake_run_suite)
    db = tmp_path / "h.sqlite"
    monkeypatch.setenv("BENCH_HISTORY", str(db))
    assert main(["run", str(write_suite(tiny_suite_text)), "--out", str(tmp_path / "run"), "-q"]) == 0
    (listed,) = list_runs(db)
    assert listed["run_id"] == "cpu-run" and listed["n_cases"] == 9 and listed["n_failed"] == 0
    assert len(metric_series(db, "params.params", ["SEW ResNet-18"])) == 3
