"""Suite files: schema, loading, validation with file/field/fix messages, and case expansion.

A suite is a TOML file::

    [suite]
    name = "digits"                 # folder name under reports/
    description = "..."
    seed = 0
    time_steps = [1, 2, 4, 8]       # T values to evaluate (positive integers)
    devices = ["cpu", "cuda:*"]     # cpu, cuda:N, cuda:* (absent GPUs are skipped with a note)
    metrics = ["accuracy", "params", "latency"]
    case_timeout_s = 600            # optional (0.001 .. 1e7): a case running longer is recorded as failed
    memory_limit_gib = 8            # optional (1/1024 .. 2**20): cap on a case's memory growth under --isolate (CPU)

    [data]
    dataset = "digits"              # synthetic | digits | ... (see bench.data.DATASETS)
    root = "${DIGITS_ROOT}"         # local path; ${ENV_VAR} is expanded; unused by bundled data
    split = "test"
    max_samples = 360               # cap on evaluated samples (0 = all)
    batch_size = 64                 # an integer or a list: cases expand over it
    on_missing = "error"            # error | synthetic: what to do when the root is missing
    fallback_samples = 16           # synthetic samples used by the fallback
    bn_calibration_samples = 64     # untrained models: BN statistics from this many samples (0 = off)
    image_size = 32                 # resize (digits) or declared size (synthetic)

    [metrics.latency]               # options for one metric plug-in
    min_runs = 5

    [[models]]
    name = "spiking_resnet18"       # a registered name or "package.module:factory"
    label = "Spiking ResNet-18"     # optional display name (<= 100 printable characters; names files)
    kwargs = { width = 0.25 }       # passed to the factory; checked at load (see below)
    checkpoint = "ckpt/model.pt"    # optional, relative to the suite file
    checkpoint_format = "sew-official"  # optional: the checkpoint's format (default: detected from its keys)
    time_steps = [4]                # optional override of suite.time_steps

Checked at load, before anything runs: ``suite.name`` is a folder name (letters, digits, ``.``, ``_``,
``-``; never ``.`` or ``..``); ``seed`` is in 0 .. 2**32-1; no float in a model's ``kwargs`` (at any depth) is NaN or infinite; ``data.options`` keys are the dataset's;
model ``kwargs`` names against the factory's signature and their values against the declared ranges
(``bench.models.registry.check_kwargs``: registered models are built on the meta device, which reaches
the family builders and neuron constructors). ``load_suite(path, allow_import=False)`` (``--no-import``)
refuses every import path before importing anything; ``import_code=False`` (``--dry-run``) checks them
without importing.

Every error names the file, the field and the fix; ``SuiteError`` maps to exit code 2.
"""

from __future__ import annotations

import fnmatch
import itertools
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from bench.checking import MAX_TIME_STEP, SAFE_NAME, Checker, SuiteError, expand_env, import_paths
from bench.devices import DEVICE_PATTERN, expand_devices

if TYPE_CHECKING:
    from bench.data.base import DeclaredShape

__all__ = ["MAX_TIME_STEP", "Case", "DataSpec", "ModelSpec", "Selection", "Suite", "SuiteError", "declared_shape",
           "expand_cases", "expand_env", "load_suite", "select_cases", "workers_problem"]

MAX_SUITE_BYTES = 1_000_000
MAX_MODELS = 1000
ON_MISSING = ("error", "synthetic")
# case_timeout_s: a timer below a millisecond fires before a case can start, one above ~115 days overflows the
# platform's timer (setitimer); memory_limit_gib: below 1 MiB no case runs, above 1 PiB rlimit overflows.
CASE_TIMEOUT_RANGE = (1e-3, 1e7)
MEMORY_LIMIT_RANGE = (2.0**-10, 2.0**20)
# data.num_workers (and [train] num_workers) at load: a type and sanity range only, since a suite may be written
# for a larger machine than the one reading it; a run refuses more workers than its CPUs (workers_problem).
MAX_NUM_WORKERS = 1024


