"""The declared metric contract: option validation at suite load, field declarations, run.json storage."""

from __future__ import annotations

import json

import pytest

from bench.contract import Field, MetricContract, Option, OptionError, Tolerance
from bench.metrics import available_metrics, get_metric
from bench.plan import plan_cases
from bench.runner import run_suite
from bench.suite import SuiteError, load_suite

SUITE = """
[suite]
name = "contract"
time_steps = [2]
devices = ["cpu"]
metrics = [{metrics}]

[data]
dataset = "digits"
max_samples = 8
batch_size = 8

{tables}

[[models]]
name = "toy_models:tiny_snn"
label = "tiny"
"""


def suite_text(metrics: list[str], tables: str = "") -> str:
    return SUITE.format(metrics=", ".join(f'"{m}"' for m in metrics), tables=tables)


def test_option_checks_type_range_choices_and_unknown_keys() -> None:
    contract = MetricContract("m", "d", options=(
        Option("runs", int, 3, "how many", minimum=1), Option("rate", float, 0.5, "a rate", maximum=1.0),
        Option("mode", str, "a", "mode", choices=("a", "b")), Option("names", list, [], "names", item_type=str)))
    assert contract.validate_options({"runs": 2, "rate": 1, "mode": "b", "names": ["x"]}) == {
        "runs": 2, "rate": 1.0, "mode": "b", "names": ["x"]}
    for table, key in (({"runs": 0}, "runs"), ({"runs": True}, "runs"), ({"runs": 1.5}, "runs"),
                       ({"rate": 2.0}, "rate"), ({"rate": float("nan")}, "rate"), ({"mode": "c"}, "mode"),
                       ({"names": [1]}, "names[0]"), ({"rnus": 2}, "rnus")):
        with pytest.raises(OptionError) as err:
            contract.validate_options(table)
        assert err.value.key == key
    with pytest.raises(OptionError, match="did you mean 'runs'"):
        contract.validate_options({"rnus": 2})


@pytest.mark.parametrize(("tables", "field", "problem"), [
    ("[metrics.latency]\nmin_runs = 0", "metrics.latency.min_runs", "out of range"),
    ("[metrics.latency]\nmin_rnus = 5", "metrics.latency.min_rnus", "unknown option"),
    ("[metrics.latency]\ncompile = 'yes'", "metrics.latency.compile", "expected true or false"),
    ("[metrics.energy]\nprofile = 'nope'", "metrics.energy.profile", "unknown energy profile"),
    ("[metrics.energy]\nprofiles = { chip = { mac_pj = 1.0 } }", "metrics.energy.profiles", "lacks"),
    ("[metrics.measured_energy]\ntracking_mode = 'everything'", "metrics.measured_energy.tracking_mode",
     "not an option"),
])
def test_bad_metric_options_stop_the_suite_at_load(write_suite, tables: str, field: str, problem: str) -> None:
    metrics = ["latency", "energy", "ops", "measured_energy"]
    with pytest.raises(SuiteError) as err:
        load_suite(write_suite(suite_text(metrics, tables)))
    assert err.value.field == field
    assert problem in err.value.problem


def test_user_energy_profile_keyed_by_name_loads(write_suite) -> None:
    """The README's form: profiles = { mychip = { mac_pj, ac_pj, source } } (the key is the name)."""
    tables = ('[metrics.energy]\nprofile = "mychip"\n'
              'profiles = { mychip = { mac_pj = 1.0, ac_pj = 0.1, source = "datasheet X, table 3" } }')
    suite = load_suite(write_suite(suite_text(["ops", "energy"], tables)))
    assert suite.metric_options["energy"]["profile"] == "mychip"


def test_user_hardware_profile_in_the_readme_form_loads(write_suite) -> None:
    """The README's form: hardware_profiles = { chip = { kind, ..., reference, source } }, chosen as primary."""
    tables = ('[metrics.energy]\nhw_primary = "chip"\nhardware_profiles = { chip = { kind = "neuromorphic", '
              'sop_pj = 5.0, neuron_update_pj = 10.0, spike_pj = 1.0, reference = "45nm-sram", source = "datasheet Y" } }')
    suite = load_suite(write_suite(suite_text(["ops", "energy"], tables)))
    assert suite.metric_options["energy"]["hardware_profiles"]["chip"]["sop_pj"] == 5.0


def test_every_metric_declares_fields_with_known_formats() -> None:
    for name in available_metrics():
        contract = get_metric(name).contract
        assert contract.fields, name
        assert any(f.headline for f in contract.fields) or name == "memory", name
        for f in contract.fields:
            assert f.title and f.fmt


def test_field_round_trips_through_json() -> None:
    f = Field("x", "X", "ms", "sig", "lower", "d", headline=True, per_device=True, device_kind="cuda",
              tolerance=Tolerance(rel=0.5, better="lower", same_device=True))
    assert Field.from_dict(json.loads(json.dumps(f.to_dict()))) == f


@pytest.mark.slow
def test_real_records_hold_only_declared_fields_and_run_json_stores_contracts(write_suite, tmp_path) -> None:
    """Every scalar a metric writes is declared (or is the reason ``<field>_why`` of one); run.json holds the
    declarations and conventions the report reads."""
    tables = ("[metrics.latency]\nmin_runs = 2\nmin_time_s = 0.0\n"
              "[metrics.measured_energy]\nmin_window_s = 0.01\nidle_s = 0.0\nmin_batches = 1")
    suite = load_suite(write_suite(suite_text(available_metrics(), tables)))
    outcome = run_suite(plan_cases(suite, tmp_path / "run"), show_progress=False)
    (record,) = outcome.records
    assert record["status"] == "ok", record["error"]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert set(run["metric_contracts"]) == set(available_metrics())
    assert run["conventions"]["id"]
    for metric, values in record["metrics"].items():
        declared = {f["name"] for f in run["metric_contracts"][metric]["fields"]}
        for key, value in values.items():
            if isinstance(value, (list, dict)):
                continue  # nested tables (per layer) are not columns
            base = key[:-len("_why")] if key.endswith("_why") else key
            assert base in declared, f"{metric}.{key} is written but not declared"
