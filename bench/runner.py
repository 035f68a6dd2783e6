"""Runs a suite's cases: builds data and models, calls each metric plug-in, isolates failures,
appends one record per case as it finishes.

The runner knows nothing of a metric's internals: it builds a :class:`CaseContext` and calls the
plug-ins the suite lists. A case that raises (or whose model gives NaN/Inf outputs) is recorded as
``failed`` with its error and the next case runs; records already written are never touched again,
except that a resume drops failed records (their cases run again) and cuts a torn last line.

Before anything is loaded or trained (bad input, exit 2, nothing written but the folder and its lock):
a suite whose devices are all absent; a case whose memory lower bound exceeds the machine
(:func:`memory_problem`); an output folder that cannot be written or is held by another writer; a
``--resume`` whose suite settings differ from the run's (unless ``--allow-changes``: a new segment).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn as nn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from spikingjelly.activation_based import functional
from torch.utils.data import DataLoader, Subset

from bench import distributed
from bench.build import MemoryNeed, build_model, gib, memory_profile, model_kwargs
from bench.calibration import calibrate_bn, has_batchnorm
from bench.checkpoints import LoadedCheckpoint
from bench.data import DataBundle, dataset_kind, falls_back, load_data
from bench.environment import collect_env
from bench.metrics.base import CaseContext, NonFiniteOutputError, get_metric
from bench.metrics.conventions import conventions_dict
from bench.models.common import repeat_encode
from bench.models.registry import ModelInfo, model_info
from bench.plan import CasePlan, case_config_key, done_keys
from bench.results import (
    CSV_FILE,
    ENV_FILE,
    RESULTS_FILE,
    RUN_FILE,
    ResultsWriteError,
    ResultsWriter,
    read_records,
    repair_tail,
    rewrite_records,
    write_csv,
    write_json,
)
from bench.rundir import (
    RunFolderError,
    folder_problem,
    new_segment,
    read_run_json,
    run_lock,
    settings_changes,
    suite_settings,
)
from bench.suite import Case, DataSpec, Suite, SuiteError, declared_shape, workers_problem

CHECKPOINT_DIR = "checkpoints"

__all__ = ["RunFolderError", "RunOutcome", "SuiteRunner", "default_out_dir", "memory_problem",
           "new_run_id", "resolve_out_dir", "run_suite"]


@dataclass
class RunOutcome:
    out_dir: Path
    records: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False
    # Set when a record could not be written (disk full, ...): the run stopped after the last whole record.
    write_error: str | None = None

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("status") != "ok"]


def new_run_id() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def default_out_dir(suite: Suite, run_id: str, reports_root: str | Path = "reports") -> Path:
    return Path(reports_root) / suite.name / run_id


# ---------------------------------------------------------------- building blocks


def make_batches(bundle: DataBundle, batch_size: int, device: torch.device, num_workers: int = 0):
    """``batches(T)``: an iterator factory over the data, encoded for T steps, on ``device``.

    Under torchrun each rank iterates its own contiguous run of whole batches (bench.distributed).
    """
    dataset = bundle.dataset
    if distributed.is_distributed():
        shard = distributed.shard_samples(len(dataset), batch_size, distributed.rank(),  # type: ignore[arg-type]
                                          distributed.world_size())
        dataset = Subset(dataset, shard)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda")

    def batches(T: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in loader:
            yield encode(bundle, x.to(device, non_blocking=True), T), y.to(device, non_blocking=True)

    return batches


def encode(bundle: DataBundle, x: torch.Tensor, T: int) -> torch.Tensor:
    """A batch as the model takes it, ``[T, B, ...]``: static images repeated over T, event frames cut to T."""
    x = x.float()
    if bundle.kind == "static":
        return repeat_encode(x, T)
    if x.shape[1] < T:  # event frames [B, T_data, C, H, W] -> [T, B, C, H, W]
        raise ValueError(f"the data has {x.shape[1]} frames per sample; T={T} needs at least {T}")
    return x.transpose(0, 1)[:T].contiguous()


def calibrate_untrained(model: nn.Module, bundle: DataBundle, samples: int, batch_size: int, T: int,
                        device: torch.device) -> dict[str, Any] | None:
    """Set the BatchNorm statistics of an untrained model from the first ``samples`` evaluation samples at T.

    Eval-mode BN at its initial statistics (mean 0, variance 1) leaves an untrained net nearly silent, so
    its firing, op counts and energy would be empty numbers. The same samples on every rank (not the
    rank's shard), so every rank holds the same model. Returns what was done, or None when nothing was
    (no BatchNorm, or ``samples`` 0).
    """
    if samples <= 0 or not has_batchnorm(model):
        return None
    subset = Subset(bundle.dataset, range(min(samples, len(bundle.dataset))))  # type: ignore[arg-type]
    loader = DataLoader(subset, batch_size=batch_size, shuffle=False)
    xs = (encode(bundle, x.to(device), T) for x, _ in loader)
    calibrate_bn(model, xs)
    return {"samples": len(subset), "T": T, "batch_size": batch_size}


def weights_text(checkpoint: str | None, checkpoint_format: str | None, calibration: dict[str, Any] | None,
                 calibration_samples: int) -> str:
    """What the measured weights are, as the report prints it."""
    if checkpoint:
        return f"checkpoint {Path(checkpoint).name}" + (f" ({checkpoint_format})" if checkpoint_format else "")
    if calibration:
        return f"untrained, BN calibrated on {calibration['samples']} samples (T={calibration['T']})"
    if calibration_samples <= 0:
        return "untrained, BN at its initial statistics (data.bn_calibration_samples = 0)"
    return "untrained (no BatchNorm to calibrate)"


def new_record(suite: Suite, case: Case, run_id: str, segment: int, data: dict[str, Any]) -> dict[str, Any]:
    """A case's record before it runs (status ``ok``, no metrics): the one place records are shaped.

    ``config_key`` tells configurations apart within a run folder; ``segment`` indexes
    ``run.json["segments"]``, the suite settings the record was measured under; ``data`` describes the
    data actually used (dataset name, split, whether labelled).
    """
    return {
        "schema": 1,
        "run_id": run_id,
        "suite": suite.name,
        "segment": segment,
        "case_id": case.case_id,
        "config_key": case_config_key(suite, case),
        "model": {"name": case.model.name, "label": case.model.label, "kwargs": case.model.kwargs,
                  "checkpoint": case.model.checkpoint, "untrained": case.model.checkpoint is None},
        "T": case.T,
        "trained_T": case.model.trained_T,
        "device": case.device,
        "batch_size": case.batch_size,
        "world_size": distributed.world_size(),
        "data": data,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "metrics": {},
        "status": "ok",
        "error": None,
    }


def check_finite(out: Any) -> None:
    """Every tensor in a model's output is finite, else NonFiniteOutputError (the case fails)."""
    tensors = [out] if isinstance(out, torch.Tensor) else [
        t for t in (out.values() if isinstance(out, dict) else out if isinstance(out, (tuple, list)) else ())
        if isinstance(t, torch.Tensor)]
    for t in tensors:
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise NonFiniteOutputError(f"model output contains NaN/Inf ({(~torch.isfinite(t)).sum().item()} values)")


class OutputWatch:
    """Checks a case's model outputs are finite, for every suite (not only those measuring accuracy).

    The first forward any metric runs in the case is inspected by a forward hook, which then removes
    itself (no extra forward, one ``isfinite`` per case); when the case's metrics ran no forward (e.g.
    ``params`` only, or accuracy read from a pass an earlier T made), :meth:`finish` runs one on the
    sample batch. Metrics that run their own forwards on other batches (accuracy) check those too.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.seen = False
        self.handle = model.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, args: Any, out: Any) -> None:
        self.handle.remove()
        self.seen = True
        check_finite(out)

    def finish(self, ctx: CaseContext) -> None:
        self.handle.remove()
        if self.seen:
            return
        inputs, _ = ctx.sample_batch()
        with torch.inference_mode():
            functional.reset_net(self.model)
            out = self.model(inputs)
        functional.reset_net(self.model)
        check_finite(out)


class MetricError(RuntimeError):
    """A metric plug-in raised; the message names the metric."""


class CaseTimeoutError(TimeoutError):
    """A case ran past the suite's ``case_timeout_s``."""


@contextlib.contextmanager
def case_deadline(seconds: float | None) -> Iterator[None]:
    """Raise CaseTimeoutError in this thread once ``seconds`` have passed (POSIX main thread only).

    The signal is delivered between Python operations, so a single long kernel finishes first;
    ``--isolate`` enforces the limit by killing the case's process instead.
    """
    usable = seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise CaseTimeoutError(f"case exceeded suite.case_timeout_s = {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def death_reason(exitcode: int | None) -> str:
    """Why an isolated case's process ended without a record."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = {"SIGKILL": " (the kernel's out-of-memory killer sends this when memory runs out)",
                "SIGSEGV": " (a crash in native code)", "SIGABRT": " (an abort in native code)"}.get(name, "")
        return f"the case's process was killed by {name}{hint}"
    return f"the case's process exited with code {exitcode} without writing a record"


def error_record(exc: BaseException) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__,
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]}


# ---------------------------------------------------------------- checks before anything runs


def run_folder_problem(out: Path, resume: bool) -> str | None:
    """Why ``out`` cannot take this run: a new run needs a folder without results; a resumed one a folder
    with results, or with the checkpoints of ``bench train`` alone (the evaluation then starts there)."""
    results = out / RESULTS_FILE
    if resume and not results.is_file() and not (out / CHECKPOINT_DIR).is_dir():
        return (f"{out} holds no {RESULTS_FILE}: there is no run to resume. Fix: give the folder of an earlier "
                f"run, or use --out to start a new one")
    if not resume and results.exists():
        return (f"{out} already holds a run ({RESULTS_FILE}); its records would mix with this run's. "
                f"Fix: --resume {out} to continue it, or choose another --out")
    return None


@dataclass
class SegmentPlan:
    """Where this run's records go in the folder's settings history (``run.json["segments"]``)."""

    segments: list[dict[str, Any]]
    segment: int
    notes: list[str] = field(default_factory=list)


def fresh_segment(suite: Suite) -> SegmentPlan:
    return SegmentPlan([new_segment([], suite_settings(suite), suite.path)], 0)


def plan_segment(out: Path, suite: Suite, resume: bool, allow_changes: bool) -> SegmentPlan:
    """The segment this run writes; RunFolderError naming each changed setting when a resume's suite
    differs from the run's and ``allow_changes`` is off."""
    has_records = (out / RESULTS_FILE).is_file() and (out / RESULTS_FILE).stat().st_size > 0
    if not resume or not has_records:
        return fresh_segment(suite)
    settings = suite_settings(suite)
    segments = read_run_json(out).get("segments")
    if isinstance(segments, list) and segments and isinstance(segments[-1], dict):
        changes = settings_changes(segments[-1].get("settings") or {}, settings)
    else:  # a run.json from before the settings history (or none): nothing to compare against
        segments = [{"segment": 0, "settings": None, "note": "recorded before run.json kept suite settings"}]
        changes = [f"{out / RUN_FILE} keeps no settings history, so the records' configuration cannot be compared"]
    if not changes:
        segments[-1].setdefault("resumed_at", []).append(datetime.now(timezone.utc).isoformat(timespec="seconds"))
        return SegmentPlan(segments, len(segments) - 1)
    if not allow_changes:
        raise RunFolderError(
            f"--resume {out}: the suite's settings differ from those of the run it continues:\n  "
            + "\n  ".join(changes[:20]) + (f"\n  ... ({len(changes)} in all)" if len(changes) > 20 else "")
            + "\nFix: resume with the suite as it was, start a new run with --out, or add --allow-changes to "
              "measure the new settings as a separate segment beside the old records")
    segment = new_segment(segments, settings, suite.path)
    note = (f"resumed with changed settings: records of segment {segment['segment']} are measured under the new "
            f"settings and kept apart from the earlier ones ({'; '.join(changes[:5])}"
            f"{'; ...' if len(changes) > 5 else ''})")
    return SegmentPlan([*segments, segment], segment["segment"], [note])


def resident_data_bytes(data: DataSpec) -> int:
    """Bytes the evaluation (or training) data holds in memory once loaded (:func:`bench.data.estimate_bytes`:
    worked out from the settings, file sizes and headers; 0 for datasets read a sample at a time)."""
    from bench.data import estimate_bytes

    return estimate_bytes(data).resident_bytes


def _profile(name: str, kwargs: dict[str, Any], sample_shape: tuple[int, ...]) -> Any:
    """The model's memory profile, or None when even its meta build fails (its cases then fail with the reason)."""
    try:
        return memory_profile(name, kwargs, sample_shape)
    except Exception:  # noqa: BLE001 - the case itself reports the build error, with its traceback
        return None


def memory_problem(suite: Suite, cases: list[Case], sample_shape: tuple[int, ...] | None,
                   resident: int = 0, num_classes: int | None = None) -> SuiteError | None:
    """The first reason the cases cannot fit in this machine's memory, or None.

    ``resident``: bytes of data held in RAM throughout; ``sample_shape``: one sample ``(C, H, W)`` (None
    when unknown before loading). Each case's need is the lower bound of :class:`bench.build.MemoryNeed`
    (plus the resident data for CPU cases), compared with the RAM (or cgroup limit) for CPU cases and the
    GPU's total memory for CUDA ones: a refused suite could not have run. User models count their input
    batch only (their code is not run before their cases).
    """
    from bench.devices import machine_memory

    ram, what = machine_memory("cpu")
    if resident > ram:
        field = dataset_kind(suite.data.dataset).memory_field
        return SuiteError(suite.path, field, f"the data needs {gib(resident)} in memory once loaded, more than "
                          f"this machine's {gib(ram)} ({what})",
                          f"change {field} so that less data is held, or run on a machine with more memory")
    if sample_shape is None:
        return None
    shape = SimpleNamespace(num_classes=num_classes or declared_shape(suite.data).num_classes,
                            in_channels=sample_shape[0], image_size=sample_shape[-1])
    profiles: dict[str, Any] = {}
    for case in cases:
        spec = case.model
        if spec.label not in profiles:
            info = model_info(spec.name)
            # A user model's code runs only when its cases run (it may be slow, or need real data): its bound
            # is the input batch alone.
            profiles[spec.label] = None if info.is_user else _profile(spec.name, model_kwargs(spec.kwargs, info, shape, 1),
                                                                      sample_shape)
        profile = profiles[spec.label]
        if profile is None:
            per_sample = 4 * sample_shape[0] * sample_shape[1] * sample_shape[-1]
            need = MemoryNeed(0, per_sample * case.T * case.batch_size, None)
        else:
            need = profile.need(case.T, case.batch_size)
        available, what = machine_memory(case.device)
        total = need.total + (resident if case.device == "cpu" else 0)
        if total > available:
            index = suite.models.index(spec)
            t_field = f"models[{index}].time_steps" if spec.time_steps else "suite.time_steps"
            return SuiteError(
                suite.path, f"{t_field}, data.batch_size, data.image_size",
                f"case {case.case_id} needs at least {gib(total)} ({need.describe()}"
                f"{f', resident data {gib(resident)}' if resident and case.device == 'cpu' else ''}; input "
                f"[T={case.T}, B={case.batch_size}, {'x'.join(map(str, sample_shape))}] in float32) but {case.device} "
                f"has {gib(available)} ({what})",
                "lower T, the batch size or the image size (the figure is a lower bound: parameters plus the "
                "larger of the input batch and the largest single activation of a meta-device forward)")
    return None


def sample_shape_before_loading(data: DataSpec) -> tuple[int, ...] | None:
    """One sample's ``(C, H, W)`` as declared, where it is known before loading: not for a kind whose
    sample shape comes from its files, such as dvs_frames (``DatasetKind.shape_from_files``), unless its
    root is missing and the synthetic fallback of the declared shape will be used (:func:`falls_back`)."""
    if dataset_kind(data.dataset).shape_from_files and not falls_back(data):
        return None
    shape = declared_shape(data)
    return (shape.in_channels, shape.image_size, shape.image_size)


def check_before_loading(suite: Suite, cases: list[Case]) -> SuiteError | None:
    """The DataLoader workers against this machine's CPUs (:func:`bench.suite.workers_problem`) and the memory
    check on declared shapes, for the evaluation data and the training data of [train]."""
    if problem := workers_problem(suite.path, "data.num_workers", suite.data.num_workers):
        return problem
    resident = resident_data_bytes(suite.data)
    if suite.train is not None:
        from bench.train.config import train_plan

        plan = train_plan(suite)
        if problem := workers_problem(suite.path, "train.num_workers", plan.default.num_workers):
            return problem
        resident = max(resident, resident_data_bytes(plan.data_spec(suite.data)))
    return memory_problem(suite, cases, sample_shape_before_loading(suite.data), resident)


# ---------------------------------------------------------------- the run


class SuiteRunner:
    """Runs the cases of one suite into one output folder (whose lock the caller holds)."""

    def __init__(self, suite: Suite, out_dir: Path, console: Console | None = None, show_progress: bool = True,
                 isolate: bool = False, segments: SegmentPlan | None = None):
        self.suite = suite
        self.out_dir = Path(out_dir)
        self.console = console or Console(stderr=True)
        self.show_progress = show_progress
        self.isolate = isolate
        self.segments = segments or fresh_segment(suite)
        self.run_id = self.out_dir.name
        self.data_info: dict[str, Any] = {"dataset": suite.data.dataset, "split": suite.data.split}
        self._model_key: tuple | None = None
        self._model: nn.Module | None = None
        self._model_meta: dict[str, Any] = {}
        self._model_loaded: LoadedCheckpoint | None = None
        self._model_cache: dict[str, Any] = {}

    def run(self, plan: CasePlan) -> RunOutcome:
        """Measure the plan's cases (bench.plan; its models as training left them) that the folder does not
        hold yet. Under torchrun (bench.distributed) the plan's CUDA devices are the rank's GPU; rank 0 alone
        writes."""
        suite = self.suite
        main = distributed.is_main()
        cases = list(plan.cases)
        notes = [*self.segments.notes, *plan.notes]
        distributed.check_same([(c.model.label, c.T, c.device.split(":")[0], c.batch_size) for c in cases],
                               "the cases (model, T, device kind, batch size)")
        bundle = load_data(suite.data, suite.seed)  # DatasetError propagates: bad input, nothing ran yet
        distributed.check_shardable(len(bundle.dataset), suite.data.batch_sizes)  # type: ignore[arg-type]
        self.data_info = {"dataset": bundle.name, "split": suite.data.split, "labelled": bundle.labelled}
        if sample_shape_before_loading(suite.data) is None:  # frame sizes are known now: check them
            sample = bundle.dataset[0][0]
            shape = tuple(sample.shape[-3:])
            problem = memory_problem(suite, cases, shape, 0, bundle.num_classes) if main else None
            if problem := distributed.broadcast_object(problem):
                raise problem
        writer = ResultsWriter(self.out_dir / RESULTS_FILE) if main else None
        done: frozenset[str] = frozenset()
        if writer:  # the plan's done set, read again now that the folder is locked (the file is the truth)
            done = self._prepare_results(writer, notes, plan.resume)
        if bundle.fallback_note:
            notes.insert(0, bundle.fallback_note)
        ranks = distributed.describe()  # world size (and each rank's host) for env.json
        if writer:
            self._write_run_files(bundle, notes, ranks)
        for note in notes:
            self.console.print(f"[yellow]note:[/yellow] {note}")

        # Rank 0 read the results file: its choice of the cases still to run is everyone's.
        todo = [cases[i] for i in distributed.broadcast_object(
            [i for i, c in enumerate(cases) if plan.key(c) not in done])]
        interrupted, write_error = False, None
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=self.console, disable=not self.show_progress)
        try:
            with progress:
                overall = progress.add_task(f"suite {suite.name}", total=len(todo))
                for case in todo:
                    if self.isolate:
                        record = self.run_case_isolated(case, progress)
                    else:
                        with case_deadline(suite.case_timeout_s):
                            record = self.run_case(case, bundle, progress)
                    record = distributed.agree_case(record)  # failed on any rank: failed
                    if record["status"] != "ok":
                        self._release()  # every rank rebuilds the model, so their caches stay in step
                    if writer:
                        write_error = self._persist(writer, record)
                    if write_error := distributed.broadcast_object(write_error):
                        self.console.print(f"[red]stopped:[/red] {write_error}")
                        break
                    progress.advance(overall)
        except KeyboardInterrupt:  # whenever it lands, the file keeps every record already appended
            interrupted = True
            self.console.print("[red]interrupted:[/red] stopping after the cases already measured")
        records = read_records(writer.path) if writer else []  # the file is the source of truth
        if writer and (csv_error := self._write_csv(records)) and not write_error:
            write_error = csv_error  # results.jsonl is whole, but a stale results.csv must not pass as the run's
        if not interrupted:  # an interrupt may stop the ranks at different points: no collective then
            records = distributed.broadcast_object(records)  # every rank returns rank 0's records
        return RunOutcome(self.out_dir, records, notes, interrupted, write_error)

    def _prepare_results(self, writer: ResultsWriter, notes: list[str], resume: bool) -> frozenset[str]:
        """Repair and read the results of a resumed run; the keys of its completed cases.

        A torn last line (a kill inside a write) is cut off and kept in ``results.jsonl.torn``; its case runs
        again. Any other line that is not a record stops the resume (RunFileError names the line and the fix)."""
        if not resume:
            writer.path.touch()  # a run whose cases are all interrupted is still a run folder
            return frozenset()
        if dropped := repair_tail(writer.path):
            notes.append(f"the last record of {writer.path} was cut off ({dropped} bytes, e.g. by a kill or a full "
                         f"disk) and was moved to {writer.path.name}.torn; its case runs again")
        previous = read_records(writer.path)
        kept = [r for r in previous if r.get("status") == "ok"]
        if len(kept) != len(previous):  # a resumed run keeps its completed records; failed ones rerun
            rewrite_records(writer.path, kept)
        return done_keys(kept)

    def _write_run_files(self, bundle: DataBundle, notes: list[str], ranks: dict[str, Any]) -> None:
        suite = self.suite
        write_json(collect_env(suite.path, suite.seed) | ranks, self.out_dir / ENV_FILE)
        write_json({"run_id": self.run_id, "suite": suite.name, "suite_file": suite.path,
                    "description": suite.description, "seed": suite.seed, "time_steps": list(suite.time_steps),
                    "devices": list(suite.devices), "metrics": list(suite.metrics),
                    "metric_options": suite.metric_options, "data": bundle.summary(), "notes": notes,
                    # The settings each part of the run was measured with; records carry their segment.
                    "segment": self.segments.segment, "segments": self.segments.segments,
                    # What downstream reads instead of code: each metric's declared fields, and the
                    # counting conventions in force when the numbers were measured.
                    "metric_contracts": {m: get_metric(m).contract.to_dict() for m in suite.metrics},
                    "conventions": conventions_dict()},
                   self.out_dir / RUN_FILE)

    def _persist(self, writer: ResultsWriter, record: dict[str, Any]) -> str | None:
        """Append a record (and refresh the CSV); on a write error, cut the file back to its last whole
        record and say why the run must stop."""
        size = writer.path.stat().st_size if writer.path.exists() else 0
        try:
            writer.append(record)
        except (OSError, ResultsWriteError) as exc:
            with contextlib.suppress(OSError):
                os.truncate(writer.path, size)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            return (f"could not append the record of {record['case_id']} to {writer.path} ({reason}); "
                    f"the records before it are intact. Fix: free space, then --resume {self.out_dir}")
        self._write_csv(read_records(writer.path))  # derived from the JSONL file; a failure here is retried at the end
        return None

    def _write_csv(self, records: list[dict[str, Any]]) -> str | None:
        """Rewrite results.csv from the records; on a write error (disk full, ...), why and how to redo it."""
        try:
            write_csv(records, self.out_dir / CSV_FILE)
        except (OSError, ResultsWriteError) as exc:
            reason = os.strerror(exc.errno) if exc.errno else exc
            return (f"could not write {self.out_dir / CSV_FILE} ({reason}); {RESULTS_FILE} keeps every record. "
                    f"Fix: free space, then --resume {self.out_dir} (it rewrites the CSV and reruns nothing done)")
        return None

    def _build(self, case: Case, bundle: DataBundle) -> tuple[nn.Module, ModelInfo, dict[str, Any]]:
        """The case's model on its device, reused across cases that differ only in T or batch size."""
        info = model_info(case.model.name)
        kwargs = model_kwargs(case.model.kwargs, info, bundle, case.T)
        key = (case.model.label, case.device, json.dumps(kwargs, sort_keys=True, default=str))
        if key != self._model_key:
            self._release()
            model, loaded = build_model(case.model.name, kwargs, seed=self.suite.seed, checkpoint=case.model.checkpoint,
                                        checkpoint_format=case.model.checkpoint_format)
            model = model.to(case.device).eval()
            # An untrained model is calibrated once per build, at a T and batch size fixed by the suite (the
            # model's first T, unless it is built for the case's T; the first batch size), so a selection or a
            # resume measures the same model as a full run.
            cal_T = case.T if info.fixed_T else self.suite.steps_of(case.model)[0]
            calibration = None if loaded else calibrate_untrained(
                model, bundle, self.suite.data.bn_calibration_samples, self.suite.data.batch_sizes[0], cal_T,
                torch.device(case.device))
            self._model = model
            self._model_key, self._model_cache = key, {"bn_calibration": calibration}
            self._model_meta, self._model_loaded = (loaded.meta if loaded else {}), loaded
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
        record = new_record(suite, case, self.run_id, self.segments.segment, self.data_info)
        task = progress.add_task(f"  {case.case_id}", total=len(suite.metrics) + 1)
        try:
            from bench.devices import describe_device

            record["device_info"] = describe_device(case.device)
            info = model_info(case.model.name)
            record["model"]["info"] = info.as_dict()
            model, info, kwargs = self._build(case, bundle)
            record["model"]["build_kwargs"] = kwargs
            loaded = self._model_loaded  # what the loader did: format, tensors mapped, dropped, filled
            record["model"]["checkpoint_format"] = loaded.format if loaded else None
            record["model"]["checkpoint_mapping"] = loaded.mapping() if loaded else None
            calibration = self._model_cache.get("bn_calibration")
            record["model"]["bn_calibration"] = calibration
            record["model"]["weights"] = weights_text(case.model.checkpoint, loaded.format if loaded else None,
                                                      calibration, suite.data.bn_calibration_samples)
            self._model_cache["untrained"] = case.model.checkpoint is None  # firing/ops warn on untrained nets
            record["trained_T"] = case.model.trained_T or self._model_meta.get("trained_T")
            progress.advance(task)
            device = torch.device(case.device)
            one_pass = () if info.fixed_T else suite.steps_of(case.model)
            ctx = CaseContext(
                model=model, info=info, T=case.T, device=device, batch_size=case.batch_size,
                batches=make_batches(bundle, case.batch_size, device, suite.data.num_workers),
                num_classes=bundle.num_classes, labelled=bundle.labelled, suite_T=tuple(one_pass),
                options=suite.metric_options, model_cache=self._model_cache, reduce_sum=distributed.all_reduce_sum,
            )
            watch = OutputWatch(model)
            try:
                for name in suite.metrics:
                    progress.update(task, description=f"  {case.case_id}: {name}")
                    record["metrics"][name] = self._call_metric(name, ctx)
                    progress.advance(task)
            finally:
                watch.handle.remove()
            watch.finish(ctx)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # isolation: record and go on (MemoryError and CUDA OOM included)
            record["status"] = "failed"
            # A metric's failure is recorded as its own error type, with the metric named in the message.
            cause = exc.__cause__ if isinstance(exc, MetricError) and exc.__cause__ else exc
            record["error"] = error_record(cause) | {"message": str(exc)}
            self._release()
        finally:
            progress.remove_task(task)
        record["duration_s"] = round(time.perf_counter() - started, 3)
        return record

    @staticmethod
    def _call_metric(name: str, ctx: CaseContext) -> dict[str, Any]:
        try:
            return get_metric(name).fn(ctx)
        except (KeyboardInterrupt, CaseTimeoutError):
            raise
        except Exception as exc:
            raise MetricError(f"metric {name!r} failed: {type(exc).__name__}: {exc}") from exc

    def run_case_isolated(self, case: Case, progress: Progress) -> dict[str, Any]:
        """Run one case in a fresh process, so a crash (segfault, OOM kill) or a hang is recorded too.

        Whatever stops the parent while it waits (Ctrl-C, SIGINT or SIGTERM to the parent alone, an error)
        kills the child first: no case process outlives the run.
        """
        started = time.perf_counter()
        ctx = multiprocessing.get_context("spawn")
        fd, result_path = tempfile.mkstemp(prefix="case-", suffix=".json", dir=self.out_dir)
        os.close(fd)
        task = progress.add_task(f"  {case.case_id} (isolated)", total=None)
        process = ctx.Process(target=_isolated_case,
                              args=(self.suite, case, self.run_id, self.segments.segment, self.data_info, result_path))
        try:
            process.start()
            process.join(self.suite.case_timeout_s)
            if process.is_alive():
                reason = f"case exceeded suite.case_timeout_s = {self.suite.case_timeout_s:g} s; its process was killed"
                error = {"type": "CaseTimeoutError", "message": reason, "traceback": ""}
            else:
                text = Path(result_path).read_text(encoding="utf-8")
                if text:
                    return json.loads(text)
                error = {"type": "ProcessDied", "message": death_reason(process.exitcode), "traceback": ""}
        finally:
            if process.is_alive():
                process.kill()
                process.join()
            progress.remove_task(task)
            Path(result_path).unlink(missing_ok=True)
        record = new_record(self.suite, case, self.run_id, self.segments.segment, self.data_info)
        return record | {"status": "failed", "error": error, "duration_s": round(time.perf_counter() - started, 3)}


def _isolated_case(suite: Suite, case: Case, run_id: str, segment: int, data_info: dict[str, Any],
                   result_path: str) -> None:
    """Child-process entry of ``--isolate``: run one case and write its record to ``result_path``.

    Ctrl-C reaches the whole process group; the parent handles it (and kills this process), so the
    child ignores SIGINT rather than dying with a traceback of its own.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if suite.memory_limit_gib and case.device == "cpu":
        import resource

        # The cap is on growth: torch alone maps gigabytes of address space at import.
        with open("/proc/self/statm") as f:
            current = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = current + int(suite.memory_limit_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    runner = SuiteRunner(suite, Path(result_path).parent, show_progress=False, segments=SegmentPlan([], segment))
    runner.run_id = run_id
    bundle = load_data(suite.data, suite.seed)
    runner.data_info = data_info
    with Progress(disable=True) as progress:
        record = runner.run_case(case, bundle, progress)
    tmp = result_path + ".tmp"
    Path(tmp).write_text(json.dumps(record, default=str), encoding="utf-8")
    os.replace(tmp, result_path)


def resolve_out_dir(suite: Suite, out_dir: str | Path | None) -> Path:
    """The run's folder: ``out_dir``, or ``reports/<suite>/<run-id>``; under torchrun, rank 0's for all."""
    distributed.init()
    return distributed.broadcast_object(Path(out_dir) if out_dir else default_out_dir(suite, new_run_id()))


def run_suite(plan: CasePlan, *, allow_changes: bool = False, show_progress: bool = True,
              console: Console | None = None, isolate: bool = False,
              hold: contextlib.ExitStack | None = None) -> RunOutcome:
    """Run the plan's cases (:func:`bench.plan.plan_cases`: a suite's cases, a selection of them, a resume)
    into its folder.

    Holds the folder's lock (rank 0) from the checks to the end, or, given ``hold``, until that stack
    closes (the CLI keeps it over the report). Launched by torchrun, the ranks share the cases' data
    (see bench.distributed); rank 0 prints and writes.
    """
    if distributed.init() and isolate:
        raise distributed.DistributedError("--isolate runs each case in a child process, which cannot take "
                                           "part in the ranks' collectives. Fix: drop --isolate under torchrun")
    main = distributed.is_main()
    if not main:
        console, show_progress = Console(stderr=True, quiet=True), False
    suite, out, resume = plan.suite, plan.out, plan.resume
    with contextlib.ExitStack() as local:
        held = hold if hold is not None else local
        segments: SegmentPlan | None = None
        problem: Exception | None = None
        if main:  # rank 0 decides; every rank raises the same error, so none waits in a collective
            try:
                if not plan.cases:
                    raise SuiteError(suite.path, "suite.devices", f"no listed device is present on this machine "
                                     f"({'; '.join(plan.notes)}): nothing would run",
                                     'add "cpu" to suite.devices, or run the suite where its GPUs are')
                if error := check_before_loading(suite, list(plan.cases)):
                    raise error
                if folder := folder_problem(out):
                    raise RunFolderError(folder)
                held.enter_context(run_lock(out))
                if folder := run_folder_problem(out, resume):
                    raise RunFolderError(folder)
                segments = plan_segment(out, suite, resume, allow_changes)
            except (SuiteError, RunFolderError) as exc:
                problem = exc
        if problem := distributed.broadcast_object(problem):
            raise problem
        if plan.training:  # train the models given no checkpoint, into <out>/checkpoints/
            from bench.train import prepare_checkpoints

            # Under torchrun rank 0 trains and the other ranks wait for its checkpoints.
            suite = distributed.run_on_main(partial(prepare_checkpoints, suite, out, console,
                                                    show_progress=show_progress, labels=plan.training))
            plan = plan.with_models(suite)
        return SuiteRunner(suite, out, console=console, show_progress=show_progress, isolate=isolate,
                           segments=segments).run(plan)
