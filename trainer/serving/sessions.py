"""Per-snake game state between `/start` and `/end`, in a bounded, thread-safe store.

A session belongs to one of our snakes in one game, keyed by (game id, snake
id): one server may play several snakes of the same game, whose requests
arrive at once and must not wait on each other. A server plays many games at
once and the engine does not promise an `/end` (a crashed engine, a dropped
request), so the store is capped: when full, the session heard from longest
ago is dropped. A `/move` without a `/start` (the server restarted mid-game)
simply opens a session, so a restart costs nothing but the seed of the
game's random numbers.

What a session keeps is what must not be shared: the random generator (numpy
generators are not thread-safe; one snake's moves arrive one at a time) and
the player built for the game's time budget. It also keeps the figures
logged at `/end`.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
import zlib

import numpy as np

from ouroboros.trainer.agents.base import Player

Key = tuple[str, str]
"""(game id, snake id)."""


@dataclasses.dataclass
class Session:
    """One of our snakes in one game, as the server sees it."""

    game_id: str
    snake_id: str
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


def game_rng(game_id: str, snake_id: str) -> np.random.Generator:
    """A generator seeded from the ids: a replayed game replays its tie-breaks."""
    return np.random.default_rng([zlib.crc32(game_id.encode()), zlib.crc32(snake_id.encode())])


class SessionStore:
    """(game id, snake id) -> Session, at most `capacity`, least recently used dropped first."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity {capacity} must be at least 1")
        self.capacity = capacity
        self._sessions: collections.OrderedDict[Key, Session] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.evicted = 0
        """Sessions dropped for room (games whose /end never came)."""

    def get_or_open(self, key: Key, opener) -> tuple[Session, bool]:
        """The session at `key`, opened with `opener()` if absent; (session, opened)."""
        with self._lock:
            session = self._sessions.get(key)
            if session is not None:
                self._sessions.move_to_end(key)
                return session, False
        fresh = opener()  # outside the lock: building a player may take a while
        with self._lock:
            session = self._sessions.get(key)
            if session is not None:  # a concurrent request opened it first
                self._sessions.move_to_end(key)
                return session, False
            self._sessions[key] = fresh
            while len(self._sessions) > self.capacity:
                self._sessions.popitem(last=False)
                self.evicted += 1
            return fresh, True

    def close(self, game_id: str, snake_id: str | None = None) -> list[Session]:
        """Removes and returns the sessions of one snake, or of every snake of the game."""
        with self._lock:
            keys = ([(game_id, snake_id)] if snake_id is not None
                    else [k for k in self._sessions if k[0] == game_id])
            return [s for s in (self._sessions.pop(k, None) for k in keys) if s is not None]

    def games(self) -> set[str]:
        """Ids of the games with an open session."""
        with self._lock:
            return {game_id for game_id, _ in self._sessions}

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def __contains__(self, key: Key) -> bool:
        with self._lock:
            return key in self._sessions
