"""Shared fixtures: suite files written on the fly."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

TINY_SUITE = """
[suite]
name = "tiny"
seed = 0
time_steps = [1, 2]
devices = ["cpu"]
metrics = ["accuracy", "params"]

[data]
dataset = "digits"
split = "test"
max_samples = 40
batch_size = 20

[[models]]
name = "toy_models:tiny_snn"
label = "tiny"
"""


@pytest.fixture(autouse=True)
def no_history(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never append to the history store of the folder they run in (tests of it set their own)."""
    monkeypatch.setenv("BENCH_HISTORY", "off")


@pytest.fixture
def write_suite(tmp_path: Path) -> Callable[[str], Path]:
    """Write TOML text (dedented) to a suite file in a temporary folder and return its path."""

    def write(text: str, name: str = "suite.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def tiny_suite_text() -> str:
    return TINY_SUITE
