"""bench.meta_shapes answers a meta forward's ops and neurons by shape: on every registered model each answer
equals what torch itself returns (shape, dtype, strides), and so do every module's outputs, the memory bound and
the work counts; each answered op equals torch's on its own, including layouts torch computes (transposed and
broadcast operands); the layout rule equals torch's own function on random layouts; whatever is not the plain
case runs the op itself."""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch._prims_common import compute_elementwise_output_logical_to_physical_perm
from torch.overrides import TorchFunctionMode

import bench.build as build
import bench.estimate as estimate
from bench.meta_shapes import ANSWERS, STEPPED_NODES, neurons_by_shape, output_permutation, shape_only_answer
from bench.models import list_models
from bench.models.neurons import make_neuron
from bench.models.registry import build_on_meta, model_info

SAMPLE = (3, 32, 32)


def _layout(t: torch.Tensor) -> tuple[Any, ...]:
    return tuple(t.shape), t.dtype, t.stride()


def _kwargs(name: str) -> dict[str, Any]:
    return {"num_classes": 10, "in_channels": 3, "input_size": "cifar", **({"T": 1} if model_info(name).fixed_T else {})}


class _RealOpsCompared(TorchFunctionMode):
    """Runs every op itself, and asserts that where :func:`shape_only_answer` answers, it answers what torch did
    (``ANSWERED`` counts the answers compared, by op)."""

    ANSWERED: Counter[Callable[..., Any]] = Counter()

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        answer = shape_only_answer(func, args, kwargs)
        real = func(*args, **kwargs)
        if answer is not None:
            assert _layout(answer) == _layout(real), (func, [getattr(a, "shape", a) for a in args])
            assert (answer is args[0]) == (real is args[0]), func  # in place exactly when torch is
            self.ANSWERED[func] += 1
        return real


def _module_outputs(name: str) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """Each module call of the meta forward (memory_profile's) with the layouts of the tensors it returned."""
    from spikingjelly.activation_based import functional

    model = build_on_meta(name, **_kwargs(name))
    calls: list[tuple[str, list[tuple[Any, ...]]]] = []

    def hook(module: nn.Module, args: Any, out: Any) -> None:
        calls.append((type(module).__name__, [_layout(t) for t in build._tensors(out)]))

    with torch.device("meta"):
        functional.reset_net(model)
        build.forward_with_hook(model, torch.zeros(1, 1, *SAMPLE), hook)
    return calls


def _counted(name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    monkeypatch.setattr(estimate, "_WORK", {})
    return build.memory_profile(name, _kwargs(name), SAMPLE), estimate.model_work(name, _kwargs(name), SAMPLE), \
        _module_outputs(name)


def test_every_model_counts_the_same_with_answers_by_shape(monkeypatch):
    """On every registered model, the memory bound, the work and every module's outputs equal those of the plain
    meta forward (torch's own ops and neurons), and each answer along the way equals the op torch ran; the
    models use every answered op but the siblings checked on their own below."""
    _RealOpsCompared.ANSWERED.clear()
    for name in list_models():
        with monkeypatch.context() as patch:
            profile, work, outputs = _counted(name, patch)
            assert isinstance(work, estimate.Work) and profile.activation_per_step_sample, (name, profile, work)
            patch.setattr(build, "ShapesOnMeta", _RealOpsCompared)
            patch.setattr(build, "neurons_by_shape", lambda model: contextlib.nullcontext())
            assert _counted(name, patch) == (profile, work, outputs), name
    used = {torch.Tensor.add, torch.Tensor.mul, torch.Tensor.sub, torch.Tensor.__rsub__, torch.Tensor.div,
            torch.Tensor.ge, torch.Tensor.clamp, torch.Tensor.mean, torch.stack, torch.relu,
            F.batch_norm, F.layer_norm, F.linear, F.adaptive_avg_pool2d}
    assert set(_RealOpsCompared.ANSWERED) == used, sorted(map(str, used ^ set(_RealOpsCompared.ANSWERED)))


def _meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device="meta")


def _transposed(*shape: int) -> torch.Tensor:
    return _meta(*shape[:-2], shape[-1], shape[-2]).transpose(-1, -2)


