"""Report figures (matplotlib, Agg backend) as PNG bytes, shared by the HTML and Markdown reports.

Each figure is a view of named fields: it states the ``(metric, field)`` it draws (a plot is a choice
of what to set against what), and takes their titles, units and scaling from the run's declarations;
a figure whose fields the runs did not declare or measure is left out. Colours, markers and line styles
come from :mod:`bench.palette` (Okabe-Ito, one colour per model throughout).

Readability rules, each checked on the rendered figure (:mod:`bench.figure_layout`: no text outside the
figure, no two texts overlapping):

- legends sit below the axes with as many columns as fit the width; point labels go where they overlap
  nothing (a label with no free place is left out and the caption says so);
- per-layer charts of more than ``max_layers`` layers show stages instead (:func:`stages`), the full
  per-layer table one click away (``details``);
- a per-layer bar more than 8 times the median bar and twice the next largest (an ImageNet stem on analog
  pixels) is cut at the axis end with its total written there, so it does not flatten every other bar;
- a heatmap whose rates are all zero shows zero on a 0..1 % colour bar, not a colour bar around zero;
- models without trained weights are left out of the accuracy plots (their accuracy is not a result) and
  named in the caption.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import textwrap
import warnings
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bench.figure_layout import colorbar, figure, finish, fit_legend, freeze_layout, place_labels  # noqa: E402
from bench.palette import STYLE, ModelStyle  # noqa: E402
from bench.report import energy_plot, energy_rate_plot  # noqa: E402
from bench.report import tables as tb  # noqa: E402
from bench.report.declared import Declared  # noqa: E402
from bench.report.formats import joules, si  # noqa: E402
from bench.results import metric_value  # noqa: E402

# What the figures draw: (metric, field). Per-layer tables are the nested ``layers`` lists of firing and ops.
ACCURACY = ("accuracy", "top1")
ESTIMATED_ENERGY = ("energy", "energy_mj")
THROUGHPUT = ("latency", "throughput_sps")
FIRING_LAYERS = ("firing", "layers")
OPS_LAYERS = ("ops", "layers")
OPS_ACS, OPS_MACS = ("ops", "acs"), ("ops", "macs")
ENERGY_UNITS = ((1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ"), (1e-12, "pJ"))
MAX_LAYERS = 40  # past this many layers, per-layer charts show stages
OUTLIER_X_MEDIAN, OUTLIER_X_NEXT = 8.0, 2.0  # a bar cut at the axis end: > 8 x median and > 2 x the next


@dataclass
class FigureData:
    """One rendered figure: file stem (figures/<name>.png), PNG bytes, alt text, caption, width, the layout
    problems measured on it (none expected) and, for per-layer charts, the full table behind it."""

    name: str
    png: bytes
    alt: str
    caption: str
    width_px: int = 0
    problems: list[str] = field(default_factory=list)
    details: pd.DataFrame | None = None
    details_summary: str = ""


def _figure(width: float, height: float) -> tuple[Figure, Any]:
    with plt.rc_context(STYLE):
        return figure(width, height)


def _title(ax: Any, text: str, width_in: float, y: float | None = None) -> None:
    """A title wrapped to the figure's width (about 12 characters per inch at the title size). ``y=1.0`` pins it
    at the top of the axes, where matplotlib's automatic placement puts it anyway on axes with no ticks or
    offset text at the top (categorical y axes), without measuring every tick label on each draw to find out."""
    ax.set_title(textwrap.fill(text, max(20, int(width_in * 12))), y=y)


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label).strip("_").lower() or "model"


def energy_unit(values_j: list[float]) -> tuple[float, str]:
    """The unit (factor in joules, name) in which the largest value is at least 1."""
    top = max(abs(v) for v in values_j)
    return next(((f, u) for f, u in ENERGY_UNITS if top >= f), ENERGY_UNITS[-1])


def _trained_groups(records: list[dict[str, Any]]) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Ok records by model, models without trained weights left out (and listed)."""
    groups = tb.by_model(records)
    untrained = [label for label, recs in groups.items() if tb.untrained(recs[0])]
    return {k: v for k, v in groups.items() if k not in untrained}, untrained


def _left_out(untrained: list[str]) -> str:
    return f" Left out (no trained weights): {', '.join(untrained)}." if untrained else ""


# ---------------------------------------------------------------- across models


