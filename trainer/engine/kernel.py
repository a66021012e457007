"""The compiled engine: one official turn, and fresh games, as numba kernels.

`rules.advance` and `maps.reset_games` run these by default
(`types.EngineBackend.COMPILED`); the NumPy code in `rules` and `maps` stays as
the readable reference (`EngineBackend.NUMPY`), and a unit test holds the two
equal field by field on every ruleset. The kernels work on the same
`BatchState` arrays in place, one game at a time: a game's turn is a few
hundred scalar operations, so a plain loop over the batch beats NumPy's
whole-array passes (measured here: a turn of 4,096 games 1.4 ms against
10 ms, a B=1 turn about 6 us against 240 us, where NumPy's per-call
overhead dominated).

Everything random is Go's `math/rand`, bit for bit (`gorand` explains the
algorithm): a generator here is two small arrays (`_Rng` below) that draw
lazily from the seeded table for their first 273 draws and build the
607-entry table only if they go further, exactly as `gorand.GoRand` does.
Stage order, tie-breaks and draw order are those of `rules` and `maps`
(which cite the official engine's files).

Why numba and not a C or Rust extension: the kernels stay Python source next
to the reference they must equal, build nothing at install time, and compile
once per machine (`cache=True` writes the machine code next to this file or,
where that is read-only, under numba's user cache; see the README for the
measured compile and load times).
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from ouroboros.trainer.engine import gorand, types
from ouroboros.trainer.engine.types import Cause

_NOT = np.int8(Cause.NOT_ELIMINATED)
_SNAKE = np.int8(Cause.SNAKE_COLLISION)
_SELF = np.int8(Cause.SELF_COLLISION)
_STARVED = np.int8(Cause.OUT_OF_HEALTH)
_HEAD = np.int8(Cause.HEAD_COLLISION)
_WALL = np.int8(Cause.WALL_COLLISION)
_HAZARD = np.int8(Cause.HAZARD)
_MAX_HEALTH = types.SNAKE_MAX_HEALTH
_START_SIZE = types.SNAKE_START_SIZE

# Go's seeded table: entry i = (a << 40) ^ (b << 20) ^ c ^ cooked[i], a, b, c = seed * POW[i] mod 2**31 - 1.
_CONSTS = np.stack([gorand._NP_POW_A, gorand._NP_POW_B, gorand._NP_POW_C, gorand._NP_COOKED], axis=1).copy()
_RNG_LEN = gorand.RNG_LEN
_RNG_TAP = gorand.RNG_TAP
_FEED = gorand.FEED_START
_M31 = gorand.INT32_MAX
_ZERO_SEED = gorand.ZERO_SEED

_jit = numba.njit(cache=True, nogil=True)
_inline = numba.njit(cache=True, nogil=True, inline="always")
"""For the generator's per-draw helpers: a call that passes arrays costs more than a draw."""


# -- Go's math/rand, one generator -------------------------------------------------
# A generator is `words` (uint64 [1 + 607]: the reduced seed, then the table once built)
# and `count` (int64 [4]: draws made, table built 0/1, then Go's tap and feed cursors
# once the table is built). Reused across games. The per-draw helpers are inlined,
# table build included: a spawn-heavy turn measured 3x slower with any of them
# behind a call (the arrays a call takes stop LLVM from keeping them in registers).


@_jit
def _rng_new():
    """A fresh generator's arrays (seed it with `_rng_seed`)."""
    return np.zeros(1 + _RNG_LEN, np.uint64), np.zeros(4, np.int64)


@_jit
def _rng_seed(words, count, seed):
    """rand.NewSource(seed): Go's reduction of an int64 seed (truncated remainder)."""
    rem = seed % _M31  # numba follows Python: the sign of the divisor, as Go's rem + M
    if rem == 0:
        rem = _ZERO_SEED
    words[0] = np.uint64(rem)
    count[0] = 0
    count[1] = 0


@_inline
def _mulmod(x, power):
    """x * power mod 2**31 - 1 for nonzero residues: two Mersenne folds instead of a slow `%`
    (the product is below 2**62; see `gorand._mulmod`)."""
    m = np.uint64(_M31)
    prod = x * power
    prod = (prod & m) + (prod >> np.uint64(31))
    return (prod & m) + (prod >> np.uint64(31))


