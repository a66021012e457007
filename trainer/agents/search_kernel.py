"""The search player's tree, compiled: the same paranoid alpha-beta as `search.py`, on arrays, in numba.

`search.py` spends its time in Python: a node costs ~80 µs (a turn of the
compact rules, the move generation, and above all the Voronoi evaluation on
Python-integer bitboards), so 400 ms buy ~5,000 nodes. This module runs the
same algorithm node for node (same move generation and ordering, same history
heuristic, same paranoid min node over the searched opponents' joint moves,
same leaf evaluation and weights) compiled by numba, so that the same budget
searches turns deeper. `tests/unit/test_search_kernel.py` checks that both
give the same move and score at every fixed depth on played positions.

**Layout.** A position is arrays: `body` int16 [S, L] (head first, L = cells
+ 1), `length` int32 [S], `health` int32 [S], `alive` uint8 [S], `food`
uint8 [P] over the engine's padded cells. The rules (`geo`) are `delta` int64
[4] (cell offset per move), `wrap` int64 [P] (cell after wrapping), `inside`
uint8 [P], `hazard` int16 [P] (entries per cell at the root) and `params`
int64 [4] (wraps, constricts, hazard damage, focus). `weights` float64 [9]
follows `search.SearchWeights` field order. `net` is a leaf net's arrays
(`leafnet.LeafNet.kernel()`, hidden size 0: none): its correction is added to
the count at every leaf (`_evaluate`), over inputs that `_leaf_inputs` lists
and `leaf_inputs` returns dense for training.

**Time.** numba has no `time` module, so the kernel reads the monotonic
clock itself through libc's `clock_gettime` (ctypes; the same clock as
Python's `time.perf_counter` on Linux), every 128 nodes as `search.py` does;
past the deadline it sets `counters[2]` and unwinds, and the iteration is
discarded as in `search.py`. `counters[1]` is a node cap on top.

numba is an optional dependency of the base package (the trainer and serve
extras install it); `search.Search` falls back to the Python tree without it.
"""

from __future__ import annotations

import ctypes
import time

import numpy as np
from numba import njit

_libc = ctypes.CDLL(None)
_clock_gettime = _libc.clock_gettime
_clock_gettime.argtypes = [ctypes.c_int, ctypes.c_void_p]
_clock_gettime.restype = ctypes.c_int
MONOTONIC = time.CLOCK_MONOTONIC

INF = np.inf
WIN = 1_000_000.0
DRAW = -50_000.0

# counters: nodes, node limit, aborted, then the clock's scratch (seconds, nanoseconds)
NODES, LIMIT, ABORTED, CLOCK = 0, 1, 2, 3
N_COUNTERS = 5


@njit
def now(counters):
    """The monotonic clock in seconds (time.perf_counter's on Linux), read into counters[3:5]."""
    _clock_gettime(MONOTONIC, counters[CLOCK:].ctypes.data)
    return counters[CLOCK] + counters[CLOCK + 1] * 1e-9


@njit(cache=True)
def _obstacles(body, length, alive, n_cells):
    """Cells that stay occupied after the coming move (bodies minus moving tails). uint8 [P]."""
    occ = np.zeros(n_cells, np.uint8)
    for s in range(body.shape[0]):
        if not alive[s]:
            continue
        n = length[s]
        end = n if (n >= 2 and body[s, n - 1] == body[s, n - 2]) else n - 1
        for k in range(end):
            occ[body[s, k]] = 1
    return occ


@njit(cache=True)
def _target(delta, wrap, wraps, head, m):
    c = head + delta[m]
    return wrap[c] if wraps else c


@njit(cache=True)
def _safe_moves(delta, wrap, inside, wraps, body, s, occ, hist, out):
    """Fills `out` with snake s's moves onto free board cells, highest history first
    (stable: ties keep UP, DOWN, LEFT, RIGHT order). Returns how many."""
    n = 0
    head = body[s, 0]
    for m in range(4):
        c = _target(delta, wrap, wraps, head, m)
        if inside[c] and not occ[c]:
            out[n] = m
            n += 1
    for i in range(1, n):  # insertion sort by -history, stable
        m = out[i]
        j = i - 1
        while j >= 0 and hist[s, out[j]] < hist[s, m]:
            out[j + 1] = out[j]
            j -= 1
        out[j + 1] = m
    return n


