"""Which player the server asks, and what it answers when the player cannot.

`make_player(spec)` is the one place a `--player` spec becomes a `Player`:
every spec goes to the agents package's registry (`random-safe`, `greedy`,
`heuristic`, `search:ms=N`, `search-v1`, `nsearch:model=M,ms=N`, `onnx:PATH`,
`registry:VERSION`), except `champion` and `champion+nsearch[:ms=N,...]` (the
champion guiding the neural search), whose registry and game come from the
server's flags rather than $OURO_STORE (`agents.stored`, which checks the
model's sha256 on load). Two
serving concerns sit on top:

- a *time budget*: the engine's `game.timeout` covers the whole round trip,
  so a player that can think longer (search) gets `timeout - margin`, never
  more than the server's cap (`--max-think-ms`, whatever the request says) and
  never more than its spec asked for;
- *games the rules do not model* (9 to 16 snakes, boards past 25): played by
  the best player that needs only the board's geometry (`ANY_BOARD`);
- a *fallback*: if the player raises, the server still answers a move that
  does not lose at once, because a 4xx/5xx or a timeout makes the engine
  repeat our last move, which often walks into a wall.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ouroboros.trainer.agents import registry as agents
from ouroboros.trainer.agents.base import Player
from ouroboros.trainer.engine import types
from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.observation import safety

CHAMPION = "champion"
"""The spec of the model registry's champion (needs a registry URL and a game key)."""

CHAMPION_SEARCH = "champion+nsearch"
"""The champion inside the neural-guided search (`agents/nsearch.py`):
`champion+nsearch[:ms=N,visits=N,c_puct=X,batch=N,prune=X,reuse=0|1,endgame=X,margin=X,leaf=0|1,tiebreak=policy|value|search]`."""

BUDGETED = frozenset({"search", "search-v1", "nsearch", CHAMPION_SEARCH})
"""Players whose strength grows with thinking time (they take `ms=`)."""


class PlayerUnavailable(ValueError):
    """A `--player` spec that names no player this installation can build."""


@dataclasses.dataclass(frozen=True)
class Spec:
    """A player spec split at its first colon: `search:ms=200` -> ("search", "ms=200").

    Only built-in players' options are `key=value` pairs; a scheme's rest
    (`onnx:PATH`) is kept verbatim.
    """

    name: str
    rest: str = ""

    @classmethod
    def parse(cls, text: str) -> Spec:
        name, _, rest = text.strip().partition(":")
        if not name:
            raise PlayerUnavailable(f"player spec {text!r} names no player")
        return cls(name, rest)

    def options(self) -> dict[str, str]:
        """`key=value` options (built-in players and keyed schemes such as nsearch)."""
        if self.name not in agents.BUILTINS and self.name not in agents.KEYED_SCHEMES \
                and self.name != CHAMPION_SEARCH:
            return {}
        pairs = (item.partition("=") for item in self.rest.split(",") if item.strip())
        return {k.strip(): v.strip() for k, _, v in pairs}

    def option(self, key: str) -> str | None:
        return self.options().get(key)

    def with_option(self, key: str, value: str) -> Spec:
        options = {**self.options(), key: value}
        return dataclasses.replace(self, rest=",".join(f"{k}={v}" for k, v in options.items()))

    def __str__(self) -> str:
        return f"{self.name}:{self.rest}" if self.rest else self.name


@dataclasses.dataclass(frozen=True)
class ChampionSource:
    """Where `--player champion` loads the model from."""

    registry_url: str = ""
    """The model registry (artifact store URL); empty means the champion cannot be served."""
    game: str = "standard-11x11-2p"
    """The game configuration key whose champion is served."""
    follow_interval_s: float = 10.0
    """How often, at most, a new game re-reads the registry's pointer (``serving.following``)."""


