"""Selecting cases (``--models``, ``--T``, ``--batch-size``) and ``bench run --dry-run``: which cases a selection
keeps, bad selections are bad input naming the flag, a dry run writes nothing, and a resume may continue a run
folder with another selection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bench.estimate as estimate
from bench.cli import main
from bench.results import read_records
from bench.suite import Selection, SuiteError, expand_cases, load_suite, select_cases

SUITE = """
[suite]
name = "pick"
time_steps = [1, 2]
metrics = ["accuracy", "params"]

[data]
dataset = "digits"
max_samples = 16
batch_size = [8, 16]

[[models]]
name = "toy_models:tiny_snn"
label = "Tiny A"

[[models]]
name = "toy_models:tiny_snn"
label = "tiny [b]"
time_steps = [4]

[[models]]
name = "sew_resnet18"
label = "SEW w/16"
kwargs = { width = 0.0625, input_size = "cifar" }
time_steps = [1]
"""


@pytest.fixture(autouse=True)
def quick_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Speed measurements of a few milliseconds (their figures are not what these tests check)."""
    monkeypatch.setattr(estimate, "BENCH_S", 0.003)
    monkeypatch.setattr(estimate, "_SPEEDS", {})


def ids(cases) -> list[str]:
    return [c.case_id for c in cases]


def selected(path: Path, **flags) -> list[str]:
    suite = load_suite(path)
    return ids(select_cases(suite, expand_cases(suite)[0], Selection(**flags)))


# ---------------------------------------------------------------- selection semantics


def test_no_selection_keeps_every_case_in_run_order(write_suite):
    path = write_suite(SUITE)
    suite = load_suite(path)
    assert not Selection()
    assert selected(path) == ids(expand_cases(suite)[0])
    assert len(selected(path)) == 2 * 2 + 2 + 2  # Tiny A: 2 T x 2 batches; tiny [b]: T=4 x 2; SEW: T=1 x 2


def test_patterns_match_labels_and_names_case_insensitively(write_suite):
    path = write_suite(SUITE)
    assert {i.split("|")[0] for i in selected(path, models=("sew*",))} == {"SEW w/16"}  # label, any case
    assert {i.split("|")[0] for i in selected(path, models=("sew_resnet18",))} == {"SEW w/16"}  # registered name
    assert {i.split("|")[0] for i in selected(path, models=("toy_models:*",))} == {"Tiny A", "tiny [b]"}
    assert {i.split("|")[0] for i in selected(path, models=("tiny [b]",))} == {"tiny [b]"}  # exact label, brackets
    # Repeated flags add up; the run order stays the suite's.
    both = selected(path, models=("sew*", "tiny a"))
    assert both == [i for i in selected(path) if i.split("|")[0] in ("Tiny A", "SEW w/16")]


def test_T_and_batch_size_filter_and_combine(write_suite):
    path = write_suite(SUITE)
    assert selected(path, time_steps=(1,)) == ["Tiny A|T=1|cpu|bs=8", "Tiny A|T=1|cpu|bs=16",
                                               "SEW w/16|T=1|cpu|bs=8", "SEW w/16|T=1|cpu|bs=16"]
    assert selected(path, time_steps=(4, 2), batch_sizes=(16,)) == ["Tiny A|T=2|cpu|bs=16", "tiny [b]|T=4|cpu|bs=16"]
    assert selected(path, models=("tiny*",), time_steps=(4,)) == ["tiny [b]|T=4|cpu|bs=8", "tiny [b]|T=4|cpu|bs=16"]


@pytest.mark.parametrize(("flags", "field", "listed"), [
    ({"models": ("resnet*",)}, "--models 'resnet*'", "Tiny A (toy_models:tiny_snn); tiny [b] (toy_models:tiny_snn); "
                                                      "SEW w/16 (sew_resnet18)"),
    ({"time_steps": (3,)}, "--T 3", "use one of: 1, 2, 4"),
    ({"models": ("sew*",), "time_steps": (2,)}, "--T 2", "use one of: 1"),  # a T only other models evaluate
    ({"batch_sizes": (32,)}, "--batch-size 32", "use one of: 8, 16"),
])
def test_a_selection_that_selects_nothing_names_the_flag_and_the_choices(write_suite, flags, field, listed):
    path = write_suite(SUITE)
    suite = load_suite(path)
    with pytest.raises(SuiteError) as err:
        select_cases(suite, expand_cases(suite)[0], Selection(**flags))
    assert err.value.field == field and str(path) in str(err.value)
    assert listed in err.value.fix


