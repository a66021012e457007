"""Tournaments and gated promotion: what a user relies on when reading a table or a gate.

Cheap players (random-safe, greedy, heuristic) keep every test fast; the gate
tests play small ONNX models built in a temporary directory.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from ouroboros.contract.promotion import SprtSpec
from ouroboros.trainer.agents import arena
from ouroboros.trainer.agents import registry as agents
from ouroboros.trainer.commands import _common, evaluate
from ouroboros.trainer.engine import maps
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.evaluation import sprt as sequential
from ouroboros.trainer.evaluation import stats
from ouroboros.trainer.evaluation import tournament as tm
from ouroboros.trainer.observation import encoding

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


def test_logged_games_are_the_games_played_and_change_nothing():
    """With log_games each game comes back as an official-CLI log (game line, turns, result), in
    seed order with the seats' rotation, its winner the record's; the statistics are the same."""
    settings = dict(games=12, seed=3, chunk_groups=4, max_turns=60)
    line_up = [tm.Entrant("greedy", "g"), tm.Entrant("random-safe", "r")]
    plain = tm.run(line_up, GAME, tm.TournamentConfig(**settings))
    logged = tm.run(line_up, GAME, tm.TournamentConfig(log_games=True, **settings))
    assert plain.pairs == logged.pairs and plain.game_logs == [] and len(logged.game_logs) == 12
    results = [json.loads(game[-1]) for game in logged.game_logs]
    points = [1.0 if r["winnerName"] == "g" else 0.5 if r["isDraw"] else 0.0 for r in results]
    pairs = logged.pairs[0].pair_points
    assert pairs == [round(2 * (a + b)) for a, b in zip(points[::2], points[1::2], strict=True)]
    assert sum(pairs) / 2 == logged.pairs[0].wins + logged.pairs[0].draws / 2
    first = [json.loads(game[0])["id"] for game in logged.game_logs]
    assert first[:2] == [tm.game_id(["g", "r"], 3, 0), tm.game_id(["g", "r"], 3, 1)] and len(set(first)) == 12
    assert "pair_points" not in logged.model_dump_json() and "game_logs" not in logged.model_dump_json()


def test_sprt_stops_a_lopsided_duel_early_with_h1():
    config = tm.TournamentConfig(games=400, chunk_groups=4, min_games=16,
                                 sprt=SprtSpec(elo0=0, elo1=100))
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
                                 sprt=SprtSpec(elo0=0, elo1=100))
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
        tm.run(["greedy", "random-safe", "heuristic"], GAME, tm.TournamentConfig(sprt=SprtSpec()))
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


@pytest.mark.parametrize(("argv", "line"), [
    (["--games", "-2"], "ouro evaluate: --games: Input should be greater than or equal to 1"),
    (["--workers", "0"], "ouro evaluate: --workers: Input should be greater than or equal to 1"),
    (["--chunk", "0"], "ouro evaluate: --chunk: Input should be greater than or equal to 1"),  # field chunk_groups
    (["--max-turns", "-1"], "ouro evaluate: --max-turns: Input should be greater than or equal to 0"),
])
def test_evaluate_names_the_flag_of_a_refused_setting_in_one_line(capsys, argv, line):
    """Was pydantic's multi-line report on TournamentConfig's field."""
    assert evaluate.main(["--players", "greedy,random-safe", *argv]) == evaluate.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.strip() == line, err


def test_parse_sprt():
    config = evaluate.parse_sprt("0,35")
    assert (config.elo0, config.elo1, config.alpha, config.beta) == (0, 35, 0.05, 0.05)
    assert evaluate.parse_sprt("-5,5,0.1,0.2").beta == 0.2


# -- gated promotion --------------------------------------------------------------------------

KEY = "standard-11x11-2p"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two tiny ONNX players of known strength: `food` walks up the gradient of a food
    field (about greedy), `dumb` takes the first safe move of up/down/left/right."""
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    folder = tmp_path_factory.mktemp("models")

    class Food(torch.nn.Module):
        def forward(self, board):  # board [N, C, H, W] -> policy [N, 4], value [N, 1]
            field, head = board[:, 12:13], board[:, 1:2]  # food, own head
            for _ in range(12):
                field = torch.maximum(field, 0.7 * functional.max_pool2d(field, 3, 1, 1))
            h, w = field.shape[2], field.shape[3]
            up = functional.pad(field, (0, 0, 1, 0))[:, :, :h]  # row - 1
            down = functional.pad(field, (0, 0, 0, 1))[:, :, 1:]
            left = functional.pad(field, (1, 0, 0, 0))[:, :, :, :w]
            right = functional.pad(field, (0, 1, 0, 0))[:, :, :, 1:]
            policy = torch.cat([(s * head).sum(dim=(2, 3)) for s in (up, down, left, right)], dim=1)
            return policy, board[:, 0:1, 0, 0] * 0

    class Dumb(torch.nn.Module):
        def forward(self, board):
            return board[:, 0, 0, :4] * 0, board[:, 0:1, 0, 0] * 0

    paths = {}
    for name, module in (("food", Food()), ("dumb", Dumb())):
        paths[name] = folder / f"{name}.onnx"
        with warnings.catch_warnings():  # the legacy exporter's deprecation notes
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, torch.zeros(1, encoding.N_CHANNELS, 11, 11), str(paths[name]), input_names=["board"],
                output_names=["policy", "value"], dynamo=False,
                dynamic_axes={"board": {0: "n"}, "policy": {0: "n"}, "value": {0: "n"}})
        # the ONNX contract's metadata, as `ouro export` writes it: no model is put in force without it
        import onnx

        from ouroboros.trainer.learning import networks, onnx_export

        proto = onnx.load(str(paths[name]))
        spec = onnx_export.contract(networks.NetworkConfig(), 11, 11, "fp32")
        proto.metadata_props.add(key="contract", value=json.dumps(spec))
        onnx.save(proto, str(paths[name]))
    return paths