@njit(cache=True)
def _step(delta, wrap, inside, hazard, params, body, length, health, alive, food, moves):
    """One turn, exactly as `compact.Rules.step`. Returns the new (body, length, health, alive, food)."""
    wraps, constricts, damage = params[0], params[1], params[2]
    n_snakes = body.shape[0]
    nbody = body.copy()
    nlen = length.copy()
    nhealth = health.copy()
    nalive = alive.copy()
    nfood = food.copy()
    old_len = length.copy()
    for i in range(n_snakes):
        if not alive[i]:
            continue
        head = _target(delta, wrap, wraps, body[i, 0], moves[i])
        h = health[i] - 1
        entries = hazard[head]
        if entries > 0 and not food[head]:
            dead = False
            for _ in range(entries):
                h = min(max(h - damage, 0), 100)
                if h <= 0:
                    dead = True
            if dead:
                nalive[i] = 0
                continue
        n = length[i]
        for k in range(n - 1, 0, -1):
            nbody[i, k] = body[i, k - 1]
        nbody[i, 0] = head
        nhealth[i] = h
    for i in range(n_snakes):  # feeding (all snakes see the food before any is removed)
        if nalive[i] and food[nbody[i, 0]]:
            n = nlen[i]
            nbody[i, n] = nbody[i, n - 1]
            nlen[i] = n + 1
            nhealth[i] = 100
            nfood[nbody[i, 0]] = 0
    for i in range(n_snakes):  # pass 1: health and walls
        if nalive[i] and (nhealth[i] <= 0 or not inside[nbody[i, 0]]):
            nalive[i] = 0
    out = nalive.copy()
    for i in range(n_snakes):  # pass 2: collisions, decided together
        if not nalive[i]:
            continue
        head = nbody[i, 0]
        for j in range(n_snakes):
            if not nalive[j]:
                continue
            hit = False
            for k in range(1, old_len[j]):
                if nbody[j, k] == head:
                    hit = True
                    break
            if hit or (j != i and nbody[j, 0] == head and nlen[j] >= nlen[i]):
                out[i] = 0
                break
    if constricts:
        nfood[:] = 0
        for i in range(n_snakes):
            if not out[i]:
                continue
            n = nlen[i]
            if n >= 2 and nbody[i, n - 2] != nbody[i, n - 1]:
                nbody[i, n] = nbody[i, n - 1]
                nlen[i] = n + 1
            nhealth[i] = 100
    return nbody, nlen, nhealth, out, nfood


@njit(cache=True)
def _terminal(alive, me, ply):
    """Score of a finished game, or NaN while it goes on."""
    n = alive.shape[0]
    others = 0
    for j in range(n):
        if j != me and alive[j]:
            others += 1
    if not alive[me]:
        return DRAW if (others == 0 and n > 1) else -WIN + ply
    if others == 0 and n > 1:
        return WIN - ply
    return np.nan


