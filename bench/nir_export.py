"""``bench export --format nir``: a Spiking ResNet or SEW-ADD ResNet as a NIR graph (Neuromorphic Intermediate
Representation, package ``nir``), for simulators and neuromorphic toolchains that read NIR.

What is exported (one time step of the network; NIR nodes carry no T or batch dimension):

- convolutions as ``nir.Conv2d`` with every BatchNorm **folded** into the conv before it, with the running
  statistics (inference semantics): ``W' = W * g / sqrt(var + eps)``, ``b' = (b - mean) * g / sqrt(var + eps)
  + beta`` per output channel. Folding is exact up to float32 rounding and keeps one node per conv, which
  is what neuromorphic back ends map; a separate per-channel affine has no NIR node of shape ``[C]`` that
  broadcasts over ``H, W``.
- IF, LIF and PLIF neurons with hard reset as ``nir.IF`` / ``nir.LIF`` (PLIF: its learned ``tau =
  1/sigmoid(w)`` at export), with spikingjelly's discretisation convention (as its ``nir_exchange``):
  time step ``dt`` (:data:`DT`, seconds), IF ``r = 1/dt``; LIF ``tau_nir = tau * dt``, ``v_leak = v_reset``,
  ``r = 1`` (``decay_input=True``) or ``r = tau`` (``decay_input=False``). A forward-Euler step of NIR's ODE
  with ``dt`` is then exactly spikingjelly's update. NIR fires on ``v > v_threshold``, spikingjelly on
  ``v >= v_threshold``: they differ only when the membrane equals the threshold exactly.
- residual adds as graph edges: NIR sums every edge into a node, so ``SN(branch + shortcut)`` (Spiking
  ResNet) is two edges into the neuron and SEW's ``ADD`` is, for every consumer of the sum, one edge from
  each addend.
- the head's global average pool as ``nir.AvgPool2d`` over the whole map, ``nir.Flatten`` and the linear
  layer as ``nir.Affine``. Dropout is the identity (inference).

Refused (:class:`NIRExportError`, the CLI's exit 2), naming the first module that NIR (or this exporter)
cannot express: soft reset (NIR neurons reset to ``v_reset``), analog neurons (LIAF) and DSR nodes,
max pooling (the ImageNet stem; NIR 1.0 has no max pool: use ``input_size="cifar"``), SEW's AND/IAND
connect functions (products of spikes; NIR only sums), and any other family (MS-ResNet, DANet,
Spikeformer's attention, DSR).
"""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import torch
import torch.nn as nn
from spikingjelly.activation_based import layer, neuron

from bench.models.neurons import FusedInInference
from bench.models.resnet_parts import Head, ResNetTrunk, Stem
from bench.models.sew_resnet import SEWBlock
from bench.models.spiking_resnet import SpikingBlock

# The NIR time step of one of our steps, in seconds: spikingjelly's nir_exchange default (and most NIR tools').
DT = 1e-4
# Spatial input size per stem preset, for the NIR node shapes (``--image-size`` overrides).
PRESET_IMAGE_SIZES = {"cifar": 32, "imagenet": 224}

Value = list[str]  # the NIR nodes whose outputs, summed, make one tensor of the model


class NIRExportError(ValueError):
    """A model (or one of its modules) that the NIR export cannot express."""


