"""Tables (pandas, display strings) built from result records and the run's metric declarations.

Nothing here names a metric's field: the headline shows the fields declared ``headline``, the terminal
summary those declared ``summary``, the per-case tables every declared scalar field a record reported;
titles, units and formats come from the declarations (:mod:`bench.report.formats`). A metric a run did not
measure gives no column; a value a plug-in could not measure shows ``n/a`` and its ``<field>_why`` goes into
the table's notes; a column with no value at all is left out and its reasons noted.

The headline is two tables, so that each fits a laptop screen and turns into cards on a phone:

- **efficiency**: one row per model at its **main T** (the T it was trained at, ``trained_T`` from the suite or
  its checkpoint, when that T was evaluated, else the largest T evaluated): the headline fields that are
  properties of the net and its input (not ``per_device``);
- **speed**: one row per model and device, from the case at the main T with the largest batch size evaluated
  on that device: the headline fields declared ``per_device`` (measurements of the machine) that the device can
  produce (``device_kind``).

Untrained nets (no checkpoint; ``model.untrained``): every field declared ``trained_only`` (a figure of merit
of trained weights: accuracy, the ANN / SNN energy ratio) shows the mark ``†`` instead of its value, with one footnote
per table: such a value of random weights would read as a result. The word ``untrained`` appears once per row (the
weights column), not in every withheld cell. Their costs (operations, estimated energy, parameters) and firing
rates are shown as measured.

Unstable measurements (:func:`unstable_cases`): a metric that declares a ``scatter`` field (the relative
interquartile range of its timed runs, e.g. latency's ``latency_rel_iqr``) has its per-device cells
flagged ⚠ in a case whose scatter exceeds the threshold (``ReportOptions.unstable_rel_iqr``), or whose
headline cost (declared ``lower`` is better) falls as T grows for the same model, device and batch size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench.contract import Field
from bench.published import PUBLISHED_FIELD, official_weights, published_for
from bench.report.declared import Declared
from bench.report.formats import JOULES_PER, NA, fixed, format_value, number, sig
from bench.results import device_name, metric_value

MAIN_T_RULE = ("main T = the T the model was trained at (when recorded and evaluated), else the largest T "
               "evaluated; the speed table uses, per device, the case at the main T with the largest batch size.")
UNTRAINED = "untrained"
UNTRAINED_MARK = "†"  # in place of a figure of merit of an untrained net; the table's footnote says why
UNSTABLE = "⚠"
UNSTABLE_REL_IQR = 0.10  # default threshold of the relative IQR above which a timed measurement is flagged
NOT_PRODUCED = "-"  # a field the case's device cannot produce (declared device_kind)


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


# ---------------------------------------------------------------- weights


def untrained(record: dict[str, Any]) -> bool:
    """No trained weights: ``model.untrained`` (older records: no checkpoint)."""
    model = record.get("model") or {}
    return bool(model.get("untrained", model.get("checkpoint") is None))


def result_of_training(f: Field) -> bool:
    """A figure of merit of trained weights (declared ``trained_only``): not shown for untrained nets."""
    return f.trained_only


def weights_text(record: dict[str, Any]) -> str:
    """What the weights are, in full: the record's ``model.weights`` when the runner wrote one."""
    model = record.get("model") or {}
    if model.get("weights"):
        return str(model["weights"])
    if untrained(record):
        return "no checkpoint"
    name = str(model.get("checkpoint") or "?").rsplit("/", 1)[-1]
    return f"checkpoint {name}" + (f" ({model['checkpoint_format']})" if model.get("checkpoint_format") else "")


def weights_short(record: dict[str, Any]) -> str:
    """untrained | official (<format>) | snnbench | checkpoint: the headline's weights column."""
    if untrained(record):
        return UNTRAINED
    fmt = (record.get("model") or {}).get("checkpoint_format")
    if official_weights(record):
        return f"official ({fmt})"
    return fmt or "checkpoint"


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


def case_who(record: dict[str, Any]) -> str:
    return f"{model_label(record)} T={record['T']} {device_label(record)} batch {record.get('batch_size')}"


# ---------------------------------------------------------------- n/a reasons and flags


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
    empty = [c for c in frame.columns[keep:] if frame[c].isin([NA, NOT_PRODUCED]).all()]
    return frame.drop(columns=empty)


def _cell(f: Field, metric: str, record: dict[str, Any] | None, column: str, who: str, reasons: Reasons) -> str:
    raw = None if record is None else metric_value(record, metric, f.name)
    if raw is None and record is not None:
        reasons.add(column, why(record, metric, f.name), who)
    return format_value(f, raw)


