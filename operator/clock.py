"""Where "now" comes from: the system clock, or a file a test or a drill controls.

Schedules are about time, and waiting a real night (or a real minute per
case) to test them is not an option. `OURO_CLOCK_FILE` (the operator) and
`ouro schedule run --clock-file` (one machine) name a file holding an ISO 8601
instant; every reading of the clock reads the file, so a test moves time by
rewriting it. Leave it unset in production.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path


def system_now() -> datetime:
    """Now, to the second (metav1.Time has second resolution)."""
    return datetime.now(UTC).replace(microsecond=0)


def read_clock_file(path: str | Path) -> datetime:
    """The instant written in `path` (ISO 8601; naive means UTC); ValueError naming the file if unreadable."""
    try:
        text = Path(path).read_text().strip()
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"clock file {path}: expected an ISO 8601 time such as 2026-11-30T02:00:00Z ({exc})") from exc
    return (value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)).replace(microsecond=0)


def clock(path: str | Path | None) -> Callable[[], datetime]:
    """A clock: the system's, or one reading `path` at every call."""
    if not path:
        return system_now
    return lambda: read_clock_file(path)
