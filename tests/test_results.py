"""The results file: one complete JSON line per record, torn lines skipped, no NaN in JSON."""

from __future__ import annotations

import json

import pytest

from bench.results import ResultsWriter, flatten_record, read_records


def rec(case_id: str, **fields) -> dict:
    """The smallest record read_records accepts: the identifying fields every record has."""
    return {"case_id": case_id, "config_key": f"k-{case_id}", "status": "ok", "T": 4, "model": {"label": "m"}} | fields


def test_append_writes_one_line_per_record(tmp_path):
    writer = ResultsWriter(tmp_path / "r.jsonl")
    writer.append(rec("a", metrics={"m": {"x": 1.5}}))
    writer.append(rec("b", metrics={"m": {"x": float("nan")}}))
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[1])["metrics"]["m"]["x"] is None, "NaN is not JSON: stored as null"


def test_torn_last_line_is_skipped_with_a_warning(tmp_path):
    path = tmp_path / "r.jsonl"
    ResultsWriter(path).append(rec("a"))
    with open(path, "a") as f:
        f.write('{"case_id": "b", "metr')
    with pytest.warns(UserWarning, match="incomplete record"):
        records = read_records(path)
    assert [r["case_id"] for r in records] == ["a"]


def test_flatten_keeps_scalars_and_drops_tables():
    row = flatten_record({"case_id": "a", "model": {"label": "m"}, "T": 4,
                          "metrics": {"ops": {"acs": 10, "layers": [{"name": "conv"}]}}})
    assert row["ops.acs"] == 10 and "ops.layers" not in row and row["T"] == 4


def test_csv_columns_follow_the_declarations(tmp_path):
    """Case fields, then each metric's declared fields in declaration order (reasons beside them), then
    anything written but not declared."""
    from bench.contract import Field, MetricContract
    from bench.results import write_csv

    contracts = {"ops": MetricContract("ops", "d", fields=(Field("macs", "MACs"), Field("acs", "ACs"))),
                 "acc": MetricContract("acc", "d", fields=(Field("top1", "top-1"),))}
    record = {"case_id": "a", "model": {"label": "m"}, "T": 1,
              "metrics": {"acc": {"top1": None, "top1_why": "no labels", "extra": 3},
                          "ops": {"acs": 2, "macs": 5, "layers": [{"name": "conv"}]}}}
    write_csv([record], tmp_path / "r.csv", contracts)
    header = (tmp_path / "r.csv").read_text().splitlines()[0].split(",")
    assert header[header.index("error") + 1:] == ["ops.macs", "ops.acs", "acc.top1", "acc.top1_why", "acc.extra"]
    # Without explicit declarations, those of the run.json beside the CSV are used.
    (tmp_path / "run.json").write_text(json.dumps({"metric_contracts": {m: c.to_dict() for m, c in contracts.items()}}))
    write_csv([record], tmp_path / "results.csv")
    assert (tmp_path / "results.csv").read_text().splitlines()[0].split(",") == header


def test_load_run_names_what_is_wrong(tmp_path):
    from bench.results import RunFileError, RunReadError, load_run

    with pytest.raises(RunReadError, match="has no results.jsonl"):
        load_run(tmp_path)
    ResultsWriter(tmp_path / "results.jsonl").append(
        {"case_id": "a", "config_key": "k", "status": "ok", "T": 1, "model": {"label": "m"}})
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(RunFileError, match="run.json is not valid JSON"):
        load_run(tmp_path)
    (tmp_path / "run.json").write_text('{"run_id": "r", "metric_contracts": {"ops": {"fields": []}}}')
    with pytest.raises(RunFileError, match="metric_contracts.ops is not a metric declaration"):
        load_run(tmp_path)
    (tmp_path / "run.json").write_text('{"run_id": "r"}')
    run = load_run(tmp_path)
    assert run.run_id == "r" and run.contracts is None and run.env == {}
