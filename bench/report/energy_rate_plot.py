"""Energy per sample against the network's mean firing rate, one panel per hardware profile.

Each model (at its main T, the headline's rule) is drawn from its ``energy.hardware`` record on every profile
(a model priced with several energy configurations in merged runs: its first, the caption naming it and the
others, which the "Energy with data movement" tables show):

- its SNN line ``E(r) = snn_fixed_pj + snn_slope_pj x r`` (solid, the model's colour) for r from 0 to the
  panel's right end;
- its ANN equivalent as a horizontal dashed line in the same colour;
- the measured point (the model's marker at r = its recorded mean rate, on the line);
- the break-even crossing (a black-edged ``X`` at r = ``break_even_rate`` on the ANN line), where recorded.

One panel per profile in one figure, not one figure per profile: a neuromorphic chip and a GPU differ by
orders of magnitude, so each panel has its own (logarithmic) energy axis, while side by side the panels show
at a glance how the break-even moves with the hardware, and one shared legend names the models once. The
rate axis of a panel ends at the first of 10, 20, 25, 50, 100 % that exceeds 1.2 x the largest measured or
break-even rate drawn in it (rates are fractions of neurons firing per step, so 100 % at most): typical SNN
rates of a few percent would otherwise crowd the left edge. Untrained nets are drawn like the others (their
energies and rates are those of the untrained net; the caption says so), with a hollow measured marker.

Reads records only: no torch, no ``bench.metrics``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MultipleLocator, NullFormatter  # noqa: E402

from bench.figure_layout import figure, finish, fit_legend  # noqa: E402
from bench.palette import STYLE, ModelStyle  # noqa: E402
from bench.report import tables as tb  # noqa: E402
from bench.report.energy_section import TITLE, ProfileRow, energy_cases, profile_rows  # noqa: E402

NAME = "energy_vs_rate"
RATE_ENDS = {0.1: 0.02, 0.2: 0.05, 0.25: 0.05, 0.5: 0.1, 1.0: 0.2}  # right ends of a rate axis: tick step
RATE_HEADROOM = 1.2
MINOR_SUBS = (2.0, 5.0)  # unlabelled minor ticks of an energy axis over two decades or more (:func:`_log_ticks`)
SAMPLES = 201  # points along each SNN line (straight in r, curved on the log energy axis)
ENERGY_UNITS = ((1e12, "J"), (1e9, "mJ"), (1e6, "µJ"), (1e3, "nJ"), (1.0, "pJ"))  # picojoules per unit
PANEL_W, PANEL_H = 4.2, 3.0  # inches


@dataclass(frozen=True)
class Curve:
    """One model on one profile: the recorded cost model and points (picojoules per sample, rates as fractions)."""

    label: str
    untrained: bool
    row: ProfileRow

    def energy(self, rates: np.ndarray) -> np.ndarray:
        """E(r) = fixed + slope x r, in picojoules."""
        assert self.row.fixed_pj is not None and self.row.slope_pj is not None
        return self.row.fixed_pj + self.row.slope_pj * rates


@dataclass
class RatePlot:
    """The rendered figure, the curves behind it per profile, notes on what was left out, layout problems."""

    name: str
    png: bytes
    alt: str
    caption: str
    curves: dict[str, list[Curve]]
    notes: list[str] = field(default_factory=list)
    width_px: int = 0
    problems: list[str] = field(default_factory=list)


def curves(records: list[dict[str, Any]]) -> tuple[dict[str, list[Curve]], list[str]]:
    """Profile -> the models' curves (profiles in order of first appearance), and a note per curve left out."""
    out: dict[str, list[Curve]] = {}
    notes = []
    for label, recs in tb.by_model(records).items():
        cases = energy_cases(recs)
        if not cases:
            continue
        case = cases[0].record
        if len(cases) > 1:  # merged runs priced with other options: one line per model, the others named
            notes.append(f"{label}: drawn with {cases[0].differs}; priced also with "
                         f"{'; '.join(c.differs for c in cases[1:])} (in the \"{TITLE}\" tables)")
        for row in profile_rows(case):
            if row.fixed_pj is None or row.slope_pj is None:
                notes.append(f"{label} on {row.profile}: no linear cost model (snn_fixed_pj, snn_slope_pj) recorded")
                continue
            out.setdefault(row.profile, []).append(Curve(label, tb.untrained(case), row))
    return out, notes


