"""Bootstrap on the student's own positions (DAgger), and a policy held near its start.

With ``positions: student`` the run's starting network, inside the neural
search, plays one seat of each game against the teacher, and the teacher labels
every seat's position, the student's included: the label is the teacher's own
decision in that position, not the move the student played. With
``teacher_policy_weight`` below 1 the policy target is partly the starting
network's own policy, so the policy stays where it was while the value head
learns. Networks are tiny (`cnn_simple` 2x8), boards 7x7, searches shallow.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from ouroboros.contract.game import GameSpec
from ouroboros.contract.run import PhaseSpec, RunConfig
from ouroboros.contract.vocabulary import BootstrapPositions, PhaseName
from ouroboros.operator.resources import TrainingRunSpec
from ouroboros.trainer.agents import search
from ouroboros.trainer.artifacts.store import ArtifactStore
from ouroboros.trainer.commands import train
from ouroboros.trainer.engine.types import GameConfig, Move
from ouroboros.trainer.learning import networks, onnx_export, replay
from ouroboros.trainer.learning.checkpoint import TrainState
from ouroboros.trainer.learning.phases import config as pc
from ouroboros.trainer.learning.phases import execute, imitation, selfplay
from ouroboros.trainer.observation import encoding

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_torch_thread")]

TINY_NET = networks.NetworkConfig(architecture="cnn_simple", attention_layers=0, blocks=2, channels=8)
GAME = GameSpec(width=7, height=7, max_turns=30)


class Straight:
    """A student that always moves up (into the wall within a few turns) and keeps what it was asked."""

    name = "straight"

    def __init__(self) -> None:
        self.asked: dict[tuple[int, int], object] = {}

    def act(self, config, state, seat, rng):
        for g in range(state.batch_size):
            self.asked[(seat, int(state.turn[g]))] = state.select([g])
        return np.full(state.batch_size, int(Move.UP), np.int8)


def test_the_teacher_labels_the_students_positions_with_its_own_decisions():
    config = GameConfig(7, 7, 2)
    student = Straight()
    teacher = search.Search(ms=1e6, max_depth=1)
    seats = [[selfplay.Seat.LEARNER, selfplay.Seat.TEACHER], [selfplay.Seat.TEACHER, selfplay.Seat.LEARNER]]
    rollout = selfplay.play(config, games=2, parallel=2, max_turns=20, seed=5, assign=lambda i, rng: seats[i],
                            rng=np.random.default_rng(1), record_teacher=True, teacher_player=teacher,
                            student_player=student)
    cols = rollout.columns
    # the student's seat in each game: seat 0 in game 0, seat 1 in game 1 (its rows and the teacher's)
    mine = cols["seat"] == cols["game_id"]
    assert mine.any() and (~mine).any()
    # every student row is labelled with the teacher's decision in that position, which is not the move
    # the student played there (up, into the wall) once up loses
    for row in np.flatnonzero(mine):
        seat, turn = int(cols["seat"][row]), int(cols["turn"][row])
        position = student.asked[(seat, turn)]
        assert cols["move"][row] == teacher.act(config, position, seat, np.random.default_rng(0))[0]
    assert (cols["move"][mine] != int(Move.UP)).any()
    assert cols["searched"][mine].any() and (np.abs(cols["search_value"]) <= 1).all()
    # the student walked into the wall: it lost both games to the teacher, and the tally says so
    assert sum(rollout.results.values(), []) == [0, 0, 2]


def test_a_student_and_a_learner_network_together_are_refused():
    config = GameConfig(7, 7, 2)
    with pytest.raises(ValueError, match="a learner network or a student player, not both"):
        selfplay.play(config, games=1, parallel=1, max_turns=5, seed=0, assign=lambda i, rng: [0, 1],
                      rng=np.random.default_rng(0), learner=networks.build_network(TINY_NET, seed=0),
                      student_player=Straight())


def window(n: int = 64) -> tuple[dict[str, np.ndarray], replay.ReplayBuffer]:
    """n random positions, every move allowed, the teacher's move always up, the outcome +1."""
    rng = np.random.default_rng(0)
    cols = {"planes": rng.random((n, TINY_NET.in_channels, 7, 7)).astype(np.float16),
            "move": np.zeros(n, np.int8), "mask": np.ones((n, 4), np.uint8), "value": np.ones(n, np.float32)}
    return cols, replay.ReplayBuffer(cols, ["k"], np.zeros(n, np.int32), np.arange(n, dtype=np.int32),
                                     replay.ReplayConfig(priority_alpha=0.0))