def accuracy_vs_T(records: list[dict[str, Any]], declared: Declared,
                  styles: dict[str, ModelStyle]) -> FigureData | None:
    """Top-1 accuracy against T, one line per trained model (first device with a value at each T)."""
    acc = declared.field(*ACCURACY)
    if acc is None:
        return None
    groups, untrained = _trained_groups(records)
    series = {}
    for label, recs in groups.items():
        points = sorted({r["T"]: v for r in reversed(recs) if (v := tb.value(r, *ACCURACY)) is not None}.items())
        if points:
            series[label] = points
    if not series:
        return None
    with plt.rc_context(STYLE):
        fig, ax = _figure(6.4, 3.6)
        all_T = sorted({t for pts in series.values() for t, _ in pts})
        for label, pts in series.items():
            s = styles[label]
            ax.plot([t for t, _ in pts], [v for _, v in pts], color=s.color, marker=s.marker, linestyle=s.linestyle,
                    label=label)
        if all_T[-1] / all_T[0] > 8:
            ax.set_xscale("log", base=2)
        ax.set_xticks(all_T, [str(t) for t in all_T])
        ax.minorticks_off()
        ax.set_xlabel("time steps T")
        ax.set_ylabel(acc.column)
        _title(ax, "Accuracy versus T", 6.4)
        fit_legend(ax, len(series))
        png, width, problems = finish(fig)
    return FigureData("accuracy_vs_T", png, f"Line plot of {acc.column} against T, one line per model",
                      f"{acc.column} at each evaluated T, one line per model.{_left_out(untrained)}", width, problems)


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points (energy, accuracy) not dominated by another (lower or equal energy AND higher or equal
    accuracy, one strictly), sorted by energy."""
    front = []
    for e, a in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or a > front[-1][1]:
            front.append((e, a))
    return front


def accuracy_vs_energy(records: list[dict[str, Any]], declared: Declared,
                       styles: dict[str, ModelStyle]) -> FigureData | None:
    """Top-1 against compute-only estimated energy per sample, every (trained model, T), Pareto front marked."""
    acc, energy = declared.field(*ACCURACY), declared.field(*ESTIMATED_ENERGY)
    if acc is None or energy is None:
        return None
    groups, untrained = _trained_groups(records)
    pts: dict[str, list[tuple[float, float, int]]] = {}
    for label, recs in groups.items():
        seen = {}
        for r in recs:
            e, a = joules(energy, metric_value(r, *ESTIMATED_ENERGY)), tb.value(r, *ACCURACY)
            if e is not None and a is not None and e > 0 and r["T"] not in seen:
                seen[r["T"]] = (e, a, r["T"])
        if seen:
            pts[label] = sorted(seen.values())
    if not pts:
        return None
    factor, unit = energy_unit([x for p in pts.values() for x, _, _ in p])
    pts = {label: [(x / factor, y, t) for x, y, t in p] for label, p in pts.items()}
    with plt.rc_context(STYLE):
        fig, ax = _figure(6.4, 3.8)
        for label, p in pts.items():
            s = styles[label]
            ax.plot([x for x, _, _ in p], [y for _, y, _ in p], color=s.color, marker=s.marker, linestyle=":",
                    label=label)
        front = pareto_front([(x, y) for p in pts.values() for x, y, _ in p])
        ax.step([x for x, _ in front], [y for _, y in front], where="post", color="#555", linewidth=1.2,
                linestyle="--", label="Pareto front", zorder=1)
        ax.scatter([x for x, _ in front], [y for _, y in front], s=120, facecolors="none", edgecolors="#222",
                   linewidths=1.2, zorder=3)
        ax.set_xscale("log")
        ax.margins(x=0.15, y=0.12)  # room for the labels of the outermost points
        ax.set_xlabel(f"{energy.title} ({unit}, log scale)")
        ax.set_ylabel(acc.column)
        _title(ax, "Accuracy versus compute-only energy", 6.4)
        fit_legend(ax, len(pts) + 1)
        freeze_layout(fig)
        left_out = place_labels(ax, [(x, y, f"T={t}") for p in pts.values() for x, y, t in p], fontsize=7,
                                color="#333")
        png, width, problems = finish(fig)
    missing = (f" T labels left out where they would overlap: {len(left_out)} (every point is in the accuracy and "
               "energy tables)." if left_out else "")
    return FigureData("accuracy_vs_energy", png,
                      f"Scatter of {acc.column} against {energy.title}, Pareto front circled",
                      f"{acc.column} against {energy.title} ({unit}, log scale), one point per model and T; "
                      "circled points joined by the dashed line form the Pareto front (no other point is both "
                      f"cheaper and more accurate). {energy.title}: {energy.description}.{missing}"
                      f"{_left_out(untrained)}", width, problems)


def throughput_per_device(records: list[dict[str, Any]], declared: Declared,
                          styles: dict[str, ModelStyle]) -> FigureData | None:
    """Throughput at each model's main T, grouped by device (one bar per model, in its colour)."""
    thr = declared.field(*THROUGHPUT)
    if thr is None:
        return None
    devices = tb.device_order(tb.ok_records(records))
    bars: dict[str, dict[str, float]] = {}
    for label, recs in tb.by_model(records).items():
        at_T = tb.at_main_T(recs)
        for device in devices:
            case = tb.device_case(at_T, device)
            v = None if case is None else tb.value(case, *THROUGHPUT)
            if v is not None:
                bars.setdefault(label, {})[device] = v
    if not bars:
        return None
    labels = list(bars)
    width = 0.8 / len(labels)
    fig_w = min(9.0, max(4.5, 1.5 + 1.6 * len(devices) * max(1, len(labels) / 3)))
    with plt.rc_context(STYLE):
        fig, ax = _figure(fig_w, 3.8)
        for i, label in enumerate(labels):
            xs = [d for d, dev in enumerate(devices) if dev in bars[label]]
            vs = [bars[label][devices[d]] for d in xs]
            ax.bar([x - 0.4 + width * (i + 0.5) for x in xs], vs, width=width, color=styles[label].color,
                   label=label, edgecolor="white", linewidth=0.5)
        values = [v for b in bars.values() for v in b.values()]
        if max(values) / max(min(values), 1e-12) > 100:
            ax.set_yscale("log")
        ax.set_xticks(range(len(devices)), [textwrap.fill(d, 18) for d in devices])
        ax.grid(axis="x", visible=False)
        ax.set_xlabel("device")
        ax.set_ylabel(thr.column)
        _title(ax, f"{thr.title} per device (main T, largest batch)", fig_w)
        fit_legend(ax, len(labels))
        png, width_px, problems = finish(fig)
    return FigureData("throughput_per_device", png, f"Bar chart of {thr.column} per device",
                      f"{thr.column} ({thr.description}) at each model's main T and largest batch size, "
                      "grouped by device.", width_px, problems)


