"""Baselines and regression verdicts: ``bench baseline save`` and ``bench compare``.

A baseline is a small JSON file (``suites/baselines/<name>.json``) holding, per case (model label,
T, device, batch size), the values of the tracked metric fields of one run. ``compare`` checks a
new run against it field by field and calls a change a **regression** when it moves beyond the
field's tolerance in the bad direction; any regression makes ``bench compare`` exit 1.

Tolerances are per field (``<metric>.<field>``, shell-style patterns allowed), from
:data:`DEFAULT_TOLERANCES` overridden by the suite's ``[tolerances]`` table; the first matching
pattern wins, suite entries before defaults. Only fields matched by a tolerance are tracked. A
tolerance allows ``max(abs, rel x |baseline|)``; ``better`` says which direction is good
(``higher``, ``lower``, or ``none``: any change beyond the tolerance is a regression);
``same_device = true`` compares the field only when the device model is the same (wall-clock and
hardware-counter figures); ``skip = true`` stops tracking a field. Suite example::

    [tolerances]
    "accuracy.top1" = { abs = 3.0, better = "higher" }
    "latency.*_ms" = { rel = 0.3, better = "lower", same_device = true }
    "memory.*" = { skip = true }
"""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.contract import EXACT, Tolerance, ToleranceError, parse_tolerances  # noqa: F401  (re-exported)

BASELINE_FORMAT = "snnbench-baseline-1"
BASELINE_DIR = Path("suites") / "baselines"



# Defaults, first match wins. Counts on a fixed input and seed are deterministic: exact. Accuracy of
# quickly trained nets moves a little with library versions: a few points. Wall clock: wide, same
# device model only.
DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "accuracy.top1": Tolerance(abs=2.0, better="higher"),
    "accuracy.top5": Tolerance(abs=2.0, better="higher"),
    "params.params": EXACT,
    "params.params_trainable": EXACT,
    "ops.acs": EXACT,
    "ops.macs": EXACT,
    "ops.sops": EXACT,
    "ops.dense_macs": EXACT,
    "firing.mean_rate": Tolerance(abs=1e-9),
    "energy.energy_mj": Tolerance(rel=1e-9),
    "energy.ann_energy_mj": Tolerance(rel=1e-9),
    "latency.latency_p50_ms": Tolerance(rel=0.5, better="lower", same_device=True),
    "latency.throughput_sps": Tolerance(rel=0.5, better="higher", same_device=True),
    "memory.gpu_peak_allocated_mib": Tolerance(rel=0.1, better="lower", same_device=True),
    "measured_energy.gpu_energy_net_j_per_sample": Tolerance(rel=0.3, better="lower", same_device=True),
}


class BaselineError(ValueError):
    """A baseline that cannot be written or read."""


def resolve(name: str, suite_tolerances: dict[str, Tolerance] | None = None) -> Tolerance | None:
    """The tolerance of field ``name`` (first matching pattern, suite before defaults); None: not tracked."""
    for table in (suite_tolerances or {}, DEFAULT_TOLERANCES):
        for pattern, tol in table.items():
            if fnmatch.fnmatchcase(name, pattern):
                return None if tol.skip else tol
    return None


# ---------------------------------------------------------------- records -> tracked values


def case_key(record: dict[str, Any]) -> str:
    return f"{record['model']['label']}|T={record['T']}|{record.get('device')}|bs={record.get('batch_size')}"


def device_name(record: dict[str, Any]) -> str:
    return (record.get("device_info") or {}).get("device_name") or str(record.get("device"))