@dataclass(frozen=True)
class DataSpec:
    dataset: str
    root: str | None = None
    split: str = "test"
    max_samples: int = 0
    batch_sizes: tuple[int, ...] = (32,)
    on_missing: str = "error"
    # Samples of synthetic input used when the root is missing and on_missing = "synthetic".
    fallback_samples: int = 16
    image_size: int | None = None
    num_workers: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    # A model without a checkpoint gets its BatchNorm statistics from this many evaluation samples before it
    # is measured (eval-mode BN at its initial statistics leaves an untrained net silent); 0 = off.
    bn_calibration_samples: int = 64


@dataclass(frozen=True)
class ModelSpec:
    name: str
    label: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    time_steps: tuple[int, ...] | None = None
    trained_T: int | None = None
    # Format of the checkpoint (bench.checkpoint_formats.FORMAT_NAMES); None: detected from its keys.
    checkpoint_format: str | None = None


@dataclass(frozen=True)
class Suite:
    path: str
    name: str
    description: str
    seed: int
    time_steps: tuple[int, ...]
    devices: tuple[str, ...]
    metrics: tuple[str, ...]
    data: DataSpec
    models: tuple[ModelSpec, ...]
    metric_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    train: dict[str, Any] | None = None
    # Per-case wall-clock limit (seconds); a case past it is recorded as failed. None = no limit.
    case_timeout_s: float | None = None
    # Cap on a case's address-space growth under --isolate on CPU (GiB); None = no cap.
    memory_limit_gib: float | None = None
    # [tolerances]: per-field regression tolerances for `bench compare` (bench.compare.Tolerance values).
    tolerances: dict[str, Any] = field(default_factory=dict)

    def steps_of(self, model: ModelSpec) -> tuple[int, ...]:
        """The time steps ``model`` is evaluated at: its own ``time_steps``, else the suite's."""
        return model.time_steps or self.time_steps


@dataclass(frozen=True)
class Case:
    """One measurement: a model at one T, on one device, with one batch size."""

    model: ModelSpec
    T: int
    device: str
    batch_size: int

    @property
    def case_id(self) -> str:
        return f"{self.model.label}|T={self.T}|{self.device}|bs={self.batch_size}"


# ---------------------------------------------------------------- schema checking helpers

_SUITE_KEYS = {"name", "description", "seed", "time_steps", "devices", "metrics", "case_timeout_s",
               "memory_limit_gib"}
_DATA_KEYS = {"dataset", "root", "split", "max_samples", "batch_size", "on_missing", "fallback_samples",
              "bn_calibration_samples",
              "image_size", "num_workers", "options"}
_MODEL_KEYS = {"name", "label", "kwargs", "checkpoint", "checkpoint_format", "time_steps", "trained_T"}
_TOP_KEYS = {"suite", "data", "models", "metrics", "train", "tolerances"}


# ---------------------------------------------------------------- loading


