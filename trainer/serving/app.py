"""The Battlesnake API as a function: (method, path, body) -> (status, JSON answer).

Everything the server decides lives here, away from sockets, so unit tests and
benchmarks can call it directly and the HTTP shell (`serving.server`) stays a
thin reader and writer of bytes. The rules of the road:

- every answer is JSON; every refusal is a 4xx whose `error` names the field;
- nothing a request carries can raise out of `dispatch` (a 500 would make the
  engine repeat our last move): a player that raises is logged and replaced by
  a safe move for that turn;
- `/start` and `/end` bracket a session per (game, snake of ours) (its rng
  and its budgeted player); `/move` without `/start` opens one;
- a valid game the rules do not model (9 to 16 snakes, boards past 25) is
  played, not refused, by a player that needs only the board (logged once per
  game, counted in `ouroboros_serve_unmodelled_games_total`);
- any failure after a request was read still answers a safe move, never a
  fixed one (which may be our own neck);
- `GET /metrics` exposes the counters in Prometheus's text format.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from importlib import metadata

import numpy as np
import prometheus_client

from ouroboros.trainer.agents import stopping
from ouroboros.trainer.agents.base import Player
from ouroboros.trainer.engine import limits, maps
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.serving import following, players, protocol, sessions
from ouroboros.trainer.serving.protocol import RequestError

log = logging.getLogger(__name__)

WARM_UP_BUDGET_S = 0.05
"""What a time-budgeted player (search) may think in the warm-up move: compiling is what it is for."""

ROUTES = {"/": ("GET", "HEAD"), "/start": ("POST",), "/move": ("POST",), "/end": ("POST",),
          "/metrics": ("GET", "HEAD")}
"""Paths of API v1 (and the metrics) and the methods each accepts."""


class Metrics:
    """The server's counters, on a registry of their own (one per App, so tests and several
    servers in one process never share them)."""

    def __init__(self) -> None:
        self.registry = prometheus_client.CollectorRegistry(auto_describe=True)
        self.moves = prometheus_client.Counter(
            "ouroboros_serve_moves", "Moves answered, by who chose them: the player, or the safe-move "
            "fallback after the player failed (player_error) or after any other failure (server_error).",
            ["chooser"], registry=self.registry)
        self.unmodelled_games = prometheus_client.Counter(
            "ouroboros_serve_unmodelled_games", "Games beyond the modelled rules (more than "
            f"{limits.RULES.max_snakes} snakes or a side past {limits.RULES.max_side}) played by a "
            "player that needs only the board.", registry=self.registry)
        self.refused = prometheus_client.Counter(
            "ouroboros_serve_refused_requests", "Requests answered with a 4xx, by status.",
            ["status"], registry=self.registry)

    def exposition(self) -> bytes:
        """The text format a Prometheus server scrapes."""
        return prometheus_client.generate_latest(self.registry)


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """How `ouro serve` listens and plays."""

    host: str = "127.0.0.1"
    """Interface to listen on (0.0.0.0 for every interface)."""
    port: int = 8000
    """TCP port; 0 picks a free one (tests)."""
    max_body_bytes: int = 1 << 20
    """Largest request body accepted; larger ones get 413 before being read."""
    max_games: int = 1024
    """Sessions kept at once; the least recently heard-from game is dropped beyond it."""
    latency_margin_ms: int = 150
    """Part of `game.timeout` kept for the network and the server itself; a search
    player thinks for `timeout - margin` ms at most."""
    max_think_ms: int = 1000
    """A search player never thinks longer than this per move, whatever `game.timeout`
    says (a request cannot buy more of the server's CPU)."""
    idle_timeout_s: float = 75.0
    """A keep-alive connection with no request for this long is closed."""
    request_timeout_s: float = 10.0
    """A request (headers and body) must arrive whole within this many seconds of its
    first byte, however the bytes trickle in; else 408 and the connection is closed."""
    max_connections: int = 256
    """Connections served at once (one thread each); more are answered 503."""
    appearance: protocol.Appearance = protocol.Appearance()
    """What `GET /` says about the snake."""

    def __post_init__(self) -> None:
        positive = {"max_body_bytes": self.max_body_bytes, "max_games": self.max_games,
                    "max_think_ms": self.max_think_ms, "idle_timeout_s": self.idle_timeout_s,
                    "request_timeout_s": self.request_timeout_s, "max_connections": self.max_connections}
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name}: {value} must be positive")
        if self.latency_margin_ms < 0:
            raise ValueError(f"latency_margin_ms: {self.latency_margin_ms} must not be negative")


