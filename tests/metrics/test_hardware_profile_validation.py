"""Hostile user hardware profiles (``[metrics.energy] hardware_profiles``) are refused when the suite loads: a
SuiteError naming the file, the field (``metrics.energy.<option>``), the profile and its bad key, with a fix;
through the CLI, exit 2 and no traceback. (Missing source, a bad kind, a negative spike cost, a reference to a
non-digital profile and missing fields are in test_energy_model.py.)"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.suite import SuiteError, load_suite

DIGITAL = {"kind": '"digital"', "source": '"a datasheet"', "add_pj": "1.0", "mult_pj": "1.0", "ref_bits": "8",
           "weight_read_pj": "1.0", "weight_access_bits": "64", "membrane_read_pj": "1.0", "membrane_write_pj": "1.0",
           "membrane_access_bits": "64", "act_read_pj": "1.0", "act_write_pj": "1.0", "act_access_bits": "64"}
NEURO = {"kind": '"neuromorphic"', "source": '"a datasheet"', "sop_pj": "1.0", "neuron_update_pj": "1.0",
         "spike_pj": "1.0", "reference": '"45nm-sram"'}
ZERO_DIGITAL = {k: ("0.0" if k.endswith("_pj") else v) for k, v in DIGITAL.items()}
ZERO_NEURO = {k: ("0.0" if k.endswith("_pj") else v) for k, v in NEURO.items()}


def suite_text(energy: str) -> str:
    return ('[suite]\nname = "s"\nseed = 0\ntime_steps = [1]\ndevices = ["cpu"]\nmetrics = ["energy"]\n'
            '[data]\ndataset = "synthetic"\n[[models]]\nname = "sew_resnet18"\n[metrics.energy]\n' + energy + "\n")


def refused_at_load(path, field: str, words: list[str]) -> SuiteError:
    """Load ``path``, expecting a SuiteError naming the file, ``metrics.energy.<field>`` and every one of ``words``."""
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert info.value.file == str(path) and info.value.field == f"metrics.energy.{field}"
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    return info.value


def profiles(name: str, entries: dict[str, str]) -> str:
    return f"hardware_profiles = {{ {name} = {{ {', '.join(f'{k} = {v}' for k, v in entries.items())} }} }}"


@pytest.mark.parametrize("energy, field, words", [
    (profiles('""', NEURO), "hardware_profiles", ["name must be a non-empty string"]),
    (profiles('"  "', NEURO), "hardware_profiles", ["name must be a non-empty string"]),
    (profiles("chip", DIGITAL | {"notes": "5"}), "hardware_profiles", ["'chip'", "notes must be text"]),
    (profiles("chip", ZERO_DIGITAL), "hardware_profiles", ["'chip'", "every cost", "is 0", "prices nothing"]),
    (profiles("chip", ZERO_NEURO), "hardware_profiles", ["'chip'", "sop_pj", "prices nothing"]),
    ('hw_evaluate = ["45nm-sram", "nope"]', "hw_evaluate", ["'nope'", "choose from", "loihi"]),
    (profiles("chip", DIGITAL | {"add_pj": "nan"}), "hardware_profiles", ["'chip'", "add_pj", "finite", "nan"]),
    (profiles("chip", DIGITAL | {"mult_pj": "inf"}), "hardware_profiles", ["'chip'", "mult_pj", "finite"]),
    (profiles("chip", DIGITAL | {"mult_pj": "-inf"}), "hardware_profiles", ["'chip'", "mult_pj", "finite"]),
    (profiles("chip", DIGITAL | {"weight_read_pj": "-2.0"}), "hardware_profiles", ["weight_read_pj", ">= 0"]),
    (profiles("chip", DIGITAL | {"act_read_pj": '"20"'}), "hardware_profiles", ["act_read_pj", "'20'"]),
    (profiles("chip", DIGITAL | {"add_pj": "true"}), "hardware_profiles", ["add_pj", "True"]),
    (profiles("chip", DIGITAL | {"ref_bits": "0"}), "hardware_profiles", ["ref_bits", "whole number of bits"]),
    (profiles("chip", DIGITAL | {"act_access_bits": "8.5"}), "hardware_profiles", ["act_access_bits", "8.5"]),
    (profiles("chip", DIGITAL | {"sop_pj": "1.0"}), "hardware_profiles", ["unknown field(s) ['sop_pj']", "allowed"]),
    (profiles("chip", NEURO | {"reference": "5"}), "hardware_profiles", ["reference must name a digital profile"]),
    (profiles("chip", NEURO | {"reference": '"nope"'}), "hardware_profiles", ["'nope'", "45nm-sram"]),
    ("hardware_profiles = { chip = 3 }", "hardware_profiles", ["'chip' must be a table"]),
    (profiles("loihi", NEURO), "hardware_profiles", ["'loihi' is a built-in profile's name", "'loihi-mine'"]),
    (profiles('"28nm-sata"', DIGITAL), "hardware_profiles", ["'28nm-sata' is a built-in profile's name"]),
])
def test_hostile_profile_is_refused_at_load(write_suite, energy, field, words):
    err = refused_at_load(write_suite(suite_text(energy)), field, words)
    assert err.fix and "fix:" in str(err)


def test_a_single_zero_cost_is_allowed(write_suite):
    """A free term (0 pJ) is a choice a source can make (SpiNNaker 2's built-in profile prices no spike): allowed."""
    suite = load_suite(write_suite(suite_text(profiles("chip", NEURO | {"spike_pj": "0.0"}))))
    assert suite.metric_options["energy"]["hardware_profiles"]["chip"]["spike_pj"] == 0.0


def test_cli_exits_2_naming_the_file_and_field_without_a_traceback(tmp_path):
    suite = tmp_path / "zero.toml"
    suite.write_text(suite_text(profiles("chip", ZERO_NEURO)), encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "bench.cli", "run", str(suite), "--dry-run"], capture_output=True,
                       text=True, timeout=120)
    out = r.stderr + r.stdout
    assert r.returncode == 2 and str(suite) in out and "metrics.energy.hardware_profiles" in out
    assert "prices nothing" in out and "fix:" in out and "Traceback" not in out


