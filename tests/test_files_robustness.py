"""Run-folder files under crashes, full disks and tampering: nothing lost, nothing merged, no tracebacks.

Each test reproduces a failure seen before the fix: a record appended onto a torn line (and lost), a disk
filling up in the middle of an append, corrupt lines silently skipped, baseline and run files that made
``bench compare`` / ``bench report`` print a traceback, env.json collection raising on odd machines.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from real_run import real_run

import bench.environment as environment
import bench.results as results_mod
from bench.cli import main
from bench.compare import BaselineError, load_baseline
from bench.results import (
    ResultsWriteError,
    ResultsWriter,
    RunFileError,
    TornTailWarning,
    load_run,
    read_records,
    repair_tail,
    rewrite_records,
    write_csv,
)

REPO = Path(__file__).resolve().parents[1]


def rec(case_id: str, **fields) -> dict:
    """The smallest record read_records accepts: the identifying fields every record has."""
    return {"case_id": case_id, "config_key": f"k-{case_id}", "status": "ok", "T": 4, "model": {"label": "m"}} | fields


def ids(path: Path) -> list[str]:
    return [r["case_id"] for r in read_records(path)]


# ---------------------------------------------------------------- torn tails


def test_hand_cut_last_line_then_resume_keeps_every_record(tmp_path):
    path = tmp_path / "results.jsonl"
    writer = ResultsWriter(path)
    for name in "abc":
        writer.append(rec(name, metrics={"m": {"x": 1.0}}))
    data = path.read_bytes()
    path.write_bytes(data[:-25])  # cut the last line by hand, as a kill inside write() would
    with pytest.warns(TornTailWarning, match=r"line 3: torn tail: incomplete record"):
        assert ids(path) == ["a", "b"]
    # before the fix the re-measured record was appended onto the fragment: one unreadable line, c lost
    with pytest.raises(RunFileError, match="torn record"):
        writer.append(rec("c"))
    fragment = data[data.rindex(b"\n", 0, len(data) - 1) + 1:-25]
    assert repair_tail(path) == len(fragment)
    assert path.read_bytes() == data[:len(data) - len(fragment) - 25] and repair_tail(path) == 0
    assert (tmp_path / "results.jsonl.torn").read_bytes() == fragment + b"\n", "the removed bytes are kept"
    writer.append(rec("c"))
    assert ids(path) == ["a", "b", "c"]


def test_repair_of_a_missing_or_whole_file_removes_nothing(tmp_path):
    path = tmp_path / "results.jsonl"
    assert repair_tail(path) == 0
    path.write_bytes(b"")
    assert repair_tail(path) == 0
    path.write_bytes(b'{"no newline at all"')
    assert repair_tail(path) == 20 and path.read_bytes() == b""


def test_interrupt_inside_the_write_leaves_the_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "results.jsonl"
    writer = ResultsWriter(path)
    writer.append(rec("a"))
    before = path.read_bytes()

    def half_then_interrupt(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(results_mod, "_write_all", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        writer.append(rec("b"))
    assert path.read_bytes() == before


def test_an_unopenable_results_file_is_a_clear_write_error(tmp_path):
    (tmp_path / "results.jsonl").mkdir()  # a folder where the file belongs
    with pytest.raises(ResultsWriteError, match=r"cannot open .*results.jsonl to append the record of case 'a'"):
        ResultsWriter(tmp_path / "results.jsonl").append(rec("a"))


# ---------------------------------------------------------------- full disks, for real

# Child process: two records, then the disk fills up (a full 2 MiB tmpfs, or a file-size limit), then an
# append and a CSV rewrite fail, then space comes back and the append succeeds. Prints what it saw.
CHILD = textwrap.dedent("""
    import json, os, resource, signal, sys
    from pathlib import Path
    import bench.results as R
    folder, mode = Path(sys.argv[1]), sys.argv[2]
    path, csv = folder / "results.jsonl", folder / "results.csv"
    def rec(i, pad=""):
        return {"case_id": f"c{i}", "config_key": f"k{i}", "status": "ok", "T": 1, "model": {"label": "m"},
                "metrics": {"m": {"pad": pad}}}
    writer = R.ResultsWriter(path)
    for i in range(2):
        writer.append(rec(i))
    R.write_csv(R.read_records(path), csv)
    whole, csv_before = path.read_bytes(), csv.read_bytes()
    out = {"whole_size": len(whole)}
    truncate = R._truncate
    def spy(fd, size):
        out["size_at_failure"] = os.fstat(fd).st_size
        return truncate(fd, size)
    R._truncate = spy
    if mode == "tmpfs":
        fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\\0" * 4096)
        except OSError:
            os.close(fd)
    else:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(whole) + 1000, hard))
    big = rec(2, pad="x" * 20000)
    try:
        writer.append(big)
    except R.ResultsWriteError as exc:
        out["append_error"] = str(exc)
    out["file_whole"] = path.read_bytes() == whole
    try:
        R.write_csv(R.read_records(path) + [big], csv)
    except R.ResultsWriteError as exc:
        out["csv_error"] = str(exc)
    out["csv_tmp_left"] = (folder / "results.csv.tmp").exists()
    out["csv_unchanged"] = csv.read_bytes() == csv_before
    if mode == "tmpfs":
        os.remove(folder / "filler")
    else:
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    writer.append(big)
    out["after"] = [r["case_id"] for r in R.read_records(path)]
    print(json.dumps(out))
