"""The distributed learner (learning.distributed): two ranks train as one process would.

Two processes started by torch.multiprocessing join a gloo process group over
loopback, as a learner group's pods do over the pod network, and run the phases'
real step functions (imitation for bootstrap, PPO for the RL phases) through
DistributedDataParallel. After several optimiser steps their weights, batch-norm
running statistics and metrics equal (to float rounding) those of one process
that trained on the same global batches: the guarantee that lets a run scale its
learner without changing what it learns.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from ouroboros.contract.vocabulary import Architecture, PhaseName
from ouroboros.trainer.learning import distributed, networks, replay
from ouroboros.trainer.learning.checkpoint import TrainState
from ouroboros.trainer.learning.phases import imitation, ppo
from ouroboros.trainer.learning.phases.config import phase_settings
from ouroboros.trainer.observation import encoding

STEPS = 6
SEED = 11
ROWS = 96


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _columns() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    planes = (rng.random((ROWS, encoding.N_CHANNELS, 7, 7)) < 0.2).astype(np.float32)
    planes[:, encoding.Channel.BOARD] = 1.0
    move = rng.integers(0, 4, ROWS)
    mask = rng.random((ROWS, 4)) < 0.6
    mask[np.arange(ROWS), move] = True  # the recorded move was legal
    return {
        "planes": planes, "move": move.astype(np.int8), "mask": mask.astype(np.float32),
        "value": rng.uniform(-1, 1, ROWS).astype(np.float32), "logp": np.log(rng.uniform(0.1, 0.9, ROWS)).astype(np.float32),
        "v_old": rng.uniform(-1, 1, ROWS).astype(np.float32), "reward": rng.uniform(-1, 1, ROWS).astype(np.float32),
        "done": rng.random(ROWS) < 0.1, "traj": rng.integers(0, 8, ROWS),
    }


def _network() -> networks.PolicyValueNet:
    config = networks.NetworkConfig(architecture=Architecture.CNN_SIMPLE, blocks=2, channels=8)
    return networks.build_network(config, seed=5)


def train(kind: str, group: distributed.Group) -> tuple[dict[str, torch.Tensor], list[dict[str, float]]]:
    """STEPS steps of the ``kind`` step function ("imitation" or "ppo") on the fixed data."""
    torch.manual_seed(0)
    net = _network()
    model = distributed.data_parallel(net, group)
    cols = _columns()
    if kind == "imitation":  # 31 rows: slices of 15 and 16, the unequal case
        settings = phase_settings(PhaseName.BOOTSTRAP, games=1, batch_size=31)
        data = replay.ReplayBuffer({k: cols[k] for k in ("planes", "move", "mask", "value")}, ["k"],
                                   np.zeros(ROWS, np.int32), np.arange(ROWS, dtype=np.int32),
                                   replay.ReplayConfig(priority_alpha=0.6))
        step = imitation.step
    else:
        settings = phase_settings(PhaseName.SELF_PLAY, games=1, batch_size=40)
        data = ppo.RolloutData(cols, settings)
        step = ppo.step
    # SGD, not the phases' Adam: Adam divides each coordinate by its gradient's running RMS, so
    # where the true gradient is zero (a convolution's constant-input weights before batch norm,
    # a bias that shifts all four logits alike) it turns float rounding into steps of the full
    # learning rate, in one process as much as in two. SGD keeps the comparison on the gradients.
    state = TrainState(net, torch.optim.SGD(net.parameters(), lr=0.1))
    metrics = []
    for _ in range(STEPS):
        metrics.append(step(state, data, settings, SEED, group, model))
        state.step += 1
    return {k: v.detach().clone() for k, v in net.state_dict().items()}, metrics


def _rank(rank: int, world: int, port: int, kind: str, out: str) -> None:
    torch.set_num_threads(1)
    env = {"RANK": str(rank), "WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    import os

    os.environ.update(env)
    group = distributed.from_environment(env)
    try:
        weights, metrics = train(kind, group)
        torch.save({"weights": weights, "metrics": [{str(k): v for k, v in m.items()} for m in metrics]}, Path(out) / f"rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.parametrize("kind", ["imitation", "ppo"])
def test_two_gloo_ranks_train_the_weights_one_process_trains(kind, tmp_path):
    single_weights, single_metrics = train(kind, distributed.SINGLE)
    mp.start_processes(_rank, args=(2, _free_port(), kind, str(tmp_path)), nprocs=2, join=True,
                       start_method="spawn")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    start = _network().state_dict()
    moved = max(float((single_weights[k].float() - start[k].float()).abs().max()) for k in start)
    assert moved > 1e-3  # the steps changed the network, so equality below means something
    for got in ranks:
        for key, expected in single_weights.items():
            torch.testing.assert_close(got["weights"][key], expected, rtol=1e-5, atol=1e-6, msg=key)
        for got_step, expected_step in zip(got["metrics"], single_metrics, strict=True):
            assert got_step.keys() == {str(k) for k in expected_step}
            for name, value in expected_step.items():
                assert got_step[str(name)] == pytest.approx(value, rel=1e-5, abs=1e-6), name


def test_a_group_splits_a_batch_into_contiguous_slices_that_cover_it_once():
    for world in (1, 2, 3, 5):
        for n in (1, 7, 31, 256):
            parts = [distributed.Group(rank, world).rows(n) for rank in range(world)]
            covered = np.concatenate([np.arange(n)[p] for p in parts])
            np.testing.assert_array_equal(covered, np.arange(n))
            sizes = [p.stop - p.start for p in parts]
            assert max(sizes) - min(sizes) <= 1


def test_a_rank_outside_its_group_is_refused():
    with pytest.raises(ValueError, match="rank 2 is not in 0..1"):
        distributed.Group(2, 2)
    assert distributed.from_environment({}) is distributed.SINGLE
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        distributed.from_environment({"WORLD_SIZE": "two"})


def test_the_backend_follows_the_device():
    assert distributed.backend_for(torch.device("cpu")) == "gloo"
    assert distributed.backend_for(torch.device("cuda", 0)) == "cpu:gloo,cuda:nccl"  # host-side sums stay on gloo


def _phase_rank(rank: int, world: int, port: int, store: str, out: str) -> None:
    """Rank ``rank`` of a bootstrap phase on ``store``; its outcome's files and metrics into ``out``."""
    import json
    import os

    from ouroboros.contract.game import GameSpec
    from ouroboros.trainer.learning.phases import config as pc
    from ouroboros.trainer.learning.phases import execute

    torch.set_num_threads(1)
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(port)})
    group = distributed.from_environment()
    try:
        run = pc.RunSettings(run="t", store=store, game=GameSpec(width=7, height=7, max_turns=30),
                             network=networks.NetworkConfig(architecture=Architecture.CNN_SIMPLE, blocks=2, channels=8),
                             seed=3)
        phase = pc.phase_settings(PhaseName.BOOTSTRAP, games=4, parallel_games=4, batch_size=32, epochs=2,
                                  checkpoint_every=2)
        outcome = execute.execute(run, phase, group=group)
        Path(out, f"rank{rank}.json").write_text(json.dumps({
            "files": {k: v.key for k, v in outcome.artifacts.items()}, "steps": outcome.metrics["steps"],
            "candidate": outcome.candidate.sha256 if outcome.candidate else None, "message": outcome.message}))
    finally:
        torch.distributed.destroy_process_group()


