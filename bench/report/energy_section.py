"""The report's "Energy with data movement" tables, from the ``energy`` records' ``hardware`` profiles.

The ``energy`` plug-in prices each case on hardware profiles (digital accelerators, neuromorphic chips):
per sample, the SNN's energy split into compute, weight traffic, membrane-state traffic and spike traffic,
the ANN equivalent on the same profile, and the linear cost model ``E_snn(r) = snn_fixed_pj +
snn_slope_pj x r`` in the network's mean firing rate ``r``, with the **break-even rate** where it meets the
ANN's energy. This module turns those records into one compact table per model at its main T (the headline's
rule, :func:`bench.report.tables.main_T`), one row per profile, and the list of profiles with their sources.
A model priced with several energy configurations (merged runs with other ``[metrics.energy]`` options: a
different ``energy.hw_bits``, e.g. ``event_weight_reuse``, ``hw_primary``, compute-only profile, profiles
evaluated or their costs) gets one table per configuration, each caption naming what differs
(``A at T=4 with event_weight_reuse = 4``); the headline's note says which one its columns show.

Verdict of a row: ``no break-even: <why>`` when the record gives no break-even rate (with the plug-in's
reason); otherwise the measured rate against the break-even rate on the line ``E_snn(r)`` (``SNN cheaper``
where the line lies below the ANN's energy at the measured rate, ``ANN cheaper`` above, ``break-even`` on it).

Cells of the SNN's terms (compute, weights, membrane, spikes, real-valued activations: they add up to its total)
read ``in compute`` where the record's ``included`` puts the term inside another cost (a neuromorphic chip's
membrane traffic, in its neuron-update cost) and ``not priced`` where its ``unpriced`` lists it, never ``0 pJ``;
a note under the table says what a neuromorphic row's costs include and on which digital ``reference`` its ANN
and MAC layers are priced. The profiles' constants listed under the tables are the records' ``costs`` (what
priced them), else those run.json's conventions store.

The section's notes also give the bit widths and weight-reuse factors the tables were priced with (the records'
``hw_bits``: ``dense_weight_reuse``, ``event_weight_reuse``, ...), once when every table shares them.

Untrained nets (the README's "Untrained nets" rule): the ANN / SNN ratio is a figure of merit of trained
weights (declared ``trained_only``), and the verdict says the same thing in words, so both read
``†`` (the caption says ``weights: untrained``); energies and the measured rate are shown as those of the untrained net, and the break-even
rate (a property of the cost model and the architecture, not of the weights) is shown, with the untrained
note once for the section (not under every model's table).

Layer split (:func:`layer_split`): from the record's ``hw_layers`` (the primary profile, per layer), a small
table per model, one row per layer kind as the energy model priced it (``event-driven``: spike input, per
event; ``dense``: real-valued input, MACs at every call, e.g. the encoding conv on the image; ``mixed``,
``neuron``, ``data``), with the layers' names, their compute and memory-traffic energy (weights + membrane +
spikes + activations) and their share of the SNN total; a note gives the totals of compute vs memory and of
the event-driven vs the dense part. Runs whose ``hw_layers`` carry no ``kind`` (older runs) get no such
table, and a note says so; nor does a record in which a term the split sums (``snn_pj`` compute, weights,
membrane, spikes, activations, ``ann_pj`` total) is missing, NaN or not numeric in some layer: its note names
the model, the layer and the field (a partial record is never summed as if the term were 0; a recorded 0.0 is 0).

Measured energy: under each model's table, where a case of the model at that T holds the GPU's measured gross energy
per sample (``MEASURED``), a note gives it per device at the largest batch run there, in the cells' unit
(:func:`measured_notes`); nothing where none was measured.

Reads records and run.json conventions only: no torch, no ``bench.metrics``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench.contract import Field
from bench.report import tables as tb
from bench.report.declared import Declared
from bench.report.formats import NA, format_value, number
from bench.results import metric_value

TITLE = "Energy with data movement"
HARDWARE = ("energy", "hardware")
COMPUTE_ONLY = ("energy", "energy_mj")
# energy.energy_mj: the literature's compute-only method (arithmetic alone) on our exact counts. Not called "the
# literature's estimate": that is energy.literature_energy_mj (the papers' formula, approximate SOPs), quoted beside.
COMPUTE_ONLY_LABEL = "compute-only estimate (Horowitz 2014 arithmetic, exact op counts)"
LITERATURE = ("energy", "literature_energy_mj")
# The GPU's measured gross energy per sample (joules; the board's counter, idle draw included): quoted beside each
# model's table, and set against every estimate in "Do the estimates predict the measurement?" (energy_plot).
MEASURED = ("measured_energy", "gpu_energy_j_per_sample")
PJ_PER_J = 1e12
SNN_PARTS = ("compute", "weights", "membrane", "spikes", "activations")  # they add up to the SNN total
MEMORY_PARTS = ("weights", "membrane", "spikes", "activations")  # the SNN's memory-traffic terms
# Cells of a term the profile does not price as such (the record's ``unpriced``, ``included``), never "0 pJ".
NOT_PRICED = "not priced"
IN_COMPUTE = "in compute"
# The neuromorphic profiles price membrane reads and writes inside neuron_update_pj (SNN compute): that term,
# listed in the record's ``included``, reads "in compute". Their other included terms hold what the chip does
# not do event by event (MAC layers' weights, output spikes) and show their value; the notes say what is in it.
IN_COMPUTE_WHEN_INCLUDED = ("membrane",)
HW_LAYERS = ("energy", "hw_layers")
# The energy model's layer kinds (``energy_model.LAYER_KINDS``), in the order the split table lists them.
LAYER_KINDS = ("event-driven", "dense", "mixed", "neuron", "data")
NAMES_SHOWN = 3  # layer names listed per kind before "+n more"
NOT_RECORDED = "not recorded"  # an energy option a record does not carry (older runs: no hw_bits)
CONVENTIONS_KEY = "hardware_profiles"  # run.json conventions: the profiles with their sources (newer runs)
SNN_CHEAPER, ANN_CHEAPER, BREAK_EVEN = "SNN cheaper", "ANN cheaper", "break-even"

# Formats of the nested values, from the declarations of the primary profile's scalar fields (these
# fallbacks only apply to a run whose declarations lack them). Nested energies are picojoules; the declared
# fields are millijoules, so cells are formatted as ``pJ / PJ_PER_MJ`` by the declared energy format.
PJ_PER_MJ = 1e9
_FALLBACK = {
    "hw_energy_mj": Field("hw_energy_mj", "energy / sample", fmt="mj"),
    "hw_ann_over_snn": Field("hw_ann_over_snn", "ANN / SNN energy with data movement", fmt="fixed2", better="higher",
                             trained_only=True),
    "mean_rate": Field("mean_rate", "mean firing rate", "%", "percent"),
    "break_even_rate": Field("break_even_rate", "break-even firing rate", "%", "percent"),
}


def declared_field(declared: Declared, name: str) -> Field:
    """The energy plug-in's declaration of ``name``, else the fallback above (same name, format)."""
    return declared.field("energy", name) or _FALLBACK[name]


