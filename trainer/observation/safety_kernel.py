"""Compiled safe-move masks and the random-safe choice (numba), equal to `safety`'s NumPy code.

`safety.safe_moves` and `simple.RandomSafe` run these: the random-safe player
is the benchmarks' yardstick and the data generator of the imitation phase, so
its cost per turn sits next to the engine's in every timed loop. The kernel
answers one (game, snake, move) at a time: a target cell is safe when it is on
the board and no segment will be on it after the move (see `safety`), which
is `occ` plus the living heads (they become necks) minus the tails that move
on, counted only at the four cells a head can reach.

The random choice takes its uniforms from the caller's `np.random.Generator`
in one `rng.random(shape)` call, as `safety.choose` does, so the moves are
exactly those of `safety.choose` on the same generator. (Passing the
Generator itself into a numba function costs about 27 us a call here, more
than a whole B=1 turn.)
"""

from __future__ import annotations

import numba
import numpy as np

from ouroboros.trainer.engine import kernel
from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import GameConfig

_jit = numba.njit(cache=True, nogil=True)


@_jit
def _safe_and_choose(body, head_ptr, length, alive, occ, params, uniform, safe, choice):
    """safe[g, s, k] = move k of snake s in game g is safe (bool [B, S, 4]); if `uniform`
    has rows, also choice[g, s] = argmax_k safe + uniform * 1e-3 (as `safety.choose`)."""
    n_games, n_snakes, cap = body.shape
    stride, width, height = params[kernel.P_STRIDE], params[kernel.P_WIDTH], params[kernel.P_HEIGHT]
    wraps = params[kernel.P_WRAPS] != 0
    inside, wrap, delta, _ = kernel._geometry(stride, width, height, occ.shape[1])
    heads = np.zeros(n_snakes, np.int64)
    tails = np.zeros(n_snakes, np.int64)  # -1: the tail stays (doubled, or no tail)
    choose = uniform.shape[0] > 0
    for g in range(n_games):
        for s in range(n_snakes):
            ptr, n = head_ptr[g, s], length[g, s]
            heads[s] = body[g, s, ptr % cap]
            tail = body[g, s, (ptr + n - 1) % cap]
            moves_on = alive[g, s] and n >= 2 and tail != body[g, s, (ptr + max(n - 2, 0)) % cap]
            tails[s] = tail if moves_on else -1
        for s in range(n_snakes):
            best, pick = -1.0, 0
            for k in range(4):
                ok = False
                if alive[g, s]:
                    cell = heads[s] + delta[k]
                    if wraps:
                        cell = wrap[cell]
                    if inside[cell]:
                        taken = np.int64(occ[g, cell])
                        for o in range(n_snakes):
                            if alive[g, o] and heads[o] == cell:
                                taken += 1
                            if tails[o] == cell:
                                taken -= 1
                        ok = taken == 0
                safe[g, s, k] = ok
                if choose:
                    v = (1.0 if ok else 0.0) + uniform[g, s, k] * 1e-3
                    if v > best:
                        best, pick = v, k
            if choose:
                choice[g, s] = pick


_NO_UNIFORM = np.zeros((0, 0, 4))
_NO_CHOICE = np.zeros((0, 0), np.int8)


def safe_moves(config: GameConfig, state: BatchState) -> np.ndarray:
    """True where a move neither leaves the board nor runs into a body. Shape [B, S, 4] bool."""
    safe = np.empty((*state.alive.shape, 4), bool)
    _safe_and_choose(state.body, state.head_ptr, state.length, state.alive, state.occ,
                     kernel.params(config), _NO_UNIFORM, safe, _NO_CHOICE)
    return safe


def random_safe(config: GameConfig, state: BatchState, rng: np.random.Generator,
                seat: int | None = None) -> np.ndarray:
    """A uniformly random safe move per snake (any move if none is safe): [B, S] int8,
    or [B] for one `seat`. Draws from `rng` exactly as `safety.choose` would."""
    shape = state.alive.shape
    safe = np.empty((*shape, 4), bool)
    choice = np.empty(shape, np.int8)
    if seat is None:
        uniform = rng.random((*shape, 4))
    else:  # the draws of choose() on one seat's [B, 4], placed in that seat's column
        uniform = np.zeros((*shape, 4))
        uniform[:, seat] = rng.random((shape[0], 4))
    _safe_and_choose(state.body, state.head_ptr, state.length, state.alive, state.occ,
                     kernel.params(config), uniform, safe, choice)
    return choice if seat is None else choice[:, seat]
