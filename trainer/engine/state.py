"""Board geometry and the batched game state.

Cells are numbered on a board padded by one cell on every side, so that a head
that just left the board (a wall collision) is still a valid index and every
"is it out of bounds?" question is one table lookup:

    cell(x, y) = (y + 1) * (width + 2) + (x + 1),   x in -1..width, y in -1..height

Each snake's body is a ring buffer of cells, head at `head_ptr`, `length`
segments long: a move writes one new head and forgets the tail, so no body is
ever shifted. `occ` counts, per cell, the body segments *behind the head*
(`body[1:]`) of living snakes: the collision and free-cell questions the rules
ask every turn become lookups in it.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from ouroboros.trainer.engine import types

INITIAL_CAPACITY = 32
"""Ring-buffer length a new batch starts with; the rules double it when a snake outgrows it."""


@dataclasses.dataclass(frozen=True)
class Board:
    """Index arithmetic for one board size (padded layout, see module docstring)."""

    width: int
    height: int

    @property
    def stride(self) -> int:
        """Cells per padded row."""
        return self.width + 2

    @property
    def n_cells(self) -> int:
        """Cells in the padded board (P)."""
        return (self.width + 2) * (self.height + 2)

    def cell(self, x, y):
        """Padded cell index of (x, y); works on scalars and arrays."""
        return (np.asarray(y) + 1) * self.stride + (np.asarray(x) + 1)

    def xy(self, cell):
        """(x, y) of a padded cell index; works on scalars and arrays."""
        cell = np.asarray(cell)
        return cell % self.stride - 1, cell // self.stride - 1

    @functools.cached_property
    def move_delta(self) -> np.ndarray:
        """Cell offset of each move (indexed by Move value). Shape [4]."""
        return types.MOVE_DX + types.MOVE_DY * self.stride

    @functools.cached_property
    def inside(self) -> np.ndarray:
        """True for on-board cells. Shape [P] bool."""
        x, y = self.xy(np.arange(self.n_cells))
        return (x >= 0) & (x < self.width) & (y >= 0) & (y < self.height)

    @functools.cached_property
    def wrap(self) -> np.ndarray:
        """Maps a cell one step off the board to the cell on the opposite edge
        (wrapped rulesets); on-board cells map to themselves. Shape [P]."""
        x, y = self.xy(np.arange(self.n_cells))
        x = np.where(x < 0, self.width - 1, np.where(x >= self.width, 0, x))
        y = np.where(y < 0, self.height - 1, np.where(y >= self.height, 0, y))
        return self.cell(x, y)

    @functools.cached_property
    def column_major_cells(self) -> np.ndarray:
        """On-board cells in the official engine's enumeration order (x outer, y inner),
        which decides where seeded food spawns. Shape [W*H]."""
        xs, ys = np.meshgrid(np.arange(self.width), np.arange(self.height), indexing="ij")
        return self.cell(xs.ravel(), ys.ravel())


def flat(a: np.ndarray) -> np.ndarray:
    """A 1-D view of a contiguous state array (writes go through). One-dimensional
    `take`/`put` is several times faster than multi-axis fancy indexing."""
    return a.reshape(-1)


def scatter_add(grid: np.ndarray, flat_index: np.ndarray, value, exact: bool) -> None:
    """grid.flat[flat_index] += value. Plain fancy indexing drops repeated indices, so it is
    only right when they cannot repeat (see `BatchState.disjoint`); else the exact `np.add.at`."""
    if exact:
        np.add.at(flat(grid), flat_index, value)
    else:
        flat(grid)[flat_index] += value


@dataclasses.dataclass
class BatchState:
    """B games of S snakes on one board size, as numpy arrays (shapes in brackets).

    The engine never mutates a state it is given: `rules.step` returns a new one.
    """

    board: Board
    turn: np.ndarray  # [B] int64
    seed: np.ndarray  # [B] int64: the game's seed; turn t draws from Go's NewSource(seed + t)
    body: np.ndarray  # [B, S, L] int16 ring buffers of padded cells (L grows on demand)
    head_ptr: np.ndarray  # [B, S] int64 ring index of the head
    length: np.ndarray  # [B, S] int64 segments, stacked ones included
    health: np.ndarray  # [B, S] int64
    alive: np.ndarray  # [B, S] bool: eliminatedCause == ""
    cause: np.ndarray  # [B, S] int8 Cause
    eliminated_by: np.ndarray  # [B, S] int8 snake index, -1 for none
    eliminated_turn: np.ndarray  # [B, S] int64
    food: np.ndarray  # [B, P] bool
    hazard: np.ndarray  # [B, P] int16: hazard entries per cell (duplicates stack)
    occ: np.ndarray  # [B, P] int16: body[1:] segments of living snakes per cell
    royale_shrinks: np.ndarray  # [B] int64: shrinks the hazard grid reflects (-1: unknown)
    disjoint: bool = True
    """Living snakes' heads are distinct and their body[1:] cells disjoint. Every state the
    engine makes from `maps.new_games` keeps this, which lets grid updates use plain
    (buffered) fancy indexing; a board read from arbitrary JSON sets it False and the
    rules fall back to exact unbuffered scatters."""

    @property
    def batch_size(self) -> int:
        return self.body.shape[0]

    @property
    def n_snakes(self) -> int:
        return self.body.shape[1]

    @property
    def capacity(self) -> int:
        return self.body.shape[2]

    @classmethod
    def empty(cls, board: Board, batch_size: int, n_snakes: int, capacity: int | None = None):
        """A batch of boards without food, hazards or placed snakes (all lengths 0)."""
        b, s, p = batch_size, n_snakes, board.n_cells
        cap = capacity or min(p, INITIAL_CAPACITY)
        return cls(
            board=board,
            turn=np.zeros(b, np.int64),
            seed=np.zeros(b, np.int64),
            body=np.zeros((b, s, cap), np.int16),
            head_ptr=np.zeros((b, s), np.int64),
            length=np.zeros((b, s), np.int64),
            health=np.full((b, s), types.SNAKE_MAX_HEALTH, np.int64),
            alive=np.ones((b, s), bool),
            cause=np.zeros((b, s), np.int8),
            eliminated_by=np.full((b, s), -1, np.int8),
            eliminated_turn=np.zeros((b, s), np.int64),
            food=np.zeros((b, p), bool),
            hazard=np.zeros((b, p), np.int16),
            occ=np.zeros((b, p), np.int16),
            royale_shrinks=np.full(b, -1, np.int64),
        )

    def copy(self) -> BatchState:
        """A deep copy (the board geometry is shared: it is immutable)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return BatchState(**{k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in fields.items()})

    def select(self, games) -> BatchState:
        """The games at `games` (index array or boolean mask), as a new state."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return BatchState(**{k: (v[games].copy() if isinstance(v, np.ndarray) else v) for k, v in fields.items()})

    def assign(self, games, other: BatchState) -> None:
        """Writes `other`'s games into this state at `games` (used to reset finished games)."""
        if other.capacity != self.capacity:
            other = other.with_capacity(self.capacity)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value[games] = getattr(other, f.name)
        self.disjoint = self.disjoint and other.disjoint

    def with_capacity(self, capacity: int) -> BatchState:
        """A copy whose ring buffers hold `capacity` segments, each body unrolled head first."""
        if capacity < int(self.length.max(initial=0)):
            raise ValueError(f"capacity {capacity} is shorter than the longest snake")
        b, s, cap = self.body.shape
        width = min(cap, capacity)
        idx = (self.head_ptr[..., None] + np.arange(width)) % cap
        new = self.copy()
        new.body = np.zeros((b, s, capacity), self.body.dtype)
        new.body[..., :width] = np.take_along_axis(self.body, idx, axis=2)
        new.head_ptr = np.zeros((b, s), np.int64)
        return new

    # -- views used by the rules, players and encoders -------------------------------

    def ring_index(self, offset) -> np.ndarray:
        """Ring positions of segment `offset` (0 = head; may be an array [B, S]). Shape [B, S]."""
        return (self.head_ptr + offset) % self.capacity

    def segment(self, offset) -> np.ndarray:
        """Cell of segment `offset` of every snake (0 = head, length-1 = tail). Shape [B, S]."""
        b, s, cap = self.body.shape
        flat = np.arange(b * s).reshape(b, s) * cap + self.ring_index(offset)
        return self.body.reshape(-1).take(flat)

    def cells_of(self, g: np.ndarray, s: np.ndarray, offset) -> np.ndarray:
        """Cell of segment `offset` (scalar or [n]) of the snakes (g[n], s[n]). Shape [n]."""
        _, n_snakes, cap = self.body.shape
        return self.body.reshape(-1).take((g * n_snakes + s) * cap + (self.head_ptr[g, s] + offset) % cap)

    @property
    def heads(self) -> np.ndarray:
        """Head cell of every snake. Shape [B, S]."""
        return self.segment(0)

    @property
    def tails(self) -> np.ndarray:
        """Tail cell of every snake. Shape [B, S]."""
        return self.segment(self.length - 1)

    def snake_cells(self, game: int, snake: int) -> np.ndarray:
        """Body of one snake, head first, as padded cells. Shape [length]."""
        n = int(self.length[game, snake])
        idx = (self.head_ptr[game, snake] + np.arange(n)) % self.capacity
        return self.body[game, snake, idx]

    def game_over(self, solo: bool) -> np.ndarray:
        """Official game-over test on this state: standard <= 1 snake alive, solo 0. Shape [B] bool."""
        living = self.alive.sum(axis=1)
        return living == 0 if solo else living <= 1

    def rebuild_occ(self) -> None:
        """Recomputes `occ` from the bodies (after loading or editing bodies by hand)."""
        b, s, _ = self.body.shape
        self.occ[:] = 0
        for g in range(b):
            for i in range(s):
                if self.alive[g, i] and self.length[g, i] > 1:
                    np.add.at(self.occ[g], self.snake_cells(g, i)[1:], 1)
