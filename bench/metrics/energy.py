"""Energy per sample from operation counts and per-operation costs (plug-in ``energy``).

Conventions and built-in profiles: ``bench.metrics.conventions`` (``ENERGY_RULES``, ``ENERGY_PROFILES``),
rendered into every report. ``E = MACs x mac_pj + ACs x ac_pj (+ neuron updates x neuron_update_pj when the
profile prices them)``; the ANN-equivalent ``E_ANN = ann MACs x mac_pj``, ann MACs = the dense MACs of ONE
inference of a same-shape ANN (not the T-step total ``dense_macs``); the literature's figure
``MACs x mac_pj + approx SOPs x ac_pj`` beside it. Compute energy only: no memory access.

With data movement (``hw_*`` fields, ``hardware`` table): :mod:`bench.metrics.energy_model` prices compute,
weight, membrane and spike traffic of the SNN and its ANN equivalent on hardware profiles
(:mod:`bench.metrics.hardware`), with the break-even firing rate; from the same counts, no extra pass.

Optionally (``[metrics.energy] memory_aware = true``) spikingjelly 2.0's ``SimpleEnergyProfiler`` adds a
second, separately labelled figure that includes parameter and neuron-state memory traffic; it runs its
own forward pass under a dispatch-mode counter (several times slower than a plain forward) and uses its
own counting rules, so it is not comparable term by term with ours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from bench.contract import Field, Option, OptionError, Tolerance
from bench.metrics.base import CaseContext, register_metric
from bench.metrics.conventions import ENERGY_PROFILES, EnergyProfile
from bench.metrics.energy_model import BitWidths, HardwareEstimate, ann_bits_for_T, estimate_hardware_energy
from bench.metrics.firing import FiringReport
from bench.metrics.hardware import resolve_hardware_profiles
from bench.metrics.ops import OpsReport, case_reports
from bench.metrics.probe import probe_cost

__all__ = ["EnergyEstimate", "EnergyProfile", "HardwareEstimate", "estimate_energy", "estimate_hardware_energy",
           "get_profile", "hardware_record", "profile_from_dict", "spikingjelly_simple_energy"]

PJ_PER_MJ = 1e9


def profile_from_dict(d: Mapping[str, Any]) -> EnergyProfile:
    """A user profile from a suite table: ``name``, ``mac_pj``, ``ac_pj``, ``source`` (required),
    ``neuron_update_pj`` and ``notes`` (optional, text). Raises ValueError naming the field and the fix; a profile
    whose every cost is 0 prices nothing and is refused (one cost of 0 is allowed)."""
    if not isinstance(d, Mapping):
        raise ValueError(f"an energy profile must be a table with name, mac_pj, ac_pj, source; got {d!r}")
    allowed = {"name", "mac_pj", "ac_pj", "source", "neuron_update_pj", "notes"}
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ValueError(f"energy profile {d.get('name', '?')!r}: unknown field(s) {unknown}; allowed: {sorted(allowed)}")
    missing = [k for k in ("name", "mac_pj", "ac_pj", "source") if k not in d]
    if missing:
        raise ValueError(f"energy profile {d.get('name', '?')!r} lacks {missing}: give every profile a name, "
                         "mac_pj and ac_pj (picojoules per operation) and the source of those numbers")
    name = d["name"]
    if not isinstance(name, str) or not name:
        raise ValueError(f"energy profile name must be a non-empty string, got {name!r}")
    if not isinstance(d["source"], str) or not d["source"].strip():
        raise ValueError(f"energy profile {name!r}: 'source' must say where the numbers come from (a citation)")
    values = {}
    for key in ("mac_pj", "ac_pj", "neuron_update_pj"):
        v = d.get(key)
        if v is None and key == "neuron_update_pj":
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"energy profile {name!r}: {key} must be a finite number >= 0 (picojoules), got {v!r}")
        values[key] = float(v)
    if not any(values.values()):
        raise ValueError(f"energy profile {name!r}: every cost ({', '.join(values)}) is 0, so it prices nothing; "
                         "give the energies its source states (picojoules per operation)")
    notes = d.get("notes", "")
    if not isinstance(notes, str):
        raise ValueError(f"energy profile {name!r}: notes must be text (a string), got {notes!r}")
    return EnergyProfile(name=name, source=d["source"], notes=notes, **values)


def parse_user_profiles(user_profiles: Mapping[str, Any] | list[Any] | None) -> dict[str, EnergyProfile]:
    """A suite's compute-only profiles by name: a table keyed by name (``profiles = { mychip = {...} }``, each
    entry named by its key) or a list of tables with ``name``. A built-in's name is refused: a report would
    print other constants under it. Raises ValueError naming the profile and the fix."""
    entries = ([{"name": key, **entry} if isinstance(entry, Mapping) else entry for key, entry in user_profiles.items()]
               if isinstance(user_profiles, Mapping) else (user_profiles or []))
    users: dict[str, EnergyProfile] = {}
    for entry in entries:
        p = profile_from_dict(entry)
        if p.name in ENERGY_PROFILES:
            raise ValueError(f"energy profile {p.name!r} is a built-in profile's name; give yours another name "
                             f"(e.g. {p.name + '-mine'!r}) so no report shows other constants under a built-in's name")
        users[p.name] = p
    return users


def get_profile(profile: str | Mapping[str, Any] | EnergyProfile,
                user_profiles: Mapping[str, Any] | list[Any] | None = None) -> EnergyProfile:
    """A profile by name (user profiles first, then built-ins), or from a dict / EnergyProfile."""
    if isinstance(profile, EnergyProfile):
        return profile
    if isinstance(profile, Mapping):
        return profile_from_dict(profile)
    users = parse_user_profiles(user_profiles)
    if profile in users:
        return users[profile]
    if profile in ENERGY_PROFILES:
        return ENERGY_PROFILES[profile]
    known = sorted({*ENERGY_PROFILES, *users})
    raise ValueError(f"unknown energy profile {profile!r}; choose one of {known} or define it under "
                     "[metrics.energy] profiles with name, mac_pj, ac_pj, source")


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy per sample in picojoules (``*_pj``), with the profile that priced it."""

    profile: EnergyProfile
    energy_pj: float  # MACs + ACs (+ neuron updates when priced)
    mac_energy_pj: float
    ac_energy_pj: float
    neuron_energy_pj: float | None  # None: the profile does not price neuron updates
    ann_energy_pj: float  # ann MACs (one inference of the same-shape ANN) x mac_pj
    literature_energy_pj: float  # MACs x mac_pj + approx SOPs x ac_pj
    complete: bool  # False when the op counts had uncounted modules
    layers: list[dict[str, Any]]

    @property
    def ann_over_snn(self) -> float | None:
        """ANN-equivalent energy / SNN energy: above 1, the SNN is cheaper (None when E is 0)."""
        return self.ann_energy_pj / self.energy_pj if self.energy_pj else None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "profile": self.profile.name, "profile_source": self.profile.source,
            "mac_pj": self.profile.mac_pj, "ac_pj": self.profile.ac_pj,
            "neuron_update_pj": self.profile.neuron_update_pj,
            "energy_mj": self.energy_pj / PJ_PER_MJ, "mac_energy_mj": self.mac_energy_pj / PJ_PER_MJ,
            "ac_energy_mj": self.ac_energy_pj / PJ_PER_MJ,
            "neuron_energy_mj": None if self.neuron_energy_pj is None else self.neuron_energy_pj / PJ_PER_MJ,
            "ann_energy_mj": self.ann_energy_pj / PJ_PER_MJ, "ann_over_snn": self.ann_over_snn,
            "literature_energy_mj": self.literature_energy_pj / PJ_PER_MJ,
            "per": "sample", "complete": self.complete, "layers": self.layers,
        }
        if out["neuron_energy_mj"] is None:
            out["neuron_energy_mj_why"] = f"profile {self.profile.name!r} does not price neuron updates"
        if out["ann_over_snn"] is None:
            out["ann_over_snn_why"] = "SNN energy is 0"
        return out


