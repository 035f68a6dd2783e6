"""Tables (pandas, display strings) built from result records and the run's metric declarations.

Nothing here names a metric's field: the headline shows the fields declared ``headline``, the terminal
summary those declared ``summary``, the per-case tables every declared scalar field a record reported;
titles, units and formats come from the declarations (:mod:`bench.report.formats`). A metric a run did not
measure gives no column; a value a plug-in could not measure shows ``n/a`` and its ``<field>_why`` goes into
the table's notes; a column with no value at all is left out and its reasons noted.

The headline's **main T** of a model is the T it was trained at (``trained_T`` from the suite or its
checkpoint) when that T was evaluated, else the largest T evaluated. A field declared ``per_device`` (a
measurement of the machine) gets one column per device that can produce it (``device_kind``), from the
case at the main T with the largest batch size evaluated on that device.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench.contract import Field
from bench.report.declared import Declared
from bench.report.formats import NA, fixed, format_value, number
from bench.report.published import PUBLISHED_FIELD, published_for
from bench.results import device_name, metric_value

MAIN_T_RULE = ("main T = the T the model was trained at (when recorded and evaluated), else the largest T "
               "evaluated; per-device columns use the case at the main T with the largest batch size.")


# ---------------------------------------------------------------- record access


def value(record: dict[str, Any], metric: str, name: str) -> float | None:
    """A numeric field, or None where absent, unmeasured or not a finite number."""
    return number(metric_value(record, metric, name))


def why(record: dict[str, Any], metric: str, name: str) -> str | None:
    """The plug-in's reason a field is None (``<field>_why``), if it gave one."""
    return metric_value(record, metric, name + "_why")


def reported(record: dict[str, Any], metric: str, name: str) -> bool:
    """The plug-in gave this field: a value, or None with a reason."""
    values = (record.get("metrics") or {}).get(metric) or {}
    return values.get(name) is not None or name + "_why" in values


def has_metric(records: Iterable[dict[str, Any]], metric: str) -> bool:
    return any(metric in (r.get("metrics") or {}) for r in records)


def device_kind(record: dict[str, Any]) -> str:
    """The torch device type of a case: ``cuda`` for ``cuda:0``, ``cpu``."""
    return str(record.get("device") or "?").split(":")[0]


def produced_on(f: Field, record: dict[str, Any]) -> bool:
    """Whether the case's device can produce the field (its declared ``device_kind``, if any)."""
    return f.device_kind is None or f.device_kind == device_kind(record)


def scalar(f: Field, records: list[dict[str, Any]], metric: str) -> bool:
    """A field the records hold as a scalar (nested per-layer tables are not columns)."""
    return not any(isinstance(metric_value(r, metric, f.name), (list, dict)) for r in records)


# ---------------------------------------------------------------- grouping


def ok_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("status") == "ok"]


def model_label(record: dict[str, Any]) -> str:
    return record["model"]["label"]


def model_order(records: list[dict[str, Any]]) -> list[str]:
    """Model labels in the order they first appear (suite order; merged runs after one another)."""
    return list(dict.fromkeys(model_label(r) for r in records))


device_label = device_name


def device_order(records: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(device_label(r) for r in records))


@dataclass(frozen=True)
class MainT:
    T: int
    basis: str  # "trained" | "largest evaluated"


def main_T(model_records: list[dict[str, Any]]) -> MainT:
    """The model's main T (see the module docstring); ``model_records`` are its ok records."""
    evaluated = {r["T"] for r in model_records}
    trained = next((r.get("trained_T") for r in model_records if r.get("trained_T")), None)
    if trained in evaluated:
        return MainT(trained, "trained")
    return MainT(max(evaluated), "largest evaluated")


