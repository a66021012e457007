"""The compiled search kernel plays the Python search's algorithm node for node.

At a fixed depth (no time limit) both kernels must return the same move, the
same score and the same node count on positions from played games of every
ruleset, duels and free-for-alls: the compiled tree is then the v1 search,
only faster, and `search` vs `search-v1` measures depth and the leaf weights
(`search.HAND_SET` for search-v1, the refitted defaults for search).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ouroboros.trainer.agents import compact, registry, search
from ouroboros.trainer.agents.heuristic import Heuristic
from ouroboros.trainer.engine import jsonio, maps, rules
from ouroboros.trainer.engine.types import GameConfig, GameMap, Ruleset, RulesetSettings

pytestmark = pytest.mark.unit

if not search.compiled_available():  # pragma: no cover - numba is in the trainer and serve extras
    pytest.skip("numba is not installed", allow_module_level=True)

CASES = [
    ("standard duel", GameConfig(11, 11, 2)),
    ("standard 4 snakes", GameConfig(11, 11, 4)),
    ("wrapped duel", GameConfig(11, 11, 2, ruleset=Ruleset.WRAPPED, game_map=GameMap.EMPTY)),
    ("constrictor duel", GameConfig(11, 11, 2, ruleset=Ruleset.CONSTRICTOR, game_map=GameMap.EMPTY)),
    ("royale 3 snakes", GameConfig(9, 9, 3, ruleset=Ruleset.ROYALE,
                                   settings=RulesetSettings(hazard_damage_per_turn=14, shrink_every_n_turns=5))),
]


def positions(config: GameConfig, games: int = 3, turns: int = 25):
    """Positions of heuristic games after `turns` turns (games that are over are dropped)."""
    state = maps.new_games(config, np.arange(games) + 7)
    rng = np.random.default_rng(0)
    teacher = Heuristic()
    for _ in range(turns):
        moves = np.stack([teacher.act(config, state, s, rng) for s in range(config.n_snakes)], 1)
        state = rules.step(config, state, moves)
    over = state.game_over(False)
    return [(compact.Rules.of(config, state, g), compact.from_batch(state, g), state.alive[g])
            for g in range(games) if not over[g]]


@pytest.mark.parametrize("tails", [False, True], ids=["bodies are walls", "tails"])
@pytest.mark.parametrize(("name", "config"), CASES, ids=[c[0] for c in CASES])
def test_both_kernels_agree_at_every_depth(name, config, tails):
    checked = 0
    turns = 10 if config.ruleset is Ruleset.CONSTRICTOR else 25  # constrictor boards fill fast
    weights = search.SearchWeights(tails=tails)
    for rules_, pos, alive in positions(config, turns=turns):
        for me in np.flatnonzero(alive):
            for depth in (1, 2, 3):
                slow = search.choose(rules_, pos, int(me), 1e6, max_depth=depth, weights=weights)
                fast = search.choose_compiled(rules_, pos, int(me), 1e6, max_depth=depth, weights=weights)
                assert fast == slow, (name, int(me), depth)
                checked += slow.depth > 0
    assert checked >= 3  # enough positions had a real choice


@pytest.mark.parametrize(("name", "config"), CASES[:2], ids=[c[0] for c in CASES[:2]])
def test_a_prior_breaks_exact_ties_only(name, config):
    """A prior picks among moves whose scores tie exactly, never a worse one, the same in both kernels."""
    flipped = 0
    for (rules_, pos, alive), depth in itertools.product(positions(config, games=6, turns=5), (1, 2, 3)):
        for me in np.flatnonzero(alive):
            plain = search.choose_compiled(rules_, pos, int(me), 1e6, max_depth=depth)
            if plain.depth == 0:
                continue
            for favourite in range(4):
                prior = [0.1] * 4
                prior[favourite] = 0.7
                slow = search.choose(rules_, pos, int(me), 1e6, max_depth=depth, prior=prior)
                fast = search.choose_compiled(rules_, pos, int(me), 1e6, max_depth=depth, prior=prior)
                assert (fast.move, fast.score) == (slow.move, slow.score), (name, int(me), depth, favourite)
                flipped += fast.move != plain.move
                if config.n_snakes == 2:  # the minimax value; in free-for-all the scripted rivals'
                    # moves follow the history heuristic, which the prior's move order changes
                    assert fast.score == plain.score  # the best score, whichever tied move carries it
                    assert fast.move == plain.move or fast.move == favourite
    assert flipped >= 1  # some positions had a tie for the prior to break
    with pytest.raises(ValueError, match="prior must be 4 finite numbers"):
        search.choose(rules_, pos, int(me), 1.0, prior=[0.5, 0.5])
    with pytest.raises(ValueError, match="prior must be 4 finite numbers"):
        search.choose_compiled(rules_, pos, int(me), 1.0, prior=[0.5, float("nan"), 0, 0])


def _minimax(rules_, pos, me: int, move: int, depth: int) -> float:
    """The full-window score of `move` `depth` turns deep: in a duel, the minimax value, whatever the order."""
    tree = search._Search(rules_, me, search.SearchWeights(), float("inf"), 2)
    return tree.reply(pos, move, depth, -np.inf, np.inf, 0)


def test_a_margin_lets_the_prior_pick_any_move_within_it_and_no_other():
    """With `margin` the prior picks among the moves scored within it of the best: the move played
    scores exactly what the search reports, at most `margin` below the best, the same in both kernels;
    and a margin changes moves where exact ties alone would not."""
    config, margin = GameConfig(11, 11, 2), 30.0
    beyond_ties = checked = 0
    for (rules_, pos, alive), depth in itertools.product(positions(config, games=6, turns=5), (1, 2, 3)):
        for me in np.flatnonzero(alive):
            plain = search.choose_compiled(rules_, pos, int(me), 1e6, max_depth=depth)
            if plain.depth == 0 or abs(plain.score) >= search.PROVEN:
                continue
            for favourite in range(4):
                prior = [0.1] * 4
                prior[favourite] = 0.7
                slow = search.choose(rules_, pos, int(me), 1e6, max_depth=depth, prior=prior, margin=margin)
                fast = search.choose_compiled(rules_, pos, int(me), 1e6, max_depth=depth, prior=prior,
                                              margin=margin)
                tie = search.choose_compiled(rules_, pos, int(me), 1e6, max_depth=depth, prior=prior)
                assert (fast.move, fast.score) == (slow.move, slow.score), (int(me), depth, favourite)
                assert fast.score == _minimax(rules_, pos, int(me), fast.move, depth)  # exact, not a bound
                assert plain.score - margin < fast.score <= plain.score
                if fast.move != favourite:  # the favourite was not within the margin
                    assert _minimax(rules_, pos, int(me), favourite, depth) <= plain.score - margin \
                        or favourite not in _safe(rules_, pos, int(me))
                beyond_ties += fast.move != tie.move
                checked += 1
    assert checked >= 20
    assert beyond_ties >= 1  # the margin reached moves that do not tie the best exactly


def _safe(rules_, pos, me: int) -> list[int]:
    tree = search._Search(rules_, me, search.SearchWeights(), float("inf"), 2)
    return tree.safe_moves(pos[0], me, tree.obstacles(pos[0]))


def test_a_margin_is_refused_without_a_prior_or_out_of_range():
    rules_, pos, _ = positions(GameConfig(11, 11, 2), games=1, turns=5)[0]
    for bad, message in ((-1.0, "margin must be a finite number"), (float("nan"), "margin must be a finite number"),
                         (float("inf"), "margin must be a finite number")):
        for choose in (search.choose, search.choose_compiled):
            with pytest.raises(ValueError, match=message):
                choose(rules_, pos, 0, 1.0, prior=[1, 0, 0, 0], margin=bad)
    for choose in (search.choose, search.choose_compiled):
        with pytest.raises(ValueError, match="a margin needs a prior"):
            choose(rules_, pos, 0, 1.0, margin=10.0)


def test_players_pick_their_kernel():
    assert registry.make_player("search").kernel is search.Kernel.NUMBA
    assert registry.make_player("search:kernel=python").kernel is search.Kernel.PYTHON
    assert registry.make_player("search-v1").kernel is search.Kernel.PYTHON
    with pytest.raises(ValueError, match="'fortran' is not a valid Kernel"):
        registry.make_player("search:kernel=fortran")


@pytest.mark.parametrize(("name", "config"), CASES, ids=[c[0] for c in CASES])
def test_the_leaf_evaluation_is_its_terms_times_the_weights(name, config):
    """`search.evaluation_terms` (what `benchmarks.eval_fit` fits weights on) reproduces the
    search's own leaf score for any weights and gates, every ruleset."""
    rng = np.random.default_rng(5)
    checked = 0
    for rules_, pos, alive in positions(config, turns=10 if config.ruleset is Ruleset.CONSTRICTOR else 25):
        for me in np.flatnonzero(alive):
            w = search.SearchWeights(**{n: float(rng.uniform(1, 500)) for n in search.LINEAR_TERMS},
                                     length_cap=int(rng.integers(1, 6)), hungry_health=int(rng.integers(10, 100)))
            terms = search.evaluation_terms(rules_, pos, int(me), w)
            weights = np.array([getattr(w, n) for n in search.LINEAR_TERMS])
            leaf = search._Search(rules_, int(me), w, np.inf, 2).evaluate(pos)
            assert terms @ weights == pytest.approx(leaf, rel=1e-12, abs=1e-9), (name, int(me))
            checked += 1
    assert checked >= 2