def _ann_macs(lay: Any) -> float:
    """One-inference dense MACs of a layer; a report without them (hand-built) is refused, never read as 0."""
    if lay.ann_macs is None:
        if lay.dense_macs:
            raise ValueError(f"layer {lay.name!r} has dense MACs but no ann_macs (one-inference ANN MACs): count "
                             "with bench.metrics.ops (snnbench-ops-v3 or later)")
        return 0.0
    return lay.ann_macs


def estimate_energy(ops: OpsReport, profile: str | Mapping[str, Any] | EnergyProfile = "45nm-fp32",
                    user_profiles: Mapping[str, Any] | list[Any] | None = None) -> EnergyEstimate:
    """Price an :class:`OpsReport` (per-sample counts) with a profile; see ``conventions.ENERGY_RULES``."""
    p = get_profile(profile, user_profiles)
    t = ops.totals
    mac_e, ac_e = t["macs"] * p.mac_pj, t["acs"] * p.ac_pj
    neuron_e = None if p.neuron_update_pj is None else t["neuron_updates"] * p.neuron_update_pj
    layers = []
    for lay in ops.layers:
        if not lay.counted:
            continue
        e = (lay.macs or 0.0) * p.mac_pj + (lay.acs or 0.0) * p.ac_pj
        if neuron_e is not None:
            e += (lay.neuron_updates or 0.0) * p.neuron_update_pj
        if e or lay.dense_macs:
            layers.append({"name": lay.name, "energy_pj": e, "ann_energy_pj": _ann_macs(lay) * p.mac_pj})
    return EnergyEstimate(
        profile=p, energy_pj=mac_e + ac_e + (neuron_e or 0.0), mac_energy_pj=mac_e, ac_energy_pj=ac_e,
        neuron_energy_pj=neuron_e, ann_energy_pj=sum(_ann_macs(lay) for lay in ops.layers if lay.counted) * p.mac_pj,
        literature_energy_pj=mac_e + t["approx_sops"] * p.ac_pj, complete=ops.complete, layers=layers,
    )


