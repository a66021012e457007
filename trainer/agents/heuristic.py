"""The heuristic teacher: a batched, hand-weighted player that labels positions.

The bootstrap phase imitates this player on millions of positions, so it scores
every candidate move of every snake of every game in one vectorised pass:

- **safety**: a move that leaves the board, runs into a body or runs out of
  health loses at once; it is only ever chosen when every move does.
- **space**: a flood fill from the move's target over the cells that are free
  by the time the snake could get there (a body segment k from its tail is gone
  after k + 1 moves), to a depth of the snake's length. The snake must move
  every turn, so it survives t moves only if at least t cells are reachable by
  then; surviving fewer moves than its length is a trap, penalised by the
  shortfall (a pocket that opens only after the snake would have died is no room).
- **head-to-head**: a cell that an enemy at least as long can also reach this
  turn is avoided (equal length kills both); one that a shorter enemy can reach
  is attractive.
- **food**: when hungry (health below a threshold) or not longer than the
  longest enemy, the move closest to food by path (from the same flood fill;
  Manhattan beyond its depth) is preferred, more strongly as health runs low.
- **hazards**: entering a hazard without food costs health and is discouraged.

Flood fills use row bitboards (bitboard.py): [B, K, Hp] integers for K candidate
moves per game, one dilation per step.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ouroboros.trainer.agents import bitboard, safety
from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import GameConfig


@dataclasses.dataclass(frozen=True)
class HeuristicWeights:
    """What the teacher values, in points per move (higher is better)."""

    death: float = -1000.0
    """A move that loses at once (wall, body)."""
    h2h_loss: float = -500.0
    """A longer enemy can move to the same cell (a lost head-to-head if it does)."""
    h2h_tie: float = -350.0
    """An enemy of equal length can move to the same cell (both would die)."""
    h2h_win: float = 25.0
    """A shorter enemy can move to the same cell (it dies if it does)."""
    trap: float = 600.0
    """Times the fraction of its own length (up to `depth`) that it cannot survive in the space."""
    space: float = 20.0
    """Times the reachable fraction of the board (prefer open areas)."""
    food: float = 120.0
    """Times 1 / path distance to the nearest food, when hungry."""
    food_idle: float = 5.0
    """Times 1 / distance to food when not hungry (a mild pull keeps snakes growing)."""
    hungry_health: int = 90
    """Health below which the snake seeks food whatever its length."""
    length_margin: int = 1
    """Seek food unless longer than every enemy by at least this much."""
    hazard: float = 40.0
    """Per hazard entry on the target cell without food (scaled by damage / 14)."""
    territory: float = 600.0
    """Times the fraction of the board this snake reaches before any enemy (see `territory_depth`)."""
    territory_depth: int = 10
    """Moves over which territory is counted."""
    depth: int = 24
    """Flood-fill depth cap (moves); space is measured min(length, depth) moves out."""


@dataclasses.dataclass
class Heuristic:
    """The teacher as a `Player`; `scores` exposes the per-move values for soft labels."""

    weights: HeuristicWeights = dataclasses.field(default_factory=HeuristicWeights)
    name: str = "heuristic"

    def act(self, config: GameConfig, state: BatchState, seat: int, rng: np.random.Generator) -> np.ndarray:
        """Moves for `seat` in every game. Shape [B] int8."""
        return safety.choose(self.scores(config, state, [seat])[:, 0], rng)

    def act_all(self, config: GameConfig, state: BatchState, rng: np.random.Generator) -> np.ndarray:
        """Moves for every seat at once (one shared flood-fill setup). Shape [B, S] int8."""
        return safety.choose(self.scores(config, state), rng)

    def scores(self, config: GameConfig, state: BatchState, seats=None) -> np.ndarray:
        """Value of each move for the given seats (default all). Shape [B, len(seats), 4] float64.

        Eliminated snakes get zeros.
        """
        return move_scores(config, state, self.weights, seats)


def time_free(state: BatchState, depth: int) -> np.ndarray:
    """Moves until each cell is clear of bodies (0 = clear now), capped at depth + 1. Shape [B, P].

    Segment j (0 = head) of a snake of length L leaves its cell after L - j moves
    if the snake does not eat; stacked segments keep the latest time.
    """
    b = np.arange(state.batch_size)[:, None]
    free_at = np.zeros((state.batch_size, state.board.n_cells), np.int64)
    length = np.where(state.alive, state.length, 0)
    for j in range(int(length.max(initial=0))):
        has = j < length  # others write padding cell 0, so no live cell is written twice
        cells = np.where(has, state.segment(j), 0)
        value = np.where(has, np.minimum(length - j, depth + 1), 0)
        free_at[b, cells] = np.maximum(free_at[b, cells], value)
    return free_at


def move_scores(config: GameConfig, state: BatchState, w: HeuristicWeights, seats=None) -> np.ndarray:
    """Scores every move of the given seats. Shape [B, len(seats), 4] float64 (see module docstring)."""
    board = state.board
    seats = np.arange(state.n_snakes) if seats is None else np.asarray(seats)
    rows = np.arange(state.batch_size)[:, None, None]
    own_len = state.length[:, seats]  # [B, K]
    own = own_len[..., None]
    targets_all = safety.targets(config, state)  # [B, S, 4]
    cells = targets_all[:, seats]  # [B, K, 4]
    safe = safety.safe_moves(config, state)[:, seats]
    enemy_len_at, shorter_at = _head_to_head(state, targets_all, seats)
    loss = enemy_len_at > own
    tie = enemy_len_at == own
    space, survive, territory, dist = _room(config, state, w, seats, cells)

    has_food = state.food.any(axis=1)
    enemies_len = np.where(state.alive, state.length, 0)
    longest_enemy = np.stack([np.delete(enemies_len, s, axis=1).max(axis=1, initial=0) for s in seats], 1)
    health = state.health[:, seats]
    hungry = (health < w.hungry_health) | (own_len < longest_enemy + w.length_margin)
    urgency = 1.0 + np.clip((w.hungry_health - health) / max(w.hungry_health, 1), 0, 1)
    food_weight = np.where(hungry, w.food * urgency, w.food_idle)[..., None]

    need = np.minimum(own, w.depth)
    fit = np.minimum(survive, need) / np.maximum(need, 1)
    n_inside = float(board.width * board.height)
    on_food = state.food[rows, cells]
    hazard = state.hazard[rows, cells] * ~on_food
    damage = config.settings.hazard_damage_per_turn / 14.0
    # Out of health this turn (starvation, hazard damage) unless the target holds food.
    starves = ~on_food & (health[..., None] - 1 - hazard * config.settings.hazard_damage_per_turn <= 0)
    score = (
        w.trap * (fit - 1.0)
        + w.space * space / n_inside
        + w.territory * territory / n_inside
        + np.where(has_food[:, None, None], food_weight / dist, 0.0)
        + np.where(loss, w.h2h_loss, 0.0) + np.where(tie & ~loss, w.h2h_tie, 0.0)
        + np.where(shorter_at & ~loss & ~tie, w.h2h_win, 0.0)
        - w.hazard * damage * hazard
    )
    score = np.where(safe & ~starves, score, w.death + score * 1e-3)
    return np.where(state.alive[:, seats, None], score, 0.0)


def _head_to_head(state: BatchState, targets_all: np.ndarray, seats: np.ndarray):
    """For each target cell of the given seats: the length of the longest living enemy that
    can also move there (-1: none), and whether a shorter one can. Shapes [B, K, 4]."""
    cells = targets_all[:, seats]
    own = state.length[:, seats, None]
    enemy_len_at = np.full(cells.shape, -1, np.int64)
    shorter_at = np.zeros(cells.shape, bool)
    for other in range(state.n_snakes):
        enemy = state.alive[:, other, None, None] & (seats[None, :, None] != other)
        hit = (cells[..., None] == targets_all[:, other, None, None, :]).any(axis=3) & enemy
        olen = state.length[:, other, None, None]
        enemy_len_at = np.where(hit, np.maximum(enemy_len_at, olen), enemy_len_at)
        shorter_at |= hit & (olen < own)
    return enemy_len_at, shorter_at


def _room(config: GameConfig, state: BatchState, w: HeuristicWeights, seats: np.ndarray, cells: np.ndarray):
    """Flood fills from every target cell. Returns (space, survive, territory, food distance),
    each [B, K, 4].

    space: cells reachable within need = min(length, depth) moves over cells free by then.
    survive: moves t <= need for which every step s <= t had at least s reachable cells.
    territory: cells reachable within `territory_depth` moves strictly before any enemy
    could get there (a Voronoi partition with time-aware bodies).
    """
    board = state.board
    bsz, k = cells.shape[0], cells.shape[1] * 4
    bits = bitboard.RowBits(board, config.ruleset.wraps)
    horizon = board.width + board.height
    free = _FreeMasks(bits, board.inside[None, :], time_free(state, horizon))
    target_bits = bits.single(cells.reshape(bsz, k))  # [B, K*4, Hp]
    need = np.repeat(np.minimum(state.length[:, seats], w.depth), 4, axis=1)  # [B, K*4]
    steps = int(max(need.max(initial=1), w.territory_depth))

    # Every living snake's reach over time, and per seat the union of its enemies' reach.
    heads = bits.single(state.heads) * state.alive[..., None]  # [B, S, Hp]
    enemy_reach = heads
    others = ~np.eye(state.n_snakes, dtype=bool)[seats]  # [K, S]

    reach = target_bits & free[1][:, None, :]
    mine = reach.copy()
    space = np.zeros((bsz, k), np.int64)
    survive = np.zeros((bsz, k), np.int64)
    cornered = np.zeros((bsz, k), bool)  # some step s had fewer than s reachable cells
    territory = np.zeros((bsz, k), np.int64)
    for t in range(1, steps + 1):
        free_t = free[t][:, None, :]
        if t <= w.territory_depth:
            enemy_reach = bits.dilate(enemy_reach, free_t)
        if t > 1:
            reach = bits.dilate(reach, free_t)
            if t <= w.territory_depth:
                contested = np.stack([np.bitwise_or.reduce(enemy_reach[:, o], axis=1) for o in others], 1)
                mine = bits.dilate(mine, free_t)
                mine.reshape(bsz, len(seats), 4, -1)[...] &= ~contested[:, :, None, :]
        open_ = ~cornered & (t <= need)
        if open_.any():
            count = bitboard.popcount(reach[open_])
            cornered[open_] = count < t
            survive[open_] += count >= t
        at = need == t
        if at.any():
            space[at] = bitboard.popcount(reach[at])
        if t == w.territory_depth:
            territory = bitboard.popcount(mine)
    dist = _food_distance(bits, free, bits.pack(state.food), target_bits, horizon)
    shape = cells.shape
    return space.reshape(shape), survive.reshape(shape), territory.reshape(shape), dist.reshape(shape)


class _FreeMasks:
    """Bitboards of the cells free t moves from now (free_at <= t), built on first use. [B, Hp] each."""

    def __init__(self, bits: bitboard.RowBits, inside: np.ndarray, free_at: np.ndarray):
        self.bits, self.inside, self.free_at = bits, inside, free_at
        self.cap = int(free_at.max(initial=0))
        self.cache: dict[int, np.ndarray] = {}

    def __getitem__(self, t: int) -> np.ndarray:
        t = min(t, self.cap)  # past every body's free time, the mask no longer changes
        if t not in self.cache:
            self.cache[t] = self.bits.pack(self.inside & (self.free_at <= t))
        return self.cache[t]


def _food_distance(bits: bitboard.RowBits, free: _FreeMasks, food: np.ndarray,
                   target_bits: np.ndarray, horizon: int) -> np.ndarray:
    """Moves from each target cell to the nearest food by a breadth-first search from
    the food over cells free by then (1 when the target holds food; 2 * horizon when
    none is reachable). food [B, Hp] row bitboards, target_bits [B, N, Hp] -> [B, N] float64."""
    layer = food  # cells within d moves of food
    dist = np.zeros(target_bits.shape[:2], np.float64)
    for d in range(1, horizon + 1):
        found = (dist == 0) & (target_bits & layer[:, None, :]).any(axis=-1)
        dist[found] = d
        if (dist > 0).all():
            break
        layer = bits.dilate(layer, free[d]) | layer
    dist[dist == 0] = 2 * horizon
    return dist
