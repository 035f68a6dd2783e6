"""The ``[train]`` table of a suite: schema, defaults and validation (file/field/fix errors).

::

    [train]
    epochs = 10                  # passes over the training split
    optimizer = "adam"           # sgd | adam | adamw
    lr = 1e-3                    # peak learning rate
    weight_decay = 0.0           # applied to conv/linear weights only (not BN, biases, thresholds, taus)
    momentum = 0.9               # sgd only
    schedule = "cosine"          # cosine (per step, to 0 at the end) | constant
    batch_size = 32
    label_smoothing = 0.0
    grad_clip = 0.0              # max global gradient norm (0 = no clipping)
    T = 4                        # time steps during training (recorded as trained_T)
    method = "auto"              # auto | bptt | dsr; auto = dsr for nets with DSR nodes, else bptt
    split = "train"              # training split of the suite's dataset (same kind, root, image size)
    max_samples = 0              # cap on training samples (0 = all)
    num_workers = 0              # DataLoader workers (default: data.num_workers)
    num_threads = 0              # torch intra-op CPU threads while training (0 = torch's default)
    seed = 0                     # default: suite.seed
    device = "auto"              # auto (cuda:0 if present, else cpu) | cpu | cuda:N

    [train.models."DSR PreAct-ResNet-18"]   # per-model overrides, keyed by the model's label
    lr = 0.05

Models listed with a ``checkpoint`` are not trained. ``split``, ``max_samples``, ``num_workers``,
``num_threads``, ``seed`` and ``device`` are suite-wide (one training set per suite); every other key may be overridden
per model. The loss is cross-entropy on the rate-decoded output (mean of the per-step outputs over T),
the same decoding the accuracy metric uses. No data augmentation is applied.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.checking import MAX_TIME_STEP, Checker, SuiteError
from bench.suite import MAX_NUM_WORKERS, DataSpec, Suite

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "constant")
METHODS = ("auto", "bptt", "dsr")
SUITE_WIDE = ("split", "max_samples", "num_workers", "num_threads", "seed", "device")


@dataclass(frozen=True)
class TrainConfig:
    """How one model is trained (suite-wide settings with its per-model overrides applied)."""

    epochs: int = 10
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: str = "cosine"
    batch_size: int = 32
    label_smoothing: float = 0.0
    grad_clip: float = 0.0
    T: int = 4
    method: str = "auto"
    split: str = "train"
    max_samples: int = 0
    num_workers: int = 0
    num_threads: int = 0
    seed: int = 0
    device: str = "auto"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainPlan:
    """The suite-wide training configuration and the per-model ones, by label."""

    default: TrainConfig
    per_model: dict[str, TrainConfig] = field(default_factory=dict)

    def for_model(self, label: str) -> TrainConfig:
        return self.per_model.get(label, self.default)

    def data_spec(self, data: DataSpec) -> DataSpec:
        """The suite's data spec pointed at the training split (fallback to synthetic disabled)."""
        return replace(data, split=self.default.split, max_samples=self.default.max_samples,
                       num_workers=self.default.num_workers, on_missing="error")


_KEYS = set(TrainConfig.__dataclass_fields__) | {"models"}


class _TrainChecker(Checker):
    """The suite checker plus a getter for real numbers."""

    def number(self, table: dict[str, Any], key: str, field: str, default: float, minimum: float = 0.0,
               maximum: float | None = None, open_min: bool = False) -> float:
        if key not in table:
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"{field}.{key}", f"expected a number, got {value!r}", "write a number, e.g. 0.01")
        low_bad = value <= minimum if open_min else value < minimum
        if low_bad or (maximum is not None and value > maximum):
            low = f"> {minimum}" if open_min else f">= {minimum}"
            high = f" and <= {maximum}" if maximum is not None else ""
            raise self.fail(f"{field}.{key}", f"{value} is out of range", f"use a number {low}{high}")
        return float(value)

    def choice(self, table: dict[str, Any], key: str, field: str, default: str, options: tuple[str, ...]) -> str:
        value = self.string(table, key, field, default=default)
        if value not in options:
            raise self.fail(f"{field}.{key}", f"{value!r} is not an option", f"use one of {', '.join(options)}")
        return value


