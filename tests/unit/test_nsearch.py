"""The neural-guided search (`agents/nsearch.py`): legal, budgeted, deterministic, and it searches.

The networks are tiny: a *neutral* one (zero logits, zero value: every
decision must come from the search itself, so a found win is the tree's
doing, not the network's) and a randomly initialised `cnn_simple` exported
through the real ONNX contract (`learning/onnx_export.to_onnx`), to show the
player runs from an exported file alone. Boards are Battlesnake JSON decoded
by the engine's `jsonio`; (0, 0) is bottom-left, bodies head first.
"""

from __future__ import annotations

import gc
import itertools
import threading

import numpy as np
import pytest
from leafnets import random_net

from ouroboros.contract.game import GameKey
from ouroboros.trainer.agents import collector, compact, nsearch, puct, registry, stopping
from ouroboros.trainer.engine import jsonio, maps, rules
from ouroboros.trainer.engine.types import GameConfig, GameMap, Move, Ruleset, RulesetSettings
from ouroboros.trainer.serving import players as serving

pytestmark = pytest.mark.unit

UP, DOWN, LEFT, RIGHT = Move.UP, Move.DOWN, Move.LEFT, Move.RIGHT
NO_SPAWN = RulesetSettings(food_spawn_chance=0, minimum_food=0, hazard_damage_per_turn=14)
FAR = [(6, 6), (6, 5), (6, 4)]