def load_suite(path: str | Path, *, allow_import: bool = True, import_code: bool = True) -> Suite:
    """Read and validate a suite file; raise SuiteError with file, field and fix.

    ``allow_import=False`` (``--no-import``) refuses every value that would import Python code
    (a model named ``package.module:factory``, an import path in a metric's options) before any
    import happens: only registered models, datasets and neuron kinds can then run.
    ``import_code=False`` (``bench run --dry-run``): a model's import path is checked without importing
    it (:mod:`bench.static_imports`); the kwargs of such a model are then not checked.
    """
    path = Path(path)
    check = Checker(path)
    if not path.is_file():
        raise SuiteError(path, "(file)", "no such file", "give the path of a .toml suite, e.g. suites/digits.toml")
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise SuiteError(path, "(file)", f"cannot read: {exc.strerror}", "check the file's permissions") from exc
    if len(raw_bytes) > MAX_SUITE_BYTES:
        raise SuiteError(path, "(file)", f"{len(raw_bytes)} bytes is too large for a suite",
                         f"keep suites under {MAX_SUITE_BYTES} bytes")
    try:
        raw = tomllib.loads(raw_bytes.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SuiteError(path, "(file)", "not UTF-8 text", "save the suite as UTF-8 TOML") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(path, "(syntax)", f"not valid TOML: {exc}", "fix the TOML syntax at that line") from exc
    except RecursionError as exc:
        raise SuiteError(path, "(syntax)", "nested too deeply", "flatten the suite's tables") from exc
    if not allow_import:
        _refuse_imports(raw, check)
    if import_code:
        return _parse(raw, path, check)
    from bench.models.registry import import_paths_unrun

    with import_paths_unrun():
        return _parse(raw, path, check)


def _refuse_imports(raw: dict[str, Any], check: Checker) -> None:
    """Under --no-import: the first value that names Python code to import is an error."""
    models = raw.get("models")
    names = [(f"models[{i}].name", m.get("name")) for i, m in enumerate(models) if isinstance(m, dict)] \
        if isinstance(models, list) else []
    found = [f for f, name in names if isinstance(name, str) and ":" in name]
    found += [f for f, _ in import_paths(raw.get("metrics", {}), "metrics")]
    if found:
        raise check.fail(found[0], "names Python code to import, which --no-import refuses",
                         "use registered models and options only (`bench models`), or drop --no-import "
                         "if you trust this suite as you would trust its author's code")


def _parse(raw: dict[str, Any], path: Path, check: Checker) -> Suite:
    check.no_unknown(raw, _TOP_KEYS, "")
    if "suite" not in raw:
        raise check.fail("suite", "missing table", 'add a [suite] table with name = "..."')
    suite = check.table(raw["suite"], "suite")
    check.no_unknown(suite, _SUITE_KEYS, "suite")
    name = check.string(suite, "name", "suite")
    if not SAFE_NAME.fullmatch(name):
        raise check.fail("suite.name", f"{name!r} is not a safe folder name (it names reports/<name>/)",
                         "use up to 100 letters, digits, '.', '_', '-', starting with a letter, digit or '_'")
    description = suite.get("description", "")
    if not isinstance(description, str):
        raise check.fail("suite.description", "expected a string", "quote the description")
    seed = check.seed(suite, "seed", "suite", default=0)
    time_steps = check.int_list(suite.get("time_steps", [4]), "suite.time_steps", 1, MAX_TIME_STEP)
    devices = check.str_list(suite.get("devices", ["cpu"]), "suite.devices")
    for i, dev in enumerate(devices):
        if not DEVICE_PATTERN.match(dev):
            raise check.fail(f"suite.devices[{i}]", f"unknown device {dev!r}", 'use "cpu", "cuda:0" or "cuda:*"')
    metrics = check.str_list(suite.get("metrics", ["accuracy", "params"]), "suite.metrics")
    _check_metrics(metrics, check)

    data = _parse_data(raw, check)
    metric_options = _parse_metric_options(raw, metrics, check)
    models = _parse_models(raw, path, check, data, time_steps)
    train = check.table(raw["train"], "train") if "train" in raw else None
    return Suite(path=str(path), name=name, description=description, seed=seed, time_steps=time_steps,
                 devices=devices, metrics=metrics, data=data, models=models,
                 metric_options=metric_options, train=train,
                 case_timeout_s=check.positive(suite, "case_timeout_s", "suite", *CASE_TIMEOUT_RANGE, "seconds"),
                 memory_limit_gib=check.positive(suite, "memory_limit_gib", "suite", *MEMORY_LIMIT_RANGE, "GiB"),
                 tolerances=_parse_tolerances(raw, check))


def _parse_tolerances(raw: dict[str, Any], check: Checker) -> dict[str, Any]:
    """``[tolerances]``: each entry parsed, and each key (or pattern) matching a field a registered metric
    declares (or ``published_gap.top1``): a tolerance that tracks nothing is a typo."""
    from bench.contract import ToleranceError, check_tolerance_fields, parse_tolerances
    from bench.metrics import available_metrics, get_metric
    from bench.published import GAP_KEY

    try:
        table = parse_tolerances(check.table(raw.get("tolerances", {}), "tolerances"))
        check_tolerance_fields(list(table), {m: get_metric(m).contract for m in available_metrics()}, (GAP_KEY,))
        return table
    except ToleranceError as exc:
        raise check.fail(f"tolerances.{exc.key}", exc.problem, exc.fix) from exc


def _check_metrics(metrics: tuple[str, ...], check: Checker) -> None:
    from bench.metrics import available_metrics

    known = available_metrics()
    for i, name in enumerate(metrics):
        if name not in known:
            import difflib

            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known metrics: {', '.join(known)}"
            raise check.fail(f"suite.metrics[{i}]", f"unknown metric {name!r}", hint)
    if len(set(metrics)) != len(metrics):
        raise check.fail("suite.metrics", "duplicate metric names", "list each metric once")


def _parse_data(raw: dict[str, Any], check: Checker) -> DataSpec:
    from bench.data import DATASETS

    if "data" not in raw:
        raise check.fail("data", "missing table", 'add [data] with dataset = "digits" (or "synthetic")')
    data = check.table(raw["data"], "data")
    check.no_unknown(data, _DATA_KEYS, "data")
    dataset = check.string(data, "dataset", "data")
    if dataset not in DATASETS:
        raise check.fail("data.dataset", f"unknown dataset {dataset!r}", f"use one of {', '.join(sorted(DATASETS))}")
    root = check.string(data, "root", "data", default=None)
    on_missing = check.string(data, "on_missing", "data", default="error")
    if on_missing not in ON_MISSING:
        raise check.fail("data.on_missing", f"{on_missing!r} is not an option", f"use one of {ON_MISSING}")
    options = _check_data_options(check.table(data.get("options", {}), "data.options"), dataset, check)
    return DataSpec(
        dataset=dataset,
        root=root,
        split=check.string(data, "split", "data", default="test"),
        max_samples=check.integer(data, "max_samples", "data", default=0),
        batch_sizes=check.int_list(data.get("batch_size", 32), "data.batch_size", 1, 1_000_000),
        on_missing=on_missing,
        fallback_samples=check.integer(data, "fallback_samples", "data", default=16, minimum=1, maximum=100_000),
        bn_calibration_samples=check.integer(data, "bn_calibration_samples", "data", default=64, maximum=100_000),
        image_size=check.integer(data, "image_size", "data", default=None, minimum=1, maximum=4096),
        num_workers=check.integer(data, "num_workers", "data", default=0, maximum=MAX_NUM_WORKERS),
        options=options,
    )


def workers_problem(suite_path: str | Path, field: str, num_workers: int) -> SuiteError | None:
    """More DataLoader workers than the CPUs this process may use here (affinity mask, else os.cpu_count();
    bench.devices.usable_cpus), or None: each worker is a process loading batches, and more of them than CPUs
    only compete for the same cores. Checked before a run on the machine that runs it (not at load: a suite
    may be written for a larger machine); unknown CPU counts are not checked."""
    from bench.devices import usable_cpus

    cpus = usable_cpus()
    if cpus is None or num_workers <= cpus:
        return None
    return SuiteError(suite_path, field, f"{num_workers} DataLoader workers, more than the {cpus} CPU(s) this "
                      "process may use on this machine", f"set {field} to at most {cpus} (0 loads in the main "
                      "process), or run the suite on a machine with more CPUs")


def _check_data_options(options: dict[str, Any], dataset: str, check: Checker) -> dict[str, Any]:
    """``data.options`` keys the dataset kind does not read are refused (a typo would otherwise be ignored);
    those it declares as integers are checked against their range (bench.data.base.DatasetKind)."""
    from bench.data import DATASETS

    kind = DATASETS[dataset]
    for key in options:
        if key not in kind.options:
            raise check.fail(f"data.options.{key}", f"dataset {dataset!r} has no option {key!r}",
                             f"use one of: {', '.join(kind.options)}" if kind.options else "remove data.options")
    for key, (minimum, maximum) in kind.integer_options.items():
        check.integer(options, key, "data.options", default=None, minimum=minimum, maximum=maximum)
    return options


def _parse_metric_options(raw: dict[str, Any], metrics: tuple[str, ...], check: Checker) -> dict[str, dict]:
    """Each ``[metrics.<name>]`` table checked against the options its plug-in declares."""
    from bench.contract import OptionError
    from bench.metrics import get_metric

    options = check.table(raw.get("metrics", {}), "metrics")
    out: dict[str, dict] = {}
    for key, value in options.items():
        check.table(value, f"metrics.{key}")
        if key not in metrics:
            raise check.fail(f"metrics.{key}", f"options for metric {key!r}, which suite.metrics does not list",
                             f"add {key!r} to suite.metrics or remove [metrics.{key}]")
        try:
            out[key] = get_metric(key).contract.validate_options(value)
        except OptionError as exc:
            raise check.fail(f"metrics.{key}.{exc.key}", exc.problem, exc.fix) from exc
    return out


def declared_shape(data: DataSpec) -> DeclaredShape:
    """The data's class and channel counts and image size as declared, before anything is loaded
    (``num_classes``, ``in_channels``, ``image_size`` attributes): for kwargs and memory checks
    (bench.data.base.DatasetKind.declared_shape)."""
    from bench.data import DATASETS

    return DATASETS[data.dataset].declared_shape(data)


def _check_kwargs(info: Any, kwargs: dict[str, Any], field: str, data: DataSpec, T: int, check: Checker) -> None:
    """The model's kwargs against its factory's signature and declared ranges (registered: a meta build)."""
    from bench.build import model_kwargs
    from bench.models.registry import KwargError, check_kwargs

    try:
        check_kwargs(info, kwargs, model_kwargs({}, info, declared_shape(data), T))
    except KwargError as exc:
        raise check.fail(f"{field}.kwargs{'.' + exc.key if exc.key else ''}", exc.problem, exc.fix) from exc


def _parse_models(raw: dict[str, Any], path: Path, check: Checker, data: DataSpec,
                  suite_T: tuple[int, ...]) -> tuple[ModelSpec, ...]:
    from bench.models.registry import UnknownModelError, model_info

    models = raw.get("models")
    if not isinstance(models, list) or not models:
        raise check.fail("models", "no models listed", 'add at least one [[models]] table with name = "..."')
    if len(models) > MAX_MODELS:
        raise check.fail("models", f"{len(models)} models", f"split the suite (at most {MAX_MODELS} models)")
    specs: list[ModelSpec] = []
    labels: set[str] = set()
    for i, entry in enumerate(models):
        field = f"models[{i}]"
        entry = check.table(entry, field)
        check.no_unknown(entry, _MODEL_KEYS, field)
        name = check.string(entry, "name", field)
        try:
            info = model_info(name)
        except UnknownModelError as exc:
            raise check.fail(f"{field}.name", str(exc),
                             "use a name from `bench models` or an importable 'package.module:factory'") from exc
        kwargs = check.table(entry.get("kwargs", {}), f"{field}.kwargs")
        check.finite(kwargs, f"{field}.kwargs")
        label = check.label(check.string(entry, "label", field, default=name), f"{field}.label")
        if label in labels:
            raise check.fail(f"{field}.label", f"label {label!r} is used twice",
                             "give each model entry a distinct label")
        labels.add(label)
        checkpoint = check.string(entry, "checkpoint", field, default=None)
        if checkpoint is not None:
            expanded, missing = expand_env(checkpoint)
            if missing:
                raise check.fail(f"{field}.checkpoint", f"environment variable(s) {missing} not set",
                                 f"export {missing[0]}=/path/to/checkpoints or write the path out")
            ckpt = Path(expanded)
            ckpt = ckpt if ckpt.is_absolute() else (path.parent / ckpt)
            if not ckpt.is_file() or not os.access(ckpt, os.R_OK):
                raise check.fail(f"{field}.checkpoint", f"{str(ckpt)!r} is not a readable file",
                                 "correct the path (relative paths start at the suite's folder) or remove the key")
            checkpoint = str(ckpt)
        checkpoint_format = _checkpoint_format(entry, field, checkpoint, check)
        steps = entry.get("time_steps")
        steps = None if steps is None else check.int_list(steps, f"{field}.time_steps", 1, MAX_TIME_STEP)
        _check_kwargs(info, kwargs, field, data, (steps or suite_T)[0], check)
        specs.append(ModelSpec(
            name=name, label=label, kwargs=kwargs, checkpoint=checkpoint, time_steps=steps,
            trained_T=check.integer(entry, "trained_T", field, default=None, minimum=1, maximum=MAX_TIME_STEP),
            checkpoint_format=checkpoint_format,
        ))
    return tuple(specs)


def _checkpoint_format(entry: dict[str, Any], field: str, checkpoint: str | None, check: Checker) -> str | None:
    """``checkpoint_format``: a known format name, and only beside a checkpoint."""
    from bench.checkpoint_formats import FORMAT_NAMES

    name = check.string(entry, "checkpoint_format", field, default=None)
    if name is None:
        return None
    if name not in FORMAT_NAMES:
        raise check.fail(f"{field}.checkpoint_format", f"unknown format {name!r}",
                         f"use one of {', '.join(FORMAT_NAMES)}, or remove the key to detect it from the file")
    if checkpoint is None:
        raise check.fail(f"{field}.checkpoint_format", "set without a checkpoint",
                         "add checkpoint = \"...\" beside it, or remove checkpoint_format")
    return name


# ---------------------------------------------------------------- case expansion


def expand_cases(suite: Suite) -> tuple[list[Case], list[str]]:
    """All cases (model x T x device x batch size) in run order, and notes on skipped devices."""
    devices, notes = expand_devices(list(suite.devices))
    cases = [
        Case(model=model, T=T, device=device, batch_size=bs)
        for model in suite.models
        for device, bs, T in itertools.product(devices, suite.data.batch_sizes, suite.steps_of(model))
    ]
    return cases, notes


# ---------------------------------------------------------------- case selection (bench run --models/--T/--batch-size)


@dataclass(frozen=True)
class Selection:
    """The cases of a suite one ``bench run`` measures: each list empty means "all".

    ``models``: shell-style patterns (``fnmatch``, case-insensitive; an exact label always matches itself)
    matched against each model's label and its registered name; ``time_steps``, ``batch_sizes``: values the
    suite evaluates. A selection changes which cases run, never a case's configuration (its ``config_key``)
    nor the suite's settings, so ``--resume`` with another selection continues the same run folder.
    """

    models: tuple[str, ...] = ()
    time_steps: tuple[int, ...] = ()
    batch_sizes: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.models or self.time_steps or self.batch_sizes)

    def takes_model(self, model: ModelSpec) -> bool:
        return not self.models or any(_matches(p, model) for p in self.models)

    def keeps(self, case: Case) -> bool:
        """Whether the case is selected (the runner's filter; :func:`select_cases` validates first)."""
        return (self.takes_model(case.model) and (not self.time_steps or case.T in self.time_steps)
                and (not self.batch_sizes or case.batch_size in self.batch_sizes))

    def describe(self) -> str:
        """The selection as command-line flags (empty when everything is selected)."""
        flags = [f"--models {p!r}" for p in self.models] + [f"--T {t}" for t in self.time_steps]
        return " ".join(flags + [f"--batch-size {b}" for b in self.batch_sizes])


