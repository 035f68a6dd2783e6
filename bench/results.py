"""Result records: one JSON object per case, appended to ``results.jsonl`` as each case finishes.

Durability: a record counts once its line, newline included, is on disk. Every record is written as
one line and fsync'd before the next case starts. An append that fails (disk full, Ctrl-C inside the
write) truncates the file back to its last whole line and raises :class:`ResultsWriteError`, so the
file never holds half a record. A process killed inside the write (SIGKILL, power loss) can leave a
torn tail: bytes after the last newline. Reading skips it with a :class:`TornTailWarning`;
:func:`repair_tail` (called by ``--resume``) removes it, keeping every whole line, and the case
reruns; the writer refuses to append after a torn tail rather than merge a record into it. Anything
else that is not a record (bad JSON on a whole line, a JSON value that is not an object, a record
without its identifying fields) is corruption: :class:`RunFileError` names the file and the line.
Derived files (``results.csv``, ``env.json``, ``run.json``, the reports and their figures, baselines) are
written whole by :func:`write_file`: to a ``.tmp`` file in the same folder, fsync'd, then moved into place with
``os.replace``; a failed write removes the ``.tmp``, leaves the previous file as it was and raises
:class:`ResultsWriteError` (exit 1).

Reading: :func:`load_run` is the one reader of a run folder (records, ``env.json``, ``run.json`` with the
metric declarations), shared by the report, ``bench compare``, ``bench baseline`` and ``bench history``.
The CSV's columns follow the declarations stored in ``run.json``. This module never imports torch.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.contract import MetricContract

SCHEMA_VERSION = 1
RESULTS_FILE = "results.jsonl"
CSV_FILE = "results.csv"
ENV_FILE = "env.json"
RUN_FILE = "run.json"
TORN_SUFFIX = ".torn"  # repair_tail keeps the bytes it removes in <results file>.torn
# Fields every record has (runner.run_case), checked on reading: resume, reports and compare index them.
REQUIRED_FIELDS: dict[str, type] = {"case_id": str, "config_key": str, "status": str, "T": int}


class RunFileError(ValueError):
    """A run-folder file (results.jsonl, env.json, run.json) that cannot be read: names the file, the line, the fix."""


class ResultsWriteError(RuntimeError):
    """A record or derived file could not be written (disk full, ...); what was on disk before is left whole."""

    def __init__(self, message: str, errno: int | None = None):
        super().__init__(message)
        self.errno = errno


class TornTailWarning(UserWarning):
    """The results file ends with a torn line (a write interrupted by a kill); it is not a record."""


def _jsonable(value: Any) -> Any:
    """Plain JSON values; NaN and infinities become None (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _jsonable(value.item())
    return value


class ResultsWriter:
    """Appends records to a JSONL file, one fsync'd line per record; a failed append leaves the file whole."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, record: dict[str, Any]) -> None:
        """Append one record as one line; RunFileError after a torn tail, ResultsWriteError when the write fails."""
        data = _line(record)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise ResultsWriteError(f"cannot open {self.path} to append the record of case "
                                    f"{record.get('case_id')!r}: {exc.strerror or exc}. Fix: check the folder and "
                                    f"its permissions, then resume with --resume", exc.errno) from exc
        try:
            size = os.fstat(fd).st_size
            whole = _whole_length(fd, size)
            if whole != size:
                raise RunFileError(f"{self.path} ends with {size - whole} bytes of a torn record (no newline): a "
                                   f"record appended now would be merged into it and lost. Fix: resume the run "
                                   f"(bench run SUITE --resume DIR removes the torn tail), or call "
                                   f"bench.results.repair_tail")
            try:
                _write_all(fd, data)
                os.fsync(fd)
            except BaseException as exc:
                restored = _truncate(fd, size)
                if not isinstance(exc, OSError):
                    raise  # Ctrl-C inside the write: the file is whole again, the interrupt goes on
                raise ResultsWriteError(
                    f"could not append the record of case {record.get('case_id')!r} to {self.path}: "
                    f"{exc.strerror or exc}. "
                    + (f"The file was restored to its {size:,} bytes of whole records. " if restored else
                       "The file could not be truncated back: resume repairs its torn tail. ")
                    + "Fix: free space (or fix the folder), then resume with --resume", exc.errno) from exc
        finally:
            os.close(fd)


def _line(record: dict[str, Any]) -> bytes:
    """A record as one UTF-8 JSON line (NaN and infinities as null)."""
    return (json.dumps(_jsonable(record), allow_nan=False, sort_keys=False) + "\n").encode("utf-8")


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a short write is retried; an error raises)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _truncate(fd: int, size: int) -> bool:
    """Cut the file back to ``size`` bytes after a failed append; False when even that fails."""
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    except OSError:
        return False
    return True


def _whole_length(fd: int, size: int, chunk: int = 1 << 16) -> int:
    """Bytes up to and including the last newline (the whole lines); reads backwards from the end."""
    end = size
    while end > 0:
        start = max(0, end - chunk)
        os.lseek(fd, start, os.SEEK_SET)
        block = os.read(fd, end - start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def repair_tail(path: str | Path) -> int:
    """Remove a torn tail (the bytes after the last newline), keeping every whole line; returns bytes removed.

    The removed bytes are appended to ``<path>.torn`` (one line per repair) where that can be written, so
    nothing is silently lost; they are never a record (a record counts once its newline is written).
    """
    path = Path(path)
    if not path.is_file():
        return 0
    fd = os.open(path, os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        whole = _whole_length(fd, size)
        if whole == size:
            return 0
        os.lseek(fd, whole, os.SEEK_SET)
        _keep_fragment(path, os.read(fd, size - whole))
        os.ftruncate(fd, whole)
        os.fsync(fd)
    finally:
        os.close(fd)
    return size - whole


def _keep_fragment(path: Path, fragment: bytes) -> None:
    """Append a torn fragment to ``<path>.torn``; a failure (full disk) is a warning, not a stop."""
    torn = path.with_name(path.name + TORN_SUFFIX)
    try:
        with open(torn, "ab") as f:
            f.write(fragment + b"\n")
    except OSError as exc:
        warnings.warn(f"{path}: the torn tail ({len(fragment)} bytes) could not be kept in {torn}: {exc}",
                      TornTailWarning, stacklevel=3)


def check_record(record: Any, where: str) -> dict[str, Any]:
    """``record`` when it is a JSON object with the fields every record has; RunFileError naming ``where``."""
    if not isinstance(record, dict):
        raise RunFileError(f"{where}: a {type(record).__name__} where a record (a JSON object) belongs. Fix: "
                           f"delete the line (its case reruns on --resume) or restore the file")
    model = record.get("model")
    problems = [f"{key!r} ({kind.__name__})" for key, kind in REQUIRED_FIELDS.items()
                if not isinstance(record.get(key), kind) or isinstance(record.get(key), bool)]
    if not isinstance(model, dict) or not isinstance(model.get("label"), str):
        problems.append("'model.label' (str)")
    if problems:
        raise RunFileError(f"{where}: the record lacks {', '.join(problems)}: not a record bench run wrote. Fix: "
                           f"delete the line (its case reruns on --resume) or restore the file")
    return record


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a results file.

    A torn tail (bytes after the last newline) is skipped with a :class:`TornTailWarning`; any other line
    that is not a record (bad UTF-8 or JSON, not an object, identifying fields missing) raises
    :class:`RunFileError` naming the file and the line. Blank lines are skipped.
    """
    path = Path(path)
    if not path.exists():
        return []
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RunFileError(f"cannot read {path}: {exc.strerror or exc}. Fix: check the path and its permissions") from exc
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    records = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            records.append(_parse_line(line, f"{path}, line {number}"))
    if tail.strip():
        warnings.warn(f"{path}, line {len(lines) + 1}: torn tail: incomplete record ({len(tail)} bytes without a "
                      f"newline) skipped; --resume removes it and reruns its case", TornTailWarning, stacklevel=2)
    return records


def _parse_line(line: bytes, where: str) -> dict[str, Any]:
    """One whole line as a record; RunFileError naming ``where`` when it is not one."""
    try:
        value = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFileError(f"{where}: not a JSON record ({exc}); a whole line cannot be torn by a crash, so the "
                           f"file was altered. Fix: delete or restore the line (its case reruns on --resume)") from exc
    return check_record(value, where)


def flatten_record(record: dict[str, Any]) -> dict[str, Any]:
    """One CSV row: case fields, then every scalar metric as ``metric.field``."""
    model = record.get("model", {})
    row: dict[str, Any] = {
        "run_id": record.get("run_id"),
        "case_id": record.get("case_id"),
        "model": model.get("label"),
        "model_name": model.get("name"),
        "family": model.get("info", {}).get("family"),
        "provenance": model.get("info", {}).get("provenance"),
        "checkpoint": model.get("checkpoint"),
        "T": record.get("T"),
        "trained_T": record.get("trained_T"),
        "device": record.get("device"),
        "device_name": record.get("device_info", {}).get("device_name"),
        "batch_size": record.get("batch_size"),
        "status": record.get("status"),
        "error": (record.get("error") or {}).get("message"),
    }
    for metric, values in (record.get("metrics") or {}).items():
        for key, value in (values or {}).items():
            if value is None or isinstance(value, (int, float, str, bool)):
                row[f"{metric}.{key}"] = value
    return row


def csv_columns(rows: list[dict[str, Any]], contracts: Mapping[str, MetricContract] | None) -> list[str]:
    """Column order: case fields, then each declared metric's fields in declaration order (each
    ``<field>_why`` right after its field), then anything written but not declared, in record order."""
    present: dict[str, None] = {}
    for row in rows:
        present.update(dict.fromkeys(row))
    declared = [f"{m}.{name}" for m, c in (contracts or {}).items() for f in c.fields
                for name in (f.name, f.name + "_why")]
    case = [c for c in present if "." not in c]
    ordered = [c for c in declared if c in present]
    placed = set(case) | set(ordered)
    return case + ordered + [c for c in present if c not in placed]


def records_frame(records: list[dict[str, Any]],
                  contracts: Mapping[str, MetricContract] | None = None) -> pd.DataFrame:
    rows = [flatten_record(r) for r in records]
    return pd.DataFrame(rows, columns=csv_columns(rows, contracts))


def write_csv(records: list[dict[str, Any]], path: str | Path,
              contracts: Mapping[str, MetricContract] | None = None) -> None:
    """Rewrite the CSV from the records (atomic replace, so a crash never leaves half a file). Columns follow
    ``contracts``, by default the declarations in the ``run.json`` beside the CSV."""
    path = Path(path)
    if contracts is None:
        contracts = read_contracts(path.parent / RUN_FILE, _read_json(path.parent / RUN_FILE))
    write_file(path, records_frame(records, contracts).to_csv(index=False))


def write_json(data: dict[str, Any], path: str | Path) -> None:
    write_file(Path(path), json.dumps(_jsonable(data), indent=2, allow_nan=False) + "\n")


def write_file(path: str | Path, data: str | bytes) -> None:
    """Write a whole file atomically (text as UTF-8): reports, figures, the CSV, env.json, run.json, baselines.
    ResultsWriteError (the previous file left whole) when it cannot be written; see :func:`replace_file`."""
    payload = data.encode("utf-8") if isinstance(data, str) else data

    def write(tmp: Path) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, payload)
        finally:
            os.close(fd)

    replace_file(Path(path), write)


