"""Loading checkpoints into models (our own and the official codes' formats) and writing them back out.

- Files are read with ``torch.load(weights_only=True)``: no pickled code runs. Besides tensors and plain
  containers, one class is allowed: ``argparse.Namespace``, the ``args`` that torchvision-style training
  scripts (SEW ResNet, Spikeformer) save beside the weights; unpickling it only sets attributes (torch
  >= 2.5; older torch refuses such files). A file needing anything else is refused with that reason.
- The state dict is the top level or the dict under ``model``, ``state_dict``, ``net``, ``model_state`` or
  ``module``; prefixes ``module.`` (DataParallel/DDP) and ``_orig_mod.`` (torch.compile) are stripped.
  Tensors that are never weights are dropped and recorded: thop's profiler counters (``*.total_ops``,
  ``*.total_params``).
- The format (:mod:`bench.checkpoint_formats`) is the suite's ``checkpoint_format`` when given, else
  detected: ``snnbench`` when the keys are the model's own, else the official format whose key signature
  the keys match, else ``snnbench`` when most keys are the model's (its mismatch is then listed). No
  match: an error naming the formats tried and the first foreign keys.
- Loading is strict: every tensor of the model must be there with the shape the format implies, and
  nothing may be left over, else an error lists the missing and unexpected keys, the shape conflicts, and
  the depth/width the checkpoint and the model have. Only a missing BatchNorm ``num_batches_tracked`` is
  filled (with the model's 0; it matters only for ``momentum=None``) and recorded.
- Saved training arguments (``args.T``) give ``trained_T``; ``args.model`` and ``args.connect_f`` must
  name the model's family and connect function.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from bench.checkpoint_formats import FORMATS, OWN, CheckpointFormat, Entry, FormatError, detect, get_format

STATE_KEYS = ("model", "state_dict", "net", "model_state", "module")
STRIP_PREFIXES = ("module.", "_orig_mod.")
# Tensors some tools add to every module that are not weights: (suffix, what, why dropped).
NOT_WEIGHTS = ((".total_ops", "thop profiler counters (*.total_ops)", "added by thop.profile, not model weights"),
               (".total_params", "thop profiler counters (*.total_params)", "added by thop.profile, not model weights"))
ARG_KEYS = ("model", "T", "connect_f", "cnf")  # saved training arguments kept in the metadata


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message names the file and the fix."""


@dataclass(frozen=True)
class LoadedCheckpoint:
    """What the loader did: the checkpoint's metadata, the format, and how its tensors were mapped."""

    meta: dict[str, Any]
    format: str
    detected: bool  # False when the suite's checkpoint_format chose it
    tensors: int  # tensors loaded into the model
    renamed: int  # of which under another name in the file
    reshaped: tuple[str, ...] = ()  # our keys whose layout differs in the file (e.g. a leading 1)
    filled: tuple[str, ...] = ()  # our keys absent from the file and kept at the model's value
    dropped: tuple[dict[str, Any], ...] = ()  # groups of file tensors left out on purpose

    def mapping(self) -> dict[str, Any]:
        """JSON-ready summary for the results record (``record["model"]["checkpoint_mapping"]``)."""
        fmt = FORMATS[self.format]
        return {
            "format": self.format,
            "chosen_by": "detected from the keys" if self.detected else "checkpoint_format",
            "source": fmt.source,
            "tensors": self.tensors,
            "renamed": self.renamed,
            "reshaped": list(self.reshaped),
            "filled": ([{"keys": len(self.filled), "what": "BatchNorm num_batches_tracked", "examples":
                         list(self.filled[:3]), "why": "absent from the file; kept at 0 (used only with momentum=None)"}]
                       if self.filled else []),
            "dropped": [dict(d) for d in self.dropped],
        }