def rate_end(panel: list[Curve]) -> float:
    """The right end of a panel's rate axis (see the module docstring)."""
    rates = [r for c in panel for r in (c.row.rate, c.row.break_even_rate) if r is not None and r > 0]
    top = RATE_HEADROOM * max(rates, default=0.0)
    return next((end for end in RATE_ENDS if end >= top), 1.0)


def energy_unit(values_pj: list[float]) -> tuple[float, str]:
    """(picojoules per unit, unit) in which the smallest positive value drawn is at least 1."""
    low = min((v for v in values_pj if v > 0), default=1.0)
    return next(((f, u) for f, u in ENERGY_UNITS if low >= f), ENERGY_UNITS[-1])


def _plain(value: float, _pos: Any = None) -> str:
    """A tick value as a plain number: whole numbers in full with thousands separators (``%g`` would print
    100000 beside 1e+06 on one axis), others to 6 significant digits."""
    if value <= 0:
        return ""
    return f"{round(value):,}" if value >= 1 and float(value).is_integer() else f"{value:g}"


def _log_ticks(ax: Any) -> None:
    """Plain numbers on the log axis (a log axis labels only powers of ten): over two decades or more the
    powers of ten alone, over one or more also 2 and 5 x them, under one decade 1, 2, 3 and 5 x them, or
    every integer multiple where fewer than two of those fall inside (a short span between them). Over two
    decades or more the unlabelled minor ticks stand at 2 and 5 x the powers of ten only (not at every integer
    multiple: the panels span up to ten decades, and each tick is an object matplotlib lays out and draws,
    which cost a third of this figure's rendering time)."""
    lo, hi = ax.get_ylim()
    decades = math.log10(hi / lo)

    def mantissa(value: float) -> float:
        return round(value / 10 ** math.floor(math.log10(value)), 6) if value > 0 else 0.0

    shown: tuple[int, ...] = (1,) if decades >= 2 else (1, 2, 5) if decades >= 1 else (1, 2, 3, 5)
    inside = [v for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
              for m in shown if lo <= (v := m * 10.0 ** k) <= hi]
    if len(inside) < 2:
        shown = tuple(range(1, 10))

    def label(value: float, _pos: Any = None) -> str:
        return _plain(value) if mantissa(value) in shown else ""

    ax.yaxis.set_major_formatter(FuncFormatter(label))
    ax.yaxis.set_minor_formatter(FuncFormatter(label) if len(shown) > 1 else NullFormatter())
    if decades >= 2:
        ax.yaxis.set_minor_locator(LogLocator(base=10, subs=MINOR_SUBS))


