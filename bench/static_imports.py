"""Import paths (``package.module:attr``) checked without importing anything (``bench run --dry-run``).

A dry run runs nothing, so it must not import user code either: importing a module runs it (and its
packages' ``__init__``). Here the module is found the way ``import`` would find it, without executing it:
``importlib.util.find_spec`` for the top-level name only (a dotted name would import its parents), then
``importlib.machinery.PathFinder.find_spec`` for each further part in its parent's
``submodule_search_locations``. The module's source file, when it has one, is then parsed with ``ast``
(never executed) to look for the attribute as a definition at module level (``def``, ``class``, an
assignment or an import binding the name, also inside top-level ``if``/``try``/``with``); a dotted
attribute is followed through class bodies. A name made at import time (``globals()``, a module
``__getattr__``, ``from x import *``) or in a compiled module cannot be confirmed this way: it is reported
as not checked without importing, never refused; so is any attribute of a module without source (frozen,
built-in, compiled, a namespace package). Refused (``ImportPathError``): a malformed path, a module or
package that is not found, a source that cannot be read or has a syntax error (the import would fail).
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
from dataclasses import dataclass
from pathlib import Path

IMPORTED = "bound by an import"


class ImportPathError(ValueError):
    """An import path that would not import: ``problem`` says why, ``fix`` what to change."""

    def __init__(self, problem: str, fix: str):
        super().__init__(f"{problem} (fix: {fix})")
        self.problem, self.fix = problem, fix


@dataclass(frozen=True)
class StaticCheck:
    """Where an import path leads, found without importing: the module's file, whether its source defines the
    attribute (``confirmed``) and what was found (``note``)."""

    path: str
    module: str  # the module's file, or what it is when it has none
    confirmed: bool
    note: str

    def describe(self) -> str:
        return f"{self.path}: {self.module}, {self.note}"


def _find_module(module_name: str) -> importlib.machinery.ModuleSpec:
    """The module's spec, found part by part without importing a parent package."""
    parts = module_name.split(".")
    fix = "correct the module path, or install the package in the environment that runs bench"
    try:
        spec = importlib.util.find_spec(parts[0])  # a top-level name imports nothing
    except (ImportError, ValueError) as exc:
        raise ImportPathError(f"cannot find module {parts[0]!r}: {exc}", fix) from exc
    if spec is None:
        raise ImportPathError(f"no module named {parts[0]!r} on the Python path", fix)
    for i in range(1, len(parts)):
        parent = ".".join(parts[:i])
        locations = spec.submodule_search_locations
        if locations is None:
            raise ImportPathError(f"{parent!r} is a module, not a package: it has no submodule "
                                  f"{parts[i]!r}", fix)
        found = importlib.machinery.PathFinder.find_spec(".".join(parts[:i + 1]), list(locations))
        if found is None:
            raise ImportPathError(f"package {parent!r} has no module {parts[i]!r}", fix)
        spec = found
    return spec


def _bound_names(body: list[ast.stmt]) -> dict[str, tuple[int, str]]:
    """Names a block binds at its own level (not inside functions): name -> (line, how)."""
    out: dict[str, tuple[int, str]] = {}

    def bind(name: str, node: ast.AST, how: str) -> None:
        out.setdefault(name, (getattr(node, "lineno", 0), how))

    def targets(node: ast.AST, stmt: ast.stmt) -> None:
        if isinstance(node, ast.Name):
            bind(node.id, stmt, "assigned")
        elif isinstance(node, ast.Tuple | ast.List):
            for item in node.elts:
                targets(item, stmt)

    for stmt in body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            bind(stmt.name, stmt, "a function defined")
        elif isinstance(stmt, ast.ClassDef):
            bind(stmt.name, stmt, "a class defined")
        elif isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                targets(target, stmt)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets(stmt.target, stmt)
        elif isinstance(stmt, ast.Import | ast.ImportFrom):
            for alias in stmt.names:
                if alias.name != "*":
                    bind(alias.asname or alias.name.split(".")[0], stmt, IMPORTED)
        elif isinstance(stmt, ast.If | ast.For | ast.While | ast.With | ast.AsyncWith | ast.Try):
            blocks = [stmt.body, getattr(stmt, "orelse", []), getattr(stmt, "finalbody", [])]
            blocks += [h.body for h in getattr(stmt, "handlers", [])]
            for block in blocks:
                for name, found in _bound_names(block).items():
                    out.setdefault(name, found)
    return out


def _class_body(body: list[ast.stmt], name: str) -> list[ast.stmt] | None:
    """The body of the class ``name`` defined at this level, if it is one."""
    for stmt in body:
        if isinstance(stmt, ast.ClassDef) and stmt.name == name:
            return stmt.body
    return None


def check_import_path(path: str) -> StaticCheck:
    """Check ``package.module:attr`` without importing (see the module docstring); ImportPathError when it
    would not import."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ImportPathError(f"import path {path!r} must look like 'package.module:attr'",
                              "write the module, a colon and the name in it, e.g. 'mypkg.models:my_net'")
    spec = _find_module(module_name)
    origin = spec.origin if spec.has_location else None
    if origin is None or not Path(origin).is_file():  # frozen, built-in or a namespace package: no source
        kind = spec.origin or "namespace package"
        return StaticCheck(path, f"{module_name} ({kind})", False,
                           f"{attr!r} not checked without importing (no source to read)")
    module_file = Path(origin)
    if module_file.suffix != ".py":
        return StaticCheck(path, str(module_file), False,
                           f"{attr!r} not checked without importing (a compiled module)")
    try:
        tree = ast.parse(importlib.util.decode_source(module_file.read_bytes()), str(module_file))
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportPathError(f"cannot read {str(module_file)!r}: {exc}", "check the file") from exc
    except SyntaxError as exc:
        raise ImportPathError(f"{str(module_file)!r} has a syntax error at line {exc.lineno}: {exc.msg}",
                              "fix the module's source") from exc
    body = tree.body
    *outer, last = attr.split(".")
    for depth, part in enumerate(outer):  # a dotted attribute: through class bodies
        line, how = _bound_names(body).get(part, (0, ""))
        inner = _class_body(body, part)
        if inner is None:
            rest = ".".join([*outer[depth + 1:], last])
            found = f"{part!r} is {how} at line {line}, and {rest!r} in it" if how else f"{part!r}"
            return StaticCheck(path, str(module_file), False, f"{found} not checked without importing")
        body = inner
    line, how = _bound_names(body).get(last, (0, ""))
    if how == IMPORTED:
        return StaticCheck(path, str(module_file), False, f"{attr!r} is {how} at line {line}, whose target is not "
                           "checked without importing")
    if how:
        return StaticCheck(path, str(module_file), True, f"{attr!r} is {how} at line {line}")
    star = next((s.lineno for s in body if isinstance(s, ast.ImportFrom) and s.names[0].name == "*"), None)
    how = f"may come from the 'import *' at line {star}" if star else "is not among the definitions in its source " \
        "(made at import time, or a typo)"
    return StaticCheck(path, str(module_file), False, f"{attr!r} {how}: not checked without importing")
