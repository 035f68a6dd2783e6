"""The counting conventions as Markdown, rendered from the copy each run stores in ``run.json``.

Records carry the id of the conventions that produced their numbers (a declared field named
``convention``); the report prints the stored text of every id its records carry (a run whose records
carry none: the id its run.json stores), so a past run shows the rules it was measured under. A merged
report of runs under different ids prints each, saying which runs used it.
"""

from __future__ import annotations

from typing import Any

from bench.report.declared import Declared
from bench.results import RunData, metric_value

CONVENTION_FIELD = "convention"  # the declared field name by which a record states its conventions id
TITLES = {"input_kinds": "Input kinds", "ops": "Operation counts", "firing": "Firing rates", "energy": "Energy",
          "energy_model": "Energy with data movement"}


def _entry(value: Any) -> str:
    """A rule's text; a table (e.g. one of the ``hardware_profiles``) as ``key = value`` pairs, not a Python repr."""
    if isinstance(value, dict):
        return "; ".join(f"{k} = {v}" for k, v in value.items())
    return str(value)


def conventions_markdown(conventions: dict[str, Any]) -> str:
    """One stored conventions table (``bench.metrics.conventions.conventions_dict()``) as Markdown."""
    lines = [f"## Counting conventions ({conventions.get('id', '?')})", ""]
    for key, rules in conventions.items():
        if key in ("id", "profiles", "hardware_profiles") or not isinstance(rules, dict):
            continue
        lines += [f"### {TITLES.get(key, key.replace('_', ' ').capitalize())}", ""]
        lines += [f"- **{topic}**: {_entry(text)}" for topic, text in rules.items()] + [""]
    profiles = conventions.get("profiles") or {}
    if profiles:
        lines += ["| profile | MAC (pJ) | AC (pJ) | neuron update (pJ) | source |", "|---|---|---|---|---|"]
        for p in profiles.values():
            upd = "not priced" if p.get("neuron_update_pj") is None else f"{p['neuron_update_pj']:g}"
            lines.append(f"| {p.get('name')} | {p.get('mac_pj'):g} | {p.get('ac_pj'):g} | {upd} | "
                         f"{p.get('source')}; {p.get('notes', '')} |")
    hardware = conventions.get("hardware_profiles") or {}
    if hardware:
        lines += ["", "| hardware profile | kind | costs | source |", "|---|---|---|---|"]
        for name, p in hardware.items():
            costs = ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in p.items()
                              if k not in ("name", "kind", "source", "notes"))
            lines.append(f"| {name} | {p.get('kind')} | {costs} | {p.get('source')}; {p.get('notes', '')} |")
    return "\n".join(lines) + "\n"


def carried_ids(run: RunData, declared: Declared) -> list[str]:
    """The conventions ids a run's ok records carry, else the id its run.json stores."""
    carriers = [m for m, f in declared.fields() if f.name == CONVENTION_FIELD]
    ids = [v for r in run.records if r.get("status") == "ok" for m in carriers
           if isinstance(v := metric_value(r, m, CONVENTION_FIELD), str)]
    stored = (declared.conventions.get(run.run_id) or {}).get("id")
    return list(dict.fromkeys(ids)) or ([stored] if stored else [])


def conventions_sections(runs: list[RunData], declared: Declared) -> tuple[list[str], list[str]]:
    """Markdown per conventions id in use (with the runs using it when there are several), and notes."""
    texts = {c.get("id"): c for c in declared.conventions.values()}
    users: dict[str, list[str]] = {}
    for run in runs:
        for cid in carried_ids(run, declared):
            users.setdefault(cid, []).append(run.run_id)
    blocks, notes = [], []
    for cid, run_ids in users.items():
        if cid not in texts:
            notes.append(f"conventions {cid} (runs {', '.join(run_ids)}): their text is not stored with the run")
            continue
        md = conventions_markdown(texts[cid])
        if len(users) > 1:
            head, rest = md.split("\n", 1)
            md = f"{head}\n\nUsed by run(s): {', '.join(run_ids)}.\n{rest}"
        blocks.append(md)
    return blocks, notes
