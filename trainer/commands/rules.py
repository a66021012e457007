"""`ouro rules step|init`: the rules engine as a JSON-lines filter.

This is the contract other tools (and our differential test against the
official engine) rely on: one JSON object per input line, one per output line,
in order. A malformed line stops the run with an error on stderr that names the
line number and the field, and a non-zero exit status.

step input:  {"ruleset": {"name", "settings"}, "map", "seed", "turn", "board", "moves"}
step output: {"turn": turn + 1, "board": {...}, "gameOver": bool}
init input:  {"ruleset", "map", "seed", "width", "height", "snakes": ["id", ...]}
init output: {"turn": 0, "board": {...}, "gameOver": bool}
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator

from ouroboros.trainer.engine import jsonio, maps, rules
from ouroboros.trainer.engine.jsonio import InputError
from ouroboros.trainer.engine.types import GameConfig, Ruleset


def _common(obj: dict) -> tuple[dict, int]:
    ruleset, settings = jsonio.parse_ruleset(jsonio.get_field(obj, "ruleset", "", dict))
    game_map = jsonio.parse_map(obj.get("map"))
    seed = jsonio.get_field(obj, "seed", "", int, 0)
    return {"ruleset": ruleset, "game_map": game_map, "settings": settings}, seed


def step_line(obj: dict) -> dict:
    """One `rules step` request -> its answer."""
    config_kw, seed = _common(obj)
    turn = jsonio.get_field(obj, "turn", "", int)
    game = jsonio.parse_board(jsonio.get_field(obj, "board", "", dict), config_kw, turn, seed)
    moves = jsonio.parse_moves(obj.get("moves"), game.ids)
    game.state = rules.step(game.config, game.state, moves)
    over = game.state.game_over(game.config.ruleset is Ruleset.SOLO)
    return {"turn": int(game.state.turn[0]), "board": jsonio.board_json(game), "gameOver": bool(over[0])}


def init_line(obj: dict) -> dict:
    """One `rules init` request -> the starting board."""
    config_kw, seed = _common(obj)
    width = jsonio.get_field(obj, "width", "", int)
    height = jsonio.get_field(obj, "height", "", int)
    ids = jsonio.get_field(obj, "snakes", "", list)
    for i, sid in enumerate(ids):
        if not isinstance(sid, str):
            raise InputError(f"snakes[{i}]", "expected a snake id string")
    if len(set(ids)) != len(ids):
        raise InputError("snakes", "snake ids must be unique")
    try:
        config = GameConfig(width=width, height=height, n_snakes=len(ids), **config_kw)
        state = maps.new_games(config, [seed])
    except ValueError as err:
        raise InputError("snakes" if "snake" in str(err) else "width", str(err)) from None
    game = jsonio.Game(config=config, state=state, ids=list(ids))
    over = state.game_over(config.ruleset is Ruleset.SOLO)
    return {"turn": 0, "board": jsonio.board_json(game), "gameOver": bool(over[0])}


def run(lines: Iterable[str], handler) -> Iterator[str]:
    """Applies `handler` to each non-blank JSON line; raises InputError with the line number."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"line {number}", f"not valid JSON: {err.msg} at column {err.colno}") from None
        if not isinstance(obj, dict):
            raise InputError(f"line {number}", "expected a JSON object")
        try:
            answer = handler(obj)
        except InputError as err:
            raise InputError(f"line {number}: {err.path}", str(err).split(": ", 1)[1]) from None
        yield json.dumps(answer, separators=(",", ":"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ouro rules", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["step", "init"], help="play one turn per line, or make starting boards")
    args = parser.parse_args(argv)
    handler = step_line if args.action == "step" else init_line
    try:
        for out in run(sys.stdin, handler):
            sys.stdout.write(out + "\n")
    except InputError as err:
        sys.stdout.flush()
        print(f"ouro rules {args.action}: {err}", file=sys.stderr)
        return 1
    return 0
