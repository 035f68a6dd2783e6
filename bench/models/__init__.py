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

# One module per family; importing it registers its models.
FAMILY_MODULES = (
    "spiking_resnet",
    "sew_resnet",
    "ms_resnet",
    "danet",
    "spikeformer",
    "dsr",
)

for _module in FAMILY_MODULES:
    importlib.import_module(f"bench.models.{_module}")

__all__ = ["ModelInfo", "UnknownModelError", "create_model", "list_models", "model_info", "register_model"]
