"""Game logs in the official CLI's `--output` format, so Battlesnake tools can replay them.

`battlesnake play -o FILE` writes JSON lines (rules v1.2.3, cli/commands/output.go):

1. the game object: `{id, ruleset: {name, version: "cli", settings}, map, timeout, source}`;
2. one line per turn from turn 0 to the first game-over turn, each the `/move`
   request body of one snake: `{game, turn, board: {height, width, snakes (living
   only), food, hazards}, you}` (the CLI picks one snake for `you`, even after it
   is eliminated; we always pick the first);
3. `{winnerId, winnerName, isDraw}`: the last living snake wins; no living snake
   in a game of several is a draw.

Snakes carry `name`, `latency` (a string), `shout`, `squad` and
`customizations` as the CLI writes them. Games stopped early by a turn limit (a
local option the official CLI does not have) end with `isDraw: true` and no winner.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import uuid
from pathlib import Path

import numpy as np

from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import GameConfig

TIMEOUT_MS = 500  # the official CLI's default per-move timeout, reported in the game object

COLORS = ["#22cc44", "#dd44dd", "#22bbee", "#eecc22", "#4466ff", "#ff8800", "#dddddd", "#ee3333"]


def game_id(seed: int, index: int) -> str:
    """A stable UUID for game `index` of a match started with `seed`."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"ouroboros:play:{seed}:{index}"))


def game_json(config: GameConfig, gid: str) -> dict:
    """The game object (client.Game) of the official API."""
    s = config.settings
    return {
        "id": gid,
        "ruleset": {
            "name": config.ruleset.value,
            "version": "cli",
            "settings": {
                "foodSpawnChance": s.food_spawn_chance,
                "minimumFood": s.minimum_food,
                "hazardDamagePerTurn": s.hazard_damage_per_turn,
                "hazardMap": "",
                "hazardMapAuthor": "",
                "royale": {"shrinkEveryNTurns": s.shrink_every_n_turns},
                "squad": {"allowBodyCollisions": False, "sharedElimination": False,
                          "sharedHealth": False, "sharedLength": False},
            },
        },
        "map": config.game_map.value,
        "timeout": TIMEOUT_MS,
        "source": "",
    }


@dataclasses.dataclass(frozen=True)
class Roster:
    """Who plays snake i of every game: API id, display name and colour."""

    ids: list[str]
    names: list[str]
    colors: list[str]

    @classmethod
    def of(cls, names: list[str]) -> Roster:
        """Ids `snake-i`; names made unique by a `#k` suffix when a player plays twice."""
        seen: dict[str, int] = {}
        unique = []
        for name in names:
            seen[name] = seen.get(name, 0) + 1
            unique.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
        return cls([f"snake-{i}" for i in range(len(names))], unique,
                   [COLORS[i % len(COLORS)] for i in range(len(names))])


@functools.lru_cache(maxsize=32)
def _coordinates(board) -> list[tuple[int, int]]:
    """(x, y) of every padded cell of ``board``, as Python ints (a log writes one per body part and
    turn: numpy scalar arithmetic there cost more than the games of a fast duel)."""
    xs, ys = board.xy(np.arange(board.n_cells))
    return list(zip(xs.tolist(), ys.tolist(), strict=True))


def _points(board, cells: np.ndarray) -> list[dict]:
    """``{"x", "y"}`` of each padded cell index in ``cells`` (fresh dicts: callers may change them)."""
    coordinates = _coordinates(board)
    return [{"x": coordinates[c][0], "y": coordinates[c][1]} for c in np.asarray(cells).tolist()]


def snake_json(state: BatchState, g: int, i: int, roster: Roster) -> dict:
    """One snake (client.Snake) as the official CLI serialises it."""
    board = state.board
    body = _points(board, state.snake_cells(g, i))
    return {
        "id": roster.ids[i], "name": roster.names[i], "latency": "0",
        "health": int(state.health[g, i]), "body": body, "head": body[0], "length": len(body),
        "shout": "", "squad": "",
        "customizations": {"color": roster.colors[i], "head": "default", "tail": "default"},
    }


def request_json(game: dict, state: BatchState, g: int, roster: Roster, you: int = 0) -> dict:
    """The `/move` request body (client.SnakeRequest) for snake `you` of game g."""
    board = state.board
    cells = board.column_major_cells
    return {
        "game": game,
        "turn": int(state.turn[g]),
        "board": {
            "height": board.height, "width": board.width,
            "snakes": [snake_json(state, g, i, roster) for i in range(state.n_snakes) if state.alive[g, i]],
            "food": _points(board, cells[state.food[g, cells]]),
            "hazards": _points(board, np.repeat(cells, state.hazard[g, cells])),
        },
        "you": snake_json(state, g, you, roster),
    }


def result_json(state: BatchState, g: int, roster: Roster, over: bool) -> dict:
    """The closing line: the last living snake in list order wins; none living is a draw."""
    winner = [i for i in range(state.n_snakes) if state.alive[g, i]]
    if not over or (not winner and state.n_snakes > 1):
        return {"winnerId": "", "winnerName": "", "isDraw": True}
    if not winner:
        return {"winnerId": "", "winnerName": "", "isDraw": False}
    return {"winnerId": roster.ids[winner[-1]], "winnerName": roster.names[winner[-1]], "isDraw": False}


def _dumps(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"))


class GameLog:
    """Match observer collecting the log lines of some games (see arena.Observer)."""

    def __init__(self, config: GameConfig, roster: Roster, game_ids: list[str], games=None):
        self.roster = roster
        self.games = {int(g): game_json(config, game_ids[int(g)])
                      for g in (range(len(game_ids)) if games is None else games)}
        self.lines: dict[int, list[str]] = {g: [_dumps(obj)] for g, obj in self.games.items()}

    def __call__(self, state: BatchState, played: np.ndarray) -> None:
        for g in played:
            g = int(g)
            if g in self.lines:
                self.lines[g].append(_dumps(request_json(self.games[g], state, g, self.roster)))

    def finish(self, state: BatchState, over: np.ndarray) -> dict[int, list[str]]:
        """All lines of every logged game, result line included."""
        return {g: [*lines, _dumps(result_json(state, g, self.roster, bool(over[g])))]
                for g, lines in self.lines.items()}


def log_paths(template: str, n_games: int) -> list[Path]:
    """Output file per game: `{game}` in the template is the game index; otherwise one game
    writes the path itself and several insert `-INDEX` before the extension."""
    if "{game}" in template:
        return [Path(template.replace("{game}", str(g))) for g in range(n_games)]
    path = Path(template)
    if n_games == 1:
        return [path]
    width = len(str(n_games - 1))
    return [path.with_name(f"{path.stem}-{g:0{width}d}{path.suffix}") for g in range(n_games)]


def write_lines(path: Path, lines: list[str]) -> None:
    """Writes a log atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines))
    tmp.replace(path)