@njit(cache=True)
def _count(delta, wrap, inside, params, weights, width, height, body, length, health, alive, food, me, terr):
    """Voronoi territory, length, food and health from `me`'s point of view (search.evaluate).
    `terr` int8 [P] (or [1]: not recorded): set to 1 on `me`'s territory, 2 on a rival's."""
    record = terr.shape[0] > 1
    wraps = params[0]
    n_cells = food.shape[0]
    n_snakes = body.shape[0]
    taken = _obstacles(body, length, alive, n_cells)
    # tails (weights[8]): a body cell is free once the body has moved off it (segment k of a
    # length-n snake: after n - k moves), claimed then by whoever's territory touches it
    frees = weights[8] != 0
    free_at = np.zeros(n_cells if frees else 1, np.int64)  # off: nothing allocated, nothing read
    n_freed = 0
    if frees:
        for s in range(n_snakes):
            if alive[s]:
                n = length[s]
                for k in range(1, n):
                    c = body[s, k]
                    if taken[c] and free_at[c] == 0:  # first (nearest the head) segment on c
                        free_at[c] = n - k
                        n_freed += 1
    freed = np.empty(n_freed, np.int64)
    if frees:
        j = 0
        for c in range(n_cells):
            if free_at[c]:
                freed[j] = c
                j += 1
                taken[c] = 0
        freed = freed[np.argsort(free_at[freed], kind="mergesort")]
    last_free = free_at[freed[n_freed - 1]] if n_freed else 0
    next_free = 0
    owner = np.full(n_cells if frees else 1, -1, np.int64)
    for c in range(n_cells):
        if not inside[c]:
            taken[c] = 1
    living = np.empty(n_snakes, np.int64)
    n_living = 0
    for s in range(n_snakes):
        if alive[s]:
            living[n_living] = s
            n_living += 1
            taken[body[s, 0]] = 1
    frontier = np.empty((n_living, n_cells), np.int64)
    count = np.zeros(n_living, np.int64)
    area = np.zeros(n_living, np.int64)
    mine = 0
    for k in range(n_living):
        frontier[k, 0] = body[living[k], 0]
        if frees:
            owner[body[living[k], 0]] = k
        count[k] = 1
        if living[k] == me:
            mine = k
    claim = np.zeros(n_cells, np.int64)
    touched = np.empty(n_cells, np.int64)
    food_dist = 0
    steps = 0
    while True:
        steps += 1
        nt = 0
        while next_free < n_freed and free_at[freed[next_free]] <= steps:
            c = freed[next_free]  # freed now: any territory beside it reaches it at this step
            next_free += 1
            if taken[c]:
                continue
            for m in range(4):
                o = owner[_target(delta, wrap, wraps, c, m)]
                if o >= 0:
                    if claim[c] == 0:
                        touched[nt] = c
                        nt += 1
                    claim[c] |= 1 << o
        for k in range(n_living):
            for idx in range(count[k]):
                c = frontier[k, idx]
                for m in range(4):
                    nc = _target(delta, wrap, wraps, c, m)
                    if not taken[nc] and (not frees or free_at[nc] <= steps):
                        if claim[nc] == 0:
                            touched[nt] = nc
                            nt += 1
                        claim[nc] |= 1 << k
        if nt == 0:
            if steps >= last_free:
                break
            count[:] = 0
            continue
        count[:] = 0
        for t in range(nt):
            c = touched[t]
            mask = claim[c]
            claim[c] = 0
            taken[c] = 1
            if mask & (mask - 1) == 0:
                k = 0
                while (mask >> k) != 1:
                    k += 1
                frontier[k, count[k]] = c
                if frees:
                    owner[c] = k
                count[k] += 1
                area[k] += 1
                if record:
                    terr[c] = 1 if k == mine else 2
                if k == mine and food_dist == 0 and food[c]:
                    food_dist = steps
    w_area, w_length, length_cap, w_kill = weights[0], weights[1], weights[2], weights[3]
    w_food, hungry, w_starve, w_trapped = weights[4], weights[5], weights[6], weights[7]
    my_len = length[me]
    rival_area = 0
    rival_len = 0
    rivals = 0
    for k in range(n_living):
        if k != mine:
            rivals += 1
            rival_area = max(rival_area, area[k])
            rival_len = max(rival_len, length[living[k]])
    lead = max(-length_cap, min(length_cap, my_len - rival_len))
    score = w_area * (area[mine] - rival_area) + w_length * lead
    score -= w_kill * rivals
    if (health[me] < hungry or lead <= 0) and food_dist:
        score += w_food / (1 + food_dist)
    reach = food_dist if food_dist else 2 * (width + height)
    score -= w_starve * max(0, reach - health[me])
    if area[mine] < my_len:
        score -= w_trapped * (my_len - area[mine]) / my_len
    return score


LEAF_CHANNELS = 7
"""Leaf net inputs per padded cell: own head, own body, rival heads, rival bodies, food, own territory,
rival territory (counts: a stacked body cell counts twice); then LEAF_SCALARS scalars."""
LEAF_SCALARS = 5


@njit(cache=True)
def _leaf_inputs(body, length, health, alive, food, me, terr, idx, scal):
    """Fills idx with the active cell features (channel * P + cell) and scal [LEAF_SCALARS]; returns
    how many of idx are used."""
    n_cells = food.shape[0]
    n = 0
    rival_len = 0
    rival_health = 0
    rivals = 0
    for s in range(body.shape[0]):
        if not alive[s]:
            continue
        base = 0 if s == me else 2
        idx[n] = base * n_cells + body[s, 0]
        n += 1
        for k in range(1, length[s]):
            idx[n] = (base + 1) * n_cells + body[s, k]
            n += 1
        if s != me:
            rivals += 1
            rival_len = max(rival_len, length[s])
            rival_health = max(rival_health, health[s])
    for c in range(n_cells):
        if food[c]:
            idx[n] = 4 * n_cells + c
            n += 1
        if terr[c]:
            idx[n] = (4 + terr[c]) * n_cells + c
            n += 1
    scal[0] = health[me] / 100.0
    scal[1] = min(length[me], 64) / 64.0
    scal[2] = max(-1.0, min(1.0, (length[me] - rival_len) / 8.0))
    scal[3] = rival_health / 100.0
    scal[4] = rivals / max(1, body.shape[0] - 1)
    return n


