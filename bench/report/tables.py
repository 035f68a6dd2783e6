"""Tables (pandas) built from records: the summary the reports show."""

from __future__ import annotations

from typing import Any

import pandas as pd

# (column title, metric, field, format)
SUMMARY_COLUMNS: list[tuple[str, str, str, str]] = [
    ("top-1 %", "accuracy", "top1", "{:.2f}"),
    ("top-5 %", "accuracy", "top5", "{:.2f}"),
    ("params (M)", "params", "params_millions", "{:.3f}"),
    ("latency p50 (ms)", "latency", "latency_p50_ms", "{:.2f}"),
    ("throughput (samples/s)", "latency", "throughput_sps", "{:.1f}"),
]


def metric_value(record: dict[str, Any], metric: str, key: str) -> Any:
    return ((record.get("metrics") or {}).get(metric) or {}).get(key)


def summary_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per case: model, T, device, batch size, status and the headline metrics."""
    present = {m for r in records for m in (r.get("metrics") or {})}
    rows = []
    for r in records:
        row = {
            "model": r["model"]["label"],
            "T": r["T"],
            "device": r.get("device_info", {}).get("device_name") or r["device"],
            "batch": r["batch_size"],
            "status": r["status"],
        }
        for title, metric, key, fmt in SUMMARY_COLUMNS:
            if metric in present:
                value = metric_value(r, metric, key)
                row[title] = "n/a" if value is None else fmt.format(value)
        rows.append(row)
    return pd.DataFrame(rows)
