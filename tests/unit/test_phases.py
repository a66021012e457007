"""The training phases end to end on tiny budgets: results, artifacts, resume, `ouro train`."""

from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ouroboros.contract.game import GameSpec
from ouroboros.contract.progress import ProgressRecord, progress_key, store_run_id, summarise
from ouroboros.contract.run import RESULT_MAX_BYTES
from ouroboros.contract.vocabulary import (
    TRAINING_PHASES,
    ApprovalMode,
    elo_vs,
    is_metric_name,
    win_rate_vs,
)
from ouroboros.operator.builders import manifests
from ouroboros.operator.resources import PhaseName, PhaseResult, TrainingRun
from ouroboros.trainer.artifacts import registry
from ouroboros.trainer.artifacts.store import ArtifactStore
from ouroboros.trainer.commands import phase as phase_command
from ouroboros.trainer.commands import train
from ouroboros.trainer.evaluation import stats
from ouroboros.trainer.learning import networks, shards
from ouroboros.trainer.learning.checkpoint import Checkpointer
from ouroboros.trainer.learning.phases import config as pc
from ouroboros.trainer.learning.phases import execute, ppo, runner

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_torch_thread")]  # conftest

TINY_NET = networks.NetworkConfig(architecture="cnn_simple", attention_layers=0, blocks=2, channels=8)


def tiny_run(store) -> pc.RunSettings:
    return pc.RunSettings(run="t", store=str(store), game=GameSpec(width=7, height=7, max_turns=40),
                          network=TINY_NET, seed=3)


def tiny_phase(kind: PhaseName, **kw) -> pc.PhaseSettings:
    values = dict(games=4, parallel_games=4, batch_size=32, epochs=1, checkpoint_every=2)
    return pc.phase_settings(kind, **{**values, **kw})


def weights(net: torch.nn.Module) -> np.ndarray:
    return torch.cat([p.detach().flatten() for p in net.state_dict().values() if p.is_floating_point()]).numpy()


def test_every_phase_leaves_a_verified_candidate_and_a_small_result(tmp_path):
    run = tiny_run(tmp_path)
    store = ArtifactStore(str(tmp_path))
    for kind in TRAINING_PHASES:
        outcome = execute.execute(run, tiny_phase(kind))
        assert outcome.candidate is not None
        store.verify(outcome.candidate.key, expected_sha256=outcome.candidate.sha256)
        assert outcome.metrics["games"] >= 4 and outcome.metrics["steps"] >= 1
        assert all(is_metric_name(k) for k in outcome.metrics), sorted(outcome.metrics)
        result = phase_command.to_result(PhaseName(kind.value), outcome)
        # each opponent's W-D-L record gives its win rate and, where finite, Elo with its 95% interval
        for opponent, (w, d, lost) in outcome.records.items():
            assert result.metrics[win_rate_vs(opponent)] == pytest.approx((w + d / 2) / (w + d + lost), abs=1e-6)
            est = stats.elo_estimate(stats.WDL(w, d, lost))
            for bound, figure in (("", est.elo), ("Lower", est.lower), ("Upper", est.upper)):
                assert result.metrics.get(elo_vs(opponent, bound)) == (
                    pytest.approx(figure, abs=1e-3) if math.isfinite(figure) else None)
        assert all(is_metric_name(k) for k in result.metrics), sorted(result.metrics)
        text = json.dumps(result.to_api())
        assert len(text.encode()) < RESULT_MAX_BYTES and not result.placeholder
        assert PhaseResult.model_validate_json(text).candidate.artifact.sha256 == outcome.candidate.sha256
    assert shards.list_shards(store, "t", "bootstrap")  # teacher positions are in the store
    assert store.list("runs/t/league")  # RL phases leave snapshots for later opponents


def test_a_resumed_phase_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    whole, cut = tiny_run(tmp_path / "whole"), tiny_run(tmp_path / "cut")
    for run in (whole, cut):
        execute.execute(run, tiny_phase(PhaseName.BOOTSTRAP))
    straight = execute.execute(whole, tiny_phase(PhaseName.HYBRID, iterations=2))
    execute.execute(cut, tiny_phase(PhaseName.HYBRID, iterations=1))  # "killed" after round 1
    resumed = execute.execute(cut, tiny_phase(PhaseName.HYBRID, iterations=2))
    assert resumed.metrics["steps"] == straight.metrics["steps"]  # no step lost or repeated
    assert len(shards.list_shards(ArtifactStore(cut.store), "t", "hybrid")) == 2  # no round played twice
    load = networks.load_checkpoint
    a, _ = load(ArtifactStore(whole.store).path(straight.artifacts["weights"].key))
    b, _ = load(ArtifactStore(cut.store).path(resumed.artifacts["weights"].key))
    np.testing.assert_array_equal(weights(a), weights(b))