@njit(cache=True)
def _leaf_net(net, body, length, health, alive, food, me, terr):
    """The leaf net's correction in points: a clipped-ReLU MLP (NNUE's shape) over _leaf_inputs."""
    w1, b1, w2, b2, w3, ws, nn = net
    idx = np.empty(body.shape[0] * body.shape[1] + 2 * food.shape[0], np.int64)
    scal = np.empty(LEAF_SCALARS, np.float64)
    n = _leaf_inputs(body, length, health, alive, food, me, terr, idx, scal)
    hidden = b1.shape[0]
    h = b1.astype(np.float64)
    for r in range(n):
        row = w1[idx[r]]
        for j in range(hidden):
            h[j] += row[j]
    for q in range(LEAF_SCALARS):
        for j in range(hidden):
            h[j] += ws[q, j] * scal[q]
    for j in range(hidden):
        h[j] = min(1.0, max(0.0, h[j]))
    out = nn[1]
    for i in range(hidden):
        z = b2[i]
        for j in range(hidden):
            z += w2[i, j] * h[j]
        out += w3[i] * min(1.0, max(0.0, z))
    return nn[0] * out


@njit(cache=True)
def _evaluate(delta, wrap, inside, params, weights, net, width, height, body, length, health, alive, food, me):
    """The leaf score: the count (_count), plus the leaf net's correction when `net` has one."""
    on = net[1].shape[0] > 0
    terr = np.zeros(food.shape[0] if on else 1, np.int8)
    score = _count(delta, wrap, inside, params, weights, width, height, body, length, health, alive, food, me, terr)
    if on:
        score += _leaf_net(net, body, length, health, alive, food, me, terr)
    return score


@njit(cache=True)
def leaf_inputs(delta, wrap, inside, params, weights, width, height, body, length, health, alive, food, me):
    """(count score, dense leaf net inputs float32 [LEAF_CHANNELS * P + LEAF_SCALARS]) of one position:
    what the leaf net reads there (training data)."""
    n_cells = food.shape[0]
    terr = np.zeros(n_cells, np.int8)
    score = _count(delta, wrap, inside, params, weights, width, height, body, length, health, alive, food, me, terr)
    idx = np.empty(body.shape[0] * body.shape[1] + 2 * n_cells, np.int64)
    scal = np.empty(LEAF_SCALARS, np.float64)
    n = _leaf_inputs(body, length, health, alive, food, me, terr, idx, scal)
    dense = np.zeros(LEAF_CHANNELS * n_cells + LEAF_SCALARS, np.float32)
    for r in range(n):
        dense[idx[r]] += 1
    for q in range(LEAF_SCALARS):
        dense[LEAF_CHANNELS * n_cells + q] = scal[q]
    return score, dense


