"""Parameter counts (learnable tensors; buffers such as BatchNorm running statistics excluded)."""

from __future__ import annotations

from typing import Any

from bench.metrics.base import CaseContext, register_metric


@register_metric("params", "number of parameters (learnable; buffers excluded)")
def params(ctx: CaseContext) -> dict[str, Any]:
    total = sum(p.numel() for p in ctx.model.parameters())
    trainable = sum(p.numel() for p in ctx.model.parameters() if p.requires_grad)
    return {"params": total, "params_trainable": trainable, "params_millions": round(total / 1e6, 3)}
