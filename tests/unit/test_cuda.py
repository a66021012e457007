"""The GPU paths on a real CUDA device: skipped without one (the whole suite hides GPUs unless
OURO_TEST_CUDA=1, see tests/conftest.py); scripts/gpu-check.sh runs this module where a GPU is lent.

Each test compares the GPU against the CPU reference on the same inputs: a training step's
losses and weights (fp32 and bf16 autocast), artifacts written on the GPU loading on the CPU,
self-play on the GPU (shapes, legal moves, recorded log-probabilities against the CPU forward),
a whole tiny run of phases, the torch engine against the NumPy engine turn by turn, and, with two
GPUs, a two-rank NCCL learner against one process on the same global batch."""

from __future__ import annotations

import io
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from test_distributed import STEPS, _columns, _network

from ouroboros.contract.game import GameSpec
from ouroboros.contract.vocabulary import Architecture, PhaseName
from ouroboros.trainer.agents.simple import RandomSafe
from ouroboros.trainer.artifacts.store import ArtifactStore
from ouroboros.trainer.engine import maps, rules, torch_rules
from ouroboros.trainer.engine.types import (
    EngineBackend,
    GameConfig,
    GameMap,
    Ruleset,
    RulesetSettings,
    game_config,
)
from ouroboros.trainer.learning import device, distributed, inference, networks, replay
from ouroboros.trainer.learning.checkpoint import Checkpointer, ResumableLoop, TrainState
from ouroboros.trainer.learning.phases import config as pc
from ouroboros.trainer.learning.phases import execute, imitation, ppo, runner, selfplay

pytestmark = [
    pytest.mark.unit, pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="no CUDA device (scripts/gpu-check.sh runs these with OURO_TEST_CUDA=1 on a GPU)"),
]

GPU = torch.device("cuda", 0)


@pytest.fixture(autouse=True)
def _exact_fp32():
    """fp32 on the GPU as fp32 (no TF32 matmuls or convolutions), so fp32 comparisons are tight
    and only the bf16 ones carry bf16's tolerance."""
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def _ppo(placement: device.Placement) -> tuple[TrainState, list[dict[str, float]]]:
    torch.manual_seed(0)
    net = _network().to(placement.device)
    settings = pc.phase_settings(PhaseName.SELF_PLAY, games=1, batch_size=48)
    data = ppo.RolloutData(_columns(), settings)
    state = TrainState(net, torch.optim.Adam(net.parameters(), lr=1e-3))
    metrics = []
    for _ in range(STEPS):
        metrics.append(ppo.step(state, data, settings, 7, placement=placement))
        state.step += 1
    return state, metrics


@pytest.mark.parametrize(("autocast", "tolerance"), [(None, 1e-4), (torch.bfloat16, 0.05)])
def test_ppo_steps_on_the_gpu_match_the_cpu(autocast, tolerance):
    cpu_state, cpu_metrics = _ppo(device.CPU)
    gpu_state, gpu_metrics = _ppo(device.Placement(GPU, autocast))
    assert all(p.device == GPU and p.dtype == torch.float32 for p in gpu_state.model.parameters())
    for cpu, gpu in zip(cpu_metrics, gpu_metrics, strict=True):
        assert cpu.keys() == gpu.keys()
        for name, value in cpu.items():
            assert np.isfinite(gpu[name]) and gpu[name] == pytest.approx(value, rel=tolerance, abs=tolerance), name
    start = _network().state_dict()
    cpu_w, gpu_w = cpu_state.model.state_dict(), gpu_state.model.state_dict()
    moved = max(float((cpu_w[k].float() - start[k].float()).abs().max()) for k in start)
    gap = max(float((gpu_w[k].float().cpu() - cpu_w[k].float()).abs().max()) for k in start)
    assert moved > 1e-3 and gap < (1e-4 if autocast is None else moved / 2), (moved, gap)


def test_an_imitation_step_on_the_gpu_under_bf16_matches_the_cpu():
    def one(placement):
        torch.manual_seed(0)
        net = _network().to(placement.device)
        cols = _columns()
        n = len(cols["move"])
        buffer = replay.ReplayBuffer({k: cols[k] for k in ("planes", "move", "mask", "value")}, ["k"],
                                     np.zeros(n, np.int32), np.arange(n, dtype=np.int32), replay.ReplayConfig())
        settings = pc.phase_settings(PhaseName.BOOTSTRAP, games=1, batch_size=40)
        state = TrainState(net, torch.optim.SGD(net.parameters(), lr=0.1))
        return imitation.step(state, buffer, settings, 7, placement=placement), buffer.state_dict()["priority"]

    cpu, cpu_priority = one(device.CPU)
    gpu, gpu_priority = one(device.Placement(GPU, torch.bfloat16))
    for name, value in cpu.items():
        assert np.isfinite(gpu[name]) and gpu[name] == pytest.approx(value, rel=0.05, abs=0.02), name
    np.testing.assert_allclose(gpu_priority, cpu_priority, rtol=0.1, atol=0.02)


