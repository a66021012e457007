"""Hostile and extreme `ouro rules` inputs, shared by the unit tests (refusals, bounded
work) and the oracle tests (every accepted extreme answered as the official engine does).

`REFUSED`: (name, action, JSON line text, the field path the error must name).
`STEP_EXTREMES` / `INIT_EXTREMES`: requests at the edges of `engine.limits.RULES`
that must be accepted and answered exactly as by the official engine.
"""

from __future__ import annotations

import copy
import json

SETTINGS = {"foodSpawnChance": 0, "minimumFood": 0, "hazardDamagePerTurn": 14,
            "royale": {"shrinkEveryNTurns": 25}}


def pts(*cells: tuple[int, int]) -> list[dict]:
    return [{"x": x, "y": y} for x, y in cells]


def snake(sid: str, *cells: tuple[int, int], health: int = 90, **extra) -> dict:
    return {"id": sid, "health": health, "body": pts(*cells), "eliminatedCause": "",
            "eliminatedBy": "", "eliminatedOnTurn": 0, **extra}


def step(snakes: list[dict], moves: dict, *, name: str = "standard", size: int = 7,
         food=(), hazards=(), turn: int = 4, seed: int = 11, game_map: str = "empty",
         **settings) -> dict:
    """A `rules step` request."""
    merged = copy.deepcopy(SETTINGS)
    for key, value in settings.items():
        if key == "shrinkEveryNTurns":
            merged["royale"]["shrinkEveryNTurns"] = value
        else:
            merged[key] = value
    return {"ruleset": {"name": name, "settings": merged}, "map": game_map, "seed": seed,
            "turn": turn, "board": {"width": size, "height": size, "food": pts(*food),
                                    "hazards": pts(*hazards), "snakes": snakes},
            "moves": moves}


Z = snake("z", (6, 1), (6, 0))
"""A second snake out of the way: one living snake alone is a finished standard game."""


def two(**kw) -> dict:
    """The issue's example board: a at (2,2) facing up, b at (5,5) facing up."""
    return step([snake("a", (2, 2), (2, 1), health=50), snake("b", (5, 5), (5, 4))],
                {"a": "up", "b": "up"}, **kw)


def _with(request: dict, path: list, value) -> str:
    obj = copy.deepcopy(request)
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(obj)


def _raw(request: dict, path: list, literal: str) -> str:
    """The request with the value at `path` replaced by a raw JSON literal."""
    marker = "\"@@MARK@@\""
    return _with(request, path, "@@MARK@@").replace(marker, literal)


