"""Loading checkpoints into models: safe, forgiving about wrappers, strict about keys.

- Files are read with ``torch.load(weights_only=True)``: no pickled code runs. A file that needs
  full unpickling is refused with that reason (re-save its state dict to load it here).
- A checkpoint is a state dict or a dict holding one under ``model``, ``state_dict``, ``net``,
  ``model_state`` or ``module``; prefixes ``module.`` (DataParallel/DDP) and ``_orig_mod.``
  (torch.compile) are stripped.
- Any mismatch is an error listing the missing and unexpected keys and shape conflicts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

STATE_KEYS = ("model", "state_dict", "net", "model_state", "module")
STRIP_PREFIXES = ("module.", "_orig_mod.")


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message names the file and the fix."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw object in a checkpoint file, loaded with weights_only=True."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist. Fix: correct models[].checkpoint "
                              "or remove it to evaluate the untrained model")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign bytes (IndexError for text files)
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "Weights only load failed" in str(exc):
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds objects other than tensors and plain containers, and is only "
                f"loaded with weights_only=True (no code from files is executed). Fix: re-save its state dict "
                f"with torch.save(model.state_dict(), ...). Detail: {first_line}") from exc
        raise CheckpointError(f"checkpoint {str(path)!r} is truncated or not a PyTorch checkpoint "
                              f"({type(exc).__name__}: {first_line})") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} holds a {type(obj).__name__}, not a state dict")
    return obj


def extract_state_dict(obj: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The state dict inside a checkpoint object, with wrapper prefixes stripped."""
    state = obj
    for key in STATE_KEYS:
        if key in obj and isinstance(obj[key], dict):
            state = obj[key]
            break
    cleaned: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        for prefix in STRIP_PREFIXES:
            while name.startswith(prefix):
                name = name[len(prefix):]
        cleaned[name] = value
    if not cleaned:
        raise CheckpointError(f"no tensors found (looked at the top level and under {', '.join(STATE_KEYS)})")
    return cleaned


def load_into(model: nn.Module, path: str | Path) -> dict[str, Any]:
    """Load a checkpoint into ``model`` strictly; returns the checkpoint's metadata (e.g. trained_T)."""
    obj = read_checkpoint(path)
    try:
        state = extract_state_dict(obj)
    except CheckpointError as exc:
        raise CheckpointError(f"checkpoint {str(path)!r}: {exc}") from exc
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(state) if state[k].shape != own[k].shape)
    if missing or unexpected or shapes:
        def listing(title: str, keys: list[str]) -> str:
            shown = ", ".join(keys[:20]) + (f", ... ({len(keys)} in all)" if len(keys) > 20 else "")
            return f"\n  {title} ({len(keys)}): {shown}" if keys else ""

        raise CheckpointError(
            f"checkpoint {str(path)!r} does not match the model"
            + listing("missing keys", missing) + listing("unexpected keys", unexpected)
            + listing("shape mismatches", shapes)
            + "\n  Fix: build the model with the kwargs it was trained with (width, num_classes, T, ...)")
    model.load_state_dict(state, strict=True)
    meta = obj.get("meta", {}) if isinstance(obj.get("meta"), dict) else {}
    return meta
