"""A phase's live progress: the `Reporter` that keeps count and writes progress records.

`ProgressRecorder` sits between a phase and the reporter it was given (rich
bars, log lines): every `task`/`advance` and `scalar` call passes through to
it and is also counted here. A daemon thread turns the counts into a
`ProgressRecord` every `interval` seconds (15 s by default; the promise is at
most 30 s) and hands it to its sinks: the artifact store (where the operator
reads it into the TrainingRun's status and metrics; see
`ouroboros.contract.progress`) and, for `ouro train` writing to a
pipe or a log file, a one-line printer. A thread rather than a check inside
`advance`, because one batch of self-play games can outlast the interval
without a single call.

Conventions the counts rely on (the phases follow them):

* a task whose description ends in "games" advances by games played;
* the scalar `<phase>/positions` is the number of positions recorded so far;
* the evaluate phase's gate reports `sprt/llr`, `sprt/lower_bound` and
  `sprt/upper_bound` after every chunk of games (`contract.progress.SPRT_SCALARS`);
* the phase's long steps are announced up front as `planned_steps`
  (`planned_steps(phase, worker)`): the share done counts each step equally,
  and within a step by its units.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from ouroboros.contract.progress import (
    HISTORY_POINTS,
    PROGRESS_INTERVAL_SECONDS,
    ProgressRecord,
    ResourceUsage,
)
from ouroboros.contract.training_metrics import TrainingSeries, classify
from ouroboros.contract.vocabulary import TEACHER_PHASES

log = logging.getLogger(__name__)

Sink = Callable[[ProgressRecord], None]


def planned_steps(kind: str, iterations: int, worker: int = 0) -> int:
    """Long steps a phase announces: bootstrap and distill play then train (2); an RL phase plays and
    trains per iteration (2 x iterations); an extra self-play worker only plays once (1)."""
    if kind in {p.value for p in TEACHER_PHASES}:
        return 2
    return 1 if worker > 0 else 2 * max(1, iterations)


@dataclasses.dataclass
class _Step:
    description: str
    total: int
    completed: int = 0
    games: bool = False


class ProgressRecorder:
    """A `Reporter` that counts what passes through it and publishes `ProgressRecord`s.

    `inner` is the reporter that shows progress (its `task`/`scalar` are
    called as before); `sinks` receive each record; `sampler` gives resource
    use (a `ResourceSampler` or anything with `sample() -> ResourceUsage`).
    Use as a context manager: the thread starts on entry and, on exit, one
    last record (`done` if the body raised nothing) is published.
    """

    def __init__(self, inner, *, run: str, phase: str, worker: int = 0, planned: int = 1,
                 sinks: tuple[Sink, ...] = (), sampler=None, interval: float = PROGRESS_INTERVAL_SECONDS,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.inner, self.run, self.phase, self.worker = inner, run, phase, worker
        self.planned = max(1, planned)
        self.sinks, self.sampler, self.interval = sinks, sampler, interval
        self.clock, self.wall = clock, wall
        self._lock = threading.Lock()
        self._steps: list[_Step] = []
        self._scalars: dict[str, float] = {}
        self._history: dict[str, list[tuple[int, float]]] = {}
        self._positions = 0
        self._started = clock()
        self._started_at = wall()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ Reporter

    def task(self, description: str, total: int) -> Callable[[int], None]:
        """Start a long step of `total` units; returns `advance(n)` (the inner reporter's too)."""
        step = _Step(description, max(0, int(total)), games=description.rstrip().endswith("games"))
        with self._lock:
            self._steps.append(step)
        inner_advance = self.inner.task(description, total)

        def advance(n: int) -> None:
            with self._lock:
                step.completed += int(n)
            inner_advance(n)

        return advance

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Record one scalar (and pass it on); `<phase>/` is dropped from the key kept here."""
        key = tag.split("/", 1)[1] if tag.startswith(f"{self.phase}/") else tag
        with self._lock:
            if key == "positions":
                self._positions = int(value)
            else:
                self._scalars[key] = float(value)
                points = self._history.setdefault(key, [])
                points.append((int(step), float(value)))
                if len(points) > HISTORY_POINTS:  # thin: every other point, the newest always kept
                    points[:] = points[-1::-2][::-1]
        self.inner.scalar(tag, value, step)

    # ------------------------------------------------------------------ records

    def record(self, done: bool = False) -> ProgressRecord:
        """The progress as of now."""
        usage = self.sampler.sample() if self.sampler is not None else ResourceUsage()
        elapsed = max(self.clock() - self._started, 1e-9)
        with self._lock:
            current = self._steps[-1] if self._steps else None
            finished = max(0, len(self._steps) - 1)
            within = min(1.0, current.completed / current.total) if current and current.total else 0.0
            fraction = 1.0 if done else min(1.0, (finished + within) / self.planned)
            games = sum(s.completed for s in self._steps if s.games)
            positions, scalars = self._positions, dict(self._scalars)
            history = {k: list(v) for k, v in self._history.items()}
        eta = None if done else (elapsed * (1 - fraction) / fraction if fraction > 0 else None)
        return ProgressRecord(
            run=self.run, phase=self.phase, worker=self.worker, started_at=self._started_at, updated_at=self.wall(),
            step=(current.description if current else "")[:200],
            step_completed=min(current.completed, current.total) if current else 0,
            step_total=current.total if current else 0,
            fraction=round(fraction, 4), eta_seconds=round(eta, 1) if eta is not None else None,
            games=games, positions=positions,
            games_per_second=round(games / elapsed, 3), positions_per_second=round(positions / elapsed, 3),
            scalars=scalars, history=history, resources=usage, done=done)

    def publish(self, done: bool = False) -> ProgressRecord:
        """Build a record and hand it to every sink (a failing sink is logged, never raised)."""
        rec = self.record(done)
        for sink in self.sinks:
            try:
                sink(rec)
            except Exception as exc:  # noqa: BLE001 - progress must never stop training
                log.warning("progress sink %s failed: %s", getattr(sink, "__name__", sink), exc)
        return rec

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.publish()

    def __enter__(self) -> ProgressRecorder:
        self.publish()
        self._thread = threading.Thread(target=self._loop, name=f"progress-{self.phase}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)
        with contextlib.suppress(Exception):
            self.publish(done=exc_type is None)


def store_sink(store, key: str) -> Sink:
    """A sink that replaces the JSON document `key` in an `ArtifactStore` atomically."""

    def write(rec: ProgressRecord) -> None:
        store.write_json(key, rec.to_api())

    write.__name__ = f"store:{key}"
    return write


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def format_line(rec: ProgressRecord) -> str:
    """One human line: phase, share done, ETA, the step, counts, throughput, losses, win rates, memory.

    >>> format_line(ProgressRecord(run="r", phase="hybrid", started_at=datetime(2026, 1, 1, tzinfo=UTC),
    ...     updated_at=datetime(2026, 1, 1, tzinfo=UTC), fraction=0.5, eta_seconds=75, step="hybrid 1/2: games",
    ...     step_completed=3, step_total=8, games=3, scalars={"policyLoss": 1.25})).split(" | ")[:3]
    ['00:00:00 hybrid  50.0% eta 1m15s', 'hybrid 1/2: games 3/8', 'games 3 (0.0/s) positions 0 (0/s)']
    """
    parts = [f"{rec.updated_at:%H:%M:%S} {rec.phase} {100 * rec.fraction:5.1f}% eta {_duration(rec.eta_seconds)}"
             + (" done" if rec.done else "")]
    if rec.step:
        parts.append(f"{rec.step} {rec.step_completed}/{rec.step_total}")
    parts.append(f"games {rec.games} ({rec.games_per_second:.1f}/s) positions {rec.positions} "
                 f"({rec.positions_per_second:.0f}/s)")
    curves = (TrainingSeries.LOSS, TrainingSeries.WIN_RATE)
    scalars = [f"{k} {v:.4g}" for k, v in sorted(rec.scalars.items()) if (classify(k) or (None,))[0] in curves]
    if scalars:
        parts.append(" ".join(scalars))
    parts.append(f"cpu {rec.resources.cpu_percent:.0f}% rss {rec.resources.resident_memory_bytes / 2**20:.0f} MiB")
    return " | ".join(parts)


def line_sink(write: Callable[[str], object]) -> Sink:
    """A sink that writes `format_line(record)` through `write` (e.g. a stderr printer)."""

    def emit(rec: ProgressRecord) -> None:
        write(format_line(rec))

    emit.__name__ = "line"
    return emit
