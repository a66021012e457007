"""Games from outside: official-CLI JSONL game logs, checked against our rules, as replay rows.

A Battlesnake team has games we never played: arena games, games between
strong search snakes, its own snake's history. `battlesnake play -o FILE`
(and `ouro play --log`, which writes the same format; see
:mod:`ouroboros.trainer.agents.gamelog`) records one per file: the game
object, one `/move` request body per turn (living snakes only) and a result
line. This module turns such a log into the rows a bootstrap phase imitates.

**Validated turn by turn.** The log records positions, not moves, so each
snake's move is read off its head (one step, wrapped where the ruleset
wraps); a snake that disappears was eliminated, and its move is the first of
the four that makes our engine eliminate it, moves that do not lose at once
tried first (a head-on meeting is likelier than a turn into its own neck). Then the turn is played by our engine
(:func:`ouroboros.trainer.engine.rules.step`, proven equal to the official
one) and must give exactly the logged snakes: the same survivors, bodies and
health. Food and royale hazards are random (the log does not carry the seed),
so the engine steps without spawning and the logged food must contain what
remains after eating, every new item on a free cell; the logged food and
hazards then carry on. The first turn that disagrees refuses the whole log
with the line, turn and snake named (:class:`LogError`).

**Rows** (the bootstrap shard columns): for every turn before the last and
every living snake, `planes` float16 (the encoding of the game's own board),
`move` int8 (what it played), `mask` uint8 [4] (moves that do not lose at
once), `value` (+1 for the winner, -1 for the others, 0 for all in a draw),
`game_id` (64-bit hash of the log's game id), `turn`, `seat` and `quality`
(:func:`~ouroboros.trainer.learning.replay.position_quality`; a move into a
wall or body when a safe one existed scores 0).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from ouroboros.trainer.engine import jsonio, rules
from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.learning import replay
from ouroboros.trainer.observation import encoding, safety

COLUMNS = ("planes", "move", "mask", "value", "game_id", "turn", "seat", "quality")


class LogError(ValueError):
    """A game log that cannot be read or breaks the rules; the message names file, line and turn."""


@dataclasses.dataclass
class ImportedGame:
    """One validated game."""

    source: str
    """The file it came from."""
    sha256: str
    """Of the file's bytes (provenance, and how a second import of it is recognised)."""
    game_id: str
    """The log's game id."""
    config: GameConfig
    ids: list[str]
    """Snake ids, in seat order (the order of turn 0)."""
    names: list[str]
    """Snake names, in seat order."""
    states: list[BatchState]
    """The position of every turn (one game each), turn 0 first."""
    moves: np.ndarray
    """int8 [T, S]: what each snake played from turn t (T = len(states) - 1; 0 for the dead)."""
    winner: int
    """Seat of the winner, -1 for a draw (or a game without one)."""

    def columns(self, only: set[str] | None = None) -> dict[str, np.ndarray]:
        """The replay rows of this game (module docstring); `only` keeps the seats of those
        snake names. Shapes: planes [N, C, H, W], mask [N, 4], the rest [N]."""
        seats = [s for s, name in enumerate(self.names) if only is None or name in only]
        parts: dict[str, list[np.ndarray]] = {k: [] for k in COLUMNS}
        gid = game_hash(self.game_id)
        turns = len(self.states) - 1
        for t in range(turns):
            state = self.states[t]
            playing = np.array([s for s in seats if state.alive[0, s]], np.int64)
            if not playing.size:
                continue
            safe = safety.safe_moves(self.config, state)[0]
            planes = encoding.encode(self.config, state.select(np.zeros(len(playing), np.int64)), playing)
            moves = self.moves[t, playing]
            mask = safe[playing]
            blunder = ~mask[np.arange(len(playing)), moves] & mask.any(axis=1)
            value = np.where(playing == self.winner, 1.0, -1.0 if self.winner >= 0 else 0.0)
            parts["planes"].append(planes.astype(np.float16))
            parts["move"].append(moves.astype(np.int8))
            parts["mask"].append(mask.astype(np.uint8))
            parts["value"].append(value.astype(np.float32))
            parts["game_id"].append(np.full(len(playing), gid, np.int64))
            parts["turn"].append(np.full(len(playing), t, np.int32))
            parts["seat"].append(playing.astype(np.int8))
            parts["quality"].append(replay.position_quality(turns, self.winner >= 0, 0.5, blunder))
        if not parts["move"]:
            c, h, w = encoding.N_CHANNELS, self.config.height, self.config.width
            empty = {"planes": np.zeros((0, c, h, w), np.float16), "mask": np.zeros((0, 4), np.uint8)}
            return {k: empty.get(k, np.zeros(0)) for k in COLUMNS}
        return {k: np.concatenate(v) for k, v in parts.items()}


