"""Shape-only answers in a meta-device forward for the ops torch runs through its Python references, and for
spikingjelly's IF/LIF/PLIF nodes (:func:`neurons_by_shape`): both would import ``torch._dynamo`` and Triton.

On the meta device, torch (2.14) computes elementwise ops, normalisations, ``linear`` and adaptive pooling
with the Python references of ``torch._refs`` / ``torch._decomp``, whose ``_disable_dynamo`` decorator imports
``torch._dynamo`` (and Triton) at the first call: about a second of every suite check that runs a meta
forward (:func:`bench.build.forward_with_hook`: the memory bound and the time estimate). Those forwards only
read shapes and dtypes, so :class:`ShapesOnMeta` answers these ops with an empty meta tensor of the shape
and dtype the op returns, computed here:

- elementwise arithmetic (``add``, ``sub``, ``rsub``, ``mul``, true ``div``): the operands' broadcast shape,
  their dtype; comparisons (``ge``, ``gt``, ``le``, ``lt``): the broadcast shape, ``bool``;
- ``relu`` and ``clamp`` with number bounds: the input's shape and dtype (``relu(inplace=True)`` returns
  its input, as the in-place op does);
- ``mean`` over dimensions: the input's shape with those dimensions removed (or 1 with ``keepdim``);
- ``stack``: the common shape with the new dimension inserted;
- ``batch_norm`` (eval: running statistics given, ``training=False``) and ``layer_norm``: the input's shape
  and dtype (a normalisation keeps both);
- ``linear``: the input's shape with its last dimension the weight's rows;
- ``adaptive_avg_pool2d``: the input's shape with the last two dimensions the output size (None keeps one).

An op is answered only in the plain case, where these rules are exactly what torch returns: every tensor
argument on the meta device and of one floating dtype, other operands Python numbers, no ``out=``, the
shapes valid for the op, and contiguous inputs except for the elementwise ops and ``layer_norm``. Anything
else (another dtype or device, shapes the op refuses) runs the op itself, so its result or its error is
torch's own. Answers are laid out as torch lays out its outputs: elementwise outputs by torch's rule on the
broadcast operands (:func:`output_permutation`), all others contiguous (tests compare shape, dtype and
strides with the real op on every registered model).

spikingjelly's LIAF node (``neuron="liaf"``) still imports them: it steps through spikingjelly's LIF
single-step functional, which imports the LIF op's package. What still reaches torch's Python meta kernels (convolution, ``repeat``, ...) imports sympy through
``torch._check`` (about 0.35 s), not ``torch._dynamo``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from spikingjelly._ops.surrogate import _surrogate_spec
from spikingjelly.activation_based import neuron
from torch.overrides import TorchFunctionMode

Answer = Callable[[tuple[Any, ...], dict[str, Any]], "torch.Tensor | None"]
Number = (bool, int, float)  # Python scalars: they never change a floating tensor's dtype


def _plain(tensors: Sequence[Any], *, any_layout: bool = False) -> torch.dtype | None:
    """The common dtype of ``tensors`` when each is a meta tensor (contiguous unless ``any_layout``) of one
    floating dtype, else None."""
    dtypes = set()
    for t in tensors:
        if not (isinstance(t, torch.Tensor) and t.is_meta and t.is_floating_point()
                and (any_layout or t.is_contiguous())):
            return None
        dtypes.add(t.dtype)
    return dtypes.pop() if len(dtypes) == 1 else None


def _empty(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    return torch.empty(tuple(shape), dtype=dtype, device="meta")


def output_permutation(tensors: Sequence[torch.Tensor]) -> list[int]:
    """The dimension order (outermost first) of an elementwise op's output on ``tensors`` (one shape, broadcast).

    torch's own rule for meta outputs (``torch._prims_common.compute_elementwise_output_logical_to_physical_perm``
    in torch 2.14), copied for concrete sizes: its symbolic-size guards import sympy (0.3 s). All contiguous:
    the identity; all channels-last: channels last; else an insertion sort of the dimensions by the strides of
    the first tensor that orders them (stride 0 skipped, equal strides ordered by size).
    """
    ndim = tensors[0].dim()
    if ndim <= 1:
        return list(range(ndim))
    contiguous = all(t.is_contiguous() for t in tensors)
    channels_last = all(t.is_contiguous(memory_format=torch.channels_last) for t in tensors)
    if contiguous and not channels_last:
        return list(range(ndim))
    if channels_last and not contiguous:
        return [0, *range(2, ndim), 1]
    shape = tensors[0].shape

    def at_least(a: int, b: int) -> bool:
        return b == 0 or (a != 0 and (a >= b or a % b == 0))

    def should_swap(a: int, b: int) -> int:
        for t in tensors:
            stride_a, stride_b = t.stride(a), t.stride(b)
            if stride_a == 0 or stride_b == 0:
                continue
            if stride_a == stride_b:
                if at_least(shape[b], shape[a]):
                    continue
                return 1
            if at_least(stride_b, stride_a):
                return -1
            if at_least(stride_a, stride_b):
                return 1
        return 0

    perm = list(reversed(range(ndim)))  # sorted back to front, reversed on output
    for i in range(1, ndim):
        dim1 = i
        for dim0 in reversed(range(i)):
            comparison = should_swap(perm[dim0], perm[dim1])
            if comparison > 0:
                perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
                dim1 = dim0
            elif comparison < 0:
                break
    return list(reversed(perm))


def _elementwise_out(tensors: Sequence[torch.Tensor], shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """The output of an elementwise op on ``tensors`` broadcast to ``shape``: laid out as torch lays it out."""
    expanded = [t.expand(shape) for t in tensors]  # as the references broadcast their operands
    return torch.empty_permuted(tuple(shape), output_permutation(expanded), dtype=dtype, device="meta")


def _elementwise(result_dtype: torch.dtype | None, allowed_kwargs: frozenset[str] = frozenset()) -> Answer:
    """A binary elementwise op: broadcast shape, the operands' dtype (``result_dtype`` None) or ``result_dtype``."""

    def answer(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
        if len(args) != 2 or not set(kwargs) <= allowed_kwargs or not all(isinstance(v, Number)
                                                                           for v in kwargs.values()):
            return None
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        if not isinstance(args[0], torch.Tensor) or not all(isinstance(a, (torch.Tensor, *Number)) for a in args):
            return None
        dtype = _plain(tensors, any_layout=True)
        if dtype is None:
            return None
        try:
            shape = torch.broadcast_shapes(*(t.shape for t in tensors))
        except RuntimeError:  # not broadcastable: the op raises its own error
            return None
        return _elementwise_out(tensors, shape, result_dtype or dtype)

    return answer


def _relu(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    if len(args) != 1 or not set(kwargs) <= {"inplace"} or (dtype := _plain(args, any_layout=True)) is None:
        return None
    return args[0] if kwargs.get("inplace") else _elementwise_out(args, args[0].shape, dtype)


def _clamp(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    names = ("min", "max")
    if len(args) > 3 or not set(kwargs) <= set(names) or (dtype := _plain(args[:1], any_layout=True)) is None:
        return None
    bounds = dict(zip(names, args[1:], strict=False)) | kwargs
    if not bounds or not all(isinstance(v, Number) or v is None for v in bounds.values()) \
            or all(v is None for v in bounds.values()):
        return None
    return _elementwise_out(args[:1], args[0].shape, dtype)


def _mean(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    names = ("dim", "keepdim")
    if len(args) > 3 or not set(kwargs) <= set(names) or _plain(args[:1]) is None:
        return None
    x, given = args[0], dict(zip(names, args[1:], strict=False)) | kwargs
    dim, keepdim = given.get("dim"), given.get("keepdim", False)
    dims = [dim] if isinstance(dim, int) else dim
    if x.dim() == 0 or not isinstance(keepdim, bool) or not isinstance(dims, list | tuple) or not dims \
            or not all(isinstance(d, int) and -x.dim() <= d < x.dim() for d in dims):
        return None
    reduced = {d % x.dim() for d in dims}
    if len(reduced) != len(dims):  # a dimension named twice: the op refuses it
        return None
    shape = [1 if i in reduced else n for i, n in enumerate(x.shape) if keepdim or i not in reduced]
    return _empty(shape, x.dtype)


def _stack(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    given = dict(zip(("tensors", "dim"), args, strict=False)) | kwargs
    tensors, dim = given.get("tensors"), given.get("dim", 0)
    if len(args) > 2 or not set(given) <= {"tensors", "dim"} or not isinstance(tensors, list | tuple) \
            or not tensors or _plain(tensors) is None or not isinstance(dim, int):
        return None
    shape = tensors[0].shape
    if any(t.shape != shape for t in tensors) or not -len(shape) - 1 <= dim <= len(shape):
        return None
    at = dim % (len(shape) + 1)
    return _empty((*shape[:at], len(tensors), *shape[at:]), tensors[0].dtype)


def _per_channel(tensors: Sequence[Any], shape: Sequence[int], dtype: torch.dtype) -> bool:
    """Each of ``tensors`` is None or a plain meta tensor of ``shape`` and ``dtype``."""
    return all(t is None or (_plain([t]) == dtype and tuple(t.shape) == tuple(shape)) for t in tensors)


_BATCH_NORM = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")


def _batch_norm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    given = dict(zip(_BATCH_NORM, args, strict=False)) | kwargs
    if len(args) > len(_BATCH_NORM) or not set(given) <= set(_BATCH_NORM):
        return None
    x = given.get("input")
    dtype = _plain([x])
    if dtype is None or x.dim() < 2 or given.get("training", False) is not False \
            or not isinstance(eps := given.get("eps", 1e-5), Number) or eps < 0 \
            or given.get("running_mean") is None or given.get("running_var") is None \
            or not _per_channel([given.get(k) for k in _BATCH_NORM[1:5]], (x.shape[1],), dtype):
        return None
    return _empty(x.shape, dtype)


_LAYER_NORM = ("input", "normalized_shape", "weight", "bias", "eps")


def _layer_norm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    given = dict(zip(_LAYER_NORM, args, strict=False)) | kwargs
    if len(args) > len(_LAYER_NORM) or not set(given) <= set(_LAYER_NORM):
        return None
    x, normalized = given.get("input"), given.get("normalized_shape")
    dtype = _plain([x], any_layout=True)
    if dtype is None or not isinstance(normalized, list | tuple | torch.Size) or not normalized \
            or not all(isinstance(n, int) for n in normalized) or len(normalized) > x.dim() \
            or tuple(x.shape[x.dim() - len(normalized):]) != tuple(normalized) \
            or not isinstance(given.get("eps", 1e-5), Number) \
            or not _per_channel([given.get("weight"), given.get("bias")], normalized, dtype):
        return None
    return _empty(x.shape, dtype)  # contiguous whatever the input's layout: torch makes the input contiguous


def _linear(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    given = dict(zip(("input", "weight", "bias"), args, strict=False)) | kwargs
    if len(args) > 3 or not set(given) <= {"input", "weight", "bias"}:
        return None
    x, weight = given.get("input"), given.get("weight")
    dtype = _plain([x, weight])
    if dtype is None or x.dim() < 1 or weight.dim() != 2 or x.shape[-1] != weight.shape[1] \
            or not _per_channel([given.get("bias")], (weight.shape[0],), dtype):
        return None
    return _empty((*x.shape[:-1], weight.shape[0]), dtype)


def _adaptive_avg_pool2d(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    given = dict(zip(("input", "output_size"), args, strict=False)) | kwargs
    if len(args) > 2 or not set(given) <= {"input", "output_size"}:
        return None
    x, size = given.get("input"), given.get("output_size")
    size = (size, size) if isinstance(size, int) else size
    if _plain([x]) is None or x.dim() not in (3, 4) or 0 in x.shape[-3:] \
            or not isinstance(size, list | tuple) or len(size) != 2 \
            or not all(s is None or (isinstance(s, int) and s >= 1) for s in size):
        return None
    out = [x.shape[-2 + i] if s is None else s for i, s in enumerate(size)]
    return _empty((*x.shape[:-2], *out), x.dtype)


_ARITHMETIC = _elementwise(None)
_WITH_ALPHA = _elementwise(None, frozenset({"alpha"}))
_COMPARISON = _elementwise(torch.bool)

# The ops answered, by the function a TorchFunctionMode receives (``x + y`` arrives as ``Tensor.add``).
ANSWERS: dict[Callable[..., Any], Answer] = {
    torch.Tensor.add: _WITH_ALPHA, torch.add: _WITH_ALPHA,
    torch.Tensor.sub: _WITH_ALPHA, torch.sub: _WITH_ALPHA, torch.Tensor.__rsub__: _ARITHMETIC,
    torch.Tensor.mul: _ARITHMETIC, torch.mul: _ARITHMETIC,
    torch.Tensor.div: _ARITHMETIC, torch.div: _ARITHMETIC,
    torch.Tensor.ge: _COMPARISON, torch.Tensor.gt: _COMPARISON,
    torch.Tensor.le: _COMPARISON, torch.Tensor.lt: _COMPARISON,
    torch.relu: _relu, torch.Tensor.relu: _relu, F.relu: _relu,
    torch.Tensor.clamp: _clamp, torch.clamp: _clamp,
    torch.Tensor.mean: _mean,
    torch.stack: _stack,
    F.batch_norm: _batch_norm,
    F.layer_norm: _layer_norm,
    F.linear: _linear,
    F.adaptive_avg_pool2d: _adaptive_avg_pool2d,
}


def shape_only_answer(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    """What :class:`ShapesOnMeta` returns for ``func(*args, **kwargs)``: an empty meta tensor of the result's
    shape and dtype (the input itself for an in-place ``relu``), or None where the op itself must run."""
    answer = ANSWERS.get(func)
    return None if answer is None else answer(args, kwargs or {})


class ShapesOnMeta(TorchFunctionMode):
    """Within the block, the ops of :data:`ANSWERS` on plain meta tensors return :func:`shape_only_answer`
    without running torch's Python references (which import ``torch._dynamo``); every other call runs as is."""

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        answer = shape_only_answer(func, args, kwargs)
        return func(*args, **kwargs) if answer is None else answer


# spikingjelly 2.0 nodes whose multi-step forward imports the package of their registered op
# (``spikingjelly._ops.if_``, ``.lif``, ``.plif``), which registers a Triton op and so imports torch._inductor
# and torch._dynamo, on any device. Our subclasses (bench.models.neurons) included.
STEPPED_NODES = (neuron.IFNode, neuron.LIFNode, neuron.ParametricLIFNode)


def _runs_registered_op(node: nn.Module) -> bool:
    """Whether ``node``'s multi-step forward is spikingjelly's call of its registered op: a node of
    :data:`STEPPED_NODES` whose class keeps that class's functional steps (LIAF and our ParametricLIAF
    step in Python instead) and no explicit neuron precision."""
    base = next(b for b in STEPPED_NODES if isinstance(node, b))
    return (type(node).single_step_functional_forward is base.single_step_functional_forward
            and type(node).multi_step_functional_forward is base.multi_step_functional_forward
            and getattr(node, "_neuron_precision", None) is None)


def _node_output_by_shape(node: nn.Module, x_seq: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
    """A multi-step node's output on a plain contiguous float32 meta input: an empty tensor of its shape.

    Where spikingjelly would run its Python reference loop (a surrogate without a fused kernel, e.g. Rect),
    the loop calls the surrogate module once per step on a step's membrane: those calls are made too, on
    an empty step-shaped tensor, so forward hooks see the same module calls."""
    if args or kwargs or x_seq.dtype != torch.float32 or x_seq.dim() < 1 or _plain([x_seq]) is None:
        return type(node).multi_step_forward(node, x_seq, *args, **kwargs)
    if _surrogate_spec(node.surrogate_function) is None:
        for _ in range(x_seq.shape[0]):
            node.surrogate_function(_empty(x_seq.shape[1:], x_seq.dtype))
    return _empty(x_seq.shape, x_seq.dtype)


@contextlib.contextmanager
def neurons_by_shape(model: nn.Module) -> Iterator[None]:
    """Within the block, each multi-step node of ``model`` that runs spikingjelly's registered op
    (:func:`_runs_registered_op`) answers a plain contiguous float32 meta input with an empty tensor of its
    shape, without importing the op (:func:`_node_output_by_shape`).

    IF/LIF/PLIF act elementwise over ``[T, ...]``: their spikes have the input's shape and dtype. Their
    states are left as they were (a shape-only forward reads none).
    """
    nodes = [m for m in model.modules()
             if isinstance(m, STEPPED_NODES) and m.step_mode == "m" and _runs_registered_op(m)]
    for node in nodes:
        node.multi_step_forward = partial(_node_output_by_shape, node)  # the instance's, over its class's
    try:
        yield
    finally:
        for node in nodes:
            del node.multi_step_forward
