"""Real positions on demand: play games with the engine, encode every living seat.

Parity checks, int8 calibration, benchmarks and tests all need positions that
look like the ones a served model meets (snakes of many lengths, food,
crowded corners), not random tensors: a random tensor exercises none of the
near-ties and saturated activations where an exported or quantised model
would drift. This module plays batched games with any players and encodes
every living snake of every turn.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ouroboros.trainer.agents.base import Player
from ouroboros.trainer.agents.simple import RandomSafe
from ouroboros.trainer.engine import maps, rules
from ouroboros.trainer.engine.types import GameConfig, Ruleset
from ouroboros.trainer.observation import encoding, safety


@dataclasses.dataclass(frozen=True)
class Positions:
    """Encoded positions with what a player needs to act on them."""

    planes: np.ndarray
    """float32 [N, C, H, W], the encoding of each position."""
    safe: np.ndarray
    """bool [N, 4]: moves that do not lose at once (Move order)."""
    moves: np.ndarray
    """int8 [N]: the move the player of that seat made (imitation labels)."""

    def __len__(self) -> int:
        return self.planes.shape[0]


def _moves(config: GameConfig, state, players: Sequence[Player], rng: np.random.Generator) -> np.ndarray:
    """Moves of every seat, [B, S] int8; one batched call where every seat has the same player."""
    first = players[0]
    if all(p is first for p in players) and hasattr(first, "act_all"):
        return first.act_all(config, state, rng)
    moves = np.empty((state.batch_size, state.n_snakes), np.int8)
    for seat in range(state.n_snakes):
        moves[:, seat] = players[seat % len(players)].act(config, state, seat, rng)
    return moves


def play_positions(
    config: GameConfig,
    count: int,
    *,
    seed: int = 0,
    players: Sequence[Player] | None = None,
    games: int = 256,
    max_turns: int = 500,
) -> Positions:
    """At least ``count`` positions (then trimmed to exactly ``count``) from games played
    ``games`` at a time; a finished game is replaced by a new one with the next seed.

    players: one per seat (cycled), random-safe for every seat by default.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    players = list(players or [RandomSafe()])
    rng = np.random.default_rng(seed)
    next_seed = seed * 1_000_003
    state = maps.new_games(config, np.arange(next_seed, next_seed + games))
    next_seed += games
    solo = config.ruleset is Ruleset.SOLO
    planes: list[np.ndarray] = []
    safe: list[np.ndarray] = []
    made: list[np.ndarray] = []
    have = 0
    while have < count:
        game_idx, seats = np.nonzero(state.alive)
        moves = _moves(config, state, players, rng)
        if game_idx.size:
            planes.append(encoding.encode(config, state.select(game_idx), seats))
            safe.append(safety.safe_moves(config, state)[game_idx, seats])
            made.append(moves[game_idx, seats])
            have += game_idx.size
        rules.advance(config, state, moves)
        done = np.flatnonzero(state.game_over(solo) | (state.turn >= max_turns))
        if done.size:
            fresh = maps.new_games(config, np.arange(next_seed, next_seed + done.size))
            next_seed += done.size
            _assign(state, done, fresh)
    return Positions(
        np.concatenate(planes)[:count], np.concatenate(safe)[:count], np.concatenate(made)[:count]
    )


def _assign(state, games: np.ndarray, fresh) -> None:
    """Write fresh games into ``state`` at ``games``. A long game may have widened the
    state's body rings; the fresh ones are unrolled (head first) into rings as wide."""
    if fresh.capacity < state.capacity:
        idx = (fresh.head_ptr[..., None] + np.arange(fresh.capacity)) % fresh.capacity
        body = np.zeros(fresh.body.shape[:2] + (state.capacity,), fresh.body.dtype)
        body[..., : fresh.capacity] = np.take_along_axis(fresh.body, idx, axis=2)
        fresh.body, fresh.head_ptr = body, np.zeros_like(fresh.head_ptr)
    state.assign(games, fresh)
