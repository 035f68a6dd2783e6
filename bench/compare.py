"""Baselines and regression verdicts: ``bench baseline save`` and ``bench compare``.

A baseline is a small JSON file (``suites/baselines/<name>.json``) holding, per case (model label,
T, device, batch size), the values of the tracked metric fields of one run, the case's configuration, and
the tolerances it was made with. ``compare`` checks a new run against it field by field and calls a change a
**regression** when it moves beyond the field's tolerance in the bad direction, and a case that failed (in the
baseline or not) or is missing from the run is one; any regression makes ``bench compare`` exit 1.

**Only like with like.** A case is compared only when its configuration is the baseline's (:func:`case_config`:
the suite's name, the model entry (name, kwargs, checkpoint, checkpoint format, trained T), the data settings,
the seed, the ``[train]`` table of a model trained by the run, and the options of the metrics both measured).
The record's ``config_key`` hashes nearly the same settings, but also the path of a checkpoint ``[train]`` wrote
inside each run's own folder (so two runs of a training suite never share it) and the list of metrics; the
settings are read instead from ``run.json["segments"]`` (the segment each record names). A case whose
configuration differs is **not comparable**, listed with what differs (``model.kwargs.width: 0.125 -> 0.25``),
never a regression; a failed case is still a regression. ``bench compare`` / ``bench diff`` exit 3 when cases are
not comparable and nothing regressed. Where one side stores no settings (a run made before ``run.json`` kept
them) the ``config_key`` values decide. A baseline saved before configurations were stored (formats 1 and 2)
still loads: its cases are matched by label, T, device and batch size only, and the comparison says so.

Tolerances are per field (``<metric>.<field>``, shell-style patterns allowed). The defaults are the
metric plug-ins' declarations (``Field.tolerance``, read from the run's ``run.json``); the suite's
``[tolerances]`` table overrides them (first matching pattern wins, suite entries first). Only fields
matched by a tolerance are tracked. A baseline stores the table it was made with, so a compare works
without the suite; at compare time the suite's ``[tolerances]`` (``--suite``, else the run's suite file
when it exists) override the stored table. A tolerance allows ``max(abs, rel x |baseline|)``; ``better``
says which direction is good (``higher``, ``lower``, or ``none``: any change beyond the tolerance is a
regression); ``same_device = true`` compares the field only on the same device: the same model name and,
on a CPU, the same identity (vendor, family, model, stepping and the instruction set torch's kernels use: a
VM may name every generation alike; see :func:`other_device`), for wall-clock and hardware-counter figures
and trained accuracy; ``skip = true`` stops tracking a field. Suite example::

    [tolerances]
    "accuracy.top1" = { abs = 3.0, better = "higher" }
    "latency.*_ms" = { rel = 0.3, better = "lower", same_device = true }
    "memory.*" = { skip = true }

**Published gaps.** A case evaluated from an official checkpoint on the dataset and T of a published number
(:mod:`bench.published`) carries the derived value ``published_gap.top1`` = ours - published (points). It is
checked only when a tolerance matches that key (``"published_gap.top1" = { abs = 0.5 }`` in the suite's
``[tolerances]``; no default, no baseline value): a regression when |gap| exceeds ``max(abs, rel x
|published|)``. ``bench compare`` checks the run's cases, ``bench diff`` the second run's.

**Diff.** ``bench diff RUN_A RUN_B`` (:func:`diff_runs`) compares two run folders side by side with the same
tolerances as ``compare``: the declared defaults of both runs (B's first) under the suite's ``[tolerances]``
(``--suite``, else B's suite file when it exists). A is the reference: a case failed in B, or missing from
it, is a regression; a case failed in A and ok in B is reported as fixed.

This module reads runs through :mod:`bench.results` and never imports torch, the suite loader or the report.
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.contract import MetricContract, Tolerance, ToleranceError, parse_tolerance, parse_tolerances
from bench.published import GAP_KEY, published_gaps
from bench.results import (
    RunData,
    case_key,
    device_name,
    load_run,
    numeric_fields,
    read_json_object,
    recorded_cpu_identity,
    write_file,
)
from bench.rundir import settings_changes

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

BASELINE_FORMAT = "snnbench-baseline-3"
# format 1 stored no tolerances, format 2 no configurations (their cases are matched by label, T, device, batch)
FORMATS_READ = ("snnbench-baseline-1", "snnbench-baseline-2", BASELINE_FORMAT)
NOT_COMPARABLE = "not comparable"
BASELINE_DIR = Path("suites") / "baselines"

Tolerances = dict[str, Tolerance]


class BaselineError(ValueError):
    """A baseline (or the tolerances for one) that cannot be written or read: names the file and the fix."""


def declared_tolerances(contracts: Mapping[str, MetricContract] | None) -> Tolerances:
    """``<metric>.<field>`` -> the declared default tolerance, for every field that declares one."""
    return {f"{m}.{f.name}": f.tolerance for m, c in (contracts or {}).items() for f in c.fields
            if f.tolerance is not None}


def resolve(name: str, *tables: Mapping[str, Tolerance]) -> Tolerance | None:
    """The tolerance of field ``name``: the first matching pattern of the first table that has one;
    None (not tracked) when nothing matches or the match says ``skip``."""
    for table in tables:
        for pattern, tol in table.items():
            if fnmatch.fnmatchcase(name, pattern):
                return None if tol.skip else tol
    return None


def layered(*tables: Mapping[str, Tolerance]) -> Tolerances:
    """One table that resolves like ``tables`` in order: earlier tables' patterns come first."""
    out: Tolerances = {}
    for table in tables:
        for pattern, tol in table.items():
            out.setdefault(pattern, tol)
    return out