def test_with_tails_a_wall_of_the_snakes_own_body_opens_as_it_moves():
    """Snake 0's head is in a 3x3 corner pocket walled by its own 13-cell body: the plain count
    finds 8 cells for 13 segments; with `tails` the wall's cells free as the body moves off them
    (the one beside the pocket after 6 moves) and the pocket's territory takes the one the
    rival cannot reach as soon, so less of the snake is trapped, and both kernels agree."""
    board = {"width": 7, "height": 7, "hazards": [], "food": [], "snakes": [
        {"id": "s0", "health": 100, "body": [{"x": x, "y": y} for x, y in
                                             [(0, 2), (0, 3), (1, 3), (2, 3), (3, 3), (3, 2), (3, 1), (3, 0),
                                              (4, 0), (5, 0), (6, 0), (6, 1), (6, 2)]]},
        {"id": "s1", "health": 100, "body": [{"x": 5, "y": 5}, {"x": 5, "y": 6}, {"x": 6, "y": 6}]}]}
    g = jsonio.parse_board(board, {"ruleset": Ruleset.STANDARD, "game_map": GameMap.EMPTY}, turn=10, seed=1)
    rules_, pos = compact.Rules.of(g.config, g.state, 0), compact.from_batch(g.state, 0)
    trapped = search.LINEAR_TERMS.index("trapped")
    walls = search.evaluation_terms(rules_, pos, 0, search.SearchWeights(tails=False))
    tails = search.evaluation_terms(rules_, pos, 0, search.SearchWeights(tails=True))
    assert walls[trapped] == pytest.approx(-5 / 13) and tails[trapped] == pytest.approx(-4 / 13)
    for weights in (search.SearchWeights(tails=False), search.SearchWeights(tails=True)):
        slow = search.choose(rules_, pos, 0, 1e6, max_depth=4, weights=weights)
        assert search.choose_compiled(rules_, pos, 0, 1e6, max_depth=4, weights=weights) == slow


def test_evaluation_terms_refuse_a_snake_that_is_out():
    rules_, pos, _ = positions(CASES[0][1], games=1)[0]
    out = ([pos[0][0], None], pos[1])
    with pytest.raises(ValueError, match="snake 1 is not alive"):
        search.evaluation_terms(rules_, out, 1)
    with pytest.raises(ValueError, match="snake 2 is not alive"):
        search.evaluation_terms(rules_, pos, 2)
