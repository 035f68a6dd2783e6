"""Firing rates per spiking layer and time step (plug-in ``firing``), and BN calibration for untrained nets.

Conventions: ``bench.metrics.conventions.FIRING_RULES`` (rendered into every report). In short: a neuron is
a spikingjelly ``BaseNode``, a ``DSRIFNode``/``DSRLIFNode`` or a user-given class; an event is a nonzero
output, so ``{0, v_th}`` scaled spikes count one per nonzero; a layer whose output is not ``{0, v}`` (LIAF:
ReLU of the membrane) is flagged analog, its rate is the fraction of nonzero outputs and it is left out of
the network mean; silent / saturated are judged over the whole window of T steps per (sample, neuron).

The statistics come from one forward pass shared with the op counter (:mod:`bench.metrics.probe`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
import torch
import torch.nn as nn

from bench.calibration import calibrate_bn  # re-exported: tests and benchmarks import it from here
from bench.contract import Field, Option, Tolerance
from bench.metrics.base import CaseContext, register_metric
from bench.metrics.probe import DEFAULT_NEURON_TYPES, Probe, ProbeResult, case_probe, probe_cost

__all__ = ["DEFAULT_NEURON_TYPES", "FiringReport", "LayerFiring", "UNTRAINED_WARNING", "calibrate_bn",
           "firing_rates", "untrained_warning"]

UNTRAINED_WARNING = ("no trained checkpoint: firing rates (and the event-driven op counts and energy that follow "
                     "from them) of an untrained model are not representative")

# Kinds ordered from most to least spike-like; a layer gets the least spike-like kind any call had.
_KIND_ORDER = ("zero", "binary", "scaled", "multispike", "analog")


@dataclass(frozen=True)
class LayerFiring:
    """Firing of one neuron module: rates per time step (``rate_per_t[t]`` for step t+1) and over the window."""

    name: str
    type: str
    kind: str  # binary | scaled | multispike | zero | analog
    n_neurons: float  # per sample (all calls of the module together)
    rate_per_t: list[float]
    rate: float
    silent_frac: float
    saturated_frac: float

    @property
    def analog(self) -> bool:
        return self.kind == "analog"


@dataclass
class FiringReport:
    """Per-layer, per-step firing rates and network-wide means (see ``conventions.FIRING_RULES``)."""

    layers: list[LayerFiring]
    T: int
    samples: int
    mean_rate: float | None  # over spiking (non-analog) layers, weighted by neuron count
    mean_rate_per_t: list[float] | None
    silent_frac: float | None
    saturated_frac: float | None
    untrained_warning: str | None = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_probe(cls, result: ProbeResult) -> FiringReport:
        T, samples = result.T, result.samples
        layers = []
        for name, rec in result.neurons.items():
            elems = rec["elems_per_t"]
            per_t = [e / elems for e in rec["events_t"]]
            kind = max(rec["kinds"], key=_KIND_ORDER.index)
            layers.append(LayerFiring(
                name=name, type=rec["type"], kind=kind, n_neurons=elems / samples, rate_per_t=per_t,
                rate=sum(per_t) / T, silent_frac=1.0 - rec["active"] / elems,
                saturated_frac=rec["saturated"] / elems,
            ))
        spiking = [(lay, result.neurons[lay.name]) for lay in layers if not lay.analog]
        total = sum(rec["elems_per_t"] for _, rec in spiking)
        if total:
            per_t = [sum(rec["events_t"][t] for _, rec in spiking) / total for t in range(T)]
            mean = sum(per_t) / T
            silent = 1.0 - sum(rec["active"] for _, rec in spiking) / total
            saturated = sum(rec["saturated"] for _, rec in spiking) / total
        else:
            per_t = mean = silent = saturated = None
        notes = [] if layers else ["no neuron modules found (pass neuron_types for custom neurons)"]
        if layers and not total:
            notes.append("every neuron layer is analog: no spiking mean rate")
        return cls(layers, T, samples, mean, per_t, silent, saturated, notes=notes)

    def to_dataframe(self) -> pd.DataFrame:
        """Rates as a layer x time-step table (columns 1..T)."""
        return pd.DataFrame([lay.rate_per_t for lay in self.layers], index=[lay.name for lay in self.layers],
                            columns=pd.Index(range(1, self.T + 1), name="t"))

    def summary(self) -> pd.DataFrame:
        """One row per layer: kind, neurons, mean rate, silent and saturated fractions."""
        rows = [{k: v for k, v in asdict(lay).items() if k != "rate_per_t"} for lay in self.layers]
        return pd.DataFrame(rows).set_index("name") if rows else pd.DataFrame()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable form: scalars plus the nested per-layer table."""
        return {
            "mean_rate": self.mean_rate,
            "mean_rate_per_t": self.mean_rate_per_t,
            "silent_frac": self.silent_frac,
            "saturated_frac": self.saturated_frac,
            "T": self.T,
            "samples": self.samples,
            "untrained_warning": self.untrained_warning,
            "notes": list(self.notes),
            "layers": [{**asdict(lay), "analog": lay.analog} for lay in self.layers],
        }