def gate(store, version, *extra):
    """`ouro registry promote VERSION --gate` with a short gate. The latency limit is one a loaded CI machine
    always meets (the default 10 ms p99 is one a loaded machine can miss, which would fail these tests for a
    reason they are not about); a test of the readiness check passes its own, which comes later and wins."""
    from ouroboros.trainer.commands import registry as cli

    return cli.main(["promote", version, "--game", KEY, "--gate", "--store", store, "--by", "ci",
                     "--games", "200", "--min-games", "16", "--latency-calls", "20", "--max-p99-ms", "1000",
                     *extra])


def test_gated_promotion(models, tmp_path, capsys):
    from ouroboros.trainer.artifacts import registry as reg

    store = str(tmp_path / "registry")
    registry = reg.Registry.open(store)
    for version, model in (("dumb-1", "dumb"), ("food-1", "food"), ("dumb-2", "dumb"), ("food-2", "food")):
        registry.register(models[model], architecture="hand-made", run=version, phase="test",
                          version_id=version, game=KEY)

    # no champion yet: readiness alone decides
    assert gate(store, "dumb-1") == 0
    first = registry.champion(KEY)
    assert first.version == "dumb-1" and first.history[0].statistics["first_champion"] is True
    assert first.history[0].statistics["p99_latency_ms"] < 10

    # stronger: the SPRT accepts H1 and the gate's statistics land in the history
    assert gate(store, "food-1", "--workers", "2") == 0
    state = registry.champion(KEY)
    assert state.version == "food-1"
    record = state.history[0].statistics
    assert record["sprt_decision"] == "accept_h1" and record["champion"] == "dumb-1"
    assert record["games"] < 200 and record["wins"] > record["losses"] and record["elo"] > 0
    assert "accepted H1" in state.history[0].reason and state.history[0].by == "ci"

    # weaker: rejected with its reasons, champion unchanged
    capsys.readouterr()
    assert gate(store, "dumb-2") == 1
    assert "NOT promoted" in capsys.readouterr().out
    assert registry.champion(KEY).version == "food-1" and registry.champion(KEY).generation == state.generation

    # a win-rate gate on a fixed budget rejects it too
    assert gate(store, "dumb-2", "--min-win-rate", "0.55", "--games", "32") == 1

    # failing readiness rejects even a candidate of the champion's strength
    assert gate(store, "food-2", "--max-p99-ms", "0.000001") == 1
    assert registry.champion(KEY).version == "food-1"


