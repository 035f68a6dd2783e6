"""The declared contract between metric plug-ins and everything downstream (plain data, no torch).

Each metric plug-in declares, beside its function (``@register_metric``):

- its **options** (:class:`Option`: type, default, range or choices), validated when the suite loads, so a
  typo in ``[metrics.<name>]`` stops the run before anything executes;
- its **fields** (:class:`Field`: title, unit, display format, which direction is better, whether the field
  is a headline figure, whether it measures the machine (one value per device), the default regression
  tolerance).

The runner stores the declarations of the metrics a run used in ``run.json`` (:meth:`MetricContract.to_dict`),
so the report, the CSV column order, ``bench compare`` and the terminal summary read them from the run
itself: a past run renders with the declarations it was measured under, and nothing downstream names a
metric's field by hand. This module imports only the standard library: reading a run never imports torch.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

BETTER = ("higher", "lower", "none")

# Display formats the report knows (bench.report reads them from the declarations):
#   fixed1, fixed2, fixed3: decimals; percent: a fraction shown x100 with 2 decimals; count: SI prefix
#   (1.23 M); millions: x1e-6 with 3 decimals; mj: millijoules in a readable unit (pJ .. J);
#   joules: joules in a readable unit; sig: 4 significant digits; int: whole number; text: as is.
FORMATS = ("fixed1", "fixed2", "fixed3", "percent", "count", "millions", "mj", "joules", "sig", "int", "text")
ENERGY_UNITS = ((1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ"), (1e-12, "pJ"))  # joules per unit
NA = "n/a"


def energy_text(joules: float | None) -> str:
    """Joules in the unit that keeps 3 significant digits readable (pJ .. J): the ``mj`` and ``joules`` display
    rule, here so that a plug-in's reason text quotes energies as the report's cells show them. Rounded to 3
    digits before the unit is chosen (999.96 pJ reads 1 nJ, never 1e+03 pJ)."""
    if joules is None:
        return NA
    rounded = float(f"{joules:.3g}")
    factor, unit = next(((f, u) for f, u in ENERGY_UNITS if abs(rounded) >= f), ENERGY_UNITS[-1])
    return f"{rounded / factor:.3g} {unit}"


@dataclass(frozen=True)
class Tolerance:
    """How far a field may move from its baseline value before the move is a regression (bench compare)."""

    abs: float = 0.0
    rel: float = 0.0
    better: str = "none"  # higher | lower | none
    same_device: bool = False
    skip: bool = False

    def allowed(self, baseline: float) -> float:
        return max(self.abs, self.rel * abs(baseline))

    def describe(self) -> str:
        if self.skip:
            return "not tracked"
        if self.abs == 0 and self.rel == 0:
            return "exact"
        parts = ([f"±{self.abs:g}"] if self.abs else []) + ([f"±{100 * self.rel:g}%"] if self.rel else [])
        return " or ".join(parts) + (f", {self.better} is better" if self.better != "none" else "")


EXACT = Tolerance()


class ToleranceError(ValueError):
    """A bad tolerance entry: names the key, the problem and the fix."""

    def __init__(self, key: str, problem: str, fix: str):
        super().__init__(f"{key}: {problem} (fix: {fix})")
        self.key, self.problem, self.fix = key, problem, fix


def parse_tolerance(key: str, value: Any) -> Tolerance:
    """A :class:`Tolerance` from a TOML/JSON table ``{abs, rel, better, same_device, skip}``."""
    if not isinstance(value, Mapping):
        raise ToleranceError(key, f"expected a table, got {value!r}", '{ abs = 1.0, better = "higher" }')
    allowed = {"abs", "rel", "better", "same_device", "skip"}
    for k in value:
        if k not in allowed:
            raise ToleranceError(f"{key}.{k}", "unknown key", f"use {', '.join(sorted(allowed))}")
    out: dict[str, Any] = {}
    for k in ("abs", "rel"):
        if k in value:
            v = value[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ToleranceError(f"{key}.{k}", f"expected a number >= 0, got {v!r}", "write e.g. 0.5")
            out[k] = float(v)
    if "better" in value:
        if value["better"] not in BETTER:
            raise ToleranceError(f"{key}.better", f"{value['better']!r} is not a direction", f"use one of {BETTER}")
        out["better"] = value["better"]
    for k in ("same_device", "skip"):
        if k in value:
            if not isinstance(value[k], bool):
                raise ToleranceError(f"{key}.{k}", f"expected true or false, got {value[k]!r}", "write true/false")
            out[k] = value[k]
    return Tolerance(**out)


def parse_tolerances(table: Mapping[str, Any]) -> dict[str, Tolerance]:
    """A suite's ``[tolerances]`` table: ``"<metric>.<field pattern>" = { ... }``."""
    out = {}
    for key, value in table.items():
        if "." not in key:
            raise ToleranceError(key, "keys name <metric>.<field>", 'write e.g. "accuracy.top1" (patterns allowed)')
        out[key] = parse_tolerance(key, value)
    return out