""")


def _check_full_disk_outcome(stdout: str, whole_size_hint: str) -> None:
    out = json.loads(stdout.strip().splitlines()[-1])
    assert out["size_at_failure"] > out["whole_size"], "the failed append had written part of the record"
    assert "could not append the record of case 'c2'" in out["append_error"] and "restored" in out["append_error"]
    assert whole_size_hint in out["append_error"]
    assert out["file_whole"], "the file was truncated back to its whole records"
    assert "could not write" in out["csv_error"] and "results.csv" in out["csv_error"]
    assert not out["csv_tmp_left"] and out["csv_unchanged"]
    assert out["after"] == ["c0", "c1", "c2"], "once space is back, the record is appended and readable"


def _unshare_works() -> bool:
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs unshare -rm and tmpfs mounts (Linux user namespaces)")
def test_full_tmpfs_disk_while_appending(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    mount = f"mount -t tmpfs -o size=2m tmpfs {folder} && {sys.executable} {script} {folder} tmpfs"
    done = subprocess.run(["unshare", "-rm", "sh", "-c", mount], capture_output=True, text=True, timeout=120,
                          env=os.environ | {"PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    _check_full_disk_outcome(done.stdout, "No space left on device")
    assert done.stdout.count("{") == 1


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ semantics are Linux's")
def test_file_size_limit_while_appending(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    done = subprocess.run([sys.executable, str(script), str(tmp_path), "fsize"], capture_output=True, text=True,
                          timeout=120, env=os.environ | {"PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    _check_full_disk_outcome(done.stdout, "File too large")


def test_rewrite_records_is_all_or_nothing(tmp_path, monkeypatch):
    path = tmp_path / "results.jsonl"
    rewrite_records(path, [rec("a"), rec("b")])
    assert ids(path) == ["a", "b"]
    before = path.read_bytes()
    monkeypatch.setattr(results_mod, "_line", lambda r: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(ResultsWriteError):
        rewrite_records(path, [rec("a")])
    assert path.read_bytes() == before and not (tmp_path / "results.jsonl.tmp").exists()


# ---------------------------------------------------------------- corruption is an error naming the line


@pytest.mark.parametrize("bad, match", [
    (b'{"case_id": "x", "metr\n', r"line 2: not a JSON record"),
    (b"[]\n", r"line 2: a list where a record \(a JSON object\) belongs"),
    (b"42\n", r"line 2: a int where a record"),
    (b'{"case_id": "x"}\n', r"line 2: the record lacks 'config_key' \(str\), 'status' \(str\), 'T' \(int\), "
                            r"'model.label' \(str\)"),
    (b'{"case_id": "x", "config_key": "k", "status": "ok", "T": true, "model": {"label": "m"}}\n',
     r"line 2: the record lacks 'T' \(int\)"),
    (b"\xff\xfe\x00garbage\n", r"line 2: not a JSON record"),
])
def test_a_bad_whole_line_is_an_error_naming_it(tmp_path, bad, match):
    path = tmp_path / "results.jsonl"
    ResultsWriter(path).append(rec("a"))
    with open(path, "ab") as f:
        f.write(bad)
    ResultsWriter(path).append(rec("c"))
    with pytest.raises(RunFileError, match=match) as info:
        read_records(path)
    assert str(path) in str(info.value) and "Fix:" in str(info.value)


def test_a_bad_last_line_with_its_newline_is_corruption_not_a_torn_tail(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(rec("a")) + "\n" + '{"torn": \n')
    with pytest.raises(RunFileError, match="line 2"):
        read_records(path)


def test_a_non_object_line_then_resume_is_refused_naming_the_line(write_suite, tiny_suite_text, tmp_path):
    from bench.plan import plan_cases
    from bench.runner import run_suite
    from bench.suite import load_suite

    suite = load_suite(write_suite(tiny_suite_text))
    out = tmp_path / "run"
    run_suite(plan_cases(suite, out), show_progress=False)
    with open(out / "results.jsonl", "a") as f:
        f.write("[]\n")
    with pytest.raises(RunFileError, match=r"results.jsonl, line 3: a list where a record"):
        run_suite(plan_cases(suite, out, resume=True), show_progress=False)


# ---------------------------------------------------------------- bench compare: baseline files


@pytest.fixture
def run(tmp_path, tmp_path_factory):
    """A copy of the session's real run, with its ok records only."""
    folder = tmp_path / "run"
    shutil.copytree(real_run(tmp_path_factory), folder)
    lines = (folder / "results.jsonl").read_text().splitlines()
    (folder / "results.jsonl").write_text("".join(x + "\n" for x in lines if '"status": "ok"' in x))
    return folder


