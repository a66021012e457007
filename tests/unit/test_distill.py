"""The distill phase: DAgger after the phases it distils the search into.

Distill is bootstrap's loop with ``positions: student``, but its student is
the network the run's earlier phases left (self_play's, else hybrid's, else
bootstrap's), or the run's initial model when it comes first; it never starts
from a fresh network. It must come after bootstrap, hybrid and self_play, so
that no phase silently starts from a network that skipped it, and continuous
after it starts from its model. Networks are tiny (`cnn_simple` 2x8), boards
7x7, searches shallow.
"""

from __future__ import annotations

import copy

import pytest
import torch
from pydantic import ValidationError

from ouroboros.contract.game import GameSpec
from ouroboros.contract.run import PhaseSpec, RunConfig
from ouroboros.contract.vocabulary import BootstrapPositions, PhaseName
from ouroboros.operator.resources import TrainingRunSpec
from ouroboros.trainer.artifacts.store import ArtifactStore
from ouroboros.trainer.commands import train
from ouroboros.trainer.learning import networks, onnx_export, replay
from ouroboros.trainer.learning.phases import bootstrap, execute, runner
from ouroboros.trainer.learning.phases import config as pc

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_torch_thread")]

TINY_NET = networks.NetworkConfig(architecture="cnn_simple", attention_layers=0, blocks=2, channels=8)
GAME = GameSpec(width=7, height=7, max_turns=30)


def same_weights(a: networks.PolicyValueNet, b: networks.PolicyValueNet) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


def test_distill_plays_the_previous_phases_network_and_continuous_starts_from_its_model(tmp_path, monkeypatch):
    run = pc.RunSettings(run="d", store=str(tmp_path / "store"), game=GAME, network=TINY_NET, seed=3)
    store = ArtifactStore(run.store)
    hybrid, self_play = networks.build_network(TINY_NET, seed=1), networks.build_network(TINY_NET, seed=2)
    runner.save_weights(store, "runs/d/models/hybrid.pt", hybrid)
    runner.save_weights(store, "runs/d/models/self_play.pt", self_play)
    students = []
    real_student = bootstrap.student
    monkeypatch.setattr(bootstrap, "student",  # the network as it plays (it trains in place afterwards)
                        lambda ctx, net: students.append(copy.deepcopy(net)) or real_student(ctx, net))
    phase = pc.phase_settings(PhaseName.DISTILL, games=2, parallel_games=2, batch_size=16, teacher="search:ms=2",
                              student_visits=4)
    outcome = execute.execute(run, phase)
    # the student is self_play's network (the latest earlier phase), not hybrid's, not a fresh one
    assert len(students) == 1 and same_weights(students[0], self_play) and not same_weights(students[0], hybrid)
    assert outcome.message.startswith("distill: ") and "the student against the teacher" in outcome.message
    assert sum(outcome.records["search:ms=2"]) == 2
    # both seats of every game are in distill's own replay, labelled by the search
    buffer = replay.ReplayBuffer.load(store, "d", ["distill"], replay.ReplayConfig())
    seats = {}
    for g, s in zip(buffer.columns["game_id"], buffer.columns["seat"], strict=True):
        seats.setdefault(int(g), set()).add(int(s))
    assert seats and all(len(s) == 2 for s in seats.values()) and buffer.columns["searched"].any()
    # teacher_policy_weight 0 by default: the policy was held, the value taught (a changed network)
    distilled = runner.load_weights(store, "runs/d/models/distill.pt")
    assert not same_weights(distilled, self_play)
    # continuous, with no champion, starts from distill's model
    ctx = runner.Context(run, pc.phase_settings(PhaseName.CONTINUOUS, games=1), store, runner.LogReporter())
    assert same_weights(runner._start_network(ctx), distilled)


def test_distill_never_starts_from_a_fresh_network(tmp_path):
    run = pc.RunSettings(run="f", store=str(tmp_path / "store"), game=GAME, network=TINY_NET, seed=3)
    phase = pc.phase_settings(PhaseName.DISTILL, games=1, parallel_games=1, teacher="search:ms=2", student_visits=2)
    with pytest.raises(ValueError, match="distill: no earlier phase's model .* and no initial model"):
        execute.execute(run, phase)
    # first in a run, it plays the run's initial model
    path = tmp_path / "start.onnx"
    path.write_bytes(onnx_export.to_onnx(networks.build_network(TINY_NET, seed=4), 7, 7))
    outcome = execute.execute(run.model_copy(update={"initial_model": train.initial_model(str(path))}), phase)
    assert sum(outcome.records["search:ms=2"]) == 1


def config(*phases: dict, **spec) -> RunConfig:
    return RunConfig.model_validate({"run": {"name": "r", "namespace": "ns"}, "champion": "c", "game": {},
                                     "model": {}, "phases": list(phases), "storage": {}, **spec})


