"""Battlesnake API v1 requests and answers, decoded and checked without any I/O.

The game engine sends `{game, turn, board, you}` to `/start`, `/move` and
`/end`. This module turns those bodies into engine states (through
`engine.jsonio`, which names the JSON path of any bad field) and raises
`RequestError` with an HTTP status and that path for anything we cannot play
from, so the HTTP shell only has to copy the status and message out.

Leniency is deliberate where a strict answer would cost a game: an unknown
ruleset or map name is played as `standard` (logged) instead of refused,
because a 4xx makes the engine repeat our last move, which is usually worse
than a move chosen on the standard rules. Type errors and missing fields are
refused: they mean the sender is not a Battlesnake engine.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import zlib
from typing import Any

from ouroboros.trainer.engine import jsonio, limits, types

DEFAULT_TIMEOUT_MS = 500
"""The engine's timeout when `game.timeout` is absent (the API's default)."""
MAX_INT = limits.INT32_MAX
"""Largest turn or timeout accepted (the engine stores numbers in fixed-width integers)."""


class RequestError(Exception):
    """A request we answer with a 4xx: `status`, the JSON `field` at fault and why."""

    def __init__(self, status: int, field: str, message: str):
        super().__init__(f"{field}: {message}" if field else message)
        self.status = status
        self.field = field
        self.message = message

    def payload(self) -> dict:
        """The JSON error body: a readable `error` that names the field, and the field alone."""
        return {"error": str(self), "field": self.field}


@dataclasses.dataclass
class MoveRequest:
    """One decoded `/start` or `/move` body."""

    game_id: str
    """`game.id`: the key of the per-game session."""
    turn: int
    """`turn`."""
    timeout_ms: int
    """`game.timeout`: the engine's deadline for our answer, round trip included."""
    game: jsonio.Game
    """The board as a one-game engine state, living snakes only, in board order."""
    seat: int
    """Index of `you` among `game.ids`."""
    you_id: str
    """`you.id`: with `game_id`, the key of the per-snake session."""
    notes: list[str] = dataclasses.field(default_factory=list)
    """What was played leniently (unknown ruleset or map), for the log."""

    @property
    def modelled(self) -> bool:
        """True when the engine models this game exactly (`limits.RULES`); beyond it (9 to 16
        snakes, boards past 25) the server still plays, with a player that needs only geometry."""
        config = self.game.config
        return limits.within(limits.RULES, config.width, config.height, config.n_snakes)


