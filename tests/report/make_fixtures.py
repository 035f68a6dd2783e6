"""Writes the report test fixtures: two run folders of the same three models (a CPU run and a GPU run).

Run ``python tests/report/make_fixtures.py`` after a metric plug-in changes its record fields; the
values are made up but internally consistent (energy = MACs x 4.6 pJ + ACs x 0.9 pJ, SOPs <= ACs,
throughput = batch / p50, the network mean rate is the neuron-weighted mean of the layer rates).
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent / "fixtures"
MAC_PJ, AC_PJ = 4.6, 0.9

MODELS = {
    # label: (registered name, kwargs, checkpoint, trained_T, family, provenance, non_spiking, params, accuracy by T)
    "SEW ResNet-18": ("sew_resnet18", {}, "ckpt/sew18.pt", 4, "sew_resnet", "official code",
                      ["analog first conv (direct encoding)"], 11_689_512, {1: 52.10, 2: 59.80, 4: 63.02}),
    "Spiking ResNet-18": ("spiking_resnet18", {}, None, None, "spiking_resnet", "official code",
                          ["analog first conv (direct encoding)"], 11_689_512, {1: 0.10, 2: 0.10, 4: 0.10}),
    "DANet-A50 (w=1/4)": ("danet_a50", {"width": 0.25}, "ckpt/danet.pt", 4, "danet", "reconstructed from paper",
                          ["analog first conv (direct encoding)", "avg-pooled spike counts"], 1_650_112,
                          {1: 40.5, 2: 51.25, 4: 57.75}),
}
LAYERS = ["conv1", "layer1.0.sn1", "layer1.0.sn2", "layer2.0.sn1", "layer2.0.sn2", "fc"]


def firing(label: str, T: int) -> dict:
    base = {"SEW ResNet-18": 0.18, "Spiking ResNet-18": 0.05, "DANet-A50 (w=1/4)": 0.22}[label]
    neurons = [0, 200_704, 200_704, 100_352, 100_352, 0]
    layers, events, total = [], 0.0, 0
    for i, (name, n) in enumerate(zip(LAYERS, neurons, strict=True)):
        if not n:
            continue
        per_t = [round(base * (0.6 + 0.1 * i) * (1 + 0.15 * t), 6) for t in range(T)]
        rate = sum(per_t) / T
        layers.append({"name": name, "type": "IFNode", "kind": "binary", "n_neurons": float(n),
                       "rate": round(rate, 6), "rate_per_t": per_t,
                       "silent_frac": round(1 - min(1.0, 2 * rate), 4), "saturated_frac": 0.001, "analog": False})
        events += rate * n
        total += n
    return {"mean_rate": round(events / total, 6), "layers": layers, "num_layers": len(layers),
            "spiking_neurons": total}


def ops(label: str, T: int) -> dict:
    scale = 1.0 if "ResNet" in label else 0.12
    rate = firing(label, T)["mean_rate"]
    rows = [("conv1", 0.0, 118e6 * T * scale), ("layer1.0.conv2", 115e6 * T * scale * rate, 0.0),
            ("layer2.0.conv1", 58e6 * T * scale * rate, 0.0), ("layer2.0.downsample", 7e6 * T * scale * rate, 0.0),
            ("fc", 512 * 1000 * T * rate * scale, 0.0)]
    layers = [{"name": n, "type": "Conv2d" if "conv" in n or "down" in n else "Linear", "kinds":
               ["analog" if macs else "binary"], "acs": round(acs), "macs": round(macs), "sops": round(acs),
               "dense_macs": round(macs + acs / rate if rate else macs)} for n, acs, macs in rows]
    acs = sum(r["acs"] for r in layers)
    macs = sum(r["macs"] for r in layers)
    return {"acs": acs, "macs": macs, "sops": acs, "dense_macs": sum(r["dense_macs"] for r in layers),
            "layers": layers, "uncounted": [], "convention": "snnbench-ops-v1"}


def energy(o: dict) -> dict:
    e = (o["macs"] * MAC_PJ + o["acs"] * AC_PJ) * 1e-9  # pJ -> mJ, as the energy plug-in reports
    ann = o["dense_macs"] * MAC_PJ * 1e-9
    return {"energy_mj": e, "ann_energy_mj": ann, "ann_over_snn": round(ann / e, 4), "profile": "45nm-fp32",
            "profile_source": "M. Horowitz, ISSCC 2014, 45 nm", "estimate": True}


def latency(label: str, T: int, batch: int, gpu: bool) -> dict:
    per_sample_ms = (0.05 if gpu else 4.0) * T * (1.0 if "ResNet" in label else 0.4)
    p50 = round(per_sample_ms * batch, 4)
    return {"latency_p50_ms": p50, "latency_p90_ms": round(p50 * 1.04, 4), "latency_p99_ms": round(p50 * 1.1, 4),
            "throughput_sps": round(batch / (p50 / 1e3), 3), "runs": 20, "batch_size": batch,
            "device_name": "NVIDIA H100 80GB HBM3" if gpu else "AMD EPYC 7763", "timer": "time.perf_counter_ns"}


def measured(label: str, gpu: bool) -> dict:
    if gpu:
        net = {"SEW ResNet-18": 0.0081, "Spiking ResNet-18": 0.0076, "DANet-A50 (w=1/4)": 0.0019}[label]
        return {"gpu_energy_j_per_sample": round(1.6 * net, 6), "gpu_energy_net_j_per_sample": net,
                "gpu_energy_method": "NVML total energy counter (measured)",
                "cpu_energy_net_j_per_sample": None, "cpu_energy_net_j_per_sample_why": "RAPL not readable"}
    why = "device cpu is not a CUDA GPU: no GPU energy counter"
    return {"gpu_energy_net_j_per_sample": None, "gpu_energy_net_j_per_sample_why": why,
            "cpu_energy_net_j_per_sample": None,
            "cpu_energy_net_j_per_sample_why": "no readable RAPL counter under /sys/class/powercap",
            "codecarbon_cpu_energy_estimate_j_per_sample": 0.5}


def record(run_id: str, label: str, T: int, device: str, batch: int) -> dict:
    name, kwargs, ckpt, trained_T, family, prov, non_spiking, params, acc = MODELS[label]
    gpu = device.startswith("cuda")
    o = ops(label, T)
    metrics = {
        "accuracy": {"top1": acc[T], "top5": min(100.0, acc[T] + 20), "n_samples": 2000, "method": "one pass"},
        "params": {"params": params, "params_trainable": params, "params_millions": round(params / 1e6, 3)},
        "firing": firing(label, T), "ops": o, "energy": energy(o),
        "latency": latency(label, T, batch, gpu),
        "memory": {"gpu_peak_allocated_mib": 812.5 if gpu else None, "cpu_peak_rss_growth_mib": 95.2},
        "measured_energy": measured(label, gpu),
    }
    device_name = "NVIDIA H100 80GB HBM3" if gpu else "AMD EPYC 7763"
    return {
        "schema": 1, "run_id": run_id, "suite": "fixture", "case_id": f"{label}|T={T}|{device}|bs={batch}",
        "config_key": f"{run_id}-{label}-{T}",
        "model": {"name": name, "label": label, "kwargs": kwargs, "checkpoint": ckpt, "untrained": ckpt is None,
                  "info": {"name": name, "family": family, "provenance": prov, "default_T": 4,
                           "non_spiking": non_spiking, "causal_over_T": True}},
        "T": T, "trained_T": trained_T, "device": device, "batch_size": batch,
        "data": {"dataset": "imagenet", "split": "val", "labelled": True},
        "started_at": "2026-11-20T10:00:00+00:00", "metrics": metrics, "status": "ok", "error": None,
        "device_info": {"device": device, "device_name": device_name}, "duration_s": 12.5,
    }


def failed(run_id: str) -> dict:
    rec = record(run_id, "Spiking ResNet-18", 4, "cpu", 32)
    rec.update(T=8, case_id="Spiking ResNet-18|T=8|cpu|bs=32", status="failed", metrics={}, error={"type": "RuntimeError", "message": "metric 'latency' failed: "
                                                   "RuntimeError: deliberate failure <script>alert(1)</script>",
                                                   "traceback": "Traceback ..."})
    return rec


def write_run(folder: Path, run_id: str, records: list[dict], devices: list[str], hostname: str,
              gpus: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "results.jsonl", "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    run = {"run_id": run_id, "suite": "fixture", "suite_file": "suites/fixture.toml",
           "description": "fixture run for the report tests", "seed": 0, "time_steps": [1, 2, 4],
           "devices": devices, "metrics": list(records[0]["metrics"]), "metric_options": {},
           "data": {"dataset": "imagenet", "description": "ImageNet val (2000 images)", "fallback_note": None},
           "notes": []}
    env = {"created": "2026-11-20T10:00:00+00:00", "python": "3.11.7", "hostname": hostname,
           "packages": {"torch": "2.14.1", "spikingjelly": "2.0.0", "numpy": "2.4.6", "snnbench": "0.1.0"},
           "cuda_available": bool(gpus), "cuda_version": "13.0", "cpu": {"name": "AMD EPYC 7763", "logical_cpus": 32},
           "gpus": gpus, "git": {"commit": "0123456789abcdef0123456789abcdef01234567", "suite_file_modified": False},
           "seed": 0}
    (folder / "run.json").write_text(json.dumps(run, indent=1) + "\n", encoding="utf-8")
    (folder / "env.json").write_text(json.dumps(env, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    cpu = [record("cpu-run", label, T, "cpu", 32) for label in MODELS for T in (1, 2, 4)] + [failed("cpu-run")]
    write_run(HERE / "run_cpu", "cpu-run", cpu, ["cpu"], "workstation", [])
    gpu = [record("gpu-run", label, T, "cuda:0", bs) for label in MODELS for T in (4,) for bs in (32, 128)]
    write_run(HERE / "run_gpu", "gpu-run", gpu, ["cuda:0"], "gpu-node",
              [{"device": "cuda:0", "device_name": "NVIDIA H100 80GB HBM3"}])


if __name__ == "__main__":
    main()