def rewrite_newest_checkpoint(store: ArtifactStore, prefix: str, change) -> None:
    """Rewrite the newest checkpoint under ``prefix`` as ``change(payload)``, pointer included."""
    checkpointer = Checkpointer(store, prefix)
    step, key = checkpointer.list()[-1]
    payload = change(torch.load(io.BytesIO(store.get_bytes(key)), weights_only=True))
    buf = io.BytesIO()
    torch.save(payload, buf)
    info = store.put_bytes(key, buf.getvalue())
    store.write_json(f"{prefix}/latest.json", {"key": key, "sha256": info.sha256, "step": step})


def as_format_1(payload: dict) -> dict:
    """What the trainer before checkpoint format 2 wrote: the iteration kept as ``epoch``."""
    old = {k: v for k, v in payload.items() if k != "iteration"}
    return {**old, "format": 1, "epoch": payload["iteration"]}


def not_yet_marked(payload: dict) -> dict:
    """Killed after the round's last step was saved, before the save that marks it done."""
    return {**payload, "iteration": payload["iteration"] - 1}


@pytest.mark.parametrize("change", [as_format_1, not_yet_marked])
def test_a_round_boundary_checkpoint_resumes_to_the_uninterrupted_weights(tmp_path, change):
    whole, cut = tiny_run(tmp_path / "whole"), tiny_run(tmp_path / "cut")
    for run in (whole, cut):
        execute.execute(run, tiny_phase(PhaseName.BOOTSTRAP))
    straight = execute.execute(whole, tiny_phase(PhaseName.HYBRID, iterations=3))
    execute.execute(cut, tiny_phase(PhaseName.HYBRID, iterations=2))  # killed after round 2
    store = ArtifactStore(cut.store)
    rewrite_newest_checkpoint(store, "runs/t/checkpoints/hybrid", change)
    resumed = execute.execute(cut, tiny_phase(PhaseName.HYBRID, iterations=3))
    assert resumed.metrics["steps"] == straight.metrics["steps"]
    assert len(shards.list_shards(store, "t", "hybrid")) == 3
    assert Checkpointer(store, "runs/t/checkpoints/hybrid").load_latest().iteration == 3
    a, _ = networks.load_checkpoint(ArtifactStore(whole.store).path(straight.artifacts["weights"].key))
    b, _ = networks.load_checkpoint(store.path(resumed.artifacts["weights"].key))
    np.testing.assert_array_equal(weights(a), weights(b))
    league = sorted(store.list("runs/t/league"))
    assert [k.rsplit("/", 1)[-1] for k in league] == [f"hybrid-{i:04d}.pt" for i in range(4)]
    for key in league:  # each snapshot holds the weights at the end of its round, as in the straight run
        np.testing.assert_array_equal(weights(runner.load_weights(store, key)),
                                      weights(runner.load_weights(ArtifactStore(whole.store), key)))


def test_a_kill_inside_a_round_resumes_on_the_same_rollout(tmp_path):
    whole, cut = tiny_run(tmp_path / "whole"), tiny_run(tmp_path / "cut")
    for run in (whole, cut):
        execute.execute(run, tiny_phase(PhaseName.BOOTSTRAP))
        done = execute.execute(run, tiny_phase(PhaseName.HYBRID, batch_size=8))
    store = ArtifactStore(cut.store)
    steps = [k for k in store.list("runs/t/checkpoints/hybrid") if k.endswith(".pt")]
    assert len(steps) >= 2  # checkpoints every 2 steps: one inside the round
    store.delete(sorted(steps)[-1])  # as if killed after the round's mid checkpoint
    resumed = execute.execute(cut, tiny_phase(PhaseName.HYBRID, batch_size=8))
    assert resumed.metrics["steps"] == done.metrics["steps"]
    assert len(shards.list_shards(store, "t", "hybrid")) == 1  # trained on the round's shard again
    a, _ = networks.load_checkpoint(ArtifactStore(whole.store).path(done.artifacts["weights"].key))
    b, _ = networks.load_checkpoint(store.path(resumed.artifacts["weights"].key))
    np.testing.assert_array_equal(weights(a), weights(b))


