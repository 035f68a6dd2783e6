"""``bench run --dry-run`` checks import paths without importing them (bench.static_imports): user modules that
leave a marker file when imported (module and package ``__init__``) leave none, a path that does not resolve is
exit 2 naming the suite file, the field and the fix, and a real load still imports as before."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import pytest

import bench.estimate as estimate
from bench.cli import main
from bench.static_imports import ImportPathError, check_import_path
from bench.suite import load_suite

_NAMES = itertools.count()


@pytest.fixture(autouse=True)
def quick_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Speed measurements of a few milliseconds (their figures are not what these tests check)."""
    monkeypatch.setattr(estimate, "BENCH_S", 0.003)
    monkeypatch.setattr(estimate, "_SPEEDS", {})


@pytest.fixture
def user_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """A package ``<name>`` on sys.path (a fresh name per test, so no earlier import is cached) whose
    ``__init__`` and module ``models`` each write a marker file when imported; ``models`` defines ``tiny``
    (a factory, which writes a third marker when called) and re-exports ``nn`` by import."""
    name = f"dry_user_pkg_{next(_NAMES)}"
    root = tmp_path / "code"
    package = root / name
    package.mkdir(parents=True)
    markers = tmp_path / "markers"
    markers.mkdir()
    (package / "__init__.py").write_text(f"open({str(markers / 'init')!r}, 'w').close()\n")
    (package / "models.py").write_text(textwrap.dedent(f"""
        open({str(markers / 'module')!r}, 'w').close()
        import torch.nn as nn


        def tiny(num_classes: int = 10, in_channels: int = 1, image_size: int = 8) -> nn.Module:
            open({str(markers / 'built')!r}, 'w').close()
            return nn.Sequential(nn.Flatten(2), nn.LazyLinear(num_classes))


        class Neuron(nn.Module):
            pass
    """))
    monkeypatch.syspath_prepend(str(root))
    return name, markers


def _suite(write_suite, model: str, neuron: str | None = None) -> Path:
    firing = "" if neuron is None else f'\n[metrics.firing]\nneuron_types = ["{neuron}"]\n'
    metrics = '["accuracy", "params", "firing"]' if neuron else '["accuracy", "params"]'
    return write_suite(f"""
        [suite]
        name = "dryimports"
        time_steps = [1]
        metrics = {metrics}

        [data]
        dataset = "digits"
        max_samples = 16
        batch_size = 8
        {firing}
        [[models]]
        name = "{model}"
        label = "user"
        """)


def test_dry_run_imports_no_user_module_and_says_so(write_suite, user_package, capsys):
    name, markers = user_package
    path = _suite(write_suite, f"{name}.models:tiny", f"{name}.models:Neuron")
    assert main(["run", str(path), "--dry-run"]) == 0
    assert sorted(p.name for p in markers.iterdir()) == []  # neither __init__ nor the module ran, nor the factory
    err = " ".join(capsys.readouterr().err.split())
    assert "import paths checked without importing (none of their code ran" in err
    assert f"models[0].name = {name}.models:tiny: " in err and "'tiny' is a function defined at line 6" in err
    assert f"metrics.firing.neuron_types[0] = {name}.models:Neuron" in err and "'Neuron' is a class defined" in err


def test_real_load_still_imports(write_suite, user_package):
    name, markers = user_package
    load_suite(_suite(write_suite, f"{name}.models:tiny"))  # what `bench run` without --dry-run does first
    assert {p.name for p in markers.iterdir()} == {"init", "module"}


@pytest.mark.parametrize(("model", "problem"), [
    ("{name}.absent:tiny", "package '{name}' has no module 'absent'"),
    ("no_such_top_level_pkg_x.models:tiny", "no module named 'no_such_top_level_pkg_x' on the Python path"),
    ("{name}.models.deeper:tiny", "'{name}.models' is a module, not a package"),
])
def test_dry_run_refuses_a_model_path_that_does_not_resolve(write_suite, user_package, capsys, model, problem):
    name, markers = user_package
    path = _suite(write_suite, model.format(name=name))
    assert main(["run", str(path), "--dry-run"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{path}: models[0].name: import path" in err and problem.format(name=name) in err
    assert "(checked without importing)" in err and "fix: use a name from `bench models`" in err
    assert not any(markers.iterdir())  # the parent package's __init__ did not run either


def test_dry_run_refuses_a_metric_option_path_that_does_not_resolve(write_suite, user_package, capsys):
    name, markers = user_package
    path = _suite(write_suite, "sew_resnet18", f"{name}.nope:Neuron")
    assert main(["run", str(path), "--dry-run"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{path}: metrics.firing.neuron_types[0]: package '{name}' has no module 'nope'" in err
    assert "fix: correct the module path" in err
    assert not any(markers.iterdir())


def test_an_attribute_not_found_in_the_source_is_said_not_refused(write_suite, user_package, capsys):
    name, markers = user_package
    path = _suite(write_suite, f"{name}.models:tinyy")
    assert main(["run", str(path), "--dry-run"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "'tinyy' is not among the definitions in its source (made at import time, or a typo): not checked " \
           "without importing" in err
    assert not any(markers.iterdir())


def test_static_check_of_definitions(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "static_mod_a.py").write_text(textwrap.dedent("""
        from os import path as joined
        from os.path import *
        if True:
            FACTORY = 1
        class Outer:
            def build(self):
                pass
    """))
    (tmp_path / "static_mod_b.py").write_text("def broken(:\n")
    check = check_import_path
    assert check("static_mod_a:FACTORY").confirmed and "assigned at line 5" in check("static_mod_a:FACTORY").note
    assert check("static_mod_a:Outer.build").note == "'Outer.build' is a function defined at line 7"
    imported = check("static_mod_a:joined")
    assert not imported.confirmed and "bound by an import at line 2" in imported.note
    starred = check("static_mod_a:other")
    assert not starred.confirmed and "may come from the 'import *' at line 3" in starred.note
    with pytest.raises(ImportPathError, match="syntax error at line 1"):
        check("static_mod_b:broken")
    with pytest.raises(ImportPathError, match="must look like 'package.module:attr'"):
        check("static_mod_a")
