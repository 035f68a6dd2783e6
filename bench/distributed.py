"""Data-parallel evaluation with torch.distributed: ``torchrun --nproc_per_node=N -m bench.cli run SUITE``.

A process started by torchrun (``WORLD_SIZE`` > 1 with ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` in its environment) joins a process group; every rank runs every case in the same
order, each on its own shard of the evaluation data. Without those variables (or with
``WORLD_SIZE=1``) nothing here does anything and the run is the single-process one.

Conventions (also in the README, "Multi-GPU and multi-node"):

- Sharding: the evaluation data is cut into the batches of the single-process run, and each rank
  gets a contiguous run of whole batches (:func:`shard_samples`; the batch counts of two ranks
  differ by at most one). Every batch holds exactly the samples it holds in one process, so each
  batch's outputs are the same computation; the union of the shards is the dataset, with no
  padding and no duplicates. A suite whose data has fewer batches than there are ranks is refused.
- Summing: ``accuracy`` all-reduces its int64 counts (top-1, top-5, samples per T), so its figures
  equal the single-process ones exactly, given the same per-batch outputs (same device kind and
  thread count).
- Metrics on the sample batch (ops, firing, latency, memory, energy): rank 0's first batch is the
  single-process first batch, and rank 0's values are recorded as they are. They are per-rank
  figures: latency and energy are measured while the other ranks run the same case (on a CPU,
  on the same cores: measure latency in a single process).
- Devices: in distributed mode every CUDA entry of ``suite.devices`` (``cuda``, ``cuda:N``,
  ``cuda:*``) becomes the rank's own GPU, ``cuda:{LOCAL_RANK}``, so ``cuda:*`` gives one case per
  rank instead of one per GPU; ``cpu`` stays ``cpu`` on every rank. Records carry rank 0's device.
- Who writes: rank 0 alone writes results, CSV, env.json, run.json, the report and the history,
  and prints progress and the summary. Its run id and output folder are broadcast to the others.
  Every record and env.json carry ``world_size``.
- Training (``[train]``): rank 0 trains (or reuses) the checkpoints while the other ranks wait on a
  separate group whose time-out is :data:`TRAIN_WAIT`; the checkpoints are then read by every
  rank, so they (and the dataset and the suite) must be at the same path on every node.
- Backend: gloo for every collective, on CPU tensors, GPUs or not. The only traffic is a few int64
  counts per case and small pickled objects, which gloo handles exactly on any machine; NCCL
  would add the rule that each collective's tensors live on the rank's GPU and gain nothing here.
  The process group's time-out is ``BENCH_DIST_TIMEOUT_S`` seconds (default 1800).
- Failures: a case that fails on any rank is recorded as failed, with the failing rank's error.
  Every collective first exchanges a step tag (:func:`_in_step`): a rank that left a case early
  meets the others at the end-of-case step, they see the tags differ and raise
  :class:`RanksOutOfStepError` inside the case, and all meet again at the end-of-case step
  (:func:`agree_case`), so one rank's exception never deadlocks the others. A crashed rank
  (segfault, OOM kill) is seen by torchrun, which stops the other ranks and exits non-zero;
  a rank stuck in a collective otherwise raises after the process group's time-out.
  ``suite.case_timeout_s`` fails the case on the rank that ran past it (a rank waiting inside a
  collective notices only when the collective returns).
  ``--isolate`` (one process per case) cannot take part in collectives and is refused.
- Exit codes: rank 0's is the run's. The other ranks exit 0 once the cases are done, since
  torchrun stops every rank as soon as one exits non-zero and rank 0 still has the report to
  write; bad input raises on every rank (exit 2).
"""

from __future__ import annotations

import os
import platform
import zlib
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

DEFAULT_TIMEOUT_S = 1800.0
# How long ranks wait for rank 0 to train the suite's models before evaluation.
TRAIN_WAIT = timedelta(days=7)

_T = TypeVar("_T")
_STATE: dict[str, Any] = {}


class DistributedError(ValueError):
    """A run that cannot be distributed as asked (bad input: nothing was measured)."""


class RanksOutOfStepError(RuntimeError):
    """The ranks reached different collectives: another rank left the current case."""


def launched() -> bool:
    """Whether this process was started as one of several ranks (torchrun sets ``WORLD_SIZE``)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(timeout_s: float | None = None) -> bool:
    """Join the process group when launched by torchrun; returns whether the run is distributed.

    Idempotent. Uses gloo (see the module docstring) and pins the rank's GPU as the current CUDA
    device, so code that syncs "the current device" syncs the rank's own.
    """
    if not launched():
        return False
    if dist.is_initialized():
        return True
    if not dist.is_available():
        raise DistributedError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    seconds = timeout_s or float(os.environ.get("BENCH_DIST_TIMEOUT_S", DEFAULT_TIMEOUT_S))
    dist.init_process_group("gloo", timeout=timedelta(seconds=seconds))
    _STATE["wait_group"] = dist.new_group(backend="gloo", timeout=TRAIN_WAIT)
    if torch.cuda.is_available() and local_rank() < torch.cuda.device_count():
        torch.cuda.set_device(local_rank())
    return True


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """The rank's index on its node (torchrun's ``LOCAL_RANK``): it picks the GPU."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def shutdown() -> None:
    """Leave the process group (no collective: ranks may leave at different times)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _STATE.clear()


# ---------------------------------------------------------------- sharding


def shard_indices(n: int, rank: int, world: int) -> range:
    """Rank ``rank``'s contiguous share of ``range(n)``: the first ``n % world`` ranks get one more."""
    if world < 1 or not 0 <= rank < world or n < 0:
        raise ValueError(f"no shard {rank} of {n} items over {world} ranks")
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (rank < extra))


