"""Runs a suite's cases: builds data and models, calls each metric plug-in, isolates failures,
appends one record per case as it finishes.

The runner knows nothing of a metric's internals: it builds a :class:`CaseContext` and calls the
plug-ins the suite lists. A case that raises (or gives NaN outputs) is recorded as ``failed`` with
its error and the next case runs; records already written are never touched again.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
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
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch.utils.data import DataLoader, Subset

from bench import distributed
from bench.checkpoints import LoadedCheckpoint, load_checkpoint
from bench.data import DataBundle, load_data
from bench.environment import collect_env
from bench.metrics.base import CaseContext, get_metric
from bench.metrics.conventions import conventions_dict
from bench.models.common import repeat_encode
from bench.models.registry import USER, ModelInfo, model_info
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
        # User factories get only the arguments they name; ours also take them through **kwargs.
        if key not in kwargs and (key in _explicit_params(info) or (info.provenance != USER and
                                                                   factory_accepts(info, key))):
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


class RunFolderError(ValueError):
    """An output folder that would mix runs (or a resume without a run to continue)."""


def run_folder_problem(out: Path, resume: bool) -> str | None:
    """Why ``out`` cannot take this run: a new run needs a folder without results, a resumed one a folder
    with them."""
    results = out / RESULTS_FILE
    if resume and not results.is_file():
        return (f"{out} holds no {RESULTS_FILE}: there is no run to resume. Fix: give the folder of an earlier "
                f"run, or use --out to start a new one")
    if not resume and results.exists():
        return (f"{out} already holds a run ({RESULTS_FILE}); its records would mix with this run's. "
                f"Fix: --resume {out} to continue it, or choose another --out")
    return None


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


# ---------------------------------------------------------------- the run


class SuiteRunner:
    """Runs the cases of one suite into one output folder."""

    def __init__(self, suite: Suite, out_dir: Path, console: Console | None = None, show_progress: bool = True,
                 resume: bool = False, isolate: bool = False):
        self.suite = suite
        self.out_dir = Path(out_dir)
        self.console = console or Console(stderr=True)
        self.show_progress = show_progress
        self.resume = resume
        self.isolate = isolate
        self.run_id = self.out_dir.name
        self._model_key: tuple | None = None
        self._model: nn.Module | None = None
        self._model_meta: dict[str, Any] = {}
        self._model_loaded: LoadedCheckpoint | None = None
        self._model_cache: dict[str, Any] = {}

    def run(self) -> RunOutcome:
        # Under torchrun (bench.distributed): CUDA devices become the rank's GPU; rank 0 alone writes.
        suite = self.suite = replace(self.suite, devices=distributed.rank_devices(self.suite.devices))
        main = distributed.is_main()
        if main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        cases, notes = expand_cases(suite)
        distributed.check_same([(c.model.label, c.T, c.device.split(":")[0], c.batch_size) for c in cases],
                               "the cases (model, T, device kind, batch size)")
        bundle = load_data(suite.data, suite.seed)  # DatasetError propagates: bad input, nothing ran yet
        distributed.check_shardable(len(bundle.dataset), suite.data.batch_sizes)  # type: ignore[arg-type]
        writer = ResultsWriter(self.out_dir / RESULTS_FILE) if main else None
        previous = read_records(writer.path) if self.resume and writer else []
        done = {r["config_key"] for r in previous if r.get("status") == "ok"}
        # A resumed run keeps its completed records and drops failed ones, which rerun.
        if writer and self.resume and len(done) != len(previous):
            self._rewrite(writer, [r for r in previous if r.get("config_key") in done])
        if bundle.fallback_note:
            notes.insert(0, bundle.fallback_note)
        ranks = distributed.describe()  # world size (and each rank's host) for env.json
        if writer:
            write_json(collect_env(suite.path, suite.seed) | ranks, self.out_dir / ENV_FILE)
            write_json({"run_id": self.run_id, "suite": suite.name, "suite_file": suite.path,
                        "description": suite.description, "seed": suite.seed, "time_steps": list(suite.time_steps),
                        "devices": list(suite.devices), "metrics": list(suite.metrics),
                        "metric_options": suite.metric_options, "data": bundle.summary(), "notes": notes,
                        # What downstream reads instead of code: each metric's declared fields, and the
                        # counting conventions in force when the numbers were measured.
                        "metric_contracts": {m: get_metric(m).contract.to_dict() for m in suite.metrics},
                        "conventions": conventions_dict()},
                       self.out_dir / RUN_FILE)
        for note in notes:
            self.console.print(f"[yellow]note:[/yellow] {note}")

        # Rank 0 read the results file: its choice of the cases still to run is everyone's.
        todo = [cases[i] for i in distributed.broadcast_object(
            [i for i, c in enumerate(cases) if config_key(suite, c) not in done])]
        interrupted = False
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
                        writer.append(record)
                        write_csv(read_records(writer.path), self.out_dir / CSV_FILE)
                    progress.advance(overall)
        except KeyboardInterrupt:  # whenever it lands, the file keeps every record already appended
            interrupted = True
            self.console.print("[red]interrupted:[/red] stopping after the cases already measured")
        records = read_records(writer.path) if writer else []  # the file is the source of truth
        if writer:
            write_csv(records, self.out_dir / CSV_FILE)
        if not interrupted:  # an interrupt may stop the ranks at different points: no collective then
            records = distributed.broadcast_object(records)  # every rank returns rank 0's records
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
            loaded = (load_checkpoint(model, case.model.checkpoint, case.model.checkpoint_format, case.model.name)
                      if case.model.checkpoint else None)
            self._model = model.to(case.device).eval()
            self._model_key, self._model_cache = key, {}
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
            "world_size": distributed.world_size(),
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
            loaded = self._model_loaded  # what the loader did: format, tensors mapped, dropped, filled
            record["model"]["checkpoint_format"] = loaded.format if loaded else None
            record["model"]["checkpoint_mapping"] = loaded.mapping() if loaded else None
            self._model_cache["untrained"] = case.model.checkpoint is None  # firing/ops warn on untrained nets
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
                    raise MetricError(f"metric {name!r} failed: {type(exc).__name__}: {exc}") from exc
                progress.advance(task)
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

    def run_case_isolated(self, case: Case, progress: Progress) -> dict[str, Any]:
        """Run one case in a fresh process, so a crash (segfault, OOM kill) or a hang is recorded too."""
        started = time.perf_counter()
        ctx = multiprocessing.get_context("spawn")
        fd, result_path = tempfile.mkstemp(prefix="case-", suffix=".json", dir=self.out_dir)
        os.close(fd)
        task = progress.add_task(f"  {case.case_id} (isolated)", total=None)
        process = ctx.Process(target=_isolated_case, args=(self.suite, case, self.run_id, result_path))
        try:
            process.start()
            process.join(self.suite.case_timeout_s)
            if process.is_alive():
                process.kill()
                process.join()
                reason = f"case exceeded suite.case_timeout_s = {self.suite.case_timeout_s:g} s; its process was killed"
                error = {"type": "CaseTimeoutError", "message": reason, "traceback": ""}
            else:
                text = Path(result_path).read_text(encoding="utf-8")
                if text:
                    return json.loads(text)
                error = {"type": "ProcessDied", "message": death_reason(process.exitcode), "traceback": ""}
        finally:
            progress.remove_task(task)
            Path(result_path).unlink(missing_ok=True)
        return {
            "schema": 1, "run_id": self.run_id, "suite": self.suite.name, "case_id": case.case_id,
            "config_key": config_key(self.suite, case),
            "model": {"name": case.model.name, "label": case.model.label, "kwargs": case.model.kwargs,
                      "checkpoint": case.model.checkpoint, "untrained": case.model.checkpoint is None},
            "T": case.T, "trained_T": case.model.trained_T, "device": case.device,
            "batch_size": case.batch_size, "world_size": distributed.world_size(), "metrics": {},
            "status": "failed", "error": error,
            "duration_s": round(time.perf_counter() - started, 3),
        }


def _isolated_case(suite: Suite, case: Case, run_id: str, result_path: str) -> None:
    """Child-process entry of ``--isolate``: run one case and write its record to ``result_path``."""
    if suite.memory_limit_gib and case.device == "cpu":
        import resource

        # The cap is on growth: torch alone maps gigabytes of address space at import.
        with open("/proc/self/statm") as f:
            current = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = current + int(suite.memory_limit_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    runner = SuiteRunner(suite, Path(result_path).parent, show_progress=False)
    runner.run_id = run_id
    bundle = load_data(suite.data, suite.seed)
    with Progress(disable=True) as progress:
        record = runner.run_case(case, bundle, progress)
    tmp = result_path + ".tmp"
    Path(tmp).write_text(json.dumps(record, default=str), encoding="utf-8")
    os.replace(tmp, result_path)


def run_suite(suite: Suite, out_dir: str | Path | None = None, *, resume: bool = False,
              show_progress: bool = True, console: Console | None = None, isolate: bool = False) -> RunOutcome:
    """Run every case of ``suite`` into ``out_dir`` (default ``reports/<suite>/<run-id>``).

    Launched by torchrun, the ranks share the cases' data (see bench.distributed); rank 0 prints and writes.
    """
    if distributed.init() and isolate:
        raise distributed.DistributedError("--isolate runs each case in a child process, which cannot take "
                                           "part in the ranks' collectives. Fix: drop --isolate under torchrun")
    if not distributed.is_main():
        console, show_progress = Console(stderr=True, quiet=True), False
    out = distributed.broadcast_object(Path(out_dir) if out_dir else default_out_dir(suite, new_run_id()))
    # Rank 0 looks at the folder; every rank raises the same error, so none waits in a collective.
    if problem := distributed.broadcast_object(run_folder_problem(out, resume) if distributed.is_main() else None):
        raise RunFolderError(problem)
    if suite.train is not None:  # train the models given no checkpoint, into <out>/checkpoints/
        from bench.train import prepare_checkpoints

        # Under torchrun rank 0 trains and the other ranks wait for its checkpoints.
        suite = distributed.run_on_main(partial(prepare_checkpoints, suite, out, console,
                                                show_progress=show_progress))
    return SuiteRunner(suite, out, console=console, show_progress=show_progress, resume=resume,
                       isolate=isolate).run()
