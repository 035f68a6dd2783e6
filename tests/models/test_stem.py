"""The ResNet stem as the authors ran it: once per sample on static input (SEW, Spiking ResNet), per step
for input that changes over time, and counted accordingly by the op counter."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from bench.metrics.ops import count_ops
from bench.models import create_model
from bench.models.resnet_parts import Stem, is_static

FAMILIES = ("sew_resnet18", "spiking_resnet18")
T, B = 4, 2


def pair(name: str) -> tuple[nn.Module, nn.Module]:
    """(default model, the same weights with stem_once=False), tiny, in eval mode."""
    torch.manual_seed(0)
    default = create_model(name, num_classes=5, input_size="cifar", width=1 / 16).eval()
    per_step = create_model(name, num_classes=5, input_size="cifar", width=1 / 16, stem_once=False).eval()
    per_step.load_state_dict(default.state_dict())
    return default, per_step


def static_input() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(B, 3, 16, 16).unsqueeze(0).repeat(T, 1, 1, 1, 1)


@pytest.mark.parametrize("name", FAMILIES)
def test_op_counter_sees_the_stem_conv_once_per_sample(name):
    default, per_step = pair(name)
    once = {r.name: r for r in count_ops(default, static_input()).layers}
    every = {r.name: r for r in count_ops(per_step, static_input()).layers}
    # 3x3 conv, 3 -> 4 channels, 16x16 output (cifar preset): 27 * 4 * 256 MACs per step and sample.
    assert once["stem.body.0"].macs == 27 * 4 * 256
    assert every["stem.body.0"].macs == T * 27 * 4 * 256
    assert once["stem.body.0"].calls == 1 and every["stem.body.0"].calls == 1
    for layer, row in once.items():  # nothing else changes
        if not layer.startswith("stem."):
            assert (row.macs, row.acs) == (every[layer].macs, every[layer].acs), layer


@pytest.mark.parametrize("name", FAMILIES)
def test_event_frames_run_the_stem_every_step(name):
    default, per_step = pair(name)
    torch.manual_seed(2)
    frames = torch.rand(T, B, 3, 16, 16)  # a different input at every step
    seen = []
    default.stem.body[0].register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[0]))
    assert torch.equal(default(frames), per_step(frames))
    assert seen == [T * B]


def test_stem_once_true_refuses_input_that_changes_over_time():
    stem = Stem(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)), once=True)
    stem(static_input())  # fine
    with pytest.raises(ValueError, match="changes over time"):
        stem(torch.rand(T, B, 3, 8, 8))


def test_is_static_is_exact():
    x = static_input()
    assert is_static(x) and is_static(x[:1])
    x[2, 1, 0, 5, 5] += 1e-7  # one value of one step differs
    assert not is_static(x)


def test_bad_mode_and_families_whose_official_code_runs_the_stem_every_step():
    with pytest.raises(ValueError, match="stem_once must be one of"):
        Stem(nn.Sequential(), once="sometimes")
    # MS-ResNet's official code (Snn_Conv2d) applies conv1 at every one of its time steps.
    assert create_model("ms_resnet18", width=1 / 16).stem.once is False