@njit(cache=True)
def _opponents(body, alive, me, depth, stride, focus, searched, scripted):
    """Fills (searched, scripted) living opponents as `search._Search.opponents`; returns the counts."""
    n = body.shape[0]
    others = np.empty(n, np.int64)
    n_others = 0
    for j in range(n):
        if alive[j] and j != me:
            others[n_others] = j
            n_others += 1
    if n <= 2 or n_others <= 1:
        for k in range(n_others):
            searched[k] = others[k]
        return n_others, 0
    hy, hx = body[me, 0] // stride, body[me, 0] % stride
    dist = np.empty(n_others, np.int64)
    for k in range(n_others):
        c = body[others[k], 0]
        dist[k] = abs(c % stride - hx) + abs(c // stride - hy)
    order = np.argsort(dist * n + others[:n_others], kind="mergesort")  # by (distance, index)
    n_s = 0
    chosen = np.zeros(n, np.uint8)
    for r in range(min(focus, n_others)):
        k = order[r]
        if dist[k] <= 2 * depth + 2:
            searched[n_s] = others[k]
            chosen[others[k]] = 1
            n_s += 1
    n_x = 0
    for k in range(n_others):
        if not chosen[others[k]]:
            scripted[n_x] = others[k]
            n_x += 1
    return n_s, n_x


@njit  # not cached: numba's cache of a self-recursive function crashed on reload (numba 0.68)
def search(delta, wrap, inside, hazard, params, weights, net, width, height, hist, counters, deadline,
           body, length, health, alive, food, me, depth, alpha, beta, ply, mine):
    """A max node (`mine` < 0: our choice at the start of a turn) or a min node (`mine`:
    our move; the searched opponents' joint reply, then the turn). Returns the score."""
    wraps, focus = params[0], params[3]
    n_cells = food.shape[0]
    n_snakes = body.shape[0]
    if mine < 0:
        counters[NODES] += 1
        if counters[NODES] > counters[LIMIT] or (counters[NODES] & 127 == 0 and now(counters) > deadline):
            counters[ABORTED] = 1
            return 0.0
        term = _terminal(alive, me, ply)
        if not np.isnan(term):
            return term
        if depth == 0:
            return _evaluate(delta, wrap, inside, params, weights, net, width, height,
                             body, length, health, alive, food, me)
        occ = _obstacles(body, length, alive, n_cells)
        options = np.empty(4, np.int64)
        n_opt = _safe_moves(delta, wrap, inside, wraps, body, me, occ, hist, options)
        if n_opt == 0:
            options[0] = 0
            n_opt = 1
        best = -INF
        for r in range(n_opt):
            m = options[r]
            v = search(delta, wrap, inside, hazard, params, weights, net, width, height, hist, counters, deadline,
                       body, length, health, alive, food, me, depth, alpha, beta, ply, m)
            if counters[ABORTED]:
                return 0.0
            if v > best:
                best = v
                if v > alpha:
                    alpha = v
                    if alpha >= beta:
                        hist[me, m] += depth * depth
                        break
        return best
    # min node
    stride = width + 2
    occ = _obstacles(body, length, alive, n_cells)
    searched = np.empty(n_snakes, np.int64)
    scripted = np.empty(n_snakes, np.int64)
    n_s, n_x = _opponents(body, alive, me, depth, stride, focus, searched, scripted)
    moves = np.zeros(n_snakes, np.int64)
    moves[me] = mine
    tmp = np.empty(4, np.int64)
    for k in range(n_x):
        j = scripted[k]
        moves[j] = tmp[0] if _safe_moves(delta, wrap, inside, wraps, body, j, occ, hist, tmp) else 0
    choices = np.zeros((max(n_s, 1), 4), np.int64)
    n_choice = np.ones(max(n_s, 1), np.int64)
    for k in range(n_s):
        c = _safe_moves(delta, wrap, inside, wraps, body, searched[k], occ, hist, tmp)
        if c == 0:
            choices[k, 0] = 0
            n_choice[k] = 1
        else:
            for r in range(c):
                choices[k, r] = tmp[r]
            n_choice[k] = c
    worst = INF
    idx = np.zeros(max(n_s, 1), np.int64)  # odometer over the joint moves, last opponent fastest
    while True:
        for k in range(n_s):
            moves[searched[k]] = choices[k, idx[k]]
        nbody, nlen, nhealth, nalive, nfood = _step(delta, wrap, inside, hazard, params,
                                                    body, length, health, alive, food, moves)
        v = search(delta, wrap, inside, hazard, params, weights, net, width, height, hist, counters, deadline,
                   nbody, nlen, nhealth, nalive, nfood, me, depth - 1, alpha, min(beta, worst), ply + 1, -1)
        if counters[ABORTED]:
            return 0.0
        if v < worst:
            worst = v
            if worst <= alpha:
                for k in range(n_s):
                    hist[searched[k], moves[searched[k]]] += depth * depth
                break
        k = n_s - 1
        while k >= 0:
            idx[k] += 1
            if idx[k] < n_choice[k]:
                break
            idx[k] = 0
            k -= 1
        if k < 0:
            break
    return worst


@njit(nogil=True)  # without the GIL: a hang-up watcher thread can set counters[LIMIT] meanwhile
def root(delta, wrap, inside, hazard, params, weights, net, width, height, hist, counters, deadline,
         body, length, health, alive, food, me, depth, options, scores, slack):
    """Scores of our `options` searched `depth` turns deep (fail-low scores are bounds). Each move
    after the first is searched with alpha `slack` points below the best score so far, so a move
    that ties the best (slack > 0) gets its exact score, not a bound equal to it."""
    alpha = -INF
    for r in range(options.shape[0]):
        scores[r] = search(delta, wrap, inside, hazard, params, weights, net, width, height, hist, counters, deadline,
                           body, length, health, alive, food, me, depth, alpha, INF, 0, options[r])
        if counters[ABORTED]:
            return
        alpha = max(alpha, scores[r] - slack)