def test_weights_and_checkpoints_written_on_the_gpu_load_and_resume_on_the_cpu(tmp_path):
    state, _ = _ppo(device.Placement(GPU, torch.bfloat16))
    store = ArtifactStore(str(tmp_path))
    info = runner.save_weights(store, "w.pt", state.model)
    raw = torch.load(io.BytesIO(store.get_bytes(info.key)), weights_only=True)  # no map_location
    assert all(t.device.type == "cpu" for t in raw["model"].values())
    on_cpu = runner.load_weights(store, info.key)
    for key, value in state.model.state_dict().items():
        torch.testing.assert_close(on_cpu.state_dict()[key], value.cpu(), rtol=0, atol=0, msg=key)
    checkpointer = Checkpointer(store, "ckpt")
    ResumableLoop(checkpointer, lambda *a: {}, every=1).save(state)
    raw = torch.load(io.BytesIO(store.get_bytes(checkpointer.list()[-1][1])), weights_only=True)
    assert all(t.device.type == "cpu" for s in raw["optimizer"]["state"].values() for t in s.values())
    for where in (torch.device("cpu"), GPU):  # resumes on either device
        net = _network().to(where)
        resumed = ResumableLoop(checkpointer, lambda *a: {}, every=1).restore(
            TrainState(net, torch.optim.Adam(net.parameters(), lr=1e-3)))
        assert resumed.step == state.step
        moments = [t for s in resumed.optimizer.state.values() for k, t in s.items() if k != "step"]
        assert moments and all(t.device == where for t in moments)
        for key, value in state.model.state_dict().items():
            torch.testing.assert_close(net.state_dict()[key].cpu(), value.cpu(), rtol=0, atol=0, msg=key)


def test_a_device_forward_plays_on_the_gpu_and_answers_on_the_host():
    net = _network().eval()
    planes = torch.from_numpy(_columns()["planes"][:33])
    with torch.no_grad():
        logits, value = net(planes)
    forward = inference.for_rollout(net.to(GPU), 7, 7, inference.InferenceBackend.ONNXRUNTIME, torch.bfloat16)
    assert isinstance(forward, inference.DeviceForward)  # a GPU network never goes to onnxruntime
    got_logits, got_value = forward(planes)
    assert got_logits.device.type == got_value.device.type == "cpu" and got_logits.dtype == torch.float32
    torch.testing.assert_close(got_logits, logits, rtol=0.05, atol=0.05)
    torch.testing.assert_close(got_value, value, rtol=0.05, atol=0.05)


def test_self_play_on_the_gpu_records_legal_moves_and_the_networks_own_log_probabilities():
    game = GameSpec(width=11, height=11, max_turns=60)
    config = game_config(game)
    net = networks.build_network(networks.NetworkConfig(architecture=Architecture.CNN_SIMPLE, blocks=2, channels=16),
                                 seed=1)
    learner = [selfplay.Seat.LEARNER] * config.n_snakes

    def play(where, autocast):
        return selfplay.play(config, games=16, parallel=16, max_turns=game.max_turns, seed=5,
                             assign=lambda i, rng: learner, rng=np.random.default_rng(5), learner=net.to(where),
                             forward=inference.InferenceBackend.TORCH, autocast=autocast)

    cpu = play(torch.device("cpu"), None)
    gpu = play(GPU, torch.bfloat16)
    assert gpu.games == cpu.games == 16 and gpu.rows > 100
    assert gpu.columns.keys() == cpu.columns.keys()
    for name, column in cpu.columns.items():
        assert gpu.columns[name].dtype == column.dtype and gpu.columns[name].shape[1:] == column.shape[1:], name
    cols = gpu.columns
    mask = cols["mask"].astype(bool)
    rows = np.arange(len(mask))
    assert mask[rows, cols["move"]][mask.any(axis=1)].all()  # never a move that loses at once while one is safe
    assert np.all(cols["logp"] <= 0) and np.all(np.abs(cols["v_old"]) <= 1)
    with torch.no_grad():  # the recorded log-probabilities are the network's (up to bf16)
        logits, _ = net.cpu().eval()(torch.from_numpy(cols["planes"].astype(np.float32)))
        logp = torch.log_softmax(selfplay.policy.masked_logits(logits, torch.from_numpy(mask)), 1).numpy()
    np.testing.assert_allclose(cols["logp"], logp[rows, cols["move"]], atol=0.1)


