"""What a run was measured with: versions, CPU, GPUs, git commit of the suite file, seed."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from bench.devices import cpu_name, describe_device, expand_devices

PACKAGES = ("torch", "spikingjelly", "numpy", "fvcore", "codecarbon", "pandas", "scikit-learn", "snnbench")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(path: str | Path) -> dict[str, Any] | None:
    """Commit of the repository holding ``path`` and whether the file has uncommitted changes."""
    folder = Path(path).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--", str(Path(path).resolve())],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "suite_file_modified": bool(dirty)}


def collect_env(suite_path: str | Path, seed: int) -> dict[str, Any]:
    gpus, _ = expand_devices(["cuda:*"])
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": platform.node(),
        "packages": package_versions(),
        "cuda_available": torch.cuda.is_available(),
        "cuda_version": torch.version.cuda,
        "cudnn_version": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "cpu": {"name": cpu_name(), "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "gpus": [describe_device(d) for d in gpus],
        "suite_file": str(suite_path),
        "git": git_commit(suite_path),
        "seed": seed,
    }
