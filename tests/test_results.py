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
