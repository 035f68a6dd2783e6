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

__all__ = ["CaseContext", "available_metrics", "get_metric", "register_metric"]