def package_version() -> str:
    try:
        return metadata.version("ouroboros")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class App:
    """One player served on the Battlesnake API. Thread-safe: handlers share one App."""

    def __init__(self, spec: str, settings: ServerSettings = ServerSettings(),
                 champion: players.ChampionSource | None = None,
                 factory: Callable[..., Player] = players.make_player):
        """`factory(spec, champion)` builds players (tests inject their own)."""
        self.spec = players.Spec.parse(spec)
        self.settings = settings
        self.champion = champion
        self._factory = factory
        self._players: dict[str, Player] = {}
        self._players_lock = threading.Lock()
        self.default_player = self._player(self.spec)  # fails fast on a bad spec
        self.sessions = sessions.SessionStore(settings.max_games)
        self.metrics = Metrics()
        self.thinks_long = players.is_budgeted(self.spec)
        """True when the player thinks for a time budget (search): worth stopping on a hangup."""
        appearance = settings.appearance
        if not appearance.version:
            appearance = dataclasses.replace(
                appearance, version=f"ouroboros {package_version()} ({self.spec})")
        self.index = protocol.index_answer(appearance)

    def warm_up(self) -> float:
        """Build the player a game of the default timeout gets (`protocol.DEFAULT_TIMEOUT_MS`; a
        budgeted spec is its own player, built once and kept) and play one move of a fresh 7x7 duel
        with it before the server listens; returns the seconds it took.

        A network player's first move compiles numba's encoding and safety kernels (or loads
        them from numba's cache) and runs onnxruntime for the first time: inside a game, that came
        out of the first move's budget, and with a cold cache (a fresh install's first game) took
        469 ms for the `medium` policy on a quiet machine, 750 ms on a loaded one, past a 500 ms
        timeout (`benchmarks.first_move`). A network plays a 7x7 board padded into its own, and a
        kernel compiled once serves every board. Best effort: a player that cannot play this
        board is logged and the first real move pays instead. The move is no game's: no session,
        no metric.
        """
        began = time.perf_counter()
        spec = players.budgeted_spec(self.spec, protocol.DEFAULT_TIMEOUT_MS, self.settings.latency_margin_ms,
                                     self.settings.max_think_ms)
        player = self.default_player
        config = GameConfig(width=7, height=7, n_snakes=2)
        try:
            player = self._player(spec)  # the one `_open` will find for such a game
            if isinstance(player, following.ChampionFollower):
                player = player.current()
            with stopping.limits(deadline=began + WARM_UP_BUDGET_S):
                player.act(config, maps.new_games(config, [0]), 0, np.random.default_rng(0))
        except Exception as err:  # noqa: BLE001 - the first real move will pay, nothing worse
            log.warning("warm-up move of %s failed (%s); the first game's first move pays instead",
                        getattr(player, "name", "?"), err)
        took = time.perf_counter() - began
        log.info("warm-up move of %s: %.0f ms", getattr(player, "name", "?"), took * 1e3)
        return took

    def _player(self, spec: players.Spec) -> Player:
        """One player per distinct spec (budgets differ by game timeout, not by game)."""
        key = str(spec)
        with self._players_lock:
            player = self._players.get(key)
        if player is None:
            player = self._factory(spec, self.champion)
            with self._players_lock:
                player = self._players.setdefault(key, player)
        return player

    def _open(self, request: protocol.MoveRequest) -> sessions.Session:
        spec = self.spec
        if not request.modelled:
            spec = players.any_board_spec(spec)
            config = request.game.config
            self.metrics.unmodelled_games.inc()
            log.warning("game %s: %d snakes on %dx%d is beyond the modelled rules (%s); playing %s",
                        request.game_id, config.n_snakes, config.width, config.height,
                        limits.RULES.describe(), spec)
        spec = players.budgeted_spec(spec, request.timeout_ms, self.settings.latency_margin_ms,
                                     self.settings.max_think_ms)
        budget = int(spec.option("ms") or 0) if players.is_budgeted(spec) else 0
        try:
            player = self._player(spec)
        except Exception:  # noqa: BLE001 - the player we started with still plays
            log.exception("game %s: cannot build %s; playing %s", request.game_id, spec, self.spec)
            player, budget = self.default_player, 0
        if isinstance(player, following.ChampionFollower):  # a game keeps the version it started with
            player = player.current()
        return sessions.Session(game_id=request.game_id, snake_id=request.you_id, player=player,
                                rng=sessions.game_rng(request.game_id, request.you_id),
                                budget_ms=budget)

    def _session(self, request: protocol.MoveRequest) -> sessions.Session:
        session, opened = self.sessions.get_or_open((request.game_id, request.you_id),
                                                    lambda: self._open(request))
        if opened:
            for note in request.notes:
                log.warning("game %s: %s", request.game_id, note)
        return session

    # -- the four endpoints -------------------------------------------------------------

    def start(self, body: dict) -> dict:
        request = protocol.parse_move_request(body)
        session = self._session(request)
        log.info("game %s: start, %s %dx%d, %d snakes, timeout %d ms, player %s%s",
                 request.game_id, request.game.config.ruleset.value, request.game.config.width,
                 request.game.config.height, request.game.config.n_snakes, request.timeout_ms,
                 getattr(session.player, "name", "?"),
                 f", budget {session.budget_ms} ms" if session.budget_ms else "")
        return {}

    def move(self, body: dict, received_at: float | None = None) -> dict:
        """The `/move` answer; a budgeted player must answer by `received_at` + its budget."""
        received_at = time.perf_counter() if received_at is None else received_at
        request = protocol.parse_move_request(body)
        try:
            return self._move(request, received_at)
        except Exception:  # noqa: BLE001 - a valid request always gets a safe move
            log.exception("game %s turn %d: failed; answering a safe move", request.game_id, request.turn)
            self.metrics.moves.labels("server_error").inc()
            move = players.fallback_move(request.game.config, request.game.state, request.seat,
                                         sessions.game_rng(request.game_id, request.you_id))
            return protocol.move_answer(move)

    def _move(self, request: protocol.MoveRequest, received_at: float) -> dict:
        session = self._session(request)
        game = request.game
        # The budget counts from the request's arrival: time queued, read and parsed is spent.
        deadline = received_at + session.budget_ms / 1e3 if session.budget_ms else None
        with session.lock, stopping.limits(deadline=deadline):
            began = time.perf_counter()
            fell_back = False
            try:
                move = int(session.player.act(game.config, game.state, request.seat, session.rng)[0])
                if move not in (0, 1, 2, 3):
                    raise ValueError(f"player answered {move}, not a move")
            except Exception:  # noqa: BLE001 - any player failure becomes a safe move
                log.exception("game %s turn %d: player %s failed; answering a safe move",
                              request.game_id, request.turn, getattr(session.player, "name", "?"))
                move = players.fallback_move(game.config, game.state, request.seat, session.rng)
                fell_back = True
            elapsed_ms = (time.perf_counter() - began) * 1e3
            session.record(elapsed_ms, fell_back)
        self.metrics.moves.labels("player_error" if fell_back else "player").inc()
        if elapsed_ms > request.timeout_ms - self.settings.latency_margin_ms / 2:
            # Half the network margin gone: a slower network would have timed out.
            log.warning("game %s turn %d: the player took %.0f ms of a %d ms timeout",
                        request.game_id, request.turn, elapsed_ms, request.timeout_ms)
        return protocol.move_answer(move)

    def end(self, body: dict) -> dict:
        # The engine sends /end to every snake, eliminated ones too, whose `you`
        # is no longer on the board and may lie off it: only the ids matter.
        # Without `you.id`, every session of the game is closed.
        game_id, snake_id = protocol.end_ids(body)
        closed = self.sessions.close(game_id, snake_id)
        if not closed:
            log.info("game %s: end (no session)", game_id)
        for session in closed:
            log.info("game %s: end, snake %s: %s", game_id, session.snake_id, session.summary())
        return {}

    # -- routing ------------------------------------------------------------------------

    def route(self, method: str, path: str) -> tuple[int, dict, dict] | None:
        """The refusal for a path or method we do not serve (404, 405), else None."""
        path = _normal(path)
        allowed = ROUTES.get(path)
        if allowed is None:
            return 404, {"error": f"path: no such endpoint {path[:100]!r} (known: "
                                  f"{', '.join(ROUTES)})", "field": "path"}, {}
        if method not in allowed:
            return 405, {"error": f"method: {path} accepts {', '.join(allowed)}, not {method}",
                         "field": "method"}, {"Allow": ", ".join(allowed)}
        return None

    def dispatch(self, method: str, path: str, body: bytes,
                 received_at: float | None = None) -> tuple[int, dict | bytes, dict]:
        """One request -> (status, JSON answer (or raw bytes with their own Content-Type),
        extra headers). Never raises. `received_at` (`time.perf_counter()` when the request's
        first byte arrived; default now) anchors a thinking player's deadline."""
        received_at = time.perf_counter() if received_at is None else received_at
        refusal = self.route(method, path)
        if refusal is not None:
            log.info("%s %s refused (%d)", method, path[:100], refusal[0])
            return refusal
        path = _normal(path)
        if path == "/":
            if isinstance(self.default_player, following.ChampionFollower):
                return 200, {**self.index, "champion": self.default_player.info()}, {}
            return 200, self.index, {}
        if path == "/metrics":
            return 200, self.metrics.exposition(), {"Content-Type": prometheus_client.CONTENT_TYPE_LATEST}
        obj = None
        try:
            obj = protocol.decode_body(body)
            if path == "/move":
                return 200, self.move(obj, received_at), {}
            return 200, (self.start if path == "/start" else self.end)(obj), {}
        except RequestError as err:
            log.info("%s refused (%d): %s", path, err.status, err)
            self.metrics.refused.labels(str(err.status)).inc()
            return err.status, err.payload(), {}
        except Exception:  # noqa: BLE001 - a bug here must not take the game down with a 500
            log.exception("%s: unexpected failure", path)
            if path == "/move":
                self.metrics.moves.labels("server_error").inc()
                return 200, protocol.move_answer(protocol.last_resort_move(obj)), {}
            return 200, {}, {}


def _normal(path: str) -> str:
    """The path without query string or trailing slash (`/move/` is `/move`)."""
    path = path.split("?", 1)[0]
    return path.rstrip("/") or "/"
