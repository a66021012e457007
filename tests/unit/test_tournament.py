"""Tournaments and gated promotion: what a user relies on when reading a table or a gate.

Cheap players (random-safe, greedy, heuristic) keep every test fast; the gate
tests play small ONNX models built in a temporary directory.
"""

import json

import numpy as np
import pytest

from ouroboros.trainer.agents import arena
from ouroboros.trainer.agents import registry as agents
from ouroboros.trainer.commands import evaluate
from ouroboros.trainer.engine import maps
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.evaluation import sprt as sequential
from ouroboros.trainer.evaluation import stats
from ouroboros.trainer.evaluation import tournament as tm

pytestmark = pytest.mark.unit

GAME = GameConfig()


def test_each_seed_is_played_twice_with_the_seats_swapped():
    """A chunk's games 2k and 2k+1 share the seed; the second gives each player the other start."""
    chunk = tm._Chunk(GAME, ("greedy", "random-safe"), (5, 6), (0, 0, 0), max_turns=1)
    seeds = np.repeat(np.asarray(chunk.seeds), 2)
    state = maps.new_games(GAME, seeds)
    arena.rotate_seats(state, np.arange(seeds.size) % 2)
    heads = state.body[np.arange(4)[:, None], np.arange(2)[None, :], state.head_ptr]  # [G, 2, 2]
    for k in (0, 2):
        assert (heads[k, 0] == heads[k + 1, 1]).all() and (heads[k, 1] == heads[k + 1, 0]).all()
    played = tm._play(chunk)
    assert played.outcome.shape == (4, 2)


def test_pentanomial_counts_pairs():
    w, d, loss = arena.WIN, arena.DRAW, arena.LOSS
    outcome = np.array([[w, loss], [w, loss], [w, loss], [d, d], [loss, w], [loss, w]], np.int8)
    wdl, penta = tm.duel_records(outcome)
    assert (wdl.wins, wdl.draws, wdl.losses) == (3, 1, 2)
    assert penta.counts == (1, 0, 0, 1, 1)  # LL, -, -, WD, WW


def test_same_seeds_same_result_whatever_the_worker_count():
    settings = dict(games=24, seed=11, chunk_groups=4)
    one = tm.run(["greedy", "random-safe"], GAME, tm.TournamentConfig(workers=1, **settings))
    two = tm.run(["greedy", "random-safe"], GAME, tm.TournamentConfig(workers=2, **settings))
    assert one.pairs == two.pairs and one.mean_turns == two.mean_turns
    assert one.games == 24 and one.pairs[0].pentanomial is not None and sum(one.pairs[0].pentanomial) == 12
    other = tm.run(["greedy", "random-safe"], GAME, tm.TournamentConfig(workers=1, games=24, seed=12, chunk_groups=4))
    assert other.pairs != one.pairs  # the seed matters


def test_sprt_stops_a_lopsided_duel_early_with_h1():
    config = tm.TournamentConfig(games=400, chunk_groups=4, min_games=16,
                                 sprt=sequential.SprtConfig(elo0=0, elo1=100))
    report = tm.run(["greedy", "random-safe"], GAME, config)
    assert report.sprt is not None and report.sprt.stopped_early
    assert report.sprt.decision is sequential.SprtDecision.ACCEPT_H1
    assert 16 <= report.games < 400 and report.games % 8 == 0  # whole chunks of 4 pairs
    assert report.sprt.llr >= report.sprt.upper_bound
    # the LLR the report shows is the one of the counts it shows
    penta = stats.Pentanomial(*report.pairs[0].pentanomial)
    assert report.sprt.llr == pytest.approx(sequential.sprt(penta, config.sprt).llr)


def test_sprt_never_stops_before_min_games():
    config = tm.TournamentConfig(games=400, chunk_groups=2, min_games=64,
                                 sprt=sequential.SprtConfig(elo0=0, elo1=100))
    assert tm.run(["greedy", "random-safe"], GAME, config).games >= 64


def test_league_ranks_heuristic_over_greedy_over_random_safe():
    report = tm.run(["random-safe", "greedy", "heuristic"], GAME, tm.TournamentConfig(games=40, seed=1))
    assert report.mode is tm.Mode.LEAGUE
    assert [r.player for r in report.league] == ["heuristic", "greedy", "random-safe"]
    assert len(report.pairs) == 3 and all(p.games == 40 for p in report.pairs)
    assert sum(r.elo for r in report.league) == pytest.approx(0, abs=1e-6)


def test_free_for_all_puts_everyone_in_every_game():
    report = tm.run(["heuristic", "greedy", "random-safe", "random-safe"], GAME,
                    tm.TournamentConfig(games=8, ffa=True))
    assert report.mode is tm.Mode.FFA and report.games == 8
    assert [r.player for r in report.ffa] == ["heuristic", "greedy", "random-safe", "random-safe#2"]
    assert sum(r.wins + r.draws for r in report.ffa) >= 8 - sum(r.draws for r in report.ffa)
    assert len(report.pairs) == 6 and report.league


def test_bad_line_ups_are_refused():
    with pytest.raises(ValueError, match="two players"):
        tm.run(["greedy"], GAME, tm.TournamentConfig())
    with pytest.raises(ValueError, match="SPRT"):
        tm.run(["greedy", "random-safe", "heuristic"], GAME, tm.TournamentConfig(sprt=sequential.SprtConfig()))
    with pytest.raises(agents.SpecError):
        tm.run(["greedy", "nosuch"], GAME, tm.TournamentConfig(games=2))


def test_evaluate_writes_json(tmp_path, capsys):
    out = tmp_path / "result.json"
    code = evaluate.main(["--players", "greedy,random-safe", "--games", "8", "--seed", "3",
                          "--sprt", "0,35,0.1,0.1", "--json", str(out)])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["mode"] == "duel" and doc["games"] <= 8
    pair = doc["pairs"][0]
    assert pair["wins"] + pair["draws"] + pair["losses"] == doc["games"]
    assert pair["wilson_lower"] <= pair["score"] <= pair["wilson_upper"]
    assert doc["sprt"]["alpha"] == 0.1 and doc["games_per_second"] > 0
    assert "games/s" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--players", "greedy"], ["--players", "greedy,random-safe", "--sprt", "1"],
                                  ["--players", "a,b", "--games", "0"]])
def test_evaluate_usage_errors(argv):
    assert evaluate.main(argv) == evaluate.EXIT_USAGE


def test_parse_sprt():
    config = evaluate.parse_sprt("0,35")
    assert (config.elo0, config.elo1, config.alpha, config.beta) == (0, 35, 0.05, 0.05)
    assert evaluate.parse_sprt("-5,5,0.1,0.2").beta == 0.2
