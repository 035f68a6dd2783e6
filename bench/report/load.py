"""Reading run folders back: records, environment and run description. Reports read only these."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.results import ENV_FILE, RESULTS_FILE, read_records


@dataclass
class RunData:
    path: Path
    records: list[dict[str, Any]]
    env: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def load_run(path: str | Path) -> RunData:
    """A run folder's records and metadata; raises FileNotFoundError naming what is missing."""
    path = Path(path)
    if not (path / RESULTS_FILE).exists():
        raise FileNotFoundError(f"{path} has no {RESULTS_FILE}: not a run folder (bench run writes one)")
    return RunData(path=path, records=read_records(path / RESULTS_FILE), env=_read_json(path / ENV_FILE),
                   run=_read_json(path / "run.json"))
