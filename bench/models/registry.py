"""Model registry modelled on timm: ``@register_model``, ``create_model``, ``list_models``.

Every registered factory carries a :class:`ModelInfo` with the facts ``bench models`` and the
reports print (family, paper, provenance, default T, neuron, what is not spike-driven) and what
the harness needs to build it: whether it is built for a fixed T (``fixed_T``), the kind of its
provenance, and the declared ranges of its keyword arguments (:class:`KwargRule`).
User models are reached by import path ``package.module:factory`` and get a minimal info. Within
:func:`import_paths_unrun` (``bench run --dry-run``) an import path is checked without importing
(:mod:`bench.static_imports`) and its info has no factory: nothing of the user's code runs.

``create_model`` is the one way a model is built (runner, trainer, ``bench models``);
``check_kwargs`` validates a suite's kwargs before anything runs: names against the factory's
signature, values against the declared rules and, for registered models, a build on the meta
device (no memory is allocated), which reaches every place that takes the arguments through
``**kwargs`` (family builders, the neuron factory, spikingjelly's node constructors).
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import fnmatch
import importlib
import inspect
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

from bench.checking import MAX_TIME_STEP, nearest
from bench.models.common import INPUT_SIZES
from bench.models.neurons import NEURON_KINDS
from bench.static_imports import ImportPathError, check_import_path

OFFICIAL = "official code"
RECONSTRUCTED = "reconstructed from paper"
USER = "user model"
# The machine-readable kind of each provenance text (ModelInfo.provenance_kind).
PROVENANCE_KINDS = {OFFICIAL: "official", RECONSTRUCTED: "reconstructed", USER: "user"}


class UnknownModelError(KeyError):
    """Raised for a model name that is neither registered nor an importable path."""

    def __init__(self, name: str, message: str):
        super().__init__(name)
        self.name = name
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class KwargRule:
    """The declared type and range of one factory keyword argument (checked when a suite loads)."""

    name: str
    kind: type
    help: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_min: bool = False
    choices: tuple[Any, ...] | None = None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is refused, or None when it is acceptable."""
        numeric = self.kind in (int, float)
        ok = isinstance(value, self.kind) and not (numeric and isinstance(value, bool))
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            return f"expected {self.kind.__name__} ({self.help}), got {value!r}"
        if numeric and not math.isfinite(value):
            return f"{value!r} is not finite"
        low_bad = self.minimum is not None and (value <= self.minimum if self.exclusive_min else value < self.minimum)
        if low_bad or (self.maximum is not None and value > self.maximum):
            return f"{value!r} is out of range ({self.range_text()})"
        if self.choices is not None and value not in self.choices:
            return f"{value!r} is not one of {list(self.choices)}"
        return None

    def range_text(self) -> str:
        low = "" if self.minimum is None else f"{'>' if self.exclusive_min else '>='} {self.minimum:g}"
        high = "" if self.maximum is None else f"<= {self.maximum:g}"
        return " and ".join(p for p in (low, high) if p) or "any"


# What every registered family takes (README "Models"); a family may declare more with register_model.
COMMON_RULES = (
    KwargRule("num_classes", int, "output classes", minimum=1, maximum=1_000_000),
    KwargRule("in_channels", int, "input channels", minimum=1, maximum=65_536),
    KwargRule("input_size", str, "stem preset", choices=INPUT_SIZES),
    KwargRule("width", float, "channel multiplier", minimum=0.0, maximum=64.0, exclusive_min=True),
    KwargRule("neuron", str, "neuron kind", choices=NEURON_KINDS),
    KwargRule("neuron_params", dict, "neuron parameters as a table"),
    KwargRule("T", int, "time steps the model is built for", minimum=1, maximum=MAX_TIME_STEP),
)


