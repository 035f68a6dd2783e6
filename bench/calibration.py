"""BatchNorm calibration of untrained models: the one piece of model preparation the runner, the metrics'
tests and the benchmarks share (it is no metric, so the runner does not reach into a metric for it).

Eval-mode BN at its initial statistics (mean 0, variance 1) leaves an untrained spiking net nearly silent
after the stem, so its firing rates, op counts and energy would be empty numbers; :func:`calibrate_bn` sets
the statistics from real inputs first (README "Untrained models").
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional

__all__ = ["calibrate_bn", "has_batchnorm"]


def has_batchnorm(model: nn.Module) -> bool:
    """Whether the model holds a BatchNorm layer (anything :func:`calibrate_bn` would change)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@torch.no_grad()
def calibrate_bn(model: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Set every BatchNorm's running statistics to the cumulative average over ``batches`` (``[T, B, ...]``).

    For untrained nets, whose default statistics (mean 0, var 1) leave most neurons silent: after this, BN
    outputs are normalised on real inputs and neurons fire. Only BN buffers change; the model's training
    flags and BN momenta are restored.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    training = {m: m.training for m in model.modules()}
    momenta = {bn: bn.momentum for bn in bns}
    try:
        model.eval()
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative moving average
            bn.train()
        for x in batches:
            functional.reset_net(model)
            model(x)
    finally:
        for m, flag in training.items():
            m.training = flag
        for bn, momentum in momenta.items():
            bn.momentum = momentum
        functional.reset_net(model)
    return model
