#!/usr/bin/env python3
"""One GPU check, in one plain script: the device, the GPU tests, the GPU suite, a table of figures.

Steps (each recorded in ``<out>/gpu_check.json``; the script exits 1 if any fails):

1. wheels: where ``spikingjelly``, ``loguru``, ``scienceplots``, ``zeus`` or ``numba`` is not importable and ``.whl/``
   holds wheels, ``pip install --no-index --no-deps --target <site>`` them and put ``<site>`` first on
   ``sys.path`` and ``PYTHONPATH`` (the GPU machine has no package index; README "GPU check");
2. the device: torch and CUDA versions, each GPU (bench.devices) and ``nvidia-smi``'s power reading and
   performance state before anything ran;
3. ``pytest -m gpu -q`` over ``tests/`` (at least one test must be collected; the CPU smoke collects
   ``tests/test_gpu.py`` alone);
4. the suite (``suites/gpu_t4.toml``) through ``python3 -m bench.cli run SUITE --out <tmp>``: every case must
   be ok, and on a GPU every case must have a gross GPU energy per sample (batch 1 included);
5. ``benchmarks/metrics_overhead.py`` (the counting overhead ratio; a CPU figure of the GPU machine's host)
   and ``benchmarks/kernel_speed.py`` where it exists;
6. a table per model: latency p50 at the smallest and largest batch, throughput, gross and net GPU energy
   per sample, estimated energy, rest idle power; the estimated-vs-measured plot.

Without CUDA (or with ``--cpu-smoke``) the same steps run on a tiny CPU variant of the suite (every family,
8 px, T=2, batch 1 and 2) and the benchmark runs with loose limits: it checks the plumbing, not figures.

    PYTHONPATH=. python3 scripts/gpu_check.py [--out DIR] [--cpu-smoke] [--skip-tests] [--skip-benchmarks]

``--out`` (default ``$OUT``, else ``gpu_check_out``) receives at most seven files: gpu_check.json,
energy_plot.png and the run's results.jsonl, run.json, env.json and report.md under ``suite/``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NEEDED = ("spikingjelly", "loguru", "scienceplots")  # what `import bench` needs beyond the GPU image
WANTED = ("zeus", "numba")  # optional: measured_energy's preferred backend; the compiled CPU counting pass
KEPT = ("results.jsonl", "run.json", "env.json", "report.md")

SMOKE_SUITE = """
[suite]
name = "gpu_check_cpu_smoke"
description = "Tiny CPU variant of suites/gpu_t4.toml: every family, 8 px, T=2, batch 1 and 2."
seed = 0
time_steps = [2]
devices = ["cpu"]
metrics = ["measured_energy", "accuracy", "params", "firing", "ops", "energy", "latency", "memory"]
case_timeout_s = 120

[data]
dataset = "synthetic"
image_size = 8
batch_size = [1, 2]
fallback_samples = 2

[metrics.measured_energy]
warmup = 1
idle_s = 0.5
idle_min_s = 0.0
idle_block_s = 0.1
idle_blocks = 2
min_window_s = 0.05
min_batches = 2
max_window_s = 0.2

[metrics.latency]
warmup = 1
min_runs = 2
min_time_s = 0.0

[[models]]
name = "spiking_resnet18"
label = "Spiking ResNet-18 (w=1/16)"
kwargs = { width = 0.0625, input_size = "cifar" }

[[models]]
name = "sew_resnet18"
label = "SEW ResNet-18 (w=1/16)"
kwargs = { width = 0.0625, input_size = "cifar", cnf = "ADD" }

[[models]]
name = "ms_resnet18"
label = "MS-ResNet-18 (w=1/16)"
kwargs = { width = 0.0625, input_size = "cifar" }

[[models]]
name = "danet_a50"
label = "DANet-A-50 (w=1/16)"
kwargs = { width = 0.0625, input_size = "cifar" }

[[models]]
name = "spikeformer_dvs_cifar10"
label = "Spikeformer (d=32, 1 block)"
kwargs = { input_size = "cifar", in_channels = 3, img_size = 8, embed_dim = 32, depth = 1, heads = 2 }

[[models]]
name = "dsr_preact_resnet18"
label = "DSR PreAct-ResNet-18 (w=1/16)"
kwargs = { width = 0.0625, input_size = "cifar" }
"""


class Check:
    """The steps' outcomes, printed as they come and written to the JSON summary."""

    def __init__(self) -> None:
        self.steps: dict[str, dict[str, Any]] = {}
        self.failures: list[str] = []

    def step(self, name: str, ok: bool, **details: Any) -> bool:
        self.steps[name] = {"ok": ok, **details}
        print(f"[{'ok' if ok else 'FAILED'}] {name}" + (f": {details['note']}" if details.get("note") else ""),
              flush=True)
        if not ok:
            self.failures.append(f"{name}: {details.get('note', 'failed')}")
        return ok


