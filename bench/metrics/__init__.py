"""Metric plug-ins. Importing this package registers the built-in metrics."""

from bench.metrics import (  # noqa: F401  (registers the plug-ins)
    accuracy,
    energy,
    firing,
    measured_energy,
    memory,
    ops,
    params,
    timing,
)
from bench.metrics.base import CaseContext, available_metrics, get_metric, register_metric
from bench.metrics.energy import estimate_energy, estimate_hardware_energy

__all__ = ["CaseContext", "available_metrics", "estimate_energy", "estimate_hardware_energy", "get_metric",
           "register_metric"]
