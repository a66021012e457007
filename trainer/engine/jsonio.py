"""Battlesnake JSON to engine state and back.

Two shapes share one board format:

- the rules-tool shape of `ouro rules step` (the board keeps eliminated snakes,
  with `eliminatedCause`, `eliminatedBy` and `eliminatedOnTurn`), and
- the game-server API shape (`game`, `turn`, `board`, `you`; only living snakes).

Every malformed value raises `InputError` naming the JSON path of the field, so
a tool or a server can tell its caller exactly what to fix. Sizes and number
ranges are checked against `engine.limits` (one place for the rules tool and
the server) before any work proportional to them is done.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ouroboros.trainer.engine import limits, types
from ouroboros.trainer.engine.state import BatchState, Board
from ouroboros.trainer.engine.types import Cause, GameConfig, RulesetSettings

MAX_SIDE = limits.RULES.max_side
ENGINE_DEFAULTS = RulesetSettings(food_spawn_chance=0, minimum_food=0, hazard_damage_per_turn=0,
                                  shrink_every_n_turns=20)


class InputError(ValueError):
    """A JSON value that cannot describe a game; `path` names the field."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclasses.dataclass
class Game:
    """One game decoded from JSON: its config, a one-game state and the snake ids in order."""

    config: GameConfig
    state: BatchState
    ids: list[str]


INT32_BOUNDS = (-limits.INT32_MAX, limits.INT32_MAX)
"""The integers :func:`get_field` accepts unless told otherwise (a signed 32-bit integer, but for its minimum)."""


def get_field(obj: Any, key: str, path: str, kind, default=..., bounds: tuple[int, int] = INT32_BOUNDS):
    """`obj[key]` checked to be of `kind` (int excludes bool); `default` when absent, else
    InputError naming `path.key`. Every JSON reader of the project validates through this.

    An integer must lie within `bounds` (inclusive; a signed 32-bit integer by default), so
    no later arithmetic on it can overflow the engine's int64 arrays."""
    if not isinstance(obj, dict):
        raise InputError(path, "expected an object")
    if key not in obj:
        if default is ...:
            raise InputError(f"{path}.{key}" if path else key, "required field is missing")
        return default
    value = obj[key]
    where = f"{path}.{key}" if path else key
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(where, f"expected an integer, got {type(value).__name__}")
        if not bounds[0] <= value <= bounds[1]:
            raise InputError(where, f"{_short(value)} is outside {bounds[0]}..{bounds[1]}")
    elif not isinstance(value, kind):
        raise InputError(where, f"expected {_kind_name(kind)}, got {type(value).__name__}")
    return value


def _short(value: int) -> str:
    """An integer for an error message: a huge one by its digit count, not its digits."""
    text = str(value) if abs(value) < 10**30 else f"a {len(str(abs(value)))}-digit number"
    return text


