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

from ouroboros.trainer.engine import maps, types
from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import Cause, GameConfig, Ruleset


def step(config: GameConfig, state: BatchState, moves: np.ndarray) -> BatchState:
    """Plays one turn of every game and returns the new state (the input is untouched).

    moves: [B, S] int (Move values; -1 or anything outside 0..3 means "default move").
    Games already over on `state` keep their snakes but still get the map update
    and the turn increment, exactly as the official CLI does.
    """
    new = state.copy()
    advance(config, new, moves)
    return new


def advance(config: GameConfig, state: BatchState, moves: np.ndarray) -> None:
    """`step`, in place: the fast path for self-play loops that own their state."""
    solo = config.ruleset is Ruleset.SOLO
    playing = ~state.game_over(solo)
    movers = state.alive & playing[:, None]
    gb, sb = np.nonzero(movers)  # the (game, snake) pairs that take part this turn
    if gb.size:
        heads = _move(config, state, moves, gb, sb)
        _starve_and_hazard(config, state, gb, sb, heads)
        _feed(state, gb, sb, heads)
        _eliminate(state, gb, sb, heads)
        games = np.flatnonzero(playing)
        if config.ruleset is Ruleset.ROYALE:
            maps.update_royale_hazards(config, state, games)
        if config.ruleset.constricts:
            state.food[games] = False
            _grow_all(state, games)
    if config.game_map is types.GameMap.STANDARD:
        maps.spawn_food(config, state)
    state.turn += 1


def _default_moves(state: BatchState, gb: np.ndarray, sb: np.ndarray) -> np.ndarray:
    """The official default move (neck -> head direction; `up` if stacked or length 1). Shape [n]."""
    board = state.board
    hx, hy = board.xy(state.body[gb, sb, state.head_ptr[gb, sb]])
    neck = state.body[gb, sb, (state.head_ptr[gb, sb] + 1) % state.capacity]
    nx, ny = board.xy(neck)
    has_neck = state.length[gb, sb] >= 2
    conditions = [
        hx == nx + 1, hx == nx - 1, hy == ny + 1, hy == ny - 1,
        (hx == 0) & (nx > 0), (nx == 0) & (hx > 0), (hy == 0) & (ny > 0), (ny == 0) & (hy > 0),
    ]
    choices = [types.Move.RIGHT, types.Move.LEFT, types.Move.UP, types.Move.DOWN] * 2
    conditions = [c & has_neck for c in conditions]
    return np.select(conditions, choices, default=types.Move.UP)


def _move(config: GameConfig, state: BatchState, moves, gb, sb) -> np.ndarray:
    """Movement stage: new head prepended, tail forgotten. Returns the new heads [n]."""
    board = state.board
    cap = state.capacity
    mv = np.asarray(moves)[gb, sb].astype(np.int64)
    bad = (mv < 0) | (mv > 3)
    if bad.any():
        mv[bad] = _default_moves(state, gb[bad], sb[bad])
    old_ptr = state.head_ptr[gb, sb]
    length = state.length[gb, sb]
    old_head = state.body[gb, sb, old_ptr]
    old_tail = state.body[gb, sb, (old_ptr + length - 1) % cap]
    heads = old_head + board.move_delta[mv]
    if config.ruleset.wraps:
        heads = board.wrap[heads]
    new_ptr = (old_ptr - 1) % cap
    state.head_ptr[gb, sb] = new_ptr
    state.body[gb, sb, new_ptr] = heads
    # body[1:] gains the old head and loses the old tail (a length-1 snake: both, net 0).
    np.add.at(state.occ, (gb, old_head), 1)
    np.subtract.at(state.occ, (gb, old_tail), 1)
    return heads


def _starve_and_hazard(config: GameConfig, state: BatchState, gb, sb, heads) -> None:
    """Starvation (-1 health, no clamp), then hazard damage per hazard entry under the head."""
    state.health[gb, sb] -= 1
    entries = state.hazard[gb, heads]
    hit = (entries > 0) & ~state.food[gb, heads]
    if not hit.any():
        return
    g, s, n = gb[hit], sb[hit], entries[hit].astype(np.int64)
    damage = config.settings.hazard_damage_per_turn
    health = state.health[g, s]
    dead = np.zeros(g.size, bool)
    for k in range(int(n.max())):  # the official engine clamps after every entry
        on = n > k
        health = np.where(on, np.clip(health - damage, 0, types.SNAKE_MAX_HEALTH), health)
        dead |= on & (health <= 0)
    state.health[g, s] = health
    _kill(state, g[dead], s[dead], Cause.HAZARD, -1)