def missing(modules: tuple[str, ...]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def install_wheels(check: Check, whl: Path, site: Path) -> None:
    """Install ``.whl/`` into ``site`` when a needed or wanted module is not importable; put it on the path."""
    absent = missing(NEEDED + WANTED)
    wheels = sorted(whl.glob("*.whl"))
    if not absent:
        check.step("wheels", True, note=f"{', '.join(NEEDED + WANTED)} already importable")
        return
    if not wheels:
        hard = [m for m in absent if m in NEEDED]
        check.step("wheels", not hard, missing=absent,
                   note=f"{', '.join(absent)} not importable and no wheels in {whl}"
                        + (" (prepare .whl/: README 'GPU check')" if hard else " (optional: zeus -> builtin energy backend, numba -> torch operations on CPUs)"))
        return
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
           "--no-cache-dir", "--upgrade", "--target", str(site), *map(str, wheels)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode == 0:
        sys.path.insert(0, str(site))
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
        importlib.invalidate_caches()
    still = missing(NEEDED + WANTED)
    check.step("wheels", proc.returncode == 0 and not missing(NEEDED), installed=[w.name for w in wheels],
               site=str(site), still_missing=still,
               note=f"installed {len(wheels)} wheels into {site}" if proc.returncode == 0
               else f"pip failed: {proc.stderr.strip()[-500:]}")


def nvidia_smi() -> list[dict[str, str]] | str:
    """Each GPU's power draw, performance state and temperature now, from nvidia-smi (or why not)."""
    if shutil.which("nvidia-smi") is None:
        return "nvidia-smi not found"
    keys = ("index", "name", "power.draw", "pstate", "temperature.gpu", "driver_version")
    proc = subprocess.run(["nvidia-smi", f"--query-gpu={','.join(keys)}", "--format=csv,noheader"],
                          capture_output=True, text=True)
    if proc.returncode:
        return f"nvidia-smi failed: {proc.stderr.strip()[-300:]}"
    return [dict(zip(keys, (v.strip() for v in line.split(",")), strict=False)) for line in proc.stdout.splitlines()]


def describe(check: Check, gpu: bool) -> dict[str, Any]:
    """The machine: torch, CUDA, every GPU; nvidia-smi's reading before any work."""
    import torch

    from bench.devices import describe_device

    info: dict[str, Any] = {"python": sys.version.split()[0], "torch": torch.__version__,
                            "cuda_available": torch.cuda.is_available(), "mode": "gpu" if gpu else "cpu-smoke",
                            "nvidia_smi_at_start": nvidia_smi()}
    info["devices"] = [describe_device(f"cuda:{i}") for i in range(torch.cuda.device_count())] or \
        [describe_device("cpu")]
    for d in info["devices"]:
        print(f"device: {d['device']}: {d['device_name']}" + (f", driver {d.get('driver_version')}, CUDA "
                                                             f"{d.get('cuda_runtime')}" if gpu else ""))
    print(f"nvidia-smi at start: {info['nvidia_smi_at_start']}")
    check.step("device", True, **info)
    return info


def run_pytest(check: Check, gpu: bool) -> None:
    """``pytest -m gpu -q`` over tests/ (rc 0, at least one test collected); the CPU smoke collects only
    tests/test_gpu.py (every GPU test skips without CUDA: the plumbing is what is checked)."""
    where = ROOT / "tests" if gpu else ROOT / "tests" / "test_gpu.py"
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", str(where)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
    print("\n".join(tail))
    ok = proc.returncode == 0
    note = tail[-1] if tail else f"pytest exited {proc.returncode}"
    if proc.returncode == 5:
        note = "no GPU test collected"
    check.step("pytest -m gpu", ok, rc=proc.returncode, seconds=round(time.perf_counter() - started, 1),
               tail=tail, note=note)


def run_suite(check: Check, suite: Path, run_dir: Path, gpu: bool) -> list[dict[str, Any]]:
    """The suite through the CLI; its records (empty when it wrote none). The CPU smoke stays out of the
    history store (BENCH_HISTORY=off unless set); a GPU run is appended like any run."""
    cmd = [sys.executable, "-m", "bench.cli", "run", str(suite), "--out", str(run_dir), "-q"]
    env = os.environ if gpu else {"BENCH_HISTORY": "off", **os.environ}
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    print((proc.stdout + proc.stderr).strip()[-6000:])
    results = run_dir / "results.jsonl"
    records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()] \
        if results.exists() else []
    check.step("suite run", proc.returncode == 0, rc=proc.returncode, cases=len(records),
               seconds=round(time.perf_counter() - started, 1),
               note=f"{suite.name}: exit {proc.returncode}, {len(records)} case(s)")
    return records


