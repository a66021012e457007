"""One official turn for a batch of games: the ruleset pipeline, the map, the turn count.

The stage order and every tie-break follow `github.com/BattlesnakeOfficial/rules`
v1.2.3 (see ../shared/reference/battlesnake-rules.md):

    game_over (on the incoming state; an over game skips the pipeline)
    -> movement -> starvation -> hazard damage -> feeding -> elimination
    -> [royale: hazards] [constrictor: remove food, grow every snake]
    -> map update (standard map: food spawn, seeded by seed + turn) -> turn += 1

Everything is vectorised over the batch. Work that only some snakes need on a
given turn (hazard damage, eliminations, blame for a collision) runs on the
index subset that needs it, so a turn without collisions costs a fixed handful
of array operations whatever the batch size.
"""

from __future__ import annotations

import numpy as np

from ouroboros.trainer.engine import kernel, maps, types
from ouroboros.trainer.engine import state as state_mod
from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import Cause, EngineBackend, GameConfig, Ruleset


def step(config: GameConfig, state: BatchState, moves: np.ndarray,
         backend: EngineBackend = EngineBackend.COMPILED) -> BatchState:
    """Plays one turn of every game and returns the new state (the input is untouched).

    moves: [B, S] int (Move values; -1 or anything outside 0..3 means "default move").
    Games already over on `state` keep their snakes but still get the map update
    and the turn increment, exactly as the official CLI does.
    """
    new = state.copy()
    advance(config, new, moves, backend)
    return new


def advance(config: GameConfig, state: BatchState, moves: np.ndarray,
            backend: EngineBackend = EngineBackend.COMPILED) -> None:
    """`step`, in place: the fast path for self-play loops that own their state.

    backend: `compiled` (default) runs `kernel.advance_games`; `numpy` the reference
    below. Both give the same state. Raises ValueError if moves is not [B, S] integers.
    """
    moves = np.asarray(moves)
    if moves.shape != state.alive.shape or moves.dtype.kind not in "iu":
        raise ValueError(f"moves must be integers of shape {state.alive.shape} (games, snakes), "
                         f"got {moves.dtype} {moves.shape}")
    if backend is not EngineBackend.COMPILED and EngineBackend(backend) is EngineBackend.NUMPY:
        _advance_numpy(config, state, moves)
        return
    moves = np.ascontiguousarray(moves, np.int64)
    if kernel.advance_games(*_arrays(state), moves, kernel.params(config)) < 0:
        _widen_rings(state, state.capacity + 1)  # a snake fills its ring: widen, then play the turn
        kernel.advance_games(*_arrays(state), moves, kernel.params(config))


def _arrays(state: BatchState) -> tuple:
    """A state's arrays in the order the kernels take them."""
    return (state.body, state.head_ptr, state.length, state.health, state.alive, state.cause,
            state.eliminated_by, state.eliminated_turn, state.food, state.hazard, state.occ,
            state.royale_shrinks, state.turn, state.seed)


def _advance_numpy(config: GameConfig, state: BatchState, moves: np.ndarray) -> None:
    """The reference turn: whole-array NumPy stages."""
    solo = config.ruleset is Ruleset.SOLO
    playing = ~state.game_over(solo)
    gb, sb = np.nonzero(state.alive & playing[:, None])  # the snakes that move this turn
    if gb.size:
        movers = _Movers(state, gb, sb)
        heads = _move(config, state, moves, movers)
        movers.at_heads(heads, state.board.n_cells)
        _starve_and_hazard(config, state, movers)
        _feed(state, movers)
        _eliminate(state, movers)
        games = np.flatnonzero(playing)
        if config.ruleset is Ruleset.ROYALE:
            maps.update_royale_hazards(config, state, games)
        if config.ruleset.constricts:
            state.food[games] = False
            _grow_all(state, games)
    if config.game_map is types.GameMap.STANDARD:
        maps.spawn_food(config, state)
    state.turn += 1


class _Movers:
    """The (game, snake) pairs that move this turn, with their flat indices into the
    state's arrays (one-dimensional `take`/`put` is several times faster than
    multi-axis fancy indexing, and these run on every snake every turn)."""

    def __init__(self, state: BatchState, gb: np.ndarray, sb: np.ndarray):
        self.g, self.s = gb, sb
        self.snake = gb * state.n_snakes + sb  # index into [B*S] arrays

    def at_heads(self, heads: np.ndarray, n_cells: int) -> None:
        """Records the new heads [n] and their index into [B*P] grids."""
        self.heads = heads
        self.cell = self.g * n_cells + heads


def _default_moves(state: BatchState, gb: np.ndarray, sb: np.ndarray) -> np.ndarray:
    """The official default move (neck -> head direction; `up` if stacked or length 1). Shape [n]."""
    board = state.board
    hx, hy = board.xy(state.cells_of(gb, sb, 0))
    nx, ny = board.xy(state.cells_of(gb, sb, 1))
    has_neck = state.length[gb, sb] >= 2
    conditions = [
        hx == nx + 1, hx == nx - 1, hy == ny + 1, hy == ny - 1,
        (hx == 0) & (nx > 0), (nx == 0) & (hx > 0), (hy == 0) & (ny > 0), (ny == 0) & (hy > 0),
    ]
    choices = [types.Move.RIGHT, types.Move.LEFT, types.Move.UP, types.Move.DOWN] * 2
    conditions = [c & has_neck for c in conditions]
    return np.select(conditions, choices, default=types.Move.UP)


