"""Devices a suite may name: ``cpu``, ``cuda:N`` and ``cuda:*`` (every visible GPU).

Also describes a device for the results (model name, driver and CUDA versions, threads) and
finds a GPU's NVML handle. NVML comes from ``pynvml`` (package nvidia-ml-py), imported lazily so
machines without an NVIDIA driver never load it.
"""

from __future__ import annotations

import os
import platform
import re
from typing import Any

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


def _cgroup_limit() -> int | None:
    """The memory limit of this process's cgroup (v2 ``memory.max`` or v1 ``limit_in_bytes``), if any."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # v1 writes a huge number for "no limit"
            return int(text)
    return None


def machine_memory(device: str) -> tuple[int, str]:
    """Bytes of memory a case on ``device`` can have at most, and what they are.

    CPU: physical RAM, or the cgroup's limit when lower (containers). CUDA: the GPU's total memory.
    """
    if device == "cpu":
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        limit = _cgroup_limit()
        if limit is not None and limit < ram:
            return limit, "the container's memory limit"
        return ram, "physical RAM"
    index = torch.device(device).index or 0
    return torch.cuda.get_device_properties(index).total_memory, f"total memory of {device}"


def _cpuinfo() -> dict[str, str] | None:
    """Each /proc/cpuinfo key with its first value (the first processor's, for the per-processor ones); None
    where the file is unreadable (not Linux)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep:
                    fields.setdefault(key.strip(), value.strip())
    except OSError:
        return None
    return fields


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where readable, else platform's best guess."""
    return (_cpuinfo() or {}).get("model name") or platform.processor() or platform.machine()


_IDENTITY_KEYS = ("vendor_id", "cpu family", "model", "stepping",  # x86
                  "CPU implementer", "CPU architecture", "CPU variant", "CPU part", "CPU revision")  # Arm


def cpu_identity() -> str:
    """What tells two CPUs apart for bit-for-bit results, beyond their model name (a cloud VM may name every
    generation of a vendor's CPUs alike, e.g. 'AMD EPYC'): the vendor, family, model and stepping of the first
    processor in /proc/cpuinfo (on Arm: implementer, architecture, variant, part and revision), and the
    instruction set torch's CPU kernels dispatch to (``torch.backends.cpu.get_cpu_capability()``: AVX2, AVX512,
    ...), which picks the kernels and so the rounding of float results. Where /proc/cpuinfo is unreadable,
    platform's processor string stands for the first part."""
    info = _cpuinfo() or {}
    fields = {k: info[k] for k in _IDENTITY_KEYS if k in info}
    if "vendor_id" in fields:  # x86
        cpu = (f"{fields['vendor_id']} family {fields.get('cpu family', '?')} model {fields.get('model', '?')} "
               f"stepping {fields.get('stepping', '?')}")
    elif fields:  # Arm
        cpu = ", ".join(f"{k} {v}" for k, v in fields.items())
    else:
        cpu = platform.processor() or platform.machine()
    return f"{cpu}; torch kernels {torch.backends.cpu.get_cpu_capability()}"


def usable_cpus() -> int | None:
    """CPUs this process may run on (affinity mask; a container's cpuset shows here), else os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


_NVML: dict[str, Any] = {}


def nvml() -> Any:
    """The initialised ``pynvml`` module; raises RuntimeError saying why NVML is unusable."""
    if "module" in _NVML:
        return _NVML["module"]
    if "error" in _NVML:
        raise RuntimeError(_NVML["error"])
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as err:  # ImportError, or pynvml.NVMLError when no driver / library is found
        _NVML["error"] = f"NVML unavailable: {type(err).__name__}: {err}"
        raise RuntimeError(_NVML["error"]) from err
    _NVML["module"] = pynvml
    return pynvml


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bare_uuid(uuid: str) -> str:
    uuid = uuid.strip().lower()
    return uuid[4:] if uuid.startswith("gpu-") else uuid


def torch_uuid(device: str | torch.device) -> str:
    """The UUID of a torch CUDA device, lower case, without NVML's ``GPU-`` prefix."""
    return _bare_uuid(str(torch.cuda.get_device_properties(torch.device(device).index or 0).uuid))


def nvml_uuid(handle: Any, pynvml: Any | None = None) -> str:
    """The UUID of an NVML device handle, in :func:`torch_uuid`'s form."""
    return _bare_uuid(_text((pynvml or nvml()).nvmlDeviceGetUUID(handle)))


def nvml_handle(device: str | torch.device, pynvml: Any | None = None) -> Any:
    """The NVML handle of a torch CUDA device, matched by UUID.

    torch's device index and NVML's index differ under ``CUDA_VISIBLE_DEVICES`` or the default
    FASTEST_FIRST ordering, so the index is never trusted: the UUIDs must match.
    """
    pynvml = pynvml or nvml()
    want = torch_uuid(device)
    for i in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(i)
        if nvml_uuid(handle, pynvml) == want:
            return handle
    raise RuntimeError(f"no NVML device has the UUID of {device} ({want})")


def _cuda_version(code: int) -> str:
    """NVML's integer CUDA version (e.g. 12040) as ``12.4``."""
    return f"{code // 1000}.{code % 1000 // 10}"


def nvml_description(device: str) -> dict[str, object]:
    """NVML's name, driver and driver-CUDA versions of a GPU; None with ``*_why`` when unavailable."""
    fields = ("nvml_name", "driver_version", "cuda_driver_version")
    try:
        pynvml = nvml()
        handle = nvml_handle(device, pynvml)
        return {
            "nvml_name": _text(pynvml.nvmlDeviceGetName(handle)),
            "driver_version": _text(pynvml.nvmlSystemGetDriverVersion()),
            "cuda_driver_version": _cuda_version(pynvml.nvmlSystemGetCudaDriverVersion()),
        }
    except Exception as err:  # NVML errors are many and driver-specific; each one is reported
        why = str(err) if isinstance(err, RuntimeError) else f"{type(err).__name__}: {err}"
        return {k: v for f in fields for k, v in ((f, None), (f"{f}_why", why))}


def describe_device(device: str) -> dict[str, object]:
    """Name and versions of one device, recorded with every result on it.

    CPU: model name, identity (:func:`cpu_identity`), torch intra-op threads, usable and logical CPUs. CUDA:
    torch's name, memory, capability, CUDA runtime torch was built with, cuDNN, and NVML's name, driver version
    and the CUDA version the driver supports; host threads too, since they launch the kernels.
    """
    common = {"device": device, "torch_version": torch.__version__, "threads": torch.get_num_threads()}
    if device == "cpu":
        return {
            **common,
            "device_name": cpu_name(),
            "cpu_identity": cpu_identity(),
            "usable_cpus": usable_cpus(),
            "logical_cpus": os.cpu_count(),
        }
    index = torch.device(device).index or 0
    props = torch.cuda.get_device_properties(index)
    return {
        **common,
        "device_name": props.name,
        "total_memory_gib": round(props.total_memory / 2**30, 2),
        "capability": f"{props.major}.{props.minor}",
        "cuda_runtime": torch.version.cuda,
        "cudnn_version": torch.backends.cudnn.version(),
        "host_cpu": cpu_name(),
        **nvml_description(device),
    }