@_inline
def _rng_entry(state, i):
    """Entry i of the seeded table of the generator with reduced seed `state`."""
    a = _mulmod(state, _CONSTS[i, 0])
    b = _mulmod(state, _CONSTS[i, 1])
    c = _mulmod(state, _CONSTS[i, 2])
    return (a << np.uint64(40)) ^ (b << np.uint64(20)) ^ c ^ _CONSTS[i, 3]


@_inline
def _rng_uint64(words, count):
    """Go's Uint64: draw d reads feed slot 334 - d and tap slot 607 - d (mod 607)."""
    d = count[0] + 1
    count[0] = d
    if count[1] == 0:
        if d <= _RNG_TAP:  # neither slot written yet: both are seeded entries
            return _rng_entry(words[0], _FEED - d) + _rng_entry(words[0], _RNG_LEN - d)
        for i in range(_RNG_LEN):
            words[1 + i] = _rng_entry(words[0], i)
        for t in range(1, _RNG_TAP + 1):  # replay the writes of the lazy draws
            words[1 + _FEED - t] = words[1 + _FEED - t] + words[1 + _RNG_LEN - t]
        count[1] = 1
        count[2] = _RNG_LEN - _RNG_TAP  # tap after 273 draws: -273 mod 607
        count[3] = _FEED - _RNG_TAP  # feed: 334 - 273
    tap = count[2] - 1
    if tap < 0:
        tap += _RNG_LEN
    feed = count[3] - 1
    if feed < 0:
        feed += _RNG_LEN
    count[2] = tap
    count[3] = feed
    x = words[1 + feed] + words[1 + tap]
    words[1 + feed] = x
    return x


@_inline
def _rng_int31(words, count):
    return np.int64((_rng_uint64(words, count) & np.uint64(gorand.MASK63)) >> np.uint64(32))


@_jit
def _rng_int31n(words, count, n):
    """Go's Int31n(n) (and Intn(n) for n < 2**31): mask, or reject then modulo."""
    if n & (n - 1) == 0:
        return _rng_int31(words, count) & (n - 1)
    limit = _M31 - (1 << 31) % n
    v = _rng_int31(words, count)
    while v > limit:
        v = _rng_int31(words, count)
    return v % n


@_inline
def _rng_lemire(words, count, n):
    """Go's unexported int31n (Shuffle's): multiply-shift with a rare rejection."""
    prod = np.int64((_rng_uint64(words, count) & np.uint64(gorand.MASK63)) >> np.uint64(31)) * n
    low = prod & 0xFFFFFFFF
    if low < n:
        thresh = ((1 << 32) - n) % n
        while low < thresh:
            prod = np.int64((_rng_uint64(words, count) & np.uint64(gorand.MASK63)) >> np.uint64(31)) * n
            low = prod & 0xFFFFFFFF
    return prod >> 32


@_jit
def _rng_shuffle(words, count, items, n):
    """Go's Shuffle(n, swap) on items[:n], in place."""
    for i in range(n - 1, 0, -1):
        j = _rng_lemire(words, count, i + 1)
        items[i], items[j] = items[j], items[i]


@_jit
def rng_draws(seed, n_draws, bound):
    """`n_draws` values of Go's Intn(bound) (bound > 0) from NewSource(seed): int64 [n_draws].
    For tests of the kernel generator against `gorand.GoRand`."""
    words, count = _rng_new()
    _rng_seed(words, count, seed)
    out = np.empty(n_draws, np.int64)
    for k in range(n_draws):
        out[k] = _rng_int31n(words, count, bound)
    return out


# -- one turn -----------------------------------------------------------------------

# What a kernel needs of a GameConfig, as one int64 array (one argument instead of a
# dozen: each argument costs the dispatcher ~0.2 us, a B=1 turn ~2 us).
(P_STRIDE, P_WIDTH, P_HEIGHT, P_WRAPS, P_CONSTRICTS, P_ROYALE, P_SPAWNS, P_SOLO,
 P_SPAWN_CHANCE, P_MINIMUM_FOOD, P_HAZARD_DAMAGE, P_SHRINK_EVERY) = range(12)


