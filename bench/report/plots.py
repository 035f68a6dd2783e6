"""Report figures (matplotlib, Agg backend) as PNG bytes, shared by the HTML and Markdown reports.

Each figure is a view of named fields: it states the ``(metric, field)`` it draws (a plot is a choice
of what to set against what), and takes their titles, units and scaling from the run's declarations;
a figure whose fields the runs did not declare or measure is left out. Colours, markers and line styles
come from :mod:`bench.palette` (Okabe-Ito, one colour per model throughout).
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bench.palette import DPI, STYLE, ModelStyle  # noqa: E402
from bench.report import tables as tb  # noqa: E402
from bench.report.declared import Declared  # noqa: E402
from bench.report.formats import joules  # noqa: E402
from bench.results import metric_value  # noqa: E402

# What the figures draw: (metric, field). Per-layer tables are the nested ``layers`` lists of firing and ops.
ACCURACY = ("accuracy", "top1")
ESTIMATED_ENERGY = ("energy", "energy_mj")
THROUGHPUT = ("latency", "throughput_sps")
FIRING_LAYERS = ("firing", "layers")
OPS_LAYERS = ("ops", "layers")
OPS_ACS, OPS_MACS = ("ops", "acs"), ("ops", "macs")
ENERGY_UNITS = ((1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ"), (1e-12, "pJ"))


@dataclass
class FigureData:
    """One rendered figure: file stem (figures/<name>.png), PNG bytes, alt text and caption."""

    name: str
    png: bytes
    alt: str
    caption: str
    width_px: int = 0


def _png(fig: Figure) -> tuple[bytes, int]:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})  # constrained layout: no tight bbox
    width = int(fig.get_size_inches()[0] * DPI)
    plt.close(fig)
    return buf.getvalue(), width


def _figure(width: float, height: float) -> tuple[Figure, Any]:
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    return fig, ax


def _legend(ax: Any, n: int) -> None:
    """Below the axes, so the plot keeps its width on a narrow (phone) screen."""
    if n:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(3, n), frameon=False)


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label).strip("_").lower() or "model"


def energy_unit(values_j: list[float]) -> tuple[float, str]:
    """The unit (factor in joules, name) in which the largest value is at least 1."""
    top = max(abs(v) for v in values_j)
    return next(((f, u) for f, u in ENERGY_UNITS if top >= f), ENERGY_UNITS[-1])


# ---------------------------------------------------------------- figures


def accuracy_vs_T(records: list[dict[str, Any]], declared: Declared,
                  styles: dict[str, ModelStyle]) -> FigureData | None:
    """Top-1 accuracy against T, one line per model (first device with a value at each T)."""
    acc = declared.field(*ACCURACY)
    if acc is None:
        return None
    series = {}
    for label, recs in tb.by_model(records).items():
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
        ax.set_title("Accuracy versus T")
        _legend(ax, len(series))
        png, width = _png(fig)
    return FigureData("accuracy_vs_T", png, f"Line plot of {acc.column} against T, one line per model",
                      f"{acc.column} at each evaluated T, one line per model.", width)


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
    """Top-1 against estimated energy per sample, every (model, T), Pareto front marked."""
    acc, energy = declared.field(*ACCURACY), declared.field(*ESTIMATED_ENERGY)
    if acc is None or energy is None:
        return None
    pts: dict[str, list[tuple[float, float, int]]] = {}
    for label, recs in tb.by_model(records).items():
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
            for x, y, t in p:
                ax.annotate(f"T={t}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color="#333")
        front = pareto_front([(x, y) for p in pts.values() for x, y, _ in p])
        ax.step([x for x, _ in front], [y for _, y in front], where="post", color="#555", linewidth=1.2,
                linestyle="--", label="Pareto front", zorder=1)
        ax.scatter([x for x, _ in front], [y for _, y in front], s=120, facecolors="none", edgecolors="#222",
                   linewidths=1.2, zorder=3)
        ax.set_xscale("log")
        ax.set_xlabel(f"{energy.title} ({unit}, log scale)")
        ax.set_ylabel(acc.column)
        ax.set_title("Accuracy versus estimated energy")
        _legend(ax, len(pts) + 1)
        png, width = _png(fig)
    return FigureData("accuracy_vs_energy", png,
                      f"Scatter of {acc.column} against {energy.title}, Pareto front circled",
                      f"{acc.column} against {energy.title} ({unit}, log scale), one point per model and T; "
                      "circled points joined by the dashed line form the Pareto front (no other point is both "
                      f"cheaper and more accurate). {energy.title}: {energy.description}", width)


def layer_rows(table: Any) -> list[dict[str, Any]]:
    """A per-layer table as a list of rows with a ``name``: a list of rows, or a dict keyed by layer name."""
    if isinstance(table, dict):
        return [{"name": name, **row} for name, row in table.items() if isinstance(row, dict)]
    return [row for row in table or [] if isinstance(row, dict)]


def firing_matrix(record: dict[str, Any]) -> tuple[list[str], np.ndarray, list[bool]] | None:
    """(layer names, rates [layers, T], analog flags) from a firing record's per-layer table."""
    layers = layer_rows(metric_value(record, *FIRING_LAYERS))
    if not layers:
        return None
    names, rows, analog = [], [], []
    for layer in layers:
        rates = layer.get("rate_per_t")
        if not rates:
            continue
        names.append(str(layer.get("name", "?")))
        rows.append([np.nan if v is None else float(v) for v in rates])
        analog.append(bool(layer.get("analog", False)))
    if not rows or len({len(r) for r in rows}) != 1:
        return None
    return names, np.asarray(rows, dtype=float), analog