# ---------------------------------------------------------------- per layer


def layer_rows(table: Any) -> list[dict[str, Any]]:
    """A per-layer table as a list of rows with a ``name``: a list of rows, or a dict keyed by layer name."""
    if isinstance(table, dict):
        return [{"name": name, **row} for name, row in table.items() if isinstance(row, dict)]
    return [row for row in table or [] if isinstance(row, dict)]


def stages(names: list[str], max_layers: int) -> list[str]:
    """The stage of each layer: its first name component (``layer1``, ``stem``, ``head``), split by its block
    index where one component holds over a quarter of the layers (``stages.0``, ``blocks.3``); past
    ``max_layers`` stages, consecutive runs of layers."""
    first = [n.split(".")[0] for n in names]
    counts = Counter(first)
    keys = []
    for name, head in zip(names, first, strict=True):
        parts = name.split(".")
        split = counts[head] > len(names) / 4 and len(parts) > 1 and parts[1].isdigit()
        keys.append(f"{head}.{parts[1]}" if split else head)
    if len(dict.fromkeys(keys)) <= max_layers:
        return keys
    size = math.ceil(len(names) / max_layers)
    return [f"layers {i // size * size + 1}-{min(len(names), (i // size + 1) * size)}" for i in range(len(names))]


@dataclass
class FiringLayers:
    """A firing record's per-layer table: names, rates [layers, T], analog flags, neurons per layer."""

    names: list[str]
    rates: np.ndarray
    analog: list[bool]
    neurons: list[float]