def tracked_values(record: dict[str, Any], tolerances: Mapping[str, Tolerance]) -> dict[str, float]:
    return {k: v for k, v in numeric_fields(record).items() if resolve(k, tolerances) is not None}


def suite_tolerances(suite_file: str | Path | None) -> tuple[Tolerances, str]:
    """A suite file's ``[tolerances]`` table (read alone: no suite validation, no torch) and a description;
    both empty when the file is absent or has no (or an empty) ``[tolerances]`` table."""
    if not suite_file or not Path(suite_file).is_file():
        return {}, ""
    try:
        with open(suite_file, "rb") as f:
            table = tomllib.load(f).get("tolerances", {})
    except tomllib.TOMLDecodeError as exc:
        raise BaselineError(f"{suite_file}: not valid TOML ({exc}); fix the file or pass another --suite") from exc
    if not isinstance(table, dict):
        raise BaselineError(f'{suite_file}: tolerances must be a table (fix: [tolerances] "accuracy.top1" = ...)')
    try:  # a suite without entries is not a source of tolerances: the description names only what applied
        return parse_tolerances(table), f"[tolerances] of {suite_file}" if table else ""
    except ToleranceError as exc:
        raise BaselineError(f"{suite_file}: tolerances.{exc}") from exc


# ---------------------------------------------------------------- configurations