@dataclass(frozen=True)
class ProfileRow:
    """One profile's numbers for one case, as recorded (picojoules per sample; rates as fractions)."""

    profile: str
    kind: str
    source: str
    snn_pj: dict[str, float | None]
    ann_pj: float | None
    ann_why: str | None
    ann_over_snn: float | None
    rate: float | None
    fixed_pj: float | None
    slope_pj: float | None
    break_even_rate: float | None
    break_even_why: str | None
    reference: str | None = None  # a neuromorphic profile's digital profile (the ANN, the SNN's MAC layers)
    included: dict[str, str] = field(default_factory=dict)  # SNN term -> where its cost is counted instead
    unpriced: tuple[str, ...] = ()  # SNN terms the profile has no cost for
    params: dict[str, Any] = field(default_factory=dict)  # notes and costs as recorded (runs since the record held them)

    def snn_at(self, rate: float) -> float | None:
        """The SNN's energy per sample (pJ) at mean firing rate ``rate`` on the profile's linear cost model."""
        if self.fixed_pj is None or self.slope_pj is None:
            return None
        return self.fixed_pj + self.slope_pj * rate


def hardware(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The record's ``energy.hardware`` profiles (empty for runs made before the plug-in priced them)."""
    value = metric_value(record, *HARDWARE)
    return {str(k): v for k, v in value.items() if isinstance(v, Mapping)} if isinstance(value, Mapping) else {}


def profile_rows(record: dict[str, Any]) -> list[ProfileRow]:
    """The record's profiles in recorded order (a missing or non-numeric value reads None, never 0)."""
    rows = []
    for name, p in hardware(record).items():
        snn = p.get("snn_pj") if isinstance(p.get("snn_pj"), Mapping) else {}
        ann = p.get("ann_pj") if isinstance(p.get("ann_pj"), Mapping) else None
        rows.append(ProfileRow(
            profile=name, kind=str(p.get("kind") or "?"), source=str(p.get("source") or "not recorded"),
            snn_pj={part: number(snn.get(part)) for part in (*SNN_PARTS, "total")},
            ann_pj=None if ann is None else number(ann.get("total")), ann_why=p.get("ann_why"),
            ann_over_snn=number(p.get("ann_over_snn")), rate=number(p.get("rate")),
            fixed_pj=number(p.get("snn_fixed_pj")), slope_pj=number(p.get("snn_slope_pj")),
            break_even_rate=number(p.get("break_even_rate")), break_even_why=p.get("break_even_why"),
            reference=p.get("reference") if isinstance(p.get("reference"), str) else None,
            included={str(k): str(v) for k, v in p["included"].items()} if isinstance(p.get("included"), Mapping) else {},
            unpriced=tuple(str(t) for t in p["unpriced"]) if isinstance(p.get("unpriced"), list) else (),
            params=({"notes": p["notes"]} if p.get("notes") else {})
            | (dict(p["costs"]) if isinstance(p.get("costs"), Mapping) else {})))
    return rows


def part_cell(f: Field, row: ProfileRow, part: str) -> str:
    """One SNN term of a profile row: its energy, or ``not priced`` / ``in compute`` where the record says the
    profile has no cost for it or counts it in another term (see ``IN_COMPUTE_WHEN_INCLUDED``)."""
    if part in row.unpriced:
        return NOT_PRICED
    if part in row.included and part in IN_COMPUTE_WHEN_INCLUDED and not row.snn_pj[part]:
        return IN_COMPUTE
    return _energy(f, row.snn_pj[part])


def pricing_note(row: ProfileRow) -> str | None:
    """What a profile's row holds beyond its own per-event costs: the terms counted elsewhere, those not priced,
    and the digital profile that prices the ANN equivalent and the SNN's MAC layers (None for a plain digital row)."""
    said = list(row.included.values())
    if row.unpriced:
        said.append(f"{NOT_PRICED}: {', '.join(row.unpriced)} (the profile's cost for them is 0)")
    if row.reference:
        said.append(f"its ANN-equivalent, and the SNN's MAC layers with their weights and real-valued data, are "
                    f"priced on the digital profile {row.reference}")
    return f"{row.profile}: " + "; ".join(said) + "." if said else None


def verdict(row: ProfileRow) -> str:
    """Which net is cheaper on this profile at the measured rate (see the module docstring)."""
    if row.break_even_rate is None:
        return f"no break-even: {row.break_even_why or 'no reason recorded'}"
    if row.rate is None or row.slope_pj is None:
        return f"{NA} (no measured firing rate)" if row.rate is None else f"{NA} (no cost slope recorded)"
    # On the line, E_snn(rate) - E_ann = slope x (rate - break-even): its sign is the verdict.
    gap = row.slope_pj * (row.rate - row.break_even_rate)
    return SNN_CHEAPER if gap < 0 else ANN_CHEAPER if gap > 0 else BREAK_EVEN


def _energy(f: Field, pj: float | None) -> str:
    return format_value(f, None if pj is None else pj / PJ_PER_MJ)


def compute_only_label(record: dict[str, Any]) -> str:
    """The label of ``energy.energy_mj`` beside these tables: arithmetic alone on the exact counts (Horowitz 2014
    for the built-in profiles; a user profile is named with its own source instead)."""
    source = str(metric_value(record, "energy", "profile_source") or "")
    if not source or "horowitz" in source.lower():
        return COMPUTE_ONLY_LABEL
    return f"compute-only estimate ({metric_value(record, 'energy', 'profile')} arithmetic: {source})"


@dataclass
class LayerSplit:
    """One model's layer split on the primary profile: one row per layer kind, its caption and notes."""

    frame: pd.DataFrame
    caption: str
    notes: list[str] = field(default_factory=list)


@dataclass
class ModelTable:
    """One model's table: the case it comes from, the frame (one row per profile), its caption and notes, the
    layer split (None where the record has no per-layer kinds) and what tells its energy configuration from the
    model's others ("" when it has one)."""

    label: str
    record: dict[str, Any]
    rows: list[ProfileRow]
    frame: pd.DataFrame
    caption: str
    notes: list[str] = field(default_factory=list)
    split: LayerSplit | None = None
    differs: str = ""

    @property
    def title(self) -> str:
        """The model's label, with its configuration where the model has several (``A (event_weight_reuse = 4)``)."""
        return f"{self.label} ({self.differs})" if self.differs else self.label


@dataclass(frozen=True)
class EnergyCase:
    """One energy configuration of a model at its main T: the first case priced with it, the configuration
    (:func:`energy_config`) and what tells it from the model's other configurations ("" when it has one)."""

    record: dict[str, Any]
    config: dict[str, str]
    differs: str


def _said(value: Any) -> str:
    return NOT_RECORDED if value is None else str(value)


def energy_config(record: dict[str, Any]) -> dict[str, str]:
    """The options that priced a record's energy figures, flat (name -> value as text): ``energy.hw_bits`` (bit
    widths, ``event_weight_reuse``, ...), ``hw_primary`` (the record's ``hw_profile``), the compute-only
    ``profile``, the profiles evaluated (``hw_evaluate``) and each one's recorded ``costs`` (``<profile>.<cost>``)."""
    bits = metric_value(record, "energy", "hw_bits")
    out = {str(k): _said(v) for k, v in bits.items()} if isinstance(bits, Mapping) else {}
    out |= {"hw_primary": _said(metric_value(record, "energy", "hw_profile")),
            "profile": _said(metric_value(record, "energy", "profile"))}
    profiles = hardware(record)
    out["hw_evaluate"] = ", ".join(sorted(profiles))
    for name, p in profiles.items():
        if isinstance(p.get("costs"), Mapping):
            out |= {f"{name}.{k}": _said(v) for k, v in p["costs"].items()}
    return out


def energy_cases(model_records: list[dict[str, Any]]) -> list[EnergyCase]:
    """A model's cases at its main T that hold hardware profiles, one per distinct energy configuration (a merged
    report of runs priced with ``event_weight_reuse = 1`` and ``4`` has two), first seen first; each names the
    options whose values differ between them (``event_weight_reuse = 4``). The first case of a configuration
    stands for its cases on other devices and batch sizes (their counts agree as far as their spikes do)."""
    first: dict[tuple[tuple[str, str], ...], tuple[dict[str, str], dict[str, Any]]] = {}
    for r in tb.at_main_T(model_records):
        if hardware(r):
            config = energy_config(r)
            first.setdefault(tuple(sorted(config.items())), (config, r))
    configs = [c for c, _ in first.values()]
    differ = [k for k in dict.fromkeys(k for c in configs for k in c)
              if len({c.get(k, NOT_RECORDED) for c in configs}) > 1]
    return [EnergyCase(r, c, ", ".join(f"{k} = {c.get(k, NOT_RECORDED)}" for k in differ))
            for c, r in first.values()]


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    return f"{len(names)}: {shown}" + (f" +{len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else "")


def _share(part: float, total: float) -> str:
    return f"{100 * part / total:.1f}" if total else NA


def _layer_terms(lay: Mapping[str, Any]) -> tuple[dict[str, float], list[str]]:
    """A ``hw_layers`` entry's terms the split sums (``snn_pj.compute``, its memory terms, ``ann_pj.total``) and
    the fields among them that are missing or not a finite number (a recorded 0.0 is a term of 0)."""
    wanted = [("snn_pj", part) for part in ("compute", *MEMORY_PARTS)] + [("ann_pj", "total")]
    terms, bad = {}, []
    for group, part in wanted:
        entry = lay.get(group)
        value = number(entry.get(part)) if isinstance(entry, Mapping) else None
        if value is None:
            bad.append(f"{group}.{part}")
        else:
            terms[f"{group}.{part}"] = value
    return terms, bad


def _partial_note(label: str, problems: list[tuple[str, str]]) -> str:
    listed = "; ".join(f"layer {name!r}: {term}" for name, term in problems[:NAMES_SHOWN])
    more = f" (+{len(problems) - NAMES_SHOWN} more)" if len(problems) > NAMES_SHOWN else ""
    return (f"No layer split for {label}: its energy.hw_layers lack a number for {listed}{more} (missing, NaN or "
            "not numeric); the split is not drawn rather than summed with that term read as 0.")


def layer_split(label: str, record: dict[str, Any], declared: Declared, differs: str = ""
                ) -> tuple[LayerSplit | None, str | None]:
    """The layer split of one model's case (see the module docstring), or None and the note saying why: None, None
    without ``hw_layers`` kinds (the caller says so); None and a note naming the model, the layer and the field when
    a term the split sums is missing, NaN or not numeric (a partial record is never summed as if it were 0)."""
    layers = metric_value(record, *HW_LAYERS)
    if not isinstance(layers, list) or not layers or not all(isinstance(x, Mapping) and x.get("kind")
                                                            for x in layers):
        return None, None
    energy = declared_field(declared, "hw_energy_mj")
    groups: dict[str, dict[str, Any]] = {}
    problems: list[tuple[str, str]] = []
    for lay in layers:
        terms, bad = _layer_terms(lay)
        problems += [(str(lay.get("name")), term) for term in bad]
        if bad:
            continue
        g = groups.setdefault(str(lay["kind"]), {"names": [], "compute": 0.0, "memory": 0.0, "ann": 0.0})
        g["names"].append(str(lay.get("name")))
        g["compute"] += terms["snn_pj.compute"]
        g["memory"] += sum(terms[f"snn_pj.{part}"] for part in MEMORY_PARTS)
        g["ann"] += terms["ann_pj.total"]
    if problems:
        return None, _partial_note(f"{label} ({differs})" if differs else label, problems)
    total = sum(g["compute"] + g["memory"] for g in groups.values())
    order = [k for k in LAYER_KINDS if k in groups] + sorted(set(groups) - set(LAYER_KINDS))
    rows = [{"layer kind": kind, "layers": _names(groups[kind]["names"]),
             "compute": _energy(energy, groups[kind]["compute"]), "memory traffic": _energy(energy, groups[kind]["memory"]),
             "SNN total": _energy(energy, groups[kind]["compute"] + groups[kind]["memory"]),
             "share (%)": _share(groups[kind]["compute"] + groups[kind]["memory"], total),
             "ANN-equivalent": _energy(energy, groups[kind]["ann"])} for kind in order]
    compute = sum(g["compute"] for g in groups.values())
    part = {k: groups[k]["compute"] + groups[k]["memory"] if k in groups else 0.0 for k in ("event-driven", "dense")}
    notes = [f"SNN total {_energy(energy, total)}: compute {_energy(energy, compute)} ({_share(compute, total)} %), "
             f"memory traffic {_energy(energy, total - compute)} ({_share(total - compute, total)} %); event-driven "
             f"part {_energy(energy, part['event-driven'])} ({_share(part['event-driven'], total)} %), dense part "
             f"{_energy(energy, part['dense'])} ({_share(part['dense'], total)} %)."]
    profile = metric_value(record, "energy", "hw_profile") or "the primary profile"
    caption = (f"{_who(label, record, differs)}: the SNN's layers on {profile}, by how the energy model prices them "
               "(event-driven: spike input, per event; dense: real-valued input, MACs at every call, e.g. the "
               "encoding conv; neuron: membrane updates).")
    return LayerSplit(pd.DataFrame(rows), caption, notes), None


def _who(label: str, record: dict[str, Any], differs: str) -> str:
    return f"{label} at T={record['T']}" + (f" with {differs}" if differs else "")


def model_table(label: str, record: dict[str, Any], basis: str, declared: Declared, differs: str = "") -> ModelTable:
    """The table of one model's case at its main T (``basis``: why that T, see ``tables.MainT``; ``differs``: what
    tells its energy configuration from the model's others, see :func:`energy_cases`)."""
    energy = declared_field(declared, "hw_energy_mj")
    ratio, rate, even = (declared_field(declared, n) for n in ("hw_ann_over_snn", "mean_rate", "break_even_rate"))
    untrained = tb.untrained(record)
    rows = profile_rows(record)
    table, notes = [], []
    for row in rows:
        cells: dict[str, Any] = {"profile": row.profile, "kind": row.kind}
        cells |= {f"SNN {part}": part_cell(energy, row, part) for part in SNN_PARTS}
        cells["SNN total"] = _energy(energy, row.snn_pj["total"])
        cells["ANN-equivalent"] = _energy(energy, row.ann_pj)
        cells[ratio.column] = tb.UNTRAINED_MARK if untrained and ratio.trained_only else format_value(ratio, row.ann_over_snn)
        cells["measured firing rate (%)"] = format_value(rate, row.rate)
        cells["break-even rate (%)"] = format_value(even, row.break_even_rate)
        decided = verdict(row)
        cells["verdict"] = tb.UNTRAINED_MARK if untrained and decided in (SNN_CHEAPER, ANN_CHEAPER, BREAK_EVEN) else decided
        table.append(cells)
        if row.ann_pj is None:
            notes.append(f"ANN-equivalent, {row.profile}: {NA} ({row.ann_why or 'no reason recorded'})")
        if (said := pricing_note(row)) is not None:
            notes.append(said)
    compute_only = metric_value(record, *COMPUTE_ONLY)
    if compute_only is not None:
        profile = metric_value(record, "energy", "profile")
        mj = declared.field(*COMPUTE_ONLY) or energy
        literature = metric_value(record, *LITERATURE)
        quoted = ("" if literature is None else f"; the papers' formula (approximate SOPs = rate x T x dense MACs): "
                  f"{format_value(mj, literature)} (energy.literature_energy_mj)")
        notes.append(f"{compute_only_label(record)}: {format_value(mj, compute_only)} per sample (energy.energy_mj, "
                     f"profile {profile}): arithmetic only, no memory traffic{quoted}.")
    caption = (f"{_who(label, record, differs)} ({basis}; weights: {tb.weights_short(record)}): energy per sample on "
               "each hardware profile, SNN split into compute, weight, membrane, spike and real-valued activation traffic "
               "(the parts add up to the SNN total).")
    split, why = layer_split(label, record, declared, differs)
    if why is not None:
        notes.append(why)
    elif split is None and hardware(record):
        notes.append("No layer split: this run's energy.hw_layers carry no layer kinds (recorded before they were).")
    return ModelTable(label, record, rows, pd.DataFrame(table), caption, notes, split, differs)


def measured_notes(records: list[dict[str, Any]], T: int, declared: Declared) -> list[str]:
    """One note per device with a measured gross energy per sample (``MEASURED``) of this model (``records``: its
    cases) at ``T`` and the largest batch run there (the estimated-vs-measured rule), in the cells' energy unit; no
    note where none was measured (CPU runs) or the value is missing or NaN (never shown as 0)."""
    energy = declared_field(declared, "hw_energy_mj")
    notes = []
    at_T = [r for r in tb.ok_records(records) if r["T"] == T]
    for device in dict.fromkeys(tb.device_label(r) for r in at_T):
        case = max((r for r in at_T if tb.device_label(r) == device), key=lambda r: r.get("batch_size") or 0)
        joules = number(metric_value(case, *MEASURED))
        if joules is not None:
            notes.append(f"measured on {device}, batch {case.get('batch_size')}: {_energy(energy, joules * PJ_PER_J)} "
                         f"per sample, gross ({'.'.join(MEASURED)}: the whole board's energy counter, idle draw "
                         "included; a measurement of this GPU, not of the profiles above, so it checks their ranking "
                         "and scaling, not their values)")
    return notes


def headline_note(records: list[dict[str, Any]]) -> str | None:
    """The headline's note naming the hardware profile its data-movement columns (``hw_*``, break-even rate) are
    on: they are one profile's figures (``energy.hw_profile``), which the column names alone do not say."""
    names = []
    for r in tb.ok_records(records):
        if not hardware(r) or not (name := metric_value(r, "energy", "hw_profile")):
            continue
        reference = (hardware(r).get(str(name)) or {}).get("reference")
        names.append(f"{name} (its ANN equivalent on {reference})" if isinstance(reference, str) else str(name))
    names = list(dict.fromkeys(names))
    if not names:
        return None
    return (f"energy with data movement, its ANN / SNN ratio and the break-even firing rate: on hardware profile "
            f"{', '.join(names)} (energy.hw_profile); every profile is in \"{TITLE}\"." + shown_cases_note(records))


def shown_cases_note(records: list[dict[str, Any]]) -> str:
    """For each model priced with several energy configurations (merged runs), which one the headline's energy
    columns show (its first case reporting ``hw_energy_mj``) and which others only the section has; "" if none."""
    said = []
    for label, recs in tb.by_model(records).items():
        cases = energy_cases(recs)
        shown = tb.first_reporting(tb.at_main_T(recs), "energy", "hw_energy_mj")
        if len(cases) < 2 or shown is None:
            continue
        config = energy_config(shown)
        others = [c.differs for c in cases if c.config != config]
        said.append(f"{label}: the headline shows the case with {next(c.differs for c in cases if c.config == config)}"
                    f"; \"{TITLE}\" also shows {'; '.join(others)}")
    return "".join(f" {s}." for s in said)


def model_tables(records: list[dict[str, Any]], declared: Declared) -> tuple[list[ModelTable], list[str]]:
    """One table per model and energy configuration (:func:`energy_cases`) at the model's main T, the
    configuration named in its caption where the model has several; the section's notes: models without one,
    and the untrained note once when some table is of an untrained net."""
    tables, notes = [], []
    for label, recs in tb.by_model(records).items():
        main = tb.main_T(recs)
        cases = energy_cases(recs)
        for c in cases:
            table = model_table(label, c.record, main.basis, declared, c.differs)
            table.notes += measured_notes(recs, c.record["T"], declared)
            tables.append(table)
        if not cases and any(hardware(r) for r in recs):
            notes.append(f"{label}: no hardware profiles recorded at its main T={main.T}")
    if any(tb.untrained(t.record) for t in tables):
        ratio = declared_field(declared, "hw_ann_over_snn")
        notes.insert(0, tb.untrained_note([ratio.column, "verdict"]) + " The break-even rate is a property of the "
                     "cost model and the architecture, shown as it is.")
    notes += assumptions_notes(tables)
    return tables, notes


def assumptions_notes(tables: list[ModelTable]) -> list[str]:
    """The bit widths and weight-reuse factors the tables were priced with (the records' ``energy.hw_bits``: the
    suite's ``[metrics.energy]`` options, e.g. ``event_weight_reuse``), which the figures depend on and the rules
    state only as defaults: one note when every table shares them, else one per set with its models."""
    models: dict[str, list[str]] = {}
    for t in tables:
        bits = metric_value(t.record, "energy", "hw_bits")
        if isinstance(bits, Mapping) and bits:
            models.setdefault(", ".join(f"{k} = {v}" for k, v in bits.items()), []).append(t.title)
    if len(models) == 1:
        return [f"priced with (energy.hw_bits): {next(iter(models))}"]
    return [f"{', '.join(labels)} priced with (energy.hw_bits): {said}" for said, labels in models.items()]


def _scalars(entry: Mapping[str, Any]) -> str:
    return "; ".join(f"{k} = {v}" for k, v in entry.items()
                     if k not in ("name", "kind", "source") and isinstance(v, (str, int, float)) and v != "")


def stored_profiles(conventions: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The hardware profiles the runs' conventions store (``hardware_profiles``: a table by name or a list of
    tables with a ``name``); empty for runs made before they were stored."""
    out: dict[str, Mapping[str, Any]] = {}
    for conv in conventions.values():
        stored = conv.get(CONVENTIONS_KEY) if isinstance(conv, Mapping) else None
        entries = (stored.items() if isinstance(stored, Mapping) else
                   [(e.get("name"), e) for e in stored if isinstance(e, Mapping)] if isinstance(stored, list) else [])
        for name, entry in entries:
            if name is not None and isinstance(entry, Mapping):
                out.setdefault(str(name), entry)
    return out


def profiles_markdown(tables: list[ModelTable], declared: Declared) -> str:
    """The profiles the tables use, each with its kind, source and parameters: those the records hold (what priced
    them; a user profile's are nowhere else), else those run.json's conventions store (built-in profiles)."""
    stored = stored_profiles(declared.conventions)
    lines = ["Hardware profiles:", ""]
    seen: dict[str, ProfileRow] = {}
    for t in tables:
        for row in t.rows:
            seen.setdefault(row.profile, row)
    for name, row in seen.items():
        entry = {"kind": row.kind, "source": row.source, **row.params} if row.params else stored.get(name, {})
        params = _scalars(entry)
        lines.append(f"- **{name}** ({entry.get('kind') or row.kind}): {entry.get('source') or row.source}"
                     + (f" ({params})" if params else ""))
    return "\n".join(lines) + "\n"


INTRO = ("Energy per sample of each model at its main T on hardware profiles that price memory traffic as well "
         "as arithmetic: the SNN's weight reads, membrane-state reads and writes, spike traffic and real-valued "
         "activation traffic beside its compute, and the ANN equivalent (the same layers run densely) on the same "
         "profile (a neuromorphic chip's on its digital reference profile, named under its table). The SNN's energy "
         "is linear in its mean firing rate r, E(r) = fixed + slope x r; the break-even rate is the r at which "
         "it equals the ANN's. Verdict: at the measured rate, SNN cheaper (below break-even) or ANN cheaper "
         "(above); no break-even, with the energy plug-in's reason, where the two do not meet. These figures "
         f"differ from the {COMPUTE_ONLY_LABEL} in the headline's compute-only energy columns, which price "
         "arithmetic alone.")