@functools.lru_cache(maxsize=64)
def params(config: types.GameConfig) -> np.ndarray:
    """The kernels' view of a config: int64 [12], indexed by the P_* constants (read-only, cached)."""
    r, settings = config.ruleset, config.settings
    out = np.array([
        config.width + 2, config.width, config.height, r.wraps, r.constricts, r is types.Ruleset.ROYALE,
        config.game_map is types.GameMap.STANDARD, r is types.Ruleset.SOLO, settings.food_spawn_chance,
        settings.minimum_food, settings.hazard_damage_per_turn, settings.shrink_every_n_turns,
    ], np.int64)
    out.flags.writeable = False
    return out


@_jit
def _geometry(stride, width, height, n_cells):
    """The `state.Board` tables, built in the kernel: inside [P] bool, wrap [P], the move
    deltas [4] (up, down, left, right) and the on-board cells in x-major order [W*H]."""
    inside = np.zeros(n_cells, np.bool_)
    wrap = np.zeros(n_cells, np.int64)
    cells = np.zeros(width * height, np.int64)
    for c in range(n_cells):
        x, y = c % stride - 1, c // stride - 1
        inside[c] = 0 <= x < width and 0 <= y < height
        x = width - 1 if x < 0 else (0 if x >= width else x)
        y = height - 1 if y < 0 else (0 if y >= height else y)
        wrap[c] = (y + 1) * stride + x + 1
    for x in range(width):
        for y in range(height):
            cells[x * height + y] = (y + 1) * stride + x + 1
    delta = np.array([stride, -stride, -1, 1])
    return inside, wrap, delta, cells


@_jit
def _seg(body, g, s, ptr, offset, cap):
    return body[g, s, (ptr + offset) % cap]


@_jit
def _kill(g, s, why, by, turn, alive, cause, eliminated_by, eliminated_turn, body, head_ptr, length, occ):
    """Eliminates one snake: cause, culprit and turn recorded, body[1:] dropped from occ."""
    alive[g, s] = False
    cause[g, s] = why
    eliminated_by[g, s] = by
    eliminated_turn[g, s] = turn[g] + 1
    cap = body.shape[2]
    ptr = head_ptr[g, s]
    for k in range(1, length[g, s]):
        occ[g, body[g, s, (ptr + k) % cap]] -= 1


@_jit
def _grow(g, s, body, head_ptr, length, alive, occ):
    """Appends a copy of the tail (capacity is ensured by the caller)."""
    cap = body.shape[2]
    n = length[g, s]
    ptr = head_ptr[g, s]
    tail = body[g, s, (ptr + n - 1) % cap]
    body[g, s, (ptr + n) % cap] = tail
    length[g, s] = n + 1
    if alive[g, s]:
        occ[g, tail] += 1


@_jit
def _default_move(body, g, s, ptr, n, cap, stride):
    """The official default move: away from the neck (wrap-aware), `up` without one."""
    if n < 2:
        return 0
    head = body[g, s, ptr % cap]
    neck = body[g, s, (ptr + 1) % cap]
    hx, hy = head % stride - 1, head // stride - 1
    nx, ny = neck % stride - 1, neck // stride - 1
    if hx == nx + 1:
        return 3
    if hx == nx - 1:
        return 2
    if hy == ny + 1:
        return 0
    if hy == ny - 1:
        return 1
    if hx == 0 and nx > 0:
        return 3
    if nx == 0 and hx > 0:
        return 2
    if hy == 0 and ny > 0:
        return 0
    if ny == 0 and hy > 0:
        return 1
    return 0