def firing_matrix(record: dict[str, Any]) -> FiringLayers | None:
    """The per-layer rates of a firing record (layers with a rate per step; all with the same T)."""
    names, rows, analog, neurons = [], [], [], []
    for layer in layer_rows(metric_value(record, *FIRING_LAYERS)):
        rates = layer.get("rate_per_t")
        if not rates:
            continue
        names.append(str(layer.get("name", "?")))
        rows.append([np.nan if v is None else float(v) for v in rates])
        analog.append(bool(layer.get("analog", False)))
        neurons.append(float(layer.get("n_neurons") or 1.0))
    if not rows or len({len(r) for r in rows}) != 1:
        return None
    return FiringLayers(names, np.asarray(rows, dtype=float), analog, neurons)


def firing_by_stage(layers: FiringLayers, max_layers: int) -> FiringLayers:
    """Rates per stage: the neuron-weighted mean over its spiking layers (its analog layers when it has no
    other); the layers themselves when there are at most ``max_layers``."""
    if len(layers.names) <= max_layers:
        return layers
    keys = stages(layers.names, max_layers)
    names, rows, analog, neurons = [], [], [], []
    for key in dict.fromkeys(keys):
        idx = [i for i, k in enumerate(keys) if k == key]
        spiking = [i for i in idx if not layers.analog[i]] or idx
        w = np.asarray([layers.neurons[i] for i in spiking])
        rows.append((layers.rates[spiking] * w[:, None]).sum(axis=0) / w.sum())
        names.append(f"{key} ({len(idx)})")
        analog.append(all(layers.analog[i] for i in idx))
        neurons.append(float(w.sum()))
    return FiringLayers(names, np.asarray(rows), analog, neurons)


def firing_heatmap(label: str, record: dict[str, Any], style: ModelStyle,
                   max_layers: int = MAX_LAYERS) -> FigureData | None:
    """Firing rate per layer (or stage, past ``max_layers``) and time step of one model at its main T."""
    full = firing_matrix(record)
    if full is None:
        return None
    shown = firing_by_stage(full, max_layers)
    L, T = shown.rates.shape
    names = [n + (" (analog)" if a else "") for n, a in zip(shown.names, shown.analog, strict=True)]
    percent = 100 * shown.rates
    all_zero = not np.nanmax(percent, initial=0.0) > 0
    untrained = " (untrained weights)" if tb.untrained(record) else ""
    width = min(3.6 + 0.45 * T, 7.5)
    with plt.rc_context(STYLE):
        fig, ax = _figure(width, min(max(2.4, 1.4 + 0.2 * L), 14))
        im = ax.imshow(percent, aspect="auto", cmap="cividis", vmin=0, vmax=1.0 if all_zero else None,
                       interpolation="nearest")
        step = max(1, math.ceil(T / 12))
        ax.set_xticks(range(0, T, step), [str(t + 1) for t in range(0, T, step)])
        ax.set_yticks(range(L), names, fontsize=7)
        ax.grid(False)
        ax.set_xlabel("time step t")
        ax.set_ylabel("stage (layers in it)" if len(shown.names) < len(full.names) else "layer (input to output)")
        _title(ax, f"Firing rate per {'stage' if L < len(full.names) else 'layer'}: {label} (T={record['T']})"
               f"{untrained}", width, y=1.0)
        colorbar(ax, im, "firing rate (%)")
        png, width_px, problems = finish(fig)
    staged = len(shown.names) < len(full.names)
    caption = (f"{label}{untrained}: firing rate (% of neurons firing) per "
               + (f"stage ({len(full.names)} layers in {L} stages; neuron-weighted mean of each stage's spiking "
                  "layers; every layer in the table below)" if staged else "layer")
               + f" and time step at T={record['T']}" + ("; analog layers (not spikes) marked" if any(full.analog) else "")
               + ("; every rate is zero (no neuron fired)" if all_zero else "") + ".")
    details = pd.DataFrame([{"layer": n, "analog": "yes" if a else "no",
                             **{f"t={t + 1} (%)": f"{100 * v:.2f}" for t, v in enumerate(row)}}
                            for n, a, row in zip(full.names, full.analog, full.rates, strict=True)])
    return FigureData(f"firing_{_safe(label)}", png, f"Heatmap of firing rate per layer and time step for {label}",
                      caption, width_px, problems, details, f"Firing rate per layer and time step: {label}")


