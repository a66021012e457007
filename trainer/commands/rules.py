"""`ouro rules step|init`: the rules engine as a JSON-lines filter.

This is the contract other tools (and our differential test against the
official engine) rely on: one JSON object per input line, one per output line,
in order. A malformed line stops the run with an error on stderr that names the
line number and the field, and a non-zero exit status.

step input:  {"ruleset": {"name", "settings"}, "map", "seed", "turn", "board", "moves"}
step output: {"turn": turn + 1, "board": {...}, "gameOver": bool}
init input:  {"ruleset", "map", "seed", "width", "height", "snakes": ["id", ...]}
init output: {"turn": 0, "board": {...}, "gameOver": bool}

Limits (`engine.limits.RULES`, the same for `step`, `init` and the snake
server's parser): boards 1..25 per side, 1 to 8 snakes, bodies of at most
1,024 segments, at most 16 hazards on one cell, food at most once per cell;
`seed` a Go int64, every other integer (`turn` too) within +-(2^31-1); a
line of at most `MAX_LINE_BYTES`. Beyond them a line is refused with the field
named, never answered differently from the official engine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from ouroboros.trainer.engine import jsonio, limits, maps, rules
from ouroboros.trainer.engine.jsonio import InputError
from ouroboros.trainer.engine.types import GameConfig, Ruleset

MAX_LINE_BYTES = 4 << 20
"""Longest input line read (4 MiB): far more than the largest board within the limits
(8 bodies of 1,024 segments and 16 hazards on each of 625 cells take about 300 kB)."""


def _common(obj: dict) -> tuple[dict, int]:
    ruleset, settings = jsonio.parse_ruleset(jsonio.get_field(obj, "ruleset", "", dict))
    game_map = jsonio.parse_map(obj.get("map"))
    seed = jsonio.get_field(obj, "seed", "", int, 0, bounds=(limits.INT64_MIN, limits.INT64_MAX))
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
    bounds = limits.RULES
    width = jsonio.get_field(obj, "width", "", int)
    height = jsonio.get_field(obj, "height", "", int)
    for key, side in (("width", width), ("height", height)):
        if not 1 <= side <= bounds.max_side:
            raise InputError(key, f"{side} is outside 1..{bounds.max_side}")
    ids = jsonio.get_field(obj, "snakes", "", list)
    if not 1 <= len(ids) <= bounds.max_snakes:
        raise InputError("snakes", f"{len(ids)} snakes: 1 to {bounds.max_snakes} are supported")
    for i, sid in enumerate(ids):
        if not isinstance(sid, str):
            raise InputError(f"snakes[{i}]", "expected a snake id string")
        jsonio.check_text(sid, f"snakes[{i}]")
    if len(set(ids)) != len(ids):
        raise InputError("snakes", "snake ids must be unique")
    config = GameConfig(width=width, height=height, n_snakes=len(ids), **config_kw)
    try:
        state = maps.new_games(config, [seed])
    except maps.SetupError as err:  # the official engine's own refusal (no room)
        raise InputError("snakes", str(err)) from None
    game = jsonio.Game(config=config, state=state, ids=list(ids))
    over = state.game_over(config.ruleset is Ruleset.SOLO)
    return {"turn": 0, "board": jsonio.board_json(game), "gameOver": bool(over[0])}


def read_lines(stream: BinaryIO, limit: int = MAX_LINE_BYTES) -> Iterator[str]:
    """Lines of a byte stream, each read with at most `limit` bytes held in memory;
    raises InputError for a longer line or one that is not UTF-8."""
    for number in itertools.count(1):
        raw = stream.readline(limit + 1)
        if not raw:
            return
        if len(raw) > limit and not raw.endswith(b"\n"):
            raise InputError(f"line {number}", f"longer than {limit} bytes")
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InputError(f"line {number}", f"not UTF-8 text ({err.reason} at byte {err.start})") from None


def run(lines: Iterable[str], handler) -> Iterator[str]:
    """Applies `handler` to each non-blank JSON line; raises InputError with the line number."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"line {number}", f"not valid JSON: {err.msg} at column {err.colno}") from None
        except RecursionError:
            raise InputError(f"line {number}", "not valid JSON here: nested too deeply") from None
        except ValueError:  # an integer literal past Python's 4,300-digit limit
            raise InputError(f"line {number}", "a number with more than 4,300 digits") from None
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
        for out in run(read_lines(sys.stdin.buffer), handler):
            sys.stdout.write(out + "\n")
    except InputError as err:
        sys.stdout.flush()
        print(f"ouro rules {args.action}: {err}", file=sys.stderr)
        return 1
    return 0
