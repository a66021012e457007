"""The search teacher's values of positions become bootstrap's value targets.

`search.values` turns the scores of each seat's own search into values in
[-1, 1] (exactly opposite in a duel, as outcomes are); `Search.act_scored`
reports the score of each decision it searched, `NeuralSearch.act_scored` its
root value; a bootstrap game with either search as teacher records those
values in the expert's replay columns; and
the imitation step trains the value head on the mix that
``teacher_value_weight`` names (0: the game's outcome alone, as before).
Networks are tiny (`cnn_simple` 2x8), searches two turns deep.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from ouroboros.contract.run import PhaseSpec
from ouroboros.contract.vocabulary import PhaseName
from ouroboros.trainer.agents import search
from ouroboros.trainer.engine import maps, rules
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.learning import networks, replay
from ouroboros.trainer.learning.checkpoint import TrainState
from ouroboros.trainer.learning.phases import config as pc
from ouroboros.trainer.learning.phases import imitation, selfplay
from ouroboros.trainer.observation import encoding

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_torch_thread")]

TINY_NET = networks.NetworkConfig(architecture="cnn_simple", attention_layers=0, blocks=2, channels=8)
NAN = math.nan


def test_values_are_the_squashed_lead_over_the_best_rival():
    scores = np.array([
        [300.0, -300.0, NAN],        # a duel inside a 3-seat array: the NaN seat is no rival
        [100.0, 100.0, -500.0],      # three snakes: the lead over the best rival
        [search.WIN, -200.0, NAN],   # a proven win saturates (scores clipped first)
        [250.0, NAN, NAN],           # no rival searched: no value
    ])
    got, valid = search.values(scores)
    scale = search.VALUE_SCALE
    want = [[math.tanh(600 / scale), -math.tanh(600 / scale), 0.0],
            [0.0, 0.0, math.tanh(-600 / scale)],
            [1.0, -1.0, 0.0],
            [0.0, 0.0, 0.0]]
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_array_equal(valid, [[1, 1, 0], [1, 1, 1], [1, 1, 0], [0, 0, 0]])
    assert got.dtype == np.float32


def test_act_scored_reports_what_was_searched_and_plays_as_act():
    config = GameConfig(7, 7, 2)
    state = maps.new_games(config, np.arange(4) + 3)
    player = search.Search(ms=1e6, max_depth=2)
    rng = np.random.default_rng(0)
    for _ in range(6):
        state = rules.step(config, state, np.stack([player.act(config, state, s, rng) for s in range(2)], 1))
    state.alive[3, 0] = False  # a snake that is out gets no decision and no score
    moves, scores = player.act_scored(config, state, 0, rng)
    np.testing.assert_array_equal(moves, player.act(config, state, 0, rng))
    assert np.isnan(scores[3]) and np.isfinite(scores[:3]).all()


def test_a_bootstrap_game_with_the_search_teacher_records_its_values():
    config = GameConfig(7, 7, 2)
    teacher = search.Search(ms=1e6, max_depth=2)
    rollout = selfplay.play(config, games=2, parallel=2, max_turns=12, seed=5,
                            assign=lambda i, rng: [selfplay.Seat.TEACHER] * 2, rng=np.random.default_rng(1),
                            record_teacher=True, teacher_player=teacher)
    cols = rollout.columns
    searched = cols["searched"]
    assert searched.mean() > 0.5  # most positions give both snakes a choice
    value = cols["search_value"]
    assert (np.abs(value) <= 1).all() and (value[~searched] == 0).all()
    # a duel's two values of one position are opposite, and the policy column is the teacher's move
    by_position = {}
    for row in np.flatnonzero(searched):
        by_position.setdefault((cols["game_id"][row], cols["turn"][row]), []).append(value[row])
    pairs = [v for v in by_position.values() if len(v) == 2]
    assert pairs and all(abs(a + b) < 1e-6 for a, b in pairs)
    rows = np.flatnonzero(searched)
    np.testing.assert_array_equal(cols["search_policy"][rows].argmax(axis=1), cols["move"][rows])
    heuristic = selfplay.play(config, games=1, parallel=1, max_turns=5, seed=5,
                              assign=lambda i, rng: [selfplay.Seat.TEACHER] * 2, rng=np.random.default_rng(1),
                              record_teacher=True)
    assert "search_value" not in heuristic.columns  # the heuristic scores no position


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    """A randomly initialised cnn_simple 2x8 exported with the ONNX contract (7x7 boards)."""
    from ouroboros.trainer.learning import onnx_export

    path = tmp_path_factory.mktemp("teacher") / "tiny.onnx"
    path.write_bytes(onnx_export.to_onnx(networks.build_network(TINY_NET, seed=0), 7, 7))
    return path


def test_the_neural_search_scores_its_decisions_with_its_root_value(tiny_onnx):
    from ouroboros.trainer.agents import nsearch

    config = GameConfig(7, 7, 2)
    state = maps.new_games(config, np.arange(3) + 3)
    player = nsearch.NeuralSearch(str(tiny_onnx), ms=0, visits=24, reuse=False)
    rng = np.random.default_rng(0)
    state.alive[2, 1] = False  # a snake that is out gets no decision and no value
    moves, scores = player.act_scored(config, state, 1, rng)
    assert np.isnan(scores[2]) and np.isfinite(scores[:2]).all() and (np.abs(scores[:2]) <= 1).all()
    np.testing.assert_allclose(scores[:2], [r.value for r in player.results[-2:]])
    np.testing.assert_array_equal(moves[:2], [r.move for r in player.results[-2:]])
    values, valid = player.values(np.array([[scores[0], NAN], [2.0, -0.5]]))
    np.testing.assert_allclose(values, [[scores[0], 0.0], [1.0, -0.5]], atol=1e-6)  # clipped, not led
    np.testing.assert_array_equal(valid, [[1, 0], [1, 1]])


def test_a_bootstrap_game_with_the_neural_search_teacher_records_its_root_values(tiny_onnx):
    from ouroboros.trainer.agents import nsearch

    config = GameConfig(7, 7, 2)
    teacher = nsearch.NeuralSearch(str(tiny_onnx), ms=0, visits=16, reuse=False)
    rollout = selfplay.play(config, games=2, parallel=2, max_turns=10, seed=5,
                            assign=lambda i, rng: [selfplay.Seat.TEACHER] * 2, rng=np.random.default_rng(1),
                            record_teacher=True, teacher_player=teacher)
    cols = rollout.columns
    searched = cols["searched"]
    assert searched.mean() > 0.5
    value = cols["search_value"]
    assert (value[~searched] == 0).all() and (np.abs(value) <= 1).all()
    # the recorded values are the searches' own root values, seat by seat (not a lead over a rival)
    searched_values = {round(float(r.value), 5) for r in teacher.results if r.simulations}
    assert {round(float(v), 5) for v in value[searched]} <= searched_values
    rows = np.flatnonzero(searched)
    np.testing.assert_array_equal(cols["search_policy"][rows].argmax(axis=1), cols["move"][rows])


@pytest.mark.parametrize(("weight", "sign"), [(1.0, -1.0), (0.0, 1.0)])
def test_imitation_trains_the_value_on_the_weighted_mix(monkeypatch, weight, sign):
    """Outcome +1, the search's value -1: the value head follows the search at weight 1 and the outcome at 0."""
    monkeypatch.setattr(encoding, "augment", lambda planes, target, rng: (planes, target))
    n = 64
    rng = np.random.default_rng(0)
    cols = {"planes": rng.random((n, TINY_NET.in_channels, 7, 7)).astype(np.float16),
            "move": np.zeros(n, np.int8), "mask": np.ones((n, 4), np.uint8), "value": np.ones(n, np.float32),
            "search_value": np.full(n, -1.0, np.float32), "searched": np.ones(n, bool)}
    buffer = replay.ReplayBuffer(cols, ["k"], np.zeros(n, np.int32), np.arange(n, dtype=np.int32),
                                 replay.ReplayConfig(priority_alpha=0.0))
    settings = pc.phase_settings(PhaseName.BOOTSTRAP, games=1, batch_size=n, learning_rate=0.01,
                                 teacher_value_weight=weight)
    net = networks.build_network(TINY_NET, seed=0)
    state = TrainState(net, torch.optim.Adam(net.parameters(), lr=0.01))
    for s in range(40):
        state.step = s
        imitation.step(state, buffer, settings, seed=0)
    net.eval()
    with torch.no_grad():
        value = net(torch.from_numpy(cols["planes"][:16].astype(np.float32)))[1].numpy()
    assert (value * sign > 0.5).all()