w8 = _meta(8)
# (func, args, kwargs) for each answered op: plain, broadcast, transposed operands, keyword forms
CALLS: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = [
    *[(f, (_meta(2, 3, 4, 5), _meta(4, 1)), {}) for f in ANSWERS
      if f in (torch.Tensor.add, torch.add, torch.Tensor.sub, torch.sub, torch.Tensor.mul, torch.mul,
               torch.Tensor.div, torch.div, torch.Tensor.ge, torch.Tensor.gt, torch.Tensor.le, torch.Tensor.lt)],
    (torch.Tensor.add, (_transposed(1, 1, 16, 8), _meta(16, 8)), {}),
    (torch.Tensor.add, (_meta(16, 8), _transposed(1, 1, 16, 8)), {}),
    (torch.Tensor.add, (_transposed(2, 4, 3), _meta(2, 4, 3)), {"alpha": 2}),
    (torch.Tensor.mul, (_transposed(2, 4, 3), _meta()), {}),
    (torch.Tensor.mul, (_meta(3, 1, 5).expand(3, 4, 5), 0.5), {}),
    (torch.Tensor.__rsub__, (_transposed(4, 3), 1.0), {}),
    (torch.Tensor.div, (_meta(4, 3), 3), {}),
    (torch.Tensor.ge, (_meta(4, 3), _meta()), {}),
    (torch.relu, (_transposed(4, 3),), {}), (torch.Tensor.relu, (_meta(4, 3),), {}),
    (F.relu, (_meta(4, 3),), {"inplace": False}), (F.relu, (_meta(4, 3),), {"inplace": True}),
    (torch.Tensor.clamp, (_meta(),), {"min": 0.5}), (torch.clamp, (_transposed(4, 3), 0.0, 1.0), {}),
    (torch.Tensor.mean, (_meta(2, 3, 4), 0), {}), (torch.Tensor.mean, (_meta(2, 3, 4), (1, -1), True), {}),
    (torch.Tensor.mean, (_meta(2, 3, 4),), {"dim": [2], "keepdim": False}),
    (torch.stack, ([_meta(2, 3), _meta(2, 3)],), {}), (torch.stack, ((_meta(2, 3),) * 3, -1), {}),
    (F.batch_norm, (_meta(2, 8, 4, 4), w8, w8, w8, w8, False, 0.1, 1e-5), {}),
    (F.batch_norm, (_meta(2, 8, 3), w8, w8), {"weight": None, "bias": w8}),
    (F.layer_norm, (_meta(2, 5, 8), (8,), w8, w8, 1e-6), {}),
    (F.layer_norm, (_transposed(2, 5, 8), (8,)), {"weight": w8}),
    (F.linear, (_meta(2, 5, 8), _meta(3, 8), _meta(3)), {}), (F.linear, (_meta(8), _meta(3, 8)), {}),
    (F.adaptive_avg_pool2d, (_meta(2, 3, 7, 5), 1), {}), (F.adaptive_avg_pool2d, (_meta(3, 7, 5), (2, None)), {}),
]


@pytest.mark.parametrize(("func", "args", "kwargs"), CALLS, ids=lambda v: getattr(v, "__qualname__", "")
                         if callable(v) else "")
def test_each_answer_is_the_real_ops_shape_dtype_and_layout(func, args, kwargs):
    answer = shape_only_answer(func, args, kwargs)
    assert answer is not None, "not answered"
    with _RealOpsCompared():
        func(*args, **kwargs)


def test_every_answered_op_is_checked_on_its_own():
    assert set(ANSWERS) <= {f for f, _, _ in CALLS}


@pytest.mark.parametrize(("func", "args", "kwargs"), [
    (torch.Tensor.add, (_meta(4, 3), _meta(4, 2)), {}),  # not broadcastable: torch's own error
    (torch.Tensor.add, (_meta(4, 3, dtype=torch.int64), 1), {}),  # not floating
    (torch.Tensor.add, (_meta(4, 3), _meta(4, 3, dtype=torch.float64)), {}),  # two dtypes
    (torch.Tensor.add, (torch.zeros(2), torch.zeros(2)), {}),  # not on the meta device
    (torch.Tensor.add, (_meta(2), _meta(2)), {"out": _meta(2)}),
    (torch.Tensor.div, (_meta(2), 2), {"rounding_mode": "floor"}),
    (torch.Tensor.clamp, (_meta(2),), {}),  # no bound: torch refuses it
    (torch.Tensor.mean, (_meta(2, 3), (0, 0)), {}), (torch.Tensor.mean, (_meta(2, 3),), {}),
    (torch.stack, ([_meta(2, 3), _meta(3, 2)],), {}),
    (F.batch_norm, (_meta(2, 8, 4), w8, w8, w8, w8, True), {}),  # training
    (F.batch_norm, (_meta(2, 8, 4), _meta(7), w8), {}),  # wrong channel count
    (F.batch_norm, (_transposed(2, 4, 8), w8, w8), {}),  # a strided input
    (F.batch_norm, (_meta(2, 8, 4), None, None), {}),
    (F.layer_norm, (_meta(2, 5, 8), (5,)), {}), (F.layer_norm, (_meta(2, 5, 8), 8), {}),  # torch wants a sequence
    (F.linear, (_meta(2, 7), _meta(3, 8)), {}),
    (F.adaptive_avg_pool2d, (_meta(2, 3, 0, 5), 1), {}),
])
def test_what_is_not_the_plain_case_runs_the_op_itself(func, args, kwargs):
    assert shape_only_answer(func, args, kwargs) is None


