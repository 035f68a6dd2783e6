"""Checkpoint files of the trainer, beside the results: ``<run_dir>/checkpoints/<name>.pt`` and ``.last.pt``.

- ``<name>.pt`` (final): ``{"model": state_dict, "meta": {...}}``; ``bench.checkpoints.load_into`` reads
  it with ``weights_only=True`` and returns ``meta`` (``trained_T``, ``model``, ``kwargs``, ``epoch``,
  ``method``, ``config``, ``config_key``, ``history``, ...).
- ``<name>.last.pt`` (after every epoch): the same plus ``optimizer``, ``scheduler`` and ``rng`` (torch's
  CPU generator state), so a rerun resumes after the last finished epoch. It is deleted once the final
  file is written (so deleting a final checkpoint trains that model anew).

Files hold only tensors and plain containers (loadable with ``weights_only=True``), and are written to
a temporary file first and renamed, so an interrupted save never leaves a truncated checkpoint.
``meta.config_key`` (:func:`bench.build.config_key`) hashes everything that defines the training; a file
with another key is not reused. A file there that cannot be read (truncated, another format, a pickle
with code) stops the training with its name and the fix (delete it): nothing is overwritten unseen.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_DIR = "checkpoints"
# File names stay far below the usual 255-byte limit: slug, hash and ".last.pt.tmp" included.
MAX_SLUG = 80


def checkpoint_name(label: str) -> str:
    """A file-safe name for a model label; a short hash keeps distinct labels distinct."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("._")[:MAX_SLUG] or "model"
    if slug == label:
        return slug
    return f"{slug}-{hashlib.sha1(label.encode()).hexdigest()[:6]}"


def checkpoint_paths(run_dir: str | Path, label: str) -> tuple[Path, Path]:
    """``(final, last)`` checkpoint paths of the model labelled ``label`` in ``run_dir``."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    name = checkpoint_name(label)
    return folder / f"{name}.pt", folder / f"{name}.last.pt"


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file (fsync'd), then rename over ``path``; on failure the temporary file is removed
    and ``path`` is left as it was (the OSError propagates)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:  # opened here, so a folder that refuses the file raises OSError
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


class UnreadableCheckpointError(ValueError):
    """A trainer checkpoint that cannot be read: bad input (exit 2), the message names the file and the fix."""


def _load(path: Path) -> dict[str, Any]:
    """A trainer file's object, loaded with weights_only=True; UnreadableCheckpointError if it is not one."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign bytes (UnpicklingError, RuntimeError, ...)
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UnreadableCheckpointError(
            f"{path} cannot be read as a trainer checkpoint ({type(exc).__name__}: {first}); it is truncated, in "
            f"another format or holds code (only tensors and plain containers are loaded). Fix: delete it to "
            f"train that model from the start, or move it away to keep it") from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("meta"), dict):
        raise UnreadableCheckpointError(f"{path} is not a trainer checkpoint (no 'meta' table). Fix: delete it "
                                        "to train that model from the start, or move it away to keep it")
    return obj


def read_meta(path: Path) -> dict[str, Any] | None:
    """The ``meta`` of a trainer checkpoint, or None when the file does not exist."""
    if not path.is_file():
        return None
    return _load(path)["meta"]


def load_state(path: Path) -> dict[str, Any] | None:
    """The whole ``.last.pt`` object (model, optimizer, scheduler, rng, meta), or None if absent."""
    if not path.is_file():
        return None
    state = _load(path)
    missing = [k for k in ("model", "optimizer", "scheduler", "rng") if k not in state]
    if missing:
        raise UnreadableCheckpointError(f"{path} lacks {', '.join(missing)}: not a per-epoch trainer checkpoint. "
                                        "Fix: delete it to train that model from the start")
    return state