@_jit
def _royale(g, turn, seed, hazard, royale_shrinks, inside, stride, width, height, every, words, count):
    """PopulateHazardsRoyale for one game, recomputed only when its shrink count changed."""
    t = turn[g] + 1
    shrinks = 0 if t < every else t // every
    if shrinks == royale_shrinks[g]:
        return
    box = np.array([0, width - 1, 0, height - 1])
    _rng_seed(words, count, seed[g])
    for _ in range(shrinks):
        side = _rng_int31n(words, count, 4)
        box[side] += 1 if side % 2 == 0 else -1
    for c in range(hazard.shape[1]):
        x, y = c % stride - 1, c // stride - 1
        out = x < box[0] or x > box[1] or y < box[2] or y > box[3]
        hazard[g, c] = 1 if (out and inside[c]) else 0
    royale_shrinks[g] = shrinks


@_jit
def _spawn_food(g, turn, seed, food, occ, body, head_ptr, alive, cells_xmajor, delta,
                chance, minimum, words, count, scratch):
    """StandardMap.PostUpdateBoard for one game (see `maps.spawn_food`)."""
    n_cells = food.shape[1]
    have = 0
    for c in range(n_cells):  # counting stops at `minimum`: only the shortfall matters
        if have >= minimum:
            break
        have += food[g, c]
    need = minimum - have
    if need < 0:
        need = 0
    rolls = need == 0 and chance > 0
    if need == 0 and not rolls:
        return
    _rng_seed(words, count, seed[g] + turn[g])
    spawn = need
    if rolls:
        spawn = 1 if 100 - _rng_int31n(words, count, 100) < chance else 0
    if spawn == 0:
        return
    blocked = scratch[:n_cells]
    for c in range(n_cells):
        blocked[c] = food[g, c] or occ[g, c] > 0
    cap = body.shape[2]
    for s in range(alive.shape[1]):
        if alive[g, s]:
            head = body[g, s, head_ptr[g, s] % cap]
            blocked[head] = True
            for k in range(4):
                blocked[head + delta[k]] = True
    free = scratch[n_cells:]
    n_free = 0
    for c in cells_xmajor:
        if not blocked[c]:
            free[n_free] = c
            n_free += 1
    _rng_shuffle(words, count, free, n_free)
    for k in range(min(spawn, n_free)):
        food[g, free[k]] = True