def make_player(spec: str | Spec, champion: ChampionSource | None = None) -> Player:
    """A `Player` for a spec: random-safe | greedy | heuristic | search[:ms=N] | onnx:PATH | champion.

    Raises PlayerUnavailable with the reason when the spec cannot be served here.
    """
    text = str(spec).strip()
    if text == CHAMPION:
        return _champion_player(champion or ChampionSource())
    if text.partition(":")[0] == CHAMPION_SEARCH:
        return _champion_search(text, champion or ChampionSource())
    try:
        return agents.make_player(text)
    except agents.SpecError as err:
        # the serving layer's own words, only where the name itself is unknown (not after every bad option)
        known_name = text.partition(":")[0] in agents.known()
        hint = "" if known_name else f" (served here too: {CHAMPION}, {CHAMPION_SEARCH}[:ms=N])"
        raise PlayerUnavailable(f"{err}{hint}") from None
    except ValueError as err:  # a scheme's factory refusing its argument (e.g. a model file)
        raise PlayerUnavailable(f"player {text!r}: {err}") from None
    except ImportError as err:  # a scheme whose runtime (e.g. onnxruntime) is not installed
        raise PlayerUnavailable(f"player {text!r} cannot be loaded here: {err}") from None


def _champion_player(source: ChampionSource) -> Player:
    """The registry's champion for `source.game`, checked against its sha256 on load, and
    followed: new games get the version in force (`serving.following`)."""
    if not source.registry_url:
        raise PlayerUnavailable("player 'champion' needs --store URL (the model registry)")
    from ouroboros.trainer.serving import following

    return following.ChampionFollower(source.game, source.registry_url, source.follow_interval_s)


ANY_BOARD = ("search", "heuristic", "greedy", "random-safe")
"""Players that play any board size and snake count the state holds (they read the board,
not a fixed-size tensor), strongest first. A neural player's input is fixed to its game."""


def any_board_spec(spec: Spec) -> Spec:
    """The player for a game beyond the modelled rules: `spec` itself when it plays any
    board, else the strongest built-in that does (heuristic)."""
    return spec if spec.name in ANY_BOARD else Spec("heuristic")


def _champion_search(text: str, source: ChampionSource) -> Player:
    """`champion+nsearch[:options]`: the served champion's network guiding `nsearch`, followed
    like `champion` (each new version is wrapped in a new search)."""
    from ouroboros.trainer.agents import neural, nsearch
    from ouroboros.trainer.serving import following

    if not source.registry_url:
        raise PlayerUnavailable(f"player {text!r} needs --store URL (the model registry)")
    options = text.partition(":")[2]

    def build(data: bytes, name: str) -> Player:
        player = nsearch.from_spec(options, model=neural.OnnxPlayer(data, name=name))
        player.name = f"{text} [{name}]"
        return player

    try:
        return following.ChampionFollower(source.game, source.registry_url, source.follow_interval_s, build=build)
    except ValueError as err:  # a bad option, or no champion to serve
        raise PlayerUnavailable(f"player {text!r}: {err}") from None


def is_budgeted(spec: Spec) -> bool:
    """True for players whose strength grows with thinking time (they take `ms=`)."""
    return spec.name in BUDGETED


def budget_ms(timeout_ms: int, margin_ms: int, cap_ms: int | None = None, floor_ms: int = 5) -> int:
    """Thinking time for one move: the engine's timeout less the round-trip margin, at most
    `cap_ms` (the server's own limit: a request cannot buy more of our CPU)."""
    allowed = timeout_ms - margin_ms
    if cap_ms is not None:
        allowed = min(allowed, cap_ms)
    return max(floor_ms, allowed)


def budgeted_spec(spec: Spec, timeout_ms: int, margin_ms: int, cap_ms: int | None = None) -> Spec:
    """`spec` with `ms` lowered to fit the game's timeout and the server's cap (never raised
    above what it asked)."""
    if not is_budgeted(spec):
        return spec
    allowed = budget_ms(timeout_ms, margin_ms, cap_ms)
    asked = spec.option("ms")
    if asked is not None:
        try:
            allowed = min(allowed, int(float(asked)))
        except ValueError:
            return spec  # the registry refuses the bad value with its own message
    return spec.with_option("ms", str(allowed))


def fallback_move(config: GameConfig, state: BatchState, seat: int,
                  rng: np.random.Generator) -> types.Move:
    """A random move that does not lose at once (`up` if even that cannot be computed)."""
    try:
        safe = safety.safe_moves(config, state)[0, seat]
        return types.Move(int(safety.choose(safe.astype(np.float64), rng)))
    except Exception:  # noqa: BLE001 - the last line of defence must not raise
        return types.Move.UP