def _refuse(path: str, module: nn.Module, why: str, instead: str) -> NIRExportError:
    return NIRExportError(f"{path or 'model'} ({type(module).__name__}): {why}. Instead: {instead}")


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float32).numpy()


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    """Weight and bias of ``bn(conv(x))`` as one conv, from BN's running statistics (inference)."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    weight = conv.weight.detach() * scale.view(-1, 1, 1, 1)
    return _numpy(weight), _numpy((bias - bn.running_mean) * scale + bn.bias.detach())


class _GraphBuilder:
    """Collects NIR nodes and edges while walking our model; ``shapes`` are the per-sample output shapes of
    each module path (``[C, H, W]``), from one forward pass."""

    def __init__(self, shapes: dict[str, tuple[int, ...]]):
        self.shapes = shapes
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []

    def add(self, name: str, node: nir.NIRNode, source: Value) -> Value:
        self.nodes[name] = node
        self.edges.extend((s, name) for s in source)
        return [name]

    def conv_bn(self, path: str, module: nn.Module, source: Value) -> Value:
        """A ``conv_bn`` container (``SeqToANNContainer(Conv2d, BatchNorm2d)``) or a stem body."""
        parts = list(module)
        if len(parts) != 2 or not isinstance(parts[0], nn.Conv2d) or not isinstance(parts[1], nn.BatchNorm2d):
            raise _refuse(path, module, "expected a conv followed by BatchNorm", "export a Spiking/SEW ResNet")
        conv, bn = parts
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise _refuse(f"{path}.0", conv, f"padding={conv.padding!r}, padding_mode={conv.padding_mode!r}: "
                          "NIR convs pad with zeros by a fixed amount", "use zero-padded convolutions")
        if conv.groups != 1:  # nir 1.0 types a Conv2d's input as weight.shape[1] channels: in_channels / groups
            raise _refuse(f"{path}.0", conv, f"groups={conv.groups}: NIR's Conv2d takes its input channels from the "
                          "weight (in_channels / groups), so a grouped conv does not type-check",
                          "use groups=1 convolutions")
        weight, bias = fold_bn(conv, bn)
        in_shape = self.shapes[f"{path}.0:in"]
        node = nir.Conv2d(input_shape=in_shape[-2:], weight=weight, stride=conv.stride, padding=conv.padding,
                          dilation=conv.dilation, groups=conv.groups, bias=bias)
        return self.add(path, node, source)

    def neuron(self, path: str, module: nn.Module, source: Value) -> Value:
        """IF / LIF / PLIF with hard reset; the conventions are in the module docstring."""
        if not isinstance(module, neuron.IFNode | neuron.LIFNode | neuron.ParametricLIFNode) or isinstance(
                module, FusedInInference | neuron.LIAFNode):
            raise _refuse(path, module, "NIR has IF and LIF neurons only (no analog, DSR or other nodes)",
                          "build the model with neuron='if', 'lif' or 'plif'")
        if module.v_reset is None:
            raise _refuse(path, module, "soft reset (v_reset=None): NIR neurons reset to v_reset",
                          "build the model with a hard reset, e.g. neuron_params={'v_reset': 0.0}")
        shape = self.shapes[path]
        full = lambda value: np.full(shape, float(value), dtype=np.float32)  # noqa: E731
        if isinstance(module, neuron.IFNode):
            node = nir.IF(r=full(1.0 / DT), v_threshold=full(module.v_threshold), v_reset=full(module.v_reset))
        else:
            tau = module.tau if isinstance(module, neuron.LIFNode) else 1.0 / module.w.detach().sigmoid().item()
            node = nir.LIF(tau=full(tau * DT), r=full(1.0 if module.decay_input else tau),
                           v_leak=full(module.v_reset), v_threshold=full(module.v_threshold),
                           v_reset=full(module.v_reset))
        return self.add(path, node, source)

    def sequence(self, path: str, module: nn.Module, source: Value) -> Value:
        """A Sequential of conv_bn containers, neurons and identities (branches, ``pre``)."""
        for i, part in enumerate(module):
            source = self.any(f"{path}.{i}", part, source)
        return source

    def any(self, path: str, module: nn.Module, source: Value) -> Value:
        if isinstance(module, nn.Identity):
            return source
        if isinstance(module, neuron.BaseNode):
            return self.neuron(path, module, source)
        if isinstance(module, layer.SeqToANNContainer):
            inner = list(module)
            if any(isinstance(m, nn.MaxPool2d) for m in inner):
                pool = next(i for i, m in enumerate(inner) if isinstance(m, nn.MaxPool2d))
                raise _refuse(f"{path}.{pool}", inner[pool], "NIR 1.0 has no max pooling",
                              "build the model with input_size='cifar' (no stem max-pool)")
            return self.conv_bn(path, module, source)
        if isinstance(module, nn.Sequential):
            return self.sequence(path, module, source)
        raise _refuse(path, module, "no NIR counterpart in this exporter", "export a Spiking or SEW-ADD ResNet")

    def block(self, path: str, block: nn.Module, source: Value) -> Value:
        if isinstance(block, SpikingBlock):
            summed = self.sequence(f"{path}.branch", block.branch, source) + self.any(
                f"{path}.shortcut", block.shortcut, source)
            return self.neuron(f"{path}.sn", block.sn, summed)
        if isinstance(block, SEWBlock):
            if block.connect.cnf != "ADD":
                raise _refuse(f"{path}.connect", block.connect, f"connect function {block.connect.cnf} multiplies "
                              "spikes and NIR edges only sum", "export a SEW ResNet with cnf='ADD'")
            branch = self.neuron(f"{path}.sn", block.sn, self.sequence(f"{path}.branch", block.branch, source))
            return branch + self.any(f"{path}.shortcut", block.shortcut, source)
        raise _refuse(path, block, "only Spiking ResNet and SEW ResNet blocks are exported",
                      "export a spiking_resnet* or sew_resnet* model")

    def head(self, head: Head, source: Value) -> Value:
        pooled_in = self.shapes["head.pool:in"]
        size = np.array(pooled_in[-2:])
        source = self.add("head.pool", nir.AvgPool2d(kernel_size=size, stride=size, padding=np.array([0, 0])),
                          source)
        channels = pooled_in[0]
        source = self.add("head.flatten", nir.Flatten(input_type={"input": np.array([channels, 1, 1])},
                                                      start_dim=0, end_dim=-1), source)
        fc = head.fc
        bias = fc.bias if fc.bias is not None else torch.zeros(fc.out_features)
        return self.add("head.fc", nir.Affine(weight=_numpy(fc.weight), bias=_numpy(bias)), source)


def _shapes(model: ResNetTrunk, in_channels: int, image_size: tuple[int, int]) -> dict[str, tuple[int, ...]]:
    """Per-sample output shape of every module (and ``PATH:in``, its input), from a one-step forward pass."""
    from spikingjelly.activation_based import functional

    shapes: dict[str, tuple[int, ...]] = {}

    def hook(name: str):
        def record(_module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            shapes[name] = tuple(output.shape[2:] if output.dim() == 5 else output.shape[1:])
            if inputs and isinstance(inputs[0], torch.Tensor):
                shapes[f"{name}:in"] = tuple(inputs[0].shape[-3:])
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, in_channels, *image_size))
    finally:
        for h in handles:
            h.remove()
        functional.reset_net(model)
    return shapes


def to_nir(model: nn.Module, name: str, image_size: tuple[int, int]) -> nir.NIRGraph:
    """The NIR graph of ``model`` (registered as ``name``) in inference mode, for ``image_size`` (H, W) inputs.

    Node names are our module paths (``layers.0.1.branch.0`` is that block's first conv with its BN folded);
    NIRExportError (naming ``name`` and the first module NIR cannot express) otherwise.
    """
    try:
        if not isinstance(model, ResNetTrunk) or not isinstance(model.stem, Stem):
            raise _refuse("", model, "only Spiking ResNet and SEW-ADD ResNet models are exported to NIR",
                          "export spiking_resnet* or sew_resnet* (cnf='ADD') with IF/LIF/PLIF hard-reset neurons")
        model.eval()
        stem = model.stem.body
        in_channels = stem[0].in_channels
        builder = _GraphBuilder(_shapes(model, in_channels, image_size))
        source = builder.add("input", nir.Input(input_type={"input": np.array([in_channels, *image_size])}), [])
        source = builder.conv_bn("stem.body", stem, source)
        source = builder.any("pre", model.pre, source)
        for s, stage in enumerate(model.layers):
            for b, block in enumerate(stage):
                source = builder.block(f"layers.{s}.{b}", block, source)
        if not isinstance(model.post, nn.Identity):
            raise _refuse("post", model.post, "no NIR counterpart in this exporter", "export a Spiking/SEW ResNet")
        source = builder.head(model.head, source)
        builder.add("output", nir.Output(output_type={"output": np.array([model.head.fc.out_features])}), source)
    except NIRExportError as exc:
        raise NIRExportError(f"cannot export {name!r} as nir: {exc}") from exc
    graph = nir.NIRGraph(nodes=builder.nodes, edges=builder.edges, type_check=False,
                         metadata={"source": "snnbench", "model": name, "dt": DT,
                                   "batchnorm": "folded into the preceding conv (running statistics)"})
    graph.infer_types()  # NIR's own shape propagation from the input, then its check of every edge
    if not graph.check_types():  # a shape that does not chain is this exporter's bug, never the user's input
        raise RuntimeError(f"the NIR graph of {name!r} fails NIR's type check: please report it")
    return graph


def write_nir(model: nn.Module, name: str, image_size: tuple[int, int], out: Path) -> nir.NIRGraph:
    """Write ``to_nir(model, name, image_size)`` to ``out`` (HDF5, ``nir.write``) and return the graph.

    Whole or not at all (:func:`bench.results.replace_file`: a temporary file, fsync'd and renamed;
    ResultsWriteError when it cannot be written, ``out`` left as it was)."""
    from bench.results import replace_file

    graph = to_nir(model, name, image_size)
    replace_file(out, lambda tmp: nir.write(tmp, graph))
    return graph