def untrained_note(hidden: list[str]) -> str:
    """The footnote of a table's ``†`` cells: which fields are withheld and why (the reading notes name the models
    and their weights, once for the report)."""
    return (f"{UNTRAINED_MARK} untrained (random weights): {', '.join(hidden)} not shown, since a figure of merit of "
            "random weights would read as a result (accuracy is chance level); firing rates, operation counts and "
            "estimated energy are shown as measured, not representative of a trained net.")


def untrained_weights(records: list[dict[str, Any]]) -> dict[str, list[str]]:
    """How untrained models got their weights -> the model labels sharing it, in suite order, so that the reading
    notes name each status once. A model's status: its distinct :func:`weights_text` (less the leading
    ``untrained, ``) joined with `` / `` (one BN calibration per T gives one text per T)."""
    texts: dict[str, list[str]] = {}
    for r in ok_records(records):
        if untrained(r):
            how = texts.setdefault(model_label(r), [])
            if (text := weights_text(r).removeprefix(UNTRAINED + ", ")) not in how:
                how.append(text)
    out: dict[str, list[str]] = {}
    for label, how in texts.items():
        out.setdefault(" / ".join(how), []).append(label)
    return out


def unstable_cases(records: list[dict[str, Any]], declared: Declared, threshold: float) -> dict[str, dict[str, list[str]]]:
    """case_id -> metric -> reasons its per-device measurements are unstable (see the module docstring)."""
    out: dict[str, dict[str, list[str]]] = {}
    ok = ok_records(records)
    for metric, contract in declared.contracts.items():
        scatter = [f for f in contract.fields if f.scatter]
        if not scatter or not has_metric(ok, metric):
            continue
        for r in ok:
            for f in scatter:
                v = value(r, metric, f.name)
                if v is not None and v > threshold:
                    out.setdefault(r["case_id"], {}).setdefault(metric, []).append(
                        f"{f.column} = {v:.3g} > {threshold:g}")
        costs = [f for f in contract.fields if f.per_device and f.headline and f.better == "lower"]
        series: dict[tuple, list[dict[str, Any]]] = {}
        for r in ok:
            series.setdefault((model_label(r), device_label(r), r.get("batch_size")), []).append(r)
        for recs in series.values():
            recs = sorted(recs, key=lambda r: r["T"])
            for f in costs:
                for a, b in zip(recs, recs[1:], strict=False):
                    va, vb = value(a, metric, f.name), value(b, metric, f.name)
                    if va is not None and vb is not None and vb < va:
                        reason = (f"{f.column} falls from {format_value(f, va)} at T={a['T']} to "
                                  f"{format_value(f, vb)} at T={b['T']}")
                        for r in (a, b):
                            out.setdefault(r["case_id"], {}).setdefault(metric, []).append(reason)
    return out


def unstable_note(flags: dict[str, dict[str, list[str]]], cases: list[dict[str, Any]], threshold: float) -> list[str]:
    """One note per flagged case of a table, with the rule."""
    shown = [(r, m, why) for r in cases for m, why in flags.get(r["case_id"], {}).items()]
    if not shown:
        return []
    rule = (f"{UNSTABLE} unstable measurement: the relative IQR of the timed runs is above {threshold:g}, or a time "
            "cost falls as T grows (same model, device and batch); measure again on a quiet machine")
    return [rule] + [f"{UNSTABLE} {case_who(r)} ({m}): {'; '.join(dict.fromkeys(why))}" for r, m, why in shown]


# ---------------------------------------------------------------- headline


def headline_columns(records: list[dict[str, Any]], declared: Declared) -> tuple[list, list]:
    """The declared headline fields of the measured metrics: (metric, field) once per model, and per device."""
    measured = {m for r in records for m in (r.get("metrics") or {})}
    headline = [(m, f) for m, f in declared.fields(measured) if f.headline and scalar(f, records, m)]
    return [(m, f) for m, f in headline if not f.per_device], [(m, f) for m, f in headline if f.per_device]


def energy_column(f: Field, values: list[Any]) -> tuple[str, float] | None:
    """(unit, joules per unit) shared by an energy column's values when they span under four decades (the
    smallest value at least 1 in it), else None: each cell keeps its own unit."""
    numbers = [number(v) for v in values] if f.fmt in JOULES_PER else []
    joules = [x * JOULES_PER[f.fmt] for x in numbers if x is not None and x > 0]
    if not joules or max(joules) / min(joules) >= 1e4:
        return None
    low = min(joules)
    return next(((u, s) for u, s in (("J", 1.0), ("mJ", 1e-3), ("µJ", 1e-6), ("nJ", 1e-9)) if low >= s), ("pJ", 1e-12))


