"""The one small interface every dataset kind implements: a :class:`DatasetKind` declaring it, and the
:class:`DataBundle` its loader returns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch.utils.data import Dataset

if TYPE_CHECKING:
    from bench.data.limits import MemoryEstimate

# data.options keys that, when a suite sets them to an integer, override the declared shape's field.
SHAPE_OPTIONS = ("in_channels", "num_classes")


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



@dataclass(frozen=True)
class DeclaredShape:
    """A dataset's channel count, (square) image size and class count as known before anything is loaded."""

    in_channels: int
    image_size: int
    num_classes: int


@dataclass(frozen=True)
class DatasetKind:
    """One dataset a suite may name (``data.dataset = name``), declared once in its own file and registered
    in ``bench.data.DATASETS``: suite validation, the memory checks before loading, the dry-run estimate,
    the synthetic fallback and loading all read this declaration (no code compares dataset names).

    ``spec`` below is the suite's ``[data]`` (a ``bench.suite.DataSpec``); ``root`` the resolved
    ``data.root``, None for a kind that reads none.
    """

    name: str
    # data.options keys the kind reads (a suite setting any other is refused at load, exit 2), and those
    # of them checked at load as integers in [minimum, maximum] (the loader checks the others when it runs).
    options: tuple[str, ...]
    integer_options: Mapping[str, tuple[int, int]]
    # Channels, image size and classes as declared (data.options and data.image_size may override them,
    # see declared_shape); also the shape of the synthetic stand-in for a missing root.
    shape: DeclaredShape
    # Where the files must lie under data.root (quoted when it is missing); None: the kind reads no root.
    layout: str | None
    # load(spec, root, seed): the evaluation data; DatasetError naming the file and the fix on bad input.
    load: Callable[[Any, Path | None, int], DataBundle]
    # estimate(spec, root): the memory load() will take, worked out without loading (bench.data.limits).
    estimate: Callable[[Any, Path | None], MemoryEstimate]
    # samples(spec): the samples accuracy evaluates, as declared; None when known only once loaded.
    samples: Callable[[Any], int | None]
    # Whether the labels are real (False: random labels, accuracy is not measured).
    labelled: bool
    # True when one sample's (C, H, W) is known only once files are read (not from the declared shape).
    shape_from_files: bool
    # The setting that sets how much data is held in memory (resident), named when it exceeds the machine's
    # (bench.runner.memory_problem) and in the dry run's data check: e.g. data.image_size for digits, whose
    # images are held resized; data.split for cifar, which holds a split's 32-px images whatever the image size.
    memory_field: str

    def memory_fix(self) -> str:
        """The fix a refusal of too much data names: change :attr:`memory_field` and, when that is another
        setting, lower data.image_size (one sample's size)."""
        if self.memory_field == "data.image_size":
            return "lower data.image_size"
        return f"change {self.memory_field} so that less data is held, or lower data.image_size (one sample's size)"

    @property
    def needs_root(self) -> bool:
        """Whether the kind reads files under ``data.root`` (a missing root stops the run or falls back)."""
        return self.layout is not None

    def declared_shape(self, spec: Any) -> DeclaredShape:
        """The declared shape with the suite's integer ``data.options`` of :data:`SHAPE_OPTIONS` and its
        ``data.image_size`` applied: the shape memory checks and model kwargs use before loading."""
        overrides = {k: v for k, v in spec.options.items() if k in SHAPE_OPTIONS and isinstance(v, int)}
        return replace(self.shape, **overrides, image_size=spec.image_size or self.shape.image_size)


def samples_known_once_loaded(spec: Any) -> int | None:
    """``samples`` of a file-based kind: ``data.max_samples`` caps the count, which is otherwise known only
    once the files are read (None)."""
    return spec.max_samples or None
