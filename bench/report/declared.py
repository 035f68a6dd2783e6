"""The metric declarations and conventions a report renders with, read from the runs' ``run.json``.

A report never asks the metric plug-ins (that would import torch): each run stores the declarations of
the metrics it used (``metric_contracts``) and the conventions in force (``conventions``). Merged runs use
the union of their declarations; a metric declared differently in two runs takes the newer run's
declaration (``env.json`` ``created``), and a note says so. A run made before run.json stored declarations
renders its metric values only when the caller passes the installed declarations (:class:`Installed`,
given by ``bench report`` alone), again with a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.contract import Field, MetricContract
from bench.results import RunData


@dataclass(frozen=True)
class Installed:
    """Declarations and conventions of the installed plug-ins, for runs whose run.json lacks them."""

    contracts: dict[str, MetricContract]
    conventions: dict[str, Any]


@dataclass
class Declared:
    """The declarations in force for a report, with the notes on how they were chosen."""

    contracts: dict[str, MetricContract]
    conventions: dict[str, dict[str, Any]] = field(default_factory=dict)  # run id -> its conventions
    notes: list[str] = field(default_factory=list)

    def field(self, metric: str, name: str) -> Field | None:
        contract = self.contracts.get(metric)
        return None if contract is None else contract.field(name)

    def fields(self, metrics: set[str] | None = None) -> list[tuple[str, Field]]:
        """(metric, field) of every declared field, metrics in declaration order (only ``metrics`` if given)."""
        return [(m, f) for m, c in self.contracts.items() if metrics is None or m in metrics for f in c.fields]


def _newest_first(runs: list[RunData]) -> list[RunData]:
    """Runs by ``env.json`` creation time, newest first (a run without one counts as oldest)."""
    order = {id(run): i for i, run in enumerate(runs)}
    return sorted(runs, key=lambda r: (str(r.env.get("created") or ""), order[id(r)]), reverse=True)


def declarations(runs: list[RunData], installed: Installed | None = None) -> Declared:
    """The union of the runs' declarations (the newer run wins a conflict), with notes."""
    out = Declared({})
    chosen: dict[str, tuple[MetricContract, str]] = {}
    for run in _newest_first(runs):
        contracts, conventions = run.contracts, run.run.get("conventions")
        if contracts is None:
            if installed is None:
                out.notes.append(f"run {run.run_id}: its run.json has no metric declarations (made by an older "
                                 "version), so its metric values are not shown; `bench report "
                                 f"{run.path}` renders them with the declarations of the installed version")
                continue
            contracts, conventions = installed.contracts, conventions or installed.conventions
            out.notes.append(f"run {run.run_id}: its run.json has no metric declarations (made by an older "
                             "version); rendered with the declarations and conventions of the installed version")
        if conventions:
            out.conventions[run.run_id] = conventions
        for name, contract in contracts.items():
            if name not in chosen:
                chosen[name] = (contract, run.run_id)
            elif chosen[name][0].to_dict() != contract.to_dict():
                note = (f"metric {name!r} is declared differently in runs {run.run_id} and {chosen[name][1]}: "
                        f"the declarations of the newer run ({chosen[name][1]}) are used")
                if note not in out.notes:
                    out.notes.append(note)
    first_seen = [m for run in runs for m in (run.contracts or (installed.contracts if installed else {}))]
    out.contracts = {m: chosen[m][0] for m in dict.fromkeys(first_seen) if m in chosen}
    undeclared = {m for run in runs if run.contracts is not None or installed
                  for r in run.records for m in (r.get("metrics") or {})} - set(out.contracts)
    if undeclared:
        out.notes.append(f"no declaration for metric(s) {', '.join(sorted(undeclared))} in run.json: not shown")
    return out