def shard_samples(n: int, batch_size: int, rank: int, world: int) -> range:
    """The samples of rank ``rank``: a contiguous run of the single-process batches of ``batch_size``."""
    n_batches = -(-n // batch_size)
    batches = shard_indices(n_batches, rank, world)
    return range(min(batches.start * batch_size, n), min(batches.stop * batch_size, n))


def check_shardable(n: int, batch_sizes: Sequence[int]) -> None:
    """Every rank needs at least one batch (metrics read each rank's first batch)."""
    world = world_size()
    for bs in batch_sizes:
        n_batches = -(-n // bs)
        if n_batches < world:
            raise DistributedError(f"{n} samples in batches of {bs} make {n_batches} batch(es), fewer than "
                                   f"the {world} ranks. Fix: use fewer processes or a smaller batch_size")


def rank_devices(devices: Sequence[str]) -> tuple[str, ...]:
    """The suite's devices for this rank: every CUDA entry becomes ``cuda:{LOCAL_RANK}``, in order, once."""
    if not is_distributed():
        return tuple(devices)
    mapped = ["cpu" if d == "cpu" else f"cuda:{local_rank()}" for d in devices]
    return tuple(dict.fromkeys(mapped))


# ---------------------------------------------------------------- collectives


def _in_step(tag: str) -> bool:
    """Whether every rank called a collective with this tag (one all-reduce of two int64)."""
    code = zlib.crc32(tag.encode())
    both = torch.tensor([code, -code], dtype=torch.int64)
    dist.all_reduce(both, op=dist.ReduceOp.MAX)
    return int(both[0]) == -int(both[1])  # max == min


def _require_step(tag: str) -> None:
    if not _in_step(tag):
        raise RanksOutOfStepError(f"the ranks are not all at {tag!r}: another rank left this step "
                                  "(its own error is recorded with the case)")


def all_reduce_sum(values: Sequence[int]) -> list[int]:
    """Integers summed over the ranks, exactly (int64); the values themselves when not distributed."""
    if not is_distributed():
        return list(values)
    _require_step(f"sum/{len(values)}")
    total = torch.tensor(list(values), dtype=torch.int64)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return [int(v) for v in total.tolist()]


def broadcast_object(obj: _T) -> _T:
    """Rank 0's ``obj`` on every rank (pickled)."""
    if not is_distributed():
        return obj
    _require_step("broadcast")
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_object(obj: _T) -> list[_T]:
    """Every rank's ``obj``, in rank order."""
    if not is_distributed():
        return [obj]
    _require_step("gather")
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def check_same(value: Any, what: str) -> None:
    """Raise DistributedError on every rank unless every rank holds an equal ``value``."""
    values = all_gather_object(value)
    differ = [r for r, v in enumerate(values) if v != values[0]]
    if differ:
        raise DistributedError(f"{what} differ between rank 0 and rank(s) {differ}. Fix: give every node the "
                               "same suite, data, checkpoints and GPUs per node")


def run_on_main(fn: Callable[[], _T]) -> _T:
    """``fn()`` on rank 0, its result broadcast; the others wait up to :data:`TRAIN_WAIT`.

    An exception on rank 0 is raised there as is and on the others as DistributedError naming it.
    """
    if not is_distributed():
        return fn()
    box: list[Any] = [None]
    if is_main():
        try:
            box[0] = ("ok", fn())
        except Exception as exc:
            dist.broadcast_object_list([("error", f"{type(exc).__name__}: {exc}")], src=0,
                                       group=_STATE["wait_group"])
            raise
    dist.broadcast_object_list(box, src=0, group=_STATE["wait_group"])
    status, value = box[0]
    if status == "error":
        raise DistributedError(f"rank 0 failed: {value}")
    return value


def agree_case(record: dict[str, Any]) -> dict[str, Any]:
    """Meet every rank at the end of a case; the record, failed if the case failed on any rank.

    A rank that reaches this point while others are still inside the case waits here: their next
    collective sees a different tag and raises, which ends their case. The recorded error is the
    first failing rank's own (not a RanksOutOfStepError), with every failing rank listed.
    """
    if not is_distributed():
        return record
    while not _in_step("end of case"):
        pass
    outcomes: list[tuple[str, dict[str, Any] | None]] = [None] * world_size()  # type: ignore[list-item]
    dist.all_gather_object(outcomes, (record["status"], record.get("error")))
    failed = {r: error or {} for r, (status, error) in enumerate(outcomes) if status != "ok"}
    if not failed:
        return record
    first = next((r for r, e in failed.items() if e.get("type") != RanksOutOfStepError.__name__), min(failed))
    error = failed[first]
    return record | {
        "status": "failed",
        "error": error | {"message": f"rank {first}: {error.get('message')}",
                          "failed_ranks": {str(r): e.get("message") for r, e in failed.items()}},
    }


def describe() -> dict[str, Any]:
    """How the run was made, for env.json: world size, and each rank's host and local rank."""
    if not is_distributed():
        return {"world_size": 1}
    ranks = all_gather_object({"host": platform.node(), "local_rank": local_rank()})
    return {"world_size": world_size(), "backend": dist.get_backend(),
            "ranks": [{"rank": r} | info for r, info in enumerate(ranks)]}