def test_rerunning_a_finished_bootstrap_plays_and_trains_nothing_more(tmp_path):
    run = tiny_run(tmp_path)
    first = execute.execute(run, tiny_phase(PhaseName.BOOTSTRAP))
    again = execute.execute(run, tiny_phase(PhaseName.BOOTSTRAP))
    assert again.metrics["games"] == 0 and again.metrics["steps"] == first.metrics["steps"]
    assert len(shards.list_shards(ArtifactStore(run.store), "t", "bootstrap")) == 1


def test_phases_leave_the_thread_pool_to_the_commands(tmp_path):
    torch.set_num_threads(2)
    run = tiny_run(tmp_path)  # threads=1
    execute.execute(run, tiny_phase(PhaseName.BOOTSTRAP, games=2, parallel_games=2))
    assert torch.get_num_threads() == 2  # a library call does not resize the process's pool
    execute.configure_process(run)
    assert torch.get_num_threads() == 1
    torch.set_num_threads(2)
    execute.configure_process(run.model_copy(update={"threads": 0}))
    assert torch.get_num_threads() == 2  # 0: whatever the process has


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
                 "model": {"architecture": "cnn_simple", "blocks": 1, "channels": 8},
                 "storage": {"url": f"file://{tmp_path}/store", "mountPath": str(tmp_path)},
                 "phases": [{"name": "bootstrap", "games": 2}, {"name": "evaluate"}]},
    })
    config = tmp_path / "run.json"
    config.write_text(manifests.config_map(run)["data"]["run.json"])
    out = tmp_path / "result.json"
    torch.set_num_threads(2)
    assert phase_command.main(["bootstrap", "--run-config", str(config), "--result", str(out)]) == 0
    result = PhaseResult.model_validate_json(out.read_text())
    assert not result.placeholder and result.metrics["games"] == 2 and result.candidate is not None
    assert torch.get_num_threads() == 1  # the command applied the run's threads
    assert {a.name for a in result.artifacts} >= {"onnx", "weights", "checkpoint"}
    # the live progress record the operator reads: final, with the games and resource use
    record = ProgressRecord.model_validate_json((tmp_path / "store/runs/ns.tiny-u/progress/bootstrap-w0.json").read_text())
    assert record.done and record.fraction == 1 and record.games == 2 and record.positions > 0
    assert record.resources.resident_memory_bytes > 0 and record.resources.store_bytes is not None


def test_ouro_train_smoke_leaves_a_champion_and_tensorboard_logs(tmp_path, capsys):
    store, logdir = tmp_path / "store", tmp_path / "tb"
    torch.set_num_threads(2)
    code = train.main(["--preset", "smoke", "--store", str(store), "--logdir", str(logdir),
                       "--run", "s", "--eval-games", "4", "--json"])
    assert code == 0 and torch.get_num_threads() == 1  # --threads 1 by default
    captured = capsys.readouterr()
    summary, _stderr = json.loads(captured.out), captured.err
    assert [p["phase"] for p in summary["phases"]] == ["bootstrap", "hybrid", "self_play", "distill"]
    assert {s["opponent"] for s in summary["strength"]} == {"random-safe", "heuristic"}
    # the preset's gate plays the bare policy, so the duels did, and both records say so
    assert summary["player"] == "policy" and {s["player"] for s in summary["strength"]} == {"policy"}
    saved = json.loads((store / "runs/s/strength.json").read_text())
    assert saved["player"] == "policy" and {o["player"] for o in saved["opponents"]} == {"policy"}
    version, data = registry.Registry.open(str(store)).load_champion(str(GameSpec(width=7, height=7).key))
    assert version.id == summary["champion"] and data[:4] and summary["sha256"] == version.sha256
    assert list((logdir / "s").glob("events.out.tfevents.*"))
    # stderr is no terminal here: progress lines instead of bars, a first and a last one per phase
    err = _stderr
    for phase in ("bootstrap", "hybrid", "self_play"):
        lines = [line for line in err.splitlines() if f" {phase} " in line and "% eta" in line]
        assert lines and "  0.0%" in lines[0] and lines[-1].split(" | ")[0].endswith("100.0% eta ? done"), lines
    curves = ProgressRecord.model_validate_json((store / "runs/s/progress/bootstrap-w0.json").read_text()).history
    assert curves["policyLoss"] and curves["policyLoss"][-1][0] > 0