def test_gate_refuses_a_corrupt_candidate(models, tmp_path, capsys):
    from ouroboros.trainer.artifacts import registry as reg

    store = str(tmp_path / "registry")
    registry = reg.Registry.open(store)
    registry.register(models["food"], architecture="hand-made", run="r", phase="test", version_id="bad")
    path = registry.store.path(registry.get("bad").artifact)
    data = bytearray(registry.store.fs.cat_file(path))
    data[-1] ^= 0xFF
    registry.store.fs.pipe_file(path, bytes(data))
    assert gate(store, "bad") == _common.EXIT_CORRUPT
    assert registry.champion(KEY).version is None
    assert "sha256" in capsys.readouterr().err


def test_evaluate_plays_registry_versions_and_the_champion(models, tmp_path):
    from ouroboros.trainer.artifacts import registry as reg

    store = str(tmp_path / "registry")
    registry = reg.Registry.open(store)
    registry.register(models["food"], architecture="hand-made", run="r", phase="test", version_id="food")
    registry.register(models["dumb"], architecture="hand-made", run="r", phase="test", version_id="dumb")
    registry.promote(KEY, "dumb")
    out = tmp_path / "r.json"
    assert evaluate.main(["--players", "registry:food,champion", "--games", "8", "--store", store,
                          "--json", str(out)]) == 0
    assert json.loads(out.read_text())["players"] == ["registry:food", "champion (dumb)"]
    assert evaluate.main(["--players", "registry:nosuch,greedy", "--store", store]) == evaluate.EXIT_REFUSED



def test_stored_players_resolve_through_the_registry(models, tmp_path, monkeypatch):
    """`champion` and `registry:VERSION` work in any verb's player spec, from $OURO_STORE."""
    from ouroboros.trainer.artifacts import registry as reg

    store = str(tmp_path / "registry")
    monkeypatch.setenv("OURO_STORE", store)
    registry = reg.Registry.open(store)
    registry.register(models["food"], architecture="hand-made", run="r", phase="test", version_id="food-1", game=KEY)
    registry.promote(KEY, "food-1", by="test", reason="first")
    assert agents.make_player("champion").name == "champion (food-1)"
    assert agents.make_player("registry:food-1").name == "registry:food-1"