def ops_layers(record: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(layer, ACs, MACs) per sample for the layers with a count, from an ops record's per-layer table."""
    out = []
    for layer in layer_rows(metric_value(record, *OPS_LAYERS)):
        acs, macs = layer.get(OPS_ACS[1]), layer.get(OPS_MACS[1])
        if acs is None and macs is None:
            continue
        out.append((str(layer.get("name", "?")), float(acs or 0.0), float(macs or 0.0)))
    return out


def ops_by_stage(layers: list[tuple[str, float, float]], max_layers: int) -> list[tuple[str, float, float]]:
    """The layers with operations, summed per stage past ``max_layers`` of them."""
    counted = [row for row in layers if row[1] or row[2]]
    if len(counted) <= max_layers:
        return counted
    keys = stages([n for n, _, _ in counted], max_layers)
    out = []
    for key in dict.fromkeys(keys):
        rows = [row for row, k in zip(counted, keys, strict=True) if k == key]
        out.append((f"{key} ({len(rows)})", sum(a for _, a, _ in rows), sum(m for _, _, m in rows)))
    return out


def axis_cap(totals: np.ndarray) -> float | None:
    """Where to cut the axis so that outlier bars do not flatten the others, or None (see the module docstring)."""
    nonzero = totals[totals > 0]
    if len(nonzero) < 3:
        return None
    outliers = totals > OUTLIER_X_MEDIAN * np.median(nonzero)
    rest = totals[~outliers]
    if not outliers.any() or rest.max() <= 0 or totals.max() <= OUTLIER_X_NEXT * rest.max():
        return None
    return 1.3 * float(rest.max())


def ops_per_layer(label: str, record: dict[str, Any], style: ModelStyle,
                  max_layers: int = MAX_LAYERS) -> FigureData | None:
    """ACs and MACs per layer or stage (stacked horizontal bars) of one model at its main T."""
    full = ops_layers(record)
    shown = ops_by_stage(full, max_layers)
    if not shown:
        return None
    staged = len(shown) < len([row for row in full if row[1] or row[2]])
    names = [n for n, _, _ in shown]
    acs = np.array([a for _, a, _ in shown])
    macs = np.array([m for _, _, m in shown])
    totals = acs + macs
    scale, unit = next(((f, u) for f, u in ((1e9, "G"), (1e6, "M"), (1e3, "k")) if totals.max() >= f), (1.0, ""))
    cap = axis_cap(totals)
    y = np.arange(len(names))
    untrained = " (untrained weights)" if tb.untrained(record) else ""
    with plt.rc_context(STYLE):
        fig, ax = _figure(6.4, min(2.2 + 0.2 * len(names), 14))
        ax.barh(y, acs / scale, color=style.color, label="ACs (accumulates)")
        ax.barh(y, macs / scale, left=acs / scale, color="white", edgecolor=style.color, hatch="////",
                label="MACs (multiply-accumulates)")
        if cap is not None:
            ax.set_xlim(0, cap / scale)
            for i in np.flatnonzero(totals > cap):
                ax.text(0.985 * cap / scale, y[i], f"{si(totals[i])} ▶", ha="right", va="center", fontsize=7,
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})
        ax.set_yticks(y, names, fontsize=7)
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(f"operations per sample ({unit}ops, all T steps)" if unit else "operations per sample")
        _title(ax, f"Operations per {'stage' if staged else 'layer'}: {label} (T={record['T']}){untrained}", 6.4, y=1.0)
        fit_legend(ax, 2)
        png, width, problems = finish(fig)
    caption = (f"{label}{untrained}: ACs (solid) and MACs (hatched) per "
               + (f"stage (sums of its layers; {len(shown)} stages)" if staged else "layer")
               + f" and sample, summed over T={record['T']}"
               + ("; bars longer than the axis are cut at its end, their totals written there (▶)" if cap else "")
               + ".")
    details = pd.DataFrame([{"layer": n, "ACs": si(a), "MACs": si(m)} for n, a, m in full])
    return FigureData(f"ops_{_safe(label)}", png, f"Bar chart of ACs and MACs per layer for {label}", caption,
                      width, problems, details, f"Operations per layer: {label}")


