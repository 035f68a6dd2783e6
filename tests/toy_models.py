"""Tiny user models reached by import path (``toy_models:factory``) in the runner tests."""

from __future__ import annotations

import torch
import torch.nn as nn
from spikingjelly.activation_based import layer, neuron


def tiny_snn(num_classes: int = 10, in_channels: int = 1, image_size: int = 8) -> nn.Module:
    """Flatten -> Linear -> IF -> Linear: per-step outputs [T, B, K]."""
    return nn.Sequential(
        layer.Flatten(start_dim=1, step_mode="m"),
        layer.Linear(in_channels * image_size * image_size, 16, step_mode="m"),
        neuron.IFNode(v_threshold=0.5, step_mode="m"),
        layer.Linear(16, num_classes, step_mode="m"),
    )


class _Raises(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("deliberate failure inside forward")


def raising_model(num_classes: int = 10) -> nn.Module:
    return _Raises()


class _NaN(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], x.shape[1], self.num_classes), float("nan"))


def nan_model(num_classes: int = 10) -> nn.Module:
    return _NaN(num_classes)


def not_a_module(num_classes: int = 10) -> str:
    return "oops"