@contextmanager
def _namespace_allowed() -> Iterator[None]:
    """Let ``weights_only`` unpickling build ``argparse.Namespace`` (attribute assignment only)."""
    if hasattr(torch.serialization, "safe_globals"):
        with torch.serialization.safe_globals([argparse.Namespace]):
            yield
    else:  # torch < 2.5: no allow-list; such files are refused as before
        yield


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw object in a checkpoint file, loaded with weights_only=True."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist. Fix: correct models[].checkpoint "
                              "or remove it to evaluate the untrained model")
    try:
        with _namespace_allowed():
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign bytes (IndexError for text files)
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "Weights only load failed" in str(exc):
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds objects other than tensors, plain containers and "
                f"argparse.Namespace, and is only loaded with weights_only=True (no code from files is executed). "
                f"Fix: re-save its state dict with torch.save(model.state_dict(), ...). Detail: {first_line}") from exc
        raise CheckpointError(f"checkpoint {str(path)!r} is truncated or not a PyTorch checkpoint "
                              f"({type(exc).__name__}: {first_line})") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} holds a {type(obj).__name__}, not a state dict")
    return obj


def extract_state_dict(obj: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The state dict inside a checkpoint object, with wrapper prefixes stripped."""
    state = obj
    for key in STATE_KEYS:
        if key in obj and isinstance(obj[key], dict):
            state = obj[key]
            break
    cleaned: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        for prefix in STRIP_PREFIXES:
            while name.startswith(prefix):
                name = name[len(prefix):]
        cleaned[name] = value
    if not cleaned:
        raise CheckpointError(f"no tensors found (looked at the top level and under {', '.join(STATE_KEYS)})")
    return cleaned


def drop_non_weights(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """``state`` without tensors that are never weights, and what was dropped (counted per kind)."""
    dropped = []
    for suffix, what, why in NOT_WEIGHTS:
        keys = [k for k in state if k.endswith(suffix)]
        if keys:
            dropped.append({"keys": len(keys), "what": what, "examples": keys[:3], "why": why})
            state = {k: v for k, v in state.items() if k not in keys}
    return state, dropped


def checkpoint_meta(obj: dict[str, Any]) -> dict[str, Any]:
    """Our trainer's ``meta``; for official files, ``trained_T`` and a few saved training arguments."""
    meta = dict(obj["meta"]) if isinstance(obj.get("meta"), dict) else {}
    args = obj.get("args")
    args = vars(args) if isinstance(args, argparse.Namespace) else args
    if isinstance(args, dict):
        saved = {k: args[k] for k in ARG_KEYS if isinstance(args.get(k), (str, int, float, bool))}
        if saved:
            meta.setdefault("args", saved)
        T = args.get("T")
        if isinstance(T, int) and not isinstance(T, bool) and T > 0:
            meta.setdefault("trained_T", T)
    return meta


def _model_words(model: nn.Module, model_name: str | None) -> str:
    if model_name:
        return f"the model {model_name!r}"
    blocks = getattr(model, "layers", None)
    inner = f" of {type(blocks[0][0]).__name__}s" if isinstance(blocks, nn.Sequential) and len(blocks) else ""
    return f"the model (a {type(model).__name__}{inner})"


def _how(fmt: CheckpointFormat, detected: bool) -> str:
    return f"{fmt.name} ({fmt.title}; {'detected from its keys' if detected else 'set by checkpoint_format'})"


def choose_format(state: dict[str, torch.Tensor], model: nn.Module, path: str | Path,
                  checkpoint_format: str | None = None, model_name: str | None = None) -> tuple[CheckpointFormat, bool]:
    """The checkpoint's format and whether it was detected (not forced); CheckpointError when none fits."""
    if checkpoint_format is not None:
        try:
            fmt, detected = get_format(checkpoint_format), False
        except FormatError as exc:
            raise CheckpointError(f"checkpoint {str(path)!r}: {exc}") from exc
    else:
        keys, own = set(state), set(model.state_dict())
        found = detect(keys)
        if keys == own:
            fmt = OWN
        elif found:
            fmt = found[0]
        elif own and len(keys & own) >= 0.5 * min(len(keys), len(own)):
            fmt = OWN  # our names with a mismatch: listed below
        else:
            foreign = [f"{k} {tuple(state[k].shape)}" for k in state if k not in own]
            tried = ", ".join(FORMATS)
            raise CheckpointError(
                f"checkpoint {str(path)!r} is in no format known for {_model_words(model, model_name)}: its keys are "
                f"neither the model's own names (snnbench) nor match the key signature of any official format "
                f"(tried: {tried})\n  first keys not in the model ({len(foreign)}): {', '.join(foreign[:8])}"
                f"\n  Fix: if it comes from one of those codes, set checkpoint_format = \"<name>\" on its [[models]] "
                f"entry to see what does not match; otherwise save its weights under the model's names")
        detected = True
    if not fmt.applies_to(model):
        raise CheckpointError(
            f"checkpoint {str(path)!r} is in format {_how(fmt, detected)}, which holds {fmt.families} models, but "
            f"{_model_words(model, model_name)} is not one of them. Fix: evaluate it with a model of that family"
            + ("" if not detected else ", or set checkpoint_format if the format was detected wrongly"))
    return fmt, detected


def _listing(title: str, items: list[str]) -> str:
    shown = ", ".join(items[:20]) + (f", ... ({len(items)} in all)" if len(items) > 20 else "")
    return f"\n  {title} ({len(items)}): {shown}" if items else ""


def translate(state: dict[str, torch.Tensor], entries: list[Entry], model: nn.Module, path: str | Path,
              fmt: CheckpointFormat, detected: bool) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The model's state dict from a file's tensors, and the keys filled from the model; strict otherwise."""
    own = model.state_dict()
    expected = {e.theirs: e for e in entries}
    missing = [k for k in expected if k not in state]
    filled = [expected[k].ours for k in missing if k.endswith(".num_batches_tracked")]
    missing = [k for k in missing if not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    want = {k: e.theirs_shape(tuple(own[e.ours].shape)) for k, e in expected.items()}
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {want[k]}"
              for k in expected if k in state and tuple(state[k].shape) != want[k]]
    if missing or unexpected or shapes:
        found_desc, want_desc = fmt.describe({k: tuple(v.shape) for k, v in state.items()}), fmt.describe(want)
        summary = (f"\n  checkpoint: {found_desc}\n  model expects: {want_desc}"
                   if found_desc and want_desc and found_desc != want_desc else "")
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not match the model in format {_how(fmt, detected)}"
            + _listing("missing keys", missing) + _listing("unexpected keys", unexpected)
            + _listing("shape mismatches", shapes) + summary
            + "\n  Fix: build the model with the kwargs it was trained with (depth, width, num_classes, T, ...)"
            + (", or set checkpoint_format if the format was detected wrongly" if detected else ""))
    return {e.ours: e.to_ours(state[e.theirs]) if e.theirs in state else own[e.ours] for e in entries}, filled


def load_checkpoint(model: nn.Module, path: str | Path, checkpoint_format: str | None = None,
                    model_name: str | None = None) -> LoadedCheckpoint:
    """Load a checkpoint of any known format into ``model`` strictly; returns what was done (see the module doc)."""
    obj = read_checkpoint(path)
    try:
        state = extract_state_dict(obj)
    except CheckpointError as exc:
        raise CheckpointError(f"checkpoint {str(path)!r}: {exc}") from exc
    state, dropped = drop_non_weights(state)
    fmt, detected = choose_format(state, model, path, checkpoint_format, model_name)
    meta = checkpoint_meta(obj)
    try:
        entries = fmt.entries(model)
        fmt.check_args(meta.get("args", {}), model)
    except FormatError as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} ({fmt.name}): {exc}") from exc
    translated, filled = translate(state, entries, model, path, fmt, detected)
    model.load_state_dict(translated, strict=True)
    return LoadedCheckpoint(
        meta=meta, format=fmt.name, detected=detected, tensors=len(entries),
        renamed=sum(e.ours != e.theirs for e in entries),
        reshaped=tuple(e.ours for e in entries if e.layout != "same"), filled=tuple(filled), dropped=tuple(dropped))


def load_into(model: nn.Module, path: str | Path, checkpoint_format: str | None = None) -> dict[str, Any]:
    """Load a checkpoint into ``model`` strictly; returns the checkpoint's metadata (e.g. trained_T)."""
    return load_checkpoint(model, path, checkpoint_format).meta


def export_state(model: nn.Module, checkpoint_format: str) -> dict[str, Any]:
    """``model``'s weights as ``checkpoint_format`` names and lays them out, in the container its code reads."""
    fmt = get_format(checkpoint_format)
    if not fmt.applies_to(model):
        raise FormatError(f"format {fmt.name} holds {fmt.families} models, not a {type(model).__name__}")
    own = model.state_dict()
    return fmt.wrap({e.theirs: e.to_theirs(own[e.ours]).detach().clone() for e in fmt.entries(model)})
