"""The statistics a tensor's kind decision reads (:mod:`bench.metrics.kinds`), as plain data.

A module of its own so that the fused statistics backend (:mod:`bench.metrics.stats_triton`, loaded by
``kinds`` only on CUDA) and ``kinds`` both depend on it, and not on each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from bench.metrics.kinds import InputInfo

GROUP = 256  # float32 partial sums cover at most this many elements
MULTISPIKE_MAX = 2 ** 24 // GROUP  # largest multispike value whose group sums stay exact in float32


@dataclass(frozen=True)
class Grids:
    """Event sums of a tensor viewed as ``[A, R, P]`` (:func:`as_3d`), reduced over ``R``: float64, exact.

    ``nonzero[a, p]`` counts nonzeros, ``values[a, p]`` sums values (None where not computed: the host
    path computes only what the kind needs). With ``P = 1`` a backend may return more columns (partial
    sums of one plane); only their sum is then read. A neuron output ``[T, B, C, H, W]`` uses ``A = T`` and
    ``P = H * W`` (per-step counts and a conv's event profile from one pass); a conv input ``A = 1`` and
    ``P`` its spatial positions; a linear input ``A = P = 1``.
    """

    nonzero: torch.Tensor | None
    values: torch.Tensor | None

    def events(self, info: InputInfo) -> torch.Tensor | None:
        """Events per ``[A, P]``: values for a multispike tensor, nonzeros for the others (None when the
        host path has not computed that grid)."""
        if info.on_host:
            return self.values if info.multispike else self.nonzero
        return torch.where(info.multispike, self.values, self.nonzero)


@dataclass(frozen=True)
class Stats:
    """What the device decision needs about a tensor viewed as ``[A, R, P]``: 0-dim tensors, exact.

    ``grids``: its :class:`Grids`; ``minimum``/``maximum`` (float64; a NaN sets ``nan``); ``two_level``:
    every nonzero equals the maximum; ``integral``: every value is an integer (both meaningful for a
    non-negative tensor, the only case the decision reads them); ``active``/``saturated`` (float64, for
    a window): positions ``(r, p)`` with a nonzero at some / every ``a`` (a neuron output's silent and
    saturated counts, ``A = T``). A fused backend may instead hand over ``decided``: the kind code and
    events it computed with the same decision.
    """

    grids: Grids
    minimum: torch.Tensor | None = None
    maximum: torch.Tensor | None = None
    nan: torch.Tensor | None = None
    two_level: torch.Tensor | None = None
    integral: torch.Tensor | None = None
    active: torch.Tensor | None = None
    saturated: torch.Tensor | None = None
    decided: tuple[torch.Tensor, torch.Tensor] | None = None