def _matches(pattern: str, model: ModelSpec) -> bool:
    return any(pattern == text or fnmatch.fnmatchcase(text.lower(), pattern.lower())
               for text in (model.label, model.name))


def select_cases(suite: Suite, cases: list[Case], selection: Selection) -> list[Case]:
    """The cases ``selection`` keeps, in run order; SuiteError naming the flag when a pattern or value selects
    nothing (a pattern matching no model, a T the selected models do not evaluate, a batch size the suite
    does not list), listing what the suite has."""
    models = [m for m in suite.models if selection.takes_model(m)]
    for pattern in selection.models:
        if not any(_matches(pattern, m) for m in suite.models):
            listed = "; ".join(m.label if m.label == m.name else f"{m.label} ({m.name})" for m in suite.models)
            raise SuiteError(suite.path, f"--models {pattern!r}", "matches no model of the suite (patterns are "
                             "shell-style, case-insensitive, matched against labels and registered names)",
                             f"use a label or name of: {listed}")
    steps = sorted({t for m in models for t in suite.steps_of(m)})
    for T in selection.time_steps:
        if T not in steps:
            raise SuiteError(suite.path, f"--T {T}", f"the {'selected ' if selection.models else ''}models do not "
                             f"evaluate T={T}", f"use one of: {', '.join(map(str, steps))}")
    for batch in selection.batch_sizes:
        if batch not in suite.data.batch_sizes:
            raise SuiteError(suite.path, f"--batch-size {batch}", "is not one of the suite's data.batch_size",
                             f"use one of: {', '.join(map(str, suite.data.batch_sizes))}")
    return [c for c in cases if selection.keeps(c)]