def _run_config(tmp_path, name: str, uid: str, promotion: dict, approval: str = "Automatic") -> Path:
    run = TrainingRun.model_validate({
        "metadata": {"name": name, "namespace": "ns", "uid": uid},
        "spec": {"champion": "c", "game": {"width": 7, "height": 7, "maxTurns": 40},
                 "model": {"architecture": "cnn_simple", "blocks": 1, "channels": 8},
                 "storage": {"url": f"file://{tmp_path}/store", "mountPath": str(tmp_path)},
                 "promotion": {"games": 8, "minGames": 4, **promotion,
                               "readiness": {"maxP99LatencyMs": 1000, "maxPeakMemoryMb": 1000}},
                 "phases": [{"name": "bootstrap", "games": 2}, {"name": "evaluate"}]},
    })
    path = tmp_path / f"{name}.json"
    path.write_text(manifests.config_map(run, ApprovalMode(approval))["data"]["run.json"])
    return path


def _phase(name: str, config: Path, tmp_path) -> PhaseResult:
    out = tmp_path / "result.json"
    assert phase_command.main([name, "--run-config", str(config), "--result", str(out)]) == 0
    return PhaseResult.model_validate_json(out.read_text())


def test_the_evaluate_phase_gates_with_the_runs_promotion_spec(tmp_path):
    """A first candidate becomes champion on readiness alone; a second run whose spec.promotion
    asks for a score no candidate can reach is rejected and the champion stays."""
    reg_ = registry.Registry.open(str(tmp_path / "store"))
    first = _run_config(tmp_path, "first", "uid-1", {})
    _phase("bootstrap", first, tmp_path)
    result = _phase("evaluate", first, tmp_path)
    assert result.gate.verdict.value == "promote" and result.gate.first_champion
    champion = reg_.champion("standard-7x7-2p")
    assert champion.version is not None and champion.history[0].run == "first"
    assert reg_.get(champion.version).sha256 == result.candidate.artifact.sha256
    assert result.gate.report.endswith("/evaluate/gate.json")

    second = _run_config(tmp_path, "second", "uid-2", {"method": "winRate", "minWinRate": 1.0})
    _phase("bootstrap", second, tmp_path)
    result = _phase("evaluate", second, tmp_path)
    assert result.gate.verdict.value == "reject" and result.gate.games == 8
    assert any("failed" in r for r in result.gate.reasons) and result.metrics["winRate"] < 1.0
    assert reg_.champion("standard-7x7-2p").version == champion.version  # unchanged

    again = _phase("evaluate", second, tmp_path)  # a retried Job registers nothing twice
    assert again.gate.verdict.value == "reject" and len(reg_.versions()) == 2

    # an SPRT gate publishes its test as it plays: the operator's status.progress.sprt and gate metrics
    third = _run_config(tmp_path, "third", "uid-3", {})
    _phase("bootstrap", third, tmp_path)
    result = _phase("evaluate", third, tmp_path)
    key = progress_key(store_run_id("third", "ns", "uid-3"), "evaluate")
    record = ProgressRecord.model_validate_json((tmp_path / "store" / key).read_text())
    assert record.done and record.games == result.gate.games > 0
    assert record.scalars["sprt/llr"] == pytest.approx(result.gate.llr, abs=1e-9)
    assert record.scalars["sprt/upper_bound"] == pytest.approx(math.log(0.95 / 0.05))
    live = summarise([record], record.updated_at).sprt
    assert live.games == result.gate.games and live.lower_bound == pytest.approx(math.log(0.05 / 0.95), abs=1e-6)


def test_with_manual_approval_a_passing_candidate_waits_and_the_champion_stays(tmp_path):
    reg_ = registry.Registry.open(str(tmp_path / "store"))
    config = _run_config(tmp_path, "manual", "uid-m", {}, approval="Manual")
    _phase("bootstrap", config, tmp_path)
    result = _phase("evaluate", config, tmp_path)
    assert result.gate.verdict.value == "promote" and result.gate.awaiting_approval
    assert result.gate.candidate and "approval is Manual" in result.gate.reasons[0]
    assert reg_.champion("standard-7x7-2p").version is None  # nothing was put in force
    assert "manual" in reg_.get(result.gate.candidate).run  # but the candidate is registered, ready to approve