def game_hash(game_id: str) -> int:
    """A stable non-negative 63-bit id for a log's game id (replay `game_id`)."""
    return int.from_bytes(hashlib.sha256(game_id.encode()).digest()[:8], "big") >> 1


def read(path: str | Path) -> ImportedGame:
    """Read and validate one log file (module docstring). Raises LogError naming where it breaks."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise LogError(f"{path}: cannot read: {err.strerror or err}") from None
    lines = [(n, line) for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1) if line.strip()]
    if len(lines) < 2:
        raise LogError(f"{path}: expected a game line and at least one turn, got {len(lines)} line(s)")
    objects = []
    for n, line in lines:
        try:
            objects.append((n, json.loads(line)))
        except json.JSONDecodeError as err:
            raise LogError(f"{path}: line {n}: not JSON ({err.msg})") from None
    (n0, game), turns = objects[0], objects[1:]
    result = None
    if turns and isinstance(turns[-1][1], dict) and ("winnerId" in turns[-1][1] or "isDraw" in turns[-1][1]):
        result = turns.pop()
    if not turns:
        raise LogError(f"{path}: no turns after the game line")
    try:
        gid = jsonio.get_field(game, "id", "game", str)
        ruleset, settings = jsonio.parse_ruleset(jsonio.get_field(game, "ruleset", "game", dict))
        game_map = jsonio.parse_map(game.get("map"))
    except jsonio.InputError as err:
        raise LogError(f"{path}: line {n0}: {err}") from None
    kw = {"ruleset": ruleset, "game_map": game_map, "settings": settings}
    replay_kw = {**kw, "settings": dataclasses.replace(settings, food_spawn_chance=0, minimum_food=0)}
    return _replay(path, hashlib.sha256(data).hexdigest(), gid, kw, replay_kw, turns, result)


_NOBODY = {"id": "", "body": [{"x": 0, "y": 0}], "eliminatedCause": "snake-collision"}
"""Stands in for the living snakes of a turn that has none (the engine's boards need one)."""


def _parse_turn(path: Path, n: int, obj: object, kw: dict, expect: int) -> tuple[jsonio.Game, list[str]]:
    try:
        turn = jsonio.get_field(obj, "turn", "", int)
        board = jsonio.get_field(obj, "board", "", dict)
        if turn != expect:
            raise LogError(f"{path}: line {n}: turn {turn}, expected turn {expect} (turns must follow each other)")
        snakes = jsonio.get_field(board, "snakes", "board", list)
        names = [str(s.get("name", s.get("id"))) for s in snakes if isinstance(s, dict)]
        if not snakes:  # everyone was eliminated on this turn: a board without snakes
            board = {**board, "snakes": [_NOBODY]}
        parsed = jsonio.parse_board(board, kw, turn=turn, seed=0)
    except jsonio.InputError as err:
        raise LogError(f"{path}: line {n}: turn {expect}: {err}") from None
    return parsed, names


def _replay(path: Path, sha: str, gid: str, kw: dict, replay_kw: dict, turns: list, result) -> ImportedGame:
    n, obj = turns[0]
    first, names = _parse_turn(path, n, obj, kw, 0)
    ids, config = first.ids, first.config
    replay_config = GameConfig(width=config.width, height=config.height, n_snakes=len(ids), **replay_kw)
    states, moves = [first.state], []
    for n, obj in turns[1:]:
        t = len(states)
        logged, _ = _parse_turn(path, n, obj, kw, t)
        where = f"{path}: line {n}: turn {t}"
        unknown = [s for i, s in enumerate(logged.ids) if logged.state.alive[0, i] and s not in ids]
        if unknown:
            raise LogError(f"{where}: snake {unknown[0]!r} was not in the game at turn 0")
        state, played = _step(where, replay_config, states[-1], logged, ids)
        states.append(state)
        moves.append(played)
    last = states[-1]
    winner = _winner(path, result, last, ids)
    return ImportedGame(str(path), sha, gid, config, ids, names, states,
                        np.array(moves, np.int8).reshape(len(moves), len(ids)), winner)


def _step(where: str, config: GameConfig, before: BatchState, logged: jsonio.Game,
          ids: list[str]) -> tuple[BatchState, np.ndarray]:
    """The engine's turn from `before` that gives the logged position: (next state, moves [S])."""
    board = before.board
    seat_of = {sid: i for i, sid in enumerate(logged.ids) if logged.state.alive[0, i]}
    moves = np.zeros(len(ids), np.int8)
    dying = []
    for s, sid in enumerate(ids):
        if not before.alive[0, s]:
            continue
        if sid not in seat_of:
            dying.append(s)
            continue
        head, new = int(before.heads[0, s]), int(logged.state.heads[0, seat_of[sid]])
        steps = [m for m in range(4) if _target(config, board, head, m) == new]
        if not steps:
            (x0, y0), (x1, y1) = board.xy(head), board.xy(new)
            raise LogError(f"{where}: snake {sid!r}: head moved from ({x0}, {y0}) to ({x1}, {y1}), not one step")
        moves[s] = steps[0]
    problem = ""
    safe = safety.safe_moves(config, before)[0]
    # a vanished snake's move: the first that explains its elimination, the ones that do not
    # lose at once first (a head-on meeting is likelier than a turn into its own neck)
    orders = [sorted(range(4), key=lambda m, s=s: not safe[s, m]) for s in dying]
    for combo in np.ndindex(*([4] * len(dying))):
        moves[dying] = [order[k] for order, k in zip(orders, combo, strict=True)]
        after = rules.step(config, before, moves[None, :])
        problem = _compare(config, after, logged, ids, seat_of)
        if not problem:
            nxt = after.copy()
            nxt.food[:] = logged.state.food
            nxt.hazard[:] = logged.state.hazard
            return nxt, moves.copy()
    raise LogError(f"{where}: {problem}")


def _target(config: GameConfig, board, head: int, move: int) -> int:
    cell = head + int(board.move_delta[move])
    return int(board.wrap[cell]) if config.ruleset.wraps else cell


def _compare(config: GameConfig, after: BatchState, logged: jsonio.Game, ids: list[str], seat_of: dict) -> str:
    """'' when the engine's position matches the log, else what differs (first difference)."""
    board = after.board
    for s, sid in enumerate(ids):
        in_log = sid in seat_of
        if bool(after.alive[0, s]) != in_log:
            return (f"snake {sid!r} is {'alive' if in_log else 'eliminated'} in the log, but the rules "
                    f"{'eliminate it' if in_log else 'keep it alive'}")
        if not in_log:
            continue
        mine = [tuple(int(v) for v in board.xy(c)) for c in after.snake_cells(0, s)]
        theirs = [tuple(int(v) for v in board.xy(c)) for c in logged.state.snake_cells(0, seat_of[sid])]
        if mine != theirs:
            return f"snake {sid!r}: body {theirs} in the log, the rules give {mine}"
        h_log, h_rules = int(logged.state.health[0, seat_of[sid]]), int(after.health[0, s])
        if h_log != h_rules:
            return f"snake {sid!r}: health {h_log} in the log, the rules give {h_rules}"
    kept = after.food[0] & ~logged.state.food[0]
    if kept.any():
        x, y = board.xy(int(np.flatnonzero(kept)[0]))
        return f"food at ({x}, {y}) was not eaten but is gone from the log"
    new = logged.state.food[0] & ~after.food[0]
    occupied = np.zeros_like(new)
    for s in range(after.n_snakes):
        if after.alive[0, s]:
            occupied[after.snake_cells(0, s)] = True
    if (new & occupied).any():
        x, y = board.xy(int(np.flatnonzero(new & occupied)[0]))
        return f"new food at ({x}, {y}) lies on a snake"
    return ""


def _winner(path: Path, result, last: BatchState, ids: list[str]) -> int:
    alive = [s for s in range(len(ids)) if last.alive[0, s]]
    winner = alive[0] if len(alive) == 1 and len(ids) > 1 else -1
    if result is not None:
        n, obj = result
        named = obj.get("winnerId", "") if isinstance(obj, dict) else ""
        if named and (winner < 0 or ids[winner] != named):
            board_says = repr(ids[winner]) if winner >= 0 else "no single survivor"
            raise LogError(f"{path}: line {n}: result: winnerId {named!r}, but the last turn leaves {board_says}")
    return winner