def check_records(check: Check, records: list[dict[str, Any]], gpu: bool) -> None:
    """Every case ok; on a GPU every case ran on CUDA and has a gross GPU energy per sample."""
    failed = [f"{r['case_id']}: {(r.get('error') or {}).get('message', '?')}" for r in records if r["status"] != "ok"]
    check.step("every case ok", bool(records) and not failed, failed=failed,
               note=f"{len(records) - len(failed)}/{len(records)} ok" + (f"; {failed[0]}" if failed else ""))
    if not gpu:
        return
    missing_energy = []
    for r in records:
        me = r["metrics"].get("measured_energy") or {}
        if not str(r["device"]).startswith("cuda") or me.get("gpu_energy_j_per_sample") is None:
            missing_energy.append(f"{r['case_id']}: {me.get('gpu_energy_j_per_sample_why', 'not a CUDA case')}")
    check.step("gross GPU energy on every case", bool(records) and not missing_energy, missing=missing_energy,
               note=missing_energy[0] if missing_energy else "batch 1 and 64 measured")


OVERHEAD_LINE = re.compile(r"^\s+(\S+)\s+plain .*time x([\d.]+) .*x([\d.]+)\s+(ok|OVER LIMIT)")


def run_benchmarks(check: Check, gpu: bool) -> dict[str, Any]:
    """metrics_overhead.py (ratios per model) and kernel_speed.py where present."""
    script = ROOT / "benchmarks" / "metrics_overhead.py"
    started = time.perf_counter()
    args = [] if gpu else ["--width", "0.0625", "--rounds", "1", "--batch", "2", "--models", "sew_resnet18",
                           "--time-limit", "1000", "--mem-limit", "1000"]  # CPU smoke: the plumbing only
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, cwd=ROOT)
    print(proc.stdout.strip())
    ratios = {m.group(1): {"time_ratio": float(m.group(2)), "mem_ratio": float(m.group(3)), "verdict": m.group(4)}
              for m in map(OVERHEAD_LINE.match, proc.stdout.splitlines()) if m}
    check.step("metrics_overhead", proc.returncode == 0 and bool(ratios), rc=proc.returncode, ratios=ratios,
               seconds=round(time.perf_counter() - started, 1),
               note=", ".join(f"{k} x{v['time_ratio']:.3f} time, x{v['mem_ratio']:.3f} memory"
                              for k, v in ratios.items()) or proc.stderr.strip()[-300:])
    out: dict[str, Any] = {"metrics_overhead": ratios}
    kernel = ROOT / "benchmarks" / "kernel_speed.py"
    if kernel.exists() and gpu:
        proc = subprocess.run([sys.executable, str(kernel)], capture_output=True, text=True, cwd=ROOT)
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-20:]
        print("\n".join(tail))
        check.step("kernel_speed", proc.returncode == 0, rc=proc.returncode, tail=tail,
                   note=tail[-1] if tail else "")
        out["kernel_speed"] = tail
    elif kernel.exists():
        check.step("kernel_speed", True, note="not run in the CPU smoke (a GPU benchmark)")
    return out


def _get(r: dict[str, Any] | None, metric: str, name: str) -> Any:
    return None if r is None else (r["metrics"].get(metric) or {}).get(name)


