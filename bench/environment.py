"""What a run was measured with: versions, CPU, GPUs, git commit of the suite file, seed.

Never raises on an odd machine (no /proc, no git, no NVIDIA driver, broken package metadata): a
field that cannot be read is ``None`` with ``<field>_why`` beside it saying why.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from bench.devices import cpu_name, describe_device, expand_devices

PACKAGES = ("torch", "spikingjelly", "numpy", "fvcore", "codecarbon", "pandas", "scikit-learn", "snnbench")


def _why(exc: BaseException) -> str:
    """An error as a reason: the message alone for our RuntimeErrors, else type and message."""
    if type(exc) is RuntimeError:
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def safe_fields(**readers: Callable[[], Any]) -> dict[str, Any]:
    """Each reader's value under its name; a reader that raises gives None and ``<name>_why`` (the error)."""
    out: dict[str, Any] = {}
    for name, read in readers.items():
        try:
            out[name] = read()
        except Exception as exc:  # an odd machine fails in odd ways; every one is recorded, none stops the run
            out[name], out[f"{name}_why"] = None, _why(exc)
    return out


def package_versions() -> dict[str, str | None]:
    """Installed version of each package of interest; None when it is not installed or unreadable."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except Exception:  # PackageNotFoundError, or broken metadata
            versions[name] = None
    return versions


def git_commit(path: str | Path) -> dict[str, Any]:
    """Commit of the repository holding ``path`` and whether the file has uncommitted changes.

    Raises RuntimeError saying why when git is missing, the file is outside a repository, or git fails.
    """
    file = Path(path).resolve()
    try:
        commit = subprocess.run(["git", "-C", str(file.parent), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(file.parent), "status", "--porcelain", "--", str(file)],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except FileNotFoundError as exc:
        raise RuntimeError("git is not installed") from exc
    except subprocess.CalledProcessError as exc:
        first = (exc.stderr or "").strip().splitlines()[:1] or [f"exited with code {exc.returncode}"]
        raise RuntimeError(f"git: {first[0]}") from exc
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"git: {_why(exc)}") from exc
    return {"commit": commit, "suite_file_modified": bool(dirty)}


def _cuda_version() -> str:
    if torch.version.cuda is None:
        raise RuntimeError("this torch build has no CUDA")
    return torch.version.cuda


def _cudnn_version() -> int:
    if not torch.cuda.is_available():
        raise RuntimeError("CUDA is not available")
    version = torch.backends.cudnn.version()
    if version is None:
        raise RuntimeError("cuDNN is not available")
    return version


def _required(read: Callable[[], Any], why: str) -> Callable[[], Any]:
    """A reader whose None result becomes None with ``why`` (e.g. os.cpu_count() on an odd system)."""
    def reader() -> Any:
        value = read()
        if value is None:
            raise RuntimeError(why)
        return value
    return reader


def gpus() -> list[dict[str, Any]]:
    """Each visible GPU's description; an empty list when none is visible."""
    found, _ = expand_devices(["cuda:*"])
    return [describe_device(d) for d in found]


def collect_env(suite_path: str | Path, seed: int) -> dict[str, Any]:
    """Versions, machine and git state for env.json; fields that cannot be read are None with ``<field>_why``."""
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **safe_fields(
            python=lambda: sys.version.split()[0],
            platform=platform.platform,
            hostname=_required(platform.node, "the host name is not available"),
            packages=package_versions,
            cuda_available=torch.cuda.is_available,
            cuda_version=_cuda_version,
            cudnn_version=_cudnn_version,
            cpu=lambda: safe_fields(name=cpu_name,
                                    logical_cpus=_required(os.cpu_count, "os.cpu_count() cannot tell"),
                                    torch_threads=torch.get_num_threads),
            gpus=gpus,
        ),
        "suite_file": str(suite_path),
        **safe_fields(git=lambda: git_commit(suite_path)),
        "seed": seed,
    }