def case_config(record: Mapping[str, Any], run_json: Mapping[str, Any]) -> dict[str, Any] | None:
    """The settings that define a case's result (see the module docstring), from the ``run.json`` segment the
    record names; None when the run stores none (made before ``run.json`` kept settings). The case's own T,
    device and batch size are its key; the lists of T and batch sizes, ``data.num_workers`` and the model's
    display label change no result and are left out; ``metrics`` is kept only to compare the options of the
    metrics both sides measured."""
    segments, index = run_json.get("segments"), record.get("segment")
    if not isinstance(segments, list) or not isinstance(index, int) or not 0 <= index < len(segments):
        return None
    settings = segments[index].get("settings") if isinstance(segments[index], dict) else None
    models = settings.get("models") if isinstance(settings, dict) else None
    model = models.get(record["model"]["label"]) if isinstance(models, dict) else None
    if not isinstance(model, dict):
        return None
    data = settings.get("data") if isinstance(settings.get("data"), dict) else {}
    entry = {k: v for k, v in model.items() if k not in ("label", "time_steps")}
    return {"suite": record.get("suite", settings.get("name")), "model": entry, "seed": settings.get("seed"),
            "data": {k: v for k, v in data.items() if k not in ("batch_sizes", "num_workers")},
            "train": settings.get("train") if entry.get("checkpoint") is None else None,
            "metric_options": settings.get("metric_options") or {}, "metrics": settings.get("metrics") or []}


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two :func:`case_config` values (``model.kwargs.width: 0.125 -> 0.25``); empty when
    the cases are comparable. Options of a metric only one side measured do not count."""
    both = set(old.get("metrics") or ()) & set(new.get("metrics") or ())

    def compared(config: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in config.items() if k != "metrics"}
        out["metric_options"] = {m: o for m, o in (config.get("metric_options") or {}).items() if m in both}
        return out

    return settings_changes(compared(old), compared(new))


def _config_problem(case: Mapping[str, Any], config: dict[str, Any] | None, record: Mapping[str, Any]
                    ) -> list[str] | None:
    """What makes a baseline case and a record not comparable ([] when comparable); None when the baseline
    stores nothing to check (formats 1 and 2)."""
    stored, key = case.get("config"), case.get("config_key")
    if isinstance(stored, dict) and config is not None:
        return config_changes(stored, config)
    if key is None:
        return None
    if key == record.get("config_key"):
        return []
    return [f"config_key: {key} -> {record.get('config_key')} (a run.json holds no settings to say what differs)"]


# ---------------------------------------------------------------- baselines


def _tolerances_to_json(table: Tolerances) -> dict[str, dict[str, Any]]:
    return {pattern: asdict(tol) for pattern, tol in table.items()}


def _tolerances_from_json(path: Path, stored: Any) -> Tolerances:
    if not isinstance(stored, dict):
        raise BaselineError(f"{path}: 'tolerances' must be a table; save the baseline again")
    try:
        return {pattern: parse_tolerance(pattern, value) for pattern, value in stored.items()}
    except ToleranceError as exc:
        raise BaselineError(f"{path}: tolerances.{exc}") from exc


def make_baseline(run_dir: str | Path, name: str, suite_file: str | Path | None = None) -> dict[str, Any]:
    """A baseline from a run folder: the run's declared tolerances under the suite's ``[tolerances]``
    (``suite_file``, else the run's own suite file when it exists); refuses a run with failed cases (it
    would bless a failure)."""
    run = load_run(run_dir)
    failed = [r["case_id"] for r in run.records if r.get("status") != "ok"]
    if failed:
        raise BaselineError(f"{run_dir}: {len(failed)} failed case(s) ({failed[0]}, ...): fix them before saving "
                            "a baseline")
    if not run.records:
        raise BaselineError(f"{run_dir}: no records")
    if run.contracts is None:
        raise BaselineError(f"{run_dir}: run.json has no metric declarations (made by an older version), so the "
                            "default tolerances are unknown: run the suite again with this version")
    suite, suite_source = suite_tolerances(suite_file or run.run.get("suite_file"))
    tolerances = layered(suite, declared_tolerances(run.contracts))
    cases = {}
    for r in run.records:
        cases[case_key(r)] = {"model": r["model"]["label"], "T": r["T"], "device": r.get("device"),
                              "device_name": device_name(r), "cpu_identity": recorded_cpu_identity(r),
                              "batch_size": r.get("batch_size"),
                              "config_key": r["config_key"], "config": case_config(r, run.run),
                              "values": dict(sorted(tracked_values(r, tolerances).items()))}
    git = run.env.get("git") or {}
    return {
        "format": BASELINE_FORMAT,
        "name": name,
        "suite": run.run.get("suite"),
        "suite_file": run.run.get("suite_file"),
        "run_id": run.run_id,
        "run_created": run.env.get("created"),
        "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git.get("commit"),
        "machine": run.env.get("hostname"),
        "versions": run.env.get("packages"),
        "tolerances_source": " + ".join(s for s in (suite_source, "the metrics' declared defaults") if s),
        "tolerances": _tolerances_to_json(tolerances),
        "cases": cases,
    }


def baseline_path(name_or_path: str | Path, directory: str | Path = BASELINE_DIR) -> Path:
    """A baseline file from a path, or from a name under ``suites/baselines``."""
    p = Path(name_or_path)
    if p.suffix == ".json" or p.exists():
        return p
    return Path(directory) / f"{p.name}.json"


def save_baseline(baseline: dict[str, Any], path: str | Path) -> Path:
    """Write a baseline file whole (bench.results.write_file); ResultsWriteError when it cannot be written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BaselineError(f"cannot create {path.parent} for the baseline: {exc.strerror or exc}. Fix: name "
                            f"another --file") from exc
    write_file(path, json.dumps(baseline, indent=1, sort_keys=False) + "\n")
    return path