def _move(config: GameConfig, state: BatchState, moves, m: _Movers) -> np.ndarray:
    """Movement stage: new head prepended, tail forgotten. Returns the new heads [n]."""
    board = state.board
    cap = state.capacity
    mv = state_mod.flat(np.ascontiguousarray(moves)).take(m.snake).astype(np.int64)
    bad = (mv < 0) | (mv > 3)
    if bad.any():
        mv[bad] = _default_moves(state, m.g[bad], m.s[bad])
    ptr = state_mod.flat(state.head_ptr)
    old_ptr = ptr.take(m.snake)
    length = state_mod.flat(state.length).take(m.snake)
    base = m.snake * cap
    body = state_mod.flat(state.body)
    old_head = body.take(base + old_ptr)
    old_tail = body.take(base + (old_ptr + length - 1) % cap)
    heads = old_head + board.move_delta[mv]
    if config.ruleset.wraps:
        heads = board.wrap[heads]
    new_ptr = (old_ptr - 1) % cap
    ptr[m.snake] = new_ptr
    body[base + new_ptr] = heads
    # body[1:] gains the old head and loses the old tail (a length-1 snake: both, net 0).
    row = m.g * board.n_cells
    state_mod.scatter_add(state.occ, row + old_head, 1, not state.disjoint)
    state_mod.scatter_add(state.occ, row + old_tail, -1, not state.disjoint)
    return heads


def _starve_and_hazard(config: GameConfig, state: BatchState, m: _Movers) -> None:
    """Starvation (-1 health, no clamp), then hazard damage per hazard entry under the head."""
    health = state_mod.flat(state.health)
    health[m.snake] -= 1
    entries = state_mod.flat(state.hazard).take(m.cell)
    if not entries.any():
        return
    hit = (entries > 0) & ~state_mod.flat(state.food).take(m.cell)
    if not hit.any():
        return
    g, s, n = m.g[hit], m.s[hit], entries[hit].astype(np.int64)
    damage = config.settings.hazard_damage_per_turn
    value = state.health[g, s]
    dead = np.zeros(g.size, bool)
    for k in range(int(n.max())):  # the official engine clamps after every entry
        on = n > k
        value = np.where(on, np.clip(value - damage, 0, types.SNAKE_MAX_HEALTH), value)
        dead |= on & (value <= 0)
    state.health[g, s] = value
    _kill(state, g[dead], s[dead], Cause.HAZARD, -1)


def _feed(state: BatchState, m: _Movers) -> None:
    """Every living snake whose head is on food eats it: health 100, tail doubled."""
    eats = state_mod.flat(state.food).take(m.cell)
    if not eats.any():
        return
    eats &= state_mod.flat(state.alive).take(m.snake)
    g, s = m.g[eats], m.s[eats]
    state_mod.flat(state.food)[m.cell[eats]] = False
    state.health[g, s] = types.SNAKE_MAX_HEALTH
    _grow(state, g, s)


def _grow(state: BatchState, g, s) -> None:
    """Appends a copy of the last segment (it keeps the tail's cell occupied next turn)."""
    if g.size == 0:
        return
    need = int(state.length[g, s].max()) + 1
    if need > state.capacity:
        _widen_rings(state, need)
    length = state.length[g, s]
    tail = state.cells_of(g, s, length - 1)
    cap = state.capacity
    state.body[g, s, (state.head_ptr[g, s] + length) % cap] = tail
    state.length[g, s] = length + 1
    living = state.alive[g, s]
    state_mod.scatter_add(state.occ, g[living] * state.board.n_cells + tail[living], 1, not state.disjoint)


def _widen_rings(state: BatchState, need: int) -> None:
    """Re-lays every ring buffer with room for `need` segments (rare: very long snakes)."""
    wide = state.with_capacity(max(need, 2 * state.capacity))
    state.body, state.head_ptr = wide.body, wide.head_ptr


def _eliminate(state: BatchState, m: _Movers) -> None:
    """Elimination stage: health and walls first, then collisions decided together."""
    alive = state_mod.flat(state.alive).take(m.snake)
    starved = alive & (state_mod.flat(state.health).take(m.snake) <= 0)
    walled = alive & ~starved & ~state.board.inside[m.heads]
    for mask, cause in ((starved, Cause.OUT_OF_HEALTH), (walled, Cause.WALL_COLLISION)):
        if mask.any():
            _kill(state, m.g[mask], m.s[mask], cause, -1)
            alive &= ~mask

    on_body = alive & (state_mod.flat(state.occ).take(m.cell) > 0)
    same_head = alive & state_mod.flat(_shared_heads(state)).take(m.snake)
    suspects = np.flatnonzero(on_body | same_head)
    if suspects.size == 0:
        return
    g, s = m.g[suspects], m.s[suspects]
    cause, blame = _blame(state, g, s, on_body[suspects])
    dead = cause != Cause.NOT_ELIMINATED
    for c in (Cause.SELF_COLLISION, Cause.SNAKE_COLLISION, Cause.HEAD_COLLISION):
        pick = dead & (cause == c)
        if pick.any():
            _kill(state, g[pick], s[pick], c, blame[pick])