def _parameters(fn: Callable[..., Any]) -> tuple[set[str], bool]:
    """A factory's named keyword parameters and whether it takes ``**kwargs``."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # some builtins have no signature: accept what they accept
        return set(), True
    named = {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return named, any(p.kind is p.VAR_KEYWORD for p in params.values())


@dataclass(frozen=True)
class ModelInfo:
    """What a registered model is; printed by ``bench models`` and in every report."""

    name: str
    family: str
    paper: str
    provenance: str
    default_T: int
    neuron: str
    non_spiking: tuple[str, ...] = ()
    input_size: str = "imagenet"
    # True when output[t] depends only on inputs <= t and not on T itself, so accuracy at every
    # t <= T comes from one pass (cumulative mean). False for T-dependent dynamics (DSR nodes,
    # learned time embeddings, attention across time).
    causal_over_T: bool = True
    notes: str = ""
    factory: Callable[..., nn.Module] | None = field(default=None, compare=False, repr=False)
    # True when the factory takes T and the model only runs at that T (DSR nodes, time embeddings):
    # the harness builds it once per evaluated T and passes the case's T.
    fixed_T: bool = False
    # "official" | "reconstructed" | "user"; derived from ``provenance`` when not given.
    provenance_kind: str = ""
    # Declared types and ranges of keyword arguments, checked before anything runs.
    kwarg_rules: tuple[KwargRule, ...] = ()

    def __post_init__(self) -> None:
        if not self.provenance_kind:
            if self.provenance not in PROVENANCE_KINDS:
                raise ValueError(f"model {self.name!r}: provenance {self.provenance!r} has no kind; pass "
                                 f"provenance_kind (one of {sorted(set(PROVENANCE_KINDS.values()))})")
            object.__setattr__(self, "provenance_kind", PROVENANCE_KINDS[self.provenance])
        if self.provenance_kind not in set(PROVENANCE_KINDS.values()):
            raise ValueError(f"model {self.name!r}: unknown provenance_kind {self.provenance_kind!r}")

    @property
    def is_user(self) -> bool:
        return self.provenance_kind == "user"

    def accepts(self, name: str) -> bool:
        """Whether the factory takes ``name``: as a named parameter, or (registered models) via ``**kwargs``."""
        if self.factory is None:
            return False
        named, var_kw = _parameters(self.factory)
        return name in named or (var_kw and not self.is_user)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "paper": self.paper,
            "provenance": self.provenance,
            "default_T": self.default_T,
            "neuron": self.neuron,
            "non_spiking": list(self.non_spiking),
            "input_size": self.input_size,
            "causal_over_T": self.causal_over_T,
            "fixed_T": self.fixed_T,
            "provenance_kind": self.provenance_kind,
            "notes": self.notes,
        }


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    *,
    family: str,
    paper: str,
    provenance: str,
    default_T: int,
    neuron: str,
    non_spiking: tuple[str, ...] = (),
    input_size: str = "imagenet",
    causal_over_T: bool = True,
    notes: str = "",
    name: str | None = None,
    fixed_T: bool | None = None,
    provenance_kind: str = "",
    kwarg_rules: tuple[KwargRule, ...] = (),
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a factory under its function name (or ``name``) with its metadata.

    ``fixed_T`` defaults to whether the factory names a ``T`` parameter; ``kwarg_rules`` add to (or
    replace, by name) :data:`COMMON_RULES` for this model.
    """

    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or fn.__name__
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} is registered twice")
        named, _ = _parameters(fn)
        own = {r.name for r in kwarg_rules}
        _REGISTRY[key] = ModelInfo(
            name=key,
            family=family,
            paper=paper,
            provenance=provenance,
            default_T=default_T,
            neuron=neuron,
            non_spiking=tuple(non_spiking),
            input_size=input_size,
            causal_over_T=causal_over_T,
            notes=notes,
            factory=fn,
            fixed_T="T" in named if fixed_T is None else fixed_T,
            provenance_kind=provenance_kind,
            kwarg_rules=tuple(r for r in COMMON_RULES if r.name not in own) + tuple(kwarg_rules),
        )
        return fn

    return decorator


