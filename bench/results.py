"""Result records: one JSON object per case, appended to ``results.jsonl`` as each case finishes.

Durability: every record is written as one line, flushed and fsync'd before the next case starts,
so a run killed at any moment leaves only complete lines (a torn last line, possible only if the
process dies inside ``write``, is skipped with a warning on reading and the case reruns on resume).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

SCHEMA_VERSION = 1
RESULTS_FILE = "results.jsonl"
CSV_FILE = "results.csv"
ENV_FILE = "env.json"


def _jsonable(value: Any) -> Any:
    """Plain JSON values; NaN and infinities become None (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _jsonable(value.item())
    return value


class ResultsWriter:
    """Appends records to a JSONL file, one flushed and fsync'd line per record."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(_jsonable(record), allow_nan=False, sort_keys=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Every complete record of a results file; a torn line is skipped with a warning."""
    records = []
    path = Path(path)
    if not path.exists():
        return records
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                warnings.warn(f"{path}:{number}: incomplete record skipped", stacklevel=2)
    return records


def flatten_record(record: dict[str, Any]) -> dict[str, Any]:
    """One CSV row: case fields, then every scalar metric as ``metric.field``."""
    model = record.get("model", {})
    row: dict[str, Any] = {
        "run_id": record.get("run_id"),
        "case_id": record.get("case_id"),
        "model": model.get("label"),
        "model_name": model.get("name"),
        "family": model.get("info", {}).get("family"),
        "provenance": model.get("info", {}).get("provenance"),
        "checkpoint": model.get("checkpoint"),
        "T": record.get("T"),
        "trained_T": record.get("trained_T"),
        "device": record.get("device"),
        "device_name": record.get("device_info", {}).get("device_name"),
        "batch_size": record.get("batch_size"),
        "status": record.get("status"),
        "error": (record.get("error") or {}).get("message"),
    }
    for metric, values in (record.get("metrics") or {}).items():
        for key, value in (values or {}).items():
            if value is None or isinstance(value, (int, float, str, bool)):
                row[f"{metric}.{key}"] = value
    return row


def records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([flatten_record(r) for r in records])


def write_csv(records: list[dict[str, Any]], path: str | Path) -> None:
    """Rewrite the CSV from the records (atomic replace, so a crash never leaves half a file)."""
    path = Path(path)
    tmp = path.with_suffix(".csv.tmp")
    records_frame(records).to_csv(tmp, index=False)
    os.replace(tmp, path)


def write_json(data: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_jsonable(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
