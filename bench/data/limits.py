"""How much memory a dataset may take, and the check that refuses one before it is allocated.

The limit is ``BENCH_DATA_MEMORY_GIB`` (GiB) when set, else half of this machine's memory: physical
RAM, or the container's cgroup limit when that is lower; 8 GiB when neither can be read. A dataset
is refused when the sample data it loads up front, or one of its samples, would exceed the limit:
the error names the file or the suite setting, the bytes, the limit and the fix. Sizes are worked
out from what the suite declares and from file headers, never by allocating first.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.data.base import DatasetError

ENV_VAR = "BENCH_DATA_MEMORY_GIB"
MEMORY_FRACTION = 0.5
FALLBACK_BYTES = 8 * 2**30
FLOAT32_BYTES = 4
LABEL_BYTES = 8  # int64 labels
CGROUP_LIMIT_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def gib(nbytes: float) -> str:
    """Bytes as GiB with one decimal, or MiB below one GiB (what messages print)."""
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.1f} MiB"


def _cgroup_limit() -> int | None:
    """The container's memory limit in bytes (cgroup v2 or v1), None when unlimited or unreadable."""
    for name in CGROUP_LIMIT_FILES:
        try:
            text = Path(name).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text.isdigit() and int(text) < 2**60:  # v1 reports "no limit" as a huge number, v2 as "max"
            return int(text)
    return None


def machine_memory() -> tuple[int | None, str]:
    """This machine's memory in bytes (the lower of RAM and the cgroup limit) and where it was read."""
    try:
        ram: int | None = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        ram = None
    cgroup = _cgroup_limit()
    if cgroup is not None and (ram is None or cgroup < ram):
        return cgroup, "the container's cgroup memory limit"
    return ram, "this machine's RAM"


def memory_limit() -> tuple[int, str]:
    """The data memory limit in bytes and a phrase saying where it comes from (printed in refusals)."""
    value = os.environ.get(ENV_VAR)
    if value is not None:
        try:
            limit = float(value)
        except ValueError:
            limit = math.nan
        if not math.isfinite(limit) or limit <= 0:
            raise DatasetError(f"environment variable {ENV_VAR}={value!r} is not a positive number of GiB. "
                               f"Fix: set it to e.g. 16, or unset it to use half of this machine's memory")
        return int(limit * 2**30), f"{ENV_VAR}={value}"
    total, source = machine_memory()
    if total is None:
        return FALLBACK_BYTES, f"a fixed {gib(FALLBACK_BYTES)} ({ENV_VAR} sets it; this machine's memory is unknown)"
    return int(total * MEMORY_FRACTION), f"half of {source}, {gib(total)}; {ENV_VAR} sets it"


def check_fits(nbytes: int, what: str, fix: str) -> None:
    """Refuse ``what`` (a phrase naming the file or setting and the size) when ``nbytes`` exceeds the limit."""
    limit, source = memory_limit()
    if nbytes > limit:
        raise DatasetError(f"{what} would take {gib(nbytes)} ({nbytes:,} bytes), over the data memory limit "
                           f"of {gib(limit)} ({source}). Fix: {fix}")


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a dataset holds once loaded, worked out before loading.

    ``resident_bytes``: sample data loaded up front (images and labels held as tensors); 0 for datasets
    read per item (ImageFolder, event frames), whose file lists are not counted. ``sample_bytes``: one
    item as the runner receives it (float32, before batching and repetition over T); a batch of static
    images repeated over T takes ``batch x T x sample_bytes``, a batch of frames ``batch x sample_bytes``
    cut to ``T / frames``. ``basis`` says how the figures were obtained.
    """

    resident_bytes: int
    sample_bytes: int
    basis: str

    def check(self, what: str, fix: str) -> None:
        """Refuse the dataset when its resident data or one sample would exceed the memory limit."""
        check_fits(self.resident_bytes, f"{what} ({self.basis})", fix)
        check_fits(self.sample_bytes, f"one sample of {what} ({self.basis})", fix)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def float_bytes(*shape: int) -> int:
    """Bytes of a float32 tensor of ``shape`` (Python integers: no overflow)."""
    return math.prod(shape) * FLOAT32_BYTES
