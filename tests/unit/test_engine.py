"""The rules on hand-written turns (every elimination cause and its credit), the
engine's invariants over many random turns, and the JSON contract's errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from engine_scenarios import SCENARIOS

from ouroboros.trainer.agents.simple import RandomSafe
from ouroboros.trainer.commands import rules as rules_cmd
from ouroboros.trainer.engine import jsonio, maps, rules
from ouroboros.trainer.engine.types import GameConfig, Ruleset

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario_outcome(scenario):
    out = rules_cmd.step_line(scenario.request())
    got = {s["id"]: (s["eliminatedCause"], s["eliminatedBy"]) for s in out["board"]["snakes"]}
    assert got == scenario.expect
    for s in out["board"]["snakes"]:
        if s["eliminatedCause"] and s["id"] in scenario.moves:
            assert s["eliminatedOnTurn"] == scenario.turn + 1
    assert out["turn"] == scenario.turn + 1


def test_feeding_grows_and_heals():
    out = rules_cmd.step_line(next(s for s in SCENARIOS if s.name == "eating-saves-from-starving").request())
    a = out["board"]["snakes"][0]
    assert a["health"] == 100 and len(a["body"]) == 3 and a["body"][-1] == a["body"][-2]
    assert out["board"]["food"] == []


def test_royale_shrinks_the_box():
    out = rules_cmd.step_line(next(s for s in SCENARIOS if s.name == "royale-shrink-turn").request())
    assert len(out["board"]["hazards"]) > 0  # t = 9, N = 3: three rows or columns are hazards
    xs = {h["x"] for h in out["board"]["hazards"]} | {h["y"] for h in out["board"]["hazards"]}
    assert xs & {0, 6}


@pytest.mark.parametrize("ruleset", list(Ruleset))
def test_invariants_hold_over_random_games(ruleset):
    """occ equals the recount from bodies; heads distinct among the living; health in range."""
    n = 1 if ruleset is Ruleset.SOLO else 4
    cfg = GameConfig(width=11, height=11, n_snakes=n, ruleset=ruleset)
    state = maps.new_games(cfg, np.arange(1, 33))
    rng = np.random.default_rng(0)
    for _ in range(150):
        rules.advance(cfg, state, RandomSafe().act_all(cfg, state, rng))
        check = state.copy()
        check.rebuild_occ()
        np.testing.assert_array_equal(check.occ, state.occ)
        assert (state.health[state.alive] > 0).all() and (state.health <= 100).all()
        heads = np.where(state.alive, state.heads, -np.arange(n) - 1)
        assert all(len(set(row)) == n for row in heads.tolist())


def test_step_is_pure():
    cfg = GameConfig(width=11, height=11, n_snakes=2)
    state = maps.new_games(cfg, [7])
    before = state.copy()
    rules.step(cfg, state, np.zeros((1, 2), np.int8))
    for name in ("body", "head_ptr", "health", "food", "occ", "turn"):
        np.testing.assert_array_equal(getattr(before, name), getattr(state, name))


BAD_LINES = [
    ("{not json", "line 1: not valid JSON"),
    ("[1, 2]", "line 1: expected a JSON object"),
    ('{"ruleset": {"name": "chess"}, "turn": 0, "board": {}}', "line 1: ruleset.name: unknown ruleset 'chess'"),
    ('{"ruleset": {"name": "standard"}, "board": {"width": 7, "height": 7, "snakes": []}}', "line 1: turn: required"),
    ('{"ruleset": {"name": "standard"}, "turn": "3", "board": {}}', "line 1: turn: expected an integer, got str"),
    ('{"ruleset": {"name": "standard"}, "turn": 1, "board": {"width": 7, "height": 7, "snakes": '
     '[{"id": "a", "body": [{"x": 9, "y": 1}]}]}}', "line 1: board.snakes[0].body[0]: (9, 1) is outside the 7x7 board"),
    ('{"ruleset": {"name": "standard"}, "turn": 1, "board": {"width": 7, "height": 7, "snakes": '
     '[{"id": "a", "body": [{"x": 1, "y": 1}]}]}, "moves": {"zz": "up"}}', "line 1: moves.zz: no snake on the board"),
    ('{"ruleset": {"name": "standard", "settings": {"minimumFood": "1"}}, "turn": 1, "board": {}}',
     "line 1: ruleset.settings.minimumFood: expected an integer"),
    ('{"ruleset": {"name": "standard"}, "turn": 1, "board": {"width": 7, "height": 7, "snakes": '
     '[{"id": "a", "body": []}]}}', "line 1: board.snakes[0].body: a snake needs at least one segment"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES, ids=[m.split(": ")[1] for _, m in BAD_LINES])
def test_malformed_lines_name_line_and_field(line, message):
    with pytest.raises(jsonio.InputError) as err:
        list(rules_cmd.run([line], rules_cmd.step_line))
    assert message in str(err.value)


def test_cli_reports_errors_on_stderr_and_keeps_earlier_answers():
    good = json.dumps(SCENARIOS[0].request())
    proc = subprocess.run([sys.executable, "-m", "ouroboros.trainer.commands.cli", "rules", "step"],
                          input=good + "\n" + '{"ruleset": {"name": "standard"}, "turn": -1}\n',
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert len(proc.stdout.splitlines()) == 1
    assert "line 2: board: required field is missing" in proc.stderr


def test_init_matches_documented_placement():
    out = rules_cmd.init_line({"ruleset": {"name": "standard"}, "map": "standard", "seed": 3,
                               "width": 11, "height": 11, "snakes": ["a", "b", "c", "d"]})
    heads = {(s["body"][0]["x"], s["body"][0]["y"]) for s in out["board"]["snakes"]}
    assert heads <= {(1, 1), (1, 9), (9, 1), (9, 9), (1, 5), (5, 1), (5, 9), (9, 5)}
    assert {"x": 5, "y": 5} in out["board"]["food"] and len(out["board"]["food"]) == 5
    assert all(len(s["body"]) == 3 and s["health"] == 100 for s in out["board"]["snakes"])


def test_rings_widen_when_snakes_outgrow_them():
    """Constrictor snakes grow every turn: the ring buffers must double without losing a segment."""
    cfg = GameConfig(width=19, height=19, n_snakes=2, ruleset=Ruleset.CONSTRICTOR)
    state = maps.new_games(cfg, np.arange(1, 9))
    start = state.capacity
    rng = np.random.default_rng(1)
    for _ in range(60):
        rules.advance(cfg, state, RandomSafe().act_all(cfg, state, rng))
    assert state.length.max() > start and state.capacity >= state.length.max()
    check = state.copy()
    check.rebuild_occ()
    np.testing.assert_array_equal(check.occ, state.occ)
    for g in range(8):
        for s in range(2):
            cells = state.snake_cells(g, s)
            x, y = state.board.xy(cells[1:])
            # consecutive segments are neighbours or doubled: the ring kept the body's order
            steps = np.abs(np.diff(x)) + np.abs(np.diff(y)) if cells.size > 2 else np.array([1])
            assert (steps <= 1).all()
