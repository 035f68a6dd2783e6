"""Runs a suite's cases: builds data and models, calls each metric plug-in, isolates failures,
appends one record per case as it finishes.

The runner knows nothing of a metric's internals: it builds a :class:`CaseContext` and calls the
plug-ins the suite lists. A case that raises (or gives NaN outputs) is recorded as ``failed`` with
its error and the next case runs; records already written are never touched again.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch.utils.data import DataLoader

from bench.checkpoints import load_into
from bench.data import DataBundle, load_data
from bench.environment import collect_env
from bench.metrics.base import CaseContext, get_metric
from bench.models.common import repeat_encode
from bench.models.registry import ModelInfo, model_info
from bench.results import CSV_FILE, ENV_FILE, RESULTS_FILE, ResultsWriter, read_records, write_csv, write_json
from bench.suite import Case, ModelSpec, Suite, expand_cases

RUN_FILE = "run.json"


@dataclass
class RunOutcome:
    out_dir: Path
    records: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("status") != "ok"]


def new_run_id() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def default_out_dir(suite: Suite, run_id: str, reports_root: str | Path = "reports") -> Path:
    return Path(reports_root) / suite.name / run_id


# ---------------------------------------------------------------- building blocks


def make_batches(bundle: DataBundle, batch_size: int, device: torch.device, num_workers: int = 0):
    """``batches(T)``: an iterator factory over the data, encoded for T steps, on ``device``."""
    loader = DataLoader(bundle.dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda")

    def batches(T: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in loader:
            x = x.to(device, non_blocking=True).float()
            y = y.to(device, non_blocking=True)
            if bundle.kind == "static":
                x = repeat_encode(x, T)
            else:  # event frames [B, T_data, C, H, W] -> [T, B, C, H, W]
                if x.shape[1] < T:
                    raise ValueError(f"the data has {x.shape[1]} frames per sample; T={T} needs at least {T}")
                x = x.transpose(0, 1)[:T].contiguous()
            yield x, y

    return batches


def factory_accepts(info: ModelInfo, name: str) -> bool:
    params = inspect.signature(info.factory).parameters  # type: ignore[arg-type]
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def model_kwargs(spec: ModelSpec, info: ModelInfo, bundle: DataBundle, T: int) -> dict[str, Any]:
    """The factory's arguments: the suite's kwargs, completed from the data where the factory takes them."""
    kwargs = dict(spec.kwargs)
    defaults = {
        "num_classes": bundle.num_classes,
        "in_channels": bundle.in_channels,
        "input_size": "cifar" if bundle.image_size <= 64 else "imagenet",
    }
    if factory_takes_T(info):
        defaults["T"] = T
    for key, value in defaults.items():
        if key not in kwargs and (info.provenance != "user model" or key in _explicit_params(info)):
            if factory_accepts(info, key):
                kwargs[key] = value
    return kwargs


def _explicit_params(info: ModelInfo) -> set[str]:
    return set(inspect.signature(info.factory).parameters)  # type: ignore[arg-type]


def factory_takes_T(info: ModelInfo) -> bool:
    """Models built for a fixed T (DSR nodes, time embeddings) are rebuilt for each evaluated T."""
    return "T" in _explicit_params(info)


def config_key(suite: Suite, case: Case) -> str:
    """A hash of everything that defines a case's result, for resuming runs."""
    payload = {
        "model": asdict(case.model), "T": case.T, "device": case.device, "batch_size": case.batch_size,
        "data": asdict(suite.data), "metrics": list(suite.metrics), "options": suite.metric_options,
        "seed": suite.seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def error_record(exc: BaseException) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__,
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]}


# ---------------------------------------------------------------- the run


