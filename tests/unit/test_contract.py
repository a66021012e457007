"""The contract between the images: one vocabulary that the operator writes and the trainer reads."""

from __future__ import annotations

import pytest

from ouroboros.contract import vocabulary
from ouroboros.contract.game import GameKey, GameSpec
from ouroboros.contract.promotion import GateMethod, PromotionSpec, SprtSpec
from ouroboros.contract.run import RunConfig
from ouroboros.contract.vocabulary import Architecture, Metric, PhaseName, Ruleset
from ouroboros.operator.builders import manifests
from ouroboros.operator.resources import TrainingRun
from ouroboros.trainer.engine import types
from ouroboros.trainer.evaluation import promotion
from ouroboros.trainer.learning import networks
from ouroboros.trainer.learning.phases import config as pc
from ouroboros.trainer.learning.phases import runner

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("key", ["standard-11x11-2p", "royale-7x9-4p", "wrapped_constrictor-25x25-8p", "solo-7x7-1p"])
def test_game_keys_round_trip(key):
    parsed = GameKey.parse(key)
    assert str(parsed) == key and GameKey.parse(str(parsed)) == parsed
    assert str(parsed.spec().key) == key


@pytest.mark.parametrize(("text", "needle"), [
    ("Bad Key", "must look like RULESET-WxH-Np"), ("standard-11x11", "must look like"),
    ("chess-8x8-2p", "'chess' is not a valid Ruleset"), ("standard-26x11-2p", "each side must be 1 to 25"),
    ("standard-11x11-9p", "must be 1 to 8"), ("standard-0x11-2p", "each side must be 1 to 25"),
])
def test_bad_game_keys_name_what_is_wrong(text, needle):
    with pytest.raises(ValueError, match=needle):
        GameKey.parse(text)


def _run(spec: dict) -> TrainingRun:
    return TrainingRun.model_validate({"metadata": {"name": "r", "namespace": "ns", "uid": "0123456789"},
                                       "spec": {"champion": "c", **spec}})


def test_what_the_operator_writes_is_what_a_phase_trains_with():
    run = _run({
        "game": {"ruleset": "royale", "width": 9, "height": 13, "snakes": 3, "foodSpawnChance": 40,
                 "minimumFood": 3, "hazardDamagePerTurn": 7, "shrinkEveryNTurns": 10, "maxTurns": 321},
        "model": {"architecture": "cnn_simple", "blocks": 3, "channels": 24, "valueHidden": 16},
        "phases": [{"name": "bootstrap", "games": 10, "learningRate": 0.01, "batchSize": 64, "heuristicRatio": 0.2},
                   {"name": "hybrid", "games": 12, "iterations": 3, "epochs": 4, "temperature": 0.5}],
        "storage": {"url": "s3://bucket/prefix"},
    })
    config = RunConfig.model_validate_json(manifests.config_map(run)["data"]["run.json"])
    settings, phase = pc.from_run_config(config, PhaseName.HYBRID)
    assert settings.game == run.spec.game and settings.store == "s3://bucket/prefix"
    assert settings.run == "ns.r-01234567"  # keyed by uid: a recreated run never resumes a deleted one
    engine = types.game_config(settings.game)
    assert (engine.width, engine.height, engine.n_snakes, engine.ruleset) == (9, 13, 3, Ruleset.ROYALE)
    assert engine.settings == types.RulesetSettings(40, 3, 7, 10)
    assert settings.network.architecture is Architecture.CNN_SIMPLE
    assert (settings.network.blocks, settings.network.channels, settings.network.value_hidden) == (3, 24, 16)
    assert (phase.games, phase.iterations, phase.epochs, phase.temperature) == (12, 3, 4, 0.5)
    _, boot = pc.from_run_config(config, PhaseName.BOOTSTRAP)
    assert (boot.learning_rate, boot.batch_size, boot.heuristic_ratio) == (0.01, 64, 0.2)
    net = networks.build_network(settings.network, seed=0)  # the name says what is built
    assert net.config.name.startswith("cnn_simple-3x24")


def test_the_default_model_is_the_default_network():
    assert networks.NetworkConfig.from_spec(_run({"phases": [{"name": "bootstrap"}]}).spec.model) == \
        networks.NetworkConfig()


@pytest.mark.parametrize(("spec", "method", "games", "min_games"), [
    ({}, GateMethod.SPRT, 400, 100),
    ({"method": "winRate", "minWinRate": 0.6, "games": 50, "minGames": 50}, GateMethod.WIN_RATE, 50, 0),
    ({"games": 20, "minGames": 10, "sprt": {"elo0": -10, "elo1": 10, "alpha": 0.1, "beta": 0.2}}, GateMethod.SPRT, 20, 10),
])
def test_one_converter_from_spec_promotion_to_the_gate(spec, method, games, min_games):
    promotion_spec = PromotionSpec.model_validate(spec)
    gate = promotion.policy_from_spec(promotion_spec)
    assert (gate.method, gate.max_games, gate.min_games) == (method, games, min_games)
    assert gate.sprt == promotion_spec.sprt and gate.readiness == promotion_spec.readiness
    if method is GateMethod.WIN_RATE:
        assert gate.win_rate.min_win_rate == promotion_spec.min_win_rate


def test_one_sprt_validation_for_both_images():
    with pytest.raises(ValueError, match=r"sprt.alpha \+ sprt.beta must be < 1"):
        SprtSpec(alpha=0.6, beta=0.45)
    assert SprtSpec(alpha=0.6, beta=0.3).upper_bound > 0  # what fishtest allows, both sides allow


