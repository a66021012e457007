"""What the engine accepts from JSON, stated once.

Every reader of game JSON (`ouro rules step|init` and the snake server's
request parser, both through `engine.jsonio`) checks its input against a
`Limits` before building a state, so that time and memory are bounded by the
board, never by a number in the request, and no count can wrap an integer
array of the state (`BatchState.occ` and `BatchState.hazard` are int16).

Two sets:

- `RULES`: the games the engine reproduces exactly, checked turn by turn
  against the official engine (`tests/integration/test_engine_vs_official.py`,
  `tests/integration/test_hostile_rules.py`). `ouro rules step` and `init`
  refuse anything beyond them with `line N: field.path: reason`.
- `SERVING`: what the snake server still plays. Games the official engine
  runs but our rules do not model (9 to 16 snakes, boards up to 64 a side) are
  read into the same state and answered by a player that only needs the
  state's geometry (a safe-move player), never refused.

Why these numbers: 25 is the largest board the official game modes use and
the largest our differential tests cover; 8 snakes is what the official
fixed placement supports and what we model; 16 snakes is the most the
official engine places. A body of 1,024 segments is longer than any snake
that fits on a 25x25 board (625 cells, plus stacked segments), and 8 such
bodies stacked on one cell stay below int16's 32,767 (16 such bodies too);
a cell holds at most 16 hazard entries (maps stack a few), far below it. Integers the game engine sends (turn, health, settings,
eliminatedOnTurn, timeout) fit a signed 32-bit integer; a seed is a Go int64.
"""

from __future__ import annotations

import dataclasses

INT32_MAX = 2**31 - 1
"""Largest turn, health, setting, `eliminatedOnTurn` or timeout accepted (and its negative)."""
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""Range of a seed (Go's `int64`)."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """Sizes a board read from JSON may have; beyond them it is refused with the field named."""

    max_side: int
    """Largest `width` and `height`, in cells (the smallest is 1)."""
    max_snakes: int
    """Most snakes on a board, eliminated ones included (the fewest is 1)."""
    max_body: int = 1024
    """Most segments in one snake's body, stacked ones included."""
    max_hazard_stack: int = 16
    """Most entries of the `hazards` list on one cell (duplicates stack their damage)."""

    def describe(self) -> str:
        """One line for help texts and errors."""
        return (f"1 to {self.max_snakes} snakes, boards 1..{self.max_side} per side, bodies of "
                f"at most {self.max_body} segments, at most {self.max_hazard_stack} hazards on one cell")


RULES = Limits(max_side=25, max_snakes=8)
"""Games the engine plays exactly as the official engine does (`ouro rules`, training)."""
SERVING = Limits(max_side=64, max_snakes=16)
"""Games the snake server answers; beyond `RULES` a safe-move player plays them."""

assert SERVING.max_snakes * SERVING.max_body < 2**15, "stacked bodies must fit BatchState.occ (int16)"
assert SERVING.max_hazard_stack < 2**15, "stacked hazards must fit BatchState.hazard (int16)"


def within(limits: Limits, width: int, height: int, n_snakes: int) -> bool:
    """True when a board of this size and snake count is inside `limits`."""
    return 1 <= width <= limits.max_side and 1 <= height <= limits.max_side and \
        1 <= n_snakes <= limits.max_snakes
