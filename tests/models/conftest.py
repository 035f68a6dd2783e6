"""Fixtures shared by the model tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
import torch.nn as nn


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny convs on a shared 2-core machine: one thread is several times faster than two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def record_conv_inputs(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Input of every nn.Conv2d during one forward, by module name."""
    seen: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_pre_hook(lambda mod, args, n=n: seen.__setitem__(n, args[0].detach()))
               for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return seen


@pytest.fixture
def conv_inputs() -> Callable[[nn.Module, torch.Tensor], dict[str, torch.Tensor]]:
    return record_conv_inputs
