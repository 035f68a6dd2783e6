"""Metric plug-ins. Importing this package registers the built-in metrics."""

from bench.metrics import accuracy, measured_energy, memory, params, timing  # noqa: F401  (registers the plug-ins)
from bench.metrics.base import CaseContext, available_metrics, get_metric, register_metric

__all__ = ["CaseContext", "available_metrics", "get_metric", "register_metric"]
