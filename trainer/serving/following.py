"""A server that follows the registry's champion: new versions reach games without a restart.

`ouro serve --player champion` plays the champion of one game from the model
registry (the store's ``champions/<game>.json``, the source of truth the
Champion controller also mirrors). A :class:`ChampionFollower` holds the
version in force and, at most every ``interval_s`` seconds and only when a
game opens, re-reads the pointer. When the pointer names another version (a
promotion, a rollback, a pin), it loads it: the bytes must match the sha256
the pointer records (``Registry.load_champion``) and the model must pass the
ONNX contract (``agents.neural.check_model``), and only then does it become
the player of games that start afterwards. A game keeps the player it started
with to its end, so a switch never happens mid-game. A corrupt or unloadable
new version is refused: the old one keeps playing, the refusal is logged once
per version and counted (``refused``), and the pointer is tried again at the
next interval (a repaired artifact is then picked up).

The counters and the version in force appear in ``GET /`` under
``"champion"`` (the server has no Prometheus endpoint).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ouroboros.trainer.agents import neural
from ouroboros.trainer.agents.base import Player
from ouroboros.trainer.artifacts import registry as reg

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 10.0
"""How often, at most, a new game re-reads the champion pointer."""


class ChampionFollower:
    """The champion of ``game`` in ``store``, re-read between games. Thread-safe."""

    def __init__(self, game: str, store: str, interval_s: float = DEFAULT_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic,
                 build: Callable[[bytes, str], Player] | None = None) -> None:
        """Loads the champion now; ValueError if there is none or it cannot be served.

        ``build(model bytes, name)`` makes the player (default: an ``OnnxPlayer``).
        """
        self.game, self.store, self.interval_s = game, store, interval_s
        self._clock = clock
        self._build = build or (lambda data, name: neural.OnnxPlayer(data, name=name))
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self.switches = 0
        """Times a new version was put in play."""
        self.refused = 0
        """New versions refused (corrupt, unloadable, unreadable pointer), each counted once."""
        self.last_error: str | None = None
        self._refused_keys: set[tuple[str | None, str | None]] = set()
        version, sha256, player = self._load()
        self.version, self.sha256, self._player = version, sha256, player
        self._checked = self._clock()

    def _registry(self) -> reg.Registry:
        return reg.Registry.open(self.store)

    def _load(self) -> tuple[str, str | None, Player]:
        registry = self._registry()
        state = registry.champion(self.game)
        try:
            version, data = registry.load_champion(self.game)  # ChecksumError: bytes differ from the pointer's sha256
        except (reg.RegistryError, LookupError) as err:
            raise ValueError(f"no champion of {self.game} in {self.store} ({err})") from err
        neural.check_model(data, self.game)  # ModelContractError: never served
        return version.id, state.sha256, self._build(data, f"champion ({version.id})")

    def current(self) -> Player:
        """The player for a game that opens now (re-reading the pointer if the interval has passed)."""
        if self._clock() - self._checked >= self.interval_s and self._refreshing.acquire(blocking=False):
            try:
                self.refresh()
            finally:
                self._refreshing.release()
        with self._lock:
            return self._player

    def refresh(self) -> bool:
        """Re-read the pointer and switch if it names another, loadable version; True if switched."""
        self._checked = self._clock()
        try:
            state = self._registry().champion(self.game)
        except Exception as err:  # noqa: BLE001 - an unreadable store must not stop the games
            self._refuse((None, None), f"cannot read the champion pointer: {err}")
            return False
        key = (state.version, state.sha256)
        if state.version is None or key == (self.version, self.sha256):
            return False
        try:
            version, sha256, player = self._load()
        except Exception as err:  # noqa: BLE001 - corrupt, unloadable, vanished: keep the old one
            self._refuse(key, f"version {state.version}: {err}")
            return False
        with self._lock:
            before = self.version
            self.version, self.sha256, self._player = version, sha256, player
            self.switches += 1
            self.last_error = None
        log.info("champion of %s: now serving %s (was %s); games in progress keep %s",
                 self.game, version, before, before)
        return True

    def _refuse(self, key: tuple[str | None, str | None], why: str) -> None:
        self.last_error = why[:500]
        if key in self._refused_keys:
            return
        self._refused_keys.add(key)
        self.refused += 1
        log.error("champion of %s: refused %s; still serving %s", self.game, why, self.version)

    @property
    def name(self) -> str:
        return f"champion ({self.version})"

    def act(self, config, state, seat, rng):  # noqa: ANN001 - the Player protocol
        """The Player protocol, for callers that do not open games (a game should hold ``current()``)."""
        return self.current().act(config, state, seat, rng)

    def info(self) -> dict[str, object]:
        """What ``GET /`` reports: the version in force and the counters."""
        return {"game": self.game, "version": self.version, "sha256": self.sha256, "switches": self.switches,
                "refused": self.refused, "lastError": self.last_error}