def load_baseline(path: str | Path) -> dict[str, Any]:
    """A baseline file, checked: a JSON object of this format whose ``cases`` each hold numeric ``values``.

    FileNotFoundError when absent; BaselineError naming the file, the case and the fix otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no baseline at {path}: save one with `bench baseline save RUN_DIR NAME`")
    fix = "save it again with `bench baseline save RUN_DIR NAME` (or restore it from version control)"
    data = read_json_object(path, fix, BaselineError, what="a baseline ")
    if data.get("format") not in FORMATS_READ:
        raise BaselineError(f"{path}: not a baseline file (format {data.get('format')!r}; expected one of "
                            f"{FORMATS_READ}). Fix: {fix}")
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
    for name in ("device_name", "cpu_identity"):
        if case.get(name) is not None and not isinstance(case[name], str):
            raise BaselineError(f"{path}: case {key!r}: {name} {case[name]!r} is not a string. Fix: {fix}")
    for name, kind, words in (("config", dict, "an object"), ("config_key", str, "a string")):
        if case.get(name) is not None and not isinstance(case[name], kind):
            raise BaselineError(f"{path}: case {key!r}: {name} {case[name]!r:.60} is not {words}. Fix: {fix}")


def baseline_tolerances(baseline: dict[str, Any], path: str | Path, run: RunData) -> tuple[Tolerances, str]:
    """The tolerances a baseline was made with; for a format-1 baseline (none stored), the run's declared
    defaults."""
    if "tolerances" in baseline:
        return _tolerances_from_json(Path(path), baseline["tolerances"]), "the baseline's stored tolerances"
    if run.contracts is None:
        raise BaselineError(f"{path} stores no tolerances and {run.path}/run.json no metric declarations: "
                            "save the baseline again with this version")
    return declared_tolerances(run.contracts), "the run's declared defaults (the baseline stores no tolerances)"


# ---------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Change:
    case: str
    field: str
    baseline: float | None
    current: float | None
    tolerance: str
    verdict: str  # ok | regression | improved | skipped | new | fixed | not comparable
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


def other_device(record: dict[str, Any], case: dict[str, Any]) -> str:
    """Why a ``same_device`` field of ``record`` is not compared with the baseline ``case`` ("" when it is): another
    device model, or on a CPU another identity (:func:`bench.devices.cpu_identity`: a VM may give every
    generation of a vendor's CPUs one model name, while their kernels round differently), or an identity one
    side does not record (made before it was recorded: save the baseline, or run the suite, again)."""
    name, base_name = device_name(record), case.get("device_name")
    if name != base_name:
        return f"other device: {name} vs {base_name}"
    if str(record.get("device")) != "cpu":
        return ""  # a GPU's model name is its identity here (the same name: the baseline's ran on one too)
    ident, base_ident = recorded_cpu_identity(record), case.get("cpu_identity")
    if base_ident is None:
        return f"CPU not identified: the baseline records only the model name {name!r} (save it again)"
    if ident is None:
        return f"CPU not identified: this run records only the model name {name!r} (run the suite again)"
    return "" if ident == base_ident else f"other CPU: {ident} vs {base_ident}"


def _field_change(key: str, name: str, base: float, record: dict[str, Any], case: dict[str, Any],
                  tol: Tolerance) -> Change:
    cur = numeric_fields(record).get(name)
    if tol.same_device and (other := other_device(record, case)):
        return Change(key, name, base, cur, tol.describe(), "skipped", other)
    if cur is None:
        metric, fld = name.split(".", 1)
        why = ((record.get("metrics") or {}).get(metric) or {}).get(f"{fld}_why")
        return Change(key, name, base, None, tol.describe(), "regression", "not measured" + (f": {why}" if why else ""))
    return Change(key, name, base, cur, tol.describe(), _verdict(base, cur, tol))


def gap_change(key: str, ours: float, published: float, source: str, tol: Tolerance) -> Change:
    """The published-gap check of one case: a regression when |ours - published| exceeds the tolerance."""
    allowed = tol.allowed(published)
    verdict = "regression" if abs(ours - published) > allowed else "ok"
    return Change(key, GAP_KEY, published, ours, f"|gap| ≤ {allowed:g}", verdict, f"published: {source}")


def published_changes(records: list[dict[str, Any]], tolerances: Mapping[str, Tolerance]) -> list[Change]:
    """The published-gap checks of the ok cases that reproduce a published number, when a tolerance matches
    ``published_gap.top1`` (the baseline column holds the published value, the current column ours)."""
    tol = resolve(GAP_KEY, tolerances)
    if tol is None:
        return []
    changes = []
    for r in records:
        for _, (ours, published, entry) in published_gaps(r).items():
            changes.append(gap_change(case_key(r), ours, published, entry.cite(), tol))
    return changes


def compare_records(baseline: dict[str, Any], records: list[dict[str, Any]],
                    tolerances: Mapping[str, Tolerance], reference: str = "the baseline",
                    configs: Mapping[str, dict[str, Any] | None] | None = None) -> list[Change]:
    """Every tracked field of every baseline case against the run's records, then the published gaps.

    ``configs``: each record's :func:`case_config` by case key (None: the records' ``config_key`` alone); a case
    whose configuration differs from the baseline's is ``not comparable`` (a failed one is still a regression).
    """
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
        if differs := _config_problem(case, (configs or {}).get(key), record):
            changes.append(Change(key, "(case)", None, None, "-", NOT_COMPARABLE, "; ".join(differs)))
            continue
        if case.get("failed"):
            changes.append(Change(key, "(case)", None, None, "-", "fixed", f"failed in {reference}: {case['failed']}"))
            continue
        for name, base in case["values"].items():
            tol = resolve(name, tolerances)
            if tol is not None:
                changes.append(_field_change(key, name, base, record, case, tol))
    for key in sorted(current.keys() - baseline["cases"].keys()):
        record = current[key]
        if record.get("status") != "ok":  # a failure is a regression, new case or not
            message = (record.get("error") or {}).get("message", "?")
            changes.append(Change(key, "(case)", None, None, "-", "regression", f"case failed: {message}"))
        else:
            changes.append(Change(key, "(case)", None, None, "-", "new", f"not in {reference}"))
    return changes + published_changes(records, tolerances)


def compare_run(baseline_file: str | Path, run_dir: str | Path,
                suite_file: str | Path | None = None) -> tuple[list[Change], str, list[str]]:
    """Compare a run folder with a baseline file: the baseline's tolerances under the suite's
    ``[tolerances]`` (``suite_file``, else the run's suite file when it exists). Returns the changes, a
    description of where the tolerances came from, and notes (a baseline storing no configurations)."""
    baseline = load_baseline(baseline_file)
    run = load_run(run_dir)
    stored, stored_source = baseline_tolerances(baseline, baseline_file, run)
    suite, suite_source = suite_tolerances(suite_file or run.run.get("suite_file"))
    source = " over ".join(s for s in (suite_source, stored_source) if s)
    unchecked = [k for k, c in baseline["cases"].items() if c.get("config") is None and c.get("config_key") is None]
    notes = [f"{baseline_file} stores no configurations (saved before format {BASELINE_FORMAT}): its "
             f"{len(unchecked)} case(s) are matched by model label, T, device and batch size only, whatever their "
             f"settings. Fix: save it again with `bench baseline save RUN_DIR NAME`"] if unchecked else []
    configs = {case_key(r): case_config(r, run.run) for r in run.records}
    return compare_records(baseline, run.records, layered(suite, stored), configs=configs), source, notes


def regressions(changes: list[Change]) -> list[Change]:
    return [c for c in changes if c.verdict == "regression"]


def not_comparable(changes: list[Change]) -> list[Change]:
    """The cases left out because their configuration differs (see :func:`case_config`)."""
    return [c for c in changes if c.verdict == NOT_COMPARABLE]


def reference_cases(run: RunData, tolerances: Mapping[str, Tolerance]) -> dict[str, dict[str, Any]]:
    """A run's cases as a baseline's ``cases`` (tracked values; a failed case holds its error message)."""
    cases = {}
    for r in run.records:
        failed = "" if r.get("status") == "ok" else str((r.get("error") or {}).get("message", "?"))
        cases[case_key(r)] = {"device_name": device_name(r), "cpu_identity": recorded_cpu_identity(r),
                              "failed": failed, "config_key": r["config_key"],
                              "config": case_config(r, run.run),
                              "values": {} if failed else tracked_values(r, tolerances)}
    return cases


def diff_runs(run_a: str | Path, run_b: str | Path,
              suite_file: str | Path | None = None) -> tuple[list[Change], str, list[str]]:
    """Run B against run A, field by field (see the module docstring); the changes, where the tolerances
    came from, and notes (none yet: both runs' configurations are read from their run.json)."""
    a, b = load_run(run_a), load_run(run_b)
    if a.contracts is None and b.contracts is None:
        raise BaselineError(f"neither {run_a}/run.json nor {run_b}/run.json holds metric declarations (made by an "
                            "older version), so the default tolerances are unknown: run a suite again")
    suite, suite_source = suite_tolerances(suite_file or b.run.get("suite_file"))
    declared = layered(declared_tolerances(b.contracts), declared_tolerances(a.contracts))
    tolerances = layered(suite, declared)
    source = " over ".join(s for s in (suite_source, "the metrics' declared defaults") if s)
    baseline = {"cases": reference_cases(a, tolerances)}
    configs = {case_key(r): case_config(r, b.run) for r in b.records}
    return compare_records(baseline, b.records, tolerances, reference=f"run A ({a.run_id})", configs=configs), \
        source, []
