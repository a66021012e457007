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

from ouroboros.trainer.agents import bitboard
from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.observation import safety


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
    if the snake does not eat; stacked segments keep the latest time. The reference
    definition of the masks `_FreeMasks` builds incrementally (the tests compare them).
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
    alive = state.alive[:, seats]
    space, survive, territory, dist = _room(config, state, w, seats, cells, safe & alive[..., None])

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
    return np.where(alive[..., None], score, 0.0)


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


def _room(config: GameConfig, state: BatchState, w: HeuristicWeights, seats: np.ndarray,
          cells: np.ndarray, valid: np.ndarray):
    """Flood fills from the target cells of the `valid` moves (others get zeros and the
    no-food distance). Returns (space, survive, territory, food distance), each [B, K, 4].

    space: cells reachable within need = min(length, depth) moves over cells free by then.
    survive: moves t <= need for which every step s <= t had at least s reachable cells.
    territory: cells reachable within `territory_depth` moves strictly before any enemy
    could get there (a Voronoi partition with time-aware bodies).

    The fills run on the valid moves only, as [N, Hp] rows (N = valid moves, about half
    of B * K * 4 once necks, walls and eliminated snakes are left out); `g` maps each row
    to its game for the per-game masks.
    """
    board = state.board
    bits = bitboard.RowBits(board, config.ruleset.wraps)
    horizon = board.width + board.height
    free = _FreeMasks(bits, state)
    g, ks, ms = np.nonzero(valid)
    target = bits.single(cells[g, ks, ms])  # [N, Hp]
    need = np.minimum(state.length[g, seats[ks]], w.depth)  # [N]
    steps = int(max(need.max(initial=1), w.territory_depth))

    # Every living snake's reach over time; per seat, the union of its enemies' reach.
    enemy_reach = bits.single(state.heads) * state.alive[..., None].astype(bits.dtype)  # [B, S, Hp]
    others = ~np.eye(state.n_snakes, dtype=bool)[seats]  # [K, S]

    reach = target & free[1][g]
    mine = reach.copy()
    n = g.size
    space, survive, territory = (np.zeros(n, np.int64) for _ in range(3))
    cornered = np.zeros(n, bool)  # some step s had fewer than s reachable cells
    for t in range(1, steps + 1):
        free_t = free[t]
        rows_free = free_t[g]
        if t <= w.territory_depth:
            enemy_reach = bits.dilate(enemy_reach, free_t[:, None, :])
        if t > 1:
            reach = bits.dilate(reach, rows_free)
            if t <= w.territory_depth:
                contested = np.stack([np.bitwise_or.reduce(enemy_reach[:, o], axis=1) for o in others], 1)
                mine = bits.dilate(mine, rows_free)
                mine &= ~contested[g, ks]
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
    dist = _food_distance(bits, free, bits.pack(state.food), target, g, horizon)
    out = []
    for values, empty in ((space, 0), (survive, 0), (territory, 0), (dist, 2 * horizon)):
        full = np.full(cells.shape, empty, values.dtype)
        full[g, ks, ms] = values
        out.append(full)
    return tuple(out)


class _FreeMasks:
    """Bitboards of the cells free t moves from now, built incrementally. [B, Hp] each.

    Free at t = free now, plus the cells each snake's body has left by then: segment
    j (0 = head) of a snake of length L leaves after L - j moves, unless segment j - 1
    lies on the same cell (a doubled tail), which leaves later. One pack for t = 0,
    then one-bit rows per snake and step: cheaper than packing a [B, P] grid per step.
    """

    def __init__(self, bits: bitboard.RowBits, state: BatchState):
        self.bits, self.state = bits, state
        self.length = np.where(state.alive, state.length, 0)  # [B, S]
        occupied = np.zeros((state.batch_size, state.board.n_cells), bool)
        b = np.arange(state.batch_size)[:, None]
        for j in range(int(self.length.max(initial=0))):
            occupied[b, np.where(j < self.length, state.segment(j), 0)] = True
        occupied[:, 0] = False  # padding cell 0 stood in for missing segments
        self.masks = [bits.pack(state.board.inside[None, :] & ~occupied)]

    def __getitem__(self, t: int) -> np.ndarray:
        t = min(t, int(self.length.max(initial=0)))  # every body has left by then
        while len(self.masks) <= t:
            k = len(self.masks)  # segment L - k leaves at step k
            j = self.length - k
            cell = self.state.segment(np.maximum(j, 0))
            before = self.state.segment(np.maximum(j - 1, 0))
            leaves = (j >= 0) & ((j == 0) | (cell != before))
            rows = self.bits.single(cell) * leaves[..., None].astype(self.bits.dtype)
            self.masks.append(self.masks[-1] | np.bitwise_or.reduce(rows, axis=1))
        return self.masks[t]


def _food_distance(bits: bitboard.RowBits, free: _FreeMasks, food: np.ndarray,
                   target: np.ndarray, g: np.ndarray, horizon: int) -> np.ndarray:
    """Moves from each target cell to the nearest food by a breadth-first search from
    the food over cells free by then (1 when the target holds food; 2 * horizon when
    none is reachable). food [B, Hp] row bitboards, target [N, Hp] one-cell rows of
    games g [N] -> [N] float64."""
    layer = food  # cells within d moves of food
    dist = np.zeros(target.shape[0], np.float64)
    for d in range(1, horizon + 1):
        found = (dist == 0) & (target & layer[g]).any(axis=-1)
        dist[found] = d
        if (dist > 0).all():
            break
        layer = bits.dilate(layer, free[d]) | layer
    dist[dist == 0] = 2 * horizon
    return dist