def test_the_weight_reaches_the_phase_and_needs_the_search_teacher():
    from ouroboros.contract.run import RunConfig

    def run(phase: dict):
        return RunConfig.model_validate({"run": {"name": "r", "namespace": "ns"}, "champion": "c", "game": {},
                                         "model": {}, "phases": [phase], "storage": {}})

    given = run({"name": "bootstrap", "teacher": "search", "teacherValueWeight": 0.8})
    assert pc.from_run_config(given, PhaseName.BOOTSTRAP)[1].teacher_value_weight == 0.8
    unset = run({"name": "bootstrap", "teacher": "search"})
    assert pc.from_run_config(unset, PhaseName.BOOTSTRAP)[1].teacher_value_weight == pc.DEFAULT_TEACHER_VALUE_WEIGHT
    for phase, words in [({"name": "bootstrap", "teacherValueWeight": 0.5}, "teacherValueWeight needs teacher: search"),
                         ({"name": "bootstrap", "teacher": "search", "teacherValueWeight": 1.5}, "teacherValueWeight"),
                         ({"name": "hybrid", "teacherValueWeight": 0.5}, "teacherValueWeight")]:
        with pytest.raises(ValidationError, match=words):
            PhaseSpec.model_validate(phase)


def test_ouro_train_sets_the_weight_and_refuses_one_out_of_range_or_without_a_search_teacher(tmp_path, capsys,
                                                                                            tiny_onnx):
    from ouroboros.trainer.commands import train

    args = train._parser().parse_args(["--preset", "smoke", "--store", str(tmp_path), "--teacher", "search:ms=5",
                                       "--teacher-value-weight", "0.25"])
    boot = next(p for p in train._plan(args).phases if p.kind is PhaseName.BOOTSTRAP)
    assert (boot.teacher, boot.teacher_value_weight) == ("search:ms=5", 0.25)
    neural = f"nsearch:model={tiny_onnx},ms=20"
    args = train._parser().parse_args(["--preset", "smoke", "--store", str(tmp_path), "--teacher", neural,
                                       "--teacher-value-weight", "0.5"])
    boot = next(p for p in train._plan(args).phases if p.kind is PhaseName.BOOTSTRAP)
    assert (boot.teacher, boot.teacher_value_weight) == (neural, 0.5)
    assert train.main(["--preset", "smoke", "--store", str(tmp_path), "--teacher", "nsearch:model=missing.onnx",
                       "--teacher-value-weight", "0.5"]) == 2  # the model is checked first
    assert "--teacher:" in capsys.readouterr().err
    (tmp_path / "text.onnx").write_text("not a model")
    assert train.main(["--preset", "smoke", "--store", str(tmp_path), "--teacher",
                       f"nsearch:model={tmp_path / 'text.onnx'}"]) == 2  # exit 2, not an onnxruntime traceback
    assert "not a loadable ONNX model" in capsys.readouterr().err

    for bad in ("1.5", "-0.1", "nan"):
        code = train.main(["--preset", "smoke", "--store", str(tmp_path), "--teacher", "search:ms=5",
                           "--teacher-value-weight", bad])
        assert code == 2
        assert "--teacher-value-weight: a share between 0 and 1" in capsys.readouterr().err
    for teacher in ([], ["--teacher", "heuristic"]):  # a weight the teacher cannot use is refused, not ignored
        assert train.main(["--preset", "smoke", "--store", str(tmp_path), "--teacher-value-weight", "0.5",
                           *teacher]) == 2
        err = capsys.readouterr().err
        assert "the teacher scores no position; it needs a search teacher" in err and "nsearch:model=M" in err
