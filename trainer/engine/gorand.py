"""Go's math/rand generator, bit for bit, scalar and batched over seeds.

The official rules engine draws all its randomness from
``rand.New(rand.NewSource(seed + turn))``: food spawning (``Intn(100)``, then
``Shuffle`` of the free cells), start positions, royale shrinking. Replaying a
seeded game therefore needs Go's exact generator, not merely a good one.

The algorithm (Go's ``rngSource``, after Mitchell and Reeds):

* state: a 607-entry table of 64-bit words ``vec`` and two cursors, ``tap``
  (starts at 0) and ``feed`` (starts at 607 - 273 = 334);
* a draw moves both cursors down by one (wrapping), returns
  ``vec[feed] + vec[tap]`` (mod 2**64) and stores it in ``vec[feed]``;
* seeding reduces the int64 seed modulo 2**31 - 1 with truncated division
  (a negative remainder gets 2**31 - 1 added; 0 becomes 89482311), runs the
  Lehmer generator ``x -> 48271 * x mod (2**31 - 1)`` 20 times, then fills
  ``vec[i]`` from the next three values ``a, b, c`` as
  ``(a << 40) ^ (b << 20) ^ c ^ rngCooked[i]`` (64-bit wrap).

Because the Lehmer step is a multiplication, the k-th value is
``seed * 48271**k mod (2**31 - 1)``, so any table entry can be computed on its
own from a precomputed power (entry i uses k = 21 + 3i, 22 + 3i, 23 + 3i).
Fresh generators need very few entries: draw t (t <= 273) returns
``vec[334 - t] + vec[607 - t]`` of the *seeded* table, since neither slot has
been written yet. Both classes below use this to skip building the 607-entry
table until a generator passes its 273rd draw.

Derived outputs, as in Go's ``rand.Rand``: ``Int63 = Uint64 & (2**63 - 1)``,
``Uint32 = Int63 >> 31``, ``Int31 = Int63 >> 32``; ``Int31n`` masks for a
power of two, else rejects draws above ``2**31 - 1 - 2**31 % n`` and takes the
remainder; ``Intn`` is ``Int31n`` below 2**31 and ``Int63n`` above;
``Shuffle`` is Fisher-Yates from the end with the unexported Lemire
``int31n`` (multiply-shift with a rare rejection).

Typical batched use, the standard map's per-turn food for N games (a row
below minimumFood skips the roll and shuffles right away):

    rng = GoRandBatch(seeds + turn)                  # int64 (N,); wraps like Go
    roll = rng.intn(100, active=~below_minimum)      # int64 (N,), -1 if inactive
    spawn = below_minimum | ((100 - roll) < chance)  # chance > 0 assumed
    picks = rng.shuffle_prefix(n_free, 2, spawn)     # int64 (N, 2), -1 padded
"""

from __future__ import annotations

from collections.abc import Callable, MutableSequence

import numpy as np

from ouroboros.trainer.engine import _gorand_table

RNG_LEN = 607
"""Entries in the generator's table."""
RNG_TAP = 273
"""Distance between the two cursors; also the number of draws a fresh
generator makes before it reads a slot it has written."""
FEED_START = RNG_LEN - RNG_TAP
"""Where the feed cursor starts (the tap cursor starts at 0)."""
INT32_MAX = (1 << 31) - 1
"""The Lehmer modulus 2**31 - 1, also Go's int32max."""
LEHMER_A = 48271
ZERO_SEED = 89482311
"""Go's stand-in for a seed that reduces to 0."""
MASK32 = (1 << 32) - 1
MASK63 = (1 << 63) - 1
MASK64 = (1 << 64) - 1
INT63_MAX = MASK63

# Entry i of the seeded table is built from Lehmer values k = 21+3i, 22+3i, 23+3i.
_K_FIRST = 21
_POW = [pow(LEHMER_A, k, INT32_MAX) for k in range(_K_FIRST + 3 * RNG_LEN)]
_POW_A = _POW[_K_FIRST::3][:RNG_LEN]
_POW_B = _POW[_K_FIRST + 1 :: 3][:RNG_LEN]
_POW_C = _POW[_K_FIRST + 2 :: 3][:RNG_LEN]
_COOKED = [v & MASK64 for v in _gorand_table.RNG_COOKED]

