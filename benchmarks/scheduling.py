"""The schedule decision's cost: one reconcile pass, and catching up after downtime.

    python -m benchmarks.scheduling [--repeats 7]

Cases (each the median of `--repeats` timed calls of `scheduling.decide`):

- nightly: `0 2 * * *` in Europe/Amsterdam, 10 owned runs, a time due now;
- a year down: `* * * * *` whose lastScheduleTime is a year old (525,600
  missed minutes), missedRunPolicy RunOnce.

Peer for the second case: enumerating every missed time forward with
croniter, which is what a controller that counts the misses one by one pays
(CronJob stops counting at 100 for the same reason). The decision walks back
from now and stops after 101 times.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

from croniter import croniter

from ouroboros.operator import scheduling
from ouroboros.operator.resources import TrainingSchedule

NOW = datetime(2026, 11, 30, 1, 0, 5, tzinfo=UTC)


def _schedule(expressions, zone, last) -> TrainingSchedule:
    return TrainingSchedule.model_validate({
        "metadata": {"name": "bench", "namespace": "ns", "uid": "u", "generation": 1,
                     "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {"schedules": expressions, "timeZone": zone, "concurrencyPolicy": "Allow",
                 "template": {"spec": {"champion": "main", "phases": [{"name": "self_play"}]}}},
        "status": {"lastScheduleTime": last.strftime("%Y-%m-%dT%H:%M:%SZ")},
    })


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    nightly = _schedule(["0 2 * * *"], "Europe/Amsterdam", NOW - timedelta(days=1))
    runs = [scheduling.OwnedRun(name=f"bench-{i}", phase="Succeeded", created=NOW - timedelta(days=i + 1),
                                completion_time=NOW - timedelta(days=i + 1)) for i in range(10)]
    t = _median_seconds(lambda: scheduling.decide(nightly, runs, scheduling.Observations(), NOW), args.repeats)
    print(f"nightly pass (10 owned runs, one due): {t * 1e3:.2f} ms per decide")
    year = _schedule(["* * * * *"], "Etc/UTC", NOW - timedelta(days=365))
    ours = _median_seconds(lambda: scheduling.decide(year, [], scheduling.Observations(), NOW), args.repeats)

    def forward() -> int:
        it, count = croniter("* * * * *", NOW - timedelta(days=365)), 0
        while it.get_next(datetime) <= NOW:
            count += 1
        return count

    peer = _median_seconds(forward, max(1, args.repeats // 3))
    print(f"a year down (525,600 missed minutes): decide {ours * 1e3:.1f} ms; "
          f"croniter forward enumeration {peer:.2f} s; ratio {peer / ours:.0f}x")


if __name__ == "__main__":
    main()
