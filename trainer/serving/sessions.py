"""Per-game state between `/start` and `/end`, in a bounded, thread-safe store.

A server plays many games at once and the engine does not promise an `/end`
(a crashed engine, a dropped request), so the store is capped: when full, the
game heard from longest ago is dropped. A `/move` for a game we never saw
`/start` for (the server restarted mid-game) simply opens a session, so a
restart costs nothing but the seed of the game's random numbers.

What a session keeps is what must not be shared between games: the random
generator (numpy generators are not thread-safe; one game's moves arrive one
at a time) and the player built for the game's time budget. It also keeps the
per-game figures logged at `/end`.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
import zlib

import numpy as np

from ouroboros.trainer.agents.base import Player


@dataclasses.dataclass
class Session:
    """One game as the server sees it."""

    game_id: str
    player: Player
    rng: np.random.Generator
    budget_ms: int
    """Thinking time the player was built with (0: not a budgeted player)."""
    started: float = dataclasses.field(default_factory=time.monotonic)
    last_seen: float = dataclasses.field(default_factory=time.monotonic)
    moves: int = 0
    fallbacks: int = 0
    """Moves answered by the fallback because the player raised."""
    slowest_ms: float = 0.0
    """Longest time the player took for one move."""
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    """Serialises this game's moves (its rng) if an engine ever overlaps them."""

    def record(self, elapsed_ms: float, fell_back: bool) -> None:
        self.moves += 1
        self.fallbacks += int(fell_back)
        self.slowest_ms = max(self.slowest_ms, elapsed_ms)
        self.last_seen = time.monotonic()

    def summary(self) -> str:
        return (f"{self.moves} moves in {time.monotonic() - self.started:.1f}s, slowest "
                f"{self.slowest_ms:.1f} ms, {self.fallbacks} fallbacks")


def game_rng(game_id: str) -> np.random.Generator:
    """A generator seeded from the game id: a replayed game replays its tie-breaks."""
    return np.random.default_rng(zlib.crc32(game_id.encode()))


class SessionStore:
    """game id -> Session, at most `capacity` of them, least recently used dropped first."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity {capacity} must be at least 1")
        self.capacity = capacity
        self._sessions: collections.OrderedDict[str, Session] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.evicted = 0
        """Sessions dropped for room (games whose /end never came)."""

    def get_or_open(self, game_id: str, opener) -> tuple[Session, bool]:
        """The game's session, opened with `opener()` if absent; (session, opened)."""
        with self._lock:
            session = self._sessions.get(game_id)
            if session is not None:
                self._sessions.move_to_end(game_id)
                return session, False
        fresh = opener()  # outside the lock: building a player may take a while
        with self._lock:
            session = self._sessions.get(game_id)
            if session is not None:  # a concurrent request opened it first
                self._sessions.move_to_end(game_id)
                return session, False
            self._sessions[game_id] = fresh
            while len(self._sessions) > self.capacity:
                self._sessions.popitem(last=False)
                self.evicted += 1
            return fresh, True

    def close(self, game_id: str) -> Session | None:
        """Removes and returns the game's session (None if unknown)."""
        with self._lock:
            return self._sessions.pop(game_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def __contains__(self, game_id: str) -> bool:
        with self._lock:
            return game_id in self._sessions
