"""Hand-written turns, one per rule that decides who lives: every elimination cause,
the credit for it, and the edge cases around them. Shared by the pure unit test
(expected outcomes written by hand) and the oracle test (the official engine must
agree with both).

Each scenario: a `rules step` request (ASCII board -> JSON) and the outcome we
expect: {snake id: (eliminatedCause, eliminatedBy)} for every snake.
"""

from __future__ import annotations

import dataclasses

STANDARD = {"name": "standard", "settings": {"foodSpawnChance": 0, "minimumFood": 0, "hazardDamagePerTurn": 14,
                                             "royale": {"shrinkEveryNTurns": 25}}}


def _ruleset(name: str, **settings) -> dict:
    base = dict(STANDARD["settings"])
    base.update(settings)
    return {"name": name, "settings": base}


def snake(sid: str, *cells: tuple[int, int], health: int = 90) -> dict:
    return {"id": sid, "health": health, "body": [{"x": x, "y": y} for x, y in cells],
            "eliminatedCause": "", "eliminatedBy": "", "eliminatedOnTurn": 0}


@dataclasses.dataclass
class Scenario:
    name: str
    snakes: list[dict]
    moves: dict
    expect: dict  # id -> (cause, by)
    ruleset: dict = dataclasses.field(default_factory=lambda: STANDARD)
    food: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    hazards: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    size: int = 7
    turn: int = 5

    def request(self) -> dict:
        return {"ruleset": self.ruleset, "map": "standard", "seed": 42, "turn": self.turn,
                "board": {"width": self.size, "height": self.size,
                          "food": [{"x": x, "y": y} for x, y in self.food],
                          "hazards": [{"x": x, "y": y} for x, y in self.hazards],
                          "snakes": self.snakes},
                "moves": self.moves}


ALIVE = ("", "")

