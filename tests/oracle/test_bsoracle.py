"""The oracle harness itself: bsoracle answers as the official CLI would.

These pin the wire semantics other tests rely on (README.md), and check the
standard map's food spawning end to end against the Python Go-rand port.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ouroboros.trainer.engine.gorand import GoRand

from .client import OracleError, run_oracle

pytestmark = pytest.mark.integration

CLI_RULESET = {
    "name": "standard",
    "settings": {
        "foodSpawnChance": 15,
        "minimumFood": 1,
        "hazardDamagePerTurn": 14,
        "royale": {"shrinkEveryNTurns": 25},
    },
}


def pts(*xy: tuple[int, int]) -> list[dict]:
    return [{"x": x, "y": y} for x, y in xy]


def snake(sid: str, *body: tuple[int, int], health: int = 90) -> dict:
    return {"id": sid, "health": health, "body": pts(*body)}


def board(snakes: list[dict], food: list[dict] | None = None, size: int = 11) -> dict:
    return {"width": size, "height": size, "food": food or [], "hazards": [], "snakes": snakes}


def test_init_places_snakes_and_food_reproducibly(oracle: Path) -> None:
    line = {"ruleset": CLI_RULESET, "map": "standard", "seed": 77, "width": 11, "height": 11,
            "snakes": ["a", "b", "c", "d"]}
    first, again = run_oracle(oracle, "init", [line, line])
    assert first == again
    assert first["turn"] == 0 and first["gameOver"] is False
    heads = set()
    for s in first["board"]["snakes"]:
        assert s["health"] == 100 and len(s["body"]) == 3 and s["eliminatedCause"] == ""
        assert all(p == s["body"][0] for p in s["body"])
        heads.add((s["body"][0]["x"], s["body"][0]["y"]))
    assert len(heads) == 4
    assert {"x": 5, "y": 5} in first["board"]["food"] and len(first["board"]["food"]) == 5


def test_seed_zero_is_refused(oracle: Path) -> None:
    line = {"ruleset": CLI_RULESET, "map": "standard", "seed": 0, "width": 11, "height": 11,
            "snakes": ["a"]}
    (answer,) = run_oracle(oracle, "init", [line], strict=False)
    assert "seed 0" in answer["error"]
    with pytest.raises(OracleError):
        run_oracle(oracle, "init", [line])


def test_missing_move_uses_the_default_move(oracle: Path) -> None:
    line = {
        "ruleset": {"name": "standard", "settings": {}}, "map": "empty", "seed": 5, "turn": 3,
        "board": board([snake("a", (3, 3), (2, 3), (1, 3)), snake("b", (8, 8), (8, 8), (8, 8))]),
        "moves": {},
    }
    (answer,) = run_oracle(oracle, "step", [line])
    a, b = answer["board"]["snakes"]
    assert a["body"][0] == {"x": 4, "y": 3}  # neck to head: right
    assert b["body"][0] == {"x": 8, "y": 9}  # stacked body: up
    assert answer["turn"] == 4 and answer["gameOver"] is False
    assert a["health"] == 89


def test_head_to_head_ends_the_game_on_the_new_state(oracle: Path) -> None:
    line = {
        "ruleset": {"name": "standard", "settings": {}}, "map": "empty", "seed": 5, "turn": 10,
        "board": board([snake("a", (4, 5), (3, 5), (2, 5)), snake("b", (6, 5), (7, 5), (8, 5))]),
        "moves": {"a": "right", "b": "left"},
    }
    (answer,) = run_oracle(oracle, "step", [line])
    causes = [(s["eliminatedCause"], s["eliminatedBy"], s["eliminatedOnTurn"])
              for s in answer["board"]["snakes"]]
    assert causes == [("head-collision", "b", 11), ("head-collision", "a", 11)]
    assert answer["gameOver"] is True and answer["executeGameOver"] is False
    # Stepping a finished game: Execute stops at its game-over stage.
    again = dict(line, turn=11, board=answer["board"], moves={})
    (after,) = run_oracle(oracle, "step", [again])
    assert after["executeGameOver"] is True and after["board"]["snakes"] == answer["board"]["snakes"]


def test_solo_game_over_needs_no_snake_left(oracle: Path) -> None:
    solo = {"name": "solo", "settings": {}}
    line = {"ruleset": solo, "map": "empty", "seed": 9, "turn": 1,
            "board": board([snake("a", (4, 5), (3, 5), (2, 5))]), "moves": {"a": "up"}}
    (alive,) = run_oracle(oracle, "step", [line])
    assert alive["gameOver"] is False
    (standard,) = run_oracle(oracle, "step", [dict(line, ruleset=CLI_RULESET)])
    assert standard["gameOver"] is True


def free_cells(b: dict) -> list[tuple[int, int]]:
    """GetUnoccupiedPoints(b, false, false): x-major, then y."""
    taken = {(p["x"], p["y"]) for p in b["food"]}
    for s in b["snakes"]:
        if s.get("eliminatedCause"):
            continue
        taken |= {(p["x"], p["y"]) for p in s["body"]}
        hx, hy = s["body"][0]["x"], s["body"][0]["y"]
        taken |= {(hx - 1, hy), (hx + 1, hy), (hx, hy - 1), (hx, hy + 1)}
    return [(x, y) for x in range(b["width"]) for y in range(b["height"]) if (x, y) not in taken]


@pytest.mark.parametrize("seed", [1, -3, 2**40 + 17, 123456])
def test_standard_map_spawns_food_with_go_rand(oracle: Path, seed: int) -> None:
    """Food spawned after turn t is Go's Shuffle of the free cells under seed + t."""
    ruleset = {"name": "standard", "settings": {"foodSpawnChance": 60, "minimumFood": 2}}
    lines, expected = [], []
    for turn in range(12):
        food = pts(*[(0, 0), (10, 10)][: turn % 3])  # 2, 1 or 0 short of minimumFood
        before = board([snake("a", (5, 5), (5, 4), (5, 3)), snake("b", (1, 8), (1, 7), (1, 6))], food)
        lines.append({"ruleset": ruleset, "map": "standard", "seed": seed, "turn": turn,
                      "board": before, "moves": {"a": "left", "b": "right"}})
        moved = board([snake("a", (4, 5), (5, 5), (5, 4)), snake("b", (2, 8), (1, 8), (1, 7))], food)
        rng = GoRand(seed + turn)
        if len(food) < 2:
            n_new = 2 - len(food)
        else:
            n_new = 1 if (100 - rng.intn(100)) < 60 else 0
        cells = free_cells(moved)
        new = []
        if n_new:
            order = rng.permutation(len(cells))
            new = [cells[i] for i in order[:n_new]]
        expected.append(food + pts(*new))
    answers = run_oracle(oracle, "step", lines)
    assert [a["board"]["food"] for a in answers] == expected


def test_bench_reports_speed(oracle: Path) -> None:
    proc = subprocess.run(
        [str(oracle), "bench", "--games", "3", "--snakes", "4", "--seconds", "10"],
        capture_output=True, text=True, check=True, env={"GOMAXPROCS": "1"},
    )
    result = json.loads(proc.stdout)
    assert result["games"] == 3 and result["turns"] > 0 and result["env_steps_per_sec"] > 0


def test_rand_flag_form_matches_line_form(oracle: Path) -> None:
    proc = subprocess.run(
        [str(oracle), "rand", "--seed", "-42", "--ops", "int63x2,intn:100x3,shuffle:5"],
        capture_output=True, text=True, check=True,
    )
    flags = json.loads(proc.stdout)
    ops = [{"op": "int63", "count": 2}, {"op": "intn", "n": 100, "count": 3},
           {"op": "shuffle", "n": 5}]
    (lines,) = run_oracle(oracle, "rand", [{"seed": -42, "ops": ops}])
    assert flags == lines
    g = GoRand(-42)
    assert flags["results"] == [[g.int63(), g.int63()], [g.intn(100) for _ in range(3)],
                                g.permutation(5)]
