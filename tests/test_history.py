"""History store: runs appended to SQLite, replaced on re-adding, metric series over time, plots, CLI."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from real_run import GPU_NAME, copy_run, edit_json, gpu_like, read_jsonl, real_run, write_jsonl

from bench.cli import main
from bench.history import (
    append_run,
    history_path,
    list_runs,
    locate_store,
    metric_series,
    plot_series,
    reports_root,
    series_figure,
)

EARLY, LATER = "2026-11-20T10:00:00+00:00", "2026-11-21T09:00:00+00:00"
TINY1 = "tiny|T=1|cpu|bs=8"


@pytest.fixture
def runs(tmp_path, tmp_path_factory):
    """The real run (dated EARLY), its GPU-like twin (dated 2099) and a later CPU run whose tiny top-1 at
    T=1 dropped to 1.0."""
    first = copy_run(real_run(tmp_path_factory), tmp_path / "first")
    meta = edit_json(first / "run.json", run_id="first-run")
    env = edit_json(first / "env.json", created=EARLY, git={"commit": "0123456789abcdef0123456789abcdef01234567"})
    later = copy_run(first, tmp_path / "later")
    edit_json(later / "env.json", created=LATER, git={"commit": "fedcba9876543210fedcba9876543210fedcba98"})
    edit_json(later / "run.json", run_id="later-run")
    records = read_jsonl(later / "results.jsonl")
    for r in records:
        r["run_id"] = "later-run"
        if r["case_id"] == TINY1:
            r["metrics"]["accuracy"]["top1"] = 1.0
    write_jsonl(later / "results.jsonl", records)
    assert meta["run_id"] == "first-run" and env["created"] == EARLY
    return [first, gpu_like(first, tmp_path / "gpu"), later]


def test_append_and_list(tmp_path, runs):
    db = tmp_path / "h.sqlite"
    for run in runs:
        append_run(run, db)
    listed = list_runs(db)
    assert [r["run_id"] for r in listed] == ["gpu-like", "later-run", "first-run"]  # newest first
    first = listed[2]
    assert (first["n_cases"], first["n_failed"]) == (6, 2)
    assert first["git_commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert listed[0]["devices"] == GPU_NAME and listed[0]["machine"] == "gpu-node"
    # Re-adding a run replaces its rows instead of duplicating them.
    append_run(runs[0], db)
    assert len(list_runs(db)) == 3
    with sqlite3.connect(db) as con:
        n = con.execute("SELECT COUNT(*) FROM results WHERE metric = 'accuracy.top1'").fetchone()[0]
    assert n == 4 + 4 + 4  # ok cases only carry values; the failed cases have none


def test_metric_series_filters_and_orders_by_time(tmp_path, runs):
    db = tmp_path / "h.sqlite"
    for run in reversed(runs):
        append_run(run, db)
    top1 = next(r for r in read_jsonl(runs[0] / "results.jsonl") if r["case_id"] == TINY1)["metrics"]["accuracy"]
    points = metric_series(db, "accuracy.top1", ["tiny"], T=1, device="cpu")
    assert [(p.run_id, p.value) for p in points] == [("first-run", top1["top1"]), ("later-run", 1.0)]
    gpu = metric_series(db, "latency.throughput_sps", ["SEW w/16"], device=GPU_NAME)
    assert sorted(p.T for p in gpu) == [1, 2] and {p.run_id for p in gpu} == {"gpu-like"}
    assert metric_series(db, "accuracy.top1", ["no such model"]) == []


def test_plot_series_writes_png(tmp_path, runs):
    db = tmp_path / "h.sqlite"
    for run in runs:
        append_run(run, db)
    out = plot_series(metric_series(db, "accuracy.top1", T=1, device="cpu"), "accuracy.top1", tmp_path / "a.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_history_cli(tmp_path, runs, capsys):
    db = tmp_path / "h.sqlite"
    for run in runs:
        append_run(run, db)
    assert main(["history", "--db", str(db)]) == 0
    assert "later-run" in capsys.readouterr().err
    plot = tmp_path / "p.png"
    assert main(["history", "--db", str(db), "--metric", "accuracy.top1", "--model", "tiny", "--T", "1",
                 "--plot", str(plot)]) == 0
    assert plot.is_file()
    assert main(["history", "--db", str(db), "--metric", "accuracy.nope"]) == 2
    assert main(["history", "--db", str(tmp_path / "none.sqlite")]) == 2


def test_history_path_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_HISTORY", str(tmp_path / "x.sqlite"))
    assert history_path() == tmp_path / "x.sqlite"
    assert history_path(tmp_path / "any" / "run") == tmp_path / "x.sqlite"  # the variable wins over the rule
    monkeypatch.setenv("BENCH_HISTORY", "off")
    assert history_path() is None and history_path(tmp_path) is None
    monkeypatch.delenv("BENCH_HISTORY")
    assert history_path() == Path("reports") / "history.sqlite"


def test_the_store_lives_in_the_reports_root_of_the_run(monkeypatch, tmp_path, tmp_path_factory):
    """reports/<suite>/<run-id> -> reports/history.sqlite; --out DIR -> DIR/../history.sqlite; wherever the
    command runs from. ``bench history --db`` takes the store, a run folder or a reports folder."""
    monkeypatch.delenv("BENCH_HISTORY")
    monkeypatch.chdir(tmp_path)  # not the folder the runs are in
    default = copy_run(real_run(tmp_path_factory), tmp_path / "elsewhere" / "reports" / "realrun" / "20261127-1")
    out = copy_run(default, tmp_path / "runs" / "mine")
    assert reports_root(default) == (tmp_path / "elsewhere" / "reports").resolve()
    assert history_path(default) == (tmp_path / "elsewhere" / "reports" / "history.sqlite").resolve()
    assert history_path(out) == (tmp_path / "runs" / "history.sqlite").resolve()
    assert locate_store(default) == history_path(default)
    assert locate_store(tmp_path / "elsewhere" / "reports") == tmp_path / "elsewhere" / "reports" / "history.sqlite"
    assert locate_store(tmp_path / "h.sqlite") == tmp_path / "h.sqlite"


def test_bench_history_finds_the_store_beside_the_reports(monkeypatch, tmp_path, tmp_path_factory, capsys):
    monkeypatch.delenv("BENCH_HISTORY")
    monkeypatch.chdir(tmp_path)
    run = copy_run(real_run(tmp_path_factory), tmp_path / "reports" / "realrun" / "first")
    edit_json(run / "run.json", run_id="first-run")
    append_run(run, history_path(run))
    assert (tmp_path / "reports" / "history.sqlite").is_file()
    for where in ([], ["--db", str(run)], ["--db", str(tmp_path / "reports")]):
        assert main(["history", *where]) == 0
        assert "first-run" in capsys.readouterr().err
    monkeypatch.setenv("BENCH_HISTORY", "off")
    assert main(["history"]) == 2
    assert "turned off" in capsys.readouterr().err


def test_plot_of_one_run_spans_days_not_years_with_a_colour_per_series(tmp_path, runs):
    db = tmp_path / "h.sqlite"
    append_run(runs[0], db)
    points = metric_series(db, "accuracy.top1")
    fig = series_figure(points, "accuracy.top1")
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()  # matplotlib dates: days
    assert 1.9 <= hi - lo <= 2.1  # one run time, a day either side
    colours = [line.get_color() for line in ax.get_lines()]
    assert len(colours) == 4 and len(set(colours)) == 4  # (tiny, SEW) x (T=1, T=2): four series
    markers = {line.get_label().split(",")[0]: line.get_marker() for line in ax.get_lines()}
    assert markers["tiny"] != markers["SEW w/16"]
    from bench.figure_layout import layout_problems

    assert layout_problems(fig) == []  # legend and date labels inside the figure, nothing overlapping


def test_the_history_plot_is_laid_out_as_the_report_figures(tmp_path, runs):
    """Every run and device (eight series, labels naming the device): placed by the report's FixedLayout, the
    legend below the plot, no text outside the figure or overlapping; the PNG is the 7.5-inch figure at
    palette.DPI (900 px wide) with its legend's height added."""
    import matplotlib.pyplot as plt

    from bench.figure_layout import FixedLayout, layout_problems
    from bench.palette import DPI

    db = tmp_path / "h.sqlite"
    for run in runs:
        append_run(run, db)
    points = metric_series(db, "accuracy.top1")
    fig = series_figure(points, "accuracy.top1")
    assert isinstance(fig.get_layout_engine(), FixedLayout)
    assert len(fig.axes[0].get_lines()) == 8 and len(fig.legends) == 1
    assert layout_problems(fig) == []
    legend = fig.legends[0].get_window_extent(fig.canvas.get_renderer())
    assert legend.y1 <= fig.axes[0].get_window_extent().y0  # below the plot, not beside it
    plt.close(fig)
    image = plt.imread(plot_series(points, "accuracy.top1", tmp_path / "all.png"))
    assert image.shape[1] == 7.5 * DPI and image.shape[0] > 3.8 * DPI


