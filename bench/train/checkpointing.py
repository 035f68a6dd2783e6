"""Checkpoint files of the trainer, beside the results: ``<run_dir>/checkpoints/<name>.pt`` and ``.last.pt``.

- ``<name>.pt`` (final): ``{"model": state_dict, "meta": {...}}``; ``bench.checkpoints.load_into`` reads
  it with ``weights_only=True`` and returns ``meta`` (``trained_T``, ``model``, ``kwargs``, ``epoch``,
  ``method``, ``config``, ``config_key``, ``history``, ...).
- ``<name>.last.pt`` (after every epoch): the same plus ``optimizer``, ``scheduler`` and ``rng`` (torch's
  CPU generator state), so a rerun resumes after the last finished epoch. It is deleted once the final
  file is written (so deleting a final checkpoint trains that model anew).

Files hold only tensors and plain containers (loadable with ``weights_only=True``), and are written to
a temporary file first and renamed, so an interrupted save never leaves a truncated checkpoint.
``config_key`` hashes everything that defines the training; a file with another key is not reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_DIR = "checkpoints"


def checkpoint_name(label: str) -> str:
    """A file-safe name for a model label; a short hash keeps distinct labels distinct."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("._") or "model"
    if slug == label:
        return slug
    return f"{slug}-{hashlib.sha1(label.encode()).hexdigest()[:6]}"


def checkpoint_paths(run_dir: str | Path, label: str) -> tuple[Path, Path]:
    """``(final, last)`` checkpoint paths of the model labelled ``label`` in ``run_dir``."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    name = checkpoint_name(label)
    return folder / f"{name}.pt", folder / f"{name}.last.pt"


def config_key(payload: dict[str, Any]) -> str:
    """A stable hash of a training's defining settings."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def read_meta(path: Path) -> dict[str, Any] | None:
    """The ``meta`` of a trainer checkpoint, or None when the file does not exist."""
    if not path.is_file():
        return None
    obj = torch.load(path, map_location="cpu", weights_only=True)
    meta = obj.get("meta") if isinstance(obj, dict) else None
    return meta if isinstance(meta, dict) else {}


def load_state(path: Path) -> dict[str, Any] | None:
    """The whole ``.last.pt`` object (model, optimizer, scheduler, rng, meta), or None if absent."""
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)