def check_text(value: str, path: str) -> str:
    """`value` if it is encodable text: JSON's `\\udfff` escapes decode to lone surrogates,
    which no UTF-8 writer (a log, a hash of the id, our own answer) accepts."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InputError(path, f"not valid Unicode text (a lone surrogate at character "
                               f"{err.start})") from None
    return value


def _kind_name(kind) -> str:
    return {str: "a string", list: "an array", dict: "an object"}.get(kind, kind.__name__)


def parse_ruleset(obj: Any, path: str = "ruleset") -> tuple[types.Ruleset, RulesetSettings]:
    """`{"name": ..., "settings": {...}}` -> (Ruleset, RulesetSettings).

    A setting left out takes the official *engine's* default (0 for food and
    damage, 20 for shrinkEveryNTurns), not the CLI's flag defaults, so that the
    same JSON means the same game here and in the official engine.
    """
    name = get_field(obj, "name", path, str)
    try:
        ruleset = types.Ruleset(name)
    except ValueError:
        known = ", ".join(r.value for r in types.Ruleset)
        raise InputError(f"{path}.name", f"unknown ruleset {name!r} (known: {known})") from None
    settings = get_field(obj, "settings", path, dict, {})
    spath = f"{path}.settings"
    defaults = ENGINE_DEFAULTS
    royale = get_field(settings, "royale", spath, dict, {})
    shrink = get_field(royale, "shrinkEveryNTurns", f"{spath}.royale", int, defaults.shrink_every_n_turns)
    if ruleset is types.Ruleset.ROYALE and shrink < 1:
        # The official engine's own refusal (royale.go), at the field that causes it.
        raise InputError(f"{spath}.royale.shrinkEveryNTurns",
                         f"{shrink}: a royale game can't shrink more often than every turn (at least 1)")
    return ruleset, RulesetSettings(
        food_spawn_chance=get_field(settings, "foodSpawnChance", spath, int, defaults.food_spawn_chance),
        minimum_food=get_field(settings, "minimumFood", spath, int, defaults.minimum_food),
        hazard_damage_per_turn=get_field(settings, "hazardDamagePerTurn", spath, int, defaults.hazard_damage_per_turn),
        shrink_every_n_turns=shrink,
    )


def parse_map(value: Any, path: str = "map") -> types.GameMap:
    """A map name -> GameMap (absent or null: `standard`); InputError for an unknown name."""
    if value is None:
        return types.GameMap.STANDARD
    if not isinstance(value, str):
        raise InputError(path, f"expected a string, got {type(value).__name__}")
    try:
        return types.GameMap(value)
    except ValueError:
        known = ", ".join(m.value for m in types.GameMap)
        raise InputError(path, f"unknown map {value!r} (known: {known})") from None


def _point(obj: Any, path: str, board: Board, allow_outside: bool) -> int:
    x = get_field(obj, "x", path, int)
    y = get_field(obj, "y", path, int)
    lo_x, lo_y = (-1, -1) if allow_outside else (0, 0)
    hi_x, hi_y = (board.width, board.height) if allow_outside else (board.width - 1, board.height - 1)
    if not (lo_x <= x <= hi_x and lo_y <= y <= hi_y):
        raise InputError(path, f"({x}, {y}) is outside the {board.width}x{board.height} board")
    return int(board.cell(x, y))


def parse_board(obj: Any, config_kw: dict, turn: int, seed: int, path: str = "board",
                bounds: limits.Limits = limits.RULES) -> Game:
    """A board object (rules-tool shape; API boards work too) -> a one-game state.

    Raises InputError naming the field for a malformed value or one beyond `bounds`
    (sides, snakes, body length, a hazard stack; food listed twice on one cell, which
    the official engine would feed twice but a cell of the state holds once).
    """
    width = get_field(obj, "width", path, int)
    height = get_field(obj, "height", path, int)
    for key, side in (("width", width), ("height", height)):
        if not 1 <= side <= bounds.max_side:
            raise InputError(f"{path}.{key}", f"{side} is outside 1..{bounds.max_side}")
    board = Board(width, height)
    snakes = get_field(obj, "snakes", path, list)
    if not 1 <= len(snakes) <= bounds.max_snakes:
        raise InputError(f"{path}.snakes", f"{len(snakes)} snakes: 1 to {bounds.max_snakes} are supported")
    ids: list[str] = []
    bodies: list[list[int]] = []
    for i, snake in enumerate(snakes):
        spath = f"{path}.snakes[{i}]"
        sid = check_text(get_field(snake, "id", spath, str), f"{spath}.id")
        if sid in ids:
            raise InputError(f"{spath}.id", f"duplicate snake id {sid!r}")
        ids.append(sid)
        body = get_field(snake, "body", spath, list)
        if not body:
            raise InputError(f"{spath}.body", "a snake needs at least one segment")
        if len(body) > bounds.max_body:
            raise InputError(f"{spath}.body", f"{len(body)} segments: at most {bounds.max_body} "
                                              "are supported")
        bodies.append(body)
    capacity = max(32, max(len(b) for b in bodies) + 1)
    state = BatchState.empty(board, 1, len(snakes), capacity)
    state.turn[0], state.seed[0] = turn, seed
    for i, snake in enumerate(snakes):
        spath = f"{path}.snakes[{i}]"
        cause_name = get_field(snake, "eliminatedCause", spath, str, "")
        try:
            cause = Cause.parse(cause_name)
        except ValueError as err:
            raise InputError(f"{spath}.eliminatedCause", str(err)) from None
        alive = cause is Cause.NOT_ELIMINATED
        cells = [_point(p, f"{spath}.body[{j}]", board, allow_outside=not alive)
                 for j, p in enumerate(bodies[i])]
        state.body[0, i, :len(cells)] = cells
        state.length[0, i] = len(cells)
        state.health[0, i] = get_field(snake, "health", spath, int, types.SNAKE_MAX_HEALTH)
        state.alive[0, i] = alive
        state.cause[0, i] = cause
        by = get_field(snake, "eliminatedBy", spath, str, "")
        if by and by not in [s.get("id") for s in snakes if isinstance(s, dict)]:
            raise InputError(f"{spath}.eliminatedBy", f"no snake has id {by!r}")
        state.eliminated_by[0, i] = ids.index(by) if by else -1
        state.eliminated_turn[0, i] = get_field(snake, "eliminatedOnTurn", spath, int, 0)
    for j, p in enumerate(get_field(obj, "food", path, list, [])):
        cell = _point(p, f"{path}.food[{j}]", board, allow_outside=False)
        if state.food[0, cell]:  # stops within width*height + 1 entries
            raise InputError(f"{path}.food[{j}]", "this cell is already listed: food is one per cell")
        state.food[0, cell] = True
    for j, p in enumerate(get_field(obj, "hazards", path, list, [])):
        cell = _point(p, f"{path}.hazards[{j}]", board, allow_outside=False)
        if state.hazard[0, cell] >= bounds.max_hazard_stack:  # stops within stack * cells + 1
            raise InputError(f"{path}.hazards[{j}]", f"more than {bounds.max_hazard_stack} hazards "
                                                     "on one cell are not supported")
        state.hazard[0, cell] += 1
    state.disjoint = False  # arbitrary JSON may overlap bodies: the rules scatter exactly
    state.rebuild_occ()
    config = GameConfig(width=width, height=height, n_snakes=len(snakes), **config_kw)
    return Game(config=config, state=state, ids=ids)


def parse_moves(obj: Any, ids: list[str], path: str = "moves") -> np.ndarray:
    """`{"id": "up", ...}` -> [1, S] Move values; a missing or unknown move becomes NONE
    (the engine then applies the default move); an unknown snake id is an error."""
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise InputError(path, f"expected an object mapping snake id to move, got {type(obj).__name__}")
    moves = np.full((1, len(ids)), types.Move.NONE, np.int8)
    for sid, name in obj.items():
        check_text(sid, f"{path} (a key)")
        if sid not in ids:
            raise InputError(f"{path}.{sid}", "no snake on the board has this id")
        moves[0, ids.index(sid)] = types.Move.parse(name)
    return moves


def _xy(board: Board, cell) -> dict:
    x, y = board.xy(int(cell))
    return {"x": int(x), "y": int(y)}


def board_json(game: Game, index: int = 0, living_only: bool = False) -> dict:
    """The board of game `index` in the rules-tool shape (or API shape with living_only).

    Food and hazards are listed in x-major order (the order royale builds hazards);
    duplicated hazards repeat.
    """
    state, board = game.state, game.state.board
    snakes = []
    for i, sid in enumerate(game.ids):
        alive = bool(state.alive[index, i])
        if living_only and not alive:
            continue
        body = [_xy(board, c) for c in state.snake_cells(index, i)]
        snake = {"id": sid, "health": int(state.health[index, i]), "body": body}
        if living_only:
            snake.update(head=body[0], length=len(body))
        else:
            by = int(state.eliminated_by[index, i])
            snake.update(
                eliminatedCause=Cause(int(state.cause[index, i])).api_name,
                eliminatedBy=game.ids[by] if by >= 0 else "",
                eliminatedOnTurn=int(state.eliminated_turn[index, i]),
            )
        snakes.append(snake)
    cells = board.column_major_cells
    food = [_xy(board, c) for c in cells[state.food[index, cells]]]
    hazards = [_xy(board, c) for c in cells for _ in range(int(state.hazard[index, c]))]
    return {"width": board.width, "height": board.height, "food": food, "hazards": hazards, "snakes": snakes}