GOOD_CASE = {"model": "m", "T": 4, "device": "cpu", "device_name": "x", "batch_size": 1,
             "values": {"params.params": 10}}


@pytest.mark.parametrize("text, match", [
    ('{"format": "snnbench-baseline-1", "cases": {"a": ', r"is not valid JSON .*truncated or corrupt"),
    ("[1, 2]", r"holds a JSON list, not a baseline object"),
    ('{"format": "snnbench-baseline-1"}', r"baseline has no cases \('cases' is missing\)"),
    ('{"format": "snnbench-baseline-1", "cases": {}}', r"baseline has no cases \('cases' is an empty dict\)"),
    ('{"format": "snnbench-baseline-1", "cases": [1]}', r"baseline has no cases \('cases' is a list\)"),
    ('{"format": "snnbench-baseline-1", "cases": {"a": 3}}', r"case 'a' has no 'values' object"),
    ('{"format": "snnbench-baseline-1", "cases": {"a": {"values": {"params.params": "10"}}}}',
     r"case 'a', field 'params.params': expected '<metric>.<field>' with a number, got '10'"),
    ('{"format": "snnbench-baseline-1", "cases": {"a": {"values": {"top1": 1.0}}}}', r"field 'top1'"),
    ('{"format": "other"}', r"not a baseline file \(format 'other'"),
    (b"\xff\xfe{}", r"is not valid JSON"),
])
def test_bad_baselines_exit_2_naming_the_file(tmp_path, run, capsys, text, match):
    path = tmp_path / "b.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(BaselineError, match=match):
        load_baseline(path)
    assert main(["compare", str(path), str(run)]) == 2
    err = capsys.readouterr().err
    assert "b.json" in err and "Fix:" in err and "Traceback" not in err


def test_a_checked_baseline_still_compares(tmp_path, run):
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"format": "snnbench-baseline-1", "cases": {"a": GOOD_CASE}}))
    assert load_baseline(path)["cases"]["a"]["values"] == {"params.params": 10}


# ---------------------------------------------------------------- bench report: run files


@pytest.mark.parametrize("name, text, match", [
    ("env.json", '{"python": "3.1', r"env.json is not valid JSON .*versions and machine details"),
    ("env.json", "[]", r"env.json holds a JSON list, not an object"),
    ("run.json", '{"suite": ', r"run.json is not valid JSON .*suite settings"),
    ("run.json", '"a string"', r"run.json holds a JSON str"),
    ("results.jsonl", '{"case_id": 1}\n', r"results.jsonl, line 1: the record lacks"),
])
def test_corrupt_run_files_are_refused_naming_them(run, name, text, match):
    (run / name).write_text(text)
    with pytest.raises(RunFileError, match=match):
        load_run(run)