BASE = two()
BIG = "9" * 5000
REFUSED: list[tuple[str, str, str, str]] = [
    ("royale shrink 0", "step", json.dumps(two(name="royale", game_map="standard", shrinkEveryNTurns=0)),
     "ruleset.settings.royale.shrinkEveryNTurns"),
    ("royale shrink negative", "step", json.dumps(two(name="royale", shrinkEveryNTurns=-3)),
     "ruleset.settings.royale.shrinkEveryNTurns"),
    ("turn beyond int64", "step", _with(BASE, ["turn"], 2**63), "turn"),
    ("turn beyond int32", "step", _with(BASE, ["turn"], 2**31), "turn"),
    ("seed beyond int64", "step", _with(BASE, ["seed"], 2**63), "seed"),
    ("seed below int64", "step", _with(BASE, ["seed"], -(2**63) - 1), "seed"),
    ("health beyond int64", "step", _with(BASE, ["board", "snakes", 0, "health"], 2**64),
     "board.snakes[0].health"),
    ("eliminatedOnTurn beyond int64", "step",
     _with(BASE, ["board", "snakes", 1, "eliminatedOnTurn"], -(2**70)), "board.snakes[1].eliminatedOnTurn"),
    ("minimumFood beyond int32", "step", _with(BASE, ["ruleset", "settings", "minimumFood"], 2**40),
     "ruleset.settings.minimumFood"),
    ("foodSpawnChance beyond int64", "step",
     _with(BASE, ["ruleset", "settings", "foodSpawnChance"], 2**64), "ruleset.settings.foodSpawnChance"),
    ("hazard damage beyond int32", "step",
     _with(BASE, ["ruleset", "settings", "hazardDamagePerTurn"], -(2**33)), "ruleset.settings.hazardDamagePerTurn"),
    ("a 5,000-digit turn", "step", _raw(BASE, ["turn"], BIG), "line 1"),
    ("a 5,000-digit health", "step", _raw(BASE, ["board", "snakes", 0, "health"], BIG), "line 1"),
    ("JSON nested 100,000 deep", "step", "[" * 100_000 + "]" * 100_000, "line 1"),
    ("an object nested 100,000 deep", "step", '{"a":' * 100_000 + "1" + "}" * 100_000, "line 1"),
    ("width 26", "step", _with(BASE, ["board", "width"], 26), "board.width"),
    ("9 snakes", "step", _with(BASE, ["board", "snakes"],
                               [snake(f"s{i}", (i % 7, i // 7)) for i in range(9)]), "board.snakes"),
    ("a body of 1,025 segments", "step",
     _with(BASE, ["board", "snakes", 0, "body"], pts(*[(3, 3)] * 1025)), "board.snakes[0].body"),
    ("a body of 1,000,000 segments", "step",
     _with(BASE, ["board", "snakes", 0, "body"], pts(*[(3, 3)] * 1_000_000)), "board.snakes[0].body"),
    ("65,536 stacked segments", "step",
     _with(BASE, ["board", "snakes", 0, "body"], pts(*[(3, 3)] * 65_536)), "board.snakes[0].body"),
    ("17 hazards on one cell", "step", _with(BASE, ["board", "hazards"], pts(*[(5, 6)] * 17)),
     "board.hazards[16]"),
    ("32,768 hazards on one cell", "step", _with(BASE, ["board", "hazards"], pts(*[(5, 6)] * 32_768)),
     "board.hazards[16]"),
    ("food listed twice", "step", _with(BASE, ["board", "food"], pts((0, 0), (1, 1), (0, 0))),
     "board.food[2]"),
    ("food listed 100,000 times", "step", _with(BASE, ["board", "food"], pts(*[(4, 4)] * 100_000)),
     "board.food[1]"),
    ("a lone surrogate in a snake id", "step", _raw(BASE, ["board", "snakes", 0, "id"], '"\\udfff"'),
     "board.snakes[0].id"),
    ("a lone surrogate in a moves key", "step",
     json.dumps(BASE).replace('"moves": {"a"', '"moves": {"\\ud800"'), "moves (a key)"),
    ("init seed 2^64", "init", json.dumps({"ruleset": {"name": "standard"}, "map": "standard",
                                           "seed": 2**64, "width": 11, "height": 11,
                                           "snakes": ["a", "b"]}), "seed"),
    ("init width 64", "init", json.dumps({"ruleset": {"name": "standard"}, "seed": 1, "width": 64,
                                          "height": 64, "snakes": ["a", "b"]}), "width"),
    ("init height 26", "init", json.dumps({"ruleset": {"name": "standard"}, "seed": 1, "width": 7,
                                           "height": 26, "snakes": ["a"]}), "height"),
    ("init 9 snakes", "init", json.dumps({"ruleset": {"name": "standard"}, "seed": 1, "width": 19,
                                          "height": 19, "snakes": [f"s{i}" for i in range(9)]}), "snakes"),
    ("init no snakes", "init", json.dumps({"ruleset": {"name": "standard"}, "seed": 1, "width": 7,
                                           "height": 7, "snakes": []}), "snakes"),
    ("init royale shrink 0", "init", json.dumps({"ruleset": {"name": "royale", "settings": {
        "royale": {"shrinkEveryNTurns": 0}}}, "seed": 1, "width": 7, "height": 7, "snakes": ["a"]}),
     "ruleset.settings.royale.shrinkEveryNTurns"),
    ("init minimumFood 2^31", "init", json.dumps({"ruleset": {"name": "standard", "settings": {
        "minimumFood": 2**31}}, "seed": 1, "width": 7, "height": 7, "snakes": ["a"]}),
     "ruleset.settings.minimumFood"),
]


I32 = 2**31 - 1
I64 = 2**63 - 1
STACK_A = [snake("a", *[(3, 3)] * 1024, health=50), snake("b", (3, 4), (3, 5), (3, 6))]
STEP_EXTREMES: list[tuple[str, dict]] = [
    ("the issue's royale line with shrink 1", two(name="royale", game_map="standard", shrinkEveryNTurns=1)),
    ("royale shrink 1 at turn 1,000,000 (the box long gone)",
     two(name="royale", shrinkEveryNTurns=1, turn=1_000_000, hazardDamagePerTurn=1)),
    ("royale shrink 1 at turn 10^7 on 25x25",
     step([snake("a", (2, 2), (2, 1), health=100), Z], {"a": "up"}, name="royale", size=25,
          shrinkEveryNTurns=1, turn=10**7, hazardDamagePerTurn=1, seed=5)),
    ("royale shrink 2^31-1", two(name="royale", shrinkEveryNTurns=I32, turn=I32 - 1)),
    ("royale at turn 12, shrink 5, 25x25 (partial box)",
     step([snake("a", (12, 12), (12, 11)), Z], {"a": "left"}, name="royale", size=25, shrinkEveryNTurns=5,
          turn=12, seed=3)),
    ("minimumFood 100,000 on 7x7", two(game_map="standard", minimumFood=100_000)),
    ("minimumFood 2^31-1 on 25x25", step([snake("a", (2, 2), (2, 1)), Z], {"a": "up"}, size=25,
                                         game_map="standard", minimumFood=I32)),
    ("foodSpawnChance 2^31-1", two(game_map="standard", foodSpawnChance=I32)),
    ("negative food settings", two(game_map="standard", foodSpawnChance=-I32, minimumFood=-I32)),
    ("b moves into 1,024 stacked segments of a", step(STACK_A, {"a": "left", "b": "down"})),
    ("8 snakes of 1,024 stacked segments, a 9th cell free",
     step([snake(f"s{i}", *[(i % 5, i // 5 + 3)] * 1024) for i in range(8)],
          {f"s{i}": "up" for i in range(8)})),
    ("3 stacked segments", step([snake("a", (3, 3), (3, 3), (3, 3)), snake("b", (3, 4), (3, 5))],
                                {"a": "left", "b": "down"})),
    ("16 hazards on one cell, damage 14",
     step([snake("a", (2, 2), (2, 1), health=100), Z], {"a": "up"}, hazards=[(2, 3)] * 16)),
    ("16 hazards on one cell, damage -50 (heals to 100)",
     step([snake("a", (2, 2), (2, 1), health=30), Z], {"a": "up"}, hazards=[(2, 3)] * 16,
          hazardDamagePerTurn=-50)),
    ("16 hazards on one cell, damage 2^31-1",
     step([snake("a", (2, 2), (2, 1), health=I32), Z], {"a": "up"}, hazards=[(2, 3)] * 16,
          hazardDamagePerTurn=I32)),
    ("16 hazards on food", step([snake("a", (2, 2), (2, 1), health=3), Z], {"a": "up"},
                                hazards=[(2, 3)] * 16, food=[(2, 3)])),
    ("health 2^31-1 and -(2^31-1)",
     step([snake("a", (2, 2), (2, 1), health=I32), snake("b", (5, 5), (5, 4), health=-I32)],
          {"a": "up", "b": "up"})),
    ("eliminatedOnTurn extremes",
     step([snake("a", (2, 2), (2, 1)), snake("b", (5, 5), (5, 4), eliminatedCause="out-of-health",
                                              eliminatedOnTurn=-I32),
           snake("c", (6, 6), eliminatedCause="wall-collision", eliminatedOnTurn=I32)],
          {"a": "up"})),
    ("seed 2^63-1 at turn 2^31-1 (seed + turn wraps as in Go)",
     two(game_map="standard", foodSpawnChance=100, seed=I64, turn=I32)),
    ("seed -2^63", two(game_map="standard", foodSpawnChance=100, seed=-(2**63), turn=7)),
    ("turn -(2^31-1)", two(game_map="standard", foodSpawnChance=100, turn=-I32)),
    ("royale at a negative turn", two(name="royale", shrinkEveryNTurns=1, turn=-5)),
    ("1x1 board", step([snake("a", (0, 0))], {"a": "up"}, size=1)),
    ("living snakes at health 0 and 1",
     step([snake("a", (2, 2), (2, 1), health=0), snake("b", (5, 5), (5, 4), health=1), Z],
          {"a": "up", "b": "up"})),
    ("an eliminated snake left off the board",
     step([snake("a", (2, 2), (2, 1)), Z, snake("c", (-1, 3), (0, 3), eliminatedCause="wall-collision",
                                                eliminatedOnTurn=3)], {"a": "up"})),
    ("constrictor grows a 1,024-segment stack", step(STACK_A, {"a": "left", "b": "right"}, name="constrictor")),
    ("wrapped_constrictor at the largest stacks",
     step([snake(f"s{i}", *[(i, 0)] * 1024) for i in range(7)], {f"s{i}": "down" for i in range(7)},
          name="wrapped_constrictor")),
    ("wrapped onto 1,024 stacked segments",
     step([snake("a", *[(3, 0)] * 1024), snake("b", (3, 6), (3, 5))], {"a": "left", "b": "up"},
          name="wrapped")),
    ("25x25 board, full food", step([snake("a", (12, 12), (12, 11)), Z], {"a": "up"}, size=25,
                                    food=[(x, y) for x in range(25) for y in range(25)
                                          if (x, y) not in ((12, 12), (12, 11), (6, 1), (6, 0))])),
]

ROYALE_LAST_TURN = step([snake("a", (2, 2), (2, 1), health=100), Z], {"a": "up"}, name="royale",
                        size=25, shrinkEveryNTurns=1, turn=I32 - 1, hazardDamagePerTurn=1, seed=5)
"""Royale at the last turn accepted: the official engine draws 2^31 times (72 s here), so the
oracle test plays turn 10^7 and the unit test checks this one's answer (every cell a hazard)."""

INIT_EXTREMES: list[tuple[str, dict]] = [
    (f"{n} snakes on {w}x{h}, seed {seed}",
     {"ruleset": {"name": "standard", "settings": {"foodSpawnChance": 15, "minimumFood": 1}},
      "map": "standard", "seed": seed, "width": w, "height": h, "snakes": [f"s{i}" for i in range(n)]})
    for n, w, h, seed in [(8, 25, 25, I64), (8, 7, 7, -(2**63)), (1, 1, 1, 3), (2, 25, 7, 99),
                          (8, 25, 24, 12345), (4, 11, 11, -1)]
]
