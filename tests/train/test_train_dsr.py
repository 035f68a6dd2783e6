"""DSR training: thresholds move, accuracy rises over the untrained net, BPTT is refused for DSR nodes."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader
from toy_models import tiny_snn

from bench.data import load_data
from bench.models import create_model
from bench.models.dsr import dsr_thresholds
from bench.suite import DataSpec
from bench.train import torch_threads
from bench.train.config import TrainConfig
from bench.train.loop import (
    TrainingError,
    evaluate_top1,
    make_optimizer,
    make_scheduler,
    resolve_method,
    train_epoch,
)

CPU = torch.device("cpu")


def tiny_dsr(T: int = 4) -> torch.nn.Module:
    """DSR-LIF PreAct-ResNet-18 at width 1/8 with dt = 1/T = 0.25 (official: dt 0.05 at T=20, the
    same T * dt = tau). With dt 0.05 at T=4 the membrane charges by only 5% of its input per step:
    about 5% of neurons fire and the gradients vanish."""
    torch.manual_seed(0)
    return create_model("dsr_preact_resnet18", num_classes=10, in_channels=1, width=1 / 8, T=T,
                        neuron_params={"delta_t": 1.0 / T})


def test_method_auto_picks_dsr_only_for_dsr_nets():
    assert resolve_method(tiny_dsr(), "auto") == "dsr"
    assert resolve_method(tiny_snn(), "auto") == "bptt"
    with pytest.raises(TrainingError, match="DSR nodes"):
        resolve_method(tiny_dsr(), "bptt")
    with pytest.raises(TrainingError, match="without DSR nodes"):
        resolve_method(tiny_snn(), "dsr")


@pytest.mark.slow
def test_dsr_training_moves_thresholds_and_beats_the_untrained_net():
    train = load_data(DataSpec(dataset="digits", split="train"))
    test = load_data(DataSpec(dataset="digits", split="test", max_samples=200))
    model = tiny_dsr(T=4)
    with torch_threads(1):
        _train_and_check(model, train, test)


def _train_and_check(model, train, test) -> None:
    test_loader = DataLoader(test.dataset, batch_size=100)
    before_acc = evaluate_top1(model, test_loader, 4, "static", CPU)
    before = dsr_thresholds(model)
    cfg = TrainConfig(epochs=4, lr=0.01, T=4, batch_size=128, method="dsr")
    loader = DataLoader(train.dataset, batch_size=128, shuffle=True, generator=torch.Generator().manual_seed(0))
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, 4 * len(loader))
    losses = [train_epoch(model, loader, optimizer, scheduler, cfg, "dsr", "static", CPU).loss for _ in range(4)]
    after = dsr_thresholds(model)
    after_acc = evaluate_top1(model, test_loader, 4, "static", CPU)
    assert before.keys() == after.keys() and len(after) > 10
    moved = [name for name in before if abs(after[name] - before[name]) > 1e-4]
    assert len(moved) >= len(before) // 2, f"thresholds that moved: {moved}"
    lower = {name: node.v_threshold_lower_bound for name, node in model.named_modules() if name in after}
    assert all(after[name] >= lower[name] for name in after), "thresholds stay above their bound"
    assert losses[-1] < losses[0], losses
    assert after_acc >= before_acc + 30.0, (before_acc, after_acc)
