"""One game as plain Python values, with the engine's turn rules: the search's state.

A tree search copies and advances one game millions of times; numpy's per-call
overhead (microseconds) would dominate that, so the search works on a compact
scalar form built from one game of a `BatchState`:

- a snake is `(body, bits, health)`: `body` a tuple of padded cells, head first;
  `bits` a Python integer with bit `c` set for every cell of the body (bodies never
  overlap themselves except a doubled tail, so a move is one OR and one AND-NOT);
- a position is `(snakes, food)`: `snakes` a tuple with `None` for eliminated
  snakes, `food` a bit set of cells.

`Rules.step` plays one turn exactly as `engine.rules.step` does for the parts a
search can know: movement, starvation, hazard damage (with the food exception),
feeding, every elimination rule with the official ordering, and constrictor
growth. It does not spawn food or shrink royale hazards (random, unknowable to a
player); tests check it against `rules.step` with spawning off.
"""

from __future__ import annotations

import dataclasses
import functools

from ouroboros.trainer.engine import types
from ouroboros.trainer.engine.state import BatchState, Board
from ouroboros.trainer.engine.types import GameConfig

Snake = tuple  # (body: tuple[int, ...], bits: int, health: int)
Position = tuple  # (snakes: tuple[Snake | None, ...], food: int)


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Bit masks and move tables of one board size (padded layout, see engine/state.py)."""

    width: int
    height: int
    wraps: bool

    @functools.cached_property
    def stride(self) -> int:
        """Cells per padded row."""
        return self.width + 2

    @functools.cached_property
    def board(self) -> Board:
        return Board(self.width, self.height)

    @functools.cached_property
    def bit(self) -> list[int]:
        """1 << cell for every padded cell."""
        return [1 << c for c in range(self.board.n_cells)]

    @functools.cached_property
    def inside(self) -> int:
        """Bit set of the on-board cells."""
        return sum(1 << int(c) for c in self.board.column_major_cells)

    @functools.cached_property
    def delta(self) -> tuple[int, int, int, int]:
        """Cell offset per move (Move values)."""
        return tuple(int(d) for d in self.board.move_delta)

    @functools.cached_property
    def wrap(self) -> list[int]:
        """Cell after wrapping (identity on the board)."""
        return [int(c) for c in self.board.wrap]

    @functools.cached_property
    def edges(self) -> tuple[int, int, int, int, int, int]:
        """(x = 0 column, x = w-1 column, y = 0 row, y = h-1 row, x shift, y shift) for wrapped dilation."""
        cells = self.board.column_major_cells
        x, y = self.board.xy(cells)
        mask = lambda sel: sum(1 << int(c) for c in cells[sel])  # noqa: E731
        return (mask(x == 0), mask(x == self.width - 1), mask(y == 0), mask(y == self.height - 1),
                self.width - 1, (self.height - 1) * self.stride)

    def dilate(self, b: int) -> int:
        """b plus its neighbours (unmasked: AND with a free set afterwards)."""
        s = self.stride
        d = b | (b << 1) | (b >> 1) | (b << s) | (b >> s)
        if self.wraps:
            left, right, bottom, top, dx, dy = self.edges
            d |= ((b & left) << dx) | ((b & right) >> dx) | ((b & bottom) << dy) | ((b & top) >> dy)
        return d


@functools.lru_cache(maxsize=64)
def geometry(width: int, height: int, wraps: bool) -> Geometry:
    """Shared geometry per board size (its tables are built once)."""
    return Geometry(width, height, wraps)


@dataclasses.dataclass(frozen=True)
class Rules:
    """The fixed parts of one game: geometry, ruleset switches and the hazards at the root."""

    geo: Geometry
    constricts: bool
    hazard: tuple[int, ...]  # hazard entries per padded cell
    hazard_damage: int

    @classmethod
    def of(cls, config: GameConfig, state: BatchState, game: int) -> Rules:
        geo = geometry(config.width, config.height, config.ruleset.wraps)
        return cls(geo, config.ruleset.constricts, tuple(int(h) for h in state.hazard[game]),
                   config.settings.hazard_damage_per_turn)

    def targets(self, snake: Snake) -> list[int]:
        """Cell each move leads to (wrapped where the ruleset wraps). [4]."""
        head = snake[0][0]
        cells = [head + d for d in self.geo.delta]
        return [self.geo.wrap[c] for c in cells] if self.geo.wraps else cells

    def step(self, pos: Position, moves) -> Position:
        """One turn: `moves[i]` (0..3) for every living snake i. Returns the new position."""
        snakes, food = pos
        bit, inside, hazard = self.geo.bit, self.geo.inside, self.hazard
        n = len(snakes)
        moved: list = [None] * n
        rest = [0] * n  # body[1:] after the move, as bits
        for i, snake in enumerate(snakes):
            if snake is None:
                continue
            body, bits, health = snake
            head = body[0] + self.geo.delta[moves[i]]
            if self.geo.wraps:
                head = self.geo.wrap[head]
            tail = body[-1]
            if len(body) < 2:
                rest[i] = 0
            elif body[-2] == tail:
                rest[i] = bits
            else:
                rest[i] = bits & ~bit[tail]
            health -= 1
            entries = hazard[head]
            if entries and not food & bit[head]:
                dead = False
                for _ in range(entries):  # clamp after every entry, as the official engine
                    health = min(max(health - self.hazard_damage, 0), types.SNAKE_MAX_HEALTH)
                    dead |= health <= 0
                if dead:
                    continue
            moved[i] = ((head,) + body[:-1], rest[i] | bit[head], health)
        eaten = 0
        for i, snake in enumerate(moved):
            if snake is not None and food & bit[snake[0][0]]:
                body = snake[0]
                moved[i] = (body + (body[-1],), snake[1], types.SNAKE_MAX_HEALTH)
                eaten |= bit[body[0]]
        food &= ~eaten
        for i, snake in enumerate(moved):  # pass 1: health and walls
            if snake is not None and (snake[2] <= 0 or not inside & bit[snake[0][0]]):
                moved[i] = None
        out = list(moved)
        for i, snake in enumerate(moved):  # pass 2: collisions, decided together
            if snake is None:
                continue
            head, length = snake[0][0], len(snake[0])
            hb = bit[head]
            for j, other in enumerate(moved):
                if other is None:
                    continue
                if rest[j] & hb or (j != i and other[0][0] == head and len(other[0]) >= length):
                    out[i] = None
                    break
        if self.constricts:
            food = 0
            full = types.SNAKE_MAX_HEALTH
            out = [s if s is None else (s[0] + (s[0][-1],), s[1], full)
                   if len(s[0]) >= 2 and s[0][-2] != s[0][-1] else (s[0], s[1], full) for s in out]
        return tuple(out), food


def from_batch(state: BatchState, game: int) -> Position:
    """The position of one game of a batch (eliminated snakes become None)."""
    snakes = []
    for i in range(state.n_snakes):
        if not state.alive[game, i]:
            snakes.append(None)
            continue
        body = tuple(int(c) for c in state.snake_cells(game, i))
        bits = 0
        for c in body:
            bits |= 1 << c
        snakes.append((body, bits, int(state.health[game, i])))
    food = 0
    for c in state.food[game].nonzero()[0]:
        food |= 1 << int(c)
    return tuple(snakes), food


def to_batch(rules: Rules, positions: list[Position], turns: list[int]) -> BatchState:
    """Compact positions back into a `BatchState` (one game each), e.g. to encode them
    for a network. Hazards are the rules' (the root's); seeds are 0; `occ` is left empty
    (call `rebuild_occ` before stepping the result with the engine).
    Bodies are unrolled head first (ring head at 0)."""
    n, s = len(positions), len(positions[0][0])
    longest = max((len(sn[0]) for pos in positions for sn in pos[0] if sn is not None), default=1)
    state = BatchState.empty(rules.geo.board, n, s, capacity=max(longest, 1))
    state.turn[:] = turns
    state.hazard[:] = rules.hazard
    for g, (snakes, food) in enumerate(positions):
        for i, snake in enumerate(snakes):
            if snake is None:
                state.alive[g, i] = False
                continue
            body = snake[0]
            state.body[g, i, :len(body)] = body
            state.length[g, i] = len(body)
            state.health[g, i] = snake[2]
        while food:
            low = food & -food
            state.food[g, low.bit_length() - 1] = True
            food ^= low
    return state


def obstacles(bit: list[int], snakes) -> int:
    """Cells that stay occupied after the coming move: every body minus its tail, unless the tail
    is stacked (just ate) and stays; ``bit`` is the geometry's cell -> bit table, ``snakes`` the
    position's snakes (None for the dead)."""
    obst = 0
    for s in snakes:
        if s is not None:
            body = s[0]
            obst |= s[1] if len(body) >= 2 and body[-1] == body[-2] else s[1] & ~bit[body[-1]]
    return obst
