"""Hardware profiles of the data-movement-aware energy model, as data with their sources (no torch).

A profile prices what :mod:`bench.metrics.energy_model` counts. Two kinds:

- ``digital``: an integer datapath (``add_pj`` and ``mult_pj`` at ``ref_bits``; other widths are scaled, adds
  linearly and multiplies with the product of the operand widths, the usual ripple-adder / array-multiplier
  approximation) and three memories, each a read and a write energy per access of ``*_access_bits`` bits
  (priced per bit: data narrower than an access is assumed packed): weights, membrane potentials,
  activations (spikes and real-valued activations share one buffer).
- ``neuromorphic``: per-event costs as chips publish them: ``sop_pj`` per synaptic operation (weight read and
  accumulate included), ``neuron_update_pj`` per neuron update (membrane read and write included),
  ``spike_pj`` per output spike (routing); ``reference`` names the digital profile that prices what the chip
  does not do event by event: the SNN's MAC layers (an analog stem) and the whole ANN equivalent.

Users add profiles in the suite (``[metrics.energy] hardware_profiles = { name = {...} }``); every profile
needs a non-empty ``source``. :func:`hardware_profile_from_dict` checks one and names the bad field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = ["DAVIES_2018_TABLE2", "HARDWARE_PROFILES", "HOROWITZ_45NM", "HardwareProfile", "hardware_profile_from_dict",
           "resolve_hardware_profiles"]

KINDS = ("digital", "neuromorphic")

# M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm, 0.9 V: the table
# the compute-only literature takes its 4.6 / 0.9 pJ from (picojoules; memory rows per 64-bit access).
HOROWITZ_45NM: dict[str, float] = {
    "int8 add": 0.03, "int32 add": 0.1, "int8 mult": 0.2, "int32 mult": 3.1,
    "fp16 add": 0.4, "fp32 add": 0.9, "fp16 mult": 1.1, "fp32 mult": 3.7,
    "SRAM 8KB read (64 bit)": 10.0, "SRAM 32KB read (64 bit)": 20.0, "SRAM 1MB read (64 bit)": 100.0,
    "DRAM read (64 bit), low": 1300.0, "DRAM read (64 bit), high": 2600.0,
}
HOROWITZ = ("M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014 (45 nm): "
            "int8 add 0.03 pJ, int8 mult 0.2 pJ; 64-bit SRAM reads 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ; "
            "DRAM 1.3-2.6 nJ per 64-bit access")
SATA = ("R. Yin et al., 'SATA: Sparsity-Aware Training Accelerator for Spiking Neural Networks', IEEE TCAD 2022; "
        "numbers from its simulator SATA_Sim (github.com/RuokaiYin/SATA_Sim): CACTI 7, 28 nm, 32-byte blocks, "
        "inference-energy-cal/memory-energy-components.yaml (GLB-weight 144 KiB read 0.0286315 nJ; GLB-spike "
        "32 KiB read 0.0110295 nJ, write 0.012772 nJ) and energy_configs.py (16-bit multiplier 0.239, "
        "accumulator 0.0389)")
# M. Davies et al., IEEE Micro 38(1), 2018, Table 2, "Loihi pre-silicon performance and energy measurements"
# (SDF and SPICE simulations, 14 nm): its energy rows in picojoules. The paper itself could not be read here; the
# rows are as two independent transcriptions give them, which agree on every row below: SANA-FE's Loihi constants
# (github.com/SLAM-Lab/SANA-FE: an early sim.h, "All numbers were taken from" Davies et al. 2018, with
# SPIKE_OP_ENERGY 23.6e-12, ACTIVE/INACTIVE_NEURON_UPDATE_ENERGY 81.0e-12 / 52.0e-12, SPIKE_WITHIN_TILE_ENERGY
# 1.7e-12, EAST_WEST / NORTH_SOUTH_HOP_ENERGY 3.0e-12 / 4.0e-12; arch/loihi.yaml keeps
# "#energy_spike_within_tile: 1.7e-12") and a public research note quoting the table row by row ("Energy per
# synaptic spike op (min) | 23.6 pJ", "Within-tile spike energy | 1.7 pJ", "Energy per tile hop (E-W / N-S) |
# 3.0 pJ / 4.0 pJ"). The table has no 3.5 pJ energy: 3.5 ns is its maximum time per synaptic spike op.
# A third, published transcription of the synaptic-op row: G. Tang et al., "SENECA: building a fully digital
# neuromorphic processor, design trade-offs and challenges", Front. Neurosci. 17:1187252 (2023), Table 3
# ("Programmibility (flexibility) of different dimensions in different neuromorphic processors", column "Energy per
# SOp (pJ)"; pmc.ncbi.nlm.nih.gov/articles/PMC10326429/table/T3): "Loihi | Low | Low | Medium | Low | Medium |
# 23.6 | (Davies et al., 2018)". The same table gives SpiNNaker2 10 pJ (see SPINNAKER2).
DAVIES_2018_TABLE2: dict[str, float] = {
    "synaptic spike op (min)": 23.6, "neuron update (active)": 81.0, "neuron update (inactive)": 52.0,
    "within-tile spike": 1.7, "tile hop (E-W)": 3.0, "tile hop (N-S)": 4.0,
}
LOIHI = ("M. Davies et al., 'Loihi: a neuromorphic manycore processor with on-chip learning', IEEE Micro 38(1), "
         "2018, Table 2 (pre-silicon SDF and SPICE simulations, 14 nm): energy per synaptic spike op (min) 23.6 pJ, "
         "per neuron update (active / inactive) 81 / 52 pJ, within-tile spike energy 1.7 pJ, per tile hop "
         "(E-W / N-S) 3.0 / 4.0 pJ; rows as transcribed in SANA-FE (github.com/SLAM-Lab/SANA-FE) and a public "
         "research note (the paper itself not read here); the 23.6 pJ synaptic op also in Tang et al., 'SENECA', "
         "Front. Neurosci. 17:1187252 (2023), Table 3 (Energy per SOp, citing Davies et al. 2018)")
SPINNAKER2 = ("450 pJ per synaptic operation and 2.19 nJ per neuron update: the 'spinnaker2' entry of KerasSpiking's "
              "device table (github.com/nengo/keras-spiking, keras_spiking/model_energy.py, ModelEnergy.devices), "
              "which cites S. Hoeppner et al., 'Dynamic power management for neuromorphic many-core systems', "
              "IEEE TCAS-I 66(8), 2019 (arXiv 1903.08941; 28 nm test chip, 4 PEs, 0.7-1.0 V, 125-500 MHz over "
              "three performance levels); the figures and their operating point were not found in the paper's "
              "text here (only its abstract was readable). A published table disagrees by 45x: Tang et al., "
              "'SENECA: building a fully digital neuromorphic processor, design trade-offs and challenges', "
              "Front. Neurosci. 17:1187252 (2023), Table 3, gives SpiNNaker2 10 pJ energy per synaptic operation "
              "(citing 'Höppner et al., 2021', whose reference entry was not read here), noting that "
              "'Synaptic Operation (SOp) varies in different applications and is only mentioned for high-level "
              "comparison'; the profile keeps KerasSpiking's figures, traced to the 2019 paper's citation but not "
              "verified against its text")


@dataclass(frozen=True)
class HardwareProfile:
    """One hardware profile (see the module docstring for the meaning of every field); costs in picojoules."""

    name: str
    kind: str
    source: str
    notes: str = ""
    # digital
    add_pj: float | None = None
    mult_pj: float | None = None
    ref_bits: int | None = None
    weight_read_pj: float | None = None
    weight_access_bits: int | None = None
    membrane_read_pj: float | None = None
    membrane_write_pj: float | None = None
    membrane_access_bits: int | None = None
    act_read_pj: float | None = None
    act_write_pj: float | None = None
    act_access_bits: int | None = None
    # both (digital: optional, else two adds at the membrane width)
    neuron_update_pj: float | None = None
    # neuromorphic
    sop_pj: float | None = None
    spike_pj: float | None = None
    reference: str | None = None

    def add(self, bits: int) -> float:
        """An integer add of ``bits`` bits (linear in the width)."""
        return self.add_pj * bits / self.ref_bits

    def mult(self, a_bits: int, b_bits: int) -> float:
        """An integer multiply of ``a_bits`` x ``b_bits`` (proportional to the product of the widths)."""
        return self.mult_pj * a_bits * b_bits / self.ref_bits ** 2

    def per_bit(self, memory: str, write: bool = False) -> float:
        """Energy per bit moved to or from ``memory`` (weight, membrane, act)."""
        cost = getattr(self, f"{memory}_{'write' if write else 'read'}_pj")
        return cost / getattr(self, f"{memory}_access_bits")

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != ""}

    def costs(self) -> dict[str, Any]:
        """The numbers that price an estimate (and a neuromorphic profile's ``reference``): the record keeps them
        beside each estimate, so a report shows a user profile's constants, which no stored convention holds."""
        return {k: v for k, v in self.as_dict().items() if k not in ("name", "kind", "source", "notes")}


DIGITAL_FIELDS = ("add_pj", "mult_pj", "ref_bits", "weight_read_pj", "weight_access_bits", "membrane_read_pj",
                  "membrane_write_pj", "membrane_access_bits", "act_read_pj", "act_write_pj", "act_access_bits")
NEUROMORPHIC_FIELDS = ("sop_pj", "neuron_update_pj", "spike_pj", "reference")
_BITS = {"ref_bits", "weight_access_bits", "membrane_access_bits", "act_access_bits"}
_OPTIONAL = {"digital": ("neuron_update_pj",), "neuromorphic": ()}

_SRAM_45NM = HardwareProfile(
    "45nm-sram", "digital", HOROWITZ, add_pj=0.03, mult_pj=0.2, ref_bits=8,
    weight_read_pj=100.0, weight_access_bits=64, membrane_read_pj=20.0, membrane_write_pj=20.0,
    membrane_access_bits=64, act_read_pj=20.0, act_write_pj=20.0, act_access_bits=64,
    notes="int8 datapath; weights in a 1 MB SRAM, membrane potentials and activations in 32 KB SRAMs; "
          "writes priced as reads (the table gives reads only)")

HARDWARE_PROFILES: dict[str, HardwareProfile] = {
    "45nm-sram": _SRAM_45NM,
    "45nm-dram": replace(
        _SRAM_45NM, name="45nm-dram", weight_read_pj=1300.0,
        notes="as 45nm-sram but every weight read from DRAM at the low end of 1.3-2.6 nJ per 64 bits (no on-chip "
              "weight buffer)"),
    "28nm-sata": HardwareProfile(
        "28nm-sata", "digital", SATA, add_pj=0.0389, mult_pj=0.239, ref_bits=16,
        weight_read_pj=28.6315, weight_access_bits=256, membrane_read_pj=11.0295, membrane_write_pj=12.772,
        membrane_access_bits=256, act_read_pj=11.0295, act_write_pj=12.772, act_access_bits=256,
        notes="16-bit datapath (SATA_Sim's units taken as pJ); weights in the weight GLB; spikes and activations "
              "in the spike GLB; membrane potentials priced at the spike GLB's cost too (SATA_Sim's inference "
              "model has no separate membrane SRAM)"),
    "loihi": HardwareProfile(
        "loihi", "neuromorphic", LOIHI, sop_pj=DAVIES_2018_TABLE2["synaptic spike op (min)"],
        neuron_update_pj=DAVIES_2018_TABLE2["neuron update (active)"],
        spike_pj=DAVIES_2018_TABLE2["within-tile spike"], reference="28nm-sata",
        notes="the table's minimum synaptic-op energy; every neuron update priced as active (81 pJ; an inactive "
              "one is 52 pJ); each output spike delivered within its tile (1.7 pJ; each tile hop would add 3.0 "
              "E-W or 4.0 N-S pJ): a lower bound on routing; the ANN and the SNN's MAC layers priced on 28nm-sata "
              "(the nearest process among the digital profiles; Loihi itself is 14 nm)"),
    "spinnaker2": HardwareProfile(
        "spinnaker2", "neuromorphic", SPINNAKER2, sop_pj=450.0, neuron_update_pj=2190.0, spike_pj=0.0,
        reference="28nm-sata",
        notes="spike routing not priced separately (spike_pj 0: no per-packet figure in the device table); the "
              "ANN and the SNN's MAC layers priced on 28nm-sata (same 28 nm node)"),
}


def _number(name: str, key: str, v: Any, integer: bool) -> float | int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise ValueError(f"hardware profile {name!r}: {key} must be a finite number >= 0, got {v!r}")
    if integer:
        if v != int(v) or v < 1:
            raise ValueError(f"hardware profile {name!r}: {key} must be a whole number of bits >= 1, got {v!r}")
        return int(v)
    return float(v)


def hardware_profile_from_dict(name: str, d: Mapping[str, Any]) -> HardwareProfile:
    """A user profile from a suite table; raises ValueError naming the profile, the field and the fix. Refused: an
    empty name, notes that are not text, and a profile whose every cost is 0 (it prices nothing: every estimate
    on it would read 0 pJ); a single cost of 0 is allowed (that term is free on the chip)."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"hardware profile name must be a non-empty string, got {name!r}: name the table")
    if not isinstance(d, Mapping):
        raise ValueError(f"hardware profile {name!r} must be a table with kind, source and its costs; got {d!r}")
    kind = d.get("kind")
    if kind not in KINDS:
        raise ValueError(f"hardware profile {name!r}: kind must be one of {list(KINDS)}, got {kind!r}")
    source = d.get("source")
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"hardware profile {name!r}: 'source' must say where the numbers come from (a citation)")
    fields = DIGITAL_FIELDS if kind == "digital" else NEUROMORPHIC_FIELDS
    allowed = {"kind", "source", "notes", *fields, *_OPTIONAL[kind]}
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ValueError(f"hardware profile {name!r}: unknown field(s) {unknown} for a {kind} profile; "
                         f"allowed: {sorted(allowed)}")
    missing = [k for k in fields if k not in d]
    if missing:
        raise ValueError(f"hardware profile {name!r} lacks {missing}: a {kind} profile needs {list(fields)}")
    notes = d.get("notes", "")
    if not isinstance(notes, str):
        raise ValueError(f"hardware profile {name!r}: notes must be text (a string), got {notes!r}")
    values: dict[str, Any] = {}
    for key in (*fields, *_OPTIONAL[kind]):
        if key not in d:
            continue
        if key == "reference":
            if not isinstance(d[key], str) or not d[key]:
                raise ValueError(f"hardware profile {name!r}: reference must name a digital profile")
            values[key] = d[key]
        else:
            values[key] = _number(name, key, d[key], key in _BITS)
    costs = [k for k in values if k.endswith("_pj")]
    if not any(values[k] for k in costs):
        raise ValueError(f"hardware profile {name!r}: every cost ({', '.join(costs)}) is 0, so it prices nothing; "
                         "give the energies its source states (picojoules)")
    return HardwareProfile(name=name, kind=kind, source=source, notes=notes, **values)


def resolve_hardware_profiles(user: Mapping[str, Any] | None = None, names: list[str] | tuple[str, ...] = ()
                              ) -> tuple[dict[str, HardwareProfile], dict[str, HardwareProfile]]:
    """The profiles to evaluate (``names``; empty: every built-in and user profile) and the table they were
    chosen from, where a neuromorphic profile's digital ``reference`` is looked up. A user profile may not take a
    built-in's name: a report would print other constants under it (and re-price every neuromorphic profile
    whose reference it is). Raises ValueError naming the bad profile or name."""
    table = dict(HARDWARE_PROFILES)
    for key, entry in (user or {}).items():
        if key in HARDWARE_PROFILES:
            raise ValueError(f"hardware profile {key!r} is a built-in profile's name; give yours another name (e.g. "
                             f"{key + '-mine'!r}) so no report shows other constants under a built-in's name")
        table[key] = hardware_profile_from_dict(key, entry)
    chosen = list(names) or list(table)
    for n in chosen:
        if n not in table:
            raise ValueError(f"unknown hardware profile {n!r}; choose from {sorted(table)} or define it under "
                             "[metrics.energy] hardware_profiles")
    digital = sorted(k for k, p in table.items() if p.kind == "digital")
    for p in table.values():
        if p.kind == "neuromorphic" and p.reference not in digital:
            raise ValueError(f"hardware profile {p.name!r}: reference {p.reference!r} must name a digital profile "
                             f"(one of {digital})")
    return {n: table[n] for n in chosen}, table