def test_a_refused_shape_raises_torchs_own_error_under_the_mode():
    from bench.meta_shapes import ShapesOnMeta

    with pytest.raises(RuntimeError) as plain:
        _meta(4, 3) + _meta(4, 2)
    with pytest.raises(RuntimeError) as answered, ShapesOnMeta():
        _meta(4, 3) + _meta(4, 2)
    assert str(answered.value) == str(plain.value) and "broadcast" in str(plain.value)


def _random_operand(rng: random.Random, shape: tuple[int, ...]) -> torch.Tensor:
    """A meta tensor of ``shape``: permuted, broadcast from size 1 or 0-dim, or sliced."""
    kind = rng.choice(["contiguous", "permuted", "broadcast", "scalar", "sliced"])
    if kind == "permuted":
        order = list(range(len(shape)))
        rng.shuffle(order)
        return _meta(*(shape[i] for i in order)).permute(sorted(range(len(shape)), key=order.__getitem__))
    if kind == "broadcast":
        return _meta(*(n if rng.random() < 0.5 else 1 for n in shape)).expand(shape)
    if kind == "scalar":
        return _meta().expand(shape)
    if kind == "sliced":
        return _meta(*(2 * n for n in shape))[tuple(slice(None, None, 2) for _ in shape)]
    return _meta(*shape)


def test_output_permutation_is_torchs_rule_on_random_layouts():
    """Against torch's own function (the one its meta kernels use) on 3000 random layouts of 1 to 3 operands."""
    rng = random.Random(0)
    for _ in range(3000):
        shape = tuple(rng.choice([1, 1, 2, 3, 4]) for _ in range(rng.randint(0, 5)))
        operands = [_random_operand(rng, shape) for _ in range(rng.randint(1, 3))]
        expected, _ = compute_elementwise_output_logical_to_physical_perm(*operands)
        assert output_permutation(operands) == list(expected), [(t.shape, t.stride()) for t in operands]


def _node_calls(node: nn.Module, x: torch.Tensor) -> list[tuple[str, list[tuple[Any, ...]]]]:
    calls: list[tuple[str, list[tuple[Any, ...]]]] = []
    build.forward_with_hook(node, x, lambda m, a, out: calls.append((type(m).__name__, [_layout(out)])))
    return calls


@pytest.mark.parametrize("surrogate", ["atan", "sigmoid", "rect", "erf", "piecewise_quadratic"])
@pytest.mark.parametrize("kind", ["if", "lif", "plif", "liaf", "pliaf"])
def test_each_node_gives_the_module_calls_of_its_real_forward(kind, surrogate, monkeypatch):
    """With every surrogate (Rect: spikingjelly's reference loop, calling the surrogate module per step): the same
    module calls and outputs as the real node; the class's own forward is back after the block."""
    from spikingjelly.activation_based import functional

    node = make_neuron(kind, surrogate=surrogate).to("meta")
    x = _meta(3, 2, 4, 5)
    with torch.device("meta"):
        answered = _node_calls(node, x)
        assert "multi_step_forward" not in vars(node)
        functional.reset_net(node)
        monkeypatch.setattr(build, "neurons_by_shape", lambda model: contextlib.nullcontext())
        assert _node_calls(node, x) == answered
    if kind in ("if", "lif", "plif"):  # the nodes that would import spikingjelly's op are answered
        assert isinstance(node, STEPPED_NODES)
        with neurons_by_shape(node):
            assert "multi_step_forward" in vars(node)
