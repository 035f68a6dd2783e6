"""Energy with data movement: compute, weight, membrane-potential and spike traffic of an SNN and of its ANN
equivalent, per layer and per sample, priced by hardware profiles (:mod:`bench.metrics.hardware`).

Built on the probe's exact per-layer counts (:class:`bench.metrics.ops.OpsReport`, including the
data-movement counts of ``ops_rules.DATA_FIELDS``) and the firing report's network mean rate: no second
forward pass. The rules, as data, are ``conventions.ENERGY_MODEL_RULES`` (printed in every report); in short:

SNN, digital profile (all per sample, over the T steps):
  compute     = MACs x (mult(a, w) + add(m)) + ACs x add(m) + neuron updates x (neuron_update_pj or 2 add(m))
  weights     = SOPs / E x w bits (E = event_weight_reuse synaptic ops served by one weight read; default 1:
                one read per synaptic op, no reuse; kept linear in the rate, so above 1 the reads may fall
                below one per weight at low rates: an optimistic bound)
                + dense layers: max(MACs / R, weight passes) x w bits (one read per R output positions, at
                least once per sample and step)
  membrane    = neuron updates x m bits x (read + write)
  spikes      = address events: (input events read + output spikes written) x address bits;
                bitmap: (spike input elements read + neuron output elements written) x 1 bit
  activations = analog input elements x a bits (read) + analog neuron outputs x a bits (written)
Synaptic layers' outputs accumulate into the next neuron's membrane and are not written.

SNN, neuromorphic profile (E does not apply): ACs x sop_pj (weight read and accumulate included), neuron
updates x neuron_update_pj (membrane traffic included), output spikes x spike_pj; MAC layers and analog data
on the profile's digital ``reference``.

ANN equivalent (same shapes, dense activations, one inference, on the profile or its reference):
  compute     = ann MACs x (mult(a_ann, w) + add(m))
  weights     = max(ann MACs / R, ann weight passes) x w bits, for layers with weights
  activations = (input elements read + output elements written) of one inference x a_ann bits

Break-even firing rate: every event-driven SNN count (SOPs and their weight reads, avg-pool additions on
spikes, address-event spike reads and writes) is taken to scale in proportion to the network mean firing
rate r, everything else to stay: ``E_snn(r) = fixed + slope x r`` with ``slope = event part / measured r``;
the break-even rate solves ``E_snn(r) = E_ann``.

Per layer (``HardwareEstimate.layers``, the record's ``hw_layers``), ``kind`` says how the model treats the
layer (``LAYER_KINDS``): ``dense`` (MACs only: its input is real-valued, e.g. the encoding conv on the image,
priced as multiply-accumulates at every call), ``event-driven`` (ACs only: spike input, priced per event),
``mixed`` (both, over different calls or operands), ``neuron`` (neuron updates only) or ``data`` (memory
traffic only: max pooling, a flatten with data counts); a synaptic layer whose spike input held no event (no
MACs, no ACs, but one-inference ANN MACs) is ``event-driven``, not ``data``; ``event_pj`` is the layer's
rate-scaled part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from bench.contract import energy_text
from bench.metrics.firing import FiringReport
from bench.metrics.hardware import HardwareProfile
from bench.metrics.ops import LayerOps, OpsReport

__all__ = ["ANN_TERMS", "BitWidths", "HardwareEstimate", "LAYER_KINDS", "SNN_TERMS", "ann_bits_for_T",
           "estimate_hardware_energy", "layer_kind"]

SNN_TERMS = ("compute", "weights", "membrane", "spikes", "activations")
ANN_TERMS = ("compute", "weights", "activations")
SPIKE_FORMATS = ("address", "bitmap")
LAYER_KINDS = ("event-driven", "dense", "mixed", "neuron", "data")
J_PER_PJ = 1e-12  # reasons quote energies as the report's cells do (bench.contract.energy_text)
# Where a neuromorphic profile's per-event costs already hold a term (so it reads 0 there).
NEUROMORPHIC_INCLUDED = {"weights": "synaptic-op weight reads are in sop_pj (dense MAC layers: on the reference)",
                         "membrane": "membrane reads and writes are in neuron_update_pj",
                         "spikes": "input event reads are in sop_pj; output spikes cost spike_pj"}


def ann_bits_for_T(T: int) -> int:
    """ceil(log2(T + 1)): the activation width of the QNN Yan et al. (arXiv 2409.08290) map a rate-coded SNN
    of T steps to (an activation of T + 1 levels, 0..T spikes)."""
    return max(1, math.ceil(math.log2(T + 1)))


@dataclass(frozen=True)
class BitWidths:
    """Bit widths and data-layout assumptions of the model (the energy plug-in's options)."""

    weight: int = 8
    membrane: int = 16  # also the accumulator of both networks' MACs
    activation: int = 8  # the SNN's real-valued data (the image, attention scores)
    ann_activation: int = 8
    spike_format: str = "address"
    address_bits: int = 16
    dense_reuse: int = 16  # output positions one weight read serves in a dense (analog-input) layer
    event_reuse: int = 1  # synaptic ops one weight read serves in an event-driven layer (digital profiles)

    def __post_init__(self) -> None:
        if self.spike_format not in SPIKE_FORMATS:
            raise ValueError(f"spike_format must be one of {SPIKE_FORMATS}, got {self.spike_format!r}")
        for name in ("weight", "membrane", "activation", "ann_activation", "address_bits", "dense_reuse",
                     "event_reuse"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")


@dataclass
class HardwareEstimate:
    """One profile's estimate, per sample in picojoules (see the module docstring)."""

    profile: HardwareProfile
    snn: dict[str, float]
    ann: dict[str, float] | None
    ann_why: str | None
    snn_fixed: float
    snn_event: float
    rate: float | None
    layers: list[dict[str, Any]] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)

    @property
    def ann_over_snn(self) -> float | None:
        if self.ann is None or not self.snn["total"]:
            return None
        return self.ann["total"] / self.snn["total"]

    @property
    def slope(self) -> float | None:
        """pJ per unit of mean firing rate (None without a positive measured rate)."""
        return self.snn_event / self.rate if self.rate else None

    def break_even(self) -> tuple[float | None, str | None]:
        """The mean firing rate at which the SNN's estimate equals the ANN's, or None and why (energies in the
        why in the unit the report's cells use for them, 3 significant digits: ``1.2 µJ``, never ``1.2e+06 pJ``)."""
        if self.ann is None:
            return None, self.ann_why
        if self.rate is None:
            return None, "no spiking layer: no network mean firing rate to scale"
        ann = self.ann["total"]
        if self.snn_fixed >= ann:
            return None, (f"the SNN's rate-independent costs ({energy_text(self.snn_fixed * J_PER_PJ)}) already "
                          f"reach the ANN's ({energy_text(ann * J_PER_PJ)}): it does not win at any rate")
        if not self.rate:
            return None, "no events at the measured rate: the rate-dependent part cannot be scaled"
        if not self.snn_event:
            return None, "no rate-dependent SNN energy: the SNN is below the ANN at every rate"
        return (ann - self.snn_fixed) / self.slope, None

    def to_dict(self) -> dict[str, Any]:
        """The record's ``hardware[<profile>]`` entry (see the README's record schema)."""
        rate, why = self.break_even()
        p = self.profile
        return {
            "kind": p.kind, "source": p.source, "notes": p.notes, "reference": p.reference, "costs": p.costs(),
            "snn_pj": dict(self.snn), "ann_pj": None if self.ann is None else dict(self.ann),
            "ann_why": self.ann_why, "ann_over_snn": self.ann_over_snn, "rate": self.rate,
            "snn_fixed_pj": self.snn_fixed, "snn_slope_pj": self.slope, "break_even_rate": rate,
            "break_even_why": why, "unpriced": list(self.unpriced),
            "included": dict(NEUROMORPHIC_INCLUDED) if p.kind == "neuromorphic" else {},
        }


def _v(lay: LayerOps, name: str) -> float:
    return getattr(lay, name) or 0.0


def layer_kind(lay: LayerOps) -> str:
    """How the model treats a layer (one of ``LAYER_KINDS``, see the module docstring), from its counts."""
    macs, acs = _v(lay, "macs") > 0, _v(lay, "acs") > 0
    if macs or acs:
        return "mixed" if macs and acs else "dense" if macs else "event-driven"
    if _v(lay, "ann_macs") > 0:  # a synaptic layer whose spike input carried no event: event-driven, 0 events
        return "event-driven"
    return "neuron" if _v(lay, "neuron_updates") > 0 else "data"


def _spike_share(lay: LayerOps) -> float:
    """Fraction of a layer's input elements that were spikes (its non-synaptic ACs on spikes scale with r)."""
    spike, analog = _v(lay, "spike_in_elems"), _v(lay, "analog_in_elems")
    return spike / (spike + analog) if spike + analog else 0.0


def _dense_weight_reads(macs: float, passes: float, reuse: int) -> float:
    """Weight reads of a dense layer: one read per ``reuse`` uses, at least one per weight pass."""
    return max(macs / reuse, passes) if passes else 0.0


def _snn_layer(lay: LayerOps, p: HardwareProfile, ref: HardwareProfile, b: BitWidths
               ) -> tuple[dict[str, float], float]:
    """One layer's SNN terms (pJ per sample) and the event-driven part of their sum."""
    macs, acs, sops, updates = _v(lay, "macs"), _v(lay, "acs"), _v(lay, "sops"), _v(lay, "neuron_updates")
    event_acs = sops + (acs - sops) * _spike_share(lay)
    digital = p if p.kind == "digital" else ref  # what prices MAC layers and analog data
    mac_e = macs * (digital.mult(b.activation, b.weight) + digital.add(b.membrane))
    dense_w = _dense_weight_reads(macs, _v(lay, "weight_passes"), b.dense_reuse) * b.weight * digital.per_bit("weight")
    analog_out = (_v(lay, "out_elems") - _v(lay, "spike_out_elems")) if updates else 0.0
    activations = (_v(lay, "analog_in_elems") * digital.per_bit("act")
                   + analog_out * digital.per_bit("act", write=True)) * b.activation
    if p.kind == "neuromorphic":
        ac_cost, spikes_event = p.sop_pj, _v(lay, "out_events") * p.spike_pj
        compute = mac_e + acs * ac_cost + updates * p.neuron_update_pj
        terms = {"compute": compute, "weights": dense_w, "membrane": 0.0, "spikes": spikes_event,
                 "activations": activations}
        return terms, event_acs * ac_cost + spikes_event
    add = p.add(b.membrane)
    update = p.neuron_update_pj if p.neuron_update_pj is not None else 2 * add
    sop_w = sops / b.event_reuse * b.weight * p.per_bit("weight")  # linear in SOPs: no one-read-per-weight floor
    if b.spike_format == "address":
        spikes = (_v(lay, "in_events") * p.per_bit("act") + _v(lay, "out_events") * p.per_bit("act", write=True)
                  ) * b.address_bits
        spikes_event = spikes
    else:
        spikes = _v(lay, "spike_in_elems") * p.per_bit("act") + _v(lay, "spike_out_elems") * p.per_bit("act", True)
        spikes_event = 0.0
    membrane = updates * b.membrane * (p.per_bit("membrane") + p.per_bit("membrane", write=True))
    terms = {"compute": mac_e + acs * add + updates * update, "weights": sop_w + dense_w, "membrane": membrane,
             "spikes": spikes, "activations": activations}
    return terms, event_acs * add + sop_w + spikes_event


def _ann_layer(lay: LayerOps, q: HardwareProfile, b: BitWidths) -> dict[str, float]:
    """One layer's ANN-equivalent terms (pJ per sample, one inference) on the digital profile ``q``."""
    macs = _v(lay, "ann_macs")
    weights = _dense_weight_reads(macs, _v(lay, "ann_weight_passes"), b.dense_reuse) * b.weight * q.per_bit("weight")
    acts = (_v(lay, "ann_in_elems") * q.per_bit("act") + _v(lay, "ann_out_elems") * q.per_bit("act", write=True)
            ) * b.ann_activation
    return {"compute": macs * (q.mult(b.ann_activation, b.weight) + q.add(b.membrane)), "weights": weights,
            "activations": acts}


def _lacks_data_counts(ops: OpsReport) -> bool:
    """True for a report without the data-movement counts (hand-built, or from before snnbench-ops-v3)."""
    return any(lay.counted and lay.dense_macs and lay.ann_macs is None for lay in ops.layers)


def estimate_hardware_energy(ops: OpsReport, firing: FiringReport | None, profile: HardwareProfile,
                             table: dict[str, HardwareProfile] | None = None,
                             bits: BitWidths | None = None) -> HardwareEstimate:
    """Price ``ops`` (per-sample counts of one pass) on ``profile``: SNN and ANN-equivalent terms per layer
    and in total, and what the break-even rate needs. ``table`` resolves a neuromorphic profile's
    ``reference``; ``firing`` gives the measured network mean rate (None: no rate, no break-even)."""
    if _lacks_data_counts(ops):
        raise ValueError("the op counts lack the data-movement counts (ann_macs, events, elements): count them "
                         "with bench.metrics.ops (snnbench-ops-v3 or later)")
    b = bits or BitWidths()
    ref = profile
    if profile.kind == "neuromorphic":
        if not table or profile.reference not in table:
            raise ValueError(f"hardware profile {profile.name!r}: its reference {profile.reference!r} is not given")
        ref = table[profile.reference]
    snn = dict.fromkeys(SNN_TERMS, 0.0)
    ann = dict.fromkeys(ANN_TERMS, 0.0)
    event = 0.0
    layers = []
    for lay in ops.layers:
        if not lay.counted:
            continue
        s, e = _snn_layer(lay, profile, ref, b)
        a = _ann_layer(lay, ref, b)
        event += e
        for k in SNN_TERMS:
            snn[k] += s[k]
        for k in ANN_TERMS:
            ann[k] += a[k]
        if any(s.values()) or any(a.values()):
            layers.append({"name": lay.name, "type": lay.type, "kind": layer_kind(lay),
                           "snn_pj": {**s, "total": sum(s.values())}, "event_pj": e,
                           "ann_pj": {**a, "total": sum(a.values())}})
    snn["total"] = sum(snn[k] for k in SNN_TERMS)
    ann["total"] = sum(ann[k] for k in ANN_TERMS)
    unpriced = ["spikes"] if profile.kind == "neuromorphic" and not profile.spike_pj else []
    return HardwareEstimate(
        profile=profile, snn=snn, ann=ann, ann_why=None, snn_fixed=snn["total"] - event, snn_event=event, rate=None if firing is None else firing.mean_rate,
        layers=layers, unpriced=unpriced)