@pytest.mark.parametrize("name, text", [("env.json", "{"), ("run.json", "[]"), ("results.jsonl", "[]\n")])
def test_report_and_compare_on_corrupt_run_files_exit_2(tmp_path, run, capsys, name, text):
    baseline = tmp_path / "b.json"
    baseline.write_text(json.dumps({"format": "snnbench-baseline-1", "cases": {"a": GOOD_CASE}}))
    (run / name).write_text(text)
    assert main(["report", str(run)]) == 2
    assert main(["compare", str(baseline), str(run)]) == 2
    err = capsys.readouterr().err
    assert name in err and "Traceback" not in err


WRONG_TYPES = [  # (file, key, value, the path the message names): each printed a traceback before
    ("run.json", "suite", 5, "suite"), ("run.json", "run_id", [1], "run_id"),
    ("run.json", "suite_file", 5, "suite_file"), ("run.json", "time_steps", 5, "time_steps"),
    ("run.json", "time_steps", ["a"], "time_steps[0]"), ("run.json", "metrics", 5, "metrics"),
    ("run.json", "data", 5, "data"), ("run.json", "data", {"description": 5}, "data.description"),
    ("run.json", "notes", 5, "notes"), ("run.json", "notes", [None], "notes[0]"),
    ("run.json", "conventions", 5, "conventions"),
    ("run.json", "conventions", {"id": "c", "profiles": {"p": {"mac_pj": "x"}}}, "conventions.profiles.p.mac_pj"),
    ("env.json", "packages", 5, "packages"), ("env.json", "cpu", 5, "cpu"), ("env.json", "git", "abc", "git"),
    ("env.json", "created", 5, "created"),
]


@pytest.mark.parametrize("name, key, value, where", WRONG_TYPES)
def test_run_files_with_wrong_types_exit_2_naming_the_field(run, capsys, name, key, value, where):
    data = json.loads((run / name).read_text())
    data[key] = value
    (run / name).write_text(json.dumps(data))
    with pytest.raises(RunFileError, match=re.escape(f"{name}: {where} must be")):
        load_run(run)
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert name in err and where in err and "Fix:" in err and "Traceback" not in err


# ---------------------------------------------------------------- reports and derived files written atomically


def _params_only(folder: Path) -> Path:
    """The run with only its params values (no figures to draw: a fast render)."""
    lines = [json.loads(x) for x in (folder / "results.jsonl").read_text().splitlines() if x.strip()]
    for r in lines:
        r["metrics"] = {k: v for k, v in r["metrics"].items() if k == "params"}
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return folder


