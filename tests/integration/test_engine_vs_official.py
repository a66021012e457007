"""Differential test: our batched engine against the official Go engine, turn by turn.

Games are played by our engine with a mix of random-safe, uniformly random and
missing/invalid moves; every turn of every live game becomes one `bsoracle step`
line, and the oracle's answer must equal our next state. Food and hazards are
compared as multisets (their list order carries no meaning in the rules).
The first diverging turn is printed in full.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from oracle.client import run_oracle

from ouroboros.trainer.agents.simple import RandomSafe
from ouroboros.trainer.engine import jsonio, maps, rules
from ouroboros.trainer.engine.types import GameConfig, GameMap, Move, Ruleset, RulesetSettings

pytestmark = pytest.mark.integration

# (ruleset, map, snakes, size, settings, inject hazards): every ruleset and map,
# duels and free-for-alls, small to large boards, aggressive food and shrink settings.
CASES = [
    ("standard", "standard", 2, 11, RulesetSettings(15, 1, 14, 25), False),
    ("standard", "standard", 4, 11, RulesetSettings(25, 2, 14, 25), True),
    ("standard", "standard", 8, 19, RulesetSettings(50, 3, 30, 25), True),
    ("standard", "empty", 4, 7, RulesetSettings(15, 1, 14, 25), True),
    ("standard", "standard", 3, 9, RulesetSettings(100, 0, 100, 25), False),
    ("royale", "standard", 4, 11, RulesetSettings(15, 1, 14, 5), False),
    ("royale", "standard", 2, 7, RulesetSettings(10, 1, 50, 1), False),
    ("constrictor", "standard", 2, 11, RulesetSettings(15, 1, 14, 25), False),
    ("constrictor", "empty", 4, 11, RulesetSettings(15, 1, 14, 25), False),
    ("wrapped", "standard", 4, 11, RulesetSettings(15, 1, 14, 25), True),
    ("wrapped", "empty", 2, 7, RulesetSettings(0, 0, 14, 25), False),
    ("wrapped_constrictor", "standard", 4, 11, RulesetSettings(15, 1, 14, 25), False),
    ("solo", "standard", 1, 7, RulesetSettings(15, 1, 14, 25), True),
    ("solo", "standard", 1, 11, RulesetSettings(40, 2, 5, 25), False),
    ("standard", "standard", 4, 25, RulesetSettings(15, 1, 14, 25), False),
    ("standard", "standard", 2, 13, RulesetSettings(15, 4, 14, 25), False),
]


def _ruleset_json(name: str, s: RulesetSettings) -> dict:
    return {"name": name, "settings": {
        "foodSpawnChance": s.food_spawn_chance, "minimumFood": s.minimum_food,
        "hazardDamagePerTurn": s.hazard_damage_per_turn, "royale": {"shrinkEveryNTurns": s.shrink_every_n_turns}}}


def _canonical(board: dict) -> dict:
    key = lambda p: (p["x"], p["y"])  # noqa: E731
    return {**board, "food": sorted(board["food"], key=key), "hazards": sorted(board["hazards"], key=key)}


def _moves(cfg: GameConfig, state, rng: np.random.Generator) -> np.ndarray:
    """Random-safe mostly; sometimes any move, sometimes missing (default move applies)."""
    moves = RandomSafe().act_all(cfg, state, rng)
    wild = rng.random(moves.shape) < 0.15
    moves[wild] = rng.integers(0, 4, size=int(wild.sum()))
    missing = rng.random(moves.shape) < 0.03
    moves[missing] = Move.NONE
    return moves


def _play_case(oracle, case, n_games: int, n_lines: int, seed0: int) -> int:
    """Plays games of one case until `n_lines` turns were compared; finished games restart
    with fresh seeds, whose starting boards are compared too."""
    name, game_map, n_snakes, size, settings, inject = case
    cfg = GameConfig(width=size, height=size, n_snakes=n_snakes, ruleset=Ruleset(name),
                     game_map=GameMap(game_map), settings=settings)
    ids = [f"s{i}" for i in range(n_snakes)]
    ruleset = _ruleset_json(name, settings)
    rng = np.random.default_rng(seed0)
    next_seed = seed0

    def fresh(count: int):
        nonlocal next_seed
        seeds = np.arange(next_seed, next_seed + count, dtype=np.int64)
        next_seed += count
        new = maps.new_games(cfg, seeds)
        if inject:  # hazards on random cells (some doubled): hazard damage and the food exception
            for g in range(count):
                cells = rng.choice(new.board.column_major_cells, size=size, replace=True)
                np.add.at(new.hazard[g], cells, 1)
        return new

    state = fresh(n_games)
    game = jsonio.Game(cfg, state, ids)
    init_lines, init_boards = [], []
    lines, ours = [], []
    solo = cfg.ruleset is Ruleset.SOLO

    def record_init(games):
        for g in games:
            init_lines.append({"ruleset": ruleset, "map": game_map, "seed": int(state.seed[g]),
                               "width": size, "height": size, "snakes": ids})
            board = jsonio.board_json(game, g)
            init_boards.append({**board, "hazards": [] if inject else board["hazards"]})

    record_init(range(n_games))
    while len(lines) < n_lines:
        over = state.game_over(solo)
        if over.any():
            done = np.flatnonzero(over)
            state.assign(done, fresh(done.size))
            record_init(done)
        moves = _moves(cfg, state, rng)
        live = range(n_games)
        for g in live:
            lines.append({"ruleset": ruleset, "map": game_map, "seed": int(state.seed[g]), "turn": int(state.turn[g]),
                          "board": jsonio.board_json(game, g),
                          "moves": {ids[i]: Move(int(m)).api_name for i, m in enumerate(moves[g]) if m >= 0}})
        rules.advance(cfg, state, moves)
        over = state.game_over(solo)
        ours += [(int(state.turn[g]), jsonio.board_json(game, g), bool(over[g])) for g in live]

    # Starting boards must match the official setup exactly (placement and food).
    for line, got, want in zip(init_lines, init_boards, run_oracle(oracle, "init", init_lines), strict=True):
        assert _canonical(got) == _canonical(want["board"]), f"starting board differs for {json.dumps(line)}"
    answers = run_oracle(oracle, "step", lines)
    for line, (turn, board, over), want in zip(lines, ours, answers, strict=True):
        got = {"turn": turn, "board": _canonical(board), "gameOver": over}
        exp = {"turn": want["turn"], "board": _canonical(want["board"]), "gameOver": want["gameOver"]}
        if got != exp:
            pytest.fail(f"first diverging turn ({name}/{game_map}):\ninput: {json.dumps(line)}\n"
                        f"official: {json.dumps(exp)}\nours:     {json.dumps(got)}")
    return len(lines)


TURNS_PER_CASE = 100_000 // len(CASES) + 1  # at least 100,000 compared turns in all


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}p-{c[3]}" for c in CASES])
def test_random_games_match_official_engine(oracle, case):
    compared = _play_case(oracle, case, n_games=64, n_lines=TURNS_PER_CASE, seed0=1000 + 7919 * CASES.index(case))
    assert compared >= TURNS_PER_CASE


def test_rules_step_cli_matches_official_engine(oracle):
    """The `ouro rules step` contract itself (JSON in, JSON out) on recorded official turns."""
    name, game_map, n_snakes, size, settings, _ = CASES[1]
    cfg = GameConfig(width=size, height=size, n_snakes=n_snakes, ruleset=Ruleset(name),
                     game_map=GameMap(game_map), settings=settings)
    ids = [f"s{i}" for i in range(n_snakes)]
    state = maps.new_games(cfg, np.arange(1, 41))
    game = jsonio.Game(cfg, state, ids)
    rng = np.random.default_rng(5)
    lines = []
    for _ in range(60):
        moves = _moves(cfg, state, rng)
        for g in np.flatnonzero(~state.game_over(False)):
            lines.append({"ruleset": _ruleset_json(name, settings), "map": game_map, "seed": int(state.seed[g]),
                          "turn": int(state.turn[g]), "board": jsonio.board_json(game, g),
                          "moves": {ids[i]: Move(int(m)).api_name for i, m in enumerate(moves[g]) if m >= 0}})
        rules.advance(cfg, state, moves)
    payload = "".join(json.dumps(line) + "\n" for line in lines)
    proc = subprocess.run([sys.executable, "-m", "ouroboros.trainer.commands.cli", "rules", "step"],
                          input=payload, capture_output=True, text=True, check=True)
    ours = [json.loads(x) for x in proc.stdout.splitlines()]
    answers = run_oracle(oracle, "step", lines)
    assert len(ours) == len(answers) == len(lines)
    for line, got, want in zip(lines, ours, answers, strict=True):
        assert (got["turn"], _canonical(got["board"]), got["gameOver"]) == \
            (want["turn"], _canonical(want["board"]), want["gameOver"]), json.dumps(line)