@pytest.mark.parametrize("argv", [["--models", "nope"], ["--T", "8"], ["--batch-size", "5"], ["--T", "0"],
                                  ["--T", "x"]])
def test_bad_selections_exit_2_before_anything_runs(write_suite, tmp_path, capsys, argv):
    out = tmp_path / "out"
    try:
        code = main(["run", str(write_suite(SUITE)), "--out", str(out), "-q", *argv])
    except SystemExit as usage:  # argparse's usage errors (a T that is no positive integer)
        code = usage.code
    assert code == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert argv[0] in err
    if argv == ["--models", "nope"]:
        assert "matches no model" in err and "SEW w/16 (sew_resnet18)" in err


# ---------------------------------------------------------------- dry run


def tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


def test_dry_run_prints_the_cases_and_an_estimate_and_writes_nothing(write_suite, tmp_path, monkeypatch, capsys):
    path = write_suite(SUITE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENCH_HISTORY", str(tmp_path / "history.sqlite"))
    before = tree(tmp_path)
    assert main(["run", str(path), "--dry-run", "--models", "sew*", "--models", "tiny a", "--T", "1"]) == 0
    assert main(["run", str(path), "--dry-run", "--out", str(tmp_path / "new")]) == 0
    assert tree(tmp_path) == before  # no run folder, lock, reports/ or history store
    err = capsys.readouterr().err
    first = err[: err.index("estimate:") + 200]
    assert "Tiny A" in first and "SEW w/16" in first and "tiny [b]" not in first
    assert "pick: 4 case(s) (dry run" in first
    assert "metrics (every case): accuracy, params" in err
    assert "rough lower bound: no past run" in err  # no history here
    assert "a user model" in err  # toy models are not run before their cases
    assert err.count("estimate: at least") == 2


def test_dry_run_checks_what_a_run_checks(write_suite, tmp_path, capsys):
    huge = SUITE.replace("max_samples = 16", "max_samples = 16\nimage_size = 256").replace(
        "batch_size = [8, 16]", "batch_size = [100000]")
    assert main(["run", str(write_suite(huge, "huge.toml")), "--dry-run"]) == 2
    assert "needs at least" in capsys.readouterr().err  # the memory lower bound, as a run refuses it
    missing = SUITE.replace('dataset = "digits"', 'dataset = "cifar10"\nroot = "/nonexistent/cifar"')
    assert main(["run", str(write_suite(missing, "missing.toml")), "--dry-run"]) == 2
    assert "/nonexistent/cifar" in capsys.readouterr().err
    done = tmp_path / "done"
    assert main(["run", str(write_suite(SUITE)), "--out", str(done), "-q", "--models", "tiny a"]) == 0
    assert main(["run", str(write_suite(SUITE)), "--out", str(done), "--dry-run"]) == 2  # a new run needs a new folder
    assert "already holds a run" in capsys.readouterr().err
    changed = write_suite(SUITE.replace("time_steps = [1, 2]", "time_steps = [1, 3]"), "changed.toml")
    size = (done / "results.jsonl").stat().st_size
    assert main(["run", str(changed), "--resume", str(done), "--dry-run"]) == 2  # the resume guard, read only
    assert "settings differ" in capsys.readouterr().err
    assert (done / "results.jsonl").stat().st_size == size


def test_dry_run_of_a_resume_lists_only_the_cases_left(write_suite, tmp_path, capsys):
    path, out = str(write_suite(SUITE)), tmp_path / "r"
    assert main(["run", path, "--out", str(out), "-q", "--models", "tiny a", "--T", "1"]) == 0
    capsys.readouterr()
    assert main(["run", path, "--resume", str(out), "--dry-run", "--models", "tiny a"]) == 0
    err = capsys.readouterr().err
    assert "2 of 4 selected case(s) already done" in err and "2 case(s) (dry run" in err


# ---------------------------------------------------------------- selections and resume


def test_a_resume_may_continue_with_another_selection(write_suite, tmp_path):
    """A selection is not a change of the suite's settings: the records are those of a full run, in one segment."""
    path = str(write_suite(SUITE.replace('"SEW w/16"', '"SEW"')))
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["run", path, "--out", str(full), "-q", "--models", "tiny*"]) == 0
    assert main(["run", path, "--out", str(part), "-q", "--models", "tiny*", "--T", "1"]) == 0
    assert {r["T"] for r in read_records(part / "results.jsonl")} == {1}
    assert main(["run", path, "--resume", str(part), "-q", "--models", "tiny a", "--batch-size", "16"]) == 0
    assert main(["run", path, "--resume", str(part), "-q", "--models", "toy_models:*"]) == 0
    records = read_records(part / "results.jsonl")
    assert sorted(r["config_key"] for r in records) == sorted(r["config_key"] for r in read_records(
        full / "results.jsonl"))
    assert {r["segment"] for r in records} == {0}
    segments = json.loads((part / "run.json").read_text())["segments"]
    assert len(segments) == 1 and len(segments[0]["resumed_at"]) == 2


