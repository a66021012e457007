"""What every handler gets: settings, the API client, metrics, per-run locks, timers, the replay reader.

One `Context` is built by `main` and closed over by the handlers when they are
registered, instead of living in module globals, so a test can run two
operators side by side or swap the API client for a fake.

Why our own per-object locks and timers instead of kopf's: kopf serialises the
handlers of one object of one resource kind, but a run is reconciled from three
sources, its own watch events, the watch events of its Jobs (another kind) and
the periodic resync, so two reconciles of one run could interleave; `KeyedLocks`
serialises them by run. kopf's `@kopf.timer`/`@kopf.daemon` keep progress state
on the object (annotations or status) and need the object's own handler to
fire; the controllers use only `on.event` so kopf stores nothing on the objects
and replays everything at start-up, and a TTL deletion is a one-shot wake-up
keyed by run (`Timers`). Both are small, tested (tests/unit/test_operator_reconcile.py),
and would be replaced by kopf's if kopf grew cross-kind serialisation.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar

from ouroboros.operator.kube import ApiError, KubeClient
from ouroboros.operator.metrics import Metrics
from ouroboros.operator.replay import ReplayReader
from ouroboros.operator.settings import OperatorSettings

_log = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES = 5
"""Passes one reconcile makes when its status write keeps losing to a newer version of the object."""

T = TypeVar("T")


def utcnow() -> datetime:
    """Now, to the second (metav1.Time has second resolution)."""
    return datetime.now(UTC).replace(microsecond=0)


class KeyedLocks:
    """One lock per key, so two events about the same run never reconcile it at once."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: tuple[str, str]) -> Iterator[None]:
        """Hold the key's lock for the duration of the block."""
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


class Timers:
    """At most one pending wake-up per key (e.g. a run's TTL), on daemon threads."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._timers: dict[tuple[str, str], threading.Timer] = {}

    def schedule(self, key: tuple[str, str], delay: float, fn: Callable[[], object]) -> None:
        """Call `fn` after `delay` seconds, replacing any pending call for `key`."""
        timer = threading.Timer(max(delay, 0.0), fn)
        timer.daemon = True
        with self._guard:
            old = self._timers.pop(key, None)
            self._timers[key] = timer
        if old is not None:
            old.cancel()
        timer.start()

    def cancel_all(self) -> None:
        """Drop every pending wake-up (at shutdown)."""
        with self._guard:
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()


@dataclasses.dataclass
class Context:
    """Shared by the handlers of one operator process."""

    settings: OperatorSettings
    kube: KubeClient
    metrics: Metrics
    locks: KeyedLocks = dataclasses.field(default_factory=KeyedLocks)
    timers: Timers = dataclasses.field(default_factory=Timers)
    replay: ReplayReader = dataclasses.field(default_factory=ReplayReader)
    clock: Callable[[], datetime] = utcnow

    def post_events(self, obj: dict, events) -> None:
        """Post a decision's Events on ``obj`` (each with .type, .reason, .message), best effort:
        a failure is logged and counted out, never raised (the status is already written)."""
        meta = obj.get("metadata") or {}
        for event in events:
            try:
                self.kube.post_event(obj, event.type, event.reason, event.message, self.clock())
                self.metrics.events_total.labels(event.type, event.reason).inc()
            except ApiError as exc:
                _log.warning("could not post event %s on %s %s/%s: %s", event.reason, obj.get("kind", "object"),
                             meta.get("namespace"), meta.get("name"), exc)



def retry_on_conflict(ctx: Context, controller: str, what: str, attempt: Callable[[], T]) -> T | None:
    """``attempt()`` (read the object, decide, act, write its status) until it ends without a write
    conflict, at most :data:`MAX_CONFLICT_RETRIES` times; returns what it returned.

    A conflict is the API server's optimistic-concurrency refusal (HTTP 409 ``Conflict``: the object
    changed since it was read), the one case where reading it again and deciding again is right
    (Kubernetes API conventions, "Concurrency Control and Consistency"); a 409 ``AlreadyExists``
    and every other ApiError propagate. Each repeat is counted in ``workqueue_retries_total`` of
    ``controller``. After the last attempt a warning names ``what`` (``TrainingRun ns/name``) and
    None is returned: the object's next event or resync tries again.
    """
    for tried in range(MAX_CONFLICT_RETRIES):
        if tried:
            ctx.metrics.retried(controller)
        try:
            return attempt()
        except ApiError as exc:
            if exc.status != 409 or exc.reason == "AlreadyExists":
                raise
    _log.warning("%s kept changing during %d attempts; leaving it to the next event", what, MAX_CONFLICT_RETRIES)
    return None


def reconcile_logged(ctx: Context, kind: str, reconcile: Callable[[Context, str, str], float | None],
                     namespace: str, name: str, key: Hashable | None = None) -> None:
    """``reconcile(ctx, namespace, name)`` from a background caller (a timer, a resync, another
    controller): an error is logged with its traceback instead of raised, so one object's failure
    never stops the others; the wake-up it asks for (seconds) is scheduled under ``key`` (one
    pending per key) and calls this again."""
    try:
        delay = reconcile(ctx, namespace, name)
    except Exception:  # noqa: BLE001 - a background pass must survive any one object's error
        _log.exception("reconciling %s %s/%s failed", kind, namespace, name)
        return
    if delay is not None and key is not None:
        ctx.timers.schedule(key, delay, lambda: reconcile_logged(ctx, kind, reconcile, namespace, name, key))