_NP_POW_A = np.array(_POW_A, dtype=np.uint64)
_NP_POW_B = np.array(_POW_B, dtype=np.uint64)
_NP_POW_C = np.array(_POW_C, dtype=np.uint64)
_NP_COOKED = np.array(_COOKED, dtype=np.uint64)
_U31 = np.uint64(31)
_U32 = np.uint64(32)
_U20 = np.uint64(20)
_U40 = np.uint64(40)
_U_M = np.uint64(INT32_MAX)
_U_MASK32 = np.uint64(MASK32)
_U_MASK63 = np.uint64(MASK63)


def reduce_seed(seed: int) -> int:
    """Go's ``rngSource.Seed`` reduction of an int64 seed to 1 .. 2**31 - 2.

    Truncated division: ``-5 % (2**31 - 1)`` is -5 in Go, then 2**31 - 1 is
    added; a remainder of 0 becomes 89482311.
    """
    if not -(1 << 63) <= seed < (1 << 63):
        raise ValueError(f"seed {seed} is not an int64")
    rem = abs(seed) % INT32_MAX
    if seed < 0 and rem:
        rem = INT32_MAX - rem
    return rem or ZERO_SEED


def _reduce_seeds(seeds: np.ndarray) -> np.ndarray:
    """Vectorised reduce_seed: int64 (N,) -> uint64 (N,)."""
    rem = np.fmod(seeds, INT32_MAX)
    rem = np.where(rem < 0, rem + INT32_MAX, rem)
    rem = np.where(rem == 0, ZERO_SEED, rem)
    return rem.astype(np.uint64)


def _mulmod(power: np.ndarray, x: np.ndarray) -> np.ndarray:
    """power * x mod 2**31 - 1 for uint64 arrays of nonzero residues (broadcasts).

    Two Mersenne folds replace the slow uint64 ``%``: the product is below
    2**62, the first fold leaves less than 2**32 - 1, the second at most
    2**31 - 1, which would mean 0 and cannot occur for nonzero factors.
    """
    prod = power * x
    high = prod >> _U31
    prod &= _U_M
    prod += high
    np.right_shift(prod, _U31, out=high)
    prod &= _U_M
    prod += high
    return prod


# Reversed layout: position q describes table entry 606 - q, so the descending
# runs of entries that draws read are ascending slices. Three powers a position.
_REV_POW = np.stack([_NP_POW_A, _NP_POW_B, _NP_POW_C], axis=1)[::-1].reshape(-1).copy()
_REV_COOKED = _NP_COOKED[::-1].copy()

# Batched arrays are step-major, (k, m): one row per draw or entry, one column
# per generator, so NumPy's inner loops run along the batch.

_CHUNK_WORDS = 1 << 14
"""Largest temporary (in 64-bit words) a batched helper makes at once. Larger
NumPy temporaries get fresh pages from glibc on every call and ran 2-10x
slower here, so long runs are computed in slices of steps."""


