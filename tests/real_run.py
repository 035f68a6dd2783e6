"""One real run shared by the report, compare, history and results tests (made once per test session).

A tiny user SNN and a SEW ResNet-18 at width 1/16 on digits at T = 1, 2 with every registered metric on
small options (latency: 2 timed runs; measured energy: a 10 ms window), plus a model whose forward raises
(two failed cases). ``gpu_like`` derives a second run from it by changing only the device fields, so a
merged report has a GPU column without a GPU; its values are the CPU run's (tests that need a GPU counter
value write one in, by hand).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

SUITE = """
[suite]
name = "realrun"
seed = 0
time_steps = [1, 2]
devices = ["cpu"]
metrics = ["accuracy", "params", "firing", "ops", "energy", "latency", "memory", "measured_energy"]

[data]
dataset = "digits"
max_samples = 16
batch_size = 8

[metrics.latency]
min_runs = 2
min_time_s = 0.0
warmup = 1

[metrics.measured_energy]
min_window_s = 0.01
idle_s = 0.0
min_batches = 1
warmup = 0

[tolerances]
"accuracy.top5" = { abs = 5.0, better = "higher" }

[[models]]
name = "toy_models:tiny_snn"
label = "tiny"
trained_T = 1

[[models]]
name = "sew_resnet18"
label = "SEW w/16"
kwargs = { width = 0.0625, input_size = "cifar" }

[[models]]
name = "toy_models:raising_model"
label = "broken"
"""
GPU_NAME = "NVIDIA H100 80GB HBM3"
_CACHE: dict[str, Path] = {}


def real_run(factory: pytest.TempPathFactory) -> Path:
    """The shared run folder (read it, never write it: copy it first with :func:`copy_run`)."""
    if "run" not in _CACHE:
        from bench.plan import plan_cases
        from bench.runner import run_suite
        from bench.suite import load_suite

        root = factory.mktemp("real_run")
        (root / "suite.toml").write_text(SUITE, encoding="utf-8")
        run_suite(plan_cases(load_suite(root / "suite.toml"), root / "run"), show_progress=False)
        _CACHE["run"] = root / "run"
    return _CACHE["run"]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def edit_json(path: Path, **changes: Any) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8")) | changes
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return data


def copy_run(src: Path, dst: Path, ok_only: bool = False) -> Path:
    """A writable copy of a run folder (without its failed cases when ``ok_only``)."""
    shutil.copytree(src, dst)
    if ok_only:
        write_jsonl(dst / "results.jsonl", [r for r in read_jsonl(dst / "results.jsonl") if r["status"] == "ok"])
    return dst


def gpu_like(src: Path, dst: Path) -> Path:
    """The run as if made on one GPU: device, device name, run id, host and date changed, nothing else."""
    copy_run(src, dst, ok_only=True)
    records = read_jsonl(dst / "results.jsonl")
    for r in records:
        r["run_id"] = "gpu-like"
        r["device"] = "cuda:0"
        r["device_info"] = {k: v for k, v in (r.get("device_info") or {}).items() if k != "cpu_identity"} \
            | {"device": "cuda:0", "device_name": GPU_NAME}  # (a CUDA record names no CPU identity)
        r["case_id"] = r["case_id"].replace("|cpu|", "|cuda:0|")
    write_jsonl(dst / "results.jsonl", records)
    edit_json(dst / "run.json", run_id="gpu-like", devices=["cuda:0"])
    env = json.loads((dst / "env.json").read_text(encoding="utf-8"))
    edit_json(dst / "env.json", hostname="gpu-node", created="2099-01-01T00:00:00+00:00",
              gpus=[{"device": "cuda:0", "device_name": GPU_NAME}], cuda_available=True,
              cpu=env.get("cpu"))
    return dst
