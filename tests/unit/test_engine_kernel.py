"""The compiled engine (`engine.kernel`, the default backend) against the NumPy
reference, field by field, on every ruleset and map: random and invalid moves,
stacked hazards, resets of finished games in place. The official engine is the
judge of both in tests/integration/test_engine_vs_official.py (which runs the
default, compiled, backend)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ouroboros.trainer.agents.simple import RandomSafe
from ouroboros.trainer.engine import gorand, kernel, maps, rules
from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import (
    EngineBackend,
    GameConfig,
    GameMap,
    Ruleset,
    RulesetSettings,
)
from ouroboros.trainer.observation import safety

pytestmark = pytest.mark.unit

NUMPY = EngineBackend.NUMPY


@pytest.mark.parametrize("seed", [0, 1, -5, 2**31 - 1, 2**31, -(2**63), 2**63 - 1, 12345])
@pytest.mark.parametrize("bound", [2, 7, 100, 2**31 - 1])
def test_kernel_generator_is_gos(seed, bound):
    """700 draws: the lazy first 273 and the table built after them."""
    go = gorand.GoRand(seed)
    assert kernel.rng_draws(seed, 700, bound).tolist() == [go.intn(bound) for _ in range(700)]


def _assert_same(a: BatchState, b: BatchState, where: str) -> None:
    """Equal games; ring buffers are compared as bodies (head first), not as layouts."""
    cap = max(a.capacity, b.capacity)
    a, b = a.with_capacity(cap), b.with_capacity(cap)
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "body":
            live = np.arange(cap) < a.length[..., None]
            x, y = np.where(live, x, 0), np.where(live, y, 0)
        if isinstance(x, np.ndarray) and not np.array_equal(x, y):
            bad = np.argwhere(x != y)[:3].tolist()
            pytest.fail(f"{where}: {f.name} differs at {bad}")


CASES = [(r, m, size) for r in Ruleset for m in GameMap for size in (7, 11, 19)]


@pytest.mark.parametrize(("ruleset", "game_map", "size"), CASES,
                         ids=[f"{r.value}-{m.value}-{s}" for r, m, s in CASES])
def test_compiled_turns_equal_numpy_turns(ruleset, game_map, size):
    n = 1 if ruleset is Ruleset.SOLO else {7: 2, 11: 4, 19: 8}[size]
    cfg = GameConfig(size, size, n, ruleset, game_map, RulesetSettings(25, 2, 30, 3))
    ref = maps.new_games(cfg, np.arange(1, 33))
    rng = np.random.default_rng(size)
    for g in range(0, 32, 3):  # stacked hazards on some games: damage, the food exception
        np.add.at(ref.hazard[g], rng.choice(ref.board.column_major_cells, size), 1)
    fast = ref.copy()
    next_seed = 1000
    for turn in range(150):
        moves = RandomSafe().act_all(cfg, ref, rng)
        wild = rng.random(moves.shape) < 0.1  # out-of-range and missing moves: default move
        moves[wild] = rng.integers(-1, 6, int(wild.sum()))
        rules.advance(cfg, ref, moves, NUMPY)
        rules.advance(cfg, fast, moves)
        _assert_same(ref, fast, f"turn {turn}")
        over = np.flatnonzero(ref.game_over(ruleset is Ruleset.SOLO))
        if over.size and turn % 2:
            seeds = np.arange(next_seed, next_seed + over.size)
            next_seed += over.size
            maps.reset_games(cfg, ref, over, seeds, NUMPY)
            maps.reset_games(cfg, fast, over, seeds)
            _assert_same(ref, fast, f"reset after turn {turn}")


def test_compiled_step_is_pure_and_widens_rings():
    cfg = GameConfig(11, 11, 2, Ruleset.CONSTRICTOR)
    state = maps.new_games(cfg, [3, 4]).with_capacity(3)  # full rings: the first growth must widen
    before = state.copy()
    moves = np.full((2, 2), 2, np.int8)
    after = rules.step(cfg, rules.step(cfg, state, moves), moves)
    _assert_same(before, state, "input")
    ref = rules.step(cfg, rules.step(cfg, state, moves, NUMPY), moves, NUMPY)
    _assert_same(ref, after, "two constrictor turns")
    assert after.capacity > 3 and (after.length == 4).all()


@pytest.mark.parametrize("moves", [np.zeros((2, 3), np.int8), np.zeros((2, 2)), np.zeros(2, np.int8)])
def test_bad_moves_name_the_expected_shape(moves):
    cfg = GameConfig(11, 11, 2)
    with pytest.raises(ValueError, match=r"moves must be integers of shape \(2, 2\)"):
        rules.advance(cfg, maps.new_games(cfg, [1, 2]), moves)


def test_reset_games_checks_its_arguments():
    cfg = GameConfig(11, 11, 2)
    state = maps.new_games(cfg, [1, 2])
    with pytest.raises(ValueError, match="same length"):
        maps.reset_games(cfg, state, [0, 1], [5])
    with pytest.raises(ValueError, match="does not match the state"):
        maps.reset_games(GameConfig(11, 11, 4), state, [0], [5])


@pytest.mark.parametrize("ruleset", [Ruleset.STANDARD, Ruleset.WRAPPED, Ruleset.CONSTRICTOR])
def test_compiled_safety_and_random_safe_equal_numpy(ruleset):
    """Same masks as `safety.safe_moves_reference`; the same moves as `safety.choose` on the
    same generator, for all seats and for one."""
    cfg = GameConfig(11, 11, 4, ruleset)
    state = maps.new_games(cfg, np.arange(1, 65))
    rng, ref_rng = np.random.default_rng(9), np.random.default_rng(9)
    for turn in range(120):
        np.testing.assert_array_equal(safety.safe_moves(cfg, state), safety.safe_moves_reference(cfg, state))
        want = safety.choose(safety.safe_moves_reference(cfg, state).astype(np.float64), ref_rng)
        moves = RandomSafe().act_all(cfg, state, rng)
        np.testing.assert_array_equal(moves, want, err_msg=f"turn {turn}")
        seat = turn % 4
        want_seat = safety.choose(safety.safe_moves_reference(cfg, state)[:, seat].astype(np.float64), ref_rng)
        np.testing.assert_array_equal(RandomSafe().act(cfg, state, seat, rng), want_seat)
        rules.advance(cfg, state, moves)