def _fsync(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: Path, write: Callable[[Path], object]) -> None:
    """``write`` to ``<path>.tmp`` in the same folder, fsync it, then move it onto ``path`` (``os.replace``) and
    fsync the folder: a reader, a crash or a full disk sees the old file or the new one, never a part. On failure
    the ``.tmp`` is removed, ``path`` is left as it was and an OSError becomes ResultsWriteError (the records in
    results.jsonl are untouched)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
        with contextlib.suppress(OSError):  # the rename on disk too (some file systems refuse a folder fsync)
            _fsync(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ResultsWriteError(f"could not write {path}: {exc.strerror or exc}. The previous {path.name} (if "
                                    f"any) is unchanged and {RESULTS_FILE} keeps every record. Fix: free space, then "
                                    f"`bench report {path.parent}`", exc.errno) from exc
        raise


def rewrite_records(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Replace a results file by ``records`` (resume drops failed cases), atomically: all or nothing."""
    path = Path(path)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            for record in records:
                f.write(_line(record))
            f.flush()
            os.fsync(f.fileno())  # on disk before it replaces the source of truth

    replace_file(path, write)


# ---------------------------------------------------------------- reading a run folder


class RunReadError(FileNotFoundError):
    """A run folder lacks a file a reader needs (a corrupt file is a :class:`RunFileError`)."""