def _fail_midway(monkeypatch, name: str) -> None:
    """Writes of files called ``name`` (their .tmp) write half their bytes, then fail as a full disk does."""
    real = results_mod._write_all

    def half_then_full(fd: int, data: bytes) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(f"/{name}.tmp"):
            real(fd, data[: len(data) // 2])
            raise OSError(28, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(results_mod, "_write_all", half_then_full)


@pytest.mark.parametrize("name", ["report.md", "report.html", "report.tex"])
def test_a_report_write_failing_midway_keeps_the_old_file_and_exits_1(run, monkeypatch, capsys, name):
    _params_only(run)
    assert main(["report", str(run), "--latex"]) == 0
    before = {n: (run / n).read_bytes() for n in ("report.md", "report.html", "report.tex")}
    (run / "run.json").write_text((run / "run.json").read_text().replace('"description": "', '"description": "NEW '))
    _fail_midway(monkeypatch, name)
    capsys.readouterr()
    assert main(["report", str(run), "--latex"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"could not write {run / name}" in err and "No space left on device" in err and "Traceback" not in err
    assert (run / name).read_bytes() == before[name], "the old file is whole"
    assert not list(run.glob("*.tmp"))


@pytest.mark.parametrize("name", ["results.csv", "run.json", "env.json"])
def test_derived_files_failing_midway_keep_the_old_file(run, monkeypatch, name):
    path = run / name
    before = path.read_bytes()
    _fail_midway(monkeypatch, name)
    with pytest.raises(ResultsWriteError, match=rf"could not write .*{name}: No space left.*keeps every record"):
        if name == "results.csv":
            write_csv(read_records(run / "results.jsonl") * 2, path)
        else:
            results_mod.write_json({"other": 1}, path)
    assert path.read_bytes() == before and not list(run.glob("*.tmp"))


def test_bench_run_exits_1_when_its_report_cannot_be_written(write_suite, tiny_suite_text, tmp_path, monkeypatch,
                                                             capsys):
    _fail_midway(monkeypatch, "report.html")
    out = tmp_path / "r"
    assert main(["run", str(write_suite(tiny_suite_text)), "--out", str(out), "-q"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "report not written" in err and f"could not write {out / 'report.html'}" in err
    assert not (out / "report.html").exists() and len(read_records(out / "results.jsonl")) == 2


@pytest.mark.skipif(not _unshare_works(), reason="needs unshare -rm and tmpfs mounts (Linux user namespaces)")
def test_full_tmpfs_disk_while_writing_the_report(run, tmp_path):
    """A real full disk: the report of a copy of the run in a 1 MiB tmpfs filled up to a few KiB."""
    _params_only(run)
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent('''
        import os, shutil, sys
        from pathlib import Path
        from bench.cli import main
        src, folder = Path(sys.argv[1]), Path(sys.argv[2])
        shutil.copytree(src, folder / "run")
        run = folder / "run"
        assert main(["report", str(run)]) == 0
        before = (run / "report.html").read_bytes()
        meta = (run / "run.json").read_text()  # a longer description: the new report needs more room
        (run / "run.json").write_text(meta.replace('"description": "', '"description": "' + "longer " * 3000, 1))
        fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\\0" * 4096)
        except OSError:
            os.close(fd)
        os.truncate(folder / "filler", os.path.getsize(folder / "filler") - 4096)  # room for a part of report.md
        code = main(["report", str(run)])
        print("RESULT", code, (run / "report.html").read_bytes() == before, sorted(p.name for p in run.glob("*.tmp")))
    '''))
    folder = tmp_path / "disk"
    folder.mkdir()
    mount = f"mount -t tmpfs -o size=1m tmpfs {folder} && {sys.executable} {script} {run} {folder}"
    done = subprocess.run(["unshare", "-rm", "sh", "-c", mount], capture_output=True, text=True, timeout=300,
                          env=os.environ | {"PYTHONPATH": str(REPO), "BENCH_HISTORY": "off"})
    assert "RESULT 1 True []" in done.stdout, done.stdout + done.stderr
    assert "No space left on device" in done.stderr and "Traceback" not in done.stderr


# ---------------------------------------------------------------- env.json on odd machines


def test_environment_without_git_records_why(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable anywhere
    env = environment.collect_env(tmp_path / "suite.toml", 3)
    assert env["git"] is None and env["git_why"] == "git is not installed" and env["seed"] == 3


def test_environment_outside_a_repository_records_why(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    env = environment.collect_env(tmp_path / "suite.toml", 0)
    assert env["git"] is None and env["git_why"].startswith("git: ") and "not a git repository" in env["git_why"]


def test_environment_never_raises_on_an_odd_machine(monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise OSError("/proc is not mounted")

    monkeypatch.setattr(environment, "cpu_name", broken)
    monkeypatch.setattr(environment.platform, "platform", broken)
    monkeypatch.setattr(environment.platform, "node", lambda: "")
    monkeypatch.setattr(environment.os, "cpu_count", lambda: None)
    monkeypatch.setattr(environment.torch.cuda, "is_available", lambda: True)  # a driver torch sees, NVML does not
    monkeypatch.setattr(environment, "expand_devices", lambda specs: (["cuda:0"], []))
    monkeypatch.setattr(environment, "describe_device", lambda d: (_ for _ in ()).throw(RuntimeError("no driver")))
    monkeypatch.setattr(environment.torch.backends.cudnn, "version", lambda: None)
    monkeypatch.setattr(environment.metadata, "version", broken)
    monkeypatch.setattr(environment.subprocess, "run", broken)
    env = environment.collect_env(tmp_path / "suite.toml", 0)
    assert env["platform"] is None and env["platform_why"] == "OSError: /proc is not mounted"
    assert env["hostname"] == "", "an empty host name is what the system says, not a failure"
    assert env["cpu"]["name"] is None and env["cpu"]["name_why"] == "OSError: /proc is not mounted"
    assert env["cpu"]["logical_cpus"] is None and "cannot tell" in env["cpu"]["logical_cpus_why"]
    assert env["gpus"] is None and env["gpus_why"] == "no driver"
    assert env["cudnn_version"] is None and env["cudnn_version_why"] == "cuDNN is not available"
    assert set(env["packages"].values()) == {None}
    assert env["git"] is None and env["git_why"] == "git: OSError: /proc is not mounted"
    json.dumps(env, allow_nan=False)  # env.json can be written
