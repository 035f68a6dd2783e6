"""Official checkpoints load as published: for each format, a file with exactly the official key names and
shapes (from ``official_keys``, written from the official model code, or spikingjelly's own zoo models)
loads, is recognised, and gives the same outputs as our model holding the same tensors; our weights
exported in that format load back to identical outputs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import official_keys as ok
import pytest
import torch
import torch.nn as nn
from ckpt_helpers import forward, in_order, random_state

from bench.checkpoints import export_state, load_checkpoint
from bench.models import create_model


@dataclass(frozen=True)
class Case:
    model: str
    kwargs: dict
    keys: Callable[[], ok.Keys]
    format: str
    save: Callable[[dict[str, torch.Tensor]], object]  # the container the official training code writes
    input: tuple[int, ...]  # [T, B, C, H, W]; static over T for the image models

    def build(self) -> nn.Module:
        torch.manual_seed(0)
        return create_model(self.model, **{"num_classes": 10, "width": 1 / 16, **self.kwargs})

    def x(self) -> torch.Tensor:
        T, B, *rest = self.input
        g = torch.Generator().manual_seed(1)
        if rest[0] == 2:  # event frames: a different frame per step
            return 2 * torch.rand(self.input, generator=g)
        return torch.rand(B, *rest, generator=g).unsqueeze(0).repeat(T, 1, 1, 1, 1)


def torchvision_style(state: dict[str, torch.Tensor], **args: object) -> dict[str, object]:
    """What the SEW and Spikeformer train.py save (torchvision's reference scripts): weights, optimizer, args."""
    params = [torch.zeros(2, requires_grad=True)]
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    params[0].grad = torch.ones(2)
    opt.step()  # momentum buffers: tensors inside the optimizer state
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=320)
    return {"model": state, "optimizer": opt.state_dict(), "lr_scheduler": sched.state_dict(), "epoch": 319,
            "args": argparse.Namespace(**args), "max_test_acc1": 63.2, "test_acc5_at_max_test_acc1": 85.0}


def dsr_style(state: dict[str, torch.Tensor]) -> dict[str, object]:
    """cifar/main_single_gpu.py: DataParallel keys under 'state_dict', with accuracy and optimizer."""
    return {"epoch": 200, "state_dict": {f"module.{k}": v for k, v in state.items()}, "acc": 95.1,
            "best_acc": 95.4, "optimizer": {"state": {}, "param_groups": []}}


