"""The metric plug-in interface.

A metric is a function ``fn(ctx: CaseContext) -> dict`` registered under a name with
``@register_metric("name")``. It returns plain JSON-serialisable values: scalar fields (numbers,
strings, None) become columns of ``results.csv``; nested lists/dicts (per-layer tables) stay in
``results.jsonl`` for the report. A metric never imports the runner; the runner never knows a
metric's internals: it builds a :class:`CaseContext` and calls each metric the suite asks for.

A value that could not be measured is ``None`` with a ``<field>_why`` string beside it; a metric
never reports 0 for something it did not count.

Each plug-in declares its contract with the registration (:mod:`bench.contract`): its options (validated
when the suite loads) and its fields (title, unit, format, better direction, headline, default tolerance).
Everything downstream (report, CSV, ``bench compare``, terminal summary) reads those declarations, which
the runner stores in ``run.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from bench.contract import Field, MetricContract, Option, OptionsCheck
from bench.models.registry import ModelInfo

if TYPE_CHECKING:
    from bench.suite import Case

MetricFn = Callable[["CaseContext"], dict[str, Any]]


class NonFiniteOutputError(FloatingPointError):
    """A model produced NaN or Inf outputs: the case is recorded as failed (raised by metrics and the runner)."""


@dataclass
class MetricSpec:
    """A registered metric: its function and its declared contract."""

    fn: MetricFn
    contract: MetricContract

    @property
    def name(self) -> str:
        return self.contract.name

    @property
    def description(self) -> str:
        return self.contract.description

    @property
    def deterministic(self) -> bool:
        """True when the same seed, input and device give bit-for-bit the same values (counts, rates, CPU
        accuracy); False for measurements of the machine (time, memory, energy). Reports print it."""
        return self.contract.deterministic


_METRICS: dict[str, MetricSpec] = {}


def register_metric(name: str, description: str = "", *, deterministic: bool = True,
                    fields: tuple[Field, ...] = (), options: tuple[Option, ...] = (),
                    check_options: OptionsCheck | None = None,
                    cost: Callable[[CaseWork], float] | None = None) -> Callable[[MetricFn], MetricFn]:
    """Register ``fn(ctx) -> dict`` as metric ``name`` with its declared fields and options
    (``deterministic=False`` for measurements of the machine) and ``cost``: the seconds it takes on one
    case at least, worked out from a :class:`CaseWork` before the case runs (``bench run``'s estimate; a
    metric without one makes its cases "not estimated")."""

    def decorator(fn: MetricFn) -> MetricFn:
        if name in _METRICS:
            raise ValueError(f"metric {name!r} is registered twice")
        names = [f.name for f in fields]
        if len(set(names)) != len(names):
            raise ValueError(f"metric {name!r} declares a field twice")
        contract = MetricContract(name, description or (fn.__doc__ or "").strip().split("\n")[0], deterministic,
                                  tuple(fields), tuple(options), check_options, cost)
        _METRICS[name] = MetricSpec(fn, contract)
        return fn

    return decorator


class NotEstimated(Exception):
    """A metric's cost that cannot be worked out before its case runs (the message says why)."""


@dataclass(frozen=True)
class CaseWork:
    """What a metric's declared cost may depend on (bench.estimate fills it in before the case runs)."""

    case: Case
    options: dict[str, dict[str, Any]]
    metrics: tuple[str, ...]  # the suite's metrics, in order
    forward_s: Callable[[int], float]  # seconds of one forward of a batch at T (a rough lower bound)
    batches: int | None  # evaluation batches at the case's batch size; None: known once loaded
    labelled: bool
    accuracy_T: int | None  # T of the case's accuracy pass; None when an earlier case of the model made it
    first_on_device: bool  # the process's first case on this device (measured_energy's rest idle)

    def option(self, metric: str, key: str) -> Any:
        """The suite's value, else the plug-in's declared default."""
        if key in self.options.get(metric, {}):
            return self.options[metric][key]
        return next(o.default for o in get_metric(metric).contract.options if o.name == key)


def get_metric(name: str) -> MetricSpec:
    _load_builtin()
    return _METRICS[name]


def available_metrics() -> list[str]:
    _load_builtin()
    return sorted(_METRICS)


def _load_builtin() -> None:
    import bench.metrics  # noqa: F401  (registers the built-in plug-ins)


@dataclass
class CaseContext:
    """Everything a metric may use for one case (model x T x device x batch size)."""

    model: nn.Module
    info: ModelInfo
    T: int
    device: torch.device
    batch_size: int
    # ``batches(T)`` yields ``(inputs [T, B, ...] on device, labels [B] on device)`` over the
    # evaluation data, encoded for T steps (static images repeated; event frames cut to T).
    batches: Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]]
    num_classes: int
    # False for synthetic data (random labels): accuracy is then not measured.
    labelled: bool = True
    # Every T the suite evaluates, so a causal model can be run once at max(T) for all of them.
    suite_T: tuple[int, ...] = ()
    # Options from the suite's [metrics.<name>] tables, keyed by metric name.
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Shared between metrics of one case (e.g. a fixed sample batch), so work is done once.
    cache: dict[str, Any] = field(default_factory=dict)
    # Shared between the cases that use the same built model on the same device (all T, one model).
    model_cache: dict[str, Any] = field(default_factory=dict)
    # Integer counts summed over the processes that share the evaluation data (the runner passes the
    # all-reduce under torchrun); in one process it returns the counts as they are. Metrics that count
    # over the whole data set (accuracy) sum through it, so they never import the distributed layer.
    reduce_sum: Callable[[Sequence[int]], list[int]] = list

    def sample_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first evaluation batch, fetched once per case: the fixed input for ops, firing, timing."""
        if "sample_batch" not in self.cache:
            self.cache["sample_batch"] = next(iter(self.batches(self.T)))
        return self.cache["sample_batch"]

    def option(self, metric: str, key: str, default: Any = None) -> Any:
        """The suite's value of ``[metrics.<metric>] key`` (validated at load), else ``default``."""
        return self.options.get(metric, {}).get(key, default)