def _feed(state: BatchState, gb, sb, heads) -> None:
    """Every living snake whose head is on food eats it: health 100, tail doubled."""
    eats = state.alive[gb, sb] & state.food[gb, heads]
    if not eats.any():
        return
    g, s = gb[eats], sb[eats]
    state.food[g, heads[eats]] = False
    state.health[g, s] = types.SNAKE_MAX_HEALTH
    _grow(state, g, s)


def _grow(state: BatchState, g, s) -> None:
    """Appends a copy of the last segment (it keeps the tail's cell occupied next turn)."""
    need = int(state.length[g, s].max(initial=0)) + 1
    if need > state.capacity:
        _widen_rings(state, need)
    cap = state.capacity
    ptr, length = state.head_ptr[g, s], state.length[g, s]
    tail = state.body[g, s, (ptr + length - 1) % cap]
    state.body[g, s, (ptr + length) % cap] = tail
    state.length[g, s] = length + 1
    living = state.alive[g, s]
    np.add.at(state.occ, (g[living], tail[living]), 1)


def _widen_rings(state: BatchState, need: int) -> None:
    """Re-lays every ring buffer with room for `need` segments (rare: very long snakes)."""
    b, s, cap = state.body.shape
    new_cap = max(need, 2 * cap)
    idx = (state.head_ptr[..., None] + np.arange(cap)) % cap
    unrolled = np.take_along_axis(state.body, idx, axis=2)
    body = np.zeros((b, s, new_cap), state.body.dtype)
    body[..., :cap] = unrolled
    state.body = body
    state.head_ptr = np.zeros((b, s), np.int64)


def _eliminate(state: BatchState, gb, sb, heads) -> None:
    """Elimination stage: health and walls first, then collisions decided together."""
    alive = state.alive[gb, sb]
    starved = alive & (state.health[gb, sb] <= 0)
    walled = alive & ~starved & ~state.board.inside[heads]
    for mask, cause in ((starved, Cause.OUT_OF_HEALTH), (walled, Cause.WALL_COLLISION)):
        if mask.any():
            _kill(state, gb[mask], sb[mask], cause, -1)

    alive = state.alive[gb, sb]
    on_body = alive & (state.occ[gb, heads] > 0)
    same_head = alive & _shares_head(state, gb, sb, heads)
    suspects = np.flatnonzero(on_body | same_head)
    if suspects.size == 0:
        return
    g, s = gb[suspects], sb[suspects]
    cause, blame = _blame(state, g, s, on_body[suspects])
    dead = cause != Cause.NOT_ELIMINATED
    for c in (Cause.SELF_COLLISION, Cause.SNAKE_COLLISION, Cause.HEAD_COLLISION):
        pick = dead & (cause == c)
        if pick.any():
            _kill(state, g[pick], s[pick], c, blame[pick])


def _shares_head(state: BatchState, gb, sb, heads) -> np.ndarray:
    """Whether another living snake of the same game has its head on the same cell. Shape [n]."""
    all_heads, alive = state.heads, state.alive
    shared = np.zeros(alive.shape, bool)
    for i in range(state.n_snakes):
        for j in range(i + 1, state.n_snakes):
            same = (all_heads[:, i] == all_heads[:, j]) & alive[:, i] & alive[:, j]
            shared[:, i] |= same
            shared[:, j] |= same
    return shared[gb, sb]


def _blame(state: BatchState, g, s, on_body):
    """Collision causes and culprits for suspect snakes, with the official tie-breaks.

    Self-collision first; then the first other snake, longest first (ties in list
    order), whose body[1:] holds the head; then the first that wins head-to-head
    (at least as long). Returns (cause [n] int8, blame [n] int8).
    """
    n, cap = g.size, state.capacity
    rel = (np.arange(cap)[None, None, :] - state.head_ptr[g][:, :, None]) % cap  # [n, S, L]
    behind_head = (rel >= 1) & (rel < state.length[g][:, :, None])
    target = state.body[g, s, state.head_ptr[g, s]]  # the suspects' heads [n]
    hits = ((state.body[g] == target[:, None, None]) & behind_head).any(axis=2)  # [n, S]
    hits &= state.alive[g] & on_body[:, None]
    heads_all = np.take_along_axis(state.body[g], state.head_ptr[g][:, :, None], axis=2)[..., 0]
    lengths = state.length[g]
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
    np.subtract.at(state.occ, (owner, cells), 1)


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
