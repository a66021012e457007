"""The game a run trains on and a champion plays: ``GameSpec``, and its key ``GameKey``.

The model registry keeps one champion per game key, ``RULESET-WxH-Np``
(``standard-11x11-2p``): the part of the game a trained network is specific to
(its input planes and its opponents). Every place that names a champion's game
builds or parses the key through :class:`GameKey`.
"""

from __future__ import annotations

import dataclasses
import re

from pydantic import ConfigDict, Field, model_validator

from ouroboros.contract.schema import CEL_KEY, ApiModel, cel
from ouroboros.contract.vocabulary import GameMap, Ruleset

MAX_BOARD = 25
"""Largest board side the engine plays (the official engine's maps go up to 25x25)."""
MAX_SNAKES = 8
"""Most snakes per game the engine plays."""

_KEY = re.compile(r"([a-z_]+)-(\d{1,3})x(\d{1,3})-(\d{1,2})p")


@dataclasses.dataclass(frozen=True, order=True)
class GameKey:
    """``RULESET-WxH-Np``: the registry's name of a game (one champion each).

    ``str(key)`` writes it, :meth:`parse` reads it back (ValueError naming the
    expected form otherwise). Sizes are checked against the engine's limits.
    """

    ruleset: Ruleset
    width: int
    height: int
    snakes: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "ruleset", Ruleset(self.ruleset))
        if not (1 <= self.width <= MAX_BOARD and 1 <= self.height <= MAX_BOARD):
            raise ValueError(f"game key board {self.width}x{self.height}: each side must be 1 to {MAX_BOARD}")
        if not 1 <= self.snakes <= MAX_SNAKES:
            raise ValueError(f"game key snakes {self.snakes}: must be 1 to {MAX_SNAKES}")

    def __str__(self) -> str:
        return f"{self.ruleset.value}-{self.width}x{self.height}-{self.snakes}p"

    @classmethod
    def parse(cls, text: str) -> GameKey:
        """``"standard-11x11-2p"`` -> GameKey; ValueError with the expected form otherwise."""
        match = _KEY.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"game key must look like RULESET-WxH-Np (e.g. standard-11x11-2p), got {text!r}")
        ruleset, width, height, snakes = match.groups()
        try:
            return cls(Ruleset(ruleset), int(width), int(height), int(snakes))
        except ValueError as exc:
            raise ValueError(f"game key {text!r}: {exc}") from None

    def spec(self) -> GameSpec:
        """The GameSpec of this key, other settings at their defaults."""
        return GameSpec(ruleset=self.ruleset, width=self.width, height=self.height, snakes=self.snakes)


class GameSpec(ApiModel):
    """The game that is trained and played: ruleset, map, board, seats and settings."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            CEL_KEY: [
                cel(
                    "(self.ruleset == 'solo') == (self.snakes == 1)",
                    "game.snakes must be 1 for the solo ruleset and at least 2 otherwise",
                    ".snakes",
                ),
                cel(
                    "self.snakes * 9 <= self.width * self.height",
                    "game board is too small for that many snakes (needs 9 cells per snake)",
                    ".snakes",
                ),
            ]
        },
    )

    ruleset: Ruleset = Field(default=Ruleset.STANDARD, description="Rules of the game, as the official engine names them.")
    map: GameMap = Field(
        default=GameMap.STANDARD,
        description="Map: standard (official start positions and food spawns) or empty (no food spawns).",
    )
    width: int = Field(default=11, ge=3, le=MAX_BOARD, description="Board width in cells.")
    height: int = Field(default=11, ge=3, le=MAX_BOARD, description="Board height in cells.")
    snakes: int = Field(default=2, ge=1, le=MAX_SNAKES, description="Snakes per game.")
    food_spawn_chance: int = Field(
        default=15, ge=0, le=100, description="Percent chance per turn that food spawns."
    )
    minimum_food: int = Field(default=1, ge=0, le=100, description="Food kept on the board at least.")
    hazard_damage_per_turn: int = Field(
        default=14, ge=0, le=100, description="Health lost per turn spent in a hazard."
    )
    shrink_every_n_turns: int = Field(
        default=25, ge=1, le=1000, description="Royale: the safe area shrinks by one row or column every N turns."
    )
    max_turns: int = Field(
        default=500, ge=1, le=100000,
        description="Turns after which an unfinished game ends as a draw (training and gate games).",
    )

    @model_validator(mode="after")
    def _rules(self) -> GameSpec:
        """Mirror of the CEL rules above, for Python callers."""
        if (self.ruleset == Ruleset.SOLO) != (self.snakes == 1):
            raise ValueError("game.snakes must be 1 for the solo ruleset and at least 2 otherwise")
        if self.snakes * 9 > self.width * self.height:
            raise ValueError("game board is too small for that many snakes (needs 9 cells per snake)")
        return self

    @property
    def key(self) -> GameKey:
        """The registry key of this game (``standard-11x11-2p``)."""
        return GameKey(self.ruleset, self.width, self.height, self.snakes)