SCENARIOS = [
    Scenario("wall-left", [snake("a", (0, 3), (1, 3), (2, 3)), snake("b", (5, 5), (5, 4), (5, 3))],
             {"a": "left", "b": "up"}, {"a": ("wall-collision", ""), "b": ALIVE}),
    Scenario("wall-top", [snake("a", (3, 6), (3, 5), (3, 4)), snake("b", (5, 1), (5, 2), (5, 3))],
             {"a": "up", "b": "down"}, {"a": ("wall-collision", ""), "b": ALIVE}),
    Scenario("self-collision", [snake("a", (2, 2), (3, 2), (3, 3), (2, 3), (1, 3)), snake("b", (5, 5), (5, 4))],
             {"a": "up", "b": "up"}, {"a": ("snake-self-collision", "a"), "b": ALIVE}),
    Scenario("into-neck-is-self-collision", [snake("a", (2, 2), (3, 2), (4, 2)), snake("b", (5, 5), (5, 4))],
             {"a": "right", "b": "up"}, {"a": ("snake-self-collision", "a"), "b": ALIVE}),
    Scenario("body-collision-credited", [snake("a", (2, 1), (2, 0)), snake("b", (1, 2), (2, 2), (3, 2), (4, 2))],
             {"a": "up", "b": "up"}, {"a": ("snake-collision", "b"), "b": ALIVE}),
    Scenario("tail-chase-is-safe", [snake("a", (2, 2), (2, 3), (3, 3), (3, 2)), snake("b", (5, 5), (5, 4))],
             {"a": "right", "b": "up"}, {"a": ALIVE, "b": ALIVE}),
    Scenario("doubled-tail-blocks", [snake("a", (2, 2), (2, 3), (3, 3), (3, 2), (3, 2)), snake("b", (5, 5), (5, 4))],
             {"a": "right", "b": "up"}, {"a": ("snake-self-collision", "a"), "b": ALIVE}),
    Scenario("head-to-head-shorter-loses", [snake("a", (1, 3), (0, 3)), snake("b", (3, 3), (4, 3), (5, 3))],
             {"a": "right", "b": "left"}, {"a": ("head-collision", "b"), "b": ALIVE}),
    Scenario("head-to-head-equal-both-die", [snake("a", (1, 3), (0, 3), (0, 2)), snake("b", (3, 3), (4, 3), (5, 3))],
             {"a": "right", "b": "left"}, {"a": ("head-collision", "b"), "b": ("head-collision", "a")}),
    Scenario("head-to-head-on-food-both-eat", [snake("a", (1, 3), (0, 3), (0, 2)), snake("b", (3, 3), (4, 3), (5, 3))],
             {"a": "right", "b": "left"}, {"a": ("head-collision", "b"), "b": ("head-collision", "a")},
             food=[(2, 3)]),
    Scenario("three-way-head-to-head", [snake("a", (2, 2), (1, 2)), snake("b", (4, 2), (5, 2), (6, 2)),
                                        snake("c", (3, 1), (3, 0), (2, 0), (1, 0))],
             {"a": "right", "b": "left", "c": "up"},
             {"a": ("head-collision", "c"), "b": ("head-collision", "c"), "c": ALIVE}),
    Scenario("body-beats-head-to-head", [snake("a", (2, 2), (1, 2)), snake("b", (2, 4), (2, 5)),
                                         snake("c", (4, 3), (3, 3), (2, 3), (1, 3), (0, 3))],
             {"a": "up", "b": "down", "c": "right"},
             {"a": ("snake-collision", "c"), "b": ("snake-collision", "c"), "c": ALIVE}),
    Scenario("out-of-health", [snake("a", (2, 2), (2, 1), health=1), snake("b", (5, 5), (5, 4))],
             {"a": "up", "b": "up"}, {"a": ("out-of-health", ""), "b": ALIVE}),
    Scenario("eating-saves-from-starving", [snake("a", (2, 2), (2, 1), health=1), snake("b", (5, 5), (5, 4))],
             {"a": "up", "b": "up"}, {"a": ALIVE, "b": ALIVE}, food=[(2, 3)]),
    Scenario("hazard-kills", [snake("a", (2, 2), (2, 1), health=10), snake("b", (5, 5), (5, 4))],
             {"a": "up", "b": "up"}, {"a": ("hazard", ""), "b": ALIVE}, hazards=[(2, 3)]),
    Scenario("stacked-hazards-stack-damage", [snake("a", (2, 2), (2, 1), health=25), snake("b", (5, 5), (5, 4))],
             {"a": "up", "b": "up"}, {"a": ("hazard", ""), "b": ALIVE}, hazards=[(2, 3), (2, 3)]),
    Scenario("food-on-hazard-protects", [snake("a", (2, 2), (2, 1), health=10), snake("b", (5, 5), (5, 4))],
             {"a": "up", "b": "up"}, {"a": ALIVE, "b": ALIVE}, hazards=[(2, 3)], food=[(2, 3)]),
    Scenario("starving-on-a-hazard-is-hazard", [snake("a", (2, 2), (2, 1), health=1), snake("b", (5, 5), (5, 4))],
             {"a": "up", "b": "up"}, {"a": ("hazard", ""), "b": ALIVE}, hazards=[(2, 3)]),
    Scenario("default-move-when-missing", [snake("a", (2, 6), (2, 5), (2, 4)), snake("b", (5, 5), (5, 4))],
             {"b": "up"}, {"a": ("wall-collision", ""), "b": ALIVE}),
    Scenario("default-move-when-invalid", [snake("a", (6, 2), (5, 2), (4, 2)), snake("b", (1, 1), (1, 0))],
             {"a": "sideways", "b": "up"}, {"a": ("wall-collision", ""), "b": ALIVE}),
    Scenario("wrapped-crosses-edge", [snake("a", (0, 3), (1, 3), (2, 3)), snake("b", (5, 5), (5, 4))],
             {"a": "left", "b": "up"}, {"a": ALIVE, "b": ALIVE}, ruleset=_ruleset("wrapped")),
    Scenario("wrapped-collision-across-edge", [snake("a", (0, 3), (1, 3)), snake("b", (6, 4), (6, 3), (6, 2))],
             {"a": "left", "b": "up"}, {"a": ("snake-collision", "b"), "b": ALIVE}, ruleset=_ruleset("wrapped")),
    Scenario("constrictor-grows", [snake("a", (2, 2), (2, 1), (2, 0)), snake("b", (5, 5), (5, 4), (5, 3))],
             {"a": "up", "b": "up"}, {"a": ALIVE, "b": ALIVE}, ruleset=_ruleset("constrictor"), food=[(4, 4)]),
    Scenario("royale-shrink-turn", [snake("a", (3, 3), (3, 2)), snake("b", (5, 5), (5, 4))],
             {"a": "up", "b": "up"}, {"a": ALIVE, "b": ALIVE},
             ruleset=_ruleset("royale", royale={"shrinkEveryNTurns": 3}), turn=8),
    Scenario("solo-last-snake-dies", [snake("a", (0, 3), (1, 3))], {"a": "left"},
             {"a": ("wall-collision", "")}, ruleset=_ruleset("solo")),
    Scenario("already-eliminated-stays", [snake("a", (2, 2), (2, 1)), snake("b", (5, 5), (5, 4)),
                                          {**snake("c", (7, 3), (6, 3)), "eliminatedCause": "wall-collision",
                                           "eliminatedOnTurn": 3}],
             {"a": "up", "b": "up"}, {"a": ALIVE, "b": ALIVE, "c": ("wall-collision", "")}),
]