def policy_and_value(net, planes):
    net.eval()
    with torch.no_grad():
        logits, value = net(torch.from_numpy(planes.astype(np.float32)))
    return torch.softmax(logits, 1).numpy(), value[:, 0].numpy()


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_a_policy_weight_of_zero_holds_the_policy_while_the_value_learns(monkeypatch, weight):
    monkeypatch.setattr(encoding, "augment", lambda planes, target, rng: (planes, target))
    cols, buffer = window()
    settings = pc.phase_settings(PhaseName.BOOTSTRAP, games=1, batch_size=64, learning_rate=0.01,
                                 teacher_policy_weight=weight)
    net = networks.build_network(TINY_NET, seed=0)
    start = copy.deepcopy(net).eval()
    reference = copy.deepcopy(net).eval().requires_grad_(False) if weight < 1 else None
    state = TrainState(net, torch.optim.Adam(net.parameters(), lr=0.01))
    for s in range(40):
        state.step = s
        metrics = imitation.step(state, buffer, settings, seed=0, reference=reference)
    before, _ = policy_and_value(start, cols["planes"])
    after, value = policy_and_value(net, cols["planes"])
    assert (value > 0.5).all()  # the value learns the outcome either way
    kl = (before * (np.log(before) - np.log(after))).sum(1).mean()
    if weight == 0:
        assert kl < 0.02, kl  # held where it started
        assert after[:, Move.UP].mean() < 0.5
    else:
        assert after[:, Move.UP].mean() > 0.9  # taught the teacher's move
        assert metrics["accuracy"] == 1.0


def test_a_policy_weight_below_one_needs_the_reference():
    _, buffer = window()
    settings = pc.phase_settings(PhaseName.BOOTSTRAP, games=1, batch_size=8, learning_rate=0.01,
                                 teacher_policy_weight=0.5)
    net = networks.build_network(TINY_NET, seed=0)
    with pytest.raises(ValueError, match="teacher_policy_weight 0.5 < 1 needs the reference network"):
        imitation.step(TrainState(net, torch.optim.Adam(net.parameters())), buffer, settings, seed=0)


def test_a_bootstrap_phase_on_the_students_positions(tmp_path):
    """The whole phase: the initial model's games inside the neural search against the search teacher,
    every seat's positions in the replay, the student's record in the message; refused without a model."""
    path = tmp_path / "start.onnx"
    path.write_bytes(onnx_export.to_onnx(networks.build_network(TINY_NET, seed=4), 7, 7))
    run = pc.RunSettings(run="d", store=str(tmp_path / "store"), game=GAME, network=TINY_NET, seed=3,
                         initial_model=train.initial_model(str(path)))
    phase = pc.phase_settings(PhaseName.BOOTSTRAP, games=2, parallel_games=2, batch_size=16, teacher="search:ms=2",
                              positions=BootstrapPositions.STUDENT, student_visits=4, teacher_policy_weight=0.0)
    outcome = execute.execute(run, phase)
    assert "the student against the teacher" in outcome.message
    assert sum(outcome.records["search:ms=2"]) == 2
    buffer = replay.ReplayBuffer.load(ArtifactStore(run.store), "d", ["bootstrap"], replay.ReplayConfig())
    seats_by_game = {}
    for g, s in zip(buffer.columns["game_id"], buffer.columns["seat"], strict=True):
        seats_by_game.setdefault(int(g), set()).add(int(s))
    assert seats_by_game and all(len(s) == 2 for s in seats_by_game.values()), seats_by_game
    assert buffer.columns["searched"].any()
    fresh = run.model_copy(update={"initial_model": None, "run": "e"})
    with pytest.raises(ValueError, match="positions student needs the run's initial model"):
        execute.execute(fresh, phase)