def by_model(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Ok records grouped by model label, in model order."""
    ok = ok_records(records)
    return {label: [r for r in ok if model_label(r) == label] for label in model_order(ok)}


def at_main_T(model_records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    T = main_T(model_records).T
    return [r for r in model_records if r["T"] == T]


def device_case(records: list[dict[str, Any]], device: str) -> dict[str, Any] | None:
    """The case on ``device`` with the largest batch size (records of one model at one T)."""
    on_device = [r for r in records if device_label(r) == device]
    return max(on_device, key=lambda r: r.get("batch_size") or 0) if on_device else None


def first_reporting(records: Iterable[dict[str, Any]], metric: str, name: str) -> dict[str, Any] | None:
    """The first record with a value of the field, else the first that gave a reason, else None."""
    records = list(records)
    return (next((r for r in records if metric_value(r, metric, name) is not None), None)
            or next((r for r in records if reported(r, metric, name)), None))


# ---------------------------------------------------------------- n/a reasons


@dataclass
class Reasons:
    """Why cells are n/a, per column: collected while a table is built, printed as its notes."""

    by_column: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def add(self, column: str, reason: str | None, who: str) -> None:
        who_list = self.by_column.setdefault(column, {}).setdefault(reason or "not reported", [])
        if who not in who_list:
            who_list.append(who)

    def notes(self, frame: pd.DataFrame) -> list[str]:
        """One note per column and reason; a column left out (no value at all) says so."""
        out = []
        for column, reasons in self.by_column.items():
            dropped = column not in frame.columns
            for reason, who in reasons.items():
                scope = "not available" if dropped else f"n/a for {', '.join(who)}"
                out.append(f"{column}: {scope} ({reason})")
        return out


def _drop_empty(frame: pd.DataFrame, keep: int) -> pd.DataFrame:
    """Leave out columns (after the first ``keep``) in which no row has a value."""
    empty = [c for c in frame.columns[keep:] if (frame[c] == NA).all()]
    return frame.drop(columns=empty)


def _cell(f: Field, metric: str, record: dict[str, Any] | None, column: str, who: str, reasons: Reasons) -> str:
    raw = None if record is None else metric_value(record, metric, f.name)
    if raw is None and record is not None:
        reasons.add(column, why(record, metric, f.name), who)
    return format_value(f, raw)


# ---------------------------------------------------------------- tables


def headline_columns(records: list[dict[str, Any]], declared: Declared) -> tuple[list, list]:
    """The declared headline fields of the measured metrics: (metric, field) once per model, and per device."""
    measured = {m for r in records for m in (r.get("metrics") or {})}
    headline = [(m, f) for m, f in declared.fields(measured) if f.headline and scalar(f, records, m)]
    return [(m, f) for m, f in headline if not f.per_device], [(m, f) for m, f in headline if f.per_device]


def headline_table(records: list[dict[str, Any]], declared: Declared) -> tuple[pd.DataFrame, list[str]]:
    """One row per model at its main T, and footnotes (untrained models, why a column is n/a)."""
    ok = ok_records(records)
    once, per_device = headline_columns(ok, declared)
    devices = {device_label(r): r for r in reversed(ok)}  # a representative case per device (its kind)
    reasons = Reasons()
    rows = []
    for label, recs in by_model(records).items():
        mt, at_T = main_T(recs), at_main_T(recs)
        untrained = at_T[0]["model"].get("untrained", False)
        row: dict[str, Any] = {"model": label + (" †" if untrained else ""), "main T": f"{mt.T} ({mt.basis})"}
        for m, f in once:
            row[f.column] = _cell(f, m, first_reporting(at_T, m, f.name), f.column, label, reasons)
        for device in device_order(ok):
            case = device_case(at_T, device)
            for m, f in per_device:
                if produced_on(f, devices[device]):
                    column = f"{f.column} [{device}]"
                    row[column] = _cell(f, m, case, column, label, reasons)
        rows.append(row)
    frame = _drop_empty(pd.DataFrame(rows), keep=2)
    notes = reasons.notes(frame)
    if any(r["model"].get("untrained") for r in ok):
        notes.insert(0, "† no checkpoint: untrained weights (accuracy is chance level; firing and "
                        "event counts are not representative of a trained model)")
    return frame, notes


def field_definitions(frame: pd.DataFrame, declared: Declared) -> list[str]:
    """What each metric column of a table means, from the declarations (title: description)."""
    out = []
    for _, f in declared.fields():
        if f.description and any(c == f.column or c.startswith(f.column + " [") for c in frame.columns):
            line = f"{f.column}: {f.description}"
            if line not in out:
                out.append(line)
    return out


@dataclass
class CaseTable:
    """Every case of one metric: its scalar fields as columns, constant text fields in the caption."""

    metric: str
    frame: pd.DataFrame
    constants: list[str]
    notes: list[str]


def case_table(records: list[dict[str, Any]], metric: str, declared: Declared) -> CaseTable:
    """One row per ok case that ran ``metric``, one column per declared scalar field any case reported."""
    recs = [r for r in ok_records(records) if metric in (r.get("metrics") or {})]
    fields = [f for _, f in declared.fields({metric}) if scalar(f, recs, metric)
              and any(produced_on(f, r) and reported(r, metric, f.name) for r in recs)]
    base = ("model", "T", "device", "batch")
    # A field titled like a case column (firing's "T", latency's "device") is shown under its key instead.
    titles = {f.name: f"{metric}.{f.name}" if f.column in base else f.column for f in fields}
    reasons = Reasons()
    rows = []
    for r in recs:
        who = f"{model_label(r)} T={r['T']} {device_label(r)}"
        row: dict[str, Any] = dict(zip(base, (model_label(r), r["T"], device_label(r), r.get("batch_size")),
                                       strict=True))
        for f in fields:
            title = titles[f.name]
            row[title] = _cell(f, metric, r, title, who, reasons) if produced_on(f, r) else "-"
        rows.append(row)
    frame = _drop_empty(pd.DataFrame(rows), keep=len(base))
    constants = []
    for f in fields:
        title = titles[f.name]
        if f.fmt == "text" and title in frame.columns and frame[title].nunique() == 1 and len(frame) > 1:
            constants.append(f"{title} = {frame[title].iloc[0]}")
            frame = frame.drop(columns=title)
    return CaseTable(metric, frame, constants, reasons.notes(frame))


def case_tables(records: list[dict[str, Any]], declared: Declared) -> list[CaseTable]:
    """A per-case table for every declared metric the records measured, in declaration order."""
    ok = ok_records(records)
    return [case_table(records, m, declared) for m in declared.contracts if has_metric(ok, m)]


def summary_table(records: list[dict[str, Any]], declared: Declared) -> pd.DataFrame:
    """One row per case (ok or failed) for the terminal: model, T, device, batch, status, the summary fields."""
    measured = {m for r in records for m in (r.get("metrics") or {})}
    fields = [(m, f) for m, f in declared.fields(measured) if f.summary]
    rows = []
    for r in records:
        row = {"model": model_label(r), "T": r["T"], "device": device_label(r), "batch": r.get("batch_size"),
               "status": r.get("status")}
        for m, f in fields:
            row[f.column] = (format_value(f, metric_value(r, m, f.name)) if r.get("status") == "ok"
                             and produced_on(f, r) else "")
        rows.append(row)
    return pd.DataFrame(rows)


def published_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Our top-1 beside each published number on the same model, dataset and T, with the source."""
    rows = []
    for label, recs in by_model(records).items():
        first = recs[0]
        dataset = (first.get("data") or {}).get("dataset", "")
        for pub in published_for(first["model"]["name"], dataset):
            at_T = [r for r in recs if r["T"] == pub.T]
            ours = next((v for r in at_T if (v := value(r, *PUBLISHED_FIELD)) is not None), None)
            modified = first["model"].get("kwargs") or {}
            if modified:
                status = "not comparable: modified (" + ", ".join(f"{k}={v}" for k, v in modified.items()) + ")"
            elif not at_T:
                status = f"T={pub.T} not evaluated"
            elif ours is None:
                status = "accuracy not measured"
            elif first["model"].get("untrained"):
                status = "untrained weights"
            else:
                status = "compared"
            comparable = status == "compared"
            rows.append({
                "model": label, "dataset": pub.dataset, "T": pub.T,
                "ours top-1 (%)": fixed(ours) if at_T and not modified else NA,
                "published top-1 (%)": fixed(pub.top1),
                "gap (points)": f"{ours - pub.top1:+.2f}" if comparable and ours is not None else NA,
                "status": status, "source [confidence]": pub.cite(),
            })
    return pd.DataFrame(rows)


def models_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """What each model is: registered name, family, provenance, weights, neuron, non-spiking parts."""
    rows = []
    seen: set[str] = set()
    for r in records:
        label = model_label(r)
        if label in seen:
            continue
        seen.add(label)
        model = r["model"]
        info = model.get("info") or {}
        kwargs = model.get("kwargs") or {}
        rows.append({
            "model": label, "registered name": model.get("name"),
            "kwargs": ", ".join(f"{k}={v}" for k, v in kwargs.items()) or "defaults",
            "family": info.get("family", "?"), "provenance": info.get("provenance", "?"),
            "weights": "checkpoint " + str(model["checkpoint"]).rsplit("/", 1)[-1] if model.get("checkpoint")
            else "none (untrained)",
            "not spike-driven": "; ".join(info.get("non_spiking") or []) or "-",
        })
    return pd.DataFrame(rows)


def failures_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for r in records:
        if r.get("status") == "ok":
            continue
        err = r.get("error") or {}
        rows.append({"case": r.get("case_id"), "run": r.get("run_id"), "error": err.get("type", "?"),
                     "message": str(err.get("message", "")).strip()})
    return pd.DataFrame(rows)