def test_a_tiny_run_trains_on_the_gpu_and_leaves_device_independent_artifacts(tmp_path):
    run = pc.RunSettings(run="t", store=str(tmp_path), game=GameSpec(width=7, height=7, max_turns=40),
                         network=networks.NetworkConfig(architecture=Architecture.CNN_SIMPLE, blocks=2, channels=8),
                         seed=3, device="cuda")
    store = ArtifactStore(str(tmp_path))
    for kind in (PhaseName.BOOTSTRAP, PhaseName.HYBRID):
        phase = pc.phase_settings(kind, games=4, parallel_games=4, batch_size=32, epochs=1, checkpoint_every=2)
        outcome = execute.execute(run, phase)
        assert outcome.candidate is not None and outcome.metrics["steps"] >= 1
        store.verify(outcome.candidate.key, expected_sha256=outcome.candidate.sha256)
        net = runner.load_weights(store, outcome.artifacts["weights"].key)  # on the CPU
        assert all(p.device.type == "cpu" for p in net.parameters())
    import onnxruntime as ort

    session = ort.InferenceSession(store.get_bytes(outcome.candidate.key), providers=["CPUExecutionProvider"])
    planes = _columns()["planes"][:3]
    logits, _ = session.run(None, {session.get_inputs()[0].name: planes})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(logits), net.eval()(torch.from_numpy(planes))[0],
                                   rtol=1e-4, atol=1e-4)


CASES = [(r, m) for r in Ruleset for m in (GameMap.STANDARD, GameMap.EMPTY)]


@pytest.mark.parametrize(("ruleset", "game_map"), CASES, ids=[f"{r.value}-{m.value}" for r, m in CASES])
def test_the_torch_engine_on_the_gpu_plays_the_numpy_engines_turns(ruleset, game_map):
    from test_engine_kernel import _assert_same

    n = 1 if ruleset is Ruleset.SOLO else 4
    cfg = GameConfig(11, 11, n, ruleset, game_map, RulesetSettings(25, 2, 30, 3))
    ref = maps.new_games(cfg, np.arange(1, 257))
    fast = torch_rules.TorchState.from_batch(ref, GPU)
    rng = np.random.default_rng(11)
    for turn in range(150):
        moves = RandomSafe().act_all(cfg, ref, rng)
        wild = rng.random(moves.shape) < 0.05
        moves[wild] = rng.integers(-1, 6, int(wild.sum()))
        rules.advance(cfg, ref, moves, EngineBackend.NUMPY)
        torch_rules.advance(cfg, fast, torch.from_numpy(moves.astype(np.int64)).to(GPU))
        assert fast.device == GPU
        _assert_same(ref, fast.to_batch(), f"turn {turn}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(group: distributed.Group, where: torch.device) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    net = _network().to(where)
    model = distributed.data_parallel(net, group)
    settings = pc.phase_settings(PhaseName.SELF_PLAY, games=1, batch_size=40)
    data = ppo.RolloutData(_columns(), settings)
    state = TrainState(net, torch.optim.SGD(net.parameters(), lr=0.1))
    for _ in range(STEPS):
        ppo.step(state, data, settings, 11, group, model, device.Placement(where, None))
        state.step += 1
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def _nccl_rank(rank: int, world: int, port: int, out: str) -> None:
    import os

    env = {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port)}
    os.environ.update(env)
    where = torch.device("cuda", rank)
    group = distributed.from_environment(env, device=where)
    try:
        torch.save(_train(group, where), f"{out}/rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="a two-rank NCCL learner needs two GPUs")
def test_two_nccl_ranks_on_two_gpus_train_the_weights_one_gpu_trains(tmp_path):
    single = _train(distributed.SINGLE, GPU)
    mp.start_processes(_nccl_rank, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True, start_method="spawn")
    start = _network().state_dict()
    assert max(float((single[k].float() - start[k].float()).abs().max()) for k in start) > 1e-3
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for key, expected in single.items():
            torch.testing.assert_close(got[key], expected, rtol=1e-4, atol=1e-5, msg=key)
