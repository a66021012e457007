"""Baseline players: random-safe and greedy-food.

random-safe is the yardstick of the benchmarks (the official Go harness plays
the same policy) and the floor every trained model must clear; greedy-food is
the simplest player with a goal.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.observation import safety, safety_kernel


@dataclasses.dataclass
class RandomSafe:
    """A uniformly random move among those that do not lose at once (any move if none)."""

    name: str = "random-safe"

    def act(self, config: GameConfig, state: BatchState, seat: int, rng: np.random.Generator) -> np.ndarray:
        return safety_kernel.random_safe(config, state, rng, seat)

    def act_all(self, config: GameConfig, state: BatchState, rng: np.random.Generator) -> np.ndarray:
        """Moves for every seat at once (one safety pass instead of one per seat). Shape [B, S].
        Compiled (`safety_kernel`); the same moves as `safety.choose` on `safety.safe_moves`."""
        return safety_kernel.random_safe(config, state, rng)


@dataclasses.dataclass
class Greedy:
    """Heads for the nearest food (Manhattan distance) among safe moves."""

    name: str = "greedy"

    def act(self, config: GameConfig, state: BatchState, seat: int, rng: np.random.Generator) -> np.ndarray:
        board = state.board
        safe = safety.safe_moves(config, state)[:, seat]
        cells = safety.targets(config, state)[:, seat]  # [B, 4]
        tx, ty = board.xy(cells)
        food_cells = board.column_major_cells
        fx, fy = board.xy(food_cells)
        has_food = state.food[:, food_cells]  # [B, F]
        dist = np.abs(tx[..., None] - fx) + np.abs(ty[..., None] - fy)  # [B, 4, F]
        dist = np.where(has_food[:, None, :], dist, 10_000).min(axis=2)
        score = np.where(safe, 20_000 - dist, 0)  # any safe move beats every unsafe one, food or not
        return safety.choose(score.astype(np.float64), rng)