def test_bench_run_appends_to_history(monkeypatch, tmp_path, tmp_path_factory, write_suite, tiny_suite_text,
                                      capsys):
    """`bench run` ends by appending its run folder and printing the summary of the declared summary fields
    (the run itself is replaced by a copy of the real run)."""
    from bench.runner import RunOutcome

    source = real_run(tmp_path_factory)  # made here, not inside `bench run` (the test must not depend on order)

    def fake_run_suite(plan, **kwargs):
        out_dir = plan.out
        shutil.copytree(source, out_dir)
        records = [r for r in read_jsonl(out_dir / "results.jsonl") if r["status"] == "ok"]
        for r in records:  # params only: a fast report
            r["metrics"] = {"params": r["metrics"]["params"]}
        write_jsonl(out_dir / "results.jsonl", records)
        return RunOutcome(out_dir, records)

    monkeypatch.setattr("bench.runner.run_suite", fake_run_suite)
    db = tmp_path / "h.sqlite"
    monkeypatch.setenv("BENCH_HISTORY", str(db))
    assert main(["run", str(write_suite(tiny_suite_text)), "--out", str(tmp_path / "run"), "-q"]) == 0
    (listed,) = list_runs(db)
    assert listed["n_cases"] == 4 and listed["n_failed"] == 0
    assert len(metric_series(db, "params.params", ["SEW w/16"])) == 2
    summary = capsys.readouterr().err
    assert "params (M)" in summary and "0.045" in summary  # SEW w/16: 44,550 parameters


