"""Which player the server asks, and what it answers when the player cannot.

`make_player(spec)` is the one place a `--player` spec becomes a `Player`:
built-in players come from the agents package, `onnx:PATH` and `champion`
are the hooks for the neural player (ONNX inference lives in the agents
package, not here). Two serving concerns sit on top of any player:

- a *time budget*: the engine's `game.timeout` covers the whole round trip,
  so a player that can think longer (search) gets `timeout - margin` and
  never more than its spec asked for;
- a *fallback*: if the player raises, the server still answers a move that
  does not lose at once, because a 4xx/5xx or a timeout makes the engine
  repeat our last move, which often walks into a wall.
"""

from __future__ import annotations

import dataclasses
import importlib
import re

import numpy as np

from ouroboros.trainer.agents import safety, simple
from ouroboros.trainer.agents.base import Player
from ouroboros.trainer.engine import types
from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import GameConfig

CHAMPION = "champion"
"""The spec of the registry's champion (needs a registry URL and a game key)."""

_BUILTIN = {"random-safe": simple.RandomSafe, "greedy": simple.Greedy}
_LATER = {"heuristic": ("ouroboros.trainer.agents.heuristic", "Heuristic")}
"""Players of the agents package that may not be installed yet (imported on demand)."""
_SPEC = re.compile(r"^(?P<name>[a-z][a-z0-9_-]*)(?::(?P<options>.*))?$")


class PlayerUnavailable(ValueError):
    """A `--player` spec that names no player this installation can build."""


@dataclasses.dataclass(frozen=True)
class Spec:
    """A parsed player spec `name[:key=value,...]` (`onnx:PATH` keeps the path as `path`)."""

    name: str
    options: tuple[tuple[str, str], ...] = ()
    path: str = ""

    @classmethod
    def parse(cls, text: str) -> Spec:
        """`search:ms=200` -> Spec("search", (("ms", "200"),)); `onnx:model.onnx` keeps the path."""
        match = _SPEC.match(text.strip())
        if match is None:
            raise PlayerUnavailable(f"player spec {text!r}: expected name[:key=value,...]")
        name, options = match["name"], match["options"]
        if name == "onnx":
            if not options:
                raise PlayerUnavailable("player spec 'onnx:PATH' needs the model's path")
            return cls(name, path=options)
        pairs = []
        for item in filter(None, (options or "").split(",")):
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise PlayerUnavailable(f"player spec {text!r}: option {item!r} is not key=value")
            pairs.append((key, value))
        return cls(name, tuple(pairs))

    def option(self, key: str) -> str | None:
        return dict(self.options).get(key)

    def with_option(self, key: str, value: str) -> Spec:
        return dataclasses.replace(self, options=tuple(
            (k, v) for k, v in self.options if k != key) + ((key, value),))

    def __str__(self) -> str:
        if self.path:
            return f"{self.name}:{self.path}"
        opts = ",".join(f"{k}={v}" for k, v in self.options)
        return f"{self.name}:{opts}" if opts else self.name


@dataclasses.dataclass(frozen=True)
class ChampionSource:
    """Where `--player champion` loads the model from."""

    registry_url: str = ""
    """The model registry (artifact store URL); empty means the champion cannot be served."""
    game: str = "standard-11x11-2p"
    """The game configuration key whose champion is served."""


def make_player(spec: str | Spec, champion: ChampionSource | None = None) -> Player:
    """A `Player` for a spec: random-safe | greedy | heuristic | search[:ms=N] | onnx:PATH | champion.

    Raises PlayerUnavailable with the reason when the spec cannot be served here.
    """
    spec = Spec.parse(spec) if isinstance(spec, str) else spec
    if spec.name == "onnx":
        return _neural_player(spec.path, name=f"onnx:{spec.path}")
    if spec.name == CHAMPION:
        return _champion_player(champion or ChampionSource())
    if spec.name in _BUILTIN or spec.name in _LATER:
        if spec.options:
            raise PlayerUnavailable(f"player {spec.name!r} takes no options (got {str(spec)!r})")
        return _BUILTIN[spec.name]() if spec.name in _BUILTIN else _import_player(spec.name)
    known = ", ".join([*_BUILTIN, *_LATER, "onnx:PATH", CHAMPION])
    raise PlayerUnavailable(f"unknown player {spec.name!r} (known here: {known})")


def _import_player(name: str) -> Player:
    module_name, class_name = _LATER[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise PlayerUnavailable(f"player {name!r} is not available here ({err})") from None
    return getattr(module, class_name)()


def _neural_player(model: str | bytes, name: str) -> Player:
    """Hook for the ONNX player of the agents package (not part of the server)."""
    raise PlayerUnavailable(f"{name}: the ONNX player is not available in this build yet "
                            "(it comes with the agents package's neural player)")


def _champion_player(source: ChampionSource) -> Player:
    """The registry's champion for `source.game`, checked against its sha256 on load."""
    if not source.registry_url:
        raise PlayerUnavailable("player 'champion' needs --registry URL (the model registry)")
    from ouroboros.trainer.artifacts import registry

    version, model = registry.Registry.open(source.registry_url).load_champion(source.game)
    return _neural_player(model, name=f"champion {version.id} of {source.game}")


def is_budgeted(spec: Spec) -> bool:
    """True for players whose strength grows with thinking time (they take `ms=`)."""
    return spec.name == "search"


def budget_ms(timeout_ms: int, margin_ms: int, floor_ms: int = 5) -> int:
    """Thinking time for one move: the engine's timeout less the round-trip margin."""
    return max(floor_ms, timeout_ms - margin_ms)


def budgeted_spec(spec: Spec, timeout_ms: int, margin_ms: int) -> Spec:
    """`spec` with `ms` lowered to fit the game's timeout (never raised above what it asked)."""
    if not is_budgeted(spec):
        return spec
    allowed = budget_ms(timeout_ms, margin_ms)
    asked = spec.option("ms")
    if asked is not None and asked.isdigit():
        allowed = min(allowed, int(asked))
    return spec.with_option("ms", str(allowed))


def fallback_move(config: GameConfig, state: BatchState, seat: int,
                  rng: np.random.Generator) -> types.Move:
    """A random move that does not lose at once (`up` if even that cannot be computed)."""
    try:
        safe = safety.safe_moves(config, state)[0, seat]
        return types.Move(int(safety.choose(safe.astype(np.float64), rng)))
    except Exception:  # noqa: BLE001 - the last line of defence must not raise
        return types.Move.UP
