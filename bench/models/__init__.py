"""Architecture zoo. Importing this package registers every family (one module per family)."""

from __future__ import annotations

import importlib

from bench.models.registry import (
    ModelInfo,
    UnknownModelError,
    create_model,
    list_models,
    model_info,
    register_model,
)

# One module per family; a family missing from the tree is simply not registered.
FAMILY_MODULES = (
    "spiking_resnet",
    "sew_resnet",
    "ms_resnet",
    "danet",
    "spikeformer",
    "dsr",
)

for _module in FAMILY_MODULES:
    try:
        importlib.import_module(f"bench.models.{_module}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"bench.models.{_module}":
            raise

__all__ = ["ModelInfo", "UnknownModelError", "create_model", "list_models", "model_info", "register_model"]
