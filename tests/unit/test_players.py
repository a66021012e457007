"""Players: the moves a user relies on them to make (or never make), on hand-built boards.

Positions are written as Battlesnake JSON boards and decoded with the engine's
own `jsonio`, so every test reads like the game it describes. Coordinates are
(x, y) with (0, 0) bottom-left; bodies are listed head first.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ouroboros.trainer.agents import arena, bitboard, compact, heuristic, registry, search
from ouroboros.trainer.agents.heuristic import Heuristic
from ouroboros.trainer.agents.simple import Greedy, RandomSafe
from ouroboros.trainer.engine import jsonio, maps, rules
from ouroboros.trainer.engine.types import GameConfig, GameMap, Move, Ruleset, RulesetSettings
from ouroboros.trainer.observation import safety

pytestmark = pytest.mark.unit

UP, DOWN, LEFT, RIGHT = Move.UP, Move.DOWN, Move.LEFT, Move.RIGHT
NO_SPAWN = RulesetSettings(food_spawn_chance=0, minimum_food=0, hazard_damage_per_turn=14)


def game(snakes, food=(), size=7, health=None, ruleset="standard") -> jsonio.Game:
    """A one-game state from bodies [[(x, y), ...], ...] (snake i has id "s{i}")."""
    health = health or [100] * len(snakes)
    board = {
        "width": size, "height": size, "hazards": [],
        "food": [{"x": x, "y": y} for x, y in food],
        "snakes": [{"id": f"s{i}", "health": h, "body": [{"x": x, "y": y} for x, y in body]}
                   for i, (body, h) in enumerate(zip(snakes, health, strict=True))],
    }
    kw = {"ruleset": Ruleset(ruleset), "game_map": GameMap.EMPTY, "settings": NO_SPAWN}
    return jsonio.parse_board(board, kw, turn=10, seed=1)


def players():
    return [RandomSafe(), Greedy(), Heuristic(), registry.make_player("search:ms=30")]


def move_of(player, g: jsonio.Game, seat: int = 0) -> int:
    return int(player.act(g.config, g.state, seat, np.random.default_rng(0))[0])


FAR = [(6, 6), (6, 5), (6, 4)]
# (name, bodies, moves that do not lose at once)
ONLY_SAFE = [
    ("corner", [[(0, 0), (1, 0), (2, 0)], FAR], {UP}),
    ("own tail moves away", [[(0, 0), (0, 1), (1, 1), (1, 0)], FAR], {RIGHT}),
    ("beside an enemy body", [[(3, 3), (3, 2), (3, 1)], [(2, 6), (2, 5), (2, 4), (2, 3), (2, 2)]], {UP, RIGHT}),
    ("walled in by two snakes", [[(3, 0), (3, 1), (3, 2)], [(2, 4), (2, 3), (2, 2), (2, 1), (2, 0), (1, 0)],
                                 [(4, 3), (4, 2), (4, 1), (4, 0), (5, 0)]], set()),
]


@pytest.mark.parametrize("player", players(), ids=lambda p: p.name)
@pytest.mark.parametrize(("name", "bodies", "safe"), ONLY_SAFE, ids=[c[0] for c in ONLY_SAFE])
def test_never_a_fatal_move_when_a_safe_one_exists(player, name, bodies, safe):
    g = game(bodies)
    if safe:
        assert move_of(player, g) in safe
    else:  # every move loses: any answer is fine, but there must be one
        assert move_of(player, g) in (UP, DOWN, LEFT, RIGHT)


@pytest.mark.parametrize("player", players(), ids=lambda p: p.name)
def test_never_a_fatal_move_in_played_positions(player):
    """Mid-game positions of random 4-snake games: whenever a snake has a safe move, it takes one."""
    config = GameConfig(11, 11, 4)
    state = maps.new_games(config, np.arange(12))
    rng = np.random.default_rng(3)
    walker = RandomSafe()
    for _ in range(25):
        rules.advance(config, state, walker.act_all(config, state, rng))
    safe = safety.safe_moves(config, state)
    live = ~state.game_over(False)[:, None] & state.alive
    for seat in range(4):
        moves = player.act(config, state, seat, rng)
        rows = np.flatnonzero(live[:, seat] & safe[:, seat].any(axis=1))
        assert safe[rows, seat, moves[rows]].all()


@pytest.mark.parametrize("player", [Heuristic(), registry.make_player("search:ms=30")], ids=lambda p: p.name)
def test_takes_food_when_starving(player):
    """Health 1: only the move onto food survives the turn."""
    g = game([[(3, 3), (3, 2), (3, 1)], FAR], food=[(2, 3)], health=[1, 100])
    assert move_of(player, g) == LEFT


def test_heuristic_heads_for_food_when_hungry():
    """Health 10 with food two moves up and open space everywhere: it goes for the food."""
    g = game([[(3, 3), (3, 2), (3, 1)], FAR], food=[(3, 5)], health=[10, 100])
    assert move_of(Heuristic(), g) == UP


@pytest.mark.parametrize("player", [Heuristic(), registry.make_player("search:ms=30")], ids=lambda p: p.name)
def test_avoids_a_losing_head_to_head(player):
    """A longer enemy's head is next to our `up` cell; `right` is as safe and open."""
    g = game([[(3, 3), (3, 2), (3, 1)], [(2, 4), (1, 4), (1, 5), (1, 6), (2, 6)]])
    assert move_of(player, g) == RIGHT


