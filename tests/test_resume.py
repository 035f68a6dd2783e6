"""Nothing lost, nothing mixed: torn tails, one writer per folder, resumes of changed suites, train-then-run."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bench.train as train_pkg
from bench.cli import main
from bench.results import ResultsWriter, read_records
from bench.rundir import RunFolderError, run_lock

TESTS = Path(__file__).parent

SUITE = """
[suite]
name = "resume"
time_steps = [1, 2, 3, 4]
metrics = ["accuracy", "params"]

[data]
dataset = "digits"
max_samples = 16
batch_size = 8

[[models]]
name = "toy_models:tiny_snn"
label = "tiny"
"""


def run(*args: str) -> int:
    return main(["run", *args, "-q"])


def records(out: Path) -> list[dict]:
    return read_records(out / "results.jsonl")


def lines(out: Path) -> list[str]:
    return (out / "results.jsonl").read_text().splitlines()


# ---------------------------------------------------------------- 1. torn tail


def test_torn_last_line_then_resume_loses_no_case(write_suite, tmp_path, capsys):
    suite, out = str(write_suite(SUITE)), tmp_path / "r"
    assert run(suite, "--out", str(out)) == 0
    text = (out / "results.jsonl").read_text()
    cut = text.rstrip("\n").rfind("\n") + 1 + 40  # the last record, cut 40 characters in (as a kill mid-write)
    (out / "results.jsonl").write_text(text[:cut])
    assert len(records(out)) == 3

    assert run(suite, "--resume", str(out)) == 0
    assert "was cut off" in capsys.readouterr().err
    got = records(out)
    assert sorted(r["T"] for r in got) == [1, 2, 3, 4], "the torn case reran; the others are kept"
    assert all(json.loads(line) for line in lines(out)), "every line is a whole record"


def test_a_full_disk_stops_the_run_and_resume_completes_it(write_suite, tmp_path, monkeypatch, capsys):
    suite, out = str(write_suite(SUITE)), tmp_path / "r"
    real_append = ResultsWriter.append

    def append_until_full(self, record):
        if len(read_records(self.path)) == 2:  # the third record: half of it lands, then the disk is full
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record)[:30])
            raise OSError(28, "No space left on device")
        real_append(self, record)

    monkeypatch.setattr(ResultsWriter, "append", append_until_full)
    assert run(suite, "--out", str(out)) == 1, "a run that cannot save its results fails"
    assert "No space left on device" in " ".join(capsys.readouterr().err.split())
    assert [json.loads(line)["T"] for line in lines(out)] == [1, 2], "cut back to the last whole record"
    monkeypatch.setattr(ResultsWriter, "append", real_append)
    assert run(suite, "--resume", str(out)) == 0
    assert sorted(r["T"] for r in records(out)) == [1, 2, 3, 4]


# ---------------------------------------------------------------- 2. one writer per folder


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))


def _hold_lock(out: Path) -> subprocess.Popen:
    """A process holding ``out``'s lock until killed."""
    code = ("import sys, time; from pathlib import Path; from bench.rundir import run_lock\n"
            "with run_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], env=_env(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_naming_the_holder(write_suite, tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    holder = _hold_lock(out)
    try:
        assert run(str(write_suite(SUITE)), "--out", str(out)) == 2
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and "another bench process" in err
        assert not (out / "results.jsonl").exists(), "nothing ran"
    finally:
        holder.kill()
        holder.wait()
    assert run(str(write_suite(SUITE)), "--out", str(out)) == 0, "a dead holder's lock is gone with it"


def test_the_lock_is_reentrant_in_one_process_and_exclusive_across(tmp_path):
    with run_lock(tmp_path), run_lock(tmp_path):
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    holder = _hold_lock(tmp_path)
    try:
        with pytest.raises(RunFolderError, match=f"pid {holder.pid}"), run_lock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_two_runs_started_together_on_one_folder(write_suite, tmp_path):
    text = SUITE + '\n[[models]]\nname = "toy_models:sleepy_model"\nlabel = "slow"\nkwargs = { seconds = 0.5 }\n'
    suite, out = str(write_suite(text)), tmp_path / "r"
    cmd = [sys.executable, "-m", "bench.cli", "run", suite, "--out", str(out), "-q"]
    procs = [subprocess.Popen(cmd, env=_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.wait(240), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "another bench process" in loser or "already holds a run" in loser
    keys = [r["config_key"] for r in records(out)]
    assert len(keys) == 8 and len(set(keys)) == 8, "every case exactly once"


# ---------------------------------------------------------------- 3. resume of a changed suite

REGISTERED = """
[suite]
name = "changed"
time_steps = [1, 2]
metrics = ["accuracy", "params"]

[data]
dataset = "digits"
max_samples = 16
batch_size = 8

[[models]]
name = "sew_resnet18"
label = "sew"
kwargs = { width = 0.125 }
"""


def test_a_changed_suite_is_refused_on_resume_naming_each_change(write_suite, tmp_path, capsys):
    out = tmp_path / "r"
    assert run(str(write_suite(REGISTERED)), "--out", str(out)) == 0
    before = (out / "results.jsonl").read_bytes()
    changed = REGISTERED.replace("time_steps = [1, 2]", "time_steps = [1, 2, 4]").replace("0.125", "0.25")
    assert run(str(write_suite(changed, "changed.toml")), "--resume", str(out)) == 2
    err = capsys.readouterr().err
    assert "time_steps: [1, 2] -> [1, 2, 4]" in err
    assert "models['sew'].kwargs.width: 0.125 -> 0.25" in err and "--allow-changes" in err
    assert (out / "results.jsonl").read_bytes() == before, "nothing ran, nothing was rewritten"


def test_allow_changes_keeps_old_and_new_records_apart(write_suite, tmp_path):
    out = tmp_path / "r"
    assert run(str(write_suite(REGISTERED)), "--out", str(out)) == 0
    params_before = records(out)[0]["metrics"]["params"]["params"]
    changed = write_suite(REGISTERED.replace("time_steps = [1, 2]", "time_steps = [1, 2, 4]").replace("0.125", "0.25"),
                          "changed.toml")
    assert run(str(changed), "--resume", str(out), "--allow-changes") == 0
    got = [(r["segment"], r["T"], r["model"]["kwargs"]["width"]) for r in records(out)]
    assert got == [(0, 1, 0.125), (0, 2, 0.125), (1, 1, 0.25), (1, 2, 0.25), (1, 4, 0.25)]
    by_segment = {r["segment"]: r["metrics"]["params"]["params"] for r in records(out)}
    assert by_segment[0] == params_before != by_segment[1], "each segment's figures are its own configuration's"
    run_json = json.loads((out / "run.json").read_text())
    assert [s["segment"] for s in run_json["segments"]] == [0, 1] and run_json["segment"] == 1
    assert run_json["segments"][0]["settings"]["time_steps"] == [1, 2]
    assert run_json["segments"][1]["settings"]["models"]["sew"]["kwargs"] == {"width": 0.25}
    assert any("changed settings" in n for n in run_json["notes"])


def test_an_unchanged_resume_continues_the_same_segment(write_suite, tmp_path):
    suite, out = str(write_suite(SUITE)), tmp_path / "r"
    assert run(suite, "--out", str(out)) == 0
    (out / "results.jsonl").write_text("".join(line + "\n" for line in lines(out)[:2]))
    assert run(suite, "--resume", str(out)) == 0
    assert [r["segment"] for r in records(out)] == [0, 0, 0, 0]
    segments = json.loads((out / "run.json").read_text())["segments"]
    assert len(segments) == 1 and len(segments[0]["resumed_at"]) == 1


def test_a_folder_without_settings_history_is_not_resumed_blindly(write_suite, tmp_path, capsys):
    suite, out = str(write_suite(SUITE)), tmp_path / "r"
    assert run(suite, "--out", str(out)) == 0
    run_json = json.loads((out / "run.json").read_text())
    del run_json["segments"]
    (out / "run.json").write_text(json.dumps(run_json))  # as an earlier snnbench wrote it
    assert run(suite, "--resume", str(out)) == 2
    assert "keeps no settings history" in capsys.readouterr().err


# ---------------------------------------------------------------- 8. train, then the printed command

TRAIN = SUITE.replace("time_steps = [1, 2, 3, 4]", "time_steps = [2]") + """
[train]
epochs = 2
lr = 0.01
T = 2
batch_size = 64
max_samples = 128
num_threads = 1
"""


def _printed_command(err: str) -> list[str]:
    line = next(line for line in err.splitlines() if line.startswith("evaluate with: "))
    args = shlex.split(line.removeprefix("evaluate with: "))
    assert args[:2] == ["bench", "run"]
    return args[1:]


def test_the_command_bench_train_prints_evaluates_the_trained_models(write_suite, tmp_path, capsys):
    suite, out = str(write_suite(TRAIN)), tmp_path / "r"
    assert main(["train", suite, "--out", str(out), "-q"]) == 0
    command = _printed_command(capsys.readouterr().err)
    assert command == ["run", suite, "--out", str(out)]
    assert main([*command, "-q"]) == 0
    assert records(out)[0]["model"]["checkpoint"] == str(out / "checkpoints" / "tiny.pt")
    assert main(["train", suite, "--out", str(out), "-q"]) == 0
    assert _printed_command(capsys.readouterr().err) == ["run", suite, "--resume", str(out)], \
        "a folder with results is resumed"


def test_an_interrupted_training_continues_under_bench_run(write_suite, tmp_path, monkeypatch):
    suite, out = str(write_suite(TRAIN)), tmp_path / "r"
    real_epoch, calls = train_pkg.train_epoch, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train_pkg, "train_epoch", interrupted)
    assert main(["train", suite, "--out", str(out), "-q"]) == 130
    assert (out / "checkpoints" / "tiny.last.pt").is_file()
    monkeypatch.setattr(train_pkg, "train_epoch", real_epoch)
    assert main(["run", suite, "--resume", str(out), "-q"]) == 0, "a folder with checkpoints only is resumable"
    assert not (out / "checkpoints" / "tiny.last.pt").exists() and (out / "checkpoints" / "tiny.pt").is_file()


def test_an_unreadable_per_epoch_checkpoint_is_bad_input(write_suite, tmp_path, capsys):
    import pickle

    suite, out = str(write_suite(TRAIN)), tmp_path / "r"
    (out / "checkpoints").mkdir(parents=True)
    last = out / "checkpoints" / "tiny.last.pt"
    for content in (pickle.dumps({"meta": object()}), b"PK\x03\x04 truncated"):
        last.write_bytes(content)
        assert main(["train", suite, "--out", str(out), "-q"]) == 2
        err = capsys.readouterr().err
        assert "tiny.last.pt" in err and "delete it" in err
        assert last.read_bytes() == content, "the file is left as it was"


@pytest.mark.slow
def test_sigterm_stops_a_run_like_ctrl_c(write_suite, tmp_path):
    # 2 s a case: under a loaded machine the poll below may lag by a second, and the signal must still land
    # while cases remain (the test takes one case plus start-up and the report either way).
    text = SUITE.replace('"toy_models:tiny_snn"', '"toy_models:sleepy_model"') + "kwargs = { seconds = 2.0 }\n"
    out = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "bench.cli", "run", str(write_suite(text)), "--out", str(out), "-q"],
                            env=_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not ((out / "results.jsonl").exists() and lines(out)) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(180) == 130
    assert 1 <= len(records(out)) < 4 and (out / "report.md").exists()


def test_resume_refuses_lines_that_are_no_record_naming_them(write_suite, tmp_path, capsys):
    """A whole line that is not a record is corruption, not a torn tail: resume stops (exit 2) naming the line and
    the fix, and the file is left as it was (nothing is dropped silently)."""
    suite, out = str(write_suite(SUITE)), tmp_path / "r"
    assert run(suite, "--out", str(out)) == 0
    kept = lines(out)[:2]
    text = "\n".join([*kept, "[]", '{"status": "ok"}', "3"]) + "\n"
    (out / "results.jsonl").write_text(text)
    assert run(suite, "--resume", str(out)) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "results.jsonl, line 3" in err and "Traceback" not in err
    assert (out / "results.jsonl").read_text() == text


def test_a_csv_that_cannot_be_written_fails_the_run_and_resume_rewrites_it(write_suite, tmp_path, monkeypatch,
                                                                            capsys):
    """results.csv is derived, but a stale one must not pass as the run's: exit 1 naming it, then a resume
    that reruns nothing writes it whole."""
    import bench.runner as runner_mod
    from bench.results import ResultsWriteError

    suite, out = str(write_suite(SUITE)), tmp_path / "r"
    real_write_csv = runner_mod.write_csv

    def no_space(records, path):
        raise ResultsWriteError(f"could not write {path}: No space left on device", 28)

    monkeypatch.setattr(runner_mod, "write_csv", no_space)
    assert run(suite, "--out", str(out)) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "results.csv (No space left on device)" in err and "--resume" in err
    assert sorted(r["T"] for r in records(out)) == [1, 2, 3, 4], "every record kept"
    assert not (out / "results.csv").exists()
    monkeypatch.setattr(runner_mod, "write_csv", real_write_csv)
    assert run(suite, "--resume", str(out)) == 0
    assert len((out / "results.csv").read_text().splitlines()) == 5, "a header and the four records"
