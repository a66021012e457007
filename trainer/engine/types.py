"""The fixed vocabularies and settings of a Battlesnake game.

Everything here mirrors a name or constant of the official rules engine
(`github.com/BattlesnakeOfficial/rules`), so that JSON from the official CLI and
from game servers maps one to one onto the batched engine. The ruleset and map
names are the contract's (`ouroboros.contract.vocabulary`), shared with the
operator's API.
"""

from __future__ import annotations

import dataclasses
from enum import Enum, IntEnum

import numpy as np

from ouroboros.contract.vocabulary import GameMap, Ruleset
from ouroboros.trainer.engine import limits

SNAKE_MAX_HEALTH = 100
SNAKE_START_SIZE = 3


class Move(IntEnum):
    """A move as the engine stores it (int8). `NONE` (-1) means missing or invalid,
    which the movement stage replaces by the snake's default move."""

    NONE = -1
    UP = 0
    DOWN = 1
    LEFT = 2
    RIGHT = 3

    @property
    def api_name(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, name: object) -> Move:
        """Maps an API move string to a Move; anything else is `NONE` (default move)."""
        return _MOVE_BY_NAME.get(name, cls.NONE) if isinstance(name, str) else cls.NONE


_MOVE_BY_NAME = {m.api_name: m for m in Move if m is not Move.NONE}

# Board deltas per move, indexed by Move value (up is y+1: (0,0) is bottom-left).
MOVE_DX = np.array([0, 0, -1, 1], dtype=np.int64)
MOVE_DY = np.array([1, -1, 0, 0], dtype=np.int64)


class Cause(IntEnum):
    """Elimination causes (int8 in state); API strings in `Cause.api_name`."""

    NOT_ELIMINATED = 0
    SNAKE_COLLISION = 1
    SELF_COLLISION = 2
    OUT_OF_HEALTH = 3
    HEAD_COLLISION = 4
    WALL_COLLISION = 5
    HAZARD = 6

    @property
    def api_name(self) -> str:
        return _CAUSE_NAMES[self]

    @classmethod
    def parse(cls, name: str) -> Cause:
        try:
            return _CAUSE_BY_NAME[name]
        except KeyError:
            known = ", ".join(repr(n) for n in _CAUSE_BY_NAME)
            raise ValueError(f"unknown eliminatedCause {name!r} (known: {known})") from None


_CAUSE_NAMES = {
    Cause.NOT_ELIMINATED: "",
    Cause.SNAKE_COLLISION: "snake-collision",
    Cause.SELF_COLLISION: "snake-self-collision",
    Cause.OUT_OF_HEALTH: "out-of-health",
    Cause.HEAD_COLLISION: "head-collision",
    Cause.WALL_COLLISION: "wall-collision",
    Cause.HAZARD: "hazard",
}
_CAUSE_BY_NAME = {v: k for k, v in _CAUSE_NAMES.items()}


class EngineBackend(str, Enum):
    """How `rules.advance` and `maps.reset_games` compute a turn; both are exact.

    `compiled` (the default) runs the numba kernels of `engine.kernel`; `numpy`
    runs the whole-array reference code of `rules` and `maps`, which the
    kernels are tested against field by field."""

    COMPILED = "compiled"
    NUMPY = "numpy"


@dataclasses.dataclass(frozen=True)
class RulesetSettings:
    """Ruleset settings, with the official CLI's defaults."""

    food_spawn_chance: int = 15
    """Percent chance per turn that one food spawns when at least `minimum_food` is on the board."""
    minimum_food: int = 1
    """Food is topped up to this count at the end of every turn (standard map)."""
    hazard_damage_per_turn: int = 14
    """Health lost per hazard entry under a snake's head (unless food is there)."""
    shrink_every_n_turns: int = 25
    """Royale: the safe box shrinks by one row or column every N turns."""


@dataclasses.dataclass(frozen=True)
class GameConfig:
    """Everything fixed for a batch of games: board size, snake count, rules."""

    width: int = 11
    """Board width in cells (1 to 25 played exactly, `limits.RULES`; a state holds up to 64)."""
    height: int = 11
    """Board height in cells (as `width`)."""
    n_snakes: int = 2
    """Snakes per game (1 to 8 played exactly; a state holds up to 16)."""
    ruleset: Ruleset = Ruleset.STANDARD
    """Ruleset name."""
    game_map: GameMap = GameMap.STANDARD
    """Map name."""
    settings: RulesetSettings = dataclasses.field(default_factory=RulesetSettings)
    """Ruleset settings."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "ruleset", Ruleset(self.ruleset))
        object.__setattr__(self, "game_map", GameMap(self.game_map))
        side, snakes = limits.SERVING.max_side, limits.SERVING.max_snakes  # what a state can hold
        if not (1 <= self.width <= side and 1 <= self.height <= side):
            raise ValueError(f"board {self.width}x{self.height} out of range (1..{side} per side)")
        if not 1 <= self.n_snakes <= snakes:
            raise ValueError(f"n_snakes={self.n_snakes} out of range (1..{snakes})")
        if self.ruleset is Ruleset.ROYALE and self.settings.shrink_every_n_turns < 1:
            raise ValueError("royale game can't shrink more frequently than every turn "
                             f"(shrinkEveryNTurns={self.settings.shrink_every_n_turns})")


def game_config(spec) -> GameConfig:
    """The engine's GameConfig of a ``contract.game.GameSpec`` (board, seats, ruleset, map, settings)."""
    settings = RulesetSettings(food_spawn_chance=spec.food_spawn_chance, minimum_food=spec.minimum_food,
                               hazard_damage_per_turn=spec.hazard_damage_per_turn,
                               shrink_every_n_turns=spec.shrink_every_n_turns)
    return GameConfig(width=spec.width, height=spec.height, n_snakes=spec.snakes, ruleset=spec.ruleset,
                      game_map=spec.map, settings=settings)
