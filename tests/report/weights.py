"""Copies of the real run with its weights relabelled: as if loaded from a checkpoint (ours or an official
format), or as the runner's newer untrained records (``model.weights``). Only the model fields change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from real_run import copy_run, read_jsonl, write_jsonl


def with_weights(record: dict[str, Any], fmt: str | None, weights: str | None = None) -> dict[str, Any]:
    """The record as if its weights were a checkpoint in ``fmt`` (None: untrained, new form with ``weights``)."""
    model = record["model"]
    if fmt is None:
        model.update(checkpoint=None, checkpoint_format=None, untrained=True,
                     weights=weights or "untrained, BN calibrated on 64 samples")
    else:
        model.update(checkpoint=f"ckpt/{model['label']}.pth", checkpoint_format=fmt, untrained=False,
                     weights=weights or f"checkpoint {model['label']}.pth ({fmt})")
    return record


def relabelled(src: Path, dst: Path, fmt: str | None, ok_only: bool = True, **edits: Any) -> Path:
    """A copy of a run folder with every record's weights relabelled (see :func:`with_weights`); ``edits``
    update each record's model (e.g. ``kwargs={}``)."""
    copy_run(src, dst, ok_only=ok_only)
    records = [with_weights(r, fmt) for r in read_jsonl(dst / "results.jsonl")]
    for r in records:
        r["model"].update(edits)
    write_jsonl(dst / "results.jsonl", records)
    return dst