def _parse_table(table: dict[str, Any], field: str, base: TrainConfig, check: _TrainChecker) -> TrainConfig:
    """Values of one table over ``base``."""
    device = check.string(table, "device", field, default=base.device)
    if device != "auto" and device != "cpu" and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise check.fail(f"{field}.device", f"unknown device {device!r}", 'use "auto", "cpu" or "cuda:N"')
    return TrainConfig(
        epochs=check.integer(table, "epochs", field, default=base.epochs, minimum=1, maximum=100_000),
        optimizer=check.choice(table, "optimizer", field, base.optimizer, OPTIMIZERS),
        lr=check.number(table, "lr", field, base.lr, 0.0, 100.0, open_min=True),
        weight_decay=check.number(table, "weight_decay", field, base.weight_decay, 0.0, 1.0),
        momentum=check.number(table, "momentum", field, base.momentum, 0.0, 1.0),
        schedule=check.choice(table, "schedule", field, base.schedule, SCHEDULES),
        batch_size=check.integer(table, "batch_size", field, default=base.batch_size, minimum=1, maximum=1_000_000),
        label_smoothing=check.number(table, "label_smoothing", field, base.label_smoothing, 0.0, 0.99),
        grad_clip=check.number(table, "grad_clip", field, base.grad_clip, 0.0),
        T=check.integer(table, "T", field, default=base.T, minimum=1, maximum=MAX_TIME_STEP),
        method=check.choice(table, "method", field, base.method, METHODS),
        split=check.string(table, "split", field, default=base.split),
        max_samples=check.integer(table, "max_samples", field, default=base.max_samples),
        num_workers=check.integer(table, "num_workers", field, default=base.num_workers,
                                  maximum=MAX_NUM_WORKERS),
        num_threads=check.integer(table, "num_threads", field, default=base.num_threads, maximum=1024),
        seed=check.seed(table, "seed", field, default=base.seed),
        device=device,
    )


def parse_train(raw: dict[str, Any], file: str | Path, labels: tuple[str, ...], *, seed: int = 0,
                num_workers: int = 0) -> TrainPlan:
    """Validate a raw ``[train]`` table; ``labels`` are the suite's model labels (for per-model tables)."""
    check = _TrainChecker(Path(file))
    table = check.table(raw, "train")
    check.no_unknown(table, _KEYS, "train")
    default = _parse_table(table, "train", TrainConfig(seed=seed, num_workers=num_workers), check)
    per_model: dict[str, TrainConfig] = {}
    overrides = check.table(table.get("models", {}), "train.models")
    for label, sub in overrides.items():
        field = f"train.models.{label!r}"
        if label not in labels:
            import difflib

            close = difflib.get_close_matches(label, labels, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"labels in this suite: {', '.join(labels)}"
            raise check.fail(field, f"no model is labelled {label!r}", hint)
        sub = check.table(sub, field)
        check.no_unknown(sub, _KEYS - {"models"}, field)
        for key in SUITE_WIDE:
            if key in sub:
                raise check.fail(f"{field}.{key}", "is suite-wide (one training set and seed per suite)",
                                 f"set {key} in [train] instead")
        per_model[label] = _parse_table(sub, field, default, check)
    return TrainPlan(default, per_model)


def train_plan(suite: Suite) -> TrainPlan:
    """The validated training plan of a suite that has a ``[train]`` table."""
    if suite.train is None:
        raise SuiteError(suite.path, "train", "the suite has no [train] table",
                         "add [train] with epochs, lr, T, ... (see bench/train/config.py)")
    return parse_train(suite.train, suite.path, tuple(m.label for m in suite.models), seed=suite.seed,
                       num_workers=suite.data.num_workers)
