"""Reading run folders back: records, environment and run description. Reports read only these.

A file that cannot be read (truncated or corrupt JSON, not a JSON object, a results line that is
not a record) raises :class:`bench.results.RunFileError` naming the file (and line) and the fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.results import ENV_FILE, RESULTS_FILE, RUN_FILE, RunFileError, read_records

# What a damaged metadata file costs the report once it is set aside (the fix in its error).
LOSS = {ENV_FILE: "the report's versions and machine details", RUN_FILE: "the report's suite settings and notes"}


@dataclass
class RunData:
    path: Path
    records: list[dict[str, Any]]
    env: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)


def read_json(path: Path) -> dict[str, Any]:
    """A run's JSON object file, {} when absent; RunFileError naming the file when unreadable or not an object."""
    if not path.exists():
        return {}
    fix = (f"restore it from the run, or move it aside (the report then lacks {LOSS.get(path.name, 'its content')}; "
           f"the results are unaffected)")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise RunFileError(f"cannot read {path}: {exc.strerror or exc}. Fix: check its permissions") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFileError(f"{path} is not valid JSON ({exc}): truncated or corrupt. Fix: {fix}") from exc
    if not isinstance(data, dict):
        raise RunFileError(f"{path} holds a JSON {type(data).__name__}, not an object. Fix: {fix}")
    return data


def load_run(path: str | Path) -> RunData:
    """A run folder's records and metadata; FileNotFoundError naming what is missing, RunFileError what is corrupt."""
    path = Path(path)
    if not (path / RESULTS_FILE).is_file():
        raise FileNotFoundError(f"{path} has no {RESULTS_FILE}: not a run folder (bench run writes one)")
    return RunData(path=path, records=read_records(path / RESULTS_FILE), env=read_json(path / ENV_FILE),
                   run=read_json(path / RUN_FILE))