def test_heuristic_avoids_an_equal_head_to_head():
    g = game([[(3, 3), (3, 2), (3, 1)], [(2, 4), (1, 4), (0, 4)]])
    assert move_of(Heuristic(), g) == RIGHT


def test_search_finds_a_forced_win():
    """We (length 4) move left onto (1, 1): the shorter enemy at (0, 1) must either meet
    us head-on there or flee to the corner, where our next move to (1, 0) meets it again."""
    g = game([[(2, 1), (3, 1), (4, 1), (5, 1)], [(0, 1), (0, 2), (0, 3)]])
    rules_ = compact.Rules.of(g.config, g.state, 0)
    decision = search.choose(rules_, compact.from_batch(g.state, 0), 0, seconds=2.0)
    assert decision.move == LEFT
    assert decision.score >= search.PROVEN
    assert decision.depth <= 3


def test_search_prefers_the_latest_loss():
    """Every line loses; the search still answers, with a proven-loss score."""
    g = game([[(0, 0), (1, 0), (1, 1), (0, 1), (0, 1)], FAR])  # doubled tail blocks the only exit
    decision = search.choose(compact.Rules.of(g.config, g.state, 0), compact.from_batch(g.state, 0), 0, 0.5)
    assert decision.move in (UP, DOWN, LEFT, RIGHT)


@pytest.mark.parametrize("ruleset", ["standard", "constrictor", "wrapped", "royale"])
def test_compact_rules_agree_with_the_engine(ruleset):
    """The search's simulator against `rules.step`, with food and hazards sprinkled in."""
    n = 4
    config = GameConfig(7, 7, n, ruleset, "empty", RulesetSettings(0, 0, 30, 1000))
    state = maps.new_games(config, np.arange(16))
    rng = np.random.default_rng(5)
    inside = state.board.inside
    state.food |= (rng.random(state.food.shape) < 0.15) & inside & (state.occ == 0)
    state.hazard += ((rng.random(state.hazard.shape) < 0.15) & inside).astype(np.int16)
    walker = RandomSafe()
    checked = 0
    for _ in range(40):
        moves = walker.act_all(config, state, rng)
        moves = np.where(rng.random(moves.shape) < 0.1, rng.integers(0, 4, moves.shape), moves).astype(np.int8)
        new = rules.step(config, state, moves)
        for g in np.flatnonzero(~state.game_over(False)):
            got = compact.Rules.of(config, state, g).step(compact.from_batch(state, g), [int(m) for m in moves[g]])
            assert got == compact.from_batch(new, g), f"game {g} turn {state.turn[g]}"
            checked += 1
        state = new
    assert checked > 100


def test_registry_builds_players_from_specs():
    s = registry.make_player("search:ms=100,focus=3")
    assert (s.name, s.ms, s.focus) == ("search:ms=100,focus=3", 100.0, 3)
    assert registry.make_player("search", ms=25).ms == 25.0
    assert registry.make_player("search:ms=7", ms=25).ms == 7.0
    h = registry.make_player("heuristic:hungry_health=30", ms=25)  # ms is not a heuristic option: ignored
    assert h.weights.hungry_health == 30
    assert isinstance(registry.make_player("random-safe"), RandomSafe)
    assert isinstance(registry.make_player("greedy"), Greedy)


@pytest.mark.parametrize(("spec", "message"), [
    ("alphazero", "unknown player"),
    ("search:depth", "expected key=value"),
    ("search:speed=3", "unknown option 'speed'"),
    ("search:ms=fast", "not a valid float"),
    ("onnx:model.onnx", "no such model file"),
    ("registry:v1", "no version 'v1'"),
    ("champion:standard-7x7-2p", "no champion of standard-7x7-2p"),
])
def test_registry_rejects_bad_specs(spec, message, tmp_path, monkeypatch):
    monkeypatch.setenv("OURO_STORE", str(tmp_path / "empty-registry"))
    with pytest.raises(registry.SpecError, match=message):
        registry.make_player(spec)


@pytest.mark.parametrize("content", [b"", b"# not a model\n" * 10, b"\x08\x07" + bytes(range(256))])
@pytest.mark.parametrize("scheme", ["onnx:{}", "nsearch:model={}"])
def test_a_file_onnxruntime_cannot_load_is_a_refused_spec(content, scheme, tmp_path):
    """Empty, text, or protobuf-looking garbage: a SpecError (a ValueError every command reports as
    bad input) naming the spec once, never onnxruntime's own exception types and their traceback."""
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    spec = scheme.format(path)
    with pytest.raises(registry.SpecError) as caught:
        registry.make_player(spec)
    message = str(caught.value)
    assert message.startswith(f"player {spec!r}: not a loadable ONNX model: ") and message.count("player ") == 1