def _chunks(k: int, words_per_step: int, most: int | None = None) -> list[tuple[int, int]]:
    """(start, stop) slices of range(k) with at most _CHUNK_WORDS words each."""
    size = max(1, _CHUNK_WORDS // max(1, words_per_step))
    if most is not None:
        size = min(size, most)
    return [(start, min(start + size, k)) for start in range(0, k, size)]


def _combine(x: np.ndarray, cooked: np.ndarray) -> np.ndarray:
    """Table entries from Lehmer triples: x uint64 (k, 3, m), cooked (k, 1) or (k, m)."""
    out = x[:, 0] << _U40
    out ^= x[:, 1] << _U20
    out ^= x[:, 2]
    out ^= cooked
    return out


def _seeded_run(states: np.ndarray, first: np.ndarray | int, k: int) -> np.ndarray:
    """Seeded-table entries first, first - 1, ..., first - k + 1: uint64 (k, m).

    states: uint64 (m,) reduced seeds; first: int scalar or (m,), with
    first - k + 1 >= 0. When every generator starts at the same entry the
    powers are one slice and nothing is gathered.
    """
    m = len(states)
    q = RNG_LEN - 1 - np.asarray(first)
    if m and (q.ndim == 0 or q.min() == q.max()):
        q0 = int(q.reshape(-1)[0])
        powers = _REV_POW[3 * q0 : 3 * (q0 + k), None]
        cooked = _REV_COOKED[q0 : q0 + k, None]
    else:
        step = np.arange(k)[:, None]
        cooked = _REV_COOKED.take(q[None, :] + step)
        triple = np.arange(3)[None, :, None]
        powers = _REV_POW.take(3 * (q[None, None, :] + step[:, :, None]) + triple)
        powers = powers.reshape(3 * k, m)
    return _combine(_mulmod(powers, states[None, :]).reshape(k, 3, m), cooked)


def _fresh_draws(states: np.ndarray, drawn: int, k: int) -> np.ndarray:
    """Draws drawn + 1 .. drawn + k (<= 273) of generators that each made ``drawn``.

    states: uint64 (m,). Draw t is entry 334 - t plus entry 607 - t of the
    seeded table; both runs share one multiplication. Returns uint64 (k, m).
    """
    m = len(states)
    out = np.empty((k, m), dtype=np.uint64)
    for start, stop in _chunks(k, 6 * m):
        c = stop - start
        q_feed = RNG_TAP + drawn + start  # reversed position of entry 333 - drawn - start
        q_tap = drawn + start  # reversed position of entry 606 - drawn - start
        powers = np.concatenate(
            [_REV_POW[3 * q_feed : 3 * (q_feed + c)], _REV_POW[3 * q_tap : 3 * (q_tap + c)]]
        )
        cooked = np.concatenate([_REV_COOKED[q_feed : q_feed + c], _REV_COOKED[q_tap : q_tap + c]])
        x = _mulmod(powers[:, None], states[None, :]).reshape(2 * c, 3, m)
        entries = _combine(x, cooked[:, None])
        np.add(entries[:c], entries[c:], out=out[start:stop])
    return out


def _lazy_draws(states: np.ndarray, drawn: np.ndarray, k: int) -> np.ndarray:
    """Like _fresh_draws, for generators with different draw counts (m,)."""
    out = np.empty((k, len(states)), dtype=np.uint64)
    for start, stop in _chunks(k, 3 * len(states)):
        chunk = out[start:stop]
        chunk[...] = _seeded_run(states, FEED_START - 1 - drawn - start, stop - start)
        chunk += _seeded_run(states, RNG_LEN - 1 - drawn - start, stop - start)
    return out


def _seeded_tables(states: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Full tables of generators that made draws (m,) <= 273 draws: uint64 (m, 607).

    Draw t writes slot 334 - t with slot 334 - t plus slot 607 - t; for
    t <= 273 the slots read are untouched, so the writes replay in one go.
    """
    m = len(states)
    table = np.empty((m, RNG_LEN), dtype=np.uint64)
    for start, stop in _chunks(RNG_LEN, 3 * m):
        run = _seeded_run(states, RNG_LEN - 1 - start, stop - start)
        table[:, RNG_LEN - stop : RNG_LEN - start] = run[::-1].T
    t = np.arange(1, RNG_TAP + 1)
    feed, tap = FEED_START - t, RNG_LEN - t
    written = t[None, :] <= draws[:, None]
    table[:, feed] = np.where(written, table[:, feed] + table[:, tap], table[:, feed])
    return table


class GoRand:
    """One Go generator, ``rand.New(rand.NewSource(seed))``, in plain Python.

    Exact for every int64 seed and every method below; values are Python ints
    with Go's ranges. The 607-entry table is built (with NumPy) only when the
    generator passes its 273rd draw; before that each draw computes its two
    seeded entries directly.
    """

    __slots__ = ("_cursor", "_draws", "_state", "_table")

    def __init__(self, seed: int) -> None:
        self._state = reduce_seed(int(seed))
        self._draws = 0
        self._table: list[int] | None = None
        self._cursor = 0

    @property
    def draws(self) -> int:
        """How many 64-bit draws the generator has made."""
        return self._draws

    def _entry(self, i: int) -> int:
        s = self._state
        a = s * _POW_A[i] % INT32_MAX
        b = s * _POW_B[i] % INT32_MAX
        c = s * _POW_C[i] % INT32_MAX
        return ((a << 40) ^ (b << 20) ^ c ^ _COOKED[i]) & MASK64

    def _build_table(self) -> list[int]:
        table = _seeded_tables(np.array([self._state], dtype=np.uint64), np.array([self._draws]))
        self._cursor = self._draws % RNG_LEN
        return table[0].tolist()

    def uint64(self) -> int:
        """Go's ``Uint64``: the raw 64-bit draw, 0 .. 2**64 - 1."""
        table = self._table
        if table is None:
            if self._draws < RNG_TAP:
                self._draws += 1
                t = self._draws
                return (self._entry(FEED_START - t) + self._entry(RNG_LEN - t)) & MASK64
            table = self._table = self._build_table()
        # _cursor = draws mod 607; tap = -draws, feed = 334 - draws (mod 607).
        self._draws += 1
        cursor = self._cursor = (self._cursor + 1) % RNG_LEN
        tap = -cursor % RNG_LEN
        feed = (FEED_START - cursor) % RNG_LEN
        value = (table[feed] + table[tap]) & MASK64
        table[feed] = value
        return value

    def int63(self) -> int:
        """Go's ``Int63``: 0 .. 2**63 - 1."""
        return self.uint64() & MASK63

    def uint32(self) -> int:
        """Go's ``Uint32``: the top 32 bits of ``Int63``."""
        return (self.uint64() & MASK63) >> 31

    def int31(self) -> int:
        """Go's ``Int31``: 0 .. 2**31 - 1."""
        return (self.uint64() & MASK63) >> 32

    def int31n(self, n: int) -> int:
        """Go's ``Int31n(n)``, 0 < n < 2**31: mask or reject-then-modulo."""
        if not 0 < n <= INT32_MAX:
            raise ValueError(f"int31n needs 0 < n < 2**31, got {n}")
        if n & (n - 1) == 0:
            return self.int31() & (n - 1)
        limit = INT32_MAX - (1 << 31) % n
        v = self.int31()
        while v > limit:
            v = self.int31()
        return v % n

    def int63n(self, n: int) -> int:
        """Go's ``Int63n(n)``, 0 < n < 2**63: mask or reject-then-modulo."""
        if not 0 < n <= INT63_MAX:
            raise ValueError(f"int63n needs 0 < n < 2**63, got {n}")
        if n & (n - 1) == 0:
            return self.int63() & (n - 1)
        limit = INT63_MAX - (1 << 63) % n
        v = self.int63()
        while v > limit:
            v = self.int63()
        return v % n

    def intn(self, n: int) -> int:
        """Go's ``Intn(n)`` on 64-bit Go: ``Int31n`` below 2**31, else ``Int63n``."""
        if n <= 0:
            raise ValueError(f"intn needs n > 0, got {n}")
        return self.int31n(n) if n <= INT32_MAX else self.int63n(n)

    def _lemire31n(self, n: int) -> int:
        """Go's unexported ``int31n`` (used by Shuffle): multiply-shift."""
        prod = self.uint32() * n
        low = prod & MASK32
        if low < n:
            thresh = ((1 << 32) - n) % n
            while low < thresh:
                prod = self.uint32() * n
                low = prod & MASK32
        return prod >> 32

    def shuffle(self, n: int, swap: Callable[[int, int], None]) -> None:
        """Go's ``Shuffle(n, swap)``: calls swap(i, j) for i = n-1 .. 1."""
        if n < 0:
            raise ValueError(f"shuffle needs n >= 0, got {n}")
        i = n - 1
        while i > INT32_MAX - 1:
            swap(i, self.int63n(i + 1))
            i -= 1
        while i > 0:
            swap(i, self._lemire31n(i + 1))
            i -= 1

    def shuffle_list(self, items: MutableSequence) -> None:
        """Shuffle a list in place exactly as Go shuffles a slice."""

        def swap(i: int, j: int) -> None:
            items[i], items[j] = items[j], items[i]

        self.shuffle(len(items), swap)

    def permutation(self, n: int) -> list[int]:
        """``range(n)`` after ``Shuffle(n, swap)`` (not Go's ``Perm``)."""
        items = list(range(n))
        self.shuffle_list(items)
        return items


def _trace_back(picks: np.ndarray, sizes: np.ndarray, p: int) -> np.ndarray:
    """Which original index ends at position p after Go's Shuffle: int64 (m,), -1 if p >= size.

    picks: int64 (steps, m), step s of a row of size n swapping i = n - 1 - s
    with j = picks[s]. Position q is last written either by its own step
    (i = q, taking what position j held) or by the latest later step whose j
    is q (taking what position i held). Following those writes backwards in
    time ends at an index no step moved: the original value. The chain is
    short (about ln n hops), so this is a handful of vector operations where
    replaying every swap is one per element.
    """
    steps, m = picks.shape
    by_row = np.ascontiguousarray(picks.T)  # (m, steps): each hop gathers whole rows
    result = np.full(m, -1, dtype=np.int64)
    live = p < sizes
    if p == 0:
        q = np.zeros(m, dtype=np.int64)
    else:  # position p's own step wrote it last: it took what position picks[p's step] held
        q = by_row[np.arange(m), np.clip(sizes - 1 - p, 0, steps - 1)]
    t = np.full(m, p, dtype=np.int64)  # steps for i <= t have not happened yet at this point
    s_index = np.arange(steps)
    while live.any():
        a = np.flatnonzero(live)
        # The latest step (smallest i > t, i.e. largest s < n - 1 - t) whose j is q.
        hit = (by_row[a] == q[a, None]) & (s_index < (sizes[a] - 1 - t[a])[:, None])
        found = hit.any(axis=1)
        last = steps - 1 - np.argmax(hit[:, ::-1], axis=1)
        done = a[~found]
        result[done] = q[done]
        live[done] = False
        more = a[found]
        i = sizes[more] - 1 - last[found]
        q[more] = i
        t[more] = i
    return result


class GoRandBatch:
    """N independent Go generators, ``rand.New(rand.NewSource(seeds[r]))``.

    Every method draws from the rows selected by ``active`` (a bool (N,)
    mask; None = all rows) and returns an (N,) or (N, W) array; rows that do
    not draw get -1 (0 for ``uint64``). Each row's stream is exactly the one
    a GoRand with the same seed produces for the same calls, in any mix of
    methods and masks.

    Rows stay "lazy" (no table) while they have made at most 273 draws: a
    draw then costs two seeded entries computed on the spot, so
    ``GoRandBatch(seeds + turn).intn(100)`` touches 2 of the 607 entries per
    row. A row's table is built only when a call would take it past draw 273;
    tables live in a compact (M, 607) array for those M rows only.
    """

    def __init__(self, seeds: np.ndarray | list[int]) -> None:
        """seeds: int64 (N,); any int64 is valid (Go's reduction applies)."""
        seeds = np.asarray(seeds)
        if seeds.ndim != 1 or not np.issubdtype(seeds.dtype, np.integer):
            raise TypeError("seeds must be a 1-D integer array")
        if seeds.dtype == np.uint64 and seeds.size and seeds.max() > MASK63:
            raise ValueError("seeds must fit in int64")
        seeds = seeds.astype(np.int64, copy=False)
        self._n = seeds.shape[0]
        self._state = _reduce_seeds(seeds)
        self._draws = np.zeros(self._n, dtype=np.int64)
        self._slot = np.full(self._n, -1, dtype=np.int64)
        self._tables = np.empty((0, RNG_LEN), dtype=np.uint64)
        self._all_rows = np.arange(self._n)
        # True while every call so far drew the same number from every row:
        # all rows then share one draw count and none has a table yet.
        self._uniform = True

    def __len__(self) -> int:
        return self._n

    @property
    def draws(self) -> np.ndarray:
        """int64 (N,): 64-bit draws made so far per row (a copy)."""
        return self._draws.copy()

    # -- core: look ahead, then commit what was used ------------------------

    def _rows(self, active: np.ndarray | None) -> np.ndarray:
        if active is None:
            return self._all_rows
        active = np.asarray(active, dtype=bool)
        if active.shape != (self._n,):
            raise ValueError(f"active must be a bool mask of shape ({self._n},)")
        self._uniform = False
        return np.flatnonzero(active)

    def _peek(self, rows: np.ndarray, k: int) -> np.ndarray:
        """The next k draws of each row, not yet consumed: uint64 (k, m).

        Rows that would pass draw 273 get their table first.
        """
        if self._uniform and rows is self._all_rows and self._n:
            drawn = int(self._draws[0])
            if drawn + k <= RNG_TAP:
                return _fresh_draws(self._state, drawn, k)
        self._uniform = False
        drawn = self._draws[rows]
        lazy = self._slot[rows] < 0
        grow = lazy & (drawn + k > RNG_TAP)
        if grow.any():
            new = rows[grow]
            self._slot[new] = np.arange(len(self._tables), len(self._tables) + len(new))
            tables = _seeded_tables(self._state[new], self._draws[new])
            self._tables = np.concatenate([self._tables, tables])
            lazy &= ~grow
        if lazy.all():
            return _lazy_draws(self._state[rows], drawn, k)
        out = np.empty((k, len(rows)), dtype=np.uint64)
        if lazy.any():
            out[:, lazy] = _lazy_draws(self._state[rows[lazy]], drawn[lazy], k)
        tabled = ~lazy
        out[:, tabled] = self._peek_tabled(rows[tabled], drawn[tabled], k)
        return out

    def _peek_tabled(self, rows: np.ndarray, drawn: np.ndarray, k: int) -> np.ndarray:
        """Run the lagged-Fibonacci recurrence k steps ahead on a copy: (k, m).

        Step j reads its feed slot from the table for j < 607 (else its own
        output j - 607) and its tap slot from the table for j < 273 (else
        output j - 273); slices of at most 273 steps only read earlier ones.
        """
        slots = self._slot[rows][None, :]
        out = np.empty((k, len(rows)), dtype=np.uint64)
        for start, stop in _chunks(k, len(rows), RNG_TAP):
            t = drawn[None, :] + np.arange(start + 1, stop + 1)[:, None]
            a = self._tables[slots, (FEED_START - t) % RNG_LEN]
            if stop > RNG_LEN:
                first = max(start, RNG_LEN)
                a[first - start :] = out[first - RNG_LEN : stop - RNG_LEN]
            if start >= RNG_TAP:
                b = out[start - RNG_TAP : stop - RNG_TAP]
            else:
                b = self._tables[slots, -t % RNG_LEN]
                if stop > RNG_TAP:
                    b[RNG_TAP - start :] = out[: stop - RNG_TAP]
            np.add(a, b, out=out[start:stop])
        return out

    def _commit(self, rows: np.ndarray, peeked: np.ndarray, used: np.ndarray) -> None:
        """Consume the first used[i] (<= k) of the peeked draws (k, m) of each row."""
        slots = self._slot[rows]
        tabled = np.flatnonzero(slots >= 0)
        if tabled.size:
            slots, drawn, u = slots[tabled], self._draws[rows[tabled]], used[tabled]
            for start, stop in _chunks(peeked.shape[0], len(tabled)):
                j = np.arange(start, stop)[:, None]
                # Only the last 607 writes matter; earlier ones to a slot are overwritten.
                write = (j < u) & (j >= u - RNG_LEN)
                feed = (FEED_START - drawn - 1 - j) % RNG_LEN
                slot = np.broadcast_to(slots, write.shape)
                self._tables[slot[write], feed[write]] = peeked[start:stop, tabled][write]
        self._uniform = False
        self._draws[rows] += used

    def _draw(self, rows: np.ndarray) -> np.ndarray:
        """One committed 64-bit draw per row: uint64 (m,)."""
        drawn = self._peek(rows, 1)[0]
        if len(self._tables):
            slots = self._slot[rows]
            tabled = slots >= 0
            t = self._draws[rows[tabled]] + 1
            self._tables[slots[tabled], (FEED_START - t) % RNG_LEN] = drawn[tabled]
        if rows is self._all_rows:
            self._draws += 1
        else:
            self._uniform = False
            self._draws[rows] += 1
        return drawn

    def _spread(self, rows: np.ndarray, values: np.ndarray, fill: int = -1) -> np.ndarray:
        if rows is self._all_rows:
            return values.astype(np.int64, copy=False)
        out = np.full(self._n, fill, dtype=np.int64)
        out[rows] = values
        return out

    def _bounds(self, n: int | np.ndarray, rows: np.ndarray, high: int) -> np.ndarray | int:
        if np.ndim(n) == 0:
            n = int(n)
            if not 0 < n <= high:
                raise ValueError(f"n must be in 1 .. {high}, got {n}")
            return n
        n = np.asarray(n)
        if n.shape != (self._n,):
            raise ValueError(f"n must be a scalar or an array of shape ({self._n},)")
        n = n[rows]
        if n.size and (n.min() <= 0 or n.max() > high):
            raise ValueError(f"n must be in 1 .. {high}")
        return n.astype(np.int64)

    # -- Go's rand.Rand methods ----------------------------------------------

    def uint64(self, active: np.ndarray | None = None) -> np.ndarray:
        """Go's ``Uint64`` per active row: uint64 (N,), 0 where inactive."""
        rows = self._rows(active)
        out = np.zeros(self._n, dtype=np.uint64)
        out[rows] = self._draw(rows)
        return out

    def int63(self, active: np.ndarray | None = None) -> np.ndarray:
        """Go's ``Int63`` per active row: int64 (N,), -1 where inactive."""
        rows = self._rows(active)
        return self._spread(rows, (self._draw(rows) & _U_MASK63).astype(np.int64))

    def uint32(self, active: np.ndarray | None = None) -> np.ndarray:
        """Go's ``Uint32`` per active row: int64 (N,), -1 where inactive."""
        rows = self._rows(active)
        return self._spread(rows, ((self._draw(rows) & _U_MASK63) >> _U31).astype(np.int64))

    def int31(self, active: np.ndarray | None = None) -> np.ndarray:
        """Go's ``Int31`` per active row: int64 (N,), -1 where inactive."""
        rows = self._rows(active)
        return self._spread(rows, ((self._draw(rows) & _U_MASK63) >> _U32).astype(np.int64))

    def int31n(self, n: int | np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
        """Go's ``Int31n(n)`` per active row; n scalar or int (N,), 0 < n < 2**31.

        Returns int64 (N,), -1 where inactive. Rows whose draw is rejected
        draw again; only those rows draw.
        """
        rows = self._rows(active)
        return self._spread(rows, self._int31n(rows, self._bounds(n, rows, INT32_MAX)))

    def _int31n(self, rows: np.ndarray, n: int | np.ndarray) -> np.ndarray:
        v = ((self._draw(rows) & _U_MASK63) >> _U32).astype(np.int64)
        pow2 = np.asarray((n & (n - 1)) == 0)
        if pow2.ndim == 0 and pow2:
            return v & (n - 1)
        limit = INT32_MAX - (1 << 31) % n
        redo = np.flatnonzero(~pow2 & (v > limit))
        while redo.size:
            v[redo] = ((self._draw(rows[redo]) & _U_MASK63) >> _U32).astype(np.int64)
            lim = limit if np.ndim(limit) == 0 else limit[redo]
            redo = redo[v[redo] > lim]
        return np.where(pow2, v & (n - 1), v % n)

    def int63n(self, n: int | np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
        """Go's ``Int63n(n)`` per active row; n scalar or int (N,), 0 < n < 2**63.

        Returns int64 (N,), -1 where inactive.
        """
        rows = self._rows(active)
        return self._spread(rows, self._int63n(rows, self._bounds(n, rows, INT63_MAX)))

    def _int63n(self, rows: np.ndarray, n: int | np.ndarray) -> np.ndarray:
        un = np.asarray(n, dtype=np.uint64)
        v = self._draw(rows) & _U_MASK63
        limit = _U_MASK63 - np.uint64(1 << 63) % un
        pow2 = (un & (un - np.uint64(1))) == 0
        redo = np.flatnonzero(~pow2 & (v > limit))
        while redo.size:
            v[redo] = self._draw(rows[redo]) & _U_MASK63
            lim = limit if np.ndim(limit) == 0 else limit[redo]
            redo = redo[v[redo] > lim]
        return np.where(pow2, v & (un - np.uint64(1)), v % un).astype(np.int64)

    def intn(self, n: int | np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
        """Go's ``Intn(n)`` per active row; n scalar or int (N,), n > 0.

        Rows with n < 2**31 use ``Int31n``, larger n ``Int63n``, as 64-bit Go
        does. Returns int64 (N,), -1 where inactive.
        """
        rows = self._rows(active)
        n = self._bounds(n, rows, INT63_MAX)
        if np.ndim(n) == 0:
            values = self._int31n(rows, n) if n <= INT32_MAX else self._int63n(rows, n)
            return self._spread(rows, values)
        small = n <= INT32_MAX
        values = np.empty(len(rows), dtype=np.int64)
        if small.any():
            values[small] = self._int31n(rows[small], n[small])
        if not small.all():
            values[~small] = self._int63n(rows[~small], n[~small])
        return self._spread(rows, values)

    def shuffle(self, lengths: int | np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
        """Go's ``Shuffle(lengths[r], swap)`` applied to ``range(lengths[r])`` per row.

        lengths: scalar or int (N,), each 0 .. 2**31 - 1. Returns int64 (N, W)
        with W = the largest active length: row r holds the permutation Go
        leaves in a slice [0, 1, ..., L-1], padded with -1 (all -1 where
        inactive). A row draws L - 1 times (plus rare Lemire rejections).
        """
        rows = self._rows(active)
        lengths = np.broadcast_to(np.asarray(lengths, dtype=np.int64), (self._n,))
        if lengths.size and (lengths.min() < 0 or lengths.max() > INT32_MAX):
            raise ValueError("lengths must be in 0 .. 2**31 - 1")
        sizes = lengths[rows]
        width = int(sizes.max()) if sizes.size else 0
        perm = np.full((self._n, width), -1, dtype=np.int64)
        if width == 0:
            return perm
        col = np.arange(width)
        perm[rows] = np.where(col[None, :] < sizes[:, None], col[None, :], -1)
        movers = sizes >= 2
        rows, sizes = rows[movers], sizes[movers]
        if rows.size == 0:
            return perm
        picks = self._shuffle_picks(rows, sizes)
        # Swap step by step, all rows at once; a row that has finished swaps 0 with 0.
        flat = perm.reshape(-1)
        base = rows * width
        for start, stop in _chunks(picks.shape[0], len(rows)):
            i = sizes - 1 - np.arange(start, stop)[:, None]
            live = i >= 1
            flat_i = base + np.where(live, i, 0)
            flat_j = base + np.where(live, picks[start:stop], 0)
            for fi, fj in zip(flat_i, flat_j, strict=True):
                a, b = flat[fi], flat[fj]
                flat[fi] = b
                flat[fj] = a
        return perm

    def shuffle_prefix(
        self, lengths: int | np.ndarray, k: int, active: np.ndarray | None = None
    ) -> np.ndarray:
        """The first k entries of ``shuffle(lengths, active)``: int64 (N, k).

        Same draws as ``shuffle``; positions past a row's length are -1. The
        standard map takes its new food from this prefix, usually k = 1, so
        the swaps are not replayed: each wanted position is traced back
        through the picks (see ``_trace_back``), a few vector steps instead of
        one per element.
        """
        rows = self._rows(active)
        lengths = np.broadcast_to(np.asarray(lengths, dtype=np.int64), (self._n,))
        if lengths.size and (lengths.min() < 0 or lengths.max() > INT32_MAX):
            raise ValueError("lengths must be in 0 .. 2**31 - 1")
        sizes = lengths[rows]
        out = np.full((self._n, k), -1, dtype=np.int64)
        out[rows[sizes == 1], 0] = 0
        movers = sizes >= 2
        rows, sizes = rows[movers], sizes[movers]
        if rows.size == 0 or k == 0:
            return out
        picks = self._shuffle_picks(rows, sizes)
        for p in range(k):
            out[rows, p] = _trace_back(picks, sizes, p)
        return out

    def _shuffle_picks(self, rows: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """The j of each Fisher-Yates step: int64 (max(sizes) - 1, m).

        Step s swaps i = size - 1 - s with j = int31n(i + 1) (Lemire). All
        draws are looked ahead at once; a row with a rejection (chance about
        size**2 / 2**33) is redone one draw at a time.
        """
        steps = int(sizes.max()) - 1
        peeked = self._peek(rows, steps)
        picks = np.empty((steps, len(rows)), dtype=np.int64)
        rejected = np.zeros(len(rows), dtype=bool)
        for start, stop in _chunks(steps, len(rows)):
            bound = sizes - np.arange(start, stop)[:, None]
            live = bound >= 2
            bound = np.where(live, bound, 1).astype(np.uint64)
            prod = ((peeked[start:stop] & _U_MASK63) >> _U31) * bound
            low = prod & _U_MASK32
            # Go rejects when low < (2**32 - n) % n, which needs low < n first.
            near = np.nonzero(live & (low < bound))
            if near[0].size:
                n = bound[near]
                bad = low[near] < (np.uint64(1 << 32) - n) % n
                rejected[near[1][bad]] = True
            picks[start:stop] = prod >> _U32
        clean = ~rejected
        self._commit(rows[clean], peeked[:, clean], sizes[clean] - 1)
        for index in np.flatnonzero(rejected):
            picks[:, index] = self._lemire_row(rows[index : index + 1], int(sizes[index]), steps)
        return picks

    def _lemire_row(self, row: np.ndarray, size: int, steps: int) -> np.ndarray:
        """Go's Shuffle picks for one row, drawing one at a time."""
        picks = np.zeros(steps, dtype=np.int64)
        for step, i in enumerate(range(size - 1, 0, -1)):
            n = i + 1
            while True:
                prod = ((int(self._draw(row)[0]) & MASK63) >> 31) * n
                low = prod & MASK32
                if low >= n or low >= ((1 << 32) - n) % n:
                    break
            picks[step] = prod >> 32
        return picks