def headline_table(records: list[dict[str, Any]], declared: Declared) -> tuple[pd.DataFrame, list[str]]:
    """Efficiency: one row per model at its main T with the headline fields of the net (not per device)."""
    ok = ok_records(records)
    once, _ = headline_columns(ok, declared)
    groups = by_model(records)
    sources = {label: {f.name: first_reporting(at_main_T(recs), m, f.name) for m, f in once}
               for label, recs in groups.items()}
    units = {f.name: energy_column(f, [metric_value(s[f.name], m, f.name) for s in sources.values() if s[f.name]])
             for m, f in once}
    reasons, hidden = Reasons(), []
    rows = []
    for label, recs in groups.items():
        mt, first = main_T(recs), at_main_T(recs)[0]
        row: dict[str, Any] = {"model": label, "weights": weights_short(first), "main T": f"{mt.T} ({mt.basis})"}
        for m, f in once:
            unit = units[f.name]
            column = f"{f.column} ({unit[0]})" if unit else f.column
            record = sources[label][f.name]
            if untrained(first) and result_of_training(f):
                row[column] = UNTRAINED_MARK
                hidden.append(f.column)
            elif unit and record is not None and (v := value(record, m, f.name)) is not None:
                row[column] = sig(v * JOULES_PER[f.fmt] / unit[1], 3)
            else:
                row[column] = _cell(f, m, record, column, label, reasons)
        rows.append(row)
    frame = _drop_empty(pd.DataFrame(rows), keep=3)
    notes = reasons.notes(frame)
    if any(untrained(r) for r in ok):
        notes.insert(0, untrained_note(list(dict.fromkeys(hidden))))
    return frame, notes


def speed_table(records: list[dict[str, Any]], declared: Declared,
                threshold: float = UNSTABLE_REL_IQR) -> tuple[pd.DataFrame, list[str]]:
    """Speed: one row per model and device (main T, largest batch) with the per-device headline fields."""
    ok = ok_records(records)
    _, per_device = headline_columns(ok, declared)
    if not per_device:
        return pd.DataFrame(), []
    flags = unstable_cases(ok, declared, threshold)
    reasons = Reasons()
    rows, cases = [], []
    for label, recs in by_model(records).items():
        at_T = at_main_T(recs)
        for device in device_order(at_T):
            case = device_case(at_T, device)
            assert case is not None
            cases.append(case)
            row: dict[str, Any] = {"model": label, "device": device, "T": case["T"], "batch": case.get("batch_size")}
            for m, f in per_device:
                if not produced_on(f, case):
                    row[f.column] = NOT_PRODUCED
                    continue
                text = _cell(f, m, case, f.column, f"{label} on {device}", reasons)
                row[f.column] = f"{text} {UNSTABLE}" if m in flags.get(case["case_id"], {}) and text != NA else text
            rows.append(row)
    frame = _drop_empty(pd.DataFrame(rows), keep=4)
    notes = reasons.notes(frame) + unstable_note(flags, cases, threshold)
    if any(NOT_PRODUCED in set(frame[c]) for c in frame.columns[4:]):
        notes.append(f"{NOT_PRODUCED}: the device cannot produce the field (e.g. a GPU energy counter on a CPU)")
    return frame, notes


def field_definitions(frame: pd.DataFrame, declared: Declared, skip: int = 0) -> list[str]:
    """What each metric column of a table (after its first ``skip`` columns) means, from the declarations."""
    out = []
    columns = list(frame.columns)[skip:]
    for _, f in declared.fields():
        if f.description and any(c == f.column or c.startswith(f.column + " (") for c in columns):
            line = f"{f.column}: {f.description}"
            if line not in out:
                out.append(line)
    return out


# ---------------------------------------------------------------- every case


@dataclass
class CaseTable:
    """Every case of one metric: its scalar fields as columns, constant text fields in the caption."""

    metric: str
    frame: pd.DataFrame
    constants: list[str]
    notes: list[str]


def case_table(records: list[dict[str, Any]], metric: str, declared: Declared,
               flags: dict[str, dict[str, list[str]]] | None = None, threshold: float = 0.0) -> CaseTable:
    """One row per ok case that ran ``metric``, one column per declared scalar field any case reported;
    figures of merit of untrained nets show ``†``, unstable measurements are flagged."""
    recs = [r for r in ok_records(records) if metric in (r.get("metrics") or {})]
    fields = [f for _, f in declared.fields({metric}) if scalar(f, recs, metric)
              and any(produced_on(f, r) and reported(r, metric, f.name) for r in recs)]
    base = ("model", "T", "device", "batch")
    # A field titled like a case column (firing's "T", latency's "device") is shown under its key instead.
    titles = {f.name: f"{metric}.{f.name}" if f.column in base else f.column for f in fields}
    flags = flags or {}
    reasons, hidden = Reasons(), []
    rows = []
    for r in recs:
        who = f"{model_label(r)} T={r['T']} {device_label(r)}"
        row: dict[str, Any] = dict(zip(base, (model_label(r), r["T"], device_label(r), r.get("batch_size")),
                                       strict=True))
        unstable = metric in flags.get(r["case_id"], {})
        for f in fields:
            title = titles[f.name]
            if not produced_on(f, r):
                row[title] = NOT_PRODUCED
            elif untrained(r) and result_of_training(f):
                row[title] = UNTRAINED_MARK
                hidden.append(title)
            else:
                text = _cell(f, metric, r, title, who, reasons)
                row[title] = f"{text} {UNSTABLE}" if unstable and f.per_device and text != NA else text
        rows.append(row)
    frame = _drop_empty(pd.DataFrame(rows), keep=len(base))
    constants = []
    for f in fields:
        title = titles[f.name]
        if f.fmt == "text" and title in frame.columns and frame[title].nunique() == 1 and len(frame) > 1:
            constants.append(f"{title} = {frame[title].iloc[0]}")
            frame = frame.drop(columns=title)
    notes = reasons.notes(frame) + unstable_note(flags, [r for r in recs if metric in flags.get(r["case_id"], {})],
                                                 threshold)
    if hidden:
        notes.insert(0, untrained_note(list(dict.fromkeys(hidden))))
    return CaseTable(metric, frame, constants, notes)


