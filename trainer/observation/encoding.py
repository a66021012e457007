"""Board encoding: what a network sees of one snake's position.

Every network, every training phase and the served ONNX model read positions
through this module, so the planes below are a contract (the ONNX export
copies :data:`CHANNELS` into the model's metadata). Change a channel and you
change ``ENCODING_VERSION``.

**Egocentric.** A position is encoded for one seat: "own" planes hold that
snake, "enemy" planes every other living snake, and lengths are relative to
the seat's own. The same network therefore plays any seat of any game, and
one batch can mix seats.

**Layout.** float32 ``[B, C, H, W]``: row 0 is the *top* of the board
(y = height-1), column 0 is x = 0, so a plane prints the way the board is
drawn and ``Move.UP`` is row - 1, ``DOWN`` row + 1, ``LEFT`` column - 1,
``RIGHT`` column + 1.

**Board sizes.** The networks are size-agnostic (fully convolutional trunks,
head-gathered and masked-pooled heads), so a model trained on 11×11 runs on
any board and each champion is exported for its own game's board (the
registry keeps one champion per game configuration). ``size=(H, W)`` pads a
smaller board into a fixed input instead (top-left aligned): the ``board``
plane is 0 on padding, which therefore reads as wall, and the networks mask
their pooling and attention with it. That allows one batch of mixed sizes
without a separate model per size.

Channels (``CHANNELS`` has the same names and meanings, in order):

==  ================  =========================================================
 0  board             1 on playable cells, 0 on padding
 1  own_head          1 at my head
 2  own_body          turns until my segment leaves the cell, min(t, 32)/32,
                      on every cell of my body (head included; tail = 1/32)
 3  own_tail          1 at my tail
 4  own_health        my health / 100, on every playable cell
 5  own_length        min(my length, 64) / 64, on every playable cell
 6  enemy_heads       1 at each living enemy's head
 7  enemy_body        as own_body, for every living enemy
 8  enemy_tails       1 at each living enemy's tail
 9  enemy_longer      1 at the head of each enemy at least as long as me
                      (a head-to-head with it kills me)
10  enemy_shorter     1 at the head of each enemy shorter than me
                      (a head-to-head with it kills it)
11  enemy_health      the enemy's health / 100, at its head
12  food              1 on food
13  hazard            min(hazard stacks x damage per turn / 100, 1)
14  length_lead       clip((my length - longest enemy length) / 8, -1, 1)
15  enemies_alive     living enemies / (snakes - 1), 0 in solo games
16  turn              min(turn / 500, 1)
17  own_territory     1 on cells my head reaches strictly before every enemy
                      head (see *Territory*)
18  enemy_territory   1 on cells some enemy head reaches strictly before mine
==  ================  =========================================================

**Territory** (channels 17 and 18, encoding version 2). A breadth-first
search runs from my head and from every living enemy head at once, one cell
a step: a cell is entered at step d from a cell reached at step d - 1 if it
is on the board and free by then (its body value, own or enemy, is at most
d/32, the tail-chasing rule above). The first side to reach a cell owns it;
a cell that both reach at the same step is contested (0 in both planes) and
the search does not go on from it; the heads themselves are 0. These are the
Voronoi cells that strong Battlesnake searches count (our compiled search's
evaluation among them): a 6-layer convolutional trunk sees 13x13 cells and
cannot compute a flood fill across the board, so without them the value
head had to learn space from outcomes alone (README, *Where the gap lies*).
The planes are a function of channels 0 to 8 only (:func:`add_territory`),
so encoding version 1, the first 17 channels, is a prefix of version 2: a
version-1 model is fed the prefix, and version-1 planes (old replay shards)
are completed without the game.

"Turns until it leaves" makes tail-chasing readable: a cell at distance d
from my head is free when I get there if its value is at most d/32. Stacked
segments (after eating, and at the start) count once, with the later time.

**Symmetries.** Every ruleset here is invariant under the board's
symmetries: the rules have no preferred direction, and the random parts
(placement, food, royale shrinks) are symmetric in distribution. Square
boards have the 8 transforms of the dihedral group, others 4 (identity,
both flips, half turn). :func:`transform_planes` and
:func:`transform_policy` apply one to planes and to 4-move vectors so that
``policy(transform_planes(x, t)) == transform_policy(policy(x), t)``.
"""

from __future__ import annotations

import functools
from enum import IntEnum

import numpy as np
from numba import njit

from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import GameConfig

ENCODING_VERSION = 2
"""Bumped whenever a channel's meaning or order changes."""

