"""``checkpoint_format`` in a suite, and what a run records about the checkpoint it loaded."""

from __future__ import annotations

import argparse

import official_keys as ok
import pytest
import torch
from ckpt_helpers import random_state

from bench.cli import main
from bench.results import read_records
from bench.suite import SuiteError, load_suite

SUITE = """
[suite]
name = "ckpt"
seed = 0
time_steps = [2]
devices = ["cpu"]
metrics = ["params"]

[data]
dataset = "synthetic"
batch_size = 2
fallback_samples = 2
image_size = 32
options = {{ in_channels = 3, num_classes = 10 }}

[[models]]
name = "sew_resnet18"
label = "SEW-18"
kwargs = {{ width = 0.0625, input_size = "imagenet" }}
{extra}
"""


def official_file(tmp_path):
    path = tmp_path / "checkpoint_max_val_acc1.pth"
    torch.save({"model": random_state(ok.sew_official(18, 4, 10)),
                "args": argparse.Namespace(model="sew_resnet18", T=4, connect_f="ADD")}, path)
    return path


@pytest.mark.parametrize("extra, problem, fix", [
    ('checkpoint = "c.pth"\ncheckpoint_format = "sew"', "unknown format 'sew'", "use one of snnbench, sew-official"),
    ('checkpoint_format = "sew-official"', "set without a checkpoint", 'add checkpoint = "..." beside it'),
])
def test_bad_checkpoint_format_is_a_suite_error(write_suite, tmp_path, extra, problem, fix):
    path = write_suite(SUITE.format(extra=extra))
    official_file(tmp_path).rename(path.parent / "c.pth")
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert info.value.field == "models[0].checkpoint_format"
    assert problem in str(info.value) and fix in str(info.value)


def test_run_records_the_format_and_the_mapping(write_suite, tmp_path):
    ckpt = official_file(tmp_path)
    suite = write_suite(SUITE.format(extra=f'checkpoint = "{ckpt}"\ncheckpoint_format = "sew-official"'))
    assert load_suite(suite).models[0].checkpoint_format == "sew-official"
    assert main(["run", str(suite), "--out", str(tmp_path / "run"), "-q"]) == 0
    (record,) = read_records(tmp_path / "run" / "results.jsonl")
    assert record["model"]["checkpoint_format"] == "sew-official"
    mapping = record["model"]["checkpoint_mapping"]
    assert (mapping["chosen_by"], mapping["tensors"], mapping["renamed"]) == ("checkpoint_format", 122, 122)
    assert record["trained_T"] == 4  # from the checkpoint's saved args.T


def test_untrained_models_record_no_format(write_suite, tmp_path):
    assert main(["run", str(write_suite(SUITE.format(extra=""))), "--out", str(tmp_path / "run"), "-q"]) == 0
    (record,) = read_records(tmp_path / "run" / "results.jsonl")
    assert record["model"]["checkpoint_format"] is None and record["model"]["checkpoint_mapping"] is None