def test_distill_defaults_are_the_measured_dagger_round_and_its_options_reach_the_phase():
    unset = pc.from_run_config(config({"name": "self_play"}, {"name": "distill", "games": 96}), PhaseName.DISTILL)[1]
    assert (unset.teacher, unset.positions, unset.teacher_policy_weight, unset.student_visits, unset.epochs,
            unset.learning_rate) == ("search:ms=10", BootstrapPositions.STUDENT, 0.0, pc.DEFAULT_STUDENT_VISITS,
                                     3.0, 5e-4)
    budget = pc.from_run_config(config({"name": "distill", "teacherMoveMs": 30, "studentVisits": 96,
                                        "teacherPolicyWeight": 0.5}), PhaseName.DISTILL)[1]
    assert (budget.teacher, budget.student_visits, budget.teacher_policy_weight) == ("search:ms=30", 96, 0.5)
    heuristic = pc.from_run_config(config({"name": "distill", "teacher": "heuristic"}), PhaseName.DISTILL)[1]
    assert heuristic.teacher == "heuristic"
    # bootstrap keeps its own defaults: the heuristic, the teacher's games, the whole policy target
    boot = pc.from_run_config(config({"name": "bootstrap"}), PhaseName.BOOTSTRAP)[1]
    assert (boot.teacher, boot.positions, boot.teacher_policy_weight) == ("heuristic", BootstrapPositions.TEACHER, 1.0)
    assert pc.from_run_config(config({"name": "bootstrap", "teacher": "search"}),
                              PhaseName.BOOTSTRAP)[1].teacher == "search:ms=20"
    with pytest.raises(ValidationError, match="distill labels the student's own games"):
        pc.phase_settings(PhaseName.DISTILL, games=1, positions=BootstrapPositions.TEACHER)


@pytest.mark.parametrize("phase, words", [
    ({"name": "distill", "positions": "student"}, "positions applies only to the bootstrap phase"),
    ({"name": "distill", "teacher": "heuristic", "teacherMoveMs": 5}, "teacherMoveMs needs teacher: search"),
    ({"name": "distill", "teacher": "heuristic", "teacherValueWeight": 0.5}, "teacherValueWeight needs teacher"),
    ({"name": "distill", "heuristicRatio": 0.5}, "heuristicRatio applies only to the bootstrap and hybrid"),
    ({"name": "distill", "expertIteration": {}}, "expertIteration applies only to the self_play and continuous"),
    ({"name": "continuous", "studentVisits": 8}, "studentVisits applies only to the bootstrap and distill"),
    ({"name": "hybrid", "teacherMoveMs": 8}, "teacher and teacherMoveMs apply only to the bootstrap and distill"),
])
def test_distill_options_are_refused_where_they_do_not_apply(phase, words):
    with pytest.raises(ValidationError, match=words):
        PhaseSpec.model_validate(phase)


@pytest.mark.parametrize("names, initial, words", [
    (["bootstrap", "hybrid", "self_play", "distill", "evaluate"], False, None),
    (["self_play", "distill", "continuous", "evaluate"], False, None),
    (["distill"], True, None),
    (["distill", "evaluate"], False, "a distill phase first in spec.phases needs spec.initialModel"),
    (["bootstrap", "distill", "hybrid"], False, "the distill phase must come after bootstrap, hybrid and self_play"),
    (["hybrid", "distill", "self_play"], False, "the distill phase must come after"),
])
def test_where_distill_may_stand_in_a_run(names, initial, words):
    spec = {"champion": "c", "phases": [{"name": n} for n in names]}
    if initial:
        spec["initialModel"] = {"registryVersion": "v1"}
    if words is None:
        assert [p.name.value for p in TrainingRunSpec.model_validate(spec).phases] == names
    else:
        with pytest.raises(ValidationError, match=words):
            TrainingRunSpec.model_validate(spec)


def test_ouro_train_distill_appends_replaces_or_drops_the_round(tmp_path, capsys):
    def kinds_and_distill(*extra):
        plan = train._plan(train._parser().parse_args(["--store", str(tmp_path), *extra]))
        return [p.kind for p in plan.phases], next((p for p in plan.phases if p.kind is PhaseName.DISTILL), None)

    rl = [PhaseName.BOOTSTRAP, PhaseName.HYBRID, PhaseName.SELF_PLAY]
    kinds, distill = kinds_and_distill("--preset", "medium", "--distill", "96")
    assert kinds == [*rl, PhaseName.DISTILL]
    # the settings of the measured round: 96 games, search:ms=10 labelling, the value taught, the policy held
    assert (distill.games, distill.parallel_games, distill.teacher, distill.teacher_policy_weight) == (
        96, 96, "search:ms=10", 0.0)
    assert (distill.epochs, distill.learning_rate) == (3.0, 5e-4)
    assert kinds_and_distill("--preset", "medium") == (rl, None)  # not run unless asked
    kinds, distill = kinds_and_distill("--preset", "smoke")  # smoke's tiny round: every phase in the tests
    assert kinds == [*rl, PhaseName.DISTILL] and distill.games == 2
    assert kinds_and_distill("--preset", "smoke", "--distill", "0") == (rl, None)
    assert kinds_and_distill("--preset", "smoke", "--distill", "3")[1].games == 3
    assert train.main(["--preset", "smoke", "--store", str(tmp_path), "--distill", "-1"]) == 2
    assert "--distill: games between 0 and 10000000, got -1" in capsys.readouterr().err