def estimated_vs_measured(records: list[dict[str, Any]], declared: Declared,
                          styles: dict[str, ModelStyle]) -> FigureData | None:
    """Measured against estimated energy per sample (:mod:`bench.report.energy_plot`), when the runs declare both
    fields and some model has both values."""
    if declared.field(*energy_plot.ESTIMATED) is None or declared.field(*energy_plot.MEASURED) is None:
        return None
    plot = energy_plot.estimated_vs_measured(records, colors={k: s.color for k, s in styles.items()})
    if plot is None:
        return None
    notes = "".join(f" Left out: {n}." for n in plot.notes)
    return FigureData(plot.name, plot.png, plot.alt, plot.caption + notes, plot.width_px, plot.problems)


def energy_vs_rate(records: list[dict[str, Any]], styles: dict[str, ModelStyle]) -> FigureData | None:
    """Energy per sample against firing rate per hardware profile (:mod:`bench.report.energy_rate_plot`)."""
    plot = energy_rate_plot.energy_vs_rate(records, styles)
    return None if plot is None else FigureData(plot.name, plot.png, plot.alt, plot.caption, plot.width_px,
                                                plot.problems)


MODEL_FIGURES = (firing_heatmap, ops_per_layer)  # one figure per model, from a record at its main T


def _first_figure(draw: Callable[..., FigureData | None], label: str, records: list[dict[str, Any]],
                  style: ModelStyle, max_layers: int) -> FigureData | None:
    """A per-model figure from the first of the model's records (at its main T) that gives one."""
    return next((f for r in records if (f := draw(label, r, style, max_layers))), None)


def report_figures(records: list[dict[str, Any]], declared: Declared, styles: dict[str, ModelStyle],
                   max_layers: int = MAX_LAYERS) -> list[FigureData]:
    """Every figure the records allow, in report order: across models, per model, per device, energy (drawn
    by :func:`draw_all`)."""
    jobs: list[Callable[[], FigureData | None]] = [partial(accuracy_vs_T, records, declared, styles),
                                                     partial(accuracy_vs_energy, records, declared, styles)]
    groups = tb.by_model(records)
    for draw in MODEL_FIGURES:
        jobs += [partial(_first_figure, draw, label, list(tb.at_main_T(recs)), styles[label], max_layers)
                 for label, recs in groups.items()]
    jobs += [partial(throughput_per_device, records, declared, styles),
             partial(estimated_vs_measured, records, declared, styles), partial(energy_vs_rate, records, styles)]
    # the energy panels (one axis per profile) take about four single figures' time: started first, so the
    # workers do not wait for it at the end
    return [f for f in draw_all(jobs, first=len(jobs) - 1) if f is not None]


_JOBS: list[Callable[[], Any]] = []  # the figures being drawn, inherited by the forked workers of draw_all


def _draw_job(i: int) -> Any:
    return _JOBS[i]()


def figure_workers() -> int:
    """Processes that draw a report's figures: ``SNNBENCH_FIGURE_WORKERS`` if set (a positive integer; anything
    else is ignored with a warning), else the cores this process may use (Linux); 1 draws them here, in turn."""
    setting = os.environ.get("SNNBENCH_FIGURE_WORKERS", "").strip()
    if setting.isdigit() and int(setting) > 0:
        return int(setting)
    if setting:
        warnings.warn(f"SNNBENCH_FIGURE_WORKERS={setting!r} is not a positive integer: ignored", stacklevel=2)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def draw_all(jobs: list[Callable[[], Any]], first: int | None = None) -> list[Any]:
    """``[job() for job in jobs]``, in order. Where several cores are free and ``fork`` is the platform's way
    to start processes (Linux), the jobs run in forked worker processes, which inherit them (nothing is
    pickled but the results: PNG bytes and text); matplotlib draws the same bytes in either, and an error in
    a job is raised here as it would be in the loop (of several, the first started). ``first``: the index of
    a job to start before the others (the longest, so that no worker waits for it at the end); the results
    keep the jobs' order."""
    workers = min(figure_workers(), len(jobs))
    if workers < 2 or sys.platform != "linux":
        return [job() for job in jobs]
    order = list(range(len(jobs)))
    if first is not None:
        order.insert(0, order.pop(first))
    global _JOBS
    _JOBS = jobs
    try:  # (a worker that dies raises BrokenProcessPool here, where a multiprocessing.Pool would wait forever)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            done = dict(zip(order, pool.map(_draw_job, order), strict=True))
        return [done[i] for i in range(len(jobs))]
    finally:
        _JOBS = []
