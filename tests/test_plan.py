"""One plan of cases (bench.plan): what the CLI lists and estimates is what the runner measures."""

from __future__ import annotations

import json
from pathlib import Path

from bench.cli import main
from bench.plan import plan_cases
from bench.results import read_records
from bench.suite import Selection, load_suite

TRAIN = """
[suite]
name = "plan"
time_steps = [1, 2]
metrics = ["params"]

[data]
dataset = "digits"
max_samples = 16
batch_size = 8

[train]
epochs = 1
lr = 0.01
T = 3
batch_size = 64
max_samples = 64
num_threads = 1

[[models]]
name = "toy_models:tiny_snn"
label = "tiny"

[[models]]
name = "toy_models:tiny_snn"
label = "other"
time_steps = [4]
"""


def test_the_plan_predicts_the_checkpoints_training_gives(write_suite, tmp_path):
    """Before training, each case carries the checkpoint and trained_T that training then records, so its
    config_key is the record's: the listing, the estimate and the runner agree on what is done."""
    suite, out = load_suite(write_suite(TRAIN)), tmp_path / "r"
    plan = plan_cases(suite, out)
    assert plan.training == ("tiny", "other")
    assert [(c.model.label, c.T) for c in plan.cases] == [("tiny", 1), ("tiny", 2), ("other", 4)], \
        "each model at its own T"
    assert {c.model.checkpoint for c in plan.cases} == {str(out / "checkpoints" / "tiny.pt"),
                                                        str(out / "checkpoints" / "other.pt")}
    assert {c.model.trained_T for c in plan.cases} == {3}
    assert main(["run", str(suite.path), "--out", str(out), "-q"]) == 0
    recorded = read_records(out / "results.jsonl")
    assert [r["config_key"] for r in recorded] == [plan.key(c) for c in plan.cases]
    assert [r["model"]["checkpoint"] for r in recorded] == [c.model.checkpoint for c in plan.cases]


def test_a_selection_plans_and_trains_only_its_models(write_suite, tmp_path):
    suite = load_suite(write_suite(TRAIN))
    plan = plan_cases(suite, tmp_path / "r", selection=Selection(models=("other",)))
    assert plan.training == ("other",) and [c.model.label for c in plan.cases] == ["other"]


def test_a_resumed_train_run_lists_as_done_exactly_what_the_runner_skips(write_suite, tmp_path, capsys):
    """An ok record with the case's id but another configuration (here: written under other settings) is not
    the case: the CLI must not call it done while the runner measures it again (they used different rules)."""
    path, out = write_suite(TRAIN), tmp_path / "r"
    assert main(["run", str(path), "--out", str(out), "-q", "--models", "tiny"]) == 0
    capsys.readouterr()
    assert main(["run", str(path), "--resume", str(out), "-q", "--models", "tiny"]) == 0
    assert "2 of 2 selected case(s) already done" in capsys.readouterr().err
    assert len(read_records(out / "results.jsonl")) == 2, "nothing measured twice"

    lines = (out / "results.jsonl").read_text().splitlines()
    first = json.loads(lines[0]) | {"config_key": "another-configuration"}
    (out / "results.jsonl").write_text("".join(x + "\n" for x in [json.dumps(first), lines[1]]))
    assert main(["run", str(path), "--resume", str(out), "-q", "--models", "tiny"]) == 0
    err = capsys.readouterr().err
    assert "1 of 2 selected case(s) already done" in err, err
    assert [r["case_id"] for r in read_records(out / "results.jsonl")] == \
        ["tiny|T=1|cpu|bs=8", "tiny|T=2|cpu|bs=8", "tiny|T=1|cpu|bs=8"], "the changed case ran again, once"


def test_a_dry_run_of_a_train_suite_on_random_labels_says_training_is_skipped(write_suite, tmp_path, capsys):
    synthetic = TRAIN.replace('dataset = "digits"', 'dataset = "synthetic"')
    path = write_suite(synthetic, "syn.toml")
    plan = plan_cases(load_suite(path), tmp_path / "r")
    assert plan.training == () and all(c.model.checkpoint is None for c in plan.cases)
    assert main(["run", str(path), "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "training skipped (dataset 'synthetic' has random labels)" in err and "training first" not in err
    assert not Path(tmp_path / "r").exists()


def test_a_train_suite_whose_training_root_is_missing_is_refused_not_skipped(write_suite, tmp_path, capsys):
    """Evaluation may fall back to synthetic input; training never does: a missing root is bad input."""
    text = TRAIN.replace('dataset = "digits"', f'dataset = "cifar10"\nroot = "{tmp_path / "none"}"\n'
                         'on_missing = "synthetic"')
    path = write_suite(text, "cifar.toml")
    assert plan_cases(load_suite(path), tmp_path / "r").training == ("tiny", "other")
    assert main(["run", str(path), "--out", str(tmp_path / "r"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "training skipped" not in err, err
