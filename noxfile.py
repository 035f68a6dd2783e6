"""Sessions: tests, lint, bench (performance figures), regression (against the committed baseline).

Sessions reuse the current interpreter's environment (``venv_backend="none"``): the project's
dependencies include a multi-GB torch build, which is installed once by the README's set-up
command rather than per session.
"""

from __future__ import annotations

import sys

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "none"


@nox.session
def tests(session: nox.Session) -> None:
    """The unit and integration tests (the README's test command)."""
    session.run(sys.executable, "-m", "pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on the package, tests, benchmarks and this file."""
    session.run(sys.executable, "-m", "ruff", "check", "bench", "tests", "benchmarks", "noxfile.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Performance figures (benchmarks, not timed tests): zoo speed vs spikingjelly, metric overhead,
    harness overhead. Each script prints its figures and exits non-zero when a target is missed; every
    script runs whatever the ones before it gave (a missed target never hides the other figures), and the
    session fails at the end, naming the scripts that missed."""
    import pathlib
    import subprocess

    missed = []
    for script in sorted(pathlib.Path("benchmarks").glob("*.py")):
        session.log(f"{script}")
        if subprocess.run([sys.executable, str(script), *session.posargs], check=False).returncode != 0:
            missed.append(script.name)
    if missed:
        session.error(f"targets missed (or the script failed): {', '.join(missed)}")


@nox.session
def regression(session: nox.Session) -> None:
    """The deterministic CPU suites against their committed baselines: suites/regression.toml (tiny nets
    trained on digits: accuracy and parameters) and suites/regression_counts.toml (one untrained,
    BN-calibrated net of every family: firing and exact op counts). Fails on a regression;
    ``nox -s regression -- --update`` refreshes both baselines from fresh runs instead."""
    import tempfile

    cli = (sys.executable, "-m", "bench.cli")
    for name in ("regression", "regression_counts"):
        out = tempfile.mkdtemp(prefix=f"snnbench-{name}-")
        session.run(*cli, "run", f"suites/{name}.toml", "--out", out, "-q")
        if "--update" in session.posargs:
            session.run(*cli, "baseline", "save", out, name)
        else:
            session.run(*cli, "compare", name, out)


@nox.session
def gpu(session: nox.Session) -> None:
    """The GPU check (README "GPU check"): ``pytest -m gpu``, suites/gpu_t4.toml with every case ok, a table of
    figures and a JSON summary, all done by scripts/gpu_check.py, which also runs where nox is absent. Without
    CUDA it runs its tiny CPU variant. Extra arguments go to the script (``nox -s gpu -- --out DIR``)."""
    session.run(sys.executable, "scripts/gpu_check.py", *session.posargs)
