"""Accuracy versus T: one pass with a cumulative mean equals separate passes for causal dynamics."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader
from toy_models import tiny_snn

from bench.data import load_data
from bench.metrics.accuracy import accuracy
from bench.metrics.base import CaseContext
from bench.models.registry import model_info, with_overrides
from bench.runner import make_batches
from bench.suite import DataSpec
from bench.train import torch_threads
from bench.train.config import TrainConfig
from bench.train.loop import make_optimizer, make_scheduler, train_epoch

STEPS = (1, 2, 4, 8)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: many times faster than two on a small, busy CPU (see bench.train.torch_threads)."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def trained():
    """tiny_snn (Linear -> IF -> Linear, causal) trained by BPTT at T=2 for two epochs on digits."""
    train = load_data(DataSpec(dataset="digits", split="train"))
    test = load_data(DataSpec(dataset="digits", split="test", max_samples=150))
    torch.manual_seed(0)
    model = tiny_snn()
    cfg = TrainConfig(epochs=2, lr=0.01, T=2, batch_size=64)
    loader = DataLoader(train.dataset, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, 2 * len(loader))
    for _ in range(2):
        train_epoch(model, loader, optimizer, scheduler, cfg, "bptt", "static", torch.device("cpu"))
    return model.eval(), test


def context(model: nn.Module, bundle, T: int, suite_T: tuple[int, ...], causal: bool, cache: dict) -> CaseContext:
    info = with_overrides(model_info("toy_models:tiny_snn"), causal_over_T=causal)
    return CaseContext(model=model, info=info, T=T, device=torch.device("cpu"), batch_size=50,
                       batches=make_batches(bundle, 50, torch.device("cpu")), num_classes=10,
                       suite_T=suite_T, model_cache=cache)


def test_one_pass_equals_separate_passes_for_a_causal_model(trained):
    model, test = trained
    cache: dict = {}
    one_pass = {T: accuracy(context(model, test, T, STEPS, True, cache)) for T in STEPS}
    separate = {T: accuracy(context(model, test, T, (), True, {})) for T in STEPS}
    assert "accuracy_one_pass" in cache, "the causal path ran once at max(T) and cached every T"
    for T in STEPS:
        assert one_pass[T]["method"].startswith("one pass at T=8")
        assert separate[T]["method"].startswith("separate pass")
        assert one_pass[T]["n_samples"] == separate[T]["n_samples"] == 150
        assert one_pass[T]["top1"] == separate[T]["top1"], T
        assert one_pass[T]["top5"] == separate[T]["top5"], T
    top1 = [one_pass[T]["top1"] for T in STEPS]
    assert min(top1) > 30.0, f"a trained model, far above chance (10%): {top1}"
    assert len(set(top1)) > 1, f"accuracy changes with T, so the comparison is not trivial: {top1}"


def test_models_not_causal_over_T_get_separate_passes(trained):
    model, test = trained
    cache: dict = {}
    for T in (1, 2):
        result = accuracy(context(model, test, T, STEPS, False, cache))
        assert result["method"] == f"separate pass at T={T}, mean over all steps"
    assert "accuracy_one_pass" not in cache


class _RankedLogits(nn.Module):
    """Per-step logits that put sample i's label at a chosen rank: the input image *is* the logits."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2)


def test_top1_and_top5_equal_hand_counted_ranks():
    from torch.utils.data import TensorDataset

    from bench.data.base import DataBundle

    # 10 samples, 10 classes; sample i's label sits at rank ranks[i] (1 = highest logit).
    ranks = [1, 1, 1, 2, 3, 5, 5, 6, 9, 10]
    labels = torch.arange(10) % 10
    logits = torch.zeros(10, 10)
    for i, (label, rank) in enumerate(zip(labels.tolist(), ranks, strict=True)):
        others = [c for c in range(10) if c != label]
        order = others[: rank - 1] + [label] + others[rank - 1:]  # classes from highest to lowest logit
        for position, c in enumerate(order):
            logits[i, c] = 10.0 - position
    bundle = DataBundle(dataset=TensorDataset(logits.view(10, 1, 1, 10), labels), name="ranked",
                        num_classes=10, in_channels=1, image_size=10)
    ctx = CaseContext(model=_RankedLogits(), info=model_info("toy_models:tiny_snn"), T=3,
                      device=torch.device("cpu"), batch_size=4, batches=make_batches(bundle, 4, torch.device("cpu")),
                      num_classes=10)
    result = accuracy(ctx)
    assert result["top1"] == pytest.approx(100 * 3 / 10)  # ranks 1, 1, 1
    assert result["top5"] == pytest.approx(100 * 7 / 10)  # ranks 1, 1, 1, 2, 3, 5, 5
    assert result["n_samples"] == 10
