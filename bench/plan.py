"""The cases one ``bench run`` measures, worked out once and handed to the estimate and the runner.

:func:`plan_cases` expands the suite (model x T x device x batch size, each model at its own T), keeps the
command-line selection, gives every model ``[train]`` will train the checkpoint and ``trained_T`` training
will give it (:func:`bench.train.trained_models`), and, under ``--resume``, reads which cases the folder
already holds. A case is done when an ok record of the folder carries its ``config_key`` (:func:`done_keys`):
one rule for the listing, the estimate and the runner, which applies it again to the folder once it holds
its lock (the file is the source of truth) and to the models training actually produced.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench.suite import Case, Selection, Suite, expand_cases, select_cases


def case_config_key(suite: Suite, case: Case) -> str:
    """A hash of everything that defines a case's result (model entry, T, device, batch size, data,
    metrics and their options, seed): a resumed run keeps the records whose key a case still has."""
    from bench.build import config_key

    return config_key({
        "model": asdict(case.model), "T": case.T, "device": case.device, "batch_size": case.batch_size,
        "data": asdict(suite.data), "metrics": list(suite.metrics), "options": suite.metric_options,
        "seed": suite.seed,
    })


def done_keys(records: list[dict[str, Any]]) -> frozenset[str]:
    """The ``config_key`` of each ok record: the cases a resumed run does not measure again."""
    return frozenset(r["config_key"] for r in records if r.get("status") == "ok")


def _folder_done(out: Path) -> frozenset[str]:
    """:func:`done_keys` of the folder's results; empty when it has none or they cannot be read (the run then
    says why, under its lock)."""
    from bench.results import RESULTS_FILE, RunFileError, read_records

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a torn last line: the runner repairs it and says so
            return done_keys(read_records(out / RESULTS_FILE))
    except (OSError, RunFileError):
        return frozenset()


@dataclass(frozen=True)
class CasePlan:
    """A run's cases as they will be measured.

    ``suite``: the suite as loaded (devices as this rank sees them); ``out``: the run folder; ``cases``: the
    selected cases in run order, models that ``[train]`` trains first carrying their predicted checkpoint;
    ``done``: config keys the folder already holds (``--resume``); ``notes``: devices skipped; ``training``:
    labels of the models ``[train]`` trains before any case runs.
    """

    suite: Suite
    out: Path
    cases: tuple[Case, ...]
    done: frozenset[str] = frozenset()
    notes: tuple[str, ...] = ()
    training: tuple[str, ...] = ()
    resume: bool = False

    def key(self, case: Case) -> str:
        return case_config_key(self.suite, case)

    @property
    def todo(self) -> list[Case]:
        """The cases still to measure, in run order."""
        return [c for c in self.cases if self.key(c) not in self.done]

    def with_models(self, suite: Suite) -> CasePlan:
        """The plan with each case's model as ``suite`` (the suite training returned) has it: what the runner
        measures, whether or not training went as predicted."""
        models = {m.label: m for m in suite.models}
        return replace(self, cases=tuple(replace(c, model=models[c.model.label]) for c in self.cases))


def plan_cases(suite: Suite, out: str | Path, *, selection: Selection | None = None,
               resume: bool = False) -> CasePlan:
    """The run's :class:`CasePlan`; SuiteError naming the flag when ``selection`` selects nothing.

    Under torchrun, call it after :func:`bench.distributed.init` (CUDA devices become the rank's GPU)."""
    from bench import distributed

    suite = replace(suite, devices=distributed.rank_devices(suite.devices))
    out = Path(out)
    cases, notes = expand_cases(suite)
    if selection:
        cases = select_cases(suite, cases, selection)
    training: tuple[str, ...] = ()
    if suite.train is not None:
        from bench.train import trained_models, untrainable_reason

        labels = dict.fromkeys(c.model.label for c in cases)
        untrained = any(m.checkpoint is None and m.label in labels for m in suite.models)
        if untrained and (why := untrainable_reason(suite)):
            notes.insert(0, f"training skipped ({why}); the models stay untrained")
        predicted = {m.label: m for m in trained_models(suite, out, labels)}
        training = tuple(m.label for m in suite.models if predicted[m.label] != m)
        cases = [replace(c, model=predicted[c.model.label]) for c in cases]
    done = _folder_done(out) if resume else frozenset()
    return CasePlan(suite, out, tuple(cases), done, tuple(notes), training, resume)


__all__ = ["CasePlan", "case_config_key", "done_keys", "plan_cases"]
