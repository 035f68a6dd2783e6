"""Device expansion with faked GPU counts, device descriptions, NVML handle matching with a fake pynvml."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import bench.devices as devices


def fake_gpus(monkeypatch, n: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


def test_expand_without_gpus_keeps_cpu_and_notes_the_rest(monkeypatch):
    fake_gpus(monkeypatch, 0)
    got, notes = devices.expand_devices(["cpu", "cuda:*", "cuda:1"])
    assert got == ["cpu"]
    assert notes == ["cuda:* skipped: no CUDA device is visible", "cuda:1 skipped: 0 CUDA device(s) visible"]


def test_expand_with_two_gpus(monkeypatch):
    fake_gpus(monkeypatch, 2)
    got, notes = devices.expand_devices(["cuda", "cuda:*", "cpu", "cuda:3"])
    assert got == ["cuda:0", "cuda:1", "cpu"]  # "cuda" is cuda:0; duplicates dropped, order kept
    assert notes == ["cuda:3 skipped: 2 CUDA device(s) visible"]


def test_describe_cpu():
    info = devices.describe_device("cpu")
    assert info["device_name"] == devices.cpu_name() and info["device_name"]
    assert info["threads"] == torch.get_num_threads()
    assert 1 <= info["usable_cpus"] <= info["logical_cpus"]
    assert info["torch_version"] == torch.__version__


class FakeNvml:
    """Two NVML devices listed in the opposite order to torch's."""

    uuids = ["GPU-bbbb-2222", "GPU-aaaa-1111"]

    def nvmlDeviceGetCount(self):  # noqa: N802
        return 2

    def nvmlDeviceGetHandleByIndex(self, i):  # noqa: N802
        return f"h{i}"

    def nvmlDeviceGetUUID(self, handle):  # noqa: N802
        return self.uuids[int(handle[1])].encode()  # older pynvml returns bytes

    def nvmlDeviceGetName(self, handle):  # noqa: N802
        return {"h0": "Fake B", "h1": "Fake A"}[handle]

    def nvmlSystemGetDriverVersion(self):  # noqa: N802
        return "550.54.15"

    def nvmlSystemGetCudaDriverVersion(self):  # noqa: N802
        return 12040


def fake_torch_gpu(monkeypatch, uuid: str) -> None:
    props = SimpleNamespace(name="Fake A torch", total_memory=8 * 2**30, major=9, minor=0, uuid=uuid)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: props)


def test_nvml_handle_matches_by_uuid_not_index(monkeypatch):
    fake_torch_gpu(monkeypatch, "aaaa-1111")  # torch's cuda:0 is NVML's index 1
    assert devices.nvml_handle("cuda:0", FakeNvml()) == "h1"


def test_nvml_handle_without_match_raises(monkeypatch):
    fake_torch_gpu(monkeypatch, "cccc-3333")
    with pytest.raises(RuntimeError, match="no NVML device"):
        devices.nvml_handle("cuda:0", FakeNvml())


def test_describe_cuda_with_fake_nvml(monkeypatch):
    fake_torch_gpu(monkeypatch, "aaaa-1111")
    monkeypatch.setattr(devices, "nvml", lambda: FakeNvml())
    info = devices.describe_device("cuda:0")
    assert info["device_name"] == "Fake A torch"
    assert info["nvml_name"] == "Fake A"
    assert info["driver_version"] == "550.54.15"
    assert info["cuda_driver_version"] == "12.4"
    assert info["total_memory_gib"] == 8.0 and info["capability"] == "9.0"


def test_describe_cuda_without_nvml_gives_reasons(monkeypatch):
    fake_torch_gpu(monkeypatch, "aaaa-1111")

    def broken():
        raise RuntimeError("NVML unavailable: NVMLError_LibraryNotFound")

    monkeypatch.setattr(devices, "nvml", broken)
    info = devices.describe_device("cuda:0")
    assert info["driver_version"] is None
    assert "LibraryNotFound" in info["driver_version_why"]
    assert info["device_name"] == "Fake A torch"


def test_cuda_version_format():
    assert devices._cuda_version(12040) == "12.4"
    assert devices._cuda_version(11080) == "11.8"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_describe_real_gpu():
    info = devices.describe_device("cuda:0")
    assert info["device_name"] == torch.cuda.get_device_name(0)
    assert info["driver_version"] is not None, info.get("driver_version_why")
    assert info["nvml_name"]


