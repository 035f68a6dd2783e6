"""Metric plug-ins. Importing this package registers the built-in metrics.

The public counting API (README "Metrics"): :func:`count_ops`, :func:`profile` (firing and ops from one
pass), :func:`firing_rates` and :func:`estimate_energy`, importable from here.
"""

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
from bench.metrics.firing import firing_rates
from bench.metrics.ops import count_ops, profile

__all__ = ["CaseContext", "available_metrics", "count_ops", "estimate_energy", "estimate_hardware_energy",
           "firing_rates", "get_metric", "profile", "register_metric"]
