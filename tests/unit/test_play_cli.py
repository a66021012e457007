"""`ouro play` with tiny budgets: the table a user reads and the logs other tools replay.

The log checks follow the official CLI's writer (rules v1.2.3 cli/commands/output.go
and play.go): a game line, one `/move` request per turn from turn 0 to the
game-over turn, then `{winnerId, winnerName, isDraw}`. Replaying a log with our
engine (moves inferred from the heads, the seed from the command line) must
reproduce every next board.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from ouroboros.trainer.commands import cli, play
from ouroboros.trainer.engine import jsonio, rules
from ouroboros.trainer.engine.types import GameMap, Move, Ruleset, RulesetSettings

pytestmark = pytest.mark.unit

GAME_KEYS = {"id", "ruleset", "map", "timeout", "source"}
SNAKE_KEYS = {"id", "name", "latency", "health", "body", "head", "length", "shout", "squad", "customizations"}


def test_four_player_match_prints_the_results_table(capsys):
    code = play.main(["--players", "heuristic,search:ms=5,greedy,random-safe", "--games", "2",
                      "--max-turns", "40", "--render", "1", "--seed", "3"])
    out = capsys.readouterr().out
    assert code == 0
    for word in ("heuristic", "search:ms=5", "greedy", "random-safe", "wins", "draws", "losses",
                 "game 1 (seed 4)", "turn 0", "mean game length"):
        assert word in out
    table = out[out.index("player"):]
    rows = [line for line in table.splitlines() if "random-safe" in line]
    cells = [c.strip() for c in rows[0].split("│") if c.strip()]
    assert sum(int(c) for c in cells[1:4]) == 2  # wins + draws + losses = games


def test_render_final_prints_one_board(capsys):
    assert play.main(["--players", "greedy,random-safe", "--render-final", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("game 0 (seed 1)") == 1


def test_dispatch_and_errors(capsys):
    assert cli.main(["play", "--players", "greedy,random-safe", "--games", "1"]) == 0
    assert play.main(["--players", "greedy,nobody"]) == 2
    assert "unknown player 'nobody'" in capsys.readouterr().err
    assert play.main(["--players", "greedy,greedy", "--games", "2", "--render", "5"]) == 2
    assert play.main(["--players", "greedy", "--ruleset", "standard"]) == 2


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("ruleset", ["standard", "royale"])
def test_logs_have_the_official_shape_and_replay(tmp_path, ruleset):
    out = tmp_path / "game.jsonl"
    args = ["--players", "greedy,random-safe,heuristic", "--games", "2", "--seed", "11", "-o", str(out),
            "--ruleset", ruleset, "--shrink-every-n-turns", "5", "--food-spawn-chance", "30"]
    assert play.main(args) == 0
    paths = [tmp_path / "game-0.jsonl", tmp_path / "game-1.jsonl"]
    for index, path in enumerate(paths):
        lines = _read(path)
        game, turns, result = lines[0], lines[1:-1], lines[-1]
        assert set(game) == GAME_KEYS
        assert game["ruleset"]["name"] == ruleset and game["ruleset"]["version"] == "cli"
        assert game["ruleset"]["settings"]["royale"] == {"shrinkEveryNTurns": 5}
        assert set(result) == {"winnerId", "winnerName", "isDraw"}
        assert [t["turn"] for t in turns] == list(range(len(turns)))
        for t in turns:
            assert set(t) == {"game", "turn", "board", "you"} and t["game"] == game
            assert set(t["board"]) == {"height", "width", "snakes", "food", "hazards"}
            assert t["you"]["id"] == "snake-0"
            for snake in [*t["board"]["snakes"], t["you"]]:
                assert set(snake) == SNAKE_KEYS and isinstance(snake["latency"], str)
                assert snake["head"] == snake["body"][0] and snake["length"] == len(snake["body"])
        living = [s["id"] for s in turns[-1]["board"]["snakes"]]
        assert len(living) <= 1  # the log ends on the game-over turn
        assert len([s["id"] for s in turns[-2]["board"]["snakes"]]) >= 2
        if living:
            assert result == {"winnerId": living[0], "winnerName": turns[-1]["board"]["snakes"][0]["name"],
                              "isDraw": False}
        else:
            assert result == {"winnerId": "", "winnerName": "", "isDraw": True}
        _replay(turns, seed=11 + index, ruleset=ruleset)


def _replay(turns: list[dict], seed: int, ruleset: str) -> None:
    """Every next board follows from the previous one by some moves under our engine."""
    settings = turns[0]["game"]["ruleset"]["settings"]
    kw = {"ruleset": Ruleset(ruleset), "game_map": GameMap.STANDARD,
          "settings": RulesetSettings(settings["foodSpawnChance"], settings["minimumFood"],
                                      settings["hazardDamagePerTurn"], settings["royale"]["shrinkEveryNTurns"])}
    for before, after in itertools.pairwise(turns):
        g = jsonio.parse_board(before["board"], kw, before["turn"], seed)
        heads = {s["id"]: s["head"] for s in after["board"]["snakes"]}
        known, unknown = [], []
        for sid, snake in zip(g.ids, before["board"]["snakes"], strict=True):
            if sid in heads:
                dx = heads[sid]["x"] - snake["head"]["x"]
                dy = heads[sid]["y"] - snake["head"]["y"]
                known.append({(0, 1): Move.UP, (0, -1): Move.DOWN, (-1, 0): Move.LEFT, (1, 0): Move.RIGHT}[(dx, dy)])
            else:
                known.append(None)
                unknown.append(len(known) - 1)
        want = _canonical(after["board"])
        for guess in itertools.product(range(4), repeat=len(unknown)):
            moves = np.array([known], np.int8) if not unknown else np.array(
                [[m if m is not None else guess[unknown.index(i)] for i, m in enumerate(known)]], np.int8)
            new = rules.step(g.config, g.state, moves)
            got = jsonio.board_json(jsonio.Game(g.config, new, g.ids), living_only=True)
            if _canonical(got) == want:
                break
        else:
            raise AssertionError(f"turn {before['turn']} -> {after['turn']} does not replay")


def _canonical(board: dict) -> dict:
    key = lambda p: (p["x"], p["y"])  # noqa: E731
    return {
        "food": sorted(board["food"], key=key),
        "hazards": sorted(board["hazards"], key=key),
        "snakes": [(s["id"], s["health"], s["body"]) for s in board["snakes"]],
    }


def test_solo_reports_survival_not_wins(capsys):
    assert play.main(["--players", "heuristic", "--ruleset", "solo", "--width", "7", "--height", "7"]) == 0
    out = capsys.readouterr().out
    assert "mean turns survived" in out and "wins" not in out


@pytest.mark.parametrize(("argv", "line"), [
    (["--seed", "-1"], "ouro play: --seed must not be negative, got -1"),
    (["--max-turns", "-5"], "ouro play: --max-turns must not be negative, got -5"),
])
def test_a_negative_seed_or_turn_limit_is_refused_naming_the_flag(capsys, argv, line):
    assert play.main(["--players", "greedy,random-safe", *argv]) == 2
    assert capsys.readouterr().err.strip() == line
