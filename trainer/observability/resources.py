"""What this process and its machine use and have left, through psutil.

`ResourceSampler.sample()` gives the `ResourceUsage` a progress record
carries (process CPU time and share of a core since the last sample, resident
memory, the store's bytes and its filesystem's free space, GPU memory when
torch sees a GPU); `system_facts()` the machine facts a support bundle and the
preflight checks start from. psutil is the well-kept, cross-platform way to
read these (the design card names it); nothing here parses /proc by hand.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from ouroboros.contract.progress import ResourceUsage

STORE_SIZE_EVERY_SECONDS = 60.0
"""Walking a store's folder is cheap but not free: its size is refreshed at most this often."""


def folder_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes of the regular files under `path` (0 if it does not exist); symlinks are not followed."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue  # a temp file renamed away under us
    return total


def existing_parent(path: str | os.PathLike[str]) -> Path:
    """`path` or its nearest existing ancestor (for disk_usage of a folder not made yet)."""
    p = Path(path).resolve()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def gpu_memory_bytes() -> int | None:
    """Bytes torch has reserved on the current GPU, or None without torch or a GPU (torch is never imported here)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.cuda.is_available():
            return None
        return int(torch.cuda.memory_reserved())
    except Exception:  # noqa: BLE001 - a broken driver must not stop training
        return None


def peak_rss_bytes() -> int:
    """This process's peak resident set size, bytes (getrusage; 0 where the platform has none)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS reports bytes, Linux KiB


class ResourceSampler:
    """Samples this process's resource use; `local_folder` is the run's folder in a local store, if any."""

    def __init__(self, local_folder: str | None = None, clock=time.monotonic) -> None:
        self.process = psutil.Process()
        self.process.cpu_percent(None)  # the first call only sets the baseline
        self.local_folder = local_folder
        self.clock = clock
        self._store_bytes: int | None = None
        self._store_measured = float("-inf")

    def sample(self) -> ResourceUsage:
        """The process's use now (CPU share since the previous sample)."""
        with self.process.oneshot():
            times = self.process.cpu_times()
            cpu = self.process.cpu_percent(None)
            rss = self.process.memory_info().rss
        free = None
        if self.local_folder is not None:
            now = self.clock()
            if now - self._store_measured >= STORE_SIZE_EVERY_SECONDS:
                self._store_bytes = folder_bytes(self.local_folder)
                self._store_measured = now
            free = psutil.disk_usage(str(existing_parent(self.local_folder))).free
        return ResourceUsage(
            cpu_seconds=round(times.user + times.system, 3), cpu_percent=round(cpu, 1), resident_memory_bytes=rss,
            peak_resident_memory_bytes=max(rss, peak_rss_bytes()),
            store_bytes=self._store_bytes, disk_free_bytes=free, gpu_memory_bytes=gpu_memory_bytes())


def system_facts(disk_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Machine facts: OS, Python, CPUs, memory, load, and the disk holding `disk_path` (bytes)."""
    vm = psutil.virtual_memory()
    facts: dict[str, Any] = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus_logical": psutil.cpu_count(logical=True),
        "cpus_physical": psutil.cpu_count(logical=False),
        "cpu_affinity": len(psutil.Process().cpu_affinity()) if hasattr(psutil.Process, "cpu_affinity") else None,
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "memory_total_bytes": vm.total,
        "memory_available_bytes": vm.available,
        "boot_time": psutil.boot_time(),
    }
    if disk_path is not None:
        where = existing_parent(disk_path)
        du = psutil.disk_usage(str(where))
        facts["disk"] = {"path": str(where), "total_bytes": du.total, "free_bytes": du.free}
    return facts
