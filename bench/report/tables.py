"""Tables (pandas, display strings) built from result records alone.

Field names are read from the metric plug-ins' records (``metrics[<plug-in>][<field>]``); a metric a
run did not measure gives no column, a value a plug-in could not measure shows ``n/a``. Estimates
(energy from op counts) and measurements (hardware counters) never share a column.

The headline's **main T** of a model is the T it was trained at (``trained_T`` from the suite or
its checkpoint) when that T was evaluated, else the largest T evaluated. Its per-device columns
(latency, throughput, measured energy) come from the case at the main T with the largest batch size
evaluated on that device.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from bench.report.published import published_for

MAIN_T_RULE = ("main T = the T the model was trained at (when recorded and evaluated), else the largest T "
               "evaluated; per-device columns use the case at the main T with the largest batch size.")

# Fields read from the plug-ins' records: (metric, field).
TOP1 = ("accuracy", "top1")
TOP5 = ("accuracy", "top5")
PARAMS = ("params", "params")
FIRING_MEAN = ("firing", "mean_rate")
ACS = ("ops", "acs")
MACS = ("ops", "macs")
SOPS = ("ops", "sops")
DENSE_MACS = ("ops", "dense_macs")
ENERGY_MJ = ("energy", "energy_mj")  # the energy plug-in reports millijoules per sample
ANN_ENERGY_MJ = ("energy", "ann_energy_mj")
ANN_OVER_SNN = ("energy", "ann_over_snn")
ENERGY_PROFILE = ("energy", "profile")
LAT_P50 = ("latency", "latency_p50_ms")
LAT_P90 = ("latency", "latency_p90_ms")
LAT_P99 = ("latency", "latency_p99_ms")
THROUGHPUT = ("latency", "throughput_sps")
MEM_GPU = ("memory", "gpu_peak_allocated_mib")
MEM_CPU = ("memory", "cpu_peak_rss_growth_mib")
# Hardware counters only (never codecarbon's estimates): net of idle power, per sample.
MEASURED = {"cuda": ("measured_energy", "gpu_energy_net_j_per_sample"),
            "cpu": ("measured_energy", "cpu_energy_net_j_per_sample")}

NA = "n/a"


# ---------------------------------------------------------------- record access and formatting


def metric_value(record: dict[str, Any], metric: str, key: str) -> Any:
    return ((record.get("metrics") or {}).get(metric) or {}).get(key)


def value(record: dict[str, Any], field: tuple[str, str]) -> float | None:
    """A numeric field, or None where absent, unmeasured or not a finite number."""
    v = metric_value(record, *field)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def why(record: dict[str, Any], field: tuple[str, str]) -> str | None:
    """The plug-in's reason a field is None (``<field>_why``), if it gave one."""
    return metric_value(record, field[0], field[1] + "_why")


def has_metric(records: Iterable[dict[str, Any]], metric: str) -> bool:
    return any(metric in (r.get("metrics") or {}) for r in records)


def si(x: float | None, digits: int = 3) -> str:
    """1234567 -> '1.23 M' (counts: k, M, G, T)."""
    if x is None:
        return NA
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.{digits}g} {prefix}"
    return f"{x:.{digits}g}"


def fixed(x: float | None, decimals: int = 2) -> str:
    return NA if x is None else f"{x:.{decimals}f}"


def sig(x: float | None, digits: int = 4) -> str:
    """Significant digits without exponents: 512.0 -> '512', 0.01234 -> '0.01234', 12500.0 -> '12500'."""
    if x is None:
        return NA
    return f"{x:.0f}" if abs(x) >= 10 ** (digits - 1) else f"{x:.{digits}g}"