def decode_body(body: bytes) -> dict:
    """Request bytes -> a JSON object, or RequestError(400) saying where the JSON breaks."""
    try:
        obj = json.loads(body)
    except UnicodeDecodeError as err:
        raise RequestError(400, "body", f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise RequestError(400, "body", f"not valid JSON: {err.msg} at line {err.lineno} "
                                        f"column {err.colno}") from None
    except RecursionError:
        raise RequestError(400, "body", "JSON nested too deeply") from None
    except ValueError as err:  # an integer literal past Python's digit limit (no other ValueError is known)
        limit = sys.get_int_max_str_digits()
        why = f"an integer of more than {limit} digits" if "digits" in str(err) else str(err)
        raise RequestError(400, "body", f"not valid JSON: {why}") from None
    if not isinstance(obj, dict):
        raise RequestError(400, "body", f"expected a JSON object, got {_json_kind(obj)}")
    return obj


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def _field(obj: dict, key: str, path: str, kind, default=..., bounds: tuple[int, int] = jsonio.INT32_BOUNDS):
    """jsonio's typed getter (strings checked to be valid Unicode; integers within ``bounds``,
    inclusive), with its InputError turned into RequestError(400)."""
    try:
        value = jsonio.get_field(obj, key, path, kind, default, bounds)
        if isinstance(value, str):
            jsonio.check_text(value, f"{path}.{key}" if path else key)
        return value
    except jsonio.InputError as err:
        raise RequestError(400, err.path, str(err).split(": ", 1)[1]) from None


def end_ids(obj: dict) -> tuple[str, str | None]:
    """(`game.id`, `you.id` or None) of an `/end` body: all that `/end` needs."""
    game = _field(obj, "game", "", dict)
    game_id = _field(game, "id", "game", str)
    you = _field(obj, "you", "", dict, {})
    return game_id, _field(you, "id", "you", str, None)


def _seed(game_id: str) -> int:
    """A stable seed per game, so a player's simulations of food spawns repeat."""
    return zlib.crc32(game_id.encode())


def _config_kw(game: dict, notes: list[str]) -> dict:
    ruleset_obj = _field(game, "ruleset", "game", dict)
    try:
        ruleset, settings = jsonio.parse_ruleset(ruleset_obj, "game.ruleset")
    except jsonio.InputError as err:
        if err.path != "game.ruleset.name" or not isinstance(ruleset_obj.get("name"), str):
            raise RequestError(400, err.path, str(err).split(": ", 1)[1]) from None
        notes.append(f"unknown ruleset {ruleset_obj['name']!r}, played as standard")
        ruleset, settings = jsonio.parse_ruleset({**ruleset_obj, "name": "standard"}, "game.ruleset")
    map_name = game.get("map")
    if map_name == "":
        map_name = None
    try:
        game_map = jsonio.parse_map(map_name, "game.map")
    except jsonio.InputError as err:
        if not isinstance(map_name, str):
            raise RequestError(400, err.path, str(err).split(": ", 1)[1]) from None
        notes.append(f"unknown map {map_name!r}, played as standard")
        game_map = types.GameMap.STANDARD
    return {"ruleset": ruleset, "game_map": game_map, "settings": settings}


def parse_move_request(obj: dict) -> MoveRequest:
    """A `/start` or `/move` body -> MoveRequest.

    Raises RequestError: 400 for a missing field, a wrong type, text that is not
    valid Unicode, or a board beyond `limits.SERVING` (the field's JSON path in the
    message), 422 when `you.id` is not among the board's (living) snakes. Work is
    bounded by the board: every list is checked against the limits as it is read.
    """
    game = _field(obj, "game", "", dict)
    game_id = _field(game, "id", "game", str)
    # one range check per field, so a negative and a huge number get the same message
    timeout_ms = _field(game, "timeout", "game", int, DEFAULT_TIMEOUT_MS, bounds=(1, MAX_INT))
    turn = _field(obj, "turn", "", int, bounds=(0, MAX_INT))
    notes: list[str] = []
    config_kw = _config_kw(game, notes)
    you = _field(obj, "you", "", dict)
    you_id = _field(you, "id", "you", str)
    board = _field(obj, "board", "", dict)
    try:
        parsed = jsonio.parse_board(board, config_kw, turn, _seed(game_id), bounds=limits.SERVING)
    except jsonio.InputError as err:
        raise RequestError(400, err.path, str(err).split(": ", 1)[1]) from None
    if you_id not in parsed.ids:
        raise RequestError(422, "you.id", f"snake {you_id!r} is not among the living snakes on "
                                          f"the board ({len(parsed.ids)} listed)")
    seat = parsed.ids.index(you_id)
    if not parsed.state.alive[0, seat]:
        raise RequestError(422, "you.id", f"snake {you_id!r} is marked eliminated on the board")
    return MoveRequest(game_id=game_id, turn=turn, timeout_ms=timeout_ms, game=parsed,
                       seat=seat, you_id=you_id, notes=notes)


def last_resort_move(obj: object) -> types.Move:
    """A move read from the raw JSON when nothing else could be computed: not into our
    own neck and not off the board where `you.body` and the board's size say so; `up`
    if even they are unreadable. Never raises."""
    try:
        body = obj["you"]["body"]  # type: ignore[index]
        head = (int(body[0]["x"]), int(body[0]["y"]))
        neck = (int(body[1]["x"]), int(body[1]["y"])) if len(body) > 1 else None
    except Exception:  # noqa: BLE001 - the last line of defence
        return types.Move.UP
    try:
        width, height = int(obj["board"]["width"]), int(obj["board"]["height"])  # type: ignore[index]
    except Exception:  # noqa: BLE001
        width = height = None
    fallback = None
    for move in (types.Move.UP, types.Move.RIGHT, types.Move.DOWN, types.Move.LEFT):
        cell = (head[0] + int(types.MOVE_DX[move]), head[1] + int(types.MOVE_DY[move]))
        if cell == neck:
            continue
        fallback = fallback if fallback is not None else move
        if width is None or (0 <= cell[0] < width and 0 <= cell[1] < height):
            return move
    return fallback if fallback is not None else types.Move.UP


def move_answer(move: types.Move, shout: str = "") -> dict:
    """The `/move` answer body."""
    return {"move": types.Move(move).api_name, "shout": shout[:256]}


@dataclasses.dataclass(frozen=True)
class Appearance:
    """What `GET /` tells the engine about our snake (API v1 customizations)."""

    author: str = "ouroboros"
    """Shown on the game board as the snake's author."""
    color: str = "#2e8b57"
    """Body colour, `#rrggbb`."""
    head: str = "default"
    """Head customization name."""
    tail: str = "default"
    """Tail customization name."""
    version: str = ""
    """Free text; the server fills in the package version and the player's name."""


def index_answer(appearance: Appearance) -> dict:
    """The `GET /` answer body."""
    return {"apiversion": "1", "author": appearance.author, "color": appearance.color,
            "head": appearance.head, "tail": appearance.tail, "version": appearance.version}
