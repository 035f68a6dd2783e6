"""Energy per sample from operation counts and per-operation costs (plug-in ``energy``).

Conventions and built-in profiles: ``bench.metrics.conventions`` (``ENERGY_RULES``, ``ENERGY_PROFILES``),
rendered into every report. ``E = MACs x mac_pj + ACs x ac_pj (+ neuron updates x neuron_update_pj when the
profile prices them)``; the ANN-equivalent ``E_ANN = dense MACs x mac_pj``; the literature's figure
``MACs x mac_pj + approx SOPs x ac_pj`` beside it. Compute energy only: no memory access.

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
from bench.metrics.ops import OpsReport, case_reports
from bench.metrics.probe import probe_cost

__all__ = ["EnergyEstimate", "EnergyProfile", "estimate_energy", "get_profile", "profile_from_dict",
           "spikingjelly_simple_energy"]

PJ_PER_MJ = 1e9


def profile_from_dict(d: Mapping[str, Any]) -> EnergyProfile:
    """A user profile from a suite table: ``name``, ``mac_pj``, ``ac_pj``, ``source`` (required),
    ``neuron_update_pj`` and ``notes`` (optional). Raises ValueError naming the field and the fix."""
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
    return EnergyProfile(name=name, source=d["source"], notes=str(d.get("notes", "")), **values)


def get_profile(profile: str | Mapping[str, Any] | EnergyProfile,
                user_profiles: Mapping[str, Any] | list[Any] | None = None) -> EnergyProfile:
    """A profile by name (user profiles first, then built-ins), or from a dict / EnergyProfile."""
    if isinstance(profile, EnergyProfile):
        return profile
    if isinstance(profile, Mapping):
        return profile_from_dict(profile)
    users: dict[str, EnergyProfile] = {}
    # A table keyed by name (the suite's ``profiles = { mychip = {...} }``) names each entry by its key.
    entries = ([{"name": key, **entry} if isinstance(entry, Mapping) else entry for key, entry in user_profiles.items()]
               if isinstance(user_profiles, Mapping) else (user_profiles or []))
    for entry in entries:
        p = profile_from_dict(entry)
        users[p.name] = p
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
    ann_energy_pj: float  # dense MACs x mac_pj
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
            layers.append({"name": lay.name, "energy_pj": e, "ann_energy_pj": (lay.dense_macs or 0.0) * p.mac_pj})
    return EnergyEstimate(
        profile=p, energy_pj=mac_e + ac_e + (neuron_e or 0.0), mac_energy_pj=mac_e, ac_energy_pj=ac_e,
        neuron_energy_pj=neuron_e, ann_energy_pj=t["dense_macs"] * p.mac_pj,
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
    Field("energy_mj", "est. energy / sample", "", "mj", "lower", "MACs x MAC cost + ACs x AC cost (+ neuron updates "
          "when the profile prices them): an estimate, not a measurement", headline=True, summary=True,
          tolerance=_EXACT_ENERGY),
    Field("ann_energy_mj", "ANN-equivalent energy / sample", "", "mj", description="dense MACs x MAC cost",
          headline=True, tolerance=_EXACT_ENERGY),
    Field("ann_over_snn", "ANN / SNN energy", "", "fixed2", "higher", "above 1 the SNN's estimate is lower",
          headline=True, trained_only=True),
    Field("mac_energy_mj", "MAC energy", "", "mj", description="MACs x MAC cost"),
    Field("ac_energy_mj", "AC energy", "", "mj", description="ACs x AC cost"),
    Field("neuron_energy_mj", "neuron-update energy", "", "mj", description="neuron updates x their cost"),
    Field("literature_energy_mj", "literature estimate", "", "mj",
          description="MACs x MAC cost + approx. SOPs x AC cost (the papers' formula)"),
    Field("profile", "energy profile", fmt="text", description="per-operation costs used"),
    Field("profile_source", "profile source", fmt="text", description="where the costs come from"),
    Field("profile_notes", "profile notes", fmt="text"),
    Field("mac_pj", "MAC cost", "pJ", "sig"),
    Field("ac_pj", "AC cost", "pJ", "sig"),
    Field("neuron_update_pj", "neuron-update cost", "pJ", "sig"),
    Field("complete", "complete", fmt="text", description="the op counts had no uncounted module"),
    Field("per", "unit", fmt="text"),
    Field("convention", "convention", fmt="text", description="id of the counting conventions applied"),
    Field("sj_simple_energy_mj", "spikingjelly memory-aware energy", "", "mj",
          description="spikingjelly 2.0 SimpleEnergyProfiler, compute + memory (memory_aware = true)"),
    Field("sj_simple_compute_mj", "spikingjelly compute energy", "", "mj"),
    Field("sj_simple_memory_mj", "spikingjelly memory energy", "", "mj"),
    Field("sj_simple_model", "spikingjelly energy model", fmt="text"),
)


def _check_profile(options: dict[str, Any]) -> None:
    """The named profile must exist and every user profile must be well formed."""
    try:
        get_profile(options["profile"], options["profiles"])
    except ValueError as exc:
        raise OptionError("profile", str(exc), "name a built-in profile or define it under profiles") from exc


OPTIONS = (
    Option("profile", str, "45nm-fp32", "energy profile name (built-in or defined under profiles)"),
    Option("profiles", dict, {}, "user profiles: { name = { mac_pj, ac_pj, source, ... } }"),
    Option("memory_aware", bool, False, "add spikingjelly's memory-aware SimpleEnergyProfiler figure"),
)


@register_metric("energy", "energy per sample from op counts x per-operation costs (profile with its source)",
                 fields=FIELDS, options=OPTIONS, check_options=_check_profile, cost=probe_cost("energy"))
def energy_metric(ctx: CaseContext) -> dict[str, Any]:
    """Energy of the case's op counts (shared pass with ``ops``/``firing``), ANN-equivalent and ratio."""
    _, ops = case_reports(ctx)
    est = estimate_energy(ops, ctx.option("energy", "profile", "45nm-fp32"), ctx.option("energy", "profiles"))
    out = est.to_dict()
    out["profile_notes"] = est.profile.notes
    out["convention"] = ops.convention
    if ctx.option("energy", "memory_aware", False):
        out.update(spikingjelly_simple_energy(ctx.model, ctx.sample_batch()[0]))
    return out
