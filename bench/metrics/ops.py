"""Operation counts per layer and in total (plug-in ``ops``): MACs, exact ACs, SOPs, dense MACs, neuron updates.

Conventions: ``bench.metrics.conventions.OPS_RULES`` (id ``OPS_CONVENTION_ID``, rendered into every report),
applied per module by :mod:`bench.metrics.ops_rules`. Every count is **per sample**: the total over all T
steps of the forward pass divided by the number of samples.

- ``macs``: multiply-accumulates on analog operands (dense, zeros included).
- ``acs``: accumulates: event-driven synaptic accumulates (``sops``) plus avg-pooling additions.
- ``sops``: synaptic operations: for each spike-input conv/linear/MatMul (and product-computing torch
  function called in a forward outside those modules), ``sum(events(x) * reach)``, exact (padding,
  stride, dilation, groups respected); ``events`` = 1 per nonzero for binary/scaled inputs, the value for
  multispike inputs.
- ``dense_macs``: what a dense ANN of the same shapes computes (conv/linear/matmul, unfolded norms) over
  all T steps the model runs each layer (the T-step total; a stem run once counts once).
- ``ann_macs`` (per layer, with the other data-movement counts of ``ops_rules.DATA_FIELDS``): the dense MACs
  of ONE inference of that same-shape ANN, each call's dense MACs divided by the time steps it covers.
- ``approx_sops``: the literature's ``firing rate x T x dense MACs per step`` beside the exact count.
- ``neuron_updates``: one per neuron per step; ``cmps``: max-pool comparisons (not costed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
import torch
import torch.nn as nn

from bench.contract import EXACT, Field, Option
from bench.metrics.base import CaseContext, register_metric
from bench.metrics.conventions import OPS_CONVENTION_ID
from bench.metrics.firing import FiringReport
from bench.metrics.ops_rules import COUNT_FIELDS, OPS_FIELDS
from bench.metrics.probe import Probe, ProbeResult, case_probe

__all__ = ["LayerOps", "OpsReport", "case_reports", "count_ops", "profile"]

TOTAL_FIELDS = OPS_FIELDS  # the record's totals; the data-movement counts (DATA_FIELDS) stay per layer


@dataclass(frozen=True)
class LayerOps:
    """Counts of one module per sample; None where not counted (uncounted module) or not applicable."""

    name: str
    type: str
    kinds: tuple[str, ...]
    macs: float | None
    acs: float | None
    sops: float | None
    dense_macs: float | None
    approx_sops: float | None
    neuron_updates: float | None
    cmps: float | None
    calls: int
    note: str = ""
    counted: bool = True
    # Data-movement counts for the hardware-aware energy model (ops_rules.DATA_FIELDS); None: not counted.
    ann_macs: float | None = None
    in_events: float | None = None
    spike_in_elems: float | None = None
    analog_in_elems: float | None = None
    out_elems: float | None = None
    out_events: float | None = None
    spike_out_elems: float | None = None
    weight_passes: float | None = None
    ann_weight_passes: float | None = None
    ann_in_elems: float | None = None
    ann_out_elems: float | None = None


@dataclass
class OpsReport:
    """Per-layer and total counts, per sample (see the module docstring and ``conventions.OPS_RULES``)."""

    layers: list[LayerOps]
    samples: int
    T: int
    fold_bn: bool
    uncounted: list[dict[str, str]] = field(default_factory=list)
    unverified: list[dict[str, str]] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    convention: str = OPS_CONVENTION_ID

    @classmethod
    def from_probe(cls, result: ProbeResult) -> OpsReport:
        n = result.samples
        layers = []
        for name, rec in result.layers.items():
            c = rec["counts"]
            layers.append(LayerOps(
                name=name, type=rec["type"], kinds=tuple(rec["kinds"]), calls=rec["calls"],
                note="; ".join(rec["notes"]), **{f: (None if c[f] is None else c[f] / n) for f in COUNT_FIELDS},
            ))
        for item in result.uncounted:
            layers.append(LayerOps(item["module"], item["type"], (), *([None] * len(OPS_FIELDS)), calls=0,
                                   note="no counting rule", counted=False))
        return cls(layers, n, result.T, result.fold_bn, list(result.uncounted), list(result.unverified),
                   list(result.excluded))

    @property
    def complete(self) -> bool:
        """True when every called module with parameters or known compute, and every product-computing torch
        function called outside counted modules, had a counting rule."""
        return not self.uncounted

    @property
    def totals(self) -> dict[str, float]:
        """Per-sample totals over counted layers (``approx_sops`` over the layers where it applies)."""
        return {f: float(sum(getattr(lay, f) or 0.0 for lay in self.layers)) for f in TOTAL_FIELDS}

    def total(self, name: str) -> float:
        """Per-sample total of one count (old or data-movement field) over counted layers."""
        if name not in COUNT_FIELDS:
            raise KeyError(f"unknown count {name!r}; counts: {COUNT_FIELDS}")
        return float(sum(getattr(lay, name) or 0.0 for lay in self.layers))

    @property
    def approx_sops_error(self) -> float | None:
        """How far the literature's estimate is off: ``approx_sops / sops - 1`` (None without SOPs)."""
        t = self.totals
        return t["approx_sops"] / t["sops"] - 1.0 if t["sops"] else None

    def to_dataframe(self) -> pd.DataFrame:
        """One row per module (name as index), the count columns per sample."""
        rows = [asdict(lay) for lay in self.layers]
        return pd.DataFrame(rows).set_index("name") if rows else pd.DataFrame()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable form: per-sample totals as scalars, the per-layer table nested."""
        return {
            **self.totals,
            "per": "sample (total over all T steps)",
            "samples": self.samples,
            "T": self.T,
            "fold_bn": self.fold_bn,
            "convention": self.convention,
            "complete": self.complete,
            "approx_sops_error": self.approx_sops_error,
            "n_uncounted": len(self.uncounted),
            "uncounted": list(self.uncounted),
            "unverified": list(self.unverified),
            "excluded": list(self.excluded),
            "layers": [{**asdict(lay), "kinds": list(lay.kinds)} for lay in self.layers],
        }


def _inputs(x: torch.Tensor | Iterable[torch.Tensor]) -> Iterable[torch.Tensor]:
    return [x] if isinstance(x, torch.Tensor) else x


def count_ops(model: nn.Module, x: torch.Tensor | Iterable[torch.Tensor], fold_bn: bool = True,
              strict: bool = False, neuron_types: Iterable[type[nn.Module]] = (),
              host_decisions: bool | None = None) -> OpsReport:
    """Count operations of ``model`` on ``x`` (``[T, B, ...]`` or an iterable of batches), per sample.

    ``strict=True`` raises NotImplementedError when a called module (or a torch function computing a
    product outside counted modules) has no counting rule; otherwise it is listed in ``uncounted`` and the
    report is marked incomplete. The model runs in eval mode under ``torch.no_grad`` after
    ``functional.reset_net`` per batch. ``host_decisions``: see :class:`bench.metrics.probe.Probe`.
    """
    probe = Probe(model, firing=False, fold_bn=fold_bn, strict=strict, neuron_types=neuron_types,
                  host_decisions=host_decisions)
    return OpsReport.from_probe(probe.run(_inputs(x)).finish())


def profile(model: nn.Module, x: torch.Tensor | Iterable[torch.Tensor], fold_bn: bool = True,
            strict: bool = False, neuron_types: Iterable[type[nn.Module]] = (),
            host_decisions: bool | None = None) -> tuple[FiringReport, OpsReport]:
    """Firing statistics and op counts from ONE forward pass per batch (shared hooks)."""
    probe = Probe(model, fold_bn=fold_bn, strict=strict, neuron_types=neuron_types, host_decisions=host_decisions)
    result = probe.run(_inputs(x)).finish()
    return FiringReport.from_probe(result), OpsReport.from_probe(result)


def case_reports(ctx: CaseContext) -> tuple[FiringReport, OpsReport]:
    """Firing and ops reports of a case, from the one pass it shares (:func:`bench.metrics.probe.case_probe`)."""
    result = case_probe(ctx)
    return FiringReport.from_probe(result), OpsReport.from_probe(result)


FIELDS = (
    Field("acs", "ACs", "", "count", "lower", "accumulates per sample: event-driven synaptic ACs plus avg-pooling "
          "additions", headline=True, tolerance=EXACT),
    Field("macs", "MACs", "", "count", "lower", "multiply-accumulates on analog operands per sample", headline=True,
          tolerance=EXACT),
    Field("sops", "SOPs", "", "count", "lower", "synaptic operations (exact event x reach counts) per sample",
          headline=True, summary=True, tolerance=EXACT),
    Field("dense_macs", "dense MACs", "", "count", description="dense MACs of the same shapes over all T steps "
          "the model runs (T-step total; one ANN inference is energy's ann_macs)", tolerance=EXACT),
    Field("approx_sops", "approx. SOPs", "", "count", description="the literature's firing rate x T x dense MACs"),
    Field("approx_sops_error", "approx. SOPs error", "%", "percent", description="approx_sops / sops - 1"),
    Field("neuron_updates", "neuron updates", "", "count", description="one per neuron per step"),
    Field("cmps", "max-pool comparisons", "", "count", description="listed, not costed"),
    Field("complete", "complete", fmt="text", description="every called module with compute had a counting rule"),
    Field("n_uncounted", "uncounted modules", fmt="int", description="called modules without a counting rule"),
    Field("samples", "samples", fmt="int", description="samples the counts are over"),
    Field("T", "T", fmt="int", description="time steps of the pass"),
    Field("fold_bn", "BN folded", fmt="text", description="BN after conv/linear folded (0 ops)"),
    Field("per", "unit", fmt="text", description="what one count refers to"),
    Field("convention", "convention", fmt="text", description="id of the counting conventions applied"),
)
OPTIONS = (
    Option("fold_bn", bool, True, "fold a BN that reads a conv/linear output into it (0 ops)"),
    Option("strict", bool, False, "raise when a called module has no counting rule"),
    Option("num_batches", int, 1, "evaluation batches the counts are taken over (shared with firing)", minimum=1),
)


@register_metric("ops", "MACs, exact ACs/SOPs, dense MACs, neuron updates per sample (one shared pass)",
                 fields=FIELDS, options=OPTIONS)
def ops_metric(ctx: CaseContext) -> dict[str, Any]:
    """Per-sample totals, the per-layer table, uncounted modules and the convention id."""
    _, report = case_reports(ctx)
    out = report.to_dict()
    if out["approx_sops_error"] is None:
        out["approx_sops_error_why"] = "no spike-driven synaptic operations"
    return out