SHARD_LABEL = f"planes-v{ENCODING_VERSION}"
"""What producers record as ``extra["encoding"]`` of the replay shards they write (provenance
for people and tools; readers go by the planes' shape: ``replay.current_planes``)."""

VACATE_SCALE = 32
"""Turns-until-free are divided by this (and clipped to 1)."""

CHANNELS: tuple[tuple[str, str], ...] = (
    ("board", "1 on playable cells, 0 on padding"),
    ("own_head", "1 at my head"),
    ("own_body", "turns until my segment leaves the cell, min(t, 32)/32, head included"),
    ("own_tail", "1 at my tail"),
    ("own_health", "my health / 100 on every playable cell"),
    ("own_length", "min(my length, 64) / 64 on every playable cell"),
    ("enemy_heads", "1 at each living enemy's head"),
    ("enemy_body", "turns until the enemy segment leaves the cell, min(t, 32)/32"),
    ("enemy_tails", "1 at each living enemy's tail"),
    ("enemy_longer", "1 at the head of each enemy at least as long as me"),
    ("enemy_shorter", "1 at the head of each enemy shorter than me"),
    ("enemy_health", "enemy health / 100 at its head"),
    ("food", "1 on food"),
    ("hazard", "min(hazard stacks x damage per turn / 100, 1)"),
    ("length_lead", "clip((my length - longest enemy length) / 8, -1, 1) on every playable cell"),
    ("enemies_alive", "living enemies / (snakes - 1) on every playable cell, 0 in solo"),
    ("turn", "min(turn / 500, 1) on every playable cell"),
    ("own_territory", "1 on cells my head reaches strictly before every enemy head"),
    ("enemy_territory", "1 on cells some enemy head reaches strictly before mine"),
)

Channel = IntEnum("Channel", [name.upper() for name, _ in CHANNELS], start=0)
"""Channel indices by name, e.g. ``Channel.FOOD``."""

N_CHANNELS = len(CHANNELS)

VERSION_CHANNELS: dict[int, int] = {1: 17, 2: N_CHANNELS}
"""Planes of each encoding version still read: each is a prefix of the current one."""


def channels_of(version: int) -> int:
    """The plane count of encoding ``version``; ValueError for one this module cannot make."""
    if version not in VERSION_CHANNELS:
        raise ValueError(f"encoding version {version!r} is not one this trainer makes "
                         f"(it makes {', '.join(map(str, VERSION_CHANNELS))})")
    return VERSION_CHANNELS[version]


def version_of(channels: int) -> int:
    """The encoding version whose planes number ``channels``; ValueError otherwise."""
    for version, count in VERSION_CHANNELS.items():
        if count == channels:
            return version
    raise ValueError(f"{channels!r} input planes match no encoding version this trainer makes "
                     f"({', '.join(f'{c} for version {v}' for v, c in VERSION_CHANNELS.items())})")


def prefix(planes: np.ndarray, channels: int) -> np.ndarray:
    """The first ``channels`` planes of ``planes`` [N, C, H, W] (what a model of an older encoding
    version takes), contiguous as onnxruntime wants them; ``planes`` itself when it has exactly
    those. ValueError when ``planes`` has fewer."""
    if planes.ndim != 4 or planes.shape[1] < channels:
        raise ValueError(f"planes {planes.shape} do not hold the model's {channels} input planes")
    return planes if planes.shape[1] == channels else np.ascontiguousarray(planes[:, :channels])


def add_territory(planes: np.ndarray) -> np.ndarray:
    """Version-1 planes float [N, 17, H, W] (an old replay shard's) completed to the current
    encoding: float32 [N, N_CHANNELS, H, W] with the territory planes computed from them.
    Current planes are returned as they are."""
    if planes.shape[1] == N_CHANNELS:
        return planes
    if planes.ndim != 4 or planes.shape[1] != VERSION_CHANNELS[1]:
        raise ValueError(f"planes must be [N, {VERSION_CHANNELS[1]} or {N_CHANNELS}, H, W], got {planes.shape}")
    full = np.zeros((planes.shape[0], N_CHANNELS, *planes.shape[2:]), np.float32)
    full[:, : planes.shape[1]] = planes
    _territory(full)
    return full


@functools.lru_cache(maxsize=32)
def _cell_to_pixel(width: int, height: int, out_w: int) -> np.ndarray:
    """Flat pixel ``row * out_w + col`` of every padded engine cell, -1 off the board. Shape [P]."""
    p = (width + 2) * (height + 2)
    cells = np.arange(p)
    x, y = cells % (width + 2) - 1, cells // (width + 2) - 1
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    return np.where(inside, (height - 1 - y) * out_w + x, -1).astype(np.int64)


