"""Checks shared by the file-based datasets: ``data.options`` values, label ranges, normalisation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from bench.data.base import DatasetError


def check_options(options: dict[str, Any], allowed: Sequence[str], dataset: str) -> None:
    """Refuse ``data.options`` keys the dataset does not read (a typo would otherwise be ignored)."""
    for key in options:
        if key not in allowed:
            raise DatasetError(f"data.options.{key}: not an option of dataset {dataset!r}. "
                               f"Fix: use one of {', '.join(allowed) or '(none)'}")


def option_int(options: dict[str, Any], key: str, default: int, minimum: int = 1) -> int:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DatasetError(f"data.options.{key}: expected an integer >= {minimum}, got {value!r}")
    return value


def option_triple(options: dict[str, Any], key: str, default: Sequence[float], channels: int) -> tuple[float, ...]:
    """A per-channel list of numbers (mean or std), one per input channel."""
    value = options.get(key, list(default))
    if (not isinstance(value, list | tuple) or len(value) != channels
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)):
        raise DatasetError(f"data.options.{key}: expected a list of {channels} numbers, got {value!r}")
    if key == "std" and any(v <= 0 for v in value):
        raise DatasetError(f"data.options.std: every value must be positive, got {value!r}")
    return tuple(float(v) for v in value)


def option_bool(options: dict[str, Any], key: str, default: bool) -> bool:
    value = options.get(key, default)
    if not isinstance(value, bool):
        raise DatasetError(f"data.options.{key}: expected true or false, got {value!r}")
    return value


def check_labels(labels: Sequence[int] | torch.Tensor, num_classes: int, where: str) -> None:
    """Every label must be an integer in ``[0, num_classes)``; the error names the first bad one."""
    values = torch.as_tensor(labels)
    bad = ((values < 0) | (values >= num_classes)).nonzero().flatten()
    if bad.numel():
        i = int(bad[0])
        raise DatasetError(f"{where}: label {int(values[i])} at index {i} is outside 0..{num_classes - 1} "
                           f"({bad.numel()} such labels). Fix: set data.options.num_classes to the dataset's "
                           f"class count, or correct the labels")


def normalize(x: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None) -> torch.Tensor:
    """``(x - mean) / std`` per channel of ``[C, H, W]``; identity when ``mean`` is None."""
    if mean is None or std is None:
        return x
    m = torch.tensor(mean, dtype=x.dtype).view(-1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(-1, 1, 1)
    return (x - m) / s
