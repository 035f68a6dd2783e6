"""Training the suite's models before evaluation: ``bench train SUITE.toml`` or a ``[train]`` table.

``prepare_checkpoints(suite, out_dir, console)`` trains every model the suite lists without a
``checkpoint`` (schema in :mod:`bench.train.config`), saves ``<out_dir>/checkpoints/<label>.pt``
and returns the suite with ``checkpoint`` and ``trained_T`` filled in, so the runner evaluates the
trained nets. Training resumes from ``<label>.last.pt`` (saved after every epoch); a finished
checkpoint whose configuration matches is reused as is. See :mod:`bench.train.checkpointing` for
the file format and :mod:`bench.train.loop` for the BPTT and DSR epochs.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Collection, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch.utils.data import DataLoader

from bench.build import build_model, config_key, model_kwargs
from bench.data import DataBundle, dataset_kind, load_data
from bench.models.registry import model_info
from bench.suite import ModelSpec, Suite
from bench.train.checkpointing import checkpoint_paths, load_state, read_meta, save_atomic
from bench.train.config import TrainConfig, TrainPlan, parse_train, train_plan
from bench.train.loop import TrainingError, make_optimizer, make_scheduler, resolve_method, train_epoch

# Settings that do not change what is learned, left out of the configuration key.
_NOT_DEFINING = ("num_workers", "num_threads", "device")


def train_device(name: str) -> torch.device:
    """``auto``: the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads (0 leaves torch's setting), restoring the old count after.

    On a small shared CPU, one thread avoids the spin-waiting of oversubscribed threads (a tiny
    spiking net trained several times faster with 1 thread than with 2 on a busy 2-core machine).
    """
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _mismatch(path: Path) -> TrainingError:
    return TrainingError(f"checkpoint {str(path)!r} was trained with another configuration (model, kwargs, "
                         f"[train] or data). Fix: delete it to train anew, or write to another output folder")


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def train_model(spec: ModelSpec, cfg: TrainConfig, bundle: DataBundle, run_dir: str | Path,
                data_key: dict[str, Any] | None = None, *, console: Console | None = None,
                progress: Progress | None = None) -> tuple[Path, dict[str, Any]]:
    """Train one model (or reuse/resume its checkpoint); returns the final checkpoint and its meta.

    ``data_key`` describes the training data for the configuration key (dataset, root, split, ...).
    """
    console = console or Console(stderr=True)
    info = model_info(spec.name)
    kwargs = model_kwargs(spec.kwargs, info, bundle, cfg.T)
    final, last = checkpoint_paths(run_dir, spec.label)
    defining = {k: v for k, v in cfg.as_dict().items() if k not in _NOT_DEFINING}
    key = config_key({"model": spec.name, "kwargs": kwargs, "train": defining, "data": data_key or {}})

    meta = read_meta(final)
    if meta is not None:
        if meta.get("config_key") != key:
            raise _mismatch(final)
        console.print(f"[green]trained:[/green] {spec.label}: reusing {final}")
        return final, meta
    with torch_threads(cfg.num_threads):
        meta = _fit(spec, cfg, bundle, kwargs, key, final, last, data_key or {}, console, progress)
    return final, meta


def _fit(spec: ModelSpec, cfg: TrainConfig, bundle: DataBundle, kwargs: dict[str, Any], key: str, final: Path,
         last: Path, data_key: dict[str, Any], console: Console, progress: Progress | None) -> dict[str, Any]:
    """Build, (resume,) train and save one model; returns the final checkpoint's meta."""
    device = train_device(cfg.device)
    model, _ = build_model(spec.name, kwargs, seed=cfg.seed)
    model.to(device)
    method = resolve_method(model, cfg.method)

    def loader(epoch: int) -> DataLoader:
        # Shuffling seeded per epoch, so a resumed run sees the same order as an uninterrupted one.
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        return DataLoader(bundle.dataset, batch_size=cfg.batch_size, shuffle=True, generator=gen,
                          num_workers=cfg.num_workers, drop_last=len(bundle.dataset) > cfg.batch_size,  # type: ignore[arg-type]
                          pin_memory=device.type == "cuda")

    steps_per_epoch = len(loader(0))
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, cfg.epochs * steps_per_epoch)
    start_epoch, history = 0, []
    state = load_state(last)
    if state is not None:
        if state.get("meta", {}).get("config_key") != key:
            raise _mismatch(last)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        start_epoch, history = state["meta"]["epoch"], list(state["meta"]["history"])
        console.print(f"[yellow]resuming:[/yellow] {spec.label} after epoch {start_epoch} ({last})")

    meta = {
        "trained_T": cfg.T, "model": spec.name, "label": spec.label, "kwargs": kwargs, "method": method,
        "epochs": cfg.epochs, "config": cfg.as_dict(), "config_key": key, "data": data_key,
        "num_train_samples": len(bundle.dataset),  # type: ignore[arg-type]
    }
    own_progress = progress is None
    progress = progress or training_progress(console)
    task = progress.add_task(f"train {spec.label} ({method}, T={cfg.T})", total=cfg.epochs * steps_per_epoch,
                             completed=start_epoch * steps_per_epoch, epoch=start_epoch, epochs=cfg.epochs,
                             loss=float("nan"), acc=float("nan"))
    with progress if own_progress else contextlib.nullcontext():
        for epoch in range(start_epoch, cfg.epochs):
            progress.update(task, epoch=epoch + 1)

            def on_step(loss: float, acc: float) -> None:
                progress.update(task, advance=1, loss=loss, acc=acc)

            stats = train_epoch(model, loader(epoch), optimizer, scheduler, cfg, method, bundle.kind, device, on_step)
            history.append({"epoch": epoch + 1, "loss": round(stats.loss, 6), "top1": round(stats.top1, 4),
                            "lr": optimizer.param_groups[0]["lr"], "seconds": round(stats.seconds, 3)})
            meta |= {"epoch": epoch + 1, "history": history}
            save_atomic({"model": _cpu_state(model), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(), "meta": meta}, last)
        progress.remove_task(task)
    meta |= {"epoch": cfg.epochs, "history": history,
             "train_loss": history[-1]["loss"] if history else None,
             "train_top1": history[-1]["top1"] if history else None,
             "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    save_atomic({"model": _cpu_state(model), "meta": meta}, final)
    last.unlink(missing_ok=True)  # the final file supersedes it (deleting the final then trains anew)
    console.print(f"[green]trained:[/green] {spec.label} ({method}, T={cfg.T}, {cfg.epochs} epochs): "
                  f"train loss {meta['train_loss']}, train top-1 {meta['train_top1']}% -> {final}")
    return meta


def training_progress(console: Console, show: bool = True) -> Progress:
    """A rich progress bar with the running loss and training accuracy of the current epoch."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}  loss {task.fields[loss]:.4f}  "
                   "acc {task.fields[acc]:.1f}%"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=not show,
    )


def untrainable_reason(suite: Suite) -> str | None:
    """Why ``[train]`` cannot learn from the suite's training data (its kind declares random labels: the
    synthetic dataset), or None. Decided from the declaration, before anything is loaded, so a plan made before
    training (:func:`trained_models`) and the training itself agree. (A missing root is no reason: training
    never falls back to synthetic input, loading it is refused.)"""
    data = train_plan(suite).data_spec(suite.data)
    return None if dataset_kind(data.dataset).labelled else f"dataset {data.dataset!r} has random labels"


def trained_models(suite: Suite, out_dir: str | Path, labels: Collection[str] | None = None) -> tuple[ModelSpec, ...]:
    """The suite's models as :func:`prepare_checkpoints` will return them, worked out without training: each one
    without a checkpoint (labelled ``labels`` when given) gets its final checkpoint path in ``out_dir`` and its
    training T. Unchanged when the suite has no ``[train]`` or its data cannot be learned from."""
    if suite.train is None or untrainable_reason(suite) is not None:
        return suite.models
    plan: TrainPlan = train_plan(suite)
    return tuple(
        dataclasses.replace(m, checkpoint=str(checkpoint_paths(out_dir, m.label)[0]), trained_T=plan.for_model(m.label).T)
        if m.checkpoint is None and (labels is None or m.label in labels) else m
        for m in suite.models
    )


def prepare_checkpoints(suite: Suite, out_dir: str | Path, console: Console | None = None, *,
                        show_progress: bool = True, labels: Collection[str] | None = None) -> Suite:
    """Train the models without a checkpoint (only those labelled ``labels`` when given: the models a
    selection runs); the suite with ``checkpoint``/``trained_T`` filled in, as :func:`trained_models` predicts.

    A suite without ``[train]`` is returned unchanged. When the training data has random labels (the
    synthetic dataset, :func:`untrainable_reason`), nothing can be learned: training is skipped with a note
    and the models stay untrained.
    """
    if suite.train is None:
        return suite
    console = console or Console(stderr=True)
    plan: TrainPlan = train_plan(suite)
    todo = [m for m in suite.models if m.checkpoint is None and (labels is None or m.label in labels)]
    if not todo:
        return suite
    if why := untrainable_reason(suite):
        console.print(f"[yellow]note:[/yellow] training skipped ({why}); the models stay untrained")
        return suite
    data_spec = plan.data_spec(suite.data)
    bundle = load_data(data_spec, plan.default.seed)
    data_key = {"dataset": data_spec.dataset, "root": data_spec.root, "split": data_spec.split,
                "image_size": data_spec.image_size, "max_samples": data_spec.max_samples,
                "options": data_spec.options}
    trained: dict[str, tuple[Path, int]] = {}
    progress = training_progress(console, show_progress)
    with progress:
        for spec in todo:
            cfg = plan.for_model(spec.label)
            path, meta = train_model(spec, cfg, bundle, out_dir, data_key, console=console, progress=progress)
            trained[spec.label] = (path, int(meta["trained_T"]))
    models = tuple(
        dataclasses.replace(m, checkpoint=str(trained[m.label][0]), trained_T=trained[m.label][1])
        if m.label in trained else m
        for m in suite.models
    )
    return dataclasses.replace(suite, models=models)


__all__ = ["TrainConfig", "TrainPlan", "TrainingError", "parse_train", "prepare_checkpoints", "train_model",
           "train_plan", "trained_models", "untrainable_reason"]
