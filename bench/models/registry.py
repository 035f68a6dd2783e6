"""Model registry modelled on timm: ``@register_model``, ``create_model``, ``list_models``.

Every registered factory carries a :class:`ModelInfo` with the facts ``bench models`` and the
reports print (family, paper, provenance, default T, neuron, what is not spike-driven).
User models are reached by import path ``package.module:factory`` and get a minimal info.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch.nn as nn

OFFICIAL = "official code"
RECONSTRUCTED = "reconstructed from paper"
USER = "user model"


class UnknownModelError(KeyError):
    """Raised for a model name that is neither registered nor an importable path."""

    def __init__(self, name: str, message: str):
        super().__init__(name)
        self.name = name
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ModelInfo:
    """What a registered model is; printed by ``bench models`` and in every report."""

    name: str
    family: str
    paper: str
    provenance: str
    default_T: int
    neuron: str
    non_spiking: tuple[str, ...] = ()
    input_size: str = "imagenet"
    # True when output[t] depends only on inputs <= t and not on T itself, so accuracy at every
    # t <= T comes from one pass (cumulative mean). False for T-dependent dynamics (DSR nodes,
    # learned time embeddings, attention across time).
    causal_over_T: bool = True
    notes: str = ""
    factory: Callable[..., nn.Module] | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "paper": self.paper,
            "provenance": self.provenance,
            "default_T": self.default_T,
            "neuron": self.neuron,
            "non_spiking": list(self.non_spiking),
            "input_size": self.input_size,
            "causal_over_T": self.causal_over_T,
            "notes": self.notes,
        }


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    *,
    family: str,
    paper: str,
    provenance: str,
    default_T: int,
    neuron: str,
    non_spiking: tuple[str, ...] = (),
    input_size: str = "imagenet",
    causal_over_T: bool = True,
    notes: str = "",
    name: str | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a factory under its function name (or ``name``) with its metadata."""

    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or fn.__name__
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} is registered twice")
        _REGISTRY[key] = ModelInfo(
            name=key,
            family=family,
            paper=paper,
            provenance=provenance,
            default_T=default_T,
            neuron=neuron,
            non_spiking=tuple(non_spiking),
            input_size=input_size,
            causal_over_T=causal_over_T,
            notes=notes,
            factory=fn,
        )
        return fn

    return decorator


def _ensure_loaded() -> None:
    # Importing the package registers every family module.
    importlib.import_module("bench.models")


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style pattern, sorted."""
    _ensure_loaded()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def is_import_path(name: str) -> bool:
    return ":" in name


def suggest(name: str) -> str:
    """A 'did you mean' hint for an unknown registered name."""
    close = difflib.get_close_matches(name, list_models(), n=3, cutoff=0.5)
    return f"did you mean {', '.join(repr(c) for c in close)}?" if close else "run `bench models` to list names"


def resolve_import_path(path: str) -> Callable[..., nn.Module]:
    """Import ``package.module:factory``; raise UnknownModelError with the reason on failure."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise UnknownModelError(path, f"import path {path!r} must look like 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure of user code is reported, not raised raw
        raise UnknownModelError(path, f"cannot import module {module_name!r} for {path!r}: {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UnknownModelError(path, f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UnknownModelError(path, f"{path!r} is not callable")
    return obj


def model_info(name: str) -> ModelInfo:
    """Metadata of a registered name, or a minimal record for an import path."""
    _ensure_loaded()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if is_import_path(name):
        fn = resolve_import_path(name)
        return ModelInfo(
            name=name,
            family="user",
            paper="",
            provenance=USER,
            default_T=0,
            neuron="unknown",
            input_size="any",
            causal_over_T=False,
            factory=fn,
        )
    raise UnknownModelError(name, f"unknown model {name!r}: {suggest(name)}")


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model (or ``package.module:factory``) with keyword arguments."""
    info = model_info(name)
    assert info.factory is not None
    model = info.factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"factory for {name!r} returned {type(model).__name__}, not an nn.Module")
    return model


def with_overrides(info: ModelInfo, **changes: Any) -> ModelInfo:
    """A copy of ``info`` with some fields changed (e.g. a user declaring causal_over_T)."""
    return replace(info, **changes)
