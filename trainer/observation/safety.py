"""Which moves do not lose at once: the shared first question of every player.

A move is *safe* when its target cell is on the board (wrapped rulesets wrap)
and nothing will occupy it after everyone moves: body segments stay, heads
become necks, and only a tail that is not doubled moves away. Head-to-head
risk is a separate mask, because whether to take it is a player's choice.
"""

from __future__ import annotations

import numpy as np

from ouroboros.trainer.engine import state as state_mod
from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.observation import safety_kernel


def targets(config: GameConfig, state: BatchState) -> np.ndarray:
    """Cell each snake's head reaches with each move (cell 0, off the board, for
    eliminated snakes, whose heads may lie off the board). Shape [B, S, 4]."""
    heads = np.where(state.alive, state.heads, state.board.stride + 1)
    cells = heads[..., None] + state.board.move_delta
    cells = state.board.wrap[cells] if config.ruleset.wraps else cells
    return np.where(state.alive[..., None], cells, 0)


def occupied_next(state: BatchState) -> np.ndarray:
    """Segments per cell after the coming move, not counting the new heads. Shape [B, P].

    occ counts body[1:] of living snakes; every living head becomes a neck (+1) and
    every living tail moves on (-1) unless it is doubled (tail == segment before it).
    """
    grid = state.occ.copy()
    alive = state.alive
    row = np.arange(state.batch_size)[:, None] * state.board.n_cells
    exact = not state.disjoint
    state_mod.scatter_add(grid, (row + state.heads)[alive], 1, exact)
    tails = state.tails
    moving = alive & (state.length >= 2) & (tails != state.segment(np.maximum(state.length - 2, 0)))
    state_mod.scatter_add(grid, (row + tails)[moving], -1, exact)
    return grid


def safe_moves(config: GameConfig, state: BatchState) -> np.ndarray:
    """True where a move neither leaves the board nor runs into a body. Shape [B, S, 4].
    Compiled (`safety_kernel`); `safe_moves_reference` is the same mask in NumPy."""
    return safety_kernel.safe_moves(config, state)


def safe_moves_reference(config: GameConfig, state: BatchState) -> np.ndarray:
    """`safe_moves` as whole-array NumPy code (the kernel's reference). Shape [B, S, 4]."""
    cells = targets(config, state)
    grid = occupied_next(state)
    rows = np.arange(state.batch_size)[:, None, None] * state.board.n_cells
    return state.board.inside[cells] & (state_mod.flat(grid).take(rows + cells) == 0)


def head_to_head_risk(config: GameConfig, state: BatchState) -> np.ndarray:
    """True where a living enemy at least as long can reach the same cell this turn
    (a possible lost head-to-head). Shape [B, S, 4]."""
    cells = targets(config, state)  # [B, S, 4]
    b, s = state.batch_size, state.n_snakes
    risk = np.zeros((b, s, 4), bool)
    for other in range(s):
        reach = cells[:, other, :]  # [B, 4]
        threat = state.alive[:, other][:, None, None] & (
            state.length[:, other][:, None, None] >= state.length[:, :, None])
        hit = (cells[..., None] == reach[:, None, None, :]).any(axis=3)
        mine = np.arange(s)[None, :, None] == other
        risk |= hit & threat & ~mine
    return risk


def choose(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """argmax over the last axis with random tie-breaks. scores [..., 4] -> [...] int8."""
    noise = rng.random(scores.shape) * 1e-3
    return np.argmax(scores + noise, axis=-1).astype(np.int8)
