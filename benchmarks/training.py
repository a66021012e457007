"""Training throughput: self-play positions per second and training samples per second.

    python -m benchmarks.training [--network default|quick] [--games 256] [--threads 1] [--device cpu|cuda]

- self-play: :func:`ouroboros.trainer.learning.phases.selfplay.play` with the
  network on every seat of 11x11 duels, ``--games`` games advancing together
  (one batched forward per turn for every living snake), sampling at
  temperature 1. A position is one living snake's decision (what PPO trains
  on). Includes encoding, safety masks, the engine and the bookkeeping: the
  number a phase sees, not a bare forward pass. CPU only (the rollout keeps
  its network on the CPU). Timed for both rollout forwards
  (:class:`ouroboros.trainer.learning.inference.InferenceBackend`: torch, and the
  onnxruntime copy that is the default, its export included), alternating.
- training: PPO minibatch steps (:func:`.phases.ppo.step`, batch 256) on the
  rows that self-play produced: samples per second, on ``--device``.

``--network default`` is ``NetworkConfig()`` (the attention-residual default),
``quick`` the conv net of ``ouro train --preset quick``. Median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from ouroboros.contract.game import GameSpec
from ouroboros.contract.vocabulary import PhaseName
from ouroboros.trainer.engine.types import game_config
from ouroboros.trainer.learning import inference, networks
from ouroboros.trainer.learning.checkpoint import TrainState
from ouroboros.trainer.learning.phases import config as pc
from ouroboros.trainer.learning.phases import ppo, selfplay

NETWORKS = {
    "default": networks.NetworkConfig(),
    "quick": networks.NetworkConfig(architecture="cnn_simple", attention_layers=0, blocks=6, channels=32),
}


def selfplay_rate(net, games: int, seed: int,
                  forward: inference.InferenceBackend = inference.InferenceBackend.ONNXRUNTIME) -> tuple[float, dict]:
    """(positions per second, rollout columns) of one batched self-play rollout (the
    onnxruntime export at its start included)."""
    game = GameSpec()
    learner = [selfplay.Seat.LEARNER] * game.snakes
    start = time.perf_counter()
    rollout = selfplay.play(game_config(game), games=games, parallel=games, max_turns=game.max_turns,
                            seed=seed, assign=lambda i, rng: learner, rng=np.random.default_rng(seed),
                            learner=net, forward=forward)
    return rollout.rows / (time.perf_counter() - start), rollout.columns


def training_rate(net, columns: dict, steps: int, device: str) -> float:
    """PPO samples per second over ``steps`` minibatch steps of 256."""
    settings = pc.phase_settings(PhaseName.SELF_PLAY, games=1, batch_size=256)
    data = ppo.RolloutData(columns, settings)
    net = net.to(device)
    for name in ("planes", "move", "logp", "mask", "adv", "ret"):
        setattr(data, name, getattr(data, name).to(device))
    state = TrainState(net, torch.optim.Adam(net.parameters(), lr=1e-4))
    ppo.step(state, data, settings, 0)  # warm-up
    start = time.perf_counter()
    for i in range(steps):
        state.step = i + 1
        ppo.step(state, data, settings, 0)
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * settings.batch_size / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--network", choices=sorted(NETWORKS), default="default")
    p.add_argument("--games", type=int, default=256, help="games advancing together")
    p.add_argument("--steps", type=int, default=20, help="PPO steps to time")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--device", default="cpu", help="training device (cpu or cuda)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    config = NETWORKS[args.network]
    net = networks.build_network(config, seed=0)
    print(f"network {config.name}: {networks.count_parameters(net):,} parameters; "
          f"torch threads {args.threads}; 11x11 duels")
    rates: dict[inference.InferenceBackend, list[float]] = {b: [] for b in inference.InferenceBackend}
    cols = {}
    for r in range(args.repeats):  # the backends alternate, so both see the same machine load
        for backend in inference.InferenceBackend:
            rate, cols = selfplay_rate(net.cpu(), args.games, r * 1000, backend)
            rates[backend].append(rate)
    torch_rate = statistics.median(rates[inference.InferenceBackend.TORCH])
    for backend, runs in rates.items():
        med = statistics.median(runs)
        print(f"self-play ({backend.value} forward): {med:,.0f} positions/s, {med / torch_rate:.2f}x torch "
              f"({args.games} games at once, {len(cols['move'])} positions per rollout, CPU; runs "
              f"{', '.join(f'{x:,.0f}' for x in runs)})")
    train = [training_rate(net, cols, args.steps, args.device) for _ in range(args.repeats)]
    print(f"training:  {statistics.median(train):,.0f} samples/s (PPO, batch 256, {args.device})")


if __name__ == "__main__":
    main()
