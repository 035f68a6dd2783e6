"""Pieces shared by every family: input encoding, decoding over time steps, input-size presets."""

from __future__ import annotations

import torch

INPUT_SIZES = ("imagenet", "cifar")


def check_input_size(input_size: str) -> str:
    """Validate an input-size preset: ``imagenet`` (7x7/2 stem, 224 px) or ``cifar`` (3x3/1 stem)."""
    if input_size not in INPUT_SIZES:
        raise ValueError(f"input_size must be one of {INPUT_SIZES}, got {input_size!r}")
    return input_size


def scaled(channels: int, width: float) -> int:
    """Channel count after a width multiplier, at least 1 (so tiny CPU variants keep their shape)."""
    return max(1, int(round(channels * width)))


def repeat_encode(images: torch.Tensor, T: int) -> torch.Tensor:
    """Direct encoding: a static batch ``[B, C, H, W]`` repeated T times to ``[T, B, C, H, W]``."""
    return images.unsqueeze(0).expand(T, *images.shape).contiguous()


def cumulative_mean(outputs: torch.Tensor) -> torch.Tensor:
    """Per-step outputs ``[T, B, K]`` to the mean over the first t steps, for every t: ``[T, B, K]``.

    ``cumulative_mean(out)[t-1]`` is the rate-decoded prediction a model run for t steps gives,
    when its dynamics are causal (output at t depends only on inputs up to t).
    """
    steps = torch.arange(1, outputs.shape[0] + 1, device=outputs.device, dtype=outputs.dtype)
    return outputs.cumsum(0) / steps.view(-1, *([1] * (outputs.dim() - 1)))


def decode(outputs: torch.Tensor, t: int | None = None) -> torch.Tensor:
    """Mean over the first ``t`` steps (all when None) of ``[T, B, K]`` outputs: ``[B, K]``."""
    if outputs.dim() != 3:
        raise ValueError(f"model outputs must be [T, B, classes], got shape {tuple(outputs.shape)}")
    t = outputs.shape[0] if t is None else t
    if not 1 <= t <= outputs.shape[0]:
        raise ValueError(f"t={t} outside 1..{outputs.shape[0]}")
    return outputs[:t].mean(0)


class MatMul(torch.nn.Module):
    """``a @ b`` as a module, so op counters see both operands of attention products through hooks.

    Families must route every activation-by-activation product (q @ k^T, attn @ v) through this
    module instead of calling ``torch.matmul`` directly; a bare matmul would be invisible to the
    counters and reported as uncounted.
    """

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b
