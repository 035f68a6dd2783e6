"""A run folder's guards: one writer at a time, a results file that ends on a whole record, a folder that
can be written, and the settings each part of the run was measured with.

- **Lock**: ``<out>/.lock`` is held with ``fcntl.flock`` (exclusive, non-blocking) for as long as a
  ``bench run`` or ``bench train`` writes the folder, and holds the holder's pid, host and start time
  for the message a second writer gets. The kernel drops the lock when the process ends, however it
  ends (SIGKILL included), so a dead run never blocks the folder. ``flock`` is advisory (it binds
  only bench processes) and, on network file systems, only as good as the file system's support.
  The file stays after the run (removing it would race with a new holder).
- **Torn tail**: :func:`repair_tail` cuts a results file back to its last whole record before a
  resumed run appends, so a record cut by a kill or a full disk never swallows the next one.
- **Settings history**: ``run.json["segments"]`` lists the suite settings each part of the run ran
  with; a resume whose settings differ is refused (:func:`settings_changes` names what changed) unless
  ``--allow-changes`` starts a new segment, and every record carries its ``segment``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

LOCK_FILE = ".lock"
# The longest name the run writes inside its folder (checkpoints/<100-char label>-<hash>.last.pt.tmp, ...).
LONGEST_INNER_PATH = 140


class RunFolderError(ValueError):
    """An output folder that cannot take this run (bad input: exit 2, nothing ran)."""


# ---------------------------------------------------------------- folder checks


def folder_problem(out: Path) -> str | None:
    """Why ``out`` cannot be created or written, or None; creates it when it can."""
    try:
        if len(str(out.resolve())) + LONGEST_INNER_PATH > os.pathconf("/", "PC_PATH_MAX"):
            return f"{out} is too long a path for the files the run writes inside it. Fix: choose a shorter --out"
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the output folder {out}: {exc.strerror or exc}. Fix: choose another --out"
    if not out.is_dir():
        return f"{out} exists and is not a folder. Fix: choose another --out"
    if not os.access(out, os.W_OK | os.X_OK):
        return f"the output folder {out} is not writable. Fix: choose a writable --out"
    return None


# ---------------------------------------------------------------- lock

_HELD: dict[Path, tuple[int, int]] = {}  # resolved folder -> (fd, depth): re-entrant within one process


def holder(out: Path) -> str:
    """Who holds (or last held) the folder's lock, from the lock file."""
    try:
        info = json.loads((out / LOCK_FILE).read_text(encoding="utf-8"))
        return f"pid {info['pid']} on {info['host']}, started {info['started_at']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold ``<out>/.lock`` exclusively for the block; RunFolderError naming the holder when taken.

    Re-entrant within one process (the CLI holds it around the run and its report, the runner inside).
    """
    key = out.resolve()
    if key in _HELD:
        fd, depth = _HELD[key]
        _HELD[key] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _HELD[key]
            _HELD[key] = (fd, depth - 1)
        return
    try:
        fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RunFolderError(f"cannot create {out / LOCK_FILE}: {exc.strerror or exc}. "
                             f"Fix: choose a writable --out") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise RunFolderError(f"{out} is being written by another bench process ({holder(out)}); two writers "
                             f"would mix their records. Fix: wait for it to finish, or choose another --out") from exc
    stamp = {"pid": os.getpid(), "host": platform.node(),
             "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.write(fd, (json.dumps(stamp) + "\n").encode())
    _HELD[key] = (fd, 1)
    try:
        yield
    finally:
        fd, depth = _HELD.pop(key)
        if depth > 1:  # an inner holder still runs (cannot happen with balanced with-blocks)
            _HELD[key] = (fd, depth - 1)
        else:
            os.close(fd)  # closing the descriptor releases the flock


# ---------------------------------------------------------------- torn tail


# ---------------------------------------------------------------- settings history


def suite_settings(suite: Any) -> dict[str, Any]:
    """Everything in a suite that defines its cases' results (what a resume must find unchanged).

    Left out, because they change no result: ``description``, ``case_timeout_s``, ``memory_limit_gib``,
    ``[tolerances]``. ``devices`` is the suite's list as written (``cuda:*``), not what this machine has.
    """
    return json.loads(json.dumps({
        "name": suite.name, "seed": suite.seed, "time_steps": list(suite.time_steps),
        "devices": list(suite.devices), "metrics": list(suite.metrics), "metric_options": suite.metric_options,
        "data": asdict(suite.data), "train": suite.train,
        "models": {m.label: asdict(m) for m in suite.models},
    }, default=str))


def _flat(value: Any, prefix: str) -> dict[str, Any]:
    """``{"models['a'].kwargs.width": 0.25, ...}``: one entry per leaf (lists are leaves)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            name = f"{prefix}[{k!r}]" if prefix == "models" else (f"{prefix}.{k}" if prefix else str(k))
            out |= _flat(v, name)
        return out
    return {prefix: value}


_ABSENT = "(absent)"


def settings_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Each setting that differs, as ``field: old -> new`` (a model added or removed shows as absent)."""
    a, b = _flat(old, ""), _flat(new, "")
    changes = []
    for key in sorted(set(a) | set(b)):
        before, after = a.get(key, _ABSENT), b.get(key, _ABSENT)
        if before != after:
            changes.append(f"{key}: {json.dumps(before) if before is not _ABSENT else before} -> "
                           f"{json.dumps(after) if after is not _ABSENT else after}")
    return changes


def read_run_json(out: Path) -> dict[str, Any]:
    """``run.json`` of a run folder ({} when absent or unreadable: the caller decides what that means)."""
    try:
        data = json.loads((out / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def new_segment(segments: list[dict[str, Any]], settings: dict[str, Any], suite_file: str) -> dict[str, Any]:
    """The entry ``run.json["segments"]`` gets when a run starts with these settings."""
    return {"segment": len(segments), "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "suite_file": suite_file, "settings": settings}
