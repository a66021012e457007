"""Refuse to start a long job that would die halfway for lack of memory or disk.

`check(facts, thresholds)` is the pure decision: the shortfalls of the
measured free memory and free disk (of the filesystem holding the store)
against the thresholds, each with both numbers. `measure(path)` reads the
facts with psutil. Commands (`ouro train`) call both before the first phase
and print `describe(shortfalls)` instead of starting; the thresholds are
flags, and 0 turns a check off.
"""

from __future__ import annotations

import dataclasses
import re

import psutil
from pydantic import BaseModel, ConfigDict, Field

from ouroboros.trainer.observability.resources import existing_parent

GIB = 1 << 30
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "t": 1000**4, "tb": 1000**4, "ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20,
          "gi": 1 << 30, "gib": 1 << 30, "ti": 1 << 40, "tib": 1 << 40}


def parse_bytes(text: str) -> int:
    """`'512MiB'`, `'2GB'`, `'1.5Gi'`, `'0'` -> bytes (binary and decimal units, case-insensitive).

    Raises ValueError naming the text and the accepted form.
    """
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    unit = m and m[2].lower()
    if not m or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size: use a number with an optional unit (B, KB, MB, GB, KiB, MiB, GiB)")
    return int(float(m[1]) * _UNITS[unit])


def human(n: int | float) -> str:
    """Bytes as GiB/MiB with one decimal."""
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / (1 << 20):.1f} MiB"


class PreflightThresholds(BaseModel):
    """What a job needs free before it starts (0 turns a check off)."""

    model_config = ConfigDict(frozen=True)

    min_free_memory_bytes: int = Field(GIB, ge=0, description="Available memory (psutil's `available`), bytes.")
    min_free_disk_bytes: int = Field(2 * GIB, ge=0, description="Free space on the store's filesystem, bytes.")


@dataclasses.dataclass(frozen=True)
class Facts:
    """What `measure` saw."""

    memory_available_bytes: int
    disk_free_bytes: int | None
    """None for a store that is not on a local filesystem."""
    disk_path: str | None


@dataclasses.dataclass(frozen=True)
class Shortfall:
    """One resource below its threshold."""

    resource: str
    have: int
    need: int
    setting: str
    """The flag that sets the threshold."""
    where: str = ""

    def describe(self) -> str:
        where = f" on {self.where}" if self.where else ""
        return (f"{self.resource}{where}: {human(self.have)} free, {human(self.need)} needed "
                f"(set with {self.setting}; 0 turns the check off)")


def check(facts: Facts, thresholds: PreflightThresholds) -> list[Shortfall]:
    """The resources below their thresholds (empty: good to start)."""
    out = []
    if thresholds.min_free_memory_bytes and facts.memory_available_bytes < thresholds.min_free_memory_bytes:
        out.append(Shortfall("memory", facts.memory_available_bytes, thresholds.min_free_memory_bytes,
                             "--min-free-memory"))
    if (thresholds.min_free_disk_bytes and facts.disk_free_bytes is not None
            and facts.disk_free_bytes < thresholds.min_free_disk_bytes):
        out.append(Shortfall("disk", facts.disk_free_bytes, thresholds.min_free_disk_bytes, "--min-free-disk",
                             facts.disk_path or ""))
    return out


def measure(local_path: str | None) -> Facts:
    """Available memory, and free disk where `local_path` (a local store's folder, made or not) lives."""
    free = where = None
    if local_path is not None:
        where = str(existing_parent(local_path))
        free = psutil.disk_usage(where).free
    return Facts(psutil.virtual_memory().available, free, where)


def describe(shortfalls: list[Shortfall]) -> str:
    """The refusal message: one line per shortfall."""
    return "not enough resources to start:\n" + "\n".join(f"  {s.describe()}" for s in shortfalls)
