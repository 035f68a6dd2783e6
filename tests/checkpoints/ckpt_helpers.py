"""Helpers of the checkpoint tests: random official-format state dicts, in-order copies, forwards."""

from __future__ import annotations

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional

Keys = list[tuple[str, tuple[int, ...]]]


def random_state(keys: Keys, seed: int = 0) -> dict[str, torch.Tensor]:
    """Distinct random tensors for ``keys``, scaled so that the spiking layers fire (BN biases positive)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in keys:
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            t = torch.tensor(100)
        elif leaf == "running_var":
            t = 0.5 + torch.rand(shape, generator=g)
        elif leaf in ("running_mean", "w"):  # w: PLIF's learned decay, sigmoid(w) = 1/tau
            t = 0.1 * torch.randn(shape, generator=g)
        elif leaf == "Vth":  # DSR thresholds
            t = 0.3 + torch.rand(shape, generator=g)
        elif len(shape) == 1 and leaf == "weight":  # norm scales
            t = 0.5 + torch.rand(shape, generator=g)
        elif len(shape) == 1:  # biases: positive, so that neurons receive drive
            t = 0.1 + 0.6 * torch.rand(shape, generator=g)
        else:
            fan_in = max(1, int(torch.tensor(shape[1:]).prod())) if len(shape) > 1 else 1
            t = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        out[name] = t
    return out


def in_order(model: nn.Module, official: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict holding ``official``'s tensors by position (same forward order), shape-checked."""
    own = model.state_dict()
    assert len(own) == len(official)
    out = {}
    for (key, mine), theirs in zip(own.items(), official.values(), strict=True):
        assert mine.numel() == theirs.numel(), (key, tuple(mine.shape), tuple(theirs.shape))
        out[key] = theirs.reshape(mine.shape)
    return out


@torch.no_grad()
def forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    functional.reset_net(model)
    return model(x)
