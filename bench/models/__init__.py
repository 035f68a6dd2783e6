"""Architecture zoo. Importing this package registers every family (one module per family)."""

from __future__ import annotations

import importlib

from bench.models.registry import (
    KwargError,
    KwargRule,
    ModelInfo,
    UnknownModelError,
    check_kwargs,
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

__all__ = ["KwargError", "KwargRule", "ModelInfo", "UnknownModelError", "check_kwargs", "create_model", "list_models",
           "model_info", "register_model"]