def test_metric_names():
    assert vocabulary.win_rate_vs("random-safe") == "winRateVsRandomSafe"
    assert vocabulary.win_rate_vs("self_play-0003") == "winRateVsSelfPlay0003"
    assert vocabulary.prometheus_name(Metric.POSITIONS_PER_SECOND) == "positions_per_second"
    assert all(vocabulary.is_metric_name(m) for m in Metric)
    assert not vocabulary.is_metric_name("loss/policy") and not vocabulary.is_metric_name("win_rate")
    assert vocabulary.elo_vs("random-safe") == "eloVsRandomSafe"
    assert vocabulary.elo_vs("self_play-0003", "Lower") == "eloVsSelfPlay0003Lower"
    with pytest.raises(ValueError, match="bound must be"):
        vocabulary.elo_vs("heuristic", "Middle")
    assert vocabulary.is_metric_name("eloVsHeuristicUpper") and not vocabulary.is_metric_name("eloVs-x")


@pytest.mark.parametrize(("key", "series", "label"), [
    ("eloVsHeuristic", "elo", "heuristic"),
    ("eloVsRandomSafeLower", "elo_lower", "random_safe"),
    ("eloVsSelfPlay0003Upper", "elo_upper", "self_play0003"),
    ("winRateVsRandomSafe", "win_rate", "random_safe"),
    ("elo", None, None),  # the evaluate phase's Elo against the champion is in status.promotion, not a curve
])
def test_elo_metrics_become_the_elo_series_with_the_opponent_label(key, series, label):
    from ouroboros.contract.training_metrics import classify

    found = classify(key)
    assert (found[0].value, found[1]) == (series, label) if series else found is None


def test_rl_phases_report_the_pooled_win_rate_the_operator_reads():
    rates = runner.win_rates({"heuristic": [3, 1, 4], "random-safe": [6, 0, 2]})
    assert rates["winRateVsHeuristic"] == pytest.approx(3.5 / 8)
    assert rates[Metric.WIN_RATE] == pytest.approx(9.5 / 16)
    assert runner.win_rates({}) == {}


def test_max_turns_has_no_hidden_meaning():
    with pytest.raises(ValueError):
        GameSpec(max_turns=0)  # no "0 = no limit" that silently becomes 500


@pytest.mark.parametrize(("text", "player", "ms", "visits", "served"), [
    ("policy", "policy", 100.0, 0, "policy"),
    ("champion", "policy", 100.0, 0, "policy"),
    ("nsearch", "nsearch", 100.0, 0, "nsearch:ms=100"),
    ("nsearch:ms=40", "nsearch", 40.0, 0, "nsearch:ms=40"),
    ("champion+nsearch:ms=0,visits=8", "nsearch", 0.0, 8, "nsearch:ms=0,visits=8"),
    (" nsearch: visits = 16 ", "nsearch", 100.0, 16, "nsearch:ms=100,visits=16"),
    ("nsearch:ms=12.5", "nsearch", 12.5, 0, "nsearch:ms=12.5"),
])
def test_the_served_player_is_the_gates_player_in_the_words_of_ouro_serve(text, player, ms, visits, served):
    """One vocabulary: what `ouro serve --player champion[+nsearch:ms=N]` takes sets the gate's own fields,
    and the gate's fields print back as a player that reads the same again."""
    spec = PromotionSpec().with_served_player(text)
    assert (spec.player.value, spec.move_budget_ms, spec.max_visits) == (player, ms, visits)
    assert spec.served_player == served and PromotionSpec().with_served_player(served) == spec
    assert spec.games == PromotionSpec().games  # the rest of the gate is untouched


def test_the_endgame_hand_off_is_part_of_the_served_player():
    """`champion+nsearch:endgame=X` sets the gate's endgameShare, prints back, and reaches the gate's games."""
    from pathlib import Path

    from ouroboros.trainer.evaluation import promotion

    spec = PromotionSpec().with_served_player("champion+nsearch:ms=100,endgame=0.25")
    assert (spec.player.value, spec.move_budget_ms, spec.endgame_share) == ("nsearch", 100.0, 0.25)
    assert spec.served_player == "nsearch:ms=100,endgame=0.25"
    assert PromotionSpec().with_served_player(spec.served_player) == spec
    assert promotion.player_spec(Path("/m.onnx"), spec) == "nsearch:model=/m.onnx,ms=100,visits=0,endgame=0.25"
    assert PromotionSpec().with_served_player("nsearch").served_player == "nsearch:ms=100"  # 0: no hand-off


@pytest.mark.parametrize(("text", "needle"), [
    ("nsearch:endgame=1.5", "--gate-player: 'nsearch:endgame=1.5': endgame: Input should be less than or equal to 1"),
    ("nsearch:endgame=nan", "endgame: Input should be a finite number"),
    ("nsearch:ms=0,visits=8,endgame=0.25", "promotion.endgameShare needs player nsearch and moveBudgetMs > 0"),
    ("search:ms=40", "--gate-player: unknown player 'search:ms=40'"),
    ("policy:ms=40", "--gate-player: policy takes no options"),
    ("nsearch:depth=3", "expected ms=N, visits=N or endgame=X in 'nsearch:depth=3', got 'depth=3'"),
    ("nsearch:ms", "got 'ms'"),
    ("nsearch:ms=fast", "--gate-player: 'nsearch:ms=fast': ms: Input should be a valid number"),
    ("nsearch:visits=-1", "visits: Input should be greater than or equal to 0"),
    ("nsearch:ms=0", "nsearch needs a budget"),
    ("nsearch:ms=nan", "ms: Input should be a finite number"),  # not "less than or equal to 60000"
])
def test_a_bad_served_player_is_refused_naming_the_flag_and_the_option(text, needle):
    with pytest.raises(ValueError) as err:
        PromotionSpec().with_served_player(text, "--gate-player")
    assert needle in str(err.value)
