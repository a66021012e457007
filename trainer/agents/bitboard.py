"""Row bitboards: flood fills over thousands of boards at once in a few integer ops.

The heuristic teacher asks "how much room is there behind this move?" for every
candidate move of every snake of every game, i.e. tens of thousands of flood
fills per call. On boolean [N, P] grids each dilation step touches every cell;
packed as one unsigned integer per padded row (bit x+1 of row y+1 is cell
(x, y), the engine's padded layout), a step is two shifts and two row slices on
an [N, H+2] array, about 13x less memory traffic on 11x11.

Padding rows and columns are never "free", so a shift that leaves the board is
masked out by the free mask; wrapped rulesets add the cells that re-enter on the
opposite edge explicitly.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from ouroboros.trainer.engine.state import Board


def popcount(rows: np.ndarray) -> np.ndarray:
    """Set bits per board. rows [..., Hp] -> [...] int64."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(rows).sum(axis=-1, dtype=np.int64)
    as_bytes = rows.view(np.uint8).reshape(*rows.shape[:-1], -1)  # numpy < 2.0
    return np.unpackbits(as_bytes, axis=-1).sum(axis=-1, dtype=np.int64)


@dataclasses.dataclass(frozen=True)
class RowBits:
    """Bitboard arithmetic for one board size. Hp = height + 2 rows of Wp = width + 2 bits."""

    board: Board
    wraps: bool = False

    @property
    def rows(self) -> int:
        """Padded rows (Hp)."""
        return self.board.height + 2

    @functools.cached_property
    def dtype(self) -> type:
        """Smallest unsigned integer that holds a padded row."""
        bits = self.board.width + 2
        if bits > 64:
            raise ValueError(f"board width {self.board.width} too wide for row bitboards (max 62)")
        return np.uint16 if bits <= 16 else np.uint32 if bits <= 32 else np.uint64

    def pack(self, grid: np.ndarray) -> np.ndarray:
        """Boolean cells to row bitboards. grid [..., P] bool -> [..., Hp] uint."""
        w, hp = self.board.width + 2, self.rows
        cells = grid.reshape(*grid.shape[:-1], hp, w)
        packed = np.packbits(cells, axis=-1, bitorder="little")  # [..., Hp, ceil(Wp/8)] uint8
        out = packed[..., 0].astype(self.dtype)
        for k in range(1, packed.shape[-1]):
            out |= packed[..., k].astype(self.dtype) << self.dtype(8 * k)
        return out

    def unpack(self, rows: np.ndarray) -> np.ndarray:
        """Row bitboards to boolean cells. rows [..., Hp] uint -> [..., P] bool."""
        w = self.board.width + 2
        as_bytes = rows.astype(self.dtype, copy=False).view(np.uint8)
        bits = np.unpackbits(as_bytes.reshape(*rows.shape, -1), axis=-1, bitorder="little")
        return bits[..., :w].astype(bool).reshape(*rows.shape[:-1], self.rows * w)

    def single(self, cells: np.ndarray) -> np.ndarray:
        """One-cell bitboards. cells [...] padded cell indices -> [..., Hp] uint."""
        cells = np.asarray(cells)
        w = self.board.width + 2
        out = np.zeros((*cells.shape, self.rows), self.dtype)
        row, bit = np.divmod(cells, w)
        np.put_along_axis(out, row[..., None], (self.dtype(1) << bit.astype(self.dtype))[..., None], axis=-1)
        return out

    def dilate(self, r: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """r plus its four neighbours, ANDed with `mask` (broadcast) when given. [..., Hp] -> same."""
        one = self.dtype(1)
        d = r << one
        d |= r
        d |= r >> one
        d[..., 1:] |= r[..., :-1]
        d[..., :-1] |= r[..., 1:]
        if self.wraps:
            w, h = self.board.width, self.board.height
            left, right = one << one, one << self.dtype(w)  # bits of x = 0 and x = w - 1
            shift = self.dtype(w - 1)
            d |= (r & left) << shift  # leaving at x = 0 re-enters at x = w - 1
            d |= (r & right) >> shift
            d[..., h] |= r[..., 1]  # leaving at y = 0 re-enters at y = h - 1
            d[..., 1] |= r[..., h]
        if mask is not None:
            d &= mask
        return d