@pytest.mark.parametrize("entry, words", [
    ('{ mac_pj = 0.0, ac_pj = 0.0, source = "s" }', ["'chip'", "every cost", "prices nothing"]),
    ('{ mac_pj = 1.0, ac_pj = 0.1, source = "s", notes = 3 }', ["'chip'", "notes must be text"]),
])
def test_hostile_compute_only_profile_is_refused_at_load(write_suite, entry, words):
    """The compute-only profiles (``profiles``) follow the same rules, and their errors are named under
    ``profiles`` (the bad table), not ``profile`` (the name that chose it)."""
    refused_at_load(write_suite(suite_text(f'profile = "chip"\nprofiles = {{ chip = {entry} }}')), "profiles", words)


def test_a_compute_only_profile_may_not_take_a_built_ins_name(write_suite):
    """A user table named like a built-in (here 45nm-fp32) would print other constants under Horowitz's name."""
    path = write_suite(suite_text('profiles = { "45nm-fp32" = { mac_pj = 1.0, ac_pj = 0.1, source = "s" } }'))
    refused_at_load(path, "profiles", ["'45nm-fp32' is a built-in profile's name", "'45nm-fp32-mine'"])


@pytest.mark.parametrize("value, words", [("0", ["0 is out of range", ">= 1"]), ("-1", ["-1 is out of range", ">= 1"]),
                                          ("2.5", ["expected an integer", "2.5"]),
                                          ('"x"', ["expected an integer", "'x'"]),
                                          ("true", ["expected an integer", "True"])])
def test_a_bad_event_weight_reuse_is_refused_at_load(write_suite, value, words):
    refused_at_load(write_suite(suite_text(f"event_weight_reuse = {value}")), "event_weight_reuse", words)


def test_event_weight_reuse_loads_and_a_bad_one_exits_2(tmp_path, write_suite):
    assert load_suite(write_suite(suite_text("event_weight_reuse = 16"))).metric_options["energy"] == {
        "event_weight_reuse": 16}
    suite = tmp_path / "reuse.toml"
    suite.write_text(suite_text("event_weight_reuse = 0"), encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "bench.cli", "run", str(suite), "--dry-run"], capture_output=True,
                       text=True, timeout=120)
    out = r.stderr + r.stdout
    assert r.returncode == 2 and str(suite) in out and "metrics.energy.event_weight_reuse" in out
    assert "out of range" in out and "fix:" in out and "Traceback" not in out