class SuiteRunner:
    """Runs the cases of one suite into one output folder."""

    def __init__(self, suite: Suite, out_dir: Path, console: Console | None = None, show_progress: bool = True,
                 resume: bool = False):
        self.suite = suite
        self.out_dir = Path(out_dir)
        self.console = console or Console(stderr=True)
        self.show_progress = show_progress
        self.resume = resume
        self.run_id = self.out_dir.name
        self._model_key: tuple | None = None
        self._model: nn.Module | None = None
        self._model_meta: dict[str, Any] = {}
        self._model_cache: dict[str, Any] = {}

    def run(self) -> RunOutcome:
        suite = self.suite
        self.out_dir.mkdir(parents=True, exist_ok=True)
        cases, notes = expand_cases(suite)
        bundle = load_data(suite.data, suite.seed)  # DatasetError propagates: bad input, nothing ran yet
        writer = ResultsWriter(self.out_dir / RESULTS_FILE)
        previous = read_records(writer.path) if self.resume else []
        done = {r["config_key"] for r in previous if r.get("status") == "ok"}
        # A resumed run keeps its completed records and drops failed ones, which rerun.
        if self.resume and len(done) != len(previous):
            self._rewrite(writer, [r for r in previous if r.get("config_key") in done])
        records = [r for r in previous if r.get("config_key") in done]
        if bundle.fallback_note:
            notes.insert(0, bundle.fallback_note)
        write_json(collect_env(suite.path, suite.seed), self.out_dir / ENV_FILE)
        write_json({"run_id": self.run_id, "suite": suite.name, "suite_file": suite.path,
                    "description": suite.description, "seed": suite.seed, "time_steps": list(suite.time_steps),
                    "devices": list(suite.devices), "metrics": list(suite.metrics),
                    "metric_options": suite.metric_options, "data": bundle.summary(), "notes": notes},
                   self.out_dir / RUN_FILE)
        for note in notes:
            self.console.print(f"[yellow]note:[/yellow] {note}")

        todo = [c for c in cases if config_key(suite, c) not in done]
        interrupted = False
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=self.console, disable=not self.show_progress)
        with progress:
            overall = progress.add_task(f"suite {suite.name}", total=len(todo))
            for case in todo:
                try:
                    record = self.run_case(case, bundle, progress)
                except KeyboardInterrupt:
                    interrupted = True
                    self.console.print("[red]interrupted:[/red] stopping after the cases already measured")
                    break
                writer.append(record)
                records.append(record)
                write_csv(records, self.out_dir / CSV_FILE)
                progress.advance(overall)
        write_csv(records, self.out_dir / CSV_FILE)
        return RunOutcome(self.out_dir, records, notes, interrupted)

    @staticmethod
    def _rewrite(writer: ResultsWriter, records: list[dict[str, Any]]) -> None:
        tmp = writer.path.with_suffix(".jsonl.tmp")
        tmp.unlink(missing_ok=True)
        tmp_writer = ResultsWriter(tmp)
        for r in records:
            tmp_writer.append(r)
        tmp.replace(writer.path)

    def _build(self, case: Case, bundle: DataBundle) -> tuple[nn.Module, ModelInfo, dict[str, Any]]:
        """The case's model on its device, reused across cases that differ only in T or batch size."""
        info = model_info(case.model.name)
        kwargs = model_kwargs(case.model, info, bundle, case.T)
        key = (case.model.label, case.device, json.dumps(kwargs, sort_keys=True, default=str))
        if key != self._model_key:
            self._release()
            torch.manual_seed(self.suite.seed)
            model = info.factory(**kwargs)  # type: ignore[misc]
            if not isinstance(model, nn.Module):
                raise TypeError(f"factory of {case.model.name!r} returned {type(model).__name__}, not an nn.Module")
            meta = load_into(model, case.model.checkpoint) if case.model.checkpoint else {}
            self._model = model.to(case.device).eval()
            self._model_key, self._model_meta, self._model_cache = key, meta, {}
        assert self._model is not None
        return self._model, info, kwargs

    def _release(self) -> None:
        self._model = None
        self._model_key = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def run_case(self, case: Case, bundle: DataBundle, progress: Progress) -> dict[str, Any]:
        suite = self.suite
        started = time.perf_counter()
        record: dict[str, Any] = {
            "schema": 1,
            "run_id": self.run_id,
            "suite": suite.name,
            "case_id": case.case_id,
            "config_key": config_key(suite, case),
            "model": {"name": case.model.name, "label": case.model.label, "kwargs": case.model.kwargs,
                      "checkpoint": case.model.checkpoint, "untrained": case.model.checkpoint is None},
            "T": case.T,
            "trained_T": case.model.trained_T,
            "device": case.device,
            "batch_size": case.batch_size,
            "data": {"dataset": bundle.name, "split": suite.data.split, "labelled": bundle.labelled},
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "metrics": {},
            "status": "ok",
            "error": None,
        }
        task = progress.add_task(f"  {case.case_id}", total=len(suite.metrics) + 1)
        try:
            from bench.devices import describe_device

            record["device_info"] = describe_device(case.device)
            info = model_info(case.model.name)
            record["model"]["info"] = info.as_dict()
            model, info, kwargs = self._build(case, bundle)
            record["model"]["build_kwargs"] = kwargs
            record["trained_T"] = case.model.trained_T or self._model_meta.get("trained_T")
            progress.advance(task)
            device = torch.device(case.device)
            one_pass = () if factory_takes_T(info) else (case.model.time_steps or suite.time_steps)
            ctx = CaseContext(
                model=model, info=info, T=case.T, device=device, batch_size=case.batch_size,
                batches=make_batches(bundle, case.batch_size, device, suite.data.num_workers),
                num_classes=bundle.num_classes, labelled=bundle.labelled, suite_T=tuple(one_pass),
                options=suite.metric_options, model_cache=self._model_cache,
            )
            for name in suite.metrics:
                progress.update(task, description=f"  {case.case_id}: {name}")
                try:
                    record["metrics"][name] = get_metric(name).fn(ctx)
                except KeyboardInterrupt:
                    raise
                except Exception as exc:
                    raise RuntimeError(f"metric {name!r} failed: {type(exc).__name__}: {exc}") from exc
                progress.advance(task)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # isolation: record and go on
            record["status"] = "failed"
            record["error"] = error_record(exc.__cause__ or exc) | {"message": str(exc)}
            self._release()
        finally:
            progress.remove_task(task)
        record["duration_s"] = round(time.perf_counter() - started, 3)
        return record


def run_suite(suite: Suite, out_dir: str | Path | None = None, *, resume: bool = False,
              show_progress: bool = True, console: Console | None = None) -> RunOutcome:
    """Run every case of ``suite`` into ``out_dir`` (default ``reports/<suite>/<run-id>``)."""
    out = Path(out_dir) if out_dir else default_out_dir(suite, new_run_id())
    return SuiteRunner(suite, out, console=console, show_progress=show_progress, resume=resume).run()
