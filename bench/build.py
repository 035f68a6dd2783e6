"""Building a case's model: the one path the runner and the trainer share (both below this module,
neither imports the other), configuration keys, and the memory a case needs at least.

- :func:`model_kwargs`: a suite entry's kwargs completed from the data (class and channel counts, the
  stem preset) and, for models built for a fixed T, the case's T.
- :func:`build_model`: seeds torch, calls :func:`bench.models.create_model`, loads a checkpoint.
- :func:`config_key`: the hash that says whether two records (or checkpoints) come from one configuration.
- :func:`memory_profile`: a lower bound on the memory one case takes, from a build and a forward on the
  meta device (nothing is allocated), checked against the machine before any data is loaded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch
import torch.nn as nn

from bench.meta_shapes import ShapesOnMeta, neurons_by_shape
from bench.models.registry import ModelInfo, build_on_meta, create_model

if TYPE_CHECKING:
    from bench.checkpoints import LoadedCheckpoint


class DataShape(Protocol):
    """What a build needs to know of the data (a DataBundle has these)."""

    num_classes: int
    in_channels: int
    image_size: int


def model_kwargs(kwargs: dict[str, Any], info: ModelInfo, data: DataShape, T: int) -> dict[str, Any]:
    """The factory's arguments: the suite's kwargs, completed from the data where the factory takes them.

    ``num_classes`` and ``in_channels`` come from the data; ``input_size`` is ``"cifar"`` for images of
    at most 64 px, else ``"imagenet"``; ``T`` is the case's T for models built for a fixed T. User
    factories get only the arguments they name; registered ones also take them through ``**kwargs``.
    """
    out = dict(kwargs)
    defaults: dict[str, Any] = {
        "num_classes": data.num_classes,
        "in_channels": data.in_channels,
        "input_size": "cifar" if data.image_size <= 64 else "imagenet",
    }
    if info.fixed_T:
        defaults["T"] = T
    for key, value in defaults.items():
        if key not in out and info.accepts(key):
            out[key] = value
    return out


def build_model(name: str, kwargs: dict[str, Any], *, seed: int, checkpoint: str | None = None,
                checkpoint_format: str | None = None) -> tuple[nn.Module, LoadedCheckpoint | None]:
    """The model ``name`` built with ``kwargs`` from seed ``seed`` (on the CPU), with ``checkpoint`` loaded
    strictly in its format (detected, or ``checkpoint_format``); returns it and what the loader did (None
    without a checkpoint)."""
    from bench.checkpoints import load_checkpoint

    torch.manual_seed(seed)
    model = create_model(name, **kwargs)
    loaded = load_checkpoint(model, checkpoint, checkpoint_format, name) if checkpoint else None
    return model, loaded


def config_key(payload: dict[str, Any]) -> str:
    """A stable 16-hex-digit hash of a configuration (canonical JSON, keys sorted)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- memory a case needs at least


@dataclass(frozen=True)
class MemoryNeed:
    """Bytes one case needs at least: the model's parameters and buffers, the encoded input batch
    ``[T, B, C, H, W]`` (float32), and the largest single tensor one module returns (None when the meta
    forward did not run, e.g. a user model that does not support the meta device)."""

    params: int
    input: int
    activation: int | None

    @property
    def total(self) -> int:
        """Parameters plus the larger of input and activation: each is alive at some moment of the forward."""
        return self.params + max(self.input, self.activation or 0)

    def describe(self) -> str:
        act = "not estimated" if self.activation is None else gib(self.activation)
        return f"parameters {gib(self.params)}, input batch {gib(self.input)}, largest activation {act}"


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


def _largest_output(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the largest tensor any module of ``model`` returns for ``x`` (broadcast views skipped)."""
    largest = [0]

    def hook(module: nn.Module, args: Any, out: Any) -> None:
        for t in _tensors(out):
            if 0 not in t.stride():  # an expand() view allocates nothing new
                largest[0] = max(largest[0], t.numel() * t.element_size())

    forward_with_hook(model, x, hook)
    return largest[0]


def forward_with_hook(model: nn.Module, x: torch.Tensor, hook: Callable[[nn.Module, Any, Any], None]) -> None:
    """One eval-mode forward of ``x`` under ``inference_mode`` with ``hook`` on every module (removed after).

    On meta tensors, the ops torch runs through its Python references and spikingjelly's IF/LIF/PLIF
    nodes (both import ``torch._dynamo`` and Triton) are answered by their result's shape and dtype
    (:mod:`bench.meta_shapes`): the same shapes, without the import."""
    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.inference_mode(), ShapesOnMeta(), neurons_by_shape(model):
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()


@dataclass(frozen=True)
class MemoryProfile:
    """A model's memory per unit of T x B, from one meta-device build and forward at T=1, batch 1."""

    params: int
    input_per_step_sample: int
    activation_per_step_sample: int | None

    def need(self, T: int, batch: int) -> MemoryNeed:
        """The lower bound at T and batch size ``batch`` (input and activations scale with T x B)."""
        units = T * batch
        act = None if self.activation_per_step_sample is None else self.activation_per_step_sample * units
        return MemoryNeed(self.params, self.input_per_step_sample * units, act)


def memory_profile(name: str, kwargs_T1: dict[str, Any], sample_shape: tuple[int, ...]) -> MemoryProfile:
    """Build ``name`` on the meta device (``kwargs_T1``: with T=1 for models built for a fixed T) and run one
    sample ``(C, H, W)`` at T=1 through it; nothing is allocated.

    Activations of multi-step nets grow linearly with T x B (``[T, B, ...]`` tensors), so the largest one at
    T=1, B=1 times T x B is a lower bound; dynamics that grow faster (attention across time) only make the
    true need larger. Where the meta forward fails (a user model that needs real data), the activation is
    left out (None) and the bound keeps the input and the parameters.
    """
    model = build_on_meta(name, **kwargs_T1)
    params = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    per_sample = 4  # float32
    for d in sample_shape:
        per_sample *= d
    try:
        from spikingjelly.activation_based import functional

        with torch.device("meta"):
            functional.reset_net(model)
            activation: int | None = _largest_output(model, torch.zeros(1, 1, *sample_shape))
    except Exception:  # noqa: BLE001 - a model the meta device cannot run: the bound keeps input and parameters
        activation = None
    return MemoryProfile(params, per_sample, activation)