def figures(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model on its first device: the cases at the smallest and largest batch."""
    rows = []
    for label in dict.fromkeys(r["model"]["label"] for r in records if r["status"] == "ok"):
        recs = [r for r in records if r["model"]["label"] == label and r["status"] == "ok"]
        device = recs[0]["device"]
        recs = sorted((r for r in recs if r["device"] == device), key=lambda r: r["batch_size"])
        small, large = recs[0], recs[-1]
        energy = "gpu" if device.startswith("cuda") else "cpu"
        rows.append({
            "model": label, "device": device, "T": large["T"], "batch_small": small["batch_size"],
            "batch_large": large["batch_size"],
            "p50_ms_small": _get(small, "latency", "latency_p50_ms"), "p50_ms_large": _get(large, "latency", "latency_p50_ms"),
            "throughput_sps_large": _get(large, "latency", "throughput_sps"),
            "gross_j_small": _get(small, "measured_energy", f"{energy}_energy_j_per_sample"),
            "net_j_small": _get(small, "measured_energy", f"{energy}_energy_net_j_per_sample"),
            "gross_j_large": _get(large, "measured_energy", f"{energy}_energy_j_per_sample"),
            "net_j_large": _get(large, "measured_energy", f"{energy}_energy_net_j_per_sample"),
            "estimated_mj": _get(large, "energy", "energy_mj"),
            "rest_idle_w": _get(large, "measured_energy", f"{energy}_rest_idle_power_w"),
            "rest_settle_s": _get(large, "measured_energy", f"{energy}_rest_idle_settle_s"),
            "backend": _get(large, "measured_energy", f"{energy}_energy_backend"),
            "gpu_peak_mib_large": _get(large, "memory", "gpu_peak_allocated_mib"),
        })
    return rows


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def print_table(rows: list[dict[str, Any]]) -> None:
    cols = [("model", "model"), ("p50_ms_small", "p50 ms B=s"), ("p50_ms_large", "p50 ms B=L"),
            ("throughput_sps_large", "samples/s B=L"), ("gross_j_small", "gross J/s B=s"),
            ("net_j_small", "net J/s B=s"), ("gross_j_large", "gross J/s B=L"), ("net_j_large", "net J/s B=L"),
            ("estimated_mj", "est. mJ/s"), ("rest_idle_w", "rest W")]
    cells = [[_fmt(r[k]) for k, _ in cols] for r in rows]
    widths = [max(len(t), *(len(c[i]) for c in cells)) for i, (_, t) in enumerate(cols)]
    print("  ".join(t.ljust(w) for (_, t), w in zip(cols, widths, strict=True)))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))
    if rows:
        r = rows[0]
        print(f"(B=s: batch {r['batch_small']}, B=L: batch {r['batch_large']}, T={r['T']}, device {r['device']}; "
              f"J/s = joules per sample, gross = counter over the window, net = above rest idle; "
              f"backend: {r['backend'] or 'none (no energy counter)'})")


def plot(check: Check, records: list[dict[str, Any]], out: Path) -> dict[str, Any] | None:
    """The estimated-vs-measured figure (None in the CPU smoke: no GPU energy to plot)."""
    from bench.report.energy_plot import estimated_vs_measured

    fig = estimated_vs_measured(records, out / "energy_plot.png")
    if fig is None:
        check.step("energy plot", True, note="no model has both a measured GPU energy and an estimate")
        return None
    fits = {d: None if f is None else {"n": f.n, "slope": f.slope, "intercept": f.intercept, "r": f.r}
            for d, f in fig.fits.items()}
    check.step("energy plot", True, note=fig.caption, fits=fits, notes=fig.notes)
    return {"caption": fig.caption, "fits": fits, "notes": fig.notes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu_check_out"))
    parser.add_argument("--cpu-smoke", action="store_true", help="the tiny CPU variant even where CUDA exists")
    parser.add_argument("--suite", type=Path, default=ROOT / "suites" / "gpu_t4.toml")
    parser.add_argument("--wheels", type=Path, default=ROOT / ".whl")
    parser.add_argument("--site", type=Path, default=None, help="where wheels are installed (default: a temp dir)")
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--skip-benchmarks", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))  # `import bench` here and in every step's process, whatever the caller set
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    check = Check()
    started = time.perf_counter()
    install_wheels(check, args.wheels, args.site or Path(tempfile.mkdtemp(prefix="snnbench-site-")))
    summary: dict[str, Any] = {"steps": check.steps}
    if "wheels" in check.steps and check.steps["wheels"]["ok"]:
        import torch

        gpu = torch.cuda.is_available() and not args.cpu_smoke
        summary["device"] = describe(check, gpu)
        if not args.skip_tests:
            run_pytest(check, gpu)
        with tempfile.TemporaryDirectory(prefix="snnbench-gpu-check-") as tmp:
            suite = args.suite if gpu else Path(tmp) / "gpu_check_cpu_smoke.toml"
            if not gpu:
                suite.write_text(SMOKE_SUITE, encoding="utf-8")
            run_dir = Path(tmp) / "run"
            records = run_suite(check, suite, run_dir, gpu)
            (args.out / "suite").mkdir(exist_ok=True)
            for name in KEPT:
                if (run_dir / name).exists():
                    shutil.copy(run_dir / name, args.out / "suite" / name)
        check_records(check, records, gpu)
        summary["figures"] = figures(records)
        print_table(summary["figures"])
        summary["energy_plot"] = plot(check, records, args.out)
        if not args.skip_benchmarks:
            summary["benchmarks"] = run_benchmarks(check, gpu)
    summary["failures"] = check.failures
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (args.out / "gpu_check.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    print(f"summary: {args.out / 'gpu_check.json'} ({summary['seconds']} s)")
    print("GPU CHECK " + ("PASSED" if not check.failures else "FAILED:\n  " + "\n  ".join(check.failures)))
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
