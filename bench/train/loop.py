"""One training epoch, by BPTT with surrogate gradients or by DSR.

Both methods minimise cross-entropy (with optional label smoothing) on the rate-decoded output, the
mean of the per-step outputs ``[T, B, K]`` over T: the decoding the accuracy metric evaluates.

- ``bptt``: spikingjelly's surrogate-gradient neurons; autograd unrolls the T steps (backpropagation
  through time). The network state is reset after every batch.
- ``dsr`` (Meng et al. 2022): the forward pass is the same spiking simulation, but every DSR node's
  backward (spikingjelly ``DSRIFNode``/``DSRLIFNode``) differentiates the map from (weighted) input rate
  to output rate, so no gradient flows through time; the per-layer thresholds are trained with the
  weights and clamped to their lower bounds after every step (as the official code does).

``auto`` picks ``dsr`` for nets containing DSR nodes and ``bptt`` otherwise; the mismatched
combinations are refused (a DSR node has no surrogate backward; a net without DSR nodes has no DSR
gradient).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from spikingjelly.activation_based import functional

from bench.models.common import repeat_encode
from bench.models.dsr import dsr_nodes, project_thresholds
from bench.train.config import TrainConfig


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss diverged); the message says what to change."""


def resolve_method(model: nn.Module, method: str) -> str:
    """``bptt`` or ``dsr`` for ``model``; ``auto`` chooses by whether it holds DSR nodes."""
    has_dsr = any(True for _ in dsr_nodes(model))
    if method == "auto":
        return "dsr" if has_dsr else "bptt"
    if method == "bptt" and has_dsr:
        raise TrainingError("method 'bptt' was asked for a net with DSR nodes, whose backward is DSR's "
                            "rate-based gradient. Fix: use method = \"dsr\" or \"auto\"")
    if method == "dsr" and not has_dsr:
        raise TrainingError("method 'dsr' was asked for a net without DSR nodes (DSRIFNode/DSRLIFNode). "
                            "Fix: use method = \"bptt\" or \"auto\"")
    return method


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv/linear weights (tensors of 2+ dims) only; none on BN, biases, thresholds, taus."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                   total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step cosine decay to 0 over ``total_steps``, or a constant rate."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def encode(x: torch.Tensor, kind: str, T: int) -> torch.Tensor:
    """A data batch as network input ``[T, B, ...]``: static images repeated, event frames cut to T."""
    if kind == "static":
        return repeat_encode(x, T)
    if x.shape[1] < T:
        raise TrainingError(f"the data has {x.shape[1]} frames per sample; training T={T} needs at least {T}")
    return x.transpose(0, 1)[:T].contiguous()


@dataclass
class EpochStats:
    loss: float
    top1: float
    samples: int
    seconds: float


def train_epoch(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
                cfg: TrainConfig, method: str, kind: str, device: torch.device,
                on_step: Callable[[float, float], None] | None = None) -> EpochStats:
    """One pass over ``batches``; ``on_step(running_loss, running_top1)`` after each optimizer step."""
    model.train()
    started = time.perf_counter()
    total_loss, correct, seen = 0.0, 0, 0
    for x, y in batches:
        x = encode(x.to(device).float(), kind, cfg.T)
        y = y.to(device)
        functional.reset_net(model)
        out = model(x)
        if out.dim() != 3 or out.shape[0] != cfg.T:
            raise TrainingError(f"the model returned shape {tuple(out.shape)}; training needs per-step "
                                f"outputs [T={cfg.T}, B, classes]")
        logits = out.mean(0)
        loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        if not math.isfinite(loss.item()):
            raise TrainingError(f"the loss became {loss.item()} after {seen} samples of this epoch. "
                                "Fix: lower lr, or set grad_clip")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        if method == "dsr":
            project_thresholds(model)
        functional.reset_net(model)
        n = y.shape[0]
        total_loss += loss.item() * n
        correct += int((logits.argmax(-1) == y).sum().item())
        seen += n
        if on_step is not None:
            on_step(total_loss / seen, 100.0 * correct / seen)
    if seen == 0:
        raise TrainingError("the training split yielded no batches. Fix: check train.split and batch_size")
    return EpochStats(total_loss / seen, 100.0 * correct / seen, seen, time.perf_counter() - started)


@torch.inference_mode()
def evaluate_top1(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], T: int, kind: str,
                  device: torch.device) -> float:
    """Top-1 (%) of the rate-decoded output at T, in eval mode."""
    model.eval()
    correct = seen = 0
    for x, y in batches:
        functional.reset_net(model)
        logits = model(encode(x.to(device).float(), kind, T)).mean(0)
        correct += int((logits.argmax(-1) == y.to(device)).sum().item())
        seen += y.shape[0]
    functional.reset_net(model)
    return 100.0 * correct / max(1, seen)
