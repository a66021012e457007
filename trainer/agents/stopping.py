"""When a thinking player (search) must stop, as set by whoever asked for the move.

The snake server gives every `/move` two limits here: a deadline counted from
the moment the request's first byte arrived (so time spent queued, reading and
parsing counts against the game's timeout, not only the player's own thinking),
and an event it fires when the client hangs up (the game engine gave up
waiting: nobody reads that answer). A search stops at its next node when
either is due. They travel in a context variable, so the `Player.act`
interface stays as it is and players that never look are unaffected.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import threading
from collections.abc import Iterator


@dataclasses.dataclass(frozen=True)
class Limits:
    """What the caller asks of a player thinking on its behalf."""

    deadline: float | None = None
    """`time.perf_counter()` value by which the answer must be ready (None: the player's own budget)."""
    hung_up: threading.Event | None = None
    """Set once nobody waits for the answer any more."""

    def sooner(self, own: float) -> float:
        """The player's own deadline `own` (a `time.perf_counter()` value; inf: none) or the
        caller's, whichever comes first."""
        return own if self.deadline is None else min(own, self.deadline)


_LIMITS: contextvars.ContextVar[Limits] = contextvars.ContextVar(
    "ouroboros_stop_limits", default=Limits())  # noqa: B039 - frozen, never mutated


@contextlib.contextmanager
def limits(deadline: float | None = None, hung_up: threading.Event | None = None) -> Iterator[Limits]:
    """Players called inside the block stop by `deadline` and once `hung_up` is set (each
    narrows what an enclosing block set)."""
    outer = _LIMITS.get()
    if outer.deadline is not None and deadline is not None:
        deadline = min(deadline, outer.deadline)
    merged = Limits(deadline if deadline is not None else outer.deadline, hung_up or outer.hung_up)
    token = _LIMITS.set(merged)
    try:
        yield merged
    finally:
        _LIMITS.reset(token)


def current() -> Limits:
    """The limits of the calling context (none set: `Limits()`)."""
    return _LIMITS.get()