@_jit
def advance_games(body, head_ptr, length, health, alive, cause, eliminated_by, eliminated_turn,
                  food, hazard, occ, royale_shrinks, turn, seed, moves, params):
    """One official turn of every game, in place (the arrays of a `BatchState`; moves [B, S]
    int64; params from `params(config)`). The stages and their tie-breaks are those of
    `rules.advance`. Returns 0, or -1 without touching anything when some snake fills its
    ring buffer (it could not grow): the caller widens the rings and calls again.
    """
    n_games, n_snakes, cap = body.shape
    for g in range(n_games):
        for s in range(n_snakes):
            if length[g, s] >= cap:
                return -1
    stride, width, height = params[P_STRIDE], params[P_WIDTH], params[P_HEIGHT]
    wraps, constricts, royale = params[P_WRAPS] != 0, params[P_CONSTRICTS] != 0, params[P_ROYALE] != 0
    spawns, solo = params[P_SPAWNS] != 0, params[P_SOLO] != 0
    spawn_chance, minimum_food = params[P_SPAWN_CHANCE], params[P_MINIMUM_FOOD]
    hazard_damage, shrink_every = params[P_HAZARD_DAMAGE], params[P_SHRINK_EVERY]
    inside, wrap, delta, cells_xmajor = _geometry(stride, width, height, food.shape[1])
    words, count = _rng_new()
    scratch = np.zeros(2 * food.shape[1], np.int64)
    heads = np.zeros(n_snakes, np.int64)
    moving = np.zeros(n_snakes, np.bool_)
    eats = np.zeros(n_snakes, np.bool_)
    why = np.zeros(n_snakes, np.int8)
    by = np.zeros(n_snakes, np.int8)
    order = np.zeros(n_snakes, np.int64)
    for g in range(n_games):
        living = 0
        for s in range(n_snakes):
            living += alive[g, s]
        playing = living > 0 if solo else living > 1
        if playing:
            # movement: a new head in front, the tail forgotten
            for s in range(n_snakes):
                moving[s] = alive[g, s]
                if not moving[s]:
                    continue
                ptr = head_ptr[g, s]
                n = length[g, s]
                mv = moves[g, s]
                if mv < 0 or mv > 3:
                    mv = _default_move(body, g, s, ptr, n, cap, stride)
                old_head = body[g, s, ptr % cap]
                old_tail = body[g, s, (ptr + n - 1) % cap]
                head = old_head + delta[mv]
                if wraps:
                    head = wrap[head]
                ptr = (ptr - 1) % cap
                head_ptr[g, s] = ptr
                body[g, s, ptr] = head
                heads[s] = head
                occ[g, old_head] += 1
                occ[g, old_tail] -= 1
            # starvation, then hazard damage (clamped after every stacked entry)
            for s in range(n_snakes):
                if not moving[s]:
                    continue
                health[g, s] -= 1
                entries = hazard[g, heads[s]]
                if entries > 0 and not food[g, heads[s]]:
                    value = health[g, s]
                    dead = False
                    for _ in range(entries):
                        value = min(max(value - hazard_damage, 0), _MAX_HEALTH)
                        dead = dead or value <= 0
                    health[g, s] = value
                    if dead:
                        _kill(g, s, _HAZARD, -1, turn, alive, cause, eliminated_by, eliminated_turn,
                              body, head_ptr, length, occ)
            # feeding: every living head on food eats it (two heads can share one)
            for s in range(n_snakes):
                eats[s] = moving[s] and alive[g, s] and food[g, heads[s]]
            for s in range(n_snakes):
                if eats[s]:
                    food[g, heads[s]] = False
                    health[g, s] = _MAX_HEALTH
                    _grow(g, s, body, head_ptr, length, alive, occ)
            # elimination: health and walls first, then collisions judged together
            for s in range(n_snakes):
                if moving[s] and alive[g, s]:
                    if health[g, s] <= 0:
                        _kill(g, s, _STARVED, -1, turn, alive, cause, eliminated_by, eliminated_turn,
                              body, head_ptr, length, occ)
                    elif not inside[heads[s]]:
                        _kill(g, s, _WALL, -1, turn, alive, cause, eliminated_by, eliminated_turn,
                              body, head_ptr, length, occ)
            # longest first, ties in list order (a stable insertion sort of S <= 16)
            for s in range(n_snakes):
                k = s
                while k > 0 and length[g, order[k - 1]] < length[g, s]:
                    order[k] = order[k - 1]
                    k -= 1
                order[k] = s
            for s in range(n_snakes):
                why[s] = _NOT
                by[s] = -1
                if not (moving[s] and alive[g, s]):
                    continue
                target = heads[s]
                on_body = occ[g, target] > 0
                if on_body:
                    for o_i in range(-1, n_snakes):  # -1: the snake itself, first
                        o = s if o_i < 0 else order[o_i]
                        if (o_i >= 0 and o == s) or not alive[g, o]:
                            continue
                        ptr = head_ptr[g, o]
                        hit = False
                        for k in range(1, length[g, o]):
                            if body[g, o, (ptr + k) % cap] == target:
                                hit = True
                                break
                        if hit:
                            why[s] = _SELF if o == s else _SNAKE
                            by[s] = o
                            break
                if why[s] == _NOT:
                    for o_i in range(n_snakes):
                        o = order[o_i]
                        if o != s and alive[g, o] and body[g, o, head_ptr[g, o] % cap] == target \
                                and length[g, o] >= length[g, s]:
                            why[s] = _HEAD
                            by[s] = o
                            break
            for s in range(n_snakes):
                if why[s] != _NOT:
                    _kill(g, s, why[s], by[s], turn, alive, cause, eliminated_by, eliminated_turn,
                          body, head_ptr, length, occ)
            if royale:
                _royale(g, turn, seed, hazard, royale_shrinks, inside, stride, width, height,
                        shrink_every, words, count)
            if constricts:
                food[g, :] = False
                for s in range(n_snakes):
                    health[g, s] = _MAX_HEALTH
                    n = length[g, s]
                    if n >= 2:
                        ptr = head_ptr[g, s]
                        if body[g, s, (ptr + n - 1) % cap] != body[g, s, (ptr + n - 2) % cap]:
                            _grow(g, s, body, head_ptr, length, alive, occ)
        if spawns:
            _spawn_food(g, turn, seed, food, occ, body, head_ptr, alive, cells_xmajor, delta,
                        spawn_chance, minimum_food, words, count, scratch)
        turn[g] += 1
    return 0


