"""Checking hand-written input: typed getters that raise :class:`SuiteError` naming the file, the field and
the fix, ``${VAR}`` expansion, and the bounds every suite value is held to.

The lowest layer of the input side (standard library only): ``bench.suite`` (the suite file), the
``[train]`` table (``bench.train.config``) and the datasets (``expand_env`` for ``data.root``) build on it
without importing one another.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from pathlib import Path
from typing import Any

MAX_TIME_STEP = 10_000
# torch.manual_seed takes up to 2**64 - 1, numpy's legacy seeding up to 2**32 - 1: the smaller bound fits both.
MAX_SEED = 2**32 - 1
# Labels name files (checkpoints/<label>.pt) and report rows: short, printable, one line.
MAX_LABEL_CHARS = 100
# Folder names under reports/: a letter, digit or underscore first (so never "." or ".."), then [A-Za-z0-9_.-].
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


class SuiteError(ValueError):
    """A suite that cannot run: names the file, the field and the fix (exit code 2)."""

    def __init__(self, file: str | Path, field: str, problem: str, fix: str):
        self.file = str(file)
        self.field = field
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.file}: {field}: {problem}\n  fix: {fix}")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable, so every rank of a distributed run can raise it
        return (type(self), (self.file, self.field, self.problem, self.fix))


def nearest(word: str, options: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """The closest option to a misspelt ``word``, if any is close."""
    close = difflib.get_close_matches(word, sorted(options), n=1)
    return close[0] if close else None


class Checker:
    """Typed getters over one file's tables that raise SuiteError naming the file and the field."""

    def __init__(self, file: str | Path):
        self.file = Path(file)

    def fail(self, field: str, problem: str, fix: str) -> SuiteError:
        return SuiteError(self.file, field, problem, fix)

    def table(self, value: Any, field: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field, f"expected a table, got {type(value).__name__}", f"write it as [{field}]")
        return value

    def no_unknown(self, table: dict[str, Any], allowed: set[str], field: str) -> None:
        for key in table:
            if key not in allowed:
                close = nearest(key, allowed)
                hint = f"did you mean {close!r}?" if close else f"allowed keys: {', '.join(sorted(allowed))}"
                raise self.fail(f"{field}.{key}" if field else key, "unknown key", hint)

    def string(self, table: dict[str, Any], key: str, field: str, default: Any = ...) -> Any:
        if key not in table:
            if default is ...:
                raise self.fail(f"{field}.{key}", "missing", f"add {key} = \"...\" to [{field}]")
            return default
        value = table[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{field}.{key}", f"expected a non-empty string, got {value!r}", "write a quoted string")
        return value

    def integer(self, table: dict[str, Any], key: str, field: str, default: Any = ..., minimum: int = 0,
                maximum: int | None = None) -> Any:
        if key not in table:
            if default is ...:
                raise self.fail(f"{field}.{key}", "missing", f"add {key} = <integer> to [{field}]")
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{field}.{key}", f"expected an integer, got {value!r}", "write a whole number")
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and <= {maximum}" if maximum is not None else ""
            raise self.fail(f"{field}.{key}", f"{value} is out of range", f"use an integer >= {minimum}{upper}")
        return value

    def positive(self, table: dict[str, Any], key: str, field: str, minimum: float, maximum: float,
                 unit: str) -> float | None:
        """An optional finite number in ``minimum`` .. ``maximum`` (int or float); None when absent."""
        if key not in table:
            return None
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not minimum <= value <= maximum:
            raise self.fail(f"{field}.{key}", f"expected a number of {unit}, got {value!r}",
                            f"write a number between {minimum:g} and {maximum:g}, e.g. 600 or 2.5")
        return float(value)

    def finite(self, value: Any, field: str) -> None:
        """Refuse a NaN or infinite float anywhere in ``value`` (tables and lists at any depth), naming its path:
        a non-finite setting would run and be stored as null (JSON has no NaN)."""
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(field, f"{value!r} is not a finite number", "write a finite value (nan and inf are refused)")
        if isinstance(value, dict):
            for k, v in value.items():
                self.finite(v, f"{field}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.finite(v, f"{field}[{i}]")

    def int_list(self, value: Any, field: str, minimum: int = 1, maximum: int | None = None) -> tuple[int, ...]:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise self.fail(field, "empty list", "list at least one value")
        out = []
        for i, item in enumerate(items):
            if isinstance(item, bool) or not isinstance(item, int):
                raise self.fail(f"{field}[{i}]", f"expected an integer, got {item!r}", "write whole numbers")
            if item < minimum or (maximum is not None and item > maximum):
                upper = f" and <= {maximum}" if maximum is not None else ""
                raise self.fail(f"{field}[{i}]", f"{item} is out of range", f"use integers >= {minimum}{upper}")
            out.append(item)
        if len(set(out)) != len(out):
            raise self.fail(field, f"duplicate values in {out}", "list each value once")
        return tuple(out)

    def str_list(self, value: Any, field: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(field, f"expected a non-empty list of strings, got {value!r}", 'write ["a", "b"]')
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise self.fail(f"{field}[{i}]", f"expected a string, got {item!r}", "quote each entry")
        return tuple(value)

    def seed(self, table: dict[str, Any], key: str, field: str, default: int) -> int:
        """A random seed torch and numpy both accept: 0 .. 2**32 - 1."""
        return self.integer(table, key, field, default=default, maximum=MAX_SEED)

    def label(self, value: str, field: str) -> str:
        """A model label: it names files and report rows, so it is short, printable and on one line."""
        if len(value) > MAX_LABEL_CHARS:
            raise self.fail(field, f"{len(value)} characters is too long for a label (it names checkpoint files)",
                            f"use at most {MAX_LABEL_CHARS} characters")
        if not value.isprintable():
            raise self.fail(field, f"{value!r} holds control characters (newlines, tabs, ...)",
                            "use printable characters only")
        return value


_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str) -> tuple[str | None, list[str]]:
    """Expand ``${VAR}``; returns the path (None if a variable is unset) and the unset names."""
    missing = [m.group(1) for m in _ENV_VAR.finditer(value) if m.group(1) not in os.environ]
    if missing:
        return None, missing
    return _ENV_VAR.sub(lambda m: os.environ[m.group(1)], value), []


# "package.module:attr" (what resolve_import_path imports); labels and free text with spaces never match.
IMPORT_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def import_paths(value: Any, field: str) -> list[tuple[str, str]]:
    """(field, import path) for each string under ``value`` that looks like an import path (fields dotted and
    indexed)."""
    if isinstance(value, str):
        return [(field, value)] if IMPORT_PATH.fullmatch(value) else []
    if isinstance(value, dict):
        return [f for k, v in value.items() for f in import_paths(v, f"{field}.{k}")]
    if isinstance(value, list):
        return [f for i, v in enumerate(value) for f in import_paths(v, f"{field}[{i}]")]
    return []
