"""The one small interface every dataset kind implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch.utils.data import Dataset

if TYPE_CHECKING:
    from bench.data.limits import MemoryEstimate


class DatasetError(ValueError):
    """A dataset that cannot be read: names the path, what was expected and the fix."""


@dataclass
class DataBundle:
    """An evaluation dataset and what the runner and reports need to know about it.

    Items are ``(x, label)``: static images ``x = [C, H, W]`` (repeated over T by the runner:
    direct encoding) or event frames ``x = [T_data, C, H, W]`` (cut to the case's T).
    """

    dataset: Dataset
    name: str
    num_classes: int
    in_channels: int
    image_size: int
    kind: str = "static"  # "static" or "frames"
    # False for synthetic data: labels are random, so accuracy is not measured.
    labelled: bool = True
    description: str = ""
    # Set when the declared data was missing and a fallback was used; reports print it first.
    fallback_note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Bytes held once loaded, worked out (and checked against the limit) before loading: bench.data.limits.
    memory: MemoryEstimate | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "dataset": self.name,
            "num_samples": len(self.dataset),  # type: ignore[arg-type]
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "image_size": self.image_size,
            "kind": self.kind,
            "labelled": self.labelled,
            "description": self.description,
            "fallback_note": self.fallback_note,
            "memory": self.memory.to_dict() if self.memory else None,
        }