def test_ouro_train_gates_a_second_run_against_the_champion(tmp_path, capsys):
    store = tmp_path / "store"
    base = ["--preset", "smoke", "--store", str(store), "--logdir", str(tmp_path / "tb"), "--eval-games", "2", "--json"]
    assert train.main([*base, "--run", "one"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["champion"] == first["version"] and first["gate"]["verdict"] == "promote"
    assert train.main([*base, "--run", "two"]) == 0  # 8 gate games: the SPRT cannot decide
    second = json.loads(capsys.readouterr().out)
    assert second["champion"] is None and second["gate"]["verdict"] == "inconclusive"
    assert second["gate"]["champion_before"] == first["version"]
    assert train.main([*base, "--run", "two", "--force-promote"]) == 0  # resumed run, same model
    forced = json.loads(capsys.readouterr().out)
    assert forced["champion"] == second["version"]
    state = registry.Registry.open(str(store)).champion(str(GameSpec(width=7, height=7).key))
    assert state.history[0].statistics["verdict"] == "manual" and state.history[0].by == "ouro train"


@pytest.mark.parametrize(("argv", "line"), [
    (["--threads", "-1"], "--threads: Input should be greater than or equal to 0"),  # was blamed on --device
    (["--seed", "-1"], "--seed: Input should be greater than or equal to 0"),  # was a numpy traceback
    (["--eval-games", "-1"], "--eval-games: at least 1 duel per baseline, got -1"),  # was a traceback
    (["--eval-games", "0"], "--eval-games: at least 1 duel per baseline, got 0"),  # silently the preset's
    (["--teacher", "junk"], "--teacher: unknown player 'junk'"),  # was a traceback once bootstrap began
    (["--teacher", "search:speed=3"], "--teacher: player 'search:speed=3': unknown option 'speed'"),
    (["--imitate", "imported"], "--imitate: no replay shards under runs/bad/replay/imported/"),  # silently none
    (["--imitate", "Bad/Name"], "invalid --imitate folder 'Bad/Name'"),
    (["--device", "gpu"], "--device: 'gpu' is not auto, cpu, cuda or cuda:N"),
    (["--leaf-games", "-1"], "--leaf-games: games between 0 and 100000, got -1"),
])
def test_ouro_train_refuses_a_bad_flag_before_any_phase_naming_it(tmp_path, capsys, argv, line):
    store = tmp_path / "store"
    code = train.main(["--preset", "smoke", "--store", str(store), "--logdir", str(tmp_path / "tb"), "--run", "bad",
                       *argv])
    err = capsys.readouterr().err
    assert code == 2 and line in err and "Traceback" not in err, err
    assert not (store / "runs/bad").exists()


def test_ouro_train_plays_its_duels_and_gate_as_gate_player_says(tmp_path, capsys, nsearch_decisions):
    """--gate-player nsearch:...: the final duels and the gate play the network inside the neural search at
    that budget (a simulation cap here, so the run is the same on any machine), and the records say so."""
    store = tmp_path / "store"
    base = ["--preset", "smoke", "--store", str(store), "--logdir", str(tmp_path / "tb"), "--eval-games", "2", "--json"]
    assert train.main([*base, "--run", "bad", "--gate-player", "nsearch:depth=2"]) == 2  # refused before any phase
    assert "--gate-player: expected ms=N, visits=N or endgame=X" in capsys.readouterr().err and not (store / "runs/bad").exists()
    assert train.main([*base, "--run", "n", "--gate-player", "champion+nsearch:ms=0,visits=4"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["player"] == "nsearch:ms=0,visits=4"
    assert [(s["opponent"], s["player"], s["games"]) for s in summary["strength"]] == [
        ("random-safe", "nsearch:ms=0,visits=4", 2), ("heuristic", "nsearch:ms=0,visits=4", 2)]
    saved = json.loads((store / "runs/n/strength.json").read_text())
    assert saved["player"] == "nsearch:ms=0,visits=4"
    assert ("nsearch:ms=0,visits=4", 4) in nsearch_decisions  # the duels' player searched, to its cap
    # the gate played (and recorded) the same player: a first champion, judged on readiness
    state = registry.Registry.open(str(store)).champion(str(GameSpec(width=7, height=7).key))
    assert state.version == summary["champion"] and state.history[0].statistics["player"] == "nsearch"


def test_bootstrap_can_imitate_the_search_player(tmp_path):
    """teacher='search:...': the search plays the teacher's seats and its moves are the labels."""
    run = tiny_run(tmp_path)
    spec = "search:ms=5,max_depth=1"
    outcome = execute.execute(run, tiny_phase(PhaseName.BOOTSTRAP, games=2, teacher=spec))
    refs = shards.list_shards(ArtifactStore(run.store), "t", "bootstrap")
    assert [r.meta.producers for r in refs] == [[spec]] and refs[0].meta.extra["producer"] == spec
    assert outcome.metrics["games"] == 2 and outcome.metrics["positions"] == refs[0].meta.rows
    with pytest.raises(ValueError, match="unknown player 'serch'"):
        execute.execute(tiny_run(tmp_path / "b"), tiny_phase(PhaseName.BOOTSTRAP, games=2, teacher="serch"))


def test_bootstrap_trains_the_leaf_net_that_every_later_model_carries(tmp_path, monkeypatch):
    """leaf_games: bootstrap plays that many search games (in processes), fits the leaf net, stores it
    (runs/R/models/leaf.npz), and its ONNX and every later phase's carry the same net in their metadata,
    which the served neural search plays; the games are stored as they are played; a rerun keeps the
    stored net, or makes it again from the stored games when it does not load; a net the held-out check refuses
    is neither stored nor carried (the initial model's, if it carries one, is handed on instead, and said); other phases, and boards the net cannot learn, are refused. (Whether
    a net is worth carrying is `leaf.adopt`'s test; two tiny games here would not decide it.)"""
    import onnxruntime as ort

    from ouroboros.trainer.agents import leafnet, nsearch, search
    from ouroboros.trainer.learning import leaf

    if not search.compiled_available():  # pragma: no cover - numba is in the trainer extras
        pytest.skip("numba is not installed")
    fitted: list = []

    def fit_all(data, **kw):
        fitted.append(len(np.unique(data.game)))
        return leaf.fit(data, hidden=4, epochs=1).export(), None, ""

    played: list = []
    real_play = leaf.play

    def play(config, games, seed, **kw):
        played.append(games)
        return real_play(config, games, seed, **kw)

    monkeypatch.setattr(leaf, "adopt", fit_all)
    monkeypatch.setattr(leaf, "play", play)
    run = tiny_run(tmp_path)
    first = execute.execute(run, tiny_phase(PhaseName.BOOTSTRAP, games=2, leaf_games=2))
    assert "leaf net from 2 search games" in first.message and fitted == [2] and played == [2]
    store = ArtifactStore(run.store)
    assert store.list("runs/t/leaf/") == ["runs/t/leaf/games-0000000.npz"]  # the games, kept as played
    stored = leafnet.LeafNet.load(io.BytesIO(store.get_bytes("runs/t/models/leaf.npz")))
    execute.execute(run, tiny_phase(PhaseName.HYBRID, games=2, iterations=1))
    for phase in ("bootstrap", "hybrid"):
        model = store.get_bytes(f"runs/t/models/{phase}.onnx")
        carried = leafnet.carried(ort.InferenceSession(model).get_modelmeta().custom_metadata_map)
        np.testing.assert_array_equal(carried.w1, stored.w1.astype(np.float32).astype(np.float64))
        assert nsearch.NeuralSearch(model, ms=10, endgame=0.1).leaf_net(stored.cells) is not None
    again = execute.execute(run, tiny_phase(PhaseName.BOOTSTRAP, games=2, leaf_games=2))
    assert "leaf net kept from an earlier attempt" in again.message and fitted == [2]
    store.put_bytes("runs/t/models/leaf.npz", b"not a net")  # a stored net that does not load is made again,
    remade = execute.execute(run, tiny_phase(PhaseName.BOOTSTRAP, games=2, leaf_games=2))
    assert "leaf net from 2 search games" in remade.message and fitted == [2, 2]
    assert played == [2]  # from the stored games: none played again

    monkeypatch.setattr(leaf, "adopt", lambda data, **kw: (None, (0.69, 0.70), "no better than the count"))
    other = tiny_run(tmp_path / "other")
    refused = execute.execute(other, tiny_phase(PhaseName.BOOTSTRAP, games=2, leaf_games=2))
    assert "no leaf net from 2 search games: no better than the count" in refused.message
    store = ArtifactStore(other.store)
    assert not store.exists("runs/t/models/leaf.npz")
    model = store.get_bytes("runs/t/models/bootstrap.onnx")
    assert leafnet.carried(ort.InferenceSession(model).get_modelmeta().custom_metadata_map) is None
    # refused, in a run whose initial model carries a net: that one is handed on, and the message says so
    given = tmp_path / "given.onnx"
    given.write_bytes(ArtifactStore(run.store).get_bytes("runs/t/models/bootstrap.onnx"))
    started = tiny_run(tmp_path / "started").model_copy(update={"initial_model": train.initial_model(str(given))})
    inherited = execute.execute(started, tiny_phase(PhaseName.BOOTSTRAP, games=2, leaf_games=2))
    assert "no leaf net from 2 search games: no better than the count; the initial model's is handed on" \
        in inherited.message
    model = ArtifactStore(started.store).get_bytes("runs/t/models/bootstrap.onnx")
    carried = leafnet.carried(ort.InferenceSession(model).get_modelmeta().custom_metadata_map)
    np.testing.assert_array_equal(carried.w1, stored.w1.astype(np.float32).astype(np.float64))
    with pytest.raises(ValueError, match="leaf_games applies only to the bootstrap phase, not hybrid"):
        tiny_phase(PhaseName.HYBRID, leaf_games=2)
    wide = tiny_run(tmp_path / "wide").model_copy(update={"game": GameSpec(width=9, height=7, max_turns=40)})
    with pytest.raises(ValueError, match="the board is 9x7; its training needs a square board"):
        execute.execute(wide, tiny_phase(PhaseName.BOOTSTRAP, games=2, leaf_games=2))
    assert not ArtifactStore(wide.store).list("runs/t/replay/")  # refused before the teacher's games


def test_a_result_with_many_opponents_is_fitted_under_the_termination_message_limit():
    """Elo interval ends go first, then Elo, then win rates, league snapshots (longest names) before the
    built-in opponents; everything else stays."""
    def result(snapshots: int) -> PhaseResult:
        opponents = ["heuristic", "random-safe"] + [f"self_play-{i:04d}" for i in range(snapshots)]
        metrics = {"games": 100.0, "policyLoss": 1.25, "winRate": 0.5}
        for o in opponents:
            metrics |= {win_rate_vs(o): 0.5, elo_vs(o): 12.345, elo_vs(o, "Lower"): -100.5,
                        elo_vs(o, "Upper"): 120.25}
        fitted = phase_command.fit(PhaseResult(phase=PhaseName.SELF_PLAY, metrics=metrics))
        assert len(json.dumps(fitted.to_api(), separators=(",", ":"), sort_keys=True).encode()) <= RESULT_MAX_BYTES
        assert {"games", "policyLoss", "winRate"} <= set(fitted.metrics)
        assert all(win_rate_vs(o) in fitted.metrics for o in opponents)  # win rates outlive every Elo figure
        return fitted

    some = result(40).metrics  # dropping some snapshots' interval ends is enough
    assert elo_vs("self_play-0000", "Lower") not in some and elo_vs("heuristic", "Lower") in some
    assert all(elo_vs(f"self_play-{i:04d}") in some for i in range(40))
    many = result(100).metrics  # every interval end goes, then snapshots' Elo
    assert not any(k.endswith(("Lower", "Upper")) for k in many)
    assert elo_vs("heuristic") in many and elo_vs("self_play-0000") not in many
    small = PhaseResult(phase=PhaseName.HYBRID, metrics={"games": 4.0, elo_vs("heuristic", "Lower"): -50.0})
    assert phase_command.fit(small) == small


def test_the_summary_names_tensorboard_where_this_environment_installed_it():
    """A virtual environment's scripts are not on the PATH unless it is activated: the summary's
    command names the environment's own script (`.venv/bin/tensorboard`) when there is one."""
    here = Path(sys.executable).parent
    assert train._beside_python(Path(sys.executable).name) == str(here / Path(sys.executable).name)
    assert train._beside_python("no-such-tool-here") == "no-such-tool-here"