def _ensure_loaded() -> None:
    # Importing the package registers every family module.
    importlib.import_module("bench.models")


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style pattern, sorted."""
    _ensure_loaded()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def is_import_path(name: str) -> bool:
    return ":" in name


def suggest(name: str) -> str:
    """A 'did you mean' hint for an unknown registered name."""
    close = difflib.get_close_matches(name, list_models(), n=3, cutoff=0.5)
    return f"did you mean {', '.join(repr(c) for c in close)}?" if close else "run `bench models` to list names"


_IMPORTS_RUN = contextvars.ContextVar("import paths are imported", default=True)


@contextlib.contextmanager
def import_paths_unrun() -> Iterator[None]:
    """Within the block, :func:`model_info` checks an import path without importing it (a dry run)."""
    token = _IMPORTS_RUN.set(False)
    try:
        yield
    finally:
        _IMPORTS_RUN.reset(token)


def resolve_import_path(path: str) -> Callable[..., nn.Module]:
    """Import ``package.module:factory``; raise UnknownModelError with the reason on failure."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise UnknownModelError(path, f"import path {path!r} must look like 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure of user code is reported, not raised raw
        raise UnknownModelError(path, f"cannot import module {module_name!r} for {path!r}: {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UnknownModelError(path, f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UnknownModelError(path, f"{path!r} is not callable")
    return obj


def model_info(name: str) -> ModelInfo:
    """Metadata of a registered name, or a minimal record for an import path."""
    _ensure_loaded()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if is_import_path(name):
        if _IMPORTS_RUN.get():
            fn: Callable[..., nn.Module] | None = resolve_import_path(name)
            named, _ = _parameters(fn)
        else:  # not imported: a record without factory, and T per case unknown until the run imports it
            try:
                check_import_path(name)
            except ImportPathError as exc:
                raise UnknownModelError(name, f"import path {name!r} does not resolve (checked without "
                                        f"importing): {exc.problem}") from exc
            fn, named = None, set()
        return ModelInfo(
            name=name,
            family="user",
            paper="",
            provenance=USER,
            default_T=0,
            neuron="unknown",
            input_size="any",
            causal_over_T=False,
            factory=fn,
            fixed_T="T" in named,
        )
    raise UnknownModelError(name, f"unknown model {name!r}: {suggest(name)}")


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model (or ``package.module:factory``) with keyword arguments."""
    info = model_info(name)
    if info.factory is None:
        raise RuntimeError(f"{name!r} is not imported within import_paths_unrun(): it cannot be built there")
    model = info.factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"factory of {name!r} returned {type(model).__name__}, not an nn.Module")
    return model


class KwargError(ValueError):
    """A model keyword argument refused: ``key`` is the path under ``kwargs`` ("" for the whole table)."""

    def __init__(self, key: str, problem: str, fix: str):
        super().__init__(f"kwargs{'.' + key if key else ''}: {problem} (fix: {fix})")
        self.key, self.problem, self.fix = key, problem, fix


_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'")


# Random initialisers: on the meta device they have nothing to fill, and some (normal_) reach torch's Python
# references there, whose decorator imports torch._dynamo (and Triton): about a second of every suite check.
_RANDOM_INIT = frozenset({
    torch.Tensor.normal_, torch.Tensor.uniform_, nn.init.normal_, nn.init.uniform_, nn.init.trunc_normal_,
    nn.init.kaiming_normal_, nn.init.kaiming_uniform_, nn.init.xavier_normal_, nn.init.xavier_uniform_,
    nn.init.orthogonal_, nn.init.sparse_,
})


class _RandomInitSkippedOnMeta(TorchFunctionMode):
    """Returns a meta tensor unchanged from a random initialiser (a build that only checks arguments)."""

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        if func in _RANDOM_INIT:
            target = args[0] if args else kwargs.get("tensor")
            if isinstance(target, torch.Tensor) and target.is_meta:
                return target
        return func(*args, **kwargs)


def build_on_meta(name: str, **kwargs: Any) -> nn.Module:
    """:func:`create_model` on the meta device: shapes only, no memory, random initialisers skipped."""
    with torch.device("meta"), _RandomInitSkippedOnMeta():
        return create_model(name, **kwargs)


def check_kwargs(info: ModelInfo, kwargs: dict[str, Any], defaults: dict[str, Any] | None = None) -> None:
    """Refuse ``kwargs`` a model would not take (raises KwargError), before anything runs.

    Names: a factory without ``**kwargs`` takes only its named parameters. ``T`` is never given by hand
    to a model built for a fixed T (each case passes its own). Values: the declared :class:`KwargRule`
    ranges. Registered models are then built on the meta device with ``defaults | kwargs`` (the data's
    class and channel counts), which checks every name and value their builders and neurons take.
    User factories are not called here: their code runs only when the cases run; a user model not imported
    (:func:`import_paths_unrun`) has no factory, and its kwargs are checked when the run imports it.
    """
    if info.factory is None:
        return
    named, var_kw = _parameters(info.factory)
    known = named | {r.name for r in info.kwarg_rules}
    for key in kwargs:
        if not var_kw and key not in named:
            close = nearest(key, named)
            hint = f"did you mean {close!r}?" if close else f"{info.name} takes: {', '.join(sorted(named)) or 'nothing'}"
            raise KwargError(key, f"{info.name} has no argument {key!r}", hint)
    if info.fixed_T and "T" in kwargs:
        raise KwargError("T", f"{info.name} is built for each case's T", "set the T values with time_steps instead")
    for rule in info.kwarg_rules:
        if rule.name in kwargs and (problem := rule.problem(kwargs[rule.name])) is not None:
            fix = f"use one of {', '.join(map(str, rule.choices))}" if rule.choices else f"use a value {rule.range_text()}"
            raise KwargError(rule.name, problem, fix)
    if info.is_user:
        return
    try:
        build_on_meta(info.name, **{**(defaults or {}), **kwargs})
    except Exception as exc:  # the family's own checks: TypeError for names, ValueError/AssertionError for values
        raise _build_error(info, kwargs, known, exc) from exc


def _failing_line(exc: BaseException) -> str:
    """The source line that raised ``exc`` (what a bare ``assert`` checked)."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    return f"{frames[-1].line} ({frames[-1].name})" if frames and frames[-1].line else "no message"


def _build_error(info: ModelInfo, kwargs: dict[str, Any], known: set[str], exc: Exception) -> KwargError:
    """The KwargError for a failed meta build, pointing at the argument when the message names one."""
    text = str(exc).strip() or _failing_line(exc)  # bare asserts (spikingjelly's) carry no message
    message = f"{type(exc).__name__}: {text}".splitlines()[0]
    if isinstance(exc, TypeError) and (m := _UNEXPECTED.search(str(exc))):
        bad = m.group(1)
        params = kwargs.get("neuron_params")
        if bad in kwargs:
            close = nearest(bad, known)
            return KwargError(bad, f"{info.name} has no argument {bad!r} ({message})",
                              f"did you mean {close!r}?" if close else "remove it")
        if isinstance(params, dict) and bad in params:
            return KwargError(f"neuron_params.{bad}", f"the neuron takes no parameter {bad!r} ({message})",
                              "see bench/models/neurons.py for each kind's parameters")
    return KwargError("", f"{info.name} cannot be built with these kwargs: {message}",
                      "correct the value the message names (`bench models --details` lists each model's options)")


def with_overrides(info: ModelInfo, **changes: Any) -> ModelInfo:
    """A copy of ``info`` with some fields changed (e.g. a user declaring causal_over_T)."""
    return replace(info, **changes)