def test_the_options_reach_the_phase_and_are_checked_where_they_apply():
    def config(phase: dict, **spec):
        return RunConfig.model_validate({"run": {"name": "r", "namespace": "ns"}, "champion": "c", "game": {},
                                         "model": {}, "phases": [phase], "storage": {}, **spec})

    given = config({"name": "bootstrap", "teacher": "search", "positions": "student", "studentVisits": 12,
                    "teacherPolicyWeight": 0.25}, initialModel={"registryVersion": "v1"})
    phase = pc.from_run_config(given, PhaseName.BOOTSTRAP)[1]
    assert (phase.positions, phase.student_visits, phase.teacher_policy_weight) == (
        BootstrapPositions.STUDENT, 12, 0.25)
    unset = pc.from_run_config(config({"name": "bootstrap"}), PhaseName.BOOTSTRAP)[1]
    assert (unset.positions, unset.student_visits, unset.teacher_policy_weight) == (
        BootstrapPositions.TEACHER, pc.DEFAULT_STUDENT_VISITS, 1.0)
    for phase, words in [({"name": "hybrid", "positions": "student"}, "positions applies only to the bootstrap"),
                         ({"name": "self_play", "teacherPolicyWeight": 0}, "teacherPolicyWeight applies only"),
                         ({"name": "bootstrap", "studentVisits": 4}, "studentVisits needs positions: student"),
                         ({"name": "bootstrap", "positions": "teacher", "studentVisits": 4}, "studentVisits needs"),
                         ({"name": "bootstrap", "positions": "student", "studentVisits": 0}, "studentVisits"),
                         ({"name": "bootstrap", "teacherPolicyWeight": 1.5}, "teacherPolicyWeight")]:
        with pytest.raises(ValidationError, match=words):
            PhaseSpec.model_validate(phase)
    with pytest.raises(ValidationError, match="positions: student needs spec.initialModel"):
        TrainingRunSpec.model_validate({"champion": "c", "phases": [{"name": "bootstrap", "positions": "student"}]})
    TrainingRunSpec.model_validate({"champion": "c", "phases": [{"name": "bootstrap", "positions": "student"}],
                                    "initialModel": {"registryVersion": "v1"}})



def test_ouro_train_passes_the_options_and_names_the_one_that_is_wrong(tmp_path, capsys):
    smoke = train.PRESETS["smoke"].network
    start = tmp_path / "start.onnx"
    start.write_bytes(onnx_export.to_onnx(networks.build_network(smoke, seed=4), 7, 7))
    base = ["--preset", "smoke", "--store", str(tmp_path), "--teacher", "search:ms=5"]
    args = train._parser().parse_args(base + ["--initial-model", str(start), "--positions", "student",
                                              "--student-visits", "8", "--teacher-policy-weight", "0"])
    boot = next(p for p in train._plan(args).phases if p.kind is PhaseName.BOOTSTRAP)
    assert (boot.positions, boot.student_visits, boot.teacher_policy_weight) == (BootstrapPositions.STUDENT, 8, 0.0)
    for extra, words in [(["--positions", "student"], "--positions student: needs --initial-model"),
                         (["--student-visits", "8"], "--student-visits: needs --positions student"),
                         (["--initial-model", str(start), "--positions", "student", "--student-visits", "0"],
                          "--student-visits: between 1 and 4096"),
                         (["--teacher-policy-weight", "nan"], "--teacher-policy-weight: a share between 0 and 1")]:
        assert train.main(base + extra) == 2
        assert words in capsys.readouterr().err
    # a model of another board is refused before anything runs, naming the flag and what differs
    board = tmp_path / "board.onnx"
    board.write_bytes(onnx_export.to_onnx(networks.build_network(smoke, seed=4), 11, 11))
    assert train.main(base + ["--initial-model", str(board), "--positions", "student"]) == 2
    assert "--initial-model: initialModel.onnx" in capsys.readouterr().err