def check_tolerance_fields(keys: list[str] | tuple[str, ...], contracts: Mapping[str, MetricContract],
                           derived: tuple[str, ...] = ()) -> None:
    """Refuse a tolerance key that would track nothing: a ``<metric>.<field>`` whose metric is unknown or whose
    field that metric does not declare, or a pattern matching no declared field (ToleranceError naming the key,
    the declared fields and the nearest match). ``derived`` are the other trackable keys
    (``published_gap.top1``)."""
    declared = {f"{m}.{f.name}" for m, c in contracts.items() for f in c.fields} | set(derived)
    for key in keys:
        if any(fnmatch.fnmatchcase(name, key) for name in declared):
            continue
        metric, _, name = key.partition(".")
        fields = sorted(n.partition(".")[2] for n in declared if n.partition(".")[0] == metric)
        if any(ch in key for ch in "*?["):
            known = ", ".join(fields) if fields else "metrics: " + ", ".join(sorted({n.partition(".")[0] for n in declared}))
            raise ToleranceError(key, "the pattern matches no declared field", f"declared: {known}")
        if not fields:
            close = difflib.get_close_matches(metric, sorted({n.partition(".")[0] for n in declared}), n=1)
            raise ToleranceError(key, f"unknown metric {metric!r}", f"did you mean {close[0]!r}?" if close else
                                 "known metrics: " + ", ".join(sorted({n.partition('.')[0] for n in declared})))
        close = difflib.get_close_matches(name, fields, n=1)
        raise ToleranceError(key, f"metric {metric!r} declares no field {name!r} (its fields: {', '.join(fields)})",
                             f"did you mean {close[0]!r}?" if close else f"use one of: {', '.join(fields)}")


@dataclass(frozen=True)
class Field:
    """One value a metric writes into each record (``metrics[<metric>][<name>]``).

    ``headline``: shown in the report's headline tables (one row per model at its main T);
    ``summary``: shown in the terminal summary; ``per_device``: a measurement of the machine, shown once per
    device (latency, measured energy); ``device_kind``: the field is only produced on that kind of device
    ("cuda" / "cpu"); ``tolerance``: the default for ``bench compare`` (None: not tracked by default);
    ``trained_only``: a figure of merit of trained weights (accuracy, the ANN / SNN energy ratio), which the
    report does not show for an untrained net; ``scatter``: the relative spread of the metric's timed runs
    (the report flags its per-device cells above a threshold).
    """

    name: str
    title: str
    unit: str = ""
    fmt: str = "sig"
    better: str = "none"
    description: str = ""
    headline: bool = False
    summary: bool = False
    per_device: bool = False
    device_kind: str | None = None
    tolerance: Tolerance | None = None
    trained_only: bool = False
    scatter: bool = False

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise ValueError(f"field {self.name!r}: unknown format {self.fmt!r}; use one of {FORMATS}")
        if self.better not in BETTER:
            raise ValueError(f"field {self.name!r}: better must be one of {BETTER}")

    @property
    def column(self) -> str:
        """The column title with its unit: ``top-1 (%)``."""
        return f"{self.title} ({self.unit})" if self.unit else self.title

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Field:
        d = dict(d)
        tol = d.pop("tolerance", None)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known},
                   tolerance=None if tol is None else Tolerance(**tol))