def test_machine_memory_of_the_cpu_is_the_smaller_of_ram_and_the_cgroup_limit(monkeypatch):
    import os

    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    got, what = devices.machine_memory("cpu")
    assert 0 < got <= ram and what in ("physical RAM", "the container's memory limit")
    monkeypatch.setattr(devices, "_cgroup_limit", lambda: 2**30)
    assert devices.machine_memory("cpu") == (2**30, "the container's memory limit")
    monkeypatch.setattr(devices, "_cgroup_limit", lambda: None)
    assert devices.machine_memory("cpu") == (ram, "physical RAM")


def test_machine_memory_of_a_gpu_is_its_total_memory(monkeypatch):
    fake_torch_gpu(monkeypatch, "aaaa-1111")
    assert devices.machine_memory("cuda:0") == (8 * 2**30, "total memory of cuda:0")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_cases_are_checked_against_the_gpus_memory_and_for_nan_outputs(tmp_path, write_suite):
    from bench.cli import main
    from bench.results import read_records

    total = torch.cuda.get_device_properties(0).total_memory
    text = """
    [suite]
    name = "gpu"
    time_steps = [{T}]
    devices = ["cuda:0"]
    metrics = ["params"]
    [data]
    dataset = "synthetic"
    image_size = 224
    max_samples = 64
    batch_size = 64
    [[models]]
    name = "sew_resnet18"
    label = "sew"
    [[models]]
    name = "toy_models:nan_model"
    label = "nan"
    """
    # sew_resnet18 at 224 px: the stem's 64x112x112 float32 output per step and sample (3.06 MiB).
    too_many = total // (64 * 112 * 112 * 4 * 64) + 1
    assert main(["run", str(write_suite(text.format(T=too_many))), "--out", str(tmp_path / "big"), "-q"]) == 2
    assert main(["run", str(write_suite(text.format(T=2), "ok.toml")), "--out", str(tmp_path / "r"), "-q"]) == 1
    status = {r["model"]["label"]: (r["status"], (r["error"] or {}).get("type")) for r in
              read_records(tmp_path / "r" / "results.jsonl")}
    assert status == {"sew": ("ok", None), "nan": ("failed", "NonFiniteOutputError")}


def test_cpu_identity_names_the_processor_and_torch_kernels():
    ident = devices.cpu_identity()
    assert ident.endswith(f"; torch kernels {torch.backends.cpu.get_cpu_capability()}")
    if Path("/proc/cpuinfo").is_file():  # the first processor's block, read here
        block = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
        fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in block.splitlines())}
        if "vendor_id" in fields:  # x86 (the Arm form is tested on a made-up file below)
            assert ident.startswith(f"{fields['vendor_id']} family {fields['cpu family']} model {fields['model']} "
                                    f"stepping {fields['stepping']};")
        assert devices.cpu_name() == fields.get("model name", devices.cpu_name())


@pytest.mark.parametrize("text, expected", [
    ("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\nmodel name\t: Intel Xeon\n"
     "stepping\t: 8\n\nprocessor\t: 1\nvendor_id\t: Other\n", "GenuineIntel family 6 model 143 stepping 8"),
    ("processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x1\n"
     "CPU part\t: 0xd0c\nCPU revision\t: 1\n\nprocessor\t: 1\n",
     "CPU implementer 0x41, CPU architecture 8, CPU variant 0x1, CPU part 0xd0c, CPU revision 1"),
])
def test_cpu_identity_reads_the_first_processor_on_x86_and_arm(monkeypatch, text, expected):
    import io

    monkeypatch.setattr(devices, "open", lambda *a, **k: io.StringIO(text), raising=False)
    assert devices.cpu_identity() == f"{expected}; torch kernels {torch.backends.cpu.get_cpu_capability()}"


def test_cpu_identity_without_proc_cpuinfo_falls_back_to_platform(monkeypatch):
    def unreadable(*args, **kwargs):
        raise OSError("no /proc here")

    monkeypatch.setattr(devices, "open", unreadable, raising=False)
    monkeypatch.setattr(devices.platform, "processor", lambda: "arm")
    assert devices.cpu_identity() == f"arm; torch kernels {torch.backends.cpu.get_cpu_capability()}"