def firing_rates(model: nn.Module, x: torch.Tensor | Iterable[torch.Tensor],
                 neuron_types: Iterable[type[nn.Module]] = (), host_decisions: bool | None = None) -> FiringReport:
    """Firing statistics of ``model`` on ``x`` (``[T, B, ...]``, or an iterable of such batches).

    Runs the model in eval mode under ``torch.no_grad`` after ``functional.reset_net`` per batch; hooks
    every neuron module (``DEFAULT_NEURON_TYPES`` plus ``neuron_types``). ``host_decisions``: see
    :class:`bench.metrics.probe.Probe`.
    """
    xs = [x] if isinstance(x, torch.Tensor) else x
    probe = Probe(model, ops=False, neuron_types=neuron_types, host_decisions=host_decisions)
    return FiringReport.from_probe(probe.run(xs).finish())


def untrained_warning(untrained: bool | None) -> str | None:
    """The warning a record carries when the model has no trained checkpoint (None when trained/unknown)."""
    return UNTRAINED_WARNING if untrained else None




FIELDS = (
    Field("mean_rate", "firing rate", "%", "percent", description="events per neuron per step over the spiking "
          "(non-analog) layers, weighted by neuron count", headline=True, summary=True, tolerance=Tolerance(abs=1e-9)),
    Field("silent_frac", "silent neurons", "%", "percent", description="(sample, neuron) pairs without an event in "
          "the T-step window"),
    Field("saturated_frac", "saturated neurons", "%", "percent", description="(sample, neuron) pairs with an event "
          "at every step"),
    Field("samples", "samples", fmt="int", description="samples the statistics are over"),
    Field("T", "T", fmt="int", description="time steps of the pass"),
    Field("untrained_warning", "warning", fmt="text", description="set when the model has no trained checkpoint"),
)
OPTIONS = (
    Option("num_batches", int, 1, "evaluation batches the statistics are taken over (shared with ops)", minimum=1),
    Option("neuron_types", list, [], "extra neuron classes as 'package.module:Class' strings", item_type=str),
)


@register_metric("firing", "firing rate per spiking layer and time step, silent/saturated fractions",
                 fields=FIELDS, options=OPTIONS, cost=probe_cost("firing"))
def firing_metric(ctx: CaseContext) -> dict[str, Any]:
    """Network mean rate and the per-layer, per-step table, from the pass shared with ``ops``."""
    report = FiringReport.from_probe(case_probe(ctx))
    out = report.to_dict()
    if out["mean_rate"] is None:
        out["mean_rate_why"] = "; ".join(report.notes) or "no spiking layer"
    out["untrained_warning"] = untrained_warning(ctx.model_cache.get("untrained"))
    return out