class OptionError(ValueError):
    """A bad metric option: names the option, the problem and the fix (the suite maps it to SuiteError)."""

    def __init__(self, key: str, problem: str, fix: str):
        super().__init__(f"{key}: {problem} (fix: {fix})")
        self.key, self.problem, self.fix = key, problem, fix


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list",
               dict: "a table"}


@dataclass(frozen=True)
class Option:
    """One key a suite may set in ``[metrics.<metric>]``: type, default, range or choices, help text.

    ``type`` float accepts integers too; ``nullable`` accepts an absent value meaning "no limit" (the default
    then is None).
    """

    name: str
    type: type
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    item_type: type | None = None  # for lists: the type of each item

    def check(self, value: Any) -> Any:
        """The value, validated (ints widened to float where a float is declared); raises OptionError."""
        expected = _TYPE_NAMES.get(self.type, self.type.__name__)
        ok = isinstance(value, self.type) and not (self.type is int and isinstance(value, bool))
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise OptionError(self.name, f"expected {expected}, got {value!r}", f"{self.help}; default {self.default!r}")
        if self.type is float and not math.isfinite(value):
            raise OptionError(self.name, f"{value!r} is not finite", "write a finite number")
        if self.minimum is not None and value < self.minimum or self.maximum is not None and value > self.maximum:
            lo = "" if self.minimum is None else f">= {self.minimum:g}"
            hi = "" if self.maximum is None else f"<= {self.maximum:g}"
            raise OptionError(self.name, f"{value!r} is out of range", f"use a value {' and '.join(p for p in (lo, hi) if p)}")
        if self.choices is not None and value not in self.choices:
            raise OptionError(self.name, f"{value!r} is not an option", f"use one of {list(self.choices)}")
        if self.item_type is not None:
            for i, item in enumerate(value):
                if not isinstance(item, self.item_type):
                    raise OptionError(f"{self.name}[{i}]", f"expected {_TYPE_NAMES.get(self.item_type)}, got {item!r}",
                                      self.help)
        return value

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type.__name__, "default": self.default, "help": self.help,
                "minimum": self.minimum, "maximum": self.maximum,
                "choices": None if self.choices is None else list(self.choices)}


OptionsCheck = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class MetricContract:
    """What one metric plug-in declares: name, description, determinism, options and fields."""

    name: str
    description: str
    deterministic: bool = True
    fields: tuple[Field, ...] = ()
    options: tuple[Option, ...] = ()
    # Cross-option checks (e.g. an energy profile named in ``profile`` must exist): raises OptionError.
    check_options: OptionsCheck | None = field(default=None, compare=False, repr=False)
    # Seconds the metric takes on one case, at least (``bench.metrics.base.CaseWork`` -> float, raising
    # ``NotEstimated`` when it cannot be said before the case runs): read by bench.estimate. Not stored.
    cost: Callable[[Any], float] | None = field(default=None, compare=False, repr=False)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def validate_options(self, table: Mapping[str, Any]) -> dict[str, Any]:
        """The suite's ``[metrics.<name>]`` table checked against the declared options (unknown keys too)."""
        known = {o.name: o for o in self.options}
        out: dict[str, Any] = {}
        for key, value in table.items():
            if key not in known:
                import difflib

                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = (f"did you mean {close[0]!r}?" if close else
                        f"options of {self.name!r}: {', '.join(sorted(known)) or 'none'}")
                raise OptionError(key, f"unknown option of metric {self.name!r}", hint)
            out[key] = known[key].check(value)
        if self.check_options is not None:
            self.check_options({o.name: o.default for o in self.options} | out)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The declaration as stored in ``run.json``."""
        return {"name": self.name, "description": self.description, "deterministic": self.deterministic,
                "fields": [f.to_dict() for f in self.fields], "options": [o.to_dict() for o in self.options]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MetricContract:
        """A declaration read back from ``run.json`` (options are kept only as their descriptions)."""
        return cls(name=d["name"], description=d.get("description", ""), deterministic=d.get("deterministic", True),
                   fields=tuple(Field.from_dict(f) for f in d.get("fields", ())))