def ddp_bare(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """MS-ResNet train_amp.py: the DDP-wrapped net's state_dict() itself."""
    return {f"module.{k}": v for k, v in state.items()}


IMG = (2, 2, 3, 32, 32)
CASES = {
    "sew18": Case("sew_resnet18", {}, lambda: ok.sew_official(18, 4, 10), "sew-official",
                  lambda s: torchvision_style(s, model="sew_resnet18", T=4, connect_f="ADD"), IMG),
    "sew50-iand": Case("sew_resnet50", {"cnf": "IAND"}, lambda: ok.sew_official(50, 4, 10), "sew-official",
                       lambda s: torchvision_style(s, model="sew_resnet50", T=4, connect_f="IAND"), IMG),
    "spiking34": Case("spiking_resnet34", {}, lambda: ok.sew_official(34, 4, 10, sew=False), "sew-official",
                      lambda s: torchvision_style(s, model="spiking_resnet34", T=4, connect_f=None), IMG),
    "spiking50": Case("spiking_resnet50", {}, lambda: ok.sew_official(50, 4, 10, sew=False), "sew-official",
                      lambda s: {"model": s}, IMG),
    "ms18": Case("ms_resnet18", {}, lambda: ok.ms_resnet_official(18, 4, 10), "ms-resnet-official", ddp_bare, IMG),
    "ms104": Case("ms_resnet104", {}, lambda: ok.ms_resnet_official(104, 4, 10), "ms-resnet-official",
                  ddp_bare, IMG),
    "spikeformer-gesture": Case(
        "spikeformer_dvs_gesture", {"width": 1 / 8, "depth": 2, "img_size": 32, "T": 2},
        lambda: ok.spikeformer_official(kernel=5, n_layers=3, stride=2, embed=32, depth=2, mlp_ratio=2, in_ch=2,
                                        num_classes=10, img=32, frames=2),
        "spikeformer-official", lambda s: torchvision_style(s, model="PLIF_spikeformer_7_5x3x1", T=2), (2, 2, 2, 32, 32)),
    "spikeformer-imagenet": Case(
        "spikeformer_imagenet", {"depth": 1, "img_size": 32, "T": 2},
        lambda: ok.spikeformer_official(kernel=3, n_layers=8, stride=[2, 1, 2, 1, 2, 1, 2, 1], embed=32, depth=1,
                                        mlp_ratio=3, in_ch=3, num_classes=10, img=32, frames=2),
        "spikeformer-official", lambda s: {"model": s}, IMG),
    "spikeformer-cifar-preset": Case(  # first tokenizer block at stride 1 with a channel change
        "spikeformer_dvs_cifar10", {"width": 1 / 8, "depth": 1, "img_size": 16, "T": 2, "input_size": "cifar"},
        lambda: ok.spikeformer_official(kernel=3, n_layers=6, stride=[2, 1, 2, 1, 2, 1], embed=32, depth=1,
                                        mlp_ratio=2, in_ch=2, num_classes=10, img=16, frames=2, first_stride=1),
        "spikeformer-official", lambda s: {"model": s}, (2, 2, 2, 16, 16)),
    "dsr-cifar": Case("dsr_preact_resnet18", {"T": 2}, lambda: ok.dsr_preresnet_cifar(4, 10), "dsr-official",
                      dsr_style, IMG),
    "dsr-imagenet": Case("dsr_preact_resnet18_imagenet", {"T": 2}, lambda: ok.dsr_preresnet_imagenet(4, 10),
                         "dsr-official", dsr_style, IMG),
    "dsr-vgg": Case("dsr_vgg11", {"T": 2}, lambda: ok.dsr_vgg11(4, 10), "dsr-official", dsr_style, (2, 2, 2, 32, 32)),
}


def test_generators_reproduce_the_published_tensor_counts():
    """122 tensors for SEW ResNet-18 and 128 for MS-ResNet-18 at full width (counted from the official code)."""
    assert len(ok.sew_official(18)) == 122
    assert len(ok.ms_resnet_official(18)) == 128
    assert len(ok.sew_official(18, sew=False)) == 122


@pytest.mark.parametrize("name", CASES)
def test_official_file_loads_and_matches_our_model_with_the_same_tensors(name, tmp_path):
    case = CASES[name]
    official = random_state(case.keys())
    path = tmp_path / "official.pth"
    torch.save(case.save(official), path)

    via_format = case.build()
    loaded = load_checkpoint(via_format, path)
    assert (loaded.format, loaded.detected, loaded.tensors) == (case.format, True, len(official))
    reference = case.build()
    reference.load_state_dict(in_order(reference, official))
    x = case.x()
    out = forward(via_format, x)
    assert torch.equal(out, forward(reference, x))

    # Not vacuous: the output depends on the second half of the weights, so a wrong pairing there would show.
    names = list(reference.state_dict())
    weights = [names[i] for i, v in enumerate(official.values()) if v.dim() >= 2]
    with torch.no_grad():
        for key in weights[len(weights) // 2:]:
            reference.state_dict()[key].mul_(-1.0)
    assert not torch.allclose(out, forward(reference, x)), "the output does not depend on the later layers"


@pytest.mark.parametrize("name", CASES)
def test_export_writes_the_official_names_and_loads_back_identically(name, tmp_path):
    case = CASES[name]
    ours = case.build()
    ours.load_state_dict(in_order(ours, random_state(case.keys(), seed=3)))
    exported = export_state(ours, case.format)
    path = tmp_path / "exported.pth"
    torch.save(exported, path)

    raw = torch.load(path, weights_only=True)
    container = raw.get("model", raw.get("state_dict", raw))
    names = {k.removeprefix("module."): tuple(v.shape) for k, v in container.items()}
    assert names == dict(case.keys())  # exactly the official names and shapes
    back = case.build()
    assert load_checkpoint(back, path).format == case.format
    assert torch.equal(forward(back, case.x()), forward(ours, case.x()))


def test_training_arguments_give_trained_T_and_are_recorded(tmp_path):
    case = CASES["sew18"]
    path = tmp_path / "checkpoint_max_val_acc1.pth"
    torch.save(case.save(random_state(case.keys())), path)
    loaded = load_checkpoint(case.build(), path)
    assert loaded.meta["trained_T"] == 4
    assert loaded.meta["args"] == {"model": "sew_resnet18", "T": 4, "connect_f": "ADD"}
    mapping = loaded.mapping()
    assert mapping["format"] == "sew-official" and mapping["chosen_by"] == "detected from the keys"
    assert mapping["tensors"] == 122 and mapping["renamed"] == 122  # every name differs from ours
    assert "Spike-Element-Wise-ResNet" in mapping["source"]
    assert mapping["dropped"] == [] and mapping["filled"] == [] and mapping["reshaped"] == []


def test_spikeformer_embeddings_are_reshaped_and_recorded(tmp_path):
    case = CASES["spikeformer-gesture"]
    path = tmp_path / "s.pth"
    torch.save(case.save(random_state(case.keys())), path)
    assert load_checkpoint(case.build(), path).mapping()["reshaped"] == ["pos_embed", "time_embed"]


def test_joint_attention_spikeformer_is_not_an_official_model(tmp_path):
    case = CASES["spikeformer-gesture"]
    path = tmp_path / "s.pth"
    torch.save(case.save(random_state(case.keys())), path)
    joint = create_model("spikeformer_dvs_gesture", width=1 / 8, depth=2, img_size=32, T=2, num_classes=10,
                         attention="joint")
    from bench.checkpoints import CheckpointError

    with pytest.raises(CheckpointError, match=r"holds spikeformer_\* with attention='divided' models"):
        load_checkpoint(joint, path)