class Neutral:
    """An evaluator with no opinion: uniform priors, value 0 for everyone."""

    input_size = None

    def __init__(self) -> None:
        self.calls = 0

    def evaluate(self, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        n = len(planes)
        return np.zeros((n, 4), np.float32), np.zeros((n, 1), np.float32)


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    """A randomly initialised cnn_simple 1x8 exported with the ONNX contract."""
    from ouroboros.trainer.learning import networks, onnx_export

    net = networks.build_network(networks.NetworkConfig(architecture="cnn_simple", blocks=1, channels=8), seed=0)
    path = tmp_path_factory.mktemp("nsearch") / "tiny.onnx"
    path.write_bytes(onnx_export.to_onnx(net, 7, 7))
    return path


def game(snakes, food=(), size=7, health=None) -> jsonio.Game:
    health = health or [100] * len(snakes)
    board = {
        "width": size, "height": size, "hazards": [],
        "food": [{"x": x, "y": y} for x, y in food],
        "snakes": [{"id": f"s{i}", "health": h, "body": [{"x": x, "y": y} for x, y in body]}
                   for i, (body, h) in enumerate(zip(snakes, health, strict=True))],
    }
    kw = {"ruleset": Ruleset.STANDARD, "game_map": GameMap.EMPTY, "settings": NO_SPAWN}
    return jsonio.parse_board(board, kw, turn=10, seed=1)


def decide(player: nsearch.NeuralSearch, g: jsonio.Game, seat: int = 0) -> puct.SearchResult:
    return player.search(g.config, g.state, 0, seat)


def mid_game(games: int, turns: int, seed: int):
    """(config, state, rng): `games` 4-snake 7x7 games after `turns` turns of random-safe moves."""
    config = GameConfig(7, 7, 4, game_map=GameMap.EMPTY)
    state = maps.new_games(config, np.arange(games))
    rng = np.random.default_rng(seed)
    walker = registry.make_player("random-safe")
    for _ in range(turns):
        rules.advance(config, state, np.stack([walker.act(config, state, s, rng) for s in range(4)], 1))
    return config, state, rng


ONLY_SAFE = [
    ("corner", [[(0, 0), (1, 0), (2, 0)], FAR], {UP}),
    ("own tail moves away", [[(0, 0), (0, 1), (1, 1), (1, 0)], FAR], {RIGHT}),
    ("beside an enemy body", [[(3, 3), (3, 2), (3, 1)], [(2, 6), (2, 5), (2, 4), (2, 3), (2, 2)]], {UP, RIGHT}),
]


@pytest.mark.parametrize(("name", "bodies", "safe"), ONLY_SAFE, ids=[c[0] for c in ONLY_SAFE])
def test_only_moves_that_do_not_lose_at_once(name, bodies, safe):
    assert decide(nsearch.NeuralSearch(Neutral(), ms=0, visits=64), game(bodies)).move in safe


def test_legal_moves_in_played_four_snake_games(onnx_file):
    """Mid-game positions of random 7x7 4-snake games through the exported model: every
    seat with a safe move takes one. A bigger board than the model's is refused by name."""
    player = nsearch.NeuralSearch(str(onnx_file), ms=0, visits=24)
    config, state, rng = mid_game(games=6, turns=6, seed=3)
    from ouroboros.trainer.observation import safety

    safe = safety.safe_moves(config, state)
    live = ~state.game_over(False)[:, None] & state.alive
    for seat in range(4):
        moves = player.act(config, state, seat, rng)
        rows = np.flatnonzero(live[:, seat] & safe[:, seat].any(axis=1))
        assert rows.size and safe[rows, seat, moves[rows]].all()
    with pytest.raises(ValueError, match="boards up to 7x7"):
        player.act(GameConfig(), maps.new_games(GameConfig(), [1]), 0, rng)


def test_takes_the_food_it_needs_to_live():
    """Health 1: only the move onto food survives the turn."""
    g = game([[(3, 3), (3, 2), (3, 1)], FAR], food=[(2, 3)], health=[1, 100])
    assert decide(nsearch.NeuralSearch(Neutral(), ms=0, visits=100), g).move == LEFT


def test_finds_a_forced_win():
    """We (length 4) move left onto (1, 1): the shorter enemy at (0, 1) must meet us head-on
    there or flee to the corner, where our next move to (1, 0) meets it again."""
    g = game([[(2, 1), (3, 1), (4, 1), (5, 1)], [(0, 1), (0, 2), (0, 3)]])
    result = decide(nsearch.NeuralSearch(Neutral(), ms=0, visits=600), g)
    assert result.move == LEFT
    assert result.q[LEFT] > 0.9 and max(result.q[m] for m in (UP, DOWN)) < 0.5


def test_avoids_a_losing_head_to_head():
    """A longer enemy's head is next to our `up` cell; `right` is as safe and open."""
    g = game([[(3, 3), (3, 2), (3, 1)], [(2, 4), (1, 4), (1, 5), (1, 6), (2, 6)]])
    result = decide(nsearch.NeuralSearch(Neutral(), ms=0, visits=400), g)
    assert result.move == RIGHT
    assert result.visits[UP] < result.visits[RIGHT]


def test_deterministic_under_a_simulation_cap(onnx_file):
    """With `visits` and no time limit, the same position gives the same tree statistics."""
    g = game([[(3, 3), (3, 2), (3, 1)], [(5, 5), (5, 4), (5, 3)]], food=[(1, 1), (5, 1)])
    runs = [decide(nsearch.NeuralSearch(str(onnx_file), ms=0, visits=200, batch=8), g) for _ in range(2)]
    assert runs[0] == runs[1]
    assert runs[0].simulations == 200 and sum(runs[0].visits) == 200
    rng_moves = [int(nsearch.NeuralSearch(str(onnx_file), ms=0, visits=50).act(
        g.config, g.state, 0, np.random.default_rng(seed))[0]) for seed in (0, 1)]
    assert rng_moves[0] == rng_moves[1]


def test_stops_when_the_budget_runs_out(monkeypatch):
    """A clock that advances 1 ms per reading: a 30 ms budget ends the search after ~30
    readings (one per round), far below the simulation cap."""
    ticks = itertools.count()
    monkeypatch.setattr(nsearch.time, "perf_counter", lambda: next(ticks) / 1000.0)
    g = game([[(3, 3), (3, 2), (3, 1)], FAR])
    result = decide(nsearch.NeuralSearch(Neutral(), ms=30, visits=100_000, batch=4), g)
    assert 0 < result.simulations <= 30 * 4
    assert result.evaluations <= 31


def test_stops_by_the_callers_deadline_when_it_is_sooner(monkeypatch):
    """The snake server's deadline (counted from the request's arrival, `agents.stopping`) ends a
    search whose own budget is far longer: with the clock at 1 ms a reading, a deadline 30 ms away
    stops a 60-second search after ~30 rounds, as its own 30 ms budget would."""
    ticks = itertools.count()
    monkeypatch.setattr(nsearch.time, "perf_counter", lambda: next(ticks) / 1000.0)
    g = game([[(3, 3), (3, 2), (3, 1)], FAR])
    with stopping.limits(deadline=0.030):
        result = decide(nsearch.NeuralSearch(Neutral(), ms=60_000, visits=100_000, batch=4), g)
    assert 0 < result.simulations <= 30 * 4
    assert result.evaluations <= 31


def test_a_hang_up_stops_the_search_before_its_next_round():
    """Once the client has hung up nobody reads the answer: no round is searched (the root's own
    evaluation gives the move), whatever the budget."""
    hung_up = threading.Event()
    hung_up.set()
    g = game([[(3, 3), (3, 2), (3, 1)], FAR])
    model = Neutral()
    with stopping.limits(hung_up=hung_up):
        result = decide(nsearch.NeuralSearch(model, ms=60_000, visits=100_000), g)
    assert result.simulations == 0 and model.calls == 1
    assert result.move in (UP, LEFT, RIGHT)


def test_batches_leaves_into_one_network_call():
    g = game([[(3, 3), (3, 2), (3, 1)], FAR])
    model = Neutral()
    result = decide(nsearch.NeuralSearch(model, ms=0, visits=256, batch=16), g)
    assert result.simulations == 256
    assert model.calls == result.evaluations < 256 / 4  # most calls carry many leaves


def test_searches_in_lockstep_equal_lone_searches_with_one_network_call_per_round(onnx_file):
    """`search_many` (expert iteration's batched searches): every (game, seat) of 4-snake 7x7 games in
    mid-game, searched together through the exported model, gives exactly the results each lone
    search gives (same visits, values, moves), in far fewer network calls."""
    config, state, _ = mid_game(games=5, turns=4, seed=5)
    games, seats = np.nonzero(state.alive & ~state.game_over(False)[:, None])
    assert len(games) > 8

    class Counting:
        def __init__(self, model):
            self.model, self.calls, self.input_size = model, 0, model.input_size

        def _size(self, config):
            return self.model._size(config)

        def evaluate(self, planes):
            self.calls += 1
            return self.model.evaluate(planes)

    lone_model = Counting(nsearch.NeuralSearch(str(onnx_file), ms=0, visits=1).model)
    lone = nsearch.NeuralSearch(lone_model, ms=0, visits=40, batch=8, reuse=False)
    alone = [lone.search(config, state, int(g), int(s)) for g, s in zip(games, seats, strict=True)]
    many_model = Counting(lone_model.model)
    together = nsearch.NeuralSearch(many_model, ms=0, visits=40, batch=8, reuse=False).search_many(
        config, state, games, seats)
    assert together == alone
    assert sum(r.simulations for r in together) == 40 * sum(1 for r in alone if sum(r.visits))
    # one call for all the roots, then one per round (40 descents of up to 8: at least 5 rounds)
    assert 6 <= many_model.calls <= max(r.evaluations for r in alone) + 1 < lone_model.calls / 4
    with pytest.raises(ValueError, match="simulation cap"):
        nsearch.NeuralSearch(Neutral(), ms=100).search_many(config, state, games, seats)


def test_to_batch_round_trips_compact_positions():
    """The encoder reads positions through `compact.to_batch`: it must rebuild what `from_batch` read."""
    config = GameConfig(11, 11, 4)
    state = maps.new_games(config, np.arange(5))
    rng = np.random.default_rng(1)
    walker = registry.make_player("random-safe")
    for _ in range(20):
        rules.advance(config, state, np.stack([walker.act(config, state, s, rng) for s in range(4)], 1))
    rules_ = compact.Rules.of(config, state, 0)
    positions = [compact.from_batch(state, g) for g in range(5)]
    rebuilt = compact.to_batch(rules_, positions, [int(t) for t in state.turn])
    assert [compact.from_batch(rebuilt, g) for g in range(5)] == positions
    from ouroboros.trainer.observation import encoding

    for seat in range(4):  # eliminated seats are never encoded (their length is gone from the position)
        live = state.alive[:, seat]
        np.testing.assert_array_equal(encoding.encode(config, rebuilt, seat)[live],
                                      encoding.encode(config, state, seat)[live])


def test_player_specs(onnx_file):
    p = registry.make_player(f"nsearch:model={onnx_file},ms=20,c_puct=2,batch=4")
    assert (p.ms, p.c_puct, p.batch, p.visits, p.endgame) == (20.0, 2.0, 4, 0, 0.0)
    assert registry.make_player(f"nsearch:model={onnx_file},endgame=0.25").endgame == 0.25
    assert registry.make_player(f"nsearch:model={onnx_file},endgame=0.01,margin=20,tiebreak=policy").margin == 20.0
    for spec, words in [("nsearch:ms=20", "name the network"),
                        (f"nsearch:model={onnx_file},speed=3", "unknown option 'speed'"),
                        (f"nsearch:model={onnx_file},ms=fast", "ms='fast' is not a valid float"),
                        ("nsearch:model=/no/such.onnx", "no such model file"),
                        (f"nsearch:model={onnx_file},ms=0", "set a time budget")]:
        with pytest.raises(registry.SpecError, match=words):
            registry.make_player(spec)


@pytest.mark.parametrize(("options", "words"), [
    ("prune=2", "prune must be between 0 and 1, got 2.0"),  # no move would be left to search
    ("prune=-0.5", "prune must be between 0 and 1"),
    ("c_puct=-1", "c_puct must be a finite number >= 0, got -1.0"),
    ("c_puct=nan", "c_puct must be a finite number >= 0, got nan"),
    ("ms=nan", "ms must be a finite number >= 0, got nan"),
    ("ms=inf", "ms must be a finite number >= 0"),
    ("ms=-5,visits=8", "ms must be a finite number >= 0, got -5.0"),
    ("visits=-1", "visits must be >= 0"),
    ("batch=0", "batch must be >= 1, got 0"),
    ("ms=5,ms=10", "option 'ms' given twice"),
    ("endgame=1.5", "endgame must be between 0 and 1, got 1.5"),  # a share of the board
    ("endgame=-0.1", "endgame must be between 0 and 1"),
    ("endgame=nan", "endgame must be between 0 and 1, got nan"),
    ("endgame=0.3,ms=0,visits=8", "endgame hands the move to the alpha-beta within the time budget: set ms > 0"),
    ("margin=20", "margin widens the hand-off's tie-break: set endgame > 0"),
    ("endgame=0.2,margin=-1", "margin must be a finite number >= 0, got -1.0"),
    ("endgame=0.2,margin=nan", "margin must be a finite number >= 0, got nan"),
    ("endgame=0.2,tiebreak=depth", "tiebreak must be one of policy, value, search, got 'depth'"),
    ("endgame=0.2,margin=20", "margin hands near-best moves to the network: set tiebreak=policy or tiebreak=value"),
    ("endgame=0.2,leaf=maybe", "option leaf='maybe' is not a valid bool"),
])
def test_an_option_out_of_its_range_is_refused_naming_it(onnx_file, options, words):
    """Out-of-range options are refused when the player is built (`ouro serve` exits 2 before the
    port opens), never met mid-game: prune=2 used to fail the first move with max() of nothing."""
    with pytest.raises(registry.SpecError, match=words):
        registry.make_player(f"nsearch:model={onnx_file},{options}")
    with pytest.raises(serving.PlayerUnavailable, match=words):
        serving.make_player(f"nsearch:model={onnx_file},{options}")


def test_the_edges_of_the_ranges_are_players(onnx_file):
    """c_puct 0 (no exploration term) and prune 1 (only the best prior's moves) still search and
    move safely."""
    from ouroboros.trainer.observation import safety

    config = GameConfig(7, 7, 2)
    state = maps.new_games(config, [3])
    player = registry.make_player(f"nsearch:model={onnx_file},ms=0,visits=4,c_puct=0,prune=1")
    move = player.act(config, state, 0, np.random.default_rng(0))
    assert safety.safe_moves(config, state)[0, 0, move[0]]


def test_serving_names_its_own_players_only_when_the_name_is_unknown(onnx_file):
    with pytest.raises(serving.PlayerUnavailable, match=r"unknown player 'junk'.*\(served here too: champion, "
                       r"champion\+nsearch\[:ms=N\]\)"):
        serving.make_player("junk")
    with pytest.raises(serving.PlayerUnavailable) as err:
        serving.make_player(f"nsearch:model={onnx_file},bogus=1")
    assert "unknown option 'bogus'" in str(err.value) and "served here too" not in str(err.value)


def test_server_lowers_the_budget_to_the_game_timeout(onnx_file):
    spec = serving.Spec.parse(f"nsearch:model={onnx_file},ms=900")
    assert serving.budgeted_spec(spec, 500, 150).option("ms") == "350"
    assert str(serving.budgeted_spec(serving.Spec.parse("champion+nsearch"), 500, 150)) == "champion+nsearch:ms=350"


def test_server_plays_the_champion_inside_the_search(onnx_file, tmp_path):
    from ouroboros.trainer.artifacts import registry as reg

    store = str(tmp_path / "registry")
    models = reg.Registry.open(store)
    version = models.register(onnx_file.read_bytes(), architecture="cnn_simple-1x8", run="t", phase="test",
                              game="standard-7x7-2p")
    models.promote("standard-7x7-2p", version.id)
    source = serving.ChampionSource(store, "standard-7x7-2p")
    follower = serving.make_player("champion+nsearch:ms=0,visits=32", source)  # follows promotions
    player = follower.current()
    assert isinstance(player, nsearch.NeuralSearch) and version.id in player.name
    g = game([[(0, 0), (1, 0), (2, 0)], FAR])
    assert int(player.act(g.config, g.state, 0, np.random.default_rng(0))[0]) == UP
    with pytest.raises(serving.PlayerUnavailable, match="unknown option"):
        serving.make_player("champion+nsearch:depth=3", source)


# -- the hand-off to the alpha-beta (endgame) ---------------------------------------------------------

def test_the_board_is_crowded_from_the_share_of_cells_the_living_bodies_fill():
    """Two snakes of length 3 and 5 on 7x7 (49 cells) fill 8 cells: crowded from a share of 8/49
    on, not at 9/49; a dead snake's body no longer counts; endgame 0 never hands off."""
    g = game([[(3, 3), (3, 2), (3, 1)], [(6, 6), (6, 5), (6, 4), (6, 3), (6, 2)]])
    assert nsearch.NeuralSearch(Neutral(), endgame=8 / 49).crowded(g.config, g.state).tolist() == [True]
    assert nsearch.NeuralSearch(Neutral(), endgame=9 / 49).crowded(g.config, g.state).tolist() == [False]
    assert nsearch.NeuralSearch(Neutral()).crowded(g.config, g.state).tolist() == [False]
    g.state.alive[0, 1] = False
    assert nsearch.NeuralSearch(Neutral(), endgame=3 / 49).crowded(g.config, g.state).tolist() == [True]
    assert nsearch.NeuralSearch(Neutral(), endgame=4 / 49).crowded(g.config, g.state).tolist() == [False]


@pytest.mark.parametrize(("endgame", "handed_off"), [(0.1, True), (0.5, False), (0.0, False)])
def test_a_crowded_board_is_decided_by_the_alpha_beta_within_the_budget(monkeypatch, endgame, handed_off):
    """Bodies of 9 cells on 7x7 (0.18 of the board): from endgame 0.1 the alpha-beta decides it,
    with the player's own budget and seat, and its move is the one played; the network is not asked
    (the alpha-beta breaks its own ties by default). Under the share (0.5) and with the option off,
    the tree searches as before."""
    from ouroboros.trainer.agents import search

    search.compiled_available()  # its one warm-up call is not the player's
    asked: list = []
    for name in ("choose", "choose_compiled"):
        real = getattr(search, name)

        def spy(rules_, pos, me, seconds, *args, _real=real, **kw):
            decision = _real(rules_, pos, me, seconds, *args, **kw)
            asked.append((me, seconds, decision.move))
            return decision

        monkeypatch.setattr(search, name, spy)
    g = game([[(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)], [(1, 1), (2, 1), (3, 1), (4, 1)]])
    evaluator = Neutral()
    player = nsearch.NeuralSearch(evaluator, ms=30, endgame=endgame)
    moves, scores = player.act_scored(g.config, g.state, 1, np.random.default_rng(0))
    from ouroboros.trainer.observation import safety

    assert safety.safe_moves(g.config, g.state)[0, 1, moves[0]]
    if handed_off:  # the budget less the time it took to get there (a due collection may take it all)
        assert [me for me, _, _ in asked] == [1] and 0 <= asked[0][1] <= 0.03 and moves[0] == asked[0][2]
        assert (player.handoffs, evaluator.calls, len(player.results)) == (1, 0, 0) and np.isnan(scores[0])
    else:
        assert asked == [] and player.handoffs == 0 and evaluator.calls > 0 and len(player.results) == 1


class Favours(Neutral):
    """An evaluator whose policy prefers one move (logit 2 against 0), value 0."""

    def __init__(self, move: int) -> None:
        super().__init__()
        self.move = move

    def evaluate(self, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, values = super().evaluate(planes)
        logits[:, self.move] = 2.0
        return logits, values


@pytest.mark.parametrize("favourite", [LEFT, RIGHT])
def test_the_network_breaks_the_alpha_betas_exact_ties(favourite):
    """Our snake heads up against the top edge, the rival down against the bottom, both on the
    middle column: LEFT and RIGHT are mirror images, so every depth of the alpha-beta scores them
    exactly alike, and the move played is the one the network's policy prefers."""
    g = game([[(3, 6), (3, 5), (3, 4)], [(3, 0), (3, 1), (3, 2)]])
    player = nsearch.NeuralSearch(Favours(favourite), ms=30, endgame=0.01, tiebreak="policy")
    assert int(player.act(g.config, g.state, 0, np.random.default_rng(0))[0]) == favourite
    assert (player.handoffs, player.model.calls) == (1, 1)


def test_by_default_the_alpha_beta_breaks_its_own_ties_without_a_network_call():
    """tiebreak=search, the default: the same mirror position is decided as `search` decides it (its
    previous iteration's order), whatever the policy prefers, and the network is not asked."""
    from ouroboros.trainer.agents import compact, search

    g = game([[(3, 6), (3, 5), (3, 4)], [(3, 0), (3, 1), (3, 2)]])
    played = set()
    for favourite in (LEFT, RIGHT):
        player = nsearch.NeuralSearch(Favours(favourite), ms=30, endgame=0.01)
        played.add(int(player.act(g.config, g.state, 0, np.random.default_rng(0))[0]))
        assert (player.handoffs, player.model.calls) == (1, 0)
    alone = search.choose_compiled(compact.Rules.of(g.config, g.state, 0), compact.from_batch(g.state, 0), 0, 0.03)
    assert played == {alone.move}


@pytest.mark.parametrize(("margin", "logits", "passed"), [(25.0, "finite", 25.0), (25.0, "nan", 0.0), (0.0, "finite", 0.0)])
def test_the_margin_reaches_the_alpha_beta_with_the_policy(monkeypatch, margin, logits, passed):
    """`margin` goes to the alpha-beta with the network's prior (search.choose's margin, tested there:
    the prior picks among the moves within it of the best); without a usable prior, exact ties only."""
    from ouroboros.trainer.agents import search

    search.compiled_available()
    asked: list = []
    for name in ("choose", "choose_compiled"):
        real = getattr(search, name)

        def spy(*args, _real=real, **kw):
            asked.append((kw.get("prior"), kw.get("margin")))
            return _real(*args, **kw)

        monkeypatch.setattr(search, name, spy)
    g = game([[(1, 3), (2, 3), (3, 3)], [(5, 0), (5, 1), (5, 2)]])
    evaluator = Favours(LEFT)
    if logits == "nan":
        evaluator.evaluate = lambda planes: (np.full((len(planes), 4), np.nan, np.float32),
                                             np.zeros((len(planes), 1), np.float32))
    nsearch.NeuralSearch(evaluator, ms=20, endgame=0.01, margin=margin, tiebreak="policy").act(g.config, g.state, 0,
                                                                           np.random.default_rng(0))
    [(prior, given)] = asked
    assert given == passed and (prior is None) == (logits == "nan")


def test_the_value_tiebreak_ranks_each_move_by_its_worst_reply():
    """tiebreak=value: UP meets the longer rival head to head if it comes down (-1 whatever the
    network says), DOWN is our neck (unsafe, -2), LEFT and RIGHT get the value head's worst over the
    rival's three replies (here 0.25 everywhere): one network call for the eight positions where both
    snakes live on (UP's two others included)."""

    class Quarter(Neutral):
        def evaluate(self, planes):
            logits, values = super().evaluate(planes)
            self.rows = len(planes)
            return logits, values + 0.25

    g = game([[(3, 3), (3, 2), (3, 1)], [(3, 5), (3, 6), (4, 6), (5, 6)]])
    player = nsearch.NeuralSearch(Quarter(), ms=20, endgame=0.01, margin=30, tiebreak="value")
    rules_, pos = compact.Rules.of(g.config, g.state, 0), compact.from_batch(g.state, 0)
    prior = player.value_prior(g.config, rules_, pos, 10, 0)
    assert [prior[UP], prior[DOWN], prior[LEFT], prior[RIGHT]] == [-1.0, -2.0, 0.25, 0.25]
    assert (player.model.calls, player.model.rows) == (1, 8)
    assert int(player.act(g.config, g.state, 0, np.random.default_rng(0))[0]) in (LEFT, RIGHT)


def test_a_policy_that_is_not_finite_leaves_the_alpha_betas_ties_to_it():
    """NaN logits (a broken network) do not stop the hand-off: the alpha-beta's own order decides."""
    g = game([[(3, 6), (3, 5), (3, 4)], [(3, 0), (3, 1), (3, 2)]])
    broken = Favours(LEFT)
    broken.evaluate = lambda planes: (np.full((len(planes), 4), np.nan, np.float32),
                                      np.zeros((len(planes), 1), np.float32))
    player = nsearch.NeuralSearch(broken, ms=30, endgame=0.01, tiebreak="policy")
    assert int(player.act(g.config, g.state, 0, np.random.default_rng(0))[0]) in (LEFT, RIGHT)


# -- tree reuse across turns ---------------------------------------------------------------------------

REUSE_START = [[(3, 3), (3, 2), (3, 1)], [(5, 5), (5, 4), (5, 3)]]


def _next(g: jsonio.Game, mine: int, theirs: int, food_spawn: bool = False) -> rules.BatchState:
    """The position after joint move (mine, theirs); with `food_spawn`, a food the tree cannot predict."""
    state = rules.step(g.config, g.state, np.array([[mine, theirs]]))
    if food_spawn:
        occupied = {int(c) for s in range(2) for c in state.snake_cells(0, s)}
        cell = next(int(c) for c in compact.geometry(7, 7, False).board.column_major_cells
                    if not state.food[0, c] and int(c) not in occupied)
        state.food[0, cell] = True
    return state


@pytest.mark.parametrize("theirs", [UP, LEFT, RIGHT])
def test_the_next_turn_starts_from_the_subtree_of_the_joint_move_played(onnx_file, theirs):
    """Whatever the opponent answered, the child of the joint move becomes the root: its descents count,
    only new ones are charged to the cap, and the statistics add up."""
    g = game(REUSE_START, food=[(1, 1)])
    player = nsearch.NeuralSearch(str(onnx_file), ms=0, visits=200)
    first = decide(player, g)
    state = _next(g, first.move, theirs)
    second = player.search(g.config, state, 0, 0)
    assert second.reused > 0 and second.simulations == 200
    assert sum(second.visits) == second.reused + second.simulations  # every root descent counted once
    fresh = nsearch.NeuralSearch(str(onnx_file), ms=0, visits=200, reuse=False).search(g.config, state, 0, 0)
    assert fresh.reused == 0 and sum(fresh.visits) == 200


def test_a_position_the_tree_did_not_predict_is_searched_afresh(onnx_file):
    """Food that spawned (random, so never in the tree), another seat, or reuse=0: nothing is reused."""
    g = game(REUSE_START, food=[(1, 1)])
    player = nsearch.NeuralSearch(str(onnx_file), ms=0, visits=100)
    first = decide(player, g)
    spawned = _next(g, first.move, UP, food_spawn=True)
    assert player.search(g.config, spawned, 0, 0).reused == 0
    player = nsearch.NeuralSearch(str(onnx_file), ms=0, visits=100)
    decide(player, g)
    assert player.search(g.config, _next(g, first.move, UP), 0, 1).reused == 0  # the other snake's decision
    player = registry.make_player(f"nsearch:model={onnx_file},ms=0,visits=100,reuse=0")
    assert player.reuse is False
    decide(player, g)
    assert player.search(g.config, _next(g, first.move, UP), 0, 0).reused == 0 and len(player.kept) == 0
    with pytest.raises(registry.SpecError, match="reuse='maybe' is not a valid bool"):
        registry.make_player(f"nsearch:model={onnx_file},ms=20,reuse=maybe")


@pytest.mark.parametrize(("roots", "nodes", "ample"), [(6, 10**6, True), (3, 10**6, False), (10**6, 150, False)])
def test_a_whole_game_reuses_and_keeps_a_bounded_memory(onnx_file, monkeypatch, roots, nodes, ample):
    """Six games at once (three seat-swapped pairs) against the greedy player, food spawning off: with room
    for every game's tree most turns reuse; with less (fewer searches or nodes kept than the batch needs)
    the player stays within its bounds and plays on."""
    from ouroboros.trainer.agents import arena

    monkeypatch.setattr(puct, "MAX_KEPT_ROOTS", roots)
    monkeypatch.setattr(puct, "MAX_KEPT_NODES", nodes)
    config = GameConfig(7, 7, 2, Ruleset.STANDARD, GameMap.STANDARD, NO_SPAWN)
    player = nsearch.NeuralSearch(str(onnx_file), ms=0, visits=48)
    assert (player.kept.limit, player.kept.max_nodes) == (roots, nodes)
    high = 0

    def watch(*args):
        nonlocal high
        high = max(high, player.kept.nodes)

    arena.play_match(config, [player, registry.make_player("greedy")], np.repeat(np.arange(3), 2),
                     np.random.default_rng(0), max_turns=40, observer=watch)
    searched = [r for r in player.results if r.simulations]
    reused = [r for r in searched if r.reused]
    assert all(sum(r.visits) == r.reused + r.simulations for r in searched)
    assert len(player.kept) <= roots and high <= nodes
    if ample:
        assert len(reused) > len(searched) // 2, (len(reused), len(searched))


class Watching(Neutral):
    """A Neutral evaluator that records whether the automatic collector was on at each call."""

    def __init__(self) -> None:
        super().__init__()
        self.collector_on: set[bool] = set()

    def evaluate(self, planes):
        self.collector_on.add(gc.isenabled())
        return super().evaluate(planes)


@pytest.mark.parametrize("enabled", [True, False])
def test_the_automatic_collector_is_paused_while_searching_and_restored_after(enabled):
    """A full collection mid-search would land after the move's deadline; a caller's choice to
    keep the collector off (a benchmark, a frozen server) stays theirs."""
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        model = Watching()
        player = nsearch.NeuralSearch(model, ms=0, visits=64)
        decide(player, game([[(1, 1), (1, 2)], [(5, 5), (5, 4)]]))
        assert model.calls > 0 and model.collector_on == {False}
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_the_catch_up_runs_what_is_due_and_nothing_else():
    """What a search runs as it starts (inside its budget): the collections the automatic collector
    would have run by its thresholds, none when none is due."""
    was, threshold = gc.isenabled(), gc.get_threshold()
    gc.collect()
    gc.disable()  # the counts grow as in a search, with nothing collecting them
    try:
        gc.set_threshold(100_000, 10, 10)
        assert collector.Collector.catch_up() is None
        junk = [[i] for i in range(2_000)]  # young objects past the youngest generation's threshold below
        gc.set_threshold(1_000, 10, 10)
        collections = sum(s["collections"] for s in gc.get_stats())
        assert collector.Collector.catch_up() == 0
        assert sum(s["collections"] for s in gc.get_stats()) == collections + 1 and gc.get_count()[0] < 1_000
        del junk
    finally:
        gc.set_threshold(*threshold)
        (gc.enable if was else gc.disable)()


def test_ouro_play_plays_the_champion_of_the_board_being_played(onnx_file, tmp_path, monkeypatch, capsys):
    """`ouro play --width 7 --height 7 --players champion,...` plays the 7x7 champion (it looked up the
    default 11x11 one and refused), bare and inside nsearch; a board with no champion says which game."""
    from ouroboros.trainer.artifacts import registry as reg
    from ouroboros.trainer.commands import play

    store = tmp_path / "registry"
    models = reg.Registry.open(str(store))
    version = models.register(onnx_file.read_bytes(), architecture="cnn_simple-1x8", run="t", phase="test",
                              game="standard-7x7-2p")
    models.promote("standard-7x7-2p", version.id)
    monkeypatch.setenv("OURO_STORE", str(store))
    small = ["--width", "7", "--height", "7", "--games", "1", "--max-turns", "5"]
    assert play.main(["--players", "champion,nsearch:model=champion,ms=0,visits=2", *small]) == 0
    assert "7x7" in capsys.readouterr().out
    game = GameKey.parse("standard-7x7-2p")
    assert [play.champion_of(s, game) for s in ("champion", "nsearch:model=champion,ms=5", "champion:wrapped-7x7-2p",
                                                "nsearch:model=a.onnx")] == [
        "champion:standard-7x7-2p", "nsearch:model=champion:standard-7x7-2p,ms=5", "champion:wrapped-7x7-2p",
        "nsearch:model=a.onnx"]
    assert play.main(["--players", "champion,heuristic", "--games", "1"]) == 2
    err = capsys.readouterr().err
    assert "no champion of standard-11x11-2p" in err and err.count("no champion") == 1


def test_the_hand_off_plays_the_leaf_net_the_model_carries(onnx_file, tmp_path, monkeypatch):
    """A model whose ONNX file carries a leaf net (`onnx_export.with_leaf_net`) hands its crowded
    positions to the alpha-beta with that net at the leaves; with `leaf=0`, without a carried net, or
    on a board the net was not made for (a 7x7 model padded onto 5x5), the alpha-beta counts alone."""
    from ouroboros.trainer.agents import search
    from ouroboros.trainer.learning import onnx_export

    if not search.compiled_available():  # pragma: no cover - numba is in the trainer and serve extras
        pytest.skip("numba is not installed")
    net = random_net(81, hidden=4)
    carrying = tmp_path / "carrying.onnx"
    carrying.write_bytes(onnx_export.with_leaf_net(onnx_file.read_bytes(), net))
    seen: list = []
    real = search.choose_compiled

    def spy(*args, net=None, **kw):
        seen.append(net)
        return real(*args, net=net, **kw)

    monkeypatch.setattr(search, "choose_compiled", spy)
    crowded = [[(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)], [(1, 1), (2, 1), (3, 1), (4, 1)]]
    small = [[(1, 3), (2, 3), (3, 3), (4, 3)], [(1, 1), (2, 1), (3, 1)]]
    for model, options, board in [(carrying, "", crowded), (carrying, ",leaf=0", crowded),
                                  (onnx_file, "", crowded), (carrying, "", small)]:
        g = game(board, size=7 if board is crowded else 5)
        player = registry.make_player(f"nsearch:model={model},ms=20,endgame=0.1{options}")
        player.act(g.config, g.state, 0, np.random.default_rng(0))
    assert len(seen) == 4 and seen[1:] == [None, None, None]
    np.testing.assert_array_equal(seen[0].w1, net.w1.astype(np.float32).astype(np.float64))
