"""The torch engine (`engine.torch_rules`) against the NumPy engine, field by field, on
the CPU: every ruleset and map, random and invalid moves, stacked hazards, the seeded
food and royale shrinks. (No GPU is needed; the same code runs on one.)"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_engine_kernel import _assert_same  # noqa: E402

from ouroboros.trainer.agents.simple import RandomSafe  # noqa: E402
from ouroboros.trainer.engine import maps, rules, torch_rules  # noqa: E402
from ouroboros.trainer.engine.types import (  # noqa: E402
    EngineBackend,
    GameConfig,
    GameMap,
    Ruleset,
    RulesetSettings,
)

pytestmark = pytest.mark.unit

CASES = [(r, m, size) for r in Ruleset for m in GameMap for size in (7, 11)]


@pytest.mark.parametrize(("ruleset", "game_map", "size"), CASES,
                         ids=[f"{r.value}-{m.value}-{s}" for r, m, s in CASES])
def test_torch_turns_equal_numpy_turns(ruleset, game_map, size):
    n = 1 if ruleset is Ruleset.SOLO else {7: 2, 11: 4}[size]
    cfg = GameConfig(size, size, n, ruleset, game_map, RulesetSettings(25, 2, 30, 3))
    ref = maps.new_games(cfg, np.arange(1, 33))
    rng = np.random.default_rng(size)
    for g in range(0, 32, 3):
        np.add.at(ref.hazard[g], rng.choice(ref.board.column_major_cells, size), 1)
    fast = torch_rules.TorchState.from_batch(ref)
    for turn in range(120):
        moves = RandomSafe().act_all(cfg, ref, rng)
        wild = rng.random(moves.shape) < 0.1
        moves[wild] = rng.integers(-1, 6, int(wild.sum()))
        rules.advance(cfg, ref, moves, EngineBackend.NUMPY)
        torch_rules.advance(cfg, fast, torch.from_numpy(moves.astype(np.int64)))
        _assert_same(ref, fast.to_batch(), f"turn {turn}")


def test_torch_engine_refuses_what_it_cannot_draw():
    cfg = GameConfig(19, 19, 2, settings=RulesetSettings(100, 1, 14, 25))
    state = torch_rules.TorchState.from_batch(maps.new_games(cfg, [1]))
    with pytest.raises(NotImplementedError, match="273rd draw"):
        torch_rules.advance(cfg, state, torch.zeros((1, 2), dtype=torch.int64))


def test_engine_core_never_imports_torch():
    code = ("import sys; from ouroboros.trainer.engine import rules, maps, kernel, jsonio; "
            "from ouroboros.trainer.agents import simple; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