@functools.lru_cache(maxsize=32)
def _board_gather(width: int, height: int, out_w: int, n_pix: int) -> tuple[np.ndarray, np.ndarray]:
    """(padded cells, their pixels) of every on-board cell, sorted by pixel. Shapes [W*H]."""
    pix = _cell_to_pixel(width, height, out_w)
    cells = np.flatnonzero(pix >= 0)
    order = np.argsort(pix[cells])
    return cells[order], pix[cells][order]


def encode(
    config: GameConfig,
    state: BatchState,
    seat: int | np.ndarray,
    size: tuple[int, int] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Planes of every game of ``state`` seen by ``seat``. Returns float32 [B, C, H, W].

    seat: one seat for every game, or an int array [B] (one seat per game).
    size: (H, W) of the input to pad into (at least the board's); the board's own by default.
    out: a float32 [B, C, H, W] buffer to fill and return instead of a new array. A
        self-play loop that reuses one skips the page faults of a fresh allocation,
        which cost about a third of the time at B = 4096.
    """
    b, s = state.batch_size, state.n_snakes
    w, h = config.width, config.height
    out_h, out_w = size or (h, w)
    if out_h < h or out_w < w:
        raise ValueError(f"size {out_h}x{out_w} is smaller than the {h}x{w} board")
    seats = np.broadcast_to(np.asarray(seat, np.int64), (b,))
    rows = np.arange(b)
    n_pix = out_h * out_w
    if out is None:
        out = np.zeros((b, N_CHANNELS, n_pix), np.float32)
    else:
        if out.shape != (b, N_CHANNELS, out_h, out_w) or out.dtype != np.float32:
            raise ValueError(f"out must be float32 {(b, N_CHANNELS, out_h, out_w)}, got "
                             f"{out.dtype} {out.shape}")
        out = out.reshape(b, N_CHANNELS, n_pix)
        out.fill(0.0)
    flat = out.reshape(-1)
    pix = _cell_to_pixel(w, h, out_w)
    on_board, pixels = _board_gather(w, h, out_w, n_pix)
    inside = np.zeros(n_pix, np.float32)
    inside[pixels] = 1.0

    def put(games, channel, where, value) -> None:
        # One flat scatter is several times faster than a three-index one.
        flat[(games * N_CHANNELS + channel) * n_pix + where] = value

    is_me = np.arange(s)[None, :] == seats[:, None]  # [B, S]
    alive = state.alive
    enemy = alive & ~is_me
    my_len = state.length[rows, seats]
    my_alive = alive[rows, seats]

    # Bodies: every segment of every living snake, stacked duplicates dropped (a
    # stack only ever sits at the tail), valued by the turns until it leaves.
    seg_max = int(state.length.max(initial=1))
    k = np.arange(seg_max)
    cap = state.capacity
    ring = (state.head_ptr[..., None] + k) % cap  # [B, S, K]
    ring += np.arange(b * s).reshape(b, s, 1) * cap
    cells = state.body.reshape(-1)[ring]
    valid = (k < state.length[..., None]) & alive[..., None]
    valid[..., 1:] &= cells[..., 1:] != cells[..., :-1]
    valid &= pix[cells] >= 0  # only a dead snake's head may lie off the board; be safe
    gb, gs, gk = np.nonzero(valid)
    left = np.minimum(state.length[gb, gs] - gk, VACATE_SCALE).astype(np.float32) / VACATE_SCALE
    body_ch = np.where(is_me[gb, gs], Channel.OWN_BODY, Channel.ENEMY_BODY)
    put(gb, body_ch, pix[cells[gb, gs, gk]], left)

    hb, hs = np.nonzero(alive & (pix[state.heads] >= 0))
    head_pix = pix[state.heads[hb, hs]]
    tail_pix = pix[state.tails[hb, hs]]
    mine = is_me[hb, hs]
    put(hb[mine], Channel.OWN_HEAD, head_pix[mine], 1.0)
    put(hb[mine], Channel.OWN_TAIL, tail_pix[mine], 1.0)
    eb, eh, et = hb[~mine], head_pix[~mine], tail_pix[~mine]
    put(eb, Channel.ENEMY_HEADS, eh, 1.0)
    put(eb, Channel.ENEMY_TAILS, et, 1.0)
    put(eb, Channel.ENEMY_HEALTH, eh, state.health[hb, hs][~mine] / 100.0)
    longer = state.length[hb, hs][~mine] >= my_len[eb]
    put(eb[longer], Channel.ENEMY_LONGER, eh[longer], 1.0)
    put(eb[~longer], Channel.ENEMY_SHORTER, eh[~longer], 1.0)

    # Per-cell layers are gathered in pixel order (a gather beats a scatter).
    if pixels.size == n_pix:  # unpadded: the pixels are 0..n-1 in order
        out[:, Channel.FOOD] = state.food[:, on_board]
    else:
        out[:, Channel.FOOD, pixels] = state.food[:, on_board]
    if state.hazard.any():
        damage = np.float32(config.settings.hazard_damage_per_turn / 100.0)
        out[:, Channel.HAZARD, pixels] = np.minimum(state.hazard[:, on_board] * damage, 1.0)

    longest_enemy = np.where(enemy, state.length, 0).max(axis=1)
    has_enemy = enemy.any(axis=1)
    lead = np.where(has_enemy, np.clip((my_len - longest_enemy) / 8.0, -1.0, 1.0), 0.0)
    scalars = {
        Channel.OWN_HEALTH: np.where(my_alive, state.health[rows, seats] / 100.0, 0.0),
        Channel.OWN_LENGTH: np.where(my_alive, np.minimum(my_len, 64) / 64.0, 0.0),
        Channel.LENGTH_LEAD: lead,
        Channel.ENEMIES_ALIVE: enemy.sum(axis=1) / max(s - 1, 1),
        Channel.TURN: np.minimum(state.turn / 500.0, 1.0),
    }
    for channel, value in scalars.items():
        out[:, channel] = value.astype(np.float32)[:, None] * inside
    out[:, Channel.BOARD] = inside
    planes = out.reshape(b, N_CHANNELS, out_h, out_w)
    _territory(planes)
    return planes


def _territory(planes: np.ndarray) -> None:
    """Fill OWN_TERRITORY and ENEMY_TERRITORY of float32 planes [B, C, H, W] in place from their
    board, body and head planes (*Territory* above; ``_territory_kernel``, about 2 us a position)."""
    _territory_kernel(planes, int(Channel.BOARD), int(Channel.OWN_BODY), int(Channel.ENEMY_BODY),
                      int(Channel.OWN_HEAD), int(Channel.ENEMY_HEADS), int(Channel.OWN_TERRITORY),
                      int(Channel.ENEMY_TERRITORY), float(VACATE_SCALE))


@njit(cache=True)
def _territory_kernel(planes, board_c, own_body_c, enemy_body_c, own_head_c, enemy_heads_c, own_c, enemy_c,
                      scale):  # pragma: no cover - compiled
    """A breadth-first search from my head and from every enemy head at once, one cell a
    turn, through cells on the board and free by the turn the search arrives (a segment
    with t turns until it leaves is passable from step t on). A cell reached first by one
    side is its territory; one reached by both at the same step belongs to neither and is
    not searched on (Voronoi cells, as the compiled search's evaluation counts them)."""
    b_n, _, h, w = planes.shape
    n = h * w
    owner = np.zeros(n, np.int8)  # 1 mine, 2 an enemy's, 3 contested
    dist = np.zeros(n, np.int32)
    queue = np.zeros(n, np.int32)
    dr = (-1, 1, 0, 0)
    dc = (0, 0, -1, 1)
    for b in range(b_n):
        first = last = 0
        for r in range(h):
            for c in range(w):
                i = r * w + c
                owner[i] = 0
                dist[i] = -1
                if planes[b, own_head_c, r, c] > 0:
                    owner[i] = 1
                elif planes[b, enemy_heads_c, r, c] > 0:
                    owner[i] = 2
                if owner[i] != 0:
                    dist[i] = 0
                    queue[last] = i
                    last += 1
        while first < last:
            i = queue[first]
            first += 1
            side = owner[i]
            if side == 3:
                continue
            d = dist[i] + 1
            r, c = i // w, i % w
            for k in range(4):
                rr, cc = r + dr[k], c + dc[k]
                if rr < 0 or rr >= h or cc < 0 or cc >= w or planes[b, board_c, rr, cc] <= 0:
                    continue
                if max(planes[b, own_body_c, rr, cc], planes[b, enemy_body_c, rr, cc]) * scale > d + 0.5:
                    continue
                j = rr * w + cc
                if dist[j] == -1:
                    dist[j] = d
                    owner[j] = side
                    queue[last] = j
                    last += 1
                elif dist[j] == d and owner[j] != side:
                    owner[j] = 3
        for r in range(h):
            for c in range(w):
                i = r * w + c
                if dist[i] > 0:
                    if owner[i] == 1:
                        planes[b, own_c, r, c] = 1.0
                    elif owner[i] == 2:
                        planes[b, enemy_c, r, c] = 1.0


def encode_all(config: GameConfig, state: BatchState, size: tuple[int, int] | None = None):
    """Planes of every living (game, seat): the usual input of batched self-play.

    Returns (planes float32 [N, C, H, W], games int64 [N], seats int64 [N]),
    N = living snakes in the batch, ordered by game then seat.
    """
    games, seats = np.nonzero(state.alive)
    return encode(config, state.select(games), seats, size), games, seats


# -- symmetries ------------------------------------------------------------------------

# Move deltas in plane coordinates (row, column), indexed by Move value (UP, DOWN, LEFT, RIGHT).
_PLANE_DELTAS = ((-1, 0), (1, 0), (0, -1), (0, 1))


class Symmetry(IntEnum):
    """The board's symmetries; the first four are valid on every board."""

    IDENTITY = 0
    FLIP_ROWS = 1  # mirror top <-> bottom
    FLIP_COLUMNS = 2  # mirror left <-> right
    ROTATE_180 = 3
    TRANSPOSE = 4  # square boards only from here on
    ANTI_TRANSPOSE = 5
    ROTATE_90 = 6  # counter-clockwise as drawn
    ROTATE_270 = 7


def symmetries(height: int, width: int) -> tuple[Symmetry, ...]:
    """The transforms that map an H×W board onto itself: 8 when square, else 4."""
    return tuple(Symmetry) if height == width else tuple(Symmetry)[:4]


def transform_planes(planes: np.ndarray, sym: Symmetry) -> np.ndarray:
    """Apply ``sym`` to the last two axes of ``planes`` [..., H, W] (returns a copy)."""
    sym = Symmetry(sym)
    r, c = planes.ndim - 2, planes.ndim - 1
    if sym is Symmetry.IDENTITY:
        out = planes
    elif sym is Symmetry.FLIP_ROWS:
        out = np.flip(planes, r)
    elif sym is Symmetry.FLIP_COLUMNS:
        out = np.flip(planes, c)
    elif sym is Symmetry.ROTATE_180:
        out = np.flip(planes, (r, c))
    elif sym is Symmetry.TRANSPOSE:
        out = np.swapaxes(planes, r, c)
    elif sym is Symmetry.ANTI_TRANSPOSE:
        out = np.flip(np.swapaxes(planes, r, c), (r, c))
    elif sym is Symmetry.ROTATE_90:
        out = np.rot90(planes, 1, axes=(r, c))
    else:
        out = np.rot90(planes, 3, axes=(r, c))
    return np.ascontiguousarray(out)


@functools.cache
def move_permutation(sym: Symmetry) -> np.ndarray:
    """perm[m] = the move that ``m`` becomes under ``sym``. Shape [4] int64.

    Derived by moving a marker on a 3×3 probe rather than written by hand, so
    it cannot disagree with :func:`transform_planes`.
    """
    perm = np.empty(4, np.int64)
    for move, (dr, dc) in enumerate(_PLANE_DELTAS):
        probe = np.zeros((3, 3))
        probe[1 + dr, 1 + dc] = 1.0
        r, c = np.argwhere(transform_planes(probe, sym))[0]
        perm[move] = _PLANE_DELTAS.index((int(r) - 1, int(c) - 1))
    return perm


def transform_policy(policy: np.ndarray, sym: Symmetry) -> np.ndarray:
    """Relabel per-move values [..., 4] (logits, probabilities, masks) under ``sym``."""
    out = np.empty_like(policy)
    out[..., move_permutation(Symmetry(sym))] = policy
    return out


def transform_moves(moves: np.ndarray, sym: Symmetry) -> np.ndarray:
    """Relabel move indices (any shape) under ``sym``."""
    return move_permutation(Symmetry(sym))[np.asarray(moves, np.int64)].astype(np.asarray(moves).dtype)


def augment(planes: np.ndarray, policy: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One random valid symmetry per sample: planes [N, C, H, W], policy [N, 4] -> same shapes.

    Vectorised by grouping the samples that drew the same transform.
    """
    syms = symmetries(planes.shape[-2], planes.shape[-1])
    draw = rng.integers(len(syms), size=planes.shape[0])
    out_planes = np.empty_like(planes)
    out_policy = np.empty_like(policy)
    for i, sym in enumerate(syms):
        idx = np.flatnonzero(draw == i)
        if idx.size:
            out_planes[idx] = transform_planes(planes[idx], sym)
            out_policy[idx] = transform_policy(policy[idx], sym)
    return out_planes, out_policy