def test_history_plot_that_cannot_be_written_leaves_the_old_file_and_exits_1(tmp_path, runs, capsys, monkeypatch):
    """The plot is written whole or not at all: a full disk mid-write keeps the earlier PNG and exits 1."""
    import bench.results as results_mod

    db = tmp_path / "h.sqlite"
    for run in runs:
        append_run(run, db)
    plot = tmp_path / "p.png"
    plot.write_bytes(b"earlier plot")
    real_write_all = results_mod._write_all

    def half_then_full(fd, payload):
        real_write_all(fd, payload[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(results_mod, "_write_all", half_then_full)
    assert main(["history", "--db", str(db), "--metric", "accuracy.top1", "--model", "tiny", "--T", "1",
                 "--plot", str(plot)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "No space left on device" in err and "Traceback" not in err
    assert plot.read_bytes() == b"earlier plot"
    assert list(tmp_path.glob("p.png*")) == [plot], "no temporary file left behind"


def test_series_split_where_one_cpu_name_covers_several_identities(tmp_path, runs):
    """A VM may name every generation of a vendor's CPUs alike: the later run on a CPU of another identity, under
    the same model name, is its own series (labelled with the identity) rather than a jump in the first one's;
    a name with one identity keeps its plain label."""
    from bench.history import device_labels

    first, _, later = runs
    records = read_jsonl(later / "results.jsonl")
    for r in records:
        r["device_info"]["cpu_identity"] = "AuthenticAMD family 25 model 17 stepping 1; torch kernels AVX512"
    write_jsonl(later / "results.jsonl", records)
    db = tmp_path / "h.sqlite"
    append_run(first, db)
    append_run(later, db)
    points = metric_series(db, "accuracy.top1", ["tiny"], T=1, device="cpu")
    first_identity = read_jsonl(first / "results.jsonl")[0]["device_info"]["cpu_identity"]
    name = points[0].device_name
    assert [p.cpu_identity for p in points] == [first_identity, records[0]["device_info"]["cpu_identity"]]
    assert device_labels(points) == [f"{name} [{first_identity}]",
                                     f"{name} [AuthenticAMD family 25 model 17 stepping 1; torch kernels AVX512]"]
    assert device_labels(points[:1]) == [name]
    labels = series_figure(points, "accuracy.top1").axes[0].get_legend_handles_labels()[1]
    assert len(labels) == 2 and all("family 25" in label for label in labels)


def test_a_store_made_before_cpu_identities_gains_the_column(tmp_path, runs):
    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as con:  # the cases table as stores made before the identity had it
        con.executescript("""
            CREATE TABLE runs (run_key TEXT PRIMARY KEY, run_id TEXT NOT NULL, path TEXT NOT NULL, suite TEXT,
                created TEXT, git_commit TEXT, machine TEXT, devices TEXT, n_cases INTEGER, n_failed INTEGER,
                added_at TEXT);
            CREATE TABLE cases (run_key TEXT NOT NULL REFERENCES runs(run_key) ON DELETE CASCADE,
                case_id TEXT NOT NULL, model TEXT, model_name TEXT, T INTEGER, device TEXT, device_name TEXT,
                batch_size INTEGER, status TEXT, error TEXT, PRIMARY KEY (run_key, case_id));
            INSERT INTO runs VALUES ('old@h:/x', 'old-run', '/x', 's', '2026-11-01T00:00:00+00:00', NULL, 'h',
                'AMD EPYC', 1, 0, NULL);
            INSERT INTO cases VALUES ('old@h:/x', 'tiny|T=1|cpu|bs=8', 'tiny', 'tiny', 1, 'cpu', 'AMD EPYC', 8, 'ok',
                NULL);
        """)
    con.close()
    append_run(runs[0], db)
    with sqlite3.connect(db) as con:
        rows = dict(con.execute("SELECT run_key, cpu_identity FROM cases WHERE case_id = 'tiny|T=1|cpu|bs=8'"))
    con.close()
    assert rows.pop("old@h:/x") is None
    assert list(rows.values()) == [read_jsonl(runs[0] / "results.jsonl")[0]["device_info"]["cpu_identity"]]
