"""The one interface every player implements, and the registry of built-in players.

A player answers for one seat (snake index) in every game of a batch at once,
so batched players (random, greedy, heuristic, neural) pay one call per turn
whatever the batch size; a per-game player (search) simply loops inside.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import GameConfig


class Player(Protocol):
    """Chooses moves for snake `seat` of every game in the batch."""

    name: str

    def act(self, config: GameConfig, state: BatchState, seat: int, rng: np.random.Generator) -> np.ndarray:
        """Moves for `seat` in every game. Shape [B] int8 (Move values)."""
        ...


def play_turn(config: GameConfig, state: BatchState, players: list[Player],
              rng: np.random.Generator) -> np.ndarray:
    """Moves of every seat from its player. Shape [B, S] int8."""
    moves = np.empty((state.batch_size, state.n_snakes), np.int8)
    for seat, player in enumerate(players):
        moves[:, seat] = player.act(config, state, seat, rng)
    return moves