def test_a_candidate_that_regresses_against_a_baseline_is_rejected_with_its_numbers(models, tmp_path, capsys):
    """The head-to-head is set to pass anything near the champion (SPRT H0 -1000 Elo, H1 -500); the
    candidate (`dumb`) then scores less against greedy than the champion (`food`) did on the same
    seeds (0.275 against 0.385 over 100 games), significantly so with no tolerance (maxRegression 0),
    and the baseline check rejects it, naming greedy and the figures; every game is kept."""
    from ouroboros.trainer.artifacts import registry as reg
    from ouroboros.trainer.learning import imported

    store = str(tmp_path / "registry")
    registry = reg.Registry.open(store)
    for version, model in (("food-1", "food"), ("dumb-2", "dumb")):
        registry.register(models[model], architecture="hand-made", run=version, phase="test",
                          version_id=version, game=KEY)
    assert gate(store, "food-1") == 0
    capsys.readouterr()
    code = gate(store, "dumb-2", "--sprt=-1000,-500", "--games", "40", "--min-games", "8", "--json",
                "--baseline", "greedy:100:0", "--game-logs", "gates/dumb-2")
    out = capsys.readouterr()
    assert out.out, (code, out.err)
    doc = json.loads(out.out)
    assert code == 1 and doc["verdict"] == "reject" and registry.champion(KEY).version == "food-1", doc
    assert doc["statistics"]["sprt_decision"] == "accept_h1"  # the head-to-head alone would promote
    [line] = doc["statistics"]["baselines"]
    assert line["player"] == "greedy" and not line["passed"] and line["games"] == 100
    assert line["difference_upper"] < 0 and line["difference"] == pytest.approx(
        line["win_rate"] - line["champion_win_rate"], abs=1e-3)
    assert doc["reasons"][0].startswith("regressed against baseline greedy: candidate ")
    folders = [u.removeprefix("file://") for u in doc["statistics"]["game_logs"]]
    assert [f.rstrip("/").rsplit("/", 1)[1] for f in folders] == ["champion", "greedy"]
    greedy = sorted(Path(folders[1]).glob("*.jsonl"))
    assert len(greedy) == 200 and {g.name.split("-")[0] for g in greedy} == {"candidate", "champion"}
    assert set(imported.read(greedy[0]).names) == {"dumb-2", "greedy"}


@pytest.mark.parametrize(("option", "message"), [
    ("champion", "--baseline 'champion': player"),
    ("greedy:7", "--baseline 'greedy:7': baselines[].games must be even"),
    ("greedy:10:2", "--baseline 'greedy:10:2': max_regression"),
    ("greedy:2:0:0:1", "--baseline expects PLAYER[:GAMES[:MAX_REGRESSION[:MIN_WIN_RATE]]]"),
])
def test_a_bad_baseline_option_is_refused_naming_it(models, tmp_path, capsys, option, message):
    from ouroboros.trainer.artifacts import registry as reg

    store = str(tmp_path / "registry")
    reg.Registry.open(store).register(models["food"], architecture="hand-made", run="r", phase="test",
                                      version_id="food-1", game=KEY)
    assert gate(store, "food-1", "--baseline", option) == _common.EXIT_USAGE  # a bad flag is usage (2), as _common documents
    assert message in capsys.readouterr().err
    assert reg.Registry.open(store).champion(KEY).version is None


def test_nsearch_plays_the_champion_of_the_tournaments_game_from_its_store(onnx_models, tmp_path, capsys):
    """`nsearch:model=champion` is the champion `champion` is: of --width/--height's game, from --store
    (it looked for standard-11x11-2p's in the default store: 'no champion of standard-11x11-2p')."""
    from ouroboros.trainer.artifacts import registry as reg

    store = str(tmp_path / "registry")
    registry = reg.Registry.open(store)
    registry.register(onnx_models[0], architecture="cnn", run="r", phase="test", version_id="seven", filename="m.onnx")
    registry.promote("standard-7x7-2p", "seven")
    entrants = evaluate.resolve(["nsearch:model=champion,visits=4,ms=0", "nsearch:ms=0,model=registry:seven,visits=2"],
                                store, "standard-7x7-2p", tmp_path)
    assert [e.name for e in entrants] == ["nsearch:model=champion,visits=4,ms=0",
                                          "nsearch:ms=0,model=registry:seven,visits=2"]
    assert entrants[0].spec == f"nsearch:model={tmp_path / 'champion-seven.onnx'},visits=4,ms=0"
    assert entrants[1].spec == f"nsearch:ms=0,model={tmp_path / 'seven.onnx'},visits=2"
    assert evaluate.main(["--players", "nsearch:model=champion,visits=4,ms=0,greedy", "--games", "2",
                          "--width", "7", "--height", "7", "--store", store, "--max-turns", "20"]) == 0