def energy_text(joules: float | None) -> str:
    """Joules in the unit that keeps 3 significant digits readable (pJ .. J)."""
    if joules is None:
        return NA
    for factor, unit in ((1, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ")):
        if abs(joules) >= factor:
            return f"{joules / factor:.3g} {unit}"
    return f"{joules / 1e-12:.3g} pJ"


def millijoules_to_joules(mj: float | None) -> float | None:
    return None if mj is None else mj * 1e-3


def energy_text_mj(mj: float | None) -> str:
    return energy_text(millijoules_to_joules(mj))


# ---------------------------------------------------------------- grouping


def ok_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("status") == "ok"]


def model_label(record: dict[str, Any]) -> str:
    return record["model"]["label"]


def model_order(records: list[dict[str, Any]]) -> list[str]:
    """Model labels in the order they first appear (suite order; merged runs after one another)."""
    seen: dict[str, None] = {}
    for r in records:
        seen.setdefault(model_label(r), None)
    return list(seen)


def device_label(record: dict[str, Any]) -> str:
    """The device model a case ran on ('NVIDIA H100 80GB HBM3', 'AMD EPYC 7763'), else the torch device."""
    return (record.get("device_info") or {}).get("device_name") or record.get("device") or "?"


def device_order(records: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for r in records:
        seen.setdefault(device_label(r), None)
    return list(seen)


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


def first_value(records: Iterable[dict[str, Any]], field: tuple[str, str]) -> float | None:
    return next((v for v in (value(r, field) for r in records) if v is not None), None)


def device_case(records: list[dict[str, Any]], device: str) -> dict[str, Any] | None:
    """The case on ``device`` with the largest batch size (records of one model at one T)."""
    on_device = [r for r in records if device_label(r) == device]
    return max(on_device, key=lambda r: r.get("batch_size") or 0) if on_device else None


def measured_field(record: dict[str, Any]) -> tuple[str, str]:
    return MEASURED["cuda" if str(record.get("device", "")).startswith("cuda") else "cpu"]


# ---------------------------------------------------------------- tables


def headline_table(records: list[dict[str, Any]]) -> tuple[pd.DataFrame, list[str]]:
    """One row per model at its main T, and footnotes (why a column is n/a, energy profile)."""
    groups = by_model(records)
    ok = ok_records(records)
    devices = device_order(ok)
    notes: list[str] = []
    rows = []
    for label, recs in groups.items():
        mt = main_T(recs)
        at_T = [r for r in recs if r["T"] == mt.T]
        untrained = at_T[0]["model"].get("untrained", False)
        row: dict[str, Any] = {"model": label + (" †" if untrained else ""), "main T": f"{mt.T} ({mt.basis})"}
        if has_metric(ok, "accuracy"):
            row["top-1 (%)"] = fixed(first_value(at_T, TOP1))
        if has_metric(ok, "firing"):
            rate = first_value(at_T, FIRING_MEAN)
            row["mean firing rate (%)"] = fixed(None if rate is None else 100 * rate)
        if has_metric(ok, "ops"):
            row["ACs / sample"] = si(first_value(at_T, ACS))
            row["MACs / sample"] = si(first_value(at_T, MACS))
            row["SOPs / sample"] = si(first_value(at_T, SOPS))
        if has_metric(ok, "energy"):
            row["estimated energy / sample"] = energy_text_mj(first_value(at_T, ENERGY_MJ))
            row["ANN-equivalent energy / sample"] = energy_text_mj(first_value(at_T, ANN_ENERGY_MJ))
            row["ANN / SNN energy"] = fixed(first_value(at_T, ANN_OVER_SNN), 2)
        for device in devices:
            case = device_case(at_T, device)
            if has_metric(ok, "measured_energy"):
                j = None if case is None else value(case, measured_field(case))
                if j is None and case is not None and "measured_energy" in case["metrics"]:
                    reason = why(case, measured_field(case))
                    note = f"measured energy on {device}: not available ({reason})"
                    if reason and note not in notes:
                        notes.append(note)
                row[f"measured energy / sample [{device}]"] = energy_text(j)
            if has_metric(ok, "latency"):
                row[f"latency p50 (ms) [{device}]"] = sig(None if case is None else value(case, LAT_P50))
                row[f"throughput (samples/s) [{device}]"] = sig(None if case is None else value(case, THROUGHPUT))
        if has_metric(ok, "params"):
            p = first_value(recs, PARAMS)
            row["params (M)"] = fixed(None if p is None else p / 1e6, 3)
        rows.append(row)
    frame = pd.DataFrame(rows)
    # A measured-energy column with no measurement at all only repeats n/a: its reason is in the notes.
    empty = [c for c in frame.columns if c.startswith("measured energy") and (frame[c] == NA).all()]
    frame = frame.drop(columns=empty)
    profiles = sorted({str(metric_value(r, *ENERGY_PROFILE)) for r in ok if metric_value(r, *ENERGY_PROFILE)})
    if profiles:
        notes.insert(0, f"estimated energy: computed from op counts with profile {', '.join(profiles)} "
                        "(see Conventions); an estimate, not a measurement")
    if any(r["model"].get("untrained") for r in ok):
        notes.insert(0, "† no checkpoint: untrained weights (accuracy is chance level; firing and "
                        "event counts are not representative of a trained model)")
    return frame, notes


def cases_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Every case that ran, one row each, with every headline metric the run measured."""
    ok = ok_records(records)
    columns: list[tuple[str, tuple[str, str], Any]] = [
        ("top-1 (%)", TOP1, fixed), ("top-5 (%)", TOP5, fixed),
        ("firing (%)", FIRING_MEAN, lambda v: fixed(None if v is None else 100 * v)),
        ("ACs", ACS, si), ("MACs", MACS, si), ("SOPs", SOPS, si), ("dense MACs", DENSE_MACS, si),
        ("est. energy", ENERGY_MJ, energy_text_mj), ("ANN energy", ANN_ENERGY_MJ, energy_text_mj),
        ("ANN / SNN", ANN_OVER_SNN, lambda v: fixed(v, 2)),
        ("p50 (ms)", LAT_P50, sig), ("p90 (ms)", LAT_P90, sig), ("p99 (ms)", LAT_P99, sig),
        ("samples/s", THROUGHPUT, sig),
        ("GPU peak (MiB)", MEM_GPU, lambda v: fixed(v, 1)), ("CPU RSS growth (MiB)", MEM_CPU, lambda v: fixed(v, 1)),
    ]
    present = [(title, field, fmt) for title, field, fmt in columns if any(reported(r, field) for r in ok)]
    rows = []
    for r in ok:
        row = {"model": model_label(r), "T": r["T"], "device": device_label(r), "batch": r.get("batch_size")}
        for title, field, fmt in present:
            row[title] = fmt(value(r, field))
        if has_metric(ok, "params"):
            p = value(r, PARAMS)
            row["params (M)"] = fixed(None if p is None else p / 1e6, 3)
        rows.append(row)
    return pd.DataFrame(rows)


def reported(record: dict[str, Any], field: tuple[str, str]) -> bool:
    """The plug-in gave this field: a value, or None with a reason."""
    values = (record.get("metrics") or {}).get(field[0]) or {}
    return values.get(field[1]) is not None or field[1] + "_why" in values


def published_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Our top-1 beside each published number on the same model, dataset and T, with the source."""
    rows = []
    for label, recs in by_model(records).items():
        first = recs[0]
        dataset = (first.get("data") or {}).get("dataset", "")
        for pub in published_for(first["model"]["name"], dataset):
            at_T = [r for r in recs if r["T"] == pub.T]
            ours = first_value(at_T, TOP1)
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


SUMMARY_COLUMNS = ("top-1 (%)", "firing (%)", "SOPs", "est. energy", "p50 (ms)", "samples/s", "params (M)")


def summary_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per case (ok or failed) for the terminal: model, T, device, batch, status, key metrics."""
    ok_rows = iter(cases_table(records).to_dict("records"))
    rows = []
    for r in records:
        row = {"model": model_label(r), "T": r["T"], "device": device_label(r), "batch": r.get("batch_size"),
               "status": r.get("status")}
        if r.get("status") == "ok":
            row.update({k: v for k, v in next(ok_rows).items() if k in SUMMARY_COLUMNS})
        rows.append(row)
    return pd.DataFrame(rows).fillna("")
