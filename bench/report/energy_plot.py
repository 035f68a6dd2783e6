"""Estimated against measured energy: do the op-count estimates predict the GPU's energy?

One point per model and device, at the model's **main T** (the T it was trained at when that T was
evaluated, else the largest evaluated T) and the **largest batch size** run on that device:

- x: ``energy.energy_mj``, the estimate (MACs and ACs x the profile's per-operation costs, per sample);
- y: ``measured_energy.gpu_energy_j_per_sample``, the gross GPU energy per sample from the board's counter
  (or another measured field, ``measured``).

Both axes are logarithmic; each point is labelled with its model where the label overlaps nothing (the
caption names the models whose label had no free place). Per device the fit is least squares of
log10(y) on log10(x): ``log10 y = slope x log10 x + intercept``, with Pearson's r of the logs and the number
of models. r near 1 says the estimates rank and scale like the measurements; a slope near 1 says measured
energy grows in proportion to the estimate; 10 ** intercept is then the measured joules per estimated
millijoule. A model whose value is missing, NaN or not positive is left out and named in the notes with the reason
recorded (never read as 0).

The same points and fit, for every estimate the records hold (the compute-only ``energy.energy_mj``, then each
hardware profile's ``energy.hardware.<profile>.snn_pj.total``), make the report's per-device table "Do the
estimates predict the measurement?" (:func:`prediction_tables`): the measurement is the GPU board's gross energy,
the estimates are of other chips, so the table speaks of ranking and scaling, not of absolute values.

Reads records only (the dicts of ``results.jsonl``): no torch and no ``bench.metrics`` import, so any run
folder renders without the models' libraries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from bench.figure_layout import figure, finish, fit_legend, freeze_layout, place_labels  # noqa: E402
from bench.palette import MARKERS, OKABE_ITO, STYLE  # noqa: E402
from bench.report.energy_section import MEASURED, PJ_PER_MJ, hardware  # noqa: E402
from bench.report.formats import number  # noqa: E402
from bench.results import metric_value  # noqa: E402

ESTIMATED = ("energy", "energy_mj")


@dataclass(frozen=True)
class EnergyPoint:
    """One model on one device: the case used and its two energies per sample."""

    label: str
    device: str
    T: int
    batch_size: int
    estimated_mj: float
    measured_j: float


@dataclass(frozen=True)
class LogFit:
    """``log10(measured) = slope x log10(estimated) + intercept`` over ``n`` models; ``r``: Pearson's r of
    the logs (None when the measured values are all equal)."""

    n: int
    slope: float
    intercept: float
    r: float | None

    def describe(self) -> str:
        r = "r undefined (equal measurements)" if self.r is None else f"r = {self.r:.3f}"
        return f"log-log fit: slope {self.slope:.3g}, {r}, n = {self.n}"


@dataclass
class EnergyPlot:
    """The rendered figure (PNG bytes, width in pixels), what it shows, what was left out, and the layout
    problems measured on it (:func:`bench.figure_layout.layout_problems`; none expected)."""

    name: str
    png: bytes
    alt: str
    caption: str
    points: list[EnergyPoint]
    fits: dict[str, LogFit | None]
    notes: list[str] = field(default_factory=list)
    width_px: int = 0
    problems: list[str] = field(default_factory=list)


def _name(where: tuple[str, ...]) -> str:
    return ".".join(where)


def _device(record: dict[str, Any]) -> str:
    name = (record.get("device_info") or {}).get("device_name")
    return f"{record['device']} ({name})" if name else str(record["device"])


def _label(record: dict[str, Any]) -> str:
    return str(record["model"].get("label") or record["model"]["name"])


def main_T(records: list[dict[str, Any]]) -> int:
    """The trained T when it was evaluated, else the largest evaluated T (``records``: one model's)."""
    evaluated = {r["T"] for r in records}
    trained = next((r.get("trained_T") for r in records if r.get("trained_T")), None)
    return trained if trained in evaluated else max(evaluated)


def energy_points(records: list[dict[str, Any]], measured: tuple[str, ...] = MEASURED,
                  estimated: tuple[str, ...] = ESTIMATED, *, mj_per_unit: float = 1.0,
                  device: str | None = None) -> tuple[list[EnergyPoint], list[str]]:
    """The points (see the module docstring) and a note for each model and device left out, with why.

    ``estimated``: where the estimate is in a record (the metric, then nested keys, e.g. ``("energy", "hardware",
    "45nm-sram", "snn_pj", "total")``), in units of ``mj_per_unit`` millijoules (1e-9 for picojoules), so
    ``estimated_mj`` is always millijoules. ``device``: only that device's points (:func:`_device` names), notes
    then without the device. A missing, NaN or non-positive value leaves the model out, never read as 0.
    """
    ok = [r for r in records if r.get("status") == "ok"]
    by_model: dict[str, list[dict[str, Any]]] = {}
    for r in ok:
        by_model.setdefault(_label(r), []).append(r)
    points, notes = [], []
    for label, recs in by_model.items():
        T = main_T(recs)
        for dev in dict.fromkeys(_device(r) for r in recs):
            case = max((r for r in recs if r["T"] == T and _device(r) == dev),
                       key=lambda r: r.get("batch_size") or 0, default=None)
            if case is None or device not in (None, dev):
                continue
            x, y = metric_value(case, *estimated), metric_value(case, *measured)
            why = _why(case, estimated, x) or _why(case, measured, y)
            if why is not None:
                if measured[0] in (case.get("metrics") or {}):
                    who = label if device is not None else f"{label} on {dev}"
                    notes.append(f"{who} (T={T}, batch {case.get('batch_size')}): {why}")
                continue
            points.append(EnergyPoint(label, dev, T, int(case.get("batch_size") or 0), float(x) * mj_per_unit,
                                      float(y)))
    return points, notes


def _why(record: dict[str, Any], where: tuple[str, ...], value: Any) -> str | None:
    """Why ``value`` cannot be plotted (missing with the record's ``<field>_why``, not a finite number, not
    positive), or None when it can."""
    if value is None:
        reason = metric_value(record, *where[:-1], f"{where[-1]}_why") or "not recorded"
        return f"{_name(where)} is null ({reason})"
    if number(value) is None:
        return f"{_name(where)} = {value!r} is not a finite number"
    if value <= 0:
        return f"{_name(where)} = {value} cannot go on a log axis"
    return None


def log_fit(points: list[EnergyPoint]) -> LogFit | None:
    """Least squares of log10(measured) on log10(estimated); None with fewer than two distinct estimates."""
    xs = [math.log10(p.estimated_mj) for p in points]
    ys = [math.log10(p.measured_j) for p in points]
    n = len(points)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    if sxx == 0:
        return None
    slope = sxy / sxx
    r = sxy / math.sqrt(sxx * syy) if syy > 0 else None
    return LogFit(n, slope, my - slope * mx, r)


def _tick(value: float, _pos: Any = None) -> str:
    """Plain numbers (0.02, 3, 10) at 1, 2, 3 and 5 x a power of ten; other ticks unlabelled."""
    if value <= 0:
        return ""
    mantissa = round(value / 10 ** math.floor(math.log10(value)), 6)
    return f"{value:g}" if mantissa in (1, 2, 3, 5) else ""


def estimated_vs_measured(records: list[dict[str, Any]], path: str | Path | None = None, *,
                          colors: Mapping[str, str] | None = None, measured: tuple[str, str] = MEASURED,
                          estimated: tuple[str, str] = ESTIMATED) -> EnergyPlot | None:
    """The log-log figure of measured against estimated energy per sample (None: no model has both values).

    ``colors``: model label -> colour (the report's palette); by default sorted labels take Okabe-Ito in
    order. Devices differ by marker. ``path``: also write the PNG there.
    """
    points, notes = energy_points(records, measured, estimated)
    if not points:
        return None
    labels = sorted({p.label for p in points})
    colors = dict(colors or {}) | {lb: OKABE_ITO[i % len(OKABE_ITO)] for i, lb in enumerate(labels)
                                   if lb not in (colors or {})}
    devices = list(dict.fromkeys(p.device for p in points))
    fits = {d: log_fit([p for p in points if p.device == d]) for d in devices}
    with plt.rc_context(STYLE):
        fig, ax = figure(6.4, 4.4)
        for i, device in enumerate(devices):
            mine = [p for p in points if p.device == device]
            for p in mine:
                ax.scatter(p.estimated_mj, p.measured_j, color=colors[p.label], marker=MARKERS[i % len(MARKERS)],
                           zorder=3)
            fit = fits[device]
            if fit is not None:
                lo, hi = min(p.estimated_mj for p in mine), max(p.estimated_mj for p in mine)
                ax.plot([lo, hi], [10 ** fit.intercept * lo ** fit.slope, 10 ** fit.intercept * hi ** fit.slope],
                        color="0.4", linestyle="--" if i == 0 else ":", label=f"{device}: {fit.describe()}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        plain = FuncFormatter(_tick)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(plain)
            axis.set_minor_formatter(plain)
        ax.margins(x=0.25, y=0.1)  # room for the labels of the outermost points
        ax.set_xlabel(f"estimated / sample (mJ): {estimated[0]}.{estimated[1]}")
        ax.set_ylabel(f"measured / sample (J): {measured[1]}")
        ax.set_title("Do the estimates predict the measured energy?")
        fit_legend(ax, sum(f is not None for f in fits.values()), max_cols=1)
        freeze_layout(fig)
        unlabelled = place_labels(ax, [(p.estimated_mj, p.measured_j, p.label) for p in points], fontsize=7)
        png, width, problems = finish(fig)
    if path is not None:
        Path(path).write_bytes(png)
    summary = "; ".join(f"{d}: {f.describe() if f else 'fewer than two models, no fit'}" for d, f in fits.items())
    caption = (f"Measured ({measured[0]}.{measured[1]}) against estimated ({estimated[0]}.{estimated[1]}) energy "
               f"per sample, one point per model at its main T and largest batch, log-log. {summary}."
               + (f" Unlabelled (no free place): {', '.join(unlabelled)}." if unlabelled else ""))
    alt = f"Log-log scatter of measured against estimated energy per sample for {len(labels)} models. {summary}."
    return EnergyPlot("estimated_vs_measured_energy", png, alt, caption, points, fits, notes, width, problems)


PREDICTION_TITLE = "Do the estimates predict the measurement?"
NO_FIT = "no fit (fewer than two models with distinct estimates)"


@dataclass(frozen=True)
class PredictionTable:
    """One device's table: one row per estimate set against the GPU's measured gross energy (see
    :func:`prediction_tables`)."""

    device: str
    frame: pd.DataFrame
    caption: str


def estimates(records: list[dict[str, Any]]) -> list[tuple[str, tuple[str, ...], float]]:
    """Every per-sample estimate the records hold, as (row name, location, millijoules per unit): the compute-only
    ``energy.energy_mj`` first, then each hardware profile's SNN total (picojoules), in recorded order."""
    profiles = dict.fromkeys(name for r in records if r.get("status") == "ok" for name in hardware(r))
    return [("compute-only (energy.energy_mj)", ESTIMATED, 1.0)] + [
        (f"{p}: SNN total", ("energy", "hardware", p, "snn_pj", "total"), 1 / PJ_PER_MJ) for p in profiles]


def _fit_cells(fit: LogFit | None) -> dict[str, str]:
    if fit is None:
        return {"Pearson r (log10)": NO_FIT, "slope (log-log)": NO_FIT, "measured J per estimated mJ": NO_FIT}
    return {"Pearson r (log10)": "undefined (equal measurements)" if fit.r is None else f"{fit.r:.3f}",
            "slope (log-log)": f"{fit.slope:.3g}", "measured J per estimated mJ": f"{10 ** fit.intercept:.3g}"}


def prediction_tables(records: list[dict[str, Any]], measured: tuple[str, ...] = MEASURED) -> list[PredictionTable]:
    """Per device with a measured gross energy, one row per estimate (:func:`estimates`): the models fitted, Pearson's
    r of the logs, the slope of log10(measured) on log10(estimate), 10 ** intercept (measured joules per estimated
    millijoule) and the models left out with why; the points follow the plot's rule (:func:`energy_points`). Empty
    when no case holds a measured value (CPU runs): no table rather than a table of n/a."""
    rows_of = estimates(records)
    devices = dict.fromkeys(p.device for _, where, scale in rows_of
                            for p in energy_points(records, measured, where, mj_per_unit=scale)[0])
    tables = []
    for device in devices:
        rows, used = [], {}
        for name, where, scale in rows_of:
            points, left_out = energy_points(records, measured, where, mj_per_unit=scale, device=device)
            used |= {p.label: p for p in points}
            rows.append({"estimate": name, "models (n)": len(points), **_fit_cells(log_fit(points)),
                         "left out (why)": "; ".join(left_out) or "none"})
        cases = "; ".join(f"{p.label}: T={p.T}, batch {p.batch_size}" for p in used.values())
        caption = (f"{PREDICTION_TITLE} {device}. Measured: {_name(measured)}, the gross energy per sample of this "
                   "GPU board (its energy counter over the timed window, idle draw included). Estimates: per-sample "
                   "model estimates of an accelerator or neuromorphic chip's energy (compute-only: arithmetic alone; "
                   "each profile: the SNN's compute and data movement). They price other machines than the one "
                   "measured, so agreement in r and slope speaks of ranking and scaling, never an absolute check. "
                   "Fit: least squares of log10(measured J) on log10(estimate in mJ), one point per model at its main "
                   f"T and the largest batch run on this device ({cases}).")
        tables.append(PredictionTable(device, pd.DataFrame(rows), caption))
    return tables
