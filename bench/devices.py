"""Devices a suite may name: ``cpu``, ``cuda:N`` and ``cuda:*`` (every visible GPU)."""

from __future__ import annotations

import os
import platform
import re

import torch

DEVICE_PATTERN = re.compile(r"^(cpu|cuda:\*|cuda:\d+|cuda)$")


def expand_devices(specs: list[str]) -> tuple[list[str], list[str]]:
    """Concrete devices for the suite's device list, and notes about those skipped.

    Absent GPUs are skipped with a note, never an error: a suite written for a GPU machine
    still runs its CPU cases here.
    """
    devices: list[str] = []
    notes: list[str] = []
    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for spec in specs:
        if spec == "cpu":
            found = ["cpu"]
        elif spec == "cuda:*":
            found = [f"cuda:{i}" for i in range(n_gpus)]
            if not found:
                notes.append("cuda:* skipped: no CUDA device is visible")
        else:
            index = 0 if spec == "cuda" else int(spec.split(":")[1])
            found = [f"cuda:{index}"] if index < n_gpus else []
            if not found:
                notes.append(f"{spec} skipped: {n_gpus} CUDA device(s) visible")
        devices.extend(d for d in found if d not in devices)
    return devices, notes


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where readable, else platform's best guess."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_device(device: str) -> dict[str, object]:
    """Name and versions of one device, recorded with every result on it."""
    if device == "cpu":
        return {
            "device": "cpu",
            "device_name": cpu_name(),
            "threads": torch.get_num_threads(),
            "logical_cpus": os.cpu_count(),
        }
    index = torch.device(device).index or 0
    props = torch.cuda.get_device_properties(index)
    return {
        "device": device,
        "device_name": props.name,
        "total_memory_gib": round(props.total_memory / 2**30, 2),
        "capability": f"{props.major}.{props.minor}",
        "cuda_runtime": torch.version.cuda,
    }