def spikingjelly_simple_energy(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """spikingjelly 2.0 ``SimpleEnergyProfiler`` (fp32 Horowitz ops + 24.96 pJ/byte memory) on one batch,
    per sample. Its own rules and an extra, slow forward pass: a second figure, never mixed with ours."""
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.op_counter import SimpleEnergyProfiler

    prof = SimpleEnergyProfiler()
    prof.bind_model(model)
    was_training = [m for m in model.modules() if m.training]
    model.eval()
    try:
        functional.reset_net(model)
        with torch.no_grad(), prof:
            model(x)
    finally:
        for m in was_training:
            m.training = True
        functional.reset_net(model)
    rep = prof.get_report()
    n = x.shape[1]
    return {
        "sj_simple_energy_mj": rep.energy_total_pj / n / PJ_PER_MJ,
        "sj_simple_compute_mj": rep.energy_compute_pj / n / PJ_PER_MJ,
        "sj_simple_memory_mj": rep.energy_memory_pj / n / PJ_PER_MJ,
        "sj_simple_model": "spikingjelly 2.0 SimpleEnergyProfiler (fp32 MAC 4.6 / AC 0.9 pJ, memory 24.96 pJ/byte)",
    }


_EXACT_ENERGY = Tolerance(rel=1e-9)
FIELDS = (
    Field("energy_mj", "compute-only energy / sample", "", "mj", "lower", "MACs x MAC cost + ACs x AC cost (+ neuron updates "
          "when the profile prices them): compute only, an estimate, not a measurement", headline=True, summary=True,
          tolerance=_EXACT_ENERGY),
    Field("ann_energy_mj", "ANN-equivalent compute-only energy / sample", "", "mj", description="dense MACs of ONE inference of a "
          "same-shape ANN x MAC cost (compute only)", headline=True, tolerance=_EXACT_ENERGY),
    Field("ann_over_snn", "ANN / SNN compute-only energy", "", "fixed2", "higher", "compute only; above 1 the SNN's estimate is "
          "lower", headline=True, trained_only=True),
    Field("mac_energy_mj", "MAC energy", "", "mj", description="MACs x MAC cost"),
    Field("ac_energy_mj", "AC energy", "", "mj", description="ACs x AC cost"),
    Field("neuron_energy_mj", "neuron-update energy", "", "mj", description="neuron updates x their cost"),
    Field("literature_energy_mj", "literature estimate", "", "mj",
          description="MACs x MAC cost + approx. SOPs x AC cost (the papers' compute-only formula)"),
    Field("profile", "energy profile", fmt="text", description="per-operation costs used"),
    Field("profile_source", "profile source", fmt="text", description="where the costs come from"),
    Field("profile_notes", "profile notes", fmt="text"),
    Field("mac_pj", "MAC cost", "pJ", "sig"),
    Field("ac_pj", "AC cost", "pJ", "sig"),
    Field("neuron_update_pj", "neuron-update cost", "pJ", "sig"),
    Field("complete", "complete", fmt="text", description="the op counts had no uncounted module"),
    Field("per", "unit", fmt="text"),
    Field("convention", "convention", fmt="text", description="id of the counting conventions applied"),
    Field("hw_profile", "hardware profile", fmt="text", description="primary profile of the data-movement model"),
    Field("hw_energy_mj", "energy with data movement / sample", "", "mj", "lower", "SNN compute + weight, membrane, "
          "spike and activation traffic on the primary hardware profile (an estimate)", headline=True,
          tolerance=_EXACT_ENERGY),
    Field("hw_ann_energy_mj", "ANN-equivalent energy with data movement", "", "mj", description="one inference of "
          "the same-shape ANN: compute + weight and activation traffic on the primary profile",
          tolerance=_EXACT_ENERGY),
    Field("hw_ann_over_snn", "ANN / SNN energy with data movement", "", "fixed2", "higher", "above 1 the SNN's "
          "estimate is lower once memory traffic is counted", headline=True, trained_only=True),
    Field("hw_compute_mj", "SNN compute", "", "mj", description="MACs, ACs and neuron updates", tolerance=_EXACT_ENERGY),
    Field("hw_weight_mj", "SNN weight reads", "", "mj", description="one read per event_weight_reuse SOPs "
          "(default 1); dense layers per output tile", tolerance=_EXACT_ENERGY),
    Field("hw_membrane_mj", "SNN membrane traffic", "", "mj", description="one read and one write per neuron per step",
          tolerance=_EXACT_ENERGY),
    Field("hw_spike_mj", "SNN spike traffic", "", "mj", description="spike writes and reads (address events or "
          "bitmap)", tolerance=_EXACT_ENERGY),
    Field("hw_activation_mj", "SNN analog-activation traffic", "", "mj", description="real-valued inputs read, "
          "analog neuron outputs written", tolerance=_EXACT_ENERGY),
    Field("break_even_rate", "break-even firing rate", "%", "percent", "higher", "mean firing rate at which the "
          "SNN's estimate equals the ANN's on the primary profile (event counts scaled with the rate; a property "
          "of the cost structure, so shown for untrained nets too)", headline=True),
    Field("mean_rate", "measured firing rate", "%", "percent", description="network mean firing rate of this pass"),
    Field("sj_simple_energy_mj", "spikingjelly memory-aware energy", "", "mj",
          description="spikingjelly 2.0 SimpleEnergyProfiler, compute + memory (memory_aware = true)"),
    Field("sj_simple_compute_mj", "spikingjelly compute energy", "", "mj"),
    Field("sj_simple_memory_mj", "spikingjelly memory energy", "", "mj"),
    Field("sj_simple_model", "spikingjelly energy model", fmt="text"),
)

PRIMARY_HARDWARE = "45nm-sram"


def _bit_widths(options: dict[str, Any], T: int) -> BitWidths:
    ann = ann_bits_for_T(T) if options.get("ann_bits_from_T", False) else options.get("activation_bits", 8)
    return BitWidths(weight=options.get("weight_bits", 8), membrane=options.get("membrane_bits", 16),
                     activation=options.get("activation_bits", 8), ann_activation=ann,
                     spike_format=options.get("spike_format", "address"),
                     address_bits=options.get("spike_address_bits", 16),
                     dense_reuse=options.get("dense_weight_reuse", 16),
                     event_reuse=options.get("event_weight_reuse", 1))


def hardware_record(ops: OpsReport, firing: FiringReport | None, options: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
    """The energy record's data-movement part: ``hardware`` (every evaluated profile), ``hw_layers`` and the
    primary profile's scalars (``hw_*``, ``break_even_rate``, ``mean_rate``), from ``[metrics.energy]``
    options (validated at suite load)."""
    options = options or {}
    chosen, table = resolve_hardware_profiles(options.get("hardware_profiles"), options.get("hw_evaluate") or ())
    primary = options.get("hw_primary", PRIMARY_HARDWARE)
    bits = _bit_widths(options, ops.T)
    estimates = {name: estimate_hardware_energy(ops, firing, p, table, bits) for name, p in chosen.items()}
    if primary not in estimates:
        estimates[primary] = estimate_hardware_energy(ops, firing, table[primary], table, bits)
    main = estimates[primary]
    rate, why = main.break_even()
    out: dict[str, Any] = {
        "hardware": {name: est.to_dict() for name, est in estimates.items()},
        "hw_profile": primary, "hw_layers": main.layers,
        "hw_bits": {"weight": bits.weight, "membrane": bits.membrane, "activation": bits.activation,
                    "ann_activation": bits.ann_activation, "spike_format": bits.spike_format,
                    "spike_address_bits": bits.address_bits, "dense_weight_reuse": bits.dense_reuse,
                    "event_weight_reuse": bits.event_reuse},
        "hw_energy_mj": main.snn["total"] / PJ_PER_MJ, "hw_ann_energy_mj": main.ann["total"] / PJ_PER_MJ,
        "hw_ann_over_snn": main.ann_over_snn,
        "hw_compute_mj": main.snn["compute"] / PJ_PER_MJ, "hw_weight_mj": main.snn["weights"] / PJ_PER_MJ,
        "hw_membrane_mj": main.snn["membrane"] / PJ_PER_MJ, "hw_spike_mj": main.snn["spikes"] / PJ_PER_MJ,
        "hw_activation_mj": main.snn["activations"] / PJ_PER_MJ,
        "break_even_rate": rate, "mean_rate": main.rate,
    }
    if why is not None:
        out["break_even_rate_why"] = why
    if main.rate is None:
        out["mean_rate_why"] = "no spiking layer"
    if out["hw_ann_over_snn"] is None:
        out["hw_ann_over_snn_why"] = "SNN energy is 0"
    return out


def _check_profile(options: dict[str, Any]) -> None:
    """The named profiles must exist and every user profile (compute-only or hardware) must be well formed."""
    try:  # a bad user profile is named under profiles, not profile
        parse_user_profiles(options["profiles"])
    except ValueError as exc:
        raise OptionError("profiles", str(exc), "give every profile its own name, mac_pj and ac_pj (picojoules per "
                          "operation) and the source of those numbers") from exc
    try:
        get_profile(options["profile"], options["profiles"])
    except ValueError as exc:
        raise OptionError("profile", str(exc), "name a built-in profile or define it under profiles") from exc
    try:
        _, table = resolve_hardware_profiles(options["hardware_profiles"])
    except ValueError as exc:
        raise OptionError("hardware_profiles", str(exc), "give every hardware profile a kind, a source and the "
                          "fields its kind needs (README: Energy with data movement)") from exc
    unknown = [n for n in options["hw_evaluate"] if n not in table]
    if unknown:
        raise OptionError("hw_evaluate", f"unknown hardware profile(s) {unknown}",
                          f"choose from {sorted(table)} or define them under hardware_profiles")
    if options["hw_primary"] not in table:
        raise OptionError("hw_primary", f"unknown hardware profile {options['hw_primary']!r}",
                          f"choose one of {sorted(table)}")


OPTIONS = (
    Option("profile", str, "45nm-fp32", "energy profile name (built-in or defined under profiles)"),
    Option("profiles", dict, {}, "user profiles: { name = { mac_pj, ac_pj, source, ... } }"),
    Option("memory_aware", bool, False, "add spikingjelly's memory-aware SimpleEnergyProfiler figure"),
    Option("hardware_profiles", dict, {}, "user hardware profiles: { name = { kind, source, ... } }"),
    Option("hw_evaluate", list, [], "hardware profiles to evaluate (empty: every built-in and user one)",
           item_type=str),
    Option("hw_primary", str, PRIMARY_HARDWARE, "hardware profile of the headline hw_* fields"),
    Option("weight_bits", int, 8, "weight width of both networks (bits)", minimum=1, maximum=64),
    Option("membrane_bits", int, 16, "membrane-potential and accumulator width (bits)", minimum=1, maximum=64),
    Option("activation_bits", int, 8, "width of real-valued activations (SNN inputs, ANN activations)",
           minimum=1, maximum=64),
    Option("ann_bits_from_T", bool, False, "ANN activations at ceil(log2(T+1)) bits (Yan et al.) instead of "
           "activation_bits"),
    Option("spike_format", str, "address", "spike traffic: one address event per spike, or a bitmap "
           "(1 bit per neuron and step)", choices=("address", "bitmap")),
    Option("spike_address_bits", int, 16, "bits of one address event", minimum=1, maximum=64),
    Option("dense_weight_reuse", int, 16, "output positions one weight read serves in dense (analog-input) layers",
           minimum=1),
    Option("event_weight_reuse", int, 1, "synaptic ops one weight read serves in event-driven layers on digital "
           "profiles (1: a read per SOP; above 1 reads may fall below one per weight at low rates, an optimistic "
           "bound; neuromorphic sop_pj unaffected)", minimum=1),
)


@register_metric("energy", "energy per sample from op counts x per-operation costs (profile with its source), and "
                 "with data movement on hardware profiles",
                 fields=FIELDS, options=OPTIONS, check_options=_check_profile, cost=probe_cost("energy"))
def energy_metric(ctx: CaseContext) -> dict[str, Any]:
    """Energy of the case's op counts (shared pass with ``ops``/``firing``), ANN-equivalent and ratio, compute
    only and with data movement."""
    firing, ops = case_reports(ctx)
    est = estimate_energy(ops, ctx.option("energy", "profile", "45nm-fp32"), ctx.option("energy", "profiles"))
    out = est.to_dict()
    out["profile_notes"] = est.profile.notes
    out["convention"] = ops.convention
    out.update(hardware_record(ops, firing, ctx.options.get("energy", {})))
    if ctx.option("energy", "memory_aware", False):
        out.update(spikingjelly_simple_energy(ctx.model, ctx.sample_batch()[0]))
    return out