def test_a_run_prints_its_estimate_before_it_starts(write_suite, tmp_path, capsys):
    path = str(write_suite(SUITE))
    assert main(["run", path, "--out", str(tmp_path / "a"), "-q", "--models", "sew*", "--batch-size", "8"]) == 0
    err = capsys.readouterr().err
    assert err.index("estimate: at least") < err.index("results:")
    assert "for 1 case(s): 1 rough lower bound (no past run: counted compute at this machine's measured speed; " in err


def test_no_speed_benchmark_before_a_run_that_measures_energy(write_suite, tmp_path, monkeypatch, capsys):
    """A benchmark just before measured_energy's rest-idle phase would warm the device: a real run does none."""
    def refuse(device):
        raise AssertionError("measured the speed before a run")

    monkeypatch.setattr(estimate, "measure_speed", refuse)
    text = SUITE.replace('metrics = ["accuracy", "params"]', 'metrics = ["params", "measured_energy"]\n'
                         "[metrics.measured_energy]\nmin_window_s = 0.0\nidle_s = 0.0\nmin_batches = 1\nwarmup = 0")
    assert main(["run", str(write_suite(text)), "--out", str(tmp_path / "a"), "-q", "--models", "sew*",
                 "--batch-size", "8"]) == 0
    assert "estimate: none for 1 case(s): 1 not estimated (no past run, and no speed measured" in \
        capsys.readouterr().err


MISSING_ROOT = """
[suite]
name = "noroot"
time_steps = [1]
metrics = ["params"]

[data]
dataset = "cifar10"
root = "${SNNBENCH_TEST_UNSET_ROOT}"
max_samples = 8
batch_size = 8
on_missing = "{on_missing}"

[[models]]
name = "sew_resnet18"
label = "SEW w/16"
kwargs = { width = 0.0625, input_size = "cifar" }
"""


def test_a_missing_data_root_is_refused_before_the_estimate_line(write_suite, tmp_path, capsys, monkeypatch):
    """The run checks the data root before it prints the time estimate: exit 2, the variable named, no estimate."""
    monkeypatch.delenv("SNNBENCH_TEST_UNSET_ROOT", raising=False)
    suite = write_suite(MISSING_ROOT.replace("{on_missing}", "error"))
    assert main(["run", str(suite), "--out", str(tmp_path / "r"), "-q"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "SNNBENCH_TEST_UNSET_ROOT" in err and "estimate" not in err
    assert not (tmp_path / "r").exists()


def test_the_dry_run_prints_the_synthetic_fallback_note_the_run_prints(write_suite, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SNNBENCH_TEST_UNSET_ROOT", raising=False)
    suite = write_suite(MISSING_ROOT.replace("{on_missing}", "synthetic"))
    assert main(["run", str(suite), "--dry-run"]) == 0
    dry = " ".join(capsys.readouterr().err.split())
    note = "accuracy was not measured: environment variable SNNBENCH_TEST_UNSET_ROOT"
    assert note in dry
    assert main(["run", str(suite), "--out", str(tmp_path / "r"), "-q"]) == 0
    assert note in " ".join(capsys.readouterr().err.split()), "the same note as the real run's"
