"""``dsr-official``: DSR authors' code (github.com/qymeng94/DSR).

Read from ``cifar/modules/preresnet.py``, ``cifar/modules/vgg.py``, ``cifar/modules/neuron.py``,
``imagenet/preresnet_snn.py``, ``imagenet/neuron.py`` and ``cifar/main_single_gpu.py``. Each neuron
holds one trainable threshold ``<neuron>.Vth`` (a 0-d tensor, as spikingjelly's ``v_threshold``).

- CIFAR PreAct-ResNet-18: ``conv1.weight`` (stem), ``layer<s>.<j>.{bn1, relu1, conv1, bn2, relu2, conv2}``,
  ``layer<s>.<j>.shortcut.*`` (a bare 1x1 conv with bias), head ``bn1``, ``relu1``, ``relu2`` (after the
  pool), ``linear``, ``bn2`` (BatchNorm1d), ``relu3``.
- ImageNet PreAct-ResNet-18: ``conv1``, ``bn1``, ``relu1`` (stem), blocks as above without conv biases and
  with ``downsample.{0,1}`` (conv + BN) for the shortcut, head ``bn2``, ``relu2``, ``relu3``, ``fc``,
  ``bn3``, ``relu4``.
- VGG-11: ``layer<g>.<i>`` per group ending in an AvgPool (conv, BN, neuron, dropout, ..., pool),
  ``classifier.1`` (linear), ``classifier.2`` (BatchNorm1d), ``classifier.3`` (neuron).

``main_single_gpu.py`` saves ``{'epoch', 'state_dict', 'acc', 'best_acc', 'optimizer'}`` with the
DataParallel-wrapped net's keys (``module.`` prefix), as it resumes.
"""

from __future__ import annotations

from collections.abc import Collection

import torch.nn as nn

from bench.checkpoint_formats.base import CheckpointFormat, Entry, Shapes, entries_from_modules
from bench.models.dsr import DSRVGG, DSRPreActResNet


def _resnet_names(model: DSRPreActResNet) -> dict[str, str]:
    imagenet = isinstance(model.stem, nn.Sequential)
    names = ({"stem.0": "conv1", "stem.1": "bn1", "stem.2": "relu1", "bn": "bn2", "sn": "relu2",
              "pool_neuron": "relu3", "fc": "fc", "out_bn": "bn3", "out_neuron": "relu4"} if imagenet else
             {"stem": "conv1", "bn": "bn1", "sn": "relu1", "pool_neuron": "relu2", "fc": "linear",
              "out_bn": "bn2", "out_neuron": "relu3"})
    stage, j = 1, -1
    for k, block in enumerate(model.blocks):
        if k and block.conv1.stride != (1, 1):  # a strided first block opens the next stage
            stage, j = stage + 1, -1
        j += 1
        ours, theirs = f"blocks.{k}.", f"layer{stage}.{j}."
        names |= {ours + o: theirs + t for o, t in (("bn1", "bn1"), ("sn1", "relu1"), ("conv1", "conv1"),
                                                     ("bn2", "bn2"), ("sn2", "relu2"), ("conv2", "conv2"))}
        if imagenet:
            names |= {f"{ours}shortcut.0": f"{theirs}downsample.0", f"{ours}shortcut.1": f"{theirs}downsample.1"}
        else:
            names[f"{ours}shortcut.0"] = f"{theirs}shortcut"
    return names


def _vgg_names(model: DSRVGG) -> dict[str, str]:
    names = {"fc": "classifier.1", "out_bn": "classifier.2", "out_neuron": "classifier.3"}
    group, i = 1, 0
    for k, module in enumerate(model.body):
        names[f"body.{k}"] = f"layer{group}.{i}"
        i += 1
        if isinstance(module, nn.AvgPool2d):  # each official group ends with its pool
            group, i = group + 1, 0
    return names


class DSROfficial(CheckpointFormat):
    name = "dsr-official"
    title = "DSR nets (Meng et al. 2022), authors' code"
    source = ("github.com/qymeng94/DSR: cifar/modules/preresnet.py, cifar/modules/vgg.py, cifar/modules/neuron.py, "
              "imagenet/preresnet_snn.py, imagenet/neuron.py, cifar/main_single_gpu.py")
    families = "dsr_*"
    container_key = "state_dict"
    key_prefix = "module."  # main_single_gpu.py wraps the net in DataParallel before saving and resuming

    def applies_to(self, model: nn.Module) -> bool:
        return isinstance(model, (DSRPreActResNet, DSRVGG))

    def signature(self, keys: Collection[str]) -> bool:
        return any(k.endswith(".Vth") for k in keys)

    def entries(self, model: nn.Module) -> list[Entry]:
        names = _resnet_names(model) if isinstance(model, DSRPreActResNet) else _vgg_names(model)
        return entries_from_modules(model, names, self.name, renames={"v_threshold": "Vth"})

    def describe(self, shapes: Shapes) -> str:
        convs = sum(1 for k, s in shapes.items() if k.endswith(".weight") and len(s) == 4)
        thresholds = sum(1 for k in shapes if k.endswith(".Vth"))
        head = next((tuple(shapes[k]) for k in ("fc.weight", "linear.weight", "classifier.1.weight") if k in shapes),
                    None)
        first = next((tuple(s) for k, s in shapes.items() if k.endswith(".weight") and len(s) == 4), None)
        return (f"{convs} convs (first {first}), {thresholds} thresholds"
                + (f", classifier {head}" if head else ""))


FORMAT = DSROfficial()
