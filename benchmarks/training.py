"""Training throughput per device: self-play positions per second and training samples per second.

    python -m benchmarks.training [--network default|quick] [--games 256] [--threads 1]
                                  [--device cpu,cuda] [--batch-size 256] [--steps 20] [--repeats 3]

- self-play: :func:`ouroboros.trainer.learning.phases.selfplay.play` with the
  network on every seat of 11x11 duels, ``--games`` games advancing together
  (one batched forward per turn for every living snake), sampling at
  temperature 1. A position is one living snake's decision (what PPO trains
  on). Includes encoding, safety masks, the engine and the bookkeeping: the
  number a phase sees, not a bare forward pass. On the CPU it is timed for
  both rollout forwards (:class:`ouroboros.trainer.learning.inference.InferenceBackend`:
  torch, and the onnxruntime copy that is the default, its export included); on a
  GPU for the network there (``inference.DeviceForward``) in bf16 autocast and in
  fp32. The runs alternate, so all see the same machine load.
- training: PPO minibatch steps (:func:`.phases.ppo.step`, ``--batch-size`` rows)
  on the rows that self-play produced, on each device: samples per second; on a
  GPU in bf16 autocast and in fp32 (where mixed precision matters), the
  minibatches moved there through pinned memory as a phase moves them.

``--device`` lists the devices to time (default: cpu, plus cuda when torch sees
a GPU); each line names its device (the CPU's model, ``torch.cuda.get_device_name``).
``--network default`` is ``NetworkConfig()`` (the attention-residual default),
``quick`` the conv net of ``ouro train --preset quick``. Median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from ouroboros.contract.game import GameSpec
from ouroboros.contract.vocabulary import PhaseName
from ouroboros.trainer.engine.types import game_config
from ouroboros.trainer.learning import device, inference, networks
from ouroboros.trainer.learning.checkpoint import TrainState
from ouroboros.trainer.learning.phases import config as pc
from ouroboros.trainer.learning.phases import ppo, selfplay

NETWORKS = {
    "default": networks.NetworkConfig(),
    "quick": networks.NetworkConfig(architecture="cnn_simple", attention_layers=0, blocks=6, channels=32),
}


def device_name(where: torch.device) -> str:
    """The device and its model, e.g. ``cuda:0 (NVIDIA H100 80GB HBM3)`` or ``cpu (AMD EPYC 7B13)``."""
    if where.type == "cuda":
        return f"{where} ({torch.cuda.get_device_name(where)})"
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    return f"cpu ({model})" if model else "cpu"


def selfplay_rate(net, games: int, seed: int,
                  forward: inference.InferenceBackend = inference.InferenceBackend.ONNXRUNTIME,
                  autocast: torch.dtype | None = None) -> tuple[float, dict]:
    """(positions per second, rollout columns) of one batched self-play rollout with ``net``
    where it lives (the onnxruntime export at its start included)."""
    game = GameSpec()
    learner = [selfplay.Seat.LEARNER] * game.snakes
    start = time.perf_counter()
    rollout = selfplay.play(game_config(game), games=games, parallel=games, max_turns=game.max_turns,
                            seed=seed, assign=lambda i, rng: learner, rng=np.random.default_rng(seed),
                            learner=net, forward=forward, autocast=autocast)
    return rollout.rows / (time.perf_counter() - start), rollout.columns


def training_rate(net, columns: dict, steps: int, placement: device.Placement, batch_size: int = 256) -> float:
    """PPO samples per second over ``steps`` minibatch steps of ``batch_size`` on ``placement``
    (a copy of ``net`` is trained; the data stay on the host, as in a phase)."""
    settings = pc.phase_settings(PhaseName.SELF_PLAY, games=1, batch_size=batch_size)
    data = ppo.RolloutData(columns, settings)
    net = copy.deepcopy(net).to(placement.device)
    state = TrainState(net, torch.optim.Adam(net.parameters(), lr=1e-4))
    ppo.step(state, data, settings, 0, placement=placement)  # warm-up: kernels chosen, allocator filled
    with device.synchronised(placement):
        start = time.perf_counter()
        for i in range(steps):
            state.step = i + 1
            ppo.step(state, data, settings, 0, placement=placement)
    return steps * settings.batch_size / (time.perf_counter() - start)


def _variants(where: torch.device) -> list[tuple[str, dict]]:
    """(label, selfplay_rate keywords) of the self-play forwards timed on ``where``."""
    if where.type == "cpu":
        return [(f"{b.value} forward", {"forward": b}) for b in inference.InferenceBackend]
    return [("torch forward, bf16 autocast", {"autocast": torch.bfloat16}), ("torch forward, fp32", {})]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--network", choices=sorted(NETWORKS), default="default")
    p.add_argument("--games", type=int, default=256, help="games advancing together")
    p.add_argument("--steps", type=int, default=20, help="PPO steps to time")
    p.add_argument("--batch-size", type=int, default=256, help="PPO minibatch rows")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--device", default=None,
                   help="comma-separated devices to time (default: cpu, plus cuda when torch sees a GPU)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    requested = args.device or ("cpu,cuda" if torch.cuda.is_available() else "cpu")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    devices = [device.resolve_device(d, gpus, field="--device") for d in requested.split(",")]
    config = NETWORKS[args.network]
    net = networks.build_network(config, seed=0)
    print(f"network {config.name}: {networks.count_parameters(net):,} parameters; "
          f"torch threads {args.threads}; 11x11 duels; {args.games} games at once")
    cols = {}
    for where in devices:
        name = device_name(where)
        placed = copy.deepcopy(net).to(where)
        variants = _variants(where)
        rates: dict[str, list[float]] = {label: [] for label, _ in variants}
        for r in range(args.repeats):
            for label, kw in variants:
                rate, cols = selfplay_rate(placed, args.games, r * 1000, **kw)
                rates[label].append(rate)
        peer = statistics.median(rates[variants[0][0]])
        for label, runs in rates.items():
            med = statistics.median(runs)
            print(f"self-play on {name} ({label}): {med:,.0f} positions/s, {med / peer:.2f}x {variants[0][0]} "
                  f"({len(cols['move'])} positions per rollout; runs {', '.join(f'{x:,.0f}' for x in runs)})")
        precisions = [None] if where.type == "cpu" else [torch.bfloat16, None]
        train: dict[str, list[float]] = {}
        for _ in range(args.repeats):
            for dtype in precisions:
                label = "bf16 autocast" if dtype is not None else "fp32"
                train.setdefault(label, []).append(
                    training_rate(net, cols, args.steps, device.Placement(where, dtype), args.batch_size))
        first = statistics.median(next(iter(train.values())))
        for label, runs in train.items():
            med = statistics.median(runs)
            print(f"training on {name} ({label}): {med:,.0f} samples/s, {med / first:.2f}x {next(iter(train))} "
                  f"(PPO, batch {args.batch_size}; runs {', '.join(f'{x:,.0f}' for x in runs)})")


if __name__ == "__main__":
    main()