@dataclass
class RunData:
    """One run folder as read back: its records, ``env.json`` and ``run.json`` (empty where absent), and the
    metric declarations stored in run.json (None for a run made before they were stored)."""

    path: Path
    records: list[dict[str, Any]]
    env: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    contracts: dict[str, MetricContract] | None = None

    @property
    def run_id(self) -> str:
        return self.run.get("run_id") or self.path.name


# What a report lacks without each metadata file (for the fix in messages).
_LOSS = {ENV_FILE: "the report's versions and machine details",
         RUN_FILE: "the report's suite settings and notes, and the metric declarations"}


def read_json_object(path: Path, fix: str, error: type[Exception] = RunFileError, what: str = "") -> dict[str, Any]:
    """The JSON object in ``path``; ``error`` naming the file and ``fix`` when it cannot be read, is not JSON
    (truncated, corrupt) or holds another JSON value."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise error(f"cannot read {what}{path}: {exc.strerror or exc}. Fix: check its permissions") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path} is not valid JSON ({exc}): truncated or corrupt. Fix: {fix}") from exc
    if not isinstance(data, dict):
        raise error(f"{path} holds a JSON {type(data).__name__}, not {what or 'an '}object. Fix: {fix}")
    return data


# The shapes of the run.json / env.json values readers use (bench run writes them): a type (or tuple of types),
# [spec] for a list of such values, {key: spec} for an object (``"*"``: any other key). Absent keys are fine.
_TEXT, _NUMBER, _OPT_TEXT = str, (int, float), (str, type(None))
_SHAPES: dict[str, dict[str, Any]] = {
    RUN_FILE: {
        "run_id": str, "suite": str, "suite_file": _OPT_TEXT, "description": _OPT_TEXT, "seed": (int, type(None)),
        "time_steps": [int], "devices": [str], "metrics": [str], "metric_options": {"*": dict},
        "data": {"description": _OPT_TEXT, "fallback_note": _OPT_TEXT}, "notes": [str], "segment": int,
        "segments": [{"settings": (dict, type(None))}],
        "conventions": {"id": str, "profiles": {"*": {"name": _OPT_TEXT, "mac_pj": _NUMBER, "ac_pj": _NUMBER,
                                                       "neuron_update_pj": (int, float, type(None)),
                                                       "source": _OPT_TEXT, "notes": _OPT_TEXT}},
                        "*": (dict, str, type(None))},
    },
    ENV_FILE: {
        "created": _OPT_TEXT, "python": _OPT_TEXT, "hostname": _OPT_TEXT, "packages": {"*": _OPT_TEXT},
        "cpu": {"name": _OPT_TEXT}, "gpus": [dict], "git": (dict, type(None)), "cuda_version": _OPT_TEXT,
    },
}


def _shape_problem(value: Any, spec: Any, where: str) -> str | None:
    """``"<where> must be <kind>, got <value>"`` for the first value not of its spec's shape, else None."""
    if isinstance(spec, list):
        if not isinstance(value, list):
            return f"{where} must be a list, got {value!r:.60}"
        return next((p for i, v in enumerate(value) if (p := _shape_problem(v, spec[0], f"{where}[{i}]"))), None)
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return f"{where} must be an object, got {value!r:.60}"
        for key, v in value.items():
            if (sub := spec.get(key, spec.get("*"))) is not None:
                if problem := _shape_problem(v, sub, f"{where}.{key}" if where else str(key)):
                    return problem
        return None
    kinds = spec if isinstance(spec, tuple) else (spec,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = " or ".join("null" if k is type(None) else {"str": "a string", "int": "an integer", "float": "a number",
                                                             "dict": "an object"}.get(k.__name__, k.__name__)
                            for k in kinds)
        return f"{where} must be {names}, got {value!r:.60}"
    return None


def _read_json(path: Path) -> dict[str, Any]:
    """A run's JSON object file, {} when absent; RunFileError naming the file and the field when unreadable, not
    an object, or holding a value of the wrong type where a reader needs one (``_SHAPES``)."""
    if not path.exists():
        return {}
    fix = (f"restore it from the run, or move it aside (the report then lacks {_LOSS.get(path.name, 'its content')}; "
           f"the results are unaffected)")
    data = read_json_object(path, fix)
    if problem := _shape_problem(data, _SHAPES.get(path.name, {}), ""):
        raise RunFileError(f"{path}: {problem}: not what bench run writes. Fix: {fix}")
    return data


def read_contracts(path: Path, run: Mapping[str, Any]) -> dict[str, MetricContract] | None:
    """``run.json["metric_contracts"]`` (read from ``path``) as declarations, in stored order; None when the
    run has none; RunFileError naming the metric when one is malformed."""
    stored = run.get("metric_contracts")
    if stored is None:
        return None
    if not isinstance(stored, dict):
        raise RunFileError(f"{path}: metric_contracts must be an object, got {type(stored).__name__}")
    out = {}
    for name, d in stored.items():
        try:
            out[name] = MetricContract.from_dict(d)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RunFileError(f"{path}: metric_contracts.{name} is not a metric declaration ({exc}); "
                               "bench run writes it, restore the file or run the suite again") from exc
    return out


def load_run(path: str | Path) -> RunData:
    """A run folder's records and metadata; RunReadError naming what is missing, RunFileError what is corrupt."""
    path = Path(path)
    if not (path / RESULTS_FILE).exists():
        raise RunReadError(f"{path} has no {RESULTS_FILE}: not a run folder (bench run writes one)")
    run = _read_json(path / RUN_FILE)
    return RunData(path=path, records=read_records(path / RESULTS_FILE), env=_read_json(path / ENV_FILE),
                   run=run, contracts=read_contracts(path / RUN_FILE, run))


# ---------------------------------------------------------------- record fields


def metric_value(record: Mapping[str, Any], metric: str, *keys: str) -> Any:
    """``record["metrics"][metric][key][...]`` (nested tables, e.g. ``"energy", "hardware", "loihi", "snn_pj",
    "total"``), or None where any level is absent or not a table."""
    value: Any = record.get("metrics") or {}
    for key in (metric, *keys):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def case_key(record: Mapping[str, Any]) -> str:
    """The case's identity across runs: model label, T, torch device, batch size."""
    return f"{record['model']['label']}|T={record['T']}|{record.get('device')}|bs={record.get('batch_size')}"


def device_name(record: Mapping[str, Any]) -> str:
    """The device model a case ran on ('NVIDIA H100 80GB HBM3', 'AMD EPYC 7763'), else the torch device."""
    return (record.get("device_info") or {}).get("device_name") or str(record.get("device"))


def recorded_cpu_identity(record: Mapping[str, Any]) -> str | None:
    """A CPU case's ``device_info.cpu_identity`` (:func:`bench.devices.cpu_identity`): None for other devices and
    for CPU records made before it was recorded."""
    if str(record.get("device")) != "cpu":
        return None
    return (record.get("device_info") or {}).get("cpu_identity")


def numeric_fields(record: Mapping[str, Any]) -> dict[str, float]:
    """Every finite numeric scalar ``<metric>.<field>`` of a record (booleans excluded)."""
    out = {}
    for metric, values in (record.get("metrics") or {}).items():
        for key, v in (values or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                out[f"{metric}.{key}"] = v
    return out