def _panel(ax: Any, profile: str, panel: list[Curve], styles: dict[str, ModelStyle]) -> str:
    """Draw one profile's curves; returns the unit of its energy axis."""
    end = rate_end(panel)
    rates = np.linspace(0.0, end, SAMPLES)
    drawn = [v for c in panel for v in c.energy(rates)] + [c.row.ann_pj for c in panel if c.row.ann_pj]
    per, unit = energy_unit([v for v in drawn if v is not None])
    for c in panel:
        s = styles[c.label]
        e = c.energy(rates)
        keep = e > 0  # a log axis cannot show E(0) = 0
        ax.plot(rates[keep], e[keep] / per, color=s.color, linestyle="-", linewidth=1.4, gid=f"snn|{c.label}")
        if c.row.ann_pj is not None and c.row.ann_pj > 0:
            ax.axhline(c.row.ann_pj / per, color=s.color, linestyle="--", linewidth=1.0, gid=f"ann|{c.label}")
        if c.row.rate is not None and 0 <= c.row.rate <= end:
            measured = c.row.fixed_pj + c.row.slope_pj * c.row.rate  # type: ignore[operator]
            ax.plot([c.row.rate], [measured / per], linestyle="none", marker=s.marker, markersize=7,
                    color=s.color, markerfacecolor="white" if c.untrained else s.color, zorder=4,
                    gid=f"measured|{c.label}")
        be, ann = c.row.break_even_rate, c.row.ann_pj
        if be is not None and ann is not None and ann > 0 and 0 <= be <= end:
            ax.plot([be], [ann / per], linestyle="none", marker="X", markersize=8, color=s.color,
                    markeredgecolor="black", zorder=5, gid=f"break_even|{c.label}")
    ax.set_yscale("log")
    ax.set_xlim(0, end)
    ax.margins(y=0.15)
    ax.xaxis.set_major_locator(MultipleLocator(RATE_ENDS[end]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{round(100 * v, 6):g}%"))
    _log_ticks(ax)
    kind = next((c.row.kind for c in panel), "?")
    ax.set_title(f"{profile} ({kind})", y=1.0)  # pinned: a log axis has no offset text to avoid (plots._title)
    ax.set_xlabel("network mean firing rate")
    ax.set_ylabel(f"energy / sample ({unit}, log)")
    return unit


def _legend_entries(ax: Any, labels: list[str], styles: dict[str, ModelStyle], untrained: set[str]) -> int:
    """Empty artists on the first axes that the shared legend names: each model's colour, then the line kinds."""
    for label in labels:
        s = styles[label]
        ax.plot([], [], color=s.color, marker=s.marker, linestyle="-",
                label=label + (" (untrained)" if label in untrained else ""))
    ax.plot([], [], color="0.3", linestyle="-", label="SNN: E(r) = fixed + slope x r")
    ax.plot([], [], color="0.3", linestyle="--", label="ANN equivalent")
    ax.plot([], [], color="0.3", linestyle="none", marker="o", label="measured rate")
    ax.plot([], [], color="0.6", linestyle="none", marker="X", markeredgecolor="black", label="break-even")
    return len(labels) + 4


def energy_vs_rate(records: list[dict[str, Any]], styles: dict[str, ModelStyle]) -> RatePlot | None:
    """The figure (see the module docstring), or None when no run holds ``energy.hardware``."""
    by_profile, notes = curves(records)
    if not by_profile:
        return None
    profiles = list(by_profile)
    labels = list(dict.fromkeys(c.label for p in by_profile.values() for c in p))
    untrained = {c.label for p in by_profile.values() for c in p if c.untrained}
    cols = 1 if len(profiles) == 1 else 2
    rows = math.ceil(len(profiles) / cols)
    width = max(6.4, PANEL_W * cols)
    with plt.rc_context(STYLE):
        fig, axes = figure(width, PANEL_H * rows, nrows=rows, ncols=cols, squeeze=False)
        flat = list(axes.flat)
        for ax, profile in zip(flat, profiles, strict=False):
            _panel(ax, profile, by_profile[profile], styles)
        for ax in flat[len(profiles):]:
            ax.set_visible(False)
        fit_legend(flat[0], _legend_entries(flat[0], labels, styles, untrained))
        png, width_px, problems = finish(fig)
    missing = [f"{c.label} on {p}: no ANN equivalent ({c.row.ann_why or 'no reason recorded'})"
               for p, panel in by_profile.items() for c in panel if c.row.ann_pj is None]
    missing += [f"{c.label} on {p}: no break-even ({c.row.break_even_why or 'no reason recorded'})"
                for p, panel in by_profile.items() for c in panel if c.row.break_even_rate is None]
    references = {p: r for p, panel in by_profile.items() for c in panel if (r := c.row.reference)}
    if references:  # a neuromorphic panel's ANN line is another chip's: say which
        missing.append("ANN equivalent priced on the digital reference profile: "
                       + ", ".join(f"{p} on {r}" for p, r in references.items()))
    caption = ("Energy per sample against the network's mean firing rate, one panel per hardware profile (log energy "
               "axis): each model's SNN cost line E(r) = fixed + slope x r (solid), its ANN equivalent (dashed), its "
               "measured rate on the line (marker) and the break-even rate where the line meets the ANN's energy (X)."
               + "".join(f" {n}." for n in notes + missing)
               + (f" Untrained (hollow markers; energies and rates of the untrained net): {', '.join(sorted(untrained))}."
                  if untrained else ""))
    alt = (f"Line plots of energy per sample against mean firing rate on {len(profiles)} hardware profile(s) "
           f"({', '.join(profiles)}) for {len(labels)} model(s), with ANN-equivalent lines and break-even points")
    return RatePlot(NAME, png, alt, caption, by_profile, notes, width_px, problems)
