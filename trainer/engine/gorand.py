"""Go's math/rand generator, bit for bit: the algorithm, its seeding, and `GoRand` (one generator).

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

Typical batched use (`gorand_batch.GoRandBatch`): the standard map's per-turn
food for N games (a row below minimumFood skips the roll and shuffles right away):

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