# -- fresh games (the fixed placement of square boards of 7 and more) ----------------


@_jit
def reset_fixed(games, seeds, body, head_ptr, length, health, alive, cause, eliminated_by,
                eliminated_turn, food, hazard, occ, royale_shrinks, turn, seed, params):
    """Writes fresh games at `games` [n] with `seeds` [n], in place: PlaceSnakesFixed, then
    PlaceFoodFixed on the standard map (see `maps.new_games`). Square boards of side >= 7
    with at most 8 snakes only. Returns the position in `games` of the first game whose
    food could not be placed (the official engine's setup error), or -1."""
    n_snakes = body.shape[1]
    stride, width = params[P_STRIDE], params[P_WIDTH]
    spawns, constricts, solo = params[P_SPAWNS] != 0, params[P_CONSTRICTS] != 0, params[P_SOLO] != 0
    words, count = _rng_new()
    lo, mid, hi = 1, (width - 1) // 2, width - 2
    cx = cy = (width - 1) // 2
    centre = (cy + 1) * stride + cx + 1
    small = width * width < 11 * 11
    corners = np.array([lo, lo, lo, hi, hi, lo, hi, hi])  # (x, y) pairs
    cardinals = np.array([lo, mid, mid, lo, mid, hi, hi, mid])
    dx = np.array([-1, -1, 1, 1])
    dy = np.array([-1, 1, -1, 1])
    cperm = np.zeros(4, np.int64)
    dperm = np.zeros(4, np.int64)
    points = np.zeros(8, np.int64)
    options = np.zeros(4, np.int64)
    for i in range(games.size):
        g = games[i]
        seed[g] = seeds[i]
        turn[g] = 0
        _rng_seed(words, count, seeds[i])
        for k in range(4):
            cperm[k] = k
            dperm[k] = k
        _rng_shuffle(words, count, cperm, 4)
        _rng_shuffle(words, count, dperm, 4)
        corners_first = _rng_int31n(words, count, 2) == 0
        for k in range(4):
            c = (corners[2 * cperm[k] + 1] + 1) * stride + corners[2 * cperm[k]] + 1
            d = (cardinals[2 * dperm[k] + 1] + 1) * stride + cardinals[2 * dperm[k]] + 1
            points[k] = c if corners_first else d
            points[4 + k] = d if corners_first else c
        food[g, :] = False
        hazard[g, :] = 0
        occ[g, :] = 0
        body[g, :, :] = 0
        for s in range(n_snakes):
            start = points[s]
            for k in range(_START_SIZE):
                body[g, s, k] = start
            occ[g, start] += _START_SIZE - 1
            head_ptr[g, s] = 0
            length[g, s] = _START_SIZE
            health[g, s] = _MAX_HEALTH
            alive[g, s] = True
            cause[g, s] = _NOT
            eliminated_by[g, s] = -1
            eliminated_turn[g, s] = 0
        royale_shrinks[g] = 0
        if not spawns:
            continue
        if n_snakes <= 4 or not small:
            for s in range(n_snakes):
                hx, hy = points[s] % stride - 1, points[s] // stride - 1
                n_ok = 0
                for k in range(4):
                    px, py = hx + dx[k], hy + dy[k]
                    away = (px < hx < cx) or (cx < hx < px) or (py < hy < cy) or (cy < hy < py)
                    corner = (px == 0 or px == width - 1) and (py == 0 or py == width - 1)
                    cell = (py + 1) * stride + px + 1
                    if away and not corner and not (px == cx and py == cy) and not food[g, cell]:
                        options[n_ok] = cell
                        n_ok += 1
                if n_ok == 0:
                    return i
                food[g, options[_rng_int31n(words, count, n_ok)]] = True
        for s in range(n_snakes):
            if points[s] == centre:
                return i
        food[g, centre] = True
        if constricts:
            living = n_snakes
            if living > 0 if solo else living > 1:
                food[g, :] = False
    return -1
