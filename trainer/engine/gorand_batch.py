"""Go's math/rand generator for a whole batch of seeds at once (see `gorand` for the algorithm).

`GoRandBatch` holds N independent generators and draws from any subset of
them per call, exactly as N `GoRand`s would; the engine seeds one per game and
turn (`seed + turn`) for the standard map's food, and one per game for setup
and royale. Fresh rows stay lazy (two seeded table entries per draw) until
their 273rd draw; only rows that go further get a 607-entry table.
"""

from __future__ import annotations

import numpy as np

from ouroboros.trainer.engine.gorand import (
    _U31,
    _U32,
    _U_MASK32,
    _U_MASK63,
    FEED_START,
    INT32_MAX,
    INT63_MAX,
    MASK32,
    MASK63,
    RNG_LEN,
    RNG_TAP,
    _chunks,
    _fresh_draws,
    _lazy_draws,
    _reduce_seeds,
    _seeded_tables,
)


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