def test_registry_scheme_hook():
    registry.register_scheme("fixture", lambda arg: Greedy(name=f"fixture:{arg}"))
    try:
        assert registry.make_player("fixture:abc").name == "fixture:abc"
        assert "fixture" in registry.known()
    finally:
        registry._FACTORIES.pop("fixture")


def test_arena_rotates_seats_and_scores_every_game():
    config = GameConfig(11, 11, 2)
    result = arena.play_match(config, [Heuristic(), RandomSafe()], np.arange(20), np.random.default_rng(0))
    starts = maps.new_games(config, np.arange(6)).heads
    arena.rotate_seats(fresh := maps.new_games(config, np.arange(6)), np.arange(6) % 2)
    assert (fresh.heads[1::2] == starts[1::2, ::-1]).all()  # odd games swap the starts
    assert not result.truncated.any()
    per_game = result.outcome.sum(axis=1)
    assert set(per_game.tolist()) <= {0, -1}  # one winner and one loser, or a draw
    assert (result.outcome[:, 0] == arena.WIN).sum() >= 14  # the teacher beats random-safe (~90%)


def test_arena_keeps_games_whose_snakes_outgrow_the_ring_buffers():
    """Constrictor snakes grow every turn, past the engine's initial ring capacity, while
    other games of the batch have already finished (the sub-batch path)."""
    config = GameConfig(11, 11, 2, "constrictor")
    result = arena.play_match(config, [Heuristic(), Heuristic()], np.arange(6), np.random.default_rng(0))
    final = result.final
    assert final.length.max() > 40 and len(set(result.turns.tolist())) > 1
    for g in range(6):
        for i in range(2):
            assert len(final.snake_cells(g, i)) == final.length[g, i]


@pytest.mark.parametrize("ruleset", ["standard", "constrictor", "wrapped"])
def test_heuristic_free_masks_follow_the_bodies(ruleset):
    """The incremental free-cell bitboards equal the direct definition (`time_free`) at every
    step, doubled tails included (constrictor doubles every tail every turn)."""
    config = GameConfig(7, 7, 3, ruleset)
    state = maps.new_games(config, np.arange(24))
    rng = np.random.default_rng(2)
    for _ in range(12):
        rules.advance(config, state, Heuristic().act_all(config, state, rng))
    bits = bitboard.RowBits(state.board, config.ruleset.wraps)
    masks = heuristic._FreeMasks(bits, state)
    free_at = heuristic.time_free(state, 60)
    for t in range(60):
        assert (masks[t] == bits.pack(state.board.inside[None, :] & (free_at <= t))).all(), t


def test_row_bitboards_round_trip_and_dilate():
    board = maps.new_games(GameConfig(9, 7, 2), [0]).board
    for wraps in (False, True):
        bits = bitboard.RowBits(board, wraps)
        grid = np.random.default_rng(0).random((5, board.n_cells)) < 0.3
        assert (bits.unpack(bits.pack(grid)) == grid).all()
        corner = bits.single(np.array([board.cell(0, 0)]))
        grown = {tuple(int(v) for v in board.xy(c)) for c in np.flatnonzero(bits.unpack(
            bits.dilate(corner, bits.pack(board.inside[None, :]))))}
        expected = {(0, 0), (1, 0), (0, 1)} | ({(8, 0), (0, 6)} if wraps else set())
        assert grown == expected


def test_search_v1_is_todays_search_under_its_own_name():
    """`search-v1` stays playable as the fixed baseline: same options, same decisions."""
    v1 = registry.make_player("search-v1:ms=100,focus=3")
    assert isinstance(v1, search.SearchV1) and (v1.name, v1.ms, v1.focus) == ("search-v1:ms=100,focus=3", 100.0, 3)
    assert registry.make_player("search-v1").name == "search-v1"
    # the refitted leaf weights are `search`'s; `search-v1` keeps the hand-set ones, options on top
    assert v1.weights == search.HAND_SET != registry.make_player("search").weights == search.SearchWeights()
    assert registry.make_player("search-v1:length=30").weights == dataclasses.replace(search.HAND_SET, length=30.0)
    g = game([[(2, 1), (3, 1), (4, 1), (5, 1)], [(0, 1), (0, 2), (0, 3)]])
    assert move_of(v1, g) == LEFT


def test_a_list_of_specs_keeps_each_specs_options():
    assert registry.split_specs("nsearch:model=m.onnx,ms=50,champion, search:ms=100,focus=3,greedy") == [
        "nsearch:model=m.onnx,ms=50", "champion", "search:ms=100,focus=3", "greedy"]
    assert registry.split_specs("heuristic,ms=5") == ["heuristic", "ms=5"]  # no options without a colon