def _shared_heads(state: BatchState) -> np.ndarray:
    """Whether another living snake of the same game has its head on the same cell. Shape [B, S]."""
    heads, alive = state.heads, state.alive
    shared = np.zeros(alive.shape, bool)
    for i in range(state.n_snakes):
        for j in range(i + 1, state.n_snakes):
            same = (heads[:, i] == heads[:, j]) & alive[:, i] & alive[:, j]
            shared[:, i] |= same
            shared[:, j] |= same
    return shared


def _blame(state: BatchState, g, s, on_body):
    """Collision causes and culprits for suspect snakes, with the official tie-breaks.

    Self-collision first; then the first other snake, longest first (ties in list
    order), whose body[1:] holds the head; then the first that wins head-to-head
    (at least as long). Returns (cause [n] int8, blame [n] int8).
    """
    n, n_snakes, cap = g.size, state.n_snakes, state.capacity
    lengths = state.length[g]  # [n, S]
    span = np.arange(1, max(int(lengths.max()), 2))  # segment offsets behind the head
    snake = g[:, None] * n_snakes + np.arange(n_snakes)  # [n, S] flat snake index
    ring = (state.head_ptr[g][:, :, None] + span) % cap  # [n, S, K]
    segments = state_mod.flat(state.body).take(snake[:, :, None] * cap + ring)
    target = state.cells_of(g, s, 0)  # the suspects' heads [n]
    behind_head = span < lengths[:, :, None]
    hits = ((segments == target[:, None, None]) & behind_head).any(axis=2)  # [n, S]
    hits &= state.alive[g] & on_body[:, None]
    heads_all = state_mod.flat(state.body).take(snake * cap + state.head_ptr[g])
    wins_h2h = (heads_all == target[:, None]) & (lengths >= state.length[g, s][:, None]) & state.alive[g]
    rows = np.arange(n)
    others = np.ones((n, state.n_snakes), bool)
    others[rows, s] = False
    order = np.argsort(-lengths, axis=1, kind="stable")  # longest first, ties in list order

    cause = np.zeros(n, np.int8)
    blame = np.full(n, -1, np.int8)
    self_hit = hits[rows, s]
    cause[self_hit] = Cause.SELF_COLLISION
    blame[self_hit] = s[self_hit]
    for candidates, c in ((hits & others, Cause.SNAKE_COLLISION), (wins_h2h & others, Cause.HEAD_COLLISION)):
        ordered = np.take_along_axis(candidates, order, axis=1)
        first = order[rows, ordered.argmax(axis=1)]
        pick = (cause == Cause.NOT_ELIMINATED) & ordered.any(axis=1)
        cause[pick] = c
        blame[pick] = first[pick]
    return cause, blame


def _kill(state: BatchState, g, s, cause: Cause, blame) -> None:
    """Eliminates snakes: records cause, culprit and turn, and drops their bodies from `occ`."""
    if g.size == 0:
        return
    state.alive[g, s] = False
    state.cause[g, s] = cause
    state.eliminated_by[g, s] = blame
    state.eliminated_turn[g, s] = state.turn[g] + 1
    cells, owner = _segments_behind_head(state, g, s)
    state_mod.scatter_add(state.occ, owner * state.board.n_cells + cells, -1, exact=True)


def _segments_behind_head(state: BatchState, g, s):
    """Cells of body[1:] of the given snakes, flattened, with the game of each. Shapes [m], [m]."""
    cap = state.capacity
    rel = (np.arange(cap)[None, :] - state.head_ptr[g, s][:, None]) % cap  # [n, L]
    behind = (rel >= 1) & (rel < state.length[g, s][:, None])
    rows, pos = np.nonzero(behind)
    return state.body[g[rows], s[rows], pos], g[rows]


def _grow_all(state: BatchState, games: np.ndarray) -> None:
    """Constrictor: every snake (eliminated ones too, as the official engine does) gets
    full health and grows unless its tail is already doubled."""
    state.health[games] = types.SNAKE_MAX_HEALTH
    g = np.repeat(games, state.n_snakes)
    s = np.tile(np.arange(state.n_snakes), games.size)
    length = state.length[g, s]
    ok = length >= 2
    g, s, length = g[ok], s[ok], length[ok]
    ptr, cap = state.head_ptr[g, s], state.capacity
    tail = state.body[g, s, (ptr + length - 1) % cap]
    sub_tail = state.body[g, s, (ptr + length - 2) % cap]
    grow = tail != sub_tail
    _grow(state, g[grow], s[grow])
