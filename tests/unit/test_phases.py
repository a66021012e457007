"""The training phases end to end on tiny budgets: results, artifacts, resume, `ouro train`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ouroboros.operator.builders import manifests
from ouroboros.operator.resources import PhaseName, PhaseResult, TrainingRun
from ouroboros.operator.resources.runconfig import RESULT_MAX_BYTES
from ouroboros.trainer.artifacts import registry
from ouroboros.trainer.artifacts.store import ArtifactStore
from ouroboros.trainer.commands import phase as phase_command
from ouroboros.trainer.commands import train
from ouroboros.trainer.learning import networks, shards
from ouroboros.trainer.learning.phases import config as pc
from ouroboros.trainer.learning.phases import execute, ppo

pytestmark = pytest.mark.unit

TINY_NET = networks.NetworkConfig(architecture="cnn_simple", attention_layers=0, blocks=2, channels=8)


def tiny_run(store) -> pc.RunSettings:
    return pc.RunSettings(run="t", store=str(store), game=pc.GameSettings(width=7, height=7, max_turns=40),
                          network=TINY_NET, seed=3)


def tiny_phase(kind: pc.PhaseKind, **kw) -> pc.PhaseSettings:
    values = dict(games=4, parallel_games=4, batch_size=32, epochs=1, checkpoint_every=2)
    return pc.phase_settings(kind, **{**values, **kw})


def weights(net: torch.nn.Module) -> np.ndarray:
    return torch.cat([p.detach().flatten() for p in net.state_dict().values() if p.is_floating_point()]).numpy()


def test_every_phase_leaves_a_verified_candidate_and_a_small_result(tmp_path):
    run = tiny_run(tmp_path)
    store = ArtifactStore(str(tmp_path))
    for kind in pc.PhaseKind:
        outcome = execute.execute(run, tiny_phase(kind))
        assert outcome.candidate is not None
        store.verify(outcome.candidate.key, expected_sha256=outcome.candidate.sha256)
        assert outcome.metrics["games"] >= 4 and outcome.metrics["steps"] >= 1
        result = phase_command.to_result(PhaseName(kind.value), outcome)
        text = json.dumps(result.to_api())
        assert len(text.encode()) < RESULT_MAX_BYTES and not result.placeholder
        assert PhaseResult.model_validate_json(text).candidate.artifact.sha256 == outcome.candidate.sha256
    assert shards.list_shards(store, "t", "bootstrap")  # teacher positions are in the store
    assert store.list("runs/t/league")  # RL phases leave snapshots for later opponents


def test_a_resumed_phase_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    whole, cut = tiny_run(tmp_path / "whole"), tiny_run(tmp_path / "cut")
    for run in (whole, cut):
        execute.execute(run, tiny_phase(pc.PhaseKind.BOOTSTRAP))
    straight = execute.execute(whole, tiny_phase(pc.PhaseKind.HYBRID, iterations=2))
    execute.execute(cut, tiny_phase(pc.PhaseKind.HYBRID, iterations=1))  # "killed" after round 1
    resumed = execute.execute(cut, tiny_phase(pc.PhaseKind.HYBRID, iterations=2))
    assert resumed.metrics["steps"] == straight.metrics["steps"]  # no step lost or repeated
    assert len(shards.list_shards(ArtifactStore(cut.store), "t", "hybrid")) == 2  # no round played twice
    load = networks.load_checkpoint
    a, _ = load(ArtifactStore(whole.store).path(straight.artifacts["weights"].key))
    b, _ = load(ArtifactStore(cut.store).path(resumed.artifacts["weights"].key))
    np.testing.assert_array_equal(weights(a), weights(b))


def test_a_kill_inside_a_round_resumes_on_the_same_rollout(tmp_path):
    whole, cut = tiny_run(tmp_path / "whole"), tiny_run(tmp_path / "cut")
    for run in (whole, cut):
        execute.execute(run, tiny_phase(pc.PhaseKind.BOOTSTRAP))
        done = execute.execute(run, tiny_phase(pc.PhaseKind.HYBRID, batch_size=8))
    store = ArtifactStore(cut.store)
    steps = [k for k in store.list("runs/t/checkpoints/hybrid") if k.endswith(".pt")]
    assert len(steps) >= 2  # checkpoints every 2 steps: one inside the round
    store.delete(sorted(steps)[-1])  # as if killed after the round's mid checkpoint
    resumed = execute.execute(cut, tiny_phase(pc.PhaseKind.HYBRID, batch_size=8))
    assert resumed.metrics["steps"] == done.metrics["steps"]
    assert len(shards.list_shards(store, "t", "hybrid")) == 1  # trained on the round's shard again
    a, _ = networks.load_checkpoint(ArtifactStore(whole.store).path(done.artifacts["weights"].key))
    b, _ = networks.load_checkpoint(store.path(resumed.artifacts["weights"].key))
    np.testing.assert_array_equal(weights(a), weights(b))


def test_rerunning_a_finished_bootstrap_plays_and_trains_nothing_more(tmp_path):
    run = tiny_run(tmp_path)
    first = execute.execute(run, tiny_phase(pc.PhaseKind.BOOTSTRAP))
    again = execute.execute(run, tiny_phase(pc.PhaseKind.BOOTSTRAP))
    assert again.metrics["games"] == 0 and again.metrics["steps"] == first.metrics["steps"]
    assert len(shards.list_shards(ArtifactStore(run.store), "t", "bootstrap")) == 1


def test_gae_discounts_within_each_trajectory():
    # two interleaved trajectories: 0 wins after two steps, 1 loses after one
    reward = np.array([0, 0, 1, 0], np.float32)  # rows: t0(traj0), t0(traj1), t1(traj0) ...
    done = np.array([False, True, True, False])
    reward[1] = -1
    value = np.zeros(4, np.float32)
    traj = np.array([0, 1, 0, 2])
    adv, ret = ppo.gae(reward, done, value, traj, gamma=0.5, lam=1.0)
    np.testing.assert_allclose(adv, [0.5, -1.0, 1.0, 0.0])
    np.testing.assert_allclose(ret, adv)


def test_ouro_phase_trains_from_a_run_config(tmp_path):
    run = TrainingRun.model_validate({
        "metadata": {"name": "tiny", "namespace": "ns", "uid": "u"},
        "spec": {"champion": "c", "game": {"width": 7, "height": 7, "maxTurns": 40},
                 "model": {"architecture": "mlp", "blocks": 1, "channels": 8},
                 "storage": {"url": f"file://{tmp_path}/store"},
                 "phases": [{"name": "bootstrap", "games": 2}, {"name": "evaluate"}]},
    })
    config = tmp_path / "run.json"
    config.write_text(manifests.config_map(run)["data"]["run.json"])
    out = tmp_path / "result.json"
    assert phase_command.main(["bootstrap", "--run-config", str(config), "--result", str(out)]) == 0
    result = PhaseResult.model_validate_json(out.read_text())
    assert not result.placeholder and result.metrics["games"] == 2 and result.candidate is not None
    assert {a.name for a in result.artifacts} >= {"onnx", "weights", "checkpoint"}


def test_ouro_train_smoke_leaves_a_champion_and_tensorboard_logs(tmp_path, capsys):
    store, logdir = tmp_path / "store", tmp_path / "tb"
    code = train.main(["--preset", "smoke", "--store", str(store), "--logdir", str(logdir),
                       "--run", "s", "--eval-games", "4", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert [p["phase"] for p in summary["phases"]] == ["bootstrap", "hybrid", "self_play"]
    assert {s["opponent"] for s in summary["strength"]} == {"random-safe", "heuristic"}
    version, data = registry.Registry.open(str(store)).load_champion(pc.GameSettings(width=7, height=7).key)
    assert version.id == summary["champion"] and data[:4] and summary["sha256"] == version.sha256
    assert list((logdir / "s").glob("events.out.tfevents.*"))


def test_bootstrap_can_imitate_the_search_player(tmp_path):
    """teacher='search:...': the search plays the teacher's seats and its moves are the labels."""
    run = tiny_run(tmp_path)
    spec = "search:ms=5,max_depth=1"
    outcome = execute.execute(run, tiny_phase(pc.PhaseKind.BOOTSTRAP, games=2, teacher=spec))
    refs = shards.list_shards(ArtifactStore(run.store), "t", "bootstrap")
    assert [r.meta.producers for r in refs] == [[spec]] and refs[0].meta.extra["producer"] == spec
    assert outcome.metrics["games"] == 2 and outcome.metrics["positions"] == refs[0].meta.rows
    with pytest.raises(ValueError, match="unknown player 'serch'"):
        execute.execute(tiny_run(tmp_path / "b"), tiny_phase(pc.PhaseKind.BOOTSTRAP, games=2, teacher="serch"))
