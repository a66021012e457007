"""One official turn on torch tensors, for batches that live on a GPU.

The same stages, tie-breaks and seeded randomness as `rules` and `maps` (the
NumPy reference, which this module follows function for function), on a
`TorchState`: the fields of a `BatchState` as int64/bool tensors on any torch
device. Starting boards come from `maps.new_games` (NumPy, once per game)
through `TorchState.from_batch`; `to_batch` brings a state back, and a CPU test
holds every field equal to the NumPy engine's turn after turn.

Nothing in the engine's NumPy core imports this module (or torch): import it
only where torch is wanted.

Randomness: Go's `math/rand` as `gorand` describes it, computed lazily from the
seeded table (two entries per draw, int64 arithmetic that wraps like Go's
uint64). Lazy draws cover a generator's first 273 draws, which is every draw
of a board of at most 274 cells (16x16) and of a royale game's first 273
shrinks; past that `advance` raises NotImplementedError rather than guess.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ouroboros.trainer.engine import gorand, types
from ouroboros.trainer.engine.state import BatchState, Board
from ouroboros.trainer.engine.types import Cause, GameConfig, GameMap, Ruleset

_FIELDS = ("turn", "seed", "body", "head_ptr", "length", "health", "alive", "cause", "eliminated_by",
           "eliminated_turn", "food", "hazard", "occ", "royale_shrinks")


@dataclasses.dataclass
class TorchState:
    """A `BatchState` as tensors (bool fields stay bool, the rest int64), on `device`."""

    board: Board
    turn: torch.Tensor
    seed: torch.Tensor
    body: torch.Tensor
    head_ptr: torch.Tensor
    length: torch.Tensor
    health: torch.Tensor
    alive: torch.Tensor
    cause: torch.Tensor
    eliminated_by: torch.Tensor
    eliminated_turn: torch.Tensor
    food: torch.Tensor
    hazard: torch.Tensor
    occ: torch.Tensor
    royale_shrinks: torch.Tensor

    @classmethod
    def from_batch(cls, state: BatchState, device: str | torch.device = "cpu") -> TorchState:
        """Copies a NumPy state onto `device`."""
        def conv(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(a.copy() if a.dtype == bool else a.astype(np.int64)).to(device)
        return cls(board=state.board, **{f: conv(getattr(state, f)) for f in _FIELDS})

    def to_batch(self) -> BatchState:
        """The same games as a NumPy `BatchState` (dtypes as `BatchState.empty` makes them)."""
        ref = BatchState.empty(self.board, 1, 1)
        arrays = {f: getattr(self, f).cpu().numpy().astype(getattr(ref, f).dtype) for f in _FIELDS}
        return BatchState(board=self.board, disjoint=True, **arrays)

    def clone(self) -> TorchState:
        """An independent copy on the same device (e.g. starting boards to play again)."""
        return TorchState(board=self.board, **{f: getattr(self, f).clone() for f in _FIELDS})

    @property
    def device(self) -> torch.device:
        return self.body.device

    @property
    def capacity(self) -> int:
        return self.body.shape[2]

    def heads(self) -> torch.Tensor:
        """Head cell of every snake: [B, S]."""
        return self.body.gather(2, self.head_ptr.unsqueeze(2)).squeeze(2)

    def game_over(self, solo: bool) -> torch.Tensor:
        """Official game-over test: [B] bool."""
        living = self.alive.sum(dim=1)
        return living == 0 if solo else living <= 1


# -- Go's math/rand, lazily (first 273 draws of each generator) ------------------------

_POW = torch.from_numpy(np.stack([gorand._NP_POW_A, gorand._NP_POW_B, gorand._NP_POW_C]).astype(np.int64))
_COOKED = torch.from_numpy(gorand._NP_COOKED.view(np.int64).copy())
_MASK63 = gorand.MASK63
_M = gorand.INT32_MAX


class _LazyGoRand:
    """N generators `rand.New(rand.NewSource(seeds[r]))`, drawn per row subset."""

    def __init__(self, seeds: torch.Tensor) -> None:
        rem = torch.remainder(seeds, _M)  # floor remainder: Go's truncated one plus M when negative
        self.state = torch.where(rem == 0, torch.full_like(rem, gorand.ZERO_SEED), rem)
        self.draws = torch.zeros_like(seeds)
        self.pow = _POW.to(seeds.device)
        self.cooked = _COOKED.to(seeds.device)

    def _entry(self, state: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        a, b, c = (state * self.pow[k, i] % _M for k in range(3))
        return (a << 40) ^ (b << 20) ^ c ^ self.cooked[i]  # int64 shifts and adds wrap like uint64

    def uint64(self, rows: torch.Tensor) -> torch.Tensor:
        """One draw per row in `rows` (int64 indices): the 64-bit value as wrapped int64."""
        d = self.draws[rows] + 1
        if rows.numel() and int(d.max()) > gorand.RNG_TAP:
            raise NotImplementedError("torch engine: a generator went past its 273rd draw "
                                      "(boards over 274 cells, or royale past 273 shrinks)")
        self.draws[rows] = d
        state = self.state[rows]
        return self._entry(state, gorand.FEED_START - d) + self._entry(state, gorand.RNG_LEN - d)

    def int31n(self, rows: torch.Tensor, n: int) -> torch.Tensor:
        """Go's Int31n(n) per row (n a Python int): mask, or reject then modulo."""
        v = (self.uint64(rows) & _MASK63) >> 32
        if n & (n - 1) == 0:
            return v & (n - 1)
        limit = _M - (1 << 31) % n
        redo = torch.nonzero(v > limit).flatten()
        while redo.numel():
            v[redo] = (self.uint64(rows[redo]) & _MASK63) >> 32
            redo = redo[v[redo] > limit]
        return v % n

    def lemire(self, rows: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        """Go's unexported int31n per row with bound n [m] (Shuffle's)."""
        prod = ((self.uint64(rows) & _MASK63) >> 31) * n
        low = prod & 0xFFFFFFFF
        redo = torch.nonzero((low < n) & (low < ((1 << 32) - n) % n)).flatten()
        while redo.numel():
            prod[redo] = ((self.uint64(rows[redo]) & _MASK63) >> 31) * n[redo]
            low = prod[redo] & 0xFFFFFFFF
            nr = n[redo]
            redo = redo[(low < nr) & (low < ((1 << 32) - nr) % nr)]
        return prod >> 32


# -- the turn ---------------------------------------------------------------------------


def advance(config: GameConfig, state: TorchState, moves: torch.Tensor) -> None:
    """One official turn of every game, in place (as `rules.advance`). moves: [B, S] int
    tensor on the state's device; values outside 0..3 mean the default move."""
    if tuple(moves.shape) != tuple(state.alive.shape):
        raise ValueError(f"moves must have shape {tuple(state.alive.shape)}, got {tuple(moves.shape)}")
    tables = _Tables.of(state.board, state.device)
    solo = config.ruleset is Ruleset.SOLO
    playing = ~state.game_over(solo)
    g, s = torch.nonzero(state.alive & playing[:, None], as_tuple=True)
    if g.numel():
        heads = _move(config, state, moves.to(torch.int64), g, s, tables)
        _starve_and_hazard(config, state, g, s, heads)
        _feed(state, g, s, heads)
        _eliminate(state, g, s, heads, tables)
        games = torch.nonzero(playing).flatten()
        if config.ruleset is Ruleset.ROYALE:
            _royale(config, state, games, tables)
        if config.ruleset.constricts:
            state.food[games] = False
            _grow_all(state, games)
    if config.game_map is GameMap.STANDARD:
        _spawn_food(config, state, tables)
    state.turn += 1


@dataclasses.dataclass
class _Tables:
    """`Board`'s lookup tables as tensors on one device."""

    inside: torch.Tensor
    wrap: torch.Tensor
    delta: torch.Tensor
    xmajor: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor

    _cache = {}

    @classmethod
    def of(cls, board: Board, device: torch.device) -> _Tables:
        key = (board, str(device))
        if key not in cls._cache:
            x, y = board.xy(np.arange(board.n_cells))
            cls._cache[key] = cls(*(torch.from_numpy(np.asarray(a).astype(a.dtype if a.dtype == bool else np.int64))
                                    .to(device) for a in (board.inside, board.wrap, board.move_delta,
                                                          board.column_major_cells, x, y)))
        return cls._cache[key]


def _cells(state: TorchState, g, s, offset) -> torch.Tensor:
    """Cell of segment `offset` ([n] or scalar) of snakes (g, s)."""
    return state.body[g, s, (state.head_ptr[g, s] + offset) % state.capacity]


def _move(config, state: TorchState, moves, g, s, t: _Tables) -> torch.Tensor:
    board = state.board
    mv = moves[g, s]
    bad = (mv < 0) | (mv > 3)
    if bad.any():
        gb, sb = g[bad], s[bad]
        head, neck = _cells(state, gb, sb, 0), _cells(state, gb, sb, 1)
        hx, hy, nx, ny = t.x[head], t.y[head], t.x[neck], t.y[neck]
        default = torch.zeros_like(hx)  # up
        conditions = [(hx == nx + 1, 3), (hx == nx - 1, 2), (hy == ny + 1, 0), (hy == ny - 1, 1),
                      ((hx == 0) & (nx > 0), 3), ((nx == 0) & (hx > 0), 2),
                      ((hy == 0) & (ny > 0), 0), ((ny == 0) & (hy > 0), 1)]
        chosen = torch.zeros_like(hx, dtype=torch.bool)
        for cond, move in conditions:  # np.select: the first true condition wins
            take = cond & ~chosen & (state.length[gb, sb] >= 2)
            default = torch.where(take, torch.full_like(default, move), default)
            chosen |= take
        mv = mv.clone()
        mv[bad] = default
    cap = state.capacity
    ptr = state.head_ptr[g, s]
    length = state.length[g, s]
    old_head = state.body[g, s, ptr]
    old_tail = state.body[g, s, (ptr + length - 1) % cap]
    heads = old_head + t.delta[mv]
    if config.ruleset.wraps:
        heads = t.wrap[heads]
    new_ptr = (ptr - 1) % cap
    state.head_ptr[g, s] = new_ptr
    state.body[g, s, new_ptr] = heads
    ones = torch.ones_like(g)
    state.occ.index_put_((g, old_head), ones, accumulate=True)
    state.occ.index_put_((g, old_tail), -ones, accumulate=True)
    del board
    return heads


def _starve_and_hazard(config, state: TorchState, g, s, heads) -> None:
    state.health[g, s] -= 1
    entries = state.hazard[g, heads]
    hit = (entries > 0) & ~state.food[g, heads]
    if not hit.any():
        return
    gh, sh, n = g[hit], s[hit], entries[hit]
    damage = config.settings.hazard_damage_per_turn
    value = state.health[gh, sh]
    dead = torch.zeros_like(gh, dtype=torch.bool)
    for k in range(int(n.max())):  # the official engine clamps after every entry
        on = n > k
        value = torch.where(on, (value - damage).clamp(0, types.SNAKE_MAX_HEALTH), value)
        dead |= on & (value <= 0)
    state.health[gh, sh] = value
    _kill(state, gh[dead], sh[dead], Cause.HAZARD, torch.full_like(gh[dead], -1))


def _feed(state: TorchState, g, s, heads) -> None:
    eats = state.food[g, heads] & state.alive[g, s]
    if not eats.any():
        return
    ge, se = g[eats], s[eats]
    state.food[ge, heads[eats]] = False
    state.health[ge, se] = types.SNAKE_MAX_HEALTH
    _grow(state, ge, se)


def _grow(state: TorchState, g, s) -> None:
    """Appends a copy of the tail to each (g, s) (pairs are distinct)."""
    if g.numel() == 0:
        return
    need = int(state.length[g, s].max()) + 1
    if need > state.capacity:
        _widen(state, max(need, 2 * state.capacity))
    cap = state.capacity
    length = state.length[g, s]
    tail = _cells(state, g, s, length - 1)
    state.body[g, s, (state.head_ptr[g, s] + length) % cap] = tail
    state.length[g, s] = length + 1
    living = state.alive[g, s]
    state.occ.index_put_((g[living], tail[living]), torch.ones_like(tail[living]), accumulate=True)


def _widen(state: TorchState, capacity: int) -> None:
    """Re-lays every ring buffer head first with room for `capacity` segments."""
    b, n, cap = state.body.shape
    idx = (state.head_ptr.unsqueeze(2) + torch.arange(cap, device=state.device)) % cap
    body = torch.zeros((b, n, capacity), dtype=state.body.dtype, device=state.device)
    body[..., :cap] = state.body.gather(2, idx)
    state.body = body
    state.head_ptr = torch.zeros_like(state.head_ptr)


def _eliminate(state: TorchState, g, s, heads, t: _Tables) -> None:
    alive = state.alive[g, s]
    starved = alive & (state.health[g, s] <= 0)
    walled = alive & ~starved & ~t.inside[heads]
    for mask, cause in ((starved, Cause.OUT_OF_HEALTH), (walled, Cause.WALL_COLLISION)):
        if mask.any():
            _kill(state, g[mask], s[mask], cause, torch.full_like(g[mask], -1))
            alive &= ~mask
    on_body = alive & (state.occ[g, heads] > 0)
    all_heads, living = state.heads(), state.alive
    same = (all_heads.unsqueeze(2) == all_heads.unsqueeze(1)) & living.unsqueeze(2) & living.unsqueeze(1)
    same &= ~torch.eye(state.alive.shape[1], dtype=torch.bool, device=state.device)
    same_head = alive & same.any(dim=2)[g, s]
    suspects = torch.nonzero(on_body | same_head).flatten()
    if suspects.numel() == 0:
        return
    gs, ss = g[suspects], s[suspects]
    cause, blame = _blame(state, gs, ss, on_body[suspects])
    for c in (Cause.SELF_COLLISION, Cause.SNAKE_COLLISION, Cause.HEAD_COLLISION):
        pick = cause == c
        if pick.any():
            _kill(state, gs[pick], ss[pick], c, blame[pick])


def _blame(state: TorchState, g, s, on_body):
    """As `rules._blame`: (cause [n], blame [n]) with the official tie-breaks."""
    n, n_snakes, cap = g.numel(), state.alive.shape[1], state.capacity
    dev = state.device
    lengths = state.length[g]  # [n, S]
    span = torch.arange(1, max(int(lengths.max()), 2), device=dev)
    ring = (state.head_ptr[g].unsqueeze(2) + span) % cap  # [n, S, K]
    segments = state.body[g].gather(2, ring)
    target = _cells(state, g, s, 0)
    hits = ((segments == target[:, None, None]) & (span < lengths.unsqueeze(2))).any(dim=2)
    hits &= state.alive[g] & on_body[:, None]
    heads_all = state.body[g].gather(2, state.head_ptr[g].unsqueeze(2)).squeeze(2)
    wins = (heads_all == target[:, None]) & (lengths >= state.length[g, s][:, None]) & state.alive[g]
    rows = torch.arange(n, device=dev)
    others = torch.ones((n, n_snakes), dtype=torch.bool, device=dev)
    others[rows, s] = False
    order = torch.sort(-lengths, dim=1, stable=True).indices  # longest first, ties in list order
    cause = torch.zeros(n, dtype=torch.int64, device=dev)
    blame = torch.full((n,), -1, dtype=torch.int64, device=dev)
    self_hit = hits[rows, s]
    cause[self_hit] = Cause.SELF_COLLISION
    blame[self_hit] = s[self_hit]
    for candidates, c in ((hits & others, Cause.SNAKE_COLLISION), (wins & others, Cause.HEAD_COLLISION)):
        ordered = candidates.gather(1, order)
        first = order[rows, ordered.to(torch.int8).argmax(dim=1)]
        pick = (cause == Cause.NOT_ELIMINATED) & ordered.any(dim=1)
        cause[pick] = c
        blame[pick] = first[pick]
    return cause, blame


def _kill(state: TorchState, g, s, cause: Cause, blame: torch.Tensor) -> None:
    if g.numel() == 0:
        return
    state.alive[g, s] = False
    state.cause[g, s] = int(cause)
    state.eliminated_by[g, s] = blame
    state.eliminated_turn[g, s] = state.turn[g] + 1
    cap = state.capacity
    rel = (torch.arange(cap, device=state.device)[None, :] - state.head_ptr[g, s][:, None]) % cap
    behind = (rel >= 1) & (rel < state.length[g, s][:, None])
    rows, pos = torch.nonzero(behind, as_tuple=True)
    cells = state.body[g[rows], s[rows], pos]
    state.occ.index_put_((g[rows], cells), -torch.ones_like(cells), accumulate=True)


def _grow_all(state: TorchState, games: torch.Tensor) -> None:
    state.health[games] = types.SNAKE_MAX_HEALTH
    n_snakes = state.alive.shape[1]
    g = games.repeat_interleave(n_snakes)
    s = torch.arange(n_snakes, device=state.device).repeat(games.numel())
    length = state.length[g, s]
    ok = length >= 2
    g, s, length = g[ok], s[ok], length[ok]
    grow = _cells(state, g, s, length - 1) != _cells(state, g, s, length - 2)
    _grow(state, g[grow], s[grow])


def _royale(config, state: TorchState, games: torch.Tensor, t: _Tables) -> None:
    every = config.settings.shrink_every_n_turns
    turn = state.turn[games] + 1
    shrinks = torch.where(turn < every, torch.zeros_like(turn), turn // every)
    stale = shrinks != state.royale_shrinks[games]
    if not stale.any():
        return
    games, shrinks = games[stale], shrinks[stale]
    board = state.board
    box = torch.zeros((games.numel(), 4), dtype=torch.int64, device=state.device)
    box[:, 1] = board.width - 1
    box[:, 3] = board.height - 1
    rng = _LazyGoRand(state.seed[games])
    step = torch.tensor([1, -1, 1, -1], device=state.device)
    for k in range(int(shrinks.max())):
        rows = torch.nonzero(shrinks > k).flatten()
        side = rng.int31n(rows, 4)
        box[rows, side] += step[side]
    x, y = t.x[None, :], t.y[None, :]
    outside = (x < box[:, :1]) | (x > box[:, 1:2]) | (y < box[:, 2:3]) | (y > box[:, 3:4])
    state.hazard[games] = (outside & t.inside[None, :]).to(state.hazard.dtype)
    state.royale_shrinks[games] = shrinks


def _spawn_food(config, state: TorchState, t: _Tables) -> None:
    """As `maps.spawn_food`: top up to minimumFood, else spawn one with foodSpawnChance%,
    on a free cell picked by Go's Shuffle of the free cells (x-major)."""
    settings = config.settings
    counts = state.food.sum(dim=1)
    need = (settings.minimum_food - counts).clamp(min=0)
    chance = need == 0
    if settings.food_spawn_chance <= 0:
        chance[:] = False
    todo = torch.nonzero((need > 0) | chance).flatten()
    if todo.numel() == 0:
        return
    rng = _LazyGoRand(state.seed[todo] + state.turn[todo])
    rolls = chance[todo]
    spawn = need[todo].clone()
    roll_rows = torch.nonzero(rolls).flatten()
    if roll_rows.numel():
        draw = rng.int31n(roll_rows, 100)
        spawn[roll_rows] = (100 - draw < settings.food_spawn_chance).to(torch.int64)
    keep = torch.nonzero(spawn > 0).flatten()
    if keep.numel() == 0:
        return
    games = todo[keep]
    blocked = state.food[games] | (state.occ[games] > 0)
    heads, alive = state.heads()[games], state.alive[games]
    rows = torch.arange(games.numel(), device=state.device)[:, None].expand_as(heads)
    for delta in [0, *t.delta.tolist()]:
        blocked[rows[alive], (heads + delta)[alive]] = True
    free = ~blocked[:, t.xmajor]  # [n, W*H], x-major
    n_free = free.sum(dim=1)
    width = int(n_free.max())
    if width == 0:
        return
    # free cell columns in x-major order, first n_free of each row
    free_cols = torch.sort((~free).to(torch.int8), dim=1, stable=True).indices[:, :width]
    perm = torch.arange(width, device=state.device).repeat(games.numel(), 1)
    for i in range(width - 1, 0, -1):  # Go's Shuffle: i = n-1 .. 1, per row
        live = torch.nonzero(n_free - 1 >= i).flatten()
        if live.numel() == 0:
            continue
        j = rng.lemire(keep[live], torch.full_like(live, i + 1))
        a, b = perm[live, i].clone(), perm[live, j].clone()
        perm[live, i] = b
        perm[live, j] = a
    spawn = spawn[keep]
    for k in range(int(spawn.max())):
        r = torch.nonzero((k < spawn) & (k < n_free)).flatten()
        cols = free_cols[r, perm[r, k]]
        state.food[games[r], t.xmajor[cols]] = True
