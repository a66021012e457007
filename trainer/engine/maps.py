"""What the official maps and the royale ruleset do with the random generator.

Setup (snake placement, initial food), the standard map's per-turn food spawn
and royale's shrinking hazards are the only random parts of a game. The
official engine draws them from Go's `math/rand` seeded with `seed + turn`
(setup and royale use turn 0); `gorand_batch.GoRandBatch` reproduces that generator
for a whole batch, so a seeded game here spawns the same food and the same
hazards as the official engine. Draw order matters: each function below draws
in exactly the order of its Go counterpart (board.go, maps/standard.go, royale.go).
"""

from __future__ import annotations

import numpy as np

from ouroboros.trainer.engine import gorand_batch, kernel, types
from ouroboros.trainer.engine import state as state_mod
from ouroboros.trainer.engine.state import BatchState, Board
from ouroboros.trainer.engine.types import EngineBackend, GameConfig, GameMap, Ruleset


class SetupError(ValueError):
    """The board cannot hold the requested snakes or their food (official error text)."""


def new_games(config: GameConfig, seeds) -> BatchState:
    """Starting boards exactly as the official CLI makes them: the map's setup, then
    the ruleset's initialisation (constrictor removes the food unless the game is
    already over). One game per seed; turn 0."""
    seeds = np.asarray(seeds, dtype=np.int64).reshape(-1)
    board = Board(config.width, config.height)
    state = BatchState.empty(board, seeds.size, config.n_snakes)
    state.seed[:] = seeds
    state.length[:] = types.SNAKE_START_SIZE
    rng = gorand_batch.GoRandBatch(seeds)
    w, h, n = config.width, config.height, config.n_snakes
    if w == h and w >= 7 and n <= 8:
        starts = _fixed_starts(board, rng, n)
    elif w == h and n > 8:
        raise SetupError(f"{n} snakes: more than 8 per game is not supported")
    else:
        starts = _random_starts(board, state, rng, n)
    state.body[:, :, :types.SNAKE_START_SIZE] = starts[:, :, None]
    rows = np.repeat(np.arange(seeds.size), n)  # start cells are distinct within a game
    state_mod.scatter_add(state.occ, rows * board.n_cells + starts.ravel(), types.SNAKE_START_SIZE - 1, False)
    if config.game_map is GameMap.STANDARD:
        if w == h and w >= 7:
            _fixed_food(board, state, rng, starts)
        else:
            _random_food(board, state, rng, starts)
    playing = ~state.game_over(config.ruleset is Ruleset.SOLO)
    if config.ruleset.constricts:
        state.food[playing] = False  # growth is a no-op on stacked start bodies
    state.royale_shrinks[:] = 0
    return state


def reset_games(config: GameConfig, state: BatchState, games, seeds,
                backend: EngineBackend = EngineBackend.COMPILED) -> None:
    """Replaces the games at `games` [n] by fresh ones seeded `seeds` [n], in place:
    `state.assign(games, new_games(config, seeds))`, without building a second state.

    The compiled backend covers the fixed placement (square boards of side >= 7, at
    most 8 snakes), which is every board the trainer plays; other boards, and
    backend `numpy`, take `new_games`. Raises SetupError as `new_games` does.
    """
    games = np.asarray(games, dtype=np.int64).reshape(-1)
    seeds = np.asarray(seeds, dtype=np.int64).reshape(-1)
    if games.shape != seeds.shape:
        raise ValueError(f"games {games.shape} and seeds {seeds.shape} must have the same length")
    w, h, n = config.width, config.height, config.n_snakes
    if n != state.n_snakes or (w, h) != (state.board.width, state.board.height):
        raise ValueError(f"config {w}x{h} with {n} snakes does not match the state's "
                         f"{state.board.width}x{state.board.height} with {state.n_snakes}")
    if EngineBackend(backend) is EngineBackend.NUMPY or not (w == h and w >= 7 and n <= 8):
        state.assign(games, new_games(config, seeds))
        return
    bad = kernel.reset_fixed(
        games, seeds, state.body, state.head_ptr, state.length, state.health, state.alive,
        state.cause, state.eliminated_by, state.eliminated_turn, state.food, state.hazard,
        state.occ, state.royale_shrinks, state.turn, state.seed, kernel.params(config))
    if bad >= 0:
        raise SetupError(f"not enough space to place food (seed {int(seeds[bad])})")


