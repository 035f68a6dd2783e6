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


class _Sleeps(nn.Module):
    def __init__(self, num_classes: int, seconds: float):
        super().__init__()
        self.num_classes = num_classes
        self.seconds = seconds

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import time

        time.sleep(self.seconds)
        return torch.zeros(x.shape[0], x.shape[1], self.num_classes)


def sleepy_model(num_classes: int = 10, seconds: float = 30.0) -> nn.Module:
    """Sleeps in every forward: for time-out, kill and interrupt tests."""
    return _Sleeps(num_classes, seconds)


class _RaisesCudaOOM(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (simulated)")


def cuda_oom_model(num_classes: int = 10) -> nn.Module:
    return _RaisesCudaOOM()


class _Hog(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hog = torch.ones(8 * 2**30 // 4)  # 8 GiB of float32
        return hog[: x.shape[0]].view(1, -1, 1).expand(x.shape[0], x.shape[1], 10)


def memory_hog_model(num_classes: int = 10) -> nn.Module:
    """Asks for 8 GiB in its forward: fails under a smaller memory_limit_gib."""
    return _Hog()


class _KillsItself(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import os
        import signal

        os.kill(os.getpid(), signal.SIGSEGV)
        return x


def crashing_model(num_classes: int = 10) -> nn.Module:
    """Dies of SIGSEGV in its forward, as a crash in native code would."""
    return _KillsItself()
