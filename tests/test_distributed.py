"""Data-parallel evaluation: the shards, and a 2-rank gloo run on CPU that must equal one process exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from bench import distributed
from bench.cli import main
from bench.history import list_runs
from bench.results import read_records

TESTS = Path(__file__).resolve().parent


# ---------------------------------------------------------------- shards


@pytest.mark.parametrize("world", [1, 2, 3, 4, 7])
def test_shards_partition_the_items(world):
    for n in range(0, 30):
        shards = [distributed.shard_indices(n, r, world) for r in range(world)]
        assert [i for s in shards for i in s] == list(range(n)), "union in order, no duplicates"
        assert all(a.stop == b.start for a, b in zip(shards, shards[1:], strict=False)), "contiguous"
        sizes = [len(s) for s in shards]
        assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_shard_indices_by_hand():
    assert [distributed.shard_indices(10, r, 4) for r in range(4)] == [range(0, 3), range(3, 6), range(6, 8),
                                                                        range(8, 10)]
    with pytest.raises(ValueError):
        distributed.shard_indices(10, 2, 2)


def test_shard_samples_are_whole_single_process_batches():
    # 45 samples in batches of 8: six batches (five of 8, one of 5).
    assert [distributed.shard_samples(45, 8, r, 2) for r in range(2)] == [range(0, 24), range(24, 45)]
    assert [distributed.shard_samples(45, 8, r, 4) for r in range(4)] == [range(0, 16), range(16, 32),
                                                                          range(32, 40), range(40, 45)]
    for n, bs, world in [(45, 8, 3), (450, 64, 5), (7, 7, 1), (100, 1, 6)]:
        shards = [distributed.shard_samples(n, bs, r, world) for r in range(world)]
        assert [i for s in shards for i in s] == list(range(n))
        assert all(s.start % bs == 0 for s in shards), "every shard starts on a batch boundary"


def test_too_few_batches_for_the_ranks_is_refused(monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 4)
    distributed.check_shardable(25, [8, 1])  # four batches of 8 (the last of 1): one each
    with pytest.raises(distributed.DistributedError, match=r"24 samples in batches of 8 make 3 batch"):
        distributed.check_shardable(24, [1, 8])


def test_single_process_leaves_everything_alone():
    assert not distributed.is_distributed() and distributed.world_size() == 1 and distributed.is_main()
    assert distributed.all_reduce_sum([3, 4]) == [3, 4]
    assert distributed.rank_devices(["cpu", "cuda:*"]) == ("cpu", "cuda:*")
    assert distributed.describe() == {"world_size": 1}


# ---------------------------------------------------------------- 2 ranks on CPU


class _FailsOnRank1(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(num_classes))  # something for [train] to fit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if os.environ.get("RANK") == "1":
            raise RuntimeError("deliberate failure on rank 1")
        return self.bias.expand(x.shape[0], x.shape[1], -1)


def fails_on_rank1(num_classes: int = 10) -> nn.Module:
    """A learnable constant output, except on rank 1 of a distributed run, where its forward raises."""
    return _FailsOnRank1(num_classes)


SUITE = """
[suite]
name = "dist"
seed = 0
time_steps = [1, 2]
devices = ["cpu"]
metrics = ["accuracy", "params"]

[data]
dataset = "digits"
split = "test"
max_samples = 45
batch_size = 8

[[models]]
name = "test_distributed:fails_on_rank1"
label = "fails on rank 1"

[[models]]
name = "toy_models:tiny_snn"
label = "tiny"
{checkpoint}
{train}"""

# Rank 0 trains tiny_snn on 640 digits (T=2) while rank 1 waits, then both evaluate its checkpoint.
TRAIN = """
[train]
epochs = 3
lr = 0.02
batch_size = 32
T = 2
max_samples = 640
device = "cpu"
"""


@pytest.fixture
def one_thread():
    """torchrun gives each rank one thread; the single-process reference uses one too."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_two_ranks_equal_one_process(tmp_path, monkeypatch, one_thread):
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.format(checkpoint="", train=TRAIN), encoding="utf-8")
    work = tmp_path / "cwd"  # the ranks' working folder: any stray file would land here
    work.mkdir()
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
                        "OMP_NUM_THREADS": "1", "BENCH_HISTORY": str(tmp_path / "history.sqlite")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "bench.cli", "run", str(suite), "--out", str(tmp_path / "dist"), "-q"]
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 1, done.stdout + done.stderr  # one case failed (on rank 1)

    dist = {(r["model"]["label"], r["T"]): r for r in read_records(tmp_path / "dist" / "results.jsonl")}
    checkpoint = dist[("tiny", 1)]["model"]["checkpoint"]
    assert Path(checkpoint).parent == tmp_path / "dist" / "checkpoints"

    monkeypatch.setenv("BENCH_HISTORY", "off")  # the single-process reference evaluates the same checkpoint
    reference = tmp_path / "reference.toml"
    reference.write_text(SUITE.format(checkpoint=f"checkpoint = {json.dumps(checkpoint)}", train=""),
                         encoding="utf-8")
    assert main(["run", str(reference), "--out", str(tmp_path / "single"), "-q"]) == 0
    single = {(r["model"]["label"], r["T"]): r for r in read_records(tmp_path / "single" / "results.jsonl")}
    assert len(dist) == 4 and sorted(dist) == sorted(single), "one record per case: only rank 0 wrote"
    for T in (1, 2):
        d, s = dist[("tiny", T)], single[("tiny", T)]
        assert d["status"] == s["status"] == "ok"
        assert d["metrics"]["accuracy"] == s["metrics"]["accuracy"], "summed counts equal one process exactly"
        assert d["metrics"]["accuracy"]["n_samples"] == 45
        assert d["metrics"]["params"] == s["metrics"]["params"]
        assert (d["world_size"], s["world_size"]) == (2, 1) and d["trained_T"] == 2
    assert single[("tiny", 2)]["metrics"]["accuracy"]["top1"] > 50.0, "the trained model is not at chance"

    # A case failing on rank 1 only is failed for everyone, with rank 1's error, and the run goes on.
    for T in (1, 2):
        failed = dist[("fails on rank 1", T)]
        assert failed["status"] == "failed" and single[("fails on rank 1", T)]["status"] == "ok"
        assert failed["error"]["message"].startswith("rank 1: ")
        assert "deliberate failure on rank 1" in failed["error"]["message"]
        assert set(failed["error"]["failed_ranks"]) == {"0", "1"}  # rank 0 was left out of step

    # Rank 1 exits 0 with the cases done, so torchrun lets rank 0 finish the report and the history.
    assert all((tmp_path / "dist" / name).is_file() for name in ("results.csv", "report.md", "report.html"))
    assert "deliberate failure on rank 1" in (tmp_path / "dist" / "report.md").read_text()
    env_json = json.loads((tmp_path / "dist" / "env.json").read_text())
    assert env_json["world_size"] == 2 and [r["rank"] for r in env_json["ranks"]] == [0, 1]
    assert json.loads((tmp_path / "dist" / "run.json").read_text())["suite"] == "dist"
    assert len(list_runs(tmp_path / "history.sqlite")) == 1, "the history got the run once"
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "dist", "history.sqlite", "reference.toml",
                                                          "single", "suite.toml"]