def _fixed_starts(board: Board, rng, n: int) -> np.ndarray:
    """PlaceSnakesFixed: shuffled corners and edge midpoints. Shape [B, n] cells."""
    lo, mid, hi = 1, (board.width - 1) // 2, board.width - 2
    corners = board.cell(np.array([lo, lo, hi, hi]), np.array([lo, hi, lo, hi]))
    cardinals = board.cell(np.array([lo, mid, mid, hi]), np.array([mid, lo, hi, mid]))
    corner_perm = rng.shuffle(4)
    cardinal_perm = rng.shuffle(4)
    corners_first = rng.intn(2) == 0
    c, d = corners[corner_perm], cardinals[cardinal_perm]
    points = np.where(corners_first[:, None], np.concatenate([c, d], 1), np.concatenate([d, c], 1))
    return points[:, :n]


def _random_starts(board: Board, state: BatchState, rng, n: int) -> np.ndarray:
    """PlaceSnakesRandomly: each snake on a random free cell with x+y even, never the centre."""
    b = state.batch_size
    cells = board.column_major_cells
    x, y = board.xy(cells)
    centre = board.cell((board.width - 1) // 2, (board.height - 1) // 2)
    allowed = ((x + y) % 2 == 0) & (cells != centre)
    taken = np.zeros((b, board.n_cells), bool)
    starts = np.zeros((b, n), np.int64)
    for i in range(n):
        free = allowed[None, :] & ~taken[:, cells]
        counts = free.sum(axis=1)
        if (counts == 0).any():
            raise SetupError("not enough space to place snake")
        starts[:, i] = cells[_nth_true(free, rng.intn(counts))]
        taken[np.arange(b), starts[:, i]] = True
    return starts


def _fixed_food(board: Board, state: BatchState, rng, starts: np.ndarray) -> None:
    """PlaceFoodFixed: one food diagonal to each head, away from the centre, then the centre."""
    b, n = starts.shape
    w = board.width
    cx, cy = (board.width - 1) // 2, (board.height - 1) // 2
    rows = np.arange(b)
    small = board.width * board.height < 11 * 11
    if n <= 4 or not small:
        diag = np.array([[-1, -1], [-1, 1], [1, -1], [1, 1]])
        for i in range(n):
            hx, hy = board.xy(starts[:, i])
            px, py = hx[:, None] + diag[None, :, 0], hy[:, None] + diag[None, :, 1]  # [B, 4]
            cells = board.cell(px, py)
            away = (((px < hx[:, None]) & (hx[:, None] < cx)) | ((cx < hx[:, None]) & (hx[:, None] < px))
                    | ((py < hy[:, None]) & (hy[:, None] < cy)) | ((cy < hy[:, None]) & (hy[:, None] < py)))
            corner = ((px == 0) | (px == w - 1)) & ((py == 0) | (py == board.height - 1))
            ok = away & ~corner & ~((px == cx) & (py == cy)) & ~state.food[rows[:, None], cells]
            counts = ok.sum(axis=1)
            if (counts == 0).any():
                raise SetupError("not enough space to place food")
            pick = _nth_true(ok, rng.intn(counts))
            state.food[rows, cells[rows, pick]] = True
    centre = board.cell(cx, cy)
    if (starts == centre).any():
        raise SetupError("not enough space to place food")
    state.food[:, centre] = True


def _random_food(board: Board, state: BatchState, rng, starts: np.ndarray) -> None:
    """PlaceFoodRandomly: one food per snake on a free cell not next to a head."""
    b, n = starts.shape
    blocked = np.zeros((b, board.n_cells), bool)
    rows = np.arange(b)[:, None]
    blocked[rows, starts] = True
    for delta in board.move_delta:
        blocked[rows, starts + delta] = True
    cells = board.column_major_cells
    for _ in range(n):
        free = ~blocked[:, cells] & ~state.food[:, cells]
        counts = free.sum(axis=1)
        has = counts > 0
        pick = _nth_true(free, rng.intn(np.maximum(counts, 1), active=has))
        state.food[np.flatnonzero(has), cells[pick[has]]] = True


def spawn_food(config: GameConfig, state: BatchState) -> None:
    """StandardMap.PostUpdateBoard: top food up to `minimumFood`, else spawn one with
    `foodSpawnChance`%, on a cell that is free of food, bodies and heads' neighbours,
    chosen by shuffling the free cells (x-major order) with NewSource(seed + turn)."""
    settings = config.settings
    counts = np.count_nonzero(state.food, axis=1)
    need = np.maximum(settings.minimum_food - counts, 0)
    chance = need == 0
    if settings.food_spawn_chance <= 0:
        chance[:] = False
    todo = np.flatnonzero((need > 0) | chance)
    if todo.size == 0:
        return
    rng = gorand_batch.GoRandBatch(state.seed[todo] + state.turn[todo])
    rolls = chance[todo]
    draw = rng.intn(100, active=rolls)
    spawn = np.where(rolls, (100 - draw < settings.food_spawn_chance).astype(np.int64), need[todo])
    keep = spawn > 0
    if not keep.any():
        return
    free = _free_cells(state, todo[keep])
    n_free = np.zeros(todo.size, np.int64)
    n_free[keep] = free.sum(axis=1)
    # Only the first min(spawn, free cells) of the shuffle are placed: a minimumFood far
    # beyond the board costs no more than filling it (the draws are the same).
    perm = rng.shuffle_prefix(n_free, int(np.minimum(spawn, n_free).max()), active=keep)[keep]
    games, spawn, n_free = todo[keep], spawn[keep], n_free[keep]
    cells = state.board.column_major_cells
    for k in range(perm.shape[1]):
        rows = np.flatnonzero((k < spawn) & (k < n_free))
        chosen = _nth_true(free[rows], perm[rows, k])  # the perm[k]-th free cell, x-major
        state.food[games[rows], cells[chosen]] = True


def _free_cells(state: BatchState, games: np.ndarray) -> np.ndarray:
    """GetUnoccupiedPoints(board, false, false) for some games, in x-major order. Shape [n, W*H]."""
    board = state.board
    blocked = state.food[games] | (state.occ[games] > 0)
    rows = np.arange(games.size)[:, None]
    heads = state.heads[games]
    alive = state.alive[games]
    for delta in np.concatenate([[0], board.move_delta]):
        cells = np.where(alive, heads + delta, 0)  # cell 0 is padding: harmless
        blocked[rows, cells] |= alive
    return ~blocked[:, board.column_major_cells]


def _nth_true(mask: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Column of the n-th (0-based) True in each row of `mask`. Shape [rows]."""
    return np.argmax(np.cumsum(mask, axis=1) > n[:, None], axis=1)


def update_royale_hazards(config: GameConfig, state: BatchState, games: np.ndarray) -> None:
    """PopulateHazardsRoyale: with t = turn + 1 and N = shrinkEveryNTurns, no hazards
    while t < N; else t // N draws of Intn(4) from NewSource(seed) shrink the safe box
    and every cell outside it is a hazard. Only games whose shrink count changed
    (or is unknown) are recomputed. Time: at most width + height - 1 draws per game."""
    n_every = config.settings.shrink_every_n_turns
    t = state.turn[games] + 1
    shrinks = np.where(t < n_every, 0, t // n_every)
    stale = shrinks != state.royale_shrinks[games]
    if not stale.any():
        return
    games, shrinks = games[stale], shrinks[stale]
    board = state.board
    box = np.zeros((games.size, 4), np.int64)  # minX, maxX, minY, maxY as offsets
    box[:, 1] = board.width - 1
    box[:, 3] = board.height - 1
    rng = gorand_batch.GoRandBatch(state.seed[games])
    step = np.array([1, -1, 1, -1])
    for k in range(int(shrinks.max(initial=0))):
        # A box empty along one axis stays empty: every cell is a hazard whatever the
        # remaining draws say, so the loop ends within width + height - 1 draws, not t // N.
        active = (shrinks > k) & (box[:, 0] <= box[:, 1]) & (box[:, 2] <= box[:, 3])
        if not active.any():
            break
        side = rng.intn(4, active=active)
        rows = np.flatnonzero(active)
        box[rows, side[rows]] += step[side[rows]]
    x, y = board.xy(np.arange(board.n_cells))
    outside = ((x[None, :] < box[:, :1]) | (x[None, :] > box[:, 1:2])
               | (y[None, :] < box[:, 2:3]) | (y[None, :] > box[:, 3:4]))
    state.hazard[games] = (outside & board.inside[None, :]).astype(np.int16)
    state.royale_shrinks[games] = shrinks