def _group_phase(store: Path, out: Path) -> list[dict]:
    import json

    out.mkdir(parents=True, exist_ok=True)
    mp.start_processes(_phase_rank, args=(2, _free_port(), store.as_uri(), str(out)), nprocs=2, join=True,
                       start_method="spawn")
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def test_a_restarted_group_resumes_from_rank_0s_checkpoint_to_the_uninterrupted_weights(tmp_path):
    from ouroboros.trainer.artifacts.store import ArtifactStore

    whole = _group_phase(tmp_path / "whole", tmp_path / "out-whole")
    zero, one = whole
    assert zero["candidate"] and zero["files"].keys() >= {"weights", "onnx", "checkpoint"}
    assert one["candidate"] is None and one["files"] == {} and "learner rank 1 of 2" in one["message"]
    assert zero["steps"] == one["steps"] >= 4
    cut = tmp_path / "cut"
    shutil.copytree(tmp_path / "whole", cut)  # a second group that ran the same phase
    store = ArtifactStore(cut.as_uri())
    checkpoints = sorted(k for k in store.list("runs/t/checkpoints/bootstrap") if k.endswith(".pt"))
    assert len(checkpoints) >= 2 and not store.list("runs/t/progress")[1:]  # rank 0's progress record only
    for key in (checkpoints[-1], "runs/t/models/bootstrap.pt", "runs/t/models/bootstrap.onnx"):
        store.delete(key)  # as if the group died after its previous checkpoint
    resumed = _group_phase(cut, tmp_path / "out-resumed")
    assert resumed[0]["steps"] == zero["steps"]
    a, _ = networks.load_checkpoint(ArtifactStore((tmp_path / "whole").as_uri()).path(zero["files"]["weights"]))
    b, _ = networks.load_checkpoint(store.path(resumed[0]["files"]["weights"]))
    for key, value in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[key], value, rtol=0, atol=0, msg=key)
