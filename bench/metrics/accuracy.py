"""Top-1 / top-5 accuracy at a time step T, by rate decoding (mean of per-step outputs).

For a model whose dynamics are causal (``ModelInfo.causal_over_T``), one pass at the largest T of
the suite gives every smaller T: the prediction after t steps is the mean of the first t outputs.
Other models (DSR nodes, time embeddings, attention across time) get one pass per T.
"""

from __future__ import annotations

from typing import Any

import torch
from spikingjelly.activation_based import functional

from bench.contract import Field, Tolerance
from bench.metrics.base import CaseContext, CaseWork, NonFiniteOutputError, NotEstimated, register_metric
from bench.models.common import cumulative_mean


def check_outputs(out: torch.Tensor, T: int, num_classes: int) -> None:
    """Model outputs must be finite ``[T, B, num_classes]``."""
    if out.dim() != 3 or out.shape[0] != T or out.shape[-1] != num_classes:
        raise ValueError(f"model output has shape {tuple(out.shape)}; expected [T={T}, B, {num_classes}] "
                         "(per-time-step outputs)")
    if not torch.isfinite(out).all():
        raise NonFiniteOutputError(f"model output contains NaN/Inf ({(~torch.isfinite(out)).sum().item()} values)")


def correct_counts(logits: torch.Tensor, labels: torch.Tensor, k: int) -> int:
    """How many samples have their label among the top-k of ``logits [B, K]``."""
    topk = logits.topk(min(k, logits.shape[-1]), dim=-1).indices
    return int((topk == labels.unsqueeze(-1)).any(-1).sum().item())


def evaluate(ctx: CaseContext, T: int, steps: tuple[int, ...]) -> dict[int, tuple[int, int, int]]:
    """(top-1 correct, top-5 correct, samples) at each t in ``steps`` from passes at T.

    ``steps`` other than ``(T,)`` need causal dynamics: the answer at t is the cumulative mean
    of the first t per-step outputs. Under torchrun each rank counts its shard and the counts are
    summed over the ranks by ``ctx.reduce_sum`` (one int64 all-reduce the runner provides), so they equal
    the single-process counts.
    """
    counts = {t: [0, 0, 0] for t in steps}
    model = ctx.model
    with torch.inference_mode():
        for inputs, labels in ctx.batches(T):
            functional.reset_net(model)
            out = model(inputs)
            check_outputs(out, T, ctx.num_classes)
            decoded = cumulative_mean(out.float())
            for t in steps:
                c = counts[t]
                c[0] += correct_counts(decoded[t - 1], labels, 1)
                c[1] += correct_counts(decoded[t - 1], labels, 5)
                c[2] += labels.shape[0]
    functional.reset_net(model)
    total = ctx.reduce_sum([v for t in steps for v in counts[t]])
    return {t: (total[3 * i], total[3 * i + 1], total[3 * i + 2]) for i, t in enumerate(steps)}


FIELDS = (
    Field("top1", "top-1", "%", "fixed2", "higher", "samples whose label is the arg-max of the rate-decoded output",
          headline=True, summary=True, tolerance=Tolerance(abs=2.0, better="higher"), trained_only=True),
    Field("top5", "top-5", "%", "fixed2", "higher", "samples whose label is among the 5 largest outputs",
          tolerance=Tolerance(abs=2.0, better="higher"), trained_only=True),
    Field("n_samples", "samples", "", "int", description="evaluated samples"),
    Field("method", "method", fmt="text", description="one pass at the largest T, or a separate pass per T"),
)


def cost(w: CaseWork) -> float:
    """All evaluation batches once, at the case's T or (causal models) once per model at the largest T."""
    if not w.labelled or w.accuracy_T is None:
        return 0.0
    if w.batches is None:
        raise NotEstimated("accuracy runs over a file dataset whose size is known once loaded (set "
                           "data.max_samples for an estimate)")
    return w.batches * w.forward_s(w.accuracy_T)


@register_metric("accuracy", "top-1/top-5 accuracy (%) at T by rate decoding", fields=FIELDS, cost=cost)
def accuracy(ctx: CaseContext) -> dict[str, Any]:
    if not ctx.labelled:
        why = "synthetic data (random labels): accuracy not measured"
        return {"top1": None, "top1_why": why, "top5": None, "top5_why": why}
    if ctx.info.causal_over_T and ctx.suite_T and ctx.T in ctx.suite_T:
        key = "accuracy_one_pass"
        T_max = max(ctx.suite_T)
        if key not in ctx.model_cache:
            ctx.model_cache[key] = evaluate(ctx, T_max, tuple(sorted(ctx.suite_T)))
        correct1, correct5, n = ctx.model_cache[key][ctx.T]
        method = f"one pass at T={T_max}, mean of the first {ctx.T} step outputs"
    else:
        correct1, correct5, n = evaluate(ctx, ctx.T, (ctx.T,))[ctx.T]
        method = f"separate pass at T={ctx.T}, mean over all steps"
    result: dict[str, Any] = {"top1": 100.0 * correct1 / n, "n_samples": n, "method": method}
    if ctx.num_classes > 5:
        result["top5"] = 100.0 * correct5 / n
    else:
        result["top5"] = None
        result["top5_why"] = f"only {ctx.num_classes} classes"
    return result