def numeric_fields(record: dict[str, Any]) -> dict[str, float]:
    """Every finite numeric scalar ``<metric>.<field>`` of a record (booleans excluded)."""
    out = {}
    for metric, values in (record.get("metrics") or {}).items():
        for key, v in (values or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                out[f"{metric}.{key}"] = v
    return out


def tracked_values(record: dict[str, Any], tolerances: dict[str, Tolerance] | None = None) -> dict[str, float]:
    return {k: v for k, v in numeric_fields(record).items() if resolve(k, tolerances) is not None}


def suite_tolerances(suite_file: str | Path | None) -> tuple[dict[str, Tolerance], str]:
    """The suite's tolerances and where they came from (defaults only when the file is absent)."""
    if suite_file and Path(suite_file).is_file():
        from bench.suite import load_suite

        return load_suite(suite_file).tolerances, f"defaults + [tolerances] of {suite_file}"
    return {}, "defaults (suite file not found)" if suite_file else "defaults"


# ---------------------------------------------------------------- baselines


def make_baseline(run_dir: str | Path, name: str, tolerances: dict[str, Tolerance] | None = None) -> dict[str, Any]:
    """A baseline from a run folder; refuses a run with failed cases (it would bless a failure)."""
    from bench.report.load import load_run

    run = load_run(run_dir)
    failed = [r["case_id"] for r in run.records if r.get("status") != "ok"]
    if failed:
        raise BaselineError(f"{run_dir}: {len(failed)} failed case(s) ({failed[0]}, ...): fix them before saving "
                            "a baseline")
    if not run.records:
        raise BaselineError(f"{run_dir}: no records")
    cases = {}
    for r in run.records:
        cases[case_key(r)] = {"model": r["model"]["label"], "T": r["T"], "device": r.get("device"),
                              "device_name": device_name(r), "batch_size": r.get("batch_size"),
                              "values": dict(sorted(tracked_values(r, tolerances).items()))}
    git = run.env.get("git") or {}
    return {
        "format": BASELINE_FORMAT,
        "name": name,
        "suite": run.run.get("suite"),
        "suite_file": run.run.get("suite_file"),
        "run_id": run.run.get("run_id") or run.path.name,
        "run_created": run.env.get("created"),
        "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git.get("commit"),
        "machine": run.env.get("hostname"),
        "versions": run.env.get("packages"),
        "cases": cases,
    }


def baseline_path(name_or_path: str | Path, directory: str | Path = BASELINE_DIR) -> Path:
    """A baseline file from a path, or from a name under ``suites/baselines``."""
    p = Path(name_or_path)
    if p.suffix == ".json" or p.exists():
        return p
    return Path(directory) / f"{p.name}.json"


def save_baseline(baseline: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(baseline, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return path


def load_baseline(path: str | Path) -> dict[str, Any]:
    """A baseline file, checked: a JSON object of this format whose ``cases`` each hold numeric ``values``.

    FileNotFoundError when absent; BaselineError naming the file, the case and the fix otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no baseline at {path}: save one with `bench baseline save RUN_DIR NAME`")
    fix = "save it again with `bench baseline save RUN_DIR NAME` (or restore it from version control)"
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise BaselineError(f"cannot read baseline {path}: {exc.strerror or exc}. Fix: check its permissions") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"{path} is not valid JSON ({exc}): truncated or corrupt. Fix: {fix}") from exc
    if not isinstance(data, dict):
        raise BaselineError(f"{path} holds a JSON {type(data).__name__}, not a baseline object. Fix: {fix}")
    if data.get("format") != BASELINE_FORMAT:
        raise BaselineError(f"{path}: not a {BASELINE_FORMAT} file (format {data.get('format')!r}). Fix: {fix}")
    cases = data.get("cases")
    if not isinstance(cases, dict) or not cases:
        raise BaselineError(f"{path}: baseline has no cases ('cases' is {_kind(cases)}), so nothing would be "
                            f"compared. Fix: {fix}")
    for key, case in cases.items():
        _check_case(path, key, case, fix)
    return data


def _kind(value: Any) -> str:
    """'missing', 'an empty dict', 'a list': what a field holds, for messages."""
    if value is None:
        return "missing"
    return f"{'an empty' if not value else 'a'} {type(value).__name__}"


def _check_case(path: Path, key: str, case: Any, fix: str) -> None:
    """A baseline case must be an object whose ``values`` map field names to finite numbers."""
    values = case.get("values") if isinstance(case, dict) else None
    if not isinstance(values, dict):
        raise BaselineError(f"{path}: case {key!r} has no 'values' object. Fix: {fix}")
    for name, value in values.items():
        if (not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value)
                or "." not in name):
            raise BaselineError(f"{path}: case {key!r}, field {name!r}: expected '<metric>.<field>' with a number, "
                                f"got {value!r}. Fix: {fix}")
    device_name = case.get("device_name")
    if device_name is not None and not isinstance(device_name, str):
        raise BaselineError(f"{path}: case {key!r}: device_name {device_name!r} is not a string. Fix: {fix}")


# ---------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Change:
    case: str
    field: str
    baseline: float | None
    current: float | None
    tolerance: str
    verdict: str  # ok | regression | improved | skipped | new
    note: str = ""

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline

    def cells(self) -> tuple[str, ...]:
        """Display strings: case, field, baseline, current, change, tolerance, verdict, note."""
        change = "-" if self.delta is None else ("+" if self.delta > 0 else "") + _num(self.delta)
        return (self.case, self.field, _num(self.baseline), _num(self.current), change, self.tolerance,
                self.verdict, self.note)

    def summary(self) -> str:
        """One line naming the case, the field and the move (for logs and CI output)."""
        moved = "" if self.delta is None else f"{_num(self.baseline)} -> {_num(self.current)} (allowed: {self.tolerance})"
        return f"{self.case} {self.field}: " + "; ".join(x for x in (moved, self.note) if x)


def _num(v: float | None) -> str:
    """Counts in full (a one-op change must show), other values to 6 significant digits."""
    if v is None:
        return "-"
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.6g}"


def _verdict(base: float, cur: float, tol: Tolerance) -> str:
    delta, allowed = cur - base, tol.allowed(base)
    if tol.better == "higher":
        return "regression" if delta < -allowed else "improved" if delta > allowed else "ok"
    if tol.better == "lower":
        return "regression" if delta > allowed else "improved" if delta < -allowed else "ok"
    return "regression" if abs(delta) > allowed else "ok"


def compare_records(baseline: dict[str, Any], records: list[dict[str, Any]],
                    tolerances: dict[str, Tolerance] | None = None) -> list[Change]:
    """Every tracked field of every baseline case against the run's records."""
    current = {case_key(r): r for r in records}
    changes: list[Change] = []
    for key, case in baseline["cases"].items():
        record = current.get(key)
        if record is None:
            changes.append(Change(key, "(case)", None, None, "-", "regression", "case missing from the run"))
            continue
        if record.get("status") != "ok":
            message = (record.get("error") or {}).get("message", "?")
            changes.append(Change(key, "(case)", None, None, "-", "regression", f"case failed: {message}"))
            continue
        values = numeric_fields(record)
        for name, base in case["values"].items():
            tol = resolve(name, tolerances)
            if tol is None:
                continue
            cur = values.get(name)
            if tol.same_device and device_name(record) != case.get("device_name"):
                changes.append(Change(key, name, base, cur, tol.describe(), "skipped",
                                      f"other device: {device_name(record)} vs {case.get('device_name')}"))
            elif cur is None:
                metric, fld = name.split(".", 1)
                why = ((record.get("metrics") or {}).get(metric) or {}).get(f"{fld}_why")
                changes.append(Change(key, name, base, None, tol.describe(), "regression",
                                      "not measured" + (f": {why}" if why else "")))
            else:
                changes.append(Change(key, name, base, cur, tol.describe(), _verdict(base, cur, tol)))
    for key in current.keys() - baseline["cases"].keys():
        changes.append(Change(key, "(case)", None, None, "-", "new", "not in the baseline"))
    return changes


def compare_run(baseline_file: str | Path, run_dir: str | Path,
                suite_file: str | Path | None = None) -> tuple[list[Change], str]:
    """Compare a run folder with a baseline file; tolerances from ``suite_file`` (default: the run's suite)."""
    from bench.report.load import load_run

    baseline = load_baseline(baseline_file)
    run = load_run(run_dir)
    tolerances, source = suite_tolerances(suite_file or run.run.get("suite_file"))
    return compare_records(baseline, run.records, tolerances), source


def regressions(changes: list[Change]) -> list[Change]:
    return [c for c in changes if c.verdict == "regression"]


def changes_as_dicts(changes: list[Change]) -> list[dict[str, Any]]:
    return [asdict(c) | {"delta": c.delta} for c in changes]
