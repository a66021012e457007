"""Expert iteration (`learning/phases/expert.py`): search statistics become the training targets.

A known position's search (the forced win of `test_nsearch`) must become the
policy target exactly as the search's visit counts, moves the safety mask
forbids must carry no mass, the PPO step must learn those targets, and a tiny
self_play phase with the option on must leave shards with the target columns
and train from them. Networks are tiny (`cnn_simple` 2x8) and the searches
short (8-600 simulations).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from ouroboros.contract.run import ExpertIterationSpec, PhaseSpec, RunConfig
from ouroboros.contract.vocabulary import Metric, PhaseName
from ouroboros.trainer.agents import nsearch
from ouroboros.trainer.artifacts.store import ArtifactStore
from ouroboros.trainer.commands import train
from ouroboros.trainer.engine import jsonio
from ouroboros.trainer.engine.types import GameMap, Move, Ruleset, RulesetSettings
from ouroboros.trainer.learning import networks, shards
from ouroboros.trainer.learning.checkpoint import TrainState
from ouroboros.trainer.learning.phases import config as pc
from ouroboros.trainer.learning.phases import execute, expert, ppo, selfplay
from ouroboros.trainer.observation import safety

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_torch_thread")]

UP, DOWN, LEFT, RIGHT = Move.UP, Move.DOWN, Move.LEFT, Move.RIGHT
TINY_NET = networks.NetworkConfig(architecture="cnn_simple", attention_layers=0, blocks=2, channels=8)


def neutral(board: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A forward with no opinion (uniform policy, value 0): every preference is the search's."""
    n = board.shape[0]
    return torch.zeros(n, 4), torch.zeros(n, 1)


def forced_win(us=((2, 1), (3, 1), (4, 1), (5, 1)), them=((0, 1), (0, 2), (0, 3))) -> jsonio.Game:
    """We (length 4, head (2, 1)) win by moving left onto (1, 1) (see test_nsearch.test_finds_a_forced_win);
    `right` runs into our own neck. ``us`` and ``them`` replace the bodies (head first)."""
    board = {"width": 7, "height": 7, "hazards": [], "food": [], "snakes": [
        {"id": "us", "health": 100, "body": [{"x": x, "y": y} for x, y in us]},
        {"id": "them", "health": 100, "body": [{"x": x, "y": y} for x, y in them]}]}
    settings = RulesetSettings(food_spawn_chance=0, minimum_food=0)
    return jsonio.parse_board(board, {"ruleset": Ruleset.STANDARD, "game_map": GameMap.EMPTY,
                                      "settings": settings}, turn=10, seed=1)


