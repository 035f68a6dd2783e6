"""Untrained models get BN statistics from the case's data before they are measured, and the record says so."""

from __future__ import annotations

import torch

from bench.models import create_model
from bench.plan import plan_cases
from bench.runner import run_suite
from bench.suite import load_suite

SUITE = """
[suite]
name = "untrained"
time_steps = [2]
devices = ["cpu"]
metrics = ["firing", "ops"]

[data]
dataset = "digits"
max_samples = 24
batch_size = 8
image_size = 16
{calibration}

[[models]]
name = "sew_resnet18"
label = "sew"
kwargs = {{ width = 0.125 }}
{checkpoint}
"""


def run(write_suite, tmp_path, name: str, calibration: str = "", checkpoint: str = "") -> dict:
    suite = load_suite(write_suite(SUITE.format(calibration=calibration, checkpoint=checkpoint), f"{name}.toml"))
    (record,) = run_suite(plan_cases(suite, tmp_path / name), show_progress=False).records
    assert record["status"] == "ok", record["error"]
    return record


def silent_layers(record: dict) -> int:
    return sum(layer["rate"] == 0 for layer in record["metrics"]["firing"]["layers"])


def test_untrained_model_is_calibrated_and_fires(write_suite, tmp_path):
    """At initial BN statistics the untrained net is nearly silent after the stem; calibrated on the case's data
    its layers fire, and the record says on how many samples."""
    off = run(write_suite, tmp_path, "off", "bn_calibration_samples = 0")
    on = run(write_suite, tmp_path, "on", "bn_calibration_samples = 16")
    assert off["model"]["bn_calibration"] is None
    assert off["model"]["weights"] == "untrained, BN at its initial statistics (data.bn_calibration_samples = 0)"
    assert on["model"]["bn_calibration"] == {"samples": 16, "T": 2, "batch_size": 8}
    assert on["model"]["weights"] == "untrained, BN calibrated on 16 samples (T=2)"
    assert silent_layers(on) < silent_layers(off)
    assert on["metrics"]["firing"]["mean_rate"] > 2 * off["metrics"]["firing"]["mean_rate"]
    assert on["metrics"]["ops"]["sops"] > off["metrics"]["ops"]["sops"]


def test_calibration_uses_at_most_the_data_there_is(write_suite, tmp_path):
    record = run(write_suite, tmp_path, "big", "bn_calibration_samples = 1000")
    assert record["model"]["bn_calibration"]["samples"] == 24  # max_samples caps the data


def test_a_model_with_a_checkpoint_is_not_calibrated(write_suite, tmp_path):
    """Trained weights keep their own BN statistics: the calibration setting changes nothing for them."""
    torch.manual_seed(0)
    model = create_model("sew_resnet18", width=0.125, num_classes=10, in_channels=1, input_size="cifar")
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    torch.save({"model": model.state_dict()}, tmp_path / "sew.pt")
    with_ckpt = run(write_suite, tmp_path, "ckpt", "bn_calibration_samples = 16", f'checkpoint = "{tmp_path}/sew.pt"')
    assert with_ckpt["model"]["bn_calibration"] is None
    assert with_ckpt["model"]["weights"] == "checkpoint sew.pt (snnbench)"
    again = run(write_suite, tmp_path, "ckpt2", "bn_calibration_samples = 0", f'checkpoint = "{tmp_path}/sew.pt"')
    assert with_ckpt["metrics"]["firing"]["mean_rate"] == again["metrics"]["firing"]["mean_rate"]


def test_calibration_does_not_depend_on_which_cases_run(write_suite, tmp_path):
    """A run of T=2 only (a selection) measures the same calibrated model as a full run over T = 1, 2."""
    from bench.suite import Selection

    text = SUITE.format(calibration="bn_calibration_samples = 16", checkpoint="").replace(
        "time_steps = [2]", "time_steps = [1, 2]")
    suite = load_suite(write_suite(text, "sel.toml"))
    full = run_suite(plan_cases(suite, tmp_path / "full"), show_progress=False).records
    part = run_suite(plan_cases(suite, tmp_path / "part", selection=Selection(time_steps=(2,))), show_progress=False).records
    (full_T2,) = [r for r in full if r["T"] == 2]
    (part_T2,) = part
    assert part_T2["model"]["bn_calibration"] == full_T2["model"]["bn_calibration"] == {
        "samples": 16, "T": 1, "batch_size": 8}
    assert part_T2["metrics"]["ops"]["sops"] == full_T2["metrics"]["ops"]["sops"]
