"""Parameter counts (learnable tensors; buffers such as BatchNorm running statistics excluded)."""

from __future__ import annotations

from typing import Any

from bench.contract import EXACT, Field
from bench.metrics.base import CaseContext, register_metric

FIELDS = (
    Field("params", "params", "M", "millions", "none", "learnable parameters (buffers excluded)", headline=True,
          summary=True, tolerance=EXACT),
    Field("params_trainable", "trainable params", "M", "millions", description="parameters with requires_grad",
          tolerance=EXACT),
    Field("params_millions", "params (rounded)", "M", "fixed3", description="params / 1e6, rounded to 3 decimals"),
)


@register_metric("params", "number of parameters (learnable; buffers excluded)", fields=FIELDS,
                 cost=lambda w: 0.0)  # counted on the built model: no forward
def params(ctx: CaseContext) -> dict[str, Any]:
    total = sum(p.numel() for p in ctx.model.parameters())
    trainable = sum(p.numel() for p in ctx.model.parameters() if p.requires_grad)
    return {"params": total, "params_trainable": trainable, "params_millions": round(total / 1e6, 3)}
