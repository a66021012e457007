"""Cron expressions in a time zone: validity, the times in an interval, the next time.

croniter does the parsing and the stepping; this module adds what Kubernetes
CronJob users expect around it. Daylight saving as CronJob (robfig/cron v3)
handles it: a wall-clock time inside the spring-forward gap does not exist
and does not run that day (croniter would shift it to the end of the gap; we
drop it, `_exists`), and a time inside the fall-back overlap exists twice and
runs twice (croniter yields both instants). All instants returned are UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

SEARCH_YEARS = 5
"""An expression with no time in this many years is refused (robfig/cron gives up after five too)."""


def utc(value: datetime) -> datetime:
    """`value` in UTC (a naive value is taken as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def zone(name: str) -> ZoneInfo:
    """The time zone; ValueError naming spec.timeZone if the IANA database does not know it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"spec.timeZone: unknown IANA time zone {name!r}") from exc


def check_expression(expression: str, tz: ZoneInfo, now: datetime) -> None:
    """ValueError if croniter refuses the expression or it never fires within SEARCH_YEARS."""
    try:
        nxt = croniter(expression, now.astimezone(tz), max_years_between_matches=SEARCH_YEARS).get_next(datetime)
    except CroniterBadDateError as exc:
        raise ValueError(f"never fires (no time in {SEARCH_YEARS} years)") from exc
    except (CroniterBadCronError, CroniterError, ValueError, KeyError) as exc:
        raise ValueError(f"not a cron expression croniter accepts ({exc})") from exc
    if nxt is None:
        raise ValueError("never fires")


def problem(schedules: list[str], time_zone: str, now: datetime) -> str | None:
    """What the operator refuses that the API server could not see, naming the spec field; None if fine."""
    try:
        tz = zone(time_zone)
    except ValueError as exc:
        return str(exc)
    for i, expression in enumerate(schedules):
        try:
            check_expression(expression, tz, now)
        except ValueError as exc:
            return f"spec.schedules[{i}] {expression!r}: {exc}"
    return None


def _exists(expression: str, local: datetime) -> bool:
    """Whether a croniter result is a real wall-clock match (False for times shifted out of a DST gap)."""
    return croniter.match(expression, local.replace(tzinfo=None))


def times_between(expressions: Iterable[str], tz: ZoneInfo, after: datetime, until: datetime,
                  limit: int) -> list[datetime]:
    """Fire times t with after < t <= until (UTC, oldest first, duplicates merged), at most the newest `limit`.

    Walks back from `until`, so the cost is bounded by `limit`, not by the span.
    """
    found: set[datetime] = set()
    for expression in expressions:
        it = croniter(expression, (until + timedelta(seconds=1)).astimezone(tz))
        count = 0
        while count < limit:
            t = it.get_prev(datetime)
            if utc(t) <= after:
                break
            if _exists(expression, t):
                found.add(utc(t))
                count += 1
    return sorted(found)[-limit:]


def next_time(expressions: Iterable[str], tz: ZoneInfo, after: datetime) -> datetime | None:
    """The first fire time strictly after `after` (UTC), over all expressions."""
    best = None
    for expression in expressions:
        it = croniter(expression, after.astimezone(tz), max_years_between_matches=SEARCH_YEARS)
        for _ in range(1000):  # at most a few skipped DST-gap times
            try:
                t = it.get_next(datetime)
            except CroniterBadDateError:
                t = None
            if t is None or _exists(expression, t):
                break
        if t is not None and (best is None or utc(t) < best):
            best = utc(t)
    return best