def firing_heatmap(label: str, record: dict[str, Any], style: ModelStyle) -> FigureData | None:
    """Firing rate per layer (rows) and time step (columns) of one model at its main T."""
    data = firing_matrix(record)
    if data is None:
        return None
    names, matrix, analog = data
    L, T = matrix.shape
    shown = [n + (" (analog)" if a else "") for n, a in zip(names, analog, strict=True)]
    with plt.rc_context(STYLE):
        fig, ax = _figure(min(3.2 + 0.45 * T, 7.5), min(max(2.4, 1.3 + 0.2 * L), 14))
        im = ax.imshow(100 * matrix, aspect="auto", cmap="cividis", vmin=0, interpolation="nearest")
        ax.set_xticks(range(T), [str(t + 1) for t in range(T)])
        ax.set_yticks(range(L), shown, fontsize=6 if L > 30 else 7)
        ax.grid(False)
        ax.set_xlabel("time step t")
        ax.set_ylabel("layer (input to output)")
        ax.set_title(f"Firing rate per layer: {label} (T={record['T']})")
        fig.colorbar(im, ax=ax, label="firing rate (%)")
        png, width = _png(fig)
    return FigureData(f"firing_{_safe(label)}", png, f"Heatmap of firing rate per layer and time step for {label}",
                      f"{label}: firing rate (% of neurons firing) per layer and time step at T={record['T']}"
                      + ("; analog layers (not spikes) marked" if any(analog) else "") + ".", width)


def ops_layers(record: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(layer, ACs, MACs) per sample for the layers with a count, from an ops record's per-layer table."""
    out = []
    for layer in layer_rows(metric_value(record, *OPS_LAYERS)):
        acs, macs = layer.get(OPS_ACS[1]), layer.get(OPS_MACS[1])
        if acs is None and macs is None:
            continue
        out.append((str(layer.get("name", "?")), float(acs or 0.0), float(macs or 0.0)))
    return out


def ops_per_layer(label: str, record: dict[str, Any], style: ModelStyle) -> FigureData | None:
    """ACs and MACs per layer (stacked horizontal bars) of one model at its main T."""
    layers = ops_layers(record)
    if not layers:
        return None
    names = [n for n, _, _ in layers]
    acs = np.array([a for _, a, _ in layers])
    macs = np.array([m for _, _, m in layers])
    scale, unit = next(((f, u) for f, u in ((1e9, "G"), (1e6, "M"), (1e3, "k"))
                        if max(acs.max(), macs.max()) >= f), (1.0, ""))
    y = np.arange(len(names))
    with plt.rc_context(STYLE):
        fig, ax = _figure(6.4, min(2.0 + 0.2 * len(names), 14))
        ax.barh(y, acs / scale, color=style.color, label="ACs (accumulates)")
        ax.barh(y, macs / scale, left=acs / scale, color="white", edgecolor=style.color, hatch="////",
                label="MACs (multiply-accumulates)")
        ax.set_yticks(y, names, fontsize=6 if len(names) > 30 else 7)
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(f"operations per sample ({unit}ops, all T steps)" if unit else "operations per sample")
        ax.set_title(f"Operations per layer: {label} (T={record['T']})")
        _legend(ax, 2)
        png, width = _png(fig)
    return FigureData(f"ops_{_safe(label)}", png, f"Bar chart of ACs and MACs per layer for {label}",
                      f"{label}: ACs (solid) and MACs (hatched) per layer and sample, summed over T={record['T']}.",
                      width)


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
    with plt.rc_context(STYLE):
        fig, ax = _figure(min(9.0, max(4.5, 1.5 + 1.6 * len(devices) * max(1, len(labels) / 3))), 3.8)
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
        ax.set_title(f"{thr.title} per device (main T, largest batch)")
        _legend(ax, len(labels))
        png, width_px = _png(fig)
    return FigureData("throughput_per_device", png, f"Bar chart of {thr.column} per device",
                      f"{thr.column} ({thr.description}) at each model's main T and largest batch size, "
                      "grouped by device.", width_px)


MODEL_FIGURES = (firing_heatmap, ops_per_layer)  # one figure per model, from a record at its main T


def report_figures(records: list[dict[str, Any]], declared: Declared,
                   styles: dict[str, ModelStyle]) -> list[FigureData]:
    """Every figure the records allow, in report order: across models, per model, per device."""
    figures = [accuracy_vs_T(records, declared, styles), accuracy_vs_energy(records, declared, styles)]
    groups = tb.by_model(records)
    for draw in MODEL_FIGURES:
        for label, recs in groups.items():
            figures.append(next((f for r in tb.at_main_T(recs) if (f := draw(label, r, styles[label]))), None))
    figures.append(throughput_per_device(records, declared, styles))
    return [f for f in figures if f is not None]
