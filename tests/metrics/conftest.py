"""Fixtures for the efficiency-metric tests: tiny multi-step nets whose neurons actually fire."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import layer, neuron

from bench.metrics.firing import calibrate_bn

T, B = 3, 2


def tiny_snn() -> nn.Module:
    """conv(analog) -> BN -> IF -> conv s2 -> BN -> IF -> avgpool -> flatten -> linear, on [T, B, 3, 8, 8]."""
    return nn.Sequential(
        layer.SeqToANNContainer(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)),
        neuron.IFNode(step_mode="m", detach_reset=True),
        layer.SeqToANNContainer(nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(6)),
        neuron.IFNode(step_mode="m", detach_reset=True),
        layer.SeqToANNContainer(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6 * 2 * 2, 5)),
    )


@pytest.fixture
def make_tiny_snn() -> Callable[[], nn.Module]:
    return tiny_snn


@pytest.fixture
def fired_net() -> tuple[nn.Module, torch.Tensor]:
    """A tiny SNN with BN calibrated on its input, so its neurons fire, and that input [T, B, 3, 8, 8]."""
    torch.manual_seed(0)
    net = tiny_snn()
    x = torch.rand(T, B, 3, 8, 8)
    calibrate_bn(net, [x])
    return net.eval(), x


@pytest.fixture
def spikes() -> Callable[..., torch.Tensor]:
    """``spikes(*shape, p=0.3, seed=0)``: a binary float tensor with about a fraction p of ones."""

    def make(*shape: int, p: float = 0.3, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return (torch.rand(*shape, generator=g) < p).float()

    return make