def case_tables(records: list[dict[str, Any]], declared: Declared,
                threshold: float = UNSTABLE_REL_IQR) -> list[CaseTable]:
    """A per-case table for every declared metric the records measured, in declaration order."""
    ok = ok_records(records)
    flags = unstable_cases(ok, declared, threshold)
    return [case_table(records, m, declared, flags, threshold) for m in declared.contracts if has_metric(ok, m)]


def summary_table(records: list[dict[str, Any]], declared: Declared) -> pd.DataFrame:
    """One row per case (ok or failed) for the terminal: model, T, device, batch, status, the summary fields."""
    measured = {m for r in records for m in (r.get("metrics") or {})}
    fields = [(m, f) for m, f in declared.fields(measured) if f.summary]
    rows = []
    for r in records:
        row = {"model": model_label(r), "T": r["T"], "device": str(r.get("device")), "batch": r.get("batch_size"),
               "status": r.get("status")}
        for m, f in fields:
            if r.get("status") != "ok" or not produced_on(f, r):
                row[f.column] = ""
            elif untrained(r) and result_of_training(f):
                row[f.column] = UNTRAINED
            else:
                row[f.column] = format_value(f, metric_value(r, m, f.name))
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- published numbers


def _published_status(first: dict[str, Any], pub: Any, at_T: list[dict[str, Any]],
                      ours: float | None) -> tuple[str, bool, bool]:
    """(why a published number is or is not compared with ours, show our top-1, show the gap): first rule wins."""
    modified = first["model"].get("kwargs") or {}
    if pub.reference:
        return "reference: no gap (" + (pub.architecture or "another net") + ")", False, False
    if modified:
        return "not comparable: modified (" + ", ".join(f"{k}={v}" for k, v in modified.items()) + ")", False, False
    if not at_T:
        return f"T={pub.T} not evaluated", False, False
    if untrained(first):
        return UNTRAINED, False, False
    if ours is None:
        return "accuracy not measured", False, False
    if official_weights(first):
        return "reproduction (official weights)", True, True
    if pub.not_comparable:
        return "not comparable: " + pub.not_comparable, True, False
    return "compared (weights trained here, not the authors')", True, True


def published_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Our top-1 beside each published number for the same model (or a reference) and dataset."""
    rows = []
    for label, model_recs in by_model(records).items():
        datasets = list(dict.fromkeys((r.get("data") or {}).get("dataset", "") for r in model_recs))
        for dataset in datasets:  # merged runs may evaluate one label on several datasets
            recs = [r for r in model_recs if (r.get("data") or {}).get("dataset", "") == dataset]
            rows += _published_rows(label, recs, dataset)
    return pd.DataFrame(rows)


def _published_rows(label: str, recs: list[dict[str, Any]], dataset: str) -> list[dict[str, Any]]:
    """The published-number rows of one model on one dataset."""
    rows = []
    first = recs[0]
    for pub in published_for(first["model"]["name"], dataset):
        at_T = [r for r in recs if r["T"] == pub.T]
        ours = next((v for r in at_T if (v := value(r, *PUBLISHED_FIELD)) is not None), None)
        status, show, gap = _published_status(first, pub, at_T, ours)
        rows.append({
            "model": label, "dataset": pub.dataset, "T": "?" if pub.T is None else pub.T,
            "ours top-1 (%)": fixed(ours) if show else NA,
            "published top-1 (%)": fixed(pub.top1),
            "gap (points)": f"{ours - pub.top1:+.2f}" if gap and ours is not None else NA,
            "status": status, "conditions": pub.conditions(), "source [confidence]": pub.cite(),
        })
    return rows


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
            "weights": weights_text(r),
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
