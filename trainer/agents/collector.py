"""Python's cyclic garbage collector, kept out of a thinking player's answer time.

A search allocates thousands of small objects per move, so by its end the
collector's counts are far past their thresholds, and with it enabled the
next allocation runs the oldest due generation: a full pass walks every
object in the process (245 ms measured in an unfrozen process with torch
loaded, on this 2-core machine at load 1.6; 43 ms in a frozen `ouro serve`
on a quiet one). Where that lands decides whether a move meets its deadline.
So a thinking player (`agents.nsearch`) and the snake server
(`serving.server`, from a move's request read whole until its answer is
written) pause the automatic collector, and each pause begins by running the
generations that are due, inside the time the caller's clock already counts.
When the last pause ends the collector is back as it was, and what is due
then runs after the answer went out.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator


class Collector:
    """Python's cyclic garbage collector, paused while searches run and caught up as each one starts.

    Process-wide (the collector is), counted across threads: automatic collection is off from the
    first pause that starts until the last one running ends, then back as it was. Entering a pause
    first runs the oldest generation whose count is past its threshold (``gc.get_count()`` against
    ``gc.get_threshold()``, the rule the automatic collector applies), inside the caller's budget.
    With several threads searching at once a catch-up pauses the others too; they read the clock
    between rounds, so it costs them simulations, not their deadline.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._was_enabled = False

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Collection paused for the block (nested and concurrent blocks count), caught up on entry."""
        with self._lock:
            if self._running == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._running += 1
            if self._was_enabled:
                self.catch_up()
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0 and self._was_enabled:
                    gc.enable()

    @staticmethod
    def catch_up() -> int | None:
        """Run the oldest generation whose allocation count is past its threshold, as the automatic
        collector would have; returns that generation, or None when none is due."""
        due = [g for g, (count, limit) in enumerate(zip(gc.get_count(), gc.get_threshold(), strict=False))
               if limit and count > limit]
        if not due:
            return None
        gc.collect(due[-1])
        return due[-1]


COLLECTOR = Collector()
"""The process's one :class:`Collector` (every NeuralSearch and the snake server share it)."""