def test_visit_policy_normalises_allowed_visits_and_drops_the_rest():
    visits = np.array([[10, 30, 0, 60], [5, 0, 0, 5], [0, 0, 7, 0], [0, 0, 0, 0]])
    mask = np.array([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 1], [1, 1, 1, 1]], bool)
    got = expert.visit_policy(visits, mask)
    np.testing.assert_allclose(got, [[0.1, 0.3, 0, 0.6], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    assert got.dtype == np.float32 and got.shape == (4, 4)


def test_a_known_positions_search_becomes_the_target():
    """fraction=1: the row's policy target is the search's own root visits, normalised; the
    move played is the most visited at temperature 0; the value target is the root value."""
    g = forced_win()
    spec = ExpertIterationSpec(fraction=1.0, visits=600, temperature=0)
    mask = safety.safe_moves(g.config, g.state)[[0], [0]]
    assert mask.tolist() == [[True, True, True, False]]
    targets = expert.Expert(spec, neutral).decide(g.config, g.state, np.array([0]), np.array([0]), mask,
                                                  np.random.default_rng(0))
    reference = nsearch.NeuralSearch(expert.Evaluator(neutral), ms=0, visits=600).search(g.config, g.state, 0, 0)
    visits = np.array(reference.visits, np.float64)
    assert targets.searched.tolist() == [True]
    np.testing.assert_allclose(targets.policy[0], visits / visits.sum(), rtol=1e-6)
    assert targets.policy[0].argmax() == LEFT and targets.policy[0, RIGHT] == 0
    assert targets.moves.tolist() == [LEFT]
    assert targets.value[0] == pytest.approx(reference.value) and targets.value[0] > 0.5


def test_only_a_fraction_is_searched_and_a_forced_move_gets_no_target():
    g = forced_win()
    mask = safety.safe_moves(g.config, g.state)[[0, 0, 0, 0], [0, 0, 0, 0]]
    rows = np.zeros(4, np.int64)
    none = expert.Expert(ExpertIterationSpec(fraction=1e-9, visits=8), neutral).decide(
        g.config, g.state, rows, rows, mask, np.random.default_rng(0))
    assert not none.searched.any() and not none.policy.any()
    cornered = forced_win(us=[(0, 0), (1, 0), (2, 0)], them=[(6, 6), (6, 5), (6, 4)])  # only `up` stays on the board and off our body
    mask = safety.safe_moves(cornered.config, cornered.state)[[0], [0]]
    assert mask.tolist() == [[True, False, False, False]]
    single = expert.Expert(ExpertIterationSpec(fraction=1.0, visits=8), neutral).decide(
        cornered.config, cornered.state, rows[:1], rows[:1], mask, np.random.default_rng(0))
    assert not single.searched.any()  # one move: the search has nothing to compare


def test_sampling_sharpens_with_temperature():
    policy = np.tile(np.array([[0.1, 0.2, 0.0, 0.7]], np.float32), (4000, 1))
    rng = np.random.default_rng(5)
    assert (expert.sample_moves(policy, 0, rng) == 3).all()
    counts = np.bincount(expert.sample_moves(policy, 1.0, rng), minlength=4) / 4000
    np.testing.assert_allclose(counts, [0.1, 0.2, 0.0, 0.7], atol=0.03)
    sharp = np.bincount(expert.sample_moves(policy, 0.5, rng), minlength=4) / 4000
    assert counts[2] == 0 and sharp[3] > counts[3] + 0.1  # 0.49 / 0.54 = 0.91


def test_value_target_mixes_the_search_value_on_searched_rows_only():
    got = expert.value_target(np.array([1.0, -1.0, 0.5], np.float32), np.array([0.0, 0.2, 0.9], np.float32),
                              np.array([True, True, False]), 0.25)
    np.testing.assert_allclose(got, [0.75, -0.7, 0.5], rtol=1e-6)


def rollout_columns(n: int, searched: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "planes": rng.random((n, TINY_NET.in_channels, 7, 7)).astype(np.float16),
        "move": np.argmax(target, axis=1).astype(np.int8), "logp": np.full(n, np.log(0.25), np.float32),
        "v_old": np.zeros(n, np.float32), "mask": np.ones((n, 4), np.uint8),
        "reward": np.ones(n, np.float32), "done": np.ones(n, bool), "traj": np.arange(n),
        "search_policy": target.astype(np.float32), "search_value": np.full(n, -1.0, np.float32),
        "searched": searched,
    }


def test_ppo_step_learns_the_search_distribution():
    """Rows with targets: the policy moves toward the visit distribution (its cross-entropy
    falls), and the value target is the mix of the return (+1) and the search value (-1)."""
    n = 64
    target = np.tile(np.array([[0.1, 0.0, 0.8, 0.1]]), (n, 1))
    settings = pc.phase_settings(PhaseName.SELF_PLAY, games=1, batch_size=n, learning_rate=0.01,
                                 expert_iteration=ExpertIterationSpec(value_weight=0.5))
    data = ppo.RolloutData(rollout_columns(n, np.ones(n, bool), target), settings)
    np.testing.assert_allclose(data.ret.numpy(), 0.0, atol=1e-6)  # (1 - 0.5) * 1 + 0.5 * -1
    net = networks.build_network(TINY_NET, seed=0)
    state = TrainState(net, torch.optim.Adam(net.parameters(), lr=0.01))
    first = ppo.step(state, data, settings, seed=0)
    for s in range(1, 30):
        state.step = s
        last = ppo.step(state, data, settings, seed=0)
    assert first[Metric.SEARCH_POLICY_LOSS] == pytest.approx(first[Metric.POLICY_LOSS])
    assert last[Metric.SEARCH_POLICY_LOSS] < first[Metric.SEARCH_POLICY_LOSS] - 0.3
    net.eval()
    with torch.no_grad():
        probs = torch.softmax(net(data.planes[:8].float())[0], dim=1).numpy()
    assert (probs.argmax(axis=1) == LEFT).all()


def test_rows_without_targets_train_by_ppo_as_before():
    """A shard written before expert iteration (no target columns) gives the same step as one
    whose target columns say nothing was searched."""
    n = 32
    settings = pc.phase_settings(PhaseName.SELF_PLAY, games=1, batch_size=16)
    with_cols = rollout_columns(n, np.zeros(n, bool), np.zeros((n, 4)))
    with_cols["move"] = np.zeros(n, np.int8)
    old = {k: v for k, v in with_cols.items() if k not in expert.TARGET_COLUMNS}
    results = []
    for cols in (old, with_cols):
        net = networks.build_network(TINY_NET, seed=0)
        results.append(ppo.step(TrainState(net, torch.optim.Adam(net.parameters())), ppo.RolloutData(cols, settings),
                                settings, seed=0))
    assert results[0] == results[1] and Metric.SEARCH_POLICY_LOSS not in results[0]


def tiny_run(store) -> pc.RunSettings:
    from ouroboros.contract.game import GameSpec

    return pc.RunSettings(run="t", store=str(store), game=GameSpec(width=7, height=7, max_turns=30),
                          network=TINY_NET, seed=3)


def test_self_play_with_expert_iteration_records_and_trains_on_search_targets(tmp_path):
    run = tiny_run(tmp_path)
    spec = ExpertIterationSpec(fraction=0.5, visits=8)
    phase = pc.phase_settings(PhaseName.SELF_PLAY, games=4, parallel_games=4, batch_size=32, epochs=1,
                              expert_iteration=spec)
    outcome = execute.execute(run, phase)
    store = ArtifactStore(str(tmp_path))
    (ref,) = shards.list_shards(store, "t", "self_play")
    cols = shards.read_shard(store, ref)
    n = len(cols["move"])
    assert cols["search_policy"].shape == (n, 4) and cols["search_value"].shape == (n,)
    searched = cols["searched"]
    assert 0.2 < searched.mean() < 0.8
    policy, mask = cols["search_policy"][searched], cols["mask"][searched].astype(bool)
    np.testing.assert_allclose(policy.sum(axis=1), 1.0, rtol=1e-6)
    assert not policy[~mask].any()  # no mass on a move that loses at once
    assert policy[np.arange(len(policy)), cols["move"][searched]].min() > 0  # the played move was searched
    assert not cols["search_policy"][~searched].any()
    assert ref.meta.extra["producer"] == "network+search"
    assert outcome.metrics[Metric.SEARCHED_FRACTION] == pytest.approx(searched.mean())
    assert Metric.SEARCH_POLICY_LOSS in outcome.metrics and "expert iteration" in outcome.message


def test_expert_rollouts_are_reproducible(tmp_path):
    """The search runs on a simulation cap with no clock: the same seeds give the same rows."""
    from ouroboros.trainer.engine.types import GameConfig

    net = networks.build_network(TINY_NET, seed=1)
    spec = ExpertIterationSpec(fraction=0.5, visits=8)
    runs = [selfplay.play(GameConfig(7, 7, 2), games=2, parallel=2, max_turns=20, seed=9,
                          assign=lambda i, rng: [selfplay.Seat.LEARNER] * 2, rng=np.random.default_rng(4),
                          learner=net, expert_iteration=spec).columns for _ in range(2)]
    for key in ("move", "search_policy", "search_value", "searched"):
        np.testing.assert_array_equal(runs[0][key], runs[1][key])
    torch_forward = selfplay.play(GameConfig(7, 7, 2), games=2, parallel=2, max_turns=20, seed=9,
                                  assign=lambda i, rng: [selfplay.Seat.LEARNER] * 2, rng=np.random.default_rng(4),
                                  learner=net, expert_iteration=spec, forward="torch").columns
    assert torch_forward["searched"].any()  # the search also runs on the torch module itself (a GPU's path)


def run_config(phases: list[dict]) -> RunConfig:
    return RunConfig.model_validate({
        "run": {"name": "r", "namespace": "ns"}, "champion": "c", "game": {}, "model": {},
        "phases": phases, "storage": {}})


def test_the_run_config_carries_the_options_to_the_phases():
    config = run_config([{"name": "bootstrap", "teacher": "search", "teacherMoveMs": 15},
                         {"name": "self_play", "expertIteration": {"visits": 16, "valueWeight": 0.25}}])
    _, boot = pc.from_run_config(config, PhaseName.BOOTSTRAP)
    _, selfp = pc.from_run_config(config, PhaseName.SELF_PLAY)
    assert boot.teacher == "search:ms=15" and boot.expert_iteration is None
    assert selfp.expert_iteration == ExpertIterationSpec(visits=16, value_weight=0.25)
    default = pc.from_run_config(run_config([{"name": "bootstrap", "teacher": "search"}]), PhaseName.BOOTSTRAP)[1]
    assert default.teacher == f"search:ms={pc.DEFAULT_TEACHER_MOVE_MS[PhaseName.BOOTSTRAP]}"
    assert pc.from_run_config(run_config([{"name": "bootstrap"}]), PhaseName.BOOTSTRAP)[1].teacher == "heuristic"


@pytest.mark.parametrize(("phase", "words"), [
    ({"name": "hybrid", "expertIteration": {}}, "expertIteration applies only to the self_play and continuous"),
    ({"name": "self_play", "expertIteration": {"fraction": 0}}, "fraction"),
    ({"name": "self_play", "expertIteration": {"visits": 1}}, "visits"),
    ({"name": "self_play", "expertIteration": {"vists": 8}}, "vists"),
    ({"name": "bootstrap", "teacherMoveMs": 5}, "teacherMoveMs needs teacher: search"),
    ({"name": "bootstrap", "teacher": "alphabeta"}, "teacher"),
])
def test_bad_phase_options_are_refused_by_name(phase, words):
    with pytest.raises(ValidationError, match=words):
        PhaseSpec.model_validate(phase)


def test_ouro_train_flag_parses_options():
    assert train.expert_iteration(None) is None
    assert train.expert_iteration("") == ExpertIterationSpec()
    assert train.expert_iteration("visits=16,fraction=0.5") == ExpertIterationSpec(visits=16, fraction=0.5)
    for text, words in [("visits=1", "visits"), ("speed=3", "speed"), ("visits", "expected key=value")]:
        with pytest.raises(ValueError, match=words):
            train.expert_iteration(text)
    with pytest.raises(ValueError, match="expert_iteration applies only"):
        pc.phase_settings(PhaseName.HYBRID, games=1, expert_iteration=ExpertIterationSpec())


def test_ouro_train_runs_expert_iteration_from_an_initial_model(tmp_path, capsys):
    """`ouro train --expert-iteration ... --initial-model FILE`: the smoke preset's self_play
    searches and records targets, starting from the given network; bad options exit 2."""
    import json

    from ouroboros.trainer.learning import onnx_export

    smoke = train.PRESETS["smoke"]
    given = tmp_path / "given.onnx"
    given.write_bytes(onnx_export.to_onnx(networks.build_network(smoke.network, seed=11), 7, 7))
    store = tmp_path / "store"
    code = train.main(["--preset", "smoke", "--store", str(store), "--logdir", str(tmp_path / "tb"), "--run", "x",
                       "--eval-games", "2", "--no-promote", "--json", "--expert-iteration", "visits=4,fraction=0.5",
                       "--initial-model", str(given)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    self_play = next(p for p in summary["phases"] if p["phase"] == "self_play")
    assert "expert iteration" in self_play["message"]
    (ref,) = shards.list_shards(ArtifactStore(str(store)), "x", "self_play")
    assert ref.meta.extra["producer"] == "network+search"
    assert not shards.list_shards(ArtifactStore(str(store)), "x", "hybrid")[0].meta.extra["producer"].endswith("search")
    assert train.main(["--preset", "smoke", "--store", str(store), "--expert-iteration", "visits=1"]) == 2
    assert "--expert-iteration: visits" in capsys.readouterr().err


def test_imitation_learns_the_search_distribution_where_the_window_has_one(monkeypatch):
    """Bootstrap's imitation step: rows with search targets learn the visit distribution (LEFT
    here), not the recorded one-hot move (UP). Symmetries are switched off so the target is fixed."""
    from ouroboros.trainer.learning import replay
    from ouroboros.trainer.learning.phases import imitation
    from ouroboros.trainer.observation import encoding

    monkeypatch.setattr(encoding, "augment", lambda planes, target, rng: (planes, target))
    n = 64
    target = np.tile(np.array([[0.1, 0.0, 0.8, 0.1]], np.float32), (n, 1))
    cols = rollout_columns(n, np.ones(n, bool), target)
    cols["move"] = np.zeros(n, np.int8)  # the move played: UP
    cols["value"] = np.zeros(n, np.float32)
    buffer = replay.ReplayBuffer(cols, ["k"], np.zeros(n, np.int32), np.arange(n, dtype=np.int32),
                                 replay.ReplayConfig(priority_alpha=0.0))
    settings = pc.phase_settings(PhaseName.BOOTSTRAP, games=1, batch_size=n, learning_rate=0.01)
    net = networks.build_network(TINY_NET, seed=0)
    state = TrainState(net, torch.optim.Adam(net.parameters(), lr=0.01))
    for s in range(30):
        state.step = s
        imitation.step(state, buffer, settings, seed=0)
    net.eval()
    with torch.no_grad():
        probs = torch.softmax(net(torch.from_numpy(cols["planes"][:8].astype(np.float32)))[0], dim=1).numpy()
    assert (probs.argmax(axis=1) == LEFT).all()
