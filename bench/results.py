"""Result records: one JSON object per case, appended to ``results.jsonl`` as each case finishes.

Durability: every record is written as one line, flushed and fsync'd before the next case starts,
so a run killed at any moment leaves only complete lines (a torn last line, possible only if the
process dies inside ``write``, is skipped with a warning on reading and the case reruns on resume).

Reading: :func:`load_run` is the one reader of a run folder (records, ``env.json``, ``run.json`` with the
metric declarations), shared by the report, ``bench compare``, ``bench baseline`` and ``bench history``.
The CSV's columns follow the declarations stored in ``run.json``. This module never imports torch.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.contract import MetricContract

SCHEMA_VERSION = 1
RESULTS_FILE = "results.jsonl"
CSV_FILE = "results.csv"
ENV_FILE = "env.json"
RUN_FILE = "run.json"


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


def csv_columns(rows: list[dict[str, Any]], contracts: Mapping[str, MetricContract] | None) -> list[str]:
    """Column order: case fields, then each declared metric's fields in declaration order (each
    ``<field>_why`` right after its field), then anything written but not declared, in record order."""
    present: dict[str, None] = {}
    for row in rows:
        present.update(dict.fromkeys(row))
    declared = [f"{m}.{name}" for m, c in (contracts or {}).items() for f in c.fields
                for name in (f.name, f.name + "_why")]
    case = [c for c in present if "." not in c]
    ordered = [c for c in declared if c in present]
    placed = set(case) | set(ordered)
    return case + ordered + [c for c in present if c not in placed]


def records_frame(records: list[dict[str, Any]],
                  contracts: Mapping[str, MetricContract] | None = None) -> pd.DataFrame:
    rows = [flatten_record(r) for r in records]
    return pd.DataFrame(rows, columns=csv_columns(rows, contracts))


def write_csv(records: list[dict[str, Any]], path: str | Path,
              contracts: Mapping[str, MetricContract] | None = None) -> None:
    """Rewrite the CSV from the records (atomic replace, so a crash never leaves half a file). Columns follow
    ``contracts``, by default the declarations in the ``run.json`` beside the CSV."""
    path = Path(path)
    if contracts is None:
        contracts = read_contracts(path.parent / RUN_FILE, _read_json(path.parent / RUN_FILE))
    tmp = path.with_suffix(".csv.tmp")
    records_frame(records, contracts).to_csv(tmp, index=False)
    os.replace(tmp, path)


def write_json(data: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_jsonable(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# ---------------------------------------------------------------- reading a run folder


class RunReadError(FileNotFoundError):
    """A run folder lacks a file a reader needs, or holds one that is not what ``bench run`` writes."""


@dataclass
class RunData:
    """One run folder as read back: its records, ``env.json`` and ``run.json`` (empty where absent), and the
    metric declarations stored in run.json (None for a run made before they were stored)."""

    path: Path
    records: list[dict[str, Any]]
    env: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    contracts: dict[str, MetricContract] | None = None

    @property
    def run_id(self) -> str:
        return self.run.get("run_id") or self.path.name


def _read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunReadError(f"{path}: not readable as JSON ({exc}); bench run writes it, restore or delete it") from exc
    if not isinstance(data, dict):
        raise RunReadError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_contracts(path: Path, run: Mapping[str, Any]) -> dict[str, MetricContract] | None:
    """``run.json["metric_contracts"]`` (read from ``path``) as declarations, in stored order; None when the
    run has none; RunReadError naming the metric when one is malformed."""
    stored = run.get("metric_contracts")
    if stored is None:
        return None
    if not isinstance(stored, dict):
        raise RunReadError(f"{path}: metric_contracts must be an object, got {type(stored).__name__}")
    out = {}
    for name, d in stored.items():
        try:
            out[name] = MetricContract.from_dict(d)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RunReadError(f"{path}: metric_contracts.{name} is not a metric declaration ({exc}); "
                               "bench run writes it, restore the file or run the suite again") from exc
    return out


def load_run(path: str | Path) -> RunData:
    """A run folder's records and metadata; raises RunReadError naming what is missing or unreadable."""
    path = Path(path)
    if not (path / RESULTS_FILE).exists():
        raise RunReadError(f"{path} has no {RESULTS_FILE}: not a run folder (bench run writes one)")
    run = _read_json(path / RUN_FILE)
    return RunData(path=path, records=read_records(path / RESULTS_FILE), env=_read_json(path / ENV_FILE),
                   run=run, contracts=read_contracts(path / RUN_FILE, run))


# ---------------------------------------------------------------- record fields


def metric_value(record: Mapping[str, Any], metric: str, name: str) -> Any:
    """``record["metrics"][metric][name]``, or None where any level is absent."""
    return ((record.get("metrics") or {}).get(metric) or {}).get(name)


def case_key(record: Mapping[str, Any]) -> str:
    """The case's identity across runs: model label, T, torch device, batch size."""
    return f"{record['model']['label']}|T={record['T']}|{record.get('device')}|bs={record.get('batch_size')}"


def device_name(record: Mapping[str, Any]) -> str:
    """The device model a case ran on ('NVIDIA H100 80GB HBM3', 'AMD EPYC 7763'), else the torch device."""
    return (record.get("device_info") or {}).get("device_name") or str(record.get("device"))


def numeric_fields(record: Mapping[str, Any]) -> dict[str, float]:
    """Every finite numeric scalar ``<metric>.<field>`` of a record (booleans excluded)."""
    out = {}
    for metric, values in (record.get("metrics") or {}).items():
        for key, v in (values or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                out[f"{metric}.{key}"] = v
    return out
