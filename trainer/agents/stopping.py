"""A stop signal for players that think for a while (search), set by whoever asked.

The snake server sets one per `/move` and fires it when the client hangs up
(the game engine gave up waiting): a search then stops at its next node instead
of burning CPU on an answer nobody reads. It travels in a context variable, so
the `Player.act` interface stays as it is and players that never look at it
are unaffected.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator

_SIGNAL: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "ouroboros_stop_signal", default=None)


@contextlib.contextmanager
def stop_on(event: threading.Event) -> Iterator[threading.Event]:
    """Players called inside the block stop thinking once `event` is set."""
    token = _SIGNAL.set(event)
    try:
        yield event
    finally:
        _SIGNAL.reset(token)


def current() -> threading.Event | None:
    """The stop signal of the calling context, or None (nobody will ask to stop)."""
    return _SIGNAL.get()
